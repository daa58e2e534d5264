/*
 * cmd_bench.c — `udsock bench`: measures what unix sockets (and this
 * library) cost on this machine, so users can compare transports and
 * tools with numbers instead of folklore.
 *
 *   udsock bench pingpong|stream|rr|connect|dgram|hold [options]
 *
 * By default both ends run here: the server in a forked child, the client
 * in this process, each optionally pinned to a CPU (--cpus S,C). With
 * --server ADDR only the serving end runs (until killed); with --client
 * ADDR only the measuring end runs, against such a server elsewhere.
 * The wire protocol between the two ends is in bench.h.
 */
#include "access.h"
#include "bench.h"
#include "cli.h"
#include "opts.h"

#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define MAX_LIST 32

typedef struct bench_opts {
    int mode;
    const char *mode_name;
    const char *transports[MAX_LIST];
    int ntransports;
    size_t sizes[MAX_LIST];
    int nsizes;
    int batches[MAX_LIST];
    int nbatches;
    double duration; /* seconds per measurement */
    uint64_t count;  /* operations per measurement (0: use duration) */
    uint64_t bytes;  /* stream: bytes per measurement */
    int clients, pipeline;
    int cpu_server, cpu_client;
    int spin_us;
    int sndbuf, rcvbuf;
    int warmup;
    int lib;         /* rr/hold: the library's uds_server / uds_client */
    const char *server_addr, *client_addr;
    int fmt;
    cli_access rules;   /* --server: --allow-uid/--allow-gid/--deny-* */
    int allow_remote;   /* --server on TCP/UDP: peers off the loopback too */
} bench_opts;

static char *zeros;            /* a large zero buffer to send from */
static size_t zeros_len;

/* ---- parsing ------------------------------------------------------------- */

/* Splits a comma list into out[] (pointers into s, which is modified). */
static int split_list(char *s, const char *out[], int max)
{
    int n = 0;
    for (char *tok = strtok(s, ","); tok && n < max; tok = strtok(NULL, ","))
        out[n++] = tok;
    return n;
}

static int mode_parse(const char *s)
{
    static const struct { const char *n; int m; } t[] = {
        {"pingpong", BM_PINGPONG}, {"stream", BM_STREAM}, {"rr", BM_RR},
        {"connect", BM_CONNECT},   {"dgram", BM_DGRAM},   {"hold", BM_HOLD},
    };
    for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++)
        if (!strcmp(s, t[i].n))
            return t[i].m;
    return -1;
}

static void usage(FILE *f)
{
    fprintf(f,
        "usage: udsock bench [MODE] [options]\n"
        "modes:\n"
        "  pingpong   round-trip latency of one message (p50/p90/p99/p99.9/max)\n"
        "  stream     one-way throughput (bytes/s)\n"
        "  rr         request/response: --clients N connections x --pipeline D in flight\n"
        "  connect    connect+accept+close per second (--size N adds one request/response)\n"
        "  dgram      datagrams per second, plain send/recv and sendmmsg/recvmmsg (--batch)\n"
        "  hold       open --clients N idle connections; server memory per connection\n"
        "options:\n"
        "  -t, --transport LIST  unix,abstract,seqpacket,dgram,tcp (default unix)\n"
        "  -s, --size LIST       message sizes, e.g. 64,4k,1M (default 64; stream 64K)\n"
        "      --sweep           sizes 64 256 1K 4K 16K 64K 256K 1M\n"
        "  -d, --duration SEC    time per measurement (default 1)\n"
        "  -n, --count N         operations per measurement (with -d: whichever first)\n"
        "      --bytes N         stream: bytes per measurement (e.g. 2G)\n"
        "  -c, --clients N       rr/hold connections (default 1)\n"
        "  -P, --pipeline N      rr requests in flight per connection (default 1)\n"
        "  -b, --batch LIST      dgram batch sizes (default 1,32)\n"
        "      --cpus S[,C]      pin the server to CPU S and the client to C (one: both)\n"
        "      --spin USEC       busy-poll up to USEC before blocking, both ends\n"
        "      --sndbuf N, --rcvbuf N   SO_SNDBUF / SO_RCVBUF on both ends\n"
        "      --warmup N        round trips not recorded at the start (default 100)\n"
        "      --impl lib|core   rr/hold: the library's uds_server + uds_client with its\n"
        "                        framing (lib, the default) or a plain epoll echo over\n"
        "                        the core socket calls (core)\n"
        "      --server ADDR     run only the serving end on ADDR (until killed)\n"
        "      --client ADDR     run only the measuring end, against such a server\n"
        "      --allow-uid LIST, --allow-gid LIST, --deny-uid LIST, --deny-gid LIST\n"
        "                        --server: who may connect besides our own uid (unix)\n"
        "      --allow-remote    --server on tcp:/udp:: peers off the loopback too\n"
        "      --json | --csv    machine-readable output (default: a table)\n");
}

/* ---- connecting ---------------------------------------------------------- */

/* The socket type a transport name implies. */
static int transport_type(const char *t, int mode)
{
    if (mode == BM_DGRAM || !strcmp(t, "dgram"))
        return UDS_DGRAM;
    if (!strcmp(t, "seqpacket"))
        return UDS_SEQPACKET;
    return UDS_STREAM;
}

/* Room for a message of `size` in the socket buffers of message sockets. */
static void size_buffers(int fd, int type, size_t size, const bench_opts *o)
{
    int snd = o->sndbuf, rcv = o->rcvbuf;
    if (type != UDS_STREAM && size > 65536 && !snd)
        snd = (int)(size * 2 + 65536 > (4u << 20) ? (4u << 20) : size * 2 + 65536);
    if (type != UDS_STREAM && size > 65536 && !rcv)
        rcv = snd;
    uds_set_bufsizes(fd, snd, rcv);
}

static int bconnect(const uds_addr *a, int type, size_t size, const bench_opts *o)
{
    uds_connect_opts co;
    memset(&co, 0, sizeof(co));
    co.type = type;
    co.timeout_ms = 10000;
    int fd = uds_connect(a, &co);
    if (fd < 0)
        return fd;
    size_buffers(fd, type, size, o);
    if (a->kind == UDS_ADDR_TCP)
        bench_nodelay(fd);
    return fd;
}

static void hello_init(bench_hello *h, int mode, size_t size, const bench_opts *o)
{
    memset(h, 0, sizeof(*h));
    h->magic = BENCH_MAGIC;
    h->mode = (uint32_t)mode;
    h->size = (uint32_t)size;
    h->spin_us = (uint32_t)(o->spin_us > 0 ? o->spin_us : 0);
    h->clients = (uint32_t)o->clients;
    h->pipeline = (uint32_t)o->pipeline;
}

/* Has this measurement reached its bound (ops or time)? */
static int done(const bench_opts *o, uint64_t ops, uint64_t t0, uint64_t now)
{
    if (o->count && ops >= o->count)
        return 1;
    return o->duration > 0 && (double)(now - t0) >= o->duration * 1e9;
}

