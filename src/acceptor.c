/*
 * acceptor.c — the library's one accepting engine: listeners on a loop,
 * bounded batches of accept4(), admission (access rules, total and per-uid
 * limits, an admit hook), accept-and-close for refused clients with
 * rate-limited log lines, and the reserve-fd strategy for EMFILE.
 *
 * Nothing here spins on a level-triggered loop: a listener is watched only
 * while accepting may make progress. When accept4() runs out of fds, every
 * listener is made quiet and a loop timer (not "the next idle round", which
 * never comes while other fds are busy) puts them back after
 * emfile_pause_ms.
 *
 * Re-entrancy: the accept callback and the admit hook may call
 * uds_acceptor_pause/resume/close/release and uds_acceptor_add; listener
 * records are never freed while a batch runs (depth > 0), only their fds
 * closed, so the batch loop sees fd -1 and stops. The callback must not
 * free the acceptor.
 */
#include "internal.h"

#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define DEF_BATCH 64
#define DEF_PAUSE_MS 100
#define LOG_PER_SEC 10        /* refusal lines per second before summarising */
#define LOG_WINDOW_MS 1000

struct alsn {
    uds_acceptor *a;
    uds_listener l;
    int family;
    int type;
    unsigned watched; /* events the loop has for this fd now */
};

struct uid_count {
    uid_t uid;
    unsigned n;
};

struct uds_acceptor {
    uds_loop *loop;
    uds_acceptor_opts o;
    char *name;
    uds_accept_cb cb;
    void *arg;
    struct alsn **ls;
    int nls, cap;
    int reserve_fd;
    int paused;   /* by uds_acceptor_pause */
    int starved;  /* out of fds: waiting for resume_timer */
    int depth;    /* batches running (callbacks may re-enter) */
    int64_t resume_timer;
    int64_t summary_timer;
    uds_ratelimit rl;     /* refusal lines */
    uint64_t emfile_log_ms;  /* last EMFILE line */
    uint64_t emfile_quiet;   /* pauses since then that were not logged */
    uint64_t seq;
    unsigned conns;
    struct uid_count *uids;
    unsigned nuids, uids_cap;
    uds_acceptor_stats st;
};

/* One log line, prefixed with the acceptor's name. */
static void alog(uds_acceptor *a, int level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void alog(uds_acceptor *a, int level, const char *fmt, ...)
{
    if (!a->o.log)
        return;
    char buf[768];
    int n = 0;
    if (a->name)
        n = snprintf(buf, sizeof(buf), "%s: ", a->name);
    if (n < 0 || (size_t)n >= sizeof(buf))
        n = 0;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf + n, sizeof(buf) - (size_t)n, fmt, ap);
    va_end(ap);
    a->o.log(a->o.log_arg, level, buf);
}

/* Peer-chosen text for a log line: the library's one escaping rule. */
static void escape(const char *in, char *out, size_t size)
{
    if (uds_escape(in, strlen(in), out, size) < 0 && size)
        out[0] = 0;
}

/* "/run/x.sock" or "tcp:127.0.0.1:80": which listener a line is about. */
static const char *lname(const struct alsn *e, char *buf, size_t size)
{
    char t[UDS_ADDR_STRLEN];
    if (uds_addr_format(&e->l.addr, t, sizeof(t)) < 0)
        snprintf(t, sizeof(t), "fd %d", e->l.fd);
    escape(t, buf, size);
    return buf;
}

/*
 * "connection #7 from pid 123 uid 1000" (unix) or "connection #8 from
 * tcp:127.0.0.1:5555": who a line is about. A connection added without
 * accept (seq 0) has no number.
 */
static const char *pname(const uds_peer *p, char *buf, size_t size)
{
    char t[UDS_ADDR_STRLEN], num[40] = "";
    if (p->seq)
        snprintf(num, sizeof(num), " #%llu", (unsigned long long)p->seq);
    if (p->is_unix) {
        if (p->cred.uid == (uid_t)-1)
            snprintf(t, sizeof(t), "a unix peer (credentials unknown)");
        else
            snprintf(t, sizeof(t), "pid %ld uid %lu", (long)p->cred.pid,
                     (unsigned long)p->cred.uid);
    } else if (uds_addr_format(&p->addr, t, sizeof(t)) < 0) {
        snprintf(t, sizeof(t), "an unknown peer");
    }
    char e[UDS_ADDR_STRLEN];
    escape(t, e, sizeof(e));
    snprintf(buf, size, "connection%s from %s", num, e);
    return buf;
}

