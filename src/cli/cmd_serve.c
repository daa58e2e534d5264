/*
 * cmd_serve.c — `udsock serve ADDR [OPTIONS] -- PROGRAM [ARGS...]`: a
 * super-server in the manner of s6-ipcserver and ucspi-unix's unixserver.
 * For each accepted connection it forks and runs PROGRAM with stdin and
 * stdout on the socket, stderr shared with the server, and the peer's
 * identity in the environment.
 *
 * Environment given to PROGRAM (unix listener):
 *   PROTO=IPC, IPCREMOTEEUID, IPCREMOTEEGID, IPCCONNNUM, IPCREMOTEPATH (only
 *   if the client bound a name), IPCLOCALPATH        — the s6 names
 *   UNIXREMOTEEUID, UNIXREMOTEEGID, UNIXREMOTEPID, UNIXLOCALPATH
 *                                                    — the ucspi-unix names
 * Why PROTO=IPC and not ucspi-unix's PROTO=UNIX: tools that read
 * "${PROTO}..." generically (s6-ipcserver-access, s6-connlimit) then find
 * every variable they look for, IPCCONNNUM included, which has no UNIX*
 * counterpart; ucspi-unix programs read the UNIX* names directly.
 * IPCCONNNUM follows s6-ipcserverd as Debian 12's s6 2.11 behaves (checked
 * by running it): the number of connections from the same uid open now,
 * this one included (1 for the first); s6-connlimit compares it with
 * IPCCONNMAX.
 * TCP listener: PROTO=TCP, TCPREMOTEIP, TCPREMOTEPORT, TCPLOCALIP,
 * TCPLOCALPORT (ucspi-tcp names).
 *
 * Structure: one poll() over the listener and a signalfd (SIGCHLD, SIGTERM,
 * SIGINT, SIGHUP). Refused connections (rules, -c, -C) are closed right
 * after accept with a line on stderr, before anything is forked.
 */
#include "access.h"
#include "cli.h"

#include <errno.h>
#include <getopt.h>
#include <arpa/inet.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

typedef struct child {
    pid_t pid;
    uid_t uid;
    unsigned long num; /* connection number, for -v */
} child;

typedef struct serve {
    uds_listener l;
    char addrtext[UDS_ADDR_STRLEN];
    int is_unix;
    cli_access acc;
    unsigned maxconn, maxperuid;
    int verbose;
    char **prog;
    child *kids;
    size_t nkids;
    unsigned long connno;
} serve;

static void usage(FILE *f)
{
    fprintf(f,
            "usage: udsock serve ADDR [OPTIONS] -- PROGRAM [ARGS...]\n"
            "Accept connections on ADDR and run PROGRAM for each one, with stdin and\n"
            "stdout on the socket and the client's identity in the environment\n"
            "(PROTO=IPC, IPCREMOTEEUID, IPCREMOTEEGID, IPCCONNNUM, IPCREMOTEPATH,\n"
            "IPCLOCALPATH, UNIXREMOTEEUID, UNIXREMOTEEGID, UNIXREMOTEPID, UNIXLOCALPATH;\n"
            "for tcp: PROTO=TCP, TCPREMOTEIP, TCPREMOTEPORT, TCPLOCALIP, TCPLOCALPORT).\n"
            "\noptions:\n"
            "  -c N               at most N connections at once (default 40)\n"
            "  -C N               at most N connections at once per client uid (unix)\n"
            "  --allow-uid LIST   accept only these users (numbers or names, comma-separated)\n"
            "  --deny-uid LIST    refuse these users\n"
            "  --allow-gid LIST   accept only clients in these groups\n"
            "  --deny-gid LIST    refuse clients in these groups\n"
            "  --mode MODE        permissions of the socket file (octal, e.g. 0660)\n"
            "  --owner USER       owner of the socket file\n"
            "  --group GROUP      group of the socket file\n"
            "  --type TYPE        stream (default) or seqpacket\n"
            "  --backlog N        listen() backlog (default SOMAXCONN)\n"
            "  -v, --verbose      log each connection and each exit on stderr\n"
            "  -h, --help         this text\n"
            "Refused clients (rules, -c, -C) are closed at once and logged on stderr.\n"
            "The socket file is removed on SIGTERM/SIGINT; running children are left alone.\n");
}

static int parse_uint(const char *s, unsigned *out)
{
    char *end;
    errno = 0;
    unsigned long v = strtoul(s, &end, 10);
    if (!*s || *end || errno || v > 1000000 || *s == '-')
        return -1;
    *out = (unsigned)v;
    return 0;
}

