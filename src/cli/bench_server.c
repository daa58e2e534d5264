/*
 * bench_server.c — the serving end of `udsock bench`, and the helpers both
 * ends share (spinning receive, CPU pinning).
 *
 * One server serves every mode: each connection (or first datagram) starts
 * with a bench_hello saying what follows. Sessions are served one after
 * the other (a benchmark wants the machine to itself); the rr session is
 * the exception that holds `clients` connections at once, driven by epoll.
 * Everything here uses only the core library API, so it measures the
 * kernel path plus the thin library calls, not a framework.
 */
#include "bench.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

/* ---- shared helpers ------------------------------------------------------ */

/*
 * Why spin: a blocking recv() puts the task to sleep and the peer's send
 * must wake it, which costs a scheduler round trip (~20 µs across vCPUs on
 * this machine kind). Polling with MSG_DONTWAIT for a short while catches
 * the answer without ever sleeping, at the price of a busy CPU.
 */
ssize_t bench_recv(int fd, void *buf, size_t len, uint64_t spin_ns)
{
    ssize_t n;
    if (spin_ns) {
        uint64_t t0 = bench_now_ns();
        unsigned k = 0;
        for (;;) {
            n = recv(fd, buf, len, MSG_DONTWAIT);
            if (n >= 0)
                return n;
            if (errno != EAGAIN && errno != EINTR)
                return -errno;
            /* reading the clock costs ~20 ns; check it every 16 tries */
            if ((++k & 15) == 0 && bench_now_ns() - t0 >= spin_ns)
                break;
        }
    }
    do
        n = recv(fd, buf, len, 0);
    while (n < 0 && errno == EINTR);
    return n < 0 ? -errno : n;
}

ssize_t bench_recv_exact(int fd, void *buf, size_t len, uint64_t spin_ns)
{
    size_t got = 0;
    while (got < len) {
        ssize_t n = bench_recv(fd, (char *)buf + got, len - got, spin_ns);
        if (n < 0)
            return n;
        if (n == 0)
            break;
        got += (size_t)n;
    }
    return (ssize_t)got;
}

int bench_pin(int cpu)
{
    if (cpu < 0)
        return 0;
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    return sched_setaffinity(0, sizeof(set), &set) < 0 ? -errno : 0;
}

