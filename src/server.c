/*
 * server.c — request/response server on a uds_loop.
 *
 * Each connection is a uds_conn plus a queue of requests in arrival order.
 * A reply to the request at the head of the queue is written at once, and
 * so are the replies waiting behind it; a reply given out of order waits in
 * its request. So replies always leave in request order.
 *
 * Accepting is the acceptor's (acceptor.c): one uds_acceptor holds every
 * stream/seqpacket listener and enforces max_conns/max_conns_per_uid
 * (excess accepted and closed at once, with a rate-limited log line, so the
 * peer is not left hanging in the backlog) and the EMFILE strategy; each
 * connection holds one of its slots until on_close. Datagram sockets are
 * the server's own.
 *
 * Protection against peers beyond that: reading stops while a peer has too
 * many requests unanswered or too many reply bytes queued (it must read its
 * replies), and a peer over out_cap is dropped; a sweep timer closes idle
 * connections and ones that keep a message incomplete too long (slowloris).
 */
#include "internal.h"

#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define DEF_INFLIGHT 1024
#define DEF_DGRAM_INFLIGHT 4096 /* datagram requests unanswered, all senders */
#define DEF_DGRAM_PER_PEER 32   /* ... from one sender address */
#define PEER_BUCKETS 1024       /* of the per-sender table (chained) */

/* A datagram sender with requests in flight: its address and their count
   (an entry exists only while the count is above 0). */
struct dpeer {
    struct dpeer *next;
    unsigned n;
    socklen_t len;
    unsigned char addr[];
};

struct sconn;

struct uds_req {
    struct uds_req *next;
    struct sconn *sc;  /* NULL once the connection is gone */
    struct lsock *dg;  /* datagram request: the socket to reply through */
    struct dpeer *dp;  /* datagram request: its sender's count */
    char *reply;       /* an out-of-order reply waiting for its turn */
    size_t reply_len;
    uds_cred cred;
    uint8_t done;      /* answered (or dropped) */
    uint8_t has_reply;
    socklen_t peer_len; /* datagram: the sender's address follows */
    unsigned char peer[];
};

struct sconn {
    uds_conn *conn;
    uds_server *s;
    struct sconn *prev, *next;
    uds_req *head, *tail;  /* requests in arrival order */
    uint64_t last_ms;      /* last data received */
    uint64_t partial_ms;   /* when the current incomplete message began */
    uint64_t stall_ms;     /* since when queued output made no progress */
    uint64_t sent_seen;    /* uds__conn_sent at stall_ms */
    uds_cred cred;
    unsigned inflight;
    uint8_t hw_paused;     /* reading stopped: replies above high water */
    uint8_t packets;
    uint8_t eof;
    uint8_t holds_slot;    /* one of the acceptor's slots, released on close */
    uid_t slot_uid;        /* the uid the slot was taken for ((uid_t)-1: TCP) */
};

/*
 * A bound datagram socket (listening sockets belong to the acceptor). It is
 * referenced by its unanswered requests (replies go out through it), so it
 * outlives shutdown until they are answered ("zombie"), and outlives the
 * server itself detached (s == NULL, fd closed: replies are discarded).
 */
struct lsock {
    uds_server *s;
    uds_listener l;
    int dgram;
    int zombie;
    unsigned refs;
    struct lsock *znext;
};

struct uds_server {
    uds_loop *loop;
    uds_server_opts o;
    uds_framer framer;
    uds_request_cb cb;
    void *arg;
    struct lsock **ls;
    int nls;
    struct lsock *zombies;
    unsigned dgram_inflight;
    struct dpeer **peers;  /* PEER_BUCKETS chains, from the first datagram */
    uds_ratelimit dgram_rl; /* "over the limit" lines: one a second */
    unsigned dgram_held;   /* lines that interval did not say */
    int64_t dgram_rl_timer;
    int deadline_hit;
    struct sconn *conns;
    unsigned nconns;
    uds_acceptor *acc;     /* every stream/seqpacket listener */
    uds_addr first_addr;   /* of the first listener, for uds_server_addr */
    int has_addr;
    int64_t sweep_timer, deadline_timer;
    int draining;
    int done_called;
    void (*done)(uds_server *, void *);
    void *done_arg;
    uds_server_stats st;
};

