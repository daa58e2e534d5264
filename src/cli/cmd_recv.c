/*
 * cmd_recv.c — `udsock recv ADDR`: bind a datagram socket (safe bind) and
 * print each datagram, optionally with its sender and credentials, and
 * optionally answer it (--echo, --reply CMD). Senders that never bound an
 * address (logger -u) are printed but never answered: there is nowhere to
 * send an answer to.
 */
#include "cli.h"
#include "fds.h"
#include "opts.h"
#include "service.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/pidfd.h>
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
    "  -v, --verbose         report the bound address and unanswered senders\n"
    "      --fds             take the fds a datagram carries (SCM_RIGHTS): say\n"
    "                        on stderr what each is; with --reply CMD, CMD gets\n"
    "                        them as fds 3, 4, ... (UDSOCK_FDS and LISTEN_FDS say\n"
    "                        how many); then they are closed. Without --fds a\n"
    "                        datagram with fds is refused and its fds closed\n"
    "      --ready-fd N      write a newline to fd N and close it once receiving\n"
    "                        (s6 notification-fd); READY=1 goes to $NOTIFY_SOCKET\n"
    "                        when it is set. A socket for ADDR passed by the\n"
    "                        service manager (LISTEN_FDS) is used, never removed\n"
    "  -h, --help            this text\n"
    "\n"
    "\n"
    "Replies never wait: one that cannot be sent at once (the sender does not\n"
    "read them, or is gone) is dropped and counted; at most one line a second\n"
    "on stderr says so.\n"
    "\n"
    "ADDR: /path, unix:PATH, @abstract, udp:HOST:PORT\n"
    "Exit status: 0 ok, 1 runtime failure, 2 usage error.\n";

#define DGRAM_BUF (4 * 1024 * 1024)

static uds_listener g_l;
static cli_svc g_svc;
static int g_readable; /* the socket's watcher fired this round */

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

/* --fds: take the fds a datagram carries (else they are refused: closed,
   and the datagram reported too long, as uds_recvmsg does without room). */
static int g_take_fds;

/* A datagram waits: the main loop in cmd_recv takes it after the round. */
static void on_sock(uds_loop *loop, int fd, unsigned events, void *arg)
{
    (void)loop;
    (void)fd;
    (void)events;
    (void)arg;
    g_readable = 1;
}

/* What the loop gathers while a --reply command runs. */
typedef struct reply_run {
    char *out;
    size_t olen, cap;
    int out_fd, pidfd;
    pid_t pid;
    int status;
    int out_done, exited;
} reply_run;

/* The command's stdout: gathered up to a datagram's size, the rest dropped
   (the command then gets EPIPE or SIGPIPE). */
static void reply_out(uds_loop *loop, int fd, unsigned events, void *arg)
{
    (void)events;
    reply_run *rr = arg;
    if (rr->out && rr->olen == rr->cap && rr->cap < DGRAM_BUF) {
        char *nb = realloc(rr->out, rr->cap * 2);
        if (nb) {
            rr->out = nb;
            rr->cap *= 2;
        }
    }
    ssize_t n = rr->out && rr->olen < rr->cap
                    ? uds_read_some(fd, rr->out + rr->olen, rr->cap - rr->olen)
                    : 0;
    if (n == -EAGAIN)
        return;
    if (n > 0) {
        rr->olen += (size_t)n;
        return;
    }
    uds_loop_unwatch(loop, fd);
    close(fd);
    rr->out_done = 1;
}

/* The command has exited (its pidfd is readable): reap it. */
static void reply_exit(uds_loop *loop, int fd, unsigned events, void *arg)
{
    (void)events;
    reply_run *rr = arg;
    int st;
    if (waitpid(rr->pid, &st, WNOHANG) != rr->pid)
        return;
    rr->status = st;
    rr->exited = 1;
    uds_loop_unwatch(loop, fd);
    close(fd);
}