static void fill_lat(bench_row *r, const bench_hist *h)
{
    if (!h->n)
        return;
    r->has_lat = 1;
    r->p50 = bench_hist_quantile(h, 0.50) / 1e3;
    r->p90 = bench_hist_quantile(h, 0.90) / 1e3;
    r->p99 = bench_hist_quantile(h, 0.99) / 1e3;
    r->p999 = bench_hist_quantile(h, 0.999) / 1e3;
    r->max = (double)h->max / 1e3;
    r->min = (double)h->min / 1e3;
    r->mean = h->sum / (double)h->n / 1e3;
}

static int failed; /* a measurement could not be made: exit 1 */

static void note(bench_row *r, const char *what, int err)
{
    failed = 1;
    snprintf(r->note, sizeof(r->note), "%s: %s", what, uds_strerror(err));
}

/* ---- client modes -------------------------------------------------------- */

/* Waits up to ms for fd to become readable; 1 ready, 0 not. */
static int readable(int fd, int ms)
{
    struct pollfd p = {fd, POLLIN, 0};
    int r;
    do
        r = poll(&p, 1, ms);
    while (r < 0 && errno == EINTR);
    return r > 0;
}

/*
 * Reads the server's bench_ack that answers a hello. 0 admitted; otherwise
 * the row's note says why (the server's reason when it refused).
 */
static int read_ack(int fd, int type, bench_row *r)
{
    bench_ack a;
    memset(&a, 0, sizeof(a));
    ssize_t n = -ETIMEDOUT;
    if (readable(fd, 10000))
        n = type == UDS_STREAM ? bench_recv_exact(fd, &a, sizeof(a), 0)
                               : recv(fd, &a, sizeof(a), 0);
    if (n != (ssize_t)sizeof(a) || a.magic != BENCH_MAGIC) {
        note(r, "no answer from the server", n < 0 ? (int)n : -ECONNRESET);
        return -1;
    }
    if (a.status) {
        a.why[sizeof(a.why) - 1] = 0;
        char what[80];
        snprintf(what, sizeof(what), "server refused: %s", a.why);
        note(r, what, -(int)a.status);
        return -1;
    }
    return 0;
}

/* Round trips of one size-byte message; the histogram holds each one. */
static void run_pingpong(const uds_addr *a, int type, size_t size, const bench_opts *o,
                         bench_row *r)
{
    uint64_t spin_ns = (uint64_t)(o->spin_us > 0 ? o->spin_us : 0) * 1000u;
    int fd = bconnect(a, type, size, o);
    if (fd < 0)
        return note(r, "connect", fd);
    bench_hello h;
    hello_init(&h, BM_PINGPONG, size, o);
    char *buf = malloc(size ? size : 1);
    bench_hist *hist = malloc(sizeof(*hist));
    if (!buf || !hist) {
        note(r, "memory", -ENOMEM);
        goto out;
    }
    bench_hist_init(hist);
    if (uds_send(fd, &h, sizeof(h)) != (ssize_t)sizeof(h)) {
        note(r, "send hello", -EPIPE);
        goto out;
    }
    /* the server's answer (datagrams: also that it now listens for us) */
    if (read_ack(fd, type, r) < 0)
        goto out;
    memset(buf, 0x5a, size);
    uint64_t t0 = bench_now_ns(), now = t0, ops = 0, warm = (uint64_t)o->warmup;
    uint64_t tstart = t0;
    for (;;) {
        uint64_t t1 = bench_now_ns();
        ssize_t w = type == UDS_STREAM ? uds_write_all(fd, buf, size) : uds_send(fd, buf, size);
        if (w < 0) {
            note(r, "send", (int)w);
            break;
        }
        ssize_t n = type == UDS_STREAM ? bench_recv_exact(fd, buf, size, spin_ns)
                                       : bench_recv(fd, buf, size, spin_ns);
        if (n < 0 || (size_t)n < size) {
            note(r, "recv", n < 0 ? (int)n : -ECONNRESET);
            break;
        }
        now = bench_now_ns();
        if (warm) {
            if (--warm == 0)
                tstart = now; /* the clock starts after the warm-up */
            continue;
        }
        bench_hist_add(hist, now - t1);
        ops++;
        if (done(o, ops, tstart, now))
            break;
    }
    r->ops = ops;
    r->bytes = ops * size * 2;
    r->secs = (double)(now - tstart) / 1e9;
    fill_lat(r, hist);
    if (type == UDS_DGRAM) {
        hello_init(&h, BM_END, 0, o);
        (void)uds_send(fd, &h, sizeof(h));
    }
out:
    free(buf);
    free(hist);
    close(fd);
}

/* One-way: write size-byte chunks, then wait for the server's byte count. */
static void run_stream(const uds_addr *a, int type, size_t size, const bench_opts *o,
                       bench_row *r)
{
    int fd = bconnect(a, type, size, o);
    if (fd < 0)
        return note(r, "connect", fd);
    bench_hello h;
    hello_init(&h, BM_STREAM, size, o);
    if (uds_write_all(fd, &h, sizeof(h)) < 0) {
        close(fd);
        return note(r, "send hello", -EPIPE);
    }
    if (read_ack(fd, type, r) < 0) {
        close(fd);
        return;
    }
    size_t chunk = size ? size : 65536;
    const char *buf = zeros;
    if (chunk > zeros_len)
        chunk = zeros_len;
    uint64_t t0 = bench_now_ns(), now = t0, sent = 0, writes = 0;
    for (;;) {
        ssize_t w = type == UDS_STREAM ? uds_write_all(fd, buf, chunk) : uds_send(fd, buf, chunk);
        if (w < 0) {
            note(r, "send", (int)w);
            break;
        }
        sent += (uint64_t)w;
        writes++;
        if (o->bytes) {
            if (sent >= o->bytes)
                break;
            continue;
        }
        now = bench_now_ns();
        if (done(o, writes, t0, now))
            break;
    }
    shutdown(fd, SHUT_WR);
    bench_report rep;
    memset(&rep, 0, sizeof(rep));
    if (bench_recv_exact(fd, &rep, sizeof(rep), 0) != sizeof(rep) && !r->note[0])
        note(r, "no byte count from the server", -ECONNRESET);
    now = bench_now_ns();
    r->ops = writes;
    r->bytes = rep.count ? rep.count : sent;
    r->secs = (double)(now - t0) / 1e9;
    if (rep.count && rep.count != sent)
        snprintf(r->note, sizeof(r->note), "server got %llu of %llu bytes",
                 (unsigned long long)rep.count, (unsigned long long)sent);
    close(fd);
}

typedef struct rr_cli {
    int fd;
    uint64_t *ts;          /* send times of the requests in flight (ring) */
    unsigned head, inflight;
    size_t pend;           /* request bytes not yet written */
    size_t acc;            /* bytes of a partly received response */
    int want_out;
} rr_cli;

