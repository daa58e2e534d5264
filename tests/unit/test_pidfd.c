/*
 * test_pidfd.c — the peer as a pidfd (uds_peer_pidfd, uds_pidfd_alive,
 * UDS_ACCEPT_PIDFD), on both paths: SO_PEERPIDFD (this kernel) and the
 * pidfd_open(pid) fallback (forced through the uds__features seam), plus
 * "no pidfds at all". Each pidfd is checked for close-on-exec, for naming
 * the right process (/proc/self/fdinfo "Pid:"), and for not leaking (the
 * count of /proc/self/fd). As root, a recycled pid is made on purpose
 * (ns_last_pid): SO_PEERPIDFD never names the newcomer, the fallback does
 * (the race the header documents). The acceptor fails closed when the
 * pidfd cannot be had (EMFILE).
 *
 * Where pidfd_open(2) itself answers ENOSYS (kernels before 5.3; valgrind
 * 3.19, Debian 12's, does not implement syscall 434), the fallback cases
 * check that path instead: -EOPNOTSUPP, UDS_PIDFD_NONE, the feature bit
 * cleared, nothing opened — and say so on the output.
 */
#include "testutil.h"
#include "internal.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

struct srv {
    char *dir;
    uds_addr a;
    uds_listener l;
};

static void srv_open(struct srv *s)
{
    s->dir = tu_tmpdir();
    assert_non_null(s->dir);
    assert_int_equal(uds_addr_parse(&s->a, tu_path(s->dir, "p.sock")), 0);
    assert_int_equal(uds_listen(&s->l, &s->a, NULL), 0);
}

static void srv_close(struct srv *s)
{
    uds_listener_close(&s->l);
    tu_rmtree(s->dir);
    free(s->dir);
}

/*
 * A child that connects to s and then waits for a byte on its pipe (or
 * exits at once when linger is 0). *ctl gets the write end that lets it go.
 */
static pid_t client(struct srv *s, int linger, int *ctl)
{
    int p[2];
    assert_int_equal(pipe2(p, O_CLOEXEC), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        close(p[1]);
        int fd = uds_connect(&s->a, NULL);
        if (fd < 0)
            _exit(11);
        if (linger) {
            char b;
            (void)read(p[0], &b, 1);
        }
        _exit(0);
    }
    close(p[0]);
    *ctl = p[1];
    return pid;
}

/* Whether pidfd_open(2) exists here (not ENOSYS); says so once when not. */
static int have_pidfd_open(void)
{
    static int known = -1;
    if (known < 0) {
        int fd = (int)syscall(SYS_pidfd_open, getpid(), 0);
        known = fd >= 0 || errno != ENOSYS;
        if (fd >= 0)
            close(fd);
        if (!known)
            print_message("pidfd_open(2) answers ENOSYS here: the fallback cases "
                          "check the ENOSYS path instead\n");
    }
    return known;
}

/* Accepts the next client (waits at most 5 s). */
static int accept_one(struct srv *s)
{
    struct pollfd pf = {s->l.fd, POLLIN, 0};
    assert_int_equal(poll(&pf, 1, 5000), 1);
    int c = uds_accept(s->l.fd, NULL, 0);
    assert_true(c >= 0);
    return c;
}

/* The pid a pidfd names, from /proc/self/fdinfo (-1 once reaped), or -2. */
static long fdinfo_pid(int pfd)
{
    char path[64], line[256];
    snprintf(path, sizeof(path), "/proc/self/fdinfo/%d", pfd);
    FILE *f = fopen(path, "re");
    if (!f)
        return -2;
    long pid = -2;
    while (fgets(line, sizeof(line), f))
        if (sscanf(line, "Pid: %ld", &pid) == 1)
            break;
    fclose(f);
    return pid;
}

static void reap(pid_t pid)
{
    int st;
    assert_int_equal(waitpid(pid, &st, 0), pid);
    assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
}

