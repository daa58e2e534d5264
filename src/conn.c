/*
 * conn.c — buffered connections on the loop.
 *
 * Input: reads go into the loop's shared scratch buffer; only bytes the
 * application did not consume (a partial frame) are copied into a buffer of
 * the connection's own, which is freed as soon as it is empty again. Output:
 * writes are queued (buf.c) and flushed once per loop round from a deferred
 * call, so all replies produced in a round leave in one writev. So an idle
 * connection owns no buffer at all.
 */
#include "internal.h"
#include "buf.h"

#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define DEF_HIGH_WATER (256u * 1024u)
#define DEF_OUT_CAP (16u * 1024u * 1024u)
#define DEF_MAX_INPUT (UDS_FRAME_DEFAULT_MAX + UDS_FRAME_HDR_LEN)
#define DEF_READS 16
#define READ_CHUNK (64u * 1024u)

struct uds_conn {
    uds_loop *loop;
    const uds_conn_cbs *cbs;
    void *arg;
    char *in;           /* unconsumed input, NULL when there is none */
    size_t in_len, in_cap;
    uds__outq out;
    size_t high_water, out_cap, max_input;
    uint64_t sent;      /* bytes the kernel took, ever (stall detection) */
    int fd;
    int err;            /* reason given to on_close */
    uint16_t reads_per_wakeup;
    uint8_t mask;       /* events currently asked of the loop */
    unsigned packets : 1;       /* SEQPACKET/DGRAM: a read is a message */
    unsigned dgram : 1;         /* DGRAM: a 0-byte read is an empty message */
    unsigned reading : 1;       /* the application wants input */
    unsigned eof : 1;           /* the peer shut down its side */
    unsigned closing : 1;       /* fd closed, free pending */
    unsigned ending : 1;        /* uds_conn_end: close once flushed */
    unsigned shut_pending : 1;  /* uds_conn_shutdown: SHUT_WR once flushed */
    unsigned shut_done : 1;
    unsigned flush_pending : 1; /* a deferred flush is scheduled */
    unsigned write_blocked : 1; /* the kernel buffer was full: wait EV_WRITE */
    unsigned over_hw : 1;       /* above high water since the last drain */
    unsigned redeliver : 1;     /* a deferred re-offer of input is scheduled */
    unsigned in_cb : 1;         /* inside on_data: no re-entry */
    unsigned hook_read : 1;     /* readable events go to hooks->readable */
    unsigned hook_write : 1;    /* want writability for hooks->writable */
    const uds__conn_hooks *hooks;
    void *hook_arg;
};

static void io_cb(uds_loop *loop, int fd, unsigned events, void *arg);

static void final_free(uds_loop *loop, void *arg)
{
    (void)loop;
    uds_conn *c = arg;
    if (c->cbs->on_close)
        c->cbs->on_close(c, c->err, c->arg);
    free(c);
}

/* Closes the fd now and frees from the loop later: every event, deferred
   flush or re-offer already scheduled for this conn sees `closing`. */
static void close_now(uds_conn *c, int err)
{
    if (c->closing)
        return;
    c->closing = 1;
    c->err = err;
    uds_loop_unwatch(c->loop, c->fd);
    close(c->fd);
    c->fd = -1;
    uds__outq_clear(&c->out);
    free(c->in);
    c->in = NULL;
    c->in_len = c->in_cap = 0;
    if (uds_loop_defer(c->loop, final_free, c) < 0)
        final_free(c->loop, c); /* out of memory: best effort */
}

static void update_watch(uds_conn *c)
{
    if (c->closing)
        return;
    unsigned m = 0;
    if (c->reading && !c->eof && !c->ending)
        m |= UDS_EV_READ;
    if ((c->write_blocked && c->out.bytes > 0) || c->hook_write)
        m |= UDS_EV_WRITE;
    if (m == c->mask)
        return;
    int r = uds_loop_watch(c->loop, c->fd, m, io_cb, c);
    if (r < 0)
        close_now(c, r);
    else
        c->mask = (uint8_t)m;
}

