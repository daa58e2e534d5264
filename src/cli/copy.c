/*
 * copy.c — the data path of `connect` and `listen`: stdin to the socket and
 * the socket to stdout, as fast as the kernel allows.
 *
 * Why threads and blocking I/O instead of one poll loop: stdin and stdout
 * are shared with the parent shell, so making them O_NONBLOCK would change
 * them for other processes too; and a blocked direction must never stall
 * the other one. One thread per direction with blocking calls is the
 * simplest design that has neither problem, and it lets both directions
 * run on both CPUs. The calling thread only watches, on the command's
 * event loop: signals, completion (posted by the threads), the peer
 * hanging up, and progress ticks (a loop timer).
 *
 * Why splice: for a stream socket, splice() moves pages between the socket
 * and a pipe without copying them through user space. When stdin or stdout
 * is itself a pipe one splice() does the whole step; otherwise (a file,
 * /dev/null, another socket) the data goes through a private 1 MiB pipe.
 * Where the kernel refuses (a terminal, an O_APPEND file: EINVAL) the
 * direction falls back to read/write with a 256 KiB buffer.
 *
 * Fds (SCM_RIGHTS) need sendmsg/recvmsg, which splice cannot do: connect
 * --fd sends its first chunk with sendmsg and splices the rest as ever; a
 * socket whose fds must be seen (listen: recv_fds) is read with recvmsg,
 * since splice would make the kernel close them unseen.
 *
 * splice() into a socket cannot take MSG_NOSIGNAL; a vanished peer would
 * raise SIGPIPE there, which main.c ignores for the whole process, so it
 * shows up as EPIPE like every other send.
 */
#include "copy.h"
#include "fds.h"
#include "opts.h"
#include "progress.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define COPY_BUF (256 * 1024)     /* read/write fallback buffer */
#define COPY_PIPE (1024 * 1024)   /* private splice pipe size */
#define MSG_CHUNK (64 * 1024)     /* stdin -> one seqpacket/datagram message */
#define MSG_BUF (4 * 1024 * 1024) /* largest message accepted from the socket */
#define FRAME_MAX UDS_FRAME_DEFAULT_MAX /* --frame: largest line/message, 1 MiB */
#define SOCK_BUF (4 * 1024 * 1024)
#define PEER_GONE_GRACE_MS 200 /* for the sending thread to report a loss */
#define RESET_GRACE_MS 1000    /* for stdin's writer to end it after a reset */
#define HUP_RECHECK_MS 50      /* see on_sock */

/* One direction of the copy. */
typedef struct dir {
    int src, dst;
    int to_sock;         /* 1: stdin -> socket, 0: socket -> stdout */
    int type;            /* socket type */
    const char *name;    /* peer address text */
    atomic_ullong bytes; /* delivered to dst so far */
    atomic_int done;     /* 1 EOF reached, 2 failed, 3 reset by the peer
                            while receiving (judged by check()) */
    int no_shutdown;     /* keep the sending side open at EOF */
    int term_out;        /* dst is the terminal a progress line is on */
    int frame;           /* CLI_FRAME_*: lines <-> messages (--frame) */
    int reset;           /* the failure was ECONNRESET on receive (unsaid) */
    const int *send_fds; /* to_sock: fds still to pass with the first data */
    size_t send_nfds;
    int recv_fds;        /* !to_sock: read with recvmsg, fds seen */
    void (*on_fds)(const int *fds, size_t n, void *arg);
    void *fds_arg;
    int fds_said;        /* "fds closed" was said (once per copy) */
    int fds_unsent;      /* stdin ended before the data the fds needed */
    size_t rnfds;        /* received with the last read, not handed over */
    int rfds[UDS_MAX_FDS];
} dir;

/* Static: the threads may outlive cli_copy_run() until the process exits. */
static dir g_in, g_out;
/* When data last moved either way (progress_now_ns), for --idle-timeout. */
static atomic_ullong g_last_ns;

/* n bytes of direction d were delivered. */
static void count(dir *d, size_t n)
{
    atomic_fetch_add_explicit(&d->bytes, (unsigned long long)n, memory_order_relaxed);
    atomic_store_explicit(&g_last_ns, progress_now_ns(), memory_order_relaxed);
}

enum { PUMP_EOF = 0, PUMP_FAIL = -1, PUMP_FALLBACK = -2 };