/* Queue requests up to the pipeline depth and write what the socket takes. */
static int rr_pump(rr_cli *c, int ep, uint64_t idx, size_t size, unsigned depth, int issue,
                   int msgsock)
{
    uint64_t now = bench_now_ns();
    while (issue && c->inflight < depth) {
        c->ts[(c->head + c->inflight) % depth] = now;
        c->inflight++;
        c->pend += size;
    }
    while (c->pend) {
        size_t n = c->pend < zeros_len ? c->pend : zeros_len;
        if (msgsock)
            n = size; /* seqpacket: one request per message */
        ssize_t w = send(c->fd, zeros, n, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (w < 0) {
            if (errno == EAGAIN)
                break;
            if (errno == EINTR)
                continue;
            return -errno;
        }
        c->pend -= (size_t)w;
    }
    int want = c->pend > 0;
    if (want != c->want_out) {
        struct epoll_event ev = {.events = EPOLLIN | (want ? EPOLLOUT : 0), .data.u64 = idx};
        epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
        c->want_out = want;
    }
    return 0;
}

/*
 * N connections, each with up to `pipeline` requests in flight, all driven
 * from one epoll loop: latency is measured per request from the moment it
 * is queued to the moment its response is complete.
 */
static void run_rr(const uds_addr *a, int type, size_t size, const bench_opts *o, bench_row *r)
{
    unsigned n = (unsigned)(o->clients > 0 ? o->clients : 1);
    unsigned depth = (unsigned)(o->pipeline > 0 ? o->pipeline : 1);
    uint64_t spin_ns = (uint64_t)(o->spin_us > 0 ? o->spin_us : 0) * 1000u;
    int msgsock = type != UDS_STREAM;
    rr_cli *cs = calloc(n, sizeof(*cs));
    bench_hist *hist = malloc(sizeof(*hist));
    size_t rcap = size * depth > 262144 ? size * depth : 262144;
    char *rbuf = malloc(rcap);
    int ep = epoll_create1(EPOLL_CLOEXEC);
    unsigned opened = 0;
    if (!cs || !hist || !rbuf || ep < 0) {
        note(r, "setup", -ENOMEM);
        goto out;
    }
    bench_hist_init(hist);
    bench_hello h;
    hello_init(&h, BM_RR, size, o);
    h.clients = n;
    h.pipeline = depth;
    for (; opened < n; opened++) {
        rr_cli *c = &cs[opened];
        c->fd = bconnect(a, type, size, o);
        if (c->fd < 0) {
            note(r, "connect", c->fd);
            goto out;
        }
        c->ts = calloc(depth, sizeof(uint64_t));
        if (!c->ts || uds_write_all(c->fd, &h, sizeof(h)) < 0) {
            close(c->fd);
            note(r, "send hello", -EPIPE);
            goto out;
        }
        struct epoll_event ev = {.events = EPOLLIN, .data.u64 = opened};
        epoll_ctl(ep, EPOLL_CTL_ADD, c->fd, &ev);
    }
    for (unsigned i = 0; i < n; i++) /* every connection is answered */
        if (read_ack(cs[i].fd, type, r) < 0)
            goto out;
    uint64_t t0 = bench_now_ns(), now = t0, ops = 0, issued_stop = 0, inflight = 0;
    uint64_t tstart = t0, warm = (uint64_t)o->warmup;
    int issue = 1;
    for (unsigned i = 0; i < n; i++) {
        if (rr_pump(&cs[i], ep, i, size, depth, 1, msgsock) < 0) {
            note(r, "send", -EPIPE);
            goto out;
        }
        inflight += depth;
    }
    struct epoll_event evs[256];
    while (inflight > 0) {
        int k = 0;
        if (spin_ns) {
            uint64_t s0 = bench_now_ns();
            while ((k = epoll_wait(ep, evs, 256, 0)) == 0 && bench_now_ns() - s0 < spin_ns)
                ;
        }
        if (k == 0)
            k = epoll_wait(ep, evs, 256, 10000);
        if (k == 0) {
            note(r, "server stopped answering", -ETIMEDOUT);
            break;
        }
        if (k < 0) {
            if (errno == EINTR)
                continue;
            note(r, "epoll_wait", -errno);
            break;
        }
        for (int j = 0; j < k; j++) {
            uint64_t idx = evs[j].data.u64;
            rr_cli *c = &cs[idx];
            if (evs[j].events & (EPOLLIN | EPOLLHUP | EPOLLERR)) {
                ssize_t got = recv(c->fd, rbuf, rcap, MSG_DONTWAIT);
                if (got == 0 || (got < 0 && errno != EAGAIN && errno != EINTR)) {
                    note(r, "recv", got == 0 ? -ECONNRESET : -errno);
                    inflight = 0;
                    break;
                }
                if (got > 0) {
                    c->acc += (size_t)got;
                    now = bench_now_ns();
                    while (c->acc >= size && c->inflight) {
                        c->acc -= size;
                        uint64_t sent_at = c->ts[c->head];
                        c->head = (c->head + 1) % depth;
                        c->inflight--;
                        inflight--;
                        if (warm) {
                            if (--warm == 0)
                                tstart = now;
                            continue;
                        }
                        bench_hist_add(hist, now - sent_at);
                        ops++;
                    }
                    if (issue && !warm && done(o, ops, tstart, now)) {
                        issue = 0;
                        issued_stop = now;
                    }
                }
            }
            unsigned before = c->inflight;
            if (rr_pump(c, ep, idx, size, depth, issue, msgsock) < 0) {
                note(r, "send", -EPIPE);
                inflight = 0;
                break;
            }
            inflight += c->inflight - before;
        }
    }
    if (!issued_stop)
        issued_stop = now;
    r->ops = ops;
    r->bytes = ops * size * 2;
    /* throughput over the measured window; draining the pipe is not counted */
    r->secs = (double)(issued_stop - tstart) / 1e9;
    if (r->secs <= 0)
        r->secs = (double)(now - tstart) / 1e9;
    fill_lat(r, hist);
out:
    if (cs) {
        for (unsigned i = 0; i < opened; i++) {
            close(cs[i].fd);
            free(cs[i].ts);
        }
        free(cs);
    }
    free(hist);
    free(rbuf);
    if (ep >= 0)
        close(ep);
}

/* Connections per second: connect (+ one exchange with --size), close. */
static void run_connect(const uds_addr *a, int type, size_t size, const bench_opts *o,
                        bench_row *r)
{
    int ctrl = bconnect(a, type, 0, o);
    if (ctrl < 0)
        return note(r, "connect", ctrl);
    bench_hello h;
    hello_init(&h, BM_CONNECT, size, o);
    bench_hist *hist = malloc(sizeof(*hist));
    char *buf = malloc(size ? size : 1);
    if (!hist || !buf || uds_write_all(ctrl, &h, sizeof(h)) < 0) {
        note(r, "send hello", -EPIPE);
        goto out;
    }
    if (read_ack(ctrl, type, r) < 0)
        goto out;
    /* each request names itself: a hello, then the request, in one write */
    h.flags = BC_REQUEST;
    struct iovec req[2] = {{&h, sizeof(h)}, {buf, size}};
    bench_hist_init(hist);
    memset(buf, 0, size ? size : 1);
    uds_connect_opts co;
    memset(&co, 0, sizeof(co));
    co.type = type;
    int tcp = a->kind == UDS_ADDR_TCP;
    uint64_t t0 = bench_now_ns(), now = t0, ops = 0;
    for (;;) {
        uint64_t t1 = bench_now_ns();
        int fd = uds_connect(a, &co);
        if (fd < 0) {
            note(r, "connect", fd);
            break;
        }
        if (size) {
            int wr = type == UDS_STREAM ? (uds_writev_all(fd, req, 2) < 0 ? -1 : 0)
                                        : (uds_send(fd, &h, sizeof(h)) < 0 ||
                                           uds_send(fd, buf, size) < 0) ? -1 : 0;
            if (wr < 0 || bench_recv_exact(fd, buf, size, 0) != (ssize_t)size) {
                close(fd);
                note(r, "request", -ECONNRESET);
                break;
            }
        }
        if (tcp) { /* RST instead of TIME_WAIT, or the ports run out */
            struct linger lg = {1, 0};
            (void)setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
        }
        close(fd);
        now = bench_now_ns();
        bench_hist_add(hist, now - t1);
        ops++;
        if (done(o, ops, t0, now))
            break;
    }
    r->ops = ops;
    r->bytes = ops * size * 2;
    r->secs = (double)(now - t0) / 1e9;
    fill_lat(r, hist);
out:
    free(hist);
    free(buf);
    close(ctrl);
}

/* Datagrams per second, one way, with sendmmsg/recvmmsg when batch > 1. */
static void run_dgram(const uds_addr *a, size_t size, int batch, const bench_opts *o,
                      bench_row *r)
{
    int fd = bconnect(a, UDS_DGRAM, size, o);
    if (fd < 0)
        return note(r, "connect", fd);
    bench_hello h;
    hello_init(&h, BM_DGRAM, size, o);
    h.batch = (uint32_t)batch;
    struct mmsghdr *mm = calloc((size_t)batch, sizeof(*mm));
    struct iovec iov = {zeros, size};
    if (!mm || size > zeros_len) {
        note(r, "setup", -ENOMEM);
        goto out;
    }
    for (int i = 0; i < batch; i++) {
        mm[i].msg_hdr.msg_iov = &iov;
        mm[i].msg_hdr.msg_iovlen = 1;
    }
    if (uds_send(fd, &h, sizeof(h)) < 0) {
        note(r, "send hello", -EPIPE);
        goto out;
    }
    if (read_ack(fd, UDS_DGRAM, r) < 0)
        goto out;
    uint64_t t0 = bench_now_ns(), now = t0, sent = 0;
    for (;;) {
        if (batch > 1) {
            int k = sendmmsg(fd, mm, (unsigned)batch, MSG_NOSIGNAL);
            if (k < 0) {
                if (errno == EINTR)
                    continue;
                note(r, "sendmmsg", -errno);
                break;
            }
            sent += (uint64_t)k;
        } else {
            ssize_t w = uds_send(fd, zeros, size);
            if (w < 0) {
                note(r, "send", (int)w);
                break;
            }
            sent++;
        }
        now = bench_now_ns();
        if (done(o, sent, t0, now))
            break;
    }
    hello_init(&h, BM_END, 0, o);
    bench_report rep;
    memset(&rep, 0, sizeof(rep));
    if (uds_send(fd, &h, sizeof(h)) < 0 || !readable(fd, 10000) ||
        recv(fd, &rep, sizeof(rep), 0) != sizeof(rep)) {
        if (!r->note[0])
            note(r, "no count from the server", -ETIMEDOUT);
    }
    now = bench_now_ns();
    r->ops = rep.count;
    r->bytes = rep.count * size;
    r->secs = (double)(now - t0) / 1e9;
    if (rep.count < sent && !r->note[0])
        snprintf(r->note, sizeof(r->note), "lost %llu of %llu",
                 (unsigned long long)(sent - rep.count), (unsigned long long)sent);
out:
    free(mm);
    close(fd);
}

/* The forked server (fork mode), so `hold --impl lib` can look at it. */
static pid_t server_pid;
static void pin_failed(const char *who, int cpu, int err) __attribute__((noreturn));

/* Entries in /proc/PID/fd, or -1. */
static long count_fds(pid_t pid)
{
    char path[64];
    snprintf(path, sizeof(path), "/proc/%d/fd", (int)pid);
    DIR *d = opendir(path);
    if (!d)
        return -1;
    long n = 0;
    for (struct dirent *e; (e = readdir(d));)
        if (e->d_name[0] != '.')
            n++;
    closedir(d);
    return n;
}

/* Resident bytes of process pid (from /proc/PID/statm), 0 if unknown. */
static uint64_t rss_of(pid_t pid)
{
    char path[64];
    snprintf(path, sizeof(path), "/proc/%d/statm", (int)pid);
    FILE *f = fopen(path, "re");
    unsigned long sz = 0, res = 0;
    if (!f)
        return 0;
    if (fscanf(f, "%lu %lu", &sz, &res) != 2)
        res = 0;
    fclose(f);
    return (uint64_t)res * (uint64_t)sysconf(_SC_PAGESIZE);
}

/*
 * hold with the library's server: open N idle connections, wait until the
 * server process holds N more descriptors, and divide its RSS growth by N.
 * RSS counts the pages touched, so this is user-space memory (kernel
 * socket buffers are not in it).
 */
static void run_hold_lib(const uds_addr *a, int type, const bench_opts *o, bench_row *r)
{
    unsigned n = (unsigned)(o->clients > 0 ? o->clients : 1);
    if (server_pid <= 0)
        return note(r, "hold --impl lib", -ENOTSUP);
    int *fds = malloc(n * sizeof(int));
    unsigned k = 0;
    if (!fds)
        return note(r, "hold", -ENOMEM);
    /* one full request first: the server is then set up (loop, buffers of
       a first connection), so the baseline holds only what is per-connection */
    uds_client *probe;
    uds_client_opts po;
    memset(&po, 0, sizeof(po));
    po.type = type;
    po.connect_timeout_ms = 10000;
    int pr = uds_client_connect(&probe, a, &po);
    if (pr == 0) {
        void *resp = NULL;
        size_t rl;
        pr = uds_client_call(probe, "hi", 2, &resp, &rl, 10000);
        free(resp);
        uds_client_close(probe);
    }
    if (pr < 0) {
        free(fds);
        return note(r, "probe request", pr);
    }
    long base = -1;
    for (int i = 0; i < 100; i++) { /* until the probe connection is gone */
        usleep(10000);
        long now_fds = count_fds(server_pid);
        if (now_fds == base)
            break;
        base = now_fds;
    }
    uint64_t rss0 = rss_of(server_pid), t0 = bench_now_ns();
    uds_connect_opts co;
    memset(&co, 0, sizeof(co));
    co.type = type;
    co.timeout_ms = 10000;
    for (; k < n; k++) {
        fds[k] = uds_connect(a, &co);
        if (fds[k] < 0) {
            note(r, "connect", fds[k]);
            break;
        }
    }
    long held = 0;
    for (int i = 0; i < 1000; i++) { /* until the server accepted them all */
        held = count_fds(server_pid) - base;
        if (held >= (long)k)
            break;
        usleep(10000);
    }
    usleep(100000); /* let it settle (lazy allocations, epoll registration) */
    uint64_t rss1 = rss_of(server_pid);
    r->ops = held > 0 ? (uint64_t)held : 0;
    r->secs = (double)(bench_now_ns() - t0) / 1e9;
    r->extra = held > 0 ? (double)(rss1 > rss0 ? rss1 - rss0 : 0) / (double)held : 0;
    if (held < (long)n && !r->note[0])
        snprintf(r->note, sizeof(r->note), "server holds %ld of %u", held, n);
    for (unsigned i = 0; i < k; i++)
        close(fds[i]);
    free(fds);
}

/* Opens N idle connections; the server says how much memory they cost it. */
static void run_hold(const uds_addr *a, int type, const bench_opts *o, bench_row *r)
{
    unsigned n = (unsigned)(o->clients > 0 ? o->clients : 1);
    int ctrl = bconnect(a, type, 0, o);
    if (ctrl < 0)
        return note(r, "connect", ctrl);
    bench_hello h;
    hello_init(&h, BM_HOLD, 0, o);
    h.clients = n;
    uint64_t token = bench_token(); /* names this session to the server */
    h.batch = (uint32_t)token;
    h.flags = (uint32_t)(token >> 32);
    int *fds = malloc(n * sizeof(int));
    unsigned k = 0;
    if (!fds || uds_write_all(ctrl, &h, sizeof(h)) < 0) {
        note(r, "send hello", -EPIPE);
        goto out;
    }
    if (read_ack(ctrl, type, r) < 0)
        goto out;
    bench_hello join = h;
    join.mode = BM_JOIN;
    uint64_t t0 = bench_now_ns();
    uds_connect_opts co;
    memset(&co, 0, sizeof(co));
    co.type = type;
    co.timeout_ms = 10000;
    for (; k < n; k++) {
        fds[k] = uds_connect(a, &co);
        if (fds[k] < 0) {
            note(r, "connect", fds[k]);
            break;
        }
        if (uds_write_all(fds[k], &join, sizeof(join)) < 0) {
            note(r, "join", -EPIPE);
            k++;
            break;
        }
    }
    bench_report rep;
    memset(&rep, 0, sizeof(rep));
    if (k == n && bench_recv_exact(ctrl, &rep, sizeof(rep), 0) != sizeof(rep))
        note(r, "no report from the server", -ECONNRESET);
    r->ops = rep.count;
    r->secs = (double)(bench_now_ns() - t0) / 1e9;
    r->extra = rep.count ? (double)rep.extra / (double)rep.count : 0;
out:
    for (unsigned i = 0; i < k; i++)
        close(fds[i]);
    free(fds);
    close(ctrl);
}

/* ---- orchestration ------------------------------------------------------- */

static void run_one(const bench_opts *o, const char *transport, const uds_addr *a, size_t size,
                    int batch)
{
    bench_row r;
    memset(&r, 0, sizeof(r));
    r.mode = o->mode_name;
    r.transport = transport;
    r.impl = o->lib && (o->mode == BM_RR || o->mode == BM_HOLD) ? "lib" : "core";
    r.size = size;
    r.clients = o->mode == BM_RR || o->mode == BM_HOLD ? (o->clients > 0 ? o->clients : 1) : 1;
    r.pipeline = o->mode == BM_RR ? (o->pipeline > 0 ? o->pipeline : 1) : 1;
    r.batch = batch;
    r.spin_us = o->spin_us;
    /* the pinning in effect, read back (not what --cpus asked for) */
    r.cpu_server = o->client_addr || server_pid <= 0 ? -1 : bench_pinned(server_pid);
    r.cpu_client = bench_pinned(0);
    r.sndbuf = o->sndbuf;
    r.rcvbuf = o->rcvbuf;
    int type = transport_type(transport, o->mode);
    switch (o->mode) {
    case BM_PINGPONG: run_pingpong(a, type, size, o, &r); break;
    case BM_STREAM: run_stream(a, type, size, o, &r); break;
    case BM_RR:
        if (o->lib) {
            bench_rr_params p;
            memset(&p, 0, sizeof(p));
            p.clients = (unsigned)r.clients;
            p.depth = (unsigned)r.pipeline;
            p.size = size;
            p.spin_ns = (uint64_t)(o->spin_us > 0 ? o->spin_us : 0) * 1000u;
            p.duration = o->duration;
            p.count = o->count;
            p.warm = (uint64_t)o->warmup;
            bench_lib_rr(a, type, &p, &r);
            if (r.note[0])
                failed = 1;
        } else {
            run_rr(a, type, size, o, &r);
        }
        break;
    case BM_CONNECT: run_connect(a, type, size, o, &r); break;
    case BM_DGRAM: run_dgram(a, size, batch, o, &r); break;
    case BM_HOLD:
        if (o->lib)
            run_hold_lib(a, type, o, &r);
        else
            run_hold(a, type, o, &r);
        break;
    default: break;
    }
    bench_out_row(o->fmt, &r);
}

/* Runs every size (and batch) of one transport against address a. */
static void run_sizes(const bench_opts *o, const char *transport, const uds_addr *a)
{
    for (int i = 0; i < o->nsizes; i++) {
        if (o->mode == BM_DGRAM)
            for (int b = 0; b < o->nbatches; b++)
                run_one(o, transport, a, o->sizes[i], o->batches[b]);
        else
            run_one(o, transport, a, o->sizes[i], 1);
        if (o->mode == BM_HOLD)
            break;
    }
}

static char tmpdir[64];

/* The address to listen on for a transport in fork mode. */
static int fork_addr(const char *t, uds_addr *a)
{
    char text[160];
    static int seq;
    if (!strcmp(t, "abstract"))
        snprintf(text, sizeof(text), "@udsock-bench-%d-%d", (int)getpid(), seq++);
    else if (!strcmp(t, "tcp"))
        snprintf(text, sizeof(text), "tcp:127.0.0.1:0");
    else if (!strcmp(t, "unix") || !strcmp(t, "seqpacket") || !strcmp(t, "dgram")) {
        if (!tmpdir[0]) {
            snprintf(tmpdir, sizeof(tmpdir), "/tmp/udsock-bench.XXXXXX");
            if (!mkdtemp(tmpdir)) {
                tmpdir[0] = 0;
                return -errno;
            }
        }
        snprintf(text, sizeof(text), "%s/%s-%d.sock", tmpdir, t, seq++);
    } else
        return -EINVAL;
    return uds_addr_parse(a, text);
}

/* Both ends here: listen, fork the server (pinned), measure, stop it. */
static int run_forked(const bench_opts *o, const char *transport)
{
    uds_addr a;
    int r = fork_addr(transport, &a);
    if (r < 0) {
        cli_warn("bench: transport '%s': %s", transport, uds_strerror(r));
        return r;
    }
    uds_listen_opts lo;
    memset(&lo, 0, sizeof(lo));
    lo.type = transport_type(transport, o->mode);
    lo.flags = UDS_NO_LOCK;
    uds_listener l;
    char text[UDS_ADDR_STRLEN];
    uds_addr_format(&a, text, sizeof(text));
    r = uds_listen(&l, &a, &lo);
    if (r < 0) {
        cli_warn("%s", cli_errtext("listen", text, r));
        return r;
    }
    size_t maxsize = 0;
    for (int i = 0; i < o->nsizes; i++)
        if (o->sizes[i] > maxsize)
            maxsize = o->sizes[i];
    if (lo.type != UDS_STREAM)
        size_buffers(l.fd, lo.type, maxsize, o);
    /* before the client can send: a datagram queued without credentials
       would be judged as uid 65534 (the server checks every hello's) */
    if (lo.type == UDS_DGRAM)
        (void)uds_set_passcred(l.fd, 1);
    fflush(stdout);
    /* the server is pinned here, before the fork, so that a refusal is
       seen (the child inherits the pinning); then we move to the client's */
    if ((r = bench_pin(o->cpu_server)) < 0) {
        uds_listener_close(&l);
        pin_failed("server", o->cpu_server, r);
    }
    pid_t pid = fork();
    if (pid < 0) {
        r = -errno;
        uds_listener_close(&l);
        return r;
    }
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() == 1)
            _exit(1);
        /* our own address, our own client: the sizes it asks for, no
           budget; still only our uid (an abstract name or a TCP port is
           reachable by anyone here) */
        bench_srv_opts so;
        memset(&so, 0, sizeof(so));
        so.sndbuf = o->sndbuf;
        so.rcvbuf = o->rcvbuf;
        so.private_addr = 1;
        so.access = o->rules.rules;
        l.owns_path = 0; /* the parent removes the file, not us */
        if (o->lib) {
            bench_lib_serve(&l, &so, maxsize > UDS_FRAME_DEFAULT_MAX ? maxsize : 0, 0);
            _exit(1);
        }
        bench_serve(&l, &so);
        _exit(0);
    }
    int keep = l.fd;
    l.fd = -1; /* the child serves; we only remove the file at the end */
    close(keep);
    if ((r = bench_pin(o->cpu_client)) < 0) {
        kill(pid, SIGKILL);
        while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
            ;
        uds_listener_close(&l);
        pin_failed("client", o->cpu_client, r);
    }
    server_pid = pid;
    run_sizes(o, transport, &l.addr);
    server_pid = 0;
    kill(pid, SIGKILL);
    while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
        ;
    uds_listener_close(&l); /* removes the file if still ours (fd is -1) */
    return 0;
}