void bench_nodelay(int fd)
{
    int one = 1;
    (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

uint64_t bench_rss(void)
{
    FILE *f = fopen("/proc/self/statm", "re");
    unsigned long size = 0, res = 0;
    if (!f)
        return 0;
    if (fscanf(f, "%lu %lu", &size, &res) != 2)
        res = 0;
    fclose(f);
    return (uint64_t)res * (uint64_t)sysconf(_SC_PAGESIZE);
}

/* ---- stream / seqpacket sessions ---------------------------------------- */

static int wait_readable(int fd, int ms);
static int hello_ok(const bench_hello *h);

/* Echo size-byte messages until EOF (the pingpong session). */
static void serve_pingpong(int c, const bench_hello *h, uint64_t spin_ns, int seqpacket)
{
    size_t size = h->size ? h->size : 1;
    char *buf = malloc(size);
    if (!buf)
        return;
    for (;;) {
        ssize_t n = seqpacket ? bench_recv(c, buf, size, spin_ns)
                              : bench_recv_exact(c, buf, size, spin_ns);
        if (n <= 0 || (!seqpacket && (size_t)n < size))
            break;
        if (uds_write_all(c, buf, (size_t)n) < 0)
            break;
    }
    free(buf);
}

/* Read until EOF, then say how many bytes came and over how long. */
static void serve_stream(int c, const bench_hello *h)
{
    size_t cap = h->size > 262144 ? h->size : 262144;
    char *buf = malloc(cap);
    if (!buf)
        return;
    bench_report rep;
    memset(&rep, 0, sizeof(rep));
    uint64_t t0 = 0;
    for (;;) {
        ssize_t n = uds_read_some(c, buf, cap);
        if (n <= 0)
            break;
        if (!t0)
            t0 = bench_now_ns();
        rep.count += (uint64_t)n;
    }
    rep.ns = t0 ? bench_now_ns() - t0 : 0;
    (void)uds_write_all(c, &rep, sizeof(rep));
    free(buf);
}

/* Accept and close connections until the control connection ends. */
static void serve_connect(int lfd, int ctrl, const bench_hello *h, int linger0)
{
    size_t size = h->size;
    char *buf = size ? malloc(size) : NULL;
    if (size && !buf)
        return;
    uds_set_nonblock(lfd, 1);
    struct pollfd p[2] = {{lfd, POLLIN, 0}, {ctrl, POLLIN, 0}};
    int done = 0;
    while (!done) {
        if (poll(p, 2, -1) < 0 && errno != EINTR)
            break;
        if (p[1].revents)
            done = 1; /* drain what is queued, then stop */
        for (;;) {
            int c = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
            if (c < 0)
                break;
            if (size && bench_recv_exact(c, buf, size, 0) == (ssize_t)size)
                (void)uds_write_all(c, buf, size);
            if (linger0) {
                struct linger lg = {1, 0};
                (void)setsockopt(c, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
            }
            close(c);
        }
    }
    uds_set_nonblock(lfd, 0);
    free(buf);
}

typedef struct rr_conn {
    int fd;
    size_t inlen;
    char *in;
    char *out; /* pending echo bytes when the socket was full */
    size_t outlen, outoff;
} rr_conn;

/* Writes what is pending on c; returns 1 when all flushed, 0 if not, -1 dead. */
static int rr_flush(rr_conn *c)
{
    while (c->outoff < c->outlen) {
        ssize_t n = send(c->fd, c->out + c->outoff, c->outlen - c->outoff, MSG_NOSIGNAL);
        if (n < 0)
            return errno == EAGAIN ? 0 : errno == EINTR ? 0 : -1;
        c->outoff += (size_t)n;
    }
    c->outlen = c->outoff = 0;
    return 1;
}

/*
 * The rr session: `clients` connections (the first already accepted), each
 * carrying pipelined size-byte requests; every complete request is echoed
 * in order. A connection whose echo cannot be written stops being read
 * until it drains (backpressure, like any sane server).
 */
static void serve_rr(int lfd, int first, const bench_hello *h, const bench_srv_opts *o,
                     uint64_t spin_ns)
{
    size_t n = h->clients ? h->clients : 1, size = h->size ? h->size : 1;
    /* room for the pipeline, within bounds: a larger backlog simply waits
       in the kernel's socket buffer */
    size_t cap = size * (h->pipeline ? h->pipeline : 1);
    if (cap > (1u << 20))
        cap = 1u << 20;
    if (cap < 4096)
        cap = 4096;
    if (cap < size)
        cap = size;
    rr_conn *cs = calloc(n, sizeof(*cs));
    int ep = epoll_create1(EPOLL_CLOEXEC);
    size_t live = 0;
    if (!cs || ep < 0)
        goto out;
    for (size_t i = 0; i < n; i++) {
        int fd = first;
        if (i > 0) {
            fd = uds_accept(lfd, NULL, 0);
            if (fd < 0)
                break;
            bench_hello hh;
            if (!wait_readable(fd, 10000) ||
                bench_recv_exact(fd, &hh, sizeof(hh), 0) != sizeof(hh) || !hello_ok(&hh)) {
                close(fd);
                break;
            }
            uds_set_bufsizes(fd, o->sndbuf, o->rcvbuf);
            if (o->nodelay)
                bench_nodelay(fd);
        }
        cs[i].fd = fd;
        cs[i].in = malloc(cap);
        cs[i].out = malloc(cap);
        if (!cs[i].in || !cs[i].out) {
            if (i > 0)
                close(fd);
            break;
        }
        uds_set_nonblock(fd, 1);
        struct epoll_event ev = {.events = EPOLLIN, .data.u64 = i};
        epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
        live++;
    }
    if (live > 0)
        first = -1; /* owned by cs[0] now */
    struct epoll_event evs[64];
    size_t open_n = live;
    while (open_n > 0) {
        int k = 0;
        if (spin_ns) {
            uint64_t t0 = bench_now_ns();
            while ((k = epoll_wait(ep, evs, 64, 0)) == 0 && bench_now_ns() - t0 < spin_ns)
                ;
        }
        if (k == 0)
            k = epoll_wait(ep, evs, 64, -1);
        if (k < 0) {
            if (errno == EINTR)
                continue;
            break;
        }
        for (int j = 0; j < k; j++) {
            rr_conn *c = &cs[evs[j].data.u64];
            if (c->fd < 0)
                continue;
            int dead = 0;
            if (c->outlen) {
                int r = rr_flush(c);
                if (r < 0)
                    dead = 1;
                else if (r == 1) {
                    struct epoll_event ev = {.events = EPOLLIN, .data.u64 = evs[j].data.u64};
                    epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
                }
            }
            if (!dead && !c->outlen && (evs[j].events & (EPOLLIN | EPOLLHUP | EPOLLERR))) {
                ssize_t r = recv(c->fd, c->in + c->inlen, cap - c->inlen, 0);
                if (r == 0 || (r < 0 && errno != EAGAIN && errno != EINTR))
                    dead = 1;
                else if (r > 0) {
                    c->inlen += (size_t)r;
                    size_t whole = c->inlen / size * size;
                    if (whole) {
                        ssize_t w = send(c->fd, c->in, whole, MSG_NOSIGNAL);
                        if (w < 0 && errno != EAGAIN && errno != EINTR)
                            dead = 1;
                        else {
                            size_t sent = w > 0 ? (size_t)w : 0;
                            if (sent < whole) {
                                memcpy(c->out, c->in + sent, whole - sent);
                                c->outlen = whole - sent;
                                c->outoff = 0;
                                struct epoll_event ev = {.events = EPOLLOUT,
                                                         .data.u64 = evs[j].data.u64};
                                epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
                            }
                            memmove(c->in, c->in + whole, c->inlen - whole);
                            c->inlen -= whole;
                        }
                    }
                }
            }
            if (dead) {
                epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
                close(c->fd);
                c->fd = -1;
                open_n--;
            }
        }
    }
out:
    if (first >= 0)
        close(first);
    if (cs) {
        for (size_t i = 0; i < n; i++) {
            if (i < live && cs[i].fd >= 0)
                close(cs[i].fd);
            free(cs[i].in);
            free(cs[i].out);
        }
        free(cs);
    }
    if (ep >= 0)
        close(ep);
}

/*
 * The hold session: accept `clients` idle connections, register each with
 * epoll as a server would, and report how much the process grew.
 */
static void serve_hold(int lfd, int ctrl, const bench_hello *h)
{
    size_t n = h->clients;
    int *fds = calloc(n ? n : 1, sizeof(int));
    int ep = epoll_create1(EPOLL_CLOEXEC);
    bench_report rep;
    memset(&rep, 0, sizeof(rep));
    size_t got = 0;
    if (fds && ep >= 0) {
        uint64_t rss0 = bench_rss();
        for (; got < n; got++) {
            int fd = uds_accept(lfd, NULL, UDS_NONBLOCK);
            if (fd < 0)
                break;
            struct epoll_event ev = {.events = EPOLLIN, .data.fd = fd};
            epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
            fds[got] = fd;
        }
        uint64_t rss1 = bench_rss();
        rep.count = got;
        rep.extra = rss1 > rss0 ? rss1 - rss0 : 0;
    }
    (void)uds_write_all(ctrl, &rep, sizeof(rep));
    char b;
    (void)bench_recv(ctrl, &b, 1, 0); /* until the client is done */
    for (size_t i = 0; i < got; i++)
        close(fds[i]);
    free(fds);
    if (ep >= 0)
        close(ep);
}

/* Waits up to ms for fd to become readable. 1 ready, 0 timeout. */
static int wait_readable(int fd, int ms)
{
    struct pollfd p = {fd, POLLIN, 0};
    int r;
    do
        r = poll(&p, 1, ms);
    while (r < 0 && errno == EINTR);
    return r > 0;
}

/* A peer's hello is checked before anything is allocated from it. */
static int hello_ok(const bench_hello *h)
{
    return h->magic == BENCH_MAGIC && h->size <= BENCH_MAX_SIZE &&
           h->clients <= BENCH_MAX_CLIENTS && h->pipeline <= 65536 && h->batch <= 1024 &&
           h->spin_us <= 10000000;
}

static int serve_stream_listener(uds_listener *l, const bench_srv_opts *o)
{
    int tcp = l->addr.kind == UDS_ADDR_TCP;
    for (;;) {
        int c = uds_accept(l->fd, NULL, 0);
        if (c < 0) {
            if (c == -EMFILE || c == -ENFILE || c == -ENOBUFS || c == -ENOMEM)
                usleep(10000); /* no busy loop while out of descriptors */
            else if (c != -ECONNABORTED && c != -EINTR)
                return c;
            continue;
        }
        uds_set_bufsizes(c, o->sndbuf, o->rcvbuf);
        if (tcp)
            bench_nodelay(c);
        bench_hello h;
        /* a silent connection must not hang the server forever */
        if (!wait_readable(c, 10000) || bench_recv_exact(c, &h, sizeof(h), 0) != sizeof(h) ||
            !hello_ok(&h)) {
            close(c);
            continue;
        }
        uint64_t spin_ns = (uint64_t)(o->spin_us > 0 ? (unsigned)o->spin_us : h.spin_us) * 1000u;
        switch (h.mode) {
        case BM_PINGPONG:
            serve_pingpong(c, &h, spin_ns, l->type == UDS_SEQPACKET);
            break;
        case BM_STREAM:
            serve_stream(c, &h);
            break;
        case BM_CONNECT:
            serve_connect(l->fd, c, &h, tcp);
            break;
        case BM_RR: {
            bench_srv_opts oo = *o;
            oo.nodelay = tcp;
            serve_rr(l->fd, c, &h, &oo, spin_ns);
            c = -1;
            break;
        }
        case BM_HOLD:
            serve_hold(l->fd, c, &h);
            break;
        default:
            break;
        }
        if (c >= 0)
            close(c);
        if (o->once)
            return 0;
    }
}

/* ---- datagram sessions -------------------------------------------------- */

static int is_hello(const void *buf, ssize_t n, uint32_t mode)
{
    bench_hello h;
    if (n != (ssize_t)sizeof(h))
        return 0;
    memcpy(&h, buf, sizeof(h));
    return h.magic == BENCH_MAGIC && (!mode || h.mode == mode);
}

/* recvfrom() with the same spin-then-block policy as bench_recv(). */
static ssize_t spin_recvfrom(int fd, void *buf, size_t len, struct sockaddr_storage *ss,
                             socklen_t *sl, uint64_t spin_ns)
{
    ssize_t n;
    socklen_t l0 = *sl;
    if (spin_ns) {
        uint64_t t0 = bench_now_ns();
        do {
            *sl = l0;
            n = recvfrom(fd, buf, len, MSG_DONTWAIT, (struct sockaddr *)ss, sl);
            if (n >= 0)
                return n;
            if (errno != EAGAIN && errno != EINTR)
                return -errno;
        } while (bench_now_ns() - t0 < spin_ns);
    }
    do {
        *sl = l0;
        n = recvfrom(fd, buf, len, 0, (struct sockaddr *)ss, sl);
    } while (n < 0 && errno == EINTR);
    return n < 0 ? -errno : n;
}

static int serve_dgram(uds_listener *l, const bench_srv_opts *o)
{
    size_t cap = (size_t)4 << 20;
    char *buf = malloc(cap);
    if (!buf)
        return -ENOMEM;
    uds_set_bufsizes(l->fd, o->sndbuf, o->rcvbuf);
    for (;;) {
        struct sockaddr_storage ss;
        socklen_t sl = sizeof(ss);
        ssize_t n = spin_recvfrom(l->fd, buf, cap, &ss, &sl, 0);
        if (n < 0) {
            if (n == -EINTR)
                continue;
            free(buf);
            return (int)n;
        }
        if (!is_hello(buf, n, 0))
            continue; /* a stray datagram from an earlier burst */
        bench_hello h;
        memcpy(&h, buf, sizeof(h));
        if (!hello_ok(&h))
            continue;
        struct sockaddr_storage peer = ss;
        socklen_t peerlen = sl;
        uint64_t spin_ns = (uint64_t)(o->spin_us > 0 ? (unsigned)o->spin_us : h.spin_us) * 1000u;
        /* ack: the client starts only once we are listening for it */
        (void)sendto(l->fd, &h, sizeof(h), MSG_NOSIGNAL, (struct sockaddr *)&peer, peerlen);
        if (h.mode == BM_PINGPONG) {
            for (;;) {
                sl = sizeof(ss);
                n = spin_recvfrom(l->fd, buf, cap, &ss, &sl, spin_ns);
                if (n < 0 || is_hello(buf, n, BM_END))
                    break;
                (void)sendto(l->fd, buf, (size_t)n, MSG_NOSIGNAL, (struct sockaddr *)&ss, sl);
            }
        } else if (h.mode == BM_DGRAM) {
            unsigned b = h.batch ? h.batch : 1;
            if (b > 1024)
                b = 1024;
            size_t each = h.size > sizeof(h) ? h.size : sizeof(h);
            if (each > cap)
                each = cap; /* longer datagrams are truncated, still counted */
            if (each * b > cap)
                b = (unsigned)(cap / each);
            if (b < 1)
                b = 1;
            struct mmsghdr *mm = calloc(b, sizeof(*mm));
            struct iovec *iov = calloc(b, sizeof(*iov));
            bench_report rep;
            memset(&rep, 0, sizeof(rep));
            uint64_t t0 = 0;
            int end = 0;
            while (mm && iov && !end) {
                for (unsigned i = 0; i < b; i++) {
                    iov[i].iov_base = buf + i * each;
                    iov[i].iov_len = each;
                    memset(&mm[i].msg_hdr, 0, sizeof(mm[i].msg_hdr));
                    mm[i].msg_hdr.msg_iov = &iov[i];
                    mm[i].msg_hdr.msg_iovlen = 1;
                }
                int k;
                if (b > 1)
                    k = recvmmsg(l->fd, mm, b, MSG_WAITFORONE, NULL);
                else {
                    ssize_t r = recv(l->fd, buf, each, 0);
                    k = r < 0 ? -1 : 1;
                    mm[0].msg_len = r < 0 ? 0 : (unsigned)r;
                }
                if (k < 0) {
                    if (errno == EINTR)
                        continue;
                    break;
                }
                if (!t0)
                    t0 = bench_now_ns();
                for (int i = 0; i < k; i++) {
                    if (is_hello(iov[i].iov_base, mm[i].msg_len, BM_END)) {
                        end = 1;
                        break;
                    }
                    rep.count++;
                }
            }
            rep.ns = t0 ? bench_now_ns() - t0 : 0;
            (void)sendto(l->fd, &rep, sizeof(rep), MSG_NOSIGNAL, (struct sockaddr *)&peer,
                         peerlen);
            free(mm);
            free(iov);
        }
        if (o->once)
            break;
    }
    free(buf);
    return 0;
}

int bench_serve(uds_listener *l, const bench_srv_opts *opts)
{
    return l->type == UDS_DGRAM ? serve_dgram(l, opts) : serve_stream_listener(l, opts);
}
