/*
 * test_conn_fds.c — fds and credentials on uds_conn: opt-in receiving
 * (on_anc before the bytes, `at` offsets, close-on-exec, real files), the
 * refusal of fds by conns that did not opt in (SO_PASSRIGHTS, and the
 * fallback where the kernel discards them: our fd count never grows, also
 * under an fd spam), MSG_CTRUNC, uds_conn_write_anc (fds with the bytes of
 * their own write, the conn's copies closed once sent or at close, the
 * caller's on failure, a partial write never sends them twice), and
 * SCM_CREDENTIALS (received, sent, refused by the kernel and sent without).
 */
// uds-test-timeout: 300
#include "testutil.h"
#include "internal.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <poll.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

/* ---- helpers ------------------------------------------------------------ */

#define MAXEV 32

struct ev {
    char kind; /* 'A' on_anc, 'D' on_data */
    size_t at;
    size_t nfds;
    int *fds;
    int has_cred;
    uds_cred cred;
    char data[64];
    size_t len;
};

struct rx {
    struct ev ev[MAXEV];
    int nev;
    size_t want;      /* stream: consume only once this much is buffered */
    int record;       /* keep events (else only counters) */
    int closed, close_err, eof;
    size_t bytes;     /* bytes (stream) or messages (packets) consumed */
    size_t msgs;
    size_t anc_calls, anc_fds, anc_creds;
    int fd_base;      /* check_fds: our fd count must never exceed this */
    int fd_max;       /* the most seen at any on_data */
    int check_fds;
};

static void rx_free(struct rx *r)
{
    for (int i = 0; i < r->nev; i++) {
        for (size_t k = 0; k < r->ev[i].nfds; k++)
            close(r->ev[i].fds[k]);
        free(r->ev[i].fds);
    }
    free(r);
}

static struct rx *rx_new(void)
{
    struct rx *r = calloc(1, sizeof(*r));
    assert_non_null(r);
    r->record = 1;
    r->fd_max = -1;
    return r;
}

static void rx_anc(uds_conn *c, const uds_anc *a, void *arg)
{
    (void)c;
    struct rx *r = arg;
    r->anc_calls++;
    r->anc_fds += a->nfds;
    r->anc_creds += a->has_cred != 0;
    if (!r->record || r->nev == MAXEV) {
        for (size_t i = 0; i < a->nfds; i++)
            close(a->fds[i]);
        return;
    }
    struct ev *e = &r->ev[r->nev++];
    e->kind = 'A';
    e->at = a->at;
    e->nfds = a->nfds;
    e->fds = calloc(a->nfds ? a->nfds : 1, sizeof(int));
    assert_non_null(e->fds);
    memcpy(e->fds, a->fds, a->nfds * sizeof(int)); /* ours to close now */
    e->has_cred = a->has_cred;
    e->cred = a->cred;
}

static size_t rx_data(uds_conn *c, const void *d, size_t len, void *arg)
{
    (void)c;
    struct rx *r = arg;
    if (r->check_fds) {
        int n = tu_count_fds();
        if (n > r->fd_max)
            r->fd_max = n;
    }
    size_t used = r->want && len < r->want ? 0 : len;
    r->bytes += used;
    r->msgs++;
    if (r->record && r->nev < MAXEV) {
        struct ev *e = &r->ev[r->nev++];
        e->kind = 'D';
        e->len = len;
        memcpy(e->data, d, len < sizeof(e->data) ? len : sizeof(e->data));
    }
    return used;
}

static void rx_eof(uds_conn *c, void *arg)
{
    (void)c;
    ((struct rx *)arg)->eof = 1;
}

static void rx_close(uds_conn *c, int err, void *arg)
{
    (void)c;
    struct rx *r = arg;
    r->closed = 1;
    r->close_err = err;
}

static const uds_conn_cbs rx_cbs = {
    .on_data = rx_data, .on_eof = rx_eof, .on_close = rx_close, .on_anc = rx_anc};
static const uds_conn_cbs rx_cbs_noanc = {
    .on_data = rx_data, .on_eof = rx_eof, .on_close = rx_close};

/* Runs the loop until *flag is nonzero (or `until` bytes/messages
   arrived), at most ms milliseconds. */
static void run_until(uds_loop *l, const int *flag, int ms)
{
    uint64_t end = tu_now_ms() + (uint64_t)ms;
    while (!*flag && tu_now_ms() < end)
        uds_loop_run_once(l, 20);
}

static void run_bytes(uds_loop *l, const struct rx *r, size_t n, int ms)
{
    uint64_t end = tu_now_ms() + (uint64_t)ms;
    while (r->bytes < n && !r->closed && tu_now_ms() < end)
        uds_loop_run_once(l, 20);
}

/* n distinct memfds, not close-on-exec (the receiver's flag must come from
   MSG_CMSG_CLOEXEC). */
static void make_files(int *fds, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        fds[i] = memfd_create("connfds", 0);
        assert_true(fds[i] >= 0);
    }
}

static void close_all(const int *fds, size_t n)
{
    for (size_t i = 0; i < n; i++)
        close(fds[i]);
}

static ino_t ino_of(int fd)
{
    struct stat st;
    assert_int_equal(fstat(fd, &st), 0);
    return st.st_ino;
}

/* got[i] is open, CLOEXEC, another number than sent[i], the same file. */
static void same_files(const int *sent, const int *got, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        assert_int_equal(ino_of(sent[i]), ino_of(got[i]));
        int fl = fcntl(got[i], F_GETFD);
        assert_true(fl >= 0 && (fl & FD_CLOEXEC));
        assert_true(got[i] != sent[i]);
    }
}

static int fd_open(int fd) { return fcntl(fd, F_GETFD) >= 0; }

static int passrights_of(int fd)
{
    int v = -1;
    socklen_t l = sizeof(v);
    if (getsockopt(fd, SOL_SOCKET, SO_PASSRIGHTS, &v, &l) < 0)
        return -errno;
    return v;
}

/* 1 if this kernel has SO_PASSRIGHTS (asked on a scratch socket). */
static int kernel_has_passrights(void)
{
    int s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true(s >= 0);
    int r = passrights_of(s);
    close(s);
    return r >= 0;
}

static void feature_set(int on)
{
    if (on)
        uds__features |= UDS__FEAT_PASSRIGHTS;
    else
        uds__features &= ~UDS__FEAT_PASSRIGHTS;
}

/* Restores the detected state after each test. */
static int teardown(void **state)
{
    (void)state;
    feature_set(1);
    return 0;
}

/* ---- (a) stream: on_anc order, `at`, real fds ----------------------------- */

