/* test_connect_async.c — uds_connect_start / uds_connect_cancel on a loop. */
#include "testutil.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* What the connect callback saw. */
struct res {
    int calls;
    int fd;
    int inside_start; /* cb ran while uds_connect_start was still running */
    uint64_t at_ms;
    int server_up_at_cb; /* the test's "server is there now" flag, at cb time */
};

static int in_start;
static int server_up;

static void on_connected(uds_loop *l, int fd, void *arg)
{
    (void)l;
    struct res *r = arg;
    r->calls++;
    r->fd = fd;
    r->inside_start |= in_start;
    r->at_ms = tu_now_ms();
    r->server_up_at_cb = server_up;
}

static int start(uds_connect_op **op, uds_loop *l, const uds_addr *a,
                 const uds_connect_opts *o, struct res *r)
{
    memset(r, 0, sizeof(*r));
    r->fd = -1000;
    in_start = 1;
    int rc = uds_connect_start(op, l, a, o, on_connected, r);
    in_start = 0;
    return rc;
}

/* Runs the loop until *calls is nonzero, at most max_ms. */
static void run_until(uds_loop *l, const int *calls, uint64_t max_ms)
{
    uint64_t t0 = tu_now_ms();
    while (!*calls && tu_now_ms() - t0 < max_ms)
        assert_int_equal(uds_loop_run_once(l, 20), 0);
}

/* Runs the loop for ms (for "nothing may happen" checks). */
static void run_for(uds_loop *l, uint64_t ms)
{
    uint64_t t0 = tu_now_ms();
    while (tu_now_ms() - t0 < ms)
        assert_int_equal(uds_loop_run_once(l, 10), 0);
}

static void check_connected_fd(int fd)
{
    assert_true(fd >= 0);
    assert_true(fcntl(fd, F_GETFL) & O_NONBLOCK);
    assert_true(fcntl(fd, F_GETFD) & FD_CLOEXEC);
    struct sockaddr_storage ss;
    socklen_t sl = sizeof(ss);
    assert_int_equal(getpeername(fd, (struct sockaddr *)&ss, &sl), 0);
}

static void parse(uds_addr *a, const char *text)
{
    assert_int_equal(uds_addr_parse(a, text), 0);
}

/* A unix listener that nobody accepts from, its backlog filled until the
   kernel answers EAGAIN. The filler fds go into fill[] (*nfill). */
static void fill_unix_backlog(uds_listener *srv, const char *dir, int fill[], int *nfill)
{
    uds_addr a;
    parse(&a, tu_path(dir, "busy.sock"));
    uds_listen_opts lo = {.backlog = 1};
    assert_int_equal(uds_listen(srv, &a, &lo), 0);
    *nfill = 0;
    for (int i = 0; i < 64; i++) {
        int c = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        assert_true(c >= 0);
        if (connect(c, &srv->addr.u.sa, srv->addr.len) < 0) {
            int e = errno;
            close(c);
            assert_int_equal(e, EAGAIN);
            return;
        }
        fill[(*nfill)++] = c;
    }
    fail_msg("the backlog of 1 never filled");
}

/* ---- immediate success ---------------------------------------------------- */

static void test_unix_immediate(void **state)
{
    (void)state;
    char *dir = tu_tmpdir();
    uds_loop *l;
    assert_int_equal(uds_loop_new(&l), 0);
    uds_addr a;
    parse(&a, tu_path(dir, "s.sock"));
    uds_listener srv;
    assert_int_equal(uds_listen(&srv, &a, NULL), 0);
    struct res r;
    uds_connect_op *op = NULL;
    assert_int_equal(start(&op, l, &a, NULL, &r), 0);
    assert_non_null(op);
    assert_int_equal(r.calls, 0); /* never from inside start */
    assert_int_equal(uds_loop_run_once(l, 0), 0);
    assert_int_equal(r.calls, 1);
    assert_int_equal(r.inside_start, 0);
    check_connected_fd(r.fd);
    /* it really is connected to our server */
    int s = uds_accept(srv.fd, NULL, 0);
    assert_true(s >= 0);
    assert_int_equal(write(r.fd, "x", 1), 1);
    char c;
    assert_int_equal(read(s, &c, 1), 1);
    assert_int_equal(c, 'x');
    close(s);
    close(r.fd);
    /* nothing else follows */
    assert_int_equal(uds_loop_run(l), 0);
    assert_int_equal(r.calls, 1);
    uds_listener_close(&srv);
    uds_loop_free(l);
    tu_rmtree(dir);
    free(dir);
}

