/*
 * fuzz_relay.c — arbitrary bytes through a real forwarder (uds_fwd, the
 * engine of `udsock relay`) between two socketpairs, both ways at once,
 * with a checking peer at each end, all in one process.
 *
 *   byte 0: bits 0-1 framing of side 0, bits 2-3 of side 1 (raw, len32,
 *           line, packet = SOCK_SEQPACKET); bit 4 UDS_FWD_NO_SPLICE; bit 5
 *           a tap; bit 6 side 0's traffic repeated 40 times (bulk: splice);
 *           bit 7 a packet side sends an empty packet after each packet
 *   byte 1: bits 0-2 max_msg (default or 16..65536); bits 3-7 the size of
 *           the packets a packet side sends
 *   byte 2: where the rest is split: side 0's traffic, then side 1's
 *
 * The oracle is a model of the documented behaviour, per direction: the
 * source's traffic is decoded (its framing, max_msg) into messages and
 * re-encoded for the destination (or, from a raw side, any split into
 * non-empty messages whose concatenation is the input). An empty message
 * is an empty packet, an empty LEN32 frame or an empty line on the other
 * side, and nothing at all on a raw stream side. Traffic that
 * breaks a rule (bad or cut LEN32 header, a message over max_msg, a
 * newline in a message for a line side) must end the forward with
 * UDS_EFRAME or -EMSGSIZE from that source's side, after delivering a
 * prefix; otherwise everything arrives byte-exact, EOF is passed on both
 * ways and done reports 0 with the right byte counts. No fd may be left
 * open afterwards (and LeakSanitizer checks memory).
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "udsock.h"

enum { K_RAW, K_LEN32, K_LINE, K_PACKET };
#define BIG_REPEAT 40
#define MAX_PKTS 8192 /* more one-byte packets only cost time */

/* Each run allocates and frees connection buffers of up to max_msg (1 MiB
   by default): ASan's default 256 MiB quarantine of freed memory then costs
   more than the run itself (and RSS near libFuzzer's 2 GiB limit). A
   smaller one still catches a use after free within the run. */
const char *__asan_default_options(void);
const char *__asan_default_options(void) { return "quarantine_size_mb=16"; }

static const size_t max_choice[8] = {0, 16, 64, 100, 255, 1000, 4096, 65536};

/* What one direction must deliver. */
struct expect {
    int ks, kd;
    size_t max;           /* effective max_msg */
    const uint8_t *src;   /* the source's traffic */
    size_t srclen;
    size_t pkt;           /* packet size of a packet source */
    int empties;          /* a packet source: an empty packet after each */
    /* message sources: the exact bytes (or packets) the destination gets */
    uint8_t *bytes;
    size_t blen;
    size_t bcap;
    size_t *plen;         /* packet lengths (packet destination) */
    size_t np, pcap;
    size_t payload;       /* sum of the message lengths */
    int must_fail, may_fail;
};

/* Bytes one end has received (and its packet boundaries). */
struct got {
    uint8_t *b;
    size_t len, cap;
    size_t *plen;
    size_t np, pcap;
    int eof;
};

/* One direction's sending end. */
struct sender {
    int fd, kind;
    const uint8_t *p;
    size_t len, off, pkt;
    int shut;
    int empties, empty_next; /* an empty packet after each packet */
};

static void need(void *p)
{
    if (!p)
        abort();
}

/* Appends one destination message to the expectation (or refuses it). */
static int expect_msg(struct expect *e, const uint8_t *m, size_t n)
{
    if (e->kd != K_RAW && n > e->max)
        return -1;
    if (e->kd == K_LINE && n && memchr(m, '\n', n))
        return -1;
    if (e->kd == K_PACKET) {
        if (e->np == e->pcap) {
            e->pcap = e->pcap * 2 + 64;
            need(e->plen = realloc(e->plen, e->pcap * sizeof(size_t)));
        }
        e->plen[e->np++] = n;
    }
    if (e->bcap - e->blen < n + 5) { /* amortised: no copy per message */
        e->bcap = (e->blen + n + 5) * 2;
        need(e->bytes = realloc(e->bytes, e->bcap));
    }
    if (e->kd == K_LEN32) {
        uint8_t h[4] = {(uint8_t)(n >> 24), (uint8_t)(n >> 16), (uint8_t)(n >> 8), (uint8_t)n};
        memcpy(e->bytes + e->blen, h, 4);
        e->blen += 4;
    }
    memcpy(e->bytes + e->blen, m, n);
    e->blen += n;
    e->payload += n;
    if (e->kd == K_LINE)
        e->bytes[e->blen++] = '\n';
    return 0;
}

