/*
 * test_fdpass.c — SCM_RIGHTS: 1..253 fds arrive close-on-exec and refer to
 * the files sent; too many for the receiver is a clean -EMSGSIZE with no
 * fd leaked (the dbus CVE-2020-12049 class of bug); stream and seqpacket.
 */
#include "testutil.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

/* n distinct files (memfds, NOT close-on-exec, to prove the receiver's
   flag comes from MSG_CMSG_CLOEXEC and not from the sender). */
static void make_files(int *fds, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        fds[i] = memfd_create("fdpass", 0);
        assert_true(fds[i] >= 0);
        assert_false(fcntl(fds[i], F_GETFD) & FD_CLOEXEC);
    }
}

static void close_all(int *fds, size_t n)
{
    for (size_t i = 0; i < n; i++)
        close(fds[i]);
}

/* Each received fd is CLOEXEC and is the same file as the one sent. */
static void same_files(const int *sent, const int *got, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        struct stat a, b;
        assert_int_equal(fstat(sent[i], &a), 0);
        assert_int_equal(fstat(got[i], &b), 0);
        assert_int_equal(a.st_ino, b.st_ino);
        assert_int_equal(a.st_dev, b.st_dev);
        int fl = fcntl(got[i], F_GETFD);
        assert_true(fl >= 0 && (fl & FD_CLOEXEC));
        assert_true(got[i] != sent[i]);
    }
}

static void pass_n(int type, size_t n)
{
    int sv[2];
    assert_int_equal(uds_pair(type, 0, sv), 0);
    int *fds = calloc(UDS_MAX_FDS, sizeof(int)), *got = calloc(UDS_MAX_FDS, sizeof(int));
    assert_non_null(fds);
    assert_non_null(got);
    make_files(fds, n);
    int before = tu_count_fds();
    assert_int_equal(uds_send_fds(sv[0], "F", 1, fds, n), 1);
    char b[4];
    size_t cap = n;
    assert_int_equal(uds_recv_fds(sv[1], b, sizeof(b), got, &cap), 1);
    assert_int_equal(b[0], 'F');
    assert_int_equal(cap, n);
    assert_int_equal(tu_count_fds(), before + (int)n);
    same_files(fds, got, n);
    close_all(got, n);
    assert_int_equal(tu_count_fds(), before);
    /* a larger capacity than needed is fine too */
    assert_int_equal(uds_send_fds(sv[0], "G", 1, fds, n), 1);
    cap = UDS_MAX_FDS;
    assert_int_equal(uds_recv_fds(sv[1], b, sizeof(b), got, &cap), 1);
    assert_int_equal(cap, n);
    same_files(fds, got, n);
    close_all(got, n);
    close_all(fds, n);
    close(sv[0]);
    close(sv[1]);
    free(fds);
    free(got);
}

static void test_pass_stream(void **state)
{
    (void)state;
    pass_n(UDS_STREAM, 1);
    pass_n(UDS_STREAM, 16);
    pass_n(UDS_STREAM, 253);
}

static void test_pass_seqpacket(void **state)
{
    (void)state;
    pass_n(UDS_SEQPACKET, 1);
    pass_n(UDS_SEQPACKET, 16);
    pass_n(UDS_SEQPACKET, 253);
}

static void test_pass_dgram(void **state)
{
    (void)state;
    pass_n(UDS_DGRAM, 1);
    pass_n(UDS_DGRAM, 253);
}

static void test_send_limits(void **state)
{
    (void)state;
    int sv[2];
    assert_int_equal(uds_pair(UDS_STREAM, 0, sv), 0);
    int fds[254];
    for (int i = 0; i < 254; i++)
        fds[i] = sv[0];
    assert_int_equal(uds_send_fds(sv[0], "x", 1, fds, 254), -EINVAL);
    assert_int_equal(uds_send_fds(sv[0], "x", 0, fds, 1), -EINVAL); /* no data */
    assert_int_equal(uds_send_fds(sv[0], "x", 1, NULL, 1), -EINVAL);
    uds_msg m;
    memset(&m, 0, sizeof(m));
    m.buf = "x";
    m.send_cred = 1;
    assert_int_equal(uds_sendmsg(sv[0], &m), -EINVAL); /* cred without data */
    assert_int_equal(uds_sendmsg(sv[0], NULL), -EINVAL);
    /* nothing was sent by the refused calls */
    char b;
    assert_int_equal(uds_set_nonblock(sv[1], 1), 0);
    assert_int_equal(uds_read_some(sv[1], &b, 1), -EAGAIN);
    /* a bad fd in the list: the kernel's -EBADF, nothing sent */
    int bad = 9999;
    assert_int_equal(uds_send_fds(sv[0], "x", 1, &bad, 1), -EBADF);
    assert_int_equal(uds_read_some(sv[1], &b, 1), -EAGAIN);
    close(sv[0]);
    close(sv[1]);
}

