/*
 * bench_lib.c — `udsock bench rr --impl lib`: request/response measured
 * through the library's own server (uds_server on a uds_loop) and client
 * (uds_client), i.e. what an application built on libudsock gets, framing
 * (4-byte length header), buffering and request bookkeeping included.
 *
 * The server echoes every request. --spin is applied on both ends: the
 * client through uds_client_opts.spin_us, the server by polling its loop
 * with uds_loop_run_once(loop, 0) for up to the spin time after the last
 * request before blocking in epoll_wait.
 */
#include "bench.h"
#include "service.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

static void echo_cb(uds_server *s, uds_req *req, const void *msg, size_t len, void *arg)
{
    (void)s;
    (void)arg;
    (void)uds_req_reply(req, msg, len);
}

typedef struct lib_srv {
    cli_svc svc;
    uds_server *srv;
    uds_acceptor *acc;
    const bench_srv_opts *o;
    int stopping;
} lib_srv;

/* Judged by our acceptor (access rules, loopback), counted by the server's
   own limits (uds_server_add_conn): our slot is given back at once. */
static void lib_accept(uds_acceptor *a, int fd, const uds_peer *p, void *arg)
{
    lib_srv *ls = arg;
    if (uds_server_add_conn(ls->srv, fd) < 0)
        close(fd);
    uds_acceptor_release(a, p->cred.uid);
}

static int lib_admit(uds_acceptor *a, int fd, const uds_peer *p, const char **why, void *arg)
{
    (void)a;
    (void)fd;
    lib_srv *ls = arg;
    if (p->is_unix || ls->o->allow_remote || bench_is_loopback(&p->addr.u.sa))
        return 0;
    *why = "not on the loopback (--allow-remote)";
    return -EPERM;
}

static void lib_stop(cli_svc *svc, int signo, void *arg)
{
    (void)signo;
    lib_srv *ls = arg;
    ls->stopping = 1;
    uds_acceptor_close(ls->acc);
    uds_loop_stop(svc->loop);
}

/*
 * The library's echo server, bounded: requests up to max_msg, at most
 * max_conns connections, replies queued per connection up to
 * BENCH_LIB_OUT_CAP (unless private: fork mode), and the server's own
 * timeouts for silent, half-sent and non-reading peers.
 */
int bench_lib_serve(uds_listener *l, const bench_srv_opts *o, size_t max_msg,
                    unsigned max_conns)
{
    lib_srv ls;
    memset(&ls, 0, sizeof(ls));
    ls.o = o;
    cli_svc_init(&ls.svc, o->name ? o->name : "bench", lib_stop, &ls);
    uds_loop *loop = ls.svc.loop;
    uds_server_opts so;
    memset(&so, 0, sizeof(so));
    so.max_msg = max_msg;
    so.max_conns = max_conns;
    so.max_conns_per_uid = max_conns / 2; /* room for another user */
    if (!o->private_addr)
        so.out_cap = BENCH_LIB_OUT_CAP > 2 * max_msg ? BENCH_LIB_OUT_CAP : 2 * max_msg + 65536;
    so.idle_timeout_ms = BENCH_IDLE_MS;
    so.msg_timeout_ms = BENCH_HELLO_MS;
    so.send_timeout_ms = BENCH_IDLE_MS;
    so.log = cli_svc_log;
    so.log_arg = &ls.svc;
    int r = uds_server_new(&ls.srv, loop, &so, echo_cb, NULL);
    if (r == 0) {
        uds_acceptor_opts ao;
        memset(&ao, 0, sizeof(ao));
        ao.access = l->addr.kind == UDS_ADDR_TCP ? NULL : o->access;
        ao.admit = lib_admit;
        ao.admit_arg = &ls;
        ao.log = cli_svc_log;
        ao.log_arg = &ls.svc;
        r = uds_acceptor_new(&ls.acc, loop, &ao, lib_accept, &ls);
    }
    if (r == 0)
        r = uds_acceptor_add(ls.acc, l);
    if (r < 0)
        uds_listener_close(l);
    uint64_t spin_ns = (uint64_t)(o->spin_us > 0 ? o->spin_us : 0) * 1000u;
    while (r == 0 && !ls.stopping) {
        if (spin_ns) {
            uds_server_stats st;
            uds_server_stats_get(ls.srv, &st);
            uint64_t seen = st.requests, t0 = bench_now_ns();
            while (!ls.stopping && bench_now_ns() - t0 < spin_ns) {
                int k = uds_loop_run_once(loop, 0);
                if (k < 0) {
                    r = k;
                    break;
                }
                uds_server_stats_get(ls.srv, &st);
                if (st.requests != seen) { /* progress: the spin window restarts */
                    seen = st.requests;
                    t0 = bench_now_ns();
                }
            }
        }
        if (r == 0 && !ls.stopping)
            r = uds_loop_run_once(loop, -1);
        if (r > 0)
            r = 0;
    }
    uds_acceptor_free(ls.acc);
    uds_server_free(ls.srv);
    cli_svc_free(&ls.svc);
    return r;
}

typedef struct lib_cli {
    uds_client *c;
    uint64_t *ts;
    unsigned head, inflight;
    int want_out;
} lib_cli;

/* Queues requests up to the depth, then sends what the socket takes. */
static int lib_fill(lib_cli *lc, const bench_rr_params *p, const void *req, int issue)
{
    uint64_t now = bench_now_ns();
    while (issue && lc->inflight < p->depth) {
        int r = uds_client_send(lc->c, req, p->size);
        if (r < 0)
            return r;
        lc->ts[(lc->head + lc->inflight) % p->depth] = now;
        lc->inflight++;
    }
    return 0;
}