/* The model of one direction. */
static void model(struct expect *e)
{
    if (e->ks == K_RAW) {
        if (e->kd == K_LINE && e->srclen && memchr(e->src, '\n', e->srclen))
            e->must_fail = 1;
        else if (e->kd != K_RAW && e->srclen > e->max)
            e->may_fail = 1; /* one read may be larger than max_msg */
        return;
    }
    if (e->ks == K_PACKET) {
        for (size_t off = 0; off < e->srclen; off += e->pkt) {
            size_t n = e->srclen - off < e->pkt ? e->srclen - off : e->pkt;
            int r = n > e->max ? -1 : expect_msg(e, e->src + off, n);
            if (r == 0 && e->empties)
                r = expect_msg(e, e->src + off, 0);
            if (r < 0) {
                e->must_fail = 1;
                return;
            }
        }
        return;
    }
    uds_framer f = {e->ks == K_LEN32 ? UDS_FRAME_LEN32 : UDS_FRAME_LINE, e->max};
    size_t off = 0;
    for (;;) {
        uds_frame fr;
        int r = uds_frame_decode(&f, e->src + off, e->srclen - off, &fr);
        if (r < 0) {
            e->must_fail = 1;
            return;
        }
        if (r == 0)
            break;
        if (expect_msg(e, fr.data, fr.len) < 0) {
            e->must_fail = 1;
            return;
        }
        off += (size_t)r;
    }
    size_t rest = e->srclen - off;
    if (rest && e->ks == K_LEN32) {
        e->must_fail = 1; /* a frame cut short by EOF */
    } else if (rest) {
        /* a last line without its newline is still a line */
        const uint8_t *p = e->src + off;
        size_t n = p[rest - 1] == '\r' ? rest - 1 : rest;
        int m = n > e->max ? -1 : expect_msg(e, p, n);
        if (m < 0)
            e->must_fail = 1;
    }
}

/* Checks what arrived for one direction; complete: the forward ended well. */
static void check(const struct expect *e, const struct got *g, int complete)
{
    if (e->ks != K_RAW || e->kd == K_RAW) {
        const uint8_t *want = e->ks == K_RAW ? e->src : e->bytes;
        size_t wlen = e->ks == K_RAW ? e->srclen : e->blen;
        if (g->len > wlen || (g->len && memcmp(g->b, want, g->len) != 0))
            abort(); /* not a prefix of what was sent */
        if (complete && g->len != wlen)
            abort();
        if (e->kd == K_PACKET) {
            if (g->np > e->np || (complete && g->np != e->np))
                abort();
            for (size_t i = 0; i < g->np; i++)
                if (g->plen[i] != e->plen[i])
                    abort();
        }
        return;
    }
    /* a raw source: any split into non-empty messages of at most max */
    size_t at = 0, off = 0, pi = 0;
    while (off < g->len) {
        size_t n, hdr = 0, tail = 0;
        if (e->kd == K_LEN32) {
            if (g->len - off < 4)
                break;
            const uint8_t *h = g->b + off;
            n = (size_t)h[0] << 24 | (size_t)h[1] << 16 | (size_t)h[2] << 8 | h[3];
            hdr = 4;
            if (g->len - off - 4 < n)
                break;
        } else if (e->kd == K_LINE) {
            const uint8_t *nl = memchr(g->b + off, '\n', g->len - off);
            if (!nl)
                break;
            n = (size_t)(nl - (g->b + off));
            tail = 1;
        } else {
            if (pi >= g->np)
                abort();
            n = g->plen[pi++];
        }
        if (n == 0 || n > e->max || at + n > e->srclen ||
            memcmp(g->b + off + hdr, e->src + at, n) != 0)
            abort();
        at += n;
        off += hdr + n + tail;
    }
    if (complete && (off != g->len || at != e->srclen))
        abort();
}

