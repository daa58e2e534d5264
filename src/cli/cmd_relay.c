/*
 * cmd_relay.c — `udsock relay LISTEN_ADDR TARGET_ADDR`: accept on one
 * address, connect each client to another (unix, abstract, tcp in any
 * combination, any socket type) and forward both ways.
 *
 * Everything stands on the library: uds_acceptor accepts (bounded batches,
 * the reserve-fd EMFILE strategy, -c/-C limits, uid/gid rules that fail
 * closed), uds_connect_start connects to the target without blocking (a
 * full unix backlog is retried), and uds_fwd joins the two sockets (splice
 * for bulk, framing adapters, fd and credential passing, half-close,
 * backpressure, idle timeout). This file is the glue and the words: what
 * the operator sees on stderr.
 *
 * Datagram listeners (--type dgram, udp:) have no connections: each
 * sender address gets its own socket connected to the target (a session),
 * closed after --idle-timeout of silence; replies go back to the sender
 * with a non-blocking sendto and are dropped (and counted) when the
 * sender does not read them.
 */
#include "access.h"
#include "cli.h"
#include "opts.h"
#include "service.h"

#include <errno.h>
#include <getopt.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#define DEF_MAXCONN 1000
#define DEF_CONNECT_TIMEOUT_MS 10000
#define DEF_DGRAM_IDLE_MS 60000
#define DGRAM_BATCH 32
#define DGRAM_HASH 1024

typedef struct relay relay;

/* One client connection: connecting to the target, then forwarding. */
typedef struct rconn {
    relay *R;
    uint64_t num;
    int cfd;              /* the client, until the forward owns it */
    int cwatch;           /* cfd watched for a hang-up while connecting */
    uid_t uid;            /* for uds_acceptor_release */
    char who[UDS_ADDR_STRLEN + 64]; /* the client, for log lines (escaped) */
    uds_connect_op *op;
    uds_fwd *fwd;
    int tries;            /* --retry: connects tried again so far */
    int64_t retry_timer;  /* pending retry (0 none) */
    struct rconn *prev, *next;
} rconn;

/* One datagram sender and its own socket to the target. */
typedef struct dsess {
    relay *R;
    uint64_t num;
    struct sockaddr_storage from;
    socklen_t fromlen;
    uds_conn *up;
    uint64_t last_ms;
    int64_t timer;
    uint64_t in, out, dropped;
    struct dsess *hnext;  /* hash chain */
    struct dsess *prev, *next;
} dsess;

struct relay {
    cli_svc svc;
    uds_acceptor *acc;
    cli_access rules;
    uds_addr target;
    char ltext[UDS_ADDR_STRLEN], ttext[UDS_ADDR_STRLEN];
    int ltype, ttype;
    uds_connect_opts copts;
    uds_fwd_opts fo;
    int hex, fds;
    int retries, retry_ms; /* --retry N, --retry-delay */
    int keepalive;         /* --keepalive: SO_KEEPALIVE on TCP ends */
    unsigned maxconn, maxperuid;
    int idle_ms;
    uint64_t connno;
    rconn *live;
    unsigned nlive;
    int stopping;
    /* datagram listeners */
    uds_listener dl;
    char *dbuf;
    dsess *hash[DGRAM_HASH];
    dsess *sessions;
    unsigned nsess;
};

static void usage(FILE *f)
{
    fprintf(f,
            "usage: udsock relay [OPTIONS] LISTEN_ADDR TARGET_ADDR\n"
            "Accept connections on LISTEN_ADDR and connect each one to TARGET_ADDR,\n"
            "forwarding both ways (splice() for bulk data between stream sockets).\n"
            "Addresses: /path, @abstract, tcp:HOST:PORT, udp:HOST:PORT.\n"
            "\noptions:\n"
            "  --type TYPE           LISTEN_ADDR's socket type: stream (default), seqpacket,\n"
            "                        dgram (each sender gets its own socket to the target)\n"
            "  --target-type TYPE    TARGET_ADDR's socket type (default: as --type)\n"
            "  --frame F             how messages are framed on the listening side's stream:\n"
            "                        raw (bytes, the default), len32 (4-byte big-endian length\n"
            "                        before each message), line (one message per line)\n"
            "  --target-frame F      the same for the target side\n"
            "  --max-msg SIZE        largest framed or packet message (default 1M); a\n"
            "                        bigger one closes that connection\n"
            "  --fds                 pass file descriptors (SCM_RIGHTS) between unix ends,\n"
            "                        with the bytes they were sent with, and (as root) the\n"
            "                        sender's credentials\n"
            "  -c N                  at most N connections (dgram: senders) at once\n"
            "                        (default 1000); more are closed at once and logged\n"
            "  -C N                  at most N connections at once per client uid (unix)\n"
            "  --idle-timeout SEC    close a connection with no data either way for SEC\n"
            "                        (default: never; dgram sessions: 60)\n"
            "  --connect-timeout SEC give up connecting to TARGET_ADDR after SEC (default 10)\n"
            "  --allow-uid LIST      accept only these users (unix listener; numbers or names)\n"
            "  --deny-uid LIST       refuse these users\n"
            "  --allow-gid LIST      accept only clients in these groups\n"
            "  --deny-gid LIST       refuse clients in these groups\n"
            "  --mode MODE           permissions of the socket file (octal)\n"
            "  --owner USER, --group GROUP   owner/group of the socket file\n"
            "  -v, --verbose         log connections, fds and credentials passed, and dump\n"
            "                        the traffic on stderr ('>' client to target, '<' back)\n"
            "  -x, --hex             with -v: dump as hex instead of escaped text\n"
            "  --no-splice           always copy through user space\n"
            "  --retry N             while the target is down (nothing listens there:\n"
            "                        refused, or no such file), try again up to N more\n"
            "                        times per client, --retry-delay apart (default 1 s);\n"
            "                        the client waits, and leaving ends its wait\n"
            "  --retry-delay SEC     the pause between those tries\n"
            "  --keepalive           SO_KEEPALIVE on TCP ends (client and target), so a\n"
            "                        peer that vanished is found and its slot freed\n"
            "  --ready-fd N          write a newline to fd N and close it once relaying\n"
            "                        (s6 notification-fd); READY=1 goes to $NOTIFY_SOCKET\n"
            "                        when it is set. A socket for LISTEN passed by the\n"
            "                        service manager (LISTEN_FDS) is used, never removed\n"
            "  -h, --help            this text\n"
            "EOF from one side is passed on as shutdown(SHUT_WR) to the other; a\n"
            "connection ends when both directions have ended.\n");
}

