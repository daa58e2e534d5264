/*
 * relay_check.c — an independent judge for `udsock relay` (and any other
 * byte or message relay): raw syscalls only, nothing from libudsock, so a
 * bug shared by the library and the relay cannot hide itself.
 *
 *   relay_check echo --type stream|seqpacket ADDR [--ready-fd N]
 *       echo server on ADDR (/path, @abstract, tcp:127.0.0.1:P, tcp:[::1]:P;
 *       P may be 0). After listen() it writes "ready\n" (a TCP address: the
 *       port, "PORT\n") to fd N (default 1) and closes that fd. Runs until
 *       SIGTERM/SIGINT. stream: bytes echoed, the client's EOF passed on as
 *       shutdown(SHUT_WR) once everything was written back. seqpacket: each
 *       message echoed as one message (4 MiB receive buffer; a truncated
 *       message is a hard error: message on stderr, exit 1); EOF -> close.
 *
 *   relay_check clients --type stream|seqpacket --clients N --seed S
 *                       [--big BYTES] [--max BYTES] [--timeout SEC]
 *                       [--boundaries] ADDR
 *       N clients in one epoll loop. Client i sends its own payload (sizes
 *       log-uniform in 1..--max, client 0 sends --big) and checks every byte
 *       that comes back, in order, then EOF. seqpacket clients send messages
 *       of 1..65536 bytes; with --boundaries each received message must also
 *       have the size of the message sent at that place (a seqpacket path
 *       end to end). Exit 0 when every client got back exactly what it sent,
 *       1 on a mismatch, an early EOF, an error or the timeout.
 *
 *   relay_check listening --pid PID [--timeout SEC]
 *       waits (polling /proc, bounded) until process PID has a listening
 *       socket and prints "ADDR TYPE" (ADDR as above, TYPE stream or
 *       seqpacket), read from /proc/net/{unix,tcp,tcp6}; no connect probe.
 *
 * The payload: byte o of client i is byte (o % 8) of the 64-bit word
 * W(i, o / 8) = mix(K ^ (i << 40 | o / 8)), mix being the splitmix64
 * finaliser (a bijection) and K derived from the seed. So bytes look random,
 * no two (client, word) pairs share a word, and any 8 wrong bytes that were
 * once a word of some client decode back to that client and its offset:
 * a misrouted byte is named exactly, whatever its distance.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <math.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#define TOOL_NAME "relay_check"
#include "tool.h"

#define MSG_MAX_SEND 65536            /* largest message a seqpacket client sends */
#define RBUF_SIZE (4u * 1024 * 1024)  /* receive buffer: any message up to 4 MiB */
#define SEND_CHUNK (128 * 1024)       /* stream bytes generated per send() */
#define STREAM_ECHO_BUF (128 * 1024)
#define MAX_REPORTS 10                /* detailed mismatch reports per run */

/* Many clients at once need many descriptors: take the hard limit. */
static void raise_nofile(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
}

/* ---- addresses -------------------------------------------------------------- */

typedef struct addr {
    struct sockaddr_storage ss;
    socklen_t len;
    int family;
    char text[160];
} addr;

/*
 * Parses /path, @abstract, tcp:IPv4:PORT or tcp:[IPv6]:PORT. Why our own
 * parser and not the library's: the judge must not share code with the
 * thing it judges.
 */
static int parse_addr(const char *s, addr *a)
{
    memset(a, 0, sizeof(*a));
    snprintf(a->text, sizeof(a->text), "%s", s);
    if (strncmp(s, "tcp:", 4) == 0) {
        const char *h = s + 4, *colon;
        char host[64];
        if (*h == '[') {
            const char *rb = strchr(h, ']');
            if (!rb || rb[1] != ':' || (size_t)(rb - h - 1) >= sizeof(host))
                return -1;
            memcpy(host, h + 1, (size_t)(rb - h - 1));
            host[rb - h - 1] = 0;
            colon = rb + 1;
        } else {
            colon = strrchr(h, ':');
            if (!colon || (size_t)(colon - h) >= sizeof(host))
                return -1;
            memcpy(host, h, (size_t)(colon - h));
            host[colon - h] = 0;
        }
        char *end;
        unsigned long port = strtoul(colon + 1, &end, 10);
        if (!colon[1] || *end || port > 65535)
            return -1;
        struct sockaddr_in *v4 = (struct sockaddr_in *)&a->ss;
        struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)&a->ss;
        if (inet_pton(AF_INET, host, &v4->sin_addr) == 1) {
            v4->sin_family = AF_INET;
            v4->sin_port = htons((uint16_t)port);
            a->len = sizeof(*v4);
        } else if (inet_pton(AF_INET6, host, &v6->sin6_addr) == 1) {
            v6->sin6_family = AF_INET6;
            v6->sin6_port = htons((uint16_t)port);
            a->len = sizeof(*v6);
        } else {
            return -1;
        }
        a->family = a->ss.ss_family;
        return 0;
    }
    struct sockaddr_un *un = (struct sockaddr_un *)&a->ss;
    size_t n = strlen(s);
    if (n == 0 || n >= sizeof(un->sun_path))
        return -1;
    un->sun_family = AF_UNIX;
    memcpy(un->sun_path, s, n);
    if (s[0] == '@')
        un->sun_path[0] = 0; /* abstract: the name without a terminating NUL */
    a->len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n + (s[0] == '@' ? 0 : 1));
    a->family = AF_UNIX;
    return 0;
}

