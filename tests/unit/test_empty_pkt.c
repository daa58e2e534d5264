/*
 * test_empty_pkt.c — empty SEQPACKET messages are messages, not end of
 * stream: the kernel rule itself (uds__pkt_eof, both the marked path and
 * the poll fallback), uds_conn (plain, with fds, with credentials, an
 * empty message carrying an fd), uds_server (empty requests answered with
 * empty replies, the connection going on), uds_client (an empty response
 * is a response, the end is still UDS_ECLOSED) and uds_fwd (an empty
 * packet passes packet <-> packet as an empty packet, packet <-> LEN32 as
 * an empty frame). Everything runs in one thread: the loop is driven with
 * uds_loop_run_once until the peer has what it waits for, bounded in
 * rounds and time.
 */
#include "testutil.h"
#include "internal.h" /* uds__pkt_mark/uds__pkt_eof, the UDS__FEAT_PKTMARK seam */

#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define WAIT_MS 10000

/* ---- helpers -------------------------------------------------------------- */

/* A test's own peer end: SO_TIMESTAMP, so its reads tell an empty message
   from the end the same way the library does. */
static void mark_peer(int fd)
{
    int one = 1;
    assert_int_equal(setsockopt(fd, SOL_SOCKET, SO_TIMESTAMP, &one, sizeof(one)), 0);
}

/* One message from a marked peer end, non-blocking: its length, -1 at end of
   stream, -2 when nothing is there (errno kept for other errors: -3). */
static ssize_t peer_read(int fd, char *buf, size_t cap)
{
    struct iovec iov = {buf, cap};
    struct msghdr mh;
    memset(&mh, 0, sizeof(mh));
    mh.msg_iov = &iov;
    mh.msg_iovlen = 1;
    ssize_t n = recvmsg(fd, &mh, MSG_DONTWAIT);
    if (n < 0)
        return errno == EAGAIN ? -2 : -3;
    if (n == 0 && !(mh.msg_flags & MSG_CTRUNC))
        return -1;
    return n;
}

/* What a peer end received: message lengths and the end. */
struct rx {
    size_t len[16];
    char first[16]; /* first byte of each non-empty message */
    int n, eof, err;
    size_t total, last; /* every message, and the last one's length */
};

static void rx_pump(int fd, struct rx *r)
{
    char buf[256];
    while (!r->eof && !r->err) {
        ssize_t n = peer_read(fd, buf, sizeof(buf));
        if (n == -2)
            return;
        if (n == -1) {
            r->eof = 1;
        } else if (n < 0) {
            r->err = errno;
        } else {
            r->total++;
            r->last = (size_t)n;
            if (r->n < 16) {
                r->first[r->n] = n ? buf[0] : 0;
                r->len[r->n++] = (size_t)n;
            }
        }
    }
}

/* Runs the loop until *flag is set or WAIT_MS pass, reading the peer ends
   given (rx may be NULL). */
static void drive(uds_loop *loop, const int *flag, int fd, struct rx *r)
{
    uint64_t end = tu_now_ms() + WAIT_MS;
    for (int i = 0; i < 100000 && !*flag && tu_now_ms() < end; i++) {
        uds_loop_run_once(loop, 5);
        if (r)
            rx_pump(fd, r);
    }
}

static void send_pkt(int fd, const char *s)
{
    assert_int_equal(send(fd, s, strlen(s), MSG_NOSIGNAL), (ssize_t)strlen(s));
}

/* ---- the kernel rule -------------------------------------------------------- */

/* recvmsg without a control buffer on fd; *n its result. */
static int read_is_eof(int fd, int marked, ssize_t *n)
{
    char buf[8];
    struct iovec iov = {buf, sizeof(buf)};
    struct msghdr mh;
    memset(&mh, 0, sizeof(mh));
    mh.msg_iov = &iov;
    mh.msg_iovlen = 1;
    *n = recvmsg(fd, &mh, MSG_DONTWAIT);
    assert_true(*n >= 0);
    return uds__pkt_eof(fd, *n, &mh, marked);
}

/* Marked: empty messages queued before the peer's shutdown are messages,
   the read after them is the end (the case no poll-based rule gets). */
