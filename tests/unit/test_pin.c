/*
 * test_pin.c — the safe bind pinned to its directory: a directory swapped
 * for a symlink at each step redirects nothing; the lock file's bounded
 * and interruptible wait and its holder; sock_diag's proof that the bound
 * file is ours, and the fallbacks without sock_diag and without /proc.
 */
#include "testutil.h"
#include "../../src/internal.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

static char *dir;
static char sub[4096], alt[4096], victim_dir[4096], victim[4096], sockp[4096];

static int setup(void **state)
{
    (void)state;
    dir = tu_tmpdir();
    if (!dir)
        return -1;
    snprintf(sub, sizeof(sub), "%s/sub", dir);
    snprintf(alt, sizeof(alt), "%s/alt", dir);
    snprintf(victim_dir, sizeof(victim_dir), "%s/victim", dir);
    snprintf(victim, sizeof(victim), "%s/victim/app.sock", dir);
    snprintf(sockp, sizeof(sockp), "%s/sub/app.sock", dir);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    uds__bind_hook = NULL;
    __atomic_fetch_or(&uds__features, UDS__FEAT_SOCKDIAG | UDS__FEAT_PROCFD, __ATOMIC_RELAXED);
    tu_rmtree(dir);
    free(dir);
    dir = NULL;
    return 0;
}

/* A stale socket file (bound, then its socket closed) at p, mode 0600. */
static void stale_socket(const char *p)
{
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true(fd >= 0);
    struct sockaddr_un un = {.sun_family = AF_UNIX};
    snprintf(un.sun_path, sizeof(un.sun_path), "%s", p);
    assert_int_equal(bind(fd, (struct sockaddr *)&un, sizeof(un)), 0);
    close(fd);
    assert_int_equal(chmod(p, 0600), 0);
}

static int swap_at;
static int swapped;

/* Exchanges sub (a directory) with alt (a symlink to the victim dir). */
static void swap_hook(int step)
{
    if (step != swap_at || swapped)
        return;
    assert_int_equal(syscall(SYS_renameat2, AT_FDCWD, sub, AT_FDCWD, alt, 2 /* EXCHANGE */), 0);
    swapped = 1;
}

/*
 * One round of defect 1, deterministic: at `step` of the safe bind the
 * directory is swapped for a symlink to another directory holding (if
 * `stale`) a stale socket of the same name. That socket keeps its mode
 * and existence, no lock file appears beside it; when the listen
 * succeeds (want 0), ours is bound, chmod'ed and removed in the directory
 * opened first (now reached as alt); when it fails, nothing of ours is
 * left in the pinned dir.
 */
static void swap_round(int step, int flags, int stale, int want)
{
    assert_int_equal(mkdir(sub, 0755), 0);
    assert_int_equal(mkdir(victim_dir, 0700), 0);
    assert_int_equal(symlink(victim_dir, alt), 0);
    struct stat v0, v1;
    if (stale) {
        stale_socket(victim);
        assert_int_equal(lstat(victim, &v0), 0);
    }
    swap_at = step;
    swapped = 0;
    uds__bind_hook = swap_hook;
    uds_addr a;
    uds_listener l;
    uds_listen_opts o = {.mode = 0666, .set_owner = 1, .owner = (uid_t)-1, .group = getgid(),
                         .flags = flags};
    assert_int_equal(uds_addr_parse(&a, sockp), 0);
    assert_int_equal(uds_listen(&l, &a, &o), want);
    uds__bind_hook = NULL;
    assert_true(swapped);

    char mine[4200], lk[4200];
    snprintf(mine, sizeof(mine), "%s/app.sock", alt); /* the pinned dir, renamed */
    struct stat m;
    if (want == 0) {
        assert_int_equal(lstat(mine, &m), 0);
        assert_true(S_ISSOCK(m.st_mode));
        assert_int_equal(m.st_mode & 07777, 0666);
    } else {
        assert_int_equal(lstat(mine, &m), -1);
    }
    if (stale) {
        assert_int_equal(lstat(victim, &v1), 0);
        assert_int_equal(v1.st_ino, v0.st_ino);
        assert_int_equal(v1.st_mode, v0.st_mode);
        assert_int_equal(v1.st_uid, v0.st_uid);
    } else if (lstat(victim, &v1) == 0) {
        /* a bind by name that the swap redirected: the file it made got
           neither the mode nor the owner */
        assert_int_equal(want, UDS_EPATHMOVED);
        assert_true(S_ISSOCK(v1.st_mode));
        assert_int_equal(v1.st_mode & 07777, 0);
        assert_int_equal(unlink(victim), 0);
    }
    snprintf(lk, sizeof(lk), "%s%s", victim, UDS_LOCK_SUFFIX);
    assert_int_equal(lstat(lk, &v1), -1);

    if (want == 0) { /* close removes ours, through the pinned dir, and nothing else */
        uds_listener_close(&l);
        assert_int_equal(lstat(mine, &m), -1);
    }
    if (stale) {
        assert_int_equal(lstat(victim, &v1), 0);
        assert_int_equal(v1.st_ino, v0.st_ino);
        assert_int_equal(unlink(victim), 0);
    }
    assert_int_equal(rmdir(victim_dir), 0);
    assert_int_equal(unlink(sub), 0); /* the symlink, after the swap */
    assert_int_equal(rmdir(alt), 0);
}

