/*
 * cmd_listen.c — `udsock listen ADDR`: the server side of nc -lU / socat
 * UNIX-LISTEN, with the core's safe bind and cleanup on exit.
 *
 * Three shapes:
 *   - one client (default): accept, stop listening (the socket file is
 *     removed), then the same two-way copy as `connect` (copy.c, splice);
 *   - -k: any number of clients at once, one poll loop. Each client's
 *     input reaches stdout in whole lines (held per client until a newline,
 *     64 KiB, or its EOF), so lines of different clients never mix; stdin
 *     is broadcast to every client connected when it is read;
 *   - --type dgram: print each datagram; stdin goes to the most recent
 *     sender that has an address.
 * SIGINT/SIGTERM/SIGHUP arrive through a signalfd so the socket file can be
 * removed (uds_listener_close: only if it is still ours) before dying.
 */
#include "cli.h"
#include "copy.h"
#include "opts.h"
#include "progress.h"

#include <errno.h>
#include <getopt.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>

static const char listen_help[] =
    "usage: udsock listen [OPTIONS] ADDR\n"
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
    "                      connected client\n"
    "  -t, --type TYPE     stream (default), seqpacket or dgram (print each\n"
    "                      datagram; stdin goes to the last named sender)\n"
    "  -m, --mode MODE     permissions of the socket file, e.g. 0660\n"
    "  -o, --owner USER    owner of the socket file (set before listen)\n"
    "  -g, --group GROUP   group of the socket file (set before listen)\n"
    "  -N, --no-shutdown   do not half-close at EOF on stdin (for peers such as\n"
    "                      ncat -l or nc -l that hang up at EOF)\n"
    "  -p, --progress      show bytes and rate on stderr (like pv)\n"
    "  -q, --quiet         never show progress\n"
    "  -v, --verbose       report listening, clients arriving and leaving\n"
    "  -h, --help          this text\n"
    "\n"
    "ADDR: /path, unix:PATH, @abstract, tcp:HOST:PORT, udp:HOST:PORT\n"
    "Exit status: 0 ok, 1 runtime failure, 2 usage error.\n";

#define READ_BUF (256 * 1024)
#define LINE_FLUSH (64 * 1024)           /* a partial line this long is written */
#define OUT_HIGH (4 * 1024 * 1024)       /* stop reading stdin above this backlog */
#define MAX_CLIENTS 1000
#define DGRAM_BUF (4 * 1024 * 1024)

static uds_listener g_l;
static int g_verbose;
static int g_no_shutdown;

/* Stops by signal: remove our socket file first, then die of it. */
static void __attribute__((noreturn)) stop_by_signal(int sig)
{
    uds_listener_close(&g_l);
    cli_die_by_signal(sig);
}

/* Writes to stdout or exits 1: with stdout gone there is nothing to do. */
static void out_write(const struct iovec *iov, int n)
{
    ssize_t r = uds_writev_all(STDOUT_FILENO, iov, n);
    if (r < 0) {
        cli_warn("write stdout: %s", uds_strerror((int)r));
        uds_listener_close(&g_l);
        exit(CLI_FAIL);
    }
}

/* ---- one client ------------------------------------------------------- */

static int serve_one(const char *text, int sigfd, int prog)
{
    for (;;) {
        struct pollfd p[2] = {{sigfd, POLLIN, 0}, {g_l.fd, POLLIN, 0}};
        if (poll(p, 2, -1) < 0) {
            if (errno == EINTR)
                continue;
            cli_warn("poll: %s", strerror(errno));
            return CLI_FAIL;
        }
        if (p[0].revents & POLLIN) {
            int sig = cli_signal_read(sigfd);
            if (sig)
                stop_by_signal(sig);
        }
        if (!(p[1].revents & POLLIN))
            continue;
        int fd = uds_accept(g_l.fd, NULL, 0);
        if (fd == -EAGAIN || fd == -ECONNABORTED || fd == -EINTR)
            continue;
        if (fd < 0) {
            cli_warn("%s", cli_errtext("accept", text, fd));
            return CLI_FAIL;
        }
        /* One client only: stop listening now, so a second client gets a
           clear "no such file" instead of hanging in the backlog. */
        uds_listener_close(&g_l);
        if (g_verbose)
            cli_warn("client connected on %s", text);
        int type = uds_sock_type(fd);
        if (type == UDS_STREAM)
            cli_big_buffers(fd);
        cli_copy cc = {.sock = fd, .type = type, .name = text, .in_fd = STDIN_FILENO,
                       .out_fd = STDOUT_FILENO, .sigfd = sigfd, .progress = prog,
                       .no_shutdown = g_no_shutdown};
        int r = cli_copy_run(&cc);
        if (r < 0)
            cli_die_by_signal(-r);
        if (g_verbose)
            cli_warn("client on %s closed", text);
        return r;
    }
}