/*
 * --server: a server for clients elsewhere, of this uid only unless
 * --allow-uid/--allow-gid say otherwise (unix); on TCP/UDP only loopback
 * peers unless --allow-remote. Runs until SIGINT/SIGTERM/SIGHUP, which
 * remove the socket file.
 */
static int run_server(bench_opts *o)
{
    uds_addr a;
    cli_parse_addr(&a, o->server_addr);
    int inet = a.kind == UDS_ADDR_UDP || a.kind == UDS_ADDR_TCP;
    if (inet && cli_access_active(&o->rules)) {
        cli_warn("bench: --allow/--deny need a unix socket (a TCP/UDP peer has no uid)");
        return CLI_USAGE;
    }
    if (!inet && o->allow_remote) {
        cli_warn("bench: --allow-remote is for tcp: and udp: addresses");
        return CLI_USAGE;
    }
    if (!inet) { /* our own uid, always */
        char me[16];
        const char *bad;
        snprintf(me, sizeof(me), "%u", (unsigned)geteuid());
        if (cli_access_add(&o->rules, CLI_ALLOW_UID, me, &bad) < 0)
            cli_die(CLI_FAIL, "bench: out of memory");
    }
    uds_listen_opts lo;
    memset(&lo, 0, sizeof(lo));
    lo.type = o->ntransports ? transport_type(o->transports[0], o->mode) : 0;
    if (inet)
        lo.type = 0;
    uds_listener l;
    int r = uds_listen(&l, &a, &lo);
    if (r < 0) {
        cli_warn("%s", cli_errtext("listen", o->server_addr, r));
        return CLI_FAIL;
    }
    if ((r = bench_pin(o->cpu_server)) < 0) {
        uds_listener_close(&l);
        pin_failed("server", o->cpu_server, r);
    }
    char text[UDS_ADDR_STRLEN];
    uds_addr_format(&l.addr, text, sizeof(text));
    fprintf(stderr, "udsock: bench server on %s (%s); Ctrl-C to stop\n", text,
            uds_type_name(l.type));
    bench_srv_opts so;
    memset(&so, 0, sizeof(so));
    so.spin_us = o->spin_us;
    so.sndbuf = o->sndbuf;
    so.rcvbuf = o->rcvbuf;
    so.access = o->rules.rules;
    so.allow_remote = o->allow_remote;
    if (o->lib) {
        fprintf(stderr, "udsock: (library server: rr requests only)\n");
        r = bench_lib_serve(&l, &so, BENCH_LIB_MAX_MSG, BENCH_LIB_MAX_CONNS);
    } else {
        r = bench_serve(&l, &so);
    }
    if (r < 0) {
        cli_warn("bench server %s: %s", text, uds_strerror(r));
        return CLI_FAIL;
    }
    return CLI_OK;
}

