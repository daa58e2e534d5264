/*
 * cmd_listen.c — `udsock listen ADDR`: the server side of nc -lU / socat
 * UNIX-LISTEN, with the core's safe bind and cleanup on exit.
 *
 * Three shapes, all on the library's event loop (cli_svc: the stop
 * signals arrive there, so the socket file can be removed before dying):
 *   - one client (default): the acceptor hands over the first client and
 *     is closed at once (the socket file is removed), then the same two-way
 *     copy as `connect` (copy.c: threads, splice). Fds a unix client
 *     passes: with --fds it is read with recvmsg, each batch reported and
 *     handed to PROGRAM; without, the kernel refuses them at the sender
 *     (SO_PASSRIGHTS off, Linux 6.16), else it is read with recvmsg and
 *     they are closed and said once (splice would close them unseen);
 *   - -k: any number of clients at once, one uds_conn each, admitted by the
 *     acceptor (-c total, -C per uid; out of fds it pauses by timer).
 *     Each client's input reaches stdout in whole lines (held per client
 *     until a newline, 64 KiB, or its EOF), so lines of different clients
 *     never mix; stdin is broadcast to every client connected when it is
 *     read, and read only while no client's queue is above high water;
 *   - --type dgram: print each datagram; stdin goes to the most recent
 *     sender that has an address.
 * --broker is -k with a different destination: what a client sends goes
 * to every other client (through the same per-client uds_conn queues)
 * instead of to stdout, still a whole line at a time; a client whose queue
 * passes --max-queue is dropped, so nobody waits for a slow reader. --chat
 * adds "<userN> " before each line, escapes it (uds_escape) and announces
 * arrivals and departures.
 */
#include "cli.h"
#include "copy.h"
#include "fds.h"
#include "opts.h"
#include "progress.h"
#include "service.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <getopt.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

static const char listen_help[] =
    "usage: udsock listen [OPTIONS] ADDR [-- PROGRAM [ARGS...]]\n"
    "\n"
    "Listen on ADDR, accept a client, copy what it sends to stdout and stdin\n"
    "to it. At EOF on stdin the sending side is shut down; udsock exits when\n"
    "the client has closed. An existing socket file is replaced only if no\n"
    "server answers on it; a file that is not a socket is never removed.\n"
    "The socket file is removed on exit (also on SIGINT, SIGTERM, SIGHUP).\n"
    "\n"
    "  -k, --keep          keep listening; serve several clients at once:\n"
    "                      their input goes to stdout a whole line at a time\n"
    "                      (never mixed inside a line), stdin is sent to every\n"
    "                      connected client. With --type dgram every sender is\n"
    "                      heard anyway (as nc -l -k -u): -k changes nothing\n"
    "  -c, --max-clients N with -k: clients at once (default 1000); more are\n"
    "                      accepted and closed at once\n"
    "  -C, --max-per-uid N with -k: clients at once per peer uid (unix\n"
    "                      addresses; default no limit)\n"
    "      --broker        (implies -k) what each client sends goes to every\n"
    "                      other client (ncat --broker), a whole line at a time,\n"
    "                      not to stdout; stdin goes to every client\n"
    "      --chat          (implies --broker) each line goes out as \"<userN> \"\n"
    "                      and the line with control bytes escaped; arrivals and\n"
    "                      departures are announced (ncat --chat)\n"
    "      --max-queue BYTES  with --broker: a client with more than BYTES\n"
    "                      queued for it (it reads too slowly) is disconnected\n"
    "                      and logged; the others never wait for it (default\n"
    "                      1M, at least 512k)\n"
    "  -i, --idle-timeout SEC  one client: close after SEC seconds without\n"
    "                      data either way (ncat -i); with -k: close a client\n"
    "                      that has sent nothing for SEC seconds\n"
    "                      (default: never)\n"
    "  -t, --type TYPE     stream (default), seqpacket or dgram (print each\n"
    "                      datagram; stdin goes to the last named sender, never\n"
    "                      waiting: what it cannot take now is dropped, and\n"
    "                      said at most once a second)\n"
    "  -m, --mode MODE     permissions of the socket file, e.g. 0660\n"
    "  -o, --owner USER    owner of the socket file (set before listen)\n"
    "  -g, --group GROUP   group of the socket file (set before listen)\n"
    "  -N, --no-shutdown   do not half-close at EOF on stdin (for peers such as\n"
    "                      ncat -l or nc -l that hang up at EOF)\n"
    "  -p, --progress      show bytes and rate on stderr (like pv); by itself\n"
    "                      only when stdin and stdout are not terminals and\n"
    "                      stderr is, after 2 s\n"
    "  -q SEC              one client: quit SEC seconds after EOF on stdin,\n"
    "                      even if the client has not closed (nc -q; 0 = at\n"
    "                      once)\n"
    "      --frame MODE    one client: len32: each stdin line is sent as one\n"
    "                      length-prefixed message and each message received is\n"
    "                      printed as one line (as clients built on libudsock\n"
    "                      speak); line: on seqpacket each line is one message.\n"
    "                      At most 1 MiB a message\n"
    "      --no-progress   never show progress (was -q before -q took SEC)\n"
    "      --fds           one client, unix: say on stderr what each batch of\n"
    "                      fds the client passes (SCM_RIGHTS) is; with\n"
    "                      -- PROGRAM, run PROGRAM once per batch with the fds\n"
    "                      as 3, 4, ... (UDSOCK_FDS and LISTEN_FDS say how\n"
    "                      many, LISTEN_PID is its pid), stdin /dev/null,\n"
    "                      stdout and stderr ours (its output may come between\n"
    "                      the client's bytes). It runs beside the copy; udsock\n"
    "                      exits once the copy and every PROGRAM have ended.\n"
    "                      Without --fds the kernel refuses fds at the client\n"
    "                      (its sendmsg fails: EPERM; Linux 6.16+), or, where\n"
    "                      it cannot, they are closed (said once)\n"
    "  -v, --verbose       report listening, each client arriving (its pid,\n"
    "                      uid and gid, or its TCP address) and leaving\n"
    "      --ready-fd N    write a newline to fd N and close it once listening\n"
    "                      (s6 notification-fd); READY=1 goes to $NOTIFY_SOCKET\n"
    "                      when it is set. A socket for ADDR passed by the\n"
    "                      service manager (LISTEN_FDS) is used, never removed\n"
    "  -h, --help          this text\n"
    "\n"
    "ADDR: /path, unix:PATH, @abstract, tcp:HOST:PORT, udp:HOST:PORT\n"
    "With port 0 the kernel picks a port; it is said on stderr:\n"
    "\"udsock: listening on tcp:127.0.0.1:PORT\" (also without -v).\n"
    "Exit status: 0 ok, 1 runtime failure, 2 usage error.\n";