/* ---- refusal log, rate-limited ------------------------------------------ */

static void summary_fire(uds_loop *loop, uint64_t id, void *arg);

/* Writes the "N more refused" line for what the interval held back. */
static void say_suppressed(uds_acceptor *a, unsigned n)
{
    if (n)
        alog(a, UDS_LOG_WARNING,
             "%u more connections refused in the last second (at most %d refusals "
             "are logged per second)",
             n, LOG_PER_SEC);
}

static void summary_fire(uds_loop *loop, uint64_t id, void *arg)
{
    (void)id;
    uds_acceptor *a = arg;
    a->summary_timer = 0;
    (void)loop;
    say_suppressed(a, uds_ratelimit_flush(&a->rl, uds__now_ms()));
}

/* At free: what is held back is said now rather than never. */
static void flush_summary(uds_acceptor *a)
{
    unsigned n = a->rl.suppressed;
    a->rl.suppressed = 0;
    say_suppressed(a, n);
}

/*
 * A refusal line. Why rate-limited: a flood of refused clients (a runaway
 * script, an attacker over the limits) must not turn into a flood of log
 * lines; at most LOG_PER_SEC lines per interval (uds_ratelimit), and the
 * rest is counted and reported in one line when the interval ends (a timer
 * that exists only while something is held back).
 */
