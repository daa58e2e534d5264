/*
 * cmd_connect.c — `udsock connect ADDR`: the client side of nc -U / socat.
 * stdin goes to the socket, the socket to stdout; stdin EOF half-closes.
 * Also the probe (-z) and the type detection of a unix address given
 * without -t (socat's UNIX: habit).
 */
#include "cli.h"
#include "copy.h"
#include "fds.h"
#include "opts.h"
#include "progress.h"
#include "service.h"

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* The bound on a connect when neither --connect-timeout nor -w is given. */
#define DEF_CONNECT_TIMEOUT_MS 30000

static const char connect_help[] =
    "usage: udsock connect [OPTIONS] ADDR\n"
    "\n"
    "Connect to ADDR; copy stdin to the socket and the socket to stdout.\n"
    "At EOF on stdin the sending side is shut down (shutdown SHUT_WR) and\n"
    "udsock keeps printing until the server closes the connection (or -q).\n"
    "\n"
    "  -t, --type TYPE     stream, seqpacket or dgram; without it a unix\n"
    "                      address is tried as stream, then seqpacket, then\n"
    "                      dgram (the server's socket decides; -v says which)\n"
    "  -w, --wait SECONDS  retry until the server appears (0 = forever)\n"
    "      --connect-timeout SEC  give up a connect (full backlog, a TCP\n"
    "                      host that does not answer) after SEC seconds\n"
    "                      (default 30; 0 = never; with -w: the -w bound)\n"
    "  -i, --idle-timeout SEC  close after SEC seconds without data either\n"
    "                      way (ncat -i; default: never)\n"
    "  -q SEC              quit SEC seconds after EOF on stdin, even if the\n"
    "                      server has not closed (nc -q; 0 = at once;\n"
    "                      default: wait for the server)\n"
    "  -z, --probe         connect and close without sending anything: exit 0\n"
    "                      when a server is there, 1 with the reason otherwise\n"
    "                      (udp: only the address is checked)\n"
    "  -N, --no-shutdown   do not half-close at EOF on stdin (for peers such as\n"
    "                      ncat -l or nc -l that hang up at EOF)\n"
    "  -p, --progress      show bytes and rate on stderr (like pv); by itself\n"
    "                      only when stdin and stdout are not terminals and\n"
    "                      stderr is, after 2 s\n"
    "      --frame MODE    len32: each stdin line is sent as one length-prefixed\n"
    "                      message (4-byte big-endian length, as servers built\n"
    "                      on libudsock read them) and each message received is\n"
    "                      printed as one line; line: on seqpacket/dgram each\n"
    "                      line is one message (on a stream lines are bytes\n"
    "                      anyway). At most 1 MiB a message\n"
    "      --fd N|FILE     pass a file descriptor with the first data sent\n"
    "                      (SCM_RIGHTS): N is one of ours (e.g. --fd 0 for\n"
    "                      stdin), FILE is opened read-only; repeat for more\n"
    "                      (unix addresses only). Fds go with data: if stdin\n"
    "                      ends before its first byte nothing is passed and\n"
    "                      the exit status is 1 (no byte is made up)\n"
    "      --no-progress   never show progress (was -q before -q took SEC)\n"
    "  -v, --verbose       say what was connected (type, and the peer: pid,\n"
    "                      uid, gid of a unix server, address of a TCP one)\n"
    "                      and why the copy ended\n"
    "  -h, --help          this text\n"
    "\n"
    "ADDR: /path, unix:PATH, @abstract, tcp:HOST:PORT, udp:HOST:PORT\n"
    "Exit status: 0 ok, 1 runtime failure, 2 usage error. A reset by the\n"
    "server after all of stdin was sent (a handler that does not read) is 0.\n";

enum { OPT_NOPROG = 256, OPT_CTIMEOUT, OPT_FRAME, OPT_FD };

/* A unix address: the kernel tells a socket's type by refusing others. */
static int is_unix(const uds_addr *a)
{
    return a->kind == UDS_ADDR_PATH || a->kind == UDS_ADDR_ABSTRACT;
}