/* Reports a failure of direction d; `at_dst` says which end failed. */
static void dir_fail(dir *d, int at_dst, int err)
{
    if (!d->to_sock && !at_dst && err == ECONNRESET) {
        d->reset = 1; /* an end or a failure: check() decides and says */
        return;
    }
    const char *e = strerror(err);
    if (d->to_sock) {
        if (at_dst)
            cli_warn("send to %s: %s%s", d->name, e,
                     err == EPIPE || err == ECONNRESET ? " (the peer closed the connection)" : "");
        else
            cli_warn("read stdin: %s", e);
    } else {
        if (at_dst)
            cli_warn("write stdout: %s", e);
        else
            cli_warn("receive from %s: %s%s", d->name, e,
                     err == ECONNRESET ? " (the peer closed the connection with data unread)" : "");
    }
}

static int is_pipe(int fd)
{
    struct stat st;
    return fstat(fd, &st) == 0 && S_ISFIFO(st.st_mode);
}

/* Which end a failed splice most likely refers to, from its errno. */
static int splice_err_at_dst(const dir *d, int err)
{
    if (err == EPIPE)
        return 1; /* writing side */
    if (err == ECONNRESET || err == ENOTCONN)
        return d->to_sock; /* the socket's end */
    return 0;
}

/* Writes all n bytes from the pipe end p to d->dst, using splice. */
static int drain_pipe(dir *d, int p, size_t n, int *refused)
{
    while (n > 0) {
        ssize_t m = uds_splice(p, d->dst, n, SPLICE_F_MOVE);
        if (m == -EINVAL && refused) {
            *refused = 1; /* dst does not take splice; caller copies */
            return 0;
        }
        if (m <= 0) {
            dir_fail(d, 1, m < 0 ? (int)-m : EIO);
            return PUMP_FAIL;
        }
        n -= (size_t)m;
        count(d, (size_t)m);
    }
    return 0;
}

/* Copies whatever is left in pipe p to dst with read/write (splice refused). */
static int drain_pipe_rw(dir *d, int p, size_t n, char *buf)
{
    while (n > 0) {
        ssize_t m = uds_read_some(p, buf, n < COPY_BUF ? n : COPY_BUF);
        if (m <= 0)
            return PUMP_FAIL;
        ssize_t w = uds_write_all(d->dst, buf, (size_t)m);
        if (w < 0) {
            dir_fail(d, 1, (int)-w);
            return PUMP_FAIL;
        }
        n -= (size_t)m;
        count(d, (size_t)m);
    }
    return 0;
}

/*
 * Stream copy with splice. Returns PUMP_EOF, PUMP_FAIL, or PUMP_FALLBACK
 * when the kernel refuses splice on this pair before anything moved (or
 * after draining what had moved, *buf_needed set), so read/write goes on.
 */
static int pump_splice(dir *d, char **buf)
{
    if (is_pipe(d->src) || is_pipe(d->dst)) {
        int moved = 0;
        for (;;) {
            ssize_t n = uds_splice(d->src, d->dst, COPY_PIPE, SPLICE_F_MOVE);
            if (n == -EINVAL && !moved)
                return PUMP_FALLBACK;
            if (n < 0) {
                dir_fail(d, splice_err_at_dst(d, (int)-n), (int)-n);
                return PUMP_FAIL;
            }
            if (n == 0)
                return PUMP_EOF;
            moved = 1;
            count(d, (size_t)n);
        }
    }
    int p[2];
    if (pipe2(p, O_CLOEXEC) < 0)
        return PUMP_FALLBACK;
    fcntl(p[1], F_SETPIPE_SZ, COPY_PIPE); /* best effort; 64 KiB works too */
    int r = PUMP_EOF, moved = 0;
    for (;;) {
        ssize_t n = uds_splice(d->src, p[1], COPY_PIPE, SPLICE_F_MOVE);
        if (n == -EINVAL && !moved) {
            r = PUMP_FALLBACK;
            break;
        }
        if (n < 0) {
            dir_fail(d, 0, (int)-n);
            r = PUMP_FAIL;
            break;
        }
        if (n == 0)
            break;
        moved = 1;
        int refused = 0;
        r = drain_pipe(d, p[0], (size_t)n, &refused);
        if (r == 0 && refused) {
            /* e.g. stdout is an O_APPEND file: finish with read/write */
            *buf = malloc(COPY_BUF);
            r = *buf ? drain_pipe_rw(d, p[0], (size_t)n, *buf) : PUMP_FAIL;
            if (r == 0)
                r = PUMP_FALLBACK;
            break;
        }
        if (r < 0)
            break;
    }
    close(p[0]);
    close(p[1]);
    return r;
}