/* Sends what the kernel takes; finishes shutdown/end once empty. */
static int do_flush(uds_conn *c)
{
    if (c->closing)
        return UDS_ECLOSED;
    size_t before = c->out.bytes;
    int r = c->out.head ? uds__outq_flush(&c->out, c->fd, c->packets) : 0;
    c->sent += before - c->out.bytes;
    if (r < 0 && r != -EAGAIN) {
        close_now(c, r);
        return r;
    }
    c->write_blocked = r == -EAGAIN;
    if (r == 0) {
        if (c->shut_pending && !c->shut_done) {
            c->shut_done = 1;
            shutdown(c->fd, SHUT_WR);
        }
        if (c->ending) {
            close_now(c, 0);
            return 0;
        }
    }
    update_watch(c);
    if (c->over_hw && c->out.bytes <= c->high_water / 2 && !c->closing) {
        c->over_hw = 0;
        if (c->cbs->on_drain)
            c->cbs->on_drain(c, c->arg);
    }
    return 0;
}

static void flush_cb(uds_loop *loop, void *arg)
{
    (void)loop;
    uds_conn *c = arg;
    c->flush_pending = 0;
    do_flush(c);
}

static void schedule_flush(uds_conn *c)
{
    if (c->flush_pending || c->write_blocked || c->closing)
        return;
    if (uds_loop_defer(c->loop, flush_cb, c) == 0)
        c->flush_pending = 1;
    else
        do_flush(c);
}

/*
 * Offers data to the application and keeps what it did not consume.
 * `data` is either the scratch buffer or c->in itself.
 */
static void deliver(uds_conn *c, const char *data, size_t len, int from_scratch)
{
    c->in_cb = 1;
    size_t used = c->cbs->on_data(c, data, len, c->arg);
    c->in_cb = 0;
    if (c->closing)
        return;
    if (c->packets)
        return;
    if (used > len)
        used = len;
    size_t rest = len - used;
    if (rest > c->max_input) {
        close_now(c, -EMSGSIZE);
        return;
    }
    if (from_scratch) {
        if (rest == 0)
            return;
        size_t cap = rest < 4096 ? 4096 : rest;
        c->in = malloc(cap);
        if (!c->in) {
            close_now(c, -ENOMEM);
            return;
        }
        memcpy(c->in, data + used, rest);
        c->in_cap = cap;
        c->in_len = rest;
        return;
    }
    if (rest == 0) {
        free(c->in);
        c->in = NULL;
        c->in_len = c->in_cap = 0;
    } else if (used > 0) {
        memmove(c->in, c->in + used, rest);
        c->in_len = rest;
    }
}

static void on_eof(uds_conn *c)
{
    c->eof = 1;
    update_watch(c);
    if (c->cbs->on_eof)
        c->cbs->on_eof(c, c->arg);
    else
        uds_conn_end(c);
}

static void read_stream(uds_conn *c)
{
    for (unsigned i = 0; i < c->reads_per_wakeup; i++) {
        char *buf;
        size_t space;
        int scratch = c->in_len == 0;
        if (scratch) {
            buf = uds__loop_scratch(c->loop, READ_CHUNK);
            space = READ_CHUNK;
            if (!buf) {
                close_now(c, -ENOMEM);
                return;
            }
        } else {
            if (c->in_cap - c->in_len < 4096) {
                size_t cap = c->in_cap * 2;
                if (cap > c->max_input + READ_CHUNK)
                    cap = c->max_input + READ_CHUNK;
                if (cap < c->in_len + 4096)
                    cap = c->in_len + 4096;
                char *p = realloc(c->in, cap);
                if (!p) {
                    close_now(c, -ENOMEM);
                    return;
                }
                c->in = p;
                c->in_cap = cap;
            }
            buf = c->in + c->in_len;
            space = c->in_cap - c->in_len;
        }
        ssize_t n = UDS__RETRY(recv(c->fd, buf, space, MSG_DONTWAIT));
        if (n < 0) {
            if (errno != EAGAIN && errno != EWOULDBLOCK)
                close_now(c, uds__err());
            return;
        }
        if (n == 0) {
            on_eof(c);
            return;
        }
        if (scratch) {
            deliver(c, buf, (size_t)n, 1);
        } else {
            c->in_len += (size_t)n;
            deliver(c, c->in, c->in_len, 0);
        }
        if (c->closing || !c->reading || c->eof || c->ending)
            return;
        if ((size_t)n < space) /* drained: spare the syscall that says EAGAIN */
            return;
    }
}

