/*
 * test_acceptor.c — the accepting engine (uds_acceptor_*), driven round by
 * round with uds_loop_run_once:
 *   - bounded work: one round hands out at most `batch` clients per
 *     listener (200 waiting, 64 handed out);
 *   - limits: max_conns and max_conns_per_uid refuse by accept-and-close
 *     (the client sees EOF), count and log; uds_acceptor_release frees a
 *     slot; per-uid with two real uids (forked children as root);
 *   - the admit hook and the access rules refuse the same way;
 *   - EMFILE: one waiting client is closed through the reserve fd,
 *     accepting pauses without spinning, and resumes by timer although
 *     another fd keeps the loop busy every round (regression: accepting
 *     used to be re-armed only when the loop was idle);
 *   - refusal log lines: at most 10 per second plus one summary line with
 *     the count of the rest;
 *   - pause/resume, close (socket file removed) also from the callback,
 *     add() refusing datagram and non-listening sockets, TCP peers;
 *   - uds_server_add_conn counts against the server's limits.
 */
// uds-test-timeout: 180
#include "testutil.h"
#include "internal.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define MAXFD 1024
#define MAXLOG 256

/* About 4.5 MB (uds_peer holds a uds_addr, paths of any length): every
   test keeps its ctx in static storage, not on the stack (valgrind takes
   a frame that large for a stack switch and reports every access). */
struct ctx {
    uds_loop *loop;
    uds_acceptor *a;
    int fds[MAXFD];
    uds_peer peers[MAXFD];
    int ncb;
    int keep;         /* keep handed-out fds (else close + release at once) */
    int pause_at;     /* cb number at which to pause (0: never) */
    int close_at;     /* cb number at which to close the acceptor */
    uint64_t first_cb_ms;
    char logs[MAXLOG][512];
    int levels[MAXLOG];
    int nlogs;
};

static void on_client(uds_acceptor *a, int fd, const uds_peer *p, void *arg)
{
    struct ctx *c = arg;
    assert_true(c->ncb < MAXFD);
    if (c->ncb == 0)
        c->first_cb_ms = tu_now_ms();
    c->fds[c->ncb] = fd;
    c->peers[c->ncb] = *p;
    c->ncb++;
    if (!c->keep) {
        close(fd);
        uds_acceptor_release(a, p->cred.uid);
        c->fds[c->ncb - 1] = -1;
    }
    if (c->pause_at && c->ncb == c->pause_at)
        uds_acceptor_pause(a);
    if (c->close_at && c->ncb == c->close_at)
        uds_acceptor_close(a);
}

static void on_log(void *arg, int level, const char *text)
{
    struct ctx *c = arg;
    if (getenv("UDS_TEST_VERBOSE"))
        fprintf(stderr, "log %d: %s\n", level, text);
    if (c->nlogs < MAXLOG) {
        snprintf(c->logs[c->nlogs], sizeof(c->logs[0]), "%s", text);
        c->levels[c->nlogs] = level;
    }
    c->nlogs++;
}

static int log_count(const struct ctx *c, const char *needle)
{
    int n = 0;
    for (int i = 0; i < c->nlogs && i < MAXLOG; i++)
        if (strstr(c->logs[i], needle))
            n++;
    return n;
}

static const char *log_find(const struct ctx *c, const char *needle)
{
    for (int i = 0; i < c->nlogs && i < MAXLOG; i++)
        if (strstr(c->logs[i], needle))
            return c->logs[i];
    return NULL;
}

static void ctx_init(struct ctx *c, const uds_acceptor_opts *o)
{
    memset(c, 0, sizeof(*c));
    c->keep = 1;
    assert_int_equal(uds_loop_new(&c->loop), 0);
    uds_acceptor_opts ao;
    if (o)
        ao = *o;
    else
        memset(&ao, 0, sizeof(ao));
    ao.log = on_log;
    ao.log_arg = c;
    assert_int_equal(uds_acceptor_new(&c->a, c->loop, &ao, on_client, c), 0);
}

static void ctx_free(struct ctx *c)
{
    uds_acceptor_free(c->a);
    uds_loop_free(c->loop);
    for (int i = 0; i < c->ncb; i++)
        if (c->fds[i] >= 0)
            close(c->fds[i]);
}

/* A listener at dir/name moved into the acceptor; returns its address. */
static uds_addr add_unix(struct ctx *c, const char *dir, const char *name)
{
    uds_addr a;
    uds_listener l;
    uds_listen_opts lo = {.backlog = 1024};
    assert_int_equal(uds_addr_parse(&a, tu_path(dir, name)), 0);
    assert_int_equal(uds_listen(&l, &a, &lo), 0);
    assert_int_equal(uds_acceptor_add(c->a, &l), 0);
    assert_int_equal(l.fd, -1);
    return a;
}

/* A client whose connect is complete (in the backlog); never blocks. */
static int client(const uds_addr *a)
{
    uds_connect_opts o = {.flags = UDS_NONBLOCK};
    int fd = uds_connect(a, &o);
    assert_true(fd >= 0);
    return fd;
}