static void log_refusal(uds_acceptor *a, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void log_refusal(uds_acceptor *a, const char *fmt, ...)
{
    if (!a->o.log)
        return;
    uint64_t now = uds__now_ms();
    unsigned before = 0;
    int ok = uds_ratelimit_pass(&a->rl, now, &before);
    say_suppressed(a, before);
    if (!ok) {
        if (!a->summary_timer) {
            uint64_t end = uds_ratelimit_end(&a->rl);
            int64_t t = uds_loop_timer(a->loop, end > now ? end - now : 1, summary_fire, a);
            if (t > 0)
                a->summary_timer = t;
            else
                flush_summary(a); /* no timer: say it now rather than never */
        }
        return;
    }
    char buf[640];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    alog(a, UDS_LOG_WARNING, "%s", buf);
}

/* ---- per-uid accounting ------------------------------------------------- */

static struct uid_count *uid_find(const uds_acceptor *a, uid_t uid)
{
    for (unsigned i = 0; i < a->nuids; i++)
        if (a->uids[i].uid == uid)
            return &a->uids[i];
    return NULL;
}

/* The count record of uid, created (n = 0) if needed; NULL if out of memory. */
static struct uid_count *uid_get(uds_acceptor *a, uid_t uid)
{
    struct uid_count *u = uid_find(a, uid);
    if (u)
        return u;
    if (a->nuids == a->uids_cap) {
        unsigned cap = a->uids_cap ? a->uids_cap * 2 : 8;
        struct uid_count *v = realloc(a->uids, cap * sizeof(*v));
        if (!v)
            return NULL;
        a->uids = v;
        a->uids_cap = cap;
    }
    a->uids[a->nuids].uid = uid;
    a->uids[a->nuids].n = 0;
    return &a->uids[a->nuids++];
}

unsigned uds_acceptor_uid_conns(const uds_acceptor *a, uid_t uid)
{
    if (!a)
        return 0;
    const struct uid_count *u = uid_find(a, uid);
    return u ? u->n : 0;
}

void uds_acceptor_release(uds_acceptor *a, uid_t uid)
{
    if (!a)
        return;
    if (a->conns > 0)
        a->conns--;
    if (uid == (uid_t)-1) /* not a unix peer: no per-uid slot */
        return;
    struct uid_count *u = uid_find(a, uid);
    if (u && u->n > 0 && --u->n == 0)
        *u = a->uids[--a->nuids];
}

/* ---- admission ---------------------------------------------------------- */

/*
 * Judges a connected client: access rules, then max_conns, then
 * max_conns_per_uid (unix peers), then the admit hook. On admission the
 * slot is taken (conns, per-uid count) and 0 returned; on refusal it is
 * counted and logged and a negative code returned (-EACCES rules or hook,
 * -EUSERS a limit, -ENOMEM, or the error of evaluating a rule); the fd is
 * left to the caller either way. Shared by accepted clients and
 * uds__acceptor_admit_fd (connections that did not come through accept).
 */
static int judge(uds_acceptor *a, int fd, uds_peer *p)
{
    char who[UDS_ADDR_STRLEN + 48];
    const char *why = NULL;
    int r = uds__access_check_af(a->o.access, fd, p->is_unix ? AF_UNIX : AF_INET, &p->cred, &why);
    if (!p->is_unix)
        p->cred = (uds_cred){0, (uid_t)-1, (gid_t)-1};
    if (r < 0) {
        log_refusal(a, "refused %s: access rules cannot be "
                       "evaluated: %s: %s",
                    pname(p, who, sizeof(who)),
                    why && *why ? why : "error", uds_strerror(r));
        a->st.refused++;
        return r;
    }
    if (r == 0) {
        log_refusal(a, "refused %s: %s by the access rules",
                    pname(p, who, sizeof(who)),
                    why && *why ? why : "refused");
        a->st.refused++;
        return -EACCES;
    }
    if ((a->o.flags & UDS_ACCEPT_PIDFD) && p->is_unix) {
        /* right after SO_PEERCRED: the fallback's race is as short as it gets */
        r = uds__peer_pidfd_cred(fd, &p->cred, &p->pidfd_how);
        if (r >= 0) {
            p->pidfd = r;
        } else if (r != -ESRCH && r != -EOPNOTSUPP) {
            log_refusal(a, "refused %s: cannot get its pidfd: %s",
                        pname(p, who, sizeof(who)), uds_strerror(r));
            a->st.refused++;
            return r;
        }
    }
    if (a->o.max_conns && a->conns >= a->o.max_conns) {
        log_refusal(a, "refused %s: %u connections open "
                       "(%s %u)",
                    pname(p, who, sizeof(who)), a->conns,
                    a->o.limit_names[0] ? a->o.limit_names[0] : "max_conns", a->o.max_conns);
        a->st.refused++;
        return -EUSERS;
    }
    struct uid_count *u = NULL;
    /* (uid_t)-1 is "no uid" (uds_acceptor_release skips it): never counted */
    int per_uid = p->is_unix && p->cred.uid != (uid_t)-1;
    if (per_uid) {
        u = uid_get(a, p->cred.uid);
        if (!u) {
            log_refusal(a, "refused %s: out of memory for "
                           "the per-uid count",
                        pname(p, who, sizeof(who)));
            a->st.refused++;
            return -ENOMEM;
        }
        if (a->o.max_conns_per_uid && u->n >= a->o.max_conns_per_uid) {
            log_refusal(a, "refused %s: uid %lu has %u "
                           "connections open (%s %u)",
                        pname(p, who, sizeof(who)), (unsigned long)p->cred.uid, u->n,
                        a->o.limit_names[1] ? a->o.limit_names[1] : "max_conns_per_uid",
                        a->o.max_conns_per_uid);
            a->st.refused++;
            return -EUSERS;
        }
        p->uid_conns = u->n + 1;
    }
    if (a->o.admit) {
        const char *hw = NULL;
        r = a->o.admit(a, fd, p, &hw, a->o.admit_arg);
        if (r < 0) {
            log_refusal(a, "refused %s: %s",
                        pname(p, who, sizeof(who)),
                        hw && *hw ? hw : "refused by the admit hook");
            a->st.refused++;
            /* the hook may have re-entered (release): find the record anew */
            if (per_uid) {
                u = uid_find(a, p->cred.uid);
                if (u && u->n == 0)
                    *u = a->uids[--a->nuids];
            }
            return -EACCES;
        }
        if (per_uid)
            u = uid_get(a, p->cred.uid); /* the table may have moved */
        if (per_uid && !u) {
            a->st.refused++;
            return -ENOMEM;
        }
    }
    a->conns++;
    if (u)
        u->n++;
    return 0;
}

/* Stops or restarts watching each listener as pause/starvation say. */
static void rearm(uds_acceptor *a);

static void resume_fire(uds_loop *loop, uint64_t id, void *arg)
{
    (void)loop;
    (void)id;
    uds_acceptor *a = arg;
    a->resume_timer = 0;
    a->starved = 0;
    rearm(a);
}

/*
 * Accepting cannot go on now (out of fds, or an unexpected accept error
 * that would repeat): make every listener quiet and let a timer put them
 * back. Why a timer and not "when the loop is idle": a loop with other
 * busy fds is never idle, and accepting would never resume.
 */
static void starve(uds_acceptor *a)
{
    if (a->starved)
        return;
    int64_t t = uds_loop_timer(a->loop, a->o.emfile_pause_ms, resume_fire, a);
    if (t <= 0)
        return; /* no timer: keep accepting rather than stop for good */
    a->resume_timer = t;
    a->starved = 1;
    rearm(a);
}

/*
 * Out of fds. Why a reserve fd: the listener stays readable while clients
 * wait, and those clients would hang in the backlog; closing the reserve
 * frees exactly one fd to accept-and-close one of them (it sees EOF and may
 * retry later), then the reserve is taken back.
 */
static void out_of_fds(uds_acceptor *a, struct alsn *e, int err)
{
    char ln[UDS_ADDR_STRLEN];
    int closed_one = 0;
    a->st.emfile++;
    if (a->reserve_fd >= 0) {
        close(a->reserve_fd);
        a->reserve_fd = -1;
        int x = UDS__RETRY(accept4(e->l.fd, NULL, NULL, SOCK_CLOEXEC));
        if (x >= 0) {
            close(x);
            a->seq++;
            a->st.refused++;
            closed_one = 1;
        }
    }
    if (a->reserve_fd < 0)
        a->reserve_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    starve(a);
    uint64_t now = uds__now_ms();
    if (a->emfile_log_ms && now - a->emfile_log_ms < LOG_WINDOW_MS) {
        a->emfile_quiet++;
        return;
    }
    char more[64] = "";
    if (a->emfile_quiet)
        snprintf(more, sizeof(more), " (%llu more pauses since the last report)",
                 (unsigned long long)a->emfile_quiet);
    alog(a, UDS_LOG_ERR, "accept on %s: %s; %spausing accepts for %u ms%s",
         lname(e, ln, sizeof(ln)), uds_strerror(err),
         closed_one ? "one waiting client closed, " : "", a->o.emfile_pause_ms, more);
    a->emfile_log_ms = now;
    a->emfile_quiet = 0;
}

/* One accepted client: judge it, close it or hand it to cb. */
static void take(uds_acceptor *a, struct alsn *e, int fd,
                 const struct sockaddr_storage *ss, socklen_t sl)
{
    uds_peer p;
    memset(&p, 0, sizeof(p));
    p.is_unix = e->family == AF_UNIX;
    p.cred = (uds_cred){0, (uid_t)-1, (gid_t)-1};
    p.seq = ++a->seq;
    p.listen_fd = e->l.fd;
    p.pidfd = -1;
    if (uds_addr_from_sockaddr(&p.addr, (const struct sockaddr *)ss, sl,
                               e->type == SOCK_SEQPACKET ? SOCK_STREAM : e->type) < 0)
        memset(&p.addr, 0, sizeof(p.addr));
    if (judge(a, fd, &p) < 0) {
        close(fd);
        if (p.pidfd >= 0)
            close(p.pidfd);
        return;
    }
    a->st.accepted++;
    a->cb(a, fd, &p, a->arg);
    if (p.pidfd >= 0) /* the acceptor's: valid during the callback only */
        close(p.pidfd);
}

/* A listener is readable: at most `batch` accepts, then back to the loop. */
static void on_readable(uds_loop *loop, int fd, unsigned events, void *arg)
{
    (void)loop;
    (void)events;
    struct alsn *e = arg;
    uds_acceptor *a = e->a;
    int flags = SOCK_CLOEXEC | ((a->o.flags & UDS_ACCEPT_BLOCKING) ? 0 : SOCK_NONBLOCK);
    a->depth++;
    for (unsigned i = 0; i < a->o.batch; i++) {
        if (e->l.fd != fd || a->paused || a->starved)
            break;
        struct sockaddr_storage ss;
        socklen_t sl = sizeof(ss);
        memset(&ss, 0, sizeof(ss));
        int c = UDS__RETRY(accept4(fd, (struct sockaddr *)&ss, &sl, flags));
        if (c < 0) {
            int err = errno;
            if (err == EAGAIN || err == EWOULDBLOCK)
                break;
            if (err == ECONNABORTED || err == EPROTO || err == EPERM)
                continue; /* that client is gone (or a firewall said no) */
            if (err == EMFILE || err == ENFILE || err == ENOBUFS || err == ENOMEM) {
                out_of_fds(a, e, -err);
                break;
            }
            char ln[UDS_ADDR_STRLEN];
            alog(a, UDS_LOG_ERR, "accept on %s: %s; pausing accepts for %u ms",
                 lname(e, ln, sizeof(ln)), uds_strerror(-err), a->o.emfile_pause_ms);
            starve(a); /* an error that would repeat every round */
            break;
        }
        take(a, e, c, &ss, sl);
    }
    a->depth--;
}

static void rearm(uds_acceptor *a)
{
    unsigned want = a->paused || a->starved ? 0 : UDS_EV_READ;
    for (int i = 0; i < a->nls; i++) {
        struct alsn *e = a->ls[i];
        if (e->l.fd < 0 || e->watched == want)
            continue;
        if (uds_loop_watch(a->loop, e->l.fd, want, on_readable, e) == 0)
            e->watched = want;
    }
}

/* ---- life cycle --------------------------------------------------------- */

int uds_acceptor_new(uds_acceptor **out, uds_loop *loop,
                     const uds_acceptor_opts *opts, uds_accept_cb cb, void *arg)
{
    if (!out || !loop || !cb)
        return -EINVAL;
    uds_acceptor *a = calloc(1, sizeof(*a));
    if (!a)
        return -ENOMEM;
    if (opts)
        a->o = *opts;
    if (!a->o.batch)
        a->o.batch = DEF_BATCH;
    if (!a->o.emfile_pause_ms)
        a->o.emfile_pause_ms = DEF_PAUSE_MS;
    if (a->o.flags & ~(UDS_ACCEPT_BLOCKING | UDS_ACCEPT_PIDFD)) {
        free(a);
        return -EINVAL;
    }
    if (a->o.name) {
        a->name = strdup(a->o.name);
        if (!a->name) {
            free(a);
            return -ENOMEM;
        }
    }
    a->o.name = NULL; /* borrowed: only the copy is used */
    a->rl.burst = LOG_PER_SEC;
    a->rl.interval_ms = LOG_WINDOW_MS;
    a->reserve_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (a->reserve_fd < 0) {
        int e = uds__err();
        free(a->name);
        free(a);
        return e;
    }
    a->loop = loop;
    a->cb = cb;
    a->arg = arg;
    *out = a;
    return 0;
}

/* Drops records of closed listeners, unless a batch may still hold one. */
static void compact(uds_acceptor *a)
{
    if (a->depth)
        return;
    int j = 0;
    for (int i = 0; i < a->nls; i++) {
        if (a->ls[i]->l.fd >= 0)
            a->ls[j++] = a->ls[i];
        else
            free(a->ls[i]);
    }
    a->nls = j;
}

int uds_acceptor_add(uds_acceptor *a, uds_listener *l)
{
    if (!a || !l || l->fd < 0)
        return -EINVAL;
    int fd = l->fd;
    int type = uds_sock_type(fd);
    if (type < 0)
        return type;
    if (type != SOCK_STREAM && type != SOCK_SEQPACKET)
        return -EINVAL;
    int acc = 0;
    socklen_t al = sizeof(acc);
    if (getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &acc, &al) < 0)
        return uds__err();
    if (!acc)
        return -EINVAL;
    struct sockaddr_storage ss;
    socklen_t sl = sizeof(ss);
    memset(&ss, 0, sizeof(ss));
    if (getsockname(fd, (struct sockaddr *)&ss, &sl) < 0)
        return uds__err();
    compact(a);
    if (a->nls == a->cap) {
        int cap = a->cap ? a->cap * 2 : 4;
        struct alsn **v = realloc(a->ls, (size_t)cap * sizeof(*v));
        if (!v)
            return -ENOMEM;
        a->ls = v;
        a->cap = cap;
    }
    struct alsn *e = calloc(1, sizeof(*e));
    if (!e)
        return -ENOMEM;
    int fl = fcntl(fd, F_GETFL);
    if (fl < 0 || (!(fl & O_NONBLOCK) && fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0)) {
        int err = uds__err();
        free(e);
        return err;
    }
    e->a = a;
    e->l = *l;
    e->family = ss.ss_family;
    e->type = type;
    e->l.type = type;
    unsigned want = a->paused || a->starved ? 0 : UDS_EV_READ;
    int r = uds_loop_watch(a->loop, fd, want, on_readable, e);
    if (r < 0) {
        if (!(fl & O_NONBLOCK))
            fcntl(fd, F_SETFL, fl);
        free(e);
        return r;
    }
    e->watched = want;
    a->ls[a->nls++] = e;
    l->fd = -1;
    l->owns_path = 0;
    return 0;
}