/* UDS_BIND_PINNED: every step is pinned, each swap redirects nothing. */
static void test_swap_each_step(void **state)
{
    (void)state;
    for (int step = 1; step <= 3; step++)
        swap_round(step, UDS_BIND_PINNED, 1, 0);
}

/*
 * The default in a trusted chain (the temp dir is root's: a bind by name).
 * Only root or we can swap there; the test seam does it anyway. A swap
 * before the trust check (step 1) makes the chain lead elsewhere than the
 * opened dir: pinned. After the bind (step 3): harmless. Between the check
 * and the bind (step 2) the bind by name follows the swap: into the stale
 * socket's name (-EADDRINUSE, untouched) or, with none there, to a new
 * file that the sock_diag check rejects (UDS_EPATHMOVED: no chmod, no
 * chown, not listening). Then the same with sock_diag off (the fallback
 * check: no socket at the name in the pinned dir).
 */
static void test_swap_by_name(void **state)
{
    (void)state;
    swap_round(1, 0, 1, 0);
    swap_round(2, 0, 1, -EADDRINUSE);
    swap_round(2, 0, 0, UDS_EPATHMOVED);
    swap_round(3, 0, 1, 0);
    __atomic_fetch_and(&uds__features, ~UDS__FEAT_SOCKDIAG, __ATOMIC_RELAXED);
    swap_round(2, 0, 0, UDS_EPATHMOVED);
    __atomic_fetch_or(&uds__features, UDS__FEAT_SOCKDIAG, __ATOMIC_RELAXED);
}

/* An attacker's socket renamed over ours between bind and settle (step 3). */
static int other_fd = -1;
static ino_t other_ino;

static void replace_hook(int step)
{
    if (step != 3 || swapped)
        return;
    char op[4200];
    snprintf(op, sizeof(op), "%s/other.sock", sub);
    other_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true(other_fd >= 0);
    struct sockaddr_un un = {.sun_family = AF_UNIX};
    assert_true(strlen(op) < sizeof(un.sun_path));
    memcpy(un.sun_path, op, strlen(op) + 1);
    assert_int_equal(bind(other_fd, (struct sockaddr *)&un, sizeof(un)), 0);
    assert_int_equal(chmod(op, 0600), 0);
    struct stat st;
    assert_int_equal(lstat(op, &st), 0);
    other_ino = st.st_ino;
    assert_int_equal(rename(op, sockp), 0);
    swapped = 1;
}

/*
 * After bind() the name is taken over by another socket of the same file
 * system (same st_dev, another inode): sock_diag's inode says it is not
 * ours, so neither its mode nor its owner is touched, nothing listens,
 * and it is not removed. Pinned and by name.
 */
