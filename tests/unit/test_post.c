/* test_post.c — uds_loop_post: the loop's one thread-safe call. */
#include "testutil.h"
#include "internal.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#define NTHREADS 4
#define PER_THREAD 100000

static pthread_t loop_thread;

/* ---- many threads --------------------------------------------------------- */

struct many {
    uds_loop *loop;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int go;
    int post_errors;      /* written by posters, read after join */
    /* loop thread only */
    uint32_t next[NTHREADS];
    unsigned long total, out_of_order, wrong_thread;
};

static struct many M;

static void many_cb(uds_loop *l, void *arg)
{
    (void)l;
    uintptr_t v = (uintptr_t)arg;
    unsigned t = (unsigned)(v >> 24);
    uint32_t seq = (uint32_t)(v & 0xffffff);
    if (!pthread_equal(pthread_self(), loop_thread))
        M.wrong_thread++;
    if (t >= NTHREADS || seq != M.next[t])
        M.out_of_order++;
    else
        M.next[t]++;
    M.total++;
}

static void *poster(void *arg)
{
    uintptr_t t = (uintptr_t)arg;
    pthread_mutex_lock(&M.mu);
    while (!M.go)
        pthread_cond_wait(&M.cv, &M.mu);
    pthread_mutex_unlock(&M.mu);
    int errs = 0;
    for (uint32_t i = 0; i < PER_THREAD; i++)
        if (uds_loop_post(M.loop, many_cb, (void *)(t << 24 | i)) != 0)
            errs++;
    pthread_mutex_lock(&M.mu);
    M.post_errors += errs;
    pthread_mutex_unlock(&M.mu);
    return NULL;
}

/* 4 x 100 000 posts while the loop runs: each delivered once, in order per
   thread, on the loop thread only. */
static void test_many_threads(void **state)
{
    (void)state;
    memset(&M, 0, sizeof(M));
    pthread_mutex_init(&M.mu, NULL);
    pthread_cond_init(&M.cv, NULL);
    loop_thread = pthread_self();
    assert_int_equal(uds_loop_new(&M.loop), 0);
    pthread_t th[NTHREADS];
    for (uintptr_t t = 0; t < NTHREADS; t++)
        assert_int_equal(pthread_create(&th[t], NULL, poster, (void *)t), 0);
    pthread_mutex_lock(&M.mu);
    M.go = 1;
    pthread_cond_broadcast(&M.cv);
    pthread_mutex_unlock(&M.mu);
    const unsigned long want = (unsigned long)NTHREADS * PER_THREAD;
    uint64_t t0 = tu_now_ms();
    unsigned long rounds = 0;
    while (M.total < want && tu_now_ms() - t0 < 90000) {
        assert_int_equal(uds_loop_run_once(M.loop, 100), 0);
        rounds++;
    }
    for (int t = 0; t < NTHREADS; t++)
        pthread_join(th[t], NULL);
    /* nothing beyond the 400 000 may arrive afterwards either */
    for (int i = 0; i < 3; i++)
        assert_int_equal(uds_loop_run_once(M.loop, 0), 0);
    print_message("posts: %lu delivered in %lu loop rounds, %llu ms\n", M.total,
                  rounds, (unsigned long long)(tu_now_ms() - t0));
    assert_int_equal(M.post_errors, 0);
    assert_int_equal(M.wrong_thread, 0);
    assert_int_equal(M.out_of_order, 0);
    assert_int_equal(M.total, want);
    for (int t = 0; t < NTHREADS; t++)
        assert_int_equal(M.next[t], PER_THREAD);
    uds_loop_free(M.loop);
    pthread_mutex_destroy(&M.mu);
    pthread_cond_destroy(&M.cv);
}

/* ---- wakeup of a sleeping loop -------------------------------------------- */

static int woke_calls;
static pthread_t woke_thread;

static void woke_cb(uds_loop *l, void *arg)
{
    (void)l;
    (void)arg;
    woke_thread = pthread_self();
    woke_calls++;
}

static pid_t loop_tid;
static int saw_epoll_wait;