void uds_acceptor_pause(uds_acceptor *a)
{
    if (!a)
        return;
    a->paused = 1;
    rearm(a);
}

void uds_acceptor_resume(uds_acceptor *a)
{
    if (!a)
        return;
    a->paused = 0;
    rearm(a);
}

void uds_acceptor_close(uds_acceptor *a)
{
    if (!a)
        return;
    for (int i = 0; i < a->nls; i++) {
        struct alsn *e = a->ls[i];
        if (e->l.fd < 0)
            continue;
        uds_loop_unwatch(a->loop, e->l.fd);
        uds_listener_close(&e->l);
        e->watched = 0;
    }
    if (a->resume_timer)
        uds_loop_timer_cancel(a->loop, (uint64_t)a->resume_timer);
    a->resume_timer = 0;
    a->starved = 0;
    compact(a);
}

void uds_acceptor_free(uds_acceptor *a)
{
    if (!a)
        return;
    uds_acceptor_close(a);
    a->depth = 0;
    compact(a);
    if (a->summary_timer)
        uds_loop_timer_cancel(a->loop, (uint64_t)a->summary_timer);
    flush_summary(a); /* what was held back is still said */
    if (a->reserve_fd >= 0)
        close(a->reserve_fd);
    free(a->ls);
    free(a->uids);
    free(a->name);
    free(a);
}

