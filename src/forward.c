/*
 * forward.c — two connections joined (uds_fwd): the engine of `udsock
 * relay`, usable by any program that has to put itself between two sockets.
 *
 * Each side is a uds_conn, so reading caps, EOF, the output queue,
 * backpressure (high water / on_drain), shutdown-after-flush and closing
 * are the connection layer's; this file only decides what goes where:
 *
 *   bytes mode   both sides raw stream sockets. A read is written to the
 *                other side as it is (one copy into its queue, sent at the
 *                end of the round with the rest). A read that fills the
 *                connection's 64 KiB read chunk means bulk traffic: that
 *                direction then switches to splice() through a pipe of its
 *                own, socket -> pipe -> socket, and its bytes stop entering
 *                user space. Why not splice from the start: for small
 *                request/response traffic a recv and a send cost less than
 *                two splices, and a connection that never carries bulk data
 *                never needs a pipe (two fds fewer per connection).
 *   message mode a packet side (SEQPACKET, connected DGRAM) or a framed
 *                stream side (LEN32, LINE): every message is decoded on its
 *                way in and encoded for the other side; a raw stream read
 *                becomes one message for a packet side.
 *
 * While a direction splices, its source connection's reads and its
 * destination's writability are routed to this file through the
 * connection hooks (internal.h); everything else stays with uds_conn.
 *
 * fds and credentials (UDS_FWD_FDS/CREDS): both unix sides opt in with
 * UDS_CONN_FDS/UDS_CONN_CREDS; what on_anc hands over is kept in the
 * direction's stash and leaves with the next bytes or message written for
 * that read (uds_conn_write_anc takes the fds over). No splice then: the
 * kernel drops ancillary data on a splice.
 *
 * Ending: EOF of a source becomes uds_conn_shutdown() of the destination
 * once the direction's pipe is empty (the queue is flushed before the
 * shutdown by the connection). When both directions have ended, both
 * connections are ended gracefully; done runs when both have closed. Any
 * error closes both at once. A datagram side has no EOF: after the other
 * side's EOF the forward lasts until the idle timeout (DGRAM_LINGER_MS when
 * none is set).
 *
 * A terminal side (a pty master: `udsock serve --pty`) is a raw byte
 * stream the connection layer reads and writes with read()/write() (its
 * tty mode). A terminal differs from a socket in three ways, handled here:
 *  - no half-close: the other side's EOF is passed on as the terminal's
 *    VEOF character (^D unless changed), what a user types to end input;
 *    in canonical mode after a line cut short, twice (the first ^D only
 *    delivers the partial line). Whatever the mode (a readline program
 *    takes ^D on an empty line as EOF as well; a full-screen program
 *    gets a keystroke). A terminal with VEOF disabled is hung up instead
 *    (the forward ends: the master is closed).
 *  - its end is EIO (read once every fd of the slave is closed; the
 *    connection layer makes it EOF); nothing can be written to it after
 *    that, so the other direction ends too and the forward finishes once
 *    the other side has been sent everything (writes failing with EIO
 *    before that are dropped by the connection layer, never fatal: the
 *    last output is still to be read; Linux 6.x takes such writes, and
 *    echoes them, instead);
 *  - no splice: not every kernel splices a tty (5.10 broke it), the EIO
 *    end would need its own handling in pump(), and a terminal's traffic
 *    is never bulk (the line discipline moves it in 4 KiB buffers).
 */
#include "internal.h"

#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <termios.h>
#include <unistd.h>

#define FWD_CHUNK (64u * 1024u)      /* uds_conn's read size: a full read is bulk */
#define DEF_PIPE (1024u * 1024u)
#define DEF_HIGH_WATER (256u * 1024u)
#define SPLICE_ROUNDS 16             /* splice in+out pairs per wakeup */
#define DGRAM_LINGER_MS 5000
#define DRAIN_MS 30000               /* last queued data after both EOFs */

enum { K_RAW, K_LEN32, K_LINE, K_PACKET };

