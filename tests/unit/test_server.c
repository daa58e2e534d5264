/*
 * test_server.c — connections, server and client together: 1000 pipelined
 * clients, slow readers, half-close, bad headers, timeouts, limits,
 * graceful shutdown, per-connection memory; over unix stream, seqpacket
 * and TCP.  uds-test-timeout: 120
 */
#include "testutil.h"

#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* ---- a server in a thread ----------------------------------------------- */

struct srv {
    uds_loop *loop;
    uds_server *s;
    int ctl[2];
    pthread_t th;
    uds_addr addr;
    uds_server_stats final;
    pthread_mutex_t mu;
    char logs[8192];
    int nlogs;
    int shut_done;
};

static void on_log(void *arg, int level, const char *text)
{
    (void)level;
    struct srv *v = arg;
    pthread_mutex_lock(&v->mu);
    size_t l = strlen(v->logs);
    snprintf(v->logs + l, sizeof(v->logs) - l, "%s\n", text);
    v->nlogs++;
    pthread_mutex_unlock(&v->mu);
}

static int log_has(struct srv *v, const char *needle)
{
    pthread_mutex_lock(&v->mu);
    int r = strstr(v->logs, needle) != NULL;
    pthread_mutex_unlock(&v->mu);
    return r;
}

struct later {
    uds_req *req;
    size_t len;
    char msg[];
};

static void later_cb(uds_loop *l, uint64_t id, void *arg)
{
    (void)l;
    (void)id;
    struct later *d = arg;
    uds_req_reply(d->req, d->msg, d->len);
    free(d);
}

/*
 * Test protocol, by first byte: 'E' echo; 'D' echo 1 ms later (out of
 * order); 'S' echo 300 ms later; 'B' + decimal N: a reply of N bytes;
 * 'X' drop (no reply). Requests carrying a checksum (len >= 17) are checked.
 */
static void handler(uds_server *s, uds_req *req, const void *msg, size_t len,
                    void *arg)
{
    (void)s;
    struct srv *v = arg;
    const char *m = msg;
    if (len >= 17 && (m[0] == 'E' || m[0] == 'D')) {
        uint64_t sum;
        memcpy(&sum, m + len - 8, 8);
        if (sum != tu_fnv(m, len - 8)) {
            uds_req_reply(req, "BAD", 3);
            return;
        }
    }
    if (len > 0 && (m[0] == 'D' || m[0] == 'S')) {
        struct later *d = malloc(sizeof(*d) + len);
        d->req = req;
        d->len = len;
        memcpy(d->msg, m, len);
        uds_loop_timer(v->loop, m[0] == 'D' ? 1 : 300, later_cb, d);
        return;
    }
    if (len > 0 && m[0] == 'B') {
        char num[32];
        size_t n = len - 1 < sizeof(num) - 1 ? len - 1 : sizeof(num) - 1;
        memcpy(num, m + 1, n);
        num[n] = 0;
        size_t sz = strtoul(num, NULL, 10);
        char *big = malloc(sz ? sz : 1);
        memset(big, 'b', sz);
        uds_req_reply(req, big, sz);
        free(big);
        return;
    }
    if (len > 0 && m[0] == 'X') {
        uds_req_drop(req);
        return;
    }
    uds_req_reply(req, msg, len);
}

static void shut_done(uds_server *s, void *arg)
{
    struct srv *v = arg;
    uds_server_stats_get(s, &v->final);
    uds_server_free(s);
    v->s = NULL;
    v->shut_done = 1;
}

static void on_ctl(uds_loop *l, int fd, unsigned ev, void *arg)
{
    (void)ev;
    struct srv *v = arg;
    char c;
    if (read(fd, &c, 1) != 1)
        return;
    if (c == 'q') {
        if (v->s) {
            uds_server_stats_get(v->s, &v->final);
            uds_server_free(v->s);
            v->s = NULL;
        }
        uds_loop_unwatch(l, fd);
        uds_loop_stop(l);
    } else if (c == 's') {
        uds_server_shutdown(v->s, 2000, shut_done, v);
    }
}

static void *srv_main(void *arg)
{
    struct srv *v = arg;
    uds_loop_run(v->loop);
    return NULL;
}

static struct srv *srv_start(const char *addr, int type, uds_server_opts *o)
{
    struct srv *v = calloc(1, sizeof(*v));
    pthread_mutex_init(&v->mu, NULL);
    assert_int_equal(uds_loop_new(&v->loop), 0);
    uds_server_opts def;
    memset(&def, 0, sizeof(def));
    if (!o)
        o = &def;
    o->log = on_log;
    o->log_arg = v;
    assert_int_equal(uds_server_new(&v->s, v->loop, o, handler, v), 0);
    uds_addr a;
    assert_int_equal(uds_addr_parse(&a, addr), 0);
    uds_listen_opts lo;
    memset(&lo, 0, sizeof(lo));
    lo.type = type;
    lo.backlog = 4096;
    assert_int_equal(uds_server_listen(v->s, &a, &lo), 0);
    assert_int_equal(uds_server_addr(v->s, &v->addr), 0);
    assert_int_equal(pipe2(v->ctl, O_CLOEXEC), 0);
    assert_int_equal(uds_loop_watch(v->loop, v->ctl[0], UDS_EV_READ, on_ctl, v), 0);
    assert_int_equal(pthread_create(&v->th, NULL, srv_main, v), 0);
    return v;
}

static void srv_ctl(struct srv *v, char c) { assert_int_equal(write(v->ctl[1], &c, 1), 1); }

static void srv_stop(struct srv *v)
{
    srv_ctl(v, 'q');
    pthread_join(v->th, NULL);
    uds_loop_free(v->loop);
    close(v->ctl[0]);
    close(v->ctl[1]);
    pthread_mutex_destroy(&v->mu);
    free(v);
}

static uds_client *client_for(struct srv *v, int type)
{
    uds_client *c;
    uds_client_opts o;
    memset(&o, 0, sizeof(o));
    o.type = type;
    assert_int_equal(uds_client_connect(&c, &v->addr, &o), 0);
    return c;
}

static void raise_nofile(void)
{
    struct rlimit rl;
    getrlimit(RLIMIT_NOFILE, &rl);
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
}

static long nofile(void)
{
    struct rlimit rl;
    getrlimit(RLIMIT_NOFILE, &rl);
    return (long)rl.rlim_cur;
}

/* ---- many pipelined clients --------------------------------------------- */

/* Request (id, seq): kind | id | seq | payload (0..60 bytes) | fnv64. */
static size_t make_req(char *buf, uint32_t id, uint32_t seq)
{
    uint32_t h = id * 2654435761u ^ seq * 40503u;
    size_t pl = h % 61;
    buf[0] = (h >> 8) % 7 == 0 ? 'D' : 'E';
    memcpy(buf + 1, &id, 4);
    memcpy(buf + 5, &seq, 4);
    tu_fill(buf + 9, pl, h);
    uint64_t sum = tu_fnv(buf, 9 + pl);
    memcpy(buf + 9 + pl, &sum, 8);
    return 9 + pl + 8;
}