static void test_rule_marked(void **state)
{
    (void)state;
    int p[2];
    ssize_t n;
    assert_int_equal(uds_pair(SOCK_SEQPACKET, 0, p), 0);
    assert_int_equal(uds__pkt_mark(p[1]), 1);
    send_pkt(p[0], "");
    send_pkt(p[0], "ab");
    send_pkt(p[0], "");
    shutdown(p[0], SHUT_WR);
    assert_false(read_is_eof(p[1], 1, &n));
    assert_int_equal(n, 0);
    assert_false(read_is_eof(p[1], 1, &n));
    assert_int_equal(n, 2);
    assert_false(read_is_eof(p[1], 1, &n)); /* empty, after SHUT_WR */
    assert_int_equal(n, 0);
    assert_true(read_is_eof(p[1], 1, &n));
    assert_true(read_is_eof(p[1], 1, &n)); /* and stays the end */
    /* after close rather than shutdown too */
    send_pkt(p[1], "");
    close(p[1]);
    assert_int_equal(uds__pkt_mark(p[0]), 1);
    assert_false(read_is_eof(p[0], 1, &n));
    assert_true(read_is_eof(p[0], 1, &n));
    close(p[0]);
}

/* Unmarked (the fallback): an empty message while the peer is there is a
   message; after its shutdown a 0 is the end. */
static void test_rule_fallback(void **state)
{
    (void)state;
    unsigned saved = uds__features;
    uds__features &= ~UDS__FEAT_PKTMARK;
    int p[2];
    ssize_t n;
    assert_int_equal(uds_pair(SOCK_SEQPACKET, 0, p), 0);
    assert_int_equal(uds__pkt_mark(p[1]), 0);
    send_pkt(p[0], "");
    assert_false(read_is_eof(p[1], 0, &n));
    shutdown(p[0], SHUT_WR);
    assert_true(read_is_eof(p[1], 0, &n));
    close(p[0]);
    close(p[1]);
    uds__features = saved;
}

/* ---- uds_conn ------------------------------------------------------------- */

struct cx {
    size_t lens[16];
    int n, eof, closed, err, nfds, ncred;
    int fd_in; /* an fd that came with a message (closed by the test) */
};

static size_t cx_data(uds_conn *c, const void *data, size_t len, void *arg)
{
    (void)c;
    (void)data;
    struct cx *x = arg;
    if (x->n < 16)
        x->lens[x->n++] = len;
    return len;
}

static void cx_eof(uds_conn *c, void *arg)
{
    struct cx *x = arg;
    x->eof++;
    uds_conn_end(c);
}

static void cx_close(uds_conn *c, int err, void *arg)
{
    (void)c;
    struct cx *x = arg;
    x->closed = 1;
    x->err = err;
}

static void cx_anc(uds_conn *c, const uds_anc *anc, void *arg)
{
    (void)c;
    struct cx *x = arg;
    x->ncred += anc->has_cred;
    for (size_t i = 0; i < anc->nfds; i++) {
        x->nfds++;
        if (x->fd_in < 0)
            x->fd_in = anc->fds[i];
        else
            close(anc->fds[i]);
    }
}

static const uds_conn_cbs cx_cbs = {cx_data, cx_eof, NULL, cx_close, cx_anc};

/* "a", "", "b", "" then shutdown: four messages (two empty), then one EOF,
   with each kind of read (plain, fds, credentials, both). */
