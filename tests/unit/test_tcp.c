/*
 * test_tcp.c — the same calls over TCP/UDP (IPv4 and IPv6 loopback), and
 * uds_connect's waiting: for a server that starts late, for one that never
 * comes, and against a full backlog.
 */
#include "testutil.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static void assert_cloexec(int fd)
{
    int fl = fcntl(fd, F_GETFD);
    assert_true(fl >= 0 && (fl & FD_CLOEXEC));
}

static unsigned port_of(const uds_addr *a)
{
    return a->u.sa.sa_family == AF_INET6 ? ntohs(a->u.in6.sin6_port) : ntohs(a->u.in.sin_port);
}

/* Echo server thread: one connection, echoes until EOF. */
struct echo {
    int lfd;
    int err;
};

static void *echo_main(void *arg)
{
    struct echo *e = arg;
    int c = uds_accept(e->lfd, NULL, 0);
    if (c < 0) {
        e->err = c;
        return NULL;
    }
    char b[8192];
    ssize_t n;
    while ((n = uds_read_some(c, b, sizeof(b))) > 0)
        if (uds_write_all(c, b, (size_t)n) < 0)
            break;
    close(c);
    return NULL;
}

static int has_ipv6(void)
{
    int fd = socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return 0;
    struct sockaddr_in6 s;
    memset(&s, 0, sizeof(s));
    s.sin6_family = AF_INET6;
    s.sin6_addr = in6addr_loopback;
    int ok = bind(fd, (struct sockaddr *)&s, sizeof(s)) == 0;
    close(fd);
    return ok;
}

static void stream_echo(const char *text)
{
    uds_addr a;
    uds_listener l;
    assert_int_equal(uds_addr_parse(&a, text), 0);
    assert_int_equal(uds_listen(&l, &a, NULL), 0);
    assert_cloexec(l.fd);
    assert_int_equal(l.type, UDS_STREAM);
    assert_int_equal(l.addr.kind, UDS_ADDR_TCP);
    assert_int_equal(l.addr.u.sa.sa_family, a.u.sa.sa_family);
    unsigned port = port_of(&l.addr);
    assert_true(port > 0); /* the real port, not 0 */
    /* the formatted address names the port and parses back to the same */
    char name[UDS_ADDR_STRLEN];
    assert_true(uds_addr_format(&l.addr, name, sizeof(name)) > 0);
    uds_addr back;
    assert_int_equal(uds_addr_parse(&back, name), 0);
    assert_true(uds_addr_equal(&back, &l.addr));

    struct echo e = {l.fd, 0};
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, echo_main, &e), 0);
    uds_connect_opts o = {.timeout_ms = 5000};
    int c = uds_connect(&l.addr, &o);
    assert_true(c >= 0);
    assert_cloexec(c);
    assert_false(fcntl(c, F_GETFL) & O_NONBLOCK);
    size_t len = 1u << 20;
    unsigned char *src = malloc(len), *got = malloc(len);
    assert_non_null(src);
    assert_non_null(got);
    tu_fill(src, len, 11);
    /* write in pieces and read back as we go (no deadlock on big buffers) */
    size_t off = 0;
    while (off < len) {
        size_t k = len - off < 65536 ? len - off : 65536;
        assert_int_equal(uds_write_all(c, src + off, k), (ssize_t)k);
        assert_int_equal(uds_read_exact(c, got + off, k), (ssize_t)k);
        off += k;
    }
    assert_int_equal(tu_fnv(got, len), tu_fnv(src, len));
    /* the peer address the server sees, through accept, is tcp too */
    uds_addr peer;
    assert_int_equal(uds_local_addr(c, &peer), 0);
    assert_int_equal(peer.kind, UDS_ADDR_TCP);
    close(c);
    pthread_join(th, NULL);
    assert_int_equal(e.err, 0);
    uds_listener_close(&l);
    free(src);
    free(got);
}