static void run_many(const char *addr, int type, int nclients, int nreq)
{
    raise_nofile();
    long lim = nofile();
    if (nclients * 2 + 64 > lim)
        nclients = (int)(lim - 64) / 2;
    char *dir = tu_tmpdir();
    char a[256];
    if (addr)
        snprintf(a, sizeof(a), "%s", addr);
    else
        snprintf(a, sizeof(a), "%s", tu_path(dir, "s.sock"));
    struct srv *v = srv_start(a, type, NULL);
    uint64_t t0 = tu_now_ms();
    uds_client **cl = calloc((size_t)nclients, sizeof(*cl));
    int *next = calloc((size_t)nclients, sizeof(int));
    int *sent = calloc((size_t)nclients, sizeof(int));
    char *blocked = calloc((size_t)nclients, 1);
    /* all clients connected at once; each pipelines its requests in batches
       of 25, the next batch going out when the previous one is answered */
    for (int i = 0; i < nclients; i++)
        cl[i] = client_for(v, type);
    for (int i = 0; i < nclients; i++) {
        char req[128];
        for (; sent[i] < nreq && sent[i] < 25; sent[i]++)
            assert_int_equal(uds_client_send(cl[i], req, make_req(req, (uint32_t)i, (uint32_t)sent[i])), 0);
        int r = uds_client_flush(cl[i], 0);
        assert_true(r == 0 || r == -EAGAIN);
        blocked[i] = r == -EAGAIN;
    }
    struct pollfd *pf = calloc((size_t)nclients, sizeof(*pf));
    int remaining = nclients;
    long bad = 0;
    while (remaining > 0 && tu_now_ms() - t0 < 60000) {
        int n = 0;
        int *map = calloc((size_t)nclients, sizeof(int));
        for (int i = 0; i < nclients; i++)
            if (next[i] < nreq) {
                pf[n].fd = uds_client_fd(cl[i]);
                pf[n].events = (short)(POLLIN | (blocked[i] ? POLLOUT : 0));
                map[n++] = i;
            }
        poll(pf, (nfds_t)n, 1000);
        for (int k = 0; k < n; k++) {
            if (!pf[k].revents)
                continue;
            int i = map[k];
            int r = uds_client_flush(cl[i], 0);
            assert_true(r == 0 || r == -EAGAIN);
            blocked[i] = r == -EAGAIN;
            void *resp;
            size_t rl;
            while (next[i] < nreq && (r = uds_client_recv(cl[i], &resp, &rl, 0)) == 0) {
                char want[128];
                size_t wl = make_req(want, (uint32_t)i, (uint32_t)next[i]);
                if (rl != wl || memcmp(resp, want, wl) != 0)
                    bad++;
                free(resp);
                if (++next[i] == nreq)
                    remaining--;
            }
            if (next[i] < nreq && next[i] < sent[i])
                assert_int_equal(r, -EAGAIN);
            if (next[i] == sent[i] && sent[i] < nreq) {
                char req[128];
                for (int b = 0; b < 25 && sent[i] < nreq; b++, sent[i]++)
                    assert_int_equal(uds_client_send(cl[i], req, make_req(req, (uint32_t)i, (uint32_t)sent[i])), 0);
                r = uds_client_flush(cl[i], 0);
                assert_true(r == 0 || r == -EAGAIN);
                blocked[i] = r == -EAGAIN;
            }
        }
        free(map);
    }
    uint64_t dt = tu_now_ms() - t0;
    assert_int_equal(remaining, 0);
    assert_int_equal(bad, 0);
    for (int i = 0; i < nclients; i++) {
        assert_int_equal(uds_client_pending(cl[i]), 0);
        uds_client_close(cl[i]);
    }
    srv_stop(v);
    double total = (double)nclients * nreq;
    print_message("%s %s: %d clients x %d requests in %llu ms: %.0f requests/s, 0 lost/dup/reordered/corrupt\n",
                  addr ? addr : "unix", uds_type_name(type), nclients, nreq,
                  (unsigned long long)dt, total * 1000.0 / (double)(dt ? dt : 1));
    free(pf);
    free(cl);
    free(next);
    free(sent);
    free(blocked);
    tu_rmtree(dir);
    free(dir);
}

static void test_many_unix_stream(void **state)
{
    (void)state;
    run_many(NULL, UDS_STREAM, 1000, 100);
}

static void test_many_seqpacket(void **state)
{
    (void)state;
    TU_VALGRIND_SKIP("its deadline");
    run_many(NULL, UDS_SEQPACKET, 200, 100);
}

static void test_many_tcp(void **state)
{
    (void)state;
    run_many("tcp:127.0.0.1:0", UDS_STREAM, 200, 100);
}

/* ---- blocking calls, timeouts, pipelining, per socket type -------------- */

static void calls_on(const char *addr, int type)
{
    char *dir = tu_tmpdir();
    char a[256];
    snprintf(a, sizeof(a), "%s", addr ? addr : tu_path(dir, "c.sock"));
    struct srv *v = srv_start(a, type, NULL);
    uds_client *c = client_for(v, type);
    void *resp;
    size_t rl;
    assert_int_equal(uds_client_call(c, "Ehello", 6, &resp, &rl, 2000), 0);
    assert_int_equal(rl, 6);
    assert_string_equal(resp, "Ehello");
    free(resp);
    /* no time limit: waits in recv() itself */
    assert_int_equal(uds_client_call(c, "Eforever", 8, &resp, &rl, -1), 0);
    assert_string_equal(resp, "Eforever");
    free(resp);
    /* timeout: 'S' is answered after 300 ms */
    uint64_t t0 = tu_now_ms();
    assert_int_equal(uds_client_call(c, "Sslow", 5, &resp, &rl, 100), -ETIMEDOUT);
    uint64_t dt = tu_now_ms() - t0;
    assert_true(dt >= 90 && dt < 1000); /* ETIMEDOUT itself says it did not wait for the reply */
    /* the abandoned request is not waited for */
    assert_int_equal(uds_client_pending(c), 0);
    assert_int_equal(uds_client_recv(c, &resp, &rl, 1000), -ENOMSG);
    /* the late answer is skipped: the next call gets its own */
    assert_int_equal(uds_client_call(c, "Enext", 5, &resp, &rl, 2000), 0);
    assert_string_equal(resp, "Enext");
    free(resp);
    /* pipelined: 50 out, 50 back in order; dropped requests do not block */
    char req[64];
    for (int i = 0; i < 50; i++) {
        int n = snprintf(req, sizeof(req), "%c%d", i % 3 == 0 ? 'D' : 'E', i);
        assert_int_equal(uds_client_send(c, req, (size_t)n), 0);
        if (i == 10)
            assert_int_equal(uds_client_send(c, "X", 1), 0);
    }
    assert_int_equal(uds_client_pending(c), 51);
    for (int i = 0; i < 50; i++) {
        assert_int_equal(uds_client_recv(c, &resp, &rl, 2000), 0);
        int n = snprintf(req, sizeof(req), "%c%d", i % 3 == 0 ? 'D' : 'E', i);
        assert_int_equal(rl, (size_t)n);
        assert_memory_equal(resp, req, (size_t)n);
        free(resp);
    }
    /* the dropped one never answers (the stream cannot be used for calls
       any more: a dropped request is for fire-and-forget messages) */
    assert_int_equal(uds_client_recv(c, &resp, &rl, 50), -EAGAIN);
    uds_client_close(c);
    c = client_for(v, type);
    /* a spinning client gets the same answers */
    uds_client_close(c);
    {
        uds_client_opts so;
        memset(&so, 0, sizeof(so));
        so.type = type;
        so.spin_us = 200;
        assert_int_equal(uds_client_connect(&c, &v->addr, &so), 0);
        for (int i = 0; i < 20; i++) {
            assert_int_equal(uds_client_call(c, "Espin", 5, &resp, &rl, 2000), 0);
            assert_string_equal(resp, "Espin");
            free(resp);
        }
    }
    /* one-byte message, answered */
    assert_int_equal(uds_client_call(c, "E", 1, &resp, &rl, 2000), 0);
    assert_int_equal(rl, 1);
    free(resp);
    uds_client_close(c);
    srv_stop(v);
    tu_rmtree(dir);
    free(dir);
}