/* ---- several clients (-k) ------------------------------------------- */

typedef struct client {
    int fd;
    unsigned id;
    char *line; /* held partial line (stream) */
    size_t llen, lcap;
    char *out;  /* queued stdin data for this client */
    size_t olen, ooff, ocap;
} client;

static client *g_cl[MAX_CLIENTS];
static int g_ncl;
static int g_type;

/* Appends n bytes to a growable buffer; exits on out-of-memory. */
static void buf_add(char **b, size_t *len, size_t *cap, const void *data, size_t n)
{
    if (n == 0)
        return;
    if (*len + n > *cap) {
        size_t nc = *cap ? *cap : 4096;
        while (nc < *len + n)
            nc *= 2;
        char *nb = realloc(*b, nc);
        if (!nb)
            cli_die(CLI_FAIL, "out of memory");
        *b = nb;
        *cap = nc;
    }
    memcpy(*b + *len, data, n);
    *len += n;
}

static void line_flush(client *c)
{
    if (c->llen) {
        struct iovec v = {c->line, c->llen};
        out_write(&v, 1);
        c->llen = 0;
    }
}

/*
 * Delivers n bytes read from client c to stdout: everything up to the last
 * newline goes out in one write together with what was held before; the
 * rest is held until its newline arrives (or it grows past LINE_FLUSH).
 */
static void client_input(client *c, const char *data, size_t n)
{
    if (g_type != UDS_STREAM) { /* seqpacket: a message is the unit */
        struct iovec v = {(void *)data, n};
        out_write(&v, 1);
        return;
    }
    const char *nl = memrchr(data, '\n', n);
    if (nl) {
        size_t head = (size_t)(nl - data) + 1;
        struct iovec v[2] = {{c->line, c->llen}, {(void *)data, head}};
        out_write(c->llen ? v : v + 1, c->llen ? 2 : 1);
        c->llen = 0;
        data += head;
        n -= head;
    }
    buf_add(&c->line, &c->llen, &c->lcap, data, n);
    if (c->llen >= LINE_FLUSH)
        line_flush(c);
}

static void client_close(int i)
{
    client *c = g_cl[i];
    line_flush(c);
    if (g_verbose)
        cli_warn("client #%u left", c->id);
    close(c->fd);
    free(c->line);
    free(c->out);
    free(c);
    g_cl[i] = g_cl[--g_ncl];
}

/*
 * Sends what is queued for c without blocking. Stream: bytes; seqpacket:
 * records of [u32 length][message] so each stdin chunk stays one message.
 * Returns 0 (sent or waiting for POLLOUT) or -errno (drop the client).
 */
static int client_flush(client *c)
{
    while (c->ooff < c->olen) {
        if (g_type == UDS_STREAM) {
            int r = uds_write_nb(c->fd, c->out, c->olen, &c->ooff);
            if (r == -EAGAIN)
                return 0;
            if (r < 0)
                return r;
        } else {
            uint32_t len;
            memcpy(&len, c->out + c->ooff, 4);
            ssize_t r = uds_send(c->fd, c->out + c->ooff + 4, len);
            if (r == -EAGAIN)
                return 0;
            if (r < 0)
                return (int)r;
            c->ooff += 4 + (size_t)len;
        }
    }
    c->olen = c->ooff = 0;
    return 0;
}