/* 1 if fd reaches EOF (or a reset) within ms: the server closed it. */
static int sees_eof(int fd, int ms)
{
    struct pollfd p = {fd, POLLIN, 0};
    if (poll(&p, 1, ms) != 1)
        return 0;
    char b;
    ssize_t n = recv(fd, &b, 1, MSG_DONTWAIT);
    return n == 0 || (n < 0 && errno == ECONNRESET);
}

/* 1 if nothing happened on fd (still open, nothing to read). */
static int quiet(int fd)
{
    struct pollfd p = {fd, POLLIN, 0};
    return poll(&p, 1, 0) == 0;
}

/* Runs rounds until cb count + refusals reach n, bounded in time. */
static void run_until(struct ctx *c, uint64_t n, int ms)
{
    uint64_t t0 = tu_now_ms();
    uds_acceptor_stats st;
    for (;;) {
        uds_acceptor_stats_get(c->a, &st);
        if ((uint64_t)c->ncb + st.refused >= n || tu_now_ms() - t0 > (uint64_t)ms)
            break;
        uds_loop_run_once(c->loop, 20);
    }
}

/* ---- bounded batches ------------------------------------------------------ */

static void test_batch(void **state)
{
    (void)state;
    char *dir = tu_tmpdir();
    static struct ctx c;
    ctx_init(&c, NULL);
    uds_addr a1 = add_unix(&c, dir, "a.sock");
    uds_addr a2 = add_unix(&c, dir, "b.sock");
    enum { N = 200 };
    int cl[2 * N];
    for (int i = 0; i < N; i++) {
        cl[i] = client(&a1);
        cl[N + i] = client(&a2);
    }
    /* one round: 64 from each listener, no more */
    assert_int_equal(uds_loop_run_once(c.loop, 2000), 0);
    assert_int_equal(c.ncb, 128);
    int from_first = 0;
    for (int i = 0; i < c.ncb; i++)
        from_first += c.peers[i].listen_fd == c.peers[0].listen_fd;
    assert_int_equal(from_first, 64);
    /* handed-out fds: non-blocking, close-on-exec; peers numbered 1, 2... */
    assert_true(fcntl(c.fds[0], F_GETFL) & O_NONBLOCK);
    assert_true(fcntl(c.fds[0], F_GETFD) & FD_CLOEXEC);
    assert_true(c.peers[0].is_unix);
    assert_int_equal(c.peers[0].cred.uid, getuid());
    assert_int_equal(c.peers[0].cred.pid, getpid());
    assert_int_equal(c.peers[0].addr.kind, UDS_ADDR_UNNAMED);
    assert_int_equal(c.peers[0].seq, 1);
    assert_int_equal(c.peers[127].seq, 128);
    assert_int_equal(c.peers[0].uid_conns, 1);
    assert_int_equal(c.peers[127].uid_conns, 128);
    /* the rest follows in later rounds, at most 128 a round */
    int rounds = 1;
    while (c.ncb < 2 * N && rounds < 100) {
        int before = c.ncb;
        uds_loop_run_once(c.loop, 1000);
        assert_true(c.ncb - before <= 128);
        rounds++;
    }
    assert_int_equal(c.ncb, 2 * N);
    assert_true(rounds >= 4);
    uds_acceptor_stats st;
    uds_acceptor_stats_get(c.a, &st);
    assert_int_equal(st.accepted, 2 * N);
    assert_int_equal(st.refused, 0);
    assert_int_equal(st.conns, 2 * N);
    assert_int_equal(uds_acceptor_uid_conns(c.a, getuid()), 2 * N);
    for (int i = 0; i < 2 * N; i++)
        close(cl[i]);
    ctx_free(&c);

    /* a smaller batch, and blocking fds on request */
    uds_acceptor_opts o;
    memset(&o, 0, sizeof(o));
    o.batch = 10;
    o.flags = UDS_ACCEPT_BLOCKING;
    ctx_init(&c, &o);
    uds_addr a3 = add_unix(&c, dir, "c.sock");
    for (int i = 0; i < 30; i++)
        cl[i] = client(&a3);
    assert_int_equal(uds_loop_run_once(c.loop, 2000), 0);
    assert_int_equal(c.ncb, 10);
    assert_false(fcntl(c.fds[0], F_GETFL) & O_NONBLOCK);
    assert_true(fcntl(c.fds[0], F_GETFD) & FD_CLOEXEC);
    for (int i = 0; i < 30; i++)
        close(cl[i]);
    ctx_free(&c);
    tu_rmtree(dir);
    free(dir);
}

/* ---- limits --------------------------------------------------------------- */