#define READ_BUF (256 * 1024)
#define MSG_CHUNK (64 * 1024)          /* stdin -> one seqpacket message */
#define LINE_FLUSH (64 * 1024)         /* a partial line this long is written */
#define OUT_HIGH (4 * 1024 * 1024)     /* stop reading stdin above this backlog */
#define OUT_CAP (16 * 1024 * 1024)     /* a client queued this much is dropped */
#define DEF_MAX_CLIENTS 1000
#define DGRAM_BUF (4 * 1024 * 1024)
#define BROKER_CAP (1024 * 1024)       /* --broker: default --max-queue */
#define BROKER_CAP_MIN (512 * 1024)    /* the largest single write fits 2x */

static cli_svc g_svc;
static uds_listener g_l;       /* until handed to the acceptor */
static uds_acceptor *g_acc;
static const char *g_text;     /* ADDR as given */
static int g_type;

/* Removes the socket file (if still ours) and whatever listens on it. */
static void stop_listening(void)
{
    if (g_acc)
        uds_acceptor_close(g_acc);
    uds_listener_close(&g_l);
}

/* Writes to stdout or exits 1: with stdout gone there is nothing to do. */
static void out_write(const struct iovec *iov, int n)
{
    ssize_t r = uds_writev_all(STDOUT_FILENO, iov, n);
    if (r < 0) {
        cli_warn("write stdout: %s", uds_strerror((int)r));
        stop_listening();
        exit(CLI_FAIL);
    }
}

/* Makes the listener (already bound) the acceptor's. Exits on failure. */
static void acceptor_start(const uds_acceptor_opts *o, uds_accept_cb cb, void *arg)
{
    int r = uds_acceptor_new(&g_acc, g_svc.loop, o, cb, arg);
    if (r == 0 && (r = uds_acceptor_add(g_acc, &g_l)) < 0) {
        uds_acceptor_free(g_acc);
        g_acc = NULL;
    }
    if (r < 0) {
        uds_listener_close(&g_l);
        cli_die(CLI_FAIL, "listen: %s", uds_strerror(r));
    }
}

/* ---- stdin as a loop source ------------------------------------------- */

/*
 * stdin is read from the loop only while the caller wants it. epoll cannot
 * watch a regular file or /dev/null (EPERM); such a stdin is always
 * readable anyway, so it is read from a 0 ms timer instead, which lets the
 * rest of the loop run between reads.
 */
typedef struct stdin_src {
    void (*cb)(void *arg); /* stdin is readable: read it once */
    void *arg;
    int mode;              /* 0 not yet known, 1 watched, 2 timer */
    int on;
    int64_t timer;
} stdin_src;

static void stdin_fire(uds_loop *loop, uint64_t id, void *arg);

/* A watchable stdin (pipe, terminal, socket) is readable. */
static void stdin_watch_cb(uds_loop *loop, int fd, unsigned events, void *arg)
{
    (void)loop;
    (void)fd;
    (void)events;
    stdin_src *s = arg;
    s->cb(s->arg);
}

/* Turns reading stdin on or off. */
static void stdin_want(stdin_src *s, int on)
{
    if (s->mode != 2 && on != s->on) {
        int r = uds_loop_watch(g_svc.loop, STDIN_FILENO, on ? UDS_EV_READ : 0,
                               stdin_watch_cb, s);
        if (r == 0) {
            s->mode = 1;
        } else if (on && s->mode == 0 && r == -EPERM) {
            s->mode = 2;
        } else if (r < 0) {
            cli_warn("watch stdin: %s", uds_strerror(r));
            return;
        }
    }
    s->on = on;
    if (s->mode == 2 && on && !s->timer) {
        int64_t t = uds_loop_timer(g_svc.loop, 0, stdin_fire, s);
        s->timer = t > 0 ? t : 0;
    } else if (s->mode == 2 && !on && s->timer) {
        uds_loop_timer_cancel(g_svc.loop, (uint64_t)s->timer);
        s->timer = 0;
    }
}

/* An unwatchable stdin: one read per loop round while it is wanted. */
static void stdin_fire(uds_loop *loop, uint64_t id, void *arg)
{
    (void)loop;
    (void)id;
    stdin_src *s = arg;
    s->timer = 0;
    s->cb(s->arg);
    if (s->on && !s->timer)
        stdin_want(s, 1); /* next read next round */
}

/* ---- one client --------------------------------------------------------- */

static int g_one_fd = -1;
static char g_one_who[UDS_ADDR_STRLEN + 64]; /* the client, for -v */

/* The one client: keep it, stop listening, leave the loop for the copy. */
static void one_accepted(uds_acceptor *a, int fd, const uds_peer *p, void *arg)
{
    (void)arg;
    cli_peer_text(p, g_one_who, sizeof(g_one_who));
    /* One client only: stop listening now, so a second client gets a
       clear "no such file" instead of hanging in the backlog. */
    uds_acceptor_close(a);
    g_one_fd = fd;
    uds_loop_stop(g_svc.loop);
}

/* ---- one client: --fds [-- PROGRAM] ------------------------------------ */

static int g_take_fds;          /* --fds */
static char **g_prog;           /* -- PROGRAM [ARGS]: run per batch of fds */
static atomic_int g_running;    /* PROGRAMs started and not yet reaped */
static int g_draining;          /* the copy is over: leave the loop at 0 */

/*
 * Runs in the forked child (forked by the copy's receiving thread): stdin
 * /dev/null, the fds as 3, 4, ..., the signal state a program expects
 * (the loop blocks its signals; SIGPIPE is ignored process-wide). Never
 * returns.
 */
