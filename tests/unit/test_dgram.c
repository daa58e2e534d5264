/*
 * test_dgram.c — datagrams that just work: replies reach a client that never
 * bound a path (autobind), unbound senders are accepted and reported as
 * unnamed, connected datagram sockets, truncation is visible, and
 * seqpacket keeps message boundaries.
 */
#include "testutil.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char *dir;
static uds_addr srv_addr;
static uds_listener srv;

static int setup(void **state)
{
    (void)state;
    dir = tu_tmpdir();
    if (!dir || uds_addr_parse(&srv_addr, tu_path(dir, "d.sock")) < 0)
        return -1;
    uds_listen_opts o = {.type = UDS_DGRAM};
    return uds_listen(&srv, &srv_addr, &o) == 0 ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    uds_listener_close(&srv);
    tu_rmtree(dir);
    free(dir);
    return 0;
}

static int entries(const char *d)
{
    DIR *dd = opendir(d);
    int n = 0;
    struct dirent *e;
    while ((e = readdir(dd)))
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
            n++;
    closedir(dd);
    return n;
}

static void assert_cloexec(int fd)
{
    int fl = fcntl(fd, F_GETFD);
    assert_true(fl >= 0 && (fl & FD_CLOEXEC));
}

/* Waits up to 2 s for fd to be readable (so a lost datagram fails, not hangs). */
static void readable(int fd)
{
    struct pollfd p = {fd, POLLIN, 0};
    assert_int_equal(poll(&p, 1, 2000), 1);
}

static void test_autobind_reply(void **state)
{
    (void)state;
    assert_cloexec(srv.fd);
    assert_int_equal(uds_sock_type(srv.fd), UDS_DGRAM);
    int before = entries(dir);
    uds_connect_opts o = {.type = UDS_DGRAM};
    int c = uds_connect(&srv_addr, &o);
    assert_true(c >= 0);
    assert_cloexec(c);
    assert_false(fcntl(c, F_GETFL) & O_NONBLOCK);
    uds_addr mine;
    assert_int_equal(uds_local_addr(c, &mine), 0);
    assert_int_equal(mine.kind, UDS_ADDR_ABSTRACT);

    assert_int_equal(uds_send(c, "ping", 4), 4);
    char b[64];
    uds_addr from;
    readable(srv.fd);
    assert_int_equal(uds_recvfrom(srv.fd, b, sizeof(b), &from, 0), 4);
    assert_memory_equal(b, "ping", 4);
    assert_int_equal(from.kind, UDS_ADDR_ABSTRACT);
    assert_true(uds_addr_equal(&from, &mine));
    assert_int_equal(uds_sendto(srv.fd, "pong", 4, &from), 4);
    readable(c);
    assert_int_equal(uds_recvfrom(c, b, sizeof(b), NULL, 0), 4);
    assert_memory_equal(b, "pong", 4);
    assert_int_equal(entries(dir), before); /* no path was bound anywhere */
    close(c);

    /* the same with an unconnected socket from uds_dgram_socket */
    int u = uds_dgram_socket(AF_UNIX, 0);
    assert_true(u >= 0);
    assert_cloexec(u);
    assert_int_equal(uds_sendto(u, "hi", 2, &srv_addr), 2);
    readable(srv.fd);
    assert_int_equal(uds_recvfrom(srv.fd, b, sizeof(b), &from, 0), 2);
    assert_int_equal(from.kind, UDS_ADDR_ABSTRACT);
    assert_int_equal(uds_sendto(srv.fd, "HI", 2, &from), 2);
    readable(u);
    uds_addr back;
    assert_int_equal(uds_recvfrom(u, b, sizeof(b), &back, 0), 2);
    /* the source is the name the kernel recorded at bind (pinned bind:
       /proc/self/fd/DIRFD/d.sock) */
    uds_addr bound;
    assert_int_equal(uds_local_addr(srv.fd, &bound), 0);
    assert_true(uds_addr_equal(&back, &bound));
    close(u);
    /* non-blocking flag honoured */
    u = uds_dgram_socket(AF_UNIX, UDS_NONBLOCK);
    assert_true(u >= 0);
    assert_true(fcntl(u, F_GETFL) & O_NONBLOCK);
    assert_int_equal(uds_recvfrom(u, b, sizeof(b), NULL, 0), -EAGAIN);
    close(u);
}