static void slog(uds_server *s, int level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void slog(uds_server *s, int level, const char *fmt, ...)
{
    if (!s->o.log)
        return;
    char buf[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    s->o.log(s->o.log_arg, level, buf);
}

/* "fd 7 pid 123 uid 1000" or "fd 7 tcp:127.0.0.1:5555": who a line is about */
static const char *peer_name(int fd, const uds_cred *cred, char *buf, size_t size)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof(ss);
    uds_addr a;
    char text[UDS_ADDR_STRLEN];
    if (fd >= 0 && getpeername(fd, (struct sockaddr *)&ss, &len) == 0 &&
        ss.ss_family != AF_UNIX &&
        uds_addr_from_sockaddr(&a, (struct sockaddr *)&ss, len, SOCK_STREAM) == 0 &&
        uds_addr_format(&a, text, sizeof(text)) >= 0)
        snprintf(buf, size, "fd %d %s", fd, text);
    else
        snprintf(buf, size, "fd %d pid %ld uid %ld", fd, (long)cred->pid,
                 (long)cred->uid);
    return buf;
}

/* ---- requests and replies ----------------------------------------------- */

static void maybe_finish(uds_server *s);

/* Reading resumes when every reason to pause is gone. */
static void maybe_resume(struct sconn *sc)
{
    uds_server *s = sc->s;
    if (s->draining || sc->eof || uds_conn_closing(sc->conn))
        return;
    if (sc->inflight < s->o.max_inflight &&
        uds_conn_queued(sc->conn) <= s->o.high_water) {
        sc->hw_paused = 0;
        uds_conn_read_start(sc->conn);
    }
}

static void write_reply(struct sconn *sc, const void *data, size_t len)
{
    uds_server *s = sc->s;
    uint8_t hdr[UDS_FRAME_HDR_LEN];
    struct iovec iov[2];
    int n = 0;
    if (sc->packets) {
        iov[n].iov_base = (void *)data;
        iov[n++].iov_len = len;
    } else if (s->framer.mode == UDS_FRAME_LINE) {
        iov[n].iov_base = (void *)data;
        iov[n++].iov_len = len;
        iov[n].iov_base = (void *)"\n";
        iov[n++].iov_len = 1;
    } else {
        uds_frame_header(&s->framer, len, hdr);
        iov[n].iov_base = hdr;
        iov[n++].iov_len = UDS_FRAME_HDR_LEN;
        iov[n].iov_base = (void *)data;
        iov[n++].iov_len = len;
    }
    int r = uds_conn_writev(sc->conn, iov, n);
    if (r < 0)
        return; /* closed (-ENOBUFS is logged by on_close) */
    s->st.replies++;
    size_t q = uds_conn_queued(sc->conn);
    if (q > s->st.max_conn_queued)
        s->st.max_conn_queued = q;
    if (r == 1) { /* replies pile up: stop taking requests from this peer */
        sc->hw_paused = 1;
        uds_conn_read_stop(sc->conn);
    }
}

/* Sends every answered reply at the head of the queue, in order. */
static void pump(struct sconn *sc)
{
    while (sc->head && sc->head->done) {
        uds_req *r = sc->head;
        sc->head = r->next;
        if (!sc->head)
            sc->tail = NULL;
        if (r->has_reply)
            write_reply(sc, r->reply, r->reply_len);
        free(r->reply);
        free(r);
        sc->inflight--;
    }
    if (sc->inflight == 0 && (sc->eof || sc->s->draining))
        uds_conn_end(sc->conn);
    else
        maybe_resume(sc);
}

/* FNV-1a of a sender's address: its chain in s->peers. */
static unsigned peer_hash(const void *addr, socklen_t len)
{
    const unsigned char *p = addr;
    uint32_t h = 2166136261u;
    for (socklen_t i = 0; i < len; i++)
        h = (h ^ p[i]) * 16777619u;
    return h % PEER_BUCKETS;
}

/*
 * The count of addr's requests in flight, its entry created at 0 if need be
 * (NULL: out of memory). Why per address and not per uid: it works for udp:
 * too, and a sender that binds many names is held by the total limit.
 */
static struct dpeer *peer_get(uds_server *s, const void *addr, socklen_t len)
{
    if (!s->peers && !(s->peers = calloc(PEER_BUCKETS, sizeof(*s->peers))))
        return NULL;
    struct dpeer **pp = &s->peers[peer_hash(addr, len)];
    for (struct dpeer *p = *pp; p; p = p->next)
        if (p->len == len && !memcmp(p->addr, addr, len))
            return p;
    struct dpeer *p = calloc(1, sizeof(*p) + len);
    if (!p)
        return NULL;
    p->len = len;
    memcpy(p->addr, addr, len);
    p->next = *pp;
    *pp = p;
    return p;
}

/* One request of p's less; the entry goes with its last one. */
static void peer_put(uds_server *s, struct dpeer *p)
{
    if (p->n && --p->n)
        return;
    struct dpeer **pp = &s->peers[peer_hash(p->addr, p->len)];
    while (*pp && *pp != p)
        pp = &(*pp)->next;
    if (*pp)
        *pp = p->next;
    free(p);
}

static void free_peers(uds_server *s)
{
    if (!s->peers)
        return;
    for (unsigned i = 0; i < PEER_BUCKETS; i++)
        for (struct dpeer *p = s->peers[i], *n; p; p = n) {
            n = p->next;
            free(p);
        }
    free(s->peers);
    s->peers = NULL;
}

/* Lets go of a datagram request; the socket goes with its last one. */
static void dgram_release(uds_req *r)
{
    struct lsock *ls = r->dg;
    uds_server *s = ls->s;
    if (s && r->dp)
        peer_put(s, r->dp);
    free(r);
    ls->refs--;
    if (s)
        s->dgram_inflight--;
    if (ls->refs == 0 && (ls->zombie || !s)) {
        if (s) {
            struct lsock **pp = &s->zombies;
            while (*pp && *pp != ls)
                pp = &(*pp)->znext;
            if (*pp)
                *pp = ls->znext;
        }
        uds_listener_close(&ls->l);
        free(ls);
    }
    if (s)
        maybe_finish(s);
}

static int dgram_reply(uds_req *r, const void *data, size_t len)
{
    struct lsock *ls = r->dg;
    int ret;
    if (!ls->s || ls->l.fd < 0)
        ret = UDS_ECLOSED;
    else if (len > ls->s->framer.max)
        ret = -EMSGSIZE;
    else {
        ssize_t n = UDS__RETRY(sendto(ls->l.fd, data, len, MSG_DONTWAIT | MSG_NOSIGNAL,
                                      (const struct sockaddr *)r->peer, r->peer_len));
        ret = n < 0 ? (errno == EWOULDBLOCK ? -EAGAIN : uds__err()) : 0;
        if (ret == 0)
            ls->s->st.replies++;
        else
            ls->s->st.replies_lost++;
    }
    dgram_release(r);
    return ret;
}

int uds_req_reply(uds_req *r, const void *data, size_t len)
{
    if (!r)
        return -EINVAL;
    if (r->dg)
        return dgram_reply(r, data, len);
    struct sconn *sc = r->sc;
    if (!sc) {
        free(r);
        return UDS_ECLOSED;
    }
    int ret = 0;
    r->done = 1;
    if (len > sc->s->framer.max ||
        (sc->s->framer.mode == UDS_FRAME_LINE && !sc->packets && len &&
         memchr(data, '\n', len))) {
        ret = len > sc->s->framer.max ? -EMSGSIZE : -EINVAL;
    } else if (r == sc->head) {
        /* the common case: in order, no copy */
        sc->head = r->next;
        if (!sc->head)
            sc->tail = NULL;
        sc->inflight--;
        free(r);
        write_reply(sc, data, len);
        if (uds_conn_closing(sc->conn))
            ret = UDS_ECLOSED;
    } else {
        r->reply = malloc(len ? len : 1);
        if (!r->reply) {
            ret = -ENOMEM;
        } else {
            memcpy(r->reply, data, len);
            r->reply_len = len;
            r->has_reply = 1;
        }
    }
    pump(sc);
    return ret;
}

void uds_req_drop(uds_req *r)
{
    if (!r)
        return;
    if (r->dg) {
        dgram_release(r);
        return;
    }
    struct sconn *sc = r->sc;
    if (!sc) {
        free(r);
        return;
    }
    r->done = 1;
    pump(sc);
}

const uds_cred *uds_req_cred(const uds_req *r) { return &r->cred; }

void uds_req_close(uds_req *r)
{
    if (r && !r->dg && r->sc)
        uds_conn_close(r->sc->conn);
    uds_req_drop(r);
}

static void handle_msg(struct sconn *sc, const void *msg, size_t len)
{
    uds_server *s = sc->s;
    uds_req *r = calloc(1, sizeof(*r));
    if (!r) {
        slog(s, UDS_LOG_ERR, "out of memory for a request; closing connection");
        uds_conn_close(sc->conn);
        return;
    }
    r->sc = sc;
    r->cred = sc->cred;
    if (sc->tail)
        sc->tail->next = r;
    else
        sc->head = r;
    sc->tail = r;
    sc->inflight++;
    s->st.requests++;
    s->cb(s, r, msg, len, s->arg);
}

/* ---- connection callbacks ----------------------------------------------- */

static size_t on_data(uds_conn *c, const void *data, size_t len, void *arg)
{
    struct sconn *sc = arg;
    uds_server *s = sc->s;
    uint64_t now = uds_loop_now(s->loop);
    sc->last_ms = now;
    if (s->draining)
        return 0;
    if (sc->packets) {
        handle_msg(sc, data, len);
        if (sc->inflight >= s->o.max_inflight && !uds_conn_closing(c))
            uds_conn_read_stop(c);
        return len;
    }
    const char *p = data;
    size_t off = 0;
    int frames = 0, partial = 0;
    while (off < len) {
        if (sc->inflight >= s->o.max_inflight || sc->hw_paused ||
            uds_conn_closing(c)) {
            uds_conn_read_stop(c);
            break;
        }
        uds_frame f;
        int r = uds_frame_decode(&s->framer, p + off, len - off, &f);
        if (r < 0) {
            char who[UDS_ADDR_STRLEN + 32];
            slog(s, UDS_LOG_WARNING, "%s: %s in frame header; disconnecting",
                 peer_name(uds_conn_fd(c), &sc->cred, who, sizeof(who)),
                 r == -EMSGSIZE ? "message too large" : "malformed length");
            s->st.dropped++;
            /* nothing after a bad header can be trusted: read no more, but
               answer the good requests before it, then close */
            sc->eof = 1;
            sc->partial_ms = 0;
            uds_conn_read_stop(c);
            if (sc->inflight == 0)
                uds_conn_end(c);
            return len;
        }
        if (r == 0) {
            partial = 1;
            break;
        }
        off += (size_t)r;
        frames++;
        handle_msg(sc, f.data, f.len);
        if (uds_conn_closing(c))
            return len;
    }
    if (frames > 0 || !partial)
        sc->partial_ms = partial ? now : 0;
    else if (!sc->partial_ms)
        sc->partial_ms = now;
    return off;
}

static void on_eof(uds_conn *c, void *arg)
{
    struct sconn *sc = arg;
    sc->eof = 1;
    if (sc->inflight == 0)
        uds_conn_end(c);
}

static void on_drain(uds_conn *c, void *arg)
{
    (void)c;
    maybe_resume(arg);
}

/*
 * Lets go of a connection's request list: answered requests are freed;
 * requests the application still holds outlive the connection (their
 * uds_req_reply then frees them and returns UDS_ECLOSED).
 */
static void detach_reqs(struct sconn *sc)
{
    for (uds_req *r = sc->head, *n; r; r = n) {
        n = r->next;
        if (r->done) {
            free(r->reply);
            free(r);
        } else {
            r->sc = NULL;
            r->next = NULL;
        }
    }
}

static void on_close(uds_conn *c, int err, void *arg)
{
    (void)c;
    struct sconn *sc = arg;
    uds_server *s = sc->s;
    if (err == -ENOBUFS) {
        s->st.dropped++;
        slog(s, UDS_LOG_WARNING,
             "pid %ld uid %ld: replies not read (over %zu bytes queued); disconnected",
             (long)sc->cred.pid, (long)sc->cred.uid, s->o.out_cap);
    } else if (err == -EMSGSIZE) {
        s->st.dropped++;
        slog(s, UDS_LOG_WARNING, "pid %ld uid %ld: message too large; disconnected",
             (long)sc->cred.pid, (long)sc->cred.uid);
    } else if (err < 0) {
        slog(s, UDS_LOG_DEBUG, "pid %ld uid %ld: connection error: %s",
             (long)sc->cred.pid, (long)sc->cred.uid, uds_strerror(err));
    }
    detach_reqs(sc);
    if (sc->prev)
        sc->prev->next = sc->next;
    else
        s->conns = sc->next;
    if (sc->next)
        sc->next->prev = sc->prev;
    if (sc->holds_slot)
        uds_acceptor_release(s->acc, sc->slot_uid);
    s->nconns--;
    free(sc);
    maybe_finish(s);
}

static const uds_conn_cbs server_conn_cbs = {
    .on_data = on_data,
    .on_eof = on_eof,
    .on_drain = on_drain,
    .on_close = on_close,
};

/*
 * Takes a connected socket, admitted by the acceptor (its slot taken), into
 * service. On failure the slot is released and the fd closed if
 * close_on_fail (an accepted client), else left to the caller
 * (uds_server_add_conn keeps the fd on failure).
 */
static int admit(uds_server *s, int fd, const uds_peer *peer, int close_on_fail)
{
    struct sconn *sc = calloc(1, sizeof(*sc));
    int r = -ENOMEM;
    if (!sc)
        goto fail;
    sc->s = s;
    /* uds_req_cred promises zeros for a peer that is not unix */
    if (peer->is_unix)
        sc->cred = peer->cred;
    int type = uds_sock_type(fd);
    sc->packets = type == SOCK_SEQPACKET || type == SOCK_DGRAM;
    if (!peer->is_unix)
        uds__nodelay(fd);
    sc->last_ms = uds_loop_now(s->loop);
    uds_conn_opts co;
    memset(&co, 0, sizeof(co));
    co.high_water = s->o.high_water;
    co.out_cap = s->o.out_cap;
    co.max_input = s->framer.max + (sc->packets ? 0 : UDS_FRAME_HDR_LEN);
    r = uds_conn_new(&sc->conn, s->loop, fd, &co, &server_conn_cbs, sc);
    if (r < 0)
        goto fail;
    sc->holds_slot = 1;
    sc->slot_uid = peer->cred.uid;
    sc->next = s->conns;
    if (s->conns)
        s->conns->prev = sc;
    s->conns = sc;
    s->nconns++;
    s->st.accepted++;
    return 0;
fail:
    slog(s, UDS_LOG_ERR, "cannot serve a new connection: %s; closing it",
         uds_strerror(r));
    free(sc);
    uds_acceptor_release(s->acc, peer->cred.uid);
    if (close_on_fail)
        close(fd);
    return r;
}

/* The acceptor admitted a client: serve it. */
static void on_accepted(uds_acceptor *a, int fd, const uds_peer *peer, void *arg)
{
    (void)a;
    admit(arg, fd, peer, 1);
}

/* The count of lines the last interval held back, in one line. */
static void dgram_summary(uds_server *s)
{
    if (s->dgram_held)
        slog(s, UDS_LOG_WARNING,
             "%u more datagram requests dropped over the in-flight limits in the last "
             "second (%llu in all)", s->dgram_held,
             (unsigned long long)s->st.dgram_over_limit);
    s->dgram_held = 0;
}

/*
 * The end of an interval with lines held back: the summary. Under load the
 * timer can run late, after a drop has already opened the next interval
 * (and said the summary itself); then what is held belongs to that one
 * and is said at its end, so there are never more than two lines an
 * interval.
 */
static void dgram_summary_fire(uds_loop *loop, uint64_t id, void *arg)
{
    (void)id;
    uds_server *s = arg;
    s->dgram_rl_timer = 0;
    uint64_t now = uds_loop_now(loop), end = uds_ratelimit_end(&s->dgram_rl);
    if (s->dgram_rl.begin_ms && now < end) {
        int64_t t = uds_loop_timer(loop, end - now, dgram_summary_fire, s);
        if (t > 0) {
            s->dgram_rl_timer = t;
            return;
        }
    }
    uds_ratelimit_flush(&s->dgram_rl, now);
    dgram_summary(s);
}

/*
 * A datagram request over max_dgram_inflight or max_dgram_per_peer: dropped
 * (the library cannot know what an error answer looks like to the
 * application), counted, and said at most once a second with a summary of
 * the rest: the sender picks the rate.
 */
static void over_limit(uds_server *s, struct dpeer *dp, const struct sockaddr_storage *from,
                       socklen_t len)
{
    s->st.dgram_over_limit++;
    int per_peer = dp->n >= s->o.max_dgram_per_peer;
    if (dp->n == 0)
        peer_put(s, dp); /* made for this datagram only */
    if (!s->o.log)
        return;
    uint64_t now = uds_loop_now(s->loop);
    if (!uds_ratelimit_pass(&s->dgram_rl, now, NULL)) {
        s->dgram_held++;
        if (!s->dgram_rl_timer) {
            uint64_t end = uds_ratelimit_end(&s->dgram_rl);
            int64_t t = uds_loop_timer(s->loop, end > now ? end - now : 0,
                                       dgram_summary_fire, s);
            s->dgram_rl_timer = t > 0 ? t : 0;
        }
        return;
    }
    dgram_summary(s);
    uds_addr a;
    char t[UDS_ADDR_STRLEN], who[UDS_ADDR_STRLEN];
    if (uds_addr_from_sockaddr(&a, (const struct sockaddr *)from, len, SOCK_DGRAM) < 0 ||
        uds_addr_format(&a, t, sizeof(t)) < 0)
        snprintf(t, sizeof(t), "(unnamed)");
    if (uds_escape(t, strlen(t), who, sizeof(who)) < 0)
        snprintf(who, sizeof(who), "(unprintable)");
    if (per_peer)
        slog(s, UDS_LOG_WARNING,
             "datagram from %s dropped: %u of its requests in flight (max_dgram_per_peer); "
             "at most one such line a second", who, s->o.max_dgram_per_peer);
    else
        slog(s, UDS_LOG_WARNING,
             "datagram from %s dropped: %u datagram requests in flight (max_dgram_inflight); "
             "at most one such line a second", who, s->o.max_dgram_inflight);
}

/* Datagram socket readable: each datagram is one request. */
static void on_dgram(uds_loop *loop, int fd, unsigned ev, void *arg)
{
    (void)ev;
    struct lsock *ls = arg;
    uds_server *s = ls->s;
    size_t max = s->framer.max;
    for (int i = 0; i < 16 && !s->draining; i++) {
        char *buf = uds__loop_scratch(loop, max + 1);
        if (!buf)
            return;
        struct sockaddr_storage from;
        struct iovec iov = {buf, max + 1};
        struct msghdr mh;
        memset(&mh, 0, sizeof(mh));
        mh.msg_name = &from;
        mh.msg_namelen = sizeof(from);
        mh.msg_iov = &iov;
        mh.msg_iovlen = 1;
        ssize_t n = UDS__RETRY(recvmsg(fd, &mh, MSG_DONTWAIT | MSG_CMSG_CLOEXEC));
        if (n < 0) {
            if (errno != EAGAIN && errno != EWOULDBLOCK)
                slog(s, UDS_LOG_DEBUG, "recvmsg: %s", strerror(errno));
            return;
        }
        if ((mh.msg_flags & MSG_TRUNC) || (size_t)n > max) {
            slog(s, UDS_LOG_WARNING, "datagram over %zu bytes dropped", max);
            s->st.dropped++;
            continue;
        }
        struct dpeer *dp = peer_get(s, &from, mh.msg_namelen);
        if (!dp)
            return; /* out of memory: the datagrams wait in the kernel */
        if (s->dgram_inflight >= s->o.max_dgram_inflight ||
            dp->n >= s->o.max_dgram_per_peer) {
            over_limit(s, dp, &from, mh.msg_namelen);
            continue;
        }
        uds_req *r = calloc(1, sizeof(*r) + mh.msg_namelen);
        if (!r) {
            if (!dp->n)
                peer_put(s, dp);
            return;
        }
        dp->n++;
        r->dp = dp;
        r->dg = ls;
        r->peer_len = mh.msg_namelen;
        memcpy(r->peer, &from, mh.msg_namelen);
        ls->refs++;
        s->dgram_inflight++;
        s->st.requests++;
        s->cb(s, r, buf, (size_t)n, s->arg);
    }
}

/* Keeps the first listener's address for uds_server_addr. */
static void note_addr(uds_server *s, const uds_addr *a)
{
    if (!s->has_addr) {
        s->first_addr = *a;
        s->has_addr = 1;
    }
}

/*
 * Serves listener *l: a stream/seqpacket one moves into the acceptor (l->fd
 * is -1 afterwards), a datagram one becomes the server's own. On failure
 * *l is still the caller's.
 */
static int add_listener(uds_server *s, uds_listener *l)
{
    if (l->type != UDS_DGRAM) {
        uds_addr a = l->addr;
        /* requests carry no fds: refused from a client's first byte on
           (accepted sockets inherit it), not only once its conn exists */
        if (uds_addr_family(&a) == AF_UNIX || a.kind == UDS_ADDR_NONE)
            uds_set_passrights(l->fd, 0);
        int r = uds_acceptor_add(s->acc, l);
        if (r == 0)
            note_addr(s, &a);
        return r;
    }
    struct lsock *ls = calloc(1, sizeof(*ls));
    if (!ls)
        return -ENOMEM;
    struct lsock **v = realloc(s->ls, (size_t)(s->nls + 1) * sizeof(*v));
    if (!v) {
        free(ls);
        return -ENOMEM;
    }
    s->ls = v;
    ls->s = s;
    ls->l = *l;
    ls->dgram = 1;
    int r = uds_set_nonblock(l->fd, 1);
    if (r == 0)
        r = uds_loop_watch(s->loop, l->fd, UDS_EV_READ, on_dgram, ls);
    if (r < 0) {
        free(ls);
        return r;
    }
    s->ls[s->nls++] = ls;
    note_addr(s, &l->addr);
    return 0;
}

int uds_server_listen(uds_server *s, const uds_addr *addr,
                      const uds_listen_opts *lopts)
{
    if (!s || !addr || s->draining)
        return -EINVAL;
    uds_listen_opts o;
    if (lopts)
        o = *lopts;
    else
        memset(&o, 0, sizeof(o));
    o.flags |= UDS_NONBLOCK;
    uds_listener l;
    int r = uds_listen(&l, addr, &o);
    if (r < 0)
        return r;
    r = add_listener(s, &l);
    if (r < 0)
        uds_listener_close(&l);
    return r;
}

int uds_server_adopt(uds_server *s, int fd)
{
    if (!s || fd < 0 || s->draining)
        return -EINVAL;
    int type = uds_sock_type(fd);
    if (type < 0)
        return type;
    if (type != SOCK_STREAM && type != SOCK_SEQPACKET && type != SOCK_DGRAM)
        return -EPROTOTYPE;
    int acc = 0;
    socklen_t al = sizeof(acc);
    if (type != SOCK_DGRAM &&
        getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &acc, &al) < 0)
        return uds__err();
    if (type != SOCK_DGRAM && !acc)
        return -EINVAL;
    uds_listener l;
    int r = uds_listener_from_fd(&l, fd);
    if (r < 0)
        return r;
    l.owns_path = 0; /* inherited: never unlink */
    l.type = type;
    return add_listener(s, &l);
}