static void test_max_conns(void **state)
{
    (void)state;
    char *dir = tu_tmpdir();
    uds_acceptor_opts o;
    memset(&o, 0, sizeof(o));
    o.max_conns = 3;
    o.name = "test";
    static struct ctx c;
    ctx_init(&c, &o);
    uds_addr a = add_unix(&c, dir, "m.sock");
    int cl[6];
    for (int i = 0; i < 5; i++)
        cl[i] = client(&a);
    run_until(&c, 5, 5000);
    assert_int_equal(c.ncb, 3);
    uds_acceptor_stats st;
    uds_acceptor_stats_get(c.a, &st);
    assert_int_equal(st.accepted, 3);
    assert_int_equal(st.refused, 2);
    assert_int_equal(st.conns, 3);
    /* the first three are held open, the excess was accepted and closed */
    for (int i = 0; i < 3; i++)
        assert_true(quiet(cl[i]));
    assert_true(sees_eof(cl[3], 2000));
    assert_true(sees_eof(cl[4], 2000));
    assert_int_equal(log_count(&c, "max_conns 3"), 2);
    const char *line = log_find(&c, "max_conns 3");
    assert_non_null(line);
    assert_true(strncmp(line, "test: refused connection #4 from pid ", 37) == 0);
    assert_non_null(strstr(line, "3 connections open"));
    assert_int_equal(c.levels[0], UDS_LOG_WARNING);
    /* release frees a slot: the next client is handed out */
    close(c.fds[0]);
    c.fds[0] = -1;
    uds_acceptor_release(c.a, c.peers[0].cred.uid);
    uds_acceptor_stats_get(c.a, &st);
    assert_int_equal(st.conns, 2);
    assert_int_equal(uds_acceptor_uid_conns(c.a, getuid()), 2);
    cl[5] = client(&a);
    run_until(&c, 6, 5000);
    assert_int_equal(c.ncb, 4);
    assert_true(quiet(cl[5]));
    assert_int_equal(c.peers[3].seq, 6);
    for (int i = 0; i < 6; i++)
        close(cl[i]);
    ctx_free(&c);
    tu_rmtree(dir);
    free(dir);
}

/* All clients have our uid: the per-uid limit is a second total limit. */
static void test_per_uid_same(void **state)
{
    (void)state;
    char *dir = tu_tmpdir();
    uds_acceptor_opts o;
    memset(&o, 0, sizeof(o));
    o.max_conns_per_uid = 2;
    static struct ctx c;
    ctx_init(&c, &o);
    uds_addr a = add_unix(&c, dir, "u.sock");
    int cl[3];
    for (int i = 0; i < 3; i++)
        cl[i] = client(&a);
    run_until(&c, 3, 5000);
    assert_int_equal(c.ncb, 2);
    assert_int_equal(c.peers[0].uid_conns, 1);
    assert_int_equal(c.peers[1].uid_conns, 2);
    assert_true(sees_eof(cl[2], 2000));
    char want[64];
    snprintf(want, sizeof(want), "uid %u has 2 connections open (max_conns_per_uid 2)",
             (unsigned)getuid());
    assert_int_equal(log_count(&c, want), 1);
    for (int i = 0; i < 3; i++)
        close(cl[i]);
    ctx_free(&c);
    tu_rmtree(dir);
    free(dir);
}

/* A client connected as `uid` by a child process, received over SCM_RIGHTS. */
static int connect_as(uid_t uid, const uds_addr *a)
{
    int sp[2];
    assert_int_equal(uds_pair(SOCK_STREAM, 0, sp), 0);
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        close(sp[0]);
        if (setgroups(0, NULL) < 0 || setresgid(uid, uid, uid) < 0 ||
            setresuid(uid, uid, uid) < 0)
            _exit(10);
        uds_connect_opts o = {.flags = UDS_NONBLOCK};
        int fd = uds_connect(a, &o);
        if (fd < 0)
            _exit(11);
        if (uds_send_fds(sp[1], "x", 1, &fd, 1) != 1)
            _exit(12);
        _exit(0);
    }
    close(sp[1]);
    char b;
    int fd = -1;
    size_t nfd = 1;
    assert_int_equal(uds_recv_fds(sp[0], &b, 1, &fd, &nfd), 1);
    assert_int_equal(nfd, 1);
    close(sp[0]);
    int st;
    assert_int_equal(waitpid(pid, &st, 0), pid);
    assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    return fd;
}

static void test_per_uid_two_uids(void **state)
{
    (void)state;
    if (geteuid() != 0)
        skip();
    uds_acceptor_opts o;
    memset(&o, 0, sizeof(o));
    o.max_conns_per_uid = 2;
    static struct ctx c;
    ctx_init(&c, &o);
    /* abstract: no file permissions for the unprivileged clients */
    char name[64];
    snprintf(name, sizeof(name), "@udsock-test-acceptor-%ld", (long)getpid());
    uds_addr a;
    uds_listener l;
    assert_int_equal(uds_addr_parse(&a, name), 0);
    assert_int_equal(uds_listen(&l, &a, NULL), 0);
    assert_int_equal(uds_acceptor_add(c.a, &l), 0);
    int cl[6];
    cl[0] = connect_as(1001, &a);
    cl[1] = connect_as(1002, &a);
    cl[2] = connect_as(1001, &a);
    cl[3] = connect_as(1001, &a); /* third of 1001: over the limit */
    cl[4] = connect_as(1002, &a);
    run_until(&c, 5, 5000);
    assert_int_equal(c.ncb, 4);
    assert_int_equal(uds_acceptor_uid_conns(c.a, 1001), 2);
    assert_int_equal(uds_acceptor_uid_conns(c.a, 1002), 2);
    assert_int_equal(uds_acceptor_uid_conns(c.a, 0), 0);
    assert_int_equal(c.peers[0].cred.uid, 1001);
    assert_int_equal(c.peers[1].cred.uid, 1002);
    assert_int_equal(c.peers[2].uid_conns, 2);
    assert_int_equal(c.peers[3].cred.uid, 1002);
    assert_int_equal(c.peers[3].uid_conns, 2);
    assert_true(sees_eof(cl[3], 2000));
    for (int i = 0; i < 5; i++)
        if (i != 3)
            assert_true(quiet(cl[i]));
    assert_int_equal(log_count(&c, "uid 1001 has 2 connections open (max_conns_per_uid 2)"), 1);
    assert_int_equal(log_count(&c, "uid 1002 has"), 0);
    /* 1001 lets one go: another 1001 client is admitted */
    close(c.fds[0]);
    c.fds[0] = -1;
    uds_acceptor_release(c.a, 1001);
    assert_int_equal(uds_acceptor_uid_conns(c.a, 1001), 1);
    cl[5] = connect_as(1001, &a);
    run_until(&c, 6, 5000);
    assert_int_equal(c.ncb, 5);
    assert_int_equal(c.peers[4].cred.uid, 1001);
    assert_int_equal(c.peers[4].uid_conns, 2);
    assert_true(quiet(cl[5]));
    uds_acceptor_stats st;
    uds_acceptor_stats_get(c.a, &st);
    assert_int_equal(st.conns, 4);
    assert_int_equal(st.refused, 1);
    for (int i = 0; i < 6; i++)
        close(cl[i]);
    ctx_free(&c);
}