static int serve_many(const char *text, int sigfd, int prog)
{
    static char buf[READ_BUF];
    struct pollfd p[MAX_CLIENTS + 3];
    unsigned next_id = 1;
    int stdin_open = 1;
    uint64_t sent = 0, recvd = 0;
    progress pg;
    progress_init(&pg, prog);
    int show = prog == PROGRESS_ON || (prog == PROGRESS_AUTO && pg.tty);
    for (;;) {
        size_t backlog = 0;
        for (int i = 0; i < g_ncl; i++)
            if (g_cl[i]->olen - g_cl[i]->ooff > backlog)
                backlog = g_cl[i]->olen - g_cl[i]->ooff;
        p[0] = (struct pollfd){sigfd, POLLIN, 0};
        p[1] = (struct pollfd){g_ncl < MAX_CLIENTS ? g_l.fd : -1, POLLIN, 0};
        /* stdin is read only while someone is there to receive it */
        p[2] = (struct pollfd){stdin_open && g_ncl && backlog < OUT_HIGH ? STDIN_FILENO : -1,
                               POLLIN, 0};
        for (int i = 0; i < g_ncl; i++)
            p[3 + i] = (struct pollfd){g_cl[i]->fd,
                                       (short)(POLLIN | (g_cl[i]->olen ? POLLOUT : 0)), 0};
        int nfds = 3 + g_ncl;
        int n = poll(p, (nfds_t)nfds, show ? PROGRESS_TICK_MS : -1);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            cli_warn("poll: %s", strerror(errno));
            return CLI_FAIL;
        }
        if (show)
            progress_tick(&pg, sent, recvd);
        if (p[0].revents & POLLIN) {
            int sig = cli_signal_read(sigfd);
            if (sig) {
                progress_done(&pg, sent, recvd);
                for (int i = g_ncl - 1; i >= 0; i--)
                    client_close(i); /* flush held partial lines */
                stop_by_signal(sig);
            }
        }
        /* clients, from the end so client_close's swap-with-last is safe */
        for (int i = g_ncl - 1; i >= 0; i--) {
            short re = p[3 + i].revents;
            client *c = g_cl[i];
            if (re & POLLOUT) {
                int r = client_flush(c);
                if (r < 0) {
                    cli_warn("send to client #%u: %s", c->id, uds_strerror(r));
                    client_close(i);
                    continue;
                }
            }
            if (re & (POLLIN | POLLHUP | POLLERR)) {
                ssize_t r = uds_read_some(c->fd, buf, sizeof(buf));
                if (r == -EAGAIN)
                    continue;
                if (r < 0)
                    cli_warn("receive from client #%u: %s", c->id, uds_strerror((int)r));
                if (r <= 0) {
                    client_close(i);
                    continue;
                }
                recvd += (uint64_t)r;
                client_input(c, buf, (size_t)r);
            }
        }
        if (p[2].revents & (POLLIN | POLLHUP | POLLERR)) {
            size_t cap = g_type == UDS_STREAM ? sizeof(buf) : 65536;
            ssize_t r = read(STDIN_FILENO, buf, cap);
            if (r < 0 && errno != EINTR && errno != EAGAIN) {
                cli_warn("read stdin: %s", strerror(errno));
                stdin_open = 0;
            } else if (r == 0) {
                stdin_open = 0; /* clients stay connected; nothing more to send */
            } else if (r > 0) {
                sent += (uint64_t)r;
                for (int i = g_ncl - 1; i >= 0; i--) {
                    client *c = g_cl[i];
                    if (g_type != UDS_STREAM) {
                        uint32_t len = (uint32_t)r;
                        buf_add(&c->out, &c->olen, &c->ocap, &len, 4);
                    }
                    buf_add(&c->out, &c->olen, &c->ocap, buf, (size_t)r);
                    int e = client_flush(c);
                    if (e < 0) {
                        cli_warn("send to client #%u: %s", c->id, uds_strerror(e));
                        client_close(i);
                    }
                }
            }
        }
        if (p[1].fd >= 0 && (p[1].revents & POLLIN)) {
            int fd = uds_accept(g_l.fd, NULL, UDS_NONBLOCK);
            if (fd == -EMFILE || fd == -ENFILE) {
                cli_warn("%s", cli_errtext("accept", text, fd));
                usleep(100000); /* do not spin while out of descriptors */
            } else if (fd >= 0) {
                client *c = calloc(1, sizeof(*c));
                if (!c)
                    cli_die(CLI_FAIL, "out of memory");
                c->fd = fd;
                c->id = next_id++;
                g_cl[g_ncl++] = c;
                if (g_verbose)
                    cli_warn("client #%u connected on %s", c->id, text);
            }
        }
    }
}

/* ---- datagrams ---------------------------------------------------------- */

