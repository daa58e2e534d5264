/*
 * service.c — the shared frame of the long-running commands (service.h).
 */
#include "service.h"
#include "opts.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stddef.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>

static void stop_cb(uds_loop *loop, int signo, void *arg)
{
    cli_svc *s = arg;
    if (!s->stop_signo)
        s->stop_signo = signo;
    if (s->on_stop)
        s->on_stop(s, signo, s->stop_arg);
    else
        uds_loop_stop(loop);
}

void cli_svc_init(cli_svc *s, const char *cmd, void (*on_stop)(cli_svc *, int, void *),
                  void *arg)
{
    memset(s, 0, sizeof(*s));
    s->cmd = cmd;
    s->on_stop = on_stop;
    s->stop_arg = arg;
    int r = uds_loop_new(&s->loop);
    if (r < 0)
        cli_die(CLI_FAIL, "%s: %s", cmd, uds_strerror(r));
    static const int sigs[] = {SIGINT, SIGTERM, SIGHUP};
    for (size_t i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++) {
        signal(sigs[i], SIG_DFL);
        r = uds_loop_signal(s->loop, sigs[i], stop_cb, s);
        if (r < 0)
            cli_die(CLI_FAIL, "%s: signals: %s", cmd, uds_strerror(r));
    }
}

void cli_svc_free(cli_svc *s)
{
    if (s->rl_timer > 0)
        uds_loop_timer_cancel(s->loop, (uint64_t)s->rl_timer);
    uds_loop_free(s->loop);
    s->loop = NULL;
}

void cli_svc_log(void *arg, int level, const char *text)
{
    cli_svc *s = arg;
    if (level >= UDS_LOG_INFO && !s->verbose)
        return;
    cli_warn("%s: %s", s->cmd, text);
}

/* Prints the count of warnings the interval swallowed, once it is over. */
static void rl_summary(uds_loop *loop, uint64_t id, void *arg)
{
    (void)id;
    cli_svc *s = arg;
    s->rl_timer = 0;
    unsigned n = uds_ratelimit_flush(&s->rl, uds_loop_now(loop));
    if (n)
        cli_warn("%s: %u more warnings suppressed in the last second", s->cmd, n);
}

void cli_svc_warn(cli_svc *s, const char *fmt, ...)
{
    uint64_t now = uds_loop_now(s->loop);
    unsigned before = 0;
    int ok = uds_ratelimit_pass(&s->rl, now, &before);
    if (before)
        cli_warn("%s: %u more warnings suppressed in the last second", s->cmd, before);
    if (!ok) {
        if (!s->rl_timer) {
            uint64_t end = uds_ratelimit_end(&s->rl);
            int64_t t = uds_loop_timer(s->loop, end > now ? end - now : 0, rl_summary, s);
            s->rl_timer = t > 0 ? t : 0;
        }
        return;
    }
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    cli_warn("%s: %s", s->cmd, msg);
}

void cli_svc_info(cli_svc *s, const char *fmt, ...)
{
    if (!s->verbose)
        return;
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    cli_warn("%s: %s", s->cmd, msg);
}

void cli_svc_interrupted(int err)
{
    if (err != -EINTR)
        return;
    static const int sigs[] = {SIGINT, SIGTERM, SIGHUP, SIGQUIT};
    sigset_t p;
    int sig = SIGINT; /* a handler ran: nothing pending to name */
    if (sigpending(&p) == 0)
        for (size_t i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++)
            if (sigismember(&p, sigs[i]) == 1) {
                sig = sigs[i];
                break;
            }
    cli_die_by_signal(sig);
}

const char *cli_esc(const void *data, size_t len, char *buf, size_t size)
{
    if (uds_escape(data, len, buf, size) < 0 && size)
        buf[0] = 0;
    return buf;
}

/*
 * Why not uds_addr_format for a terminal: it writes a path's bytes as they
 * are (a client can bind a name holding a newline and a forged log line,
 * or terminal escapes), and abstract names in its own \xNN style. Here
 * every peer-chosen byte goes through uds_escape, the one rule, with the
 * exact length the kernel gave (an abstract name may hold NULs).
 */
const char *cli_addr_text(const uds_addr *a, char *buf, size_t size)
{
    if (!size)
        return buf;
    if (a->kind == UDS_ADDR_ABSTRACT) {
        size_t off = offsetof(struct sockaddr_un, sun_path);
        size_t n = a->len > off + 1 && a->len <= sizeof(struct sockaddr_un) ? a->len - off - 1 : 0;
        buf[0] = '@';
        cli_esc(a->u.un.sun_path + 1, n, buf + 1, size - 1);
        return buf;
    }
    char t[UDS_ADDR_STRLEN];
    if (uds_addr_format(a, t, sizeof(t)) < 0)
        snprintf(t, sizeof(t), "(unknown)");
    return cli_esc(t, strlen(t), buf, size);
}