static void test_calls_unix(void **state) { (void)state; calls_on(NULL, UDS_STREAM); }
static void test_calls_seqpacket(void **state) { (void)state; calls_on(NULL, UDS_SEQPACKET); }
static void test_calls_tcp(void **state) { (void)state; calls_on("tcp:127.0.0.1:0", UDS_STREAM); }

/* ---- hostile and slow peers --------------------------------------------- */

static int raw_connect(struct srv *v)
{
    int fd = uds_connect(&v->addr, NULL);
    assert_true(fd >= 0);
    return fd;
}

/* Reads until EOF or error within ms; returns 1 if the connection ended. */
static int ends_within(int fd, int ms)
{
    uint64_t t0 = tu_now_ms();
    char buf[65536];
    while ((int)(tu_now_ms() - t0) < ms) {
        struct pollfd p = {fd, POLLIN, 0};
        if (poll(&p, 1, 50) <= 0)
            continue;
        ssize_t n = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);
        if (n == 0 || (n < 0 && errno != EAGAIN))
            return 1;
    }
    return 0;
}

static void good_call(struct srv *v, uds_client *c)
{
    void *resp;
    size_t rl;
    uint64_t t0 = tu_now_ms();
    assert_int_equal(uds_client_call(c, "Eok", 3, &resp, &rl, 2000), 0);
    assert_true(tu_now_ms() - t0 < 1000); /* generous: the machine is shared */
    assert_string_equal(resp, "Eok");
    free(resp);
    (void)v;
}

static void test_bad_header(void **state)
{
    (void)state;
    char *dir = tu_tmpdir();
    uds_server_opts o;
    memset(&o, 0, sizeof(o));
    o.max_msg = 1000;
    struct srv *v = srv_start(tu_path(dir, "b.sock"), UDS_STREAM, &o);
    uds_client *good = client_for(v, UDS_STREAM);
    good_call(v, good);
    int bad = raw_connect(v);
    assert_int_equal(write(bad, "\x80\0\0\1x", 5), 5); /* reserved bit */
    assert_true(ends_within(bad, 2000));
    close(bad);
    bad = raw_connect(v);
    assert_int_equal(write(bad, "\0\0\x03\xe9", 4), 4); /* 1001 > max */
    assert_true(ends_within(bad, 2000));
    close(bad);
    good_call(v, good);
    assert_true(log_has(v, "malformed length"));
    assert_true(log_has(v, "message too large"));
    uds_client_close(good);
    srv_stop(v);
    tu_rmtree(dir);
    free(dir);
}

/* n requests "B<size>" in one write: the server may drop us right after */
static void send_big_reqs(int fd, int n, int size)
{
    char *wire = malloc((size_t)n * 32), req[24];
    size_t off = 0;
    uds_framer f = {UDS_FRAME_LEN32, 0};
    for (int i = 0; i < n; i++) {
        int k = snprintf(req, sizeof(req), "B%d", size);
        off += (size_t)uds_frame_encode(&f, req, (size_t)k, wire + off, 32);
    }
    assert_int_equal(uds_write_all(fd, wire, off), (ssize_t)off);
    free(wire);
}

static void test_slow_reader(void **state)
{
    (void)state;
    char *dir = tu_tmpdir();
    uds_server_opts o;
    memset(&o, 0, sizeof(o));
    o.high_water = 64 * 1024;
    o.out_cap = 1024 * 1024;
    o.max_msg = 4 * 1024 * 1024;
    o.send_timeout_ms = 300;
    struct srv *v = srv_start(tu_path(dir, "r.sock"), UDS_STREAM, &o);
    uds_client *good = client_for(v, UDS_STREAM);
    /* 200 requests for 100 KiB each, never read: 20 MB if nothing held back */
    int slow = raw_connect(v);
    uds_set_bufsizes(slow, 0, 4096);
    send_big_reqs(slow, 200, 100 * 1024);
    /* the good client is served throughout */
    uint64_t t0 = tu_now_ms();
    int calls = 0;
    while (tu_now_ms() - t0 < 700) {
        good_call(v, good);
        calls++;
        usleep(20000);
    }
    assert_true(calls > 5);
    assert_true(ends_within(slow, 3000)); /* dropped */
    close(slow);
    /* and the hard cap: one reply bigger than out_cap drops at once */
    int greedy = raw_connect(v);
    send_big_reqs(greedy, 1, 2 * 1024 * 1024);
    assert_true(ends_within(greedy, 2000));
    close(greedy);
    good_call(v, good);
    uds_client_close(good);
    srv_stop(v);
    assert_true(v == v);
    tu_rmtree(dir);
    free(dir);
}

/* The slow reader's queue stays under out_cap (checked through stats). */
static void test_slow_reader_cap(void **state)
{
    (void)state;
    char *dir = tu_tmpdir();
    uds_server_opts o;
    memset(&o, 0, sizeof(o));
    o.high_water = 64 * 1024;
    o.out_cap = 512 * 1024;
    o.send_timeout_ms = 200;
    struct srv *v = srv_start(tu_path(dir, "q.sock"), UDS_STREAM, &o);
    int slow = raw_connect(v);
    send_big_reqs(slow, 100, 50 * 1024);
    usleep(700000); /* not reading: the stall must be seen */
    assert_true(ends_within(slow, 3000));
    close(slow);
    srv_ctl(v, 'q');
    pthread_join(v->th, NULL);
    print_message("slow reader: most queued on one connection %zu bytes (cap %zu), dropped %llu\n",
                  v->final.max_conn_queued, o.out_cap,
                  (unsigned long long)v->final.dropped);
    assert_true(v->final.max_conn_queued <= o.out_cap);
    assert_true(v->final.max_conn_queued >= o.high_water); /* it did pile up */
    assert_true(v->final.dropped >= 1);
    assert_true(log_has(v, "replies not read"));
    uds_loop_free(v->loop);
    close(v->ctl[0]);
    close(v->ctl[1]);
    free(v);
    tu_rmtree(dir);
    free(dir);
}

static void test_slowloris(void **state)
{
    (void)state;
    char *dir = tu_tmpdir();
    uds_server_opts o;
    memset(&o, 0, sizeof(o));
    o.msg_timeout_ms = 200;
    struct srv *v = srv_start(tu_path(dir, "l.sock"), UDS_STREAM, &o);
    uds_client *good = client_for(v, UDS_STREAM);
    int lazy[5];
    for (int i = 0; i < 5; i++) {
        lazy[i] = raw_connect(v);
        assert_int_equal(write(lazy[i], "\0\0", 2), 2); /* half a header */
    }
    uint64_t t0 = tu_now_ms();
    for (int i = 0; i < 5; i++) {
        good_call(v, good);
        assert_true(ends_within(lazy[i], 2000));
        close(lazy[i]);
    }
    uint64_t dt = tu_now_ms() - t0;
    assert_true(dt >= 150 && dt < 2000);
    good_call(v, good);
    assert_true(log_has(v, "no complete message within 200 ms"));
    uds_client_close(good);
    srv_stop(v);
    tu_rmtree(dir);
    free(dir);
}

