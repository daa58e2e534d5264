/*
 * test_splice.c — uds_splice: bytes moved socket -> pipe -> socket intact,
 * end of input, -EAGAIN as a state, -EINVAL for a pair without a pipe,
 * -EPIPE without SIGPIPE (default disposition and ignored), and EINTR
 * retried while a signal handler without SA_RESTART keeps interrupting.
 */
#include "testutil.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#define LEN (3u << 20) /* 3 MiB: several splices each way */

struct feeder {
    int fd;
    const unsigned char *buf;
    size_t len;
    unsigned delay_ms;
};

/* Writes buf to fd (after delay_ms), then shuts the socket's sending side. */
static void *feeder_main(void *arg)
{
    struct feeder *f = arg;
    if (f->delay_ms)
        usleep(f->delay_ms * 1000u);
    uds_write_all(f->fd, f->buf, f->len);
    shutdown(f->fd, SHUT_WR);
    return NULL;
}

struct drainer {
    int fd;
    unsigned char *buf;
    size_t cap, got;
};

static void *drainer_main(void *arg)
{
    struct drainer *d = arg;
    for (;;) {
        ssize_t n = uds_read_some(d->fd, d->buf + d->got, d->cap - d->got);
        if (n <= 0)
            break;
        d->got += (size_t)n;
    }
    return NULL;
}

/* socket a -> pipe -> socket b, all of it, then 0 at the end of input. */
static void test_socket_pipe_socket(void **state)
{
    (void)state;
    int in[2], out[2], p[2];
    assert_int_equal(uds_pair(UDS_STREAM, 0, in), 0);
    assert_int_equal(uds_pair(UDS_STREAM, 0, out), 0);
    assert_int_equal(pipe2(p, O_CLOEXEC), 0);
    unsigned char *src = malloc(LEN), *dst = malloc(LEN);
    assert_non_null(src);
    assert_non_null(dst);
    tu_fill(src, LEN, 7);
    struct feeder f = {in[1], src, LEN, 0};
    struct drainer d = {out[1], dst, LEN, 0};
    pthread_t tf, td;
    assert_int_equal(pthread_create(&tf, NULL, feeder_main, &f), 0);
    assert_int_equal(pthread_create(&td, NULL, drainer_main, &d), 0);
    size_t moved = 0;
    int calls = 0;
    for (;;) {
        ssize_t n = uds_splice(in[0], p[1], 1u << 20, SPLICE_F_MOVE);
        assert_true(n >= 0);
        if (n == 0)
            break;
        calls++;
        size_t left = (size_t)n;
        while (left > 0) {
            ssize_t m = uds_splice(p[0], out[0], left, SPLICE_F_MOVE);
            assert_true(m > 0);
            left -= (size_t)m;
        }
        moved += (size_t)n;
    }
    assert_int_equal(moved, LEN);
    assert_true(calls >= 1);
    shutdown(out[0], SHUT_WR);
    pthread_join(tf, NULL);
    pthread_join(td, NULL);
    assert_int_equal(d.got, LEN);
    assert_memory_equal(dst, src, LEN);
    assert_int_equal(uds_splice(in[0], p[1], 0, 0), 0); /* len 0 */
    free(src);
    free(dst);
    close(in[0]);
    close(in[1]);
    close(out[0]);
    close(out[1]);
    close(p[0]);
    close(p[1]);
}

/* Nothing to move: -EAGAIN; no pipe among the two fds: -EINVAL. */
static void test_states(void **state)
{
    (void)state;
    int sv[2], sv2[2], p[2];
    assert_int_equal(uds_pair(UDS_STREAM, 0, sv), 0);
    assert_int_equal(uds_pair(UDS_STREAM, 0, sv2), 0);
    assert_int_equal(pipe2(p, O_CLOEXEC), 0);
    assert_int_equal(uds_splice(p[0], sv[0], 4096, SPLICE_F_NONBLOCK), -EAGAIN);
    assert_int_equal(uds_set_nonblock(sv[1], 1), 0);
    assert_int_equal(uds_splice(sv[1], p[1], 4096, SPLICE_F_NONBLOCK), -EAGAIN);
    assert_int_equal(uds_splice(sv[0], sv2[0], 4096, 0), -EINVAL);
    assert_int_equal(uds_splice(-1, p[1], 1, 0), -EBADF);
    close(sv[0]);
    close(sv[1]);
    close(sv2[0]);
    close(sv2[1]);
    close(p[0]);
    close(p[1]);
}