/* Fills listen options from --mode/--owner/--group/--type/--backlog. */
static int parse_listen_opt(int opt, const char *arg, uds_listen_opts *lo)
{
    switch (opt) {
    case 'm': {
        char *end;
        unsigned long m = strtoul(arg, &end, 8);
        if (!*arg || *end || m > 07777)
            cli_die(CLI_USAGE, "serve: bad --mode '%s' (expected octal, e.g. 0660)", arg);
        lo->mode = (unsigned)m;
        return 1;
    }
    case 'o':
        if (cli_parse_uid(arg, &lo->owner) < 0)
            cli_die(CLI_USAGE, "serve: unknown user '%s'", arg);
        lo->set_owner = 1;
        return 1;
    case 'g':
        if (cli_parse_gid(arg, &lo->group) < 0)
            cli_die(CLI_USAGE, "serve: unknown group '%s'", arg);
        lo->set_owner = 1;
        return 1;
    }
    return 0;
}

static child *find_kid(serve *s, pid_t pid)
{
    for (size_t i = 0; i < s->nkids; i++)
        if (s->kids[i].pid == pid)
            return &s->kids[i];
    return NULL;
}

static unsigned count_uid(const serve *s, uid_t uid)
{
    unsigned n = 0;
    for (size_t i = 0; i < s->nkids; i++)
        n += s->kids[i].uid == uid;
    return n;
}

static void setenv_u(const char *name, unsigned long v)
{
    char b[32];
    snprintf(b, sizeof(b), "%lu", v);
    setenv(name, b, 1);
}

/* Host and port of an Internet address as two strings. */
static void inet_parts(const uds_addr *a, char *ip, size_t iplen, unsigned *port)
{
    ip[0] = 0;
    *port = 0;
    if (a->u.sa.sa_family == AF_INET) {
        inet_ntop(AF_INET, &a->u.in.sin_addr, ip, (socklen_t)iplen);
        *port = ntohs(a->u.in.sin_port);
    } else if (a->u.sa.sa_family == AF_INET6) {
        inet_ntop(AF_INET6, &a->u.in6.sin6_addr, ip, (socklen_t)iplen);
        *port = ntohs(a->u.in6.sin6_port);
    }
}

/*
 * Runs in the forked child: sets the environment, puts the connection on
 * fds 0 and 1, closes every other fd above 2, restores the signal state a
 * program expects (default SIGPIPE, empty mask) and execs. Never returns.
 */
static void run_child(serve *s, int cfd, const uds_cred *cred, const uds_addr *peer,
                      unsigned same_uid)
{
    static const char *const clear[] = {
        "IPCREMOTEEUID", "IPCREMOTEEGID", "IPCCONNNUM",   "IPCREMOTEPATH", "IPCLOCALPATH",
        "UNIXREMOTEEUID", "UNIXREMOTEEGID", "UNIXREMOTEPID", "UNIXLOCALPATH", "UNIXREMOTEPATH",
        "TCPREMOTEIP",   "TCPREMOTEPORT", "TCPLOCALIP",   "TCPLOCALPORT",  "TCPREMOTEHOST",
        "TCPLOCALHOST",  "TCPREMOTEINFO", NULL};
    for (const char *const *c = clear; *c; c++)
        unsetenv(*c);
    if (s->is_unix) {
        setenv("PROTO", "IPC", 1);
        setenv_u("IPCREMOTEEUID", cred->uid);
        setenv_u("IPCREMOTEEGID", cred->gid);
        setenv_u("IPCCONNNUM", same_uid + 1);
        setenv_u("UNIXREMOTEEUID", cred->uid);
        setenv_u("UNIXREMOTEEGID", cred->gid);
        setenv_u("UNIXREMOTEPID", (unsigned long)cred->pid);
        if (peer->kind == UDS_ADDR_PATH || peer->kind == UDS_ADDR_ABSTRACT) {
            char b[UDS_ADDR_STRLEN];
            if (uds_addr_format(peer, b, sizeof(b)) >= 0)
                setenv("IPCREMOTEPATH", b, 1);
        }
        setenv("IPCLOCALPATH", s->addrtext, 1);
        setenv("UNIXLOCALPATH", s->addrtext, 1);
    } else {
        char ip[INET6_ADDRSTRLEN];
        unsigned port;
        uds_addr local;
        setenv("PROTO", "TCP", 1);
        inet_parts(peer, ip, sizeof(ip), &port);
        setenv("TCPREMOTEIP", ip, 1);
        setenv_u("TCPREMOTEPORT", port);
        if (uds_local_addr(cfd, &local) == 0) {
            inet_parts(&local, ip, sizeof(ip), &port);
            setenv("TCPLOCALIP", ip, 1);
            setenv_u("TCPLOCALPORT", port);
        }
    }
    if (dup2(cfd, 0) < 0 || dup2(cfd, 1) < 0) {
        cli_warn("serve: dup2: %s", strerror(errno));
        _exit(111);
    }
    /* everything we own is CLOEXEC already; this also drops fds a parent
       of ours leaked to us, so PROGRAM sees exactly 0, 1, 2 */
    if (close_range(3, ~0U, 0) < 0)
        for (int fd = 3; fd < 4096; fd++)
            close(fd);
    signal(SIGPIPE, SIG_DFL);
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    execvp(s->prog[0], s->prog);
    int e = errno;
    cli_warn("serve: exec %s: %s", s->prog[0], strerror(e));
    _exit(e == ENOENT ? 127 : 126);
}