static void test_conn_limits(void **state)
{
    (void)state;
    char *dir = tu_tmpdir();
    uds_server_opts o;
    memset(&o, 0, sizeof(o));
    o.max_conns = 4;
    struct srv *v = srv_start(tu_path(dir, "m.sock"), UDS_STREAM, &o);
    uds_client *c[4];
    for (int i = 0; i < 4; i++) {
        c[i] = client_for(v, UDS_STREAM);
        good_call(v, c[i]);
    }
    int extra = raw_connect(v);
    assert_true(ends_within(extra, 2000)); /* refused, not hung */
    close(extra);
    assert_true(log_has(v, "refused"));
    uds_client_close(c[0]);
    /* a slot is free once the server has seen the close: retry until then */
    int served = 0;
    for (int i = 0; i < 100 && !served; i++) {
        uds_client *again = client_for(v, UDS_STREAM);
        void *resp;
        size_t rl;
        if (uds_client_call(again, "Eok", 3, &resp, &rl, 2000) == 0) {
            served = 1;
            free(resp);
        } else {
            usleep(20000);
        }
        uds_client_close(again);
    }
    assert_true(served);
    for (int i = 1; i < 4; i++)
        uds_client_close(c[i]);
    srv_stop(v);
    /* per uid: all our connections have our uid */
    memset(&o, 0, sizeof(o));
    o.max_conns_per_uid = 2;
    v = srv_start(tu_path(dir, "u.sock"), UDS_STREAM, &o);
    c[0] = client_for(v, UDS_STREAM);
    c[1] = client_for(v, UDS_STREAM);
    good_call(v, c[0]);
    good_call(v, c[1]);
    extra = raw_connect(v);
    assert_true(ends_within(extra, 2000));
    close(extra);
    assert_true(log_has(v, "max_conns_per_uid"));
    uds_client_close(c[0]);
    uds_client_close(c[1]);
    srv_stop(v);
    tu_rmtree(dir);
    free(dir);
}

/*
 * Many small pipelined requests in one read, with every reply deferred:
 * the server pauses at max_inflight with more whole requests still in the
 * read buffer than max_msg bytes. That rest is not one oversized message;
 * it must be kept and served once replies go out (the connection used to
 * be closed with EMSGSIZE and every queued reply lost; found by fuzz_server).
 */
struct pipe_later {
    uds_req *req;
};
static void pipe_reply(uds_loop *l, void *arg)
{
    (void)l;
    struct pipe_later *d = arg;
    uds_req_reply(d->req, "y", 1);
    free(d);
}
static void pipe_handler(uds_server *s, uds_req *req, const void *msg, size_t len, void *arg)
{
    (void)s;
    (void)msg;
    (void)len;
    struct pipe_later *d = malloc(sizeof(*d));
    assert_non_null(d);
    d->req = req;
    assert_int_equal(uds_loop_defer(arg, pipe_reply, d), 0);
}
static void test_pipelined_rest_over_max_msg(void **state)
{
    (void)state;
    uds_loop *l;
    assert_int_equal(uds_loop_new(&l), 0);
    uds_server *s;
    uds_server_opts o;
    memset(&o, 0, sizeof(o));
    o.framing = UDS_FRAME_LINE;
    o.max_msg = 300;
    o.max_inflight = 8;
    assert_int_equal(uds_server_new(&s, l, &o, pipe_handler, l), 0);
    int p[2];
    assert_int_equal(uds_pair(UDS_STREAM, 0, p), 0);
    assert_int_equal(uds_server_add_conn(s, p[0]), 0);
    enum { N = 400 };
    char req[2 * N];
    for (int i = 0; i < N; i++) {
        req[2 * i] = 'x';
        req[2 * i + 1] = '\n';
    }
    assert_int_equal(send(p[1], req, sizeof(req), MSG_NOSIGNAL), (ssize_t)sizeof(req));
    assert_int_equal(shutdown(p[1], SHUT_WR), 0);
    assert_int_equal(uds_set_nonblock(p[1], 1), 0);
    char got[4 * N];
    size_t glen = 0;
    int eof = 0;
    uint64_t end = tu_now_ms() + 10000;
    while (!eof && tu_now_ms() < end) {
        uds_loop_run_once(l, 10);
        ssize_t n = recv(p[1], got + glen, sizeof(got) - glen, MSG_DONTWAIT);
        if (n > 0)
            glen += (size_t)n;
        else if (n == 0)
            eof = 1;
        else
            assert_true(errno == EAGAIN);
    }
    assert_true(eof);
    assert_int_equal(glen, 2 * N); /* N replies "y\n" */
    for (size_t i = 0; i < glen; i += 2)
        assert_memory_equal(got + i, "y\n", 2);
    close(p[1]);
    uds_server_free(s);
    uds_loop_free(l);
}

static void test_half_close(void **state)
{
    (void)state;
    char *dir = tu_tmpdir();
    struct srv *v = srv_start(tu_path(dir, "h.sock"), UDS_STREAM, NULL);
    int fd = raw_connect(v);
    uds_framer f = {UDS_FRAME_LEN32, 0};
    char wire[64];
    size_t off = 0;
    for (int i = 0; i < 3; i++)
        off += (size_t)uds_frame_encode(&f, i == 1 ? "Dxx" : "Eab", 3, wire + off,
                                        sizeof(wire) - off);
    assert_int_equal(write(fd, wire, off), (ssize_t)off);
    assert_int_equal(shutdown(fd, SHUT_WR), 0);
    /* the server answers everything, then ends the connection */
    char got[64];
    ssize_t n = uds_read_exact(fd, got, off);
    assert_int_equal(n, (ssize_t)off);
    assert_memory_equal(got, wire, off);
    assert_int_equal(uds_read_exact(fd, got, 1), 0);
    close(fd);
    srv_stop(v);
    tu_rmtree(dir);
    free(dir);
}

/* The connection layer on its own: EOF reported, shutdown after drain. */
static int eof_seen;
static char conn_got[64];
static size_t conn_got_len;
static size_t c_data(uds_conn *c, const void *d, size_t len, void *arg)
{
    (void)c;
    (void)arg;
    memcpy(conn_got + conn_got_len, d, len);
    conn_got_len += len;
    return len;
}
static void c_eof(uds_conn *c, void *arg)
{
    (void)arg;
    eof_seen = 1;
    assert_true(uds_conn_write(c, "xyz", 3) >= 0);
    assert_int_equal(uds_conn_shutdown(c), 0);
}
static int close_err = 1;
static void c_close(uds_conn *c, int err, void *arg)
{
    (void)c;
    (void)arg;
    close_err = err;
}
static const uds_conn_cbs ccbs = {.on_data = c_data, .on_eof = c_eof, .on_close = c_close};

static void free_owned(void *p, void *arg)
{
    (void)arg;
    free(p);
}

static void test_conn_eof_shutdown(void **state)
{
    (void)state;
    uds_loop *l;
    assert_int_equal(uds_loop_new(&l), 0);
    int p[2];
    assert_int_equal(uds_pair(SOCK_STREAM, 0, p), 0);
    uds_conn *c;
    assert_int_equal(uds_conn_new(&c, l, p[0], NULL, &ccbs, NULL), 0);
    char *owned = strdup("own");
    assert_int_equal(uds_conn_write_owned(c, owned, 3, free_owned, NULL), 0);
    assert_int_equal(write(p[1], "abc", 3), 3);
    shutdown(p[1], SHUT_WR);
    for (int i = 0; i < 10 && !eof_seen; i++)
        uds_loop_run_once(l, 100);
    assert_true(eof_seen);
    assert_int_equal(conn_got_len, 3);
    assert_memory_equal(conn_got, "abc", 3);
    uds_loop_run_once(l, 100);
    char buf[16];
    assert_int_equal(uds_read_exact(p[1], buf, 6), 6);
    assert_memory_equal(buf, "ownxyz", 6);
    assert_int_equal(uds_read_exact(p[1], buf, 1), 0); /* shut down */
    uds_conn_close(c);
    uds_loop_run_once(l, 0);
    assert_int_equal(close_err, 0);
    close(p[1]);
    uds_loop_free(l);
}