static void test_replaced_after_bind(void **state)
{
    (void)state;
    static const int flags[] = {0, UDS_BIND_PINNED};
    for (int i = 0; i < 2; i++) {
        assert_int_equal(mkdir(sub, 0755), 0);
        swapped = 0;
        uds__bind_hook = replace_hook;
        uds_addr a;
        uds_listener l;
        uds_listen_opts o = {.mode = 0666, .flags = flags[i]};
        assert_int_equal(uds_addr_parse(&a, sockp), 0);
        int r = uds_listen(&l, &a, &o);
        uds__bind_hook = NULL;
        assert_true(swapped);
        if (r == 0)
            uds_listener_close(&l);
        assert_int_equal(r, UDS_EPATHMOVED);
        struct stat st;
        assert_int_equal(lstat(sockp, &st), 0); /* the other one, left alone */
        assert_int_equal(st.st_ino, other_ino);
        assert_int_equal(st.st_mode & 07777, 0600);
        close(other_fd);
        assert_int_equal(unlink(sockp), 0);
        assert_int_equal(rmdir(sub), 0);
    }
}

/* The stale unlink happens in the pinned dir: a swap before the lock
   leaves the victim's stale socket in place and replaces ours. */
static void test_stale_in_pinned_dir(void **state)
{
    (void)state;
    assert_int_equal(mkdir(sub, 0755), 0);
    assert_int_equal(mkdir(victim_dir, 0700), 0);
    assert_int_equal(symlink(victim_dir, alt), 0);
    stale_socket(victim);
    stale_socket(sockp); /* a stale one of our own, to be replaced */
    struct stat v0, v1, s0;
    assert_int_equal(lstat(victim, &v0), 0);
    assert_int_equal(lstat(sockp, &s0), 0);
    swap_at = 1;
    swapped = 0;
    uds__bind_hook = swap_hook;
    uds_addr a;
    uds_listener l;
    assert_int_equal(uds_addr_parse(&a, sockp), 0);
    assert_int_equal(uds_listen(&l, &a, NULL), 0);
    uds__bind_hook = NULL;
    assert_int_equal(lstat(victim, &v1), 0);
    assert_int_equal(v1.st_ino, v0.st_ino);
    char mine[4200];
    snprintf(mine, sizeof(mine), "%s/app.sock", alt);
    struct stat m;
    assert_int_equal(lstat(mine, &m), 0);
    (void)s0;
    uds_addr ma; /* the stale one was replaced by our live socket */
    assert_int_equal(uds_addr_parse(&ma, mine), 0);
    int c = uds_connect(&ma, NULL);
    assert_true(c >= 0);
    close(c);
    uds_listener_close(&l);
}

/* Runs in a child: holds the lock file of p (with our marker) until
   killed; tells the parent through the pipe when it holds it. */
static pid_t hold_lock(const char *p)
{
    char lk[4200];
    snprintf(lk, sizeof(lk), "%s%s", p, UDS_LOCK_SUFFIX);
    int fd = open(lk, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, UDS_LOCK_MARKER, sizeof(UDS_LOCK_MARKER) - 1),
                     (ssize_t)sizeof(UDS_LOCK_MARKER) - 1);
    int pp[2];
    assert_int_equal(pipe2(pp, O_CLOEXEC), 0);
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        alarm(60);
        if (flock(fd, LOCK_EX) < 0)
            _exit(1);
        (void)!write(pp[1], "k", 1);
        for (int i = 0; i < 600; i++)
            pause(); /* until killed (bounded: SIGALRM in 60 s) */
        _exit(0);
    }
    close(fd);
    close(pp[1]);
    char c;
    assert_int_equal(read(pp[0], &c, 1), 1);
    close(pp[0]);
    return pid;
}

static void reap(pid_t pid)
{
    kill(pid, SIGKILL);
    assert_int_equal(waitpid(pid, NULL, 0), pid);
}