/* ---- -v output ------------------------------------------------------------ */

/*
 * Writes one chunk of traffic to stderr, built in memory first so one
 * chunk is one write and lines of different connections do not mix. Text:
 * one output line per input line, each escaped (uds_escape) so nothing a
 * peer sends can act on the operator's terminal.
 */
static void stamp(char *b, size_t n)
{
    struct timeval tv;
    gettimeofday(&tv, NULL);
    struct tm tm;
    localtime_r(&tv.tv_sec, &tm);
    size_t k = strftime(b, n, "%H:%M:%S", &tm);
    snprintf(b + k, n - k, ".%06ld", (long)tv.tv_usec);
}

static void dump(relay *R, uint64_t num, char sign, const unsigned char *p, size_t n)
{
    size_t cap = 256 + n * 4 + (n / 16 + 1) * 120 + (n + 1) * 24;
    char *o = malloc(cap);
    if (!o)
        return;
    char ts[32];
    stamp(ts, sizeof(ts));
    size_t k = (size_t)snprintf(o, cap, "udsock: relay: %s #%llu %c %zu bytes\n", ts,
                                (unsigned long long)num, sign, n);
    if (R->hex) {
        for (size_t i = 0; i < n; i += 16) {
            k += (size_t)snprintf(o + k, cap - k, "#%llu %c %06zx ", (unsigned long long)num,
                                  sign, i);
            for (size_t j = 0; j < 16; j++)
                k += (size_t)(i + j < n ? snprintf(o + k, cap - k, " %02x", p[i + j])
                                        : snprintf(o + k, cap - k, "   "));
            k += (size_t)snprintf(o + k, cap - k, "  |");
            for (size_t j = 0; j < 16 && i + j < n; j++)
                o[k++] = p[i + j] >= 32 && p[i + j] < 127 ? (char)p[i + j] : '.';
            o[k++] = '|';
            o[k++] = '\n';
        }
    } else {
        for (size_t i = 0; i < n;) {
            const unsigned char *nl = memchr(p + i, '\n', n - i);
            size_t seg = nl ? (size_t)(nl - (p + i)) + 1 : n - i;
            k += (size_t)snprintf(o + k, cap - k, "#%llu %c ", (unsigned long long)num, sign);
            ssize_t e = uds_escape(p + i, seg, o + k, cap - k);
            k += e > 0 ? (size_t)e : 0;
            o[k++] = '\n';
            i += seg;
        }
    }
    fwrite(o, 1, k, stderr);
    free(o);
}

static void on_tap(uds_fwd *f, int dir, const void *data, size_t len, const uds_anc *anc,
                   void *arg)
{
    relay *R = arg;
    rconn *rc = uds_fwd_arg(f);
    char sign = dir == 0 ? '>' : '<';
    if (anc && (anc->nfds || anc->has_cred)) {
        char cred[96] = "";
        if (anc->has_cred)
            snprintf(cred, sizeof(cred), "%scredentials pid %ld uid %u gid %u",
                     anc->nfds ? ", " : "", (long)anc->cred.pid, (unsigned)anc->cred.uid,
                     (unsigned)anc->cred.gid);
        char fds[32] = "";
        if (anc->nfds)
            snprintf(fds, sizeof(fds), "%zu fd%s", anc->nfds, anc->nfds == 1 ? "" : "s");
        cli_svc_info(&R->svc, "#%llu %c passing %s%s with the next %zu bytes",
                     (unsigned long long)rc->num, sign, fds, cred, len);
    }
    dump(R, rc->num, sign, data, len);
}

/* ---- stream (and seqpacket) connections --------------------------------- */

static void rconn_end(rconn *rc)
{
    relay *R = rc->R;
    uds_acceptor_release(R->acc, rc->uid);
    if (rc->prev)
        rc->prev->next = rc->next;
    else
        R->live = rc->next;
    if (rc->next)
        rc->next->prev = rc->prev;
    R->nlive--;
    free(rc);
    if (R->stopping && R->nlive == 0 && R->nsess == 0)
        uds_loop_stop(R->svc.loop);
}

static const char *side_name(int side) { return side == 0 ? "client" : "target"; }

