/*
 * cmd_recv.c — `udsock recv ADDR`: bind a datagram socket (safe bind) and
 * print each datagram, optionally with its sender and credentials, and
 * optionally answer it (--echo, --reply CMD). Senders that never bound an
 * address (logger -u) are printed but never answered: there is nowhere to
 * send an answer to.
 */
#include "cli.h"
#include "opts.h"
#include "internal.h" /* UDS__RETRY */

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

static const char recv_help[] =
    "usage: udsock recv [OPTIONS] ADDR\n"
    "\n"
    "Bind a datagram socket at ADDR and print each datagram received, with a\n"
    "newline added if it has none. An existing socket file is replaced only\n"
    "if nobody answers on it; the file is removed on exit.\n"
    "\n"
    "  -f, --from            prefix each datagram with the sender's address\n"
    "                        ((unnamed) for senders without one, e.g. logger -u)\n"
    "  -c, --cred            prefix with the sender's pid=, uid=, gid=\n"
    "                        (SO_PASSCRED; unix sockets only)\n"
    "  -e, --echo            send each datagram back to its sender\n"
    "  -R, --reply CMD       run 'sh -c CMD' with the datagram on stdin and send\n"
    "                        its output back (empty output: no reply). CMD sees\n"
    "                        UDSOCK_PEER and, with --cred, UDSOCK_PEER_PID/UID/GID\n"
    "  -n, --count N         exit after N datagrams\n"
    "      --raw             print datagrams exactly (no newline added)\n"
    "  -m, --mode MODE       permissions of the socket file, e.g. 0660\n"
    "  -o, --owner USER      owner of the socket file\n"
    "  -g, --group GROUP     group of the socket file\n"
    "  -v, --verbose         report the bound address and skipped replies\n"
    "  -h, --help            this text\n"
    "\n"
    "ADDR: /path, unix:PATH, @abstract, udp:HOST:PORT\n"
    "Exit status: 0 ok, 1 runtime failure, 2 usage error.\n";

#define DGRAM_BUF (4 * 1024 * 1024)

static uds_listener g_l;

/* Prints "PREFIX: data\n" in one write, so lines of a pipe reader stay whole. */
static void print_dgram(const char *prefix, const char *data, size_t len, int raw)
{
    struct iovec v[4];
    int n = 0;
    if (*prefix) {
        v[n++] = (struct iovec){(void *)prefix, strlen(prefix)};
        v[n++] = (struct iovec){": ", 2};
    }
    v[n++] = (struct iovec){(void *)data, len};
    if (!raw && (len == 0 || data[len - 1] != '\n'))
        v[n++] = (struct iovec){"\n", 1};
    ssize_t r = uds_writev_all(STDOUT_FILENO, v, n);
    if (r < 0) {
        cli_warn("write stdout: %s", uds_strerror((int)r));
        uds_listener_close(&g_l);
        exit(CLI_FAIL);
    }
}

/*
 * Runs CMD with the datagram as stdin (a memfd: no deadlock however much
 * either side writes) and returns its stdout in *out (malloc'ed) or -1.
 */
