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
 * UNIXREMOTEPID only while the client's pidfd (UDS_ACCEPT_PIDFD, checked in
 * the child just before setenv) shows it alive: a pid that outlived its
 * process may be another program's. Names the client bound go into the
 * environment as exact bytes; the -v lines show them escaped.
 * TCP listener: PROTO=TCP, TCPREMOTEIP, TCPREMOTEPORT, TCPLOCALIP,
 * TCPLOCALPORT (ucspi-tcp names).
 *
 * Structure: the library does the accepting (uds_acceptor on a uds_loop,
 * cli_svc for the stop signals): bounded batches of accepts, the limits -c
 * and -C and the access rules judged before anything is forked, refused
 * clients closed at once with rate-limited log lines, and the reserve-fd
 * strategy when the process runs out of fds. SIGCHLD comes through the loop
 * too, so children are reaped between two batches even under a connect
 * flood, and each reaped child gives its slot back
 * (uds_acceptor_release).
 *
 * --idle-timeout: the server puts itself between the client and the
 * program. The program gets one end of a socketpair (of the listener's
 * type: stream, or seqpacket; stream for TCP) as fds 0 and 1, and the
 * library's forwarder (uds_fwd) joins the other end to the connection,
 * with its idle timeout counting only what the client sends
 * (UDS_FWD_IDLE_SIDE0): the program's output is not activity. Why not
 * watch the shared socket instead, as this file once did with a dup
 * watched edge-triggered: epoll polls an item again when it reports it,
 * so client data the program had already read by then was never reported
 * and a talking client was dropped as idle (often under load or ASan).
 * Seeing every byte is the only exact way. When the timeout expires the
 * forward closes both sockets (the client sees EOF, the program reads EOF
 * and its writes fail) and the program gets SIGTERM, then SIGKILL 5 s later
 * if it is still there. The slot comes free when the child is reaped; the
 * forward may outlive it a little while it passes on the program's last
 * output. Without --idle-timeout the program gets the connection itself.
 *
 * --pty (socat EXEC:...,pty,setsid,ctty; ssh -t): the program runs on a
 * pseudo-terminal, made before the fork (posix_openpt, the slave opened
 * from the master with TIOCGPTPEER so no path is looked up, 80x24, owned
 * by the -u user as login programs do, mode 0620). The child starts a
 * session (setsid), takes the slave as its controlling terminal
 * (TIOCSCTTY) and as fds 0, 1 and 2; the same forwarder as above joins the
 * master to the connection (with or without --idle-timeout; forward.c
 * says how a terminal side ends). The terminal keeps the kernel's
 * settings: cooked, with echo, \n written as \r\n (as socat's pty and
 * ssh -t give): a program that asks for a terminal expects a line
 * discipline, and a client that wants keystrokes through puts its own
 * terminal in raw mode, as ssh does; a program wanting raw runs stty.
 * The client's EOF reaches the program as ^D (VEOF); when the program and
 * everything it started have closed the terminal, the client gets the
 * rest of the output, then the connection closes. When serve stops, the
 * terminals hang up (their programs get SIGHUP).
 */
#include "access.h"
#include "cli.h"
#include "opts.h"
#include "service.h"

#include <errno.h>
#include <getopt.h>
#include <pwd.h>
#include <grp.h>
#include <arpa/inet.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <poll.h>
#include <sys/ioctl.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

/* After SIGTERM to an idle connection's program: how long until SIGKILL. */
#define KILL_GRACE_MS 5000

struct serve;

/* One running program (one connection holding a slot of the acceptor). */
typedef struct kid {
    struct serve *s;
    size_t idx;         /* position in s->kids */
    pid_t pid;          /* 0 once reaped (or never forked) */
    uid_t uid;          /* peer->cred.uid, given back to uds_acceptor_release */
    uint64_t num;       /* connection number, for the log */
    uds_fwd *fwd;       /* --idle-timeout: client <-> the program's socketpair
                           end (--pty: the pty master), until the forward
                           ends; else NULL */
    int64_t kill_timer; /* pending SIGKILL after an idle drop, 0 none */
    int ptm;            /* --pty: serve's own fd of the master, -1 none
                           (on_fwd_done says why) */
    int dropped;        /* shut down for idleness, SIGTERM sent */
} kid;