/*
 * Why exact bytes here and escapes on the terminal: the program reading
 * the environment compares or looks the name up, and an escaped form
 * would be a different name; the environment is no terminal (a program
 * that prints the name must escape it itself). Only an abstract name with
 * a NUL byte cannot be a C string: then there is no value (-1).
 */
int cli_addr_env(const uds_addr *a, char *buf, size_t size)
{
    if (a->kind == UDS_ADDR_ABSTRACT) {
        size_t off = offsetof(struct sockaddr_un, sun_path);
        if (a->len <= off + 1 || a->len > sizeof(struct sockaddr_un))
            return -1;
        size_t n = a->len - off - 1;
        if (n + 2 > size || memchr(a->u.un.sun_path + 1, 0, n))
            return -1;
        buf[0] = '@';
        memcpy(buf + 1, a->u.un.sun_path + 1, n);
        buf[n + 1] = 0;
        return 0;
    }
    return uds_addr_format(a, buf, size) < 0 ? -1 : 0;
}

const char *cli_peer_text(const uds_peer *p, char *buf, size_t size)
{
    if (p->is_unix) {
        char name[UDS_ADDR_STRLEN] = "";
        if (p->addr.kind == UDS_ADDR_PATH || p->addr.kind == UDS_ADDR_ABSTRACT) {
            memcpy(name, " name ", 6);
            cli_addr_text(&p->addr, name + 6, sizeof(name) - 6);
        }
        const char *gone = p->pidfd_how == UDS_PIDFD_GONE ? " (exited)" : "";
        snprintf(buf, size, "uid %u gid %u pid %ld%s%s", (unsigned)p->cred.uid,
                 (unsigned)p->cred.gid, (long)p->cred.pid, gone, name);
        return buf;
    }
    return cli_addr_text(&p->addr, buf, size);
}

/* ---- datagram replies ---------------------------------------------------- */

#define DREPLY_SNDBUF (4 * 1024 * 1024) /* asked for; the kernel doubles it */

/*
 * Why a large send buffer: on a unix socket every reply still unread by
 * its receiver is charged to the sender's buffer (each receiver's queue
 * holds net.unix.max_dgram_qlen + 1 of them), so a peer with many sockets
 * that never read fills the default 208 KiB with 25 sockets and every
 * other sender's reply is lost. SO_SNDBUFFORCE (root) or SO_SNDBUF (up to
 * net.core.wmem_max) raises the number of sockets that takes; the memory
 * is the kernel's and only used while replies wait unread.
 */
void cli_dgram_prepare(int fd)
{
    int r = uds_set_nonblock(fd, 1);
    if (r < 0)
        cli_die(CLI_FAIL, "non-blocking socket: %s", uds_strerror(r));
    struct sockaddr_storage ss;
    socklen_t sl = sizeof(ss);
    if (getsockname(fd, (struct sockaddr *)&ss, &sl) < 0 || ss.ss_family != AF_UNIX)
        return;
    int cur = 0, want = DREPLY_SNDBUF;
    sl = sizeof(cur);
    if (getsockopt(fd, SOL_SOCKET, SO_SNDBUF, &cur, &sl) == 0 && cur >= 2 * want)
        return;
    if (setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &want, sizeof(want)) < 0)
        (void)setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &want, sizeof(want));
}

void cli_dreply_init(cli_dreply *d, cli_svc *s)
{
    memset(d, 0, sizeof(*d));
    d->svc = s;
    d->rl.burst = 1;
    d->rl.interval_ms = 1000;
}

/* The drops the last interval did not say, in one line. */
static void dreply_summary(cli_dreply *d)
{
    if (d->held)
        cli_warn("%s: %llu more replies dropped in the last second (%llu in all)",
                 d->svc->cmd, (unsigned long long)d->held, (unsigned long long)d->dropped);
    d->held = 0;
}

static void dreply_timer(uds_loop *loop, uint64_t id, void *arg)
{
    (void)loop;
    (void)id;
    cli_dreply *d = arg;
    d->timer = 0;
    uds_ratelimit_flush(&d->rl, uds_loop_now(d->svc->loop));
    dreply_summary(d);
}

/*
 * Why drop rather than wait: a blocking sendto() to a sender whose queue
 * is full sleeps until that sender reads, which a hostile one never does,
 * and nobody else is served meanwhile. Why rate-limited: every drop is
 * caused by a peer, at whatever rate it likes.
 */
int cli_dreply_send(cli_dreply *d, int fd, const void *buf, size_t len, const uds_addr *to)
{
    ssize_t w = uds_sendto(fd, buf, len, to);
    if (w >= 0)
        return 0;
    d->dropped++;
    uint64_t now = uds_loop_now(d->svc->loop);
    if (uds_ratelimit_pass(&d->rl, now, NULL)) {
        dreply_summary(d);
        char peer[UDS_ADDR_STRLEN];
        cli_addr_text(to, peer, sizeof(peer));
        const char *why = w == -EAGAIN ? "it does not read its replies (its queue or our "
                                         "send buffer is full)"
                          : w == -ECONNREFUSED || w == -ENOENT ? "the sender is gone"
                                                               : uds_strerror((int)w);
        cli_warn("%s: reply to %s dropped: %s (%llu dropped so far; at most one such "
                 "line a second)", d->svc->cmd, peer, why, (unsigned long long)d->dropped);
    } else {
        d->held++;
        if (!d->timer) {
            uint64_t end = uds_ratelimit_end(&d->rl);
            int64_t t = uds_loop_timer(d->svc->loop, end > now ? end - now : 0,
                                       dreply_timer, d);
            d->timer = t > 0 ? t : 0;
        }
    }
    return (int)w;
}

