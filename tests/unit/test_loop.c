/* test_loop.c — the event loop: timers, signals, watchers (level- and
   edge-triggered), deferred frees. */
#include "testutil.h"

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static int order[64];
static int norder;

static void rec_timer(uds_loop *l, uint64_t id, void *arg)
{
    (void)l;
    (void)id;
    order[norder++] = (int)(intptr_t)arg;
}

static void test_timers_order(void **state)
{
    (void)state;
    uds_loop *l;
    assert_int_equal(uds_loop_new(&l), 0);
    norder = 0;
    /* t0 before the first timer is added: dt >= 200 then holds however
       slowly the adds below run (under valgrind they took over 1 ms) */
    uint64_t t0 = tu_now_ms();
    /* added out of order; 3 timers share a deadline and must keep FIFO */
    /* delays 50 ms apart: a preempted test thread cannot reorder them */
    assert_true(uds_loop_timer(l, 200, rec_timer, (void *)4) > 0);
    assert_true(uds_loop_timer(l, 50, rec_timer, (void *)1) > 0);
    assert_true(uds_loop_timer(l, 100, rec_timer, (void *)2) > 0);
    /* same deadline: the loop reads the clock per call, so add them with one
       clock value by using a long delay relative to the skew */
    int64_t a = uds_loop_timer(l, 150, rec_timer, (void *)10);
    int64_t b = uds_loop_timer(l, 150, rec_timer, (void *)11);
    int64_t c = uds_loop_timer(l, 150, rec_timer, (void *)12);
    assert_true(a > 0 && b > 0 && c > 0);
    assert_int_equal(uds_loop_run(l), 0);
    uint64_t dt = tu_now_ms() - t0;
    assert_true(dt >= 200);
    assert_int_equal(norder, 6);
    assert_int_equal(order[0], 1);
    assert_int_equal(order[1], 2);
    /* 10, 11, 12 in insertion order (deadlines equal or increasing) */
    assert_int_equal(order[2], 10);
    assert_int_equal(order[3], 11);
    assert_int_equal(order[4], 12);
    assert_int_equal(order[5], 4);
    uds_loop_free(l);
}

static void test_timers_same_deadline_fifo(void **state)
{
    (void)state;
    uds_loop *l;
    assert_int_equal(uds_loop_new(&l), 0);
    norder = 0;
    /* zero-delay timers added in one go almost always share the same ms;
       whatever the clock does, insertion order must hold */
    for (int i = 0; i < 40; i++)
        assert_true(uds_loop_timer(l, 0, rec_timer, (void *)(intptr_t)i) > 0);
    assert_int_equal(uds_loop_run(l), 0);
    assert_int_equal(norder, 40);
    for (int i = 0; i < 40; i++)
        assert_int_equal(order[i], i);
    uds_loop_free(l);
}

static void test_timer_cancel(void **state)
{
    (void)state;
    uds_loop *l;
    assert_int_equal(uds_loop_new(&l), 0);
    norder = 0;
    int64_t ids[20];
    for (int i = 0; i < 20; i++)
        ids[i] = uds_loop_timer(l, (uint64_t)(i % 5), rec_timer, (void *)(intptr_t)i);
    /* cancel the odd ones */
    for (int i = 1; i < 20; i += 2)
        assert_int_equal(uds_loop_timer_cancel(l, (uint64_t)ids[i]), 0);
    assert_int_equal(uds_loop_timer_cancel(l, (uint64_t)ids[1]), -ENOENT);
    assert_int_equal(uds_loop_timer_cancel(l, 0), -ENOENT);
    assert_int_equal(uds_loop_run(l), 0);
    assert_int_equal(norder, 10);
    for (int i = 0; i < norder; i++)
        assert_int_equal(order[i] % 2, 0);
    /* fired: cancel says ENOENT; a stale id does not cancel a reused slot */
    assert_int_equal(uds_loop_timer_cancel(l, (uint64_t)ids[0]), -ENOENT);
    norder = 0;
    int64_t n = uds_loop_timer(l, 1, rec_timer, (void *)99);
    assert_true(n > 0);
    for (int i = 0; i < 20; i++)
        assert_int_equal(uds_loop_timer_cancel(l, (uint64_t)ids[i]), -ENOENT);
    assert_int_equal(uds_loop_run(l), 0);
    assert_int_equal(norder, 1);
    assert_int_equal(order[0], 99);
    uds_loop_free(l);
}