/* Defect 6: the wait is bounded and the holder can be named. */
static void test_lock_timeout(void **state)
{
    (void)state;
    const char *p = tu_path(dir, "t.sock");
    pid_t holder = hold_lock(p);
    uds_addr a;
    uds_listener l;
    assert_int_equal(uds_addr_parse(&a, p), 0);
    uds_listen_opts o = {.lock_timeout_ms = 300};
    uint64_t t0 = tu_now_ms();
    assert_int_equal(uds_listen(&l, &a, &o), -ETIMEDOUT);
    uint64_t dt = tu_now_ms() - t0;
    assert_true(dt >= 290 && dt < 5000);
    assert_int_equal(uds_listen_lock_holder(&a), holder);
    struct stat st;
    assert_int_equal(lstat(p, &st), -1); /* nothing bound */
    char lk[4200];
    snprintf(lk, sizeof(lk), "%s%s", p, UDS_LOCK_SUFFIX);
    assert_int_equal(lstat(lk, &st), 0); /* the holder's file stays */
    reap(holder);
    assert_int_equal(uds_listen_lock_holder(&a), 0); /* nobody holds it */
    /* released: the next listen takes the leftover and removes it */
    assert_int_equal(uds_listen(&l, &a, &o), 0);
    assert_int_equal(lstat(lk, &st), -1);
    uds_listener_close(&l);
    assert_int_equal(uds_listen_lock_holder(&a), -ENOENT);
    uds_addr t;
    assert_int_equal(uds_addr_parse(&t, "@x"), 0);
    assert_int_equal(uds_listen_lock_holder(&t), -EINVAL);
}

static volatile sig_atomic_t got_alarm;
static void on_alarm(int sig)
{
    (void)sig;
    got_alarm = 1;
}

/*
 * Defect 6: a blocked, pending SIGTERM/SIGINT/SIGHUP/SIGQUIT ends the
 * wait at once with -EINTR (a program reading signals from a signalfd);
 * a handled signal ends it too, even with SA_RESTART.
 */
static void test_lock_interrupt(void **state)
{
    (void)state;
    const char *p = tu_path(dir, "i.sock");
    pid_t holder = hold_lock(p);
    uds_addr a;
    uds_listener l;
    assert_int_equal(uds_addr_parse(&a, p), 0);
    uds_listen_opts o = {.lock_timeout_ms = -1}; /* no limit */
    static const int sigs[] = {SIGTERM, SIGINT, SIGHUP, SIGQUIT};
    for (size_t i = 0; i < 4; i++) {
        sigset_t set, old;
        sigemptyset(&set);
        sigaddset(&set, sigs[i]);
        assert_int_equal(sigprocmask(SIG_BLOCK, &set, &old), 0);
        assert_int_equal(kill(getpid(), sigs[i]), 0);
        uint64_t t0 = tu_now_ms();
        assert_int_equal(uds_listen(&l, &a, &o), -EINTR);
        assert_true(tu_now_ms() - t0 < 2000);
        struct timespec z = {0, 0};
        assert_int_equal(sigtimedwait(&set, NULL, &z), sigs[i]);
        assert_int_equal(sigprocmask(SIG_SETMASK, &old, NULL), 0);
    }
    struct sigaction sa, oldsa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_alarm;
    sa.sa_flags = SA_RESTART;
    assert_int_equal(sigaction(SIGALRM, &sa, &oldsa), 0);
    struct itimerval it = {{0, 0}, {0, 200000}};
    got_alarm = 0;
    assert_int_equal(setitimer(ITIMER_REAL, &it, NULL), 0);
    uint64_t t0 = tu_now_ms();
    assert_int_equal(kill(holder, 0), 0);
    assert_int_equal(uds_listen(&l, &a, &o), -EINTR);
    assert_true(got_alarm);
    assert_true(tu_now_ms() - t0 < 5000);
    sigaction(SIGALRM, &oldsa, NULL);
    alarm(120); /* the test's own bound again */
    reap(holder);
}

/* sock_diag names the file our socket is bound to; without it (feature
   bit cleared, as on a kernel without unix_diag) listen still works. */