void cli_dreply_done(cli_dreply *d)
{
    if (d->timer > 0)
        uds_loop_timer_cancel(d->svc->loop, (uint64_t)d->timer);
    d->timer = 0;
    dreply_summary(d);
}

/* Same endpoint, or (paths) the same file name in the same real directory:
   "x.sock" from inside /run/app and /run/app/x.sock are one place. */
static int same_place(const uds_addr *want, const uds_addr *got)
{
    if (uds_addr_equal(want, got))
        return 1;
    if (want->kind != UDS_ADDR_PATH || got->kind != UDS_ADDR_PATH)
        return 0;
    const char *pw = uds_addr_path(want), *pg = uds_addr_path(got);
    const char *bw = strrchr(pw, '/'), *bg = strrchr(pg, '/');
    if (strcmp(bw ? bw + 1 : pw, bg ? bg + 1 : pg) != 0)
        return 0;
    char dw[PATH_MAX], dg[PATH_MAX], rw[PATH_MAX], rg[PATH_MAX];
    snprintf(dw, sizeof(dw), "%.*s", bw ? (int)(bw - pw) + (bw == pw) : 1, bw ? pw : ".");
    snprintf(dg, sizeof(dg), "%.*s", bg ? (int)(bg - pg) + (bg == pg) : 1, bg ? pg : ".");
    return realpath(dw, rw) && realpath(dg, rg) && strcmp(rw, rg) == 0;
}

/* Read once: the variables are removed from the environment then. */
static uds_activation g_act;
static int g_act_read;

int cli_listen(uds_listener *l, const uds_addr *a, const uds_listen_opts *o, int *inherited)
{
    if (inherited)
        *inherited = 0;
    if (!g_act_read) {
        g_act_read = 1;
        int n = uds_activation_get(&g_act, UDS_ACT_UNSET_ENV);
        if (n < 0)
            cli_warn("socket activation: %s (LISTEN_FDS ignored)", uds_strerror(n));
    }
    int want_type = o && o->type ? o->type : UDS_STREAM;
    for (int i = 0; i < g_act.count; i++) {
        int fd = UDS_LISTEN_FDS_START + i;
        uds_listener cand;
        if (uds_socket_check(fd, want_type, 0, -1) < 0 || uds_listener_from_fd(&cand, fd) < 0)
            continue;
        if (!same_place(a, &cand.addr))
            continue;
        if (want_type != UDS_DGRAM && uds_socket_check(fd, want_type, 0, 1) < 0)
            continue; /* bound there but not listening: not usable */
        if (o && (o->flags & UDS_NONBLOCK)) {
            int fl = fcntl(fd, F_GETFL);
            if (fl >= 0)
                fcntl(fd, F_SETFL, fl | O_NONBLOCK);
        }
        *l = cand;
        if (inherited)
            *inherited = 1;
        return 0;
    }
    return uds_listen(l, a, o);
}

int cli_opt_ready_fd(const char *cmd, const char *text)
{
    if (!cli_is_decimal(text) || strlen(text) > 7)
        cli_usage_error(cmd, "bad --ready-fd '%s': want a file descriptor number", text);
    int fd = atoi(text);
    if (fcntl(fd, F_GETFD) < 0)
        cli_usage_error(cmd, "--ready-fd %d: fd %d is not open", fd, fd);
    if (fd <= 2)
        cli_usage_error(cmd, "--ready-fd %d: that is standard input, output or error", fd);
    fcntl(fd, F_SETFD, FD_CLOEXEC);
    return fd;
}

void cli_ready(const char *cmd, int ready_fd)
{
    int r;
    if (ready_fd >= 0 && (r = uds_ready_fd(ready_fd)) < 0)
        cli_warn("%s: --ready-fd %d: %s", cmd, ready_fd, uds_strerror(r));
    if ((r = uds_notify_ready()) < 0)
        cli_warn("%s: NOTIFY_SOCKET: %s", cmd, uds_strerror(r));
}

int cli_port0(const uds_addr *a)
{
    if (a->kind != UDS_ADDR_TCP && a->kind != UDS_ADDR_UDP)
        return 0;
    return (a->u.sa.sa_family == AF_INET6 ? a->u.in6.sin6_port : a->u.in.sin_port) == 0;
}
/* See service.h: serve's, recv --reply's and listen --fds's programs. */
void cli_child_signals(void)
{
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    signal(SIGPIPE, SIG_DFL);
}