static void conn_case(int flags)
{
    uds_loop *loop;
    assert_int_equal(uds_loop_new(&loop), 0);
    int p[2];
    assert_int_equal(uds_pair(SOCK_SEQPACKET, 0, p), 0);
    struct cx x;
    memset(&x, 0, sizeof(x));
    x.fd_in = -1;
    uds_conn_opts o;
    memset(&o, 0, sizeof(o));
    o.flags = flags;
    uds_conn *c;
    assert_int_equal(uds_conn_new(&c, loop, p[0], &o, &cx_cbs, &x), 0);
    send_pkt(p[1], "a");
    send_pkt(p[1], "");
    send_pkt(p[1], "b");
    send_pkt(p[1], "");
    shutdown(p[1], SHUT_WR);
    drive(loop, &x.closed, -1, NULL);
    assert_true(x.closed);
    assert_int_equal(x.err, 0);
    assert_int_equal(x.n, 4);
    assert_int_equal(x.lens[0], 1);
    assert_int_equal(x.lens[1], 0);
    assert_int_equal(x.lens[2], 1);
    assert_int_equal(x.lens[3], 0);
    assert_int_equal(x.eof, 1);
    if (flags & UDS_CONN_CREDS)
        assert_int_equal(x.ncred, 4);
    close(p[1]);
    uds_loop_free(loop);
}

static void test_conn_plain(void **state)
{
    (void)state;
    conn_case(0);
}

static void test_conn_fds(void **state)
{
    (void)state;
    conn_case(UDS_CONN_FDS);
}

static void test_conn_creds(void **state)
{
    (void)state;
    conn_case(UDS_CONN_CREDS);
    conn_case(UDS_CONN_FDS | UDS_CONN_CREDS);
}

/* The fallback path: empty messages while the peer is there still arrive
   as messages, and its shutdown is still the end. */
static void test_conn_fallback(void **state)
{
    (void)state;
    unsigned saved = uds__features;
    uds__features &= ~UDS__FEAT_PKTMARK;
    uds_loop *loop;
    assert_int_equal(uds_loop_new(&loop), 0);
    int p[2];
    assert_int_equal(uds_pair(SOCK_SEQPACKET, 0, p), 0);
    struct cx x;
    memset(&x, 0, sizeof(x));
    x.fd_in = -1;
    uds_conn *c;
    assert_int_equal(uds_conn_new(&c, loop, p[0], NULL, &cx_cbs, &x), 0);
    send_pkt(p[1], "");
    send_pkt(p[1], "a");
    send_pkt(p[1], "");
    int two = 0;
    uint64_t end = tu_now_ms() + WAIT_MS;
    for (int i = 0; i < 100000 && x.n < 3 && tu_now_ms() < end; i++)
        uds_loop_run_once(loop, 5);
    two = x.n == 3;
    assert_true(two);
    assert_int_equal(x.lens[0], 0);
    assert_int_equal(x.lens[1], 1);
    assert_int_equal(x.lens[2], 0);
    assert_int_equal(x.eof, 0);
    shutdown(p[1], SHUT_WR);
    drive(loop, &x.closed, -1, NULL);
    assert_int_equal(x.eof, 1);
    assert_int_equal(x.err, 0);
    close(p[1]);
    uds_loop_free(loop);
    uds__features = saved;
}

/* An empty message may carry fds now (it was -EINVAL: "0 = EOF"), and the
   receiving conn hands them over with a 0-length on_data. */
static void test_conn_empty_with_fd(void **state)
{
    (void)state;
    uds_loop *loop;
    assert_int_equal(uds_loop_new(&loop), 0);
    int p[2], q[2];
    assert_int_equal(uds_pair(SOCK_SEQPACKET, 0, p), 0);
    assert_int_equal(uds_pair(SOCK_STREAM, 0, q), 0);
    struct cx tx, rxx;
    memset(&tx, 0, sizeof(tx));
    memset(&rxx, 0, sizeof(rxx));
    tx.fd_in = rxx.fd_in = -1;
    uds_conn_opts o;
    memset(&o, 0, sizeof(o));
    o.flags = UDS_CONN_FDS;
    uds_conn *a, *b;
    assert_int_equal(uds_conn_new(&a, loop, p[0], NULL, &cx_cbs, &tx), 0);
    assert_int_equal(uds_conn_new(&b, loop, p[1], &o, &cx_cbs, &rxx), 0);
    int give = q[0];
    struct iovec none = {NULL, 0};
    assert_int_equal(uds_conn_write_anc(a, &none, 1, &give, 1, NULL), 0);
    uds_conn_shutdown(a);
    drive(loop, &rxx.eof, -1, NULL);
    assert_int_equal(rxx.n, 1);
    assert_int_equal(rxx.lens[0], 0);
    assert_int_equal(rxx.nfds, 1);
    assert_true(rxx.fd_in >= 0);
    /* it is the same socket: what goes in q[1] comes out of it */
    assert_int_equal(write(q[1], "z", 1), 1);
    char ch = 0;
    assert_int_equal(read(rxx.fd_in, &ch, 1), 1);
    assert_int_equal(ch, 'z');
    close(rxx.fd_in);
    close(q[1]);
    /* b ends itself at EOF (cx_eof), and a at the EOF b's close brings */
    drive(loop, &rxx.closed, -1, NULL);
    drive(loop, &tx.closed, -1, NULL);
    assert_true(rxx.closed && tx.closed);
    uds_loop_free(loop);
}