static void prog_child(const int *fds, size_t n)
{
    cli_child_signals();
    int nul = open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (nul < 0 || dup2(nul, STDIN_FILENO) < 0)
        _exit(126);
    cli_fds_child(fds, n);
    execvp(g_prog[0], g_prog);
    int e = errno;
    cli_warn("listen: exec %s: %s", g_prog[0], strerror(e));
    _exit(e == ENOENT ? 127 : 126);
}

/*
 * A batch of fds from the client (copy.c, in its receiving thread, after
 * the data they came with was written): said on stderr, then PROGRAM
 * started with them. Why not wait for it here: a program that lives on
 * (a server given a socket) must not stop the copy; it is reaped on the
 * loop (SIGCHLD). Our copies are closed by copy.c when this returns.
 */
static void one_fds(const int *fds, size_t n, void *arg)
{
    (void)arg;
    cli_fds_say(g_one_who, fds, n);
    if (!g_prog)
        return;
    atomic_fetch_add(&g_running, 1);
    pid_t pid = fork();
    if (pid == 0)
        prog_child(fds, n);
    if (pid < 0) {
        atomic_fetch_sub(&g_running, 1);
        cli_warn("listen: cannot run %s: fork: %s", g_prog[0], strerror(errno));
    }
}

/* SIGCHLD: reaps the PROGRAMs that have exited (only they are our
   children), says a failure; once the copy is over, the last one ends
   the wait. */
static void on_sigchld(uds_loop *loop, int signo, void *arg)
{
    (void)signo;
    (void)arg;
    int st;
    pid_t pid;
    while ((pid = waitpid(-1, &st, WNOHANG)) > 0) {
        atomic_fetch_sub(&g_running, 1);
        if (WIFEXITED(st) && WEXITSTATUS(st) != 0)
            cli_warn("listen: %s (pid %ld) exited with status %d", g_prog[0], (long)pid,
                     WEXITSTATUS(st));
        else if (WIFSIGNALED(st))
            cli_warn("listen: %s (pid %ld) killed by signal %d", g_prog[0], (long)pid,
                     WTERMSIG(st));
    }
    if (g_draining && atomic_load(&g_running) <= 0)
        uds_loop_stop(loop);
}

/* After the copy: PROGRAMs still running are waited for on the loop (a
   stop signal still ends it). */
static void prog_drain(int verbose)
{
    g_draining = 1;
    on_sigchld(g_svc.loop, SIGCHLD, NULL); /* those that are gone already */
    if (atomic_load(&g_running) <= 0)
        return;
    if (verbose)
        cli_warn("waiting for %d %s still running", atomic_load(&g_running), g_prog[0]);
    int r = uds_loop_run(g_svc.loop);
    if (r < 0)
        cli_warn("event loop: %s", uds_strerror(r));
    if (g_svc.stop_signo)
        cli_die_by_signal(g_svc.stop_signo);
}

/* A test seam's variable is set (not empty). */
static int env_set(const char *name)
{
    const char *v = getenv(name);
    return v && *v;
}

/* Waits on the loop for one client (or a stop signal), then copies. */
static int serve_one(int prog, int no_shutdown, int verbose, int idle_ms, int quit_ms,
                     int frame_mode)
{
    uds_acceptor_opts ao = {.flags = UDS_ACCEPT_BLOCKING, .log = cli_svc_log,
                            .log_arg = &g_svc};
    /* Fds without --fds: why refuse them at the sender where the kernel
       can (set on the listener: the accepted socket inherits it, also for
       what the client sends before the accept): the client learns it
       (EPERM), and the copy keeps splice, which cannot see them. Where it
       cannot (or UDSOCK_NO_PASSRIGHTS=1, the test seam for that path), the
       client is read with recvmsg, and they are closed and said once. */
    int unix_peer = g_l.addr.kind == UDS_ADDR_PATH || g_l.addr.kind == UDS_ADDR_ABSTRACT;
    int refused = 0;
    if (unix_peer && g_take_fds)
        uds_set_passrights(g_l.fd, 1); /* an inherited socket may have it off */
    else if (unix_peer && !env_set("UDSOCK_NO_PASSRIGHTS"))
        refused = uds_set_passrights(g_l.fd, 0) == 0;
    acceptor_start(&ao, one_accepted, NULL);
    int r = uds_loop_run(g_svc.loop);
    if (r < 0)
        cli_warn("event loop: %s", uds_strerror(r));
    uds_acceptor_free(g_acc); /* the socket file is removed here */
    g_acc = NULL;
    if (g_svc.stop_signo)
        cli_die_by_signal(g_svc.stop_signo);
    if (g_one_fd < 0)
        return CLI_FAIL;
    if (verbose)
        cli_warn("client connected on %s (%s)", g_text, g_one_who);
    int fd = g_one_fd, type = uds_sock_type(fd);
    if (type == UDS_STREAM)
        cli_big_buffers(fd);
    if (g_prog) {
        /* before the copy's threads exist, so they have it blocked too */
        signal(SIGCHLD, SIG_DFL);
        if ((r = uds_loop_signal(g_svc.loop, SIGCHLD, on_sigchld, NULL)) < 0)
            cli_die(CLI_FAIL, "listen: signals: %s", uds_strerror(r));
    }
    cli_copy cc = {.sock = fd, .type = type, .name = g_text, .in_fd = STDIN_FILENO,
                   .out_fd = STDOUT_FILENO, .svc = &g_svc, .progress = prog,
                   .no_shutdown = no_shutdown, .idle_ms = idle_ms, .quit_ms = quit_ms,
                   .frame = cli_frame_for("listen", frame_mode, type),
                   .verbose = verbose, .recv_fds = unix_peer && !refused,
                   .on_fds = g_take_fds ? one_fds : NULL};
    r = cli_copy_run(&cc);
    if (r < 0)
        cli_die_by_signal(-r);
    if (g_prog)
        prog_drain(verbose);
    if (verbose)
        cli_warn("client on %s closed", g_text);
    return r;
}

/* ---- several clients (-k) ------------------------------------------- */