/* A unix datagram client is autobound (unless UDS_NO_AUTOBIND), as with
   uds_connect. */
static void test_unix_dgram_autobind(void **state)
{
    (void)state;
    char *dir = tu_tmpdir();
    uds_loop *l;
    assert_int_equal(uds_loop_new(&l), 0);
    uds_addr a, local;
    parse(&a, tu_path(dir, "d.sock"));
    uds_listen_opts lo = {.type = UDS_DGRAM};
    uds_listener srv;
    assert_int_equal(uds_listen(&srv, &a, &lo), 0);
    uds_connect_opts o = {.type = UDS_DGRAM};
    struct res r;
    assert_int_equal(start(NULL, l, &a, &o, &r), 0);
    run_until(l, &r.calls, 5000);
    assert_int_equal(r.calls, 1);
    check_connected_fd(r.fd);
    assert_int_equal(uds_sock_type(r.fd), UDS_DGRAM);
    assert_int_equal(uds_local_addr(r.fd, &local), 0);
    assert_int_equal(local.kind, UDS_ADDR_ABSTRACT);
    close(r.fd);
    o.flags = UDS_NO_AUTOBIND;
    assert_int_equal(start(NULL, l, &a, &o, &r), 0);
    run_until(l, &r.calls, 5000);
    assert_int_equal(r.calls, 1);
    assert_true(r.fd >= 0);
    assert_int_equal(uds_local_addr(r.fd, &local), 0);
    assert_int_equal(local.kind, UDS_ADDR_UNNAMED);
    close(r.fd);
    uds_listener_close(&srv);
    uds_loop_free(l);
    tu_rmtree(dir);
    free(dir);
}

/* ---- errors ------------------------------------------------------------------ */

static void test_refused_and_missing(void **state)
{
    (void)state;
    char *dir = tu_tmpdir();
    uds_loop *l;
    assert_int_equal(uds_loop_new(&l), 0);
    int before = tu_count_fds();
    struct res r;
    uds_addr a;
    /* no file at all */
    parse(&a, tu_path(dir, "none.sock"));
    assert_int_equal(start(NULL, l, &a, NULL, &r), 0);
    assert_int_equal(r.calls, 0);
    run_until(l, &r.calls, 5000);
    assert_int_equal(r.calls, 1);
    assert_int_equal(r.inside_start, 0);
    assert_int_equal(r.fd, -ENOENT);
    /* a socket file nobody listens on */
    parse(&a, tu_path(dir, "dead.sock"));
    int b = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_int_equal(bind(b, &a.u.sa, a.len), 0);
    assert_int_equal(start(NULL, l, &a, NULL, &r), 0);
    run_until(l, &r.calls, 5000);
    assert_int_equal(r.calls, 1);
    assert_int_equal(r.fd, -ECONNREFUSED);
    close(b);
    assert_int_equal(tu_count_fds(), before);
    assert_int_equal(uds_loop_run(l), 0);
    uds_loop_free(l);
    tu_rmtree(dir);
    free(dir);
}

static void test_bad_arguments(void **state)
{
    (void)state;
    uds_loop *l;
    assert_int_equal(uds_loop_new(&l), 0);
    uds_addr a, none, udp;
    parse(&a, "@udsock-test-async-args");
    parse(&udp, "udp:127.0.0.1:9");
    memset(&none, 0, sizeof(none));
    struct res r;
    uds_connect_op *op = (uds_connect_op *)&r;
    assert_int_equal(start(&op, NULL, &a, NULL, &r), -EINVAL);
    assert_null(op);
    assert_int_equal(uds_connect_start(NULL, l, &a, NULL, NULL, NULL), -EINVAL);
    assert_int_equal(start(NULL, l, NULL, NULL, &r), -EINVAL);
    assert_int_equal(start(NULL, l, &none, NULL, &r), -EINVAL);
    uds_connect_opts o = {.type = UDS_STREAM};
    assert_int_equal(start(NULL, l, &udp, &o, &r), -EPROTOTYPE);
    o.type = 12345;
    assert_int_equal(start(NULL, l, &a, &o, &r), -EINVAL);
    uds_connect_cancel(NULL);
    run_for(l, 30);
    assert_int_equal(r.calls, 0);
    uds_loop_free(l);
}

