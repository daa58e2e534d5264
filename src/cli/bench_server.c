/*
 * bench_server.c — the serving end of `udsock bench`, and the helpers both
 * ends share (spinning receive, CPU pinning).
 *
 * One server serves every mode: each connection (or first datagram) starts
 * with a bench_hello saying what follows (bench.h). A benchmark server is
 * still a server that any local user may reach, so:
 *   - connections come through the library's uds_acceptor on a uds_loop
 *     (the one accept engine: access rules, fd exhaustion, limits), and
 *     every hello is read on that loop with a deadline (BENCH_HELLO_MS);
 *   - sessions run side by side: pingpong and stream each in a thread of
 *     their own running the same blocking, spinning code as before (that is
 *     what they measure); a session that moves no message for
 *     BENCH_IDLE_MS is shut down from the loop; rr echo connections, connect
 *     requests, hold sessions and datagram peers are served on the loop;
 *   - every size and count a hello asks for is checked against a limit, and
 *     all message buffers together against BENCH_MEM_BUDGET; a refusal is
 *     answered with a bench_ack that says which limit;
 *   - a session only ever touches its own connections (a hold session's
 *     idle connections name it by a random token).
 * The threads touch only their own socket and buffers and hand their end
 * back through uds_loop_post; everything else is loop-thread only.
 */
#include "bench.h"
#include "service.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

/* ---- shared helpers ------------------------------------------------------ */

/*
 * Why spin: a blocking recv() puts the task to sleep and the peer's send
 * must wake it, which costs a scheduler round trip (~20 µs across vCPUs on
 * this machine kind). Polling with MSG_DONTWAIT for a short while catches
 * the answer without ever sleeping, at the price of a busy CPU.
 */
ssize_t bench_recv(int fd, void *buf, size_t len, uint64_t spin_ns)
{
    ssize_t n;
    if (spin_ns) {
        uint64_t t0 = bench_now_ns();
        unsigned k = 0;
        for (;;) {
            n = recv(fd, buf, len, MSG_DONTWAIT);
            if (n >= 0)
                return n;
            if (errno != EAGAIN && errno != EINTR)
                return -errno;
            /* reading the clock costs ~20 ns; check it every 16 tries */
            if ((++k & 15) == 0 && bench_now_ns() - t0 >= spin_ns)
                break;
        }
    }
    do
        n = recv(fd, buf, len, 0);
    while (n < 0 && errno == EINTR);
    return n < 0 ? -errno : n;
}

ssize_t bench_recv_exact(int fd, void *buf, size_t len, uint64_t spin_ns)
{
    size_t got = 0;
    while (got < len) {
        ssize_t n = bench_recv(fd, (char *)buf + got, len - got, spin_ns);
        if (n < 0)
            return n;
        if (n == 0)
            break;
        got += (size_t)n;
    }
    return (ssize_t)got;
}

int bench_pin(int cpu)
{
    if (cpu < 0)
        return 0;
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    return sched_setaffinity(0, sizeof(set), &set) < 0 ? -errno : 0;
}

/*
 * The one CPU process pid (0: us) may run on, read back from the kernel,
 * so a report shows the pinning in effect and not the one asked for; -1
 * when it may run on more than one (or cannot be read).
 */
int bench_pinned(pid_t pid)
{
    cpu_set_t set;
    CPU_ZERO(&set);
    if (sched_getaffinity(pid, sizeof(set), &set) < 0 || CPU_COUNT(&set) != 1)
        return -1;
    for (int c = 0; c < CPU_SETSIZE; c++)
        if (CPU_ISSET(c, &set))
            return c;
    return -1;
}