typedef struct client {
    uds_conn *c;
    unsigned id;
    uid_t uid;         /* the acceptor's slot */
    int blocked;       /* queue above high water: counted in g_k.blocked */
    uint64_t last_rx;  /* loop ms of the last data received */
    int64_t idle_timer;
    char *line;        /* held partial line (stream) */
    size_t llen, lcap;
    unsigned mid;      /* --broker: the sender whose partial line this */
    int in_line;       /* client's stream ends with (in_line set) */
    char who[UDS_ADDR_STRLEN + 64];
    struct client *prev, *next;
} client;

/* A stdin chunk shared by every client's queue, freed by the last one. */
typedef struct chunk {
    unsigned refs;
    char data[];
} chunk;

static struct {
    client *head;
    unsigned n, next_id;
    unsigned blocked;    /* clients whose queue is above high water */
    unsigned idle_ms;
    int stdin_open;
    stdin_src in;
    char *buf;
    uint64_t sent, recvd;
    progress pg;
    int broker, chat;    /* --broker, --chat */
    size_t cap;          /* per-client output cap (--max-queue) */
    client me;           /* --broker: stdin as a sender (id 0), its held line */
} g_k;

/* stdin is read while someone gets it and nobody is backed up. */
static void k_stdin_update(void)
{
    stdin_want(&g_k.in, g_k.stdin_open && g_k.n > 0 && g_k.blocked == 0);
}

/* The client whose bytes stdout ends with, inside a line (a partial line
   written at its EOF, at 64 KiB or at a stop signal); &g_mid once that
   client has left; NULL when stdout is at the start of a line. */
static const void *g_mid;

/*
 * Writes client c's bytes to stdout. If another client left stdout inside
 * a line, that line is ended first: a client that sends "ADMIN: " and dies
 * must not put its text at the head of the next client's line. One client
 * alone still gets its bytes through exactly.
 */
static void bk_forward(client *from, const struct iovec *v, int n);

static void k_out(client *c, const struct iovec *v, int n)
{
    if (g_k.broker) {
        bk_forward(c, v, n);
        return;
    }
    if (g_mid && g_mid != c) {
        struct iovec nl = {"\n", 1};
        out_write(&nl, 1);
    }
    out_write(v, n);
    const struct iovec *last = &v[n - 1];
    g_mid = ((const char *)last->iov_base)[last->iov_len - 1] == '\n' ? NULL : c;
}

/* Writes the held partial line (EOF, 64 KiB, a stop signal). */
static void line_flush(client *c)
{
    if (c->llen) {
        struct iovec v = {c->line, c->llen};
        k_out(c, &v, 1);
        c->llen = 0;
    }
}

/* Appends n bytes to the held line; exits on out-of-memory. */
static void line_hold(client *c, const char *data, size_t n)
{
    if (n == 0)
        return;
    if (c->llen + n > c->lcap) {
        size_t nc = c->lcap ? c->lcap : 4096;
        while (nc < c->llen + n)
            nc *= 2;
        char *nb = realloc(c->line, nc);
        if (!nb)
            cli_die(CLI_FAIL, "out of memory");
        c->line = nb;
        c->lcap = nc;
    }
    memcpy(c->line + c->llen, data, n);
    c->llen += n;
}

/*
 * Bytes from client c: everything up to the last newline goes out in one
 * write together with what was held before; the rest is held until its
 * newline arrives (or it grows past LINE_FLUSH). Seqpacket: a message is
 * the unit, written whole.
 */
static void k_take(client *c, const void *data, size_t n)
{
    if (g_type != UDS_STREAM) {
        struct iovec v = {(void *)data, n};
        if (g_k.broker)
            bk_forward(c, &v, 1);
        else
            out_write(&v, 1);
        return;
    }
    const char *p = data;
    size_t left = n;
    const char *nl = memrchr(p, '\n', left);
    if (nl) {
        size_t head = (size_t)(nl - p) + 1;
        struct iovec v[2] = {{c->line, c->llen}, {(void *)p, head}};
        k_out(c, c->llen ? v : v + 1, c->llen ? 2 : 1);
        c->llen = 0;
        p += head;
        left -= head;
    }
    line_hold(c, p, left);
    if (c->llen >= LINE_FLUSH)
        line_flush(c);
}

/* Data from a client: to stdout (or, with --broker, the others), as above. */
static size_t k_on_data(uds_conn *conn, const void *data, size_t n, void *arg)
{
    (void)conn;
    client *c = arg;
    c->last_rx = uds_loop_now(g_svc.loop);
    g_k.recvd += n;
    k_take(c, data, n);
    return n;
}

/* The client caught up (queue below half of high water): stdin may go on. */
static void k_on_drain(uds_conn *conn, void *arg)
{
    (void)conn;
    client *c = arg;
    if (c->blocked) {
        c->blocked = 0;
        g_k.blocked--;
        k_stdin_update();
    }
}

/* ---- --broker: each client's lines to every other client -------------- */

static void chunk_unref(void *data, void *arg);

/*
 * Queues one copy of v (shared, refcounted) for every client but `from`.
 * A stream receiver left inside another sender's line (a partial line
 * written at 64 KiB or at that sender's EOF) gets a newline first, as
 * stdout does with -k. Never waits: a queue above high water only pauses
 * stdin; one over the cap is closed by uds_conn (-ENOBUFS, said in
 * on_close) and its stream never has a hole.
 */
static void bk_send(const client *from, const struct iovec *v, int n)
{
    size_t len = 0;
    for (int i = 0; i < n; i++)
        len += v[i].iov_len;
    if (len == 0 && g_type == UDS_STREAM)
        return;
    chunk *ch = malloc(sizeof(*ch) + len);
    if (!ch)
        cli_die(CLI_FAIL, "out of memory");
    size_t off = 0;
    for (int i = 0; i < n; i++) {
        memcpy(ch->data + off, v[i].iov_base, v[i].iov_len);
        off += v[i].iov_len;
    }
    unsigned id = from ? from->id : UINT32_MAX;
    int ends_line = len == 0 || ch->data[len - 1] == '\n';
    ch->refs = 1; /* ours, until every receiver has it */
    for (client *r = g_k.head; r; r = r->next) {
        if (r == from || uds_conn_closing(r->c))
            continue;
        if (g_type == UDS_STREAM && r->in_line && r->mid != id &&
            uds_conn_write(r->c, "\n", 1) < 0)
            continue;
        ch->refs++;
        int w = uds_conn_write_owned(r->c, ch->data, len, chunk_unref, ch);
        if (w < 0) {
            ch->refs--; /* not taken; -ENOBUFS: on_close reports the drop */
            continue;
        }
        r->in_line = g_type == UDS_STREAM && !ends_line;
        r->mid = id;
        if (w == 1 && !r->blocked) {
            r->blocked = 1;
            g_k.blocked++;
        }
    }
    chunk_unref(ch->data, ch);
}

