/*
 * copy.c — the data path of `connect` and `listen`: stdin to the socket and
 * the socket to stdout, as fast as the kernel allows.
 *
 * Why threads and blocking I/O instead of one poll loop: stdin and stdout
 * are shared with the parent shell, so making them O_NONBLOCK would change
 * them for other processes too; and a blocked direction must never stall
 * the other one. One thread per direction with blocking calls is the
 * simplest design that has neither problem, and it lets both directions
 * run on both CPUs. The calling thread only watches: signals, completion,
 * the peer hanging up, and progress ticks.
 *
 * Why splice: for a stream socket, splice() moves pages between the socket
 * and a pipe without copying them through user space. When stdin or stdout
 * is itself a pipe one splice() does the whole step; otherwise (a file,
 * /dev/null, another socket) the data goes through a private 1 MiB pipe.
 * Where the kernel refuses (a terminal, an O_APPEND file: EINVAL) the
 * direction falls back to read/write with a 256 KiB buffer.
 *
 * splice() into a socket cannot take MSG_NOSIGNAL; a vanished peer would
 * raise SIGPIPE there, which main.c ignores for the whole process, so it
 * shows up as EPIPE like every other send.
 */
#include "copy.h"
#include "internal.h" /* UDS__RETRY: the one place EINTR is retried */
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
#include <sys/eventfd.h>
#include <sys/stat.h>
#include <unistd.h>

#define COPY_BUF (256 * 1024)     /* read/write fallback buffer */
#define COPY_PIPE (1024 * 1024)   /* private splice pipe size */
#define MSG_CHUNK (64 * 1024)     /* stdin -> one seqpacket/datagram message */
#define MSG_BUF (4 * 1024 * 1024) /* largest message accepted from the socket */
#define SOCK_BUF (4 * 1024 * 1024)

/* One direction of the copy. */
typedef struct dir {
    int src, dst;
    int to_sock;         /* 1: stdin -> socket, 0: socket -> stdout */
    int type;            /* socket type */
    const char *name;    /* peer address text */
    int efd;             /* eventfd: +1 when this direction ends */
    atomic_ullong bytes; /* delivered to dst so far */
    atomic_int done;     /* 1 EOF reached, 2 failed */
    int no_shutdown;     /* keep the sending side open at EOF */
} dir;

/* Static: the threads may outlive cli_copy_run() until the process exits. */
static dir g_in, g_out;

enum { PUMP_EOF = 0, PUMP_FAIL = -1, PUMP_FALLBACK = -2 };

/* Reports a failure of direction d; `at_dst` says which end failed. */
static void dir_fail(dir *d, int at_dst, int err)
{
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
        ssize_t m = UDS__RETRY(splice(p, NULL, d->dst, NULL, n, SPLICE_F_MOVE));
        if (m < 0 && errno == EINVAL && refused) {
            *refused = 1; /* dst does not take splice; caller copies */
            return 0;
        }
        if (m <= 0) {
            dir_fail(d, 1, m < 0 ? errno : EIO);
            return PUMP_FAIL;
        }
        n -= (size_t)m;
        atomic_fetch_add_explicit(&d->bytes, (unsigned long long)m, memory_order_relaxed);
    }
    return 0;
}

/* Copies whatever is left in pipe p to dst with read/write (splice refused). */
static int drain_pipe_rw(dir *d, int p, size_t n, char *buf)
{
    while (n > 0) {
        ssize_t m = UDS__RETRY(read(p, buf, n < COPY_BUF ? n : COPY_BUF));
        if (m <= 0)
            return PUMP_FAIL;
        ssize_t w = uds_write_all(d->dst, buf, (size_t)m);
        if (w < 0) {
            dir_fail(d, 1, (int)-w);
            return PUMP_FAIL;
        }
        n -= (size_t)m;
        atomic_fetch_add_explicit(&d->bytes, (unsigned long long)m, memory_order_relaxed);
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
            ssize_t n = UDS__RETRY(splice(d->src, NULL, d->dst, NULL, COPY_PIPE, SPLICE_F_MOVE));
            if (n < 0 && errno == EINVAL && !moved)
                return PUMP_FALLBACK;
            if (n < 0) {
                dir_fail(d, splice_err_at_dst(d, errno), errno);
                return PUMP_FAIL;
            }
            if (n == 0)
                return PUMP_EOF;
            moved = 1;
            atomic_fetch_add_explicit(&d->bytes, (unsigned long long)n, memory_order_relaxed);
        }
    }
    int p[2];
    if (pipe2(p, O_CLOEXEC) < 0)
        return PUMP_FALLBACK;
    fcntl(p[1], F_SETPIPE_SZ, COPY_PIPE); /* best effort; 64 KiB works too */
    int r = PUMP_EOF, moved = 0;
    for (;;) {
        ssize_t n = UDS__RETRY(splice(d->src, NULL, p[1], NULL, COPY_PIPE, SPLICE_F_MOVE));
        if (n < 0 && errno == EINVAL && !moved) {
            r = PUMP_FALLBACK;
            break;
        }
        if (n < 0) {
            dir_fail(d, 0, errno);
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
    struct iovec iov = {buf, cap};
    struct msghdr mh = {0};
    mh.msg_iov = &iov;
    mh.msg_iovlen = 1;
    ssize_t n = UDS__RETRY(recvmsg(d->src, &mh, MSG_CMSG_CLOEXEC));
    if (n >= 0 && (mh.msg_flags & MSG_TRUNC))
        cli_warn("receive from %s: message longer than %zu bytes, truncated", d->name, cap);
    return n < 0 ? -errno : n;
}

/* read/write copy; message sockets keep one read = one message. */
static int pump_rw(dir *d, char **bufp)
{
    int msg = d->type != UDS_STREAM;
    size_t cap = msg && !d->to_sock ? MSG_BUF : COPY_BUF;
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
        ssize_t n;
        if (msg && !d->to_sock) {
            n = recv_msg(d, buf, cap);
        } else {
            n = UDS__RETRY(read(d->src, buf, want));
            if (n < 0)
                n = -errno;
        }
        if (n < 0) {
            dir_fail(d, 0, (int)-n);
            return PUMP_FAIL;
        }
        if (n == 0 && !(msg && !d->to_sock && d->type == UDS_DGRAM))
            return PUMP_EOF; /* an empty datagram is not an end */
        ssize_t w = msg && d->to_sock ? uds_send(d->dst, buf, (size_t)n)
                                      : uds_write_all(d->dst, buf, (size_t)n);
        if (w < 0) {
            dir_fail(d, 1, (int)-w);
            return PUMP_FAIL;
        }
        atomic_fetch_add_explicit(&d->bytes, (unsigned long long)n, memory_order_relaxed);
    }
}