static void test_sockdiag_and_fallback(void **state)
{
    (void)state;
    const char *p = tu_path(dir, "d.sock");
    uds_addr a;
    uds_listener l;
    assert_int_equal(uds_addr_parse(&a, p), 0);
    assert_int_equal(uds_listen(&l, &a, NULL), 0);
    dev_t dev;
    uint32_t ino;
    struct stat st;
    assert_int_equal(lstat(p, &st), 0);
    assert_int_equal(uds__sock_vfs(l.fd, &dev, &ino), 0);
    assert_true(dev == st.st_dev);
    assert_int_equal(ino, (uint32_t)st.st_ino);
    unsigned long before = uds__sockdiag_checks;
    uds_listener_close(&l);
    assert_int_equal(uds_listen(&l, &a, NULL), 0);
    assert_int_equal(uds__sockdiag_checks, before + 1); /* the proof was used */
    /* a socket bound to an abstract name has no file */
    int fd = uds_dgram_socket(AF_UNIX, 0);
    assert_true(fd >= 0);
    assert_int_equal(uds__sock_vfs(fd, &dev, &ino), -ENOENT);
    close(fd);
    uds_listener_close(&l);

    __atomic_fetch_and(&uds__features, ~UDS__FEAT_SOCKDIAG, __ATOMIC_RELAXED);
    assert_int_equal(uds__sock_vfs(0, &dev, &ino), -ENOPROTOOPT);
    before = uds__sockdiag_checks;
    uds_listen_opts o = {.mode = 0640};
    assert_int_equal(uds_listen(&l, &a, &o), 0);
    assert_int_equal(uds__sockdiag_checks, before);
    assert_int_equal(lstat(p, &st), 0);
    assert_int_equal(st.st_mode & 07777, 0640);
    uds_listener_close(&l);
    assert_int_equal(lstat(p, &st), -1);
    __atomic_fetch_or(&uds__features, UDS__FEAT_SOCKDIAG, __ATOMIC_RELAXED);
}

/* Without /proc (feature bit cleared): short paths bind by name (the
   kernel records the real path), the stale probe uses the path, long
   paths are -ENAMETOOLONG for listen and connect. */
static void test_no_procfd(void **state)
{
    (void)state;
    __atomic_fetch_and(&uds__features, ~UDS__FEAT_PROCFD, __ATOMIC_RELAXED);
    const char *p = tu_path(dir, "n.sock");
    stale_socket(p);
    uds_addr a, b;
    uds_listener l;
    assert_int_equal(uds_addr_parse(&a, p), 0);
    assert_int_equal(uds_listen(&l, &a, &(uds_listen_opts){.mode = 0600}), 0);
    assert_int_equal(uds_local_addr(l.fd, &b), 0);
    assert_true(uds_addr_equal(&a, &b));
    assert_int_equal(uds_listen(&(uds_listener){0}, &a, NULL), -EADDRINUSE);
    int c = uds_connect(&a, NULL);
    assert_true(c >= 0);
    close(c);
    uds_listener_close(&l);
    struct stat st;
    assert_int_equal(lstat(p, &st), -1);

    static char lp[400];
    snprintf(lp, sizeof(lp), "%s/%0200d/x.sock", dir, 0);
    assert_int_equal(uds_addr_parse(&a, lp), 0);
    assert_int_equal(uds_connect(&a, NULL), -ENAMETOOLONG);
    snprintf(lp, sizeof(lp), "%s/%0200d", dir, 0);
    assert_int_equal(mkdir(lp, 0700), 0);
    assert_int_equal(uds_listen(&l, &a, NULL), -ENAMETOOLONG);
    __atomic_fetch_or(&uds__features, UDS__FEAT_PROCFD, __ATOMIC_RELAXED);
    /* with /proc again, the same long path works */
    assert_int_equal(uds_listen(&l, &a, NULL), 0);
    c = uds_connect(&a, NULL);
    assert_true(c >= 0);
    close(c);
    uds_listener_close(&l);
}

/*
 * Listens on p (default flags), checks a client reaches it and the file is
 * removed at close; returns 1 if the kernel recorded p itself as the name,
 * 0 if "/proc/self/fd/DIRFD/NAME" (a pinned bind).
 */
static int recorded_real(const char *p)
{
    uds_addr a, b;
    uds_listener l;
    assert_int_equal(uds_addr_parse(&a, p), 0);
    assert_int_equal(uds_listen(&l, &a, &(uds_listen_opts){.mode = 0660}), 0);
    assert_int_equal(uds_local_addr(l.fd, &b), 0);
    int real = uds_addr_equal(&a, &b);
    if (!real) {
        char want[64];
        const char *base = strrchr(p, '/');
        snprintf(want, sizeof(want), "/proc/self/fd/%d/%s", l.dirfd, base ? base + 1 : p);
        assert_string_equal(uds_addr_path(&b), want);
    }
    struct stat st;
    assert_int_equal(stat(p, &st), 0);
    assert_int_equal(st.st_mode & 07777, 0660);
    int c = uds_connect(&a, NULL);
    assert_true(c >= 0);
    close(c);
    uds_listener_close(&l);
    assert_int_equal(lstat(p, &st), -1);
    return real;
}