static void test_stream_receive(void **state)
{
    (void)state;
    int base = tu_count_fds();
    uds_loop *l;
    assert_int_equal(uds_loop_new(&l), 0);
    int sv[2];
    assert_int_equal(uds_pair(UDS_STREAM, 0, sv), 0);
    struct rx *r = rx_new();
    r->want = 4; /* nothing consumed before "abcd": tests both input paths */
    uds_conn_opts o = {.flags = UDS_CONN_FDS};
    uds_conn *c;
    assert_int_equal(uds_conn_new(&c, l, sv[0], &o, &rx_cbs, r), 0);
    assert_int_equal(passrights_of(sv[0]) == 0, 0); /* on (or unknown) */

    int pp[2];
    assert_int_equal(pipe2(pp, 0), 0);
    int f16[16], f253[UDS_MAX_FDS];
    make_files(f16, 16);
    make_files(f253, UDS_MAX_FDS);
    assert_int_equal(uds_send_fds(sv[1], "a", 1, &pp[0], 1), 1);
    assert_int_equal(uds_send_fds(sv[1], "bc", 2, f16, 16), 2);
    assert_int_equal(uds_send_fds(sv[1], "d", 1, f253, UDS_MAX_FDS), 1);
    /* one wakeup reads all three: a read cut short by fds does not mean
       the socket is drained */
    uds_loop_run_once(l, 5000);
    assert_int_equal(r->bytes, 4);

    /* A(at 0, 1 fd) D("a") A(at 1, 16) D("abc") A(at 3, 253) D("abcd") */
    assert_int_equal(r->nev, 6);
    size_t want_at[3] = {0, 1, 3}, want_n[3] = {1, 16, UDS_MAX_FDS};
    const char *want_d[3] = {"a", "abc", "abcd"};
    for (int i = 0; i < 3; i++) {
        struct ev *a = &r->ev[2 * i], *d = &r->ev[2 * i + 1];
        assert_int_equal(a->kind, 'A');
        assert_int_equal(a->at, want_at[i]);
        assert_int_equal(a->nfds, want_n[i]);
        assert_int_equal(a->has_cred, 0);
        assert_int_equal(d->kind, 'D');
        assert_int_equal(d->len, strlen(want_d[i]));
        assert_memory_equal(d->data, want_d[i], d->len);
    }
    same_files(&pp[0], r->ev[0].fds, 1);
    same_files(f16, r->ev[2].fds, 16);
    same_files(f253, r->ev[4].fds, UDS_MAX_FDS);
    /* the pipe works through the received fd */
    assert_int_equal(write(pp[1], "through", 7), 7);
    char b[8];
    assert_int_equal(read(r->ev[0].fds[0], b, 7), 7);
    assert_memory_equal(b, "through", 7);

    close_all(pp, 2);
    close_all(f16, 16);
    close_all(f253, UDS_MAX_FDS);
    uds_conn_close(c);
    uds_loop_run_once(l, 0);
    assert_true(r->closed);
    rx_free(r);
    close(sv[1]);
    uds_loop_free(l);
    assert_int_equal(tu_count_fds(), base);
}

/* ---- (b) packet sockets: one on_anc per message --------------------------- */

static void packet_receive(int type)
{
    int base = tu_count_fds();
    uds_loop *l;
    assert_int_equal(uds_loop_new(&l), 0);
    int sv[2];
    assert_int_equal(uds_pair(type, 0, sv), 0);
    struct rx *r = rx_new();
    uds_conn_opts o = {.flags = UDS_CONN_FDS};
    uds_conn *c;
    assert_int_equal(uds_conn_new(&c, l, sv[0], &o, &rx_cbs, r), 0);
    int f1[1], f16[16], f253[UDS_MAX_FDS];
    make_files(f1, 1);
    make_files(f16, 16);
    make_files(f253, UDS_MAX_FDS);
    assert_int_equal(uds_send_fds(sv[1], "a", 1, f1, 1), 1);
    assert_int_equal(uds_write_all(sv[1], "plain", 5), 5);
    assert_int_equal(uds_send_fds(sv[1], "bc", 2, f16, 16), 2);
    assert_int_equal(uds_send_fds(sv[1], "d", 1, f253, UDS_MAX_FDS), 1);
    uint64_t end = tu_now_ms() + 5000;
    while (r->msgs < 4 && tu_now_ms() < end)
        uds_loop_run_once(l, 20);
    /* A D("a") D("plain") A D("bc") A D("d") */
    assert_int_equal(r->nev, 7);
    const char kinds[] = "ADDADAD";
    for (int i = 0; i < 7; i++)
        assert_int_equal(r->ev[i].kind, kinds[i]);
    assert_int_equal(r->ev[0].at, 0);
    assert_int_equal(r->ev[3].at, 0);
    assert_int_equal(r->ev[5].at, 0);
    assert_memory_equal(r->ev[1].data, "a", 1);
    assert_memory_equal(r->ev[2].data, "plain", 5);
    assert_memory_equal(r->ev[4].data, "bc", 2);
    assert_memory_equal(r->ev[6].data, "d", 1);
    assert_int_equal(r->ev[0].nfds, 1);
    assert_int_equal(r->ev[3].nfds, 16);
    assert_int_equal(r->ev[5].nfds, UDS_MAX_FDS);
    same_files(f1, r->ev[0].fds, 1);
    same_files(f16, r->ev[3].fds, 16);
    same_files(f253, r->ev[5].fds, UDS_MAX_FDS);
    close_all(f1, 1);
    close_all(f16, 16);
    close_all(f253, UDS_MAX_FDS);
    uds_conn_close(c);
    uds_loop_run_once(l, 0);
    rx_free(r);
    close(sv[1]);
    uds_loop_free(l);
    assert_int_equal(tu_count_fds(), base);
}

static void test_packet_receive(void **state)
{
    (void)state;
    packet_receive(UDS_SEQPACKET);
    packet_receive(UDS_DGRAM);
}

/* With UDS_CONN_FDS but no on_anc, fds are closed at once. */
static void test_no_on_anc(void **state)
{
    (void)state;
    uds_loop *l;
    assert_int_equal(uds_loop_new(&l), 0);
    int sv[2];
    assert_int_equal(uds_pair(UDS_STREAM, 0, sv), 0);
    struct rx *r = rx_new();
    uds_conn_opts o = {.flags = UDS_CONN_FDS};
    uds_conn *c;
    assert_int_equal(uds_conn_new(&c, l, sv[0], &o, &rx_cbs_noanc, r), 0);
    int f[8];
    make_files(f, 8);
    int base = tu_count_fds();
    assert_int_equal(uds_send_fds(sv[1], "xy", 2, f, 8), 2);
    run_bytes(l, r, 2, 5000);
    assert_int_equal(r->bytes, 2);
    assert_int_equal(tu_count_fds(), base);
    close_all(f, 8);
    uds_conn_close(c);
    uds_loop_run_once(l, 0);
    rx_free(r);
    close(sv[1]);
    uds_loop_free(l);
}

/* ---- (c) a conn without UDS_CONN_FDS never gets an fd --------------------- */

/* SO_PASSRIGHTS path: the sender's sendmsg fails with EPERM. */
static void refused(int type)
{
    uds_loop *l;
    assert_int_equal(uds_loop_new(&l), 0);
    int sv[2];
    assert_int_equal(uds_pair(type, 0, sv), 0);
    struct rx *r = rx_new();
    uds_conn *c;
    assert_int_equal(uds_conn_new(&c, l, sv[0], NULL, &rx_cbs, r), 0);
    assert_int_equal(passrights_of(sv[0]), 0);
    int f[3];
    make_files(f, 3);
    int base = tu_count_fds();
    assert_int_equal(uds_send_fds(sv[1], "x", 1, f, 3), -EPERM);
    assert_int_equal(uds_write_all(sv[1], "y", 1), 1); /* data alone is fine */
    run_bytes(l, r, 1, 5000);
    assert_int_equal(r->bytes, 1);
    assert_int_equal(r->ev[0].kind, 'D');
    assert_memory_equal(r->ev[0].data, "y", 1);
    assert_int_equal(r->anc_calls, 0);
    assert_int_equal(tu_count_fds(), base);
    close_all(f, 3);
    uds_conn_close(c);
    uds_loop_run_once(l, 0);
    rx_free(r);
    close(sv[1]);
    uds_loop_free(l);
}