/* Why a direction's source is not being read. */
#define PAUSE_QUEUE 0x01 /* the destination's queue is above high water */
#define PAUSE_PIPE 0x02  /* the splice pipe is full */

struct fside {
    uds_fwd *f;
    int idx;
};

/* d[i] carries what side i sends to side 1 - i. */
struct fdir {
    int pr, pw;          /* splice pipe, -1 until the direction goes bulk */
    size_t inpipe, pipesz;
    unsigned paused;     /* PAUSE_* */
    unsigned splicing : 1;
    unsigned no_splice : 1; /* pipe creation failed once: stay copying */
    unsigned src_eof : 1;
    unsigned ended : 1;  /* EOF passed on (or nothing to pass it to) */
    int *fds;            /* stash of fds not yet written, UDS_MAX_FDS room */
    size_t nfds;
    int has_cred;
    uds_cred cred;
    size_t at;           /* where the stash's bytes begin in the next data */
};

struct uds_fwd {
    uds_loop *loop;
    uds_conn *c[2];
    struct fside s[2];
    struct fdir d[2];
    int kind[2];         /* K_* */
    uds_cred peer[2];    /* SO_PEERCRED of each unix side (pid 0: unknown) */
    int dgram[2];
    int tty[2];          /* the side is a terminal (see the header comment) */
    int midline[2];      /* the last byte written to terminal side i ended no
                            line: its line discipline holds a partial line */
    uds_framer fr[2];
    uds_fwd_opts o;
    uds_fwd_done_cb done;
    void *arg;
    uds_fwd_stats st;
    int err, err_side;
    int closing;         /* both connections have been told to go */
    int nclosed;
    int bytes_mode;
    int can_splice;
    int sigpipe_ignored; /* asked when a direction starts splicing */
    uint64_t last_ms;
    int64_t idle_timer;
    unsigned linger_ms;  /* idle limit in force (0: none) */
};

static const uds__conn_hooks fwd_hooks;
static const uds_conn_cbs fwd_cbs;

/* ---- ending ------------------------------------------------------------- */

static void close_stash(struct fdir *d)
{
    for (size_t i = 0; i < d->nfds; i++)
        close(d->fds[i]);
    d->nfds = 0;
    d->has_cred = 0;
}

/* An error (or uds_fwd_close): both connections go now; the first reason
   given is the one reported. */
static void fail(uds_fwd *f, int side, int err)
{
    if (!f->err && err) {
        f->err = err;
        f->err_side = side;
    }
    f->closing = 1;
    for (int i = 0; i < 2; i++)
        if (f->c[i])
            uds_conn_close(f->c[i]);
}

static void idle_cb(uds_loop *loop, uint64_t id, void *arg);
static void arm_idle(uds_fwd *f, unsigned ms);

/* Both directions have ended: let each connection send what it has queued
   (the shutdowns are queued already), then close. A peer that never reads
   that last data must not hold the forward for ever: without an idle
   timeout, DRAIN_MS bounds it. */
static void finish(uds_fwd *f)
{
    if (f->closing)
        return;
    f->closing = 1;
    for (int i = 0; i < 2; i++)
        if (f->c[i])
            uds_conn_end(f->c[i]);
    if (!f->linger_ms) {
        f->linger_ms = DRAIN_MS;
        arm_idle(f, DRAIN_MS);
    }
}

static void arm_idle(uds_fwd *f, unsigned ms)
{
    if (f->idle_timer > 0)
        uds_loop_timer_cancel(f->loop, (uint64_t)f->idle_timer);
    f->idle_timer = 0;
    int64_t t = uds_loop_timer(f->loop, ms, idle_cb, f);
    if (t > 0)
        f->idle_timer = t;
}

/*
 * One timer per forward, re-armed only when it fires: activity just
 * updates last_ms, so busy traffic costs no timer operations.
 */