static ssize_t run_reply(const char *cmd, const char *data, size_t len, const char *peer,
                         const uds_msg *m, char **out)
{
    int in = memfd_create("udsock-datagram", MFD_CLOEXEC);
    int p[2];
    if (in < 0 || uds_write_all(in, data, len) < 0 || lseek(in, 0, SEEK_SET) < 0 ||
        pipe2(p, O_CLOEXEC) < 0) {
        cli_warn("--reply: %s", strerror(errno));
        if (in >= 0)
            close(in);
        return -1;
    }
    pid_t pid = fork();
    if (pid == 0) {
        sigset_t none;
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
        signal(SIGPIPE, SIG_DFL);
        dup2(in, STDIN_FILENO);
        dup2(p[1], STDOUT_FILENO);
        setenv("UDSOCK_PEER", peer, 1);
        if (m->has_cred) {
            char b[32];
            snprintf(b, sizeof(b), "%d", (int)m->cred.pid);
            setenv("UDSOCK_PEER_PID", b, 1);
            snprintf(b, sizeof(b), "%u", (unsigned)m->cred.uid);
            setenv("UDSOCK_PEER_UID", b, 1);
            snprintf(b, sizeof(b), "%u", (unsigned)m->cred.gid);
            setenv("UDSOCK_PEER_GID", b, 1);
        }
        execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
        _exit(127);
    }
    close(in);
    close(p[1]);
    if (pid < 0) {
        cli_warn("--reply: fork: %s", strerror(errno));
        close(p[0]);
        return -1;
    }
    size_t olen = 0, cap = 65536;
    char *o = malloc(cap);
    for (;;) {
        if (!o)
            break;
        if (olen == cap) {
            if (cap >= DGRAM_BUF)
                break; /* more than a datagram can carry: the rest is dropped */
            char *nb = realloc(o, cap * 2);
            if (!nb)
                break;
            o = nb;
            cap *= 2;
        }
        ssize_t n = uds_read_some(p[0], o + olen, cap - olen);
        if (n <= 0)
            break;
        olen += (size_t)n;
    }
    close(p[0]);
    int st;
    if (UDS__RETRY(waitpid(pid, &st, 0)) < 0)
        st = 0;
    if (WIFEXITED(st) && WEXITSTATUS(st) != 0)
        cli_warn("--reply: '%s' exited with status %d", cmd, WEXITSTATUS(st));
    else if (WIFSIGNALED(st))
        cli_warn("--reply: '%s' killed by signal %d", cmd, WTERMSIG(st));
    *out = o;
    return o ? (ssize_t)olen : -1;
}