/* --chat: one line (without its newline; a CR before it is dropped) as
   "<userN> " + the line escaped (uds_escape) + newline, to the others. */
static void chat_line(const client *from, const char *line, size_t len)
{
    if (len && line[len - 1] == '\r')
        len--;
    char pre[32];
    int pl = snprintf(pre, sizeof(pre), "<user%u> ", from->id);
    ssize_t el = uds_escape(line, len, NULL, 0);
    if (el < 0)
        return;
    char *out = malloc((size_t)pl + (size_t)el + 2);
    if (!out)
        cli_die(CLI_FAIL, "out of memory");
    memcpy(out, pre, (size_t)pl);
    uds_escape(line, len, out + pl, (size_t)el + 1);
    out[pl + el] = '\n';
    struct iovec v = {out, (size_t)pl + (size_t)el + 1};
    bk_send(from, &v, 1);
    free(out);
}

/* --chat: "<announce> TEXT" to every client but `except` (may be NULL). */
static void chat_announce(const client *except, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void chat_announce(const client *except, const char *fmt, ...)
{
    char msg[UDS_ADDR_STRLEN + 256];
    int l = snprintf(msg, sizeof(msg), "<announce> ");
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg + l, sizeof(msg) - (size_t)l - 1, fmt, ap);
    va_end(ap);
    strcat(msg, "\n");
    struct iovec v = {msg, strlen(msg)};
    bk_send(except, &v, 1);
}

/*
 * What k_take lets go (whole lines, a partial line at 64 KiB or EOF, a
 * packet) goes to the other clients: as it is, or with --chat one line at
 * a time (a partial one ends there; at most LINE_FLUSH bytes a line, so
 * each write fits the smallest --max-queue with room to spare).
 */
static void bk_forward(client *from, const struct iovec *v, int n)
{
    if (!g_k.chat) {
        bk_send(from, v, n);
        return;
    }
    size_t len = 0;
    for (int i = 0; i < n; i++)
        len += v[i].iov_len;
    char *flat = malloc(len + 1);
    if (!flat)
        cli_die(CLI_FAIL, "out of memory");
    size_t off = 0;
    for (int i = 0; i < n; i++) {
        memcpy(flat + off, v[i].iov_base, v[i].iov_len);
        off += v[i].iov_len;
    }
    const char *p = flat, *end = flat + len;
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t l = nl ? (size_t)(nl - p) : (size_t)(end - p);
        size_t piece = l > LINE_FLUSH ? LINE_FLUSH : l;
        chat_line(from, p, piece);
        p += piece;
        if (piece == l && nl)
            p++; /* the newline */
    }
    free(flat);
}

/* --chat: the newcomer learns its name and who is here; the others hear of it. */
static void chat_join(client *c)
{
    chat_announce(c, "<user%u> connected (%s)", c->id, c->who);
    size_t cap = 128, len;
    for (client *o = g_k.head; o; o = o->next)
        cap += 24;
    char *msg = malloc(cap);
    if (!msg)
        cli_die(CLI_FAIL, "out of memory");
    len = (size_t)snprintf(msg, cap, "<announce> you are <user%u>; ", c->id);
    int others = 0;
    for (client *o = g_k.head; o; o = o->next) {
        if (o == c || uds_conn_closing(o->c))
            continue;
        len += (size_t)snprintf(msg + len, cap - len, "%s<user%u>",
                                others++ ? ", " : "also here: ", o->id);
    }
    len += (size_t)snprintf(msg + len, cap - len, "%s\n", others ? "" : "nobody else is here");
    uds_conn_write(c->c, msg, len);
    free(msg);
}

/* The connection is gone (EOF, error, cap, idle): flush, report, free. */
static void k_on_close(uds_conn *conn, int err, void *arg)
{
    (void)conn;
    client *c = arg;
    line_flush(c);
    if (g_mid == c)
        g_mid = &g_mid; /* its line stays open; the next client ends it */
    if (err == -ENOBUFS)
        cli_svc_warn(&g_svc, "client #%u (%s) dropped: more than %zu bytes queued for it "
                     "(it does not read)", c->id, c->who, g_k.cap);
    else if (err < 0 && err != UDS_ECLOSED)
        cli_svc_warn(&g_svc, "client #%u: %s", c->id, uds_strerror(err));
    cli_svc_info(&g_svc, "client #%u left", c->id);
    if (g_k.chat)
        chat_announce(c, "<user%u> left%s", c->id,
                      err == -ENOBUFS ? " (dropped: it did not read)" : "");
    if (c->idle_timer)
        uds_loop_timer_cancel(g_svc.loop, (uint64_t)c->idle_timer);
    if (c->blocked)
        g_k.blocked--;
    if (c->prev)
        c->prev->next = c->next;
    else
        g_k.head = c->next;
    if (c->next)
        c->next->prev = c->prev;
    g_k.n--;
    uds_acceptor_release(g_acc, c->uid);
    free(c->line);
    free(c);
    k_stdin_update();
}

static const uds_conn_cbs k_cbs = {
    .on_data = k_on_data,
    .on_drain = k_on_drain,
    .on_close = k_on_close,
};

/* Closes a client that has sent nothing for idle_ms (else waits the rest). */
static void k_idle_fire(uds_loop *loop, uint64_t id, void *arg)
{
    (void)id;
    client *c = arg;
    c->idle_timer = 0;
    uint64_t quiet = uds_loop_now(loop) - c->last_rx;
    if (quiet >= g_k.idle_ms) {
        cli_svc_info(&g_svc, "client #%u sent nothing for %.3g s: closing it", c->id,
                     g_k.idle_ms / 1000.0);
        uds_conn_close(c->c);
        return;
    }
    int64_t t = uds_loop_timer(loop, g_k.idle_ms - quiet, k_idle_fire, c);
    c->idle_timer = t > 0 ? t : 0;
}