/* A live peer: pidfd of the right process, CLOEXEC, alive, then exited. */
static void live_peer(unsigned features, int want_how)
{
    unsigned saved = uds__features;
    uds__features = features;
    struct srv s;
    srv_open(&s);
    int base = tu_count_fds();
    int ctl;
    pid_t pid = client(&s, 1, &ctl);
    int c = accept_one(&s);
    uds_cred cred;
    int how = -1;
    int pfd = uds_peer_pidfd(c, &cred, &how);
    if (want_how == UDS_PIDFD_OPENED && !have_pidfd_open()) {
        assert_int_equal(pfd, -EOPNOTSUPP);
        assert_int_equal(how, UDS_PIDFD_NONE);
        assert_int_equal(cred.pid, pid);
        assert_false(uds__features & UDS__FEAT_PIDFD_OPEN); /* not tried again */
        close(ctl);
        reap(pid);
        close(c);
        assert_int_equal(tu_count_fds(), base);
        srv_close(&s);
        uds__features = saved;
        return;
    }
    assert_true(pfd >= 0);
    assert_int_equal(how, want_how);
    assert_int_equal(cred.pid, pid);
    assert_int_equal(cred.uid, getuid());
    assert_int_equal(fcntl(pfd, F_GETFD) & FD_CLOEXEC, FD_CLOEXEC);
    assert_int_equal(fdinfo_pid(pfd), pid);
    assert_int_equal(uds_pidfd_alive(pfd), 1);
    close(ctl); /* the child goes */
    struct pollfd pf = {pfd, POLLIN, 0};
    assert_int_equal(poll(&pf, 1, 5000), 1);
    assert_int_equal(uds_pidfd_alive(pfd), 0); /* a zombie counts as gone */
    reap(pid);
    assert_int_equal(uds_pidfd_alive(pfd), 0);
    close(pfd);
    close(c);
    assert_int_equal(tu_count_fds(), base);
    srv_close(&s);
    uds__features = saved;
}

static void test_peerpidfd_live(void **state)
{
    (void)state;
    live_peer(UDS__FEAT_ALL, UDS_PIDFD_PEER);
    assert_true(uds__features & UDS__FEAT_PEERPIDFD); /* detected: kept */
}

static void test_fallback_live(void **state)
{
    (void)state;
    live_peer(UDS__FEAT_ALL & ~UDS__FEAT_PEERPIDFD, UDS_PIDFD_OPENED);
}

/*
 * A client that connected and has exited (and was reaped) before we ask:
 * never a live pidfd. SO_PEERPIDFD on newer kernels still hands out a
 * pidfd for the dead process (alive 0); older ones answer -ESRCH; the
 * fallback answers -ESRCH (nobody has the pid, unless it was reused: see
 * test_recycled_pid).
 */
static void gone_peer(unsigned features)
{
    unsigned saved = uds__features;
    uds__features = features;
    struct srv s;
    srv_open(&s);
    int base = tu_count_fds();
    int ctl;
    pid_t pid = client(&s, 0, &ctl);
    close(ctl);
    reap(pid);
    int c = accept_one(&s);
    int how = -1;
    int pfd = uds_peer_pidfd(c, NULL, &how);
    if (!(features & UDS__FEAT_PEERPIDFD) && !have_pidfd_open()) {
        assert_int_equal(pfd, -EOPNOTSUPP);
        assert_int_equal(how, UDS_PIDFD_NONE);
    } else if (pfd >= 0) {
        assert_int_equal(how, UDS_PIDFD_PEER);
        assert_int_equal(fcntl(pfd, F_GETFD) & FD_CLOEXEC, FD_CLOEXEC);
        assert_int_equal(uds_pidfd_alive(pfd), 0);
        close(pfd);
    } else {
        assert_int_equal(pfd, -ESRCH);
        assert_int_equal(how, UDS_PIDFD_GONE);
    }
    close(c);
    assert_int_equal(tu_count_fds(), base);
    srv_close(&s);
    uds__features = saved;
}

static void test_peerpidfd_gone(void **state)
{
    (void)state;
    gone_peer(UDS__FEAT_ALL);
}

static void test_fallback_gone(void **state)
{
    (void)state;
    gone_peer(UDS__FEAT_ALL & ~UDS__FEAT_PEERPIDFD);
}