/*
 * Runs CMD with the datagram as stdin (a memfd: no deadlock however much
 * either side writes) and returns its stdout in *out (malloc'ed) or -1.
 * Its output and its exit are waited for on the loop (a pidfd), so the
 * stop signals are still served meanwhile.
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
        cli_child_signals();
        dup2(in, STDIN_FILENO);
        dup2(p[1], STDOUT_FILENO);
        if (*peer) /* exact bytes (an abstract name with a NUL: unset) */
            setenv("UDSOCK_PEER", peer, 1);
        else
            unsetenv("UDSOCK_PEER");
        cli_fds_child(m->fds, m->nfds);
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
    reply_run rr = {.out = malloc(65536), .cap = 65536, .out_fd = p[0], .pid = pid};
    rr.pidfd = pidfd_open(pid, 0);
    int r = rr.pidfd < 0 ? -errno : uds_set_nonblock(p[0], 1);
    if (r == 0)
        r = uds_loop_watch(g_svc.loop, p[0], UDS_EV_READ, reply_out, &rr);
    if (r == 0 && (r = uds_loop_watch(g_svc.loop, rr.pidfd, UDS_EV_READ, reply_exit, &rr)) < 0)
        uds_loop_unwatch(g_svc.loop, p[0]);
    if (r < 0) {
        /* cannot wait on the loop: stop the command rather than block */
        cli_warn("--reply: %s", uds_strerror(r));
        kill(pid, SIGKILL);
        close(p[0]);
        if (rr.pidfd >= 0)
            close(rr.pidfd);
        free(rr.out);
        return -1;
    }
    /* the socket stays quiet meanwhile: its datagrams wait in the kernel */
    uds_loop_watch(g_svc.loop, g_l.fd, 0, on_sock, NULL);
    while (!(rr.out_done && rr.exited) && (r = uds_loop_run_once(g_svc.loop, -1)) == 0)
        ;
    uds_loop_watch(g_svc.loop, g_l.fd, UDS_EV_READ, on_sock, NULL);
    if (r < 0)
        cli_die(CLI_FAIL, "event loop: %s", uds_strerror(r));
    int st = rr.status;
    if (WIFEXITED(st) && WEXITSTATUS(st) != 0)
        cli_warn("--reply: '%s' exited with status %d", cmd, WEXITSTATUS(st));
    else if (WIFSIGNALED(st))
        cli_warn("--reply: '%s' killed by signal %d", cmd, WTERMSIG(st));
    *out = rr.out;
    return rr.out ? (ssize_t)rr.olen : -1;
}

/* SIGINT/SIGTERM/SIGHUP: remove the socket file, then die of the signal. */
static void on_stop(cli_svc *s, int signo, void *arg)
{
    (void)s;
    (void)arg;
    uds_listener_close(&g_l);
    cli_die_by_signal(signo);
}