/* 1 if thread tid is blocked in an epoll wait now (/proc/.../syscall). */
static int in_epoll_wait(pid_t tid)
{
    char p[64], buf[256];
    snprintf(p, sizeof(p), "/proc/self/task/%d/syscall", (int)tid);
    FILE *f = fopen(p, "re");
    if (!f)
        return -1;
    long nr = -1;
    int ok = fgets(buf, sizeof(buf), f) != NULL && sscanf(buf, "%ld", &nr) == 1;
    fclose(f);
    if (!ok)
        return -1;
    return nr == SYS_epoll_wait || nr == SYS_epoll_pwait
#ifdef SYS_epoll_pwait2
           || nr == SYS_epoll_pwait2
#endif
        ;
}

/* Posts once, after the loop thread has gone to sleep in epoll_wait (seen
   in /proc; if that file cannot be read, after 100 ms). */
static void *late_poster(void *arg)
{
    uds_loop *l = arg;
    int r = -1;
    for (int i = 0; i < 10000; i++) {
        r = in_epoll_wait(loop_tid);
        if (r != 0)
            break;
        uds__sleep_ms(1);
    }
    if (r < 0)
        uds__sleep_ms(100);
    saw_epoll_wait = r == 1;
    uds_loop_post(l, woke_cb, NULL);
    return NULL;
}

/* A loop with nothing to do, blocked in epoll_wait(-1), returns from
   uds_loop_run_once when another thread posts. */
static void test_wakes_sleeping_loop(void **state)
{
    (void)state;
    uds_loop *l;
    assert_int_equal(uds_loop_new(&l), 0);
    woke_calls = 0;
    loop_tid = (pid_t)syscall(SYS_gettid);
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, late_poster, l), 0);
    alarm(30); /* a lost wakeup would block forever: die instead */
    uint64_t t0 = tu_now_ms();
    assert_int_equal(uds_loop_run_once(l, -1), 0);
    uint64_t dt = tu_now_ms() - t0;
    alarm(0);
    pthread_join(th, NULL);
    print_message("poster saw the loop asleep in epoll_wait: %s\n",
                  saw_epoll_wait ? "yes" : "no (/proc unreadable: posted after 100 ms)");
    assert_int_equal(woke_calls, 1);
    assert_true(pthread_equal(woke_thread, pthread_self()));
    assert_true(dt < 10000);
    uds_loop_free(l);
    assert_int_equal(woke_calls, 1);
}

/* ---- uds_loop_free runs the leftovers ------------------------------------- */

static int left_calls, left_deferred, left_wrong_thread;
static pthread_t left_thread;

static void left_deferred_cb(uds_loop *l, void *arg)
{
    (void)l;
    (void)arg;
    left_deferred++;
}

static void left_cb(uds_loop *l, void *arg)
{
    if (!pthread_equal(pthread_self(), left_thread))
        left_wrong_thread++;
    left_calls++;
    /* a leftover that queues more work: that runs too */
    if (arg == (void *)1) {
        uds_loop_defer(l, left_deferred_cb, NULL);
        uds_loop_post(l, left_cb, NULL);
    }
}

static void *left_poster(void *arg)
{
    uds_loop *l = arg;
    for (int i = 0; i < 1000; i++)
        uds_loop_post(l, left_cb, NULL);
    return NULL;
}

static void test_free_runs_leftovers(void **state)
{
    (void)state;
    uds_loop *l;
    assert_int_equal(uds_loop_new(&l), 0);
    left_calls = left_deferred = left_wrong_thread = 0;
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, left_poster, l), 0);
    pthread_join(th, NULL);
    assert_int_equal(uds_loop_post(l, left_cb, (void *)1), 0);
    assert_int_equal(left_calls, 0);
    left_thread = pthread_self();
    uds_loop_free(l);
    assert_int_equal(left_calls, 1000 + 1 + 1);
    assert_int_equal(left_deferred, 1);
    assert_int_equal(left_wrong_thread, 0);
}

/* ---- what keeps the loop alive --------------------------------------------- */

static int alive_calls, alive_timer;

static void alive_cb(uds_loop *l, void *arg)
{
    (void)l;
    (void)arg;
    alive_calls++;
}

static void alive_timer_cb(uds_loop *l, uint64_t id, void *arg)
{
    (void)l;
    (void)id;
    (void)arg;
    alive_timer++;
}