/*
 * Why try the types in turn: a unix socket's type is not visible from its
 * file, and connect() with the wrong type fails at once with EPROTOTYPE
 * without the server seeing anything (socat's UNIX: does the same). Stream
 * first (by far the most common), then seqpacket, then dgram. *detected is
 * set when a type other than the first was taken.
 */
static int connect_detect(const uds_addr *a, uds_connect_opts *co, int *detected)
{
    static const int order[] = {UDS_STREAM, UDS_SEQPACKET, UDS_DGRAM};
    *detected = 0;
    if (co->type || !is_unix(a))
        return uds_connect(a, co);
    uint64_t start = progress_now_ns();
    int total = co->timeout_ms, fd = -EPROTOTYPE;
    for (size_t i = 0; i < sizeof(order) / sizeof(order[0]) && fd == -EPROTOTYPE; i++) {
        uds_connect_opts o = *co;
        o.type = order[i];
        if (total > 0) { /* the bound is for the whole connect */
            uint64_t spent = (progress_now_ns() - start) / 1000000u;
            o.timeout_ms = spent >= (uint64_t)total ? 1 : total - (int)spent;
        }
        fd = uds_connect(a, &o);
        *detected = i > 0;
    }
    return fd;
}

/* -v: "connected to ADDR (TYPE): server pid P uid U gid G" or its address. */
static void say_connected(int fd, const char *text, int type, int detected)
{
    char esc[UDS_ADDR_STRLEN + 64], peer[UDS_ADDR_STRLEN + 64] = "";
    cli_esc(text, strlen(text), esc, sizeof(esc));
    struct sockaddr_storage ss;
    socklen_t sl = sizeof(ss);
    uds_cred cr;
    uds_addr pa;
    if (getpeername(fd, (struct sockaddr *)&ss, &sl) == 0 && ss.ss_family != AF_UNIX) {
        if (uds_addr_from_sockaddr(&pa, (struct sockaddr *)&ss, sl, type) == 0) {
            memcpy(peer, ": peer ", 7);
            cli_addr_text(&pa, peer + 7, sizeof(peer) - 7);
        }
    } else if (type != UDS_DGRAM && uds_peer_cred(fd, &cr) == 0) {
        snprintf(peer, sizeof(peer), ": server pid %ld uid %u gid %u", (long)cr.pid,
                 (unsigned)cr.uid, (unsigned)cr.gid);
    } else if (type == UDS_DGRAM && ss.ss_family == AF_UNIX) {
        snprintf(peer, sizeof(peer), ": no peer credentials (the kernel keeps none for datagram sockets)");
    }
    cli_warn("connected to %s (%s%s)%s", esc, uds_type_name(type),
             detected ? ", detected: the server's socket is not stream" : "", peer);
}