/* An admitted client: a connection, its idle timer, its -v line. */
static void k_accepted(uds_acceptor *a, int fd, const uds_peer *p, void *arg)
{
    (void)arg;
    client *c = calloc(1, sizeof(*c));
    uds_conn_opts co = {.high_water = OUT_HIGH, .out_cap = g_k.cap};
    if (co.high_water > g_k.cap / 2)
        co.high_water = g_k.cap / 2; /* --max-queue: stdin pauses first */
    int r = c ? uds_conn_new(&c->c, g_svc.loop, fd, &co, &k_cbs, c) : -ENOMEM;
    if (r < 0) {
        cli_svc_warn(&g_svc, "client dropped: %s", uds_strerror(r));
        close(fd);
        uds_acceptor_release(a, p->cred.uid);
        free(c);
        return;
    }
    c->id = ++g_k.next_id;
    c->uid = p->cred.uid;
    c->last_rx = uds_loop_now(g_svc.loop);
    if (g_k.idle_ms) {
        int64_t t = uds_loop_timer(g_svc.loop, g_k.idle_ms, k_idle_fire, c);
        c->idle_timer = t > 0 ? t : 0;
    }
    c->next = g_k.head;
    if (g_k.head)
        g_k.head->prev = c;
    g_k.head = c;
    g_k.n++;
    cli_svc_info(&g_svc, "client #%u connected on %s (%s)", c->id, g_text,
                 cli_peer_text(p, c->who, sizeof(c->who)));
    if (g_k.chat)
        chat_join(c);
    k_stdin_update();
}

/* A queue is done with a shared stdin chunk (sent, or the client gone). */
static void chunk_unref(void *data, void *arg)
{
    (void)data;
    chunk *ch = arg;
    if (--ch->refs == 0)
        free(ch);
}

/* stdin is readable: one read, queued for every client (one copy, shared). */
static void k_stdin_read(void *arg)
{
    (void)arg;
    size_t cap = g_type == UDS_STREAM ? READ_BUF : MSG_CHUNK;
    ssize_t r = uds_read_some(STDIN_FILENO, g_k.buf, cap);
    if (r == -EAGAIN)
        return;
    if (r <= 0) {
        if (r < 0)
            cli_warn("read stdin: %s", uds_strerror((int)r));
        g_k.stdin_open = 0; /* clients stay connected; nothing more to send */
        if (g_k.broker)
            line_flush(&g_k.me);
        k_stdin_update();
        return;
    }
    g_k.sent += (uint64_t)r;
    if (g_k.broker) { /* stdin is one more sender (<user0>), lines whole */
        k_take(&g_k.me, g_k.buf, (size_t)r);
        k_stdin_update();
        return;
    }
    chunk *ch = malloc(sizeof(*ch) + (size_t)r);
    if (!ch)
        cli_die(CLI_FAIL, "out of memory");
    memcpy(ch->data, g_k.buf, (size_t)r);
    ch->refs = 1; /* ours, until every client has it */
    for (client *c = g_k.head; c; c = c->next) {
        if (uds_conn_closing(c->c))
            continue;
        ch->refs++;
        int w = uds_conn_write_owned(c->c, ch->data, (size_t)r, chunk_unref, ch);
        if (w < 0)
            ch->refs--; /* not taken; -ENOBUFS: on_close reports the drop */
        if (w == 1 && !c->blocked) {
            c->blocked = 1;
            g_k.blocked++;
        }
    }
    chunk_unref(ch->data, ch);
    k_stdin_update();
}

/* Progress, from a loop timer (progress.c decides whether to print). */
static void k_tick(uds_loop *loop, uint64_t id, void *arg)
{
    (void)id;
    (void)arg;
    progress_tick(&g_k.pg, g_k.sent, g_k.recvd);
    uds_loop_timer(loop, PROGRESS_TICK_MS, k_tick, NULL);
}

/* SIGINT/SIGTERM/SIGHUP: held partial lines out, socket file away, die. */
static void k_stop(cli_svc *s, int signo, void *arg)
{
    (void)s;
    (void)arg;
    progress_done(&g_k.pg, g_k.sent, g_k.recvd);
    for (client *c = g_k.head; c; c = c->next)
        line_flush(c);
    stop_listening();
    cli_die_by_signal(signo);
}

/* -k: the acceptor feeds connections; everything else happens in callbacks. */
static int serve_many(int prog, unsigned max_clients, unsigned max_per_uid, unsigned idle_ms)
{
    g_svc.on_stop = k_stop;
    g_k.idle_ms = idle_ms;
    g_k.stdin_open = 1;
    g_k.in.cb = k_stdin_read;
    g_k.buf = malloc(READ_BUF);
    if (!g_k.buf)
        cli_die(CLI_FAIL, "out of memory");
    uds_acceptor_opts ao = {.max_conns = max_clients, .max_conns_per_uid = max_per_uid,
                            .log = cli_svc_log, .log_arg = &g_svc};
    acceptor_start(&ao, k_accepted, NULL);
    progress_init(&g_k.pg, prog);
    if (g_k.pg.enabled)
        uds_loop_timer(g_svc.loop, PROGRESS_TICK_MS, k_tick, NULL);
    int r = uds_loop_run(g_svc.loop); /* ends only by signal or a failure */
    cli_warn("event loop: %s", uds_strerror(r < 0 ? r : -EIO));
    stop_listening();
    return CLI_FAIL;
}

/* ---- datagrams ---------------------------------------------------------- */

static struct {
    char *buf;
    uds_addr last; /* the most recent sender with an address */
    int stdin_open;
    stdin_src in;
    cli_dreply dr; /* stdin's datagrams: dropped when they cannot go now */
} g_d;

/* stdin is read once there is a sender to answer, until its EOF. */
static void d_stdin_update(void)
{
    stdin_want(&g_d.in, g_d.stdin_open && g_d.last.kind != UDS_ADDR_NONE);
}