void bench_lib_rr(const uds_addr *a, int type, const bench_rr_params *p, bench_row *row)
{
    unsigned n = p->clients ? p->clients : 1;
    lib_cli *cs = calloc(n, sizeof(*cs));
    bench_hist *hist = malloc(sizeof(*hist));
    char *req = calloc(1, p->size ? p->size : 1);
    int ep = epoll_create1(EPOLL_CLOEXEC);
    unsigned opened = 0;
    if (!cs || !hist || !req || ep < 0) {
        snprintf(row->note, sizeof(row->note), "setup: out of memory");
        goto out;
    }
    bench_hist_init(hist);
    uds_client_opts co;
    memset(&co, 0, sizeof(co));
    co.type = type;
    co.connect_timeout_ms = 10000;
    co.max_msg = p->size > UDS_FRAME_DEFAULT_MAX ? p->size : 0;
    co.spin_us = (unsigned)(p->spin_ns / 1000u);
    for (; opened < n; opened++) {
        lib_cli *lc = &cs[opened];
        int r = uds_client_connect(&lc->c, a, &co);
        if (r < 0) {
            snprintf(row->note, sizeof(row->note), "connect: %s", uds_strerror(r));
            goto out;
        }
        lc->ts = calloc(p->depth, sizeof(uint64_t));
        if (!lc->ts) {
            uds_client_close(lc->c);
            goto out;
        }
        if (n > 1) {
            struct epoll_event ev = {.events = EPOLLIN, .data.u64 = opened};
            epoll_ctl(ep, EPOLL_CTL_ADD, uds_client_fd(lc->c), &ev);
        }
    }
    uint64_t t0 = bench_now_ns(), now = t0, tstart = t0, stop_at = 0, ops = 0, warm = p->warm;
    uint64_t inflight = 0;
    int issue = 1, err = 0;
    for (unsigned i = 0; i < n && !err; i++) {
        err = lib_fill(&cs[i], p, req, 1);
        if (!err) {
            inflight += cs[i].inflight;
            int f = uds_client_flush(cs[i].c, 0);
            if (f < 0 && f != -EAGAIN)
                err = f;
        }
    }
    struct epoll_event evs[256];
    while (!err && inflight > 0) {
        int k = 1;
        if (n > 1) {
            k = epoll_wait(ep, evs, 256, 10000);
            if (k <= 0) {
                if (k < 0 && errno == EINTR)
                    continue;
                err = k == 0 ? -ETIMEDOUT : -errno;
                break;
            }
        } else {
            evs[0].data.u64 = 0;
            evs[0].events = EPOLLIN;
        }
        for (int j = 0; j < k && !err; j++) {
            lib_cli *lc = &cs[evs[j].data.u64];
            if (evs[j].events & EPOLLIN) {
                /* take every response that has arrived (one client: block,
                   spinning first, for the first one), then top the
                   pipeline up: the new requests leave in one write */
                int got_any = 0;
                for (;;) {
                    void *resp;
                    size_t rlen;
                    if (!lc->inflight)
                        break;
                    int r = uds_client_recv(lc->c, &resp, &rlen, n == 1 && !got_any ? 10000 : 0);
                    if (r == -EAGAIN && got_any)
                        break;
                    if (r == -EAGAIN && n > 1)
                        break;
                    if (r < 0) {
                        err = r;
                        break;
                    }
                    got_any = 1;
                    free(resp);
                    now = bench_now_ns();
                    uint64_t sent_at = lc->ts[lc->head];
                    lc->head = (lc->head + 1) % p->depth;
                    lc->inflight--;
                    inflight--;
                    if (rlen != p->size) {
                        err = -EPROTO;
                        break;
                    }
                    if (warm) {
                        if (--warm == 0)
                            tstart = now;
                        continue;
                    }
                    bench_hist_add(hist, now - sent_at);
                    ops++;
                    if (issue && ((p->count && ops >= p->count) ||
                                  (p->duration > 0 && (double)(now - tstart) >= p->duration * 1e9))) {
                        issue = 0;
                        stop_at = now;
                    }
                }
                unsigned before = lc->inflight;
                if (!err && (err = lib_fill(lc, p, req, issue)) == 0)
                    inflight += lc->inflight - before;
            }
            if (!err) {
                int f = uds_client_flush(lc->c, 0);
                if (f < 0 && f != -EAGAIN)
                    err = f;
                int want = f == -EAGAIN;
                if (n > 1 && want != lc->want_out) {
                    struct epoll_event ev = {.events = EPOLLIN | (want ? EPOLLOUT : 0),
                                             .data.u64 = evs[j].data.u64};
                    epoll_ctl(ep, EPOLL_CTL_MOD, uds_client_fd(lc->c), &ev);
                    lc->want_out = want;
                }
            }
        }
    }
    if (err)
        snprintf(row->note, sizeof(row->note), "request: %s", uds_strerror(err));
    if (!stop_at)
        stop_at = now;
    row->ops = ops;
    row->bytes = ops * p->size * 2;
    row->secs = (double)(stop_at - tstart) / 1e9;
    if (hist->n) {
        row->has_lat = 1;
        row->p50 = bench_hist_quantile(hist, 0.50) / 1e3;
        row->p90 = bench_hist_quantile(hist, 0.90) / 1e3;
        row->p99 = bench_hist_quantile(hist, 0.99) / 1e3;
        row->p999 = bench_hist_quantile(hist, 0.999) / 1e3;
        row->max = (double)hist->max / 1e3;
        row->min = (double)hist->min / 1e3;
        row->mean = hist->sum / (double)hist->n / 1e3;
    }
out:
    if (cs) {
        for (unsigned i = 0; i < opened; i++) {
            uds_client_close(cs[i].c);
            free(cs[i].ts);
        }
        free(cs);
    }
    free(hist);
    free(req);
    if (ep >= 0)
        close(ep);
}