/* Thread body: one direction from start to end, then tell the watcher. */
static void *pump(void *arg)
{
    dir *d = arg;
    char *buf = NULL;
    int r = PUMP_FALLBACK;
    int tty = isatty(d->src) || isatty(d->dst);
    if (d->type == UDS_STREAM && !tty && !getenv("UDSOCK_NO_SPLICE"))
        r = pump_splice(d, &buf);
    if (r == PUMP_FALLBACK)
        r = pump_rw(d, &buf);
    free(buf);
    if (r == PUMP_EOF && d->to_sock && d->type != UDS_DGRAM && !d->no_shutdown)
        shutdown(d->dst, SHUT_WR); /* the peer sees EOF; we keep reading */
    atomic_store(&d->done, r == PUMP_EOF ? 1 : 2);
    uint64_t one = 1;
    if (write(d->efd, &one, sizeof(one)) < 0) {
        /* cannot happen with an eventfd below its limit */
    }
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

int cli_copy_run(const cli_copy *c)
{
    int efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (efd < 0) {
        cli_warn("eventfd: %s", strerror(errno));
        return CLI_FAIL;
    }
    g_in = (dir){.src = c->in_fd, .dst = c->sock, .to_sock = 1, .type = c->type,
                 .name = c->name, .efd = efd, .no_shutdown = c->no_shutdown};
    g_out = (dir){.src = c->sock, .dst = c->out_fd, .to_sock = 0, .type = c->type,
                  .name = c->name, .efd = efd};
    progress pg;
    progress_init(&pg, c->progress);
    pthread_t t1, t2;
    int r = start(&g_out, &t2);
    if (r == 0)
        r = start(&g_in, &t1);
    if (r != 0) {
        cli_warn("cannot start a thread: %s", strerror(r));
        return CLI_FAIL;
    }
    int show = c->progress == PROGRESS_ON || (c->progress == PROGRESS_AUTO && pg.tty);
    int status = CLI_OK;
    for (;;) {
        int in_done = atomic_load(&g_in.done), out_done = atomic_load(&g_out.done);
        if (c->type == UDS_DGRAM ? (in_done || out_done == 2) : (out_done && in_done))
            break;
        if (out_done == 2)
            break; /* stdout or the socket failed: nothing more can be delivered */
        struct pollfd p[3] = {{c->sigfd, POLLIN, 0}, {efd, POLLIN, 0}, {c->sock, 0, 0}};
        int np = out_done ? 3 : 2; /* after EOF, watch for the peer hanging up */
        int n = poll(p, (nfds_t)np, show ? PROGRESS_TICK_MS : -1);
        if (n < 0 && errno != EINTR) {
            cli_warn("poll: %s", strerror(errno));
            status = CLI_FAIL;
            break;
        }
        if (n > 0 && (p[0].revents & POLLIN)) {
            int sig = cli_signal_read(c->sigfd);
            if (sig) {
                progress_done(&pg, atomic_load(&g_in.bytes), atomic_load(&g_out.bytes));
                return -sig;
            }
        }
        if (n > 0 && (p[1].revents & POLLIN)) {
            uint64_t v;
            if (read(efd, &v, sizeof(v)) < 0) {
                /* spurious wakeup; the done flags are authoritative */
            }
        }
        if (np == 3 && (p[2].revents & (POLLHUP | POLLERR))) {
            /* The peer closed completely: stdin has nowhere to go. If the
               sending thread was in the middle of a write it is woken with
               EPIPE at once and reports the loss; if it is waiting on stdin
               (a terminal) there is nothing lost. Give it a moment. */
            for (int i = 0; i < 20 && !atomic_load(&g_in.done); i++) {
                struct pollfd e = {efd, POLLIN, 0};
                if (poll(&e, 1, 10) > 0) {
                    uint64_t v;
                    if (read(efd, &v, sizeof(v)) < 0) {
                        /* nothing: the flag is checked */
                    }
                }
            }
            break;
        }
        if (show)
            progress_tick(&pg, atomic_load(&g_in.bytes), atomic_load(&g_out.bytes));
    }
    if (atomic_load(&g_in.done) == 2 || atomic_load(&g_out.done) == 2)
        status = CLI_FAIL;
    progress_done(&pg, atomic_load(&g_in.bytes), atomic_load(&g_out.bytes));
    return status;
}