static void idle_cb(uds_loop *loop, uint64_t id, void *arg)
{
    (void)id;
    uds_fwd *f = arg;
    f->idle_timer = 0;
    uint64_t idle = uds_loop_now(loop) - f->last_ms;
    if (f->closing) { /* draining after both EOFs: the peer does not read */
        if (idle >= f->linger_ms)
            fail(f, -1, -ETIMEDOUT);
        else
            arm_idle(f, (unsigned)(f->linger_ms - idle));
        return;
    }
    if (idle >= f->linger_ms) {
        /* after one side's EOF, a quiet datagram side is an ending, not a
           failure: it can never say it is done */
        int lingering = (f->d[0].ended && f->dgram[1]) || (f->d[1].ended && f->dgram[0]);
        fail(f, -1, lingering ? 0 : -ETIMEDOUT);
        return;
    }
    arm_idle(f, (unsigned)(f->linger_ms - idle));
}

/*
 * EOF for terminal side t, which has no half-close: its VEOF character,
 * twice after a partial line in canonical mode (the header comment says
 * why). Returns 0, or -1 when the terminal has no VEOF (disabled, or its
 * settings cannot be read): the caller hangs it up.
 */
static int tty_send_eof(uds_fwd *f, int t)
{
    struct termios tio;
    if (tcgetattr(uds_conn_fd(f->c[t]), &tio) < 0 || tio.c_cc[VEOF] == _POSIX_VDISABLE)
        return -1;
    char eof[2] = {(char)tio.c_cc[VEOF], (char)tio.c_cc[VEOF]};
    struct iovec iov = {eof, (tio.c_lflag & ICANON) && f->midline[t] ? 2u : 1u};
    f->midline[t] = 0;
    /* a failure closes the connection, and on_close the forward */
    uds__conn_writev_now(f->c[t], &iov, 1);
    return 0;
}

/* Passes EOF on once everything before it is out of the pipe. */
static void try_end_dir(uds_fwd *f, int i)
{
    struct fdir *d = &f->d[i];
    uds_conn *dst = f->c[1 - i];
    if (!d->src_eof || d->ended || d->inpipe > 0 || f->closing || !dst)
        return;
    d->ended = 1;
    close_stash(d); /* fds that came with no byte after them */
    if (f->tty[1 - i]) {
        if (tty_send_eof(f, 1 - i) < 0) {
            fail(f, -1, 0); /* hung up */
            return;
        }
    } else if (!f->dgram[1 - i]) {
        uds_conn_shutdown(dst);
    }
    if (f->d[1 - i].ended) {
        finish(f);
        return;
    }
    /* the other direction comes from a datagram socket: it never ends by
       itself, so the forward lingers for replies, then ends */
    if (f->dgram[i ^ 1] && !f->linger_ms) {
        f->linger_ms = DGRAM_LINGER_MS;
        arm_idle(f, DGRAM_LINGER_MS);
    }
}

/* ---- backpressure --------------------------------------------------------- */

static void pause_src(uds_fwd *f, int i, unsigned why)
{
    struct fdir *d = &f->d[i];
    if (!d->paused && f->c[i])
        uds_conn_read_stop(f->c[i]);
    d->paused |= why;
}

static void resume_src(uds_fwd *f, int i, unsigned why)
{
    struct fdir *d = &f->d[i];
    if (!(d->paused & why))
        return;
    d->paused &= ~why;
    if (!d->paused && !d->src_eof && !f->closing && f->c[i])
        uds_conn_read_start(f->c[i]);
}

/* ---- writing one piece to the other side ---------------------------------- */

/*
 * Writes iov (holding the payload msg/len, plus any framing) from side i to
 * side 1 - i, with the stash's fds/credentials when with_anc is set.
 * Returns 0, 1 (the destination is above high water: the source has been
 * paused), or < 0 (the forward is ending).
 */
