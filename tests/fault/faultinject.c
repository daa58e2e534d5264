/*
 * faultinject.c — an LD_PRELOAD shim for the hardening battery (row 2):
 * wraps read, write, readv, writev, send, recv, sendmsg, recvmsg, accept4,
 * connect and splice (the next definition from dlsym(RTLD_NEXT)) and,
 * with probability P per call, makes the call fail or fall short the way
 * the kernel is allowed to:
 *   eintr  -1/EINTR before the call (a signal came first); any fd (for
 *          connect: blocking sockets only, and connect gets nothing else)
 *   eagain -1/EAGAIN, only on a non-blocking (O_NONBLOCK, MSG_DONTWAIT,
 *          SPLICE_F_NONBLOCK) socket or pipe; a spurious one, which
 *          level-triggered readiness code must simply retry (never on an
 *          eventfd/signalfd/timerfd: the kernel gives EAGAIN there only
 *          when the object is not ready, and code may rely on it)
 *   short  a write/send/sendmsg/writev/splice of 1..143 bytes of what was
 *          asked, on a stream socket or a pipe (on a pipe only above
 *          PIPE_BUF: smaller pipe writes are atomic), and reads/recvs of
 *          1..143 bytes on the same; never on message sockets or files
 * Driven by one variable (nothing happens without it):
 *   UDS_FAULT="seed=N,p=0.2,calls=read+write+...|all,kinds=eintr+eagain+short,only=NAME"
 *     seed   PRNG seed (mixed with the pid; default 1)
 *     p      probability per call (default 0.1)
 *     calls  which calls (default all)
 *     kinds  which faults (default all three)
 *     only   act only in processes whose name (comm) is NAME, so children
 *            such as `serve`'s programs run unharmed
 *     first  the first N calls that can take a fault always get one
 *            (default 0), so a process that makes few calls (serve: a
 *            dozen) is still hit: the test's "faults were injected" check
 *            then never depends on luck (0.7^14 = 0.7 % of runs had none)
 *   UDS_FAULT_LOG=PREFIX  each process keeps "PID NAME calls=C eintr=A
 *                       eagain=B short=S cpu_ms=T" in PREFIX.PID, updated
 *                       as it runs and at exit (tests check that faults
 *                       were really injected, and that T, the process's
 *                       CPU time, shows no spinning)
 * The test side of it: tests/cli/fault.sh.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

enum { C_READ, C_WRITE, C_READV, C_WRITEV, C_SEND, C_RECV, C_SENDMSG, C_RECVMSG, C_ACCEPT4,
       C_CONNECT, C_SPLICE, C_N };
static const char *const call_name[C_N] = {"read",    "write",   "readv",   "writev",
                                           "send",    "recv",    "sendmsg", "recvmsg",
                                           "accept4", "connect", "splice"};
enum { K_EINTR = 1, K_EAGAIN = 2, K_SHORT = 4 };

static int active;
static int log_fd = -1; /* PREFIX.PID of UDS_FAULT_LOG */
static unsigned calls_mask = (1u << C_N) - 1, kinds = K_EINTR | K_EAGAIN | K_SHORT;
static double prob = 0.1;
static long first_left; /* first=N: forced faults still to give */
static uint64_t seed = 1;
static __thread uint64_t rng;
static __thread int rng_init;
static unsigned long n_calls, n_eintr, n_eagain, n_short; /* approximate with threads */

static ssize_t (*real_read)(int, void *, size_t);
static ssize_t (*real_write)(int, const void *, size_t);
static ssize_t (*real_readv)(int, const struct iovec *, int);
static ssize_t (*real_writev)(int, const struct iovec *, int);
static ssize_t (*real_send)(int, const void *, size_t, int);
static ssize_t (*real_recv)(int, void *, size_t, int);
static ssize_t (*real_sendmsg)(int, const struct msghdr *, int);
static ssize_t (*real_recvmsg)(int, struct msghdr *, int);
static int (*real_accept4)(int, struct sockaddr *, socklen_t *, int);
static int (*real_connect)(int, const struct sockaddr *, socklen_t);
static ssize_t (*real_splice)(int, loff_t *, int, loff_t *, size_t, unsigned);