/* A stream socket meets a seqpacket listener. */
static void test_prototype(void **state)
{
    (void)state;
    char *dir = tu_tmpdir();
    uds_loop *l;
    assert_int_equal(uds_loop_new(&l), 0);
    uds_addr a;
    parse(&a, tu_path(dir, "sp.sock"));
    uds_listen_opts lo = {.type = UDS_SEQPACKET};
    uds_listener srv;
    assert_int_equal(uds_listen(&srv, &a, &lo), 0);
    uds_connect_opts o = {.type = UDS_STREAM, .wait = 1, .timeout_ms = 5000};
    struct res r;
    assert_int_equal(start(NULL, l, &a, &o, &r), 0);
    run_until(l, &r.calls, 5000);
    assert_int_equal(r.calls, 1);
    assert_int_equal(r.fd, -EPROTOTYPE);
    /* and the right type gets through */
    o.type = UDS_SEQPACKET;
    assert_int_equal(start(NULL, l, &a, &o, &r), 0);
    run_until(l, &r.calls, 5000);
    assert_int_equal(r.calls, 1);
    check_connected_fd(r.fd);
    assert_int_equal(uds_sock_type(r.fd), UDS_SEQPACKET);
    close(r.fd);
    uds_listener_close(&srv);
    uds_loop_free(l);
    tu_rmtree(dir);
    free(dir);
}

/* ---- waiting for a server -------------------------------------------------------- */

static uds_listener late_srv;
static uds_addr late_addr;

static void start_server(uds_loop *l, uint64_t id, void *arg)
{
    (void)l;
    (void)id;
    (void)arg;
    assert_int_equal(uds_listen(&late_srv, &late_addr, NULL), 0);
    server_up = 1;
}

static void test_wait_for_server(void **state)
{
    (void)state;
    char *dir = tu_tmpdir();
    uds_loop *l;
    assert_int_equal(uds_loop_new(&l), 0);
    parse(&late_addr, tu_path(dir, "late.sock"));
    server_up = 0;
    assert_true(uds_loop_timer(l, 100, start_server, NULL) > 0);
    uds_connect_opts o = {.wait = 1, .timeout_ms = 10000};
    struct res r;
    uint64_t t0 = tu_now_ms();
    assert_int_equal(start(NULL, l, &late_addr, &o, &r), 0);
    run_until(l, &r.calls, 15000);
    assert_int_equal(r.calls, 1);
    assert_int_equal(r.server_up_at_cb, 1);
    check_connected_fd(r.fd);
    print_message("connected %llu ms after start (server up after 100 ms)\n",
                  (unsigned long long)(r.at_ms - t0));
    close(r.fd);
    uds_listener_close(&late_srv);

    /* wait with a timeout and no server: the last error, after the timeout */
    parse(&late_addr, tu_path(dir, "never.sock"));
    o.timeout_ms = 200;
    t0 = tu_now_ms();
    assert_int_equal(start(NULL, l, &late_addr, &o, &r), 0);
    run_until(l, &r.calls, 15000);
    assert_int_equal(r.calls, 1);
    assert_int_equal(r.fd, -ENOENT);
    assert_true(r.at_ms - t0 >= 150);
    assert_true(r.at_ms - t0 < 5000);
    assert_int_equal(uds_loop_run(l), 0);
    uds_loop_free(l);
    tu_rmtree(dir);
    free(dir);
}

/* ---- full backlog --------------------------------------------------------------- */

static int accepted_fd = -1;
static int busy_listen_fd = -1;