/* A timer that re-arms itself with 0 ms, up to 1000 times. */
static int rearms;
static void rearm_timer(uds_loop *l, uint64_t id, void *arg)
{
    (void)id;
    (void)arg;
    if (++rearms < 1000)
        assert_true(uds_loop_timer(l, 0, rearm_timer, NULL) > 0);
}

/* A 0 ms timer set by a timer callback is due at once but runs in the
   next round: one round runs it once, so the loop gets back to its fds. */
static void test_timer_rearm_next_round(void **state)
{
    (void)state;
    uds_loop *l;
    assert_int_equal(uds_loop_new(&l), 0);
    rearms = 0;
    assert_true(uds_loop_timer(l, 0, rearm_timer, NULL) > 0);
    assert_int_equal(uds_loop_run_once(l, 1000), 0);
    assert_int_equal(rearms, 1);
    assert_int_equal(uds_loop_run_once(l, 1000), 0);
    assert_int_equal(rearms, 2);
    uds_loop_free(l); /* the pending one is dropped */
}

static int got_sig;
static void on_sig(uds_loop *l, int signo, void *arg)
{
    (void)arg;
    got_sig = signo;
    uds_loop_stop(l);
}

static void fail_timer(uds_loop *l, uint64_t id, void *arg)
{
    (void)id;
    (void)arg;
    uds_loop_stop(l);
    fail_msg("signal did not arrive");
}

static void test_signal(void **state)
{
    (void)state;
    uds_loop *l;
    assert_int_equal(uds_loop_new(&l), 0);
    got_sig = 0;
    assert_int_equal(uds_loop_signal(l, SIGUSR1, on_sig, NULL), 0);
    assert_int_equal(uds_loop_signal(l, SIGKILL, on_sig, NULL), -EINVAL);
    int64_t t = uds_loop_timer(l, 5000, fail_timer, NULL);
    raise(SIGUSR1); /* blocked now: pending until the loop reads it */
    assert_int_equal(uds_loop_run(l), 0);
    assert_int_equal(got_sig, SIGUSR1);
    uds_loop_timer_cancel(l, (uint64_t)t);
    uds_loop_free(l);
    /* unblocked again after free */
    sigset_t cur;
    pthread_sigmask(SIG_BLOCK, NULL, &cur);
    assert_int_equal(sigismember(&cur, SIGUSR1), 0);
}

/* Two socketpairs; the first fd's callback closes+frees the second's owner. */
struct obj {
    uds_loop *l;
    int fd;
    int closed;
    int calls;
    struct obj *victim;
};

static int freed;
static void free_obj(uds_loop *l, void *arg)
{
    (void)l;
    struct obj *o = arg;
    close(o->fd);
    free(o);
    freed++;
}

static void obj_close(struct obj *o)
{
    if (o->closed)
        return;
    o->closed = 1;
    uds_loop_unwatch(o->l, o->fd);
    assert_int_equal(uds_loop_defer(o->l, free_obj, o), 0);
}

static void obj_cb(uds_loop *l, int fd, unsigned ev, void *arg)
{
    (void)l;
    (void)fd;
    (void)ev;
    struct obj *o = arg;
    assert_false(o->closed);
    o->calls++;
    if (o->victim)
        obj_close(o->victim); /* unwatch another fd from inside a callback */
    obj_close(o);           /* and close ourselves from inside our own */
}

static void test_close_in_callback(void **state)
{
    (void)state;
    uds_loop *l;
    assert_int_equal(uds_loop_new(&l), 0);
    int p1[2], p2[2];
    assert_int_equal(uds_pair(SOCK_STREAM, 0, p1), 0);
    assert_int_equal(uds_pair(SOCK_STREAM, 0, p2), 0);
    struct obj *a = calloc(1, sizeof(*a)), *b = calloc(1, sizeof(*b));
    a->l = b->l = l;
    a->fd = p1[0];
    b->fd = p2[0];
    a->victim = b;
    b->victim = a;
    /* both readable in the same wakeup: whichever runs first closes both;
       the other's event must not be dispatched (ASan checks the free) */
    assert_int_equal(write(p1[1], "x", 1), 1);
    assert_int_equal(write(p2[1], "y", 1), 1);
    freed = 0;
    assert_int_equal(uds_loop_watch(l, a->fd, UDS_EV_READ, obj_cb, a), 0);
    assert_int_equal(uds_loop_watch(l, b->fd, UDS_EV_READ, obj_cb, b), 0);
    assert_int_equal(uds_loop_run(l), 0);
    assert_int_equal(freed, 2);
    close(p1[1]);
    close(p2[1]);
    uds_loop_free(l);
}

