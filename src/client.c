/*
 * client.c — request/response client, blocking or pipelined.
 *
 * The socket's O_NONBLOCK flag is left as it is; every call that must not
 * wait says MSG_DONTWAIT. A call with no time limit on a blocking socket
 * waits inside recv() itself: send + recv, two syscalls per round trip.
 * With a limit it waits with poll().
 * While waiting to send, the client also reads whatever responses arrive:
 * a client that pipelines many requests without reading would otherwise
 * deadlock with a server that stops reading a peer whose replies pile up.
 *
 * Requests are queued in `out` and responses collected in `in`. On packet
 * sockets both buffers hold messages as [4-byte length][bytes] records, so
 * one decoder (LEN32) serves both kinds of sockets.
 */
#include "internal.h"

#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define SEND_BATCH (64u * 1024u)
#define READ_CHUNK (64u * 1024u)

struct uds_client {
    int fd;
    int packets;
    int dgram;            /* responses can be lost: no skipping after timeouts */
    int pkt_mark;         /* SEQPACKET marked: uds__pkt_eof (io.c) */
    int eof;
    int err;              /* sticky protocol error */
    unsigned spin_us;
    uds_framer wire;      /* the framing on the wire (streams) */
    uds_framer rec;       /* LEN32 records in the buffers */
    char *out;
    size_t out_off, out_len, out_cap;
    char *in;
    size_t in_off, in_len, in_cap;
    size_t pending;       /* requests queued or sent, responses not taken */
    size_t skip;          /* of those, the oldest ones nobody waits for */
};

static int64_t deadline_of(int timeout_ms)
{
    return timeout_ms < 0 ? -1 : (int64_t)(uds__now_ns() / 1000000u) + timeout_ms;
}

/* Milliseconds left until dl (-1 = forever), never negative. */
static int left_ms(int64_t dl)
{
    if (dl < 0)
        return -1;
    int64_t l = dl - (int64_t)(uds__now_ns() / 1000000u);
    return l < 0 ? 0 : (l > INT32_MAX ? INT32_MAX : (int)l);
}

static int reserve(char **buf, size_t *cap, size_t need)
{
    if (need <= *cap)
        return 0;
    size_t n = *cap ? *cap : 4096;
    while (n < need)
        n *= 2;
    char *p = realloc(*buf, n);
    if (!p)
        return -ENOMEM;
    *buf = p;
    *cap = n;
    return 0;
}

int uds_client_from_fd(uds_client **out, int fd, const uds_client_opts *opts)
{
    if (!out || fd < 0)
        return -EINVAL;
    int type = uds_sock_type(fd);
    if (type < 0)
        return type;
    int framing = opts && opts->framing ? opts->framing : UDS_FRAME_LEN32;
    if (framing != UDS_FRAME_LEN32 && framing != UDS_FRAME_LINE)
        return -EINVAL;
    uds_client *c = calloc(1, sizeof(*c));
    if (!c)
        return -ENOMEM;
    uds__nodelay(fd);
    c->fd = fd;
    c->packets = type == SOCK_SEQPACKET || type == SOCK_DGRAM;
    c->dgram = type == SOCK_DGRAM;
    c->pkt_mark = type == SOCK_SEQPACKET && uds__pkt_mark(fd) == 1;
    c->spin_us = opts ? opts->spin_us : 0;
    size_t max = opts && opts->max_msg ? opts->max_msg : UDS_FRAME_DEFAULT_MAX;
    if (max > UDS_FRAME_LIMIT)
        max = UDS_FRAME_LIMIT;
    c->wire.mode = c->packets ? UDS_FRAME_LEN32 : framing;
    c->wire.max = max;
    c->rec.mode = UDS_FRAME_LEN32;
    c->rec.max = max;
    *out = c;
    return 0;
}

int uds_client_connect(uds_client **out, const uds_addr *addr,
                       const uds_client_opts *opts)
{
    uds_connect_opts co;
    memset(&co, 0, sizeof(co));
    co.type = opts ? opts->type : 0;
    co.timeout_ms = opts ? opts->connect_timeout_ms : 0;
    int fd = uds_connect(addr, &co);
    if (fd < 0)
        return fd;
    int r = uds_client_from_fd(out, fd, opts);
    if (r < 0)
        close(fd);
    return r;
}

void uds_client_close(uds_client *c)
{
    if (!c)
        return;
    close(c->fd);
    free(c->out);
    free(c->in);
    free(c);
}

int uds_client_fd(const uds_client *c) { return c->fd; }
size_t uds_client_pending(const uds_client *c) { return c->pending - c->skip; }