void uds_acceptor_stats_get(const uds_acceptor *a, uds_acceptor_stats *out)
{
    if (!out)
        return;
    if (!a) {
        memset(out, 0, sizeof(*out));
        return;
    }
    *out = a->st;
    out->conns = a->conns;
}

/* ---- internal: connections that did not come through accept -------------- */

int uds__acceptor_admit_fd(uds_acceptor *a, int fd, uds_peer *out)
{
    if (!a || fd < 0 || !out)
        return -EINVAL;
    uds_peer p;
    memset(&p, 0, sizeof(p));
    struct sockaddr_storage ss;
    socklen_t sl = sizeof(ss);
    memset(&ss, 0, sizeof(ss));
    if (getsockname(fd, (struct sockaddr *)&ss, &sl) < 0)
        return uds__err();
    p.is_unix = ss.ss_family == AF_UNIX;
    p.cred = (uds_cred){0, (uid_t)-1, (gid_t)-1};
    p.listen_fd = -1;
    p.pidfd = -1;
    sl = sizeof(ss);
    memset(&ss, 0, sizeof(ss));
    int type = uds_sock_type(fd);
    if (getpeername(fd, (struct sockaddr *)&ss, &sl) == 0)
        uds_addr_from_sockaddr(&p.addr, (const struct sockaddr *)&ss, sl,
                               type == SOCK_DGRAM ? SOCK_DGRAM : SOCK_STREAM);
    int r = judge(a, fd, &p);
    if (p.pidfd >= 0) { /* no callback to hand it to: not kept */
        close(p.pidfd);
        p.pidfd = -1;
    }
    if (r < 0)
        return r;
    *out = p;
    return 0;
}