/* ---- admit hook and access rules ------------------------------------------ */

static int admit_even_refused(uds_acceptor *a, int fd, const uds_peer *p,
                              const char **why, void *arg)
{
    (void)a;
    int *calls = arg;
    (*calls)++;
    assert_true(fd >= 0);
    assert_int_equal(p->cred.uid, getuid());
    if (p->seq % 2 == 0) {
        *why = "even connection numbers are refused";
        return -1;
    }
    return 0;
}

static void test_admit_hook(void **state)
{
    (void)state;
    char *dir = tu_tmpdir();
    int calls = 0;
    uds_acceptor_opts o;
    memset(&o, 0, sizeof(o));
    o.admit = admit_even_refused;
    o.admit_arg = &calls;
    static struct ctx c;
    ctx_init(&c, &o);
    uds_addr a = add_unix(&c, dir, "h.sock");
    int cl[4];
    for (int i = 0; i < 4; i++)
        cl[i] = client(&a);
    run_until(&c, 4, 5000);
    assert_int_equal(calls, 4);
    assert_int_equal(c.ncb, 2);
    assert_int_equal(c.peers[0].seq, 1);
    assert_int_equal(c.peers[1].seq, 3);
    assert_true(quiet(cl[0]));
    assert_true(sees_eof(cl[1], 2000));
    assert_true(quiet(cl[2]));
    assert_true(sees_eof(cl[3], 2000));
    assert_int_equal(log_count(&c, "even connection numbers are refused"), 2);
    uds_acceptor_stats st;
    uds_acceptor_stats_get(c.a, &st);
    assert_int_equal(st.refused, 2);
    assert_int_equal(st.conns, 2); /* a refusal holds no slot */
    assert_int_equal(uds_acceptor_uid_conns(c.a, getuid()), 2);
    for (int i = 0; i < 4; i++)
        close(cl[i]);
    ctx_free(&c);
    tu_rmtree(dir);
    free(dir);
}

static void test_access_rules(void **state)
{
    (void)state;
    char *dir = tu_tmpdir();
    uds_access *acc;
    assert_int_equal(uds_access_new(&acc), 0);
    assert_int_equal(uds_access_add(acc, UDS_DENY_UID, getuid()), 0);
    uds_acceptor_opts o;
    memset(&o, 0, sizeof(o));
    o.access = acc;
    static struct ctx c;
    ctx_init(&c, &o);
    uds_addr a = add_unix(&c, dir, "r.sock");
    int fd = client(&a);
    run_until(&c, 1, 5000);
    assert_int_equal(c.ncb, 0);
    assert_true(sees_eof(fd, 2000));
    assert_int_equal(log_count(&c, "denied by the access rules"), 1);
    close(fd);
    ctx_free(&c);
    uds_access_free(acc);
    tu_rmtree(dir);
    free(dir);
}

/* ---- TCP peers ------------------------------------------------------------ */