/* The forwarder's direct write (uds__conn_writev_now) of an empty packet
   into a full socket: EAGAIN must queue it like any other packet, not
   count it as sent because 0 of 0 bytes went (it was dropped). */
static void test_conn_empty_eagain(void **state)
{
    (void)state;
    uds_loop *loop;
    assert_int_equal(uds_loop_new(&loop), 0);
    int p[2];
    assert_int_equal(uds_pair(SOCK_SEQPACKET, 0, p), 0);
    mark_peer(p[1]);
    struct cx x;
    memset(&x, 0, sizeof(x));
    x.fd_in = -1;
    uds_conn *c;
    assert_int_equal(uds_conn_new(&c, loop, p[0], NULL, &cx_cbs, &x), 0);
    int full = 0;
    for (int i = 0; i < 100000; i++) { /* fill the peer's queue, behind the conn's back */
        if (send(p[0], "f", 1, MSG_DONTWAIT | MSG_NOSIGNAL) < 0) {
            assert_true(errno == EAGAIN);
            full = i;
            break;
        }
    }
    assert_true(full > 0);
    struct iovec none = {NULL, 0};
    assert_true(uds__conn_writev_now(c, &none, 1) >= 0);
    assert_int_equal(uds_conn_shutdown(c), 0);
    struct rx r;
    memset(&r, 0, sizeof(r));
    drive(loop, &r.eof, p[1], &r);
    assert_int_equal(r.err, 0);
    assert_int_equal(r.eof, 1);
    assert_int_equal(r.total, (size_t)full + 1);
    assert_int_equal(r.last, 0);
    close(p[1]); /* the conn ends at this EOF (cx_eof) */
    p[1] = -1;
    drive(loop, &x.closed, -1, NULL);
    assert_true(x.closed);
    uds_loop_free(loop);
}

/* ---- uds_server --------------------------------------------------------- */

static void echo(uds_server *s, uds_req *req, const void *msg, size_t len, void *arg)
{
    (void)s;
    (void)arg;
    uds_req_reply(req, msg, len);
}

/* Empty requests are answered (with empty replies) and the requests after
   them too; the peer sees the end only after all replies, never a reset. */
static void test_server(void **state)
{
    (void)state;
    uds_loop *loop;
    assert_int_equal(uds_loop_new(&loop), 0);
    uds_server *s;
    assert_int_equal(uds_server_new(&s, loop, NULL, echo, NULL), 0);
    int p[2];
    assert_int_equal(uds_pair(SOCK_SEQPACKET, 0, p), 0);
    assert_int_equal(uds_server_add_conn(s, p[0]), 0);
    mark_peer(p[1]);
    send_pkt(p[1], "a");
    send_pkt(p[1], "");
    send_pkt(p[1], "b");
    send_pkt(p[1], "");
    struct rx r;
    memset(&r, 0, sizeof(r));
    uint64_t end = tu_now_ms() + WAIT_MS;
    for (int i = 0; i < 100000 && r.n < 4 && !r.eof && !r.err && tu_now_ms() < end; i++) {
        uds_loop_run_once(loop, 5);
        rx_pump(p[1], &r);
    }
    assert_int_equal(r.err, 0);
    assert_int_equal(r.eof, 0); /* the empty request did not end it */
    assert_int_equal(r.n, 4);
    assert_int_equal(r.len[0], 1);
    assert_int_equal(r.first[0], 'a');
    assert_int_equal(r.len[1], 0);
    assert_int_equal(r.len[2], 1);
    assert_int_equal(r.first[2], 'b');
    assert_int_equal(r.len[3], 0);
    /* still serving after them */
    send_pkt(p[1], "c");
    shutdown(p[1], SHUT_WR);
    drive(loop, &r.eof, p[1], &r);
    assert_int_equal(r.err, 0);
    assert_int_equal(r.eof, 1);
    assert_int_equal(r.n, 5);
    assert_int_equal(r.first[4], 'c');
    uds_server_stats st;
    uds_server_stats_get(s, &st);
    assert_int_equal(st.requests, 5);
    close(p[1]);
    uds_server_free(s);
    uds_loop_free(loop);
}

