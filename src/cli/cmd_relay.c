/*
 * cmd_relay.c — `udsock relay LISTEN_ADDR TARGET_ADDR`: accept on one
 * address, connect each client to another (unix, abstract, tcp in any
 * combination) and copy both ways until both directions are finished.
 *
 * One thread, everything non-blocking, one epoll set (level-triggered).
 * Why a direct epoll loop and not uds_loop: the relay needs to change a
 * socket's interest on every transfer (backpressure) and to drop a socket
 * from the set while its peer has hung up but data is still queued (see
 * update()); with epoll directly that is one epoll_ctl and no bookkeeping
 * in between.
 *
 * Data path per direction (client->target is '>', target->client is '<'):
 *   - both ends stream, not -v: recv/send through a 64 KiB buffer while the
 *     traffic is small (request/response), and as soon as one read fills
 *     the buffer, splice(socket -> pipe -> socket) with a pipe for that
 *     direction sized with F_SETPIPE_SZ (1 MiB when allowed): bulk bytes
 *     never enter user space (see to_splice());
 *   - otherwise a 256 KiB buffer with recv/send; when either end is
 *     seqpacket, one message at a time so boundaries are kept.
 * Backpressure: a side is read only while its direction's pipe/buffer has
 * room, so a peer that does not drain stops the reading of the other.
 * Half-close: EOF from one side becomes shutdown(SHUT_WR) on the other once
 * everything read before it has been written; the connection ends when both
 * directions have ended, or at once on an error (reset, EPIPE).
 * splice() into a socket cannot pass MSG_NOSIGNAL; SIGPIPE is ignored for
 * the whole process (main.c), so a vanished peer is EPIPE there too.
 */
#include "access.h"
#include "cli.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#define BUF_SIZE (256 * 1024)
#define SMALL_BUF (64 * 1024) /* first buffer of a direction that may splice */
#define MSG_FROM_STREAM (64 * 1024) /* a stream chunk sent as one seqpacket */
#define PIPE_WANT (1024 * 1024)

enum { M_SPLICE, M_BUF, M_MSG };

typedef struct conn conn;

typedef struct side {
    conn *c;
    int fd;
    int idx;         /* 0 client, 1 target */
    uint32_t ev;     /* events registered with epoll */
    int registered;  /* in the epoll set */
    int hup;         /* epoll reported HUP: peer closed both ways */
} side;

typedef struct dir {
    int mode;
    int from, to;    /* side indexes */
    int pr, pw;      /* pipe (M_SPLICE) */
    size_t inpipe, pipesz;
    int pipefull;    /* splice in said EAGAIN with bytes in the pipe */
    int can_splice;  /* M_BUF that turns into M_SPLICE once traffic is bulk */
    int go_splice;   /* a read filled the buffer: splice once it is empty */
    char *buf;       /* M_BUF / M_MSG */
    size_t off, len, cap;
    int src_stream;  /* the source is a stream socket (M_MSG chunking) */
    int eof;         /* the source reached end of stream */
    int shut;        /* shutdown(SHUT_WR) done on the destination */
    uint64_t bytes;
    char sign;       /* '>' or '<' for -v */
} dir;

struct conn {
    side s[2];
    dir d[2]; /* d[0] client->target, d[1] target->client */
    int connecting;  /* 1: connect in progress, 2: target backlog full, retry */
    uint64_t retry_until, retry_at; /* ms, CLOCK_MONOTONIC (connecting == 2) */
    int dead;
    unsigned long num;
    conn *next_dead;
    conn *prev, *next; /* every open connection, to free them at exit */
};

typedef struct relay {
    int ep;
    uds_listener l;
    uds_addr target;
    int target_type;
    int listen_type;
    char ltext[UDS_ADDR_STRLEN], ttext[UDS_ADDR_STRLEN];
    int listen_unix;
    cli_access acc;
    int verbose, hex;
    int no_splice;
    int stream_both;
    unsigned long connno;
    unsigned long open;
    unsigned maxconn;
    conn *dead;
    conn *live;
    int accept_paused;
    unsigned nretry; /* connections waiting to retry their connect */
} relay;

static relay R;
/* epoll data tags for the two non-connection fds */
static char TAG_LISTEN, TAG_SIGNAL;