static int parse_type(const char *s)
{
    if (strcmp(s, "stream") == 0)
        return SOCK_STREAM;
    if (strcmp(s, "seqpacket") == 0)
        return SOCK_SEQPACKET;
    die("bad --type '%s' (stream or seqpacket)", s);
}

static uint64_t parse_u64(const char *s, const char *what)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 0);
    if (!*s || errno)
        die("bad %s '%s'", what, s);
    if (*end == 'K' || *end == 'k')
        v <<= 10, end++;
    else if (*end == 'M' || *end == 'm')
        v <<= 20, end++;
    else if (*end == 'G' || *end == 'g')
        v <<= 30, end++;
    if (*end)
        die("bad %s '%s'", what, s);
    return v;
}

/* ---- the payload ------------------------------------------------------------ */

static uint64_t KEY;           /* from the seed */
static uint64_t INV1, INV2;    /* inverses of mix()'s two multipliers mod 2^64 */
#define M1 0xbf58476d1ce4e5b9ULL
#define M2 0x94d049bb133111ebULL
#define IDX_BITS 40

/* splitmix64's finaliser: a bijection on 64 bits with good avalanche. */
static uint64_t mix(uint64_t z)
{
    z = (z ^ (z >> 30)) * M1;
    z = (z ^ (z >> 27)) * M2;
    return z ^ (z >> 31);
}

/* Undoes x ^ (x >> s). */
static uint64_t unxorshift(uint64_t y, int s)
{
    uint64_t x = y;
    for (int i = s; i < 64; i += s)
        x = y ^ (x >> s);
    return x;
}

/* mix()^-1: names the origin of a word. */
static uint64_t unmix(uint64_t z)
{
    z = unxorshift(z, 31) * INV2;
    z = unxorshift(z, 27) * INV1;
    return unxorshift(z, 30);
}

/* Inverse of an odd number mod 2^64 (Newton: each step doubles the bits). */
static uint64_t inv64(uint64_t a)
{
    uint64_t x = a;
    for (int i = 0; i < 6; i++)
        x *= 2 - a * x;
    return x;
}

/* Sets the key and checks that unmix() really inverts mix(). */
static void payload_init(uint64_t seed)
{
    KEY = mix(seed ^ 0x5bd1e9955bd1e995ULL) | 1;
    INV1 = inv64(M1);
    INV2 = inv64(M2);
    for (uint64_t v = 1; v < (1ULL << 62); v = v * 3 + 7)
        if (unmix(mix(v)) != v)
            die("internal: unmix(mix(%" PRIu64 ")) wrong", v);
}

static uint64_t word(unsigned client, uint64_t idx)
{
    return mix(KEY ^ ((uint64_t)client << IDX_BITS | idx));
}

/* Fills out[0..n) with client's bytes from offset off. */
static void gen(unsigned client, uint64_t off, unsigned char *out, size_t n)
{
    uint64_t idx = off / 8;
    size_t skip = (size_t)(off % 8);
    while (n > 0) {
        uint64_t w = word(client, idx++);
        unsigned char b[8];
        memcpy(b, &w, 8);
        if (skip == 0 && n >= 8) {
            memcpy(out, b, 8);
            out += 8;
            n -= 8;
            continue;
        }
        size_t k = 8 - skip < n ? 8 - skip : n;
        memcpy(out, b + skip, k);
        out += k;
        n -= k;
        skip = 0;
    }
}

/* A small deterministic PRNG for sizes (splitmix64). */
static uint64_t rng_next(uint64_t *s)
{
    *s += 0x9e3779b97f4a7c15ULL;
    return mix(*s);
}

static double rng_unit(uint64_t *s)
{
    return (double)(rng_next(s) >> 11) * (1.0 / 9007199254740992.0);
}

/* ---- echo server ---------------------------------------------------------- */

static volatile sig_atomic_t stop_flag;

static void on_stop(int sig)
{
    (void)sig;
    stop_flag = 1;
}

typedef struct econn {
    struct econn *prev, *next; /* all open connections, freed at exit */
    int fd;
    unsigned char *buf; /* stream: echo buffer; seqpacket: one pending message */
    size_t off, len, cap;
    int eof;
    uint32_t ev;
} econn;

/* Creates the listening socket; prints why and exits 2 on failure. */
static int listen_on(addr *a, int type)
{
    int fd = socket(a->family, type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        die("socket: %s", strerror(errno));
    if (a->family != AF_UNIX) {
        int one = 1;
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    }
    if (bind(fd, (struct sockaddr *)&a->ss, a->len) < 0)
        die("bind %s: %s", a->text, strerror(errno));
    if (listen(fd, 4096) < 0)
        die("listen %s: %s", a->text, strerror(errno));
    return fd;
}

/* Sets what an echo connection waits for (level-triggered). */
static int econn_update(int ep, econn *c)
{
    uint32_t ev = 0;
    size_t pending = c->len - c->off;
    /* both kinds read only into an empty buffer: what was read goes out first */
    if (!c->eof && pending == 0)
        ev |= EPOLLIN;
    if (pending)
        ev |= EPOLLOUT;
    if (ev == c->ev)
        return 0;
    struct epoll_event e = {.events = ev, .data.ptr = c};
    c->ev = ev;
    return epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &e);
}

static econn *econns;