/* recv() of one message; reports a message longer than the buffer. */
static ssize_t recv_msg(dir *d, char *buf, size_t cap)
{
    ssize_t n = uds_recvfrom(d->src, buf, cap, NULL, 0);
    if (n > (ssize_t)cap) {
        cli_warn("receive from %s: message longer than %zu bytes, truncated", d->name, cap);
        n = (ssize_t)cap;
    }
    return n;
}

/*
 * The fds that came with the last read, once its data is written (deliver)
 * or on the way out (not): to on_fds, or said once; closed either way, so
 * none ever stays open in this process.
 */
static void rx_fds_done(dir *d, int deliver)
{
    if (!d->rnfds)
        return;
    if (deliver && d->on_fds) {
        d->on_fds(d->rfds, d->rnfds, d->fds_arg);
    } else if (deliver && !d->fds_said) {
        d->fds_said = 1;
        cli_warn("receive from %s: the peer passed fds (SCM_RIGHTS); closed them (take them "
                 "with --fds; said once)", d->name);
    }
    cli_fds_close(d->rfds, d->rnfds);
    d->rnfds = 0;
}

/*
 * One read from the socket: a message on seqpacket/dgram, what is there on
 * a stream. With recv_fds a recvmsg, whose fds wait in d->rfds for
 * rx_fds_done (a message too long for cap is dropped then, fds and all:
 * said, and the next one read).
 */
static ssize_t sock_read(dir *d, char *buf, size_t cap)
{
    if (!d->recv_fds)
        return d->type != UDS_STREAM ? recv_msg(d, buf, cap) : uds_read_some(d->src, buf, cap);
    for (;;) {
        uds_msg m = {.buf = buf, .len = cap, .fds = d->rfds, .fds_cap = UDS_MAX_FDS};
        ssize_t n = uds_recvmsg(d->src, &m, 0);
        if (n == -EMSGSIZE && d->type != UDS_STREAM) {
            cli_warn("receive from %s: a message longer than %zu bytes was dropped", d->name,
                     cap);
            continue;
        }
        d->rnfds = n < 0 ? 0 : m.nfds;
        if (n == 0)
            rx_fds_done(d, 1); /* nothing to write before them */
        return n;
    }
}

/* connect --fd at EOF on stdin before a byte: the fds were not passed. */
static int fds_unsent(dir *d)
{
    cli_warn("--fd: stdin ended before any data; on a %s socket fds go with data, so none "
             "was passed to %s (give at least one byte)", uds_type_name(d->type), d->name);
    d->fds_unsent = 1; /* still an EOF for the peer: it is not left waiting */
    return PUMP_FAIL;
}

/*
 * Sends buf with the pending fds attached (sendmsg), then the rest of it
 * (a stream may take only part of a sendmsg). 0 or -errno.
 */
static int send_with_fds(dir *d, const char *buf, size_t len)
{
    uds_msg m = {.buf = (void *)buf, .len = len, .fds = (int *)d->send_fds,
                 .nfds = d->send_nfds};
    ssize_t w = uds_sendmsg(d->dst, &m);
    if (w >= 0 && (size_t)w < len && d->type == UDS_STREAM)
        w = uds_write_all(d->dst, buf + w, len - (size_t)w);
    if (w < 0)
        return (int)w;
    d->send_nfds = 0; /* the kernel has its own copies now */
    return 0;
}

/*
 * connect --fd: the first chunk of stdin goes with sendmsg, the fds on it;
 * the caller copies the rest as usual (splice included). Why no invented
 * byte when stdin is empty: the server could not tell it from real input.
 */
static int send_first(dir *d)
{
    size_t cap = d->type == UDS_STREAM ? COPY_BUF : MSG_CHUNK;
    char *buf = malloc(cap);
    if (!buf) {
        dir_fail(d, 0, ENOMEM);
        return PUMP_FAIL;
    }
    ssize_t n = uds_read_some(d->src, buf, cap);
    int r = 0;
    if (n < 0) {
        dir_fail(d, 0, (int)-n);
        r = PUMP_FAIL;
    } else if (n == 0) {
        r = fds_unsent(d);
    } else if ((r = send_with_fds(d, buf, (size_t)n)) < 0) {
        dir_fail(d, 1, -r);
        r = PUMP_FAIL;
    } else {
        count(d, (size_t)n);
    }
    free(buf);
    return r;
}

/* Writes n bytes of direction d's output, erasing a progress line first
   when the output is that terminal. */
