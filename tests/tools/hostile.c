/*
 * hostile.c — hostile clients for battery row 6 (issue 9): raw syscalls,
 * nothing from libudsock. ADDR is /path or @abstract.
 *
 *   hostile peer-death ADDR [--proto P] [--procs N] [--seconds S] [--unread]
 *       N processes, each forking a child after another: the child
 *       connects, sends half a message and dies (_exit: the kernel closes
 *       its socket); with --unread it sends 64 whole requests (256 KiB)
 *       and dies without reading a byte of the answers.
 *   hostile slowloris ADDR [--proto P] [--conns N] [--seconds S]
 *       N connections, each sending one byte of a message a second (a
 *       LEN32 header announcing 1000 bytes first for --proto calc);
 *       a connection the server closes is opened again.
 *   hostile flood ADDR [--procs N] [--seconds S]
 *       N processes connecting and closing as fast as they can.
 *   hostile hold ADDR [--conns N] [--seconds S]
 *       N connections opened (retrying while refused or EAGAIN) and held,
 *       silent, for S seconds (with the target under prlimit --nofile:
 *       EMFILE).
 *   hostile dgram-flood ADDR [--procs N] [--seconds S] [--vanish]
 *       N processes sending datagrams as fast as they can from a bound
 *       (autobind) socket that never reads its replies; --vanish: each
 *       datagram from a new socket, closed at once (the sender is gone
 *       before any reply).
 *   hostile good ADDR [--proto P] [--seconds S] [--every MS] [--file F]
 *       the good client: a probe every MS (default 100) for S seconds,
 *       each a new connection (a new socket for dgram) with a 5 s limit:
 *         calc  LEN32 "upper good-K-PID", expects "GOOD-K-PID"
 *         echo  "good-K-PID\n", expects it back (serve -- cat)
 *         line  "good-K-PID\n", then waits until that line is in file F
 *               (the stdout of udsock listen -k)
 *         dgram a datagram "good-K-PID", expects it back (recv -e)
 *       prints "good: probes K served K max X ms median Y ms failed F";
 *       exit 1 if a probe failed.
 * Attack modes print one line of counts and exit 0 (2 on usage errors).
 * P: calc (LEN32 frames), raw (bytes), line (text lines); default raw.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define TOOL_NAME "hostile"
#include "tool.h"

static struct sockaddr_un SA;
static socklen_t SALEN;
enum { P_RAW, P_CALC, P_LINE, P_ECHO, P_DGRAM };
static int PROTO = P_RAW;
static unsigned PROCS = 4, CONNS = 100, EVERY_MS = 100;
static double SECONDS = 2;
static int UNREAD, VANISH;
static const char *FILE_ARG;

/* A stream (or datagram) socket, CLOEXEC, optionally non-blocking. */
static int sock(int type, int nonblock)
{
    return socket(AF_UNIX, type | SOCK_CLOEXEC | (nonblock ? SOCK_NONBLOCK : 0), 0);
}

/* Blocking connect with send/receive limits of `limit` seconds; -errno. */
static int conn(double limit)
{
    int fd = sock(SOCK_STREAM, 0);
    if (fd < 0)
        return -errno;
    struct timeval tv = {(time_t)limit, (suseconds_t)((limit - (double)(time_t)limit) * 1e6)};
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    if (connect(fd, (struct sockaddr *)&SA, SALEN) < 0) {
        int e = errno;
        close(fd);
        return -e;
    }
    return fd;
}