/*
 * An already connected socket counts against max_conns/max_conns_per_uid
 * like an accepted one (the acceptor judges it, logs and counts a refusal);
 * a refused or failed fd stays the caller's.
 */
int uds_server_add_conn(uds_server *s, int fd)
{
    if (!s || fd < 0 || s->draining)
        return -EINVAL;
    int type = uds_sock_type(fd);
    if (type < 0)
        return type;
    uds_peer p;
    int r = uds__acceptor_admit_fd(s->acc, fd, &p);
    if (r < 0)
        return r;
    return admit(s, fd, &p, 0);
}

int uds_server_addr(const uds_server *s, uds_addr *out)
{
    if (!s || !out || !s->has_addr)
        return -ENOENT;
    *out = s->first_addr;
    return 0;
}

/* ---- timeouts ----------------------------------------------------------- */

static void sweep(uds_loop *loop, uint64_t id, void *arg);

static void arm_sweep(uds_server *s)
{
    unsigned t = 0;
    if (s->o.idle_timeout_ms)
        t = s->o.idle_timeout_ms;
    if (s->o.msg_timeout_ms && (!t || s->o.msg_timeout_ms < t))
        t = s->o.msg_timeout_ms;
    if (s->o.send_timeout_ms && (!t || s->o.send_timeout_ms < t))
        t = s->o.send_timeout_ms;
    if (!t)
        return;
    t /= 4;
    t = t < 5 ? 5 : t > 1000 ? 1000 : t;
    int64_t id = uds_loop_timer(s->loop, t, sweep, s);
    s->sweep_timer = id > 0 ? id : 0;
}