/* One datagram: to stdout whole; a named sender becomes the one answered. */
static void d_on_sock(uds_loop *loop, int fd, unsigned events, void *arg)
{
    (void)loop;
    (void)events;
    (void)arg;
    uds_addr from;
    ssize_t n = uds_recvfrom(fd, g_d.buf, DGRAM_BUF, &from, MSG_DONTWAIT);
    if (n == -EAGAIN)
        return;
    if (n < 0) {
        cli_warn("%s", cli_errtext("receive on", g_text, (int)n));
        return;
    }
    if (n > DGRAM_BUF) {
        cli_warn("datagram of %zd bytes truncated to %d", n, DGRAM_BUF);
        n = DGRAM_BUF;
    }
    struct iovec v = {g_d.buf, (size_t)n};
    out_write(&v, 1);
    if (from.kind != UDS_ADDR_UNNAMED && from.kind != UDS_ADDR_NONE) {
        g_d.last = from;
        d_stdin_update();
    }
}

/* One stdin chunk, one datagram to the last named sender. */
static void d_stdin_read(void *arg)
{
    (void)arg;
    ssize_t n = uds_read_some(STDIN_FILENO, g_d.buf, MSG_CHUNK);
    if (n == -EAGAIN)
        return;
    if (n <= 0) {
        if (n < 0)
            cli_warn("read stdin: %s", uds_strerror((int)n));
        g_d.stdin_open = 0;
        d_stdin_update();
        return;
    }
    /* never waits: a sender that does not read must not stop the others */
    cli_dreply_send(&g_d.dr, g_l.fd, g_d.buf, (size_t)n, &g_d.last);
}

/* SIGINT/SIGTERM/SIGHUP: remove the socket file, then die of the signal. */
static void d_stop(cli_svc *s, int signo, void *arg)
{
    (void)s;
    (void)arg;
    cli_dreply_done(&g_d.dr);
    uds_listener_close(&g_l);
    cli_die_by_signal(signo);
}

/* --type dgram: the socket and stdin watched on the loop until a signal. */
static int serve_dgram(void)
{
    g_svc.on_stop = d_stop;
    g_d.buf = malloc(DGRAM_BUF);
    if (!g_d.buf)
        cli_die(CLI_FAIL, "out of memory");
    g_d.stdin_open = 1;
    g_d.in.cb = d_stdin_read;
    cli_dgram_prepare(g_l.fd);
    cli_dreply_init(&g_d.dr, &g_svc);
    int r = uds_loop_watch(g_svc.loop, g_l.fd, UDS_EV_READ, d_on_sock, NULL);
    if (r == 0)
        r = uds_loop_run(g_svc.loop); /* ends only by signal or a failure */
    cli_warn("event loop: %s", uds_strerror(r < 0 ? r : -EIO));
    uds_listener_close(&g_l);
    return CLI_FAIL;
}

/* A count option of -k: 1..1000000. */
static unsigned opt_clients(const char *opt, const char *text)
{
    long n = cli_opt_count("listen", opt, text);
    if (n > 1000000)
        cli_usage_error("listen", "bad %s '%s': at most 1000000", opt, text);
    return (unsigned)n;
}

enum { OPT_NOPROG = 256, OPT_READY, OPT_FRAME, OPT_FDS }; /* long options without a short form */
enum { OPT_BROKER = 300, OPT_CHAT, OPT_MAXQ };             /* -k --broker's */