/* Lets `hold` open 10 000 connections: soft fd limit up to the hard one. */
static void raise_nofile(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        (void)setrlimit(RLIMIT_NOFILE, &rl);
    }
}

/*
 * A CPU --cpus names must exist here (below the number of CPUs configured):
 * otherwise a usage error with the reason, before anything runs. Whether
 * the kernel lets us run there (online, in our cpuset) is learned from
 * sched_setaffinity itself: see pin_failed.
 */
static void check_cpu(const char *arg, int cpu)
{
    long n = sysconf(_SC_NPROCESSORS_CONF);
    if (cpu < 0 || n <= 0 || cpu < n)
        return;
    if (n == 1)
        cli_die(CLI_USAGE, "bench: --cpus %s: there is no CPU %d (this machine has one CPU: 0)",
                arg, cpu);
    cli_die(CLI_USAGE, "bench: --cpus %s: there is no CPU %d (this machine has CPUs 0-%ld)", arg,
            cpu, n - 1);
}

/* The kernel refused to pin (offline CPU, outside our cpuset): exit 1,
   never a report of pinning that did not happen. */
static void pin_failed(const char *who, int cpu, int err)
{
    cli_die(CLI_FAIL, "bench: cannot pin the %s to CPU %d: %s%s", who, cpu, uds_strerror(err),
            err == -EINVAL ? " (the CPU is offline or outside this process's cpuset)" : "");
}