/*
 * Fd-number reuse within one batch of events: two readable sockets, A and
 * B, reported by the same epoll_wait. Whichever callback runs first
 * unwatches and closes the other one, puts a fresh, empty socket on the
 * same fd number (dup2) and watches that. The event already fetched for
 * the old socket must not reach the new watcher: only the watcher's
 * generation tells them apart (the fd number, the active flag and the
 * callback are all the new ones'). The new socket has nothing to read, so
 * any call of its callback in that round is the stale event.
 */
struct reuse {
    uds_loop *l;
    int fd[2];       /* the two first watchers' fds */
    int fresh_peer;  /* the other end of the socket put on the reused number */
    int first;       /* index of the callback that ran first, -1 none yet */
    int calls[2];
    int stale;       /* calls of the new watcher */
    unsigned stale_ev;
};

static void reuse_new_cb(uds_loop *l, int fd, unsigned ev, void *arg)
{
    (void)l;
    (void)fd;
    struct reuse *r = arg;
    r->stale++;
    r->stale_ev = ev;
}

static void reuse_cb(uds_loop *l, int fd, unsigned ev, void *arg)
{
    (void)ev;
    struct reuse *r = arg;
    int me = fd == r->fd[0] ? 0 : 1;
    r->calls[me]++;
    char c;
    assert_int_equal(read(fd, &c, 1), 1);
    if (r->first >= 0)
        return;
    r->first = me;
    int victim = r->fd[!me];
    assert_int_equal(uds_loop_unwatch(l, victim), 0);
    close(victim);
    int p[2];
    assert_int_equal(uds_pair(SOCK_STREAM, 0, p), 0);
    if (p[0] != victim) { /* (the lowest free number may be it already) */
        assert_int_equal(dup2(p[0], victim), victim); /* the very number reused */
        close(p[0]);
    }
    r->fresh_peer = p[1];
    assert_int_equal(uds_loop_watch(l, victim, UDS_EV_READ, reuse_new_cb, r), 0);
}

static void test_rewatch_same_batch(void **state)
{
    (void)state;
    /* a few rounds: both orders of the two events get their chance */
    for (int round = 0; round < 8; round++) {
        struct reuse r;
        memset(&r, 0, sizeof(r));
        r.first = -1;
        r.fresh_peer = -1;
        assert_int_equal(uds_loop_new(&r.l), 0);
        int p1[2], p2[2];
        assert_int_equal(uds_pair(SOCK_STREAM, 0, p1), 0);
        assert_int_equal(uds_pair(SOCK_STREAM, 0, p2), 0);
        r.fd[0] = p1[0];
        r.fd[1] = p2[0];
        assert_int_equal(write(p1[1], "x", 1), 1);
        assert_int_equal(write(p2[1], "y", 1), 1);
        int first_watched = round & 1;
        assert_int_equal(uds_loop_watch(r.l, r.fd[first_watched], UDS_EV_READ, reuse_cb, &r), 0);
        assert_int_equal(uds_loop_watch(r.l, r.fd[!first_watched], UDS_EV_READ, reuse_cb, &r), 0);
        /* one round: both events are in its single epoll_wait batch */
        assert_int_equal(uds_loop_run_once(r.l, 5000), 0);
        assert_true(r.first >= 0);
        assert_int_equal(r.calls[r.first], 1);
        assert_int_equal(r.calls[!r.first], 0); /* closed before its turn */
        if (r.stale)
            fail_msg("stale event 0x%x of the closed fd delivered to its new watcher",
                     r.stale_ev);
        /* the new watcher still works: data on it is reported */
        int reused = r.fd[!r.first];
        assert_int_equal(write(r.fresh_peer, "z", 1), 1);
        assert_int_equal(uds_loop_run_once(r.l, 5000), 0);
        assert_int_equal(r.stale, 1);
        assert_true(r.stale_ev & UDS_EV_READ);
        assert_int_equal(uds_loop_unwatch(r.l, r.fd[r.first]), 0);
        assert_int_equal(uds_loop_unwatch(r.l, reused), 0);
        close(r.fd[r.first]);
        close(reused);
        close(r.fresh_peer);
        close(p1[1]);
        close(p2[1]);
        uds_loop_free(r.l);
    }
}

