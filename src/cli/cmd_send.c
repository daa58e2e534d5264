/*
 * cmd_send.c — `udsock send ADDR [MSG...]`: datagrams to a receiver, one
 * per argument, per stdin line, or all of stdin (--whole), optionally
 * waiting for a reply to each.
 */
#include "cli.h"
#include "fds.h"
#include "opts.h"

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

static const char send_help[] =
    "usage: udsock send [OPTIONS] ADDR [MSG...]\n"
    "\n"
    "Send datagrams to ADDR: each MSG argument is one datagram; without\n"
    "arguments each line of stdin is one (without its newline), or all of\n"
    "stdin is one with --whole. The socket has an address of its own (an\n"
    "automatic abstract name), so the receiver can answer.\n"
    "\n"
    "  -r, --reply           wait for one reply per datagram and print it\n"
    "  -T, --timeout SECONDS how long to wait for each reply, and for room in\n"
    "                        a receiver's full queue to send (default 5)\n"
    "      --whole           send all of stdin as a single datagram\n"
    "  -w, --wait SECONDS    retry until the receiver appears (0 = forever)\n"
    "      --raw             print replies as they are (no newline added)\n"
    "      --fd N|FILE       pass a file descriptor with the first datagram\n"
    "                        (SCM_RIGHTS): N is one of ours (e.g. --fd 0 for\n"
    "                        stdin), FILE is opened read-only; repeat for more\n"
    "                        (unix addresses only; the receiver must take fds:\n"
    "                        udsock recv --fds)\n"
    "  -h, --help            this text\n"
    "\n"
    "ADDR: /path, unix:PATH, @abstract, udp:HOST:PORT\n"
    "Exit status: 0 ok, 1 runtime failure (including a missing reply),\n"
    "2 usage error.\n";

#define REPLY_BUF (4 * 1024 * 1024)

static const char *g_name;
static int g_fd, g_reply, g_timeout_ms = 5000, g_raw;
static char *g_rbuf;
static int g_fds[UDS_MAX_FDS];
static size_t g_nfds; /* --fd: sent with the first datagram, then 0 */
static uds_loop *g_loop; /* waits for room to send, and for replies */
static int g_ready;      /* 1 a reply is there, -1 the time is up */

/* A reply is there to read. */
static void on_reply_ready(uds_loop *loop, int fd, unsigned events, void *arg)
{
    (void)loop;
    (void)fd;
    (void)events;
    (void)arg;
    g_ready = 1;
}

/* --timeout passed without a reply. */
static void on_reply_timeout(uds_loop *loop, uint64_t id, void *arg)
{
    (void)loop;
    (void)id;
    (void)arg;
    if (!g_ready)
        g_ready = -1;
}

/* Waits until the socket is readable (UDS_EV_READ) or writable
   (UDS_EV_WRITE) or timeout_ms has passed: 1 or 0. */
static int wait_fd(unsigned ev, int timeout_ms)
{
    g_ready = 0;
    int r = uds_loop_watch(g_loop, g_fd, ev, on_reply_ready, NULL);
    int64_t t = r < 0 ? r : uds_loop_timer(g_loop, (uint64_t)timeout_ms, on_reply_timeout, NULL);
    if (t < 0)
        cli_die(CLI_FAIL, "%s: %s", g_name, uds_strerror((int)t));
    while (!g_ready && (r = uds_loop_run_once(g_loop, -1)) == 0)
        ;
    uds_loop_timer_cancel(g_loop, (uint64_t)t);
    uds_loop_watch(g_loop, g_fd, 0, on_reply_ready, NULL);
    if (r < 0)
        cli_die(CLI_FAIL, "event loop: %s", uds_strerror(r));
    return g_ready == 1;
}

/* The monotonic clock in ms (the loop's own clock is only that of its last
   round, which may be long ago when stdin was slow). */
static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/*
 * Sends one datagram and, with --reply, prints the answer. 0 or CLI_FAIL.
 * The socket is non-blocking: a receiver whose queue stays full (it does
 * not read, or a flood keeps it full) is waited for at most --timeout, as
 * the reply is, instead of for ever.
 */
