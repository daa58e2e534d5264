/*
 * loop.c — a small level-triggered epoll loop: fd watchers in a table
 * indexed by fd, one-shot timers in a binary heap, signals through one
 * signalfd, deferred calls that run after each round of callbacks, and
 * calls posted from other threads (a mutex-protected queue and an eventfd).
 *
 * Why level-triggered: a callback that stops reading early (the per-wakeup
 * read cap of the connection layer) is simply called again next round; no
 * "must drain to EAGAIN" rule that lets one busy peer starve the rest.
 * A watcher may ask for edge-triggered reports (UDS_EV_EDGE, EPOLLET) when
 * it wants to see each arrival rather than the state: `udsock serve
 * --idle-timeout` notices a client's input on a copy of a socket that
 * another process reads.
 */
#include "internal.h"

#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/signalfd.h>
#include <unistd.h>

/* Events taken from the kernel per wakeup: bounds the work of one round. */
#define LOOP_MAX_EVENTS 64

struct watcher {
    uds_io_cb cb;
    void *arg;
    unsigned events;  /* UDS_EV_READ|UDS_EV_WRITE(|UDS_EV_EDGE) asked for */
    uint32_t gen;     /* bumped on every (re)registration of the fd */
    int active;
    int in_epoll;
};

/*
 * Timers live in a slab (so an id finds its timer in O(1)) and are ordered
 * by a binary heap of slab indexes keyed by (deadline, seq): seq is a
 * counter, so timers with the same deadline fire in insertion order.
 * An id is (generation << 32 | slot + 1), so a stale id never cancels the
 * timer that later reused the slot.
 */
struct timer {
    uint64_t due_ms;
    uint64_t seq;
    uds_timer_cb cb;
    void *arg;
    uint32_t gen;
    int32_t heap_idx; /* -1 when free */
    uint32_t next_free;
};

struct sigwatch {
    uds_signal_cb cb;
    void *arg;
};

struct defer {
    uds_defer_cb cb;
    void *arg;
};

struct uds_loop {
    int epfd;
    int stop;
    uint64_t now_ms;

    struct watcher *fds;
    int nfds_cap;
    int nwatched;   /* user-visible watchers (the signalfd is not counted) */

    struct timer *timers;
    uint32_t ntimers_cap;
    uint32_t free_head; /* slot + 1 of the first free timer, 0 = none */
    uint32_t *heap;
    uint32_t heap_len;
    uint64_t timer_seq;

    int sigfd;
    sigset_t sigmask;       /* signals delivered through sigfd */
    sigset_t sig_was_blocked; /* of those, the ones blocked before us */
    struct sigwatch sigs[_NSIG];
    int nsigs;

    struct defer *defers;
    size_t ndefers, defers_cap;

    /*
     * uds_loop_post: the only state shared with other threads is behind
     * post_lock (posts, nposts, posts_cap). postfd never changes between
     * uds_loop_new and uds_loop_free, so posters may read it unlocked.
     * batch is the loop thread's own buffer: a wakeup swaps it with posts.
     */
    pthread_mutex_t post_lock;
    struct defer *posts;
    size_t nposts, posts_cap;
    struct defer *batch;
    size_t batch_cap;
    int postfd;

    void *scratch;
    size_t scratch_len;
};

static void on_postfd(uds_loop *l, int fd, unsigned events, void *arg);
static int watch(uds_loop *l, int fd, unsigned events, uds_io_cb cb, void *arg,
                 int counted);

/*
 * Why the eventfd is made here and not on the first uds_loop_post: a lazy
 * creation would run on the posting thread and have to register the fd in
 * the watcher table, which only the loop thread may touch. One extra fd per
 * loop buys a post that never has to set anything up.
 */
