/*
 * fuzz_server.c — a real server (loop + uds_server on a socketpair) fed
 * arbitrary bytes by its peer, which then half-closes. Oracle: what comes
 * back must be exactly the re-encoding of the frames the codec finds in
 * the input, in order, up to the first bad frame; and afterwards a good
 * client on a fresh connection is still served. Byte 0 picks the framing
 * (LEN32 or LINE); every third request is answered from a deferred call
 * (out of order), so reply ordering is checked too.
 */
#include <errno.h>
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
static void echo(uds_server *s, uds_req *req, const void *msg, size_t len, void *arg)
{
    (void)s;
    uds_loop *loop = arg;
    if (++nreq % 3 == 0) {
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

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1 || size > 100000)
        return 0;
    uds_framer f = {data[0] & 1 ? UDS_FRAME_LINE : UDS_FRAME_LEN32, MAX_MSG};
    const uint8_t *in = data + 1;
    size_t len = size - 1;

    /* expected output: the frames the codec accepts, re-encoded */
    uint8_t *want = malloc(len * 2 + 16);
    size_t wlen = 0, off = 0;
    for (;;) {
        uds_frame fr;
        int r = uds_frame_decode(&f, in + off, len - off, &fr);
        if (r <= 0)
            break;
        ssize_t e = uds_frame_encode(&f, fr.data, fr.len, want + wlen, len * 2 + 16 - wlen);
        if (e < 0)
            abort();
        wlen += (size_t)e;
        off += (size_t)r;
    }

    uds_loop *loop;
    uds_server *s;
    if (uds_loop_new(&loop) < 0)
        abort();
    uds_server_opts o;
    memset(&o, 0, sizeof(o));
    o.framing = f.mode;
    o.max_msg = MAX_MSG;
    if (uds_server_new(&s, loop, &o, echo, loop) < 0)
        abort();
    int p[2];
    if (uds_pair(SOCK_STREAM, 0, p) < 0 || uds_server_add_conn(s, p[0]) < 0)
        abort();
    if (uds_write_all(p[1], in, len) != (ssize_t)len)
        abort();
    shutdown(p[1], SHUT_WR);

    /* run until the server has ended the connection (EOF on our side) */
    uint8_t *got = malloc(wlen + 65536);
    size_t glen = 0;
    uds_set_nonblock(p[1], 1);
    for (int round = 0; round < 1000; round++) {
        uds_loop_run_once(loop, 10);
        ssize_t n = uds_read_some(p[1], got + glen, wlen + 65536 - glen);
        if (n == 0)
            break;
        if (n > 0)
            glen += (size_t)n;
        else if (n != -EAGAIN)
            break;
    }
    if (glen != wlen || memcmp(got, want, wlen) != 0)
        abort();

    /* the server is still fine for someone else */
    int q[2];
    if (uds_pair(SOCK_STREAM, 0, q) < 0 || uds_server_add_conn(s, q[0]) < 0)
        abort();
    uint8_t msg[16];
    ssize_t ml = uds_frame_encode(&f, "ok", 2, msg, sizeof(msg));
    uds_write_all(q[1], msg, (size_t)ml);
    uint8_t back[16];
    size_t bl = 0;
    uds_set_nonblock(q[1], 1);
    for (int round = 0; round < 1000 && bl < (size_t)ml; round++) {
        uds_loop_run_once(loop, 10);
        ssize_t n = uds_read_some(q[1], back + bl, sizeof(back) - bl);
        if (n > 0)
            bl += (size_t)n;
    }
    if (bl != (size_t)ml || memcmp(back, msg, bl) != 0)
        abort();

    close(p[1]);
    close(q[1]);
    uds_server_free(s);
    uds_loop_free(loop);
    free(want);
    free(got);
    return 0;
}