static void test_unbound_sender(void **state)
{
    (void)state;
    char b[64];
    uds_addr from;
    /* a plain socket that never binds, as logger -u does */
    int s = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    assert_true(s >= 0);
    assert_int_equal(sendto(s, "<13>hello", 9, 0, &srv_addr.u.sa, srv_addr.len), 9);
    readable(srv.fd);
    assert_int_equal(uds_recvfrom(srv.fd, b, sizeof(b), &from, 0), 9);
    assert_memory_equal(b, "<13>hello", 9);
    assert_int_equal(from.kind, UDS_ADDR_UNNAMED);
    char name[UDS_ADDR_STRLEN];
    assert_int_equal(uds_addr_format(&from, name, sizeof(name)), 9);
    assert_string_equal(name, "(unnamed)");
    /* replying to an unnamed peer is not possible and says so */
    assert_true(uds_sendto(srv.fd, "x", 1, &from) < 0);
    close(s);

    /* the library's own opt-out of autobind gives the same */
    uds_connect_opts o = {.type = UDS_DGRAM, .flags = UDS_NO_AUTOBIND};
    int c = uds_connect(&srv_addr, &o);
    assert_true(c >= 0);
    assert_int_equal(uds_send(c, "x", 1), 1);
    readable(srv.fd);
    assert_int_equal(uds_recvfrom(srv.fd, b, sizeof(b), &from, 0), 1);
    assert_int_equal(from.kind, UDS_ADDR_UNNAMED);
    close(c);

    /* through uds_recvmsg the source is reported the same way */
    s = uds_dgram_socket(AF_UNIX, UDS_NO_AUTOBIND);
    assert_true(s >= 0);
    assert_int_equal(uds_sendto(s, "m", 1, &srv_addr), 1);
    uds_msg m;
    memset(&m, 0, sizeof(m));
    m.buf = b;
    m.len = sizeof(b);
    m.addr = &from;
    readable(srv.fd);
    assert_int_equal(uds_recvmsg(srv.fd, &m, 0), 1);
    assert_int_equal(from.kind, UDS_ADDR_UNNAMED);
    close(s);
}

static void test_connected(void **state)
{
    (void)state;
    /* a second datagram server with a path; a client connected to it */
    uds_addr a2;
    uds_listener l2;
    uds_listen_opts o = {.type = UDS_DGRAM};
    assert_int_equal(uds_addr_parse(&a2, tu_path(dir, "d2.sock")), 0);
    assert_int_equal(uds_listen(&l2, &a2, &o), 0);
    uds_connect_opts co = {.type = UDS_DGRAM};
    int c = uds_connect(&a2, &co);
    assert_true(c >= 0);
    /* send/write without an address go to the connected peer */
    assert_int_equal(uds_send(c, "one", 3), 3);
    assert_int_equal(uds_write_all(c, "two", 3), 3);
    assert_int_equal(uds_sendto(c, "three", 5, NULL), 5);
    char b[16];
    uds_addr from, mine;
    assert_int_equal(uds_local_addr(c, &mine), 0);
    const char *want[] = {"one", "two", "three"};
    for (int i = 0; i < 3; i++) {
        readable(l2.fd);
        ssize_t n = uds_recvfrom(l2.fd, b, sizeof(b), &from, 0);
        assert_int_equal(n, (ssize_t)strlen(want[i]));
        assert_memory_equal(b, want[i], (size_t)n);
        assert_true(uds_addr_equal(&from, &mine));
    }
    /* the peer answers; a stranger's datagram is refused by the kernel */
    assert_int_equal(uds_sendto(l2.fd, "ans", 3, &from), 3);
    readable(c);
    assert_int_equal(uds_read_some(c, b, sizeof(b)), 3);
    assert_int_equal(uds_sendto(srv.fd, "stranger", 8, &mine), -EPERM);
    /* the connected peer goes away: the next send reports it */
    uds_listener_close(&l2);
    assert_int_equal(uds_send(c, "x", 1), -ECONNREFUSED);
    close(c);
    /* connecting a datagram client to nothing */
    assert_int_equal(uds_connect(&a2, &co), -ENOENT);
    /* to a stream server: wrong type */
    uds_addr a3;
    uds_listener l3;
    assert_int_equal(uds_addr_parse(&a3, tu_path(dir, "s3.sock")), 0);
    assert_int_equal(uds_listen(&l3, &a3, NULL), 0);
    assert_int_equal(uds_connect(&a3, &co), -EPROTOTYPE);
    uds_listener_close(&l3);
}