static ssize_t out_write(dir *d, const char *buf, size_t n)
{
    if (!d->term_out || !n)
        return uds_write_all(d->dst, buf, n);
    progress_hold();
    ssize_t w = uds_write_all(d->dst, buf, n);
    progress_wrote(buf[n - 1]);
    progress_release();
    return w;
}

/* read/write copy; message sockets keep one read = one message. */
static int pump_rw(dir *d, char **bufp)
{
    int msg = d->type != UDS_STREAM;
    /* recvmsg instead of splice: larger reads make up for the copy */
    size_t cap = (msg || d->recv_fds) && !d->to_sock ? MSG_BUF : COPY_BUF;
    if (!*bufp || cap != COPY_BUF) {
        free(*bufp);
        *bufp = malloc(cap);
    }
    char *buf = *bufp;
    if (!buf) {
        dir_fail(d, 0, ENOMEM);
        return PUMP_FAIL;
    }
    size_t want = msg && d->to_sock ? MSG_CHUNK : cap;
    for (;;) {
        ssize_t n = d->to_sock ? uds_read_some(d->src, buf, want) : sock_read(d, buf, cap);
        if (n < 0) {
            dir_fail(d, 0, (int)-n);
            return PUMP_FAIL;
        }
        if (n == 0 && !(msg && !d->to_sock && d->type == UDS_DGRAM))
            return PUMP_EOF; /* an empty datagram is not an end */
        ssize_t w = msg && d->to_sock ? uds_send(d->dst, buf, (size_t)n)
                                      : out_write(d, buf, (size_t)n);
        if (w < 0) {
            rx_fds_done(d, 0);
            dir_fail(d, 1, (int)-w);
            return PUMP_FAIL;
        }
        count(d, (size_t)n);
        rx_fds_done(d, 1);
    }
}


/* Sends one stdin line (without its newline) as one message: a LEN32
   frame on a stream, one packet on seqpacket/dgram. */
static int send_line(dir *d, const char *line, size_t len)
{
    ssize_t w;
    if (d->type == UDS_STREAM) {
        uds_framer f = {.mode = UDS_FRAME_LEN32, .max = FRAME_MAX};
        uint8_t hdr[UDS_FRAME_HDR_LEN];
        int h = uds_frame_header(&f, len, hdr);
        if (h < 0)
            return h;
        w = d->send_nfds ? send_with_fds(d, (const char *)hdr, (size_t)h)
                         : uds_write_all(d->dst, hdr, (size_t)h);
        if (w >= 0 && len)
            w = uds_write_all(d->dst, line, len);
    } else if (d->send_nfds && len) {
        w = send_with_fds(d, line, len);
    } else {
        w = uds_send(d->dst, line, len);
    }
    return w < 0 ? (int)w : 0;
}

/*
 * --frame, stdin -> socket: each line (its "\n", and a "\r" before it,
 * removed) becomes one message; a last line without "\n" too. A line over
 * FRAME_MAX fails the direction before anything of it is sent.
 */
static int pump_lines_out(dir *d)
{
    size_t cap = FRAME_MAX + 1, have = 0;
    char *buf = malloc(cap);
    if (!buf) {
        dir_fail(d, 0, ENOMEM);
        return PUMP_FAIL;
    }
    int r = PUMP_EOF;
    for (;;) {
        ssize_t n = have < cap ? uds_read_some(d->src, buf + have, cap - have) : 0;
        if (n < 0) {
            dir_fail(d, 0, (int)-n);
            r = PUMP_FAIL;
            break;
        }
        if (n == 0 && have == cap) {
            cli_warn("read stdin: a line longer than %u bytes (--frame's limit)", FRAME_MAX);
            r = PUMP_FAIL;
            break;
        }
        int eof = n == 0;
        have += (size_t)n;
        size_t start = 0;
        for (;;) {
            char *nl = memchr(buf + start, '\n', have - start);
            size_t end = nl ? (size_t)(nl - buf) : have;
            if (!nl && !(eof && end > start))
                break;
            size_t len = end - start;
            if (nl && len && buf[end - 1] == '\r')
                len--;
            if (d->send_nfds && !len && d->type != UDS_STREAM) {
                cli_warn("--fd: the first line is empty; an empty message cannot carry fds");
                free(buf);
                return PUMP_FAIL;
            }
            int e = send_line(d, buf + start, len);
            if (e < 0) {
                dir_fail(d, 1, -e);
                free(buf);
                return PUMP_FAIL;
            }
            count(d, end - start + (nl != NULL));
            start = nl ? end + 1 : end;
        }
        memmove(buf, buf + start, have - start);
        have -= start;
        if (eof)
            break;
    }
    free(buf);
    if (r == PUMP_EOF && d->send_nfds)
        r = fds_unsent(d);
    return r;
}