static void econn_close(int ep, econn *c)
{
    if (c->prev)
        c->prev->next = c->next;
    else
        econns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
    close(c->fd);
    free(c->buf);
    free(c);
}

/* Writes what an echo connection holds. 0, or -1 when the peer is gone. */
static int econn_flush(econn *c, int is_stream)
{
    while (c->off < c->len) {
        ssize_t n = send(c->fd, c->buf + c->off, c->len - c->off, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && errno == EAGAIN)
            return 0;
        if (n < 0)
            return -1;
        if (!is_stream && (size_t)n != c->len) {
            fprintf(stderr, "%s: echo: seqpacket send wrote %zd of %zu bytes\n", prog, n, c->len);
            exit(1);
        }
        c->off += (size_t)n;
    }
    c->off = c->len = 0;
    if (!is_stream) {
        free(c->buf);
        c->buf = NULL;
        c->cap = 0;
    }
    return 0;
}

/*
 * One event on an echo connection. Returns -1 when the connection is done
 * (closed here). Stream: read while the buffer has room, write it back;
 * after the client's EOF and an empty buffer, shutdown(SHUT_WR) and close.
 * Seqpacket: one message in (4 MiB buffer, truncation fatal), the same
 * message out; a message that cannot go out yet is kept and reading stops.
 */
static int econn_event(int ep, econn *c, int is_stream, unsigned char *rbuf)
{
    for (int round = 0; round < 16; round++) {
        if (econn_flush(c, is_stream) < 0) {
            econn_close(ep, c);
            return -1;
        }
        if (c->eof || c->off < c->len)
            break;
        ssize_t n;
        if (is_stream) {
            n = recv(c->fd, c->buf + c->len, c->cap - c->len, MSG_DONTWAIT);
        } else {
            n = recv(c->fd, rbuf, RBUF_SIZE, MSG_DONTWAIT | MSG_TRUNC);
            if (n > (ssize_t)RBUF_SIZE) {
                fprintf(stderr, "%s: echo: MSG_TRUNC: a %zd-byte message does not fit the %u-byte buffer\n",
                        prog, n, RBUF_SIZE);
                exit(1);
            }
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && errno == EAGAIN)
            break;
        if (n < 0) {
            econn_close(ep, c);
            return -1;
        }
        if (n == 0) {
            c->eof = 1;
            break;
        }
        if (is_stream) {
            c->len += (size_t)n;
        } else {
            ssize_t w = send(c->fd, rbuf, (size_t)n, MSG_NOSIGNAL | MSG_DONTWAIT);
            if (w == n)
                continue;
            if (w >= 0) {
                fprintf(stderr, "%s: echo: seqpacket send wrote %zd of %zd bytes\n", prog, w, n);
                exit(1);
            }
            if (errno != EAGAIN && errno != EINTR) {
                econn_close(ep, c);
                return -1;
            }
            c->buf = malloc((size_t)n);
            if (!c->buf)
                die("echo: out of memory");
            memcpy(c->buf, rbuf, (size_t)n);
            c->off = 0;
            c->len = c->cap = (size_t)n;
        }
    }
    if (c->eof && c->off == c->len) {
        if (is_stream)
            shutdown(c->fd, SHUT_WR);
        econn_close(ep, c);
        return -1;
    }
    if (econn_update(ep, c) < 0) {
        econn_close(ep, c);
        return -1;
    }
    return 0;
}

static int cmd_echo(int argc, char **argv)
{
    int type = -1, ready_fd = 1;
    const char *as = NULL;
    for (int i = 0; i < argc; i++) {
        if (strcmp(argv[i], "--type") == 0 && i + 1 < argc)
            type = parse_type(argv[++i]);
        else if (strcmp(argv[i], "--ready-fd") == 0 && i + 1 < argc)
            ready_fd = (int)parse_u64(argv[++i], "--ready-fd");
        else if (argv[i][0] == '-' && argv[i][1] == '-')
            die("echo: unknown option '%s'", argv[i]);
        else if (!as)
            as = argv[i];
        else
            die("echo: one address only");
    }
    if (type < 0 || !as)
        die("usage: relay_check echo --type stream|seqpacket ADDR [--ready-fd N]");
    addr a;
    if (parse_addr(as, &a) < 0)
        die("echo: bad address '%s'", as);
    raise_nofile();
    signal(SIGPIPE, SIG_IGN);
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_stop;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);

    int lfd = listen_on(&a, type);
    char ready[32] = "ready\n";
    if (a.family != AF_UNIX) {
        struct sockaddr_storage ss;
        socklen_t sl = sizeof(ss);
        if (getsockname(lfd, (struct sockaddr *)&ss, &sl) < 0)
            die("getsockname: %s", strerror(errno));
        unsigned port = ntohs(ss.ss_family == AF_INET ? ((struct sockaddr_in *)&ss)->sin_port
                                                      : ((struct sockaddr_in6 *)&ss)->sin6_port);
        snprintf(ready, sizeof(ready), "%u\n", port);
    }
    if (write(ready_fd, ready, strlen(ready)) != (ssize_t)strlen(ready))
        die("echo: writing the ready line to fd %d: %s", ready_fd, strerror(errno));
    close(ready_fd);

    int is_stream = type == SOCK_STREAM;
    unsigned char *rbuf = is_stream ? NULL : malloc(RBUF_SIZE);
    int ep = epoll_create1(EPOLL_CLOEXEC);
    if (ep < 0 || (!is_stream && !rbuf))
        die("echo: epoll/malloc: %s", strerror(errno));
    static char tag_listen;
    struct epoll_event e = {.events = EPOLLIN, .data.ptr = &tag_listen};
    epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &e);
    struct epoll_event evs[256];
    while (!stop_flag) {
        int n = epoll_wait(ep, evs, 256, -1);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            die("echo: epoll_wait: %s", strerror(errno));
        for (int i = 0; i < n; i++) {
            if (evs[i].data.ptr != &tag_listen) {
                econn_event(ep, evs[i].data.ptr, is_stream, rbuf);
                continue;
            }
            for (int k = 0; k < 64; k++) {
                int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
                if (fd < 0) {
                    if (errno != EAGAIN && errno != EINTR && errno != ECONNABORTED)
                        fprintf(stderr, "%s: echo: accept: %s\n", prog, strerror(errno));
                    break;
                }
                econn *c = calloc(1, sizeof(*c));
                if (!c || (is_stream && !(c->buf = malloc(STREAM_ECHO_BUF))))
                    die("echo: out of memory");
                c->fd = fd;
                c->next = econns;
                if (econns)
                    econns->prev = c;
                econns = c;
                c->cap = is_stream ? STREAM_ECHO_BUF : 0;
                c->ev = EPOLLIN;
                struct epoll_event ce = {.events = EPOLLIN, .data.ptr = c};
                if (epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ce) < 0)
                    die("echo: epoll_ctl: %s", strerror(errno));
            }
        }
    }
    while (econns)
        econn_close(ep, econns);
    close(ep);
    close(lfd);
    free(rbuf);
    if (a.family == AF_UNIX && as[0] != '@')
        unlink(as);
    return 0;
}