static void never_cb(uds_loop *l, int fd, unsigned ev, void *arg)
{
    (void)l;
    (void)fd;
    (void)ev;
    (void)arg;
    fail_msg("callback of a failed watch was called");
}

static void test_failed_watch(void **state)
{
    (void)state;
    uds_loop *l;
    assert_int_equal(uds_loop_new(&l), 0);
    int fds[2];
    assert_int_equal(uds_pair(SOCK_STREAM, 0, fds), 0);
    int dead = fds[0];
    close(fds[0]);
    assert_true(uds_loop_watch(l, dead, UDS_EV_READ, never_cb, NULL) < 0);
    assert_true(uds_loop_watch(l, -1, UDS_EV_READ, never_cb, NULL) < 0);
    assert_int_equal(uds_loop_unwatch(l, dead), -ENOENT);
    assert_true(uds_loop_timer(l, 0, NULL, NULL) < 0);
    /* nothing registered: run returns at once */
    assert_int_equal(uds_loop_run(l), 0);
    close(fds[1]);
    uds_loop_free(l);
}

/* A quiet watcher on a socket whose peer left must not spin the loop. */
static int quiet_calls;
static void quiet_cb(uds_loop *l, int fd, unsigned ev, void *arg)
{
    (void)l;
    (void)fd;
    (void)ev;
    (void)arg;
    quiet_calls++;
}
static void stop_timer(uds_loop *l, uint64_t id, void *arg)
{
    (void)id;
    (void)arg;
    uds_loop_stop(l);
}

static void test_quiet_watcher(void **state)
{
    (void)state;
    uds_loop *l;
    assert_int_equal(uds_loop_new(&l), 0);
    int fds[2];
    assert_int_equal(uds_pair(SOCK_STREAM, 0, fds), 0);
    close(fds[1]);
    assert_int_equal(uds_loop_watch(l, fds[0], 0, quiet_cb, NULL), 0);
    uds_loop_timer(l, 50, stop_timer, NULL);
    int rounds = 0;
    /* count rounds: a spinning loop would do thousands in 50 ms */
    uint64_t t0 = tu_now_ms();
    while (tu_now_ms() - t0 < 200) {
        assert_int_equal(uds_loop_run_once(l, 100), 0);
        rounds++;
        if (rounds > 10)
            break;
    }
    assert_true(rounds <= 3);
    assert_int_equal(quiet_calls, 0);
    /* turning it back on reports the hangup */
    assert_int_equal(uds_loop_watch(l, fds[0], UDS_EV_READ, quiet_cb, NULL), 0);
    assert_int_equal(uds_loop_run_once(l, 100), 0);
    assert_true(quiet_calls >= 1);
    assert_int_equal(uds_loop_unwatch(l, fds[0]), 0);
    close(fds[0]);
    uds_loop_free(l);
}

/* UDS_EV_EDGE: one report per new readiness, never a repeat for old data. */
static int edge_calls;
static unsigned edge_last;
static void edge_cb(uds_loop *l, int fd, unsigned ev, void *arg)
{
    (void)l;
    (void)fd;
    (void)arg;
    edge_calls++;
    edge_last = ev;
}

/* Runs `rounds` rounds of at most ms each; returns the callbacks seen. */
static int edge_rounds(uds_loop *l, int rounds, int ms)
{
    int before = edge_calls;
    for (int i = 0; i < rounds; i++)
        assert_int_equal(uds_loop_run_once(l, ms), 0);
    return edge_calls - before;
}