int cmd_recv(int argc, char **argv)
{
    static const struct option lo[] = {
        {"from", no_argument, NULL, 'f'},      {"cred", no_argument, NULL, 'c'},
        {"echo", no_argument, NULL, 'e'},      {"reply", required_argument, NULL, 'R'},
        {"count", required_argument, NULL, 'n'}, {"raw", no_argument, NULL, 'W'},
        {"mode", required_argument, NULL, 'm'}, {"owner", required_argument, NULL, 'o'},
        {"group", required_argument, NULL, 'g'}, {"verbose", no_argument, NULL, 'v'},
        {"ready-fd", required_argument, NULL, 'Y'},
        {"fds", no_argument, NULL, 'D'},
        {"help", no_argument, NULL, 'h'},      {NULL, 0, NULL, 0}};
    uds_listen_opts o = {0};
    o.type = UDS_DGRAM;
    /* non-blocking, so that a reply to a sender that does not read (its
       queue full: a unix sendto would wait for it) is dropped instead of
       stopping recv for every other sender (cli_dreply_send) */
    o.flags = UDS_NONBLOCK;
    o.owner = (uid_t)-1;
    o.group = (gid_t)-1;
    int from = 0, cred = 0, echo = 0, raw = 0, verbose = 0, ready_fd = -1, c;
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
        case 'Y':
            ready_fd = cli_opt_ready_fd("recv", optarg);
            break;
        case 'D':
            g_take_fds = 1;
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
    if (cli_parse_only) /* fuzz seam (cli.h): options parsed, no I/O yet */
        return CLI_OK;
    /* the stop signals go to the loop before the file exists */
    cli_svc_init(&g_svc, "recv", on_stop, NULL);
    int inherited = 0;
    int r = cli_listen(&g_l, &a, &o, &inherited);
    cli_svc_interrupted(r);
    if (r < 0)
        cli_die(CLI_FAIL, "%s", cli_errtext("bind", text, r));
    cli_dgram_prepare(g_l.fd);
    cli_dreply dr;
    cli_dreply_init(&dr, &g_svc);
    if (cred && (r = uds_set_passcred(g_l.fd, 1)) < 0)
        cli_warn("SO_PASSCRED on %s: %s", text, uds_strerror(r));
    if (verbose) {
        char b[UDS_ADDR_STRLEN];
        cli_warn("receiving on %s%s", cli_addr_text(&g_l.addr, b, sizeof(b)),
                 inherited ? " (inherited from the service manager: never removed)" : "");
    }
    cli_ready("recv", ready_fd);
    char *buf = malloc(DGRAM_BUF);
    if (!buf)
        cli_die(CLI_FAIL, "out of memory");
    if ((r = uds_loop_watch(g_svc.loop, g_l.fd, UDS_EV_READ, on_sock, NULL)) < 0)
        cli_die(CLI_FAIL, "recv: %s", uds_strerror(r));
    int status = CLI_OK;
    long got = 0;
    while (!count || got < count) {
        /* one round: the stop signals are served here (on_stop) */
        g_readable = 0;
        if ((r = uds_loop_run_once(g_svc.loop, -1)) < 0) {
            cli_warn("event loop: %s", uds_strerror(r));
            status = CLI_FAIL;
            break;
        }
        if (!g_readable)
            continue;
        uds_addr src;
        memset(&src, 0, sizeof(src));
        int rfds[UDS_MAX_FDS];
        uds_msg m = {.buf = buf, .len = DGRAM_BUF, .addr = &src, .fds = g_take_fds ? rfds : NULL,
                     .fds_cap = g_take_fds ? UDS_MAX_FDS : 0};
        ssize_t n = uds_recvmsg(g_l.fd, &m, MSG_DONTWAIT);
        if (n == -EAGAIN)
            continue;
        if (n < 0) {
            if (n == -EMSGSIZE) { /* one datagram refused (its fds closed); go on */
                cli_warn("receive on %s: a datagram was refused: %s", text,
                         g_take_fds ? "it carried more fds than fit, or more than 4 MiB"
                                    : "it carried fds (take them with --fds), or more than 4 MiB");
                continue;
            }
            cli_warn("%s", cli_errtext("receive on", text, (int)n));
            status = CLI_FAIL;
            break;
        }
        got++;
        /* peer: escaped, for stdout and stderr; env: exact, for --reply */
        char peer[UDS_ADDR_STRLEN] = "(unnamed)", env[UDS_ADDR_STRLEN] = "(unnamed)";
        if (src.kind != UDS_ADDR_NONE) {
            cli_addr_text(&src, peer, sizeof(peer));
            if (cli_addr_env(&src, env, sizeof(env)) < 0)
                env[0] = 0;
        }
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
        if (m.nfds)
            cli_fds_say(peer, rfds, m.nfds);
        if (!echo && !reply) {
            cli_fds_close(rfds, m.nfds);
            continue;
        }
        int named = src.kind != UDS_ADDR_NONE && src.kind != UDS_ADDR_UNNAMED;
        if (!named && !reply) {
            if (verbose)
                cli_warn("not answering a sender without an address");
            cli_fds_close(rfds, m.nfds);
            continue;
        }
        const char *ans = buf;
        char *out = NULL;
        ssize_t alen = n;
        if (reply) {
            alen = run_reply(reply, buf, (size_t)n, env, &m, &out);
            ans = out;
        }
        cli_fds_close(rfds, m.nfds); /* the command had its own copies */
        if (named && (alen > 0 || (echo && alen == 0)))
            cli_dreply_send(&dr, g_l.fd, ans, (size_t)alen, &src);
        else if (!named && verbose)
            cli_warn("not answering a sender without an address");
        free(out);
    }
    cli_dreply_done(&dr);
    if (verbose && dr.dropped)
        cli_warn("recv: %llu replies dropped in all", (unsigned long long)dr.dropped);
    free(buf);
    uds_loop_unwatch(g_svc.loop, g_l.fd);
    uds_listener_close(&g_l);
    cli_svc_free(&g_svc);
    return status;
}