/* ---- clients ------------------------------------------------------------------ */

enum { C_WAIT, C_CONNECTING, C_OPEN, C_DONE, C_FAILED };
static const char *const state_name[] = {"waiting to connect", "connecting", "open", "done",
                                         "failed"};

typedef struct client {
    int fd;
    unsigned id;
    int state;
    uint64_t total, sent, rcvd;
    uint32_t *msz;         /* seqpacket: the sizes of the messages, in order */
    size_t nmsg, smsg, rmsg;
    int shut_wr, eof;
    int bad;               /* a mismatch was reported: drain to EOF, fail then */
    uint64_t retry_at;
    unsigned retries;
    uint32_t ev;
} client;

typedef struct run {
    addr a;
    int type;
    int boundaries;
    unsigned n;
    client *c;
    int ep;
    unsigned ndone, nfailed, nwait;
    unsigned reports;
    unsigned char *rbuf, *ebuf, *sbuf;
} run;

static run G;

/* Frees a client's socket and marks it failed (it reported why already). */
static void client_fail(client *c)
{
    if (c->fd >= 0) {
        epoll_ctl(G.ep, EPOLL_CTL_DEL, c->fd, NULL);
        close(c->fd);
        c->fd = -1;
    }
    if (c->state == C_WAIT)
        G.nwait--;
    c->state = C_FAILED;
    G.nfailed++;
}