static void test_truncation(void **state)
{
    (void)state;
    int c = uds_dgram_socket(AF_UNIX, 0);
    assert_true(c >= 0);
    char big[300];
    tu_fill(big, sizeof(big), 3);
    assert_int_equal(uds_sendto(c, big, sizeof(big), &srv_addr), (ssize_t)sizeof(big));
    char b[10];
    readable(srv.fd);
    ssize_t n = uds_recvfrom(srv.fd, b, sizeof(b), NULL, 0);
    assert_int_equal(n, 300); /* > len: truncated, and we know by how much */
    assert_memory_equal(b, big, sizeof(b));
    /* the rest of that datagram is gone; the next one is whole */
    assert_int_equal(uds_sendto(c, "next", 4, &srv_addr), 4);
    readable(srv.fd);
    assert_int_equal(uds_recvfrom(srv.fd, b, sizeof(b), NULL, 0), 4);
    assert_memory_equal(b, "next", 4);
    /* MSG_DONTWAIT on an empty blocking socket */
    assert_int_equal(uds_recvfrom(srv.fd, b, sizeof(b), NULL, MSG_DONTWAIT), -EAGAIN);
    /* uds_recvmsg: a truncated datagram is -EMSGSIZE */
    assert_int_equal(uds_sendto(c, big, sizeof(big), &srv_addr), (ssize_t)sizeof(big));
    uds_msg m;
    memset(&m, 0, sizeof(m));
    m.buf = b;
    m.len = sizeof(b);
    readable(srv.fd);
    assert_int_equal(uds_recvmsg(srv.fd, &m, 0), -EMSGSIZE);
    close(c);
}

static void test_seqpacket(void **state)
{
    (void)state;
    uds_addr a;
    uds_listener l;
    uds_listen_opts o = {.type = UDS_SEQPACKET};
    assert_int_equal(uds_addr_parse(&a, tu_path(dir, "sp.sock")), 0);
    assert_int_equal(uds_listen(&l, &a, &o), 0);
    assert_int_equal(uds_sock_type(l.fd), UDS_SEQPACKET);
    uds_connect_opts co = {.type = UDS_SEQPACKET};
    int c = uds_connect(&a, &co);
    assert_true(c >= 0);
    assert_cloexec(c);
    int s = uds_accept(l.fd, NULL, UDS_NONBLOCK);
    assert_true(s >= 0);
    assert_cloexec(s);
    assert_true(fcntl(s, F_GETFL) & O_NONBLOCK);
    size_t sizes[] = {1, 1000, 7, 50000, 3};
    char *msg = malloc(50000), *b = malloc(60000);
    assert_non_null(msg);
    assert_non_null(b);
    for (size_t i = 0; i < 5; i++) {
        tu_fill(msg, sizes[i], (uint32_t)i);
        assert_int_equal(uds_write_all(c, msg, sizes[i]), (ssize_t)sizes[i]);
    }
    for (size_t i = 0; i < 5; i++) {
        readable(s);
        ssize_t n = uds_read_some(s, b, 60000);
        assert_int_equal(n, (ssize_t)sizes[i]); /* one message per read */
        tu_fill(msg, sizes[i], (uint32_t)i);
        assert_memory_equal(b, msg, sizes[i]);
    }
    /* truncation is visible on seqpacket too */
    assert_int_equal(uds_write_all(c, msg, 100), 100);
    readable(s);
    assert_int_equal(uds_recvfrom(s, b, 10, NULL, 0), 100);
    /* end of connection */
    close(c);
    readable(s);
    assert_int_equal(uds_read_some(s, b, 10), 0);
    close(s);
    uds_listener_close(&l);
    free(msg);
    free(b);
}

/* Abstract datagram server: no file at all, same reply path. */
static void test_abstract_server(void **state)
{
    (void)state;
    char name[64];
    snprintf(name, sizeof(name), "@udsock-test-dgram-%d-%u", (int)getpid(), (unsigned)tu_now_ms());
    uds_addr a;
    uds_listener l;
    uds_listen_opts o = {.type = UDS_DGRAM};
    assert_int_equal(uds_addr_parse(&a, name), 0);
    assert_int_equal(uds_listen(&l, &a, &o), 0);
    uds_connect_opts co = {.type = UDS_DGRAM};
    int c = uds_connect(&a, &co);
    assert_true(c >= 0);
    assert_int_equal(uds_send(c, "q", 1), 1);
    uds_addr from;
    char b[4];
    readable(l.fd);
    assert_int_equal(uds_recvfrom(l.fd, b, sizeof(b), &from, 0), 1);
    assert_int_equal(uds_sendto(l.fd, "r", 1, &from), 1);
    readable(c);
    assert_int_equal(uds_read_some(c, b, sizeof(b)), 1);
    assert_int_equal(b[0], 'r');
    /* a second server on the same abstract name is refused */
    uds_listener l2;
    assert_int_equal(uds_listen(&l2, &a, &o), -EADDRINUSE);
    close(c);
    uds_listener_close(&l);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_autobind_reply, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unbound_sender, setup, teardown),
        cmocka_unit_test_setup_teardown(test_connected, setup, teardown),
        cmocka_unit_test_setup_teardown(test_truncation, setup, teardown),
        cmocka_unit_test_setup_teardown(test_seqpacket, setup, teardown),
        cmocka_unit_test_setup_teardown(test_abstract_server, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
