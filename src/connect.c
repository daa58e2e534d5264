/*
 * connect.c — uds_connect_start: the connect of sock.c, on the loop.
 *
 * One operation is one small state machine:
 *   attempt   a fresh non-blocking socket and connect(); then one of
 *   done      connected or failed for good: cb gets the fd or the error;
 *   handshake TCP (EINPROGRESS): watch for writable, then read SO_ERROR,
 *             bounded by a timer when there is a deadline;
 *   back-off  a unix backlog that is full (EAGAIN), or a server that is not
 *             there yet with opts->wait (ENOENT, ECONNREFUSED): the socket
 *             is closed and a timer (1 ms doubling to 50 ms) starts the
 *             next attempt, until the deadline.
 * The callback never runs inside uds_connect_start: an attempt that ends at
 * once there is handed over through uds_loop_defer. Later endings happen in
 * a loop callback (watcher or timer) and call cb directly.
 */
#include "internal.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define BACKOFF_FIRST_MS 1
#define BACKOFF_MAX_MS 50
/* How long a full unix backlog is retried when the caller set no timeout. */
#define BUSY_DEFAULT_MS 2000
#define NO_DEADLINE UINT64_MAX

enum op_state {
    OP_PENDING = 0, /* an attempt, a handshake or a back-off is under way */
    OP_QUEUED,      /* ended inside uds_connect_start; the defer delivers */
    OP_CANCELLED    /* cancelled while OP_QUEUED; the defer only frees */
};

struct uds_connect_op {
    uds_loop *loop;
    uds_addr addr;
    int type;
    int flags;
    int wait;
    int family;
    uint64_t deadline;      /* of the whole operation; NO_DEADLINE = none */
    uint64_t busy_deadline; /* no deadline: when retrying a full backlog
                               stops (0 = not retrying one now) */
    int backoff_ms;
    int fd;                 /* socket of the attempt in progress, or -1 */
    int watching;           /* fd is watched for the TCP handshake */
    uint64_t retry_timer;   /* ids; 0 = none */
    uint64_t hs_timer;
    int state;
    int result;             /* OP_QUEUED: the fd or -errno to deliver */
    uds_connect_cb cb;
    void *arg;
};

static int attempt(uds_connect_op *op, int in_start);

/* Takes everything the operation holds on the loop away (the fd stays
   open): called before the fd is handed to cb, which may watch it itself. */
static void stop_io(uds_connect_op *op)
{
    if (op->watching)
        uds_loop_unwatch(op->loop, op->fd);
    op->watching = 0;
    if (op->retry_timer)
        uds_loop_timer_cancel(op->loop, op->retry_timer);
    if (op->hs_timer)
        uds_loop_timer_cancel(op->loop, op->hs_timer);
    op->retry_timer = op->hs_timer = 0;
}

/* Ends the current attempt: off the loop, socket closed (a failed or
   abandoned attempt's socket is never reused). */
static void close_fd(uds_connect_op *op)
{
    stop_io(op);
    if (op->fd >= 0)
        close(op->fd);
    op->fd = -1;
}

/* Runs the result queued by uds_connect_start, unless it was cancelled
   meanwhile (then the fd is already closed and only the op is left). */
static void on_queued(uds_loop *l, void *arg)
{
    uds_connect_op *op = arg;
    uds_connect_cb cb = op->cb;
    void *cb_arg = op->arg;
    int res = op->result;
    int cancelled = op->state == OP_CANCELLED;
    free(op);
    if (!cancelled)
        cb(l, res, cb_arg);
}

/*
 * Ends the operation with res (the connected fd, or -errno). Why two ways:
 * inside uds_connect_start cb must not run yet, so the result is queued
 * with uds_loop_defer (failing that, the error goes back to start, which
 * discards op: cb is never called); from a loop callback cb runs at once.
 * op is freed before cb runs, so cb may free the loop or start new
 * operations freely.
 */
static int finish(uds_connect_op *op, int res, int in_start)
{
    stop_io(op);
    if (res < 0)
        close_fd(op);
    op->fd = -1; /* res owns it now */
    if (in_start) {
        op->result = res;
        op->state = OP_QUEUED;
        int r = uds_loop_defer(op->loop, on_queued, op);
        if (r < 0 && res >= 0)
            close(res);
        return r;
    }
    uds_loop *l = op->loop;
    uds_connect_cb cb = op->cb;
    void *cb_arg = op->arg;
    free(op);
    cb(l, res, cb_arg);
    return 0;
}

/* The loop could not take a timer or a watcher (-ENOMEM, epoll error): in
   start the error is returned, later it ends the operation. */
static int trouble(uds_connect_op *op, int err, int in_start)
{
    close_fd(op);
    return in_start ? err : finish(op, err, 0);
}

/* The back-off is over: the next attempt, on a fresh socket. */
static void on_retry(uds_loop *l, uint64_t id, void *arg)
{
    (void)l;
    (void)id;
    uds_connect_op *op = arg;
    op->retry_timer = 0;
    attempt(op, 0);
}

/*
 * An attempt failed with err (its socket is closed). Why a full unix
 * backlog is retried rather than reported: EAGAIN there only says the
 * server has not caught up with accept() yet; a blocking connect would
 * simply wait, and so does this one, on a timer. Without a timeout that
 * wait is capped (BUSY_DEFAULT_MS) so a server that never accepts cannot
 * hold the operation forever; a server still starting (wait) is waited
 * for as long as the caller allows, as uds_connect does.
 */