static void test_refused_passrights(void **state)
{
    (void)state;
    if (!kernel_has_passrights()) {
        /* the first conn finds out and clears the bit: the fallback */
        int sv[2];
        uds_loop *l;
        uds_conn *c;
        struct rx *r = rx_new();
        assert_int_equal(uds_loop_new(&l), 0);
        assert_int_equal(uds_pair(UDS_STREAM, 0, sv), 0);
        assert_int_equal(uds_conn_new(&c, l, sv[0], NULL, &rx_cbs, r), 0);
        assert_false(uds__features & UDS__FEAT_PASSRIGHTS);
        uds_conn_close(c);
        uds_loop_run_once(l, 0);
        rx_free(r);
        close(sv[1]);
        uds_loop_free(l);
        skip();
        return;
    }
    refused(UDS_STREAM);
    refused(UDS_SEQPACKET);
    refused(UDS_DGRAM);
    /* the flag turns it back on, whatever the fd came with */
    int sv[2];
    uds_loop *l;
    uds_conn *c;
    struct rx *r = rx_new();
    assert_int_equal(uds_loop_new(&l), 0);
    assert_int_equal(uds_pair(UDS_STREAM, 0, sv), 0);
    int zero = 0;
    assert_int_equal(setsockopt(sv[0], SOL_SOCKET, SO_PASSRIGHTS, &zero, sizeof(zero)), 0);
    uds_conn_opts o = {.flags = UDS_CONN_FDS};
    assert_int_equal(uds_conn_new(&c, l, sv[0], &o, &rx_cbs, r), 0);
    assert_int_equal(passrights_of(sv[0]), 1);
    uds_conn_close(c);
    uds_loop_run_once(l, 0);
    rx_free(r);
    close(sv[1]);
    uds_loop_free(l);
}

/* Fallback (no SO_PASSRIGHTS): the send succeeds, the plain recv() makes
   the kernel discard the fds, none ever shows in our table. */
static void discarded(int type, int flags)
{
    uds_loop *l;
    assert_int_equal(uds_loop_new(&l), 0);
    int sv[2];
    assert_int_equal(uds_pair(type, 0, sv), 0);
    struct rx *r = rx_new();
    uds_conn_opts o = {.flags = flags};
    uds_conn *c;
    assert_int_equal(uds_conn_new(&c, l, sv[0], &o, &rx_cbs, r), 0);
    if (kernel_has_passrights())
        assert_int_equal(passrights_of(sv[0]), 1); /* left alone */
    int f[16];
    make_files(f, 16);
    int base = tu_count_fds();
    r->check_fds = 1;
    assert_int_equal(uds_send_fds(sv[1], "x", 1, f, 16), 1);
    assert_int_equal(uds_send_fds(sv[1], "y", 1, f, 1), 1);
    run_bytes(l, r, 2, 5000);
    uint64_t end = tu_now_ms() + 5000;
    while (r->msgs < 2 && tu_now_ms() < end)
        uds_loop_run_once(l, 20);
    assert_int_equal(r->bytes, 2);
    assert_false(r->closed);
    assert_int_equal(r->anc_fds, 0);
    /* credentials only: each read still reports them */
    assert_int_equal(r->anc_creds, (flags & UDS_CONN_CREDS) ? r->anc_calls : 0);
    if (flags & UDS_CONN_CREDS)
        assert_true(r->anc_calls >= 1);
    assert_true(r->fd_max <= base);
    assert_int_equal(tu_count_fds(), base);
    close_all(f, 16);
    uds_conn_close(c);
    uds_loop_run_once(l, 0);
    rx_free(r);
    close(sv[1]);
    uds_loop_free(l);
}

static void test_fallback_discards(void **state)
{
    (void)state;
    feature_set(0);
    discarded(UDS_STREAM, 0);
    discarded(UDS_SEQPACKET, 0);
    discarded(UDS_DGRAM, 0);
    /* (d) credentials only: the control buffer has room for the ucred
       alone, so MSG_CTRUNC; the bytes and credentials still arrive and
       the conn goes on */
    discarded(UDS_STREAM, UDS_CONN_CREDS);
    discarded(UDS_SEQPACKET, UDS_CONN_CREDS);
}

/*
 * The spammer: `n` messages of one byte, each with 253 copies of one fd.
 * expect_eperm: every send must fail with EPERM (SO_PASSRIGHTS), else every
 * send must succeed. Exit 0 on success.
 */
static pid_t spammer(int fd, int n, int expect_eperm)
{
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid)
        return pid;
    int m = memfd_create("spam", 0);
    if (m < 0)
        _exit(20);
    int fds[UDS_MAX_FDS];
    for (int i = 0; i < UDS_MAX_FDS; i++)
        fds[i] = m;
    for (int i = 0; i < n; i++) {
        ssize_t r;
        int tries = 0;
        /* not root: the user's in-flight fd limit may say "later" */
        while ((r = uds_send_fds(fd, "s", 1, fds, UDS_MAX_FDS)) == -ETOOMANYREFS &&
               tries++ < 10000)
            usleep(1000);
        if (expect_eperm ? r != -EPERM : r != 1) {
            fprintf(stderr, "spammer: send %d: %zd\n", i, r);
            _exit(21);
        }
    }
    if (uds_write_all(fd, "E", 1) != 1)
        _exit(22);
    _exit(0);
}

static void spam(int type, int flags, int expect_eperm)
{
    const int n = 1000;
    uds_loop *l;
    assert_int_equal(uds_loop_new(&l), 0);
    int sv[2];
    assert_int_equal(uds_pair(type, 0, sv), 0);
    struct rx *r = rx_new();
    r->record = 0;
    uds_conn_opts o = {.flags = flags};
    uds_conn *c;
    /* the conn first: SO_PASSRIGHTS must be off before the first send */
    assert_int_equal(uds_conn_new(&c, l, sv[0], &o, &rx_cbs, r), 0);
    pid_t pid = spammer(sv[1], n, expect_eperm);
    close(sv[1]);
    int base = tu_count_fds();
    r->check_fds = 1;
    size_t want = expect_eperm ? 1 : (size_t)n + 1;
    run_bytes(l, r, want, 120000);
    assert_int_equal(r->bytes, want);
    assert_int_equal(r->anc_fds, 0);
    assert_true(r->fd_max >= 0 && r->fd_max <= base);
    assert_int_equal(tu_count_fds(), base);
    int st;
    assert_int_equal(waitpid(pid, &st, 0), pid);
    assert_true(WIFEXITED(st));
    assert_int_equal(WEXITSTATUS(st), 0);
    uds_conn_close(c);
    uds_loop_run_once(l, 0);
    rx_free(r);
    uds_loop_free(l);
}

/* dbus-broker's test-fdspam in spirit: our fd count stays flat. */
static void test_fdspam(void **state)
{
    (void)state;
    feature_set(0);
    spam(UDS_STREAM, 0, 0);
    spam(UDS_SEQPACKET, 0, 0);
    spam(UDS_STREAM, UDS_CONN_CREDS, 0);
    feature_set(1);
    if (kernel_has_passrights()) {
        spam(UDS_STREAM, 0, 1);
        spam(UDS_SEQPACKET, UDS_CONN_CREDS, 1);
    }
}

/* ---- (d) MSG_CTRUNC on a UDS_CONN_FDS conn -------------------------------- */