/* Writes all of buf (blocking socket); -1 on error. */
static int write_all(int fd, const void *buf, size_t n)
{
    const char *p = buf;
    while (n) {
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

/* One request of the protocol into out (LEN32 for calc); its length. */
static size_t request(char *out, size_t cap, const char *text)
{
    size_t tl = strlen(text);
    if (PROTO == P_CALC) {
        uint32_t l = (uint32_t)(tl + 6);
        out[0] = (char)(l >> 24), out[1] = (char)(l >> 16), out[2] = (char)(l >> 8), out[3] = (char)l;
        memcpy(out + 4, "upper ", 6);
        memcpy(out + 10, text, tl);
        return tl + 10;
    }
    snprintf(out, cap, "%s\n", text);
    return tl + 1;
}

/* ---- the attacks --------------------------------------------------------- */

/* Runs fn(i) in n child processes at once (attackers in parallel) and
   sums the counts they return (kept in a shared mapping). */
static void in_procs(unsigned n, uint64_t (*fn)(unsigned), uint64_t *total)
{
    uint64_t *shared = mmap(NULL, sizeof(uint64_t) * n, PROT_READ | PROT_WRITE,
                            MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (shared == MAP_FAILED)
        die("mmap: %s", strerror(errno));
    pid_t *pids = calloc(n, sizeof(pid_t));
    for (unsigned i = 0; i < n; i++) {
        pids[i] = fork();
        if (pids[i] < 0)
            die("fork: %s", strerror(errno));
        if (pids[i] == 0) {
            shared[i] = fn(i);
            _exit(0);
        }
    }
    *total = 0;
    for (unsigned i = 0; i < n; i++) {
        waitpid(pids[i], NULL, 0);
        *total += shared[i];
    }
    free(pids);
}

/* peer-death, in one process: children that connect, half-send, die. */
static uint64_t peer_death_proc(unsigned idx)
{
    (void)idx;
    double end = now_s() + SECONDS;
    uint64_t n = 0;
    static char big[4096 + 16];
    while (now_s() < end) {
        pid_t p = fork();
        if (p < 0)
            continue;
        if (p == 0) {
            int fd = conn(2);
            if (fd < 0)
                _exit(1);
            if (UNREAD) { /* 64 requests of 4 KiB, answers never read */
                char text[4096];
                memset(text, 'x', sizeof(text) - 1);
                text[sizeof(text) - 1] = 0;
                size_t l = request(big, sizeof(big), text);
                for (int i = 0; i < 64; i++)
                    if (write_all(fd, big, l) < 0)
                        break;
            } else if (PROTO == P_CALC) { /* a header for 1000 bytes, then 10 of them */
                static const char half[] = "\0\0\003\350upper xxxx";
                write_all(fd, half, sizeof(half) - 1);
            } else {
                write_all(fd, "half a mes", 10);
            }
            _exit(0); /* dies with the socket open: the kernel closes it */
        }
        waitpid(p, NULL, 0);
        n++;
    }
    return n;
}

/* flood, in one process: connect and close, as fast as possible. */
static uint64_t flood_proc(unsigned idx)
{
    (void)idx;
    double end = now_s() + SECONDS;
    uint64_t n = 0;
    while (now_s() < end) {
        int fd = sock(SOCK_STREAM, 1);
        if (fd < 0)
            continue;
        if (connect(fd, (struct sockaddr *)&SA, SALEN) == 0 || errno == EINPROGRESS)
            n++;
        close(fd);
    }
    return n;
}

/* dgram-flood, in one process. */
static uint64_t dgram_proc(unsigned idx)
{
    double end = now_s() + SECONDS;
    uint64_t n = 0;
    char msg[64];
    int len = snprintf(msg, sizeof(msg), "flood from %u", idx);
    int fd = -1;
    sa_family_t fam = AF_UNIX;
    while (now_s() < end) {
        if (fd < 0) {
            fd = sock(SOCK_DGRAM, 1);
            if (fd < 0)
                continue;
            /* autobind: a named (abstract) sender that replies can reach */
            if (bind(fd, (struct sockaddr *)&fam, sizeof(fam)) < 0) {
                close(fd);
                fd = -1;
                continue;
            }
        }
        ssize_t w = sendto(fd, msg, (size_t)len, MSG_NOSIGNAL, (struct sockaddr *)&SA, SALEN);
        if (w >= 0)
            n++;
        else if (errno == EAGAIN) {
            struct pollfd p = {fd, POLLOUT, 0};
            poll(&p, 1, 10);
        }
        if (VANISH) {
            close(fd);
            fd = -1;
        }
    }
    if (fd >= 0)
        close(fd);
    return n;
}

/* slowloris: N connections, one byte a second each, reopened when closed. */
static void slowloris(void)
{
    int *fds = calloc(CONNS, sizeof(int));
    size_t *off = calloc(CONNS, sizeof(size_t));
    static const char calc_msg[] = "\0\0\003\350upper ";
    uint64_t bytes = 0, closed = 0, opened = 0;
    double t0 = now_s(), first_close = -1;
    for (unsigned i = 0; i < CONNS; i++)
        fds[i] = -1;
    while (now_s() - t0 < SECONDS) {
        double tick = now_s();
        for (unsigned i = 0; i < CONNS; i++) {
            if (fds[i] >= 0) { /* closed by the server? */
                char b[4096];
                ssize_t r = recv(fds[i], b, sizeof(b), MSG_DONTWAIT);
                if (r == 0 || (r < 0 && errno != EAGAIN)) {
                    close(fds[i]);
                    fds[i] = -1;
                    closed++;
                    if (first_close < 0)
                        first_close = now_s() - t0;
                }
            }
            if (fds[i] < 0) {
                int fd = sock(SOCK_STREAM, 1);
                if (fd < 0)
                    continue;
                if (connect(fd, (struct sockaddr *)&SA, SALEN) < 0 && errno != EINPROGRESS) {
                    close(fd);
                    continue;
                }
                fds[i] = fd;
                off[i] = 0;
                opened++;
            }
            char c;
            if (PROTO == P_CALC)
                c = off[i] < sizeof(calc_msg) - 1 ? calc_msg[off[i]] : 'x';
            else
                c = 'x'; /* never a newline */
            if (send(fds[i], &c, 1, MSG_NOSIGNAL | MSG_DONTWAIT) == 1) {
                off[i]++;
                bytes++;
            }
        }
        double left = 1.0 - (now_s() - tick), rest = SECONDS - (now_s() - t0);
        if (rest < left)
            left = rest;
        if (left > 0)
            usleep((useconds_t)(left * 1e6));
    }
    printf("slowloris: %u connections, %llu opened, %llu bytes sent, %llu closed by the server",
           CONNS, (unsigned long long)opened, (unsigned long long)bytes,
           (unsigned long long)closed);
    if (first_close >= 0)
        printf(" (first after %.1f s)", first_close);
    printf("\n");
    for (unsigned i = 0; i < CONNS; i++)
        if (fds[i] >= 0)
            close(fds[i]);
    free(fds);
    free(off);
}

/* hold: N connections, silent, for S seconds. */
static void hold(void)
{
    int *fds = calloc(CONNS, sizeof(int));
    unsigned have = 0;
    double t0 = now_s();
    while (have < CONNS && now_s() - t0 < SECONDS) {
        int fd = sock(SOCK_STREAM, 1);
        if (fd < 0)
            die("socket: %s", strerror(errno));
        if (connect(fd, (struct sockaddr *)&SA, SALEN) == 0 || errno == EINPROGRESS) {
            fds[have++] = fd;
        } else {
            close(fd);
            usleep(1000);
        }
    }
    double rest = SECONDS - (now_s() - t0);
    if (rest > 0)
        usleep((useconds_t)(rest * 1e6));
    unsigned alive = 0;
    for (unsigned i = 0; i < have; i++) {
        char b[64];
        ssize_t r = recv(fds[i], b, sizeof(b), MSG_DONTWAIT);
        if (r < 0 && errno == EAGAIN)
            alive++;
        close(fds[i]);
    }
    printf("hold: %u connections made, %u still open after %.1f s\n", have, alive, SECONDS);
    free(fds);
}

/* ---- the good client ------------------------------------------------------ */

/* qsort order for latencies (the median and the maximum). */
static int cmpd(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Does file F contain the line `line` (with its newline)? */
static int file_has(const char *f, const char *line)
{
    FILE *fp = fopen(f, "r");
    if (!fp)
        return 0;
    char b[8192];
    int found = 0;
    while (!found && fgets(b, sizeof(b), fp))
        found = !strcmp(b, line);
    fclose(fp);
    return found;
}

/* One probe; returns its time in seconds, or -1 (with why on stderr). */
static double probe(unsigned k)
{
    char text[64], req[128], got[256], want[64];
    snprintf(text, sizeof(text), "good-%u-%d", k, (int)getpid());
    size_t rl = request(req, sizeof(req), text);
    size_t wl;
    if (PROTO == P_CALC) {
        for (size_t i = 0; text[i]; i++)
            want[i] = (char)(text[i] >= 'a' && text[i] <= 'z' ? text[i] - 32 : text[i]);
        uint32_t l = (uint32_t)strlen(text);
        memmove(want + 4, want, l);
        want[0] = (char)(l >> 24), want[1] = (char)(l >> 16), want[2] = (char)(l >> 8), want[3] = (char)l;
        wl = l + 4;
    } else {
        wl = (size_t)snprintf(want, sizeof(want), "%s\n", text);
    }
    if (PROTO == P_DGRAM) {
        rl = strlen(text);
        memcpy(want, text, rl);
        wl = rl;
    }
    double t0 = now_s();
    int fd;
    if (PROTO == P_DGRAM) {
        sa_family_t fam = AF_UNIX;
        fd = sock(SOCK_DGRAM, 0);
        struct timeval tv = {5, 0};
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
        if (fd < 0 || bind(fd, (struct sockaddr *)&fam, sizeof(fam)) < 0 ||
            sendto(fd, req, rl, MSG_NOSIGNAL, (struct sockaddr *)&SA, SALEN) != (ssize_t)rl) {
            fprintf(stderr, "%s: good: probe %u: send: %s\n", prog, k, strerror(errno));
            if (fd >= 0)
                close(fd);
            return -1;
        }
        for (;;) { /* the reply to us; nothing else comes to this socket */
            ssize_t n = recv(fd, got, sizeof(got), 0);
            if (n < 0 && errno == EINTR)
                continue;
            close(fd);
            if (n == (ssize_t)wl && !memcmp(got, want, wl))
                return now_s() - t0;
            fprintf(stderr, "%s: good: probe %u: %s\n", prog, k,
                    n < 0 ? strerror(errno) : "wrong reply");
            return -1;
        }
    }
    if ((fd = conn(5)) < 0) {
        fprintf(stderr, "%s: good: probe %u: connect: %s\n", prog, k, strerror(-fd));
        return -1;
    }
    if (write_all(fd, req, rl) < 0) {
        fprintf(stderr, "%s: good: probe %u: send: %s\n", prog, k, strerror(errno));
        close(fd);
        return -1;
    }
    if (PROTO == P_LINE) {
        close(fd);
        while (now_s() - t0 < 5) {
            if (file_has(FILE_ARG, want))
                return now_s() - t0;
            usleep(2000);
        }
        fprintf(stderr, "%s: good: probe %u: line not in %s within 5 s\n", prog, k, FILE_ARG);
        return -1;
    }
    size_t have = 0;
    while (have < wl) {
        ssize_t n = recv(fd, got + have, sizeof(got) - have, 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            fprintf(stderr, "%s: good: probe %u: %s after %zu bytes\n", prog, k,
                    n < 0 ? strerror(errno) : "EOF", have);
            close(fd);
            return -1;
        }
        have += (size_t)n;
    }
    close(fd);
    if (have != wl || memcmp(got, want, wl)) {
        fprintf(stderr, "%s: good: probe %u: wrong reply\n", prog, k);
        return -1;
    }
    return now_s() - t0;
}

/* The good client: probes until SECONDS, then one summary line. */
static int good(void)
{
    double t0 = now_s(), *lat = calloc(100000, sizeof(double));
    unsigned k = 0, served = 0, failed = 0;
    while (now_s() - t0 < SECONDS && k < 100000) {
        double t = now_s();
        double l = probe(k++);
        if (l < 0)
            failed++;
        else
            lat[served++] = l;
        double left = EVERY_MS / 1000.0 - (now_s() - t);
        if (left > 0)
            usleep((useconds_t)(left * 1e6));
    }
    qsort(lat, served, sizeof(double), cmpd);
    printf("good: probes %u served %u max %.0f ms median %.1f ms failed %u\n", k, served,
           served ? lat[served - 1] * 1000 : 0.0, served ? lat[served / 2] * 1000 : 0.0, failed);
    free(lat);
    return failed || !served ? 1 : 0;
}

/* Options, the address, then the mode. */
int main(int argc, char **argv)
{
    if (argc < 3)
        die("usage: hostile peer-death|slowloris|flood|hold|dgram-flood|good ADDR [options]");
    const char *mode = argv[1], *addr = argv[2];
    for (int i = 3; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--unread")) {
            UNREAD = 1;
            continue;
        }
        if (!strcmp(a, "--vanish")) {
            VANISH = 1;
            continue;
        }
        if (i + 1 >= argc)
            die("%s needs a value", a);
        const char *v = argv[++i];
        if (!strcmp(a, "--procs"))
            PROCS = (unsigned)atoi(v);
        else if (!strcmp(a, "--conns"))
            CONNS = (unsigned)atoi(v);
        else if (!strcmp(a, "--seconds"))
            SECONDS = atof(v);
        else if (!strcmp(a, "--every"))
            EVERY_MS = (unsigned)atoi(v);
        else if (!strcmp(a, "--file"))
            FILE_ARG = v;
        else if (!strcmp(a, "--proto")) {
            PROTO = !strcmp(v, "calc") ? P_CALC : !strcmp(v, "line") ? P_LINE
                  : !strcmp(v, "echo") ? P_ECHO : !strcmp(v, "dgram") ? P_DGRAM
                  : !strcmp(v, "raw") ? P_RAW : -1;
            if (PROTO < 0)
                die("--proto: calc, echo, line, dgram or raw");
        } else
            die("unknown option %s", a);
    }
    if (!PROCS || !CONNS || SECONDS <= 0 || (PROTO == P_LINE && !strcmp(mode, "good") && !FILE_ARG))
        die("bad options");
    size_t al = strlen(addr);
    if (al >= sizeof(SA.sun_path))
        die("%s: too long", addr);
    SA.sun_family = AF_UNIX;
    memcpy(SA.sun_path, addr, al);
    SALEN = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + al + (addr[0] != '@'));
    if (addr[0] == '@')
        SA.sun_path[0] = 0;
    signal(SIGPIPE, SIG_IGN);
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    uint64_t n;
    if (!strcmp(mode, "peer-death")) {
        in_procs(PROCS, peer_death_proc, &n);
        printf("peer-death%s: %llu clients died\n", UNREAD ? " (unread)" : "",
               (unsigned long long)n);
    } else if (!strcmp(mode, "flood")) {
        in_procs(PROCS, flood_proc, &n);
        printf("flood: %llu connects in %.1f s from %u processes\n", (unsigned long long)n,
               SECONDS, PROCS);
    } else if (!strcmp(mode, "dgram-flood")) {
        in_procs(PROCS, dgram_proc, &n);
        printf("dgram-flood%s: %llu datagrams in %.1f s from %u processes\n",
               VANISH ? " (vanishing senders)" : "", (unsigned long long)n, SECONDS, PROCS);
    } else if (!strcmp(mode, "slowloris")) {
        slowloris();
    } else if (!strcmp(mode, "hold")) {
        hold();
    } else if (!strcmp(mode, "good")) {
        return good();
    } else {
        die("unknown mode %s", mode);
    }
    return 0;
}