/* Accepts every pending connection; refuses or forks for each. */
static void accept_all(serve *s)
{
    for (;;) {
        uds_addr peer;
        int cfd = uds_accept(s->l.fd, &peer, 0);
        if (cfd == -EAGAIN)
            return;
        if (cfd < 0) {
            cli_warn("serve: accept on %s: %s", s->addrtext, uds_strerror(cfd));
            if (cfd == -EMFILE || cfd == -ENFILE || cfd == -ENOBUFS || cfd == -ENOMEM)
                poll(NULL, 0, 100); /* let children finish instead of spinning */
            return;
        }
        uds_cred cred = {0, 0, 0};
        unsigned same = 0;
        s->connno++;
        if (s->is_unix) {
            const char *why = "";
            int ok = cli_access_check(&s->acc, cfd, &cred, &why);
            if (ok < 0) {
                cli_warn("serve: refused connection #%lu: %s: %s", s->connno,
                         why && *why ? why : "cannot check the access rules", uds_strerror(ok));
                close(cfd);
                continue;
            }
            if (!ok) {
                cli_warn("serve: refused uid %u (%s)", (unsigned)cred.uid, why);
                close(cfd);
                continue;
            }
            same = count_uid(s, cred.uid);
        }
        if (s->nkids >= s->maxconn) {
            cli_warn("serve: refused uid %u (too many connections: %zu, limit -c %u)",
                     (unsigned)cred.uid, s->nkids, s->maxconn);
            close(cfd);
            continue;
        }
        if (s->is_unix && s->maxperuid && same >= s->maxperuid) {
            cli_warn("serve: refused uid %u (it has %u connections, limit -C %u)",
                     (unsigned)cred.uid, same, s->maxperuid);
            close(cfd);
            continue;
        }
        pid_t pid = fork();
        if (pid < 0) {
            cli_warn("serve: fork: %s (connection #%lu closed)", strerror(errno), s->connno);
            close(cfd);
            continue;
        }
        if (pid == 0)
            run_child(s, cfd, &cred, &peer, same);
        close(cfd);
        s->kids[s->nkids].pid = pid;
        s->kids[s->nkids].uid = cred.uid;
        s->kids[s->nkids].num = s->connno;
        s->nkids++;
        if (s->verbose) {
            char pb[UDS_ADDR_STRLEN] = "";
            if (!s->is_unix)
                uds_addr_format(&peer, pb, sizeof(pb));
            if (s->is_unix)
                cli_warn("serve: #%lu uid %u gid %u pid %ld: started %s as pid %ld (%zu open)",
                         s->connno, (unsigned)cred.uid, (unsigned)cred.gid, (long)cred.pid,
                         s->prog[0], (long)pid, s->nkids);
            else
                cli_warn("serve: #%lu from %s: started %s as pid %ld (%zu open)", s->connno, pb,
                         s->prog[0], (long)pid, s->nkids);
        }
    }
}