/* Why a forward ended, in words for the operator. */
static void reason(relay *R, int err, int side, char *buf, size_t size)
{
    const char *who = side >= 0 ? side_name(side) : "";
    if (err == 0)
        snprintf(buf, size, "%s", "");
    else if (err == -ETIMEDOUT)
        snprintf(buf, size, ": idle for %d s (--idle-timeout)", R->idle_ms / 1000);
    else if (err == -EMSGSIZE)
        snprintf(buf, size, ": the %s sent a message over %zu bytes (--max-msg)", who,
                 R->fo.max_msg);
    else if (err == UDS_EFRAME)
        snprintf(buf, size,
                 ": the %s sent a malformed frame (a bad length header, or a message "
                 "with a newline for a line-framed side)",
                 who);
    else
        snprintf(buf, size, ": %s: %s", who, uds_strerror(err));
}

static void on_fwd_done(uds_fwd *f, int err, int side, const uds_fwd_stats *st, void *arg)
{
    (void)f;
    rconn *rc = arg;
    relay *R = rc->R;
    char why[300], fds[80] = "";
    reason(R, err, side, why, sizeof(why));
    if (st->fds[0] || st->fds[1])
        snprintf(fds, sizeof(fds), ", fds > %llu < %llu", (unsigned long long)st->fds[0],
                 (unsigned long long)st->fds[1]);
    /* a reset or a closed reader is the normal end of many conversations;
       framing errors and other failures are worth a line without -v */
    int notable = err && err != -ECONNRESET && err != -EPIPE && err != -ETIMEDOUT;
    if (notable)
        cli_svc_warn(&R->svc, "#%llu %s closed%s (> %llu bytes, < %llu bytes%s)",
                     (unsigned long long)rc->num, rc->who, why,
                     (unsigned long long)st->bytes[0], (unsigned long long)st->bytes[1], fds);
    else
        cli_svc_info(&R->svc, "#%llu closed%s (> %llu bytes, < %llu bytes%s%s)",
                     (unsigned long long)rc->num, why, (unsigned long long)st->bytes[0],
                     (unsigned long long)st->bytes[1], fds,
                     st->spliced[0] || st->spliced[1] ? ", spliced" : "");
    rconn_end(rc);
}

/* The client, while the target connect is pending, is no longer watched. */
static void client_unwatch(rconn *rc)
{
    if (rc->cwatch)
        uds_loop_unwatch(rc->R->svc.loop, rc->cfd);
    rc->cwatch = 0;
}

/*
 * The client hung up while the target connect is still pending (a full
 * target backlog is retried for up to --connect-timeout). With nothing
 * unread there is nothing to forward and nobody to answer: its slot is
 * freed now. Before, a connect flood of clients that close at once held
 * every slot (-c) for the whole retry, and good clients were refused.
 * A client that sent data and left keeps its connection: the data is
 * forwarded once the target answers.
 */
static void on_client_hup(uds_loop *loop, int fd, unsigned events, void *arg)
{
    rconn *rc = arg;
    int unread = 0;
    if (!(events & (UDS_EV_HUP | UDS_EV_ERROR)) || ioctl(fd, FIONREAD, &unread) < 0 || unread > 0)
        return; /* data (edge-triggered: not reported again), or still there */
    cli_svc_info(&rc->R->svc, "#%llu: the client left before %s answered",
                 (unsigned long long)rc->num, rc->R->ttext);
    uds_connect_cancel(rc->op);
    if (rc->retry_timer)
        uds_loop_timer_cancel(loop, (uint64_t)rc->retry_timer);
    client_unwatch(rc);
    close(rc->cfd);
    rconn_end(rc);
}

static void on_connected(uds_loop *loop, int tfd, void *arg);

/* SO_KEEPALIVE on a TCP socket (--keepalive): a peer that vanished without
   a word (a machine gone, a NAT that forgot us) is found and the
   connection ends, instead of holding its slot forever. */
static void keepalive_on(int fd)
{
    int one = 1;
    (void)setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof(one));
}

/* --retry-delay is over: connect to the target again (the client is still
   watched for a hang-up, as during any connect). */
static void retry_fire(uds_loop *loop, uint64_t id, void *arg)
{
    (void)id;
    rconn *rc = arg;
    relay *R = rc->R;
    rc->retry_timer = 0;
    int r = uds_connect_start(&rc->op, loop, &R->target, &R->copts, on_connected, rc);
    if (r < 0) {
        cli_svc_warn(&R->svc, "#%llu: %s; closing the client", (unsigned long long)rc->num,
                     cli_errtext("connect", R->ttext, r));
        client_unwatch(rc);
        close(rc->cfd);
        rconn_end(rc);
    }
}

/*
 * The target is down (nothing listens: ECONNREFUSED, ENOENT) and --retry
 * allows another try: wait --retry-delay, watching the client meanwhile.
 * Returns 1 if a retry is scheduled (the client stays), else 0.
 */
static int retry_later(rconn *rc, int err)
{
    relay *R = rc->R;
    if ((err != -ECONNREFUSED && err != -ENOENT) || rc->tries >= R->retries || R->stopping)
        return 0;
    int64_t t = uds_loop_timer(R->svc.loop, (uint64_t)R->retry_ms, retry_fire, rc);
    if (t < 0)
        return 0;
    rc->tries++;
    rc->retry_timer = t;
    rc->cwatch = uds_loop_watch(R->svc.loop, rc->cfd, UDS_EV_READ | UDS_EV_EDGE, on_client_hup,
                                rc) == 0;
    cli_svc_info(&R->svc, "#%llu %s: %s; retry %d of %d in %.3g s", (unsigned long long)rc->num,
                 rc->who, cli_errtext("connect", R->ttext, err), rc->tries, R->retries,
                 R->retry_ms / 1000.0);
    return 1;
}