static int highest_fd(void)
{
    DIR *d = opendir("/proc/self/fd");
    struct dirent *e;
    int hi = -1;
    if (!d)
        return -1;
    while ((e = readdir(d)))
        if (e->d_name[0] != '.' && atoi(e->d_name) > hi)
            hi = atoi(e->d_name);
    closedir(d);
    return hi;
}

/*
 * In a child: this process at RLIMIT_NOFILE, so the kernel installs only
 * some of the 253 fds and sets MSG_CTRUNC. The conn must close the ones it
 * got, not deliver the bytes, and close with -EMSGSIZE. Exit code 0 = ok.
 */
static void test_ctrunc_emfile(void **state)
{
    (void)state;
    TU_VALGRIND_SKIP("RLIMIT_NOFILE is valgrind's, not ours");
    int sv[2];
    assert_int_equal(uds_pair(UDS_STREAM, 0, sv), 0);
    int f[UDS_MAX_FDS];
    make_files(f, UDS_MAX_FDS);
    assert_int_equal(uds_send_fds(sv[1], "x", 1, f, UDS_MAX_FDS), 1);
    close_all(f, UDS_MAX_FDS); /* the in-flight copies are all there is */
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        close(sv[1]);
        uds_loop *l;
        uds_conn *c;
        struct rx *r = calloc(1, sizeof(*r));
        if (!r || uds_loop_new(&l) < 0)
            _exit(30);
        uds_conn_opts o = {.flags = UDS_CONN_FDS};
        if (uds_conn_new(&c, l, sv[0], &o, &rx_cbs, r) < 0)
            _exit(31);
        int before = tu_count_fds();
        struct rlimit old, low;
        if (getrlimit(RLIMIT_NOFILE, &old) < 0)
            _exit(32);
        low = old;
        low.rlim_cur = (rlim_t)highest_fd() + 1 + 3; /* room for 3 at most */
        if (setrlimit(RLIMIT_NOFILE, &low) < 0)
            _exit(33);
        uint64_t end = tu_now_ms() + 5000;
        while (!r->closed && tu_now_ms() < end)
            uds_loop_run_once(l, 20);
        if (setrlimit(RLIMIT_NOFILE, &old) < 0)
            _exit(34);
        if (!r->closed)
            _exit(35);
        if (r->close_err != -EMSGSIZE)
            _exit(36);
        if (r->anc_calls || r->msgs)
            _exit(37);
        if (tu_count_fds() != before - 1) /* only the conn's socket went */
            _exit(38);
        uds_loop_free(l);
        _exit(0);
    }
    close(sv[0]);
    int st;
    assert_int_equal(waitpid(pid, &st, 0), pid);
    assert_true(WIFEXITED(st));
    assert_int_equal(WEXITSTATUS(st), 0);
    char b;
    assert_int_equal(uds_read_exact(sv[1], &b, 1), 0); /* the conn closed */
    close(sv[1]);
}

/* ---- (e) uds_conn_write_anc ------------------------------------------------ */

static const uds_conn_cbs tx_cbs = {.on_data = rx_data, .on_close = rx_close,
                                    .on_eof = rx_eof};

/* Which of sets[k] (nsets of them, sizes ns[k]) has the inodes of got[]. */
static int match_set(const int *got, size_t n, ino_t sets[][4], const size_t *ns,
                     int nsets)
{
    for (int k = 0; k < nsets; k++) {
        if (ns[k] != n)
            continue;
        size_t i = 0;
        while (i < n && ino_of(got[i]) == sets[k][i])
            i++;
        if (i == n)
            return k;
    }
    return -1;
}

static void test_write_anc_stream(void **state)
{
    (void)state;
    int base = tu_count_fds();
    uds_loop *l;
    assert_int_equal(uds_loop_new(&l), 0);
    int sv[2];
    assert_int_equal(uds_pair(UDS_STREAM, 0, sv), 0);
    struct rx *r = rx_new();
    uds_conn *c;
    assert_int_equal(uds_conn_new(&c, l, sv[0], NULL, &tx_cbs, r), 0);
    int mid = tu_count_fds();
    int fa[2], fb[3];
    make_files(fa, 2);
    make_files(fb, 3);
    ino_t sets[2][4];
    size_t ns[2] = {2, 3};
    for (int i = 0; i < 2; i++)
        sets[0][i] = ino_of(fa[i]);
    for (int i = 0; i < 3; i++)
        sets[1][i] = ino_of(fb[i]);
    /* "p1" "AAAA"+fa "p2" "BBBB"+fb "p3", all queued in one round */
    struct iovec a[2] = {{"AA", 2}, {"AA", 2}}, b = {"BBBB", 4};
    assert_int_equal(uds_conn_write(c, "p1", 2), 0);
    assert_int_equal(uds_conn_write_anc(c, a, 2, fa, 2, NULL), 0);
    assert_int_equal(uds_conn_write(c, "p2", 2), 0);
    assert_int_equal(uds_conn_write_anc(c, &b, 1, fb, 3, NULL), 0);
    assert_int_equal(uds_conn_write(c, "p3", 2), 0);
    for (int i = 0; i < 10 && uds_conn_queued(c); i++)
        uds_loop_run_once(l, 10);
    assert_int_equal(uds_conn_queued(c), 0);
    /* the conn's copies are closed: only the receiver's will be open */
    assert_int_equal(tu_count_fds(), mid);

    const char *want = "p1AAAAp2BBBBp3";
    size_t first[2] = {2, 8}; /* where each fd write starts */
    char got[32];
    size_t have = 0;
    int seen[2] = {0, 0}, reads_with_fds = 0;
    assert_int_equal(uds_set_nonblock(sv[1], 1), 0);
    for (int i = 0; i < 20 && have < 14; i++) {
        int fds[UDS_MAX_FDS];
        uds_msg m;
        memset(&m, 0, sizeof(m));
        m.buf = got + have;
        m.len = sizeof(got) - have;
        m.fds = fds;
        m.fds_cap = UDS_MAX_FDS;
        ssize_t n = uds_recvmsg(sv[1], &m, 0);
        assert_true(n > 0);
        if (m.nfds) {
            reads_with_fds++;
            int k = match_set(fds, m.nfds, sets, ns, 2);
            assert_true(k >= 0);
            assert_false(seen[k]);
            seen[k] = 1;
            /* the first byte of that write is in this read */
            assert_true(first[k] >= have && first[k] < have + (size_t)n);
            close_all(fds, m.nfds);
        }
        have += (size_t)n;
    }
    assert_int_equal(have, 14);
    assert_memory_equal(got, want, 14);
    assert_int_equal(reads_with_fds, 2);
    uds_conn_close(c);
    uds_loop_run_once(l, 0);
    rx_free(r);
    close(sv[1]);
    uds_loop_free(l);
    assert_int_equal(tu_count_fds(), base);
}