/* 1 if sc has had output queued and none of it sent for send_timeout_ms. */
static int stalled(struct sconn *sc, uint64_t now)
{
    uint64_t sent = uds__conn_sent(sc->conn);
    if (uds_conn_queued(sc->conn) == 0 || sent != sc->sent_seen || !sc->stall_ms) {
        sc->sent_seen = sent;
        sc->stall_ms = now;
        return 0;
    }
    return now - sc->stall_ms >= sc->s->o.send_timeout_ms;
}

/* Closes connections past their idle or message deadline; O(connections)
   every quarter of the shortest timeout, which is cheap next to I/O. */
static void sweep(uds_loop *loop, uint64_t id, void *arg)
{
    (void)id;
    uds_server *s = arg;
    s->sweep_timer = 0;
    uint64_t now = uds_loop_now(loop);
    for (struct sconn *sc = s->conns; sc; sc = sc->next) {
        if (uds_conn_closing(sc->conn))
            continue;
        char who[UDS_ADDR_STRLEN + 32];
        if (s->o.msg_timeout_ms && sc->partial_ms &&
            now - sc->partial_ms >= s->o.msg_timeout_ms) {
            slog(s, UDS_LOG_WARNING,
                 "%s: no complete message within %u ms; disconnecting",
                 peer_name(uds_conn_fd(sc->conn), &sc->cred, who, sizeof(who)),
                 s->o.msg_timeout_ms);
            s->st.dropped++;
            uds_conn_close(sc->conn);
        } else if (s->o.send_timeout_ms && stalled(sc, now)) {
            slog(s, UDS_LOG_WARNING,
                 "%s: replies not read for %u ms (%zu bytes queued); disconnecting",
                 peer_name(uds_conn_fd(sc->conn), &sc->cred, who, sizeof(who)),
                 s->o.send_timeout_ms, uds_conn_queued(sc->conn));
            s->st.dropped++;
            uds_conn_close(sc->conn);
        } else if (s->o.idle_timeout_ms && sc->inflight == 0 &&
                   uds_conn_queued(sc->conn) == 0 &&
                   now - sc->last_ms >= s->o.idle_timeout_ms) {
            slog(s, UDS_LOG_INFO, "%s: idle for %u ms; closing",
                 peer_name(uds_conn_fd(sc->conn), &sc->cred, who, sizeof(who)),
                 s->o.idle_timeout_ms);
            uds_conn_close(sc->conn);
        }
    }
    if (!s->draining)
        arm_sweep(s);
}