void bench_nodelay(int fd)
{
    int one = 1;
    (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

uint64_t bench_rss(void)
{
    FILE *f = fopen("/proc/self/statm", "re");
    unsigned long size = 0, res = 0;
    if (!f)
        return 0;
    if (fscanf(f, "%lu %lu", &size, &res) != 2)
        res = 0;
    fclose(f);
    return (uint64_t)res * (uint64_t)sysconf(_SC_PAGESIZE);
}


/* Loopback peers: 127.0.0.0/8, ::1, ::ffff:127.0.0.0/104; unix: always. */
int bench_is_loopback(const struct sockaddr *sa)
{
    if (sa->sa_family == AF_UNIX)
        return 1;
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
        return (ntohl(in->sin_addr.s_addr) >> 24) == 127;
    }
    if (sa->sa_family == AF_INET6) {
        const struct in6_addr *a = &((const struct sockaddr_in6 *)sa)->sin6_addr;
        if (IN6_IS_ADDR_LOOPBACK(a))
            return 1;
        return IN6_IS_ADDR_V4MAPPED(a) && a->s6_addr[12] == 127;
    }
    return 0;
}

/* A token another local user cannot guess (the kernel's random pool). */
uint64_t bench_token(void)
{
    uint64_t t = 0;
    if (getrandom(&t, sizeof(t), GRND_NONBLOCK) != (ssize_t)sizeof(t))
        t = bench_now_ns() ^ ((uint64_t)getpid() << 32);
    return t ? t : 1;
}

/* ---- the server's state --------------------------------------------------- */

typedef struct bsrv bsrv;
typedef struct bconn bconn;
typedef struct bhold bhold;
typedef struct bjob bjob;

enum {
    ST_HELLO,      /* reading the hello */
    ST_REQ_READ,   /* connect request: reading it */
    ST_REQ_WRITE,  /* connect request: writing its echo */
    ST_RR,         /* rr echo connection */
    ST_HOLD_CTRL,  /* control connection of a hold session */
    ST_HOLD_MEMBER /* one idle connection of a hold session */
};

/* One connection served on the loop (from accept until it is handed to a
   thread or closed). */
struct bconn {
    bsrv *s;
    int fd, state, closed;
    int slot;           /* holds an acceptor slot (given back at close) */
    uid_t uid;          /* the slot's uid (uds_acceptor_release) */
    int is_unix;
    bench_hello h;
    size_t got;         /* hello bytes so far */
    uint64_t deadline;  /* loop ms at which it times out; 0: none */
    char *in, *out;     /* connect request / rr buffers */
    size_t cap, inlen, outlen, outoff;
    size_t charged;     /* of the memory budget */
    size_t esize;       /* rr: message size */
    uint64_t spin_ns;   /* rr: the loop spins for it */
    bhold *hold;
    bconn *next, *prev; /* s->conns */
    bconn *mnext;       /* hold members */
};

/* A hold session: its control connection and the idle ones that joined. */
struct bhold {
    bsrv *s;
    bconn *ctrl;
    uint64_t token;
    uid_t uid;
    int is_unix;
    unsigned want, got;
    uint64_t rss0;
    int reported;
    bconn *members;
    bhold *next;
};

/* A pingpong or stream session running in its own thread. */
struct bjob {
    bsrv *s;
    pthread_mutex_t mu; /* fd: the thread closes it, the stop shuts it down */
    int fd;
    bench_hello h;
    uint64_t spin_ns;
    int seqpacket;
    uid_t uid;
    size_t charged;
    uint64_t progress;  /* bumped by the thread per message (relaxed atomic) */
    uint64_t seen;      /* loop thread: progress at seen_ms */
    uint64_t seen_ms;
    int ended;          /* loop thread: shut down for idleness */
    bjob *next, *prev;
};

/* One datagram peer's session. */
typedef struct dpeer {
    int used;
    struct sockaddr_storage ss;
    socklen_t sl;
    uint32_t mode, size, batch;
    uid_t uid;
    uint64_t count, t0, last_ms;
} dpeer;

#define DG_SLOTS 64
#define UID_SHARES 256
#define BENCH_MEM_PER_UID (BENCH_MEM_BUDGET / 2)

struct bsrv {
    cli_svc svc;
    const bench_srv_opts *o;
    uds_acceptor *acc;
    int tcp, seqpacket, stopping;
    size_t mem;             /* message buffer bytes charged */
    struct share {
        uid_t uid;
        size_t bytes;       /* message buffers */
        unsigned threads, rr, dgram; /* sessions; all 0: a free entry */
    } shares[UID_SHARES];
    unsigned threads, rr;
    bconn *conns;
    bhold *holds;
    bjob *jobs;
    pthread_mutex_t jobs_mu;
    int64_t sweep;
    uint64_t activity;      /* bumped by loop sessions: the spin restarts */
    uint64_t refused;
    /* datagrams */
    int dfd, udp;
    dpeer *peers;
    unsigned npeers;
    int last_peer;
    char *dbuf;
    size_t dslot;
    unsigned dslots;
};

static void log_refusal(bsrv *s, const char *who, const char *why)
{
    s->refused++;
    cli_svc_warn(&s->svc, "refused %s: %s", who, why);
}

/* Makes the ack: 0 (admitted) or an errno value and the reason. */
static void ack_fill(bench_ack *a, int status, uint64_t limit, const char *why)
{
    memset(a, 0, sizeof(*a));
    a->magic = BENCH_MAGIC;
    a->status = (uint32_t)status;
    a->limit = limit;
    if (why)
        snprintf(a->why, sizeof(a->why), "%s", why);
}

/* The answer goes out without waiting: a peer that does not take 64 bytes
   into an empty socket buffer is not worth serving. 1 sent, 0 not. */
static int ack_send(int fd, int status, uint64_t limit, const char *why)
{
    bench_ack a;
    ack_fill(&a, status, limit, why);
    return send(fd, &a, sizeof(a), MSG_NOSIGNAL | MSG_DONTWAIT) == (ssize_t)sizeof(a);
}

/*
 * What one user holds (a unix uid; all TCP/UDP peers share one entry): at
 * most half of each limit, so another user is still served. create: make
 * the entry if there is none (NULL when the table is full).
 */
static struct share *share_of(bsrv *s, uid_t uid, int create)
{
    struct share *free_e = NULL;
    for (int i = 0; i < UID_SHARES; i++) {
        struct share *e = &s->shares[i];
        int used = e->bytes || e->threads || e->rr || e->dgram;
        if (used && e->uid == uid)
            return e;
        if (!used && !free_e)
            free_e = e;
    }
    if (!create || !free_e)
        return NULL;
    memset(free_e, 0, sizeof(*free_e));
    free_e->uid = uid;
    return free_e;
}

/*
 * Charges n bytes of message buffers: all sessions together at most
 * BENCH_MEM_BUDGET, one user at most half of it. Fork mode has no budget.
 * NULL ok, else the reason (static text).
 */
static const char *mem_take(bsrv *s, uid_t uid, size_t n)
{
    if (s->o->private_addr) {
        s->mem += n;
        return NULL;
    }
    if (n > BENCH_MEM_BUDGET || s->mem > BENCH_MEM_BUDGET - n)
        return "busy: message memory budget spent";
    struct share *e = share_of(s, uid, 1);
    if (!e)
        return "busy: too many users";
    if (n > BENCH_MEM_PER_UID || e->bytes > BENCH_MEM_PER_UID - n)
        return "busy: this user's memory share is spent";
    e->bytes += n;
    s->mem += n;
    return NULL;
}

static void mem_give(bsrv *s, uid_t uid, size_t n)
{
    if (!n)
        return;
    s->mem -= n;
    struct share *e = share_of(s, uid, 0);
    if (e && e->bytes >= n)
        e->bytes -= n;
}

/* One more session of a kind for uid, within the limit and half of it per
   user (fork mode: none). 1 taken, 0 refused. */
static int count_take(bsrv *s, uid_t uid, size_t field, unsigned total, unsigned limit)
{
    struct share *e = share_of(s, uid, 1);
    if (!e)
        return 0;
    unsigned *n = (unsigned *)((char *)e + field);
    if (!s->o->private_addr && (total >= limit || *n >= limit / 2))
        return 0;
    (*n)++;
    return 1;
}

static void count_give(bsrv *s, uid_t uid, size_t field)
{
    struct share *e = share_of(s, uid, 0);
    unsigned *n = e ? (unsigned *)((char *)e + field) : NULL;
    if (n && *n)
        (*n)--;
}

static uint64_t spin_of(const bsrv *s, const bench_hello *h)
{
    if (s->o->spin_us > 0)
        return (uint64_t)s->o->spin_us * 1000u;
    uint32_t us = h->spin_us;
    if (us > BENCH_MAX_SPIN_US && !s->o->private_addr)
        us = BENCH_MAX_SPIN_US;
    return (uint64_t)us * 1000u;
}

/* ---- connections on the loop --------------------------------------------- */

static void conn_io(uds_loop *loop, int fd, unsigned ev, void *arg);
static void hold_end(bhold *h);

static void conn_free_deferred(uds_loop *loop, void *arg)
{
    (void)loop;
    bconn *c = arg;
    bsrv *s = c->s;
    if (c->prev)
        c->prev->next = c->next;
    else
        s->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    free(c->in);
    free(c->out);
    free(c);
}

/*
 * Closes now (fd, slot, budget), frees the record after this round (the
 * loop may still hold it for an event of this round; a hold session walks
 * its members). linger0: TCP RST instead of a TIME_WAIT per connect
 * request, or the ports run out (as the connect client does).
 */
static void conn_close(bconn *c, int linger0)
{
    if (c->closed)
        return;
    bsrv *s = c->s;
    c->closed = 1;
    if (c->state == ST_HOLD_CTRL && c->hold) {
        bhold *h = c->hold;
        c->hold = NULL;
        h->ctrl = NULL;
        hold_end(h);
    } else if (c->state == ST_HOLD_MEMBER && c->hold) {
        for (bconn **pp = &c->hold->members; *pp; pp = &(*pp)->mnext)
            if (*pp == c) {
                *pp = c->mnext;
                break;
            }
        c->hold = NULL;
    }
    if (c->fd >= 0) {
        uds_loop_unwatch(s->svc.loop, c->fd);
        if (linger0 && s->tcp) {
            struct linger lg = {1, 0};
            (void)setsockopt(c->fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
        }
        close(c->fd);
        c->fd = -1;
    }
    if (c->state == ST_RR) {
        s->rr--;
        count_give(s, c->uid, offsetof(struct share, rr));
    }
    mem_give(s, c->uid, c->charged);
    c->charged = 0;
    if (c->slot)
        uds_acceptor_release(s->acc, c->uid);
    c->slot = 0;
    if (uds_loop_defer(s->svc.loop, conn_free_deferred, c) < 0) {
        /* cannot defer: keep the record (a few bytes) rather than risk
           freeing it under the loop */
    }
}

/* A hold session's report: how many joined and what they cost us. */
static void hold_report(bhold *h)
{
    if (h->reported)
        return;
    bench_report rep;
    memset(&rep, 0, sizeof(rep));
    uint64_t rss1 = bench_rss();
    rep.count = h->got;
    rep.extra = rss1 > h->rss0 ? rss1 - h->rss0 : 0;
    h->reported = 1;
    if (send(h->ctrl->fd, &rep, sizeof(rep), MSG_NOSIGNAL | MSG_DONTWAIT) != (ssize_t)sizeof(rep)) {
        hold_end(h);
        return;
    }
    /* the client closes everything once it has the report */
    h->ctrl->deadline = uds_loop_now(h->s->svc.loop) + BENCH_IDLE_MS;
}

/* Ends a hold session: its control connection and every member. */
static void hold_end(bhold *h)
{
    bsrv *s = h->s;
    for (bconn *m = h->members; m; m = m->mnext) {
        m->hold = NULL;
        conn_close(m, 0);
    }
    h->members = NULL;
    if (h->ctrl) {
        h->ctrl->hold = NULL;
        conn_close(h->ctrl, 0);
    }
    for (bhold **pp = &s->holds; *pp; pp = &(*pp)->next)
        if (*pp == h) {
            *pp = h->next;
            break;
        }
    free(h);
}

/* ---- threads: pingpong and stream ----------------------------------------- */

/* The thread's sign of life for the sweep (no syscall, no timer on the
   measured path: a receive timeout would arm one per blocking recv). */
static void job_alive(uint64_t *progress)
{
    __atomic_store_n(progress, __atomic_load_n(progress, __ATOMIC_RELAXED) + 1, __ATOMIC_RELAXED);
}

/* Echo size-byte messages until EOF or an error; a session silent for
   BENCH_IDLE_MS is shut down by the sweep, which ends the blocking recv. */
static void serve_pingpong(int c, const bench_hello *h, uint64_t spin_ns, int seqpacket,
                           uint64_t *progress)
{
    size_t size = h->size ? h->size : 1;
    char *buf = malloc(size);
    if (!buf)
        return;
    for (;;) {
        ssize_t n = seqpacket ? bench_recv(c, buf, size, spin_ns)
                              : bench_recv_exact(c, buf, size, spin_ns);
        if (n <= 0 || (!seqpacket && (size_t)n < size))
            break;
        if (uds_write_all(c, buf, (size_t)n) < 0)
            break;
        job_alive(progress);
    }
    free(buf);
}

/* Read until EOF, then say how many bytes came and over how long. */
static void serve_stream(int c, const bench_hello *h, uint64_t *progress)
{
    size_t cap = h->size > 262144 ? h->size : 262144;
    char *buf = malloc(cap);
    if (!buf)
        return;
    bench_report rep;
    memset(&rep, 0, sizeof(rep));
    uint64_t t0 = 0;
    for (;;) {
        ssize_t n = uds_read_some(c, buf, cap);
        if (n <= 0)
            break;
        if (!t0)
            t0 = bench_now_ns();
        rep.count += (uint64_t)n;
        job_alive(progress);
    }
    rep.ns = t0 ? bench_now_ns() - t0 : 0;
    (void)uds_write_all(c, &rep, sizeof(rep));
    free(buf);
}

/* Back on the loop thread: the thread is done, its slot and budget free. */
static void job_done(uds_loop *loop, void *arg)
{
    (void)loop;
    bjob *j = arg;
    bsrv *s = j->s;
    pthread_mutex_lock(&s->jobs_mu);
    if (j->prev)
        j->prev->next = j->next;
    else
        s->jobs = j->next;
    if (j->next)
        j->next->prev = j->prev;
    pthread_mutex_unlock(&s->jobs_mu);
    s->threads--;
    count_give(s, j->uid, offsetof(struct share, threads));
    mem_give(s, j->uid, j->charged);
    uds_acceptor_release(s->acc, j->uid);
    pthread_mutex_destroy(&j->mu);
    free(j);
}

static void *job_main(void *arg)
{
    bjob *j = arg;
    if (j->h.mode == BM_PINGPONG)
        serve_pingpong(j->fd, &j->h, j->spin_ns, j->seqpacket, &j->progress);
    else
        serve_stream(j->fd, &j->h, &j->progress);
    pthread_mutex_lock(&j->mu);
    close(j->fd);
    j->fd = -1;
    pthread_mutex_unlock(&j->mu);
    /* cannot fail but for memory; then the slot stays taken (logged by
       nobody: the thread must not touch the loop otherwise) */
    (void)uds_loop_post(j->s->svc.loop, job_done, j);
    return NULL;
}

/*
 * Hands c's socket to a thread of its own, blocking with timeouts. The
 * slot and the budget go with it (given back in job_done). 0, or -errno
 * (c unchanged, still the caller's).
 */
static int job_start(bconn *c, uint64_t spin_ns)
{
    bsrv *s = c->s;
    bjob *j = calloc(1, sizeof(*j));
    if (!j)
        return -ENOMEM;
    j->s = s;
    j->fd = c->fd;
    j->h = c->h;
    j->spin_ns = spin_ns;
    j->seqpacket = s->seqpacket;
    j->uid = c->uid;
    j->charged = c->charged;
    pthread_mutex_init(&j->mu, NULL);
    j->seen_ms = uds_loop_now(s->svc.loop);
    uds_loop_unwatch(s->svc.loop, c->fd);
    uds_set_nonblock(c->fd, 0);
    pthread_mutex_lock(&s->jobs_mu);
    j->next = s->jobs;
    if (s->jobs)
        s->jobs->prev = j;
    s->jobs = j;
    pthread_mutex_unlock(&s->jobs_mu);
    pthread_attr_t at;
    pthread_attr_init(&at);
    pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED);
    pthread_attr_setstacksize(&at, 256 * 1024);
    pthread_t t;
    int r = pthread_create(&t, &at, job_main, j);
    pthread_attr_destroy(&at);
    if (r != 0) {
        pthread_mutex_lock(&s->jobs_mu);
        s->jobs = j->next;
        if (j->next)
            j->next->prev = NULL;
        pthread_mutex_unlock(&s->jobs_mu);
        pthread_mutex_destroy(&j->mu);
        free(j);
        uds_set_nonblock(c->fd, 1);
        (void)uds_loop_watch(s->svc.loop, c->fd, UDS_EV_READ, conn_io, c);
        return -r;
    }
    s->threads++;
    /* the thread owns the socket, the slot and the budget now */
    c->fd = -1;
    c->slot = 0;
    c->charged = 0;
    c->closed = 1;
    (void)uds_loop_defer(s->svc.loop, conn_free_deferred, c);
    return 0;
}

/* ---- rr echo, connect requests, hold members (loop) ----------------------- */

/* Writes what is pending on c; returns 1 when all flushed, 0 if not, -1 dead. */
static int rr_flush(bconn *c)
{
    while (c->outoff < c->outlen) {
        ssize_t n = send(c->fd, c->out + c->outoff, c->outlen - c->outoff,
                         MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n < 0)
            return errno == EAGAIN || errno == EINTR ? 0 : -1;
        c->outoff += (size_t)n;
    }
    c->outlen = c->outoff = 0;
    return 1;
}

/*
 * One rr connection: pipelined size-byte requests, each complete one
 * echoed in order. A connection whose echo cannot be written stops being
 * read until it drains (backpressure: it never holds more than its cap).
 */
static void rr_io(bconn *c, unsigned ev)
{
    bsrv *s = c->s;
    int dead = 0;
    c->deadline = uds_loop_now(s->svc.loop) + BENCH_IDLE_MS;
    s->activity++;
    if (c->outlen) {
        int r = rr_flush(c);
        if (r < 0)
            dead = 1;
        else if (r == 1)
            (void)uds_loop_watch(s->svc.loop, c->fd, UDS_EV_READ, conn_io, c);
    }
    if (!dead && !c->outlen && (ev & (UDS_EV_READ | UDS_EV_HUP | UDS_EV_ERROR))) {
        ssize_t r = recv(c->fd, c->in + c->inlen, c->cap - c->inlen, MSG_DONTWAIT);
        if (r == 0 || (r < 0 && errno != EAGAIN && errno != EINTR))
            dead = 1;
        else if (r > 0) {
            c->inlen += (size_t)r;
            size_t whole = c->inlen / c->esize * c->esize;
            if (whole) {
                ssize_t w = send(c->fd, c->in, whole, MSG_NOSIGNAL | MSG_DONTWAIT);
                if (w < 0 && errno != EAGAIN && errno != EINTR)
                    dead = 1;
                else {
                    size_t sent = w > 0 ? (size_t)w : 0;
                    if (sent < whole) {
                        memcpy(c->out, c->in + sent, whole - sent);
                        c->outlen = whole - sent;
                        c->outoff = 0;
                        (void)uds_loop_watch(s->svc.loop, c->fd, UDS_EV_WRITE, conn_io, c);
                    }
                    memmove(c->in, c->in + whole, c->inlen - whole);
                    c->inlen -= whole;
                }
            }
        }
    }
    if (dead)
        conn_close(c, 0);
}

/* A connect request: read it whole, echo it, close (the server's side of
   one connect+request+close). */
static void req_io(bconn *c)
{
    bsrv *s = c->s;
    if (c->state == ST_REQ_READ) {
        ssize_t r = recv(c->fd, c->in + c->inlen, c->cap - c->inlen, MSG_DONTWAIT);
        if (r < 0 && (errno == EAGAIN || errno == EINTR))
            return;
        if (r <= 0) {
            conn_close(c, 1);
            return;
        }
        c->inlen += (size_t)r;
        if (c->inlen < c->cap && !s->seqpacket)
            return;
        c->state = ST_REQ_WRITE;
        c->outoff = 0;
    }
    while (c->outoff < c->inlen) {
        ssize_t n = send(c->fd, c->in + c->outoff, c->inlen - c->outoff, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n < 0) {
            if (errno == EAGAIN || errno == EINTR) {
                (void)uds_loop_watch(s->svc.loop, c->fd, UDS_EV_WRITE, conn_io, c);
                return;
            }
            break;
        }
        c->outoff += (size_t)n;
    }
    conn_close(c, 1);
}

/* Hold control connection or member: anything but silence ends it. */
static void hold_io(bconn *c)
{
    char b[256];
    ssize_t r = recv(c->fd, b, sizeof(b), MSG_DONTWAIT);
    if (r < 0 && (errno == EAGAIN || errno == EINTR))
        return;
    if (r > 0)
        return; /* bytes nobody asked for: dropped */
    if (c->state == ST_HOLD_CTRL && c->hold)
        hold_end(c->hold);
    else
        conn_close(c, 0);
}

/* ---- hellos --------------------------------------------------------------- */

/* Refuses c: tells it why (ack), logs, closes. */
static void refuse(bconn *c, int status, uint64_t limit, const char *why)
{
    char who[64];
    if (c->is_unix)
        snprintf(who, sizeof(who), "uid %u", (unsigned)c->uid);
    else
        snprintf(who, sizeof(who), "a tcp peer");
    char text[160];
    snprintf(text, sizeof(text), "%s (mode %u)", why, (unsigned)c->h.mode);
    (void)ack_send(c->fd, status, limit, why);
    log_refusal(c->s, who, text);
    conn_close(c, 0);
}

static bhold *hold_find(bsrv *s, uint64_t token)
{
    for (bhold *h = s->holds; h; h = h->next)
        if (h->token == token)
            return h;
    return NULL;
}

/* A complete hello: check it against the limits and start its session. */
static void hello_done(bconn *c)
{
    bsrv *s = c->s;
    bench_hello *h = &c->h;
    int priv = s->o->private_addr;
    uint64_t now = uds_loop_now(s->svc.loop);
    char why[48];
    if (h->magic != BENCH_MAGIC) {
        log_refusal(s, c->is_unix ? "a unix peer" : "a tcp peer", "not a bench hello");
        conn_close(c, 0);
        return;
    }
    if (h->size > BENCH_MAX_SIZE) {
        snprintf(why, sizeof(why), "size over the limit of %u bytes", BENCH_MAX_SIZE);
        return refuse(c, EMSGSIZE, BENCH_MAX_SIZE, why);
    }
    uint64_t token = (uint64_t)h->batch | (uint64_t)h->flags << 32;
    switch (h->mode) {
    case BM_PINGPONG:
    case BM_STREAM: {
        const size_t tf = offsetof(struct share, threads);
        if (!count_take(s, c->uid, tf, s->threads, BENCH_MAX_THREADS)) {
            snprintf(why, sizeof(why), "busy: sessions (%u, half per user)", BENCH_MAX_THREADS);
            return refuse(c, EBUSY, BENCH_MAX_THREADS, why);
        }
        size_t need = h->mode == BM_PINGPONG ? (h->size ? h->size : 1)
                                             : (h->size > 262144 ? h->size : 262144);
        const char *no = mem_take(s, c->uid, need);
        if (no) {
            count_give(s, c->uid, tf);
            return refuse(c, ENOBUFS, BENCH_MEM_BUDGET, no);
        }
        c->charged = need;
        if (!ack_send(c->fd, 0, 0, NULL) || job_start(c, spin_of(s, h)) < 0) {
            count_give(s, c->uid, tf);
            conn_close(c, 0);
        }
        return; /* job_done gives the count back */
    }
    case BM_RR: {
        size_t size = h->size ? h->size : 1;
        if (h->pipeline > 65536)
            return refuse(c, EINVAL, 65536, "pipeline over the limit of 65536");
        if (!count_take(s, c->uid, offsetof(struct share, rr), s->rr, BENCH_MAX_RR)) {
            snprintf(why, sizeof(why), "busy: rr connections (%u, half per user)", BENCH_MAX_RR);
            return refuse(c, EBUSY, BENCH_MAX_RR, why);
        }
        c->state = ST_RR; /* from here on conn_close gives the count back */
        s->rr++;
        /* room for the pipeline, within bounds: a larger backlog simply
           waits in the kernel's socket buffer */
        size_t cap = size * (h->pipeline ? h->pipeline : 1);
        if (cap > (1u << 20))
            cap = 1u << 20;
        if (cap < 4096)
            cap = 4096;
        if (cap < size)
            cap = size;
        const char *no = mem_take(s, c->uid, 2 * cap);
        if (no)
            return refuse(c, ENOBUFS, BENCH_MEM_BUDGET, no);
        c->charged = 2 * cap;
        c->in = malloc(cap);
        c->out = malloc(cap);
        if (!c->in || !c->out)
            return refuse(c, ENOMEM, 0, "out of memory");
        if (!ack_send(c->fd, 0, 0, NULL)) {
            conn_close(c, 0);
            return;
        }
        c->cap = cap;
        c->esize = size;
        c->spin_ns = spin_of(s, h);
        c->deadline = now + BENCH_IDLE_MS;
        return;
    }
    case BM_CONNECT:
        if (h->size > BENCH_CONNECT_MAX && !priv) {
            snprintf(why, sizeof(why), "connect size over the limit of %u", BENCH_CONNECT_MAX);
            return refuse(c, EMSGSIZE, BENCH_CONNECT_MAX, why);
        }
        if (!(h->flags & BC_REQUEST)) { /* the control connection: answered, done */
            (void)ack_send(c->fd, 0, 0, NULL);
            conn_close(c, 0);
            return;
        }
        if (!h->size || mem_take(s, c->uid, h->size)) {
            conn_close(c, 1);
            return;
        }
        c->charged = h->size;
        c->cap = h->size;
        c->in = malloc(c->cap);
        if (!c->in) {
            conn_close(c, 1);
            return;
        }
        c->state = ST_REQ_READ;
        req_io(c); /* the request came with the hello, most likely */
        return;
    case BM_HOLD: {
        if (!h->clients)
            return refuse(c, EINVAL, 0, "hold of 0 clients");
        if (!priv && h->clients > BENCH_HOLD_MAX) {
            snprintf(why, sizeof(why), "hold over the limit of %u clients", BENCH_HOLD_MAX);
            return refuse(c, EMSGSIZE, BENCH_HOLD_MAX, why);
        }
        uds_acceptor_stats st;
        uds_acceptor_stats_get(s->acc, &st);
        if (st.conns + h->clients > BENCH_MAX_CONNS) {
            snprintf(why, sizeof(why), "busy: %u connections held", st.conns);
            return refuse(c, EBUSY, BENCH_MAX_CONNS, why);
        }
        if (!token || hold_find(s, token))
            return refuse(c, EINVAL, 0, "hold token missing or in use");
        bhold *ho = calloc(1, sizeof(*ho));
        if (!ho)
            return refuse(c, ENOMEM, 0, "out of memory");
        if (!ack_send(c->fd, 0, 0, NULL)) {
            free(ho);
            conn_close(c, 0);
            return;
        }
        ho->s = s;
        ho->ctrl = c;
        ho->token = token;
        ho->uid = c->uid;
        ho->is_unix = c->is_unix;
        ho->want = h->clients;
        ho->rss0 = bench_rss();
        ho->next = s->holds;
        s->holds = ho;
        c->hold = ho;
        c->state = ST_HOLD_CTRL;
        c->deadline = now + BENCH_HELLO_MS; /* the joins must come */
        return;
    }
    case BM_JOIN: {
        bhold *ho = hold_find(s, token);
        /* only the session's own user (unix) may join it, and only as
           many as it asked for */
        if (!ho || ho->reported || ho->got >= ho->want || ho->is_unix != c->is_unix ||
            (c->is_unix && ho->uid != c->uid)) {
            conn_close(c, 0);
            return;
        }
        c->state = ST_HOLD_MEMBER;
        c->hold = ho;
        c->deadline = 0;
        c->mnext = ho->members;
        ho->members = c;
        ho->got++;
        ho->ctrl->deadline = now + BENCH_HELLO_MS;
        if (ho->got == ho->want)
            hold_report(ho);
        return;
    }
    default:
        log_refusal(s, c->is_unix ? "a unix peer" : "a tcp peer", "unknown mode");
        conn_close(c, 0);
        return;
    }
}

/* Reads the hello without reading past it (the session's data follows). */
static void hello_io(bconn *c)
{
    ssize_t r = recv(c->fd, (char *)&c->h + c->got, sizeof(c->h) - c->got, MSG_DONTWAIT);
    if (r < 0 && (errno == EAGAIN || errno == EINTR))
        return;
    if (r <= 0 || (c->s->seqpacket && (size_t)r != sizeof(c->h))) {
        /* EOF before a byte: a plain connect (connect --size 0) */
        conn_close(c, c->got == 0);
        return;
    }
    c->got += (size_t)r;
    if (c->got == sizeof(c->h))
        hello_done(c);
}

static void conn_io(uds_loop *loop, int fd, unsigned ev, void *arg)
{
    (void)loop;
    (void)fd;
    bconn *c = arg;
    if (c->closed)
        return;
    switch (c->state) {
    case ST_HELLO: hello_io(c); break;
    case ST_REQ_READ:
    case ST_REQ_WRITE: req_io(c); break;
    case ST_RR: rr_io(c, ev); break;
    default: hold_io(c); break;
    }
}

/* Every connection the acceptor admits starts here, waiting for its hello. */
static void on_accept(uds_acceptor *a, int fd, const uds_peer *p, void *arg)
{
    bsrv *s = arg;
    bconn *c = calloc(1, sizeof(*c));
    if (!c) {
        close(fd);
        uds_acceptor_release(a, p->cred.uid);
        return;
    }
    c->s = s;
    c->fd = fd;
    c->slot = 1;
    c->uid = p->cred.uid;
    c->is_unix = p->is_unix;
    c->state = ST_HELLO;
    c->deadline = uds_loop_now(s->svc.loop) + BENCH_HELLO_MS;
    uds_set_bufsizes(fd, s->o->sndbuf, s->o->rcvbuf);
    if (s->tcp)
        bench_nodelay(fd);
    c->next = s->conns;
    if (s->conns)
        s->conns->prev = c;
    s->conns = c;
    /* the hello (or the EOF of a plain connect) is usually there already:
       taking it now saves the watch, a wakeup and the unwatch per
       connection, which is what `connect` measures */
    hello_io(c);
    if (c->closed || c->state == ST_REQ_WRITE) /* done, handed on, or watched for output */
        return;
    if (uds_loop_watch(s->svc.loop, c->fd, UDS_EV_READ, conn_io, c) < 0)
        conn_close(c, 0);
}

/* TCP (and UDP): the kernel names no user, so by default only the loopback. */
static int admit_tcp(uds_acceptor *a, int fd, const uds_peer *p, const char **why, void *arg)
{
    (void)a;
    (void)fd;
    bsrv *s = arg;
    if (p->is_unix || s->o->allow_remote || bench_is_loopback(&p->addr.u.sa))
        return 0;
    *why = "not on the loopback (--allow-remote)";
    return -EPERM;
}

/* ---- datagrams (loop) ----------------------------------------------------- */

/*
 * One socket serves every peer: a session per sender address, created by
 * its hello (access rules judged from the datagram's credentials, acked),
 * ended by its END hello or by BENCH_IDLE_MS of silence, so a sender that
 * vanished holds nothing. Replies never block: a peer whose queue is full
 * loses that reply (it is a benchmark; the client counts what it lost).
 */

static int dpeer_find(bsrv *s, const struct sockaddr_storage *ss, socklen_t sl)
{
    if (s->last_peer >= 0) {
        dpeer *d = &s->peers[s->last_peer];
        if (d->used && d->sl == sl && !memcmp(&d->ss, ss, sl))
            return s->last_peer;
    }
    for (unsigned i = 0; i < BENCH_DGRAM_PEERS; i++) {
        dpeer *d = &s->peers[i];
        if (d->used && d->sl == sl && !memcmp(&d->ss, ss, sl))
            return s->last_peer = (int)i;
    }
    return -1;
}

/*
 * recvmmsg slots: as large as the largest datagram a session announced, as
 * many as the largest batch a dgram session asked for (1 while there are
 * only pingpong sessions: one recvmsg per round trip, as a blocking server
 * would do).
 */
static void dslots_update(bsrv *s)
{
    size_t m = 4096;
    unsigned b = 1;
    for (unsigned i = 0; i < BENCH_DGRAM_PEERS; i++) {
        const dpeer *d = &s->peers[i];
        if (!d->used)
            continue;
        if (d->size > m)
            m = d->size;
        if (d->mode == BM_DGRAM && d->batch > b)
            b = d->batch;
    }
    if (m > BENCH_DGRAM_MAX)
        m = BENCH_DGRAM_MAX;
    s->dslot = m;
    s->dslots = (unsigned)(BENCH_DGRAM_MAX / m);
    if (s->dslots > b)
        s->dslots = b;
    if (s->dslots > DG_SLOTS)
        s->dslots = DG_SLOTS;
    if (s->dslots < 1)
        s->dslots = 1;
}

static void dpeer_end(bsrv *s, int i)
{
    count_give(s, s->peers[i].uid, offsetof(struct share, dgram));
    s->peers[i].used = 0;
    s->npeers--;
    dslots_update(s);
}

static void dsend(bsrv *s, const void *buf, size_t len, const struct sockaddr_storage *ss,
                  socklen_t sl)
{
    (void)sendto(s->dfd, buf, len, MSG_NOSIGNAL | MSG_DONTWAIT, (const struct sockaddr *)ss, sl);
}

static void dgram_refuse(bsrv *s, const struct sockaddr_storage *ss, socklen_t sl, int status,
                         uint64_t limit, const char *why, const char *who)
{
    bench_ack a;
    ack_fill(&a, status, limit, why);
    dsend(s, &a, sizeof(a), ss, sl);
    log_refusal(s, who, why);
}

/* A hello (or END) from a sender. */
static void dgram_hello(bsrv *s, const bench_hello *h, const struct sockaddr_storage *ss,
                        socklen_t sl, const uds_cred *cred)
{
    int i = dpeer_find(s, ss, sl);
    if (h->mode == BM_END) {
        if (i < 0)
            return;
        dpeer *d = &s->peers[i];
        if (d->mode == BM_DGRAM) {
            bench_report rep;
            memset(&rep, 0, sizeof(rep));
            rep.count = d->count;
            rep.ns = d->t0 ? bench_now_ns() - d->t0 : 0;
            dsend(s, &rep, sizeof(rep), ss, sl);
        }
        dpeer_end(s, i);
        return;
    }
    char who[64];
    if (s->udp)
        snprintf(who, sizeof(who), "a udp peer");
    else
        snprintf(who, sizeof(who), "uid %u", cred ? (unsigned)cred->uid : (unsigned)-1);
    if (sl <= (socklen_t)sizeof(sa_family_t))
        return; /* an unbound sender: no address to answer to */
    if (!s->udp) {
        const char *why = "no credentials";
        int ok = cred ? uds_access_check_cred(s->o->access, cred, &why) : -EINVAL;
        if (ok != 1 && (cred || uds_access_active(s->o->access)))
            return dgram_refuse(s, ss, sl, EACCES, 0, why, who);
    } else if (!s->o->allow_remote && !bench_is_loopback((const struct sockaddr *)ss)) {
        return dgram_refuse(s, ss, sl, EACCES, 0, "not on the loopback (--allow-remote)", who);
    }
    if (h->mode != BM_PINGPONG && h->mode != BM_DGRAM)
        return dgram_refuse(s, ss, sl, EINVAL, 0, "datagram sockets do pingpong and dgram", who);
    if (h->size > BENCH_DGRAM_MAX) {
        char why[48];
        snprintf(why, sizeof(why), "size over the limit of %u bytes", BENCH_DGRAM_MAX);
        return dgram_refuse(s, ss, sl, EMSGSIZE, BENCH_DGRAM_MAX, why, who);
    }
    uid_t uid = cred ? cred->uid : (uid_t)-1;
    if (i >= 0) /* a new hello from the same address: a fresh session */
        dpeer_end(s, i);
    i = -1;
    for (unsigned k = 0; k < BENCH_DGRAM_PEERS; k++)
        if (!s->peers[k].used) {
            i = (int)k;
            break;
        }
    if (i < 0 || !count_take(s, uid, offsetof(struct share, dgram), s->npeers, BENCH_DGRAM_PEERS)) {
        char why[48];
        snprintf(why, sizeof(why), "busy: datagram sessions (%u, half per user)", BENCH_DGRAM_PEERS);
        return dgram_refuse(s, ss, sl, EBUSY, BENCH_DGRAM_PEERS, why, who);
    }
    s->npeers++;
    dpeer *d = &s->peers[i];
    memset(d, 0, sizeof(*d));
    d->uid = uid;
    d->used = 1;
    memcpy(&d->ss, ss, sl);
    d->sl = sl;
    d->mode = h->mode;
    d->size = h->size;
    d->batch = h->batch;
    d->last_ms = uds_loop_now(s->svc.loop);
    s->last_peer = i;
    dslots_update(s);
    bench_ack a;
    ack_fill(&a, 0, 0, NULL);
    dsend(s, &a, sizeof(a), ss, sl); /* the client starts once we listen for it */
}

/*
 * Reads what is queued, in rounds of up to dslots datagrams: while only
 * dgram sessions' datagrams come (counted, never answered) it goes on until
 * the queue is empty, up to 64 rounds, as a blocking reader would; after
 * an answered one (a pingpong echo, a hello) it returns to the loop, so a
 * round trip costs one read.
 */
static void dgram_io(uds_loop *loop, int fd, unsigned ev, void *arg)
{
    (void)ev;
    bsrv *s = arg;
    struct mmsghdr mm[DG_SLOTS];
    struct iovec iov[DG_SLOTS];
    struct sockaddr_storage names[DG_SLOTS];
    union {
        char buf[CMSG_SPACE(sizeof(struct ucred))];
        struct cmsghdr align;
    } ctl[DG_SLOTS];
    for (int round = 0; round < 64; round++) {
        unsigned n = s->dslots;
        for (unsigned i = 0; i < n; i++) {
            iov[i].iov_base = s->dbuf + (size_t)i * s->dslot;
            iov[i].iov_len = s->dslot;
            memset(&mm[i].msg_hdr, 0, sizeof(mm[i].msg_hdr));
            mm[i].msg_hdr.msg_iov = &iov[i];
            mm[i].msg_hdr.msg_iovlen = 1;
            mm[i].msg_hdr.msg_name = &names[i];
            mm[i].msg_hdr.msg_namelen = sizeof(names[i]);
            if (!s->udp) {
                mm[i].msg_hdr.msg_control = ctl[i].buf;
                mm[i].msg_hdr.msg_controllen = sizeof(ctl[i].buf);
            }
        }
        int k;
        if (n == 1) {
            ssize_t r = recvmsg(fd, &mm[0].msg_hdr, MSG_DONTWAIT);
            mm[0].msg_len = r < 0 ? 0 : (unsigned)r;
            k = r < 0 ? -1 : 1;
        } else {
            k = recvmmsg(fd, mm, n, MSG_DONTWAIT, NULL);
        }
        if (k <= 0)
            return;
        uint64_t now = uds_loop_now(loop);
        int answered = 0;
        s->activity++;
        for (int i = 0; i < k; i++) {
            struct msghdr *m = &mm[i].msg_hdr;
            const struct sockaddr_storage *ss = &names[i];
            socklen_t sl = m->msg_namelen;
            size_t len = mm[i].msg_len;
            bench_hello h;
            if (len == sizeof(h) && !(m->msg_flags & MSG_TRUNC)) {
                memcpy(&h, iov[i].iov_base, sizeof(h));
                if (h.magic == BENCH_MAGIC) {
                    uds_cred cred, *cp = NULL;
                    for (struct cmsghdr *cm = CMSG_FIRSTHDR(m); cm; cm = CMSG_NXTHDR(m, cm))
                        if (cm->cmsg_level == SOL_SOCKET && cm->cmsg_type == SCM_CREDENTIALS) {
                            struct ucred uc;
                            memcpy(&uc, CMSG_DATA(cm), sizeof(uc));
                            cred.pid = uc.pid;
                            cred.uid = uc.uid;
                            cred.gid = uc.gid;
                            cp = &cred;
                        }
                    dgram_hello(s, &h, ss, sl, cp);
                    answered = 1;
                    continue;
                }
            }
            int p = dpeer_find(s, ss, sl);
            if (p < 0)
                continue; /* no session: dropped */
            dpeer *d = &s->peers[p];
            d->last_ms = now;
            if (d->mode == BM_DGRAM) {
                if (!d->t0)
                    d->t0 = bench_now_ns();
                d->count++;
            } else {
                if (!(m->msg_flags & MSG_TRUNC))
                    dsend(s, iov[i].iov_base, len, ss, sl);
                answered = 1;
            }
        }
        if (answered || (n > 1 && (unsigned)k < n))
            return; /* answered, or the queue is empty */
    }
}

/* ---- timeouts, spinning, start and stop ----------------------------------- */

/* Every 250 ms: hellos, connect requests, idle rr connections, hold
   sessions whose joins stopped, datagram peers gone silent. */
static void sweep_cb(uds_loop *loop, uint64_t id, void *arg)
{
    (void)id;
    bsrv *s = arg;
    uint64_t now = uds_loop_now(loop);
    for (bconn *c = s->conns; c; c = c->next) {
        if (c->closed || !c->deadline || now < c->deadline)
            continue;
        if (c->state == ST_HOLD_CTRL && c->hold && !c->hold->reported)
            hold_report(c->hold); /* joins stopped coming: what we have */
        else
            conn_close(c, c->state == ST_REQ_READ || c->state == ST_REQ_WRITE);
    }
    /* threads: no message for BENCH_IDLE_MS (a peer that neither sends nor
       reads its echoes) -> shutdown, which ends its blocking recv or send */
    pthread_mutex_lock(&s->jobs_mu);
    for (bjob *j = s->jobs; j; j = j->next) {
        uint64_t p = __atomic_load_n(&j->progress, __ATOMIC_RELAXED);
        if (p != j->seen) {
            j->seen = p;
            j->seen_ms = now;
        } else if (!j->ended && now - j->seen_ms >= BENCH_IDLE_MS) {
            j->ended = 1;
            pthread_mutex_lock(&j->mu);
            if (j->fd >= 0)
                shutdown(j->fd, SHUT_RDWR);
            pthread_mutex_unlock(&j->mu);
        }
    }
    pthread_mutex_unlock(&s->jobs_mu);
    if (s->peers)
        for (unsigned i = 0; i < BENCH_DGRAM_PEERS; i++)
            if (s->peers[i].used && now - s->peers[i].last_ms >= BENCH_IDLE_MS)
                dpeer_end(s, (int)i);
    s->sweep = s->stopping ? 0 : uds_loop_timer(loop, 250, sweep_cb, s);
}

/* The largest spin an rr connection or datagram session asked for. */
static uint64_t loop_spin(const bsrv *s)
{
    uint64_t m = 0;
    for (const bconn *c = s->conns; c; c = c->next)
        if (!c->closed && c->state == ST_RR && c->spin_ns > m)
            m = c->spin_ns;
    if (s->o->spin_us > 0 && s->peers && s->npeers)
        m = (uint64_t)s->o->spin_us * 1000u;
    return m;
}

static void on_stop(cli_svc *svc, int signo, void *arg)
{
    (void)signo;
    bsrv *s = arg;
    s->stopping = 1;
    if (s->acc)
        uds_acceptor_close(s->acc); /* the socket file goes now */
    uds_loop_stop(svc->loop);
}

/* Runs the loop; after a round with work, polls it for the spin time
   before blocking again (what --spin asks of the server). */
static int drive(bsrv *s)
{
    while (!s->stopping) {
        uint64_t spin = loop_spin(s);
        if (spin) {
            uint64_t seen = s->activity, t0 = bench_now_ns();
            while (!s->stopping && bench_now_ns() - t0 < spin) {
                int r = uds_loop_run_once(s->svc.loop, 0);
                if (r < 0)
                    return r;
                if (s->activity != seen) {
                    seen = s->activity;
                    t0 = bench_now_ns();
                }
            }
        }
        if (s->stopping)
            break;
        int r = uds_loop_run_once(s->svc.loop, -1);
        if (r < 0)
            return r;
    }
    return 0;
}

/* After the loop: wake the threads (shutdown ends their blocking calls),
   let them post their end, then close what is left. */
static void finish(bsrv *s)
{
    if (s->sweep > 0)
        uds_loop_timer_cancel(s->svc.loop, (uint64_t)s->sweep);
    s->sweep = 0;
    for (int tries = 0; s->threads > 0 && tries < 100; tries++) {
        pthread_mutex_lock(&s->jobs_mu);
        for (bjob *j = s->jobs; j; j = j->next) {
            pthread_mutex_lock(&j->mu);
            if (j->fd >= 0)
                shutdown(j->fd, SHUT_RDWR);
            pthread_mutex_unlock(&j->mu);
        }
        pthread_mutex_unlock(&s->jobs_mu);
        (void)uds_loop_run_once(s->svc.loop, 20);
    }
    while (s->holds)
        hold_end(s->holds);
    for (bconn *c = s->conns; c; c = c->next)
        conn_close(c, 0);
    (void)uds_loop_run_once(s->svc.loop, 0); /* the deferred frees */
}

int bench_serve(uds_listener *l, const bench_srv_opts *o)
{
    bsrv *s = calloc(1, sizeof(*s));
    if (!s) {
        uds_listener_close(l);
        return -ENOMEM;
    }
    s->o = o;
    s->dfd = -1;
    s->last_peer = -1;
    s->tcp = l->addr.kind == UDS_ADDR_TCP;
    s->udp = l->addr.kind == UDS_ADDR_UDP;
    s->seqpacket = l->type == UDS_SEQPACKET;
    pthread_mutex_init(&s->jobs_mu, NULL);
    cli_svc_init(&s->svc, o->name ? o->name : "bench", on_stop, s);
    int r = 0;
    if (l->type == UDS_DGRAM) {
        s->peers = calloc(BENCH_DGRAM_PEERS, sizeof(*s->peers));
        s->dbuf = malloc(BENCH_DGRAM_MAX);
        if (!s->peers || !s->dbuf)
            r = -ENOMEM;
        s->dfd = l->fd;
        uds_set_bufsizes(s->dfd, o->sndbuf, o->rcvbuf);
        if (r == 0 && !s->udp)
            r = uds_set_passcred(s->dfd, 1);
        dslots_update(s);
        if (r == 0)
            r = uds_set_nonblock(s->dfd, 1);
        if (r == 0)
            r = uds_loop_watch(s->svc.loop, s->dfd, UDS_EV_READ, dgram_io, s);
    } else {
        uds_acceptor_opts ao;
        memset(&ao, 0, sizeof(ao));
        ao.max_conns = BENCH_MAX_CONNS;
        ao.max_conns_per_uid = o->private_addr ? 0 : BENCH_MAX_CONNS_PER_UID;
        ao.access = s->tcp ? NULL : o->access;
        ao.admit = admit_tcp;
        ao.admit_arg = s;
        ao.log = cli_svc_log;
        ao.log_arg = &s->svc;
        ao.name = NULL;
        r = uds_acceptor_new(&s->acc, s->svc.loop, &ao, on_accept, s);
        if (r == 0) {
            r = uds_acceptor_add(s->acc, l);
            if (r < 0) {
                uds_acceptor_free(s->acc);
                s->acc = NULL;
            }
        }
    }
    if (r == 0) {
        s->sweep = uds_loop_timer(s->svc.loop, 250, sweep_cb, s);
        if (s->sweep < 0)
            r = (int)s->sweep;
    }
    if (r == 0)
        r = drive(s);
    finish(s);
    if (s->dfd >= 0) {
        uds_loop_unwatch(s->svc.loop, s->dfd);
        uds_listener_close(l);
    } else if (!s->acc) {
        uds_listener_close(l);
    }
    if (s->threads > 0) {
        /* a session thread that did not end within the 2 s of finish()
           would still post to the loop: leave the loop and s to it (the
           process is about to exit) rather than free them under it */
        cli_svc_warn(&s->svc, "%u session thread(s) did not end; leaving them", s->threads);
        return r;
    }
    uds_acceptor_free(s->acc);
    cli_svc_free(&s->svc);
    pthread_mutex_destroy(&s->jobs_mu);
    free(s->peers);
    free(s->dbuf);
    free(s);
    return r;
}