static void on_connected(uds_loop *loop, int tfd, void *arg)
{
    rconn *rc = arg;
    relay *R = rc->R;
    rc->op = NULL;
    client_unwatch(rc);
    if (tfd < 0 && retry_later(rc, tfd))
        return;
    if (tfd < 0 && rc->tries) {
        cli_svc_warn(&R->svc, "#%llu %s: %s after %d retries; closing the client",
                     (unsigned long long)rc->num, rc->who, cli_errtext("connect", R->ttext, tfd),
                     rc->tries);
        close(rc->cfd);
        rconn_end(rc);
        return;
    }
    if (tfd >= 0 && R->keepalive && R->target.kind == UDS_ADDR_TCP)
        keepalive_on(tfd);
    if (tfd < 0) {
        cli_svc_warn(&R->svc, "#%llu %s: %s; closing the client", (unsigned long long)rc->num,
                     rc->who, cli_errtext("connect", R->ttext, tfd));
        close(rc->cfd);
        rconn_end(rc);
        return;
    }
    int r = uds_fwd_new(&rc->fwd, loop, rc->cfd, tfd, &R->fo, on_fwd_done, rc);
    if (r < 0) {
        cli_svc_warn(&R->svc, "#%llu: cannot forward: %s", (unsigned long long)rc->num,
                     uds_strerror(r));
        close(rc->cfd);
        close(tfd);
        rconn_end(rc);
        return;
    }
    rc->cfd = -1;
    cli_svc_info(&R->svc, "#%llu connected to %s", (unsigned long long)rc->num, R->ttext);
}

static void on_accept(uds_acceptor *a, int fd, const uds_peer *peer, void *arg)
{
    relay *R = arg;
    rconn *rc = calloc(1, sizeof(*rc));
    if (!rc) {
        cli_svc_warn(&R->svc, "out of memory; closing a client");
        close(fd);
        uds_acceptor_release(a, peer->cred.uid);
        return;
    }
    rc->R = R;
    rc->num = ++R->connno;
    rc->cfd = fd;
    rc->uid = peer->cred.uid;
    cli_peer_text(peer, rc->who, sizeof(rc->who));
    rc->next = R->live;
    if (R->live)
        R->live->prev = rc;
    R->live = rc;
    R->nlive++;
    cli_svc_info(&R->svc, "#%llu open: client %s -> %s", (unsigned long long)rc->num, rc->who,
                 R->ttext);
    if (R->keepalive && peer->addr.kind == UDS_ADDR_TCP)
        keepalive_on(fd);
    int r = uds_connect_start(&rc->op, R->svc.loop, &R->target, &R->copts, on_connected, rc);
    if (r < 0) {
        cli_svc_warn(&R->svc, "#%llu: %s; closing the client", (unsigned long long)rc->num,
                     cli_errtext("connect", R->ttext, r));
        close(fd);
        rconn_end(rc);
        return;
    }
    /* edge-triggered: once per arrival or hang-up, never a busy loop */
    rc->cwatch = uds_loop_watch(R->svc.loop, fd, UDS_EV_READ | UDS_EV_EDGE, on_client_hup, rc) == 0;
}

/* ---- datagram sessions ---------------------------------------------------- */

static unsigned hash_addr(const void *a, socklen_t len)
{
    const unsigned char *p = a;
    uint32_t h = 2166136261u;
    for (socklen_t i = 0; i < len; i++)
        h = (h ^ p[i]) * 16777619u;
    return h % DGRAM_HASH;
}

static void dsess_idle(uds_loop *loop, uint64_t id, void *arg);

static void dsess_arm(dsess *s, unsigned ms)
{
    int64_t t = uds_loop_timer(s->R->svc.loop, ms, dsess_idle, s);
    s->timer = t > 0 ? t : 0;
}

/* One timer per session, re-armed when it fires: traffic costs nothing. */
static void dsess_idle(uds_loop *loop, uint64_t id, void *arg)
{
    (void)id;
    dsess *s = arg;
    s->timer = 0;
    uint64_t idle = uds_loop_now(loop) - s->last_ms;
    if (idle >= (uint64_t)s->R->idle_ms) {
        cli_svc_info(&s->R->svc, "#%llu idle for %d s: closing its socket",
                     (unsigned long long)s->num, s->R->idle_ms / 1000);
        uds_conn_close(s->up);
        return;
    }
    dsess_arm(s, (unsigned)((uint64_t)s->R->idle_ms - idle));
}