static void test_tcp4_echo(void **state)
{
    (void)state;
    stream_echo("tcp:127.0.0.1:0");
}

static void test_tcp6_echo(void **state)
{
    (void)state;
    if (!has_ipv6()) {
        skip();
        return;
    }
    stream_echo("tcp:[::1]:0");
}

static void dgram_echo(const char *text, int family)
{
    uds_addr a, from;
    uds_listener l;
    assert_int_equal(uds_addr_parse(&a, text), 0);
    assert_int_equal(uds_listen(&l, &a, NULL), 0); /* udp: implies dgram */
    assert_int_equal(l.type, UDS_DGRAM);
    assert_int_equal(l.addr.kind, UDS_ADDR_UDP);
    assert_true(port_of(&l.addr) > 0);
    assert_cloexec(l.fd);

    /* unconnected client socket */
    int u = uds_dgram_socket(family, 0);
    assert_true(u >= 0);
    assert_cloexec(u);
    assert_int_equal(uds_sendto(u, "hello", 5, &l.addr), 5);
    char b[64];
    struct pollfd p = {l.fd, POLLIN, 0};
    assert_int_equal(poll(&p, 1, 2000), 1);
    assert_int_equal(uds_recvfrom(l.fd, b, sizeof(b), &from, 0), 5);
    assert_int_equal(from.kind, UDS_ADDR_UDP);
    assert_int_equal(uds_sendto(l.fd, "HELLO", 5, &from), 5);
    p.fd = u;
    assert_int_equal(poll(&p, 1, 2000), 1);
    assert_int_equal(uds_recvfrom(u, b, sizeof(b), NULL, 0), 5);
    assert_memory_equal(b, "HELLO", 5);
    close(u);

    /* connected client via uds_connect */
    int c = uds_connect(&l.addr, NULL);
    assert_true(c >= 0);
    assert_cloexec(c);
    assert_int_equal(uds_sock_type(c), UDS_DGRAM);
    assert_int_equal(uds_send(c, "abc", 3), 3);
    p.fd = l.fd;
    assert_int_equal(poll(&p, 1, 2000), 1);
    assert_int_equal(uds_recvfrom(l.fd, b, sizeof(b), &from, 0), 3);
    assert_int_equal(uds_sendto(l.fd, "ABC", 3, &from), 3);
    p.fd = c;
    assert_int_equal(poll(&p, 1, 2000), 1);
    assert_int_equal(uds_read_some(c, b, sizeof(b)), 3);
    assert_memory_equal(b, "ABC", 3);
    close(c);
    uds_listener_close(&l);
}

static void test_udp_echo(void **state)
{
    (void)state;
    dgram_echo("udp:127.0.0.1:0", AF_INET);
    if (has_ipv6())
        dgram_echo("udp:[::1]:0", AF_INET6);
}

/* A server process that starts listening on `text` after `delay_ms`. */
static pid_t late_server(const char *text, int delay_ms)
{
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid)
        return pid;
    usleep((useconds_t)delay_ms * 1000);
    uds_addr a;
    uds_listener l;
    if (uds_addr_parse(&a, text) < 0 || uds_listen(&l, &a, NULL) < 0)
        _exit(10);
    int c = uds_accept(l.fd, NULL, 0);
    if (c < 0)
        _exit(11);
    char b[8];
    ssize_t n = uds_read_some(c, b, sizeof(b));
    if (n > 0)
        uds_write_all(c, b, (size_t)n);
    close(c);
    uds_listener_close(&l);
    _exit(n == 4 ? 0 : 12);
}