/* No pidfds at all (both bits off): -EOPNOTSUPP, nothing opened. */
static void test_no_pidfds(void **state)
{
    (void)state;
    unsigned saved = uds__features;
    uds__features = UDS__FEAT_PASSRIGHTS;
    struct srv s;
    srv_open(&s);
    int base = tu_count_fds();
    int ctl;
    pid_t pid = client(&s, 1, &ctl);
    int c = accept_one(&s);
    int how = -1;
    uds_cred cred;
    assert_int_equal(uds_peer_pidfd(c, &cred, &how), -EOPNOTSUPP);
    assert_int_equal(how, UDS_PIDFD_NONE);
    assert_int_equal(cred.pid, pid); /* the credentials still come */
    close(ctl);
    reap(pid);
    close(c);
    assert_int_equal(tu_count_fds(), base);
    srv_close(&s);
    uds__features = saved;
}

/* Errors: not a socket, a socket without a peer, a bad pidfd. */
static void test_errors(void **state)
{
    (void)state;
    int base = tu_count_fds();
    int how = -1;
    int n = open("/dev/null", O_RDONLY | O_CLOEXEC);
    assert_true(n >= 0);
    assert_int_equal(uds_peer_pidfd(n, NULL, &how), -ENOTSOCK);
    close(n);
    int u = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true(u >= 0);
    int r = uds_peer_pidfd(u, NULL, &how);
    assert_true(r < 0);
    assert_int_not_equal(r, -ESRCH); /* no peer is not "the peer exited" */
    close(u);
    assert_int_equal(uds_pidfd_alive(-1), -EBADF);
    assert_int_equal(tu_count_fds(), base);
}

/*
 * The recycled pid, made on purpose (root: /proc/sys/kernel/ns_last_pid):
 * a client connects and exits, and a new process is given its pid before
 * we look. SO_PEERPIDFD never names the newcomer; the fallback does —
 * the race udsock.h documents for UDS_PIDFD_OPENED. Other processes on
 * the machine may take the pid first: a bounded number of tries.
 */
static void test_recycled_pid(void **state)
{
    (void)state;
    if (geteuid() != 0 || access("/proc/sys/kernel/ns_last_pid", W_OK) != 0) {
        skip();
        return;
    }
    unsigned saved = uds__features;
    struct srv s;
    srv_open(&s);
    int done = 0;
    for (int tries = 0; tries < 50 && !done; tries++) {
        int ctl;
        pid_t old = client(&s, 0, &ctl);
        close(ctl);
        reap(old);
        int c = accept_one(&s);
        /* the next fork gets `old` unless someone else forks first */
        FILE *f = fopen("/proc/sys/kernel/ns_last_pid", "we");
        assert_non_null(f);
        fprintf(f, "%ld", (long)old - 1);
        fclose(f);
        int p[2];
        assert_int_equal(pipe2(p, O_CLOEXEC), 0);
        pid_t imp = fork();
        assert_true(imp >= 0);
        if (imp == 0) {
            close(p[1]);
            char b;
            (void)read(p[0], &b, 1);
            _exit(0);
        }
        close(p[0]);
        if (imp == old) {
            int how;
            uds__features = UDS__FEAT_ALL;
            int pfd = uds_peer_pidfd(c, NULL, &how);
            if (pfd >= 0) {
                assert_int_equal(how, UDS_PIDFD_PEER);
                assert_int_equal(uds_pidfd_alive(pfd), 0); /* not the impostor */
                assert_int_not_equal(fdinfo_pid(pfd), imp);
                close(pfd);
            } else {
                assert_int_equal(pfd, -ESRCH);
            }
            uds__features = UDS__FEAT_ALL & ~UDS__FEAT_PEERPIDFD;
            pfd = uds_peer_pidfd(c, NULL, &how);
            if (have_pidfd_open()) {
                assert_true(pfd >= 0);
                assert_int_equal(how, UDS_PIDFD_OPENED);
                assert_int_equal(fdinfo_pid(pfd), imp); /* the documented race */
                assert_int_equal(uds_pidfd_alive(pfd), 1);
                close(pfd);
            } else {
                assert_int_equal(pfd, -EOPNOTSUPP);
            }
            uds__features = saved;
            done = 1;
        }
        close(p[1]);
        reap(imp);
        close(c);
    }
    srv_close(&s);
    uds__features = saved;
    if (!done)
        fprintf(stderr, "note: the pid was always taken by another process first\n");
    else if (getenv("UDS_TEST_VERBOSE"))
        fprintf(stderr, "recycled pid made and checked\n");
}

/* ---- the acceptor -------------------------------------------------------- */