static int failed(uds_connect_op *op, int err, int in_start)
{
    uint64_t now = uds__now_ms(), limit = op->deadline;
    int busy = err == -EAGAIN && op->family == AF_UNIX && op->type != UDS_DGRAM;
    if (busy) {
        if (limit == NO_DEADLINE) {
            if (!op->busy_deadline)
                op->busy_deadline = now + BUSY_DEFAULT_MS;
            limit = op->busy_deadline;
        }
    } else {
        op->busy_deadline = 0;
        int retry = (err == -EINTR && op->family == AF_UNIX) ||
                    (op->wait && (err == -ENOENT || err == -ECONNREFUSED));
        if (!retry)
            return finish(op, err, in_start);
    }
    if (limit != NO_DEADLINE && now >= limit)
        return finish(op, busy ? -ETIMEDOUT : err, in_start);
    uint64_t delay = (uint64_t)op->backoff_ms;
    if (limit != NO_DEADLINE && limit - now < delay)
        delay = limit - now;
    op->backoff_ms = op->backoff_ms * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : op->backoff_ms * 2;
    int64_t id = uds_loop_timer(op->loop, delay, on_retry, op);
    if (id < 0)
        return trouble(op, (int)id, in_start);
    op->retry_timer = (uint64_t)id;
    return 0;
}

/* The deadline came during a TCP handshake: the whole operation is over
   (the kernel's own SYN retries would take minutes). */
static void on_handshake_timeout(uds_loop *l, uint64_t id, void *arg)
{
    (void)l;
    (void)id;
    uds_connect_op *op = arg;
    op->hs_timer = 0;
    finish(op, -ETIMEDOUT, 0);
}

/* The TCP handshake ended one way or the other: SO_ERROR says which. */
static void on_writable(uds_loop *l, int fd, unsigned events, void *arg)
{
    (void)l;
    (void)events;
    uds_connect_op *op = arg;
    int err = uds__so_error(fd);
    if (err == 0) {
        finish(op, fd, 0);
        return;
    }
    close_fd(op);
    failed(op, err, 0);
}

/* connect() said EINPROGRESS: the handshake is waited for on the loop. */
static int wait_handshake(uds_connect_op *op, int in_start)
{
    int r = uds_loop_watch(op->loop, op->fd, UDS_EV_WRITE, on_writable, op);
    if (r < 0)
        return trouble(op, r, in_start);
    op->watching = 1;
    if (op->deadline != NO_DEADLINE) {
        uint64_t now = uds__now_ms();
        int64_t id = uds_loop_timer(op->loop, op->deadline > now ? op->deadline - now : 0,
                                    on_handshake_timeout, op);
        if (id < 0)
            return trouble(op, (int)id, in_start);
        op->hs_timer = (uint64_t)id;
    }
    return 0;
}

/*
 * One attempt on a fresh socket (a socket whose connect failed cannot be
 * reused portably, and a unix one that met a full backlog must start over).
 * Returns 0, or inside start a negative errno when the loop could not take
 * the operation (start then discards it and cb is never called).
 */
static int attempt(uds_connect_op *op, int in_start)
{
    int fd = uds__connect_socket(&op->addr, op->type, op->flags, 1);
    if (fd < 0)
        return finish(op, fd, in_start);
    op->fd = fd;
    uds__kname k;
    int err = uds__kname_get(&k, &op->addr);
    if (err == 0) {
        int c = connect(fd, k.sa, k.len);
        err = c == 0 ? 0 : -errno;
        uds__kname_done(&k);
        if (c == 0)
            return finish(op, fd, in_start);
    }
    if (err == -EINPROGRESS || (err == -EINTR && op->family != AF_UNIX))
        return wait_handshake(op, in_start);
    close_fd(op);
    return failed(op, err, in_start);
}

/*
 * Why the first attempt runs here and not from the loop: a unix connect
 * usually completes in the syscall, so the common case costs no extra
 * round; only the callback waits for the loop (finish queues it).
 */
int uds_connect_start(uds_connect_op **out, uds_loop *loop, const uds_addr *addr,
                      const uds_connect_opts *opts, uds_connect_cb cb, void *arg)
{
    if (out)
        *out = NULL;
    if (!loop || !cb)
        return -EINVAL;
    int type = uds__connect_type(addr, opts);
    if (type < 0)
        return type;
    uds_connect_op *op = calloc(1, sizeof(*op));
    if (!op)
        return -ENOMEM;
    op->loop = loop;
    op->addr = *addr;
    op->type = type;
    op->family = uds_addr_family(addr);
    op->flags = opts ? opts->flags : 0;
    op->wait = opts ? opts->wait : 0;
    op->deadline = opts && opts->timeout_ms > 0 ? uds__now_ms() + (uint64_t)opts->timeout_ms
                                                : NO_DEADLINE;
    op->backoff_ms = BACKOFF_FIRST_MS;
    op->fd = -1;
    op->cb = cb;
    op->arg = arg;
    int r = attempt(op, 1);
    if (r < 0) {
        close_fd(op);
        free(op);
        return r;
    }
    if (out)
        *out = op;
    return 0;
}

/*
 * Why a queued result needs a mark instead of a free: the deferred call
 * still holds op, so it is the one to free it; it sees the mark and does
 * not call cb. Otherwise nothing else refers to op once its timers are
 * cancelled and its fd unwatched (events already fetched for the fd are
 * dropped by the loop's generation check), so it is freed at once.
 */
void uds_connect_cancel(uds_connect_op *op)
{
    if (!op)
        return;
    if (op->state == OP_QUEUED) {
        if (op->result >= 0)
            close(op->result);
        op->result = -ECANCELED;
        op->state = OP_CANCELLED;
        return;
    }
    if (op->state == OP_CANCELLED)
        return;
    close_fd(op);
    free(op);
}