int uds_loop_new(uds_loop **out)
{
    uds_loop *l = calloc(1, sizeof(*l));
    if (!l)
        return -ENOMEM;
    l->sigfd = -1;
    l->postfd = -1;
    l->epfd = epoll_create1(EPOLL_CLOEXEC);
    int r = l->epfd < 0 ? uds__err() : 0;
    if (r == 0) {
        l->postfd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        if (l->postfd < 0)
            r = uds__err();
    }
    if (r == 0)
        r = watch(l, l->postfd, UDS_EV_READ, on_postfd, NULL, 0);
    if (r == 0 && (r = -pthread_mutex_init(&l->post_lock, NULL)) == 0) {
        sigemptyset(&l->sigmask);
        sigemptyset(&l->sig_was_blocked);
        l->now_ms = uds__now_ms();
        *out = l;
        return 0;
    }
    if (l->postfd >= 0)
        close(l->postfd);
    if (l->epfd >= 0)
        close(l->epfd);
    free(l->fds);
    free(l);
    return r;
}

static void run_defers(uds_loop *l);
static int run_posts(uds_loop *l);

void uds_loop_free(uds_loop *l)
{
    if (!l)
        return;
    /* deferred frees and posted calls still pending must not leak; each may
       queue more of the other */
    do
        run_defers(l);
    while (run_posts(l) > 0 || l->ndefers > 0);
    if (l->sigfd >= 0) {
        sigset_t unblock;
        sigemptyset(&unblock);
        for (int s = 1; s < _NSIG; s++)
            if (sigismember(&l->sigmask, s) == 1 &&
                sigismember(&l->sig_was_blocked, s) != 1)
                sigaddset(&unblock, s);
        pthread_sigmask(SIG_UNBLOCK, &unblock, NULL);
        close(l->sigfd);
    }
    close(l->postfd);
    close(l->epfd);
    pthread_mutex_destroy(&l->post_lock);
    free(l->fds);
    free(l->timers);
    free(l->heap);
    free(l->defers);
    free(l->posts);
    free(l->batch);
    free(l->scratch);
    free(l);
}

uint64_t uds_loop_now(const uds_loop *l) { return l->now_ms; }

void uds_loop_stop(uds_loop *l) { l->stop = 1; }

/* ---- fd watchers -------------------------------------------------------- */

static int grow_fds(uds_loop *l, int fd)
{
    if (fd < l->nfds_cap)
        return 0;
    int cap = l->nfds_cap ? l->nfds_cap : 64;
    while (cap <= fd)
        cap *= 2;
    struct watcher *w = realloc(l->fds, (size_t)cap * sizeof(*w));
    if (!w)
        return -ENOMEM;
    memset(w + l->nfds_cap, 0, (size_t)(cap - l->nfds_cap) * sizeof(*w));
    l->fds = w;
    l->nfds_cap = cap;
    return 0;
}

static uint32_t to_epoll(unsigned ev)
{
    return ((ev & UDS_EV_READ) ? EPOLLIN | EPOLLRDHUP : 0) |
           ((ev & UDS_EV_WRITE) ? EPOLLOUT : 0) |
           ((ev & UDS_EV_EDGE) ? EPOLLET : 0);
}