static void read_packets(uds_conn *c)
{
    size_t space = c->max_input + 1;
    for (unsigned i = 0; i < c->reads_per_wakeup; i++) {
        char *buf = uds__loop_scratch(c->loop, space);
        if (!buf) {
            close_now(c, -ENOMEM);
            return;
        }
        struct iovec iov = {buf, space};
        struct msghdr mh;
        memset(&mh, 0, sizeof(mh));
        mh.msg_iov = &iov;
        mh.msg_iovlen = 1;
        ssize_t n = UDS__RETRY(recvmsg(c->fd, &mh, MSG_DONTWAIT | MSG_CMSG_CLOEXEC));
        if (n < 0) {
            if (errno != EAGAIN && errno != EWOULDBLOCK)
                close_now(c, uds__err());
            return;
        }
        if (n == 0 && !c->dgram) { /* SEQPACKET: 0 is end of stream */
            on_eof(c);
            return;
        }
        if ((mh.msg_flags & MSG_TRUNC) || (size_t)n > c->max_input) {
            close_now(c, -EMSGSIZE);
            return;
        }
        deliver(c, buf, (size_t)n, 1);
        if (c->closing || !c->reading || c->eof || c->ending)
            return;
    }
}

static void io_cb(uds_loop *loop, int fd, unsigned events, void *arg)
{
    (void)loop;
    (void)fd;
    uds_conn *c = arg;
    /* HUP too: a hung-up peer with only EV_WRITE asked must end in EPIPE
       here, not be reported again and again by a level-triggered loop */
    if ((events & (UDS_EV_WRITE | UDS_EV_ERROR | UDS_EV_HUP)) && c->out.bytes > 0) {
        c->write_blocked = 0;
        do_flush(c);
    }
    /* the hook writes behind the queue, never beside it */
    if (c->hook_write && !c->closing && c->out.bytes == 0 &&
        (events & (UDS_EV_WRITE | UDS_EV_ERROR | UDS_EV_HUP)))
        c->hooks->writable(c, c->hook_arg);
    if (c->closing || !(c->mask & UDS_EV_READ))
        return;
    if (events & (UDS_EV_READ | UDS_EV_HUP | UDS_EV_ERROR)) {
        if (c->hook_read)
            c->hooks->readable(c, c->hook_arg);
        else if (c->packets)
            read_packets(c);
        else
            read_stream(c);
    }
}

int uds_conn_new(uds_conn **out, uds_loop *loop, int fd,
                 const uds_conn_opts *opts, const uds_conn_cbs *cbs, void *arg)
{
    if (!out || !loop || fd < 0 || !cbs || !cbs->on_data)
        return -EINVAL;
    int type = uds_sock_type(fd);
    if (type < 0)
        return type;
    int r = uds_set_nonblock(fd, 1);
    if (r < 0)
        return r;
    uds_conn *c = calloc(1, sizeof(*c));
    if (!c)
        return -ENOMEM;
    c->loop = loop;
    c->cbs = cbs;
    c->arg = arg;
    c->fd = fd;
    c->packets = type == SOCK_SEQPACKET || type == SOCK_DGRAM;
    c->dgram = type == SOCK_DGRAM;
    c->high_water = opts && opts->high_water ? opts->high_water : DEF_HIGH_WATER;
    c->out_cap = opts && opts->out_cap ? opts->out_cap : DEF_OUT_CAP;
    if (c->out_cap < c->high_water)
        c->out_cap = c->high_water;
    c->max_input = opts && opts->max_input ? opts->max_input : DEF_MAX_INPUT;
    unsigned rpw = opts && opts->reads_per_wakeup ? opts->reads_per_wakeup : DEF_READS;
    c->reads_per_wakeup = (uint16_t)(rpw > 1024 ? 1024 : rpw);
    c->reading = 1;
    r = uds_loop_watch(loop, fd, UDS_EV_READ, io_cb, c);
    if (r < 0) {
        free(c);
        return r;
    }
    c->mask = UDS_EV_READ;
    *out = c;
    return 0;
}

/* Common gate of the write calls: state and the hard cap. */
static int write_check(uds_conn *c, size_t len)
{
    if (c->closing || c->ending || c->shut_pending)
        return UDS_ECLOSED;
    if (c->out.bytes + len > c->out_cap) {
        close_now(c, -ENOBUFS);
        return -ENOBUFS;
    }
    return 0;
}

static int write_done(uds_conn *c)
{
    schedule_flush(c);
    if (c->out.bytes > c->high_water) {
        c->over_hw = 1;
        return 1;
    }
    return 0;
}

int uds_conn_writev(uds_conn *c, const struct iovec *iov, int iovcnt)
{
    if (iovcnt < 0 || (iovcnt > 0 && !iov))
        return -EINVAL;
    size_t len = 0;
    for (int i = 0; i < iovcnt; i++)
        len += iov[i].iov_len;
    int r = write_check(c, len);
    if (r < 0)
        return r;
    if (len == 0 && !c->packets)
        return c->out.bytes > c->high_water;
    r = uds__outq_copy(&c->out, iov, iovcnt, !c->packets);
    if (r < 0)
        return r;
    return write_done(c);
}