/*
 * Splicing into a pipe without a reader and into a socket whose peer has
 * closed: -EPIPE, the process survives with SIGPIPE at its default action
 * (run in a child, so a raised signal would kill only that child), and no
 * SIGPIPE is left pending nor blocked afterwards.
 */
static int epipe_child(int ignore)
{
    if (ignore)
        signal(SIGPIPE, SIG_IGN);
    int sv[2], p[2], q[2];
    if (uds_pair(UDS_STREAM, 0, sv) < 0 || pipe2(p, O_CLOEXEC) < 0 || pipe2(q, O_CLOEXEC) < 0)
        return 2;
    if (uds_write_all(sv[1], "data", 4) != 4)
        return 3;
    close(p[0]); /* nobody reads p */
    if (uds_splice(sv[0], p[1], 4, 0) != -EPIPE)
        return 4;
    if (uds_write_all(q[1], "more", 4) != 4)
        return 5;
    close(sv[1]); /* the socket's peer is gone */
    if (uds_splice(q[0], sv[0], 4, 0) != -EPIPE)
        return 6;
    sigset_t pend, mask;
    sigpending(&pend);
    sigprocmask(SIG_SETMASK, NULL, &mask);
    if (sigismember(&pend, SIGPIPE) || sigismember(&mask, SIGPIPE))
        return 7;
    return 0;
}

static void test_epipe_no_sigpipe(void **state)
{
    (void)state;
    for (int ignore = 0; ignore < 2; ignore++) {
        pid_t pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
            signal(SIGPIPE, SIG_DFL);
            _exit(epipe_child(ignore));
        }
        int st;
        assert_int_equal(waitpid(pid, &st, 0), pid);
        if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
            fail_msg("ignore=%d: child %s %d", ignore, WIFEXITED(st) ? "exited" : "killed by",
                     WIFEXITED(st) ? WEXITSTATUS(st) : WTERMSIG(st));
    }
}

static volatile sig_atomic_t alarms;

static void on_alarm(int sig)
{
    (void)sig;
    alarms++;
}

/* A blocked splice keeps being interrupted (SIGALRM without SA_RESTART
   every millisecond) until data arrives 200 ms later: it is retried. */
static void test_eintr(void **state)
{
    (void)state;
    TU_VALGRIND_SKIP("signals arrive between syscalls, not inside one");
    int sv[2], p[2];
    assert_int_equal(uds_pair(UDS_STREAM, 0, sv), 0);
    assert_int_equal(pipe2(p, O_CLOEXEC), 0);
    static const unsigned char msg[] = "late bytes";
    struct feeder f = {sv[1], msg, sizeof(msg), 200};
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_alarm;
    sigemptyset(&sa.sa_mask);
    assert_int_equal(sigaction(SIGALRM, &sa, NULL), 0);
    /* the signal goes to this thread only: the feeder has it blocked */
    sigset_t al, old;
    sigemptyset(&al);
    sigaddset(&al, SIGALRM);
    pthread_sigmask(SIG_BLOCK, &al, &old);
    pthread_t tf;
    assert_int_equal(pthread_create(&tf, NULL, feeder_main, &f), 0);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    alarms = 0;
    struct itimerval it = {{0, 1000}, {0, 1000}};
    assert_int_equal(setitimer(ITIMER_REAL, &it, NULL), 0);
    ssize_t n = uds_splice(sv[0], p[1], 4096, SPLICE_F_MOVE);
    memset(&it, 0, sizeof(it));
    setitimer(ITIMER_REAL, &it, NULL);
    signal(SIGALRM, SIG_DFL);
    pthread_join(tf, NULL);
    assert_int_equal(n, (ssize_t)sizeof(msg));
    assert_true(alarms > 10);
    unsigned char got[sizeof(msg)];
    assert_int_equal(uds_read_exact(p[0], got, sizeof(got)), (ssize_t)sizeof(got));
    assert_memory_equal(got, msg, sizeof(msg));
    close(sv[0]);
    close(sv[1]);
    close(p[0]);
    close(p[1]);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_socket_pipe_socket),
        cmocka_unit_test(test_states),
        cmocka_unit_test(test_epipe_no_sigpipe),
        cmocka_unit_test(test_eintr),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