int cmd_recv(int argc, char **argv)
{
    static const struct option lo[] = {
        {"from", no_argument, NULL, 'f'},      {"cred", no_argument, NULL, 'c'},
        {"echo", no_argument, NULL, 'e'},      {"reply", required_argument, NULL, 'R'},
        {"count", required_argument, NULL, 'n'}, {"raw", no_argument, NULL, 'W'},
        {"mode", required_argument, NULL, 'm'}, {"owner", required_argument, NULL, 'o'},
        {"group", required_argument, NULL, 'g'}, {"verbose", no_argument, NULL, 'v'},
        {"help", no_argument, NULL, 'h'},      {NULL, 0, NULL, 0}};
    uds_listen_opts o = {0};
    o.type = UDS_DGRAM;
    o.owner = (uid_t)-1;
    o.group = (gid_t)-1;
    int from = 0, cred = 0, echo = 0, raw = 0, verbose = 0, c;
    long count = 0;
    const char *reply = NULL;
    cli_std_fds_open();
    opterr = 0;
    while ((c = getopt_long(argc, argv, "fceR:n:m:o:g:vh", lo, NULL)) != -1) {
        switch (c) {
        case 'f':
            from = 1;
            break;
        case 'c':
            cred = 1;
            break;
        case 'e':
            echo = 1;
            break;
        case 'R':
            reply = optarg;
            break;
        case 'n':
            count = cli_opt_count("recv", "--count", optarg);
            break;
        case 'W':
            raw = 1;
            break;
        case 'm':
            o.mode = cli_opt_mode("recv", optarg);
            break;
        case 'o':
            o.owner = cli_opt_user("recv", optarg);
            o.set_owner = 1;
            break;
        case 'g':
            o.group = cli_opt_group("recv", optarg);
            o.set_owner = 1;
            break;
        case 'v':
            verbose = 1;
            break;
        case 'h':
            fputs(recv_help, stdout);
            return CLI_OK;
        default:
            cli_bad_option("recv", argv);
        }
    }
    if (optind != argc - 1)
        cli_usage_error("recv", optind >= argc ? "missing ADDR" : "too many arguments");
    if (echo && reply)
        cli_usage_error("recv", "--echo and --reply exclude each other");
    const char *text = argv[optind];
    uds_addr a;
    cli_parse_addr(&a, text);
    if (a.kind == UDS_ADDR_TCP)
        cli_usage_error("recv", "datagrams need a unix, abstract or udp: address");
    if ((o.mode || o.set_owner) && a.kind != UDS_ADDR_PATH)
        cli_usage_error("recv", "--mode/--owner/--group need a filesystem path");
    if (cred && a.kind == UDS_ADDR_UDP)
        cli_usage_error("recv", "--cred works on unix sockets only");
    int sigfd = cli_signals_block();
    int r = uds_listen(&g_l, &a, &o);
    if (r < 0)
        cli_die(CLI_FAIL, "%s", cli_errtext("bind", text, r));
    if (cred && (r = uds_set_passcred(g_l.fd, 1)) < 0)
        cli_warn("SO_PASSCRED on %s: %s", text, uds_strerror(r));
    if (verbose) {
        char b[UDS_ADDR_STRLEN];
        uds_addr_format(&g_l.addr, b, sizeof(b));
        cli_warn("receiving on %s", b);
    }
    char *buf = malloc(DGRAM_BUF);
    if (!buf)
        cli_die(CLI_FAIL, "out of memory");
    int status = CLI_OK;
    long got = 0;
    while (!count || got < count) {
        struct pollfd p[2] = {{sigfd, POLLIN, 0}, {g_l.fd, POLLIN, 0}};
        if (poll(p, 2, -1) < 0) {
            if (errno == EINTR)
                continue;
            cli_warn("poll: %s", strerror(errno));
            status = CLI_FAIL;
            break;
        }
        if (p[0].revents & POLLIN) {
            int sig = cli_signal_read(sigfd);
            if (sig) {
                free(buf);
                uds_listener_close(&g_l);
                cli_die_by_signal(sig);
            }
        }
        if (!(p[1].revents & POLLIN))
            continue;
        uds_addr src;
        memset(&src, 0, sizeof(src));
        uds_msg m = {.buf = buf, .len = DGRAM_BUF, .addr = &src};
        ssize_t n = uds_recvmsg(g_l.fd, &m, MSG_DONTWAIT);
        if (n == -EAGAIN)
            continue;
        if (n < 0) {
            cli_warn("%s", cli_errtext("receive on", text, (int)n));
            if (n == -EMSGSIZE)
                continue; /* one oversized datagram; go on */
            status = CLI_FAIL;
            break;
        }
        got++;
        char peer[UDS_ADDR_STRLEN] = "(unnamed)";
        if (src.kind != UDS_ADDR_NONE)
            uds_addr_format(&src, peer, sizeof(peer));
        char prefix[UDS_ADDR_STRLEN + 96] = "";
        size_t pl = 0;
        if (from)
            pl += (size_t)snprintf(prefix, sizeof(prefix), "%s", peer);
        if (cred) {
            if (m.has_cred)
                snprintf(prefix + pl, sizeof(prefix) - pl, "%spid=%d uid=%u gid=%u",
                         pl ? " " : "", (int)m.cred.pid, (unsigned)m.cred.uid,
                         (unsigned)m.cred.gid);
            else
                snprintf(prefix + pl, sizeof(prefix) - pl, "%scred=?", pl ? " " : "");
        }
        print_dgram(prefix, buf, (size_t)n, raw);
        if (!echo && !reply)
            continue;
        int named = src.kind != UDS_ADDR_NONE && src.kind != UDS_ADDR_UNNAMED;
        if (!named) {
            if (verbose)
                cli_warn("not answering a sender without an address");
            continue;
        }
        const char *ans = buf;
        char *out = NULL;
        ssize_t alen = n;
        if (reply) {
            alen = run_reply(reply, buf, (size_t)n, peer, &m, &out);
            ans = out;
        }
        if (alen > 0 || (echo && alen == 0)) {
            ssize_t w = uds_sendto(g_l.fd, ans, (size_t)alen, &src);
            if (w < 0)
                cli_warn("%s", cli_errtext("reply to", peer, (int)w));
        }
        free(out);
    }
    free(buf);
    close(sigfd);
    uds_listener_close(&g_l);
    return status;
}