/* Reaps every exited child (SIGCHLD may stand for several). */
static void reap(serve *s)
{
    for (;;) {
        int st;
        pid_t pid = waitpid(-1, &st, WNOHANG);
        if (pid <= 0)
            return;
        child *k = find_kid(s, pid);
        if (!k)
            continue;
        if (s->verbose) {
            if (WIFSIGNALED(st))
                cli_warn("serve: #%lu pid %ld killed by signal %d", k->num, (long)pid,
                         WTERMSIG(st));
            else
                cli_warn("serve: #%lu pid %ld exited %d", k->num, (long)pid, WEXITSTATUS(st));
        }
        *k = s->kids[--s->nkids];
    }
}

int cmd_serve(int argc, char **argv)
{
    serve s;
    memset(&s, 0, sizeof(s));
    s.maxconn = 40;
    uds_listen_opts lo;
    memset(&lo, 0, sizeof(lo));
    lo.owner = (uid_t)-1;
    lo.group = (gid_t)-1;

    /* Split at the first "--": options and ADDR before it, PROGRAM after. */
    int dd = -1;
    for (int i = 1; i < argc; i++)
        if (!strcmp(argv[i], "--")) {
            dd = i;
            break;
        }
    int nopt = dd >= 0 ? dd : argc;

    enum { O_ALLOW_UID = 256, O_DENY_UID, O_ALLOW_GID, O_DENY_GID, O_BACKLOG };
    static const struct option longopts[] = {
        {"help", no_argument, NULL, 'h'},
        {"verbose", no_argument, NULL, 'v'},
        {"mode", required_argument, NULL, 'm'},
        {"owner", required_argument, NULL, 'o'},
        {"group", required_argument, NULL, 'g'},
        {"type", required_argument, NULL, 't'},
        {"backlog", required_argument, NULL, O_BACKLOG},
        {"allow-uid", required_argument, NULL, O_ALLOW_UID},
        {"deny-uid", required_argument, NULL, O_DENY_UID},
        {"allow-gid", required_argument, NULL, O_ALLOW_GID},
        {"deny-gid", required_argument, NULL, O_DENY_GID},
        {NULL, 0, NULL, 0},
    };
    /* without "--", stop at the first non-option after ADDR (POSIX mode) */
    const char *optstr = dd >= 0 ? "hvc:C:" : "+hvc:C:";
    char **pargv = argv;
    int pargc = nopt;
    optind = 0;
    opterr = 0; /* our own message, naming udsock and the subcommand */
    int opt, naddr = 0;
    const char *addrarg = NULL;
    for (;;) {
        opt = getopt_long(pargc, pargv, optstr, longopts, NULL);
        if (opt == -1) {
            if (dd < 0 && optind < pargc && !addrarg) {
                addrarg = pargv[optind++]; /* ADDR, then more options */
                naddr++;
                pargv += optind - 1;
                pargc -= optind - 1;
                optind = 0; /* new argv: full getopt reset */
                /* after ADDR: options until the program's name */
                continue;
            }
            break;
        }
        unsigned v;
        const char *bad = NULL;
        int r;
        switch (opt) {
        case 'h':
            usage(stdout);
            return CLI_OK;
        case 'v':
            s.verbose = 1;
            break;
        case 'c':
            if (parse_uint(optarg, &v) < 0 || v == 0)
                cli_die(CLI_USAGE, "serve: bad -c '%s' (expected a number >= 1)", optarg);
            s.maxconn = v;
            break;
        case 'C':
            if (parse_uint(optarg, &v) < 0 || v == 0)
                cli_die(CLI_USAGE, "serve: bad -C '%s' (expected a number >= 1)", optarg);
            s.maxperuid = v;
            break;
        case 't':
            lo.type = uds_type_parse(optarg);
            if (lo.type != UDS_STREAM && lo.type != UDS_SEQPACKET)
                cli_die(CLI_USAGE, "serve: bad --type '%s' (stream or seqpacket)", optarg);
            break;
        case O_BACKLOG:
            if (parse_uint(optarg, &v) < 0 || v == 0)
                cli_die(CLI_USAGE, "serve: bad --backlog '%s'", optarg);
            lo.backlog = (int)v;
            break;
        case O_ALLOW_UID:
        case O_DENY_UID:
        case O_ALLOW_GID:
        case O_DENY_GID:
            r = cli_access_add(&s.acc, opt - O_ALLOW_UID, optarg, &bad);
            if (r < 0)
                cli_die(CLI_USAGE, "serve: %s: unknown %s '%s'", longopts[opt - O_ALLOW_UID + 7].name,
                        opt == O_ALLOW_UID || opt == O_DENY_UID ? "user" : "group",
                        bad ? bad : optarg);
            break;
        case 'm':
        case 'o':
        case 'g':
            parse_listen_opt(opt, optarg, &lo);
            break;
        default:
            if (optopt > 0 && optopt < 128)
                cli_warn("serve: option '-%c' is unknown or needs a value (try 'udsock serve --help')", optopt);
            else
                cli_warn("serve: option '%s' is unknown or needs a value (try 'udsock serve --help')",
                         pargv[optind - 1]);
            return CLI_USAGE;
        }
    }
    char **prog;
    if (dd >= 0) {
        if (!addrarg) {
            if (optind < pargc)
                addrarg = pargv[optind++];
        }
        if (!addrarg || optind != pargc) {
            cli_warn("serve: expected one ADDR before '--'");
            usage(stderr);
            return CLI_USAGE;
        }
        prog = argv + dd + 1;
    } else {
        if (!addrarg) {
            usage(stderr);
            return CLI_USAGE;
        }
        prog = pargv + optind;
    }
    if (!*prog) {
        cli_warn("serve: no PROGRAM given (udsock serve ADDR -- PROGRAM [ARGS...])");
        return CLI_USAGE;
    }
    s.prog = prog;

    uds_addr addr;
    cli_parse_addr(&addr, addrarg);
    if (addr.kind == UDS_ADDR_UDP) {
        cli_warn("serve: %s: datagram addresses have no connections to serve", addrarg);
        return CLI_USAGE;
    }
    s.is_unix = addr.kind != UDS_ADDR_TCP;
    if (!s.is_unix && (cli_access_active(&s.acc) || s.maxperuid)) {
        cli_warn("serve: --allow/--deny and -C need a unix socket (a TCP peer has no uid)");
        return CLI_USAGE;
    }

    /* fds 0-2 must exist, or an accepted socket could land on them */
    for (int fd = 0; fd < 3; fd++)
        if (fcntl(fd, F_GETFD) < 0 && open("/dev/null", O_RDWR) != fd)
            cli_die(CLI_FAIL, "serve: cannot open /dev/null: %s", strerror(errno));

    s.kids = calloc(s.maxconn, sizeof(*s.kids));
    if (!s.kids)
        cli_die(CLI_FAIL, "serve: out of memory");

    /* a shell starts background jobs with SIGINT ignored; an ignored signal
       never reaches the signalfd, and we want SIGINT to stop the server */
    signal(SIGINT, SIG_DFL);
    signal(SIGTERM, SIG_DFL);
    signal(SIGHUP, SIG_DFL);
    sigset_t set, old;
    sigemptyset(&set);
    sigaddset(&set, SIGCHLD);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGHUP);
    sigprocmask(SIG_BLOCK, &set, &old);
    int sfd = signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
    if (sfd < 0)
        cli_die(CLI_FAIL, "serve: signalfd: %s", strerror(errno));

    lo.flags |= UDS_NONBLOCK;
    int r = uds_listen(&s.l, &addr, &lo);
    if (r < 0) {
        cli_warn("serve: %s", cli_errtext("listen", addrarg, r));
        close(sfd);
        free(s.kids);
        cli_access_free(&s.acc);
        return CLI_FAIL;
    }
    uds_addr_format(&s.l.addr, s.addrtext, sizeof(s.addrtext));
    if (s.is_unix && s.l.addr.kind == UDS_ADDR_PATH)
        snprintf(s.addrtext, sizeof(s.addrtext), "%s", s.l.addr.u.un.sun_path);
    if (s.verbose)
        cli_warn("serve: listening on %s", s.addrtext);

    int status = CLI_OK;
    for (int running = 1; running;) {
        struct pollfd p[2] = {{s.l.fd, POLLIN, 0}, {sfd, POLLIN, 0}};
        int n = poll(p, 2, -1);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            cli_warn("serve: poll: %s", strerror(errno));
            status = CLI_FAIL;
            break;
        }
        if (p[1].revents) {
            struct signalfd_siginfo si;
            while (read(sfd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
                if (si.ssi_signo == SIGCHLD)
                    continue;
                if (s.verbose)
                    cli_warn("serve: %s, closing %s", strsignal((int)si.ssi_signo), s.addrtext);
                running = 0;
            }
            reap(&s);
        }
        if (running && p[0].revents)
            accept_all(&s);
    }
    uds_listener_close(&s.l);
    close(sfd);
    reap(&s);
    free(s.kids);
    cli_access_free(&s.acc);
    sigprocmask(SIG_SETMASK, &old, NULL);
    return status;
}