/* Reads into `in`: what is there now (flags MSG_DONTWAIT), or waiting on a
   blocking socket (flags 0). 1 = got data, 0 = nothing (EAGAIN), or an
   error (end of stream is recorded in c->eof and returns 0). */
static int read_some(uds_client *c, int flags)
{
    if (c->eof)
        return 0;
    if (c->in_off > 0 && c->in_off == c->in_len)
        c->in_off = c->in_len = 0;
    size_t room = c->packets ? UDS_FRAME_HDR_LEN + c->wire.max + 1 : READ_CHUNK;
    if (c->in_off > 0 && c->in_cap - c->in_len < room) {
        memmove(c->in, c->in + c->in_off, c->in_len - c->in_off);
        c->in_len -= c->in_off;
        c->in_off = 0;
    }
    if (reserve(&c->in, &c->in_cap, c->in_len + room) < 0)
        return -ENOMEM;
    if (!c->packets) {
        ssize_t n = UDS__RETRY(recv(c->fd, c->in + c->in_len, c->in_cap - c->in_len,
                                    flags));
        if (n < 0)
            return errno == EAGAIN || errno == EWOULDBLOCK ? 0 : uds__err();
        if (n == 0) {
            c->eof = 1;
            return 0;
        }
        c->in_len += (size_t)n;
        return 1;
    }
    /* recvmsg without a control buffer: on a marked SEQPACKET socket a
       message then sets MSG_CTRUNC and end of stream does not, which is how
       an empty response is told from the end (uds__pkt_eof) */
    char *rec = c->in + c->in_len;
    struct iovec iov = {rec + UDS_FRAME_HDR_LEN, c->wire.max + 1};
    struct msghdr mh;
    memset(&mh, 0, sizeof(mh));
    mh.msg_iov = &iov;
    mh.msg_iovlen = 1;
    ssize_t n = UDS__RETRY(recvmsg(c->fd, &mh, flags | MSG_CMSG_CLOEXEC));
    if (n < 0)
        return errno == EAGAIN || errno == EWOULDBLOCK ? 0 : uds__err();
    if (!c->dgram && uds__pkt_eof(c->fd, n, &mh, c->pkt_mark)) {
        c->eof = 1;
        return 0;
    }
    if ((size_t)n > c->wire.max)
        return -EMSGSIZE;
    uds_frame_header(&c->rec, (size_t)n, (uint8_t *)rec);
    c->in_len += UDS_FRAME_HDR_LEN + (size_t)n;
    return 1;
}

/* Sends queued requests without waiting: 0 = all sent, -EAGAIN, -errno. */
static int send_some(uds_client *c)
{
    while (c->out_off < c->out_len) {
        const char *p = c->out + c->out_off;
        size_t len = c->out_len - c->out_off, step;
        ssize_t n;
        if (c->packets) {
            uds_frame f;
            int r = uds_frame_decode(&c->rec, p, len, &f);
            if (r <= 0)
                return -EIO; /* our own records: cannot happen */
            n = UDS__RETRY(send(c->fd, f.data, f.len, MSG_DONTWAIT | MSG_NOSIGNAL));
            step = (size_t)r;
        } else {
            n = UDS__RETRY(send(c->fd, p, len, MSG_DONTWAIT | MSG_NOSIGNAL));
            step = n > 0 ? (size_t)n : 0;
        }
        if (n < 0)
            return errno == EAGAIN || errno == EWOULDBLOCK ? -EAGAIN : uds__err();
        c->out_off += step;
    }
    c->out_off = c->out_len = 0;
    if (c->out_cap > 1024 * 1024) {
        free(c->out);
        c->out = NULL;
        c->out_cap = 0;
    }
    return 0;
}

/* Waits for the socket (readable, and writable if requests are queued),
   reading responses that come in the meantime. 0, -EAGAIN on timeout. */
static int wait_io(uds_client *c, int64_t dl)
{
    struct pollfd p = {c->fd, POLLIN, 0};
    if (c->out_off < c->out_len)
        p.events |= POLLOUT;
    int r = UDS__RETRY(poll(&p, 1, left_ms(dl)));
    if (r < 0)
        return uds__err();
    if (r == 0)
        return -EAGAIN;
    if (p.revents & (POLLIN | POLLHUP | POLLERR)) {
        int n = read_some(c, MSG_DONTWAIT);
        if (n < 0)
            return n;
    }
    return 0;
}

