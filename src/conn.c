/*
 * conn.c — buffered connections on the loop.
 *
 * Input: reads go into the loop's shared scratch buffer; only bytes the
 * application did not consume (a partial frame) are copied into a buffer of
 * the connection's own, which is freed as soon as it is empty again. Output:
 * writes are queued (buf.c) and flushed once per loop round from a deferred
 * call, so all replies produced in a round leave in one writev. So an idle
 * connection owns no buffer at all.
 *
 * Ancillary data is opt-in (UDS_CONN_FDS, UDS_CONN_CREDS): only such
 * connections read with a control buffer; every other one reads with plain
 * recv(), which makes the kernel discard any fds a peer sent, and asks the
 * kernel (SO_PASSRIGHTS, where it exists) to refuse them at the sender.
 */
#include "internal.h"
#include "buf.h"

#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
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
    unsigned pkt_mark : 1;      /* SEQPACKET marked: uds__pkt_eof tells a 0
                                   read from end of stream (io.c) */
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
    unsigned anc_read : 1;      /* UDS_CONN_FDS or _CREDS: recvmsg + cmsg */
    unsigned anc_fds : 1;       /* UDS_CONN_FDS */
    unsigned fam_known : 1;     /* is_unix is known */
    unsigned is_unix : 1;       /* AF_UNIX (fds and credentials can travel) */
    unsigned tty : 1;           /* a terminal, not a socket (sockinfo.tty) */
    unsigned tty_gone : 1;      /* its other end went (EIO on a write):
                                   what is written now is dropped */
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
    /* out.head, not out.bytes: a queued empty packet is 0 bytes */
    if ((c->write_blocked && c->out.head) || c->hook_write)
        m |= UDS_EV_WRITE;
    if (m == c->mask)
        return;
    int r = uds_loop_watch(c->loop, c->fd, m, io_cb, c);
    if (r < 0)
        close_now(c, r);
    else
        c->mask = (uint8_t)m;
}

/*
 * A terminal's other end is gone: its read reached the end (EIO: every fd
 * of the pty's slave is closed; the forwarder calls this then), or a write
 * failed with EIO (a hung-up tty; Linux 6.x still takes writes to a master
 * whose slave is closed, and echoes them). What was queued and what is
 * written from now on is dropped, as a terminal line that has gone drops
 * it: nobody can read it, and a queue that can never drain (nobody reads
 * the slave's input) must not hold the connection open. The fd stays
 * open, for its read side: after an EIO write the last output may still
 * be there to read.
 */
static void tty_write_gone(uds_conn *c)
{
    c->tty_gone = 1;
    c->write_blocked = 0;
    uds__outq_clear(&c->out);
}