/* ---- uds_client ------------------------------------------------------------ */

/* An empty response is a response (it was UDS_ECLOSED), in order; the end
   after the last one is still UDS_ECLOSED. The responses are queued
   before the calls, so no server is needed. */
static void test_client(void **state)
{
    (void)state;
    int p[2];
    assert_int_equal(uds_pair(SOCK_SEQPACKET, 0, p), 0);
    uds_client *c;
    assert_int_equal(uds_client_from_fd(&c, p[0], NULL), 0);
    send_pkt(p[1], "");
    send_pkt(p[1], "x");
    send_pkt(p[1], "");
    shutdown(p[1], SHUT_WR);
    void *resp = NULL;
    size_t rl = 99;
    assert_int_equal(uds_client_call(c, "a", 1, &resp, &rl, 5000), 0);
    assert_int_equal(rl, 0);
    free(resp);
    assert_int_equal(uds_client_call(c, "b", 1, &resp, &rl, 5000), 0);
    assert_int_equal(rl, 1);
    assert_memory_equal(resp, "x", 1);
    free(resp);
    /* pipelined, with an empty request */
    assert_int_equal(uds_client_send(c, "", 0), 0);
    assert_int_equal(uds_client_recv(c, &resp, &rl, 5000), 0);
    assert_int_equal(rl, 0);
    free(resp);
    assert_int_equal(uds_client_call(c, "d", 1, &resp, &rl, 5000), UDS_ECLOSED);
    /* the requests went out as messages, the empty one as an empty one */
    mark_peer(p[1]);
    char buf[8];
    assert_int_equal(peer_read(p[1], buf, sizeof(buf)), 1);
    assert_int_equal(peer_read(p[1], buf, sizeof(buf)), 1);
    assert_int_equal(peer_read(p[1], buf, sizeof(buf)), 0);
    assert_int_equal(peer_read(p[1], buf, sizeof(buf)), 1);
    uds_client_close(c);
    close(p[1]);
}

/* ---- uds_fwd ----------------------------------------------------------------- */

struct fw {
    int done, err;
};

static void fw_done(uds_fwd *f, int err, int side, const uds_fwd_stats *st, void *arg)
{
    (void)f;
    (void)side;
    (void)st;
    struct fw *w = arg;
    w->done = 1;
    w->err = err;
}

/* Both ways through a packet <-> packet forward: "", "x", "" then the end
   one way, "" "y" the other: the same messages come out, empty ones as
   empty packets, and the end is passed on after them. */