static void test_tcp(void **state)
{
    (void)state;
    uds_access *acc;
    assert_int_equal(uds_access_new(&acc), 0);
    for (int with_rules = 0; with_rules < 2; with_rules++) {
        uds_acceptor_opts o;
        memset(&o, 0, sizeof(o));
        o.access = acc;
        o.max_conns_per_uid = 1; /* unix only: does not limit TCP */
        static struct ctx c;
        ctx_init(&c, &o);
        uds_addr a;
        uds_listener l;
        assert_int_equal(uds_addr_parse(&a, "tcp:127.0.0.1:0"), 0);
        assert_int_equal(uds_listen(&l, &a, NULL), 0);
        uds_addr bound = l.addr;
        assert_int_equal(uds_acceptor_add(c.a, &l), 0);
        int cl[2];
        for (int i = 0; i < 2; i++)
            cl[i] = uds_connect(&bound, NULL);
        assert_true(cl[0] >= 0 && cl[1] >= 0);
        uds_addr mine;
        assert_int_equal(uds_local_addr(cl[0], &mine), 0);
        char text[UDS_ADDR_STRLEN];
        assert_true(uds_addr_format(&mine, text, sizeof(text)) > 0);
        run_until(&c, 2, 5000);
        if (!with_rules) {
            assert_int_equal(c.ncb, 2);
            assert_false(c.peers[0].is_unix);
            assert_int_equal(c.peers[0].cred.pid, 0);
            assert_true(c.peers[0].cred.uid == (uid_t)-1);
            assert_true(c.peers[0].cred.gid == (gid_t)-1);
            assert_int_equal(c.peers[0].addr.kind, UDS_ADDR_TCP);
            assert_true(uds_addr_equal(&c.peers[0].addr, &mine));
            assert_int_equal(c.peers[1].uid_conns, 0);
            uds_acceptor_release(c.a, c.peers[0].cred.uid);
            uds_acceptor_stats st;
            uds_acceptor_stats_get(c.a, &st);
            assert_int_equal(st.conns, 1);
            /* rules for the next round */
            assert_int_equal(uds_access_add(acc, UDS_ALLOW_UID, 0), 0);
        } else {
            /* a TCP peer has no uid: rules cannot be evaluated, refused */
            assert_int_equal(c.ncb, 0);
            assert_true(sees_eof(cl[0], 2000));
            char want[UDS_ADDR_STRLEN + 32];
            snprintf(want, sizeof(want), "refused connection #1 from %s: ", text);
            assert_non_null(log_find(&c, want));
            assert_non_null(log_find(&c, "access rules cannot be evaluated"));
        }
        close(cl[0]);
        close(cl[1]);
        ctx_free(&c);
    }
    uds_access_free(acc);
}

/* ---- EMFILE --------------------------------------------------------------- */

static int busy_rounds;

/* Always readable, never read: the loop is busy every round. */
static void on_busy(uds_loop *l, int fd, unsigned ev, void *arg)
{
    (void)l;
    (void)fd;
    (void)ev;
    (void)arg;
    busy_rounds++;
}

static int max_open_fd(void)
{
    struct rlimit rl;
    getrlimit(RLIMIT_NOFILE, &rl);
    int m = 0;
    for (int fd = 0; fd < 65536 && (rlim_t)fd < rl.rlim_cur; fd++)
        if (fcntl(fd, F_GETFD) >= 0)
            m = fd;
    return m;
}

static struct rlimit saved_nofile;

/* A failed assertion must not leave the next tests without fds. */
static int restore_nofile(void **state)
{
    (void)state;
    if (saved_nofile.rlim_cur)
        setrlimit(RLIMIT_NOFILE, &saved_nofile);
    return 0;
}

static void test_emfile(void **state)
{
    (void)state;
    TU_VALGRIND_SKIP("RLIMIT_NOFILE is valgrind's, not ours");
    char *dir = tu_tmpdir();
    static struct ctx c;
    uds_acceptor_opts o;
    memset(&o, 0, sizeof(o));
    o.emfile_pause_ms = 250; /* long enough to see it paused on a busy VM */
    ctx_init(&c, &o);
    uds_addr a = add_unix(&c, dir, "e.sock");
    int bp[2];
    assert_int_equal(pipe2(bp, O_CLOEXEC), 0);
    assert_int_equal(write(bp[1], "b", 1), 1);
    assert_int_equal(uds_loop_watch(c.loop, bp[0], UDS_EV_READ, on_busy, NULL), 0);
    enum { WAITING = 100 };
    int cl[WAITING + 1];
    for (int i = 0; i < WAITING; i++)
        cl[i] = client(&a);

    /* no fd left for accept: fill the holes, cap the limit just above */
    struct rlimit old, low;
    assert_int_equal(getrlimit(RLIMIT_NOFILE, &old), 0);
    saved_nofile = old;
    int top = max_open_fd();
    int *fill = calloc((size_t)top + 2, sizeof(int)), nfill = 0;
    for (;;) {
        int fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
        assert_true(fd >= 0);
        fill[nfill++] = fd;
        if (fd >= top)
            break;
    }
    low = old;
    low.rlim_cur = (rlim_t)max_open_fd() + 1;
    assert_int_equal(setrlimit(RLIMIT_NOFILE, &low), 0);

    busy_rounds = 0;
    uint64_t t0 = tu_now_ms();
    while (tu_now_ms() - t0 < 600)
        uds_loop_run_once(c.loop, 10);
    uint64_t starved_ms = tu_now_ms() - t0;
    uds_acceptor_stats st;
    uds_acceptor_stats_get(c.a, &st);
    int starved_rounds = busy_rounds;
    print_message("starved %llu ms: %d loop rounds, %llu accept attempts failed (EMFILE), "
                  "%llu waiting clients closed\n",
                  (unsigned long long)starved_ms, starved_rounds,
                  (unsigned long long)st.emfile, (unsigned long long)st.refused);
    assert_int_equal(c.ncb, 0);
    assert_true(st.emfile >= 1);
    assert_true(st.emfile < 50);   /* paused, not retried every round */
    assert_true(st.refused >= 1);  /* through the reserve fd */
    assert_true(st.refused <= st.emfile);
    assert_true(starved_rounds > 20); /* the loop really was busy */
    /* the oldest waiting client was accepted and closed: it sees EOF */
    assert_true(sees_eof(cl[0], 2000));
    assert_true(quiet(cl[WAITING - 1]));
    assert_int_equal(log_count(&c, "pausing accepts for 250 ms"), 1);
    assert_non_null(log_find(&c, "one waiting client closed"));
    assert_int_equal(c.levels[0], UDS_LOG_ERR);

    /* fds back, just after a pause began: a waiting client is handed out
       within about the pause, although the busy pipe keeps every round
       from being idle (only the timer can re-arm the listener) */
    uint64_t e0 = st.emfile, t = tu_now_ms();
    while (st.emfile == e0 && tu_now_ms() - t < 2000) {
        uds_loop_run_once(c.loop, 10);
        uds_acceptor_stats_get(c.a, &st);
    }
    int fresh_pause = st.emfile == e0 + 1;
    assert_int_equal(setrlimit(RLIMIT_NOFILE, &old), 0);
    for (int i = 0; i < nfill; i++)
        close(fill[i]);
    free(fill);
    cl[WAITING] = client(&a);
    uint64_t t1 = tu_now_ms();
    /* still paused: fds and clients are there, but nothing is taken yet */
    uds_loop_run_once(c.loop, 0);
    assert_int_equal(c.ncb, 0);
    while (c.ncb == 0 && tu_now_ms() - t1 < 3000)
        uds_loop_run_once(c.loop, 10);
    assert_true(c.ncb >= 1);
    uint64_t waited = c.first_cb_ms - t1;
    print_message("accepting resumed %llu ms after the fds came back\n",
                  (unsigned long long)waited);
    assert_true(waited < 1000);
    assert_true(fresh_pause);
    /* and every client still waiting is served */
    run_until(&c, WAITING + 1, 5000);
    uds_acceptor_stats_get(c.a, &st);
    assert_int_equal((uint64_t)c.ncb + st.refused, WAITING + 1);
    assert_true(quiet(cl[WAITING]));

    uds_loop_unwatch(c.loop, bp[0]);
    close(bp[0]);
    close(bp[1]);
    for (int i = 0; i <= WAITING; i++)
        close(cl[i]);
    ctx_free(&c);
    tu_rmtree(dir);
    free(dir);
}