/* Every real function, once, before anything can call the wrappers. */
static void resolve(void)
{
    real_read = (ssize_t(*)(int, void *, size_t))dlsym(RTLD_NEXT, "read");
    real_write = (ssize_t(*)(int, const void *, size_t))dlsym(RTLD_NEXT, "write");
    real_readv = (ssize_t(*)(int, const struct iovec *, int))dlsym(RTLD_NEXT, "readv");
    real_writev = (ssize_t(*)(int, const struct iovec *, int))dlsym(RTLD_NEXT, "writev");
    real_send = (ssize_t(*)(int, const void *, size_t, int))dlsym(RTLD_NEXT, "send");
    real_recv = (ssize_t(*)(int, void *, size_t, int))dlsym(RTLD_NEXT, "recv");
    real_sendmsg = (ssize_t(*)(int, const struct msghdr *, int))dlsym(RTLD_NEXT, "sendmsg");
    real_recvmsg = (ssize_t(*)(int, struct msghdr *, int))dlsym(RTLD_NEXT, "recvmsg");
    real_accept4 = (int (*)(int, struct sockaddr *, socklen_t *, int))dlsym(RTLD_NEXT, "accept4");
    real_connect = (int (*)(int, const struct sockaddr *, socklen_t))dlsym(RTLD_NEXT, "connect");
    real_splice = (ssize_t(*)(int, loff_t *, int, loff_t *, size_t, unsigned))dlsym(RTLD_NEXT,
                                                                                   "splice");
}

/* Reads UDS_FAULT; stays inactive when it is missing or "only" does not match. */
__attribute__((constructor)) static void fi_init(void)
{
    resolve();
    const char *env = getenv("UDS_FAULT");
    if (!env || !*env)
        return;
    char buf[1024];
    snprintf(buf, sizeof(buf), "%s", env);
    const char *only = NULL;
    for (char *save = NULL, *kv = strtok_r(buf, ",", &save); kv; kv = strtok_r(NULL, ",", &save)) {
        char *v = strchr(kv, '=');
        if (!v)
            continue;
        *v++ = '\0';
        if (!strcmp(kv, "seed"))
            seed = strtoull(v, NULL, 10);
        else if (!strcmp(kv, "p"))
            prob = strtod(v, NULL);
        else if (!strcmp(kv, "only"))
            only = v;
        else if (!strcmp(kv, "first"))
            first_left = strtol(v, NULL, 10);
        else if (!strcmp(kv, "calls") && strcmp(v, "all")) {
            calls_mask = 0;
            for (char *s2 = NULL, *c = strtok_r(v, "+", &s2); c; c = strtok_r(NULL, "+", &s2))
                for (int i = 0; i < C_N; i++)
                    if (!strcmp(c, call_name[i]))
                        calls_mask |= 1u << i;
        } else if (!strcmp(kv, "kinds")) {
            kinds = 0;
            kinds |= strstr(v, "eintr") ? K_EINTR : 0;
            kinds |= strstr(v, "eagain") ? K_EAGAIN : 0;
            kinds |= strstr(v, "short") ? K_SHORT : 0;
        }
    }
    if (only && strcmp(only, program_invocation_short_name) != 0)
        return;
    const char *lp = getenv("UDS_FAULT_LOG");
    if (lp) {
        char path[600];
        snprintf(path, sizeof(path), "%s.%d", lp, (int)getpid());
        log_fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    }
    active = 1;
}

/*
 * The report for the test, "PID NAME calls=C eintr=A eagain=B short=S
 * cpu_ms=T", rewritten in place (pwrite at 0, padded) every 32 calls and at
 * exit, so a process stopped by a signal (no destructor) leaves one too.
 */