/* Sends what it can; shuts the sending side once all is out. */
static void pump_send(struct sender *s)
{
    while (s->off < s->len || s->empty_next) {
        size_t n = s->len - s->off;
        if (s->kind == K_PACKET && n > s->pkt)
            n = s->pkt;
        if (s->empty_next)
            n = 0;
        ssize_t w = send(s->fd, s->p + s->off, n, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (w < 0) {
            if (errno == EAGAIN || errno == EINTR)
                return;
            s->off = s->len; /* the forward has gone: nothing more to send */
            s->empty_next = 0;
            break;
        }
        s->off += (size_t)w;
        s->empty_next = s->empties && n > 0;
    }
    if (!s->shut) {
        shutdown(s->fd, SHUT_WR);
        s->shut = 1;
    }
}

/* Reads what is there; a packet end keeps boundaries. A packet end has
   SO_TIMESTAMP on (set by the caller), so a message read without room for
   control data sets MSG_CTRUNC, even an empty one, and end of stream does
   not: how an empty packet is told from EOF. */
static void pump_recv(int fd, int kind, struct got *g)
{
    while (!g->eof) {
        if (g->cap - g->len < 65536) {
            g->cap = g->cap * 2 + 65536;
            need(g->b = realloc(g->b, g->cap));
        }
        struct iovec iov = {g->b + g->len, g->cap - g->len};
        struct msghdr mh;
        memset(&mh, 0, sizeof(mh));
        mh.msg_iov = &iov;
        mh.msg_iovlen = 1;
        ssize_t n = recvmsg(fd, &mh, MSG_DONTWAIT);
        if (n < 0 && (errno == EAGAIN || errno == EINTR))
            return;
        if (n < 0 || (n == 0 && (kind != K_PACKET || !(mh.msg_flags & MSG_CTRUNC)))) {
            g->eof = n == 0 ? 1 : 2;
            return;
        }
        if (kind == K_PACKET) {
            if (g->np == g->pcap) {
                g->pcap = g->pcap * 2 + 64;
                need(g->plen = realloc(g->plen, g->pcap * sizeof(size_t)));
            }
            g->plen[g->np++] = (size_t)n;
        }
        g->len += (size_t)n;
    }
}

struct result {
    int done, err, side;
    uds_fwd_stats st;
    uint64_t tapped[2];
};

static void on_done(uds_fwd *f, int err, int side, const uds_fwd_stats *st, void *arg)
{
    (void)f;
    struct result *r = arg;
    r->done++;
    r->err = err;
    r->side = side;
    r->st = *st;
}

static void on_tap(uds_fwd *f, int dir, const void *data, size_t len, const uds_anc *anc,
                   void *arg)
{
    (void)f;
    (void)data;
    (void)anc;
    struct result *r = arg;
    r->tapped[dir] += len;
}

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* Which of fds 0..63 are open: a run must leave the same set behind. */
static void fd_snapshot(uint8_t open_fds[64])
{
    for (int fd = 0; fd < 64; fd++)
        open_fds[fd] = fcntl(fd, F_GETFD) >= 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 3 || size > 8192)
        return 0;
    /* one loop for every run (as a long-lived program has): its scratch
       buffer is made once, and what a run leaves on it would show */
    static uds_loop *loop;
    if (!loop && uds_loop_new(&loop) < 0)
        abort();
    uint8_t fds_before[64], fds_after[64];
    fd_snapshot(fds_before);
    int k[2] = {data[0] & 3, (data[0] >> 2) & 3};
    size_t max = max_choice[data[1] & 7];
    size_t emax = max ? max : UDS_FRAME_DEFAULT_MAX;
    size_t pkt = 1 + (size_t)(data[1] >> 3) * 8;
    const uint8_t *in = data + 3;
    size_t len = size - 3, split = len * data[2] / 255;

    uint8_t *big = NULL;
    const uint8_t *t0 = in;
    size_t l0 = split;
    if ((data[0] & 0x40) && l0) {
        need(big = malloc(l0 * BIG_REPEAT));
        for (int i = 0; i < BIG_REPEAT; i++)
            memcpy(big + (size_t)i * l0, in, l0);
        t0 = big;
        l0 *= BIG_REPEAT;
    }
    if ((k[0] == K_PACKET && l0 / pkt > MAX_PKTS) || (k[1] == K_PACKET && (len - split) / pkt > MAX_PKTS)) {
        free(big);
        return 0;
    }
    struct expect e[2];
    memset(e, 0, sizeof(e));
    int empties = (data[0] & 0x80) != 0;
    e[0] = (struct expect){.ks = k[0], .kd = k[1], .max = emax, .src = t0, .srclen = l0,
                           .pkt = pkt, .empties = empties};
    e[1] = (struct expect){.ks = k[1], .kd = k[0], .max = emax, .src = in + split,
                           .srclen = len - split, .pkt = pkt, .empties = empties};
    model(&e[0]);
    model(&e[1]);

    int a[2], b[2]; /* a[0]: forward side 0, a[1] the client; b[0] side 1, b[1] the target */
    if (uds_pair(k[0] == K_PACKET ? SOCK_SEQPACKET : SOCK_STREAM, 0, a) < 0 ||
        uds_pair(k[1] == K_PACKET ? SOCK_SEQPACKET : SOCK_STREAM, 0, b) < 0)
        abort();
    uds_set_nonblock(a[0], 1);
    uds_set_nonblock(b[0], 1);
    int one = 1;
    if ((k[0] == K_PACKET && setsockopt(a[1], SOL_SOCKET, SO_TIMESTAMP, &one, sizeof(one)) < 0) ||
        (k[1] == K_PACKET && setsockopt(b[1], SOL_SOCKET, SO_TIMESTAMP, &one, sizeof(one)) < 0))
        abort();
    static const int fm[4] = {UDS_FRAME_RAW, UDS_FRAME_LEN32, UDS_FRAME_LINE, UDS_FRAME_RAW};
    uds_fwd_opts o;
    memset(&o, 0, sizeof(o));
    o.frame[0] = fm[k[0]];
    o.frame[1] = fm[k[1]];
    o.max_msg = max;
    if (data[0] & 0x10)
        o.flags |= UDS_FWD_NO_SPLICE;
    struct result res;
    memset(&res, 0, sizeof(res));
    if (data[0] & 0x20) {
        o.tap = on_tap;
        o.tap_arg = &res;
    }
    uds_fwd *f;
    if (uds_fwd_new(&f, loop, a[0], b[0], &o, on_done, &res) < 0)
        abort();

    struct sender s0 = {a[1], k[0], t0, l0, 0, pkt, 0, empties && k[0] == K_PACKET, 0};
    struct sender s1 = {b[1], k[1], in + split, len - split, 0, pkt, 0,
                        empties && k[1] == K_PACKET, 0};
    struct got g0, g1; /* g0: what the target got (dir 0), g1: the client (dir 1) */
    memset(&g0, 0, sizeof(g0));
    memset(&g1, 0, sizeof(g1));
    uint64_t t_end = now_ms() + 60000; /* generous: a loaded VM, ASan */
    for (long round = 0; round < 2000000; round++) {
        pump_send(&s0);
        pump_send(&s1);
        uds_loop_run_once(loop, 0);
        pump_recv(b[1], k[1], &g0);
        pump_recv(a[1], k[0], &g1);
        if (res.done && g0.eof && g1.eof)
            break;
        if ((round & 1023) == 1023 && now_ms() > t_end)
            break;
    }
    if (res.done != 1 || !g0.eof || !g1.eof) {
        fprintf(stderr, "fuzz_relay: the forward did not end (done %d, eof %d %d)\n",
                res.done, g0.eof, g1.eof);
        abort();
    }

    if (getenv("FUZZ_RELAY_TRACE")) /* to see what a corpus exercises */
        fprintf(stderr, "fuzz_relay: kinds %d,%d max %zu: err %d side %d, bytes %llu/%zu %llu/%zu,"
                " must_fail %d,%d may_fail %d,%d spliced %d,%d\n", k[0], k[1], max, res.err, res.side,
                (unsigned long long)res.st.bytes[0], g0.len, (unsigned long long)res.st.bytes[1],
                g1.len, e[0].must_fail, e[1].must_fail, e[0].may_fail, e[1].may_fail,
                res.st.spliced[0], res.st.spliced[1]);
    int fails = e[0].must_fail || e[1].must_fail;
    if (res.err == 0) {
        if (fails)
            abort(); /* a bad frame went through */
        check(&e[0], &g0, 1);
        check(&e[1], &g1, 1);
        if (g0.eof != 1 || g1.eof != 1)
            abort(); /* EOF passed on, not a reset */
        for (int i = 0; i < 2; i++)
            if (res.st.bytes[i] != (e[i].ks == K_RAW ? e[i].srclen : e[i].payload))
                abort(); /* the counters agree with what arrived */
    } else {
        if (res.err != UDS_EFRAME && res.err != -EMSGSIZE) {
            fprintf(stderr, "fuzz_relay: ended with %d (%s)\n", res.err, uds_strerror(res.err));
            abort();
        }
        int ok_side = (res.side == 0 && (e[0].must_fail || e[0].may_fail)) ||
                      (res.side == 1 && (e[1].must_fail || e[1].may_fail));
        if (!ok_side) {
            fprintf(stderr, "fuzz_relay: refused from side %d, err %d\n", res.side, res.err);
            abort();
        }
        check(&e[0], &g0, 0);
        check(&e[1], &g1, 0);
    }
    /* the tap saw everything forwarded; when the forward failed it may
       also have seen a message whose write then failed */
    for (int i = 0; o.tap && i < 2; i++)
        if (res.err == 0 ? res.tapped[i] != res.st.bytes[i] : res.tapped[i] < res.st.bytes[i])
            abort();

    close(a[1]);
    close(b[1]);
    fd_snapshot(fds_after);
    if (memcmp(fds_before, fds_after, sizeof(fds_before)) != 0) {
        fprintf(stderr, "fuzz_relay: an fd was left open\n");
        abort();
    }
    free(g0.b), free(g0.plen), free(g1.b), free(g1.plen);
    free(e[0].bytes), free(e[0].plen), free(e[1].bytes), free(e[1].plen), free(big);
    return 0;
}