static void test_graceful_shutdown(void **state)
{
    (void)state;
    char *dir = tu_tmpdir();
    const char *path = tu_path(dir, "g.sock");
    struct srv *v = srv_start(path, UDS_STREAM, NULL);
    uds_client *c = client_for(v, UDS_STREAM);
    for (int i = 0; i < 10; i++)
        assert_int_equal(uds_client_send(c, i % 2 ? "Sx" : "Dy", 2), 0);
    assert_int_equal(uds_client_flush(c, 1000), 0);
    /* all 10 left in one send, so the server read them in one recv: the
       first answer (1 ms) proves they are all in, the 'S' ones in flight */
    void *resp;
    size_t rl;
    assert_int_equal(uds_client_recv(c, &resp, &rl, 3000), 0);
    assert_memory_equal(resp, "Dy", 2);
    free(resp);
    srv_ctl(v, 's');
    for (int i = 1; i < 10; i++) {
        assert_int_equal(uds_client_recv(c, &resp, &rl, 3000), 0);
        assert_memory_equal(resp, i % 2 ? "Sx" : "Dy", 2);
        free(resp);
    }
    assert_int_equal(uds_client_send(c, "Ez", 2), 0);
    int r = uds_client_recv(c, &resp, &rl, 3000);
    assert_true(r == UDS_ECLOSED || r == -EPIPE || r == -ECONNRESET);
    struct stat st;
    for (int i = 0; i < 100 && !v->shut_done; i++)
        usleep(10000);
    assert_true(v->shut_done);
    assert_int_equal(stat(path, &st), -1); /* removed: it was ours */
    assert_int_equal(v->final.conns, 0);
    uds_client_close(c);
    srv_stop(v);
    tu_rmtree(dir);
    free(dir);
}

/* ---- memory per idle connection ----------------------------------------- */

static void nop_handler(uds_server *s, uds_req *req, const void *m, size_t l, void *a)
{
    (void)s; (void)m; (void)l; (void)a;
    uds_req_reply(req, "", 0);
}

/* Resident set size in KiB (/proc/self/statm, pages). */
static long rss_kib(void)
{
    long size = 0, res = 0;
    FILE *f = fopen("/proc/self/statm", "r");
    if (f) {
        if (fscanf(f, "%ld %ld", &size, &res) != 2)
            res = 0;
        fclose(f);
    }
    return res * (sysconf(_SC_PAGESIZE) / 1024);
}

static void dummy_io(uds_loop *l, int fd, unsigned ev, void *arg)
{
    (void)l; (void)fd; (void)ev; (void)arg;
}

static void test_idle_memory(void **state)
{
    (void)state;
    raise_nofile();
    int n = 10000;
    if (2 * n + 64 > nofile())
        n = (int)(nofile() - 64) / 2;
    uds_loop *l;
    uds_server *s;
    assert_int_equal(uds_loop_new(&l), 0);
    assert_int_equal(uds_server_new(&s, l, NULL, nop_handler, NULL), 0);
    int *peers = calloc((size_t)n, sizeof(int));
    int *mine = calloc((size_t)n, sizeof(int));
    for (int i = 0; i < n; i++) {
        int p[2];
        assert_int_equal(uds_pair(SOCK_STREAM, 0, p), 0);
        mine[i] = p[0];
        peers[i] = p[1];
    }
    /* warm the loop's fd table so only per-connection memory is counted */
    assert_int_equal(uds_loop_watch(l, peers[n - 1], 0, dummy_io, NULL), 0);
    assert_int_equal(uds_loop_unwatch(l, peers[n - 1]), 0);
    uds_loop_run_once(l, 0);
    struct mallinfo2 before = mallinfo2();
    long rss0 = rss_kib();
    for (int i = 0; i < n; i++)
        assert_int_equal(uds_server_add_conn(s, mine[i]), 0);
    /* one request/reply on each, so they have been through the buffers */
    uds_framer f = {UDS_FRAME_LEN32, 0};
    char w[8];
    for (int i = 0; i < n; i++) {
        ssize_t k = uds_frame_encode(&f, "x", 1, w, sizeof(w));
        assert_int_equal(write(peers[i], w, (size_t)k), k);
    }
    uds_server_stats st;
    for (int i = 0; i < 1000; i++) {
        uds_loop_run_once(l, 10);
        uds_server_stats_get(s, &st);
        if (st.replies == (uint64_t)n && st.queued == 0)
            break;
    }
    for (int i = 0; i < n; i++) {
        char r[4];
        assert_int_equal(uds_read_exact(peers[i], r, 4), 4);
    }
    struct mallinfo2 after = mallinfo2();
    long rss1 = rss_kib();
    size_t used = after.uordblks > before.uordblks ? after.uordblks - before.uordblks : 0;
    uds_server_stats_get(s, &st);
    assert_int_equal(st.conns, (unsigned)n);
    assert_int_equal(st.queued, 0);
    print_message("idle connections: %d, heap in use +%zu bytes = %zu bytes per connection "
                  "(RSS +%ld KiB = %ld bytes per connection)\n",
                  n, used, used / (size_t)n, rss1 - rss0, (rss1 - rss0) * 1024 / n);
    /* mallinfo2 counts glibc's heap; under ASan the count is 0 and the
       figure is not meaningful */
    if (used > 0)
        assert_true(used / (size_t)n < 512);
    uds_server_free(s);
    uds_loop_free(l);
    for (int i = 0; i < n; i++)
        close(peers[i]);
    free(peers);
    free(mine);
}


/* ---- out of fds ---------------------------------------------------------- */

static int max_open_fd(void)
{
    int m = 0;
    for (int fd = 0; fd < 65536 && fd < nofile(); fd++)
        if (fcntl(fd, F_GETFD) >= 0)
            m = fd;
    return m;
}

/* A child that keeps trying calls until `want` succeeded (or 15 s). */
static void emfile_child(const uds_addr *a, int go, int res, int want)
{
    char c;
    if (read(go, &c, 1) != 1)
        _exit(2);
    int ok = 0;
    uint64_t t0 = tu_now_ms();
    while (ok < want && tu_now_ms() - t0 < 15000) {
        uds_client *cl;
        uds_client_opts o;
        memset(&o, 0, sizeof(o));
        o.connect_timeout_ms = 2000;
        if (uds_client_connect(&cl, a, &o) < 0) {
            usleep(10000);
            continue;
        }
        void *resp;
        size_t rl;
        if (uds_client_call(cl, "Eok", 3, &resp, &rl, 3000) == 0) {
            ok++;
            free(resp);
        }
        uds_client_close(cl);
    }
    if (write(res, &ok, sizeof(ok)) != (ssize_t)sizeof(ok))
        _exit(3);
    _exit(0);
}

static double cpu_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec * 1000.0 + (double)ts.tv_nsec / 1e6;
}

