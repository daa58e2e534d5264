/*
 * fuzz_server.c — a real server (loop + uds_server on a socketpair) fed
 * arbitrary bytes by its peer, which then half-closes. Oracle: what comes
 * back must be exactly the re-encoding of the frames the codec finds in
 * the input, in order, up to the first bad frame; and afterwards a good
 * client on a fresh connection is still served, and no fd is left open.
 * Byte 0:
 *   bit 0    framing of a stream connection: LEN32 or LINE; on a SEQPACKET
 *            connection: an empty packet (an empty request, answered with
 *            an empty reply) after each packet
 *   bit 1    a SEQPACKET connection instead (PACKET framing); the input is
 *            sent as packets of 1 + 16 * (bits 4-7) bytes. Replies are then
 *            compared as messages (each as a LEN32 record), so an empty
 *            reply counts, and must not be taken for the end
 *   bit 2    every fifth request is dropped (uds_req_drop): no reply, and
 *            the replies after it still come, in order
 *   bit 3    the peer goes away right after sending (replies pending,
 *            some deferred): nothing to check but the aftermath
 * Every third request is answered from a deferred call (out of order), so
 * reply ordering is checked too.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "udsock.h"

#define MAX_MSG 300

struct later {
    uds_req *req;
    size_t len;
    char msg[MAX_MSG];
};

static void reply_later(uds_loop *l, void *arg)
{
    (void)l;
    struct later *d = arg;
    uds_req_reply(d->req, d->msg, d->len);
    free(d);
}

static unsigned nreq;
static int drop_fifth;
static void echo(uds_server *s, uds_req *req, const void *msg, size_t len, void *arg)
{
    (void)s;
    uds_loop *loop = arg;
    ++nreq;
    if (drop_fifth && nreq % 5 == 0) {
        uds_req_drop(req);
        return;
    }
    if (nreq % 3 == 0) {
        struct later *d = malloc(sizeof(*d));
        d->req = req;
        d->len = len;
        memcpy(d->msg, msg, len);
        if (uds_loop_defer(loop, reply_later, d) == 0)
            return;
        free(d);
    }
    uds_req_reply(req, msg, len);
}

/* Sends what the socket takes now (whole packets on a packet socket, and
   an empty one after each when empties is set). */
