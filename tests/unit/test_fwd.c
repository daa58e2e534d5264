/*
 * test_fwd.c — uds_fwd, two sockets joined: byte-exact both ways with
 * half-close, the switch to splice for bulk, backpressure both ways, errors,
 * framing adapters (line <-> len32 <-> seqpacket <-> dgram), oversize and
 * malformed frames, idle timeout, the tap, close, and the failure contract.
 * The forward runs on a loop in its own thread; the test drives the outer
 * ends of two socketpairs with plain blocking calls.
 *   uds-test-timeout: 180
 */
#include "testutil.h"
#include "internal.h" /* uds__features: the SO_PASSRIGHTS fallback seam */

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

/* ---- a forward in a thread ---------------------------------------------- */

struct fx {
    uds_loop *loop;
    uds_fwd *f;
    pthread_t th;
    int a, b;          /* outer ends: a talks to side 0, b to side 1 */
    int done;          /* done called (count) */
    int err, side;
    uds_fwd_stats st;
    uint64_t done_ms;
    pthread_mutex_t mu;
    size_t tapped[2];  /* bytes seen by the tap per direction */
    unsigned taps[2];
};

static void on_done(uds_fwd *f, int err, int side, const uds_fwd_stats *st, void *arg)
{
    (void)f;
    struct fx *x = arg;
    pthread_mutex_lock(&x->mu);
    x->done++;
    x->err = err;
    x->side = side;
    x->st = *st;
    x->done_ms = tu_now_ms();
    pthread_mutex_unlock(&x->mu);
    uds_loop_stop(x->loop);
}

static void close_later(uds_loop *loop, void *arg)
{
    (void)loop;
    uds_fwd_close(arg);
}

static void on_tap(uds_fwd *f, int dir, const void *data, size_t len, const uds_anc *anc,
                   void *arg)
{
    (void)anc;
    struct fx *x = uds_fwd_arg(f);
    (void)arg;
    x->tapped[dir] += len;
    x->taps[dir]++;
    /* one byte from side 0 after the exchange: close, from the loop */
    if (dir == 0 && len == 1 && ((const char *)data)[0] == '!')
        uds_loop_defer(x->loop, close_later, f);
}

static void *loop_main(void *arg)
{
    struct fx *x = arg;
    uds_loop_run(x->loop);
    return NULL;
}

/* Two socketpairs of types t0/t1; their inner ends joined by a forward. */
static void fx_start(struct fx *x, int t0, int t1, const uds_fwd_opts *o)
{
    memset(x, 0, sizeof(*x));
    pthread_mutex_init(&x->mu, NULL);
    int p0[2], p1[2];
    assert_int_equal(uds_pair(t0, 0, p0), 0);
    assert_int_equal(uds_pair(t1, 0, p1), 0);
    x->a = p0[0];
    x->b = p1[0];
    assert_int_equal(uds_loop_new(&x->loop), 0);
    assert_int_equal(uds_fwd_new(&x->f, x->loop, p0[1], p1[1], o, on_done, x), 0);
    assert_int_equal(pthread_create(&x->th, NULL, loop_main, x), 0);
}

static int fx_done(struct fx *x)
{
    pthread_mutex_lock(&x->mu);
    int d = x->done;
    pthread_mutex_unlock(&x->mu);
    return d;
}

/* Waits for done (at most ms), joins the loop thread, frees. */
static void fx_finish(struct fx *x, int ms)
{
    uint64_t t0 = tu_now_ms();
    while (!fx_done(x) && tu_now_ms() - t0 < (uint64_t)ms)
        poll(NULL, 0, 5);
    assert_int_equal(fx_done(x), 1);
    pthread_join(x->th, NULL);
    uds_loop_free(x->loop);
    close(x->a);
    close(x->b);
    pthread_mutex_destroy(&x->mu);
}

/* ---- byte pumps ------------------------------------------------------------ */

struct pump {
    int fd;
    const unsigned char *buf;
    size_t len;
    size_t chunk;
    int shut;      /* shutdown(SHUT_WR) after writing */
    ssize_t result;
};

static void *writer(void *arg)
{
    struct pump *p = arg;
    size_t off = 0;
    while (off < p->len) {
        size_t n = p->len - off < p->chunk ? p->len - off : p->chunk;
        ssize_t w = send(p->fd, p->buf + off, n, MSG_NOSIGNAL);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            p->result = -errno;
            return NULL;
        }
        off += (size_t)w;
    }
    if (p->shut)
        shutdown(p->fd, SHUT_WR);
    p->result = (ssize_t)off;
    return NULL;
}