/* ---- life cycle --------------------------------------------------------- */

int uds_server_new(uds_server **out, uds_loop *loop, const uds_server_opts *opts,
                   uds_request_cb cb, void *arg)
{
    if (!out || !loop || !cb)
        return -EINVAL;
    uds_server *s = calloc(1, sizeof(*s));
    if (!s)
        return -ENOMEM;
    if (opts)
        s->o = *opts;
    if (s->o.framing == 0)
        s->o.framing = UDS_FRAME_LEN32;
    if (s->o.framing != UDS_FRAME_LEN32 && s->o.framing != UDS_FRAME_LINE) {
        free(s);
        return -EINVAL;
    }
    if (!s->o.max_msg)
        s->o.max_msg = UDS_FRAME_DEFAULT_MAX;
    if (s->o.max_msg > UDS_FRAME_LIMIT)
        s->o.max_msg = UDS_FRAME_LIMIT;
    if (!s->o.high_water)
        s->o.high_water = 256 * 1024;
    if (!s->o.out_cap)
        s->o.out_cap = 16 * 1024 * 1024;
    if (s->o.out_cap < s->o.high_water)
        s->o.out_cap = s->o.high_water;
    if (!s->o.max_inflight)
        s->o.max_inflight = DEF_INFLIGHT;
    if (!s->o.max_dgram_inflight)
        s->o.max_dgram_inflight = DEF_DGRAM_INFLIGHT;
    if (!s->o.max_dgram_per_peer)
        s->o.max_dgram_per_peer = DEF_DGRAM_PER_PEER;
    s->dgram_rl.burst = 1;
    s->dgram_rl.interval_ms = 1000;
    s->framer.mode = s->o.framing;
    s->framer.max = s->o.max_msg;
    s->loop = loop;
    s->cb = cb;
    s->arg = arg;
    uds_acceptor_opts ao;
    memset(&ao, 0, sizeof(ao));
    ao.max_conns = s->o.max_conns;
    ao.max_conns_per_uid = s->o.max_conns_per_uid;
    ao.log = s->o.log;
    ao.log_arg = s->o.log_arg;
    int r = uds_acceptor_new(&s->acc, loop, &ao, on_accepted, s);
    if (r < 0) {
        free(s);
        return r;
    }
    arm_sweep(s);
    *out = s;
    return 0;
}