static void accept_one(uds_loop *l, uint64_t id, void *arg)
{
    (void)l;
    (void)id;
    (void)arg;
    accepted_fd = uds_accept(busy_listen_fd, NULL, 0);
    assert_true(accepted_fd >= 0);
    server_up = 1;
}

/* A full backlog is retried, not failed: once the server accepts one
   client, the pending connect gets through. */
static void test_backlog_full_then_accepted(void **state)
{
    (void)state;
    char *dir = tu_tmpdir();
    uds_loop *l;
    assert_int_equal(uds_loop_new(&l), 0);
    uds_listener srv;
    int fill[64], nfill;
    fill_unix_backlog(&srv, dir, fill, &nfill);
    busy_listen_fd = srv.fd;
    server_up = 0;
    assert_true(uds_loop_timer(l, 100, accept_one, NULL) > 0);
    struct res r;
    uds_connect_opts o = {.timeout_ms = 10000};
    assert_int_equal(start(NULL, l, &srv.addr, &o, &r), 0);
    run_until(l, &r.calls, 15000);
    assert_int_equal(r.calls, 1);
    assert_int_equal(r.server_up_at_cb, 1); /* not before the accept */
    check_connected_fd(r.fd);
    close(r.fd);
    close(accepted_fd);
    for (int i = 0; i < nfill; i++)
        close(fill[i]);
    uds_listener_close(&srv);
    uds_loop_free(l);
    tu_rmtree(dir);
    free(dir);
}

/* A backlog that never frees: -ETIMEDOUT at the caller's timeout, or after
   the 2 s default when none is set. */
static void test_backlog_full_timeout(void **state)
{
    (void)state;
    char *dir = tu_tmpdir();
    uds_loop *l;
    assert_int_equal(uds_loop_new(&l), 0);
    uds_listener srv;
    int fill[64], nfill;
    fill_unix_backlog(&srv, dir, fill, &nfill);
    int before = tu_count_fds();
    struct res r;
    uds_connect_opts o = {.timeout_ms = 300};
    uint64_t t0 = tu_now_ms();
    assert_int_equal(start(NULL, l, &srv.addr, &o, &r), 0);
    run_until(l, &r.calls, 15000);
    uint64_t dt = r.at_ms - t0;
    print_message("timeout_ms 300: -ETIMEDOUT after %llu ms\n", (unsigned long long)dt);
    assert_int_equal(r.calls, 1);
    assert_int_equal(r.fd, -ETIMEDOUT);
    assert_true(dt >= 250);
    assert_true(dt < 3000);
    assert_int_equal(tu_count_fds(), before);

    /* no timeout set: the full backlog is still given up on, after 2 s */
    t0 = tu_now_ms();
    assert_int_equal(start(NULL, l, &srv.addr, NULL, &r), 0);
    run_until(l, &r.calls, 20000);
    dt = r.at_ms - t0;
    print_message("no timeout: -ETIMEDOUT after %llu ms\n", (unsigned long long)dt);
    assert_int_equal(r.calls, 1);
    assert_int_equal(r.fd, -ETIMEDOUT);
    assert_true(dt >= 1900);
    assert_true(dt < 10000);
    assert_int_equal(tu_count_fds(), before);
    assert_int_equal(uds_loop_run(l), 0); /* no timer left behind */
    for (int i = 0; i < nfill; i++)
        close(fill[i]);
    uds_listener_close(&srv);
    uds_loop_free(l);
    tu_rmtree(dir);
    free(dir);
}

/* ---- TCP ---------------------------------------------------------------------------- */