/* A failure that is not a byte mismatch: counted, reported up to MAX_REPORTS. */
static void client_error(client *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void client_error(client *c, const char *fmt, ...)
{
    if (G.reports++ < MAX_REPORTS) {
        char msg[400];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(msg, sizeof(msg), fmt, ap);
        va_end(ap);
        printf("FAIL client %u: %s (sent %" PRIu64 "/%" PRIu64 ", received %" PRIu64 ")\n", c->id,
               msg, c->sent, c->total, c->rcvd);
    }
    client_fail(c);
}

static void hex(char *out, size_t cap, const unsigned char *p, size_t n)
{
    size_t k = 0;
    out[0] = 0;
    for (size_t i = 0; i < n && k + 4 < cap; i++)
        k += (size_t)snprintf(out + k, cap - k, "%s%02x", i ? " " : "", p[i]);
}

/*
 * Says where wrong bytes came from: zeros or another one-byte fill pattern
 * (0xbe is ASan's malloc fill), a word of some client's payload (that
 * client and the offset, found by decoding, any distance away), or nothing
 * we ever sent (memory that no recv wrote, e.g.).
 */
static void classify(char *out, size_t cap, unsigned me, const unsigned char *got, size_t avail)
{
    size_t z = 0;
    while (z < avail && got[z] == got[0])
        z++;
    if (got[0] == 0 && (z >= 8 || z == avail)) {
        snprintf(out, cap, "zeros (%zu zero bytes from there, of %zu in this read)", z, avail);
        return;
    }
    if (z >= 8 || z == avail) {
        snprintf(out, cap, "a fill pattern: %zu bytes of 0x%02x from there, of %zu in this read%s", z,
                 got[0], avail, got[0] == 0xbe ? " (0xbe: ASan's fill of fresh malloc memory)" : "");
        return;
    }
    for (size_t k = 0; k < 8 && k + 8 <= avail; k++) {
        uint64_t w;
        memcpy(&w, got + k, 8);
        uint64_t v = unmix(w) ^ KEY;
        uint64_t cl = v >> IDX_BITS, idx = v & ((1ULL << IDX_BITS) - 1);
        if (cl < G.n && idx * 8 < G.c[cl].total) {
            uint64_t from = idx * 8 - k;
            if (cl == me)
                snprintf(out, cap, "this client's own payload from offset %" PRIu64
                         " (bytes duplicated, lost or reordered)", from);
            else
                snprintf(out, cap, "client %" PRIu64 "'s payload from its offset %" PRIu64
                         " (misrouted from another connection)", cl, from);
            return;
        }
    }
    if (avail < 15)
        snprintf(out, cap, "not zeros; only %zu bytes, too few to trace", avail);
    else
        snprintf(out, cap, "neither zeros nor any client's payload (memory no recv wrote?)");
}

/*
 * Checks n received bytes at the client's offset c->rcvd; the first
 * mismatch of a client is reported and marks it bad. Why it goes on
 * reading after that: the relay keeps carrying the whole load (a crash or
 * a hang later is seen too), and later reads show what else leaks.
 */
static void verify(client *c, const unsigned char *got, size_t n)
{
    if (c->bad)
        return;
    gen(c->id, c->rcvd, G.ebuf, n);
    if (memcmp(got, G.ebuf, n) == 0)
        return;
    size_t p = 0;
    while (got[p] == G.ebuf[p])
        p++;
    size_t bad = 0, wrong = 0, same = 0;
    for (size_t i = p; i < n; i++)
        bad += got[i] != G.ebuf[i];
    /* the first wrong run ends where 16 bytes in a row are right again */
    for (size_t i = p; i < n && same < 16; i++) {
        same = got[i] == G.ebuf[i] ? same + 1 : 0;
        wrong = i + 1 - p - same;
    }
    if (G.reports++ < MAX_REPORTS) {
        char e[80], g[80], why[200];
        size_t show = n - p < 16 ? n - p : 16;
        hex(e, sizeof(e), G.ebuf + p, show);
        hex(g, sizeof(g), got + p, show);
        if (wrong < 8 && p + wrong + 16 <= n)
            snprintf(why, sizeof(why), "a run of only %zu wrong byte(s), the stream right again "
                     "after it (bytes corrupted in place)", wrong);
        else
            classify(why, sizeof(why), c->id, got + p, n - p);
        printf("MISMATCH client %u at offset %" PRIu64 " (of %" PRIu64 "): %zu of the %zu bytes "
               "from there in this read differ\n  expected %s\n  got      %s\n  the wrong bytes are %s\n",
               c->id, c->rcvd + p, c->total, bad, n - p, e, g, why);
    }
    c->bad = 1;
}

/* The socket of a client that may connect now. */
static void client_connect(client *c)
{
    c->fd = socket(G.a.family, G.type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (c->fd < 0) {
        client_error(c, "socket: %s", strerror(errno));
        return;
    }
    int r = connect(c->fd, (struct sockaddr *)&G.a.ss, G.a.len);
    int err = r < 0 ? errno : 0;
    if (err == EAGAIN || err == EINTR) {
        /* a unix listener's backlog is full: try again in a moment */
        close(c->fd);
        c->fd = -1;
        if (c->state != C_WAIT)
            G.nwait++;
        c->state = C_WAIT;
        c->retries++;
        c->retry_at = now_ms() + 5;
        return;
    }
    if (err && err != EINPROGRESS) {
        client_error(c, "connect %s: %s", G.a.text, strerror(err));
        return;
    }
    if (c->state == C_WAIT)
        G.nwait--;
    c->state = err ? C_CONNECTING : C_OPEN;
    c->ev = EPOLLIN | EPOLLOUT;
    struct epoll_event e = {.events = c->ev, .data.ptr = c};
    if (epoll_ctl(G.ep, EPOLL_CTL_ADD, c->fd, &e) < 0)
        client_error(c, "epoll_ctl: %s", strerror(errno));
}

/* Sends what the socket takes; shutdown(SHUT_WR) after the last byte. */
static void client_send(client *c)
{
    for (int round = 0; round < 8 && !c->shut_wr; round++) {
        size_t n;
        if (G.type == SOCK_STREAM) {
            uint64_t left = c->total - c->sent;
            n = left < SEND_CHUNK ? (size_t)left : SEND_CHUNK;
        } else {
            n = c->smsg < c->nmsg ? c->msz[c->smsg] : 0;
        }
        if (n > 0) {
            gen(c->id, c->sent, G.sbuf, n);
            ssize_t w = send(c->fd, G.sbuf, n, MSG_NOSIGNAL | MSG_DONTWAIT);
            if (w < 0 && errno == EINTR)
                continue;
            if (w < 0 && errno == EAGAIN)
                return;
            if (w < 0) {
                client_error(c, "send: %s", strerror(errno));
                return;
            }
            if (G.type == SOCK_SEQPACKET) {
                if ((size_t)w != n) {
                    client_error(c, "seqpacket send wrote %zd of %zu bytes", w, n);
                    return;
                }
                c->smsg++;
            }
            c->sent += (uint64_t)w;
        }
        if (c->sent == c->total) {
            if (shutdown(c->fd, SHUT_WR) < 0) {
                client_error(c, "shutdown: %s", strerror(errno));
                return;
            }
            c->shut_wr = 1;
        }
    }
}

/* Reads and checks what came back; EOF completes the client if all is in. */
static void client_recv(client *c)
{
    for (int round = 0; round < 8; round++) {
        ssize_t n;
        if (G.type == SOCK_STREAM)
            n = recv(c->fd, G.rbuf, SEND_CHUNK * 2, MSG_DONTWAIT);
        else
            n = recv(c->fd, G.rbuf, RBUF_SIZE, MSG_DONTWAIT | MSG_TRUNC);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && errno == EAGAIN)
            return;
        if (n < 0) {
            client_error(c, "recv: %s", strerror(errno));
            return;
        }
        if (n == 0) {
            if (c->rcvd < c->total) {
                client_error(c, "EOF after %" PRIu64 " of %" PRIu64 " bytes%s", c->rcvd, c->total,
                             c->shut_wr ? "" : " (while still sending)");
                return;
            }
            epoll_ctl(G.ep, EPOLL_CTL_DEL, c->fd, NULL);
            close(c->fd);
            c->fd = -1;
            c->eof = 1;
            c->state = c->bad ? C_FAILED : C_DONE;
            if (c->bad)
                G.nfailed++;
            else
                G.ndone++;
            return;
        }
        if (G.type == SOCK_SEQPACKET && (size_t)n > RBUF_SIZE) {
            client_error(c, "a %zd-byte message, truncated to the %u-byte buffer", n, RBUF_SIZE);
            return;
        }
        size_t len = (size_t)n;
        uint64_t left = c->total - c->rcvd;
        size_t check = len < left ? len : (size_t)left;
        if (check)
            verify(c, G.rbuf, check);
        if (len > left) {
            client_error(c, "%zu bytes more than it sent", len - (size_t)left);
            return;
        }
        if (G.boundaries) {
            uint32_t want = c->rmsg < c->nmsg ? c->msz[c->rmsg] : 0;
            if (len != want && !c->bad) {
                if (G.reports++ < MAX_REPORTS)
                    printf("FAIL client %u: message #%zu has %zu bytes, the one sent there had %u "
                           "(boundaries not kept)\n", c->id, c->rmsg, len, want);
                c->bad = 1;
            }
            c->rmsg++;
        }
        c->rcvd += len;
    }
}

static void client_event(client *c, uint32_t ev)
{
    if (c->state != C_CONNECTING && c->state != C_OPEN)
        return;
    if (c->state == C_CONNECTING) {
        if (!(ev & (EPOLLOUT | EPOLLERR | EPOLLHUP)))
            return;
        int err = 0;
        socklen_t sl = sizeof(err);
        getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &sl);
        if (err) {
            client_error(c, "connect %s: %s", G.a.text, strerror(err));
            return;
        }
        c->state = C_OPEN;
    }
    if (ev & (EPOLLIN | EPOLLHUP | EPOLLERR)) {
        client_recv(c);
        if (c->state != C_OPEN)
            return;
    }
    if ((ev & EPOLLOUT) && !c->shut_wr) {
        client_send(c);
        if (c->state != C_OPEN)
            return;
    }
    uint32_t want = EPOLLIN | (c->shut_wr ? 0 : EPOLLOUT);
    if (want != c->ev) {
        struct epoll_event e = {.events = want, .data.ptr = c};
        c->ev = want;
        if (epoll_ctl(G.ep, EPOLL_CTL_MOD, c->fd, &e) < 0)
            client_error(c, "epoll_ctl: %s", strerror(errno));
    }
}