struct actx {
    int ncb;
    int pidfd;      /* as seen in the callback */
    int how;
    int alive;
    int cloexec;
    long fdpid;
    pid_t cred_pid;
    char log[512];
};

static void on_client(uds_acceptor *a, int fd, const uds_peer *p, void *arg)
{
    struct actx *x = arg;
    x->ncb++;
    x->pidfd = p->pidfd;
    x->how = p->pidfd_how;
    x->cred_pid = p->cred.pid;
    x->alive = p->pidfd >= 0 ? uds_pidfd_alive(p->pidfd) : -1;
    x->cloexec = p->pidfd >= 0 ? (fcntl(p->pidfd, F_GETFD) & FD_CLOEXEC) != 0 : -1;
    x->fdpid = p->pidfd >= 0 ? fdinfo_pid(p->pidfd) : -2;
    close(fd);
    uds_acceptor_release(a, p->cred.uid);
}

static void on_log(void *arg, int level, const char *text)
{
    (void)level;
    struct actx *x = arg;
    snprintf(x->log, sizeof(x->log), "%s", text);
}

/* One client through an acceptor with `flags`; returns after its callback
   (or refusal). */
static void accept_through(int flags, unsigned features, struct actx *x, int linger,
                           int expect_cb)
{
    unsigned saved = uds__features;
    uds__features = features;
    memset(x, 0, sizeof(*x));
    x->pidfd = -2;
    struct srv s;
    srv_open(&s);
    uds_loop *loop;
    assert_int_equal(uds_loop_new(&loop), 0);
    uds_acceptor *a;
    uds_acceptor_opts ao = {.flags = flags, .log = on_log, .log_arg = x};
    assert_int_equal(uds_acceptor_new(&a, loop, &ao, on_client, x), 0);
    assert_int_equal(uds_acceptor_add(a, &s.l), 0);
    int base = tu_count_fds();
    int ctl;
    pid_t pid = client(&s, linger, &ctl);
    if (!linger) {
        close(ctl);
        reap(pid);
    }
    uint64_t end = tu_now_ms() + 5000;
    while (tu_now_ms() < end) {
        uds_acceptor_stats st;
        uds_acceptor_stats_get(a, &st);
        if (st.accepted + st.refused >= 1)
            break;
        assert_true(uds_loop_run_once(loop, 100) >= 0);
    }
    assert_int_equal(x->ncb, expect_cb);
    if (linger) {
        close(ctl);
        reap(pid);
    }
    if (x->ncb)
        assert_int_equal(x->cred_pid, pid);
    /* the pidfd was the acceptor's: closed once the callback returned */
    assert_int_equal(tu_count_fds(), base);
    uds_acceptor_free(a);
    uds_loop_free(loop);
    tu_rmtree(s.dir);
    free(s.dir);
    uds__features = saved;
    x->fdpid = x->fdpid == pid ? 1 : x->fdpid; /* 1: named the client */
}

static void test_acceptor_pidfd(void **state)
{
    (void)state;
    struct actx x;
    /* without the flag: no pidfd */
    accept_through(0, UDS__FEAT_ALL, &x, 1, 1);
    assert_int_equal(x.pidfd, -1);
    assert_int_equal(x.how, UDS_PIDFD_NONE);
    /* SO_PEERPIDFD */
    accept_through(UDS_ACCEPT_PIDFD, UDS__FEAT_ALL, &x, 1, 1);
    assert_true(x.pidfd >= 0);
    assert_int_equal(x.how, UDS_PIDFD_PEER);
    assert_int_equal(x.alive, 1);
    assert_int_equal(x.cloexec, 1);
    assert_int_equal(x.fdpid, 1);
    /* the fallback (without pidfd_open: admitted, no pidfd, as below) */
    accept_through(UDS_ACCEPT_PIDFD, UDS__FEAT_ALL & ~UDS__FEAT_PEERPIDFD, &x, 1, 1);
    if (have_pidfd_open()) {
        assert_true(x.pidfd >= 0);
        assert_int_equal(x.how, UDS_PIDFD_OPENED);
        assert_int_equal(x.alive, 1);
        assert_int_equal(x.cloexec, 1);
        assert_int_equal(x.fdpid, 1);
    } else {
        assert_int_equal(x.pidfd, -1);
        assert_int_equal(x.how, UDS_PIDFD_NONE);
    }
    /* no pidfds at all: admitted, no pidfd */
    accept_through(UDS_ACCEPT_PIDFD, UDS__FEAT_PASSRIGHTS, &x, 1, 1);
    assert_int_equal(x.pidfd, -1);
    assert_int_equal(x.how, UDS_PIDFD_NONE);
    /* a client gone before the accept: admitted (its data may be there),
       never with a live pidfd */
    accept_through(UDS_ACCEPT_PIDFD, UDS__FEAT_ALL, &x, 0, 1);
    assert_true(x.how == UDS_PIDFD_GONE || (x.how == UDS_PIDFD_PEER && x.alive == 0));
    accept_through(UDS_ACCEPT_PIDFD, UDS__FEAT_ALL & ~UDS__FEAT_PEERPIDFD, &x, 0, 1);
    assert_int_equal(x.how, have_pidfd_open() ? UDS_PIDFD_GONE : UDS_PIDFD_NONE);
    assert_int_equal(x.pidfd, -1);
}