int uds_client_flush(uds_client *c, int timeout_ms)
{
    if (!c)
        return -EINVAL;
    int64_t dl = deadline_of(timeout_ms);
    for (;;) {
        int r = send_some(c);
        if (r != -EAGAIN)
            return r;
        if (timeout_ms == 0)
            return -EAGAIN;
        r = wait_io(c, dl);
        if (r < 0)
            return r;
    }
}

int uds_client_send(uds_client *c, const void *req, size_t len)
{
    if (!c || (!req && len))
        return -EINVAL;
    if (c->err)
        return c->err;
    const uds_framer *f = c->packets ? &c->rec : &c->wire;
    size_t need = len + UDS_FRAME_HDR_LEN + 1;
    if (reserve(&c->out, &c->out_cap, c->out_len + need) < 0)
        return -ENOMEM;
    ssize_t n = uds_frame_encode(f, req, len, c->out + c->out_len,
                                 c->out_cap - c->out_len);
    if (n < 0)
        return (int)n;
    c->out_len += (size_t)n;
    c->pending++;
    if (c->out_len - c->out_off >= SEND_BATCH) {
        int r = send_some(c);
        if (r < 0 && r != -EAGAIN)
            return r;
    }
    return 0;
}

/* Takes the next complete response out of `in`: 1 = got one, 0 = none. */
static int take(uds_client *c, void **resp, size_t *resp_len)
{
    const uds_framer *f = c->packets ? &c->rec : &c->wire;
    uds_frame fr;
    int r = uds_frame_decode(f, c->in + c->in_off, c->in_len - c->in_off, &fr);
    if (r < 0) {
        c->err = r;
        return r;
    }
    if (r == 0)
        return 0;
    char *m = NULL;
    if (resp) {
        m = malloc(fr.len + 1);
        if (!m)
            return -ENOMEM;
        memcpy(m, fr.data, fr.len);
        m[fr.len] = '\0';
    }
    c->in_off += (size_t)r;
    c->pending--;
    if (resp) {
        *resp = m;
        *resp_len = fr.len;
    }
    return 1;
}

int uds_client_recv(uds_client *c, void **resp, size_t *resp_len, int timeout_ms)
{
    if (!c || !resp || !resp_len)
        return -EINVAL;
    if (c->err)
        return c->err;
    if (c->pending == c->skip) /* nothing anyone waits for */
        return -ENOMSG;
    int64_t dl = deadline_of(timeout_ms);
    int r = send_some(c);
    if (r < 0 && r != -EAGAIN)
        return r;
    uint64_t spin_until = c->spin_us ? uds__now_ns() + c->spin_us * 1000ull : 0;
    for (;;) {
        while (c->skip > 0) {
            r = take(c, NULL, NULL);
            if (r <= 0)
                break;
            c->skip--;
        }
        if (c->skip == 0) {
            r = take(c, resp, resp_len);
            if (r != 0)
                return r < 0 ? r : 0;
        } else if (r < 0) {
            return r;
        }
        if (c->eof)
            return UDS_ECLOSED;
        if (c->out_off < c->out_len) {
            r = send_some(c);
            if (r < 0 && r != -EAGAIN)
                return r;
        }
        if (timeout_ms < 0 && !spin_until && c->out_off == c->out_len) {
            /* no limit, nothing to send: let recv() itself wait */
            r = read_some(c, 0);
            if (r < 0)
                return r;
            if (r > 0 || c->eof)
                continue;
            /* EAGAIN: the caller made the socket non-blocking; poll below */
        } else {
            r = read_some(c, MSG_DONTWAIT);
            if (r < 0)
                return r;
            if (r > 0 || c->eof)
                continue;
            /* spin: cheaper than sleeping when the answer is microseconds away */
            if (spin_until && uds__now_ns() < spin_until)
                continue;
            spin_until = 0;
            if (timeout_ms == 0)
                return -EAGAIN;
        }
        r = wait_io(c, dl);
        if (r < 0)
            return r;
    }
}

int uds_client_call(uds_client *c, const void *req, size_t len, void **resp,
                    size_t *resp_len, int timeout_ms)
{
    if (!c || !resp || !resp_len)
        return -EINVAL;
    if (c->err)
        return c->err;
    c->skip = c->pending; /* earlier pipelined responses are not wanted */
    int r = uds_client_send(c, req, len);
    if (r < 0)
        return r;
    r = uds_client_recv(c, resp, resp_len, timeout_ms == 0 ? -1 : timeout_ms);
    if (r == -EAGAIN) {
        if (c->dgram) /* likely lost: waiting for it would eat the next one */
            c->skip = c->pending = 0;
        else
            c->skip = c->pending; /* the late response will be thrown away */
        return -ETIMEDOUT;
    }
    return r;
}