static void test_write_anc_packets(void **state)
{
    (void)state;
    int types[2] = {UDS_SEQPACKET, UDS_DGRAM};
    for (int t = 0; t < 2; t++) {
        int base = tu_count_fds();
        uds_loop *l;
        assert_int_equal(uds_loop_new(&l), 0);
        int sv[2];
        assert_int_equal(uds_pair(types[t], 0, sv), 0);
        struct rx *r = rx_new();
        uds_conn *c;
        assert_int_equal(uds_conn_new(&c, l, sv[0], NULL, &tx_cbs, r), 0);
        int mid = tu_count_fds();
        int fa[2], fb[3];
        make_files(fa, 2);
        make_files(fb, 3);
        ino_t sets[2][4];
        size_t ns[2] = {2, 3};
        for (int i = 0; i < 2; i++)
            sets[0][i] = ino_of(fa[i]);
        for (int i = 0; i < 3; i++)
            sets[1][i] = ino_of(fb[i]);
        struct iovec va = {"m2", 2}, vb = {"m3", 2};
        assert_int_equal(uds_conn_write(c, "m1", 2), 0);
        assert_int_equal(uds_conn_write_anc(c, &va, 1, fa, 2, NULL), 0);
        assert_int_equal(uds_conn_write_anc(c, &vb, 1, fb, 3, NULL), 0);
        assert_int_equal(uds_conn_write(c, "m4", 2), 0);
        if (types[t] == UDS_DGRAM) { /* an empty datagram may carry fds */
            int fe[1];
            make_files(fe, 1);
            assert_int_equal(uds_conn_write_anc(c, NULL, 0, fe, 1, NULL), 0);
        }
        for (int i = 0; i < 10 && uds_conn_queued(c); i++)
            uds_loop_run_once(l, 10);
        assert_int_equal(uds_conn_queued(c), 0);
        assert_int_equal(tu_count_fds(), mid);
        const char *msgs[4] = {"m1", "m2", "m3", "m4"};
        int want_set[4] = {-1, 0, 1, -1};
        for (int i = 0; i < 4 + (types[t] == UDS_DGRAM); i++) {
            int fds[UDS_MAX_FDS];
            char b[8];
            uds_msg m;
            memset(&m, 0, sizeof(m));
            m.buf = b;
            m.len = sizeof(b);
            m.fds = fds;
            m.fds_cap = UDS_MAX_FDS;
            ssize_t n = uds_recvmsg(sv[1], &m, MSG_DONTWAIT);
            if (i == 4) { /* the empty datagram */
                assert_int_equal(n, 0);
                assert_int_equal(m.nfds, 1);
                close_all(fds, 1);
                continue;
            }
            assert_int_equal(n, 2);
            assert_memory_equal(b, msgs[i], 2);
            if (want_set[i] < 0) {
                assert_int_equal(m.nfds, 0);
            } else {
                assert_int_equal(match_set(fds, m.nfds, sets, ns, 2), want_set[i]);
                close_all(fds, m.nfds);
            }
        }
        uds_conn_close(c);
        uds_loop_run_once(l, 0);
        rx_free(r);
        close(sv[1]);
        uds_loop_free(l);
        assert_int_equal(tu_count_fds(), base);
    }
}

static void fill_queue(uds_loop *l, uds_conn *c, int peer)
{
    static char big[64 * 1024];
    for (int i = 0; i < 64 && uds_conn_queued(c) < 512 * 1024; i++)
        assert_true(uds_conn_write(c, big, sizeof(big)) >= 0);
    for (int i = 0; i < 5; i++)
        uds_loop_run_once(l, 0);
    (void)peer;
    assert_true(uds_conn_queued(c) > 0); /* the peer is not reading */
}

/* Ownership: the conn's on success (closed with the conn, sent or not),
   the caller's on any failure. */
static void test_write_anc_ownership(void **state)
{
    (void)state;
    int base = tu_count_fds();
    uds_loop *l;
    assert_int_equal(uds_loop_new(&l), 0);
    int sv[2];
    assert_int_equal(uds_pair(UDS_STREAM, 0, sv), 0);
    assert_int_equal(uds_set_bufsizes(sv[0], 4096, 0), 0);
    assert_int_equal(uds_set_bufsizes(sv[1], 0, 4096), 0);
    struct rx *r = rx_new();
    uds_conn_opts o = {.out_cap = 1024 * 1024};
    uds_conn *c;
    assert_int_equal(uds_conn_new(&c, l, sv[0], &o, &tx_cbs, r), 0);
    int f[UDS_MAX_FDS + 1];
    make_files(f, UDS_MAX_FDS + 1);
    int mid = tu_count_fds();
    struct iovec v = {"x", 1}, none = {"", 0};

    /* refused: the caller keeps every fd */
    assert_int_equal(uds_conn_write_anc(c, &v, 1, f, UDS_MAX_FDS + 1, NULL), -EINVAL);
    assert_int_equal(uds_conn_write_anc(c, &none, 1, f, 1, NULL), -EINVAL);
    assert_int_equal(uds_conn_write_anc(c, NULL, 0, f, 1, NULL), -EINVAL);
    assert_int_equal(uds_conn_write_anc(c, &v, 1, NULL, 1, NULL), -EINVAL);
    uds_cred me = {getpid(), geteuid(), getegid()};
    assert_int_equal(uds_conn_write_anc(c, &none, 1, NULL, 0, &me), -EINVAL);
    int bad[2] = {f[0], -1};
    assert_int_equal(uds_conn_write_anc(c, &v, 1, bad, 2, NULL), -EBADF);
    assert_int_equal(uds_conn_write_anc(NULL, &v, 1, f, 1, NULL), -EINVAL);
    struct iovec huge = {malloc(2 * 1024 * 1024), 2 * 1024 * 1024};
    assert_non_null(huge.iov_base);
    assert_int_equal(tu_count_fds(), mid);
    for (int i = 0; i <= UDS_MAX_FDS; i++)
        assert_true(fd_open(f[i]));

    /* queued behind data the peer never reads, then the conn is closed */
    fill_queue(l, c, sv[1]);
    assert_int_equal(uds_conn_write_anc(c, &v, 1, f, UDS_MAX_FDS, NULL), 1); /* > hw */
    for (int i = 0; i < 3; i++)
        uds_loop_run_once(l, 0);
    assert_true(uds_conn_queued(c) > 0);
    assert_int_equal(tu_count_fds(), mid); /* the conn holds them now */
    /* over out_cap: -ENOBUFS, the conn goes, f[253] stays the caller's;
       the 253 queued ones are closed with the conn */
    assert_int_equal(uds_conn_write_anc(c, &huge, 1, &f[UDS_MAX_FDS], 1, NULL), -ENOBUFS);
    assert_true(fd_open(f[UDS_MAX_FDS]));
    uds_loop_run_once(l, 0);
    assert_true(r->closed);
    assert_int_equal(r->close_err, -ENOBUFS);
    assert_int_equal(tu_count_fds(), mid - UDS_MAX_FDS - 1); /* and sv[0] */
    close(f[UDS_MAX_FDS]);
    rx_free(r);
    close(sv[1]);

    /* closed before the first flush: the fds go with the queue */
    r = rx_new();
    assert_int_equal(uds_pair(UDS_STREAM, 0, sv), 0);
    assert_int_equal(uds_conn_new(&c, l, sv[0], NULL, &tx_cbs, r), 0);
    int g[4];
    make_files(g, 4);
    int before = tu_count_fds();
    assert_int_equal(uds_conn_write_anc(c, &v, 1, g, 4, NULL), 0);
    uds_conn_close(c);
    assert_int_equal(tu_count_fds(), before - 4 - 1);
    /* and a closing conn refuses: the caller keeps them */
    uds_loop_run_once(l, 0);
    rx_free(r);
    r = rx_new();
    int sv2[2];
    assert_int_equal(uds_pair(UDS_STREAM, 0, sv2), 0);
    assert_int_equal(uds_conn_new(&c, l, sv2[0], NULL, &tx_cbs, r), 0);
    make_files(g, 2);
    uds_conn_end(c);
    assert_int_equal(uds_conn_write_anc(c, &v, 1, g, 2, NULL), UDS_ECLOSED);
    assert_true(fd_open(g[0]) && fd_open(g[1]));
    close_all(g, 2);
    uds_loop_run_once(l, 0);
    uds_loop_run_once(l, 0);
    assert_true(r->closed);
    rx_free(r);
    close(sv[1]);
    close(sv2[1]);
    free(huge.iov_base);
    uds_loop_free(l);
    assert_int_equal(tu_count_fds(), base);
}