static void usage(FILE *f)
{
    fprintf(f,
            "usage: udsock relay [OPTIONS] LISTEN_ADDR TARGET_ADDR\n"
            "Accept connections on LISTEN_ADDR and connect each one to TARGET_ADDR,\n"
            "copying data both ways (splice() when both ends are stream sockets).\n"
            "Any address kinds: /path, @abstract, tcp:HOST:PORT.\n"
            "\noptions:\n"
            "  --type TYPE          socket type of LISTEN_ADDR: stream (default) or seqpacket\n"
            "  --target-type TYPE   socket type for a unix TARGET_ADDR (default: as --type)\n"
            "  -c N                 at most N connections at once (default 1000); more are closed\n"
            "  --allow-uid LIST     accept only these users (unix listener; numbers or names)\n"
            "  --deny-uid LIST      refuse these users\n"
            "  --allow-gid LIST     accept only clients in these groups\n"
            "  --deny-gid LIST      refuse clients in these groups\n"
            "  --mode MODE          permissions of the socket file (octal)\n"
            "  --owner USER, --group GROUP   owner/group of the socket file\n"
            "  -v, --verbose        log connections and dump their traffic on stderr\n"
            "                       ('>' client to target, '<' target to client)\n"
            "  -x, --hex            with -v: dump as hex instead of escaped text\n"
            "  --no-splice          copy through a 256 KiB buffer instead of splice()\n"
            "  -h, --help           this text\n"
            "EOF from one side is passed on as shutdown(SHUT_WR) to the other; a\n"
            "connection ends when both directions have ended.\n");
}

/* ---- -v output ------------------------------------------------------------ */

static void stamp(char *b, size_t n)
{
    struct timeval tv;
    gettimeofday(&tv, NULL);
    struct tm tm;
    localtime_r(&tv.tv_sec, &tm);
    size_t k = strftime(b, n, "%H:%M:%S", &tm);
    snprintf(b + k, n - k, ".%06ld", (long)tv.tv_usec);
}