/* Registers or modifies fd; `counted` says whether it keeps run() alive. */
static int watch(uds_loop *l, int fd, unsigned events, uds_io_cb cb, void *arg,
                 int counted)
{
    if (fd < 0 || !cb)
        return -EINVAL;
    int r = grow_fds(l, fd);
    if (r < 0)
        return r;
    struct watcher *w = &l->fds[fd];
    struct epoll_event ev;
    memset(&ev, 0, sizeof(ev));
    ev.events = to_epoll(events);
    uint32_t gen = w->active ? w->gen : w->gen + 1;
    ev.data.u64 = (uint64_t)(uint32_t)fd | (uint64_t)gen << 32;
    /*
     * A quiet watcher (events == 0) is taken out of epoll entirely: epoll
     * reports EPOLLHUP/EPOLLERR even for an empty mask, which would wake a
     * level-triggered loop forever for a paused connection whose peer left.
     * UDS_EV_EDGE alone asks for no direction: quiet as well.
     */
    int want = (events & (UDS_EV_READ | UDS_EV_WRITE)) != 0;
    if (want && !w->in_epoll) {
        if (epoll_ctl(l->epfd, EPOLL_CTL_ADD, fd, &ev) < 0)
            return uds__err();
    } else if (want && w->events != events) {
        if (epoll_ctl(l->epfd, EPOLL_CTL_MOD, fd, &ev) < 0)
            return uds__err();
    } else if (!want && w->in_epoll) {
        if (epoll_ctl(l->epfd, EPOLL_CTL_DEL, fd, NULL) < 0)
            return uds__err();
    } else if (!want && !w->active) {
        /* validate the fd the way EPOLL_CTL_ADD would have */
        if (fcntl(fd, F_GETFD) < 0)
            return uds__err();
    }
    w->in_epoll = want;
    if (!w->active) {
        w->active = counted ? 1 : 2;
        w->gen = gen;
        if (counted)
            l->nwatched++;
    }
    w->cb = cb;
    w->arg = arg;
    w->events = events;
    return 0;
}

int uds_loop_watch(uds_loop *l, int fd, unsigned events, uds_io_cb cb, void *arg)
{
    if (fd >= 0 && (fd == l->sigfd || fd == l->postfd))
        return -EBUSY;
    return watch(l, fd, events & (UDS_EV_READ | UDS_EV_WRITE | UDS_EV_EDGE), cb, arg, 1);
}

int uds_loop_unwatch(uds_loop *l, int fd)
{
    if (fd < 0 || fd >= l->nfds_cap || !l->fds[fd].active || fd == l->sigfd ||
        fd == l->postfd)
        return -ENOENT;
    struct watcher *w = &l->fds[fd];
    /* the fd may already be closed by a careless caller: nothing to undo */
    if (w->in_epoll)
        epoll_ctl(l->epfd, EPOLL_CTL_DEL, fd, NULL);
    w->in_epoll = 0;
    w->active = 0;
    w->cb = NULL;
    w->arg = NULL;
    w->gen++; /* events already fetched for this fd are now stale */
    l->nwatched--;
    return 0;
}

/* ---- timers ------------------------------------------------------------- */

static int timer_less(const uds_loop *l, uint32_t a, uint32_t b)
{
    const struct timer *x = &l->timers[a], *y = &l->timers[b];
    return x->due_ms < y->due_ms || (x->due_ms == y->due_ms && x->seq < y->seq);
}

static void heap_set(uds_loop *l, uint32_t i, uint32_t slot)
{
    l->heap[i] = slot;
    l->timers[slot].heap_idx = (int32_t)i;
}

static void heap_up(uds_loop *l, uint32_t i)
{
    uint32_t slot = l->heap[i];
    while (i > 0) {
        uint32_t p = (i - 1) / 2;
        if (!timer_less(l, slot, l->heap[p]))
            break;
        heap_set(l, i, l->heap[p]);
        i = p;
    }
    heap_set(l, i, slot);
}

static void heap_down(uds_loop *l, uint32_t i)
{
    uint32_t slot = l->heap[i];
    for (;;) {
        uint32_t c = 2 * i + 1;
        if (c >= l->heap_len)
            break;
        if (c + 1 < l->heap_len && timer_less(l, l->heap[c + 1], l->heap[c]))
            c++;
        if (!timer_less(l, l->heap[c], slot))
            break;
        heap_set(l, i, l->heap[c]);
        i = c;
    }
    heap_set(l, i, slot);
}

/* Takes slot out of the heap and puts it on the free list. */
static void timer_remove(uds_loop *l, uint32_t slot)
{
    uint32_t i = (uint32_t)l->timers[slot].heap_idx;
    uint32_t last = l->heap[--l->heap_len];
    if (i != l->heap_len) {
        heap_set(l, i, last);
        heap_down(l, i);
        heap_up(l, (uint32_t)l->timers[last].heap_idx);
    }
    struct timer *t = &l->timers[slot];
    t->heap_idx = -1;
    t->cb = NULL;
    t->gen++;
    t->next_free = l->free_head;
    l->free_head = slot + 1;
}