/*
 * The receiver has room for `cap` fds; the sender passes `n` > cap. The call
 * fails with -EMSGSIZE, reports 0 fds, and the process has exactly as many
 * fds open as before the receive. The connection stays usable.
 */
static int passcred; /* the receiver asks for SCM_CREDENTIALS too */

static void overflow(int type, size_t n, size_t cap)
{
    int sv[2];
    assert_int_equal(uds_pair(type, 0, sv), 0);
    int one = 1;
    if (passcred)
        assert_int_equal(setsockopt(sv[1], SOL_SOCKET, SO_PASSCRED, &one, sizeof(one)), 0);
    int *fds = calloc(UDS_MAX_FDS, sizeof(int)), *got = calloc(UDS_MAX_FDS + 1, sizeof(int));
    assert_non_null(fds);
    assert_non_null(got);
    make_files(fds, n);
    assert_int_equal(uds_send_fds(sv[0], "T", 1, fds, n), 1);
    close_all(fds, n); /* the in-flight copies are the only ones left */
    int before = tu_count_fds();
    for (size_t i = 0; i <= cap; i++)
        got[i] = -7;
    char b[4];
    size_t c = cap;
    ssize_t r = uds_recv_fds(sv[1], b, sizeof(b), cap ? got : NULL, &c);
    if (r != -EMSGSIZE)
        fail_msg("type %d n=%zu cap=%zu: got %zd, want -EMSGSIZE", type, n, cap, r);
    assert_int_equal(c, 0);
    assert_int_equal(tu_count_fds(), before); /* zero fds leaked */
    /* the connection still works afterwards */
    assert_int_equal(uds_write_all(sv[0], "ok", 2), 2);
    char ok[2];
    if (type == UDS_STREAM) {
        assert_int_equal(uds_read_exact(sv[1], ok, 2), 2);
    } else {
        assert_int_equal(uds_read_some(sv[1], ok, 2), 2);
    }
    assert_memory_equal(ok, "ok", 2);
    assert_int_equal(tu_count_fds(), before);
    close(sv[0]);
    close(sv[1]);
    free(fds);
    free(got);
}

static void test_overflow(void **state)
{
    (void)state;
    int types[] = {UDS_STREAM, UDS_SEQPACKET, UDS_DGRAM};
    for (int t = 0; t < 3; t++) {
        overflow(types[t], 1, 0);
        overflow(types[t], 2, 1);   /* fits in the spare credential room */
        overflow(types[t], 16, 1);
        overflow(types[t], 16, 15);
        overflow(types[t], 253, 16);
        overflow(types[t], 253, 252);
    }
}

/*
 * With SO_PASSCRED on the receiver the credentials header takes the spare
 * room first, and an even cap leaves the SCM_RIGHTS header exactly cap fds:
 * the kernel drops the rest and says so only by MSG_CTRUNC (the count of
 * fds that came is not over cap). Still -EMSGSIZE, nothing leaked.
 */
static void test_overflow_with_creds(void **state)
{
    (void)state;
    int types[] = {UDS_STREAM, UDS_SEQPACKET, UDS_DGRAM};
    passcred = 1;
    for (int t = 0; t < 3; t++) {
        overflow(types[t], 3, 2);
        overflow(types[t], 5, 4);
        overflow(types[t], 17, 16);
        overflow(types[t], 2, 1);
    }
    passcred = 0;
}

/* A datagram longer than the buffer (MSG_TRUNC) carrying fds: same rule. */
static void test_truncated_datagram(void **state)
{
    (void)state;
    int types[] = {UDS_SEQPACKET, UDS_DGRAM};
    for (int t = 0; t < 2; t++) {
        int sv[2];
        assert_int_equal(uds_pair(types[t], 0, sv), 0);
        int fds[4];
        make_files(fds, 4);
        assert_int_equal(uds_send_fds(sv[0], "0123456789", 10, fds, 4), 10);
        close_all(fds, 4);
        int before = tu_count_fds();
        int got[8];
        size_t c = 8;
        char b[4];
        assert_int_equal(uds_recv_fds(sv[1], b, sizeof(b), got, &c), -EMSGSIZE);
        assert_int_equal(c, 0);
        assert_int_equal(tu_count_fds(), before);
        close(sv[0]);
        close(sv[1]);
    }
}