static void write_report(void)
{
    if (log_fd < 0)
        return;
    struct rusage ru;
    long cpu_ms = -1;
    if (getrusage(RUSAGE_SELF, &ru) == 0)
        cpu_ms = (ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1000L +
                 (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1000L;
    char line[256];
    int n = snprintf(line, sizeof(line),
                     "%d %s calls=%lu eintr=%lu eagain=%lu short=%lu cpu_ms=%ld", (int)getpid(),
                     program_invocation_short_name, n_calls, n_eintr, n_eagain, n_short, cpu_ms);
    if (n < 0 || n > 200)
        return;
    memset(line + n, ' ', 200 - (size_t)n); /* a shorter rewrite leaves no tail */
    line[200] = '\n';
    if (pwrite(log_fd, line, 201, 0) < 0)
        return;
}

__attribute__((destructor)) static void fi_fini(void)
{
    if (active)
        write_report();
}

/* xorshift64*, one state per thread, seeded from seed and pid. */
static uint64_t next(void)
{
    if (!rng_init) {
        rng = (seed * 0x9E3779B97F4A7C15ull) ^ ((uint64_t)getpid() << 32) ^ (uint64_t)(uintptr_t)&rng;
        if (!rng)
            rng = 1;
        rng_init = 1;
    }
    rng ^= rng >> 12;
    rng ^= rng << 25;
    rng ^= rng >> 27;
    return rng * 0x2545F4914F6CDD1Dull;
}

static int chance(void) { return (double)(next() >> 11) / 9007199254740992.0 < prob; }

static int nonblocking(int fd)
{
    int fl = fcntl(fd, F_GETFL);
    return fl >= 0 && (fl & O_NONBLOCK);
}

/* Sockets and pipes only: an eventfd, signalfd or timerfd never says
   EAGAIN while it is ready, and code may rely on that (uds_loop_post). */
static int sock_or_pipe(int fd)
{
    struct stat st;
    return fstat(fd, &st) == 0 && (S_ISSOCK(st.st_mode) || S_ISFIFO(st.st_mode));
}

/* May a transfer of len bytes on fd come out short? (write: pipe atomicity) */
static int may_short(int fd, size_t len, int is_write)
{
    if (len < 2)
        return 0;
    struct stat st;
    if (fstat(fd, &st) < 0)
        return 0;
    if (S_ISFIFO(st.st_mode))
        return !is_write || len > PIPE_BUF;
    if (!S_ISSOCK(st.st_mode))
        return 0;
    int type = 0;
    socklen_t tl = sizeof(type);
    return getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &tl) == 0 && type == SOCK_STREAM;
}

static size_t short_len(size_t len)
{
    size_t n = 1 + (size_t)(next() % 143);
    return n < len ? n : len - 1;
}

/*
 * The decision for one call: 0 go on unchanged, -1 fail now (errno set),
 * or a length to shorten the transfer to. allow: the kinds this call may get.
 */
static long decide_k(int call, int fd, int nb, size_t len, int is_write, int can_short,
                     unsigned allow)
{
    unsigned kd = kinds & allow;
    if (!active || !(calls_mask & (1u << call)))
        return 0;
    if (__atomic_add_fetch(&n_calls, 1, __ATOMIC_RELAXED) % 32 == 0)
        write_report();
    int forced = __atomic_load_n(&first_left, __ATOMIC_RELAXED) > 0;
    if (!forced && !chance())
        return 0;
    int avail[3], n = 0;
    if (kd & K_EINTR)
        avail[n++] = K_EINTR;
    if ((kd & K_EAGAIN) && (nb || nonblocking(fd)) && sock_or_pipe(fd))
        avail[n++] = K_EAGAIN;
    if ((kd & K_SHORT) && can_short && may_short(fd, len, is_write))
        avail[n++] = K_SHORT;
    if (n == 0)
        return 0;
    if (forced && __atomic_sub_fetch(&first_left, 1, __ATOMIC_RELAXED) < 0 && !chance())
        return 0; /* another thread took the last forced one */
    int k = avail[next() % (unsigned)n];
    if (k == K_EINTR) {
        __atomic_add_fetch(&n_eintr, 1, __ATOMIC_RELAXED);
        errno = EINTR;
        return -1;
    }
    if (k == K_EAGAIN) {
        __atomic_add_fetch(&n_eagain, 1, __ATOMIC_RELAXED);
        errno = EAGAIN;
        return -1;
    }
    __atomic_add_fetch(&n_short, 1, __ATOMIC_RELAXED);
    return (long)short_len(len);
}

/* decide_k with every kind allowed. */
static long decide(int call, int fd, int nb, size_t len, int is_write, int can_short)
{
    return decide_k(call, fd, nb, len, is_write, can_short, K_EINTR | K_EAGAIN | K_SHORT);
}

static size_t iov_total(const struct iovec *iov, int n)
{
    size_t t = 0;
    for (int i = 0; i < n; i++)
        t += iov[i].iov_len;
    return t;
}

/* Copies iov, cut to `keep` bytes; returns the new count. */
static int iov_cut(const struct iovec *iov, int n, size_t keep, struct iovec *out)
{
    int k = 0;
    for (int i = 0; i < n && keep > 0; i++) {
        out[k] = iov[i];
        if (out[k].iov_len > keep)
            out[k].iov_len = keep;
        keep -= out[k].iov_len;
        k++;
    }
    return k;
}

ssize_t read(int fd, void *buf, size_t len)
{
    long d = decide(C_READ, fd, 0, len, 0, 1);
    if (d < 0)
        return -1;
    return real_read(fd, buf, d > 0 ? (size_t)d : len);
}

ssize_t write(int fd, const void *buf, size_t len)
{
    long d = decide(C_WRITE, fd, 0, len, 1, 1);
    if (d < 0)
        return -1;
    return real_write(fd, buf, d > 0 ? (size_t)d : len);
}

ssize_t recv(int fd, void *buf, size_t len, int flags)
{
    /* MSG_PEEK/MSG_TRUNC lengths mean something else: never shortened */
    long d = decide(C_RECV, fd, flags & MSG_DONTWAIT, len, 0, !(flags & (MSG_PEEK | MSG_TRUNC)));
    if (d < 0)
        return -1;
    return real_recv(fd, buf, d > 0 ? (size_t)d : len, flags);
}

ssize_t send(int fd, const void *buf, size_t len, int flags)
{
    long d = decide(C_SEND, fd, flags & MSG_DONTWAIT, len, 1, 1);
    if (d < 0)
        return -1;
    return real_send(fd, buf, d > 0 ? (size_t)d : len, flags);
}

ssize_t readv(int fd, const struct iovec *iov, int n)
{
    size_t total = iov_total(iov, n);
    long d = decide(C_READV, fd, 0, total, 0, n <= 64);
    if (d < 0)
        return -1;
    if (d > 0) {
        struct iovec cut[64];
        return real_readv(fd, cut, iov_cut(iov, n, (size_t)d, cut));
    }
    return real_readv(fd, iov, n);
}

ssize_t writev(int fd, const struct iovec *iov, int n)
{
    size_t total = iov_total(iov, n);
    long d = decide(C_WRITEV, fd, 0, total, 1, n <= 64);
    if (d < 0)
        return -1;
    if (d > 0) {
        struct iovec cut[64];
        return real_writev(fd, cut, iov_cut(iov, n, (size_t)d, cut));
    }
    return real_writev(fd, iov, n);
}

ssize_t sendmsg(int fd, const struct msghdr *m, int flags)
{
    size_t total = iov_total(m->msg_iov, (int)m->msg_iovlen);
    long d = decide(C_SENDMSG, fd, flags & MSG_DONTWAIT, total, 1, m->msg_iovlen <= 64);
    if (d < 0)
        return -1;
    if (d > 0) {
        struct iovec cut[64];
        struct msghdr mm = *m;
        mm.msg_iov = cut;
        mm.msg_iovlen = (size_t)iov_cut(m->msg_iov, (int)m->msg_iovlen, (size_t)d, cut);
        return real_sendmsg(fd, &mm, flags);
    }
    return real_sendmsg(fd, m, flags);
}

ssize_t recvmsg(int fd, struct msghdr *m, int flags)
{
    size_t total = iov_total(m->msg_iov, (int)m->msg_iovlen);
    long d = decide(C_RECVMSG, fd, flags & MSG_DONTWAIT, total, 0,
                    m->msg_iovlen <= 64 && !(flags & (MSG_PEEK | MSG_TRUNC)));
    if (d < 0)
        return -1;
    if (d > 0) {
        struct iovec cut[64], *orig = m->msg_iov;
        size_t on = m->msg_iovlen;
        m->msg_iov = cut;
        m->msg_iovlen = (size_t)iov_cut(orig, (int)on, (size_t)d, cut);
        ssize_t r = real_recvmsg(fd, m, flags);
        m->msg_iov = orig; /* the caller's view stays its own */
        m->msg_iovlen = on;
        return r;
    }
    return real_recvmsg(fd, m, flags);
}

int accept4(int fd, struct sockaddr *sa, socklen_t *sl, int flags)
{
    if (decide(C_ACCEPT4, fd, 0, 0, 0, 0) < 0)
        return -1;
    return real_accept4(fd, sa, sl, flags);
}

int connect(int fd, const struct sockaddr *sa, socklen_t sl)
{
    /* EINTR on a blocking socket only: from a non-blocking unix connect,
       EAGAIN is a real answer (the backlog is full, no connection was
       made), not a transient one, and EINTR never comes */
    if (!nonblocking(fd) && decide_k(C_CONNECT, fd, 0, 0, 0, 0, K_EINTR) < 0)
        return -1;
    return real_connect(fd, sa, sl);
}

ssize_t splice(int in, loff_t *oin, int out, loff_t *oout, size_t len, unsigned flags)
{
    int nb = (flags & SPLICE_F_NONBLOCK) || nonblocking(in) || nonblocking(out);
    /* short: judged on the destination (pipe or stream socket) */
    long d = decide(C_SPLICE, out, nb, len, 1, 1);
    if (d < 0)
        return -1;
    return real_splice(in, oin, out, oout, d > 0 ? (size_t)d : len, flags);
}