int64_t uds_loop_timer(uds_loop *l, uint64_t ms, uds_timer_cb cb, void *arg)
{
    if (!cb)
        return -EINVAL;
    if (!l->free_head) {
        uint32_t cap = l->ntimers_cap ? l->ntimers_cap * 2 : 16;
        struct timer *t = realloc(l->timers, cap * sizeof(*t));
        if (!t)
            return -ENOMEM;
        l->timers = t;
        uint32_t *h = realloc(l->heap, cap * sizeof(*h));
        if (!h)
            return -ENOMEM;
        l->heap = h;
        for (uint32_t i = cap; i-- > l->ntimers_cap;) {
            t[i].gen = 1;
            t[i].heap_idx = -1;
            t[i].next_free = l->free_head;
            l->free_head = i + 1;
        }
        l->ntimers_cap = cap;
    }
    uint32_t slot = l->free_head - 1;
    struct timer *t = &l->timers[slot];
    l->free_head = t->next_free;
    /* from the real clock, not the cached round time: a timer set after a
       long callback must not fire early */
    if (ms > UINT64_MAX / 4) /* "never", without wrapping around */
        ms = UINT64_MAX / 4;
    t->due_ms = uds__now_ms() + ms;
    t->seq = ++l->timer_seq;
    t->cb = cb;
    t->arg = arg;
    l->heap[l->heap_len] = slot;
    t->heap_idx = (int32_t)l->heap_len++;
    heap_up(l, (uint32_t)t->heap_idx);
    return (int64_t)((uint64_t)t->gen << 32 | (slot + 1));
}

int uds_loop_timer_cancel(uds_loop *l, uint64_t id)
{
    uint32_t slot = (uint32_t)(id & 0xffffffffu), gen = (uint32_t)(id >> 32);
    if (slot == 0 || slot > l->ntimers_cap)
        return -ENOENT;
    slot--;
    struct timer *t = &l->timers[slot];
    if (t->heap_idx < 0 || t->gen != gen)
        return -ENOENT;
    timer_remove(l, slot);
    return 0;
}

/*
 * Fires the timers that are due. A timer added by a callback with 0 ms is
 * due now too, but runs next round: only timers whose seq predates this
 * pass fire, so a timer that re-arms itself cannot spin here forever.
 */
static void run_timers(uds_loop *l)
{
    uint64_t seq_limit = l->timer_seq;
    while (l->heap_len > 0) {
        uint32_t slot = l->heap[0];
        struct timer *t = &l->timers[slot];
        if (t->due_ms > l->now_ms || t->seq > seq_limit)
            break;
        uds_timer_cb cb = t->cb;
        void *arg = t->arg;
        uint64_t id = (uint64_t)t->gen << 32 | (slot + 1);
        timer_remove(l, slot);
        cb(l, id, arg);
    }
}

/* ---- signals ------------------------------------------------------------ */

static void on_signalfd(uds_loop *l, int fd, unsigned events, void *arg)
{
    (void)events;
    (void)arg;
    struct signalfd_siginfo si[16];
    ssize_t n = UDS__RETRY(read(fd, si, sizeof(si)));
    if (n <= 0)
        return;
    for (size_t i = 0; i < (size_t)n / sizeof(si[0]); i++) {
        int s = (int)si[i].ssi_signo;
        if (s > 0 && s < _NSIG && l->sigs[s].cb)
            l->sigs[s].cb(l, s, l->sigs[s].arg);
    }
}