static void close_listeners(uds_server *s)
{
    uds_acceptor_close(s->acc);
    s->has_addr = 0;
    for (int i = 0; i < s->nls; i++) {
        struct lsock *ls = s->ls[i];
        uds_loop_unwatch(s->loop, ls->l.fd);
        if (ls->dgram && ls->refs > 0) { /* replies still to go out */
            ls->zombie = 1;
            ls->znext = s->zombies;
            s->zombies = ls;
            continue;
        }
        uds_listener_close(&ls->l);
        free(ls);
    }
    free(s->ls);
    s->ls = NULL;
    s->nls = 0;
}

static void cancel_timers(uds_server *s)
{
    if (s->sweep_timer)
        uds_loop_timer_cancel(s->loop, (uint64_t)s->sweep_timer);
    if (s->deadline_timer)
        uds_loop_timer_cancel(s->loop, (uint64_t)s->deadline_timer);
    if (s->dgram_rl_timer) {
        uds_loop_timer_cancel(s->loop, (uint64_t)s->dgram_rl_timer);
        dgram_summary(s); /* said now rather than never */
    }
    s->sweep_timer = s->deadline_timer = s->dgram_rl_timer = 0;
}

/* The server goes away: datagram sockets still referenced by requests are
   closed and left to their last request to free. */