/* A reply from the target: back to the sender, never blocking. */
static size_t dsess_data(uds_conn *c, const void *data, size_t len, void *arg)
{
    (void)c;
    dsess *s = arg;
    relay *R = s->R;
    s->last_ms = uds_loop_now(R->svc.loop);
    if (R->svc.verbose)
        dump(R, s->num, '<', data, len);
    if (s->fromlen <= (socklen_t)sizeof(sa_family_t)) {
        s->dropped++; /* an unnamed sender cannot be answered */
        return len;
    }
    ssize_t n = sendto(R->dl.fd, data, len, MSG_DONTWAIT | MSG_NOSIGNAL,
                       (struct sockaddr *)&s->from, s->fromlen);
    if (n < 0) {
        s->dropped++;
        if (errno != EAGAIN && errno != EWOULDBLOCK && errno != ECONNREFUSED &&
            errno != ENOENT)
            cli_svc_warn(&R->svc, "#%llu: reply to the sender: %s", (unsigned long long)s->num,
                         strerror(errno));
    } else {
        s->out++;
    }
    return len;
}

static void dsess_close(uds_conn *c, int err, void *arg)
{
    (void)c;
    dsess *s = arg;
    relay *R = s->R;
    if (s->timer)
        uds_loop_timer_cancel(R->svc.loop, (uint64_t)s->timer);
    dsess **pp = &R->hash[hash_addr(&s->from, s->fromlen)];
    while (*pp && *pp != s)
        pp = &(*pp)->hnext;
    if (*pp)
        *pp = s->hnext;
    if (s->prev)
        s->prev->next = s->next;
    else
        R->sessions = s->next;
    if (s->next)
        s->next->prev = s->prev;
    R->nsess--;
    if (err && err != -ECONNREFUSED)
        cli_svc_warn(&R->svc, "#%llu: target socket: %s", (unsigned long long)s->num,
                     uds_strerror(err));
    cli_svc_info(&R->svc, "#%llu closed (> %llu datagrams, < %llu, %llu replies dropped)%s",
                 (unsigned long long)s->num, (unsigned long long)s->in,
                 (unsigned long long)s->out, (unsigned long long)s->dropped,
                 err == -ECONNREFUSED ? ": the target refused (is it running?)" : "");
    free(s);
    if (R->stopping && R->nlive == 0 && R->nsess == 0)
        uds_loop_stop(R->svc.loop);
}

static const uds_conn_cbs dsess_cbs = {
    .on_data = dsess_data,
    .on_close = dsess_close,
};

static dsess *dsess_find(relay *R, const struct sockaddr_storage *from, socklen_t len)
{
    for (dsess *s = R->hash[hash_addr(from, len)]; s; s = s->hnext)
        if (s->fromlen == len && !memcmp(&s->from, from, len))
            return s;
    return NULL;
}

static dsess *dsess_new(relay *R, const struct sockaddr_storage *from, socklen_t len)
{
    char esc[UDS_ADDR_STRLEN];
    uds_addr fa;
    if (uds_addr_from_sockaddr(&fa, (const struct sockaddr *)from, len, SOCK_DGRAM) < 0)
        snprintf(esc, sizeof(esc), "(unknown)");
    else
        cli_addr_text(&fa, esc, sizeof(esc));
    if (R->nsess >= R->maxconn) {
        cli_svc_warn(&R->svc, "datagram from %s dropped: %u senders already (limit -c %u)", esc,
                     R->nsess, R->maxconn);
        return NULL;
    }
    uds_connect_opts co = {.type = R->ttype, .flags = UDS_NONBLOCK};
    int fd = uds_connect(&R->target, &co);
    if (fd < 0) {
        cli_svc_warn(&R->svc, "datagram from %s dropped: %s", esc,
                     cli_errtext("connect", R->ttext, fd));
        return NULL;
    }
    dsess *s = calloc(1, sizeof(*s));
    uds_conn_opts o = {.max_input = R->fo.max_msg ? R->fo.max_msg : UDS_FRAME_DEFAULT_MAX,
                       .high_water = 256 * 1024};
    if (!s || uds_conn_new(&s->up, R->svc.loop, fd, &o, &dsess_cbs, s) < 0) {
        free(s);
        close(fd);
        cli_svc_warn(&R->svc, "datagram from %s dropped: out of memory", esc);
        return NULL;
    }
    s->R = R;
    s->num = ++R->connno;
    memcpy(&s->from, from, len);
    s->fromlen = len;
    s->last_ms = uds_loop_now(R->svc.loop);
    unsigned h = hash_addr(from, len);
    s->hnext = R->hash[h];
    R->hash[h] = s;
    s->next = R->sessions;
    if (R->sessions)
        R->sessions->prev = s;
    R->sessions = s;
    R->nsess++;
    dsess_arm(s, (unsigned)R->idle_ms);
    cli_svc_info(&R->svc, "#%llu open: sender %s -> %s", (unsigned long long)s->num, esc,
                 R->ttext);
    return s;
}

/* The listening datagram socket is readable: a bounded batch per wakeup. */
static void on_dgram(uds_loop *loop, int fd, unsigned ev, void *arg)
{
    (void)loop;
    (void)ev;
    relay *R = arg;
    size_t max = R->fo.max_msg ? R->fo.max_msg : UDS_FRAME_DEFAULT_MAX;
    for (int i = 0; i < DGRAM_BATCH && !R->stopping; i++) {
        struct sockaddr_storage from;
        socklen_t fl = sizeof(from);
        ssize_t n = recvfrom(fd, R->dbuf, max + 1, MSG_DONTWAIT | MSG_TRUNC,
                             (struct sockaddr *)&from, &fl);
        if (n < 0) {
            if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
                cli_svc_warn(&R->svc, "receive on %s: %s", R->ltext, strerror(errno));
            return;
        }
        if ((size_t)n > max) {
            cli_svc_warn(&R->svc, "a datagram of %zd bytes dropped (over --max-msg %zu)", n, max);
            continue;
        }
        dsess *s = dsess_find(R, &from, fl);
        if (!s && !(s = dsess_new(R, &from, fl)))
            continue;
        s->last_ms = uds_loop_now(R->svc.loop);
        if (R->svc.verbose)
            dump(R, s->num, '>', (const unsigned char *)R->dbuf, (size_t)n);
        /* a target that does not read: drop rather than queue without end */
        if (uds_conn_queued(s->up) > 256 * 1024) {
            s->dropped++;
            continue;
        }
        if (uds_conn_write(s->up, R->dbuf, (size_t)n) >= 0)
            s->in++;
    }
}