typedef struct serve {
    cli_svc svc;
    uds_acceptor *acc;
    char addrtext[UDS_ADDR_STRLEN]; /* exact, for the environment */
    char addresc[UDS_ADDR_STRLEN];  /* escaped, for log lines */
    int is_unix;
    cli_access rules;
    unsigned maxconn, maxperuid;
    unsigned idle_ms;   /* --idle-timeout; 0 = none */
    int pty;            /* --pty */
    gid_t tty_gid;      /* --pty with -u/-U: the group "tty", or -1 */
    int exiting;        /* after the loop: forwards end without follow-up */
    char **prog;
    kid **kids;
    size_t nkids, kids_cap;
    /* -u/-g/-U: who PROGRAM runs as (set in the child, before exec) */
    int drop_uid, drop_gid;
    uid_t run_uid;
    gid_t run_gid;
    gid_t *run_groups; /* supplementary groups, run_ngroups of them */
    int run_ngroups;
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
            "  -C N               at most N connections at once per client uid (unix;\n"
            "                     default: no per-uid limit)\n"
            "  --idle-timeout SEC a connection whose client sends nothing for SEC seconds\n"
            "                     (fractions allowed) is shut down and its program gets\n"
            "                     SIGTERM, SIGKILL 5 s later (default: no timeout; output\n"
            "                     of the program does not count as activity). With it\n"
            "                     PROGRAM's stdin/stdout is a socketpair to serve, which\n"
            "                     forwards to the client (use the environment, not\n"
            "                     getpeername/SO_PEERCRED on fd 0)\n"
            "  --allow-uid LIST   accept only these users (numbers or names, comma-separated)\n"
            "  --deny-uid LIST    refuse these users\n"
            "  --allow-gid LIST   accept only clients in these groups\n"
            "  --deny-gid LIST    refuse clients in these groups\n"
            "  --mode MODE        permissions of the socket file (octal, e.g. 0660)\n"
            "  --owner USER       owner of the socket file\n"
            "  --group GROUP      group of the socket file\n"
            "  --type TYPE        stream (default) or seqpacket\n"
            "  --backlog N        listen() backlog (default SOMAXCONN)\n"
            "  -u, --run-user USER  run PROGRAM as USER (name or uid): its groups\n"
            "                     (initgroups), its primary gid unless -g, then its uid;\n"
            "                     dropped in the child before exec (s6-ipcserver -u)\n"
            "  -g, --run-group GROUP  run PROGRAM with this gid (and only this group\n"
            "                     as supplementary group unless -u names a user)\n"
            "  -U, --run-env      take them from $UID, $GID and $GIDLIST (comma-\n"
            "                     separated), as s6-envuidgid sets them (s6-ipcserver -U)\n"
            "  --pty              run PROGRAM on a pseudo-terminal (socat EXEC:...,pty,setsid,\n"
            "                     ctty): a new session, the terminal (80x24, cooked, echo)\n"
            "                     its controlling tty and fds 0, 1, 2; the client's EOF\n"
            "                     reaches it as ^D; its exit closes the connection once\n"
            "                     its output is sent\n"
            "  --ready-fd N       write a newline to fd N and close it once serving\n"
            "                     (s6 notification-fd); READY=1 goes to $NOTIFY_SOCKET\n"
            "                     when it is set\n"
            "  -v, --verbose      log each connection and each exit on stderr\n"
            "  -h, --help         this text\n"
            "Refused clients (rules, -c, -C) are closed at once and logged on stderr\n"
            "(at most 10 lines a second, then a count).\n"
            "The socket file is removed on SIGTERM/SIGINT; running children are left alone.\n"
            "Socket activation: a socket for ADDR passed by the service manager\n"
            "(LISTEN_FDS: systemd, systemd-socket-activate) is used instead of binding,\n"
            "and its file is never removed.\n");
}

static int parse_uint(const char *s, unsigned *out)
{
    char *end;
    errno = 0;
    unsigned long v = strtoul(s, &end, 10);
    if (!cli_is_decimal(s) || *end || errno || v > 1000000)
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
        if (!cli_is_decimal(arg) || strpbrk(arg, "89") || *end || m > 07777)
            cli_die(CLI_USAGE, "serve: bad --mode '%s' (expected octal, e.g. 0660)", arg);
        lo->mode = (unsigned)m;
        return 1;
    }
    case 'o':
        lo->owner = cli_opt_user("serve", arg);
        lo->set_owner = 1;
        return 1;
    case 'g':
        lo->group = cli_opt_group("serve", arg);
        lo->set_owner = 1;
        return 1;
    }
    return 0;
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
 * Runs in the forked child: sets the environment, puts iofd (the
 * connection cfd, or with --idle-timeout the program's end of the
 * socketpair to serve) on fds 0 and 1, closes every other fd above 2,
 * restores the signal state a program expects (default SIGPIPE, empty
 * mask: the loop blocked SIGCHLD, SIGTERM, SIGINT and SIGHUP for its
 * signalfd) and execs. Never returns.
 */