/* Sizes for every client, from (seed, id): all clients know all sizes. */
static void plan(uint64_t seed, uint64_t big, uint64_t max)
{
    for (unsigned i = 0; i < G.n; i++) {
        client *c = &G.c[i];
        uint64_t s = mix(seed * 0x9e3779b97f4a7c15ULL + i + 1);
        c->id = i;
        c->fd = -1;
        if (i == 0 && big > 0) {
            c->total = big;
        } else {
            double v = exp(rng_unit(&s) * log((double)max));
            c->total = (uint64_t)(v + 0.5);
            if (c->total < 1)
                c->total = 1;
            if (c->total > max)
                c->total = max;
        }
        if (G.type != SOCK_SEQPACKET)
            continue;
        size_t cap = 16;
        c->msz = malloc(cap * sizeof(*c->msz));
        for (uint64_t sum = 0; sum < c->total;) {
            if (c->nmsg == cap)
                c->msz = realloc(c->msz, (cap *= 2) * sizeof(*c->msz));
            if (!c->msz)
                die("out of memory");
            uint64_t m = rng_next(&s) % MSG_MAX_SEND + 1;
            if (m > c->total - sum)
                m = c->total - sum;
            c->msz[c->nmsg++] = (uint32_t)m;
            sum += m;
        }
    }
}