static int put(uds_fwd *f, int i, const struct iovec *iov, int n, const void *msg,
               size_t len, int with_anc)
{
    struct fdir *d = &f->d[i];
    uds_conn *dst = f->c[1 - i];
    if (!dst || f->closing)
        return UDS_ECLOSED;
    int anc = with_anc && (d->nfds > 0 || d->has_cred);
    /* a stream destination cannot carry fds on zero bytes: they wait for
       the next byte (or are closed at the end) */
    if (anc && len == 0 && f->kind[1 - i] != K_PACKET)
        anc = 0;
    if (f->o.tap) {
        uds_anc a = {d->fds, d->nfds, d->has_cred, d->cred, 0};
        f->o.tap(f, i, msg, len, anc ? &a : NULL, f->o.tap_arg);
    }
    int r;
    if (anc) {
        r = uds_conn_write_anc(dst, iov, n, d->fds, d->nfds,
                               d->has_cred ? &d->cred : NULL);
        if (r >= 0) {
            f->st.fds[i] += d->nfds;
            f->st.creds[i] += (uint64_t)d->has_cred;
            d->nfds = 0; /* the connection owns them now */
            d->has_cred = 0;
        }
    } else {
        r = uds__conn_writev_now(dst, iov, n);
    }
    if (r < 0) {
        fail(f, 1 - i, r == UDS_ECLOSED ? 0 : r);
        return r;
    }
    f->st.bytes[i] += len;
    if (f->tty[1 - i] && len > 0) {
        char last = ((const char *)msg)[len - 1];
        f->midline[1 - i] = last != '\n' && last != '\r';
    }
    if (r == 1)
        pause_src(f, i, PAUSE_QUEUE);
    return r;
}

/* One message from side i, encoded for side 1 - i. */
static int emit(uds_fwd *f, int i, const void *msg, size_t len, int with_anc)
{
    int t = f->kind[1 - i];
    uint8_t hdr[UDS_FRAME_HDR_LEN];
    struct iovec iov[2];
    int n = 0;
    if (len > f->o.max_msg && t != K_RAW) {
        fail(f, i, -EMSGSIZE);
        return -EMSGSIZE;
    }
    if (t == K_LEN32) {
        uds_frame_header(&f->fr[1 - i], len, hdr);
        iov[n].iov_base = hdr;
        iov[n++].iov_len = sizeof(hdr);
    } else if (t == K_LINE && len && memchr(msg, '\n', len)) {
        fail(f, i, UDS_EFRAME); /* cannot be one line */
        return UDS_EFRAME;
    }
    iov[n].iov_base = (void *)msg;
    iov[n++].iov_len = len;
    if (t == K_LINE) {
        iov[n].iov_base = (void *)"\n";
        iov[n++].iov_len = 1;
    }
    f->st.msgs[i]++;
    return put(f, i, iov, n, msg, len, with_anc);
}

/* ---- splice (bytes mode, bulk) -------------------------------------------- */

/* Gives direction i its pipe; its source's reads go to pump() from now on. */
static void start_splice(uds_fwd *f, int i)
{
    struct fdir *d = &f->d[i];
    int p[2];
    if (d->splicing || d->no_splice)
        return;
    if (pipe2(p, O_CLOEXEC | O_NONBLOCK) < 0) {
        d->no_splice = 1; /* out of fds or pipe quota: keep copying */
        return;
    }
    d->pr = p[0];
    d->pw = p[1];
    /* fails above /proc/sys/fs/pipe-max-size without privilege or past the
       per-user pipe quota; the default size still works */
    fcntl(d->pw, F_SETPIPE_SZ, (int)f->o.pipe_size);
    int sz = fcntl(d->pw, F_GETPIPE_SZ);
    d->pipesz = sz > 0 ? (size_t)sz : 65536;
    /* a destination that takes the whole pipe in one splice halves the
       wakeups; capped by net.core.wmem_max, which is fine */
    int snd = (int)d->pipesz;
    setsockopt(uds_conn_fd(f->c[1 - i]), SOL_SOCKET, SO_SNDBUF, &snd, sizeof(snd));
    d->splicing = 1;
    f->st.spliced[i] = 1;
    /* asked here, not per connection: only bulk directions splice */
    struct sigaction sa;
    f->sigpipe_ignored = sigaction(SIGPIPE, NULL, &sa) == 0 && sa.sa_handler == SIG_IGN;
    uds__conn_hook_read(f->c[i], 1);
}