/*
 * --frame, socket -> stdout: each message (a LEN32 frame on a stream, a
 * packet otherwise) is written as one line. A frame header over FRAME_MAX
 * or with the reserved bit fails the direction before anything is
 * allocated for it; a stream that ends inside a frame is reported.
 */
static int pump_msgs_in(dir *d)
{
    size_t cap = FRAME_MAX + UDS_FRAME_HDR_LEN + 1, have = 0;
    char *buf = malloc(cap);
    if (!buf) {
        dir_fail(d, 0, ENOMEM);
        return PUMP_FAIL;
    }
    uds_framer f = {.mode = UDS_FRAME_LEN32, .max = FRAME_MAX};
    int r = PUMP_EOF;
    for (;;) {
        ssize_t n;
        if (d->type != UDS_STREAM) {
            n = sock_read(d, buf, cap - 1);
            if (n < 0) {
                dir_fail(d, 0, (int)-n);
                r = PUMP_FAIL;
                break;
            }
            if (n == 0 && d->type != UDS_DGRAM)
                break; /* end of the connection (uds_recvfrom: 0 is EOF) */
            buf[n] = '\n';
            ssize_t w = out_write(d, buf, (size_t)n + 1);
            rx_fds_done(d, w >= 0);
            if (w < 0) {
                dir_fail(d, 1, (int)-w);
                r = PUMP_FAIL;
                break;
            }
            count(d, (size_t)n);
            continue;
        }
        n = sock_read(d, buf + have, cap - 1 - have);
        if (n < 0) {
            dir_fail(d, 0, (int)-n);
            r = PUMP_FAIL;
            break;
        }
        if (n == 0) {
            if (have)
                cli_warn("receive from %s: the connection ended inside a message "
                         "(%zu bytes of it)", d->name, have);
            r = have ? PUMP_FAIL : PUMP_EOF;
            break;
        }
        have += (size_t)n;
        size_t used = 0;
        for (;;) {
            uds_frame fr;
            int k = uds_frame_decode(&f, buf + used, have - used, &fr);
            if (k < 0) {
                rx_fds_done(d, 0);
                cli_warn("receive from %s: %s", d->name,
                         k == -EMSGSIZE ? "a message over --frame's limit of 1 MiB"
                                        : "not a len32 frame (its header's top bit is set)");
                free(buf);
                return PUMP_FAIL;
            }
            if (k == 0)
                break;
            /* the payload, then "\n" written over the byte after it (the
               next frame's first byte is kept and put back) */
            char *p = (char *)fr.data;
            char keep = p[fr.len];
            p[fr.len] = '\n';
            ssize_t w = out_write(d, p, fr.len + 1);
            p[fr.len] = keep;
            if (w < 0) {
                rx_fds_done(d, 0);
                dir_fail(d, 1, (int)-w);
                free(buf);
                return PUMP_FAIL;
            }
            count(d, (size_t)k);
            used += (size_t)k;
        }
        rx_fds_done(d, 1); /* after the frames they came with */
        memmove(buf, buf + used, have - used);
        have -= used;
    }
    free(buf);
    return r;
}

/*
 * The watch: the calling thread's loop (the svc's, with the stop signals)
 * learns of a direction's end through uds_loop_post. It is static, like
 * the directions: a call posted just before the watch ended may still run
 * later (uds_loop_free runs what is queued) and must find it, inactive.
 * post_lock orders a thread's last post against the end of the watch, so
 * nothing is posted to a loop that may be freed.
 */
typedef struct watch {
    const cli_copy *c;
    uds_loop *loop;
    int active;      /* cli_copy_run is in its loop */
    int finished;    /* the copy is over (not stopped by a signal) */
    int sock_watched;
    int peer_gone;   /* the peer closed completely */
    int64_t tick, recheck, grace, idle, quit;
    int reset_wait;  /* reset while receiving: waiting for the sender */
    int64_t reset_grace; /* its timer: stdin may still reach EOF */
    int reset_graced;    /* that timer has run out */
    const char *why; /* what ended it early (-v), or NULL */
    progress pg;
} watch;

static watch g_w;
static pthread_mutex_t g_post_lock = PTHREAD_MUTEX_INITIALIZER;
static uds_loop *g_post_loop; /* NULL once the watch has ended */

static void check(watch *w);