/* Sends what the kernel takes; finishes shutdown/end once empty. */
static int do_flush(uds_conn *c)
{
    if (c->closing)
        return UDS_ECLOSED;
    size_t before = c->out.bytes;
    int r = c->out.head ? uds__outq_flush(&c->out, c->fd, c->packets) : 0;
    c->sent += before - c->out.bytes;
    if (c->tty && r == -EIO) { /* tty_write_gone says why */
        tty_write_gone(c);
        r = 0;
    }
    if (r < 0 && r != -EAGAIN) {
        close_now(c, r);
        return r;
    }
    c->write_blocked = r == -EAGAIN;
    if (r == 0) {
        if (c->shut_pending && !c->shut_done) {
            c->shut_done = 1;
            if (!c->tty) /* a terminal has no half-close (forward.c) */
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
    /* More than max_input left over is one message too big only when the
       application took all it could; one that paused (uds_conn_read_stop,
       e.g. a server at its in-flight limit) left whole messages behind.
       Those are kept (no more is read while paused, so the buffer stays
       under READ_CHUNK + max_input) and offered again by read_start. */
    if (rest > c->max_input && c->reading) {
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

unsigned uds__features = UDS__FEAT_ALL;

static void close_fds(const int *fds, size_t n)
{
    for (size_t i = 0; i < n; i++)
        close(fds[i]);
}

/* Room for the most a unix socket can attach to one read: SCM_MAX_FD fds
   (the kernel never puts two SCM_RIGHTS sets into one read), one ucred and,
   on a marked SEQPACKET socket, the timestamp (UDS__PKT_CTL). */
#define ANC_CTL_FDS CMSG_SPACE(UDS_MAX_FDS * sizeof(int))
#define ANC_CTL_CRED CMSG_SPACE(sizeof(struct ucred))

/*
 * One read of a connection that takes ancillary data, and the on_anc call
 * for it, made before the caller offers the bytes (at: where they will
 * start in that on_data's data). Why the rules:
 *  - The control buffer is on the stack and always has room for the
 *    kernel's maximum, so a well-behaved peer never sees truncation.
 *  - Without UDS_CONN_FDS (credentials only) the buffer has room for the
 *    credentials alone: the kernel then installs no fd at all (it releases
 *    them and sets MSG_CTRUNC), so none ever enters our fd table.
 *  - MSG_CTRUNC with UDS_CONN_FDS means fds the peer sent are lost (in
 *    practice: this process is at RLIMIT_NOFILE and the kernel could
 *    install only some). Every fd of that read is closed, its bytes are
 *    dropped and the connection fails with -EMSGSIZE. Going on would hand
 *    the application bytes without the fds that came with them, and
 *    protocols that match fds to messages in order (D-Bus, Wayland) would
 *    pair every later fd with the wrong message; uds_recvmsg treats
 *    truncation the same way (dbus CVE-2020-12049 is the leak it avoids).
 *    With credentials only, MSG_CTRUNC just says fds were refused: the
 *    bytes and credentials are still good, the connection goes on.
 * Returns the bytes read (0 with *eof set: end of stream; 0 without: an
 * empty datagram or SEQPACKET message), or -errno (-EAGAIN, -EMSGSIZE, the
 * socket error). *cut is set when fds came:
 * the kernel ends a stream read after the segment that carried them, so a
 * short read does not mean the socket is drained. The caller checks
 * c->closing first: on_anc may have closed the connection.
 */
static ssize_t read_anc(uds_conn *c, char *buf, size_t space, size_t at, int *cut,
                        int *eof)
{
    union {
        struct cmsghdr h;
        char b[ANC_CTL_FDS + ANC_CTL_CRED + UDS__PKT_CTL];
    } ctl;
    int fds[UDS_MAX_FDS];
    struct iovec iov = {buf, space};
    struct msghdr mh;
    memset(&mh, 0, sizeof(mh));
    mh.msg_iov = &iov;
    mh.msg_iovlen = 1;
    mh.msg_control = ctl.b;
    mh.msg_controllen = (c->anc_fds ? ANC_CTL_FDS + ANC_CTL_CRED : ANC_CTL_CRED) +
                        (c->pkt_mark ? UDS__PKT_CTL : 0);
    ssize_t n = UDS__RETRY(recvmsg(c->fd, &mh, MSG_DONTWAIT | MSG_CMSG_CLOEXEC));
    if (n < 0)
        return errno == EWOULDBLOCK ? -EAGAIN : uds__err();
    uds_anc anc;
    memset(&anc, 0, sizeof(anc));
    anc.fds = fds;
    anc.at = at;
    int trunc = (mh.msg_flags & MSG_CTRUNC) != 0;
    for (struct cmsghdr *h = CMSG_FIRSTHDR(&mh); h; h = CMSG_NXTHDR(&mh, h)) {
        if (h->cmsg_level != SOL_SOCKET)
            continue;
        if (h->cmsg_type == SCM_RIGHTS) {
            size_t k = (h->cmsg_len - CMSG_LEN(0)) / sizeof(int);
            for (size_t i = 0; i < k; i++) {
                int f;
                memcpy(&f, CMSG_DATA(h) + i * sizeof(int), sizeof(int));
                if (anc.nfds < UDS_MAX_FDS) {
                    fds[anc.nfds++] = f;
                } else { /* more than a read can carry: not trusted */
                    close(f);
                    trunc = 1;
                }
            }
        } else if (h->cmsg_type == SCM_CREDENTIALS &&
                   h->cmsg_len >= CMSG_LEN(sizeof(struct ucred))) {
            struct ucred uc;
            memcpy(&uc, CMSG_DATA(h), sizeof(uc));
            anc.cred.pid = uc.pid;
            anc.cred.uid = uc.uid;
            anc.cred.gid = uc.gid;
            anc.has_cred = 1;
        }
    }
    if (trunc || !c->anc_fds) { /* !anc_fds: none fit, closed for safety */
        close_fds(fds, anc.nfds);
        anc.nfds = 0;
        if (trunc && c->anc_fds)
            return -EMSGSIZE;
    }
    if (c->packets && ((mh.msg_flags & MSG_TRUNC) || (size_t)n > c->max_input)) {
        close_fds(fds, anc.nfds);
        return -EMSGSIZE;
    }
    *eof = n == 0 && (!c->packets || (!c->dgram && uds__pkt_eof(c->fd, n, &mh, c->pkt_mark)));
    if (*eof) { /* end of stream: nothing to go with */
        close_fds(fds, anc.nfds);
        return 0;
    }
    *cut = anc.nfds > 0;
    if (anc.nfds == 0 && !anc.has_cred)
        return n;
    if (!c->cbs->on_anc) {
        close_fds(fds, anc.nfds);
        return n;
    }
    c->in_cb = 1;
    c->cbs->on_anc(c, &anc, c->arg);
    c->in_cb = 0;
    return n;
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
        ssize_t n;
        int cut = 0, eof = 0;
        if (c->anc_read) {
            n = read_anc(c, buf, space, scratch ? 0 : c->in_len, &cut, &eof);
            if (c->closing)
                return;
            if (n < 0) {
                if (n != -EAGAIN)
                    close_now(c, (int)n);
                return;
            }
        } else {
            /* a terminal: read(), and EIO is its end (a pty master reads
               EIO once the last fd of its slave side is closed) */
            n = c->tty ? UDS__RETRY(read(c->fd, buf, space))
                       : UDS__RETRY(recv(c->fd, buf, space, MSG_DONTWAIT));
            if (n < 0 && c->tty && errno == EIO)
                n = 0;
            if (n < 0) {
                if (errno != EAGAIN && errno != EWOULDBLOCK)
                    close_now(c, uds__err());
                return;
            }
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
        if ((size_t)n < space && !cut) /* drained: spare the EAGAIN syscall */
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
        ssize_t n;
        int eof = 0;
        if (c->anc_read) { /* one recvmsg per message, its own anc */
            int cut = 0;
            n = read_anc(c, buf, space, 0, &cut, &eof);
            if (c->closing)
                return;
            if (n < 0) {
                if (n != -EAGAIN)
                    close_now(c, (int)n);
                return;
            }
        } else {
            /* no control buffer: on a marked socket a message then shows
               as MSG_CTRUNC (uds__pkt_eof), and fds a peer sent are
               discarded by the kernel */
            struct iovec iov = {buf, space};
            struct msghdr mh;
            memset(&mh, 0, sizeof(mh));
            mh.msg_iov = &iov;
            mh.msg_iovlen = 1;
            n = UDS__RETRY(recvmsg(c->fd, &mh, MSG_DONTWAIT | MSG_CMSG_CLOEXEC));
            if (n < 0) {
                if (errno != EAGAIN && errno != EWOULDBLOCK)
                    close_now(c, uds__err());
                return;
            }
            if ((mh.msg_flags & MSG_TRUNC) || (size_t)n > c->max_input) {
                close_now(c, -EMSGSIZE);
                return;
            }
            eof = !c->dgram && uds__pkt_eof(c->fd, n, &mh, c->pkt_mark);
        }
        if (eof) { /* SEQPACKET end; a 0 read may be an empty message */
            on_eof(c);
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
    if ((events & (UDS_EV_WRITE | UDS_EV_ERROR | UDS_EV_HUP)) && c->out.head) {
        c->write_blocked = 0;
        do_flush(c);
    }
    /* the hook writes behind the queue, never beside it */
    if (c->hook_write && !c->closing && !c->out.head &&
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

/* SO_PASSRIGHTS on or off through uds_set_passrights (io.c); 1 if the
   kernel took it (the socket is then AF_UNIX), else 0. */
static int set_passrights(int fd, int on) { return uds_set_passrights(fd, on) == 0; }

/* AF_UNIX or not, asked once (only connections that pass fds or
   credentials ever need to know). */
static int conn_is_unix(uds_conn *c)
{
    if (!c->fam_known) {
        int dom = 0;
        socklen_t l = sizeof(dom);
        if (getsockopt(c->fd, SOL_SOCKET, SO_DOMAIN, &dom, &l) < 0)
            return uds__err();
        c->is_unix = dom == AF_UNIX;
        c->fam_known = 1;
    }
    return c->is_unix;
}

/*
 * The constructor behind uds_conn_new and uds__conn_new_known: `si` (may be
 * NULL) says what the caller already knows of the socket, so a relay that
 * makes two connections per client does not ask the kernel again (each
 * answer is a syscall on the connect path).
 */
static int conn_make(uds_conn **out, uds_loop *loop, int fd, const uds_conn_opts *opts,
                     const uds_conn_cbs *cbs, void *arg, const uds__sockinfo *si)
{
    if (!out || !loop || fd < 0 || !cbs || !cbs->on_data)
        return -EINVAL;
    int flags = opts ? opts->flags : 0;
    if (flags & ~(UDS_CONN_FDS | UDS_CONN_CREDS))
        return -EINVAL;
    int tty = si && si->tty;
    int type = tty ? SOCK_STREAM : si ? si->type : uds_sock_type(fd);
    if (type < 0)
        return type;
    if (tty && flags)
        return -EINVAL; /* no ancillary data on a terminal */
    int dom = si ? si->family : 0;
    if (flags && !si) {
        socklen_t l = sizeof(dom);
        if (getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &dom, &l) < 0)
            return uds__err();
    }
    if (flags && dom != AF_UNIX)
        return -EAFNOSUPPORT;
    int r = si && si->nonblock ? 0 : uds_set_nonblock(fd, 1);
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
    c->tty = (unsigned)tty;
    c->anc_read = flags != 0;
    c->anc_fds = (flags & UDS_CONN_FDS) != 0;
    c->fam_known = c->is_unix = flags != 0;
    if (si) {
        c->fam_known = 1;
        c->is_unix = si->family == AF_UNIX;
    }
    r = uds_loop_watch(loop, fd, UDS_EV_READ, io_cb, c);
    if (r < 0) {
        free(c);
        return r;
    }
    /* after the watch, so a failure above leaves the fd's options alone;
       nothing is read before the loop runs */
    if ((flags & UDS_CONN_CREDS) && (r = uds_set_passcred(fd, 1)) < 0) {
        uds_loop_unwatch(loop, fd);
        free(c);
        return r;
    }
    if ((!si || (si->family == AF_UNIX && !tty)) && set_passrights(fd, c->anc_fds))
        c->fam_known = c->is_unix = 1;
    if (type == SOCK_SEQPACKET)
        c->pkt_mark = uds__pkt_mark(fd) == 1;
    c->mask = UDS_EV_READ;
    *out = c;
    return 0;
}

int uds_conn_new(uds_conn **out, uds_loop *loop, int fd,
                 const uds_conn_opts *opts, const uds_conn_cbs *cbs, void *arg)
{
    return conn_make(out, loop, fd, opts, cbs, arg, NULL);
}

int uds__conn_new_known(uds_conn **out, uds_loop *loop, int fd, const uds_conn_opts *opts,
                        const uds_conn_cbs *cbs, void *arg, const uds__sockinfo *si)
{
    return conn_make(out, loop, fd, opts, cbs, arg, si);
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
    if ((len == 0 && !c->packets) || c->tty_gone) /* tty_gone: dropped */
        return c->out.bytes > c->high_water;
    r = uds__outq_copy(&c->out, iov, iovcnt, !c->packets);
    if (r < 0)
        return r;
    return write_done(c);
}

/*
 * For writers that write once per read (the forwarder): with nothing queued
 * ahead, one sendmsg now, and only what the kernel did not take is copied
 * into the queue. Why not always: the deferred flush gathers every reply a
 * server produces in one round into one sendmsg; a forwarder has one write
 * per read, and queueing it would only add a copy and a malloc/free per
 * message (which, for many connections in one round, also makes glibc trim
 * and regrow the heap: two brk calls per round).
 */
int uds__conn_writev_now(uds_conn *c, const struct iovec *iov, int iovcnt)
{
    if (iovcnt < 0 || (iovcnt > 0 && !iov) || iovcnt > 8)
        return iovcnt > 8 ? uds_conn_writev(c, iov, iovcnt) : -EINVAL;
    size_t len = 0;
    for (int i = 0; i < iovcnt; i++)
        len += iov[i].iov_len;
    int r = write_check(c, len);
    if (r < 0)
        return r;
    if ((len == 0 && !c->packets) || c->tty_gone) /* tty_gone: dropped */
        return c->out.bytes > c->high_water;
    if (c->out.head || c->write_blocked || c->hook_write)
        return uds_conn_writev(c, iov, iovcnt);
    struct msghdr mh;
    memset(&mh, 0, sizeof(mh));
    mh.msg_iov = (struct iovec *)iov;
    mh.msg_iovlen = (size_t)iovcnt;
    /* a terminal: writev (it raises no SIGPIPE: a tty reports EIO) */
    ssize_t w = c->tty ? UDS__RETRY(writev(c->fd, iov, iovcnt))
                       : UDS__RETRY(sendmsg(c->fd, &mh, MSG_NOSIGNAL | MSG_DONTWAIT));
    if (w < 0 && c->tty && errno == EIO) {
        tty_write_gone(c);
        return 0;
    }
    int took = w >= 0; /* a packet, even an empty one, went whole */
    if (w < 0) {
        if (errno != EAGAIN && errno != EWOULDBLOCK) {
            r = uds__err();
            close_now(c, r);
            return r;
        }
        w = 0;
    }
    c->sent += (uint64_t)w;
    if (took && ((size_t)w == len || c->packets))
        return 0;
    /* the rest waits for EV_WRITE, in order */
    struct iovec rest[8];
    int n = 0;
    size_t skip = (size_t)w;
    for (int i = 0; i < iovcnt; i++) {
        if (skip >= iov[i].iov_len) {
            skip -= iov[i].iov_len;
            continue;
        }
        rest[n].iov_base = (char *)iov[i].iov_base + skip;
        rest[n++].iov_len = iov[i].iov_len - skip;
        skip = 0;
    }
    r = uds__outq_copy(&c->out, rest, n, !c->packets);
    if (r < 0) {
        close_now(c, r);
        return r;
    }
    c->write_blocked = 1;
    update_watch(c);
    if (c->out.bytes > c->high_water) {
        c->over_hw = 1;
        return 1;
    }
    return 0;
}

int uds_conn_write(uds_conn *c, const void *data, size_t len)
{
    struct iovec iov = {(void *)data, len};
    return uds_conn_writev(c, &iov, 1);
}

/*
 * Everything is checked before anything is queued, so on any failure the
 * fds are untouched and still the caller's; from a successful return on the
 * queue owns them (buf.c closes them once sent, or at clear).
 */
int uds_conn_write_anc(uds_conn *c, const struct iovec *iov, int iovcnt,
                       int *fds, size_t nfds, const uds_cred *cred)
{
    if (!c || iovcnt < 0 || (iovcnt > 0 && !iov) || nfds > UDS_MAX_FDS ||
        (nfds && !fds))
        return -EINVAL;
    if (nfds == 0 && !cred)
        return uds_conn_writev(c, iov, iovcnt);
    size_t len = 0;
    for (int i = 0; i < iovcnt; i++)
        len += iov[i].iov_len;
    for (size_t i = 0; i < nfds; i++)
        if (fds[i] < 0)
            return -EBADF;
    if (len == 0 && !c->packets) /* stream: rides on a byte; a packet may be empty */
        return -EINVAL;
    if (c->closing || c->ending || c->shut_pending)
        return UDS_ECLOSED;
    int r = conn_is_unix(c);
    if (r <= 0)
        return r < 0 ? r : -EAFNOSUPPORT;
    r = write_check(c, len);
    if (r < 0)
        return r;
    r = uds__outq_anc(&c->out, iov, iovcnt, fds, nfds, cred, c->packets);
    if (r < 0)
        return r;
    return write_done(c);
}

int uds_conn_write_owned(uds_conn *c, void *data, size_t len,
                         void (*free_fn)(void *, void *), void *free_arg)
{
    int r = write_check(c, len);
    if (r < 0)
        return r;
    if (c->tty_gone) { /* dropped (tty_write_gone): the queue would free it */
        if (free_fn)
            free_fn(data, free_arg);
        return 0;
    }
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

void uds__conn_tty_gone(uds_conn *c)
{
    if (c->tty && !c->closing)
        tty_write_gone(c);
}

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