static int cmd_clients(int argc, char **argv)
{
    uint64_t seed = 0, big = 64ULL << 20, max = 1ULL << 20, tmo = 120;
    int have_seed = 0;
    long nclients = -1;
    const char *as = NULL;
    G.type = -1;
    for (int i = 0; i < argc; i++) {
        const char *o = argv[i];
        int more = i + 1 < argc;
        if (strcmp(o, "--type") == 0 && more)
            G.type = parse_type(argv[++i]);
        else if (strcmp(o, "--clients") == 0 && more)
            nclients = (long)parse_u64(argv[++i], "--clients");
        else if (strcmp(o, "--seed") == 0 && more)
            seed = parse_u64(argv[++i], "--seed"), have_seed = 1;
        else if (strcmp(o, "--big") == 0 && more)
            big = parse_u64(argv[++i], "--big");
        else if (strcmp(o, "--max") == 0 && more)
            max = parse_u64(argv[++i], "--max");
        else if (strcmp(o, "--timeout") == 0 && more)
            tmo = parse_u64(argv[++i], "--timeout");
        else if (strcmp(o, "--boundaries") == 0)
            G.boundaries = 1;
        else if (o[0] == '-' && o[1] == '-')
            die("clients: unknown option '%s' (or it needs a value)", o);
        else if (!as)
            as = o;
        else
            die("clients: one address only");
    }
    if (G.type < 0 || nclients < 1 || nclients > 100000 || !have_seed || !as)
        die("usage: relay_check clients --type stream|seqpacket --clients N --seed S "
            "[--big BYTES] [--max BYTES] [--timeout SEC] [--boundaries] ADDR");
    if (max < 1 || tmo < 1 || big >= (1ULL << (IDX_BITS + 3)))
        die("clients: --max and --timeout must be >= 1, --big below 8 TiB");
    if (G.boundaries && G.type != SOCK_SEQPACKET)
        die("clients: --boundaries needs --type seqpacket");
    if (parse_addr(as, &G.a) < 0)
        die("clients: bad address '%s'", as);
    setvbuf(stdout, NULL, _IOLBF, 0);
    raise_nofile();
    signal(SIGPIPE, SIG_IGN);
    payload_init(seed);
    G.n = (unsigned)nclients;
    G.c = calloc(G.n, sizeof(*G.c));
    G.rbuf = malloc(RBUF_SIZE);
    G.ebuf = malloc(RBUF_SIZE);
    G.sbuf = malloc(SEND_CHUNK > MSG_MAX_SEND ? SEND_CHUNK : MSG_MAX_SEND);
    G.ep = epoll_create1(EPOLL_CLOEXEC);
    if (!G.c || !G.rbuf || !G.ebuf || !G.sbuf || G.ep < 0)
        die("clients: setup: %s", strerror(errno));
    plan(seed, big, max);
    uint64_t bytes = 0;
    for (unsigned i = 0; i < G.n; i++)
        bytes += G.c[i].total;

    double t0 = now_s();
    uint64_t deadline = now_ms() + tmo * 1000;
    for (unsigned i = 0; i < G.n; i++) {
        G.c[i].state = C_WAIT;
        G.nwait++;
        client_connect(&G.c[i]);
    }
    struct epoll_event evs[256];
    int timed_out = 0;
    while (G.ndone + G.nfailed < G.n) {
        uint64_t now = now_ms();
        if (now >= deadline) {
            timed_out = 1;
            break;
        }
        if (G.nwait) {
            for (unsigned i = 0; i < G.n; i++)
                if (G.c[i].state == C_WAIT && G.c[i].retry_at <= now)
                    client_connect(&G.c[i]);
        }
        uint64_t wait = deadline - now;
        if (G.nwait && wait > 5)
            wait = 5;
        int n = epoll_wait(G.ep, evs, 256, (int)(wait < 1000 ? wait : 1000));
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            die("clients: epoll_wait: %s", strerror(errno));
        for (int i = 0; i < n; i++)
            client_event(evs[i].data.ptr, evs[i].events);
    }
    double dt = now_s() - t0;
    if (timed_out) {
        unsigned left = G.n - G.ndone - G.nfailed, shown = 0;
        printf("TIMEOUT after %" PRIu64 " s: %u clients unfinished:\n", tmo, left);
        for (unsigned i = 0; i < G.n; i++) {
            client *c = &G.c[i];
            if (c->state == C_DONE || c->state == C_FAILED)
                continue;
            if (shown++ == 20) {
                printf("  ... and %u more\n", left - 20);
                break;
            }
            printf("  client %u: %s, sent %" PRIu64 "/%" PRIu64 "%s, received %" PRIu64
                   "%s, connect retries %u%s\n",
                   i, state_name[c->state], c->sent, c->total, c->shut_wr ? " (+EOF)" : "",
                   c->rcvd, c->eof ? " (+EOF)" : "", c->retries, c->bad ? ", mismatch seen" : "");
        }
    }
    if (G.reports > MAX_REPORTS)
        printf("(%u more failures not shown)\n", G.reports - MAX_REPORTS);
    int ok = !timed_out && G.nfailed == 0;
    printf("%s: %u clients (%u ok, %u failed, %u unfinished), %" PRIu64 " bytes each way "
           "(client 0: %" PRIu64 "), %.2f s, %.1f MB/s\n",
           ok ? "ok" : "FAIL", G.n, G.ndone, G.nfailed, G.n - G.ndone - G.nfailed, bytes,
           G.c[0].total, dt, dt > 0 ? (double)bytes / dt / 1e6 : 0.0);
    for (unsigned i = 0; i < G.n; i++) {
        if (G.c[i].fd >= 0)
            close(G.c[i].fd);
        free(G.c[i].msz);
    }
    free(G.c);
    free(G.rbuf);
    free(G.ebuf);
    free(G.sbuf);
    close(G.ep);
    return ok ? 0 : 1;
}

/* ---- listening ---------------------------------------------------------------- */