/* The peer refuses fds (SO_PASSRIGHTS off): the conn fails with -EPERM
   and closes the fds it held. */
static void test_write_anc_peer_refuses(void **state)
{
    (void)state;
    if (!kernel_has_passrights()) {
        skip();
        return;
    }
    int base = tu_count_fds();
    uds_loop *l;
    assert_int_equal(uds_loop_new(&l), 0);
    int sv[2];
    assert_int_equal(uds_pair(UDS_STREAM, 0, sv), 0);
    int zero = 0;
    assert_int_equal(setsockopt(sv[1], SOL_SOCKET, SO_PASSRIGHTS, &zero, sizeof(zero)), 0);
    struct rx *r = rx_new();
    uds_conn *c;
    assert_int_equal(uds_conn_new(&c, l, sv[0], NULL, &tx_cbs, r), 0);
    int f[2];
    make_files(f, 2);
    struct iovec v = {"z", 1};
    assert_int_equal(uds_conn_write_anc(c, &v, 1, f, 2, NULL), 0);
    run_until(l, &r->closed, 5000);
    assert_true(r->closed);
    assert_int_equal(r->close_err, -EPERM);
    rx_free(r);
    close(sv[1]);
    uds_loop_free(l);
    assert_int_equal(tu_count_fds(), base);
}

/* fds and credentials are for unix sockets only. */
static void test_not_unix(void **state)
{
    (void)state;
    uds_addr a;
    uds_listener ls;
    assert_int_equal(uds_addr_parse(&a, "tcp:127.0.0.1:0"), 0);
    assert_int_equal(uds_listen(&ls, &a, NULL), 0);
    int cfd = uds_connect(&ls.addr, NULL);
    assert_true(cfd >= 0);
    int sfd = uds_accept(ls.fd, NULL, 0);
    assert_true(sfd >= 0);
    uds_loop *l;
    assert_int_equal(uds_loop_new(&l), 0);
    struct rx *r = rx_new();
    uds_conn *c;
    uds_conn_opts o = {.flags = UDS_CONN_FDS};
    assert_int_equal(uds_conn_new(&c, l, cfd, &o, &rx_cbs, r), -EAFNOSUPPORT);
    o.flags = UDS_CONN_CREDS;
    assert_int_equal(uds_conn_new(&c, l, cfd, &o, &rx_cbs, r), -EAFNOSUPPORT);
    o.flags = 0x100;
    assert_int_equal(uds_conn_new(&c, l, cfd, &o, &rx_cbs, r), -EINVAL);
    assert_int_equal(uds_conn_new(&c, l, cfd, NULL, &rx_cbs, r), 0);
    int f[1];
    make_files(f, 1);
    struct iovec v = {"t", 1};
    uds_cred me = {getpid(), geteuid(), getegid()};
    assert_int_equal(uds_conn_write_anc(c, &v, 1, f, 1, NULL), -EAFNOSUPPORT);
    assert_int_equal(uds_conn_write_anc(c, &v, 1, NULL, 0, &me), -EAFNOSUPPORT);
    assert_true(fd_open(f[0]));
    close(f[0]);
    /* nothing attached: a plain write */
    assert_int_equal(uds_conn_write_anc(c, &v, 1, NULL, 0, NULL), 0);
    for (int i = 0; i < 5 && uds_conn_queued(c); i++)
        uds_loop_run_once(l, 10);
    char b;
    assert_int_equal(uds_read_exact(sfd, &b, 1), 1);
    assert_int_equal(b, 't');
    uds_conn_close(c);
    uds_loop_run_once(l, 0);
    rx_free(r);
    close(sfd);
    uds_listener_close(&ls);
    uds_loop_free(l);
}

/* ---- (g) a partly sent fd piece does not send its fds twice --------------- */

static void test_partial_write(void **state)
{
    (void)state;
    int base = tu_count_fds();
    uds_loop *l;
    assert_int_equal(uds_loop_new(&l), 0);
    int sv[2];
    assert_int_equal(uds_pair(UDS_STREAM, 0, sv), 0);
    assert_int_equal(uds_set_bufsizes(sv[0], 4096, 0), 0);
    assert_int_equal(uds_set_bufsizes(sv[1], 0, 4096), 0);
    assert_int_equal(uds_set_nonblock(sv[1], 1), 0);
    struct rx *r = rx_new();
    uds_conn_opts o = {.high_water = 4u << 20, .out_cap = 8u << 20};
    uds_conn *c;
    assert_int_equal(uds_conn_new(&c, l, sv[0], &o, &tx_cbs, r), 0);
    int mid = tu_count_fds();
    const size_t len = 1u << 20;
    char *data = malloc(len), *got = malloc(len + 16);
    assert_non_null(data);
    assert_non_null(got);
    tu_fill(data, len, 7);
    int f[5];
    make_files(f, 5);
    ino_t ino[5];
    for (int i = 0; i < 5; i++)
        ino[i] = ino_of(f[i]);
    struct iovec v = {data, len};
    assert_int_equal(uds_conn_write_anc(c, &v, 1, f, 5, NULL), 0);
    assert_int_equal(uds_conn_write(c, "tail", 4), 0);
    uds_loop_run_once(l, 0);
    assert_true(uds_conn_queued(c) > 0); /* partly sent */
    size_t have = 0, fd_reads = 0, nfds = 0, reads = 0;
    uint64_t end = tu_now_ms() + 60000;
    while (have < len + 4 && tu_now_ms() < end) {
        uds_loop_run_once(l, 0);
        int fds[UDS_MAX_FDS];
        uds_msg m;
        memset(&m, 0, sizeof(m));
        m.buf = got + have;
        m.len = 4096 < len + 16 - have ? 4096 : len + 16 - have;
        m.fds = fds;
        m.fds_cap = UDS_MAX_FDS;
        ssize_t n = uds_recvmsg(sv[1], &m, 0);
        if (n == -EAGAIN)
            continue;
        assert_true(n > 0);
        reads++;
        if (m.nfds) {
            assert_int_equal(have, 0); /* with the first byte */
            fd_reads++;
            nfds += m.nfds;
            for (size_t i = 0; i < m.nfds && i < 5; i++)
                assert_int_equal(ino_of(fds[i]), ino[i]);
            close_all(fds, m.nfds);
        }
        have += (size_t)n;
    }
    assert_int_equal(have, len + 4);
    assert_true(reads > 10);
    assert_int_equal(fd_reads, 1);
    assert_int_equal(nfds, 5);
    assert_memory_equal(got, data, len);
    assert_memory_equal(got + len, "tail", 4);
    assert_int_equal(uds_conn_queued(c), 0);
    assert_int_equal(tu_count_fds(), mid);
    uds_conn_close(c);
    uds_loop_run_once(l, 0);
    rx_free(r);
    close(sv[1]);
    uds_loop_free(l);
    free(data);
    free(got);
    assert_int_equal(tu_count_fds(), base);
}