/* Posted by a copy thread when its direction has ended. */
static void dir_ended(uds_loop *loop, void *arg)
{
    (void)loop;
    (void)arg;
    if (g_w.active)
        check(&g_w);
}

/* Thread body: one direction from start to end, then tell the watcher. */
static void *pump(void *arg)
{
    dir *d = arg;
    char *buf = NULL;
    int tty = isatty(d->src) || isatty(d->dst);
    int r = d->to_sock && d->send_nfds && !d->frame ? send_first(d) : 0;
    if (r == 0) {
        r = PUMP_FALLBACK;
        if (d->frame)
            r = d->to_sock ? pump_lines_out(d) : pump_msgs_in(d);
        else if (d->type == UDS_STREAM && !tty && !getenv("UDSOCK_NO_SPLICE") &&
                 (d->to_sock || !d->recv_fds))
            r = pump_splice(d, &buf);
        if (r == PUMP_FALLBACK)
            r = pump_rw(d, &buf);
    }
    free(buf);
    if ((r == PUMP_EOF || d->fds_unsent) && d->to_sock && d->type != UDS_DGRAM &&
        !d->no_shutdown)
        shutdown(d->dst, SHUT_WR); /* the peer sees EOF; we keep reading */
    atomic_store(&d->done, r == PUMP_EOF ? 1 : d->reset ? 3 : 2);
    pthread_mutex_lock(&g_post_lock);
    if (g_post_loop && uds_loop_post(g_post_loop, dir_ended, d) < 0)
        cli_warn("copy: cannot wake the main thread: out of memory");
    pthread_mutex_unlock(&g_post_lock);
    return NULL;
}

void cli_big_buffers(int sock)
{
    uds_set_bufsizes(sock, SOCK_BUF, SOCK_BUF);
}

static int start(dir *d, pthread_t *t)
{
    pthread_attr_t a;
    pthread_attr_init(&a);
    pthread_attr_setdetachstate(&a, PTHREAD_CREATE_DETACHED);
    int r = pthread_create(t, &a, pump, d);
    pthread_attr_destroy(&a);
    return r;
}

/* The copy is over: leave the loop. */
static void finish(watch *w)
{
    w->finished = 1;
    uds_loop_stop(w->loop);
}

static void on_sock(uds_loop *loop, int fd, unsigned events, void *arg);

/* Looks at the socket again for a hang-up (see on_sock). */
static void recheck_fire(uds_loop *loop, uint64_t id, void *arg)
{
    (void)id;
    watch *w = arg;
    w->recheck = 0;
    /* on failure the watcher stays quiet: the copy ends by its threads */
    uds_loop_watch(loop, w->c->sock, UDS_EV_READ, on_sock, w);
}

/* The grace time for the sending thread is over. */
static void grace_fire(uds_loop *loop, uint64_t id, void *arg)
{
    (void)loop;
    (void)id;
    watch *w = arg;
    w->grace = 0;
    finish(w);
}

/* The reset grace is over: check() decides with what stdin holds now. */
static void reset_grace_fire(uds_loop *loop, uint64_t id, void *arg)
{
    (void)loop;
    (void)id;
    watch *w = arg;
    w->reset_grace = 0;
    w->reset_graced = 1;
    check(w);
}

/*
 * The socket after its EOF, watched for the peer closing completely (then
 * stdin has nowhere to go). Why the re-check timer: the loop reports only
 * what a watcher asks for, and a socket at EOF is always readable; so a
 * wakeup without a hang-up quiets the watcher and looks again a little
 * later instead of spinning. A quiet watcher costs nothing meanwhile.
 */
static void on_sock(uds_loop *loop, int fd, unsigned events, void *arg)
{
    watch *w = arg;
    if (events & (UDS_EV_HUP | UDS_EV_ERROR)) {
        uds_loop_watch(loop, fd, 0, on_sock, w);
        w->peer_gone = 1;
        check(w);
        return;
    }
    uds_loop_watch(loop, fd, 0, on_sock, w);
    if (!w->recheck) {
        int64_t t = uds_loop_timer(loop, HUP_RECHECK_MS, recheck_fire, w);
        w->recheck = t > 0 ? t : 0;
    }
}

/* -q SEC after EOF on stdin is over. */
static void quit_fire(uds_loop *loop, uint64_t id, void *arg)
{
    (void)loop;
    (void)id;
    watch *w = arg;
    w->quit = 0;
    w->why = "quitting after EOF on stdin (-q)";
    finish(w);
}

/* Something is waiting on stdin already (data or its EOF): a sending
   thread blocked there is woken at once. Never blocks. */