/*
 * Moves direction i's bytes: pipe -> destination (only once the
 * destination's own queue is empty, so bytes keep their order), then
 * source -> pipe, a bounded number of times. The source is paused while
 * the pipe is full; the destination is watched for writability while the
 * pipe holds bytes.
 */
static void pump(uds_fwd *f, int i, int src_ready)
{
    struct fdir *d = &f->d[i];
    uds_conn *src = f->c[i], *dst = f->c[1 - i];
    if (!src || !dst || f->closing || !d->splicing)
        return;
    int sfd = uds_conn_fd(src), tfd = uds_conn_fd(dst);
    uds__sigpipe g;
    int guarded = !f->sigpipe_ignored, epipe = 0, got_in = 0;
    if (guarded)
        uds__sigpipe_hold(&g);
    for (int k = 0; k < SPLICE_ROUNDS && !f->closing; k++) {
        int moved = 0;
        if (d->inpipe > 0 && uds_conn_queued(dst) == 0) {
            ssize_t n = UDS__RETRY(splice(d->pr, NULL, tfd, NULL, d->inpipe,
                                          SPLICE_F_MOVE | SPLICE_F_NONBLOCK));
            if (n > 0) {
                d->inpipe -= (size_t)n;
                f->st.bytes[i] += (uint64_t)n;
                moved = 1;
            } else if (n < 0 && errno != EAGAIN) {
                epipe = errno == EPIPE;
                uds__conn_fail(dst, uds__err());
                break;
            }
        }
        if (src_ready && !d->src_eof && d->inpipe < d->pipesz) {
            ssize_t m = UDS__RETRY(splice(sfd, NULL, d->pw, NULL, d->pipesz - d->inpipe,
                                          SPLICE_F_MOVE | SPLICE_F_NONBLOCK));
            if (m > 0) {
                d->inpipe += (size_t)m;
                moved = got_in = 1;
            } else if (m == 0) {
                uds__conn_eof(src); /* -> on_eof: src_eof, ends once drained */
                src_ready = 0;
            } else if (errno == EAGAIN) {
                src_ready = 0;
            } else {
                uds__conn_fail(src, uds__err());
                break;
            }
        }
        if (!moved)
            break;
    }
    if (guarded)
        uds__sigpipe_release(&g, epipe);
    if (f->closing)
        return;
    /* with UDS_FWD_IDLE_SIDE0 only bytes read from side 0 are activity */
    if (!(f->o.flags & UDS_FWD_IDLE_SIDE0) || (i == 0 && got_in))
        f->last_ms = uds_loop_now(f->loop);
    uds__conn_hook_write(dst, d->inpipe > 0);
    if (d->inpipe >= d->pipesz)
        pause_src(f, i, PAUSE_PIPE);
    else
        resume_src(f, i, PAUSE_PIPE);
    if (d->src_eof && d->inpipe == 0)
        try_end_dir(f, i);
}

static void hook_readable(uds_conn *c, void *arg)
{
    (void)c;
    struct fside *s = arg;
    pump(s->f, s->idx, 1);
}

/* Side s->idx can take more: it is the destination of the other direction. */
static void hook_writable(uds_conn *c, void *arg)
{
    (void)c;
    struct fside *s = arg;
    pump(s->f, 1 - s->idx, 1);
}

static const uds__conn_hooks fwd_hooks = {hook_readable, hook_writable};

/* ---- connection callbacks ------------------------------------------------- */