static void tcp_to_listener(const char *where)
{
    uds_loop *l;
    assert_int_equal(uds_loop_new(&l), 0);
    uds_addr a;
    parse(&a, where);
    uds_listener srv;
    int rc = uds_listen(&srv, &a, NULL);
    if (rc == -EADDRNOTAVAIL || rc == -EAFNOSUPPORT) {
        uds_loop_free(l);
        print_message("%s: no such local address here (%s), skipped\n", where,
                      uds_strerror(rc));
        skip();
    }
    assert_int_equal(rc, 0);
    struct res r;
    uds_connect_opts o = {.timeout_ms = 10000};
    assert_int_equal(start(NULL, l, &srv.addr, &o, &r), 0);
    assert_int_equal(r.calls, 0);
    run_until(l, &r.calls, 15000);
    assert_int_equal(r.calls, 1);
    assert_int_equal(r.inside_start, 0);
    check_connected_fd(r.fd);
    int s = uds_accept(srv.fd, NULL, 0);
    assert_true(s >= 0);
    assert_int_equal(uds_write_all(r.fd, "ping", 4), 4);
    char buf[4];
    assert_int_equal(uds_read_exact(s, buf, 4), 4);
    assert_memory_equal(buf, "ping", 4);
    close(s);
    close(r.fd);
    /* the handshake timer is gone with the operation */
    assert_int_equal(uds_loop_run(l), 0);
    uds_listener_close(&srv);
    uds_loop_free(l);
}

static void test_tcp_v4(void **state)
{
    (void)state;
    tcp_to_listener("tcp:127.0.0.1:0");
}

static void test_tcp_v6(void **state)
{
    (void)state;
    tcp_to_listener("tcp:[::1]:0");
}

/* A port that is bound but not listening: nobody can take it meanwhile, and
   the kernel answers SYNs to it with a reset. */
static void test_tcp_refused(void **state)
{
    (void)state;
    uds_loop *l;
    assert_int_equal(uds_loop_new(&l), 0);
    int b = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in sin = {.sin_family = AF_INET};
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(b, (struct sockaddr *)&sin, sizeof(sin)), 0);
    socklen_t sl = sizeof(sin);
    assert_int_equal(getsockname(b, (struct sockaddr *)&sin, &sl), 0);
    char text[64];
    snprintf(text, sizeof(text), "tcp:127.0.0.1:%u", (unsigned)ntohs(sin.sin_port));
    uds_addr a;
    parse(&a, text);
    int before = tu_count_fds();
    struct res r;
    assert_int_equal(start(NULL, l, &a, NULL, &r), 0);
    run_until(l, &r.calls, 15000);
    assert_int_equal(r.calls, 1);
    assert_int_equal(r.fd, -ECONNREFUSED);
    assert_int_equal(tu_count_fds(), before);
    close(b);
    uds_loop_free(l);
}

/*
 * A TCP listener with listen(fd, 0) that never accepts: once one client
 * sits in its accept queue, Linux drops further SYNs (whatever
 * tcp_syncookies says), so the next handshake hangs and the deadline
 * decides. Returns the listener; *filler is the client in the queue.
 */
static int hanging_tcp_listener(uds_addr *a, int *filler)
{
    int lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in sin = {.sin_family = AF_INET};
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(lfd, (struct sockaddr *)&sin, sizeof(sin)), 0);
    socklen_t sl = sizeof(sin);
    assert_int_equal(getsockname(lfd, (struct sockaddr *)&sin, &sl), 0);
    assert_int_equal(listen(lfd, 0), 0);
    char text[64];
    snprintf(text, sizeof(text), "tcp:127.0.0.1:%u", (unsigned)ntohs(sin.sin_port));
    parse(a, text);
    *filler = uds_connect(a, &(uds_connect_opts){.timeout_ms = 5000});
    assert_true(*filler >= 0);
    /* the accept queue holds it once the listener is readable */
    struct pollfd p = {lfd, POLLIN, 0};
    assert_int_equal(poll(&p, 1, 5000), 1);
    return lfd;
}

static void test_tcp_timeout(void **state)
{
    (void)state;
    uds_loop *l;
    assert_int_equal(uds_loop_new(&l), 0);
    uds_addr a;
    int filler;
    int lfd = hanging_tcp_listener(&a, &filler);
    int before = tu_count_fds();
    struct res r;
    uds_connect_opts o = {.timeout_ms = 300};
    uint64_t t0 = tu_now_ms();
    assert_int_equal(start(NULL, l, &a, &o, &r), 0);
    run_until(l, &r.calls, 15000);
    uint64_t dt = r.at_ms - t0;
    print_message("TCP handshake into a full accept queue: %s after %llu ms\n",
                  r.fd >= 0 ? "CONNECTED" : uds_strerror(r.fd), (unsigned long long)dt);
    assert_int_equal(r.calls, 1);
    assert_int_equal(r.fd, -ETIMEDOUT);
    assert_true(dt >= 250);
    assert_true(dt < 3000);
    assert_int_equal(tu_count_fds(), before);
    assert_int_equal(uds_loop_run(l), 0); /* watcher and timer gone */
    close(filler);
    close(lfd);
    uds_loop_free(l);
}