static int parse_cpus(const char *s, bench_opts *o)
{
    char *end;
    long a = strtol(s, &end, 10);
    if (end == s || a < 0 || a > 4095)
        return -1;
    long b = a;
    if (*end == ',') {
        const char *p = end + 1;
        b = strtol(p, &end, 10);
        if (end == p || b < 0 || b > 4095)
            return -1;
    }
    if (*end)
        return -1;
    o->cpu_server = (int)a;
    o->cpu_client = (int)b;
    return 0;
}

int cmd_bench(int argc, char **argv);

int cmd_bench(int argc, char **argv)
{
    enum { O_SWEEP = 256, O_BYTES, O_CPUS, O_SPIN, O_SNDBUF, O_RCVBUF, O_WARMUP, O_SERVER,
           O_CLIENT, O_JSON, O_CSV, O_IMPL, O_ALLOW_UID, O_DENY_UID, O_ALLOW_GID, O_DENY_GID,
           O_ALLOW_REMOTE };
    static const char *const rule_name[] = {"allow-uid", "deny-uid", "allow-gid", "deny-gid"};
    static const struct option lopts[] = {
        {"transport", required_argument, 0, 't'}, {"size", required_argument, 0, 's'},
        {"sweep", no_argument, 0, O_SWEEP},       {"duration", required_argument, 0, 'd'},
        {"count", required_argument, 0, 'n'},     {"bytes", required_argument, 0, O_BYTES},
        {"clients", required_argument, 0, 'c'},   {"pipeline", required_argument, 0, 'P'},
        {"batch", required_argument, 0, 'b'},     {"cpus", required_argument, 0, O_CPUS},
        {"spin", required_argument, 0, O_SPIN},   {"sndbuf", required_argument, 0, O_SNDBUF},
        {"rcvbuf", required_argument, 0, O_RCVBUF}, {"warmup", required_argument, 0, O_WARMUP},
        {"server", required_argument, 0, O_SERVER}, {"client", required_argument, 0, O_CLIENT},
        {"impl", required_argument, 0, O_IMPL},   {"json", no_argument, 0, O_JSON},         {"csv", no_argument, 0, O_CSV},
        {"allow-uid", required_argument, 0, O_ALLOW_UID},
        {"deny-uid", required_argument, 0, O_DENY_UID},
        {"allow-gid", required_argument, 0, O_ALLOW_GID},
        {"deny-gid", required_argument, 0, O_DENY_GID},
        {"allow-remote", no_argument, 0, O_ALLOW_REMOTE},
        {"help", no_argument, 0, 'h'},            {0, 0, 0, 0},
    };
    bench_opts o;
    memset(&o, 0, sizeof(o));
    o.duration = 1.0;
    o.cpu_server = o.cpu_client = -1;
    o.warmup = 100;
    o.fmt = BF_TABLE;
    char *tlist = NULL, *slist = NULL, *blist = NULL;
    int sweep = 0, dur_set = 0, impl_set = 0, rules_set = 0;
    const char *impl = "lib";
    char argline[1024] = "udsock";
    for (int i = 0; i < argc; i++) {
        size_t l = strlen(argline);
        snprintf(argline + l, sizeof(argline) - l, " %s", argv[i]);
    }
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "t:s:d:n:c:P:b:h", lopts, NULL)) != -1) {
        char *end;
        switch (c) {
        case 't': tlist = optarg; break;
        case 's': slist = optarg; break;
        case 'b': blist = optarg; break;
        case O_SWEEP: sweep = 1; break;
        case 'd':
            dur_set = 1;
            o.duration = strtod(optarg, &end);
            if (*end || o.duration < 0)
                cli_die(CLI_USAGE, "bench: bad --duration '%s' (seconds, e.g. 0.5)", optarg);
            break;
        case 'n':
            o.count = strtoull(optarg, &end, 10);
            if (*end || !o.count)
                cli_die(CLI_USAGE, "bench: bad --count '%s'", optarg);
            break;
        case O_BYTES:
            if (!(o.bytes = cli_parse_size(optarg)))
                cli_die(CLI_USAGE, "bench: bad --bytes '%s' (e.g. 2G)", optarg);
            break;
        case 'c':
            o.clients = atoi(optarg);
            if (o.clients < 1 || o.clients > 100000)
                cli_die(CLI_USAGE, "bench: bad --clients '%s' (1..100000)", optarg);
            break;
        case 'P':
            o.pipeline = atoi(optarg);
            if (o.pipeline < 1 || o.pipeline > 65536)
                cli_die(CLI_USAGE, "bench: bad --pipeline '%s' (1..65536)", optarg);
            break;
        case O_CPUS:
            if (parse_cpus(optarg, &o) < 0)
                cli_die(CLI_USAGE, "bench: bad --cpus '%s' (e.g. 0,1 or 0)", optarg);
            check_cpu(optarg, o.cpu_server);
            check_cpu(optarg, o.cpu_client);
            break;
        case O_SPIN:
            o.spin_us = atoi(optarg);
            if (o.spin_us < 0 || o.spin_us > 10000000)
                cli_die(CLI_USAGE, "bench: bad --spin '%s' (microseconds)", optarg);
            break;
        case O_SNDBUF:
        case O_RCVBUF: {
            uint64_t v = cli_parse_size(optarg);
            if (!v || v > (1u << 30))
                cli_die(CLI_USAGE, "bench: bad buffer size '%s'", optarg);
            *(c == O_SNDBUF ? &o.sndbuf : &o.rcvbuf) = (int)v;
            break;
        }
        case O_WARMUP: o.warmup = atoi(optarg); if (o.warmup < 0) o.warmup = 0; break;
        case O_SERVER: o.server_addr = optarg; break;
        case O_IMPL: impl = optarg; impl_set = 1; break;
        case O_CLIENT: o.client_addr = optarg; break;
        case O_ALLOW_UID:
        case O_DENY_UID:
        case O_ALLOW_GID:
        case O_DENY_GID: {
            const char *bad = NULL;
            int which = c - O_ALLOW_UID;
            if (cli_access_add(&o.rules, which, optarg, &bad) < 0)
                cli_die(CLI_USAGE, "bench: %s: unknown %s '%s'", rule_name[which],
                        which == CLI_ALLOW_UID || which == CLI_DENY_UID ? "user" : "group",
                        bad ? bad : optarg);
            rules_set = 1;
            break;
        }
        case O_ALLOW_REMOTE: o.allow_remote = 1; break;
        case O_JSON: o.fmt = BF_JSON; break;
        case O_CSV: o.fmt = BF_CSV; break;
        case 'h': usage(stdout); return CLI_OK;
        default: usage(stderr); return CLI_USAGE;
        }
    }
    if (o.count && !dur_set)
        o.duration = 0; /* --count alone: exactly that many */
    if (strcmp(impl, "lib") && strcmp(impl, "core"))
        cli_die(CLI_USAGE, "bench: bad --impl '%s' (lib or core)", impl);
    const char *mname = optind < argc ? argv[optind++] : "pingpong";
    if (optind < argc) {
        cli_warn("bench: unexpected argument '%s'", argv[optind]);
        return CLI_USAGE;
    }
    o.mode = mode_parse(mname);
    if (o.mode < 0) {
        cli_warn("bench: unknown mode '%s' (pingpong, stream, rr, connect, dgram, hold)", mname);
        return CLI_USAGE;
    }
    o.mode_name = mname;
    o.lib = !strcmp(impl, "lib") &&
            (o.mode == BM_RR || o.mode == BM_HOLD || (o.server_addr && impl_set));
    if ((rules_set || o.allow_remote) && !o.server_addr) {
        cli_warn("bench: --allow-*/--deny-*/--allow-remote go with --server");
        cli_access_free(&o.rules);
        return CLI_USAGE;
    }
    if (o.server_addr && o.client_addr) {
        cli_warn("bench: --server and --client exclude each other (omit both to run both ends)");
        return CLI_USAGE;
    }
    /* transports */
    if (tlist)
        o.ntransports = split_list(tlist, o.transports, MAX_LIST);
    else
        o.transports[o.ntransports++] = o.mode == BM_DGRAM ? "dgram" : "unix";
    for (int i = 0; i < o.ntransports; i++) {
        const char *t = o.transports[i];
        if (strcmp(t, "unix") && strcmp(t, "abstract") && strcmp(t, "seqpacket") &&
            strcmp(t, "dgram") && strcmp(t, "tcp")) {
            cli_warn("bench: unknown transport '%s' (unix, abstract, seqpacket, dgram, tcp)", t);
            return CLI_USAGE;
        }
        if (!strcmp(t, "tcp") && o.mode == BM_DGRAM) {
            cli_warn("bench: dgram mode runs over unix datagram sockets (-t dgram or abstract)");
            return CLI_USAGE;
        }
        if (!strcmp(t, "dgram") && o.mode != BM_DGRAM && o.mode != BM_PINGPONG) {
            cli_warn("bench: %s needs a connection; datagram sockets do pingpong and dgram", mname);
            return CLI_USAGE;
        }
    }
    /* sizes */
    if (sweep) {
        static const size_t sw[] = {64, 256, 1024, 4096, 16384, 65536, 262144, 1048576};
        for (size_t i = 0; i < sizeof(sw) / sizeof(sw[0]); i++)
            o.sizes[o.nsizes++] = sw[i];
    } else if (slist) {
        const char *parts[MAX_LIST];
        int np = split_list(slist, parts, MAX_LIST);
        for (int i = 0; i < np; i++) {
            uint64_t v = cli_parse_size(parts[i]);
            if ((!v && strcmp(parts[i], "0")) || v > (64u << 20))
                cli_die(CLI_USAGE, "bench: bad size '%s' (e.g. 64, 4k, 1M; at most 64M)", parts[i]);
            if (!v && o.mode != BM_CONNECT)
                cli_die(CLI_USAGE, "bench: size 0 only makes sense for connect (no request)");
            o.sizes[o.nsizes++] = (size_t)v;
        }
    } else {
        o.sizes[o.nsizes++] = o.mode == BM_STREAM ? 65536 : o.mode == BM_CONNECT ? 0 : 64;
    }
    if (o.mode == BM_DGRAM)
        for (int i = 0; i < o.nsizes; i++)
            if (o.sizes[i] < 1)
                cli_die(CLI_USAGE, "bench: dgram needs a size of at least 1 byte");
    /* batches */
    if (blist) {
        const char *parts[MAX_LIST];
        int np = split_list(blist, parts, MAX_LIST);
        for (int i = 0; i < np; i++) {
            int v = atoi(parts[i]);
            if (v < 1 || v > 1024)
                cli_die(CLI_USAGE, "bench: bad --batch '%s' (1..1024)", parts[i]);
            o.batches[o.nbatches++] = v;
        }
    } else {
        o.batches[o.nbatches++] = 1;
        o.batches[o.nbatches++] = 32;
    }
    if (o.mode == BM_HOLD && !o.clients)
        o.clients = 1000;

    if (cli_parse_only) { /* fuzz seam (cli.h): options parsed, no I/O yet */
        cli_access_free(&o.rules);
        return CLI_OK;
    }
    raise_nofile();
    if (o.server_addr) {
        int src = run_server(&o);
        cli_access_free(&o.rules);
        return src;
    }
    { /* fork mode: our own uid only */
        char me[16];
        const char *bad;
        snprintf(me, sizeof(me), "%u", (unsigned)geteuid());
        if (cli_access_add(&o.rules, CLI_ALLOW_UID, me, &bad) < 0)
            cli_die(CLI_FAIL, "bench: out of memory");
    }

    size_t maxsize = 65536;
    for (int i = 0; i < o.nsizes; i++)
        if (o.sizes[i] > maxsize)
            maxsize = o.sizes[i];
    zeros_len = maxsize * 4 > (4u << 20) ? maxsize * 4 : (4u << 20);
    zeros = calloc(1, zeros_len);
    if (!zeros)
        cli_die(CLI_FAIL, "bench: out of memory");

    bench_out_begin(o.fmt, argline);
    int rc = CLI_OK;
    if (o.client_addr) {
        uds_addr a;
        cli_parse_addr(&a, o.client_addr);
        int pr = bench_pin(o.cpu_client);
        if (pr < 0)
            pin_failed("client", o.cpu_client, pr);
        const char *t = o.ntransports && tlist ? o.transports[0]
                        : a.kind == UDS_ADDR_TCP  ? "tcp"
                        : a.kind == UDS_ADDR_ABSTRACT ? "abstract"
                        : o.mode == BM_DGRAM ? "dgram" : "unix";
        run_sizes(&o, t, &a);
    } else {
        for (int i = 0; i < o.ntransports; i++)
            if (run_forked(&o, o.transports[i]) < 0)
                rc = CLI_FAIL;
    }
    bench_out_end(o.fmt);
    if (failed)
        rc = CLI_FAIL;
    if (tmpdir[0])
        rmdir(tmpdir);
    free(zeros);
    cli_access_free(&o.rules);
    return rc;
}