static int send_one(const char *data, size_t len)
{
    ssize_t r;
    uint64_t t0 = now_ms();
    uds_msg m = {.buf = (void *)data, .len = len, .fds = g_fds, .nfds = g_nfds};
    if (g_nfds && len == 0) { /* fds need a byte of data on some sockets */
        cli_warn("%s: --fd needs a datagram that is not empty", g_name);
        return CLI_FAIL;
    }
    while ((r = g_nfds ? uds_sendmsg(g_fd, &m) : uds_send(g_fd, data, len)) == -EAGAIN) {
        uint64_t spent = now_ms() - t0;
        if (spent >= (uint64_t)g_timeout_ms ||
            !wait_fd(UDS_EV_WRITE, g_timeout_ms - (int)spent)) {
            cli_warn("%s: could not send within %.3g s: the receiver's queue is full "
                     "(it does not read)", g_name, g_timeout_ms / 1000.0);
            return CLI_FAIL;
        }
    }
    if (r < 0) {
        cli_warn("%s", cli_errtext("send to", g_name, (int)r));
        return CLI_FAIL;
    }
    g_nfds = 0; /* the kernel has its own copies now */
    if (!g_reply)
        return 0;
    if (!wait_fd(UDS_EV_READ, g_timeout_ms)) {
        cli_warn("%s: no reply within %.3g s", g_name, g_timeout_ms / 1000.0);
        return CLI_FAIL;
    }
    r = uds_recvfrom(g_fd, g_rbuf, REPLY_BUF, NULL, 0);
    if (r < 0) {
        cli_warn("%s", cli_errtext("receive from", g_name, (int)r));
        return CLI_FAIL;
    }
    if (r > REPLY_BUF)
        r = REPLY_BUF;
    struct iovec v[2] = {{g_rbuf, (size_t)r}, {"\n", 1}};
    int nl = !g_raw && (r == 0 || g_rbuf[r - 1] != '\n');
    if (uds_writev_all(STDOUT_FILENO, v, nl ? 2 : 1) < 0) {
        cli_warn("write stdout: %s", strerror(errno));
        return CLI_FAIL;
    }
    return 0;
}

int cmd_send(int argc, char **argv)
{
    static const struct option lo[] = {
        {"reply", no_argument, NULL, 'r'}, {"timeout", required_argument, NULL, 'T'},
        {"whole", no_argument, NULL, 'W'}, {"wait", required_argument, NULL, 'w'},
        {"raw", no_argument, NULL, 'R'},   {"help", no_argument, NULL, 'h'},
        {"fd", required_argument, NULL, 'F'},
        {NULL, 0, NULL, 0}};
    uds_connect_opts co = {0};
    co.type = UDS_DGRAM;
    int whole = 0, c;
    const char *fd_args[UDS_MAX_FDS];
    cli_std_fds_open();
    opterr = 0;
    while ((c = getopt_long(argc, argv, "+rT:w:h", lo, NULL)) != -1) {
        switch (c) {
        case 'r':
            g_reply = 1;
            break;
        case 'T':
            g_timeout_ms = cli_opt_seconds_ms("send", "--timeout", optarg);
            break;
        case 'W':
            whole = 1;
            break;
        case 'w':
            co.wait = 1;
            co.timeout_ms = cli_opt_seconds_ms("send", "--wait", optarg);
            break;
        case 'R':
            g_raw = 1;
            break;
        case 'F':
            cli_fds_arg("send", fd_args, &g_nfds, optarg);
            break;
        case 'h':
            fputs(send_help, stdout);
            return CLI_OK;
        default:
            cli_bad_option("send", argv);
        }
    }
    if (optind >= argc)
        cli_usage_error("send", "missing ADDR");
    g_name = argv[optind++];
    if (whole && optind < argc)
        cli_usage_error("send", "--whole reads stdin; do not give messages too");
    uds_addr a;
    cli_parse_addr(&a, g_name);
    if (a.kind == UDS_ADDR_TCP)
        cli_usage_error("send", "datagrams need a unix, abstract or udp: address");
    if (g_nfds && a.kind == UDS_ADDR_UDP)
        cli_usage_error("send", "--fd needs a unix address (fds do not cross a network)");
    if (cli_parse_only) /* fuzz seam (cli.h): options parsed, no I/O yet */
        return CLI_OK;
    cli_fds_open("send", fd_args, g_nfds, g_fds);
    g_fd = uds_connect(&a, &co);
    if (g_fd < 0)
        cli_die(CLI_FAIL, "%s", cli_errtext("connect", g_name, g_fd));
    if (g_reply && !(g_rbuf = malloc(REPLY_BUF)))
        cli_die(CLI_FAIL, "out of memory");
    if ((c = uds_loop_new(&g_loop)) < 0 || (c = uds_set_nonblock(g_fd, 1)) < 0)
        cli_die(CLI_FAIL, "send: %s", uds_strerror(c));
    int status = CLI_OK;
    if (optind < argc) {
        for (; optind < argc && status == CLI_OK; optind++)
            status = send_one(argv[optind], strlen(argv[optind]));
    } else if (whole) {
        char *all = NULL;
        size_t len = 0, cap = 0;
        for (;;) {
            if (len == cap) {
                cap = cap ? cap * 2 : 65536;
                char *nb = realloc(all, cap);
                if (!nb)
                    cli_die(CLI_FAIL, "out of memory");
                all = nb;
            }
            ssize_t n = uds_read_some(STDIN_FILENO, all + len, cap - len);
            if (n < 0)
                cli_die(CLI_FAIL, "read stdin: %s", uds_strerror((int)n));
            if (n == 0)
                break;
            len += (size_t)n;
        }
        status = send_one(all, len);
        free(all);
    } else {
        char *line = NULL;
        size_t cap = 0;
        ssize_t n;
        while (status == CLI_OK && (n = getline(&line, &cap, stdin)) >= 0) {
            if (n > 0 && line[n - 1] == '\n')
                n--;
            status = send_one(line, (size_t)n);
        }
        free(line);
    }
    free(g_rbuf);
    uds_loop_free(g_loop);
    close(g_fd);
    return status;
}