/* ---- refusal log rate limit ----------------------------------------------- */

static void on_alarm(int sig)
{
    (void)sig;
    static const char msg[] = "test_acceptor: the loop did not run out of timers\n";
    ssize_t n = write(2, msg, sizeof(msg) - 1);
    (void)n;
    _exit(99);
}

static void test_log_rate(void **state)
{
    (void)state;
    char *dir = tu_tmpdir();
    uds_acceptor_opts o;
    memset(&o, 0, sizeof(o));
    o.max_conns = 1;
    static struct ctx c;
    ctx_init(&c, &o);
    uds_addr a = add_unix(&c, dir, "l.sock");
    enum { FLOOD = 200 };
    int held = client(&a);
    run_until(&c, 1, 5000);
    assert_int_equal(c.ncb, 1);
    int cl[FLOOD];
    for (int i = 0; i < FLOOD; i++)
        cl[i] = client(&a);
    uint64_t t0 = tu_now_ms();
    run_until(&c, FLOOD + 1, 10000);
    uint64_t flood_ms = tu_now_ms() - t0;
    uds_acceptor_stats st;
    uds_acceptor_stats_get(c.a, &st);
    assert_int_equal(st.refused, FLOOD);
    int lines = log_count(&c, "max_conns 1");
    print_message("%d refusals in %llu ms: %d lines logged\n", FLOOD,
                  (unsigned long long)flood_ms, lines);
    /* one line per refusal up to 10 a second, never one per refusal */
    assert_true(lines >= 10);
    assert_true(lines <= 10 * (int)(flood_ms / 1000 + 2));
    if (flood_ms < 900)
        assert_int_equal(lines, 10);
    for (int i = 0; i < FLOOD; i++) {
        assert_true(sees_eof(cl[i], 2000));
        close(cl[i]);
    }
    /* the rest is summed up in one line when the second is over: the
       summary timer is the only thing left once the listener is closed,
       and it does not outlive the summary (uds_loop_run returns) */
    uds_acceptor_close(c.a);
    signal(SIGALRM, on_alarm);
    alarm(10);
    uint64_t t1 = tu_now_ms();
    assert_int_equal(uds_loop_run(c.loop), 0);
    uint64_t t2 = tu_now_ms();
    assert_int_equal(uds_loop_run(c.loop), 0); /* nothing left: at once */
    uint64_t t3 = tu_now_ms();
    alarm(0);
    signal(SIGALRM, SIG_DFL);
    print_message("summary after %llu ms\n", (unsigned long long)(t2 - t1));
    assert_true(t2 - t1 <= 1500);
    assert_true(t3 - t2 < 200);
    int summaries = log_count(&c, "more connections refused in the last second");
    assert_true(summaries >= 1);
    unsigned long long held_back = 0;
    for (int i = 0; i < c.nlogs && i < MAXLOG; i++) {
        unsigned long long n;
        if (sscanf(c.logs[i], "%llu more connections refused", &n) == 1)
            held_back += n;
    }
    assert_int_equal(held_back + (unsigned long long)lines, FLOOD);
    if (flood_ms < 900) {
        assert_int_equal(summaries, 1);
        assert_int_equal(c.nlogs, 11);
    }
    close(held);
    ctx_free(&c);
    tu_rmtree(dir);
    free(dir);
}