int cmd_connect(int argc, char **argv)
{
    static const struct option lo[] = {
        {"type", required_argument, NULL, 't'},
        {"wait", required_argument, NULL, 'w'},
        {"connect-timeout", required_argument, NULL, OPT_CTIMEOUT},
        {"frame", required_argument, NULL, OPT_FRAME},
        {"fd", required_argument, NULL, OPT_FD},
        {"idle-timeout", required_argument, NULL, 'i'},
        {"probe", no_argument, NULL, 'z'},
        {"progress", no_argument, NULL, 'p'},
        {"no-progress", no_argument, NULL, OPT_NOPROG},
        {"quiet", no_argument, NULL, OPT_NOPROG}, /* the old name: still works */
        {"no-shutdown", no_argument, NULL, 'N'},
        {"verbose", no_argument, NULL, 'v'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0}};
    uds_connect_opts co = {0};
    int prog = PROGRESS_AUTO, c, no_shutdown = 0, verbose = 0, probe = 0;
    int ctimeout = -1, idle_ms = 0, quit_ms = -1, frame_mode = 0;
    const char *fd_args[UDS_MAX_FDS];
    int fds[UDS_MAX_FDS];
    size_t nfds = 0;
    cli_std_fds_open();
    opterr = 0;
    while ((c = getopt_long(argc, argv, "t:w:i:q:zpNvh", lo, NULL)) != -1) {
        switch (c) {
        case 't':
            co.type = cli_opt_type("connect", optarg);
            break;
        case 'w':
            co.wait = 1;
            co.timeout_ms = cli_opt_seconds_ms("connect", "--wait", optarg);
            break;
        case OPT_CTIMEOUT:
            ctimeout = cli_opt_seconds_ms("connect", "--connect-timeout", optarg);
            break;
        case 'i':
            idle_ms = cli_opt_seconds_ms("connect", "--idle-timeout", optarg);
            if (!idle_ms)
                cli_usage_error("connect", "bad --idle-timeout '%s': at least 0.001 s", optarg);
            break;
        case 'q':
            quit_ms = cli_opt_seconds_ms("connect", "-q", optarg);
            break;
        case 'z':
            probe = 1;
            break;
        case 'p':
            prog = PROGRESS_ON;
            break;
        case OPT_FRAME:
            frame_mode = cli_opt_frame("connect", optarg);
            break;
        case OPT_FD:
            cli_fds_arg("connect", fd_args, &nfds, optarg);
            break;
        case OPT_NOPROG:
            prog = PROGRESS_OFF;
            break;
        case 'N':
            no_shutdown = 1;
            break;
        case 'v':
            verbose = 1;
            break;
        case 'h':
            fputs(connect_help, stdout);
            return CLI_OK;
        default:
            cli_bad_option("connect", argv);
        }
    }
    if (optind != argc - 1)
        cli_usage_error("connect", optind >= argc ? "missing ADDR" : "too many arguments");
    const char *text = argv[optind];
    uds_addr a;
    cli_parse_addr(&a, text);
    if (co.type == UDS_DGRAM && a.kind == UDS_ADDR_TCP)
        cli_usage_error("connect", "--type dgram does not go with tcp:");
    if (nfds && !is_unix(&a))
        cli_usage_error("connect", "--fd needs a unix address (fds do not cross a network)");
    if (nfds && probe)
        cli_usage_error("connect", "--fd passes fds with data; -z sends nothing");
    if (cli_parse_only) /* fuzz seam (cli.h): options parsed, no I/O yet */
        return CLI_OK;
    /* the bound: -w's when given (0 there = forever), tightened by an
       explicit --connect-timeout; else --connect-timeout or the default */
    cli_fds_open("connect", fd_args, nfds, fds);
    if (!co.wait)
        co.timeout_ms = ctimeout >= 0 ? ctimeout : DEF_CONNECT_TIMEOUT_MS;
    else if (ctimeout > 0 && (co.timeout_ms == 0 || ctimeout < co.timeout_ms))
        co.timeout_ms = ctimeout;
    int detected, fd = connect_detect(&a, &co, &detected);
    if (fd < 0) {
        if (fd == -ETIMEDOUT && co.timeout_ms > 0)
            cli_die(CLI_FAIL, "%s (gave up after %.3g s; see --connect-timeout)",
                    cli_errtext("connect", text, fd), co.timeout_ms / 1000.0);
        cli_die(CLI_FAIL, "%s", cli_errtext("connect", text, fd));
    }
    int type = uds_sock_type(fd);
    if (verbose)
        say_connected(fd, text, type, detected);
    if (probe) {
        if (a.kind == UDS_ADDR_UDP)
            cli_warn("connect -z %s: a UDP port cannot be probed without sending; only "
                     "the address was checked", text);
        close(fd);
        return CLI_OK;
    }
    int frame = cli_frame_for("connect", frame_mode, type);
    if (type == UDS_STREAM)
        cli_big_buffers(fd);
    cli_svc svc;
    cli_svc_init(&svc, "connect", NULL, NULL);
    cli_copy cc = {.sock = fd, .type = type, .name = text, .in_fd = STDIN_FILENO,
                   .out_fd = STDOUT_FILENO, .svc = &svc, .progress = prog,
                   .no_shutdown = no_shutdown, .idle_ms = idle_ms, .quit_ms = quit_ms,
                   .verbose = verbose, .frame = frame, .send_fds = fds,
                   .send_nfds = nfds};
    int r = cli_copy_run(&cc);
    if (r < 0)
        cli_die_by_signal(-r);
    cli_svc_free(&svc);
    return r;
}