static void vlog(conn *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void vlog(conn *c, const char *fmt, ...)
{
    char ts[32], msg[600];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    stamp(ts, sizeof(ts));
    fprintf(stderr, "udsock: relay: %s #%lu %s\n", ts, c->num, msg);
}

/*
 * Writes one chunk of traffic to stderr, built in memory first so one
 * chunk is one write and lines of different connections do not mix.
 */
static void dump(conn *c, char sign, const unsigned char *p, size_t n)
{
    char ts[32];
    stamp(ts, sizeof(ts));
    /* worst cases: text, every byte a newline: "\\n\n" plus the next line's
       "#N > " prefix (at most 24 bytes) = 27 bytes per byte; hex: about 100
       bytes per 16-byte line */
    size_t cap = 256 + n * 30 + (n / 16 + 1) * 110;
    char *o = malloc(cap);
    if (!o)
        return;
    size_t k = (size_t)snprintf(o, cap, "udsock: relay: %s #%lu %c %zu bytes\n", ts, c->num,
                                sign, n);
    if (R.hex) {
        for (size_t i = 0; i < n; i += 16) {
            k += (size_t)snprintf(o + k, cap - k, "#%lu %c %06zx ", c->num, sign, i);
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
        int bol = 1;
        for (size_t i = 0; i < n; i++) {
            if (bol)
                k += (size_t)snprintf(o + k, cap - k, "#%lu %c ", c->num, sign);
            bol = 0;
            unsigned char ch = p[i];
            if (ch == '\n') {
                memcpy(o + k, "\\n\n", 3);
                k += 3;
                bol = 1;
            } else if (ch == '\r') {
                memcpy(o + k, "\\r", 2);
                k += 2;
            } else if (ch == '\t') {
                memcpy(o + k, "\\t", 2);
                k += 2;
            } else if (ch == '\\') {
                memcpy(o + k, "\\\\", 2);
                k += 2;
            } else if (ch >= 32 && ch < 127) {
                o[k++] = (char)ch;
            } else {
                k += (size_t)snprintf(o + k, cap - k, "\\x%02x", ch);
            }
        }
        if (!bol)
            o[k++] = '\n';
    }
    fwrite(o, 1, k, stderr);
    free(o);
}

/* ---- connections ---------------------------------------------------------- */

static void conn_close(conn *c, const char *why)
{
    if (c->dead)
        return;
    c->dead = 1;
    if (c->connecting == 2)
        R.nretry--;
    if (R.verbose || why)
        fprintf(stderr, "udsock: relay: #%lu closed%s%s (> %llu bytes, < %llu bytes)\n", c->num,
                why ? ": " : "", why ? why : "", (unsigned long long)c->d[0].bytes,
                (unsigned long long)c->d[1].bytes);
    for (int i = 0; i < 2; i++) {
        if (c->s[i].fd >= 0) {
            if (c->s[i].registered)
                epoll_ctl(R.ep, EPOLL_CTL_DEL, c->s[i].fd, NULL);
            close(c->s[i].fd);
            c->s[i].fd = -1;
        }
        if (c->d[i].pr >= 0)
            close(c->d[i].pr);
        if (c->d[i].pw >= 0)
            close(c->d[i].pw);
        c->d[i].pr = c->d[i].pw = -1;
    }
    R.open--;
    if (c->prev)
        c->prev->next = c->next;
    else
        R.live = c->next;
    if (c->next)
        c->next->prev = c->prev;
    c->prev = c->next = NULL;
    /* freed after the current batch of epoll events, which may still name it */
    c->next_dead = R.dead;
    R.dead = c;
}

static size_t dir_pending(const dir *d)
{
    return d->mode == M_SPLICE ? d->inpipe : d->len - d->off;
}

/* Room to read more into this direction (backpressure). */
static int dir_room(const dir *d)
{
    if (d->eof)
        return 0;
    if (d->mode == M_SPLICE)
        return !d->pipefull && d->inpipe < d->pipesz;
    if (d->mode == M_MSG)
        return d->len == 0;
    if (d->go_splice)
        return d->len == d->off; /* the switch waits for an empty buffer */
    return d->len < d->cap || d->off > 0;
}

/*
 * Recomputes what each socket waits for: readable while its direction has
 * room, writable while the other direction has bytes for it. A socket
 * whose peer hung up and that waits for nothing is taken out of the set,
 * because epoll reports HUP whether asked or not and would spin.
 */
static void update(conn *c)
{
    for (int i = 0; i < 2 && !c->dead; i++) {
        side *s = &c->s[i];
        if (s->fd < 0)
            continue; /* target not connected yet (retry pending) */
        uint32_t ev = 0;
        if (dir_room(&c->d[i]))
            ev |= EPOLLIN;
        if (i == 1 && c->connecting)
            ev |= EPOLLOUT;
        else if (dir_pending(&c->d[1 - i]) > 0)
            ev |= EPOLLOUT;
        if (s->registered && ev == s->ev)
            continue;
        if (ev == 0 && s->hup) {
            if (s->registered)
                epoll_ctl(R.ep, EPOLL_CTL_DEL, s->fd, NULL);
            s->registered = 0;
            s->ev = 0;
            continue;
        }
        struct epoll_event e = {.events = ev, .data.ptr = s};
        if (epoll_ctl(R.ep, s->registered ? EPOLL_CTL_MOD : EPOLL_CTL_ADD, s->fd, &e) < 0) {
            conn_close(c, "epoll_ctl failed");
            return;
        }
        s->registered = 1;
        s->ev = ev;
    }
}

static const char *side_name(int idx) { return idx == 0 ? "client" : "target"; }

/* After the source's EOF and an empty pipe/buffer: pass the EOF on. */
static void maybe_shut(conn *c, dir *d)
{
    if (d->eof && !d->shut && dir_pending(d) == 0 && !(d->to == 1 && c->connecting)) {
        shutdown(c->s[d->to].fd, SHUT_WR);
        d->shut = 1;
        if (R.verbose)
            vlog(c, "%c EOF passed on: shutdown(SHUT_WR) to %s", d->sign, side_name(d->to));
        if (c->d[0].shut && c->d[1].shut)
            conn_close(c, NULL);
    }
}

/* Fatal error on a direction: report and close the connection. */
static void dir_fail(conn *c, int idx, const char *op, int err)
{
    char why[200];
    snprintf(why, sizeof(why), "%s %s: %s", op, side_name(idx), strerror(err));
    /* a reset or a closed reader is the normal end of many conversations */
    conn_close(c, R.verbose || (err != ECONNRESET && err != EPIPE) ? why : NULL);
}

/*
 * Turns a buffered direction into a spliced one (its buffer is empty).
 * Why not splice from the start: for small request/response traffic a
 * recv+send pair costs less than two splices through a pipe, and a
 * connection that never carries bulk data never needs its pipe (two fds
 * fewer, no pipe setup on every connect).
 */
static void to_splice(dir *d)
{
    int p[2];
    d->go_splice = 0;
    d->can_splice = 0;
    if (pipe2(p, O_CLOEXEC | O_NONBLOCK) < 0)
        return; /* stays buffered */
    d->pr = p[0];
    d->pw = p[1];
    /* fails without privilege above /proc/sys/fs/pipe-max-size or past the
       per-user pipe quota: the default size still works */
    fcntl(d->pw, F_SETPIPE_SZ, PIPE_WANT);
    int sz = fcntl(d->pw, F_GETPIPE_SZ);
    d->pipesz = sz > 0 ? (size_t)sz : 65536;
    d->mode = M_SPLICE;
    d->off = d->len = 0;
}

/* Reads what the source has into the pipe/buffer. Returns -1 if c died. */
static int dir_read(conn *c, dir *d)
{
    if (d->from == 1 && c->connecting)
        return 0;
    int fd = c->s[d->from].fd;
    for (;;) {
        if (!dir_room(d))
            return 0;
        if (d->go_splice)
            to_splice(d);
        ssize_t n;
        if (d->mode == M_SPLICE) {
            n = splice(fd, NULL, d->pw, NULL, d->pipesz - d->inpipe,
                       SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
            if (n > 0) {
                d->inpipe += (size_t)n;
                d->bytes += (uint64_t)n;
                return 0; /* write it out before reading more */
            }
        } else {
            if (d->mode == M_BUF) {
                if (d->off == d->len)
                    d->off = d->len = 0;
                else if (d->len == d->cap) {
                    memmove(d->buf, d->buf + d->off, d->len - d->off);
                    d->len -= d->off;
                    d->off = 0;
                }
            }
            size_t want = d->cap - d->len;
            int flags = MSG_DONTWAIT;
            if (d->mode == M_MSG) {
                /* message boundaries: one recv is one message; from a stream
                   source, a chunk small enough to go out as one message */
                if (d->src_stream && want > MSG_FROM_STREAM)
                    want = MSG_FROM_STREAM;
                flags |= MSG_TRUNC;
            }
            n = recv(fd, d->buf + d->len, want, flags);
            if (n > 0 && (size_t)n > want) {
                conn_close(c, "a message larger than 256 KiB (not relayed whole)");
                return -1;
            }
            if (n > 0) {
                if (R.verbose)
                    dump(c, d->sign, (unsigned char *)d->buf + d->len, (size_t)n);
                d->len += (size_t)n;
                d->bytes += (uint64_t)n;
                if (d->mode == M_MSG)
                    return 0;
                if ((size_t)n < want)
                    return 0; /* drained for now; epoll says when there is more */
                if (d->can_splice)
                    d->go_splice = 1; /* bulk: splice from the next read on */
                return 0;
            }
        }
        if (n == 0) {
            d->eof = 1;
            if (R.verbose)
                vlog(c, "%c EOF from %s", d->sign, side_name(d->from));
            return 0;
        }
        if (errno == EINTR)
            continue;
        if (errno == EAGAIN) {
            /* a pipe counts slots, not bytes: small skbs can fill it early */
            if (d->mode == M_SPLICE && d->inpipe > 0)
                d->pipefull = 1;
            return 0;
        }
        if (errno == EINVAL && d->mode == M_SPLICE && d->inpipe == 0) {
            /* splice refused these sockets: back to copying, for good */
            d->mode = M_BUF;
            d->off = d->len = 0;
            continue;
        }
        dir_fail(c, d->from, "read from", errno);
        return -1;
    }
}

/* Writes what is pending to the destination. Returns -1 if c died. */
static int dir_write(conn *c, dir *d)
{
    if (d->to == 1 && c->connecting)
        return 0;
    int fd = c->s[d->to].fd;
    while (dir_pending(d) > 0) {
        ssize_t n;
        if (d->mode == M_SPLICE)
            n = splice(d->pr, NULL, fd, NULL, d->inpipe, SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
        else
            n = send(fd, d->buf + d->off, d->len - d->off, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n > 0) {
            if (d->mode == M_SPLICE) {
                d->inpipe -= (size_t)n;
                d->pipefull = 0;
            } else {
                d->off += (size_t)n;
                if (d->off == d->len)
                    d->off = d->len = 0;
            }
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && errno == EAGAIN)
            return 0;
        dir_fail(c, d->to, "write to", n < 0 ? errno : EIO);
        return -1;
    }
    maybe_shut(c, d);
    return c->dead ? -1 : 0;
}

static void on_side(side *s, uint32_t ev)
{
    conn *c = s->c;
    if (c->dead)
        return;
    if (ev & EPOLLHUP)
        s->hup = 1;
    if (s->idx == 1 && c->connecting) {
        if (!(ev & (EPOLLOUT | EPOLLERR | EPOLLHUP)))
            return;
        int err = 0;
        socklen_t sl = sizeof(err);
        getsockopt(s->fd, SOL_SOCKET, SO_ERROR, &err, &sl);
        if (err) {
            char why[UDS_ADDR_STRLEN + 100];
            snprintf(why, sizeof(why), "connect %s: %s", R.ttext, strerror(err));
            conn_close(c, why);
            return;
        }
        c->connecting = 0;
        s->hup = 0;
        if (R.verbose)
            vlog(c, "connected to %s", R.ttext);
        ev = EPOLLOUT;
    }
    if (ev & EPOLLERR) {
        int err = 0;
        socklen_t sl = sizeof(err);
        getsockopt(s->fd, SOL_SOCKET, SO_ERROR, &err, &sl);
        if (err) {
            dir_fail(c, s->idx, "error on", err);
            return;
        }
    }
    dir *in = &c->d[s->idx], *out = &c->d[1 - s->idx];
    if (ev & (EPOLLOUT | EPOLLHUP | EPOLLERR)) {
        if (dir_write(c, out) < 0)
            return;
        /* the source of `out` may have been parked for lack of room */
        if (dir_read(c, out) < 0 || dir_write(c, out) < 0)
            return;
    }
    if (ev & (EPOLLIN | EPOLLHUP | EPOLLERR)) {
        if (dir_read(c, in) < 0 || dir_write(c, in) < 0)
            return;
    }
    maybe_shut(c, in);
    if (!c->dead)
        maybe_shut(c, out);
    if (!c->dead)
        update(c);
}

static int dir_init(dir *d, int from, int use_splice, int msg)
{
    d->from = from;
    d->to = 1 - from;
    d->sign = from == 0 ? '>' : '<';
    d->pr = d->pw = -1;
    d->mode = msg ? M_MSG : M_BUF;
    d->cap = use_splice ? SMALL_BUF : BUF_SIZE;
    d->can_splice = use_splice;
    d->buf = malloc(d->cap);
    return d->buf ? 0 : -ENOMEM;
}

static void conn_free(conn *c)
{
    free(c->d[0].buf);
    free(c->d[1].buf);
    free(c);
}

/* Starts the non-blocking connect to the target. 0, 1 (in progress), -errno. */
static int start_connect(void)
{
    int fam = uds_addr_family(&R.target);
    int fd = socket(fam, R.target_type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    if (connect(fd, &R.target.u.sa, R.target.len) == 0)
        return fd;
    int e = errno;
    if (e == EINPROGRESS || e == EINTR)
        return fd | (1 << 30);
    close(fd);
    return -e;
}

static void new_conn(int cfd, const uds_addr *peer)
{
    unsigned long num = ++R.connno;
    uds_cred cred = {0, 0, 0};
    if (R.listen_unix) {
        const char *why = "";
        int ok = cli_access_check(&R.acc, cfd, &cred, &why);
        if (ok <= 0) {
            if (ok < 0)
                cli_warn("relay: refused connection #%lu: %s: %s", num,
                         why && *why ? why : "cannot check the access rules", uds_strerror(ok));
            else
                cli_warn("relay: refused uid %u (%s)", (unsigned)cred.uid, why);
            close(cfd);
            return;
        }
    }
    if (R.open >= R.maxconn) {
        cli_warn("relay: refused connection #%lu (too many connections: %lu, limit -c %u)", num,
                 R.open, R.maxconn);
        close(cfd);
        return;
    }
    int tfd = start_connect();
    int retry = tfd == -EAGAIN && R.target.kind != UDS_ADDR_TCP;
    if (tfd < 0 && !retry) {
        cli_warn("relay: #%lu: %s; closing the client", num,
                 cli_errtext("connect", R.ttext, tfd));
        close(cfd);
        return;
    }
    int connecting = retry ? 2 : (tfd >> 30) & 1;
    if (retry)
        tfd = -1;
    else
        tfd &= ~(1 << 30);
    conn *c = calloc(1, sizeof(*c));
    if (!c) {
        cli_warn("relay: #%lu: out of memory", num);
        close(cfd);
        if (tfd >= 0)
            close(tfd);
        return;
    }
    c->num = num;
    c->connecting = connecting;
    c->s[0] = (side){c, cfd, 0, 0, 0, 0};
    c->s[1] = (side){c, tfd, 1, 0, 0, 0};
    int msg = !R.stream_both;
    int use_splice = R.stream_both && !R.verbose && !R.no_splice;
    if (dir_init(&c->d[0], 0, use_splice, msg) < 0 || dir_init(&c->d[1], 1, use_splice, msg) < 0) {
        cli_warn("relay: #%lu: out of memory", num);
        close(cfd);
        if (tfd >= 0)
            close(tfd);
        for (int i = 0; i < 2; i++) {
            if (c->d[i].pr >= 0)
                close(c->d[i].pr);
            if (c->d[i].pw >= 0)
                close(c->d[i].pw);
        }
        conn_free(c);
        return;
    }
    c->d[0].src_stream = R.listen_type == UDS_STREAM;
    c->d[1].src_stream = R.target_type == UDS_STREAM;
    R.open++;
    if (retry) {
        /* the target's backlog is full (a unix connect says EAGAIN at once):
           try again every few ms for up to 2 s, the client waiting */
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        uint64_t now = (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
        c->retry_at = now + 2;
        c->retry_until = now + 2000;
        R.nretry++;
    }
    c->next = R.live;
    if (R.live)
        R.live->prev = c;
    R.live = c;
    if (R.verbose) {
        char pb[UDS_ADDR_STRLEN] = "";
        if (R.listen_unix)
            vlog(c, "open: client uid %u gid %u pid %ld -> %s%s", (unsigned)cred.uid,
                 (unsigned)cred.gid, (long)cred.pid, R.ttext, connecting ? " (connecting)" : "");
        else {
            uds_addr_format(peer, pb, sizeof(pb));
            vlog(c, "open: client %s -> %s%s", pb, R.ttext, connecting ? " (connecting)" : "");
        }
    }
    update(c);
}

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* Retries the connects that met a full backlog; gives up after 2 s. */
static void retry_connects(void)
{
    uint64_t now = now_ms();
    for (conn *c = R.live, *next; c; c = next) {
        next = c->next;
        if (c->dead || c->connecting != 2 || now < c->retry_at)
            continue;
        int tfd = start_connect();
        if (tfd == -EAGAIN && now < c->retry_until) {
            c->retry_at = now + 5;
            continue;
        }
        if (tfd < 0) {
            char why[UDS_ADDR_STRLEN + 100];
            snprintf(why, sizeof(why), "%s",
                     cli_errtext("connect", R.ttext, tfd == -EAGAIN ? -ETIMEDOUT : tfd));
            conn_close(c, why);
            continue;
        }
        R.nretry--;
        c->connecting = (tfd >> 30) & 1;
        c->s[1].fd = tfd & ~(1 << 30);
        if (R.verbose)
            vlog(c, "connected to %s after a full backlog", R.ttext);
        /* what the client sent meanwhile, and its EOF, go out now */
        if (!c->connecting && dir_write(c, &c->d[0]) < 0)
            continue;
        update(c);
    }
}

static void accept_some(void)
{
    for (int i = 0; i < 64; i++) {
        uds_addr peer;
        int fd = uds_accept(R.l.fd, &peer, UDS_NONBLOCK);
        if (fd == -EAGAIN)
            return;
        if (fd < 0) {
            cli_warn("relay: accept on %s: %s", R.ltext, uds_strerror(fd));
            if (fd == -EMFILE || fd == -ENFILE || fd == -ENOBUFS || fd == -ENOMEM) {
                /* out of descriptors: stop accepting for a moment instead of
                   spinning on a listener that stays readable */
                epoll_ctl(R.ep, EPOLL_CTL_DEL, R.l.fd, NULL);
                R.accept_paused = 1;
            }
            return;
        }
        new_conn(fd, &peer);
    }
}

static int parse_type(const char *s, const char *opt)
{
    int t = uds_type_parse(s);
    if (t != UDS_STREAM && t != UDS_SEQPACKET)
        cli_die(CLI_USAGE, "relay: bad %s '%s' (stream or seqpacket)", opt, s);
    return t;
}

int cmd_relay(int argc, char **argv)
{
    memset(&R, 0, sizeof(R));
    R.maxconn = 1000;
    uds_listen_opts lo;
    memset(&lo, 0, sizeof(lo));
    lo.owner = (uid_t)-1;
    lo.group = (gid_t)-1;
    int ltype = UDS_STREAM, ttype = 0;
    enum { O_ALLOW_UID = 256, O_DENY_UID, O_ALLOW_GID, O_DENY_GID, O_TTYPE, O_MODE, O_OWNER,
           O_GROUP, O_TYPE, O_NOSPLICE };
    static const struct option longopts[] = {
        {"help", no_argument, NULL, 'h'},
        {"verbose", no_argument, NULL, 'v'},
        {"hex", no_argument, NULL, 'x'},
        {"no-splice", no_argument, NULL, O_NOSPLICE},
        {"type", required_argument, NULL, O_TYPE},
        {"target-type", required_argument, NULL, O_TTYPE},
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
    while ((opt = getopt_long(argc, argv, "hvxc:", longopts, NULL)) != -1) {
        const char *bad = NULL;
        char *end;
        unsigned long v;
        switch (opt) {
        case 'h':
            usage(stdout);
            return CLI_OK;
        case 'v':
            R.verbose = 1;
            break;
        case 'x':
            R.hex = 1;
            break;
        case O_NOSPLICE:
            R.no_splice = 1;
            break;
        case 'c':
            v = strtoul(optarg, &end, 10);
            if (!*optarg || *end || v == 0 || v > 1000000)
                cli_die(CLI_USAGE, "relay: bad -c '%s' (expected a number >= 1)", optarg);
            R.maxconn = (unsigned)v;
            break;
        case O_TYPE:
            ltype = parse_type(optarg, "--type");
            break;
        case O_TTYPE:
            ttype = parse_type(optarg, "--target-type");
            break;
        case O_MODE:
            v = strtoul(optarg, &end, 8);
            if (!*optarg || *end || v > 07777)
                cli_die(CLI_USAGE, "relay: bad --mode '%s' (expected octal, e.g. 0660)", optarg);
            lo.mode = (unsigned)v;
            break;
        case O_OWNER:
            if (cli_parse_uid(optarg, &lo.owner) < 0)
                cli_die(CLI_USAGE, "relay: unknown user '%s'", optarg);
            lo.set_owner = 1;
            break;
        case O_GROUP:
            if (cli_parse_gid(optarg, &lo.group) < 0)
                cli_die(CLI_USAGE, "relay: unknown group '%s'", optarg);
            lo.set_owner = 1;
            break;
        case O_ALLOW_UID:
        case O_DENY_UID:
        case O_ALLOW_GID:
        case O_DENY_GID:
            if (cli_access_add(&R.acc, opt - O_ALLOW_UID, optarg, &bad) < 0)
                cli_die(CLI_USAGE, "relay: %s: unknown %s '%s'", accname[opt - O_ALLOW_UID],
                        opt <= O_DENY_UID ? "user" : "group", bad ? bad : optarg);
            break;
        default:
            if (optopt > 0 && optopt < 128)
                cli_warn("relay: option '-%c' is unknown or needs a value (try 'udsock relay --help')", optopt);
            else
                cli_warn("relay: option '%s' is unknown or needs a value (try 'udsock relay --help')",
                         argv[optind - 1]);
            return CLI_USAGE;
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
    cli_parse_addr(&R.target, ta);
    if (laddr.kind == UDS_ADDR_UDP || R.target.kind == UDS_ADDR_UDP) {
        cli_warn("relay: udp addresses are not supported (connections only)");
        return CLI_USAGE;
    }
    R.listen_unix = laddr.kind != UDS_ADDR_TCP;
    if (!R.listen_unix) {
        if (cli_access_active(&R.acc)) {
            cli_warn("relay: --allow/--deny need a unix LISTEN_ADDR (a TCP peer has no uid)");
            return CLI_USAGE;
        }
        ltype = UDS_STREAM;
    }
    if (R.target.kind == UDS_ADDR_TCP)
        ttype = UDS_STREAM;
    else if (!ttype)
        ttype = ltype;
    R.target_type = ttype;
    R.listen_type = ltype;
    R.stream_both = ltype == UDS_STREAM && ttype == UDS_STREAM;
    snprintf(R.ttext, sizeof(R.ttext), "%s", ta);

    /* six descriptors per connection: take the hard limit */
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }

    signal(SIGINT, SIG_DFL);
    signal(SIGTERM, SIG_DFL);
    signal(SIGHUP, SIG_DFL);
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGHUP);
    sigprocmask(SIG_BLOCK, &set, NULL);
    int sfd = signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
    R.ep = epoll_create1(EPOLL_CLOEXEC);
    if (sfd < 0 || R.ep < 0)
        cli_die(CLI_FAIL, "relay: signalfd/epoll: %s", strerror(errno));

    lo.type = ltype;
    lo.flags = UDS_NONBLOCK;
    int r = uds_listen(&R.l, &laddr, &lo);
    if (r < 0) {
        cli_warn("relay: %s", cli_errtext("listen", la, r));
        close(sfd);
        close(R.ep);
        cli_access_free(&R.acc);
        return CLI_FAIL;
    }
    uds_addr_format(&R.l.addr, R.ltext, sizeof(R.ltext));
    if (R.verbose)
        cli_warn("relay: listening on %s, target %s (%s)", R.ltext, R.ttext,
                 R.stream_both ? (R.verbose ? "copy (-v)" : "splice") : "messages");

    struct epoll_event e = {.events = EPOLLIN, .data.ptr = &TAG_LISTEN};
    epoll_ctl(R.ep, EPOLL_CTL_ADD, R.l.fd, &e);
    e.data.ptr = &TAG_SIGNAL;
    epoll_ctl(R.ep, EPOLL_CTL_ADD, sfd, &e);

    int status = CLI_OK;
    struct epoll_event evs[128];
    for (int running = 1; running;) {
        int n = epoll_wait(R.ep, evs, 128, R.nretry ? 5 : R.accept_paused ? 100 : -1);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            cli_warn("relay: epoll_wait: %s", strerror(errno));
            status = CLI_FAIL;
            break;
        }
        if (n == 0 && R.accept_paused) {
            struct epoll_event le = {.events = EPOLLIN, .data.ptr = &TAG_LISTEN};
            epoll_ctl(R.ep, EPOLL_CTL_ADD, R.l.fd, &le);
            R.accept_paused = 0;
        }
        for (int i = 0; i < n; i++) {
            void *p = evs[i].data.ptr;
            if (p == &TAG_LISTEN) {
                accept_some();
            } else if (p == &TAG_SIGNAL) {
                struct signalfd_siginfo si;
                while (read(sfd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
                    if (R.verbose)
                        cli_warn("relay: %s, closing %s", strsignal((int)si.ssi_signo), R.ltext);
                    running = 0;
                }
            } else {
                on_side((side *)p, evs[i].events);
            }
        }
        if (R.nretry)
            retry_connects();
        while (R.dead) {
            conn *c = R.dead;
            R.dead = c->next_dead;
            conn_free(c);
        }
    }
    uds_listener_close(&R.l);
    while (R.live)
        conn_close(R.live, NULL);
    while (R.dead) {
        conn *c = R.dead;
        R.dead = c->next_dead;
        conn_free(c);
    }
    close(sfd);
    close(R.ep);
    cli_access_free(&R.acc);
    return status;
}