static void test_emfile(void **state)
{
    (void)state;
    char *dir = tu_tmpdir();
    char path[256];
    snprintf(path, sizeof(path), "%s", tu_path(dir, "f.sock"));
    uds_addr a;
    assert_int_equal(uds_addr_parse(&a, path), 0);
    int go[2], res[2];
    assert_int_equal(pipe2(go, O_CLOEXEC), 0);
    assert_int_equal(pipe2(res, O_CLOEXEC), 0);
    /* fork before the server thread exists: a child forked from a threaded
       process may inherit a locked allocator (seen with ASan) */
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0)
        emfile_child(&a, go[0], res[1], 10);
    struct srv *v = srv_start(path, UDS_STREAM, NULL);
    struct rlimit old, low;
    getrlimit(RLIMIT_NOFILE, &old);
    /* fill the holes below the highest open fd, then cap just above it:
       no fd is left for accept */
    int top = max_open_fd();
    int *fill = calloc((size_t)top + 1, sizeof(int)), nfill = 0;
    for (;;) {
        int fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
        assert_true(fd >= 0);
        fill[nfill++] = fd;
        if (fd >= top)
            break;
    }
    low = old;
    low.rlim_cur = (rlim_t)max_open_fd() + 1;
    assert_int_equal(setrlimit(RLIMIT_NOFILE, &low), 0);
    assert_int_equal(write(go[1], "g", 1), 1);
    usleep(100000);
    double c0 = cpu_ms();
    uint64_t t0 = tu_now_ms();
    usleep(600000);
    double used = cpu_ms() - c0;
    uint64_t wall = tu_now_ms() - t0;
    assert_int_equal(setrlimit(RLIMIT_NOFILE, &old), 0);
    for (int i = 0; i < nfill; i++)
        close(fill[i]);
    free(fill);
    print_message("EMFILE: %.1f ms CPU in %llu ms while out of fds\n", used,
                  (unsigned long long)wall);
    assert_true(used < (double)wall * 0.25); /* a spinning loop uses ~100% */
    int ok = 0;
    assert_int_equal(read(res[0], &ok, sizeof(ok)), (ssize_t)sizeof(ok));
    int st;
    waitpid(pid, &st, 0);
    assert_int_equal(ok, 10); /* served again once fds are back */
    assert_true(log_has(v, "pausing accepts"));
    close(go[0]);
    close(go[1]);
    close(res[0]);
    close(res[1]);
    srv_stop(v);
    tu_rmtree(dir);
    free(dir);
}

/* ---- peers killed mid-message -------------------------------------------- */

static void test_peer_killed(void **state)
{
    (void)state;
    char *dir = tu_tmpdir();
    struct srv *v = srv_start(tu_path(dir, "k.sock"), UDS_STREAM, NULL);
    uds_client *good = client_for(v, UDS_STREAM);
    good_call(v, good);
    int fds0 = tu_count_fds();
    srand(12345);
    for (int i = 0; i < 100; i++) {
        fflush(NULL);
        pid_t pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
            /* forked from a threaded process: raw syscalls only, no malloc */
            int fd = socket(AF_UNIX, SOCK_STREAM, 0);
            if (fd < 0 || connect(fd, &v->addr.u.sa, v->addr.len) < 0)
                _exit(1);
            /* a stream of 3000-byte messages, written in odd pieces */
            char msg[3004];
            uds_framer f = {UDS_FRAME_LEN32, 0};
            memset(msg, 'E', sizeof(msg));
            uds_frame_header(&f, 3000, (uint8_t *)msg);
            for (;;)
                for (size_t off = 0; off < sizeof(msg); off += 97) {
                    size_t n = sizeof(msg) - off < 97 ? sizeof(msg) - off : 97;
                    if (send(fd, msg + off, n, MSG_NOSIGNAL) < 0)
                        _exit(0);
                }
        }
        usleep((useconds_t)(rand() % 3000));
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
    }
    good_call(v, good);
    /* the server sees every EOF; fds come back to where they were */
    int fds = -1;
    for (int i = 0; i < 300; i++) {
        fds = tu_count_fds();
        if (fds == fds0)
            break;
        usleep(10000);
    }
    assert_int_equal(fds, fds0);
    uds_client_close(good);
    srv_stop(v);
    tu_rmtree(dir);
    free(dir);
}

/* ---- the client driven by a loop (server on the same loop) -------------- */

struct async_st {
    uds_client *c;
    int got, bad;
};

static void async_io(uds_loop *l, int fd, unsigned ev, void *arg)
{
    (void)fd;
    struct async_st *a = arg;
    if (ev & UDS_EV_WRITE) {
        if (uds_client_flush(a->c, 0) == 0)
            uds_loop_watch(l, uds_client_fd(a->c), UDS_EV_READ, async_io, a);
    }
    void *resp;
    size_t rl;
    int r;
    while ((r = uds_client_recv(a->c, &resp, &rl, 0)) == 0) {
        char want[32];
        int n = snprintf(want, sizeof(want), "E%d", a->got);
        if (rl != (size_t)n || memcmp(resp, want, rl) != 0)
            a->bad++;
        a->got++;
        free(resp);
    }
    if (r != -EAGAIN) {
        uds_loop_unwatch(l, uds_client_fd(a->c));
        uds_loop_stop(l);
    }
}

static void test_client_on_loop(void **state)
{
    (void)state;
    uds_loop *l;
    uds_server *s;
    assert_int_equal(uds_loop_new(&l), 0);
    assert_int_equal(uds_server_new(&s, l, NULL, handler, NULL), 0);
    int p[2];
    assert_int_equal(uds_pair(SOCK_STREAM, 0, p), 0);
    assert_int_equal(uds_server_add_conn(s, p[0]), 0);
    struct async_st a = {NULL, 0, 0};
    assert_int_equal(uds_client_from_fd(&a.c, p[1], NULL), 0);
    for (int i = 0; i < 2000; i++) {
        char req[32];
        int n = snprintf(req, sizeof(req), "E%d", i);
        assert_int_equal(uds_client_send(a.c, req, (size_t)n), 0);
    }
    int r = uds_client_flush(a.c, 0);
    assert_true(r == 0 || r == -EAGAIN);
    assert_int_equal(uds_loop_watch(l, p[1], UDS_EV_READ | (r ? UDS_EV_WRITE : 0),
                                    async_io, &a), 0);
    uint64_t t0 = tu_now_ms();
    while (a.got < 2000 && tu_now_ms() - t0 < 5000)
        assert_int_equal(uds_loop_run_once(l, 100), 0);
    assert_int_equal(a.got, 2000);
    assert_int_equal(a.bad, 0);
    uds_loop_unwatch(l, p[1]);
    uds_client_close(a.c);
    uds_server_free(s);
    uds_loop_free(l);
}


/* ---- SIGTERM: drain in-flight requests, remove the file only if ours ------ */

static void term_done(uds_server *s, void *arg)
{
    uds_server_free(s);
    uds_loop_stop(arg);
}

static void on_term(uds_loop *l, int signo, void *arg)
{
    (void)signo;
    uds_server_shutdown(arg, 2000, term_done, l);
}

/* Child: a single-threaded server; adopts lfd, or listens on path. */
static void term_child(int lfd, const char *path, int ready)
{
    struct srv v;
    memset(&v, 0, sizeof(v));
    pthread_mutex_init(&v.mu, NULL);
    if (uds_loop_new(&v.loop) < 0)
        _exit(10);
    if (uds_server_new(&v.s, v.loop, NULL, handler, &v) < 0)
        _exit(11);
    if (lfd >= 0) {
        if (uds_server_adopt(v.s, lfd) < 0)
            _exit(12);
    } else {
        uds_addr a;
        if (uds_addr_parse(&a, path) < 0 || uds_server_listen(v.s, &a, NULL) < 0)
            _exit(13);
    }
    if (uds_loop_signal(v.loop, SIGTERM, on_term, v.s) < 0)
        _exit(14);
    if (write(ready, "r", 1) != 1)
        _exit(15);
    uds_loop_run(v.loop);
    uds_loop_free(v.loop);
    _exit(0);
}