static int input_pending(int fd)
{
    struct pollfd p = {fd, POLLIN, 0};
    return poll(&p, 1, 0) > 0;
}

/* Decides, after any event, whether the copy is over. */
static void check(watch *w)
{
    const cli_copy *c = w->c;
    int in_done = atomic_load(&g_in.done), out_done = atomic_load(&g_out.done);
    if (c->type == UDS_DGRAM ? (in_done || out_done == 2) : (out_done && in_done)) {
        finish(w);
        return;
    }
    if (out_done == 2) {
        finish(w); /* stdout or the socket failed: nothing more can be delivered */
        return;
    }
    if (in_done == 1 && c->quit_ms >= 0 && !w->quit) {
        if (c->quit_ms == 0) {
            quit_fire(w->loop, 0, w);
            return;
        }
        int64_t t = uds_loop_timer(w->loop, (uint64_t)c->quit_ms, quit_fire, w);
        if (t <= 0) {
            quit_fire(w->loop, 0, w);
            return;
        }
        w->quit = t;
    }
    if (out_done == 3) {
        /* The peer reset the connection while stdin is not finished. If
           stdin holds something (data or its EOF) the sending thread ends
           by itself, with EOF (nothing lost: CLI_OK) or a failed send
           (lost: said, CLI_FAIL); wait for it. Else input is still to come
           and can never be delivered: a failure (cli_copy_run says it). */
        if (!w->reset_wait && input_pending(c->in_fd))
            w->reset_wait = 1;
        if (w->reset_wait || w->reset_grace)
            return;
        /* Nothing there yet: in `echo data | udsock connect` the writer may
           not have exited when the reset comes (seen under load), and its
           EOF loses nothing. Give a pipe or file RESET_GRACE_MS to show it
           (then the thread ends with EOF and the first rule above holds);
           a terminal is a person, who will not type ^D that fast. */
        if (!w->reset_graced && !isatty(c->in_fd)) {
            int64_t t = uds_loop_timer(w->loop, RESET_GRACE_MS, reset_grace_fire, w);
            if (t > 0) {
                w->reset_grace = t;
                return;
            }
        }
        finish(w);
        return;
    }
    if (w->peer_gone) {
        /* If the sending thread was in the middle of a write it is woken
           with EPIPE at once and reports the loss; if it waits on stdin (a
           terminal) there is nothing lost. Give it a moment. */
        if (!w->grace) {
            int64_t t = uds_loop_timer(w->loop, PEER_GONE_GRACE_MS, grace_fire, w);
            if (t > 0)
                w->grace = t;
            else
                finish(w);
        }
        return;
    }
    if (out_done && c->type != UDS_DGRAM && !w->sock_watched) {
        int r = uds_loop_watch(w->loop, c->sock, UDS_EV_READ, on_sock, w);
        w->sock_watched = r == 0;
    }
}

/* --idle-timeout: nothing moved either way for idle_ms? Else wait the rest. */
static void idle_fire(uds_loop *loop, uint64_t id, void *arg)
{
    (void)id;
    watch *w = arg;
    w->idle = 0;
    uint64_t now = progress_now_ns(), last = atomic_load(&g_last_ns);
    uint64_t quiet_ms = now > last ? (now - last) / 1000000u : 0;
    if (quiet_ms >= (uint64_t)w->c->idle_ms) {
        w->why = "idle timeout (-i): no data either way";
        finish(w);
        return;
    }
    int64_t t = uds_loop_timer(loop, (uint64_t)w->c->idle_ms - quiet_ms, idle_fire, w);
    if (t <= 0) {
        w->why = "idle timeout (-i): cannot set a timer";
        finish(w);
        return;
    }
    w->idle = t;
}

/* Progress, from a loop timer; the threads only add to the counters. */
static void tick_fire(uds_loop *loop, uint64_t id, void *arg)
{
    (void)id;
    watch *w = arg;
    progress_tick(&w->pg, atomic_load(&g_in.bytes), atomic_load(&g_out.bytes));
    int64_t t = uds_loop_timer(loop, PROGRESS_TICK_MS, tick_fire, w);
    w->tick = t > 0 ? t : 0;
}