static size_t on_data(uds_conn *c, const void *data, size_t len, void *arg)
{
    (void)c;
    struct fside *s = arg;
    uds_fwd *f = s->f;
    int i = s->idx;
    struct fdir *d = &f->d[i];
    if (i == 0 || !(f->o.flags & UDS_FWD_IDLE_SIDE0))
        f->last_ms = uds_loop_now(f->loop);
    if (f->closing)
        return len;
    if (f->bytes_mode) {
        struct iovec iov = {(void *)data, len};
        if (put(f, i, &iov, 1, data, len, 1) < 0)
            return len;
        if (f->can_splice && len >= FWD_CHUNK)
            start_splice(f, i); /* takes effect from the next wakeup */
        return len;
    }
    if (f->kind[i] != K_LEN32 && f->kind[i] != K_LINE) { /* packet or raw */
        emit(f, i, data, len, 1);
        return len;
    }
    const char *p = data;
    size_t off = 0;
    while (off < len && !d->paused && !f->closing) {
        uds_frame fr;
        int r = uds_frame_decode(&f->fr[i], p + off, len - off, &fr);
        if (r < 0) {
            fail(f, i, r);
            return len;
        }
        if (r == 0)
            break;
        /* the stash goes with the first message that holds (or follows)
           the bytes it came with, not with an earlier one */
        int with_anc = d->at < off + (size_t)r;
        off += (size_t)r;
        if (emit(f, i, fr.data, fr.len, with_anc) < 0)
            return len;
    }
    d->at = d->at > off ? d->at - off : 0;
    return off;
}

static void on_anc(uds_conn *c, const uds_anc *anc, void *arg)
{
    (void)c;
    struct fside *s = arg;
    uds_fwd *f = s->f;
    struct fdir *d = &f->d[s->idx];
    size_t k = 0;
    if (!d->nfds && !d->has_cred)
        d->at = anc->at; /* the first batch waiting decides where it goes */
    if (anc->nfds && !d->fds)
        d->fds = malloc(UDS_MAX_FDS * sizeof(int));
    if (d->fds)
        for (; k < anc->nfds && d->nfds < UDS_MAX_FDS; k++)
            d->fds[d->nfds++] = anc->fds[k];
    for (; k < anc->nfds; k++) /* no room (or memory): never leaked */
        close(anc->fds[k]);
    if (anc->has_cred && anc->cred.pid != 0) {
        d->cred = anc->cred;
        d->has_cred = 1;
    } else if (anc->has_cred && f->peer[s->idx].pid != 0) {
        /* bytes sent before SO_PASSCRED was on carry no sender (pid 0):
           the kernel's record of who connected is the truth, never the
           forwarder's own identity the kernel would stamp otherwise */
        d->cred = f->peer[s->idx];
        d->has_cred = 1;
    }
}

static void on_eof(uds_conn *c, void *arg)
{
    struct fside *s = arg;
    uds_fwd *f = s->f;
    int i = s->idx;
    struct fdir *d = &f->d[i];
    d->src_eof = 1;
    if (f->kind[i] == K_LEN32 || f->kind[i] == K_LINE) {
        size_t n;
        const char *rest = uds__conn_input(c, &n);
        if (n > 0 && f->kind[i] == K_LINE) {
            /* a last line without its newline is still a line, held to
               max_msg like the others (emit does not check towards raw) */
            size_t m = rest[n - 1] == '\r' ? n - 1 : n;
            if (m > f->o.max_msg) {
                fail(f, i, -EMSGSIZE);
                return;
            }
            emit(f, i, rest, m, 1);
        } else if (n > 0) {
            fail(f, i, UDS_EFRAME); /* a LEN32 frame cut short */
            return;
        }
    }
    if (f->tty[i] && !f->d[1 - i].ended) {
        /* the terminal is gone (its slave closed): nothing more can go to
           it, so that direction ends here, its source no longer read */
        f->d[1 - i].src_eof = f->d[1 - i].ended = 1;
        close_stash(&f->d[1 - i]);
        if (f->c[1 - i])
            uds_conn_read_stop(f->c[1 - i]);
        uds__conn_tty_gone(c); /* what is queued for it can never drain */
    }
    try_end_dir(f, i);
}