static void run_child(serve *s, int cfd, int iofd, const uds_peer *p)
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
        setenv_u("IPCREMOTEEUID", p->cred.uid);
        setenv_u("IPCREMOTEEGID", p->cred.gid);
        setenv_u("IPCCONNNUM", p->uid_conns);
        setenv_u("UNIXREMOTEEUID", p->cred.uid);
        setenv_u("UNIXREMOTEEGID", p->cred.gid);
        /* the pid only while the pidfd shows the process that connected
           is still there: a pid that outlived its process may already be
           another program's (with the fallback pidfd the check is as good
           as the race allows: udsock.h, UDS_PIDFD_OPENED) */
        if (p->pidfd >= 0 && uds_pidfd_alive(p->pidfd) == 1)
            setenv_u("UNIXREMOTEPID", (unsigned long)p->cred.pid);
        else if (s->svc.verbose)
            cli_warn("serve: #%llu: client pid %ld %s: UNIXREMOTEPID not set",
                     (unsigned long long)p->seq, (long)p->cred.pid,
                     p->pidfd_how == UDS_PIDFD_NONE ? "cannot be confirmed (no pidfd)"
                                                    : "has exited");
        if (p->addr.kind == UDS_ADDR_PATH || p->addr.kind == UDS_ADDR_ABSTRACT) {
            /* exact bytes, not escaped (cli_addr_env says why) */
            char b[UDS_ADDR_STRLEN];
            if (cli_addr_env(&p->addr, b, sizeof(b)) == 0)
                setenv("IPCREMOTEPATH", b, 1);
        }
        setenv("IPCLOCALPATH", s->addrtext, 1);
        setenv("UNIXLOCALPATH", s->addrtext, 1);
    } else {
        char ip[INET6_ADDRSTRLEN];
        unsigned port;
        uds_addr local;
        setenv("PROTO", "TCP", 1);
        inet_parts(&p->addr, ip, sizeof(ip), &port);
        setenv("TCPREMOTEIP", ip, 1);
        setenv_u("TCPREMOTEPORT", port);
        if (uds_local_addr(cfd, &local) == 0) {
            inet_parts(&local, ip, sizeof(ip), &port);
            setenv("TCPLOCALIP", ip, 1);
            setenv_u("TCPLOCALPORT", port);
        }
    }
    /* --pty: a session of its own, the terminal its controlling tty */
    if (s->pty && (setsid() < 0 || ioctl(iofd, TIOCSCTTY, 0) < 0)) {
        cli_warn("serve: %s: %s", getpid() == getsid(0) ? "TIOCSCTTY" : "setsid",
                 strerror(errno));
        _exit(111);
    }
    if (dup2(iofd, 0) < 0 || dup2(iofd, 1) < 0) {
        cli_warn("serve: dup2: %s", strerror(errno));
        _exit(111);
    }
    /* everything we own is CLOEXEC already; this also drops fds a parent
       of ours leaked to us, so PROGRAM sees exactly 0, 1, 2 */
    if (close_range(3, ~0U, 0) < 0)
        for (int fd = 3; fd < 4096; fd++)
            close(fd);
    cli_child_signals();
    /* -u/-g/-U: groups first, then the gid, then the uid (after setuid
       the others are no longer allowed); a failure runs nothing. Not root:
       run_privs() made sure nothing would change */
    if (geteuid() == 0 && s->drop_gid && (setgroups((size_t)s->run_ngroups, s->run_groups) < 0 ||
                        setgid(s->run_gid) < 0)) {
        cli_warn("serve: cannot run %s as gid %u: %s", s->prog[0], (unsigned)s->run_gid,
                 strerror(errno));
        _exit(111);
    }
    if (geteuid() == 0 && s->drop_uid && (setuid(s->run_uid) < 0 || getuid() != s->run_uid ||
                        (s->run_uid != 0 && setuid(0) == 0))) {
        cli_warn("serve: cannot run %s as uid %u: %s", s->prog[0], (unsigned)s->run_uid,
                 strerror(errno));
        _exit(111);
    }
    /* --pty: stderr is the terminal too, from here on; the server's stays
       on a CLOEXEC fd for an exec failure to be said in the log */
    int logfd = -1;
    if (s->pty && ((logfd = fcntl(2, F_DUPFD_CLOEXEC, 3)) < 0 || dup2(0, 2) < 0)) {
        cli_warn("serve: dup2: %s", strerror(errno));
        _exit(111);
    }
    execvp(s->prog[0], s->prog);
    int e = errno;
    if (logfd >= 0)
        dup2(logfd, 2);
    cli_warn("serve: exec %s: %s", s->prog[0], strerror(e));
    _exit(e == ENOENT ? 127 : 126);
}

/* ---- --idle-timeout ----------------------------------------------------- */

static void kid_free(serve *s, kid *k);

static void on_kill(uds_loop *loop, uint64_t id, void *arg)
{
    (void)loop;
    (void)id;
    kid *k = arg;
    k->kill_timer = 0;
    /* the pid is still ours: it is reaped (and the timer cancelled) only by us */
    if (kill(k->pid, SIGKILL) == 0)
        cli_svc_warn(&k->s->svc, "#%llu pid %ld still running %d s after SIGTERM: SIGKILL sent",
                     (unsigned long long)k->num, (long)k->pid, KILL_GRACE_MS / 1000);
}

/* --pty: 1 when every fd of the slave side of master m is closed (the
   master then polls POLLHUP). */
static int pty_closed(int m)
{
    struct pollfd p = {.fd = m, .events = 0};
    return poll(&p, 1, 0) == 1 && (p.revents & POLLHUP);
}

/*
 * The forward between the client and the program has ended (both sockets
 * are closed now, so the program reads EOF). On its idle timeout: SIGTERM
 * the program and arm the SIGKILL; the slot comes free when the child is
 * reaped. A record whose child is reaped already goes now.
 */