static void test_edge_watch(void **state)
{
    (void)state;
    uds_loop *l;
    assert_int_equal(uds_loop_new(&l), 0);
    int fds[2];
    assert_int_equal(uds_pair(SOCK_STREAM, UDS_NONBLOCK, fds), 0);
    edge_calls = 0;
    assert_int_equal(write(fds[1], "a", 1), 1);
    assert_int_equal(uds_loop_watch(l, fds[0], UDS_EV_READ | UDS_EV_EDGE, edge_cb, NULL), 0);
    /* the unread byte is reported once (it was there at registration) ... */
    assert_int_equal(edge_rounds(l, 1, 2000), 1);
    assert_true(edge_last & UDS_EV_READ);
    /* ... and not again while it stays unread (level-triggered would report
       it every round) */
    assert_int_equal(edge_rounds(l, 3, 50), 0);
    /* more data: one new report, the first byte still unread */
    assert_int_equal(write(fds[1], "b", 1), 1);
    assert_int_equal(edge_rounds(l, 1, 2000), 1);
    assert_int_equal(edge_rounds(l, 2, 50), 0);
    /* data consumed by another reader (as a child process reading a shared
       socket would): no report for that, but for the next arrival */
    char buf[8];
    assert_int_equal(read(fds[0], buf, sizeof(buf)), 2);
    assert_int_equal(edge_rounds(l, 2, 50), 0);
    assert_int_equal(write(fds[1], "c", 1), 1);
    assert_int_equal(edge_rounds(l, 1, 2000), 1);
    assert_int_equal(edge_rounds(l, 2, 50), 0);
    /* back to level-triggered: the unread byte is reported every round */
    assert_int_equal(uds_loop_watch(l, fds[0], UDS_EV_READ, edge_cb, NULL), 0);
    assert_int_equal(edge_rounds(l, 3, 2000), 3);
    /* UDS_EV_EDGE with no direction is quiet */
    assert_int_equal(uds_loop_watch(l, fds[0], UDS_EV_EDGE, edge_cb, NULL), 0);
    assert_int_equal(edge_rounds(l, 2, 50), 0);
    /* a hang-up is one report too, then silence */
    assert_int_equal(uds_loop_watch(l, fds[0], UDS_EV_READ | UDS_EV_EDGE, edge_cb, NULL), 0);
    assert_int_equal(edge_rounds(l, 1, 2000), 1); /* "c" unread at re-registration */
    close(fds[1]);
    assert_int_equal(edge_rounds(l, 1, 2000), 1);
    assert_true(edge_last & UDS_EV_HUP);
    assert_int_equal(edge_rounds(l, 3, 50), 0);
    assert_int_equal(uds_loop_unwatch(l, fds[0]), 0);
    close(fds[0]);
    uds_loop_free(l);
}

static void rec_defer(uds_loop *l, void *arg)
{
    int v = (int)(intptr_t)arg;
    order[norder++] = v;
    if (v < 3) /* a deferred call that defers again runs in the same round */
        assert_int_equal(uds_loop_defer(l, rec_defer, (void *)(intptr_t)(v + 1)), 0);
}

static void test_defer_order(void **state)
{
    (void)state;
    uds_loop *l;
    assert_int_equal(uds_loop_new(&l), 0);
    norder = 0;
    assert_int_equal(uds_loop_defer(l, NULL, NULL), -EINVAL);
    assert_int_equal(uds_loop_defer(l, rec_defer, (void *)1), 0);
    assert_int_equal(uds_loop_defer(l, rec_defer, (void *)10), 0);
    assert_int_equal(uds_loop_run_once(l, 1000), 0);
    assert_int_equal(norder, 4);
    assert_int_equal(order[0], 1);
    assert_int_equal(order[1], 10);
    assert_int_equal(order[2], 2);
    assert_int_equal(order[3], 3);
    uds_loop_free(l);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_timers_order),
        cmocka_unit_test(test_timers_same_deadline_fifo),
        cmocka_unit_test(test_timer_cancel),
        cmocka_unit_test(test_timer_rearm_next_round),
        cmocka_unit_test(test_signal),
        cmocka_unit_test(test_close_in_callback),
        cmocka_unit_test(test_rewatch_same_batch),
        cmocka_unit_test(test_failed_watch),
        cmocka_unit_test(test_quiet_watcher),
        cmocka_unit_test(test_defer_order),
        cmocka_unit_test(test_edge_watch),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