static void test_post_does_not_keep_run_alive(void **state)
{
    (void)state;
    uds_loop *l;
    assert_int_equal(uds_loop_new(&l), 0);
    alive_calls = alive_timer = 0;
    /* nothing but a posted call: run returns at once, the call stays queued */
    assert_int_equal(uds_loop_post(l, alive_cb, NULL), 0);
    alarm(30);
    assert_int_equal(uds_loop_run(l), 0);
    alarm(0);
    assert_int_equal(alive_calls, 0);
    /* with a timer to wait for, the posted call runs on the way */
    assert_true(uds_loop_timer(l, 20, alive_timer_cb, NULL) > 0);
    assert_int_equal(uds_loop_run(l), 0);
    assert_int_equal(alive_timer, 1);
    assert_int_equal(alive_calls, 1);
    /* the eventfd is not a user watcher */
    assert_int_equal(uds_loop_run(l), 0);
    uds_loop_free(l);
    assert_int_equal(alive_calls, 1);
}

static void test_einval(void **state)
{
    (void)state;
    uds_loop *l;
    assert_int_equal(uds_loop_new(&l), 0);
    assert_int_equal(uds_loop_post(l, NULL, NULL), -EINVAL);
    assert_int_equal(uds_loop_post(NULL, alive_cb, NULL), -EINVAL);
    uds_loop_free(l);
}

/* ---- bounded work per wakeup ------------------------------------------------ */

static int chain_calls, pipe_calls;

static void chain_cb(uds_loop *l, void *arg)
{
    (void)arg;
    chain_calls++;
    if (chain_calls < 1000000)
        uds_loop_post(l, chain_cb, NULL); /* re-posts itself forever */
}

static void pipe_cb(uds_loop *l, int fd, unsigned ev, void *arg)
{
    (void)l;
    (void)fd;
    (void)ev;
    (void)arg;
    pipe_calls++;
}

/* A call that posts itself again runs once per round (the next batch), and a
   readable fd is served in every round meanwhile. */
static void test_reposting_does_not_starve(void **state)
{
    (void)state;
    uds_loop *l;
    assert_int_equal(uds_loop_new(&l), 0);
    int p[2];
    assert_int_equal(pipe2(p, O_CLOEXEC), 0);
    assert_int_equal(write(p[1], "x", 1), 1); /* stays readable */
    assert_int_equal(uds_loop_watch(l, p[0], UDS_EV_READ, pipe_cb, NULL), 0);
    chain_calls = pipe_calls = 0;
    assert_int_equal(uds_loop_post(l, chain_cb, NULL), 0);
    for (int i = 1; i <= 5; i++) {
        assert_int_equal(uds_loop_run_once(l, 1000), 0);
        assert_int_equal(chain_calls, i);
        assert_int_equal(pipe_calls, i);
    }
    uds_loop_unwatch(l, p[0]);
    close(p[0]);
    close(p[1]);
    chain_calls = 999999; /* the last one: free runs it and it stops */
    uds_loop_free(l);
    assert_int_equal(chain_calls, 1000000);
}

/* ---- the eventfd itself ------------------------------------------------------ */

static void test_eventfd_owned_by_loop(void **state)
{
    (void)state;
    int before = tu_count_fds();
    uds_loop *l;
    assert_int_equal(uds_loop_new(&l), 0);
    assert_int_equal(tu_count_fds(), before + 2); /* epoll + eventfd */
    /* the loop's own fds cannot be taken over through the public calls */
    int found = 0;
    for (int fd = 0; fd < 1024; fd++) {
        char link[64], target[128];
        snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
        ssize_t n = readlink(link, target, sizeof(target) - 1);
        if (n <= 0)
            continue;
        target[n] = 0;
        if (!strstr(target, "eventfd"))
            continue;
        assert_true(fcntl(fd, F_GETFD) & FD_CLOEXEC);
        assert_true(fcntl(fd, F_GETFL) & O_NONBLOCK);
        assert_int_equal(uds_loop_watch(l, fd, UDS_EV_READ, pipe_cb, NULL), -EBUSY);
        assert_int_equal(uds_loop_unwatch(l, fd), -ENOENT);
        found++;
    }
    assert_int_equal(found, 1);
    uds_loop_free(l);
    assert_int_equal(tu_count_fds(), before);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_einval),
        cmocka_unit_test(test_eventfd_owned_by_loop),
        cmocka_unit_test(test_post_does_not_keep_run_alive),
        cmocka_unit_test(test_wakes_sleeping_loop),
        cmocka_unit_test(test_free_runs_leftovers),
        cmocka_unit_test(test_reposting_does_not_starve),
        cmocka_unit_test(test_many_threads),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