/* Reads until EOF (at most cap bytes); returns the count or -errno. */
static ssize_t read_all(int fd, unsigned char *buf, size_t cap)
{
    size_t off = 0;
    for (;;) {
        struct pollfd pf = {fd, POLLIN, 0};
        if (poll(&pf, 1, 20000) <= 0)
            return -ETIMEDOUT;
        ssize_t n = recv(fd, buf + off, cap - off, 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return -errno;
        if (n == 0)
            return (ssize_t)off;
        off += (size_t)n;
        if (off == cap) {
            char extra;
            n = recv(fd, &extra, 1, 0);
            return n == 0 ? (ssize_t)off : -EOVERFLOW;
        }
    }
}

/* recv with a timeout; returns bytes, 0 at EOF, -ETIMEDOUT, -errno. */
static ssize_t recv_to(int fd, void *buf, size_t len, int ms)
{
    struct pollfd pf = {fd, POLLIN, 0};
    if (poll(&pf, 1, ms) <= 0)
        return -ETIMEDOUT;
    ssize_t n = recv(fd, buf, len, 0);
    return n < 0 ? -errno : n;
}

static void send_all(int fd, const void *buf, size_t len)
{
    size_t off = 0;
    while (off < len) {
        ssize_t w = send(fd, (const char *)buf + off, len - off, MSG_NOSIGNAL);
        assert_true(w > 0);
        off += (size_t)w;
    }
}

static void send_len32(int fd, const char *s)
{
    uint32_t n = (uint32_t)strlen(s);
    unsigned char h[4] = {(unsigned char)(n >> 24), (unsigned char)(n >> 16),
                          (unsigned char)(n >> 8), (unsigned char)n};
    send_all(fd, h, 4);
    send_all(fd, s, n);
}

/* Reads one LEN32 frame into buf (NUL-terminated). Returns its length. */
static ssize_t recv_len32(int fd, char *buf, size_t cap)
{
    unsigned char h[4];
    size_t got = 0;
    while (got < 4) {
        ssize_t n = recv_to(fd, h + got, 4 - got, 5000);
        if (n <= 0)
            return n < 0 ? n : -EPIPE;
        got += (size_t)n;
    }
    size_t len = (size_t)h[0] << 24 | (size_t)h[1] << 16 | (size_t)h[2] << 8 | h[3];
    if (len + 1 > cap)
        return -EMSGSIZE;
    got = 0;
    while (got < len) {
        ssize_t n = recv_to(fd, buf + got, len - got, 5000);
        if (n <= 0)
            return n < 0 ? n : -EPIPE;
        got += (size_t)n;
    }
    buf[len] = 0;
    return (ssize_t)len;
}

/* Reads up to and including '\n' into buf (NUL-terminated, newline kept). */
static ssize_t recv_line(int fd, char *buf, size_t cap)
{
    size_t n = 0;
    while (n + 1 < cap) {
        ssize_t r = recv_to(fd, buf + n, 1, 5000);
        if (r <= 0)
            return r < 0 ? r : (ssize_t)n;
        n++;
        if (buf[n - 1] == '\n')
            break;
    }
    buf[n] = 0;
    return (ssize_t)n;
}

/* ---- bytes mode ------------------------------------------------------------ */

/*
 * size bytes each way at once, then half-close each way: everything arrives
 * in order, EOF is passed on, done reports 0 and the byte counts.
 */
static void exchange(int splice_off, size_t size, int expect_splice)
{
    struct fx x;
    uds_fwd_opts o;
    memset(&o, 0, sizeof(o));
    if (splice_off)
        o.flags = UDS_FWD_NO_SPLICE;
    fx_start(&x, UDS_STREAM, UDS_STREAM, &o);
    unsigned char *ab = malloc(size), *ba = malloc(size), *ra = malloc(size), *rb = malloc(size);
    assert_non_null(ab);
    assert_non_null(ba);
    assert_non_null(ra);
    assert_non_null(rb);
    tu_fill(ab, size, 1);
    tu_fill(ba, size, 2);
    struct pump pa = {x.a, ab, size, 256 * 1024, 1, 0}, pb = {x.b, ba, size, 100000, 1, 0};
    pthread_t ta, tb;
    pthread_create(&ta, NULL, writer, &pa);
    pthread_create(&tb, NULL, writer, &pb);
    ssize_t na = read_all(x.a, ra, size), nb = read_all(x.b, rb, size);
    pthread_join(ta, NULL);
    pthread_join(tb, NULL);
    assert_int_equal(pa.result, (ssize_t)size);
    assert_int_equal(pb.result, (ssize_t)size);
    assert_int_equal(nb, (ssize_t)size);
    assert_int_equal(na, (ssize_t)size);
    assert_true(memcmp(rb, ab, size) == 0);
    assert_true(memcmp(ra, ba, size) == 0);
    fx_finish(&x, 5000);
    assert_int_equal(x.err, 0);
    assert_int_equal(x.side, -1);
    assert_int_equal(x.st.bytes[0], size);
    assert_int_equal(x.st.bytes[1], size);
    if (expect_splice)
        assert_true(x.st.spliced[0] || x.st.spliced[1]);
    else
        assert_false(x.st.spliced[0] || x.st.spliced[1]);
    free(ab);
    free(ba);
    free(ra);
    free(rb);
}

static void test_bulk_splice(void **state)
{
    (void)state;
    exchange(0, 32u << 20, 1);
}

static void test_bulk_no_splice(void **state)
{
    (void)state;
    exchange(1, 8u << 20, 0);
}

/* Small request/response traffic never needs a pipe. */
static void test_small_no_pipe(void **state)
{
    (void)state;
    struct fx x;
    fx_start(&x, UDS_STREAM, UDS_STREAM, NULL);
    int before = tu_count_fds();
    char buf[256];
    for (int i = 0; i < 200; i++) {
        char q[32];
        int n = snprintf(q, sizeof(q), "request %d", i);
        send_all(x.a, q, (size_t)n);
        ssize_t r = recv_to(x.b, buf, sizeof(buf), 5000);
        assert_int_equal(r, n);
        assert_memory_equal(buf, q, (size_t)n);
        send_all(x.b, buf, (size_t)r);
        r = recv_to(x.a, buf, sizeof(buf), 5000);
        assert_int_equal(r, n);
    }
    assert_int_equal(tu_count_fds(), before); /* no splice pipes */
    shutdown(x.a, SHUT_WR);
    assert_int_equal(recv_to(x.b, buf, sizeof(buf), 5000), 0);
    shutdown(x.b, SHUT_WR);
    assert_int_equal(recv_to(x.a, buf, sizeof(buf), 5000), 0);
    fx_finish(&x, 5000);
    assert_int_equal(x.err, 0);
    assert_false(x.st.spliced[0] || x.st.spliced[1]);
}

/*
 * Backpressure: side 1's reader stops. The writer to side 0 must block
 * after a bounded amount (kernel buffers + high water + pipe), not have the
 * forward swallow everything; when reading resumes, every byte arrives.
 */
static void backpressure(int no_splice)
{
    struct fx x;
    uds_fwd_opts o;
    memset(&o, 0, sizeof(o));
    o.flags = no_splice ? UDS_FWD_NO_SPLICE : 0;
    o.high_water = 128 * 1024;
    fx_start(&x, UDS_STREAM, UDS_STREAM, &o);
    size_t total = 64u << 20;
    unsigned char *src = malloc(total);
    assert_non_null(src);
    tu_fill(src, total, 7);
    uds_set_nonblock(x.a, 1);
    size_t off = 0;
    uint64_t t0 = tu_now_ms();
    int stalls = 0;
    while (off < total && tu_now_ms() - t0 < 10000) {
        ssize_t w = send(x.a, src + off, 65536, MSG_NOSIGNAL);
        if (w > 0) {
            off += (size_t)w;
            stalls = 0;
            continue;
        }
        assert_int_equal(errno, EAGAIN);
        struct pollfd pf = {x.a, POLLOUT, 0};
        if (poll(&pf, 1, 300) == 0 && ++stalls >= 2)
            break; /* blocked for 600 ms: the forward stopped reading */
    }
    /* socketpair buffers on both hops + queue + a 1 MiB pipe: a few MiB */
    assert_true(off < 24u << 20);
    assert_true(off > 0);
    size_t stuck = off;
    uds_set_nonblock(x.a, 0);
    struct pump rest = {x.a, src + stuck, total - stuck, 65536, 1, 0};
    pthread_t tw;
    pthread_create(&tw, NULL, writer, &rest);
    unsigned char *got = malloc(total);
    assert_non_null(got);
    ssize_t n = read_all(x.b, got, total);
    pthread_join(tw, NULL);
    assert_int_equal(n, (ssize_t)total);
    assert_true(memcmp(got, src, total) == 0);
    shutdown(x.b, SHUT_WR);
    char c;
    assert_int_equal(recv_to(x.a, &c, 1, 5000), 0);
    fx_finish(&x, 5000);
    assert_int_equal(x.err, 0);
    free(src);
    free(got);
}

static void test_backpressure_splice(void **state)
{
    (void)state;
    backpressure(0);
}

static void test_backpressure_copy(void **state)
{
    (void)state;
    backpressure(1);
}

/* A peer that resets: the forward ends at once, reporting that side. */
static void test_reset(void **state)
{
    (void)state;
    struct fx x;
    fx_start(&x, UDS_STREAM, UDS_STREAM, NULL);
    send_all(x.a, "hello", 5);
    char buf[16];
    assert_int_equal(recv_to(x.b, buf, sizeof(buf), 5000), 5);
    /* unread data makes close() a reset */
    send_all(x.a, "more", 4);
    uint64_t t0 = tu_now_ms();
    while (tu_now_ms() - t0 < 2000) {
        struct pollfd pf = {x.b, POLLIN, 0};
        if (poll(&pf, 1, 10) > 0)
            break;
    }
    close(x.b);
    x.b = socket(AF_UNIX, SOCK_STREAM, 0); /* fx_finish closes it */
    /* side 0's outer end sees the end too */
    ssize_t r = recv_to(x.a, buf, sizeof(buf), 5000);
    assert_true(r == 0 || r == -ECONNRESET);
    fx_finish(&x, 5000);
    assert_int_equal(x.done, 1);
    assert_int_equal(x.side, 1);
    assert_true(x.err == -ECONNRESET || x.err == -EPIPE);
}

/* ---- framing adapters ---------------------------------------------------------- */

static void test_line_to_len32(void **state)
{
    (void)state;
    struct fx x;
    uds_fwd_opts o;
    memset(&o, 0, sizeof(o));
    o.frame[0] = UDS_FRAME_LINE;
    o.frame[1] = UDS_FRAME_LEN32;
    fx_start(&x, UDS_STREAM, UDS_STREAM, &o);
    send_all(x.a, "hello\nwor", 9);
    send_all(x.a, "ld\r\n\n", 5);
    char buf[256];
    assert_int_equal(recv_len32(x.b, buf, sizeof(buf)), 5);
    assert_string_equal(buf, "hello");
    assert_int_equal(recv_len32(x.b, buf, sizeof(buf)), 5);
    assert_string_equal(buf, "world");
    assert_int_equal(recv_len32(x.b, buf, sizeof(buf)), 0); /* the empty line */
    send_len32(x.b, "sum 1 2 = 3");
    send_len32(x.b, "");
    assert_int_equal(recv_line(x.a, buf, sizeof(buf)), 12);
    assert_string_equal(buf, "sum 1 2 = 3\n");
    assert_int_equal(recv_line(x.a, buf, sizeof(buf)), 1);
    assert_string_equal(buf, "\n");
    /* a last line without a newline still goes, then the EOF */
    send_all(x.a, "tail", 4);
    shutdown(x.a, SHUT_WR);
    assert_int_equal(recv_len32(x.b, buf, sizeof(buf)), 4);
    assert_string_equal(buf, "tail");
    assert_int_equal(recv_to(x.b, buf, 1, 5000), 0);
    shutdown(x.b, SHUT_WR);
    assert_int_equal(recv_to(x.a, buf, 1, 5000), 0);
    fx_finish(&x, 5000);
    assert_int_equal(x.err, 0);
    assert_int_equal(x.st.msgs[0], 4);
    assert_int_equal(x.st.msgs[1], 2);
}

/* A LEN32 message with a newline cannot become one line: that side is at fault. */
static void test_newline_in_message(void **state)
{
    (void)state;
    struct fx x;
    uds_fwd_opts o;
    memset(&o, 0, sizeof(o));
    o.frame[0] = UDS_FRAME_LINE;
    o.frame[1] = UDS_FRAME_LEN32;
    fx_start(&x, UDS_STREAM, UDS_STREAM, &o);
    send_len32(x.b, "two\nlines");
    char buf[16];
    assert_true(recv_to(x.a, buf, sizeof(buf), 5000) <= 0);
    fx_finish(&x, 5000);
    assert_int_equal(x.err, UDS_EFRAME);
    assert_int_equal(x.side, 1);
}

static void test_oversize_and_malformed(void **state)
{
    (void)state;
    for (int k = 0; k < 3; k++) {
        struct fx x;
        uds_fwd_opts o;
        memset(&o, 0, sizeof(o));
        o.frame[1] = UDS_FRAME_LEN32;
        o.frame[0] = k == 2 ? UDS_FRAME_LINE : UDS_FRAME_RAW;
        o.max_msg = 1000;
        fx_start(&x, UDS_STREAM, UDS_STREAM, &o);
        if (k == 0) { /* header says 2000 bytes */
            unsigned char h[4] = {0, 0, 0x07, 0xd0};
            send_all(x.b, h, 4);
        } else if (k == 1) { /* the reserved top bit */
            unsigned char h[4] = {0x80, 0, 0, 1};
            send_all(x.b, h, 4);
        } else { /* a line longer than max_msg */
            char big[1500];
            memset(big, 'x', sizeof(big));
            send_all(x.a, big, sizeof(big));
        }
        char buf[16];
        recv_to(k == 2 ? x.b : x.a, buf, sizeof(buf), 5000);
        fx_finish(&x, 5000);
        assert_int_equal(x.err, k == 1 ? UDS_EFRAME : -EMSGSIZE);
        assert_int_equal(x.side, k == 2 ? 0 : 1);
    }
}

/*
 * The last line, cut by EOF, is held to max_msg like every other line,
 * also towards a raw side (found by fuzz_relay: max_msg + 1 bytes with no
 * newline went through to a raw side, while the same line with its
 * newline was refused).
 */
static void test_last_line_oversize(void **state)
{
    (void)state;
    for (int k = 0; k < 2; k++) {
        struct fx x;
        uds_fwd_opts o;
        memset(&o, 0, sizeof(o));
        o.frame[0] = UDS_FRAME_LINE;
        o.frame[1] = k ? UDS_FRAME_LEN32 : UDS_FRAME_RAW;
        o.max_msg = 16;
        fx_start(&x, UDS_STREAM, UDS_STREAM, &o);
        char line[17];
        memset(line, 'y', sizeof(line));
        send_all(x.a, line, sizeof(line));
        shutdown(x.a, SHUT_WR);
        char buf[64];
        assert_true(recv_to(x.b, buf, sizeof(buf), 5000) <= 0);
        fx_finish(&x, 5000);
        assert_int_equal(x.err, -EMSGSIZE);
        assert_int_equal(x.side, 0);
        assert_int_equal(x.st.bytes[0], 0);
    }
}

/* seqpacket <-> LEN32 stream: one message is one frame, both ways. */
static void test_seqpacket_len32(void **state)
{
    (void)state;
    struct fx x;
    uds_fwd_opts o;
    memset(&o, 0, sizeof(o));
    o.frame[1] = UDS_FRAME_LEN32;
    fx_start(&x, UDS_SEQPACKET, UDS_STREAM, &o);
    send(x.a, "one", 3, 0);
    char buf[128];
    assert_int_equal(recv_len32(x.b, buf, sizeof(buf)), 3);
    assert_string_equal(buf, "one");
    send_len32(x.b, "reply-1");
    send_len32(x.b, "reply-22");
    assert_int_equal(recv_to(x.a, buf, sizeof(buf), 5000), 7);
    assert_memory_equal(buf, "reply-1", 7);
    assert_int_equal(recv_to(x.a, buf, sizeof(buf), 5000), 8);
    assert_memory_equal(buf, "reply-22", 8);
    shutdown(x.a, SHUT_WR);
    assert_int_equal(recv_to(x.b, buf, sizeof(buf), 5000), 0);
    shutdown(x.b, SHUT_WR);
    assert_int_equal(recv_to(x.a, buf, sizeof(buf), 5000), 0);
    fx_finish(&x, 5000);
    assert_int_equal(x.err, 0);
    assert_int_equal(x.st.msgs[0], 1);
    assert_int_equal(x.st.msgs[1], 2);
}

/* raw stream -> seqpacket: each read becomes one message; back: bytes. */
static void test_seqpacket_raw(void **state)
{
    (void)state;
    struct fx x;
    fx_start(&x, UDS_STREAM, UDS_SEQPACKET, NULL);
    size_t size = 3u << 20;
    /* got has one byte more than is sent: recv is asked for one more, so a
       byte too many shows up as a wrong count, never as an overflow */
    unsigned char *src = malloc(size), *got = malloc(size + 1);
    tu_fill(src, size, 9);
    struct pump p = {x.a, src, size, 200000, 1, 0};
    pthread_t tw;
    pthread_create(&tw, NULL, writer, &p);
    size_t off = 0;
    int msgs = 0;
    for (;;) {
        ssize_t n = recv_to(x.b, got + off, size - off + 1, 5000);
        assert_true(n >= 0);
        if (n == 0)
            break;
        assert_true(n <= 65536); /* one conn read per message */
        off += (size_t)n;
        msgs++;
    }
    pthread_join(tw, NULL);
    assert_int_equal(off, size);
    assert_true(memcmp(got, src, size) == 0);
    assert_true(msgs >= (int)(size / 65536));
    /* messages back become one byte stream */
    for (int i = 0; i < 10; i++)
        assert_int_equal(send(x.b, "abc", 3, 0), 3);
    shutdown(x.b, SHUT_WR);
    ssize_t n = read_all(x.a, got, size);
    assert_int_equal(n, 30);
    fx_finish(&x, 5000);
    assert_int_equal(x.err, 0);
    free(src);
    free(got);
}

/* stream LEN32 <-> connected datagram socket; after the stream side's EOF
   the forward waits for late replies, then ends without an error. */
static void test_dgram(void **state)
{
    (void)state;
    struct fx x;
    uds_fwd_opts o;
    memset(&o, 0, sizeof(o));
    o.frame[0] = UDS_FRAME_LEN32;
    o.idle_timeout_ms = 300;
    fx_start(&x, UDS_STREAM, UDS_DGRAM, &o);
    send_len32(x.a, "ping");
    send_len32(x.a, "");
    char buf[64];
    assert_int_equal(recv_to(x.b, buf, sizeof(buf), 5000), 4);
    assert_memory_equal(buf, "ping", 4);
    assert_int_equal(recv_to(x.b, buf, sizeof(buf), 5000), 0); /* the empty one */
    shutdown(x.a, SHUT_WR);
    assert_int_equal(send(x.b, "pong", 4, 0), 4);
    assert_int_equal(send(x.b, "", 0, 0), 0);
    assert_int_equal(recv_len32(x.a, buf, sizeof(buf)), 4);
    assert_string_equal(buf, "pong");
    assert_int_equal(recv_len32(x.a, buf, sizeof(buf)), 0);
    uint64_t t0 = tu_now_ms();
    fx_finish(&x, 5000);
    assert_int_equal(x.err, 0);
    assert_true(x.done_ms - t0 < 3000);
    assert_int_equal(x.st.msgs[0], 2);
    assert_int_equal(x.st.msgs[1], 2);
}


/* ---- fds and credentials ------------------------------------------------------ */

/* Sends `msg` with n fresh pipe write ends; keeps the read ends in rd[]. */
static void send_pipes(int fd, const char *msg, size_t n, int *rd)
{
    int wr[UDS_MAX_FDS] = {0};
    for (size_t i = 0; i < n; i++) {
        int p[2];
        assert_int_equal(pipe2(p, O_CLOEXEC), 0);
        rd[i] = p[0];
        wr[i] = p[1];
    }
    assert_int_equal(uds_send_fds(fd, msg, strlen(msg), wr, n), (ssize_t)strlen(msg));
    for (size_t i = 0; i < n; i++)
        close(wr[i]);
}

/* Receives `want` with exactly n fds, each a pipe whose read end is rd[i]. */
static void recv_pipes(int fd, const char *want, size_t n, const int *rd)
{
    char buf[64];
    int got[UDS_MAX_FDS];
    size_t nf = UDS_MAX_FDS;
    struct pollfd pf = {fd, POLLIN, 0};
    assert_true(poll(&pf, 1, 5000) == 1);
    ssize_t r = uds_recv_fds(fd, buf, sizeof(buf), got, &nf);
    assert_int_equal(r, (ssize_t)strlen(want));
    assert_memory_equal(buf, want, (size_t)r);
    assert_int_equal(nf, n);
    for (size_t i = 0; i < n; i++) {
        char c = (char)('a' + i % 26), d = 0;
        assert_int_equal(write(got[i], &c, 1), 1); /* the very pipe we sent */
        assert_int_equal(read(rd[i], &d, 1), 1);
        assert_int_equal(d, c);
        close(got[i]);
        close(rd[i]);
    }
}

static void test_fds_pass(void **state)
{
    (void)state;
    int base = tu_count_fds();
    struct fx x;
    uds_fwd_opts o;
    memset(&o, 0, sizeof(o));
    o.flags = UDS_FWD_FDS;
    fx_start(&x, UDS_STREAM, UDS_STREAM, &o);
    int with_fwd = tu_count_fds();
    int rd[UDS_MAX_FDS];
    size_t counts[] = {1, 16, 253};
    for (size_t k = 0; k < 3; k++) {
        char m[16];
        snprintf(m, sizeof(m), "m%zu", counts[k]);
        send_pipes(x.a, m, counts[k], rd);
        recv_pipes(x.b, m, counts[k], rd);
        send_pipes(x.b, "back", 2, rd);
        recv_pipes(x.a, "back", 2, rd);
    }
    /* The forward closes its copies right after the sendmsg that passed
       them, in the same callback, but that may still be running on the
       loop thread when the receiver has them: one more message through
       it (read later, in another callback) says those closes are done. */
    assert_int_equal(write(x.b, "s", 1), 1);
    struct pollfd spf = {x.a, POLLIN, 0};
    assert_int_equal(poll(&spf, 1, 5000), 1);
    char sc;
    assert_int_equal(read(x.a, &sc, 1), 1);
    /* the forward keeps none of them */
    assert_int_equal(tu_count_fds(), with_fwd);
    shutdown(x.a, SHUT_WR);
    shutdown(x.b, SHUT_WR);
    fx_finish(&x, 5000);
    assert_int_equal(x.err, 0);
    assert_int_equal(x.st.fds[0], 1 + 16 + 253);
    assert_int_equal(x.st.fds[1], 6);
    assert_int_equal(tu_count_fds(), base);
}

/* fds in flight when a side vanishes are closed, never leaked. */
static void test_fds_vanish(void **state)
{
    (void)state;
    int base = tu_count_fds();
    struct fx x;
    uds_fwd_opts o;
    memset(&o, 0, sizeof(o));
    o.flags = UDS_FWD_FDS;
    fx_start(&x, UDS_STREAM, UDS_STREAM, &o);
    /* side 1's peer never reads: fds pile up in the forward's queue */
    int rd[UDS_MAX_FDS];
    for (int i = 0; i < 40; i++) {
        send_pipes(x.a, "burst", 50, rd);
        for (int k = 0; k < 50; k++)
            close(rd[k]);
    }
    close(x.b);
    x.b = socket(AF_UNIX, SOCK_STREAM, 0);
    fx_finish(&x, 5000);
    assert_int_equal(tu_count_fds(), base);
}

/* Without UDS_FWD_FDS no fd crosses: refused at the sender where the kernel
   can (SO_PASSRIGHTS), closed on arrival where it cannot. */
static void test_fds_refused(void **state)
{
    (void)state;
    for (int fallback = 0; fallback < 2; fallback++) {
        unsigned saved = uds__features;
        if (fallback)
            uds__features &= ~UDS__FEAT_PASSRIGHTS;
        int base = tu_count_fds();
        struct fx x;
        fx_start(&x, UDS_STREAM, UDS_STREAM, NULL);
        int p[2];
        assert_int_equal(pipe2(p, O_CLOEXEC), 0);
        ssize_t r = uds_send_fds(x.a, "z", 1, &p[1], 1);
        int kernel_refuses = (saved & UDS__FEAT_PASSRIGHTS) && !fallback;
        if (kernel_refuses) {
            assert_int_equal(r, -EPERM);
            send_all(x.a, "z", 1);
        } else {
            assert_int_equal(r, 1);
        }
        char buf[8];
        int got[4];
        size_t nf = 4;
        struct pollfd pf = {x.b, POLLIN, 0};
        assert_true(poll(&pf, 1, 5000) == 1);
        assert_int_equal(uds_recv_fds(x.b, buf, sizeof(buf), got, &nf), 1);
        assert_int_equal(nf, 0);
        close(p[0]);
        close(p[1]);
        shutdown(x.a, SHUT_WR);
        shutdown(x.b, SHUT_WR);
        fx_finish(&x, 5000);
        assert_int_equal(x.st.fds[0], 0);
        assert_int_equal(tu_count_fds(), base);
        uds__features = saved;
    }
}

/*
 * Credentials: a child process writes through the forward; side 1's peer
 * (SO_PASSCRED) sees the child's pid, not ours. Root only: sending another
 * process's pid needs CAP_SYS_ADMIN.
 */
static void test_creds_pass(void **state)
{
    (void)state;
    if (geteuid() != 0)
        skip();
    struct fx x;
    uds_fwd_opts o;
    memset(&o, 0, sizeof(o));
    o.flags = UDS_FWD_FDS | UDS_FWD_CREDS;
    fx_start(&x, UDS_STREAM, UDS_STREAM, &o);
    uds_set_passcred(x.b, 1);
    int go[2];
    assert_int_equal(pipe(go), 0);
    pid_t child = fork();
    if (child == 0) {
        char c;
        close(go[1]);
        if (read(go[0], &c, 1) != 1)
            _exit(2);
        send(x.a, "from-child", 10, MSG_NOSIGNAL);
        if (read(go[0], &c, 1) < 0) /* stay alive until told: the pid must exist */
            _exit(3);
        _exit(0);
    }
    assert_int_equal(write(go[1], "g", 1), 1);
    char buf[32];
    uds_msg m;
    memset(&m, 0, sizeof(m));
    m.buf = buf;
    m.len = sizeof(buf);
    struct pollfd pf = {x.b, POLLIN, 0};
    assert_true(poll(&pf, 1, 5000) == 1);
    ssize_t r = uds_recvmsg(x.b, &m, 0);
    assert_int_equal(r, 10);
    assert_int_equal(m.has_cred, 1);
    assert_int_equal(m.cred.pid, child);
    close(go[1]);
    int st;
    waitpid(child, &st, 0);
    close(go[0]);
    shutdown(x.a, SHUT_WR);
    shutdown(x.b, SHUT_WR);
    fx_finish(&x, 5000);
    assert_int_equal(x.err, 0);
    assert_true(x.st.creds[0] >= 1);
}

/* ---- idle timeout, tap, close ------------------------------------------------- */

static void test_idle_timeout(void **state)
{
    (void)state;
    struct fx x;
    uds_fwd_opts o;
    memset(&o, 0, sizeof(o));
    o.idle_timeout_ms = 400;
    uint64_t t0 = tu_now_ms();
    fx_start(&x, UDS_STREAM, UDS_STREAM, &o);
    /* traffic every 100 ms keeps it alive well past the timeout */
    char buf[8];
    uint64_t quiet = 0;
    for (int i = 0; i < 12; i++) {
        send_all(x.a, "k", 1);
        assert_int_equal(recv_to(x.b, buf, sizeof(buf), 5000), 1);
        quiet = tu_now_ms();
        poll(NULL, 0, 100);
    }
    assert_int_equal(fx_done(&x), 0);
    assert_int_equal(recv_to(x.a, buf, sizeof(buf), 5000), 0); /* closed */
    fx_finish(&x, 5000);
    assert_int_equal(x.err, -ETIMEDOUT);
    assert_true(x.done_ms - quiet >= 350);
    assert_true(x.done_ms - quiet < 2500);
    assert_true(x.done_ms - t0 >= 1200);
}

/*
 * UDS_FWD_IDLE_SIDE0 (udsock serve --idle-timeout): what side 1 sends,
 * in small writes and in bulk (the splice path), does not keep the forward
 * alive; what side 0 sends does.
 */
static void test_idle_side0(void **state)
{
    (void)state;
    struct fx x;
    uds_fwd_opts o;
    memset(&o, 0, sizeof(o));
    o.idle_timeout_ms = 400;
    o.flags = UDS_FWD_IDLE_SIDE0;
    /* side 1 talks (small, then bulk), side 0 is silent: ends ~400 ms in */
    for (int bulk = 0; bulk < 2; bulk++) {
        size_t sz = bulk ? 65536 : 1;
        char *buf = calloc(1, 65536);
        assert_non_null(buf);
        uint64_t t0 = tu_now_ms();
        fx_start(&x, UDS_STREAM, UDS_STREAM, &o);
        int sent = 0;
        while (!fx_done(&x) && tu_now_ms() - t0 < 4000) {
            if (send(x.b, buf, sz, MSG_NOSIGNAL | MSG_DONTWAIT) > 0)
                sent++;
            while (recv(x.a, buf, 65536, MSG_DONTWAIT) > 0)
                ;
            poll(NULL, 0, 50);
        }
        fx_finish(&x, 5000);
        assert_int_equal(x.err, -ETIMEDOUT);
        assert_true(sent >= 4);
        assert_true(x.done_ms - t0 >= 350);
        assert_true(x.done_ms - t0 < 2500);
        if (bulk)
            assert_true(x.st.spliced[1]);
        free(buf);
    }
    /* side 0 talks every 100 ms: kept well past the timeout */
    uint64_t t0 = tu_now_ms(), quiet = 0;
    fx_start(&x, UDS_STREAM, UDS_STREAM, &o);
    char b[8];
    for (int i = 0; i < 12; i++) {
        send_all(x.a, "k", 1);
        assert_int_equal(recv_to(x.b, b, sizeof(b), 5000), 1);
        quiet = tu_now_ms();
        poll(NULL, 0, 100);
    }
    assert_int_equal(fx_done(&x), 0);
    fx_finish(&x, 5000);
    assert_int_equal(x.err, -ETIMEDOUT);
    assert_true(x.done_ms - quiet >= 350);
    assert_true(x.done_ms - t0 >= 1200);
}

static void test_tap_and_close(void **state)
{
    (void)state;
    struct fx x;
    uds_fwd_opts o;
    memset(&o, 0, sizeof(o));
    o.tap = on_tap;
    fx_start(&x, UDS_STREAM, UDS_STREAM, &o);
    size_t size = 1u << 20;
    unsigned char *src = malloc(size), *got = malloc(size);
    tu_fill(src, size, 3);
    struct pump p = {x.a, src, size, 65536, 0, 0};
    pthread_t tw;
    pthread_create(&tw, NULL, writer, &p);
    size_t off = 0;
    while (off < size) {
        ssize_t n = recv_to(x.b, got + off, size - off, 5000);
        assert_true(n > 0);
        off += (size_t)n;
    }
    pthread_join(tw, NULL);
    send_all(x.b, "back", 4);
    char buf[8];
    assert_int_equal(recv_to(x.a, buf, sizeof(buf), 5000), 4);
    /* the tap closes the forward when it sees this byte */
    send_all(x.a, "!", 1);
    assert_int_equal(recv_to(x.a, buf, sizeof(buf), 5000), 0);
    /* the "!" may have left before the close: then it comes first */
    ssize_t last = recv_to(x.b, buf, sizeof(buf), 5000);
    if (last == 1 && buf[0] == '!')
        last = recv_to(x.b, buf, sizeof(buf), 5000);
    assert_int_equal(last, 0);
    fx_finish(&x, 5000);
    assert_int_equal(x.err, 0);
    assert_int_equal(x.tapped[0], size + 1);
    assert_int_equal(x.tapped[1], 4);
    assert_false(x.st.spliced[0]); /* a tap sees every byte: no splice */
    free(src);
    free(got);
}

/* On failure both fds are still the caller's and done never runs. */
static void test_failure_contract(void **state)
{
    (void)state;
    uds_loop *loop;
    assert_int_equal(uds_loop_new(&loop), 0);
    int p0[2], p1[2];
    assert_int_equal(uds_pair(UDS_SEQPACKET, 0, p0), 0);
    assert_int_equal(uds_pair(UDS_STREAM, 0, p1), 0);
    uds_fwd *f = NULL;
    uds_fwd_opts o;
    memset(&o, 0, sizeof(o));
    o.frame[0] = UDS_FRAME_LINE; /* a seqpacket side has no stream framing */
    int called = 0;
    assert_int_equal(uds_fwd_new(&f, loop, p0[1], p1[1], &o, on_done, &called), -EPROTOTYPE);
    o.frame[0] = 77;
    assert_int_equal(uds_fwd_new(&f, loop, p0[1], p1[1], &o, on_done, &called), -EINVAL);
    int pp[2];
    assert_int_equal(pipe2(pp, O_CLOEXEC), 0);
    assert_int_equal(uds_fwd_new(&f, loop, pp[0], p1[1], NULL, on_done, &called), -ENOTSOCK);
    assert_int_equal(uds_fwd_new(&f, loop, p1[1], p1[1], NULL, on_done, &called), -EINVAL);
    for (int i = 0; i < 2; i++) {
        assert_true(fcntl(p0[i], F_GETFD) >= 0);
        assert_true(fcntl(p1[i], F_GETFD) >= 0);
        close(p0[i]);
        close(p1[i]);
        close(pp[i]);
    }
    assert_int_equal(uds_loop_run_once(loop, 0), 0);
    assert_int_equal(called, 0);
    uds_loop_free(loop);
}

/* Many forwards on one loop: each pair's bytes stay its own. */
static void test_many(void **state)
{
    (void)state;
    enum { N = 100 };
    uds_loop *loop;
    assert_int_equal(uds_loop_new(&loop), 0);
    int a[N], b[N];
    struct fx dummy;
    memset(&dummy, 0, sizeof(dummy));
    pthread_mutex_init(&dummy.mu, NULL);
    dummy.loop = loop;
    for (int i = 0; i < N; i++) {
        int p0[2], p1[2];
        assert_int_equal(uds_pair(UDS_STREAM, 0, p0), 0);
        assert_int_equal(uds_pair(UDS_STREAM, 0, p1), 0);
        a[i] = p0[0];
        b[i] = p1[0];
        uds_fwd *f;
        assert_int_equal(uds_fwd_new(&f, loop, p0[1], p1[1], NULL, on_done, &dummy), 0);
        char msg[32];
        int n = snprintf(msg, sizeof(msg), "conn %d", i);
        send_all(a[i], msg, (size_t)n);
        shutdown(a[i], SHUT_WR);
        shutdown(b[i], SHUT_WR);
    }
    uint64_t t0 = tu_now_ms();
    while (dummy.done < N && tu_now_ms() - t0 < 10000)
        uds_loop_run_once(loop, 50);
    assert_int_equal(dummy.done, N);
    for (int i = 0; i < N; i++) {
        char want[32], got[64];
        int n = snprintf(want, sizeof(want), "conn %d", i);
        ssize_t r = read_all(b[i], (unsigned char *)got, sizeof(got));
        assert_int_equal(r, n);
        assert_memory_equal(got, want, (size_t)n);
        close(a[i]);
        close(b[i]);
    }
    uds_loop_free(loop);
    pthread_mutex_destroy(&dummy.mu);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bulk_splice),
        cmocka_unit_test(test_bulk_no_splice),
        cmocka_unit_test(test_small_no_pipe),
        cmocka_unit_test(test_backpressure_splice),
        cmocka_unit_test(test_backpressure_copy),
        cmocka_unit_test(test_reset),
        cmocka_unit_test(test_line_to_len32),
        cmocka_unit_test(test_newline_in_message),
        cmocka_unit_test(test_oversize_and_malformed),
        cmocka_unit_test(test_last_line_oversize),
        cmocka_unit_test(test_seqpacket_len32),
        cmocka_unit_test(test_seqpacket_raw),
        cmocka_unit_test(test_dgram),
        cmocka_unit_test(test_fds_pass),
        cmocka_unit_test(test_fds_vanish),
        cmocka_unit_test(test_fds_refused),
        cmocka_unit_test(test_creds_pass),
        cmocka_unit_test(test_idle_timeout),
        cmocka_unit_test(test_idle_side0),
        cmocka_unit_test(test_tap_and_close),
        cmocka_unit_test(test_failure_contract),
        cmocka_unit_test(test_many),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