static void send_some(int fd, const uint8_t *in, size_t len, size_t *off, size_t pkt,
                      int empties, int *empty_next)
{
    while (*off < len || *empty_next) {
        size_t n = len - *off;
        if (pkt && n > pkt)
            n = pkt;
        if (*empty_next)
            n = 0;
        ssize_t w = send(fd, in + *off, n, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (w < 0 || (w == 0 && n > 0)) {
            if (w < 0 && (errno == EAGAIN || errno == EINTR))
                return;
            *off = len; /* the server has gone: nothing more to send */
            *empty_next = 0;
            return;
        }
        *off += (size_t)w;
        *empty_next = empties && n > 0;
    }
}

/* One read of the peer: what is there now, appended to got (a packet as a
   LEN32 record). 1 = read something, 0 = nothing now, -1 = end of stream
   or an error. The packet socket has SO_TIMESTAMP on, so a message read
   without room for control data sets MSG_CTRUNC, even an empty one, and
   end of stream does not. */
static int read_some(int fd, int packets, uint8_t *got, size_t *glen, size_t cap)
{
    size_t hdr = packets ? 4 : 0;
    if (cap - *glen < hdr + 1)
        return -1;
    struct iovec iov = {got + *glen + hdr, cap - *glen - hdr};
    struct msghdr mh;
    memset(&mh, 0, sizeof(mh));
    mh.msg_iov = &iov;
    mh.msg_iovlen = 1;
    ssize_t n = recvmsg(fd, &mh, MSG_DONTWAIT);
    if (n < 0)
        return errno == EAGAIN || errno == EINTR ? 0 : -1;
    if (n == 0 && !(packets && (mh.msg_flags & MSG_CTRUNC)))
        return -1;
    if (packets) {
        uint8_t *h = got + *glen;
        h[0] = (uint8_t)(n >> 24), h[1] = (uint8_t)(n >> 16), h[2] = (uint8_t)(n >> 8);
        h[3] = (uint8_t)n;
    }
    *glen += hdr + (size_t)n;
    return 1;
}

/* Which of fds 0..63 are open: a run must leave the same set behind. */
static void fd_snapshot(uint8_t open_fds[64])
{
    for (int fd = 0; fd < 64; fd++)
        open_fds[fd] = fcntl(fd, F_GETFD) >= 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1 || size > 100000)
        return 0;
    /* one loop for every run (as a long-lived program has): its scratch
       buffer is made once, and what a run leaves on it would show */
    static uds_loop *loop;
    if (!loop && uds_loop_new(&loop) < 0)
        abort();
    uint8_t fds_before[64], fds_after[64];
    fd_snapshot(fds_before);
    int packets = (data[0] & 2) != 0, vanish = (data[0] & 8) != 0;
    size_t pkt = packets ? 1 + 16 * (size_t)(data[0] >> 4) : 0;
    int empties = packets && (data[0] & 1);
    uds_framer f = {packets ? UDS_FRAME_PACKET : data[0] & 1 ? UDS_FRAME_LINE : UDS_FRAME_LEN32,
                    MAX_MSG};
    uds_framer rf = {UDS_FRAME_LEN32, MAX_MSG}; /* replies of a packet connection */
    const uint8_t *in = data + 1;
    size_t len = size - 1;
    nreq = 0;
    drop_fifth = (data[0] & 4) != 0;

    /* expected output: the frames the codec accepts, re-encoded, without
       the dropped ones (a packet connection's as LEN32 records, empty
       requests answered with empty replies) */
    size_t wcap = len * 9 + 16;
    uint8_t *want = malloc(wcap);
    size_t wlen = 0, off = 0;
    for (unsigned k = 1;; k++) {
        uds_frame fr;
        size_t n = packets ? (len - off < pkt ? len - off : pkt) : len - off;
        if (packets && n == 0)
            break;
        int r = uds_frame_decode(&f, in + off, n, &fr);
        if (r <= 0)
            break;
        for (int e2 = 0; e2 <= empties; e2++) {
            if (e2)
                k++, fr.len = 0; /* the empty request after the packet */
            if (drop_fifth && k % 5 == 0)
                continue;
            ssize_t e = uds_frame_encode(packets ? &rf : &f, fr.data, fr.len, want + wlen,
                                         wcap - wlen);
            if (e < 0)
                abort();
            wlen += (size_t)e;
        }
        off += (size_t)r;
    }

    uds_server *s;
    uds_server_opts o;
    memset(&o, 0, sizeof(o));
    o.framing = packets ? 0 : f.mode;
    o.max_msg = MAX_MSG;
    if (uds_server_new(&s, loop, &o, echo, loop) < 0)
        abort();
    int p[2];
    if (uds_pair(packets ? SOCK_SEQPACKET : SOCK_STREAM, 0, p) < 0 ||
        uds_server_add_conn(s, p[0]) < 0)
        abort();

    /* send, then half-close; run until the server has ended the connection
       (EOF on our side) */
    uint8_t *got = malloc(wlen + 65536);
    size_t glen = 0, sent = 0;
    int shut = 0, empty_next = 0;
    if (packets) {
        int one = 1;
        if (setsockopt(p[1], SOL_SOCKET, SO_TIMESTAMP, &one, sizeof(one)) < 0)
            abort();
    }
    for (int round = 0; round < 200000; round++) {
        send_some(p[1], in, len, &sent, pkt, empties, &empty_next);
        if (sent == len && !empty_next && !shut) {
            shutdown(p[1], SHUT_WR);
            shut = 1;
            if (vanish) {
                close(p[1]);
                p[1] = -1;
            }
        }
        uds_loop_run_once(loop, 0);
        if (p[1] < 0) {
            uds_server_stats st;
            uds_server_stats_get(s, &st);
            if (st.conns == 0)
                break;
            continue;
        }
        int n;
        while ((n = read_some(p[1], packets, got, &glen, wlen + 65536)) > 0)
            ;
        if (n < 0 && shut)
            break;
    }
    uds_server_stats st;
    uds_server_stats_get(s, &st);
    if (st.conns != 0)
        abort(); /* the connection must be over by now */
    if (!vanish && (glen != wlen || memcmp(got, want, wlen) != 0))
        abort();

    /* the server is still fine for someone else */
    drop_fifth = 0;
    int q[2];
    if (uds_pair(SOCK_STREAM, 0, q) < 0 || uds_server_add_conn(s, q[0]) < 0)
        abort();
    uds_framer gf = {packets ? UDS_FRAME_LEN32 : f.mode, MAX_MSG};
    uint8_t msg[16];
    ssize_t ml = uds_frame_encode(&gf, "ok", 2, msg, sizeof(msg));
    uds_write_all(q[1], msg, (size_t)ml);
    uint8_t back[16];
    size_t bl = 0;
    uds_set_nonblock(q[1], 1);
    for (int round = 0; round < 100000 && bl < (size_t)ml; round++) {
        uds_loop_run_once(loop, 0);
        ssize_t n = uds_read_some(q[1], back + bl, sizeof(back) - bl);
        if (n > 0)
            bl += (size_t)n;
    }
    if (bl != (size_t)ml || memcmp(back, msg, bl) != 0)
        abort();

    if (p[1] >= 0)
        close(p[1]);
    close(q[1]);
    uds_server_free(s);
    free(want);
    free(got);
    fd_snapshot(fds_after);
    if (memcmp(fds_before, fds_after, sizeof(fds_before)) != 0)
        abort(); /* an fd left open */
    return 0;
}