/* ---- stopping ------------------------------------------------------------- */

static void on_stop(cli_svc *svc, int signo, void *arg)
{
    relay *R = arg;
    if (R->stopping)
        return;
    R->stopping = 1;
    cli_svc_info(svc, "%s, closing %s", strsignal(signo), R->ltext);
    if (R->acc)
        uds_acceptor_close(R->acc); /* the socket file goes now */
    if (R->dl.fd >= 0) {
        uds_loop_unwatch(svc->loop, R->dl.fd);
        uds_listener_close(&R->dl);
    }
    for (rconn *rc = R->live, *next; rc; rc = next) {
        next = rc->next;
        if (rc->op) {
            uds_connect_cancel(rc->op);
            client_unwatch(rc);
            close(rc->cfd);
            rconn_end(rc);
        } else if (rc->fwd) {
            uds_fwd_close(rc->fwd); /* done follows from the loop */
        }
    }
    for (dsess *s = R->sessions; s; s = s->next)
        uds_conn_close(s->up);
    if (R->nlive == 0 && R->nsess == 0)
        uds_loop_stop(svc->loop);
}

/* ---- options ---------------------------------------------------------------- */

static int parse_type(const char *s, const char *opt)
{
    int t = uds_type_parse(s);
    if (t < 0)
        cli_usage_error("relay", "bad %s '%s' (stream, seqpacket or dgram)", opt, s);
    return t;
}

static int parse_frame(const char *s, const char *opt)
{
    if (!strcmp(s, "raw"))
        return UDS_FRAME_RAW;
    if (!strcmp(s, "len32"))
        return UDS_FRAME_LEN32;
    if (!strcmp(s, "line"))
        return UDS_FRAME_LINE;
    cli_usage_error("relay", "bad %s '%s' (raw, len32 or line)", opt, s);
}