/* ---- cancel ------------------------------------------------------------------------------ */

/* Cancelled while backing off on a full unix backlog, and while a TCP
   handshake is pending: no callback, no fd left, nothing left on the loop. */
static void test_cancel_pending(void **state)
{
    (void)state;
    char *dir = tu_tmpdir();
    uds_loop *l;
    assert_int_equal(uds_loop_new(&l), 0);
    uds_listener srv;
    int fill[64], nfill;
    fill_unix_backlog(&srv, dir, fill, &nfill);
    int before = tu_count_fds();
    struct res r;
    uds_connect_op *op = NULL;
    assert_int_equal(start(&op, l, &srv.addr, NULL, &r), 0);
    assert_non_null(op);
    run_for(l, 60); /* a few retries */
    assert_int_equal(r.calls, 0);
    uds_connect_cancel(op);
    assert_int_equal(tu_count_fds(), before);
    alarm(30);
    assert_int_equal(uds_loop_run(l), 0); /* the retry timer is gone */
    alarm(0);
    assert_int_equal(r.calls, 0);
    for (int i = 0; i < nfill; i++)
        close(fill[i]);
    uds_listener_close(&srv);

    uds_addr a;
    int filler;
    int lfd = hanging_tcp_listener(&a, &filler);
    before = tu_count_fds();
    uds_connect_opts o = {.timeout_ms = 5000};
    assert_int_equal(start(&op, l, &a, &o, &r), 0);
    assert_int_equal(tu_count_fds(), before + 1);
    run_for(l, 30);
    assert_int_equal(r.calls, 0);
    uds_connect_cancel(op);
    assert_int_equal(tu_count_fds(), before);
    alarm(30);
    assert_int_equal(uds_loop_run(l), 0); /* watcher and timer are gone */
    alarm(0);
    assert_int_equal(r.calls, 0);
    close(filler);
    close(lfd);
    uds_loop_free(l);
    tu_rmtree(dir);
    free(dir);
}

/* Cancelled after the immediate success was queued (deferred delivery). */
static void test_cancel_queued(void **state)
{
    (void)state;
    char *dir = tu_tmpdir();
    uds_loop *l;
    assert_int_equal(uds_loop_new(&l), 0);
    uds_addr a;
    parse(&a, tu_path(dir, "q.sock"));
    uds_listener srv;
    assert_int_equal(uds_listen(&srv, &a, NULL), 0);
    int before = tu_count_fds();
    struct res r;
    uds_connect_op *op = NULL;
    assert_int_equal(start(&op, l, &a, NULL, &r), 0);
    assert_int_equal(tu_count_fds(), before + 1); /* connected, queued */
    uds_connect_cancel(op);
    assert_int_equal(tu_count_fds(), before);
    assert_int_equal(uds_loop_run(l), 0);
    assert_int_equal(r.calls, 0);
    /* an immediate error queued and cancelled: same */
    uds_addr none;
    parse(&none, tu_path(dir, "none.sock"));
    assert_int_equal(start(&op, l, &none, NULL, &r), 0);
    uds_connect_cancel(op);
    assert_int_equal(uds_loop_run(l), 0);
    assert_int_equal(r.calls, 0);
    /* queued, then the loop is freed before it ran: cancel still holds */
    assert_int_equal(start(&op, l, &a, NULL, &r), 0);
    uds_connect_cancel(op);
    uds_loop_free(l);
    assert_int_equal(r.calls, 0);
    assert_int_equal(tu_count_fds(), before - 2); /* the loop's epoll + eventfd */
    uds_listener_close(&srv);
    tu_rmtree(dir);
    free(dir);
}

/* ---- many at once ---------------------------------------------------------------------- */

#define NMANY 200