/* Side s->idx's queue went below half of high water: its source may go on. */
static void on_drain(uds_conn *c, void *arg)
{
    (void)c;
    struct fside *s = arg;
    resume_src(s->f, 1 - s->idx, PAUSE_QUEUE);
}

static void on_close(uds_conn *c, int err, void *arg)
{
    (void)c;
    struct fside *s = arg;
    uds_fwd *f = s->f;
    f->c[s->idx] = NULL;
    if (!f->closing || err)
        fail(f, s->idx, err); /* the peer went: the other side goes too */
    if (++f->nclosed < 2)
        return;
    for (int i = 0; i < 2; i++) {
        struct fdir *d = &f->d[i];
        close_stash(d);
        free(d->fds);
        if (d->pr >= 0)
            close(d->pr);
        if (d->pw >= 0)
            close(d->pw);
    }
    if (f->idle_timer > 0)
        uds_loop_timer_cancel(f->loop, (uint64_t)f->idle_timer);
    if (f->done)
        f->done(f, f->err, f->err ? f->err_side : -1, &f->st, f->arg);
    free(f);
}

static const uds_conn_cbs fwd_cbs = {
    .on_data = on_data,
    .on_eof = on_eof,
    .on_drain = on_drain,
    .on_close = on_close,
    .on_anc = on_anc,
};

/* ---- life cycle ----------------------------------------------------------- */

static int sock_family(int fd)
{
    int dom = 0;
    socklen_t l = sizeof(dom);
    return getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &dom, &l) < 0 ? uds__err() : dom;
}