/* ---- (f) credentials -------------------------------------------------------- */

/* A CREDS conn receives a forked peer's pid/uid/gid with its bytes. */
static void test_creds_receive(void **state)
{
    (void)state;
    uds_loop *l;
    assert_int_equal(uds_loop_new(&l), 0);
    int sv[2];
    assert_int_equal(uds_pair(UDS_STREAM, 0, sv), 0);
    struct rx *r = rx_new();
    uds_conn_opts o = {.flags = UDS_CONN_CREDS};
    uds_conn *c;
    assert_int_equal(uds_conn_new(&c, l, sv[0], &o, &rx_cbs, r), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        close(sv[0]);
        _exit(uds_write_all(sv[1], "hi", 2) == 2 ? 0 : 1);
    }
    close(sv[1]);
    run_bytes(l, r, 2, 5000);
    int st;
    assert_int_equal(waitpid(pid, &st, 0), pid);
    assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    assert_int_equal(r->bytes, 2);
    assert_int_equal(r->ev[0].kind, 'A');
    assert_int_equal(r->ev[0].nfds, 0);
    assert_int_equal(r->ev[0].has_cred, 1);
    assert_int_equal(r->ev[0].cred.pid, pid);
    assert_int_equal(r->ev[0].cred.uid, getuid());
    assert_int_equal(r->ev[0].cred.gid, getgid());
    assert_int_equal(r->ev[1].kind, 'D');
    uds_conn_close(c);
    uds_loop_run_once(l, 0);
    rx_free(r);
    uds_loop_free(l);
}

/* A pid that no longer exists (reaped child). */
static pid_t dead_pid(void)
{
    pid_t p = fork();
    assert_true(p >= 0);
    if (p == 0)
        _exit(0);
    assert_int_equal(waitpid(p, NULL, 0), p);
    return p;
}

/* write_anc with credentials: our own work; as root another uid works and
   covers exactly the bytes of that write; a dead pid is refused (ESRCH) and
   the bytes go with the kernel's (our) credentials. */
static void test_creds_send(void **state)
{
    (void)state;
    uds_loop *l;
    assert_int_equal(uds_loop_new(&l), 0);
    int sv[2];
    assert_int_equal(uds_pair(UDS_STREAM, 0, sv), 0);
    struct rx *r = rx_new(), *t = rx_new();
    uds_conn_opts ro = {.flags = UDS_CONN_CREDS};
    uds_conn *rc, *tc;
    assert_int_equal(uds_conn_new(&rc, l, sv[1], &ro, &rx_cbs, r), 0);
    assert_int_equal(uds_conn_new(&tc, l, sv[0], NULL, &tx_cbs, t), 0);
    uds_cred me = {getpid(), geteuid(), getegid()};
    struct iovec v = {"own", 3};
    uint64_t fb = uds__cred_fallbacks;
    assert_int_equal(uds_conn_write_anc(tc, &v, 1, NULL, 0, &me), 0);
    run_bytes(l, r, 3, 5000);
    assert_int_equal(r->bytes, 3);
    assert_int_equal(r->ev[0].kind, 'A');
    assert_int_equal(r->ev[0].cred.pid, getpid());
    assert_int_equal(r->ev[0].cred.uid, geteuid());
    assert_int_equal(uds__cred_fallbacks, fb);

    /* a dead pid: ESRCH, sent once more without, counted */
    uds_cred dead = {dead_pid(), geteuid(), getegid()};
    struct iovec v2 = {"dead", 4};
    assert_int_equal(uds_conn_write_anc(tc, &v2, 1, NULL, 0, &dead), 0);
    run_bytes(l, r, 7, 5000);
    assert_int_equal(r->bytes, 7);
    assert_int_equal(uds__cred_fallbacks, fb + 1);
    struct ev *last = NULL;
    for (int i = 0; i < r->nev; i++)
        if (r->ev[i].kind == 'A')
            last = &r->ev[i];
    assert_non_null(last);
    assert_int_equal(last->cred.pid, getpid());

    if (geteuid() == 0) {
        /* privileged: another uid/gid; a neighbouring plain write keeps
           the kernel's credentials (separate reads) */
        uds_cred other = {getpid(), 65534, 65534};
        struct iovec v3 = {"nobody", 6};
        int n0 = r->nev;
        assert_int_equal(uds_conn_write(tc, "pre", 3), 0);
        assert_int_equal(uds_conn_write_anc(tc, &v3, 1, NULL, 0, &other), 0);
        assert_int_equal(uds_conn_write(tc, "post", 4), 0);
        run_bytes(l, r, 20, 5000);
        assert_int_equal(r->bytes, 20);
        assert_int_equal(uds__cred_fallbacks, fb + 1);
        /* A(0) D(pre) A(65534) D(nobody) A(0) D(post) */
        assert_int_equal(r->nev - n0, 6);
        uid_t uids[3] = {0, 65534, 0};
        const char *data[3] = {"pre", "nobody", "post"};
        for (int i = 0; i < 3; i++) {
            struct ev *a = &r->ev[n0 + 2 * i], *d = &r->ev[n0 + 2 * i + 1];
            assert_int_equal(a->kind, 'A');
            assert_int_equal(a->cred.uid, uids[i]);
            assert_int_equal(a->cred.gid, uids[i]);
            assert_int_equal(d->len, strlen(data[i]));
            assert_memory_equal(d->data, data[i], d->len);
        }
    }
    uds_conn_close(rc);
    uds_conn_close(tc);
    uds_loop_run_once(l, 0);
    rx_free(r);
    rx_free(t);
    uds_loop_free(l);
}

/* Packet sockets: a refused credential in the middle of a sendmmsg batch
   costs that message its credential only; order and the others intact. */
static void test_creds_packets(void **state)
{
    (void)state;
    uds_loop *l;
    assert_int_equal(uds_loop_new(&l), 0);
    int sv[2];
    assert_int_equal(uds_pair(UDS_SEQPACKET, 0, sv), 0);
    struct rx *r = rx_new(), *t = rx_new();
    uds_conn_opts ro = {.flags = UDS_CONN_CREDS | UDS_CONN_FDS};
    uds_conn *rc, *tc;
    assert_int_equal(uds_conn_new(&rc, l, sv[1], &ro, &rx_cbs, r), 0);
    assert_int_equal(uds_conn_new(&tc, l, sv[0], NULL, &tx_cbs, t), 0);
    uint64_t fb = uds__cred_fallbacks;
    uds_cred dead = {dead_pid(), geteuid(), getegid()};
    uds_cred me = {getpid(), geteuid(), getegid()};
    int f[2];
    make_files(f, 2);
    ino_t ino[2] = {ino_of(f[0]), ino_of(f[1])}; /* f is the conn's soon */
    struct iovec v2 = {"m2", 2}, v3 = {"m3", 2};
    assert_int_equal(uds_conn_write(tc, "m1", 2), 0);
    assert_int_equal(uds_conn_write_anc(tc, &v2, 1, f, 2, &dead), 0);
    assert_int_equal(uds_conn_write_anc(tc, &v3, 1, NULL, 0, &me), 0);
    assert_int_equal(uds_conn_write(tc, "m4", 2), 0);
    uint64_t end = tu_now_ms() + 5000;
    while (r->msgs < 4 && tu_now_ms() < end)
        uds_loop_run_once(l, 20);
    assert_int_equal(r->msgs, 4);
    assert_int_equal(uds__cred_fallbacks, fb + 1);
    /* A D(m1) A(2 fds) D(m2) A D(m3) A D(m4), every cred ours */
    assert_int_equal(r->nev, 8);
    const char *m[4] = {"m1", "m2", "m3", "m4"};
    for (int i = 0; i < 4; i++) {
        struct ev *a = &r->ev[2 * i], *d = &r->ev[2 * i + 1];
        assert_int_equal(a->kind, 'A');
        assert_int_equal(a->has_cred, 1);
        assert_int_equal(a->cred.pid, getpid());
        assert_int_equal(a->nfds, i == 1 ? 2 : 0);
        assert_int_equal(d->kind, 'D');
        assert_memory_equal(d->data, m[i], 2);
    }
    for (int i = 0; i < 2; i++)
        assert_int_equal(ino_of(r->ev[2].fds[i]), ino[i]);
    uds_conn_close(rc);
    uds_conn_close(tc);
    uds_loop_run_once(l, 0);
    rx_free(r);
    rx_free(t);
    uds_loop_free(l);
}