struct many {
    int done, ok, errors, inside_start, accepted;
    int listen_fd;
};
static struct many MANY;

static void many_cb(uds_loop *l, int fd, void *arg)
{
    (void)l;
    (void)arg;
    MANY.done++;
    MANY.inside_start |= in_start;
    if (fd >= 0) {
        MANY.ok++;
        close(fd);
    } else {
        MANY.errors++;
        print_message("connect failed: %s\n", uds_strerror(fd));
    }
}

static void many_accept(uds_loop *l, int fd, unsigned ev, void *arg)
{
    (void)l;
    (void)ev;
    (void)arg;
    for (int i = 0; i < 4; i++) { /* a slow server: a few per round */
        int c = uds_accept(fd, NULL, UDS_NONBLOCK);
        if (c < 0)
            break;
        MANY.accepted++;
        close(c);
    }
}

/* 200 concurrent connects to a listener with a backlog of 8 that accepts a
   few per round: most meet a full backlog at first; all get through. */
static void test_many_concurrent(void **state)
{
    (void)state;
    char *dir = tu_tmpdir();
    uds_loop *l;
    assert_int_equal(uds_loop_new(&l), 0);
    uds_addr a;
    parse(&a, tu_path(dir, "many.sock"));
    uds_listen_opts lo = {.backlog = 8, .flags = UDS_NONBLOCK};
    uds_listener srv;
    assert_int_equal(uds_listen(&srv, &a, &lo), 0);
    assert_int_equal(uds_loop_watch(l, srv.fd, UDS_EV_READ, many_accept, NULL), 0);
    memset(&MANY, 0, sizeof(MANY));
    int before = tu_count_fds();
    uds_connect_opts o = {.timeout_ms = 60000};
    in_start = 1;
    for (int i = 0; i < NMANY; i++)
        assert_int_equal(uds_connect_start(NULL, l, &a, &o, many_cb, NULL), 0);
    in_start = 0;
    int pending_after_start = NMANY - MANY.done;
    /* one round delivers the immediate successes only: the others met a
       full backlog and are backing off */
    assert_int_equal(uds_loop_run_once(l, 0), 0);
    int first_round = MANY.done;
    uint64_t t0 = tu_now_ms();
    while (MANY.done < NMANY && tu_now_ms() - t0 < 60000)
        assert_int_equal(uds_loop_run_once(l, 50), 0);
    print_message("%d connects: %d at once, %d ok in %llu ms, %d accepted\n", NMANY,
                  first_round, MANY.ok, (unsigned long long)(tu_now_ms() - t0),
                  MANY.accepted);
    assert_int_equal(pending_after_start, NMANY);
    assert_true(first_round >= 1);
    assert_true(first_round < NMANY / 2);
    assert_int_equal(MANY.inside_start, 0);
    assert_int_equal(MANY.errors, 0);
    assert_int_equal(MANY.ok, NMANY);
    /* the last ones may still sit in the backlog */
    t0 = tu_now_ms();
    while (MANY.accepted < NMANY && tu_now_ms() - t0 < 10000)
        assert_int_equal(uds_loop_run_once(l, 50), 0);
    assert_int_equal(MANY.accepted, NMANY);
    assert_int_equal(tu_count_fds(), before);
    uds_loop_unwatch(l, srv.fd);
    uds_listener_close(&srv);
    uds_loop_free(l);
    tu_rmtree(dir);
    free(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_unix_immediate),
        cmocka_unit_test(test_unix_dgram_autobind),
        cmocka_unit_test(test_refused_and_missing),
        cmocka_unit_test(test_bad_arguments),
        cmocka_unit_test(test_prototype),
        cmocka_unit_test(test_wait_for_server),
        cmocka_unit_test(test_backlog_full_then_accepted),
        cmocka_unit_test(test_backlog_full_timeout),
        cmocka_unit_test(test_tcp_v4),
        cmocka_unit_test(test_tcp_v6),
        cmocka_unit_test(test_tcp_refused),
        cmocka_unit_test(test_tcp_timeout),
        cmocka_unit_test(test_cancel_pending),
        cmocka_unit_test(test_cancel_queued),
        cmocka_unit_test(test_many_concurrent),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