int uds_fwd_new(uds_fwd **out, uds_loop *loop, int fd0, int fd1,
                const uds_fwd_opts *opts, uds_fwd_done_cb done, void *arg)
{
    if (!out || !loop || fd0 < 0 || fd1 < 0 || fd0 == fd1)
        return -EINVAL;
    uds_fwd *f = calloc(1, sizeof(*f));
    if (!f)
        return -ENOMEM;
    if (opts)
        f->o = *opts;
    if (!f->o.max_msg)
        f->o.max_msg = UDS_FRAME_DEFAULT_MAX;
    if (f->o.max_msg > UDS_FRAME_LIMIT)
        f->o.max_msg = UDS_FRAME_LIMIT;
    if (!f->o.high_water)
        f->o.high_water = DEF_HIGH_WATER;
    if (!f->o.pipe_size)
        f->o.pipe_size = DEF_PIPE;
    if (f->o.pipe_size > (1u << 30))
        f->o.pipe_size = 1u << 30;
    f->loop = loop;
    f->done = done;
    f->arg = arg;
    int fds[2] = {fd0, fd1}, fam[2], types[2], r = 0;
    for (int i = 0; i < 2 && r == 0; i++) {
        int type = types[i] = uds_sock_type(fds[i]);
        if (type == -ENOTSOCK && isatty(fds[i])) { /* a terminal: a byte stream */
            f->tty[i] = 1;
            type = types[i] = SOCK_STREAM;
            fam[i] = AF_UNSPEC;
        } else {
            fam[i] = sock_family(fds[i]);
        }
        if (type < 0 || fam[i] < 0) {
            r = type < 0 ? type : fam[i];
            break;
        }
        int fm = f->o.frame[i];
        if (fm != UDS_FRAME_RAW && fm != UDS_FRAME_LEN32 && fm != UDS_FRAME_LINE)
            r = -EINVAL;
        else if (type == SOCK_STREAM)
            f->kind[i] = fm == UDS_FRAME_LEN32 ? K_LEN32 : fm == UDS_FRAME_LINE ? K_LINE : K_RAW;
        else if (type == SOCK_SEQPACKET || type == SOCK_DGRAM)
            f->kind[i] = fm == UDS_FRAME_RAW ? K_PACKET : -1;
        else
            r = -EPROTOTYPE;
        if (r == 0 && f->kind[i] < 0)
            r = -EPROTOTYPE; /* a packet socket has no stream framing */
        f->dgram[i] = type == SOCK_DGRAM;
        f->fr[i].mode = f->kind[i] == K_LINE ? UDS_FRAME_LINE : UDS_FRAME_LEN32;
        f->fr[i].max = f->o.max_msg;
    }
    if (r < 0) {
        free(f);
        return r;
    }
    int both_unix = fam[0] == AF_UNIX && fam[1] == AF_UNIX;
    int anc_flags = 0;
    if (both_unix && (f->o.flags & (UDS_FWD_FDS | UDS_FWD_CREDS)))
        anc_flags = ((f->o.flags & UDS_FWD_FDS) ? UDS_CONN_FDS : 0) |
                    ((f->o.flags & UDS_FWD_CREDS) ? UDS_CONN_CREDS : 0);
    f->bytes_mode = f->kind[0] == K_RAW && f->kind[1] == K_RAW;
    f->can_splice = f->bytes_mode && !anc_flags && !f->o.tap &&
                    !(f->o.flags & UDS_FWD_NO_SPLICE) && !f->tty[0] && !f->tty[1];
    for (int i = 0; i < 2; i++) {
        f->s[i].f = f;
        f->s[i].idx = i;
        f->d[i].pr = f->d[i].pw = -1;
    }
    for (int i = 0; i < 2; i++) {
        uds_conn_opts co;
        memset(&co, 0, sizeof(co));
        co.high_water = f->o.high_water;
        /* the source pauses at high water, but what it already read (one
           chunk, or one message) still goes in: room above it, never a drop */
        co.out_cap = 2 * f->o.high_water + f->o.max_msg + 2 * FWD_CHUNK;
        co.max_input = f->kind[i] == K_PACKET ? f->o.max_msg
                       : f->kind[i] == K_RAW ? FWD_CHUNK
                                             : f->o.max_msg + UDS_FRAME_HDR_LEN;
        co.flags = anc_flags;
        if (f->kind[i] == K_PACKET && !f->dgram[i]) {
            /* a message above SO_SNDBUF cannot be sent at all */
            int want = (int)(f->o.max_msg + 4096 > 64u << 20 ? 64u << 20 : f->o.max_msg + 4096);
            int cur = 0;
            socklen_t sl = sizeof(cur);
            if (getsockopt(fds[i], SOL_SOCKET, SO_SNDBUF, &cur, &sl) == 0 && cur / 2 < want)
                setsockopt(fds[i], SOL_SOCKET, SO_SNDBUF, &want, sizeof(want));
        }
        uds__sockinfo si = {types[i], fam[i], 0, f->tty[i]};
        r = uds__conn_new_known(&f->c[i], loop, fds[i], &co, &fwd_cbs, &f->s[i], &si);
        if (r < 0) {
            if (i == 1)
                uds__conn_forget(f->c[0]);
            free(f);
            return r;
        }
    }
    for (int i = 0; i < 2; i++) {
        if (anc_flags & UDS_CONN_CREDS)
            uds_peer_cred(fds[i], &f->peer[i]);
        uds__conn_hooks_set(f->c[i], &fwd_hooks, &f->s[i]);
        if (fam[i] != AF_UNIX && types[i] == SOCK_STREAM && !f->tty[i])
            uds__nodelay(fds[i]);
    }
    f->last_ms = uds_loop_now(loop);
    if (f->o.idle_timeout_ms > 0) {
        f->linger_ms = (unsigned)f->o.idle_timeout_ms;
        arm_idle(f, f->linger_ms);
    }
    *out = f;
    return 0;
}

void uds_fwd_close(uds_fwd *f)
{
    if (f && !f->closing)
        fail(f, -1, 0);
}

void uds_fwd_stats_get(const uds_fwd *f, uds_fwd_stats *out) { *out = f->st; }

void *uds_fwd_arg(const uds_fwd *f) { return f->arg; }
