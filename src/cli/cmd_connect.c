/*
 * cmd_connect.c — `udsock connect ADDR`: the client side of nc -U / socat.
 * stdin goes to the socket, the socket to stdout; stdin EOF half-closes.
 */
#include "cli.h"
#include "copy.h"
#include "opts.h"
#include "progress.h"

#include <getopt.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static const char connect_help[] =
    "usage: udsock connect [OPTIONS] ADDR\n"
    "\n"
    "Connect to ADDR; copy stdin to the socket and the socket to stdout.\n"
    "At EOF on stdin the sending side is shut down (shutdown SHUT_WR) and\n"
    "udsock keeps printing until the server closes the connection.\n"
    "\n"
    "  -t, --type TYPE     stream (default), seqpacket or dgram\n"
    "  -w, --wait SECONDS  retry until the server appears (0 = forever)\n"
    "  -N, --no-shutdown   do not half-close at EOF on stdin (for peers such as\n"
    "                      ncat -l or nc -l that hang up at EOF)\n"
    "  -p, --progress      show bytes and rate on stderr (like pv)\n"
    "  -q, --quiet         never show progress (not even on a terminal)\n"
    "  -h, --help          this text\n"
    "\n"
    "ADDR: /path, unix:PATH, @abstract, tcp:HOST:PORT, udp:HOST:PORT\n"
    "Exit status: 0 ok, 1 runtime failure, 2 usage error.\n";

static int g_no_shutdown;

int cmd_connect(int argc, char **argv)
{
    static const struct option lo[] = {
        {"type", required_argument, NULL, 't'}, {"wait", required_argument, NULL, 'w'},
        {"progress", no_argument, NULL, 'p'},
        {"no-shutdown", no_argument, NULL, 'N'}, {"quiet", no_argument, NULL, 'q'},
        {"help", no_argument, NULL, 'h'},       {NULL, 0, NULL, 0}};
    uds_connect_opts co = {0};
    int prog = PROGRESS_AUTO, c;
    cli_std_fds_open();
    opterr = 0;
    while ((c = getopt_long(argc, argv, "t:w:pqNh", lo, NULL)) != -1) {
        switch (c) {
        case 't':
            co.type = cli_opt_type("connect", optarg);
            break;
        case 'w':
            co.wait = 1;
            co.timeout_ms = cli_opt_seconds_ms("connect", "--wait", optarg);
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
    if (cli_parse_only) /* fuzz seam (cli.h): options parsed, no I/O yet */
        return CLI_OK;
    int fd = uds_connect(&a, &co);
    if (fd < 0)
        cli_die(CLI_FAIL, "%s", cli_errtext("connect", text, fd));
    int type = uds_sock_type(fd);
    if (type == UDS_STREAM)
        cli_big_buffers(fd);
    cli_svc svc;
    cli_svc_init(&svc, "connect", NULL, NULL);
    cli_copy cc = {.sock = fd, .type = type, .name = text, .in_fd = STDIN_FILENO,
                   .out_fd = STDOUT_FILENO, .svc = &svc, .progress = prog,
                   .no_shutdown = g_no_shutdown};
    int r = cli_copy_run(&cc);
    if (r < 0)
        cli_die_by_signal(-r);
    cli_svc_free(&svc);
    return r;
}