static void on_fwd_done(uds_fwd *f, int err, int side, const uds_fwd_stats *st, void *arg)
{
    (void)f;
    (void)side;
    (void)st;
    kid *k = arg;
    serve *s = k->s;
    k->fwd = NULL;
    /* --pty: the last close of a master hangs its terminal up, and the
       hang-up sends SIGHUP to the session's leader. A program that has
       closed the terminal already (the forward ended on that) may not have
       exited yet: cat closes its stdin, then runs its atexit handlers.
       Its terminal is kept open until it is reaped, so it ends as it
       meant to; one the program still holds (the client went, an error,
       the idle timeout) is hung up now, as a dropped line is. */
    if (k->ptm >= 0 && (err || !pty_closed(k->ptm))) {
        close(k->ptm);
        k->ptm = -1;
    }
    if (s->exiting) /* the records are freed after the loop */
        return;
    if (err == -ETIMEDOUT && k->pid > 0 && !k->dropped) {
        k->dropped = 1;
        kill(k->pid, SIGTERM);
        int64_t t = uds_loop_timer(s->svc.loop, KILL_GRACE_MS, on_kill, k);
        k->kill_timer = t > 0 ? t : 0;
        cli_svc_warn(&s->svc, "#%llu pid %ld: nothing from the client for %g s: "
                              "connection shut down, SIGTERM sent",
                     (unsigned long long)k->num, (long)k->pid, s->idle_ms / 1000.0);
    } else if (err < 0 && err != -ETIMEDOUT) {
        cli_svc_info(&s->svc, "#%llu connection ended: %s", (unsigned long long)k->num,
                     uds_strerror(err));
    }
    if (k->pid == 0)
        kid_free(s, k);
}

/*
 * Interposes for --idle-timeout: a socketpair of the connection's type,
 * one end (*child_end) for the program, the other joined to the
 * connection by a forward that k owns. On success the forward owns fd.
 * Returns 0 or -errno (then fd is still the caller's and nothing is left).
 */
static int interpose(serve *s, kid *k, int fd, int *child_end)
{
    int sv[2];
    int type = uds_sock_type(fd); /* stream or seqpacket; stream for TCP */
    int r = type < 0 ? type : uds_pair(type, 0, sv);
    if (r < 0)
        return r;
    uds_fwd_opts fo;
    memset(&fo, 0, sizeof(fo));
    fo.idle_timeout_ms = (int)s->idle_ms;
    fo.flags = UDS_FWD_IDLE_SIDE0; /* side 0 is the client */
    r = uds_fwd_new(&k->fwd, s->svc.loop, fd, sv[0], &fo, on_fwd_done, k);
    if (r < 0) {
        k->fwd = NULL;
        close(sv[0]);
        close(sv[1]);
        return r;
    }
    *child_end = sv[1];
    return 0;
}

/*
 * --pty: a pseudo-terminal for one connection, its master joined to the
 * connection by a forward that k owns (with the --idle-timeout, if any),
 * its slave (*child_end) for the program. Made before the fork, so a
 * failure refuses the client with nothing forked. Both ends CLOEXEC; the
 * slave is opened O_NOCTTY (the server never takes it as its own terminal)
 * and from the master (TIOCGPTPEER, Linux 4.13), not by its name. With
 * -u/-U it belongs to the program's user, as sshd and login leave a
 * terminal: group "tty" and mode 0620 (write(1) and wall reach it), or
 * the user's group and 0600 where there is no such group; so the user's
 * own tools (mesg, screen, ssh's password prompt reopening it) find it
 * theirs. devpts removes the node when the last fd closes: nothing to give
 * back. Without -u it stays as devpts made it (the server's uid, the
 * mount's mode). On success the forward owns fd and the master. Returns 0
 * or -errno (fd still the caller's).
 */
static int make_pty(serve *s, kid *k, int fd, int *child_end)
{
    int m = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
    if (m < 0)
        return -errno;
    int r = 0, sl = -1;
    struct winsize ws = {.ws_row = 24, .ws_col = 80};
    if (fcntl(m, F_SETFD, FD_CLOEXEC) < 0 || grantpt(m) < 0 || unlockpt(m) < 0 ||
        (k->ptm = fcntl(m, F_DUPFD_CLOEXEC, 3)) < 0 ||
        (sl = ioctl(m, TIOCGPTPEER, O_RDWR | O_NOCTTY | O_CLOEXEC)) < 0 ||
        ioctl(sl, TIOCSWINSZ, &ws) < 0 ||
        (s->drop_uid &&
         (fchown(sl, s->run_uid, s->tty_gid != (gid_t)-1 ? s->tty_gid : s->run_gid) < 0 ||
          fchmod(sl, s->tty_gid != (gid_t)-1 ? 0620 : 0600) < 0)))
        r = -errno;
    if (r == 0) {
        uds_fwd_opts fo;
        memset(&fo, 0, sizeof(fo));
        fo.idle_timeout_ms = (int)s->idle_ms;
        fo.flags = UDS_FWD_IDLE_SIDE0; /* side 0 is the client */
        r = uds_fwd_new(&k->fwd, s->svc.loop, fd, m, &fo, on_fwd_done, k);
    }
    if (r < 0) {
        k->fwd = NULL;
        if (sl >= 0)
            close(sl);
        if (k->ptm >= 0)
            close(k->ptm);
        k->ptm = -1;
        close(m);
        return r;
    }
    *child_end = sl;
    return 0;
}