/* The bind-by-name rule: each kind of directory chain. */
static void test_trusted_chain(void **state)
{
    (void)state;
    char p[4200], q[4200];
    /* the temp dir: root's, 0700, in root's sticky /tmp */
    assert_true(recorded_real(tu_path(dir, "t.sock")));
    /* a sticky world-writable dir of root's: others cannot move our entries */
    snprintf(p, sizeof(p), "%s/sticky", dir);
    assert_int_equal(mkdir(p, 0), 0);
    assert_int_equal(chmod(p, 01777), 0);
    assert_true(recorded_real(tu_path(p, "t.sock")));
    /* root's, but writable by other (no sticky bit) or by group: pinned */
    snprintf(p, sizeof(p), "%s/wo", dir);
    assert_int_equal(mkdir(p, 0), 0);
    assert_int_equal(chmod(p, 0777), 0);
    assert_false(recorded_real(tu_path(p, "t.sock")));
    assert_int_equal(chmod(p, 0775), 0);
    assert_false(recorded_real(tu_path(p, "t.sock")));
    /* owned by 65534, 0755: pinned, also for a dir below it that is root's */
    snprintf(p, sizeof(p), "%s/nobody", dir);
    assert_int_equal(mkdir(p, 0755), 0);
    snprintf(q, sizeof(q), "%s/nobody/root", dir);
    assert_int_equal(mkdir(q, 0755), 0);
    assert_int_equal(chown(p, 65534, 65534), 0);
    assert_false(recorded_real(tu_path(p, "t.sock")));
    assert_false(recorded_real(tu_path(q, "t.sock")));
    /* a /var/run-style symlink of root's to a root dir: real name */
    snprintf(p, sizeof(p), "%s/real", dir);
    assert_int_equal(mkdir(p, 0755), 0);
    snprintf(q, sizeof(q), "%s/run", dir);
    assert_int_equal(symlink("real", q), 0);
    assert_true(recorded_real(tu_path(q, "t.sock")));
    /* the same link owned by 65534: its owner could point it anywhere, so
       it is not even followed (not merely pinned: the directory it leads
       to would be 65534's choice); nothing is created behind it */
    snprintf(q, sizeof(q), "%s/nrun", dir);
    assert_int_equal(symlink(p, q), 0);
    assert_int_equal(lchown(q, 65534, 65534), 0);
    {
        uds_addr na;
        uds_listener nl;
        assert_int_equal(uds_addr_parse(&na, tu_path(q, "t.sock")), 0);
        assert_int_equal(uds_listen(&nl, &na, NULL), UDS_ESYMLINK);
        assert_int_equal(uds_listen_lock_holder(&na), UDS_ESYMLINK);
        struct stat nst;
        assert_int_equal(lstat(tu_path(p, "t.sock"), &nst), -1);
        assert_int_equal(lstat(tu_path(p, "t.sock" UDS_LOCK_SUFFIX), &nst), -1);
        /* a link of 65534's inside a root link's target: the same */
        char r2[4200];
        snprintf(r2, sizeof(r2), "%s/rootlink", dir);
        assert_int_equal(symlink("nrun", r2), 0);
        assert_int_equal(uds_addr_parse(&na, tu_path(r2, "t.sock")), 0);
        assert_int_equal(uds_listen(&nl, &na, NULL), UDS_ESYMLINK);
        /* a 65534 link in a 65534 dir that points back to a root dir:
           refused as well (the race's swapped-in symlink) */
        snprintf(r2, sizeof(r2), "%s/nobody/back", dir);
        assert_int_equal(symlink(p, r2), 0);
        assert_int_equal(lchown(r2, 65534, 65534), 0);
        assert_int_equal(uds_addr_parse(&na, tu_path(r2, "t.sock")), 0);
        assert_int_equal(uds_listen(&nl, &na, NULL), UDS_ESYMLINK);
    }
    /* a root link whose target passes through nobody's dir ("nobody/..",
       which nobody could turn into a symlink elsewhere): pinned */
    snprintf(q, sizeof(q), "%s/via", dir);
    assert_int_equal(symlink("nobody/root/../../real", q), 0);
    assert_false(recorded_real(tu_path(q, "t.sock")));
    /* the same through the path as written */
    snprintf(q, sizeof(q), "%s/nobody/root/../../real/t.sock", dir);
    assert_false(recorded_real(q));
    snprintf(q, sizeof(q), "%s/./real/../real/t.sock", dir);
    assert_true(recorded_real(q));
    /* relative paths start at the canonical cwd */
    char cwd[4096];
    assert_non_null(getcwd(cwd, sizeof(cwd)));
    assert_int_equal(chdir(dir), 0);
    assert_true(recorded_real("t.sock"));
    assert_true(recorded_real("real/t.sock"));
    assert_false(recorded_real("nobody/root/t.sock"));
    snprintf(q, sizeof(q), "%s/nobody/root", dir);
    assert_int_equal(chdir(q), 0); /* a cwd below nobody's dir */
    assert_false(recorded_real("t.sock"));
    assert_int_equal(chdir(cwd), 0);
    /* too long for sun_path (in a trusted chain): pinned */
    snprintf(q, sizeof(q), "%s/%0150d", dir, 0);
    assert_int_equal(mkdir(q, 0700), 0);
    assert_false(recorded_real(tu_path(q, "t.sock")));
    /* UDS_BIND_PINNED in a trusted chain */
    uds_addr a, b;
    uds_listener l;
    assert_int_equal(uds_addr_parse(&a, tu_path(dir, "f.sock")), 0);
    assert_int_equal(uds_listen(&l, &a, &(uds_listen_opts){.flags = UDS_BIND_PINNED}), 0);
    assert_int_equal(uds_local_addr(l.fd, &b), 0);
    assert_false(uds_addr_equal(&a, &b));
    uds_listener_close(&l);
    /* the check itself: the chain must lead to the dir given */
    int d1 = open(dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
    assert_true(d1 >= 0);
    assert_int_equal(uds__chain_trusted(tu_path(dir, "x"), d1), 1);
    assert_int_equal(uds__chain_trusted(tu_path(p, "x"), d1), 0); /* real/ is not dir */
    assert_int_equal(uds__chain_trusted(tu_path(dir, "missing/x"), d1), 0);
    close(d1);
}

/* uds_listener_unlink removes the file and leaves the socket; listeners
   from fds never unlink. */
static void test_unlink_and_from_fd(void **state)
{
    (void)state;
    const char *p = tu_path(dir, "u.sock");
    uds_addr a;
    uds_listener l, w;
    assert_int_equal(uds_addr_parse(&a, p), 0);
    assert_int_equal(uds_listen(&l, &a, NULL), 0);
    assert_true(l.dirfd >= 0);
    int d = dup(l.fd);
    assert_int_equal(uds_listener_from_fd(&w, d), 0);
    assert_int_equal(w.dirfd, -1);
    uds_listener_close(&w); /* closes d, removes nothing */
    struct stat st;
    assert_int_equal(lstat(p, &st), 0);
    assert_int_equal(uds_listener_unlink(&l), 1);
    assert_int_equal(lstat(p, &st), -1);
    assert_int_equal(l.dirfd, -1);
    assert_true(fcntl(l.fd, F_GETFD) >= 0);
    assert_int_equal(uds_listener_unlink(&l), 0);
    uds_listener_close(&l);
}

int main(void)
{
    alarm(120);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_swap_each_step, setup, teardown),
        cmocka_unit_test_setup_teardown(test_swap_by_name, setup, teardown),
        cmocka_unit_test_setup_teardown(test_replaced_after_bind, setup, teardown),
        cmocka_unit_test_setup_teardown(test_trusted_chain, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stale_in_pinned_dir, setup, teardown),
        cmocka_unit_test_setup_teardown(test_lock_timeout, setup, teardown),
        cmocka_unit_test_setup_teardown(test_lock_interrupt, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sockdiag_and_fallback, setup, teardown),
        cmocka_unit_test_setup_teardown(test_no_procfd, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unlink_and_from_fd, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