int cmd_relay(int argc, char **argv)
{
    static relay R0;
    relay *R = &R0;
    memset(R, 0, sizeof(*R));
    R->dl.fd = -1;
    R->maxconn = DEF_MAXCONN;
    R->retry_ms = 1000; /* --retry-delay default */
    uds_listen_opts lo;
    memset(&lo, 0, sizeof(lo));
    lo.owner = (uid_t)-1;
    lo.group = (gid_t)-1;
    int ltype = 0, ttype = 0, connect_ms = DEF_CONNECT_TIMEOUT_MS, verbose = 0, idle_set = 0;
    int ready_fd = -1;
    int frame_set[2] = {0, 0};
    enum { O_ALLOW_UID = 256, O_DENY_UID, O_ALLOW_GID, O_DENY_GID, O_TTYPE, O_MODE, O_OWNER,
           O_GROUP, O_TYPE, O_NOSPLICE, O_FRAME, O_TFRAME, O_MAXMSG, O_FDS, O_IDLE,
           O_CTIMEOUT, O_READY, O_RETRY, O_RETRY_DELAY, O_KEEPALIVE };
    static const struct option longopts[] = {
        {"help", no_argument, NULL, 'h'},
        {"verbose", no_argument, NULL, 'v'},
        {"hex", no_argument, NULL, 'x'},
        {"no-splice", no_argument, NULL, O_NOSPLICE},
        {"type", required_argument, NULL, O_TYPE},
        {"target-type", required_argument, NULL, O_TTYPE},
        {"frame", required_argument, NULL, O_FRAME},
        {"target-frame", required_argument, NULL, O_TFRAME},
        {"max-msg", required_argument, NULL, O_MAXMSG},
        {"fds", no_argument, NULL, O_FDS},
        {"idle-timeout", required_argument, NULL, O_IDLE},
        {"connect-timeout", required_argument, NULL, O_CTIMEOUT},
        {"ready-fd", required_argument, NULL, O_READY},
        {"retry", required_argument, NULL, O_RETRY},
        {"retry-delay", required_argument, NULL, O_RETRY_DELAY},
        {"keepalive", no_argument, NULL, O_KEEPALIVE},
        {"mode", required_argument, NULL, O_MODE},
        {"owner", required_argument, NULL, O_OWNER},
        {"group", required_argument, NULL, O_GROUP},
        {"allow-uid", required_argument, NULL, O_ALLOW_UID},
        {"deny-uid", required_argument, NULL, O_DENY_UID},
        {"allow-gid", required_argument, NULL, O_ALLOW_GID},
        {"deny-gid", required_argument, NULL, O_DENY_GID},
        {NULL, 0, NULL, 0},
    };
    static const char *const accname[] = {"--allow-uid", "--deny-uid", "--allow-gid",
                                          "--deny-gid"};
    optind = 0;
    opterr = 0; /* our own message, naming udsock and the subcommand */
    int opt;
    while ((opt = getopt_long(argc, argv, "hvxc:C:", longopts, NULL)) != -1) {
        const char *bad = NULL;
        switch (opt) {
        case 'h':
            usage(stdout);
            return CLI_OK;
        case 'v':
            verbose = 1;
            break;
        case 'x':
            R->hex = 1;
            break;
        case O_NOSPLICE:
            R->fo.flags |= UDS_FWD_NO_SPLICE;
            break;
        case O_READY:
            ready_fd = cli_opt_ready_fd("relay", optarg);
            break;
        case O_RETRY:
            R->retries = (int)cli_opt_count("relay", "--retry", optarg);
            if (R->retries > 1000000)
                cli_usage_error("relay", "bad --retry '%s': at most 1000000", optarg);
            break;
        case O_RETRY_DELAY:
            R->retry_ms = cli_opt_seconds_ms("relay", "--retry-delay", optarg);
            if (R->retry_ms <= 0)
                cli_usage_error("relay", "bad --retry-delay '%s': above 0 (e.g. 1 or 0.2)", optarg);
            break;
        case O_KEEPALIVE:
            R->keepalive = 1;
            break;
        case 'c':
            R->maxconn = (unsigned)cli_opt_count("relay", "-c", optarg);
            if (R->maxconn > 1000000)
                cli_usage_error("relay", "bad -c '%s': at most 1000000", optarg);
            break;
        case 'C':
            R->maxperuid = (unsigned)cli_opt_count("relay", "-C", optarg);
            break;
        case O_TYPE:
            ltype = parse_type(optarg, "--type");
            break;
        case O_TTYPE:
            ttype = parse_type(optarg, "--target-type");
            break;
        case O_FRAME:
        case O_TFRAME:
            R->fo.frame[opt == O_TFRAME] = parse_frame(optarg, opt == O_FRAME ? "--frame"
                                                                              : "--target-frame");
            frame_set[opt == O_TFRAME] = 1;
            break;
        case O_MAXMSG:
            R->fo.max_msg = (size_t)cli_opt_size("relay", "--max-msg", optarg, UDS_FRAME_LIMIT);
            break;
        case O_FDS:
            R->fds = 1;
            break;
        case O_IDLE:
            R->idle_ms = cli_opt_seconds_ms("relay", "--idle-timeout", optarg);
            idle_set = 1;
            break;
        case O_CTIMEOUT:
            connect_ms = cli_opt_seconds_ms("relay", "--connect-timeout", optarg);
            break;
        case O_MODE:
            lo.mode = cli_opt_mode("relay", optarg);
            break;
        case O_OWNER:
            lo.owner = cli_opt_user("relay", optarg);
            lo.set_owner = 1;
            break;
        case O_GROUP:
            lo.group = cli_opt_group("relay", optarg);
            lo.set_owner = 1;
            break;
        case O_ALLOW_UID:
        case O_DENY_UID:
        case O_ALLOW_GID:
        case O_DENY_GID:
            if (cli_access_add(&R->rules, opt - O_ALLOW_UID, optarg, &bad) < 0)
                cli_usage_error("relay", "%s: unknown %s '%s'", accname[opt - O_ALLOW_UID],
                                opt <= O_DENY_UID ? "user" : "group", bad ? bad : optarg);
            break;
        default:
            cli_bad_option("relay", argv);
        }
    }
    if (argc - optind != 2) {
        cli_warn("relay: expected LISTEN_ADDR and TARGET_ADDR");
        usage(stderr);
        return CLI_USAGE;
    }
    const char *la = argv[optind], *ta = argv[optind + 1];
    uds_addr laddr;
    cli_parse_addr(&laddr, la);
    cli_parse_addr(&R->target, ta);
    snprintf(R->ttext, sizeof(R->ttext), "%s", ta);

    /* socket types: explicit, else implied by the address, else stream */
    int l_inet = laddr.kind == UDS_ADDR_TCP || laddr.kind == UDS_ADDR_UDP;
    int t_inet = R->target.kind == UDS_ADDR_TCP || R->target.kind == UDS_ADDR_UDP;
    if (laddr.kind == UDS_ADDR_TCP || laddr.kind == UDS_ADDR_UDP) {
        int implied = laddr.kind == UDS_ADDR_TCP ? UDS_STREAM : UDS_DGRAM;
        if (ltype && ltype != implied)
            cli_usage_error("relay", "--type %s does not go with %s", uds_type_name(ltype), la);
        ltype = implied;
    }
    if (!ltype)
        ltype = UDS_STREAM;
    if (R->target.kind == UDS_ADDR_TCP || R->target.kind == UDS_ADDR_UDP) {
        int implied = R->target.kind == UDS_ADDR_TCP ? UDS_STREAM : UDS_DGRAM;
        if (ttype && ttype != implied)
            cli_usage_error("relay", "--target-type %s does not go with %s", uds_type_name(ttype),
                            ta);
        ttype = implied;
    }
    if (!ttype)
        ttype = ltype;
    R->ltype = ltype;
    R->ttype = ttype;
    if (frame_set[0] && ltype != UDS_STREAM)
        cli_usage_error("relay", "--frame is for a stream listening side (this one is %s)",
                        uds_type_name(ltype));
    if (frame_set[1] && ttype != UDS_STREAM)
        cli_usage_error("relay", "--target-frame is for a stream target (this one is %s)",
                        uds_type_name(ttype));
    if (R->retries && ltype == UDS_DGRAM)
        cli_usage_error("relay", "--retry is for connections (a datagram target is "
                        "sent to, not connected to, per sender)");
    if (ltype == UDS_DGRAM && ttype != UDS_DGRAM)
        cli_usage_error("relay", "a datagram listener relays to a datagram target "
                                 "(--target-type dgram or udp:)");
    if ((cli_access_active(&R->rules) || R->maxperuid) && (l_inet || ltype == UDS_DGRAM))
        cli_usage_error("relay", "--allow/--deny and -C need a stream or seqpacket unix "
                                 "LISTEN_ADDR (a TCP or datagram peer has no connection "
                                 "credentials)");
    if (R->fds && (l_inet || t_inet))
        cli_usage_error("relay", "--fds needs unix sockets on both sides");
    if (R->fds) {
        R->fo.flags |= UDS_FWD_FDS;
        /* passing on another process's credentials needs privilege; without
           it every write would be refused by the kernel first */
        if (geteuid() == 0)
            R->fo.flags |= UDS_FWD_CREDS;
    }
    if (!idle_set && ltype == UDS_DGRAM)
        R->idle_ms = DEF_DGRAM_IDLE_MS;
    if (ltype == UDS_DGRAM && R->idle_ms <= 0)
        cli_usage_error("relay", "--idle-timeout must be above 0 for a datagram listener "
                                 "(its senders never say they are done)");
    R->fo.idle_timeout_ms = R->idle_ms;
    R->copts.type = ttype;
    R->copts.timeout_ms = connect_ms;

    if (cli_parse_only) /* fuzz seam (cli.h): options parsed, no I/O yet */
        return CLI_OK;
    /* two sockets per connection and two pipes for bulk ones: take the hard
       limit; the acceptor copes with running out anyway */
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }

    cli_svc_init(&R->svc, "relay", on_stop, R);
    R->svc.verbose = verbose;
    if (verbose) {
        R->fo.tap = on_tap;
        R->fo.tap_arg = R;
    }
    lo.type = ltype;
    lo.flags = UDS_NONBLOCK;
    uds_listener l;
    int inherited = 0;
    int r = cli_listen(&l, &laddr, &lo, &inherited);
    if (r < 0) {
        cli_svc_interrupted(r);
        cli_warn("relay: %s", cli_errtext("listen", la, r));
        cli_svc_free(&R->svc);
        cli_access_free(&R->rules);
        return CLI_FAIL;
    }
    cli_addr_text(&l.addr, R->ltext, sizeof(R->ltext));
    if (ltype == UDS_DGRAM) {
        R->dl = l;
        R->dbuf = malloc((R->fo.max_msg ? R->fo.max_msg : UDS_FRAME_DEFAULT_MAX) + 1);
        if (!R->dbuf || (r = uds_loop_watch(R->svc.loop, l.fd, UDS_EV_READ, on_dgram, R)) < 0)
            cli_die(CLI_FAIL, "relay: %s", R->dbuf ? uds_strerror(r) : "out of memory");
    } else {
        uds_acceptor_opts ao = {.max_conns = R->maxconn,
                                .max_conns_per_uid = R->maxperuid,
                                .access = R->rules.rules,
                                .limit_names = {"-c", "-C"},
                                .log = cli_svc_log,
                                .log_arg = &R->svc};
        /* accepted sockets inherit SO_PASSCRED and SO_PASSRIGHTS from the
           listener: even what a client sends before the relay has taken it
           in carries its credentials, and fds are refused (without --fds)
           from the first byte, not only once its connection is set up */
        if (l.addr.kind != UDS_ADDR_TCP) {
            if (R->fo.flags & UDS_FWD_CREDS)
                uds_set_passcred(l.fd, 1);
            uds_set_passrights(l.fd, R->fds);
        }
        r = uds_acceptor_new(&R->acc, R->svc.loop, &ao, on_accept, R);
        if (r == 0)
            r = uds_acceptor_add(R->acc, &l);
        if (r < 0) {
            uds_listener_close(&l);
            cli_die(CLI_FAIL, "relay: %s", uds_strerror(r));
        }
    }
    cli_svc_info(&R->svc, "listening on %s%s, target %s (%s%s)", R->ltext,
                 inherited ? " (inherited from the service manager: never removed)" : "",
                 R->ttext,
                 ltype == UDS_DGRAM ? "datagram sessions"
                 : R->fds           ? "fds passed"
                 : verbose          ? "copy (-v)"
                                    : "splice for bulk",
                 R->fds && !(R->fo.flags & UDS_FWD_CREDS)
                     ? "; credentials are not passed on: that needs root"
                     : "");
    if (cli_port0(&laddr) && !verbose) /* a script needs the port: said anyway */
        cli_warn("relay: listening on %s", R->ltext);
    cli_ready("relay", ready_fd);

    r = uds_loop_run(R->svc.loop);
    if (r < 0)
        cli_warn("relay: event loop: %s", uds_strerror(r));
    if (R->dl.fd >= 0)
        uds_listener_close(&R->dl);
    uds_acceptor_free(R->acc);
    cli_svc_free(&R->svc); /* runs what is pending: the last frees */
    free(R->dbuf);
    cli_access_free(&R->rules);
    return r < 0 ? CLI_FAIL : CLI_OK;
}