static int serve_dgram(const char *text, int sigfd)
{
    char *buf = malloc(DGRAM_BUF);
    if (!buf)
        cli_die(CLI_FAIL, "out of memory");
    uds_addr last = {0};
    int stdin_open = 1;
    for (;;) {
        struct pollfd p[3] = {{sigfd, POLLIN, 0},
                              {g_l.fd, POLLIN, 0},
                              {stdin_open && last.kind ? STDIN_FILENO : -1, POLLIN, 0}};
        if (poll(p, 3, -1) < 0) {
            if (errno == EINTR)
                continue;
            cli_warn("poll: %s", strerror(errno));
            free(buf);
            return CLI_FAIL;
        }
        if (p[0].revents & POLLIN) {
            int sig = cli_signal_read(sigfd);
            if (sig) {
                free(buf);
                stop_by_signal(sig);
            }
        }
        if (p[1].revents & POLLIN) {
            uds_addr from;
            ssize_t n = uds_recvfrom(g_l.fd, buf, DGRAM_BUF, &from, MSG_DONTWAIT);
            if (n >= 0) {
                if (n > DGRAM_BUF) {
                    cli_warn("datagram of %zd bytes truncated to %d", n, DGRAM_BUF);
                    n = DGRAM_BUF;
                }
                struct iovec v = {buf, (size_t)n};
                out_write(&v, 1);
                if (from.kind != UDS_ADDR_UNNAMED && from.kind != UDS_ADDR_NONE)
                    last = from;
            } else if (n != -EAGAIN) {
                cli_warn("%s", cli_errtext("receive on", text, (int)n));
            }
        }
        if (p[2].revents & (POLLIN | POLLHUP | POLLERR)) {
            ssize_t n = read(STDIN_FILENO, buf, 65536);
            if (n <= 0) {
                if (n < 0)
                    cli_warn("read stdin: %s", strerror(errno));
                stdin_open = 0;
            } else {
                ssize_t r = uds_sendto(g_l.fd, buf, (size_t)n, &last);
                if (r < 0) {
                    char a[UDS_ADDR_STRLEN];
                    uds_addr_format(&last, a, sizeof(a));
                    cli_warn("send to %s: %s", a, uds_strerror((int)r));
                }
            }
        }
    }
}

int cmd_listen(int argc, char **argv)
{
    static const struct option lo[] = {
        {"keep", no_argument, NULL, 'k'},     {"type", required_argument, NULL, 't'},
        {"mode", required_argument, NULL, 'm'}, {"owner", required_argument, NULL, 'o'},
        {"group", required_argument, NULL, 'g'}, {"progress", no_argument, NULL, 'p'},
        {"no-shutdown", no_argument, NULL, 'N'},
        {"quiet", no_argument, NULL, 'q'},    {"verbose", no_argument, NULL, 'v'},
        {"help", no_argument, NULL, 'h'},     {NULL, 0, NULL, 0}};
    uds_listen_opts o = {0};
    o.owner = (uid_t)-1;
    o.group = (gid_t)-1;
    int keep = 0, prog = PROGRESS_AUTO, c;
    cli_std_fds_open();
    opterr = 0;
    while ((c = getopt_long(argc, argv, "kt:m:o:g:pqNvh", lo, NULL)) != -1) {
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
            g_no_shutdown = 1;
            break;
        case 'q':
            prog = PROGRESS_OFF;
            break;
        case 'v':
            g_verbose = 1;
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
    const char *text = argv[optind];
    uds_addr a;
    cli_parse_addr(&a, text);
    if (o.type == UDS_DGRAM && a.kind == UDS_ADDR_TCP)
        cli_usage_error("listen", "--type dgram does not go with tcp:");
    if ((o.mode || o.set_owner) && a.kind != UDS_ADDR_PATH)
        cli_usage_error("listen", "--mode/--owner/--group need a filesystem path");
    /* Signals are blocked before the file exists, so no signal can kill us
       between bind and the point where we can remove it again. */
    int sigfd = cli_signals_block();
    int r = uds_listen(&g_l, &a, &o);
    if (r < 0)
        cli_die(CLI_FAIL, "%s", cli_errtext("listen", text, r));
    g_type = g_l.type;
    if (g_verbose) {
        char buf[UDS_ADDR_STRLEN];
        uds_addr_format(&g_l.addr, buf, sizeof(buf));
        cli_warn("listening on %s (%s)", buf, uds_type_name(g_l.type));
    }
    if (g_l.type == UDS_DGRAM)
        r = serve_dgram(text, sigfd);
    else if (keep)
        r = serve_many(text, sigfd, prog);
    else
        r = serve_one(text, sigfd, prog);
    uds_listener_close(&g_l);
    return r;
}