/* A child dropped to 65534 claims uid 0: the kernel refuses (EPERM), the
   conn sends without, and the receiver sees 65534. */
static void test_creds_unprivileged(void **state)
{
    (void)state;
    if (geteuid() != 0) {
        skip();
        return;
    }
    uds_loop *l;
    assert_int_equal(uds_loop_new(&l), 0);
    int sv[2];
    assert_int_equal(uds_pair(UDS_STREAM, 0, sv), 0);
    /* SO_PASSCRED before the peer can write: bytes queued earlier would
       come with pid 0 */
    struct rx *r = rx_new();
    uds_conn_opts o = {.flags = UDS_CONN_FDS | UDS_CONN_CREDS};
    uds_conn *c;
    assert_int_equal(uds_conn_new(&c, l, sv[1], &o, &rx_cbs, r), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        close(sv[1]);
        if (setgroups(0, NULL) < 0 || setresgid(65534, 65534, 65534) < 0 ||
            setresuid(65534, 65534, 65534) < 0)
            _exit(40);
        uds_loop *cl;
        uds_conn *cc;
        struct rx *t = calloc(1, sizeof(*t));
        if (!t || uds_loop_new(&cl) < 0 ||
            uds_conn_new(&cc, cl, sv[0], NULL, &tx_cbs, t) < 0)
            _exit(41);
        uds_cred root = {getpid(), 0, 0};
        int f = memfd_create("u", 0);
        struct iovec v = {"u", 1};
        uint64_t fb = uds__cred_fallbacks;
        if (uds_conn_write_anc(cc, &v, 1, &f, 1, &root) != 0)
            _exit(42);
        for (int i = 0; i < 50 && uds_conn_queued(cc); i++)
            uds_loop_run_once(cl, 10);
        if (uds_conn_queued(cc) || t->closed)
            _exit(43);
        if (uds__cred_fallbacks != fb + 1)
            _exit(44);
        char b;
        (void)uds_read_exact(sv[0], &b, 1); /* until the parent is done */
        _exit(0);
    }
    close(sv[0]);
    run_bytes(l, r, 1, 10000);
    assert_int_equal(r->bytes, 1);
    assert_int_equal(r->ev[0].kind, 'A');
    assert_int_equal(r->ev[0].has_cred, 1);
    assert_int_equal(r->ev[0].cred.pid, pid);
    assert_int_equal(r->ev[0].cred.uid, 65534);
    assert_int_equal(r->ev[0].cred.gid, 65534);
    assert_int_equal(r->ev[0].nfds, 1); /* the fd still came */
    uds_conn_close(c);
    uds_loop_run_once(l, 0);
    int st;
    assert_int_equal(waitpid(pid, &st, 0), pid);
    assert_true(WIFEXITED(st));
    assert_int_equal(WEXITSTATUS(st), 0);
    rx_free(r);
    uds_loop_free(l);
}

/* A relay in a few lines: on_anc passes the fds on with write_anc. */
static uds_conn *relay_to;
static void relay_anc(uds_conn *c, const uds_anc *a, void *arg)
{
    (void)c;
    (void)arg;
    struct iovec v = {"R", 1};
    assert_int_equal(uds_conn_write_anc(relay_to, &v, 1, a->fds, a->nfds, NULL), 0);
}
static size_t relay_data(uds_conn *c, const void *d, size_t len, void *arg)
{
    (void)c;
    (void)d;
    (void)arg;
    return len;
}
static const uds_conn_cbs relay_cbs = {.on_data = relay_data, .on_anc = relay_anc};

static void test_relay_fds(void **state)
{
    (void)state;
    int base = tu_count_fds();
    uds_loop *l;
    assert_int_equal(uds_loop_new(&l), 0);
    int in[2], out[2];
    assert_int_equal(uds_pair(UDS_SEQPACKET, 0, in), 0);
    assert_int_equal(uds_pair(UDS_STREAM, 0, out), 0);
    uds_conn *a, *b;
    uds_conn_opts o = {.flags = UDS_CONN_FDS};
    assert_int_equal(uds_conn_new(&b, l, out[0], NULL, &relay_cbs, NULL), 0);
    relay_to = b;
    assert_int_equal(uds_conn_new(&a, l, in[0], &o, &relay_cbs, NULL), 0);
    int f[3];
    make_files(f, 3);
    assert_int_equal(uds_send_fds(in[1], "m", 1, f, 3), 1);
    int got[UDS_MAX_FDS];
    size_t n = UDS_MAX_FDS;
    char ch;
    struct pollfd pfd = {.fd = out[1], .events = POLLIN};
    uint64_t end = tu_now_ms() + 5000;
    while (poll(&pfd, 1, 0) == 0 && tu_now_ms() < end)
        uds_loop_run_once(l, 10);
    assert_int_equal(uds_recv_fds(out[1], &ch, 1, got, &n), 1);
    assert_int_equal(ch, 'R');
    assert_int_equal(n, 3);
    same_files(f, got, 3);
    close_all(got, 3);
    close_all(f, 3);
    uds_conn_close(a);
    uds_conn_close(b);
    uds_loop_run_once(l, 0);
    close(in[1]);
    close(out[1]);
    uds_loop_free(l);
    assert_int_equal(tu_count_fds(), base);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_stream_receive, teardown),
        cmocka_unit_test_teardown(test_packet_receive, teardown),
        cmocka_unit_test_teardown(test_no_on_anc, teardown),
        cmocka_unit_test_teardown(test_refused_passrights, teardown),
        cmocka_unit_test_teardown(test_fallback_discards, teardown),
        cmocka_unit_test_teardown(test_fdspam, teardown),
        cmocka_unit_test_teardown(test_ctrunc_emfile, teardown),
        cmocka_unit_test_teardown(test_write_anc_stream, teardown),
        cmocka_unit_test_teardown(test_write_anc_packets, teardown),
        cmocka_unit_test_teardown(test_write_anc_ownership, teardown),
        cmocka_unit_test_teardown(test_write_anc_peer_refuses, teardown),
        cmocka_unit_test_teardown(test_not_unix, teardown),
        cmocka_unit_test_teardown(test_partial_write, teardown),
        cmocka_unit_test_teardown(test_creds_receive, teardown),
        cmocka_unit_test_teardown(test_creds_send, teardown),
        cmocka_unit_test_teardown(test_creds_packets, teardown),
        cmocka_unit_test_teardown(test_creds_unprivileged, teardown),
        cmocka_unit_test_teardown(test_relay_fds, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