static void sigterm_case(int adopt)
{
    char *dir = tu_tmpdir();
    char path[256];
    snprintf(path, sizeof(path), "%s", tu_path(dir, "t.sock"));
    uds_addr a;
    assert_int_equal(uds_addr_parse(&a, path), 0);
    uds_listener l;
    memset(&l, 0, sizeof(l));
    l.fd = -1;
    if (adopt)
        assert_int_equal(uds_listen(&l, &a, NULL), 0);
    int rd[2];
    assert_int_equal(pipe2(rd, O_CLOEXEC), 0);
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0)
        term_child(l.fd, path, rd[1]);
    if (adopt) {
        /* the child has it; the file is not ours to remove: close our copy
           of the socket and of its directory fd, unlink nothing */
        close(l.fd);
        close(l.dirfd);
    }
    char c;
    assert_int_equal(read(rd[0], &c, 1), 1);
    uds_client *cl;
    assert_int_equal(uds_client_connect(&cl, &a, NULL), 0);
    for (int i = 0; i < 10; i++)
        assert_int_equal(uds_client_send(cl, i % 2 ? "Sslow" : "Dfast", 5), 0);
    assert_int_equal(uds_client_flush(cl, 1000), 0);
    /* one send, one recv on the server: the first answer (1 ms) says all
       10 are in; the 'S' ones (300 ms) are still in flight */
    void *resp;
    size_t rl;
    assert_int_equal(uds_client_recv(cl, &resp, &rl, 3000), 0);
    assert_memory_equal(resp, "Dfast", 5);
    free(resp);
    assert_int_equal(kill(pid, SIGTERM), 0);
    for (int i = 1; i < 10; i++) {
        assert_int_equal(uds_client_recv(cl, &resp, &rl, 3000), 0);
        assert_memory_equal(resp, i % 2 ? "Sslow" : "Dfast", 5);
        free(resp);
    }
    int st;
    assert_int_equal(waitpid(pid, &st, 0), pid);
    assert_true(WIFEXITED(st));
    assert_int_equal(WEXITSTATUS(st), 0);
    struct stat sb;
    if (adopt)
        assert_int_equal(stat(path, &sb), 0); /* inherited: left in place */
    else
        assert_int_equal(stat(path, &sb), -1); /* ours: removed */
    uds_client_close(cl);
    close(rd[0]);
    close(rd[1]);
    tu_rmtree(dir);
    free(dir);
}

static void test_sigterm_drains(void **state) { (void)state; sigterm_case(0); }
static void test_sigterm_adopted(void **state) { (void)state; sigterm_case(1); }


/* ---- datagrams: one datagram = one request ------------------------------- */

static void dgram_on(const char *addr)
{
    char *dir = tu_tmpdir();
    char a[256];
    snprintf(a, sizeof(a), "%s", addr ? addr : tu_path(dir, "d.sock"));
    uds_server_opts o;
    memset(&o, 0, sizeof(o));
    o.max_msg = 2000;
    struct srv *v = srv_start(a, UDS_DGRAM, &o);
    uds_client *c = client_for(v, UDS_DGRAM);
    void *resp;
    size_t rl;
    assert_int_equal(uds_client_call(c, "Ehello", 6, &resp, &rl, 2000), 0);
    assert_string_equal(resp, "Ehello");
    free(resp);
    /* answered later through the request handle */
    assert_int_equal(uds_client_call(c, "Dlater", 6, &resp, &rl, 2000), 0);
    assert_string_equal(resp, "Dlater");
    free(resp);
    /* an empty datagram is a message too */
    assert_int_equal(uds_client_call(c, "", 0, &resp, &rl, 2000), 0);
    assert_int_equal(rl, 0);
    free(resp);
    char req[64];
    for (int i = 0; i < 30; i++) {
        int n = snprintf(req, sizeof(req), "E%d", i);
        assert_int_equal(uds_client_send(c, req, (size_t)n), 0);
    }
    for (int i = 0; i < 30; i++) {
        assert_int_equal(uds_client_recv(c, &resp, &rl, 2000), 0);
        int n = snprintf(req, sizeof(req), "E%d", i);
        assert_int_equal(rl, (size_t)n);
        assert_memory_equal(resp, req, (size_t)n);
        free(resp);
    }
    /* too large: dropped with a log line, the server goes on */
    char big[3000];
    memset(big, 'E', sizeof(big));
    assert_int_equal(uds_send(uds_client_fd(c), big, sizeof(big)), (ssize_t)sizeof(big));
    assert_int_equal(uds_client_call(c, "Eafter", 6, &resp, &rl, 2000), 0);
    assert_string_equal(resp, "Eafter");
    free(resp);
    assert_true(log_has(v, "datagram over 2000 bytes dropped"));
    uds_client_close(c);
    srv_stop(v);
    tu_rmtree(dir);
    free(dir);
}

static void test_dgram_unix(void **state) { (void)state; dgram_on(NULL); }
static void test_dgram_udp(void **state) { (void)state; dgram_on("udp:127.0.0.1:0"); }


static int dg_done;
static void dg_done_cb(uds_server *s, void *arg)
{
    (void)s;
    (void)arg;
    dg_done = 1;
}

/* Shutdown waits for datagram replies; free with requests pending is safe. */
static void test_dgram_shutdown(void **state)
{
    (void)state;
    char *dir = tu_tmpdir();
    const char *path = tu_path(dir, "z.sock");
    for (int variant = 0; variant < 2; variant++) {
        struct srv v;
        memset(&v, 0, sizeof(v));
        pthread_mutex_init(&v.mu, NULL);
        assert_int_equal(uds_loop_new(&v.loop), 0);
        assert_int_equal(uds_server_new(&v.s, v.loop, NULL, handler, &v), 0);
        uds_addr a;
        assert_int_equal(uds_addr_parse(&a, path), 0);
        uds_listen_opts lo;
        memset(&lo, 0, sizeof(lo));
        lo.type = UDS_DGRAM;
        assert_int_equal(uds_server_listen(v.s, &a, &lo), 0);
        uds_client *c;
        uds_client_opts co;
        memset(&co, 0, sizeof(co));
        co.type = UDS_DGRAM;
        assert_int_equal(uds_client_connect(&c, &a, &co), 0);
        assert_int_equal(uds_client_send(c, "Sslow", 5), 0);
        assert_int_equal(uds_client_flush(c, 1000), 0);
        uds_server_stats st;
        do {
            uds_loop_run_once(v.loop, 100);
            uds_server_stats_get(v.s, &st);
        } while (st.requests < 1);
        dg_done = 0;
        if (variant == 0) {
            assert_int_equal(uds_server_shutdown(v.s, 2000, dg_done_cb, NULL), 0);
            assert_int_equal(dg_done, 0); /* a reply is still to go out */
            uint64_t t0 = tu_now_ms();
            while (!dg_done && tu_now_ms() - t0 < 3000)
                uds_loop_run_once(v.loop, 100);
            assert_int_equal(dg_done, 1);
            void *resp;
            size_t rl;
            assert_int_equal(uds_client_recv(c, &resp, &rl, 1000), 0);
            assert_string_equal(resp, "Sslow");
            free(resp);
            uds_server_free(v.s);
            struct stat sb;
            assert_int_equal(stat(path, &sb), -1);
        } else {
            uds_server_free(v.s); /* the pending reply is discarded later */
            uint64_t t0 = tu_now_ms();
            while (tu_now_ms() - t0 < 400)
                uds_loop_run_once(v.loop, 50);
        }
        uds_client_close(c);
        uds_loop_free(v.loop);
        pthread_mutex_destroy(&v.mu);
    }
    tu_rmtree(dir);
    free(dir);
}