int uds_loop_signal(uds_loop *l, int signo, uds_signal_cb cb, void *arg)
{
    if (signo <= 0 || signo >= _NSIG || !cb || signo == SIGKILL ||
        signo == SIGSTOP)
        return -EINVAL;
    if (sigismember(&l->sigmask, signo) == 1) {
        l->sigs[signo].cb = cb;
        l->sigs[signo].arg = arg;
        return 0;
    }
    sigset_t one, old, mask = l->sigmask;
    sigemptyset(&one);
    sigaddset(&one, signo);
    sigaddset(&mask, signo);
    if (pthread_sigmask(SIG_BLOCK, &one, &old) != 0)
        return -EINVAL;
    int fd = signalfd(l->sigfd, &mask, SFD_NONBLOCK | SFD_CLOEXEC);
    if (fd < 0) {
        int e = uds__err();
        if (sigismember(&old, signo) != 1)
            pthread_sigmask(SIG_UNBLOCK, &one, NULL);
        return e;
    }
    if (l->sigfd < 0) {
        int r = watch(l, fd, UDS_EV_READ, on_signalfd, NULL, 0);
        if (r < 0) {
            close(fd);
            if (sigismember(&old, signo) != 1)
                pthread_sigmask(SIG_UNBLOCK, &one, NULL);
            return r;
        }
        l->sigfd = fd;
    }
    if (sigismember(&old, signo) == 1)
        sigaddset(&l->sig_was_blocked, signo);
    l->sigmask = mask;
    l->sigs[signo].cb = cb;
    l->sigs[signo].arg = arg;
    l->nsigs++;
    return 0;
}

/* ---- deferred calls ----------------------------------------------------- */

int uds_loop_defer(uds_loop *l, uds_defer_cb cb, void *arg)
{
    if (!cb)
        return -EINVAL;
    if (l->ndefers == l->defers_cap) {
        size_t cap = l->defers_cap ? l->defers_cap * 2 : 16;
        struct defer *d = realloc(l->defers, cap * sizeof(*d));
        if (!d)
            return -ENOMEM;
        l->defers = d;
        l->defers_cap = cap;
    }
    l->defers[l->ndefers].cb = cb;
    l->defers[l->ndefers].arg = arg;
    l->ndefers++;
    return 0;
}

/* Runs deferred calls in order, including ones added while running. */
static void run_defers(uds_loop *l)
{
    for (size_t i = 0; i < l->ndefers; i++)
        l->defers[i].cb(l, l->defers[i].arg);
    l->ndefers = 0;
    if (l->defers_cap > 16384) { /* a rare burst should not pin memory */
        free(l->defers);
        l->defers = NULL;
        l->defers_cap = 0;
    }
}

/* ---- calls posted from other threads ------------------------------------ */

/*
 * Why the eventfd is written only when the queue goes from empty to
 * non-empty: until the loop has swapped the queue out, a write is already
 * pending for it, so a burst of posts costs one write() and one wakeup,
 * not one syscall each.
 */
int uds_loop_post(uds_loop *l, uds_defer_cb cb, void *arg)
{
    if (!l || !cb)
        return -EINVAL;
    pthread_mutex_lock(&l->post_lock);
    if (l->nposts == l->posts_cap) {
        size_t cap = l->posts_cap ? l->posts_cap * 2 : 64;
        struct defer *p = realloc(l->posts, cap * sizeof(*p));
        if (!p) {
            pthread_mutex_unlock(&l->post_lock);
            return -ENOMEM;
        }
        l->posts = p;
        l->posts_cap = cap;
    }
    l->posts[l->nposts].cb = cb;
    l->posts[l->nposts].arg = arg;
    int kick = l->nposts++ == 0;
    pthread_mutex_unlock(&l->post_lock);
    if (kick) {
        uint64_t one = 1;
        /* EAGAIN only when the counter is near 2^64: a wakeup is pending */
        ssize_t w = UDS__RETRY(write(l->postfd, &one, sizeof(one)));
        (void)w;
    }
    return 0;
}

/*
 * Runs the calls queued so far, outside the lock: the queue is swapped with
 * the loop's own (empty) buffer in O(1), so posters wait only for that swap,
 * and calls posted meanwhile, also by the callbacks themselves, form the
 * next batch: one wakeup does bounded work and other fds get their turn.
 * Returns the number of calls run.
 */