/* ---- pause, resume, close ------------------------------------------------- */

static void test_pause_resume(void **state)
{
    (void)state;
    char *dir = tu_tmpdir();
    static struct ctx c;
    ctx_init(&c, NULL);
    uds_addr a = add_unix(&c, dir, "p.sock");
    uds_acceptor_pause(c.a);
    int cl[8];
    for (int i = 0; i < 3; i++)
        cl[i] = client(&a);
    for (int i = 0; i < 3; i++)
        uds_loop_run_once(c.loop, 30);
    assert_int_equal(c.ncb, 0);
    assert_true(quiet(cl[0])); /* waiting in the backlog, not closed */
    uds_acceptor_resume(c.a);
    run_until(&c, 3, 5000);
    assert_int_equal(c.ncb, 3);
    /* paused from inside the callback: the batch stops there */
    c.pause_at = 4;
    for (int i = 3; i < 8; i++)
        cl[i] = client(&a);
    uds_loop_run_once(c.loop, 2000);
    assert_int_equal(c.ncb, 4);
    for (int i = 0; i < 3; i++)
        uds_loop_run_once(c.loop, 30);
    assert_int_equal(c.ncb, 4);
    uds_acceptor_resume(c.a);
    run_until(&c, 8, 5000);
    assert_int_equal(c.ncb, 8);
    for (int i = 0; i < 8; i++)
        close(cl[i]);
    ctx_free(&c);
    tu_rmtree(dir);
    free(dir);
}

static void test_close(void **state)
{
    (void)state;
    char *dir = tu_tmpdir();
    static struct ctx c;
    ctx_init(&c, NULL);
    const char *path = tu_path(dir, "x.sock");
    uds_addr a = add_unix(&c, dir, "x.sock");
    struct stat sb;
    assert_int_equal(stat(path, &sb), 0);
    /* closed from inside the callback, with more clients waiting */
    c.close_at = 1;
    int cl[3];
    for (int i = 0; i < 3; i++)
        cl[i] = client(&a);
    uds_loop_run_once(c.loop, 2000);
    assert_int_equal(c.ncb, 1);
    assert_int_equal(stat(path, &sb), -1);
    assert_int_equal(errno, ENOENT);
    assert_true(sees_eof(cl[1], 2000)); /* the listener went with its backlog */
    assert_true(quiet(cl[0]));
    /* still valid: counters and release */
    uds_acceptor_stats st;
    uds_acceptor_stats_get(c.a, &st);
    assert_int_equal(st.accepted, 1);
    assert_int_equal(st.conns, 1);
    uds_acceptor_release(c.a, c.peers[0].cred.uid);
    uds_acceptor_stats_get(c.a, &st);
    assert_int_equal(st.conns, 0);
    uds_acceptor_close(c.a); /* twice is fine */
    for (int i = 0; i < 3; i++)
        close(cl[i]);
    /* an inherited listener (not ours to unlink) keeps its file */
    uds_listener l, adopted;
    uds_addr b;
    assert_int_equal(uds_addr_parse(&b, tu_path(dir, "y.sock")), 0);
    assert_int_equal(uds_listen(&l, &b, NULL), 0);
    int dupfd = fcntl(l.fd, F_DUPFD_CLOEXEC, 0);
    assert_int_equal(uds_listener_from_fd(&adopted, dupfd), 0);
    assert_int_equal(uds_acceptor_add(c.a, &adopted), 0);
    int y = client(&b);
    run_until(&c, 2, 5000);
    assert_int_equal(c.ncb, 2);
    uds_acceptor_close(c.a);
    assert_int_equal(stat(tu_path(dir, "y.sock"), &sb), 0);
    close(y);
    uds_listener_close(&l);
    ctx_free(&c);
    tu_rmtree(dir);
    free(dir);
}

/* ---- add() refusals --------------------------------------------------------- */