static void wait_for_late(const char *text)
{
    uds_addr a;
    assert_int_equal(uds_addr_parse(&a, text), 0);
    pid_t pid = late_server(text, 200);
    uint64_t t0 = tu_now_ms();
    uds_connect_opts o = {.timeout_ms = 5000, .wait = 1};
    int c = uds_connect(&a, &o);
    uint64_t dt = tu_now_ms() - t0;
    if (c < 0)
        fail_msg("connect %s: %s", text, uds_strerror(c));
    assert_true(dt >= 150); /* it really waited for the server */
    assert_true(dt < 3000);
    assert_int_equal(uds_write_all(c, "ping", 4), 4);
    char b[4];
    assert_int_equal(uds_read_exact(c, b, 4), 4);
    assert_memory_equal(b, "ping", 4);
    close(c);
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

static void test_wait_for_server(void **state)
{
    (void)state;
    char *dir = tu_tmpdir();
    assert_non_null(dir);
    wait_for_late(tu_path(dir, "late.sock"));

    /* TCP: learn a free port, release it, let the late server take it */
    uds_addr a;
    uds_listener l;
    assert_int_equal(uds_addr_parse(&a, "tcp:127.0.0.1:0"), 0);
    assert_int_equal(uds_listen(&l, &a, NULL), 0);
    char text[64];
    snprintf(text, sizeof(text), "tcp:127.0.0.1:%u", port_of(&l.addr));
    uds_listener_close(&l);
    wait_for_late(text);
    tu_rmtree(dir);
    free(dir);
}

static void no_server(const char *text, int want)
{
    uds_addr a;
    assert_int_equal(uds_addr_parse(&a, text), 0);
    /* without wait: at once, not after the (long) timeout */
    uint64_t t0 = tu_now_ms();
    uds_connect_opts o = {.timeout_ms = 3000};
    assert_int_equal(uds_connect(&a, &o), want);
    assert_true(tu_now_ms() - t0 < 1500);
    /* with wait: after the timeout */
    o.wait = 1;
    o.timeout_ms = 300;
    t0 = tu_now_ms();
    int r = uds_connect(&a, &o);
    uint64_t dt = tu_now_ms() - t0;
    assert_int_equal(r, want);
    if (dt < 290 || dt > 3000)
        fail_msg("%s: gave up after %llu ms, want ~300", text, (unsigned long long)dt);
}

static void test_no_server_timeout(void **state)
{
    (void)state;
    char *dir = tu_tmpdir();
    assert_non_null(dir);
    no_server(tu_path(dir, "none.sock"), -ENOENT);
    /* a stale socket file: refused rather than missing */
    uds_addr a;
    assert_int_equal(uds_addr_parse(&a, tu_path(dir, "stale.sock")), 0);
    int d = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_int_equal(bind(d, &a.u.sa, a.len), 0);
    close(d);
    no_server(tu_path(dir, "stale.sock"), -ECONNREFUSED);
    /* TCP: a port nobody listens on */
    uds_listener l;
    assert_int_equal(uds_addr_parse(&a, "tcp:127.0.0.1:0"), 0);
    assert_int_equal(uds_listen(&l, &a, NULL), 0);
    char text[64];
    snprintf(text, sizeof(text), "tcp:127.0.0.1:%u", port_of(&l.addr));
    uds_listener_close(&l);
    no_server(text, -ECONNREFUSED);
    tu_rmtree(dir);
    free(dir);
}

static void test_full_backlog_timeout(void **state)
{
    (void)state;
    char *dir = tu_tmpdir();
    assert_non_null(dir);
    uds_addr a;
    uds_listener l;
    uds_listen_opts lo = {.backlog = 1};
    assert_int_equal(uds_addr_parse(&a, tu_path(dir, "full.sock")), 0);
    assert_int_equal(uds_listen(&l, &a, &lo), 0);
    int fds[64], n;
    for (n = 0; n < 64; n++) {
        uds_connect_opts o = {.flags = UDS_NONBLOCK, .timeout_ms = 1};
        fds[n] = uds_connect(&a, &o);
        if (fds[n] < 0)
            break;
    }
    assert_true(n >= 1 && n < 64);
    assert_int_equal(fds[n], -ETIMEDOUT);
    uint64_t t0 = tu_now_ms();
    uds_connect_opts o = {.timeout_ms = 300};
    assert_int_equal(uds_connect(&a, &o), -ETIMEDOUT);
    uint64_t dt = tu_now_ms() - t0;
    if (dt < 290 || dt > 3000)
        fail_msg("gave up after %llu ms, want ~300", (unsigned long long)dt);
    /* once the server accepts, a waiting client gets in */
    int s = uds_accept(l.fd, NULL, 0);
    assert_true(s >= 0);
    close(s);
    o.timeout_ms = 2000;
    int c = uds_connect(&a, &o);
    assert_true(c >= 0);
    close(c);
    for (int i = 0; i < n; i++)
        close(fds[i]);
    uds_listener_close(&l);
    tu_rmtree(dir);
    free(dir);
}

static void test_connect_misc(void **state)
{
    (void)state;
    uds_addr a;
    memset(&a, 0, sizeof(a));
    assert_int_equal(uds_connect(&a, NULL), -EINVAL);
    assert_int_equal(uds_connect(NULL, NULL), -EINVAL);
    a.kind = UDS_ADDR_UNNAMED;
    assert_int_equal(uds_connect(&a, NULL), -EINVAL);
    assert_int_equal(uds_addr_parse(&a, "tcp:127.0.0.1:1"), 0);
    uds_connect_opts o = {.type = UDS_DGRAM};
    assert_int_equal(uds_connect(&a, &o), -EPROTOTYPE);
    /* a non-blocking connected fd on request */
    uds_listener l;
    assert_int_equal(uds_addr_parse(&a, "tcp:127.0.0.1:0"), 0);
    assert_int_equal(uds_listen(&l, &a, NULL), 0);
    uds_connect_opts nb = {.flags = UDS_NONBLOCK, .timeout_ms = 2000};
    int c = uds_connect(&l.addr, &nb);
    assert_true(c >= 0);
    assert_true(fcntl(c, F_GETFL) & O_NONBLOCK);
    assert_cloexec(c);
    int s = uds_accept(l.fd, NULL, 0);
    assert_true(s >= 0);
    assert_cloexec(s);
    close(s);
    close(c);
    uds_listener_close(&l);
}

/* The default backlog is large: 100 clients connect before any accept. */
static void burst(const char *text)
{
    uds_addr a;
    uds_listener l;
    uds_listen_opts lo = {.flags = UDS_NONBLOCK};
    assert_int_equal(uds_addr_parse(&a, text), 0);
    assert_int_equal(uds_listen(&l, &a, &lo), 0);
    assert_true(fcntl(l.fd, F_GETFL) & O_NONBLOCK);
    assert_int_equal(uds_accept(l.fd, NULL, 0), -EAGAIN);
    int fds[100];
    for (int i = 0; i < 100; i++) {
        uds_connect_opts o = {.timeout_ms = 1000};
        fds[i] = uds_connect(&l.addr, &o);
        if (fds[i] < 0)
            fail_msg("%s: client %d of 100: %s", text, i, uds_strerror(fds[i]));
    }
    for (int i = 0; i < 100; i++) {
        struct pollfd p = {l.fd, POLLIN, 0};
        assert_int_equal(poll(&p, 1, 2000), 1);
        int s = uds_accept(l.fd, NULL, 0);
        assert_true(s >= 0);
        close(s);
        close(fds[i]);
    }
    uds_listener_close(&l);
}

static void test_default_backlog(void **state)
{
    (void)state;
    char *dir = tu_tmpdir();
    assert_non_null(dir);
    burst(tu_path(dir, "burst.sock"));
    burst("tcp:127.0.0.1:0");
    tu_rmtree(dir);
    free(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tcp4_echo),
        cmocka_unit_test(test_tcp6_echo),
        cmocka_unit_test(test_udp_echo),
        cmocka_unit_test(test_wait_for_server),
        cmocka_unit_test(test_no_server_timeout),
        cmocka_unit_test(test_full_backlog_timeout),
        cmocka_unit_test(test_connect_misc),
        cmocka_unit_test(test_default_backlog),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