static int run_posts(uds_loop *l)
{
    pthread_mutex_lock(&l->post_lock);
    struct defer *run = l->posts;
    size_t n = l->nposts, cap = l->posts_cap;
    l->posts = l->batch;
    l->posts_cap = l->batch_cap;
    l->nposts = 0;
    l->batch = NULL; /* a nested round (run_once from a callback) makes its own */
    l->batch_cap = 0;
    pthread_mutex_unlock(&l->post_lock);
    for (size_t i = 0; i < n; i++)
        run[i].cb(l, run[i].arg);
    if (l->batch || cap > 16384) { /* a rare burst should not pin memory */
        free(run);
    } else {
        l->batch = run;
        l->batch_cap = cap;
    }
    return (int)(n > INT32_MAX ? INT32_MAX : n);
}

/*
 * The eventfd is read before the queue is swapped: a post that lands after
 * the read writes the eventfd again (it found the queue empty, or it is in
 * this batch and the extra wakeup finds nothing), so no call is stranded.
 */
static void on_postfd(uds_loop *l, int fd, unsigned events, void *arg)
{
    (void)events;
    (void)arg;
    uint64_t v;
    ssize_t r = UDS__RETRY(read(fd, &v, sizeof(v)));
    (void)r;
    run_posts(l);
}

/* ---- running ------------------------------------------------------------ */

int uds_loop_run_once(uds_loop *l, int timeout_ms)
{
    struct epoll_event evs[LOOP_MAX_EVENTS];
    if (l->ndefers > 0)
        timeout_ms = 0;
    if (l->heap_len > 0) {
        uint64_t now = uds__now_ms(), due = l->timers[l->heap[0]].due_ms;
        int t = due <= now ? 0 : (due - now > INT32_MAX ? INT32_MAX : (int)(due - now));
        if (timeout_ms < 0 || t < timeout_ms)
            timeout_ms = t;
    }
    int n = UDS__RETRY(epoll_wait(l->epfd, evs, LOOP_MAX_EVENTS, timeout_ms));
    if (n < 0)
        return uds__err();
    l->now_ms = uds__now_ms();
    for (int i = 0; i < n; i++) {
        int fd = (int)(uint32_t)evs[i].data.u64;
        uint32_t gen = (uint32_t)(evs[i].data.u64 >> 32);
        if (fd >= l->nfds_cap)
            continue;
        struct watcher *w = &l->fds[fd];
        /* unwatched (or unwatched and re-watched) by an earlier callback */
        if (!w->active || w->gen != gen)
            continue;
        uint32_t e = evs[i].events;
        unsigned ev = 0;
        if (e & (EPOLLIN | EPOLLRDHUP))
            ev |= UDS_EV_READ;
        if (e & EPOLLOUT)
            ev |= UDS_EV_WRITE;
        if (e & EPOLLHUP)
            ev |= UDS_EV_HUP | (w->events & UDS_EV_READ);
        if (e & EPOLLERR)
            ev |= UDS_EV_ERROR | (w->events & (UDS_EV_READ | UDS_EV_WRITE));
        ev &= w->events | UDS_EV_HUP | UDS_EV_ERROR;
        if (ev)
            w->cb(l, fd, ev, w->arg);
    }
    run_timers(l);
    run_defers(l);
    return 0;
}

int uds_loop_run(uds_loop *l)
{
    l->stop = 0;
    while (!l->stop &&
           (l->nwatched > 0 || l->heap_len > 0 || l->nsigs > 0 || l->ndefers > 0)) {
        int r = uds_loop_run_once(l, -1);
        if (r < 0)
            return r;
    }
    l->stop = 0;
    return 0;
}

void *uds__loop_scratch(uds_loop *l, size_t size)
{
    if (size > l->scratch_len) {
        void *p = realloc(l->scratch, size);
        if (!p)
            return NULL;
        l->scratch = p;
        l->scratch_len = size;
    }
    return l->scratch;
}