/* Options, safe bind with the stop signals already on the loop, a shape. */
int cmd_listen(int argc, char **argv)
{
    static const struct option lo[] = {
        {"keep", no_argument, NULL, 'k'},     {"type", required_argument, NULL, 't'},
        {"mode", required_argument, NULL, 'm'}, {"owner", required_argument, NULL, 'o'},
        {"group", required_argument, NULL, 'g'}, {"progress", no_argument, NULL, 'p'},
        {"no-shutdown", no_argument, NULL, 'N'},
        {"max-clients", required_argument, NULL, 'c'},
        {"max-per-uid", required_argument, NULL, 'C'},
        {"idle-timeout", required_argument, NULL, 'i'},
        {"no-progress", no_argument, NULL, OPT_NOPROG},
        {"quiet", no_argument, NULL, OPT_NOPROG}, /* the old name: still works */
        {"verbose", no_argument, NULL, 'v'},
        {"ready-fd", required_argument, NULL, OPT_READY},
        {"frame", required_argument, NULL, OPT_FRAME},
        {"broker", no_argument, NULL, OPT_BROKER}, {"chat", no_argument, NULL, OPT_CHAT},
        {"max-queue", required_argument, NULL, OPT_MAXQ},
        {"fds", no_argument, NULL, OPT_FDS},
        {"help", no_argument, NULL, 'h'},     {NULL, 0, NULL, 0}};
    uds_listen_opts o = {0};
    o.owner = (uid_t)-1;
    o.group = (gid_t)-1;
    int keep = 0, prog = PROGRESS_AUTO, no_shutdown = 0, verbose = 0, c;
    int k_only = 0; /* an option of -k was given */
    unsigned max_clients = DEF_MAX_CLIENTS, max_per_uid = 0, idle_ms = 0;
    int quit_ms = -1, ready_fd = -1, frame_mode = 0;
    cli_std_fds_open();
    /* "--" ends the options and ADDR; PROGRAM [ARGS] follow it */
    for (int i = 1; i < argc; i++)
        if (!strcmp(argv[i], "--")) {
            g_prog = argv + i + 1;
            argc = i;
            break;
        }
    opterr = 0;
    while ((c = getopt_long(argc, argv, "kt:m:o:g:pq:Nc:C:i:vh", lo, NULL)) != -1) {
        switch (c) {
        case 'k':
            keep = 1;
            break;
        case 't':
            o.type = cli_opt_type("listen", optarg);
            break;
        case 'm':
            o.mode = cli_opt_mode("listen", optarg);
            break;
        case 'o':
            o.owner = cli_opt_user("listen", optarg);
            o.set_owner = 1;
            break;
        case 'g':
            o.group = cli_opt_group("listen", optarg);
            o.set_owner = 1;
            break;
        case 'p':
            prog = PROGRESS_ON;
            break;
        case 'N':
            no_shutdown = 1;
            break;
        case 'c':
            max_clients = opt_clients("--max-clients", optarg);
            k_only = 1;
            break;
        case 'C':
            max_per_uid = opt_clients("--max-per-uid", optarg);
            k_only = 1;
            break;
        case 'i':
            idle_ms = (unsigned)cli_opt_seconds_ms("listen", "--idle-timeout", optarg);
            break;
        case 'q':
            quit_ms = cli_opt_seconds_ms("listen", "-q", optarg);
            break;
        case OPT_NOPROG:
            prog = PROGRESS_OFF;
            break;
        case OPT_READY:
            ready_fd = cli_opt_ready_fd("listen", optarg);
            break;
        case OPT_FRAME:
            frame_mode = cli_opt_frame("listen", optarg);
            break;
        case OPT_CHAT: /* --chat is --broker with names */
        case OPT_BROKER:
            g_k.chat |= c == OPT_CHAT;
            g_k.broker = keep = 1; /* as ncat: --broker serves many clients */
            break;
        case OPT_MAXQ:
            g_k.cap = (size_t)cli_opt_size("listen", "--max-queue", optarg, (uint64_t)1 << 40);
            if (g_k.cap < BROKER_CAP_MIN)
                cli_usage_error("listen", "bad --max-queue '%s': at least 512k (the largest "
                                "single write must fit)", optarg);
            break;
        case OPT_FDS:
            g_take_fds = 1;
            break;
        case 'v':
            verbose = 1;
            break;
        case 'h':
            fputs(listen_help, stdout);
            return CLI_OK;
        default:
            cli_bad_option("listen", argv);
        }
    }
    if (optind != argc - 1)
        cli_usage_error("listen", optind >= argc ? "missing ADDR" : "too many arguments");
    g_text = argv[optind];
    uds_addr a;
    cli_parse_addr(&a, g_text);
    if (o.type == UDS_DGRAM && a.kind == UDS_ADDR_TCP)
        cli_usage_error("listen", "--type dgram does not go with tcp:");
    if ((o.mode || o.set_owner) && a.kind != UDS_ADDR_PATH)
        cli_usage_error("listen", "--mode/--owner/--group need a filesystem path");
    if (k_only && !keep)
        cli_usage_error("listen", "--max-clients and --max-per-uid go with -k");
    if (g_k.cap && !g_k.broker)
        cli_usage_error("listen", "--max-queue goes with --broker (plain -k pauses stdin "
                        "for a slow client instead)");
    if (!g_k.cap)
        g_k.cap = g_k.broker ? BROKER_CAP : OUT_CAP;
    if (g_k.broker && (o.type == UDS_DGRAM || a.kind == UDS_ADDR_UDP))
        cli_usage_error("listen", "--broker and --chat need connections; datagrams have "
                        "none (ncat refuses UDP too)");
    if (frame_mode && (keep || o.type == UDS_DGRAM || a.kind == UDS_ADDR_UDP))
        cli_usage_error("listen", "--frame is for one client on a stream or seqpacket "
                        "socket (not with -k or datagrams yet)");
    if (quit_ms >= 0 && keep)
        cli_usage_error("listen", "-q SEC is for one client; with -k stdin goes to every "
                        "client and the server stays (use --no-progress for the old -q)");
    /* datagrams: every sender is always heard (what nc -l -k -u asks for),
       so -k is accepted; the limits of -k count and close connections,
       which datagrams do not have */
    int dgram = o.type == UDS_DGRAM || a.kind == UDS_ADDR_UDP;
    if (quit_ms >= 0 && dgram)
        cli_usage_error("listen", "-q SEC needs a connection; datagrams have none "
                        "(use --no-progress for the old -q)");
    if ((k_only || idle_ms) && dgram)
        cli_usage_error("listen", "--max-clients, --max-per-uid and --idle-timeout need "
                        "connections; datagrams have none (--type dgram hears every "
                        "sender anyway)");
    if (g_prog && !*g_prog)
        cli_usage_error("listen", "missing PROGRAM after '--'");
    if (g_prog && !g_take_fds)
        cli_usage_error("listen", "-- PROGRAM gets the fds a client passes: it goes with --fds");
    if (g_take_fds && (a.kind == UDS_ADDR_TCP || a.kind == UDS_ADDR_UDP))
        cli_usage_error("listen", "--fds needs a unix address (fds do not cross a network)");
    if (g_take_fds && (keep || dgram))
        cli_usage_error("listen", "--fds is for one client on a stream or seqpacket socket "
                        "(not with -k or datagrams)");
    if (max_per_uid && (a.kind == UDS_ADDR_TCP || a.kind == UDS_ADDR_UDP))
        cli_usage_error("listen", "--max-per-uid needs a unix address (a TCP peer has no uid)");
    if (cli_parse_only) /* fuzz seam (cli.h): options parsed, no I/O yet */
        return CLI_OK;
    if (keep) {
        /* one fd per client: take the hard limit; the acceptor copes with
           running out anyway */
        struct rlimit rl;
        if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
            rl.rlim_cur = rl.rlim_max;
            setrlimit(RLIMIT_NOFILE, &rl);
        }
    }
    /* The stop signals go to the loop before the file exists, so no signal
       can kill us between bind and the point where we can remove it again. */
    cli_svc_init(&g_svc, "listen", NULL, NULL);
    g_svc.verbose = verbose;
    int inherited = 0;
    int r = cli_listen(&g_l, &a, &o, &inherited);
    cli_svc_interrupted(r);
    if (r < 0)
        cli_die(CLI_FAIL, "%s", cli_errtext("listen", g_text, r));
    g_type = g_l.type;
    /* the address the kernel gave (port 0: the port it picked), which a
       script needs: said also without -v then */
    if (verbose || cli_port0(&a)) {
        char buf[UDS_ADDR_STRLEN];
        cli_warn("listening on %s (%s%s)", cli_addr_text(&g_l.addr, buf, sizeof(buf)),
                 uds_type_name(g_l.type),
                 inherited ? ", inherited from the service manager: never removed" : "");
    }
    cli_ready("listen", ready_fd);
    if (g_l.type == UDS_DGRAM) {
        if (keep)
            cli_svc_info(&g_svc, "-k: datagrams from every sender are heard (always so "
                         "with --type dgram)");
        r = serve_dgram();
    }
    else if (keep)
        r = serve_many(prog, max_clients, max_per_uid, idle_ms);
    else
        r = serve_one(prog, no_shutdown, verbose, (int)idle_ms, quit_ms, frame_mode);
    uds_listener_close(&g_l);
    return r;
}