static void detach_zombies(uds_server *s)
{
    for (struct lsock *z = s->zombies, *n; z; z = n) {
        n = z->znext;
        uds_listener_close(&z->l);
        z->s = NULL;
    }
    s->zombies = NULL;
}

static void maybe_finish(uds_server *s)
{
    if (!s->draining || s->nconns != 0 || s->done_called ||
        (s->dgram_inflight > 0 && !s->deadline_hit))
        return;
    s->done_called = 1;
    detach_zombies(s);
    cancel_timers(s);
    if (s->done)
        s->done(s, s->done_arg);
}

static void deadline(uds_loop *loop, uint64_t id, void *arg)
{
    (void)loop;
    (void)id;
    uds_server *s = arg;
    s->deadline_timer = 0;
    s->deadline_hit = 1;
    if (s->nconns)
        slog(s, UDS_LOG_WARNING, "shutdown deadline: closing %u connections",
             s->nconns);
    for (struct sconn *sc = s->conns; sc; sc = sc->next)
        uds_conn_close(sc->conn);
    maybe_finish(s);
}

int uds_server_shutdown(uds_server *s, unsigned deadline_ms,
                        void (*done)(uds_server *, void *), void *arg)
{
    if (!s)
        return -EINVAL;
    if (s->draining)
        return 0;
    s->draining = 1;
    s->done = done;
    s->done_arg = arg;
    close_listeners(s);
    cancel_timers(s);
    for (struct sconn *sc = s->conns; sc; sc = sc->next) {
        uds_conn_read_stop(sc->conn);
        if (sc->inflight == 0)
            uds_conn_end(sc->conn);
    }
    if (s->nconns == 0 && s->dgram_inflight == 0) {
        maybe_finish(s); /* may free s */
        return 0;
    }
    int64_t t = uds_loop_timer(s->loop, deadline_ms, deadline, s);
    s->deadline_timer = t > 0 ? t : 0;
    return 0;
}

void uds_server_free(uds_server *s)
{
    if (!s)
        return;
    cancel_timers(s);
    close_listeners(s);
    detach_zombies(s);
    for (struct sconn *sc = s->conns, *n; sc; sc = n) {
        n = sc->next;
        detach_reqs(sc);
        uds__conn_destroy(sc->conn);
        free(sc);
    }
    uds_acceptor_free(s->acc);
    free_peers(s); /* detached requests no longer look at theirs */
    free(s);
}

void uds_server_stats_get(const uds_server *s, uds_server_stats *out)
{
    *out = s->st;
    uds_acceptor_stats as;
    uds_acceptor_stats_get(s->acc, &as);
    out->refused = as.refused; /* limits, at accept and at add_conn */
    out->conns = s->nconns;
    out->dgram_inflight = s->dgram_inflight;
    out->queued = 0;
    for (struct sconn *sc = s->conns; sc; sc = sc->next)
        out->queued += uds_conn_queued(sc->conn);
}