/* ---- children ----------------------------------------------------------- */

/* Forgets a child: its timer and its record (the caller gives its slot back
   when it was reaped; the forward, if any, has ended). */
static void kid_free(serve *s, kid *k)
{
    if (k->kill_timer)
        uds_loop_timer_cancel(s->svc.loop, (uint64_t)k->kill_timer);
    if (k->ptm >= 0)
        close(k->ptm);
    s->kids[k->idx] = s->kids[--s->nkids];
    s->kids[k->idx]->idx = k->idx;
    free(k);
}

/*
 * SIGCHLD: reaps every exited child (one signal may stand for several)
 * and gives each one's slot back to the acceptor. Bounded: waitpid reports
 * each exited child once. A child's forward may still be passing its last
 * output on: its record then stays until the forward ends.
 */
static void on_sigchld(uds_loop *loop, int signo, void *arg)
{
    (void)signo;
    serve *s = arg;
    for (;;) {
        int st;
        pid_t pid = waitpid(-1, &st, WNOHANG);
        if (pid <= 0)
            return;
        kid *k = NULL;
        for (size_t i = 0; i < s->nkids && !k; i++)
            if (s->kids[i]->pid == pid)
                k = s->kids[i];
        if (!k)
            continue;
        if (WIFSIGNALED(st))
            cli_svc_info(&s->svc, "#%llu pid %ld killed by signal %d",
                         (unsigned long long)k->num, (long)pid, WTERMSIG(st));
        else
            cli_svc_info(&s->svc, "#%llu pid %ld exited %d", (unsigned long long)k->num,
                         (long)pid, WEXITSTATUS(st));
        uds_acceptor_release(s->acc, k->uid);
        k->pid = 0;
        if (k->ptm >= 0) /* its terminal: closed now that it has gone */
            close(k->ptm);
        k->ptm = -1;
        if (k->kill_timer)
            uds_loop_timer_cancel(loop, (uint64_t)k->kill_timer);
        k->kill_timer = 0;
        if (!k->fwd)
            kid_free(s, k);
    }
}

/*
 * An admitted connection (rules and limits passed, slot taken): record it,
 * with --idle-timeout interpose a forward, fork and exec PROGRAM.
 * Everything that can fail is done before the fork, so a failure closes
 * the client and gives the slot back, with no child to account for (a
 * forward made already ends through its done, which frees the record).
 */
static void on_accept(uds_acceptor *a, int fd, const uds_peer *p, void *arg)
{
    serve *s = arg;
    const char *what = NULL;
    int err = 0;
    int iofd = fd; /* what the program gets as fds 0 and 1 */
    kid *k = NULL;
    if (s->nkids == s->kids_cap) {
        size_t cap = s->kids_cap ? s->kids_cap * 2 : 16;
        kid **v = realloc(s->kids, cap * sizeof(*v));
        if (!v) {
            what = "out of memory";
            goto fail;
        }
        s->kids = v;
        s->kids_cap = cap;
    }
    k = calloc(1, sizeof(*k));
    if (!k) {
        what = "out of memory";
        goto fail;
    }
    k->s = s;
    k->ptm = -1;
    k->uid = p->cred.uid;
    k->num = p->seq;
    /* refused rather than served without the timeout it must obey */
    if (s->pty && (err = make_pty(s, k, fd, &iofd)) < 0) {
        what = "cannot make a pseudo-terminal for --pty";
        goto fail;
    }
    if (!s->pty && s->idle_ms && (err = interpose(s, k, fd, &iofd)) < 0) {
        what = "cannot interpose for --idle-timeout";
        goto fail;
    }
    pid_t pid = fork();
    if (pid < 0) {
        err = -errno;
        what = "fork";
        goto fail;
    }
    if (pid == 0)
        run_child(s, fd, iofd, p);
    if (!k->fwd)
        close(fd);
    else
        close(iofd);
    k->pid = pid;
    k->idx = s->nkids;
    s->kids[s->nkids++] = k;
    char who[UDS_ADDR_STRLEN + 64];
    cli_svc_info(&s->svc, "#%llu %s%s: started %s as pid %ld (%zu open)",
                 (unsigned long long)p->seq, s->is_unix ? "" : "from ",
                 cli_peer_text(p, who, sizeof(who)), s->prog[0], (long)pid, s->nkids);
    return;
fail:
    if (k && k->fwd) {
        /* the forward owns fd: closed by it; the record goes with its done */
        close(iofd);
        k->idx = s->nkids;
        s->kids[s->nkids++] = k;
        uds_fwd_close(k->fwd);
    } else {
        free(k);
        close(fd);
    }
    uds_acceptor_release(a, p->cred.uid);
    if (err)
        cli_svc_warn(&s->svc, "connection #%llu closed: %s: %s", (unsigned long long)p->seq,
                     what, uds_strerror(err));
    else
        cli_svc_warn(&s->svc, "connection #%llu closed: %s", (unsigned long long)p->seq, what);
}