static void test_idle_timeout(void **state)
{
    (void)state;
    char *dir = tu_tmpdir();
    uds_server_opts o;
    memset(&o, 0, sizeof(o));
    o.idle_timeout_ms = 150;
    struct srv *v = srv_start(tu_path(dir, "i.sock"), UDS_STREAM, &o);
    int idle = raw_connect(v);
    uds_client *busy = client_for(v, UDS_STREAM);
    uint64_t t0 = tu_now_ms();
    /* a request in flight longer than the idle timeout (300 ms) is not idle */
    void *resp;
    size_t rl;
    assert_int_equal(uds_client_call(busy, "Sbusy", 5, &resp, &rl, 3000), 0);
    assert_string_equal(resp, "Sbusy");
    free(resp);
    assert_true(ends_within(idle, 3000)); /* the silent one is closed */
    assert_true(tu_now_ms() - t0 >= 140);
    close(idle);
    assert_true(log_has(v, "idle for 150 ms"));
    uds_client_close(busy);
    srv_stop(v);
    tu_rmtree(dir);
    free(dir);
}


/* Backpressure on a bare connection: pause signal, drain callback, cap. */
static int drained, bp_close_err = 1;
static size_t bp_data(uds_conn *c, const void *d, size_t len, void *arg)
{
    (void)c; (void)d; (void)arg;
    return len;
}
static void bp_drain(uds_conn *c, void *arg)
{
    (void)c; (void)arg;
    drained++;
}
static void bp_close(uds_conn *c, int err, void *arg)
{
    (void)c; (void)arg;
    bp_close_err = err;
}
static const uds_conn_cbs bpcbs = {.on_data = bp_data, .on_drain = bp_drain, .on_close = bp_close};

static void test_conn_backpressure(void **state)
{
    (void)state;
    uds_loop *l;
    assert_int_equal(uds_loop_new(&l), 0);
    int p[2];
    assert_int_equal(uds_pair(SOCK_STREAM, 0, p), 0);
    uds_conn_opts o;
    memset(&o, 0, sizeof(o));
    o.high_water = 64 * 1024;
    o.out_cap = 1024 * 1024;
    uds_conn *c;
    assert_int_equal(uds_conn_new(&c, l, p[0], &o, &bpcbs, NULL), 0);
    static char chunk[16384];
    memset(chunk, 'q', sizeof(chunk));
    /* nobody reads: the kernel fills up, then the queue passes high water */
    int r = 0, n = 0;
    while (r == 0 && n < 1000) {
        r = uds_conn_write(c, chunk, sizeof(chunk));
        n++;
        uds_loop_run_once(l, 0);
    }
    assert_int_equal(r, 1);
    assert_true(uds_conn_queued(c) > o.high_water);
    assert_int_equal(drained, 0);
    /* the peer reads everything: on_drain once the queue is low again */
    uds_set_nonblock(p[1], 1);
    size_t total = (size_t)n * sizeof(chunk), got = 0;
    char buf[65536];
    for (int i = 0; i < 2000 && got < total; i++) {
        uds_loop_run_once(l, 1);
        ssize_t k;
        while ((k = uds_read_some(p[1], buf, sizeof(buf))) > 0)
            got += (size_t)k;
    }
    assert_int_equal(got, total);
    assert_int_equal(drained, 1);
    assert_int_equal(uds_conn_queued(c), 0);
    /* the hard cap: queueing past out_cap drops the connection */
    static char big[512 * 1024];
    for (int i = 0; i < 2; i++)
        assert_true(uds_conn_write(c, big, sizeof(big)) >= 0);
    assert_int_equal(uds_conn_write(c, big, sizeof(big)), -ENOBUFS);
    assert_int_equal(uds_conn_write(c, "x", 1), UDS_ECLOSED);
    uds_loop_run_once(l, 0);
    assert_int_equal(bp_close_err, -ENOBUFS);
    close(p[1]);
    uds_loop_free(l);
}


/* Newline framing end to end: server and client in LINE mode, raw peers. */
static void test_line_mode(void **state)
{
    (void)state;
    char *dir = tu_tmpdir();
    uds_server_opts o;
    memset(&o, 0, sizeof(o));
    o.framing = UDS_FRAME_LINE;
    o.max_msg = 100;
    struct srv *v = srv_start(tu_path(dir, "n.sock"), UDS_STREAM, &o);
    uds_client *c;
    uds_client_opts co;
    memset(&co, 0, sizeof(co));
    co.framing = UDS_FRAME_LINE;
    assert_int_equal(uds_client_connect(&c, &v->addr, &co), 0);
    void *resp;
    size_t rl;
    assert_int_equal(uds_client_call(c, "Ehello", 6, &resp, &rl, 2000), 0);
    assert_string_equal(resp, "Ehello");
    free(resp);
    assert_int_equal(uds_client_send(c, "bad\nline", 8), -EINVAL);
    /* a raw peer: CRLF accepted, replies end in LF, in order */
    int fd = raw_connect(v);
    const char *in = "Ea\r\nDb\nEc\n";
    assert_int_equal(uds_write_all(fd, in, strlen(in)), (ssize_t)strlen(in));
    char out[16];
    assert_int_equal(uds_read_exact(fd, out, 9), 9);
    assert_memory_equal(out, "Ea\nDb\nEc\n", 9);
    /* a line over the maximum: disconnected */
    char longl[300];
    memset(longl, 'E', sizeof(longl));
    assert_int_equal(uds_write_all(fd, longl, sizeof(longl)), (ssize_t)sizeof(longl));
    assert_true(ends_within(fd, 2000));
    close(fd);
    uds_client_close(c);
    srv_stop(v);
    tu_rmtree(dir);
    free(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_conn_eof_shutdown),
        cmocka_unit_test(test_conn_backpressure),
        cmocka_unit_test(test_calls_unix),
        cmocka_unit_test(test_calls_seqpacket),
        cmocka_unit_test(test_calls_tcp),
        cmocka_unit_test(test_dgram_unix),
        cmocka_unit_test(test_dgram_udp),
        cmocka_unit_test(test_dgram_shutdown),
        cmocka_unit_test(test_line_mode),
        cmocka_unit_test(test_bad_header),
        cmocka_unit_test(test_half_close),
        cmocka_unit_test(test_pipelined_rest_over_max_msg),
        cmocka_unit_test(test_slowloris),
        cmocka_unit_test(test_idle_timeout),
        cmocka_unit_test(test_conn_limits),
        cmocka_unit_test(test_slow_reader),
        cmocka_unit_test(test_slow_reader_cap),
        cmocka_unit_test(test_graceful_shutdown),
        cmocka_unit_test(test_idle_memory),
        cmocka_unit_test(test_emfile),
        cmocka_unit_test(test_sigterm_drains),
        cmocka_unit_test(test_sigterm_adopted),
        cmocka_unit_test(test_peer_killed),
        cmocka_unit_test(test_client_on_loop),
        cmocka_unit_test(test_many_seqpacket),
        cmocka_unit_test(test_many_tcp),
        cmocka_unit_test(test_many_unix_stream),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
