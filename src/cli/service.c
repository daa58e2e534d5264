/*
 * service.c — the shared frame of the long-running commands (service.h).
 */
#include "service.h"

#include <signal.h>
#include <stddef.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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