/* On a stream, fds travel with the data they were sent with. */
static void test_stream_boundaries(void **state)
{
    (void)state;
    int sv[2];
    assert_int_equal(uds_pair(UDS_STREAM, 0, sv), 0);
    int fds[2];
    make_files(fds, 2);
    assert_int_equal(uds_send_fds(sv[0], "withfds", 7, fds, 2), 7);
    assert_int_equal(uds_write_all(sv[0], "plain", 5), 5);
    /* a read ends with the segment that carried the fds */
    char b[64];
    int got[4];
    size_t c = 4;
    assert_int_equal(uds_recv_fds(sv[1], b, sizeof(b), got, &c), 7);
    assert_int_equal(c, 2);
    assert_memory_equal(b, "withfds", 7);
    size_t c2 = 4;
    int none[4];
    assert_int_equal(uds_recv_fds(sv[1], b, sizeof(b), none, &c2), 5);
    assert_int_equal(c2, 0);
    assert_memory_equal(b, "plain", 5);
    same_files(fds, got, 2);
    close_all(got, 2);
    close_all(fds, 2);
    /* end of stream: 0, no fds */
    close(sv[0]);
    c = 4;
    assert_int_equal(uds_recv_fds(sv[1], b, sizeof(b), got, &c), 0);
    assert_int_equal(c, 0);
    close(sv[1]);
}

/* fds between processes over a real listener, through uds_msg. */
static void test_over_listener(void **state)
{
    (void)state;
    char *dir = tu_tmpdir();
    assert_non_null(dir);
    uds_addr a;
    uds_listener l;
    uds_listen_opts o = {.type = UDS_SEQPACKET};
    assert_int_equal(uds_addr_parse(&a, tu_path(dir, "fd.sock")), 0);
    assert_int_equal(uds_listen(&l, &a, &o), 0);
    uds_connect_opts co = {.type = UDS_SEQPACKET};
    int c = uds_connect(&a, &co);
    assert_true(c >= 0);
    assert_true(fcntl(c, F_GETFD) & FD_CLOEXEC);
    int s = uds_accept(l.fd, NULL, 0);
    assert_true(s >= 0);
    assert_true(fcntl(s, F_GETFD) & FD_CLOEXEC);

    int fds[3];
    make_files(fds, 3);
    assert_int_equal(write(fds[1], "content", 7), 7);
    uds_msg m;
    memset(&m, 0, sizeof(m));
    m.buf = "hdr";
    m.len = 3;
    m.fds = fds;
    m.nfds = 3;
    assert_int_equal(uds_sendmsg(c, &m), 3);
    int got[3];
    char b[8];
    memset(&m, 0, sizeof(m));
    m.buf = b;
    m.len = sizeof(b);
    m.fds = got;
    m.fds_cap = 3;
    assert_int_equal(uds_recvmsg(s, &m, 0), 3);
    assert_int_equal(m.nfds, 3);
    same_files(fds, got, 3);
    char rd[8];
    assert_int_equal(pread(got[1], rd, 7, 0), 7);
    assert_memory_equal(rd, "content", 7);
    close_all(got, 3);
    close_all(fds, 3);
    /* non-blocking receive with nothing there */
    memset(&m, 0, sizeof(m));
    m.buf = b;
    m.len = sizeof(b);
    assert_int_equal(uds_recvmsg(s, &m, MSG_DONTWAIT), -EAGAIN);
    close(c);
    close(s);
    uds_listener_close(&l);
    tu_rmtree(dir);
    free(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pass_stream),
        cmocka_unit_test(test_pass_seqpacket),
        cmocka_unit_test(test_pass_dgram),
        cmocka_unit_test(test_send_limits),
        cmocka_unit_test(test_overflow),
        cmocka_unit_test(test_overflow_with_creds),
        cmocka_unit_test(test_truncated_datagram),
        cmocka_unit_test(test_stream_boundaries),
        cmocka_unit_test(test_over_listener),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