static void test_add_refuses(void **state)
{
    (void)state;
    char *dir = tu_tmpdir();
    static struct ctx c;
    ctx_init(&c, NULL);
    /* a datagram socket */
    uds_addr a;
    uds_listener l;
    uds_listen_opts lo = {.type = UDS_DGRAM};
    assert_int_equal(uds_addr_parse(&a, tu_path(dir, "d.sock")), 0);
    assert_int_equal(uds_listen(&l, &a, &lo), 0);
    int fd = l.fd;
    assert_int_equal(uds_acceptor_add(c.a, &l), -EINVAL);
    assert_int_equal(l.fd, fd); /* still the caller's */
    uds_listener_close(&l);
    /* a bound stream socket nobody called listen() on */
    int s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true(s >= 0);
    assert_int_equal(uds_addr_parse(&a, tu_path(dir, "n.sock")), 0);
    assert_int_equal(bind(s, &a.u.sa, a.len), 0);
    assert_int_equal(uds_listener_from_fd(&l, s), 0);
    assert_int_equal(uds_acceptor_add(c.a, &l), -EINVAL);
    assert_int_equal(l.fd, s);
    close(s);
    /* a connected socket */
    int p[2];
    assert_int_equal(uds_pair(SOCK_STREAM, 0, p), 0);
    memset(&l, 0, sizeof(l));
    l.fd = p[0];
    l.type = UDS_STREAM;
    assert_int_equal(uds_acceptor_add(c.a, &l), -EINVAL);
    close(p[0]);
    close(p[1]);
    /* not a socket; no fd */
    int pp[2];
    assert_int_equal(pipe2(pp, O_CLOEXEC), 0);
    l.fd = pp[0];
    assert_int_equal(uds_acceptor_add(c.a, &l), -ENOTSOCK);
    close(pp[0]);
    close(pp[1]);
    l.fd = -1;
    assert_int_equal(uds_acceptor_add(c.a, &l), -EINVAL);
    assert_int_equal(uds_acceptor_add(c.a, NULL), -EINVAL);
    /* a blocking listener is made non-blocking when taken */
    assert_int_equal(uds_addr_parse(&a, tu_path(dir, "ok.sock")), 0);
    assert_int_equal(uds_listen(&l, &a, NULL), 0);
    fd = l.fd;
    assert_false(fcntl(fd, F_GETFL) & O_NONBLOCK);
    assert_int_equal(uds_acceptor_add(c.a, &l), 0);
    assert_int_equal(l.fd, -1);
    assert_true(fcntl(fd, F_GETFL) & O_NONBLOCK);
    uds_acceptor_stats st;
    uds_acceptor_stats_get(c.a, &st);
    assert_int_equal(st.accepted, 0);
    ctx_free(&c);
    /* bad arguments to new */
    uds_loop *loop;
    uds_acceptor *x;
    assert_int_equal(uds_loop_new(&loop), 0);
    assert_int_equal(uds_acceptor_new(&x, loop, NULL, NULL, NULL), -EINVAL);
    assert_int_equal(uds_acceptor_new(&x, NULL, NULL, on_client, NULL), -EINVAL);
    uds_acceptor_opts o;
    memset(&o, 0, sizeof(o));
    o.flags = 0x100;
    assert_int_equal(uds_acceptor_new(&x, loop, &o, on_client, NULL), -EINVAL);
    uds_loop_free(loop);
    uds_acceptor_free(NULL);
    tu_rmtree(dir);
    free(dir);
}

/* ---- uds_server_add_conn and the limits ------------------------------------ */

static void echo(uds_server *s, uds_req *req, const void *msg, size_t len, void *arg)
{
    (void)s;
    (void)arg;
    uds_req_reply(req, msg, len);
}

static void test_server_add_conn(void **state)
{
    (void)state;
    uds_loop *l;
    uds_server *s;
    static struct ctx logs;
    memset(&logs, 0, sizeof(logs));
    uds_server_opts o;
    memset(&o, 0, sizeof(o));
    o.max_conns = 2;
    o.log = on_log;
    o.log_arg = &logs;
    assert_int_equal(uds_loop_new(&l), 0);
    assert_int_equal(uds_server_new(&s, l, &o, echo, NULL), 0);
    int p[3][2];
    for (int i = 0; i < 3; i++)
        assert_int_equal(uds_pair(SOCK_STREAM, 0, p[i]), 0);
    assert_int_equal(uds_server_add_conn(s, p[0][0]), 0);
    assert_int_equal(uds_server_add_conn(s, p[1][0]), 0);
    assert_int_equal(uds_server_add_conn(s, p[2][0]), -EUSERS);
    assert_true(fcntl(p[2][0], F_GETFD) >= 0); /* refused: still ours */
    uds_server_stats st;
    uds_server_stats_get(s, &st);
    assert_int_equal(st.accepted, 2);
    assert_int_equal(st.refused, 1);
    assert_int_equal(st.conns, 2);
    assert_int_equal(log_count(&logs, "max_conns 2"), 1);
    /* one goes away: its slot is free once the server has seen it */
    close(p[0][1]);
    for (int i = 0; i < 100 && st.conns == 2; i++) {
        uds_loop_run_once(l, 20);
        uds_server_stats_get(s, &st);
    }
    assert_int_equal(st.conns, 1);
    assert_int_equal(uds_server_add_conn(s, p[2][0]), 0);
    uds_server_stats_get(s, &st);
    assert_int_equal(st.accepted, 3);
    assert_int_equal(st.conns, 2);
    uds_server_free(s);
    uds_loop_free(l);
    close(p[1][1]);
    close(p[2][1]);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_batch),
        cmocka_unit_test(test_max_conns),
        cmocka_unit_test(test_per_uid_same),
        cmocka_unit_test(test_per_uid_two_uids),
        cmocka_unit_test(test_admit_hook),
        cmocka_unit_test(test_access_rules),
        cmocka_unit_test(test_tcp),
        cmocka_unit_test_teardown(test_emfile, restore_nofile),
        cmocka_unit_test(test_log_rate),
        cmocka_unit_test(test_pause_resume),
        cmocka_unit_test(test_close),
        cmocka_unit_test(test_add_refuses),
        cmocka_unit_test(test_server_add_conn),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