/* One decimal id from the environment (UID, GID): 0 or -1 (said). */
static int env_id(const char *name, unsigned *out)
{
    const char *v = getenv(name);
    char *end;
    if (!v || !*v) {
        cli_warn("serve: -U: $%s is not set (s6-envuidgid sets UID, GID and GIDLIST)", name);
        return -1;
    }
    errno = 0;
    unsigned long n = strtoul(v, &end, 10);
    if (!cli_is_decimal(v) || *end || errno || n > 4294967294UL) {
        cli_warn("serve: -U: bad $%s '%s' (a number up to 4294967294)", name, v);
        return -1;
    }
    *out = (unsigned)n;
    return 0;
}

/*
 * -u/-g/-U into s: the uid, the gid and the supplementary groups PROGRAM
 * runs with. -u USER: USER's groups (getgrouplist) and primary gid unless
 * -g; -g alone: that gid as the only group; -U: $UID, $GID, $GIDLIST.
 * Checked now, so a child never starts with half a change: a caller that
 * is not root can only "drop" to what it is. Returns 0, -1 (said; a
 * usage error) or -2 (said: not allowed, a runtime failure).
 */
static int run_privs(serve *s, const char *run_user, int run_env)
{
    if (run_env && (s->drop_uid || s->drop_gid)) {
        cli_warn("serve: -U takes uid and gid from the environment: not with -u or -g");
        return -1;
    }
    if (run_env) {
        unsigned u, g;
        if (env_id("UID", &u) < 0 || env_id("GID", &g) < 0)
            return -1;
        s->run_uid = u, s->run_gid = g;
        s->drop_uid = s->drop_gid = 1;
        const char *list = getenv("GIDLIST");
        size_t cap = 1;
        for (const char *c = list ? list : ""; *c; c++)
            cap += *c == ',';
        s->run_groups = calloc(cap + 1, sizeof(gid_t));
        if (!s->run_groups)
            cli_die(CLI_FAIL, "serve: out of memory");
        if (list && *list) {
            char *dup = strdup(list), *save = NULL;
            if (!dup)
                cli_die(CLI_FAIL, "serve: out of memory");
            for (char *t = strtok_r(dup, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
                gid_t x;
                if (!cli_is_decimal(t) || cli_parse_gid(t, &x) < 0) {
                    cli_warn("serve: -U: bad group '%s' in $GIDLIST", t);
                    free(dup);
                    return -1;
                }
                s->run_groups[s->run_ngroups++] = x;
            }
            free(dup);
        } else {
            s->run_groups[s->run_ngroups++] = s->run_gid;
        }
    } else if (s->drop_uid) {
        struct passwd *pw = getpwuid(s->run_uid);
        if (!pw && !s->drop_gid) {
            cli_warn("serve: -u %s: no such user in the passwd database; give the group "
                     "with -g", run_user);
            return -1;
        }
        if (!s->drop_gid)
            s->run_gid = pw->pw_gid;
        s->drop_gid = 1;
        int n = 64;
        for (;;) {
            free(s->run_groups);
            s->run_groups = calloc((size_t)n, sizeof(gid_t));
            if (!s->run_groups)
                cli_die(CLI_FAIL, "serve: out of memory");
            if (!pw) {
                s->run_groups[0] = s->run_gid;
                s->run_ngroups = 1;
                break;
            }
            int got = n;
            if (getgrouplist(pw->pw_name, s->run_gid, s->run_groups, &got) >= 0) {
                s->run_ngroups = got;
                break;
            }
            if (got <= n || n > 65536) {
                cli_warn("serve: -u %s: cannot list the groups of '%s'", run_user, pw->pw_name);
                return -1;
            }
            n = got;
        }
    } else if (s->drop_gid) {
        s->run_groups = calloc(1, sizeof(gid_t));
        if (!s->run_groups)
            cli_die(CLI_FAIL, "serve: out of memory");
        s->run_groups[0] = s->run_gid;
        s->run_ngroups = 1;
    }
    if ((s->drop_uid || s->drop_gid) && geteuid() != 0 &&
        ((s->drop_uid && s->run_uid != geteuid()) || s->run_gid != getegid())) {
        cli_warn("serve: -u/-g/-U: changing the user or group of PROGRAM needs root "
                 "(running as uid %u)", (unsigned)geteuid());
        return -2;
    }
    return 0;
}

/* SIGTERM, SIGINT, SIGHUP: stop accepting (the socket file goes) and return. */
static void on_stop(cli_svc *svc, int signo, void *arg)
{
    serve *s = arg;
    cli_svc_info(svc, "%s, closing %s", strsignal(signo), s->addresc);
    uds_acceptor_close(s->acc);
    uds_loop_stop(svc->loop);
}

int cmd_serve(int argc, char **argv)
{
    serve s;
    memset(&s, 0, sizeof(s));
    s.maxconn = 40;
    int verbose = 0, ready_fd = -1;
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

    enum { O_ALLOW_UID = 256, O_DENY_UID, O_ALLOW_GID, O_DENY_GID, O_BACKLOG, O_IDLE, O_READY,
           O_SGROUP, O_PTY };
    static const char *const rule_name[] = {"allow-uid", "deny-uid", "allow-gid", "deny-gid"};
    static const struct option longopts[] = {
        {"help", no_argument, NULL, 'h'},
        {"verbose", no_argument, NULL, 'v'},
        {"mode", required_argument, NULL, 'm'},
        {"owner", required_argument, NULL, 'o'},
        {"group", required_argument, NULL, O_SGROUP}, /* the socket file's group */
        {"type", required_argument, NULL, 't'},
        {"backlog", required_argument, NULL, O_BACKLOG},
        {"run-user", required_argument, NULL, 'u'},
        {"run-group", required_argument, NULL, 'g'},
        {"run-env", no_argument, NULL, 'U'},
        {"allow-uid", required_argument, NULL, O_ALLOW_UID},
        {"deny-uid", required_argument, NULL, O_DENY_UID},
        {"allow-gid", required_argument, NULL, O_ALLOW_GID},
        {"deny-gid", required_argument, NULL, O_DENY_GID},
        {"idle-timeout", required_argument, NULL, O_IDLE},
        {"ready-fd", required_argument, NULL, O_READY},
        {"pty", no_argument, NULL, O_PTY},
        {NULL, 0, NULL, 0},
    };
    /* without "--", stop at the first non-option after ADDR (POSIX mode) */
    /* -g is the run group; the socket file's group stays --group */
    const char *optstr = dd >= 0 ? "hvc:C:u:g:U" : "+hvc:C:u:g:U";
    const char *run_user = NULL;
    int run_env = 0;
    char **pargv = argv;
    int pargc = nopt;
    optind = 0;
    opterr = 0; /* our own message, naming udsock and the subcommand */
    int opt;
    const char *addrarg = NULL;
    for (;;) {
        opt = getopt_long(pargc, pargv, optstr, longopts, NULL);
        if (opt == -1) {
            if (dd < 0 && optind < pargc && !addrarg) {
                addrarg = pargv[optind++]; /* ADDR, then more options */
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
            verbose = 1;
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
        case O_READY:
            ready_fd = cli_opt_ready_fd("serve", optarg);
            break;
        case O_PTY:
            s.pty = 1;
            break;
        case 'u':
            r = cli_parse_uid(optarg, &s.run_uid);
            if (r < 0)
                cli_usage_error("serve", "bad -u '%s': %s", optarg,
                                r == -ERANGE ? "a uid is at most 4294967294" : "no such user");
            s.drop_uid = 1;
            run_user = optarg;
            break;
        case 'g':
            r = cli_parse_gid(optarg, &s.run_gid);
            if (r < 0)
                cli_usage_error("serve", "bad -g '%s': %s", optarg,
                                r == -ERANGE ? "a gid is at most 4294967294" : "no such group");
            s.drop_gid = 1;
            break;
        case 'U':
            run_env = 1;
            break;
        case O_IDLE:
            r = cli_opt_seconds_ms("serve", "--idle-timeout", optarg);
            if (r <= 0)
                cli_usage_error("serve", "bad --idle-timeout '%s': expected seconds > 0 "
                                         "(e.g. 30 or 0.5)", optarg);
            s.idle_ms = (unsigned)r;
            break;
        case O_ALLOW_UID:
        case O_DENY_UID:
        case O_ALLOW_GID:
        case O_DENY_GID:
            r = cli_access_add(&s.rules, opt - O_ALLOW_UID, optarg, &bad);
            if (r < 0)
                cli_die(CLI_USAGE, "serve: %s: unknown %s '%s'", rule_name[opt - O_ALLOW_UID],
                        opt == O_ALLOW_UID || opt == O_DENY_UID ? "user" : "group",
                        bad ? bad : optarg);
            break;
        case 'm':
        case 'o':
            parse_listen_opt(opt, optarg, &lo);
            break;
        case O_SGROUP:
            parse_listen_opt('g', optarg, &lo);
            break;
        default:
            if (optopt > 0 && optopt < 128)
                cli_warn("serve: option '-%c' is unknown or needs a value (try 'udsock serve --help')", optopt);
            else
                cli_warn("serve: option '%s' is unknown or needs a value (try 'udsock serve --help')",
                         pargv[optind - 1]);
            goto usage_out;
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
            goto usage_out;
        }
        prog = argv + dd + 1;
    } else {
        if (!addrarg) {
            usage(stderr);
            goto usage_out;
        }
        prog = pargv + optind;
    }
    if (!*prog) {
        cli_warn("serve: no PROGRAM given (udsock serve ADDR -- PROGRAM [ARGS...])");
        goto usage_out;
    }
    s.prog = prog;
    int pr = run_privs(&s, run_user, run_env);
    struct group *ttygr = s.pty && s.drop_uid ? getgrnam("tty") : NULL;
    s.tty_gid = ttygr ? ttygr->gr_gid : (gid_t)-1;
    if (pr < 0) {
        if (pr == -1)
            goto usage_out;
        cli_access_free(&s.rules);
        free(s.run_groups);
        return CLI_FAIL;
    }

    uds_addr addr;
    cli_parse_addr(&addr, addrarg);
    if (addr.kind == UDS_ADDR_UDP) {
        cli_warn("serve: %s: datagram addresses have no connections to serve", addrarg);
        goto usage_out;
    }
    s.is_unix = addr.kind != UDS_ADDR_TCP;
    if (!s.is_unix && (cli_access_active(&s.rules) || s.maxperuid)) {
        cli_warn("serve: --allow/--deny and -C need a unix socket (a TCP peer has no uid)");
        goto usage_out;
    }

    if (cli_parse_only) /* fuzz seam (cli.h): options parsed, no I/O yet */
        return CLI_OK;
    /* fds 0-2 must exist, or an accepted socket could land on them */
    for (int fd = 0; fd < 3; fd++)
        if (fcntl(fd, F_GETFD) < 0 && open("/dev/null", O_RDWR) != fd)
            cli_die(CLI_FAIL, "serve: cannot open /dev/null: %s", strerror(errno));

    cli_svc_init(&s.svc, "serve", on_stop, &s);
    s.svc.verbose = verbose;
    /* an inherited SIG_IGN would make the kernel reap the children itself,
       and their slots would never be given back */
    signal(SIGCHLD, SIG_DFL);
    int r = uds_loop_signal(s.svc.loop, SIGCHLD, on_sigchld, &s);
    if (r < 0)
        cli_die(CLI_FAIL, "serve: signals: %s", uds_strerror(r));

    uds_acceptor_opts ao;
    memset(&ao, 0, sizeof(ao));
    ao.max_conns = s.maxconn;
    ao.max_conns_per_uid = s.maxperuid;
    ao.access = s.rules.rules;
    ao.flags = UDS_ACCEPT_BLOCKING; /* the program gets a blocking socket */
    if (s.is_unix) /* UNIXREMOTEPID is exported only if the pidfd confirms it */
        ao.flags |= UDS_ACCEPT_PIDFD;
    ao.limit_names[0] = "-c";
    ao.limit_names[1] = "-C";
    ao.log = cli_svc_log;
    ao.log_arg = &s.svc;
    r = uds_acceptor_new(&s.acc, s.svc.loop, &ao, on_accept, &s);
    if (r < 0) {
        cli_warn("serve: %s", uds_strerror(r));
        cli_svc_free(&s.svc);
        cli_access_free(&s.rules);
        free(s.run_groups);
        return CLI_FAIL;
    }

    uds_listener l;
    int inherited = 0;
    r = cli_listen(&l, &addr, &lo, &inherited);
    if (r == 0) {
        if (l.addr.kind != UDS_ADDR_ABSTRACT || cli_addr_env(&l.addr, s.addrtext,
                                                             sizeof(s.addrtext)) < 0)
            uds_addr_format(&l.addr, s.addrtext, sizeof(s.addrtext));
        if (s.is_unix && l.addr.kind == UDS_ADDR_PATH)
            snprintf(s.addrtext, sizeof(s.addrtext), "%s", uds_addr_path(&l.addr));
        cli_addr_text(&l.addr, s.addresc, sizeof(s.addresc));
        r = uds_acceptor_add(s.acc, &l);
        if (r < 0)
            uds_listener_close(&l);
    }
    if (r < 0) {
        cli_svc_interrupted(r);
        cli_warn("serve: %s", cli_errtext("listen", addrarg, r));
        uds_acceptor_free(s.acc);
        cli_svc_free(&s.svc);
        cli_access_free(&s.rules);
        free(s.run_groups);
        return CLI_FAIL;
    }
    cli_svc_info(&s.svc, "listening on %s%s", s.addresc,
                 inherited ? " (inherited from the service manager: never removed)" : "");
    if (cli_port0(&addr) && !verbose) /* a script needs the port: said anyway */
        cli_warn("serve: listening on %s", s.addresc);
    cli_ready("serve", ready_fd);

    int status = CLI_OK;
    r = uds_loop_run(s.svc.loop);
    if (r < 0) {
        cli_warn("serve: event loop: %s", uds_strerror(r));
        status = CLI_FAIL;
    }
    uds_acceptor_close(s.acc);
    on_sigchld(s.svc.loop, SIGCHLD, &s); /* what has exited by now */
    /* the others keep running; with --idle-timeout their connections end
       here (the forwards are ours: the programs read EOF) */
    s.exiting = 1;
    for (size_t i = 0; i < s.nkids; i++) {
        kid *k = s.kids[i];
        if (k->kill_timer)
            uds_loop_timer_cancel(s.svc.loop, (uint64_t)k->kill_timer);
        k->kill_timer = 0;
        if (k->fwd)
            uds_fwd_close(k->fwd); /* done comes from cli_svc_free */
    }
    uds_acceptor_free(s.acc);
    cli_svc_free(&s.svc);
    for (size_t i = 0; i < s.nkids; i++) {
        if (s.kids[i]->ptm >= 0) /* --pty: their terminals hang up */
            close(s.kids[i]->ptm);
        free(s.kids[i]);
    }
    free(s.kids);
    cli_access_free(&s.rules);
    free(s.run_groups);
    return status;
usage_out: /* after the rules were parsed: not leaked (LeakSanitizer) */
    cli_access_free(&s.rules);
    free(s.run_groups);
    return CLI_USAGE;
}