int uds_conn_write(uds_conn *c, const void *data, size_t len)
{
    struct iovec iov = {(void *)data, len};
    return uds_conn_writev(c, &iov, 1);
}

int uds_conn_write_owned(uds_conn *c, void *data, size_t len,
                         void (*free_fn)(void *, void *), void *free_arg)
{
    int r = write_check(c, len);
    if (r < 0)
        return r;
    r = uds__outq_owned(&c->out, data, len, free_fn, free_arg);
    if (r < 0)
        return r;
    return write_done(c);
}

int uds_conn_flush(uds_conn *c)
{
    if (c->closing)
        return c->err ? c->err : UDS_ECLOSED;
    int r = do_flush(c);
    return r == -EAGAIN ? 0 : r;
}

size_t uds_conn_queued(const uds_conn *c) { return c->out.bytes; }
size_t uds_conn_buffered(const uds_conn *c) { return c->in_len; }

void uds_conn_read_stop(uds_conn *c)
{
    c->reading = 0;
    update_watch(c);
}

static void redeliver_cb(uds_loop *loop, void *arg)
{
    (void)loop;
    uds_conn *c = arg;
    c->redeliver = 0;
    if (c->closing || !c->reading || c->in_cb || c->in_len == 0)
        return;
    deliver(c, c->in, c->in_len, 0);
}

void uds_conn_read_start(uds_conn *c)
{
    if (c->closing || c->reading)
        return;
    c->reading = 1;
    update_watch(c);
    /* input already buffered gets no new event from the kernel */
    if (c->in_len > 0 && !c->redeliver &&
        uds_loop_defer(c->loop, redeliver_cb, c) == 0)
        c->redeliver = 1;
}

int uds_conn_shutdown(uds_conn *c)
{
    if (c->closing || c->ending)
        return UDS_ECLOSED;
    c->shut_pending = 1;
    schedule_flush(c);
    return 0;
}

void uds_conn_end(uds_conn *c)
{
    if (c->closing || c->ending)
        return;
    c->ending = 1;
    update_watch(c);
    if (!c->write_blocked)
        schedule_flush(c);
}

void uds_conn_close(uds_conn *c)
{
    if (c)
        close_now(c, 0);
}

int uds_conn_closing(const uds_conn *c) { return c->closing || c->ending; }
int uds_conn_fd(const uds_conn *c) { return c->fd; }
uds_loop *uds_conn_loop(const uds_conn *c) { return c->loop; }
void *uds_conn_arg(const uds_conn *c) { return c->arg; }
void uds_conn_set_arg(uds_conn *c, void *arg) { c->arg = arg; }

uint64_t uds__conn_sent(const uds_conn *c) { return c->sent; }

/* Internal: closes now and silences on_close (its owner is being
   destroyed); the memory goes with the deferred free already scheduled,
   which uds_loop_free also runs. */
void uds__conn_destroy(uds_conn *c)
{
    static const uds_conn_cbs none;
    close_now(c, 0);
    c->cbs = &none;
}

/* ---- hooks for the forwarder (forward.c) -------------------------------- */

void uds__conn_hooks_set(uds_conn *c, const uds__conn_hooks *h, void *arg)
{
    c->hooks = h;
    c->hook_arg = arg;
}

void uds__conn_hook_read(uds_conn *c, int on)
{
    c->hook_read = on && c->hooks && c->hooks->readable;
}

void uds__conn_hook_write(uds_conn *c, int on)
{
    unsigned want = on && c->hooks && c->hooks->writable;
    if (c->hook_write == want)
        return;
    c->hook_write = want;
    update_watch(c);
}

void uds__conn_eof(uds_conn *c)
{
    if (!c->closing && !c->eof)
        on_eof(c);
}

void uds__conn_fail(uds_conn *c, int err) { close_now(c, err); }

int uds__conn_is_packets(const uds_conn *c) { return c->packets; }

/* Input received and not consumed yet (a partial frame at EOF). */
const void *uds__conn_input(const uds_conn *c, size_t *len)
{
    *len = c->in_len;
    return c->in;
}

/* Undoes a fresh uds_conn_new without closing its fd (the caller's again):
   for constructors that make two connections and fail on the second. */
void uds__conn_forget(uds_conn *c)
{
    uds_loop_unwatch(c->loop, c->fd);
    free(c->in);
    free(c);
}