static void test_fwd_packets(void **state)
{
    (void)state;
    uds_loop *loop;
    assert_int_equal(uds_loop_new(&loop), 0);
    int a[2], b[2];
    assert_int_equal(uds_pair(SOCK_SEQPACKET, 0, a), 0);
    assert_int_equal(uds_pair(SOCK_SEQPACKET, 0, b), 0);
    mark_peer(a[1]);
    mark_peer(b[1]);
    struct fw w = {0, 0};
    uds_fwd *f;
    assert_int_equal(uds_fwd_new(&f, loop, a[0], b[0], NULL, fw_done, &w), 0);
    send_pkt(a[1], "");
    send_pkt(a[1], "x");
    send_pkt(a[1], "");
    shutdown(a[1], SHUT_WR);
    send_pkt(b[1], "");
    send_pkt(b[1], "y");
    shutdown(b[1], SHUT_WR);
    struct rx rb, ra;
    memset(&rb, 0, sizeof(rb));
    memset(&ra, 0, sizeof(ra));
    uint64_t end = tu_now_ms() + WAIT_MS;
    for (int i = 0; i < 100000 && !(rb.eof && ra.eof && w.done) && tu_now_ms() < end; i++) {
        uds_loop_run_once(loop, 5);
        rx_pump(b[1], &rb);
        rx_pump(a[1], &ra);
    }
    assert_true(w.done);
    assert_int_equal(w.err, 0);
    assert_int_equal(rb.eof, 1);
    assert_int_equal(rb.n, 3);
    assert_int_equal(rb.len[0], 0);
    assert_int_equal(rb.len[1], 1);
    assert_int_equal(rb.first[1], 'x');
    assert_int_equal(rb.len[2], 0);
    assert_int_equal(ra.eof, 1);
    assert_int_equal(ra.n, 2);
    assert_int_equal(ra.len[0], 0);
    assert_int_equal(ra.len[1], 1);
    close(a[1]);
    close(b[1]);
    uds_loop_free(loop);
}

/* packet <-> LEN32 stream: an empty packet becomes a 4-byte zero header,
   and an empty LEN32 frame an empty packet. */
static void test_fwd_len32(void **state)
{
    (void)state;
    uds_loop *loop;
    assert_int_equal(uds_loop_new(&loop), 0);
    int a[2], b[2];
    assert_int_equal(uds_pair(SOCK_SEQPACKET, 0, a), 0);
    assert_int_equal(uds_pair(SOCK_STREAM, 0, b), 0);
    mark_peer(a[1]);
    uds_fwd_opts o;
    memset(&o, 0, sizeof(o));
    o.frame[1] = UDS_FRAME_LEN32;
    struct fw w = {0, 0};
    uds_fwd *f;
    assert_int_equal(uds_fwd_new(&f, loop, a[0], b[0], &o, fw_done, &w), 0);
    send_pkt(a[1], "");
    send_pkt(a[1], "x");
    shutdown(a[1], SHUT_WR);
    static const char frames[] = {0, 0, 0, 0, 0, 0, 0, 1, 'y'};
    assert_int_equal(write(b[1], frames, sizeof(frames)), (ssize_t)sizeof(frames));
    shutdown(b[1], SHUT_WR);
    struct rx ra;
    memset(&ra, 0, sizeof(ra));
    char got[64];
    size_t glen = 0;
    int beof = 0;
    uint64_t end = tu_now_ms() + WAIT_MS;
    for (int i = 0; i < 100000 && !(beof && ra.eof && w.done) && tu_now_ms() < end; i++) {
        uds_loop_run_once(loop, 5);
        rx_pump(a[1], &ra);
        ssize_t n = recv(b[1], got + glen, sizeof(got) - glen, MSG_DONTWAIT);
        if (n > 0)
            glen += (size_t)n;
        else if (n == 0)
            beof = 1;
    }
    assert_true(w.done);
    assert_int_equal(w.err, 0);
    static const char want[] = {0, 0, 0, 0, 0, 0, 0, 1, 'x'};
    assert_int_equal(glen, sizeof(want));
    assert_memory_equal(got, want, sizeof(want));
    assert_int_equal(ra.n, 2);
    assert_int_equal(ra.len[0], 0);
    assert_int_equal(ra.len[1], 1);
    assert_int_equal(ra.first[1], 'y');
    close(a[1]);
    close(b[1]);
    uds_loop_free(loop);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rule_marked),
        cmocka_unit_test(test_rule_fallback),
        cmocka_unit_test(test_conn_plain),
        cmocka_unit_test(test_conn_fds),
        cmocka_unit_test(test_conn_creds),
        cmocka_unit_test(test_conn_fallback),
        cmocka_unit_test(test_conn_empty_with_fd),
        cmocka_unit_test(test_conn_empty_eagain),
        cmocka_unit_test(test_server),
        cmocka_unit_test(test_client),
        cmocka_unit_test(test_fwd_packets),
        cmocka_unit_test(test_fwd_len32),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