/* Starts both threads and watches them from the svc's loop. */
int cli_copy_run(const cli_copy *c)
{
    watch *w = &g_w;
    memset(w, 0, sizeof(*w));
    w->c = c;
    w->loop = c->svc->loop;
    g_in = (dir){.src = c->in_fd, .dst = c->sock, .to_sock = 1, .type = c->type,
                 .name = c->name, .no_shutdown = c->no_shutdown, .frame = c->frame,
                 .send_fds = c->send_fds, .send_nfds = c->send_nfds};
    g_out = (dir){.src = c->sock, .dst = c->out_fd, .to_sock = 0, .type = c->type,
                  .name = c->name, .frame = c->frame, .recv_fds = c->recv_fds,
                  .on_fds = c->on_fds, .fds_arg = c->fds_arg};
    progress_init(&w->pg, c->progress);
    g_out.term_out = w->pg.enabled && w->pg.tty && isatty(c->out_fd);
    atomic_store(&g_last_ns, progress_now_ns());
    w->active = 1;
    pthread_mutex_lock(&g_post_lock);
    g_post_loop = w->loop;
    pthread_mutex_unlock(&g_post_lock);
    pthread_t t1, t2;
    int r = start(&g_out, &t2);
    if (r == 0)
        r = start(&g_in, &t1);
    if (r != 0) {
        cli_warn("cannot start a thread: %s", strerror(r));
        return CLI_FAIL;
    }
    if (w->pg.enabled) {
        int64_t t = uds_loop_timer(w->loop, PROGRESS_TICK_MS, tick_fire, w);
        w->tick = t > 0 ? t : 0;
    }
    if (c->idle_ms > 0) {
        int64_t t = uds_loop_timer(w->loop, (uint64_t)c->idle_ms, idle_fire, w);
        w->idle = t > 0 ? t : 0;
    }
    int status = CLI_OK;
    r = uds_loop_run(w->loop);
    if (r < 0) {
        cli_warn("event loop: %s", uds_strerror(r));
        status = CLI_FAIL;
    }
    pthread_mutex_lock(&g_post_lock);
    g_post_loop = NULL;
    pthread_mutex_unlock(&g_post_lock);
    w->active = 0;
    if (w->tick)
        uds_loop_timer_cancel(w->loop, (uint64_t)w->tick);
    if (w->recheck)
        uds_loop_timer_cancel(w->loop, (uint64_t)w->recheck);
    if (w->grace)
        uds_loop_timer_cancel(w->loop, (uint64_t)w->grace);
    if (w->reset_grace)
        uds_loop_timer_cancel(w->loop, (uint64_t)w->reset_grace);
    if (w->idle)
        uds_loop_timer_cancel(w->loop, (uint64_t)w->idle);
    if (w->quit)
        uds_loop_timer_cancel(w->loop, (uint64_t)w->quit);
    if (w->sock_watched)
        uds_loop_unwatch(w->loop, c->sock);
    if (!w->finished && c->svc->stop_signo) {
        progress_done(&w->pg, atomic_load(&g_in.bytes), atomic_load(&g_out.bytes));
        return -c->svc->stop_signo;
    }
    int in_done = atomic_load(&g_in.done), out_done = atomic_load(&g_out.done);
    if (w->why && c->verbose)
        cli_warn("%s: %s", c->name, w->why);
    if (in_done == 2 || out_done == 2) {
        status = CLI_FAIL;
    } else if (w->why) {
        /* ended on purpose (-i, -q): whatever the threads were doing */
    } else if (out_done == 3 && in_done != 1) {
        cli_warn("receive from %s: %s (the peer reset the connection before all of stdin "
                 "was sent)", c->name, strerror(ECONNRESET));
        status = CLI_FAIL;
    } else if (out_done == 3 && c->verbose) {
        cli_warn("%s: the peer reset the connection after everything was sent (it did not "
                 "read all of it); not an error", c->name);
    }
    progress_done(&w->pg, atomic_load(&g_in.bytes), atomic_load(&g_out.bytes));
    return status;
}

int cli_opt_frame(const char *cmd, const char *text)
{
    if (!strcmp(text, "len32"))
        return UDS_FRAME_LEN32;
    if (!strcmp(text, "line"))
        return UDS_FRAME_LINE;
    cli_usage_error(cmd, "bad --frame '%s': len32 or line", text);
}

int cli_frame_for(const char *cmd, int mode, int type)
{
    if (!mode)
        return 0;
    if (mode == UDS_FRAME_LEN32 && type != UDS_STREAM)
        cli_usage_error(cmd, "--frame len32 is for stream sockets; on a %s socket each "
                        "message is one already (--frame line makes each a line)",
                        uds_type_name(type));
    /* lines on a stream are bytes already: nothing to do */
    return mode == UDS_FRAME_LINE && type == UDS_STREAM ? 0 : 1;
}