/*
 * Fail closed: the accept takes the last fd the limit allows, so the pidfd
 * cannot be had (EMFILE): the client is refused and logged, not admitted
 * without the identity it asked for.
 */
static void test_acceptor_pidfd_emfile(void **state)
{
    (void)state;
    TU_VALGRIND_SKIP("RLIMIT_NOFILE is valgrind's, not ours");
    struct srv s;
    srv_open(&s);
    uds_loop *loop;
    assert_int_equal(uds_loop_new(&loop), 0);
    uds_acceptor *a;
    struct actx x;
    memset(&x, 0, sizeof(x));
    uds_acceptor_opts ao = {.flags = UDS_ACCEPT_PIDFD, .log = on_log, .log_arg = &x};
    assert_int_equal(uds_acceptor_new(&a, loop, &ao, on_client, &x), 0);
    assert_int_equal(uds_acceptor_add(a, &s.l), 0);
    int base = tu_count_fds();
    int ctl;
    pid_t pid = client(&s, 1, &ctl);
    /* leave room for one fd only: the accept's */
    int hi = -1;
    for (int fd = 0; fd < 65536; fd++)
        if (fcntl(fd, F_GETFD) >= 0)
            hi = fd;
    /* fds are allocated lowest first: the limit must lie above the
       highest open fd, and one free number below it is the accept's */
    int filler[4096];
    int nfill = 0;
    for (;;) {
        int lowest = fcntl(0, F_DUPFD_CLOEXEC, 0);
        assert_true(lowest >= 0);
        if (lowest > hi) {
            close(lowest);
            break;
        }
        assert_true(nfill < 4096);
        filler[nfill++] = lowest;
    }
    struct rlimit old, lim;
    assert_int_equal(getrlimit(RLIMIT_NOFILE, &old), 0);
    lim = old;
    lim.rlim_cur = (rlim_t)hi + 2; /* fd hi+1 is free for the accept, no more */
    assert_int_equal(setrlimit(RLIMIT_NOFILE, &lim), 0);
    uint64_t end = tu_now_ms() + 5000;
    uds_acceptor_stats st = {0};
    while (tu_now_ms() < end) {
        uds_acceptor_stats_get(a, &st);
        if (st.accepted + st.refused >= 1)
            break;
        assert_true(uds_loop_run_once(loop, 100) >= 0);
    }
    assert_int_equal(setrlimit(RLIMIT_NOFILE, &old), 0);
    assert_int_equal(x.ncb, 0);
    assert_int_equal(st.refused, 1);
    assert_non_null(strstr(x.log, "cannot get its pidfd"));
    for (int i = 0; i < nfill; i++)
        close(filler[i]);
    close(ctl);
    reap(pid);
    assert_int_equal(tu_count_fds(), base);
    uds_acceptor_free(a);
    uds_loop_free(loop);
    tu_rmtree(s.dir);
    free(s.dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_peerpidfd_live),
        cmocka_unit_test(test_fallback_live),
        cmocka_unit_test(test_peerpidfd_gone),
        cmocka_unit_test(test_fallback_gone),
        cmocka_unit_test(test_no_pidfds),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_recycled_pid),
        cmocka_unit_test(test_acceptor_pidfd),
        cmocka_unit_test(test_acceptor_pidfd_emfile),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