/* The socket inodes among PID's descriptors; -1 if the process is gone. */
static int socket_inodes(long pid, unsigned long *ino, int cap)
{
    char dir[64];
    snprintf(dir, sizeof(dir), "/proc/%ld/fd", pid);
    DIR *d = opendir(dir);
    if (!d)
        return -1;
    int n = 0;
    struct dirent *de;
    while ((de = readdir(d)) && n < cap) {
        char link[64];
        ssize_t k = readlinkat(dirfd(d), de->d_name, link, sizeof(link) - 1);
        if (k <= 0)
            continue;
        link[k] = 0;
        unsigned long v;
        if (sscanf(link, "socket:[%lu]", &v) == 1)
            ino[n++] = v;
    }
    closedir(d);
    return n;
}

static int has_ino(const unsigned long *ino, int n, unsigned long v)
{
    for (int i = 0; i < n; i++)
        if (ino[i] == v)
            return 1;
    return 0;
}

/* A listening unix socket of ours in /proc/net/unix: prints it, returns 1. */
static int find_unix(const unsigned long *ino, int n)
{
    FILE *f = fopen("/proc/net/unix", "r");
    if (!f)
        return 0;
    char line[512];
    int found = 0;
    while (!found && fgets(line, sizeof(line), f)) {
        unsigned long flags, type, st, inode;
        char path[256] = "";
        /* Num RefCount Protocol Flags Type St Inode Path */
        if (sscanf(line, "%*s %*s %*s %lx %lx %lx %lu %255s", &flags, &type, &st, &inode, path) < 4)
            continue;
        if (!(flags & 0x10000) || !has_ino(ino, n, inode) || !path[0])
            continue; /* not listening (__SO_ACCEPTCON), not ours, or unnamed */
        printf("%s %s\n", path, type == SOCK_SEQPACKET ? "seqpacket" : type == SOCK_STREAM ? "stream" : "other");
        found = 1;
    }
    fclose(f);
    return found;
}

/* A TCP socket of ours in LISTEN state (0A): prints it, returns 1. */
static int find_tcp(const char *file, int v6, const unsigned long *ino, int n)
{
    FILE *f = fopen(file, "r");
    if (!f)
        return 0;
    char line[512];
    int found = 0;
    while (!found && fgets(line, sizeof(line), f)) {
        char local[64];
        unsigned st, port;
        unsigned long inode;
        /* sl local rem st tx:rx tr:when retrnsmt uid timeout inode */
        if (sscanf(line, "%*s %63s %*s %x %*s %*s %*s %*s %*s %lu", local, &st, &inode) != 3)
            continue;
        if (st != 0x0A || !has_ino(ino, n, inode))
            continue;
        char *colon = strchr(local, ':');
        if (!colon || sscanf(colon + 1, "%x", &port) != 1)
            continue;
        *colon = 0;
        char txt[INET6_ADDRSTRLEN];
        if (v6) {
            uint32_t w[4];
            if (strlen(local) != 32 || sscanf(local, "%8x%8x%8x%8x", &w[0], &w[1], &w[2], &w[3]) != 4)
                continue;
            struct in6_addr a6;
            memcpy(&a6, w, sizeof(a6)); /* the kernel prints the raw words */
            inet_ntop(AF_INET6, &a6, txt, sizeof(txt));
            printf("tcp:[%s]:%u stream\n", txt, port);
        } else {
            uint32_t w;
            if (sscanf(local, "%8x", &w) != 1)
                continue;
            struct in_addr a4;
            memcpy(&a4, &w, sizeof(a4));
            inet_ntop(AF_INET, &a4, txt, sizeof(txt));
            printf("tcp:%s:%u stream\n", txt, port);
        }
        found = 1;
    }
    fclose(f);
    return found;
}

static int cmd_listening(int argc, char **argv)
{
    long pid = -1;
    uint64_t tmo = 20;
    for (int i = 0; i < argc; i++) {
        if (strcmp(argv[i], "--pid") == 0 && i + 1 < argc)
            pid = (long)parse_u64(argv[++i], "--pid");
        else if (strcmp(argv[i], "--timeout") == 0 && i + 1 < argc)
            tmo = parse_u64(argv[++i], "--timeout");
        else
            die("usage: relay_check listening --pid PID [--timeout SEC]");
    }
    if (pid <= 0)
        die("usage: relay_check listening --pid PID [--timeout SEC]");
    uint64_t deadline = now_ms() + tmo * 1000;
    for (;;) {
        unsigned long ino[256];
        int n = socket_inodes(pid, ino, 256);
        if (n < 0) {
            fprintf(stderr, "%s: listening: process %ld is gone\n", prog, pid);
            return 1;
        }
        if (n > 0 && (find_unix(ino, n) || find_tcp("/proc/net/tcp", 0, ino, n) ||
                      find_tcp("/proc/net/tcp6", 1, ino, n)))
            return 0;
        if (now_ms() >= deadline) {
            fprintf(stderr, "%s: listening: process %ld has no listening socket after %" PRIu64 " s\n",
                    prog, pid, tmo);
            return 1;
        }
        /* polling /proc: a state we read, not a timed guess */
        struct timespec ts = {0, 5 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
}

int main(int argc, char **argv)
{
    if (argc < 2)
        die("usage: relay_check echo|clients|listening ... (see the comment at the top of relay_check.c)");
    if (strcmp(argv[1], "echo") == 0)
        return cmd_echo(argc - 2, argv + 2);
    if (strcmp(argv[1], "clients") == 0)
        return cmd_clients(argc - 2, argv + 2);
    if (strcmp(argv[1], "listening") == 0)
        return cmd_listening(argc - 2, argv + 2);
    die("unknown mode '%s' (echo, clients, listening)", argv[1]);
}
