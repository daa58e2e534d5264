/*
 * io.c — reading and writing that survives signals, short transfers and
 * vanished peers; ancillary data (fds, credentials); datagrams.
 */
#include "internal.h"

#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>

/*
 * SIGPIPE guard for writes that cannot take MSG_NOSIGNAL (write() to a
 * pipe, splice() into a socket). A pipe or socket without a reader raises
 * SIGPIPE at the calling thread, and the library promises never to raise
 * signals: SIGPIPE is blocked for this thread while the guard is held and,
 * if a write failed with EPIPE, the SIGPIPE it generated is consumed before
 * the old mask comes back (unless one was already pending: not ours).
 */
void uds__sigpipe_hold(uds__sigpipe *g)
{
    sigset_t pipe_set, pending;
    sigemptyset(&pipe_set);
    sigaddset(&pipe_set, SIGPIPE);
    sigemptyset(&pending);
    sigpending(&pending);
    g->was_pending = sigismember(&pending, SIGPIPE) == 1;
    pthread_sigmask(SIG_BLOCK, &pipe_set, &g->old);
}

void uds__sigpipe_release(uds__sigpipe *g, int got_epipe)
{
    int e = errno;
    if (got_epipe && !g->was_pending) {
        sigset_t pipe_set;
        sigemptyset(&pipe_set);
        sigaddset(&pipe_set, SIGPIPE);
        struct timespec zero = {0, 0};
        while (sigtimedwait(&pipe_set, NULL, &zero) < 0 && errno == EINTR)
            ;
    }
    pthread_sigmask(SIG_SETMASK, &g->old, NULL);
    errno = e;
}

/* write()/writev() for fds that are not sockets (a pipe given as stdout);
   only this path pays for the guard's sigmask calls. */
static ssize_t write_nosigpipe(int fd, const struct iovec *iov, int iovcnt)
{
    uds__sigpipe g;
    uds__sigpipe_hold(&g);
    ssize_t n = UDS__RETRY(iovcnt == 1 ? write(fd, iov[0].iov_base, iov[0].iov_len)
                                       : writev(fd, iov, iovcnt));
    uds__sigpipe_release(&g, n < 0 && errno == EPIPE);
    return n;
}

/*
 * send() with MSG_NOSIGNAL when fd is a socket, write() otherwise (a pipe or
 * file given as stdout). The answer to "is it a socket" comes from the first
 * ENOTSOCK, so sockets pay nothing extra.
 */
static ssize_t send_or_write(int fd, const void *buf, size_t len, int *not_sock)
{
    ssize_t n;
    if (!*not_sock) {
        n = UDS__RETRY(send(fd, buf, len, MSG_NOSIGNAL));
        if (n >= 0 || errno != ENOTSOCK)
            return n;
        *not_sock = 1;
    }
    struct iovec v = {(void *)buf, len};
    return write_nosigpipe(fd, &v, 1);
}

ssize_t uds_send(int fd, const void *buf, size_t len)
{
    ssize_t n = UDS__RETRY(send(fd, buf, len, MSG_NOSIGNAL));
    return n < 0 ? (errno == EWOULDBLOCK ? -EAGAIN : uds__err()) : n;
}

/*
 * The progress lives in the caller's *done, not in the library, so an event
 * loop can call this again with the same arguments whenever the fd is
 * writable; a full socket is -EAGAIN (a state), everything else an error.
 * uds_write_all is this same loop on a blocking fd.
 */
int uds_write_nb(int fd, const void *buf, size_t len, size_t *done)
{
    int not_sock = 0;
    const char *p = buf;
    while (*done < len) {
        ssize_t n = send_or_write(fd, p + *done, len - *done, &not_sock);
        if (n < 0)
            return errno == EWOULDBLOCK ? -EAGAIN : uds__err();
        *done += (size_t)n;
    }
    return 0;
}

ssize_t uds_write_all(int fd, const void *buf, size_t len)
{
    size_t done = 0;
    int r = uds_write_nb(fd, buf, len, &done);
    return r < 0 ? r : (ssize_t)len;
}

ssize_t uds_writev_all(int fd, const struct iovec *iov_in, int iovcnt)
{
    if (iovcnt < 0 || iovcnt > IOV_MAX)
        return -EINVAL;
    struct iovec iov[iovcnt > 0 ? iovcnt : 1];
    size_t total = 0;
    for (int i = 0; i < iovcnt; i++) {
        iov[i] = iov_in[i];
        total += iov[i].iov_len;
    }
    struct iovec *v = iov;
    int n = iovcnt;
    struct msghdr mh;
    memset(&mh, 0, sizeof(mh));
    int not_sock = 0;
    while (n > 0) {
        ssize_t w;
        if (!not_sock) {
            mh.msg_iov = v;
            mh.msg_iovlen = (size_t)n;
            w = UDS__RETRY(sendmsg(fd, &mh, MSG_NOSIGNAL));
            if (w < 0 && errno == ENOTSOCK) {
                not_sock = 1;
                continue;
            }
        } else {
            w = write_nosigpipe(fd, v, n);
        }
        if (w < 0)
            return errno == EWOULDBLOCK ? -EAGAIN : uds__err();
        /* resume after a partial write: skip whole iovecs, trim the next */
        size_t k = (size_t)w;
        while (n > 0 && k >= v->iov_len) {
            k -= v->iov_len;
            v++;
            n--;
        }
        if (n > 0) {
            v->iov_base = (char *)v->iov_base + k;
            v->iov_len -= k;
        }
    }
    return (ssize_t)total;
}

ssize_t uds_read_some(int fd, void *buf, size_t len)
{
    ssize_t n = UDS__RETRY(read(fd, buf, len));
    return n < 0 ? (errno == EWOULDBLOCK ? -EAGAIN : uds__err()) : n;
}

ssize_t uds_read_exact(int fd, void *buf, size_t len)
{
    size_t got = 0;
    while (got < len) {
        ssize_t n = uds_read_some(fd, (char *)buf + got, len - got);
        if (n < 0)
            return n;
        if (n == 0)
            break;
        got += (size_t)n;
    }
    return (ssize_t)got;
}

/*
 * splice() has no MSG_NOSIGNAL: a vanished reader on the pipe or socket it
 * writes to raises SIGPIPE. The guard (three sigmask syscalls) is skipped
 * when the process ignores SIGPIPE anyway, as most servers and the udsock
 * tool do: one sigaction() query is cheaper, and bulk copies call this for
 * every megabyte.
 */
ssize_t uds_splice(int fd_in, int fd_out, size_t len, unsigned flags)
{
    if (len == 0)
        return 0;
    struct sigaction sa;
    int guarded = !(sigaction(SIGPIPE, NULL, &sa) == 0 && sa.sa_handler == SIG_IGN);
    uds__sigpipe g;
    if (guarded)
        uds__sigpipe_hold(&g);
    ssize_t n = UDS__RETRY(splice(fd_in, NULL, fd_out, NULL, len, flags));
    if (guarded)
        uds__sigpipe_release(&g, n < 0 && errno == EPIPE);
    return n < 0 ? (errno == EWOULDBLOCK ? -EAGAIN : uds__err()) : n;
}

/* ---- ancillary data ----------------------------------------------------- */

/*
 * Builds the control buffer on the stack (a union keeps it aligned for
 * cmsghdr) with room for the kernel's maximum of fds plus credentials, so a
 * send never allocates. The limits are checked here, not left to the
 * kernel, so the caller gets -EINVAL before anything is sent.
 */
ssize_t uds_sendmsg(int fd, const uds_msg *m)
{
    if (!m || m->nfds > UDS_MAX_FDS || (m->nfds && !m->fds))
        return -EINVAL;
    if ((m->nfds || m->send_cred) && m->len == 0)
        return -EINVAL; /* ancillary data rides on at least one byte */
    size_t space = (m->nfds ? CMSG_SPACE(m->nfds * sizeof(int)) : 0) +
                   (m->send_cred ? CMSG_SPACE(sizeof(struct ucred)) : 0);
    /* union for alignment; room for 253 fds plus credentials */
    union {
        struct cmsghdr h;
        char b[CMSG_SPACE(UDS_MAX_FDS * sizeof(int)) + CMSG_SPACE(sizeof(struct ucred))];
    } cbuf;
    memset(&cbuf, 0, sizeof(cbuf));
    struct iovec iov = {m->buf, m->len};
    struct msghdr mh;
    memset(&mh, 0, sizeof(mh));
    mh.msg_iov = &iov;
    mh.msg_iovlen = 1;
    uds__kname k; /* not zeroed: the common send pays nothing for it */
    k.pfd = -1;
    if (m->addr) {
        int r = uds__kname_get(&k, m->addr);
        if (r < 0)
            return r;
        mh.msg_name = (void *)k.sa;
        mh.msg_namelen = k.len;
    }
    if (space) {
        mh.msg_control = cbuf.b;
        mh.msg_controllen = space;
        struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
        if (m->nfds) {
            c->cmsg_level = SOL_SOCKET;
            c->cmsg_type = SCM_RIGHTS;
            c->cmsg_len = CMSG_LEN(m->nfds * sizeof(int));
            memcpy(CMSG_DATA(c), m->fds, m->nfds * sizeof(int));
            c = CMSG_NXTHDR(&mh, c);
        }
        if (m->send_cred) {
            struct ucred uc = {getpid(), geteuid(), getegid()};
            c->cmsg_level = SOL_SOCKET;
            c->cmsg_type = SCM_CREDENTIALS;
            c->cmsg_len = CMSG_LEN(sizeof(uc));
            memcpy(CMSG_DATA(c), &uc, sizeof(uc));
        }
    }
    ssize_t n = UDS__RETRY(sendmsg(fd, &mh, MSG_NOSIGNAL));
    uds__kname_done(&k);
    return n < 0 ? (errno == EWOULDBLOCK ? -EAGAIN : uds__err()) : n;
}

/* Closes every fd carried by SCM_RIGHTS headers in mh. */
static void close_rights(struct msghdr *mh)
{
    for (struct cmsghdr *c = CMSG_FIRSTHDR(mh); c; c = CMSG_NXTHDR(mh, c)) {
        if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
            continue;
        size_t n = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
        for (size_t i = 0; i < n; i++) {
            int f;
            memcpy(&f, CMSG_DATA(c) + i * sizeof(int), sizeof(int));
            close(f);
        }
    }
}

/*
 * Why the care: the kernel fills the control buffer with as many fds as fit
 * and sets MSG_CTRUNC for the rest, which it closes itself; the ones that
 * did arrive are now ours. A caller that only checks the return value would
 * leak them (dbus CVE-2020-12049), so on any truncation we close them all
 * and fail the call. The control buffer is sized to the caller's capacity,
 * but CMSG_SPACE rounds up, so we also refuse more fds than fds_cap.
 */
ssize_t uds_recvmsg(int fd, uds_msg *m, int flags)
{
    if (!m || (m->fds_cap && !m->fds))
        return -EINVAL;
    /* more than the kernel can ever send in one message is just room */
    size_t cap = m->fds_cap > UDS_MAX_FDS ? UDS_MAX_FDS : m->fds_cap;
    m->nfds = 0;
    m->has_cred = 0;
    union {
        struct cmsghdr h;
        char b[CMSG_SPACE(UDS_MAX_FDS * sizeof(int)) + CMSG_SPACE(sizeof(struct ucred))];
    } cbuf;
    struct sockaddr_storage ss;
    struct iovec iov = {m->buf, m->len};
    struct msghdr mh;
    memset(&mh, 0, sizeof(mh));
    mh.msg_iov = &iov;
    mh.msg_iovlen = 1;
    if (m->addr) {
        mh.msg_name = &ss;
        mh.msg_namelen = sizeof(ss);
    }
    mh.msg_control = cbuf.b;
    mh.msg_controllen = (cap ? CMSG_SPACE(cap * sizeof(int)) : 0) +
                        CMSG_SPACE(sizeof(struct ucred));
    ssize_t n = UDS__RETRY(recvmsg(fd, &mh, flags | MSG_CMSG_CLOEXEC));
    if (n < 0)
        return errno == EWOULDBLOCK ? -EAGAIN : uds__err();

    size_t nf = 0;
    int overflow = (mh.msg_flags & (MSG_CTRUNC | MSG_TRUNC)) != 0;
    for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c)) {
        if (c->cmsg_level != SOL_SOCKET)
            continue;
        if (c->cmsg_type == SCM_RIGHTS) {
            nf += (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
        } else if (c->cmsg_type == SCM_CREDENTIALS &&
                   c->cmsg_len >= CMSG_LEN(sizeof(struct ucred))) {
            struct ucred uc;
            memcpy(&uc, CMSG_DATA(c), sizeof(uc));
            m->cred.pid = uc.pid;
            m->cred.uid = uc.uid;
            m->cred.gid = uc.gid;
            m->has_cred = 1;
        }
    }
    if (overflow || nf > cap) {
        close_rights(&mh);
        m->has_cred = 0;
        return -EMSGSIZE;
    }
    for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c)) {
        if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS) {
            size_t k = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
            memcpy(m->fds + m->nfds, CMSG_DATA(c), k * sizeof(int));
            m->nfds += k;
        }
    }
    if (m->addr) {
        int t = uds_sock_type(fd);
        if (uds_addr_from_sockaddr(m->addr, (struct sockaddr *)&ss, mh.msg_namelen,
                                   t < 0 ? SOCK_DGRAM : t) < 0)
            memset(m->addr, 0, sizeof(*m->addr));
    }
    return n;
}

ssize_t uds_send_fds(int fd, const void *buf, size_t len, const int *fds, size_t nfds)
{
    uds_msg m;
    memset(&m, 0, sizeof(m));
    m.buf = (void *)buf;
    m.len = len;
    m.fds = (int *)fds;
    m.nfds = nfds;
    return uds_sendmsg(fd, &m);
}

ssize_t uds_recv_fds(int fd, void *buf, size_t len, int *fds, size_t *nfds)
{
    if (!nfds)
        return -EINVAL;
    uds_msg m;
    memset(&m, 0, sizeof(m));
    m.buf = buf;
    m.len = len;
    m.fds = fds;
    m.fds_cap = *nfds;
    ssize_t n = uds_recvmsg(fd, &m, 0);
    *nfds = n < 0 ? 0 : m.nfds;
    return n;
}

int uds_peer_cred(int fd, uds_cred *out)
{
    struct ucred uc;
    socklen_t l = sizeof(uc);
    if (!out)
        return -EINVAL;
    if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &uc, &l) < 0)
        return uds__err();
    out->pid = uc.pid;
    out->uid = uc.uid;
    out->gid = uc.gid;
    return 0;
}

/*
 * SO_PASSRIGHTS on (fds may be sent to this socket) or off (the kernel
 * refuses SCM_RIGHTS to it: the sender's sendmsg fails with EPERM, so fds
 * never even queue up here). Kernels before 6.16 do not know the option
 * (ENOPROTOOPT; EINVAL taken the same way): the feature bit is cleared so
 * later calls cost nothing, and the fallback is the library's plain recv()
 * for connections that did not opt in, which discards fds.
 */
int uds_set_passrights(int fd, int on)
{
    if (!(__atomic_load_n(&uds__features, __ATOMIC_RELAXED) & UDS__FEAT_PASSRIGHTS))
        return -ENOPROTOOPT;
    int v = on != 0;
    if (setsockopt(fd, SOL_SOCKET, SO_PASSRIGHTS, &v, sizeof(v)) == 0)
        return 0;
    int e = errno;
    if (e == ENOPROTOOPT || e == EINVAL) {
        __atomic_fetch_and(&uds__features, ~UDS__FEAT_PASSRIGHTS, __ATOMIC_RELAXED);
        return -ENOPROTOOPT;
    }
    return -e; /* EOPNOTSUPP: not a unix socket, nothing can arrive */
}

int uds_set_passcred(int fd, int on)
{
    int v = on ? 1 : 0;
    return setsockopt(fd, SOL_SOCKET, SO_PASSCRED, &v, sizeof(v)) < 0 ? uds__err() : 0;
}

/* ---- empty SEQPACKET messages ------------------------------------------- */

/*
 * Why this is needed, and the rule (checked on Linux 6.18, tests/unit/
 * test_empty_pkt.c): a
 * SEQPACKET unix socket returns 0 from recvmsg both for an empty message
 * and, once the peer has shut down and the queue is empty, for end of
 * stream. msg_flags is 0 in both cases (no MSG_EOR), msg_namelen is the
 * sender's address length, which is 0 for an unbound sender, and poll()
 * shows POLLRDHUP (POLLHUP after close) in both cases as soon as the peer
 * has shut down, even while empty messages it sent before are still
 * queued. What differs is whether a message was dequeued at all, and the
 * kernel reports that only through ancillary data: with SO_TIMESTAMP on,
 * every dequeued message carries an SCM_TIMESTAMP control message (or
 * sets MSG_CTRUNC when the caller gave no room for it), and end of stream
 * carries nothing. SO_TIMESTAMP rather than SO_PASSCRED (which works the
 * same way) because SO_PASSCRED makes the kernel autobind an unbound
 * socket on its next send, a name the application never asked for.
 */
int uds__pkt_mark(int fd)
{
    if (!(__atomic_load_n(&uds__features, __ATOMIC_RELAXED) & UDS__FEAT_PKTMARK))
        return 0;
    int v = 1;
    return setsockopt(fd, SOL_SOCKET, SO_TIMESTAMP, &v, sizeof(v)) == 0;
}

/*
 * End of stream or an empty message, for a read of n bytes (see above).
 * A marked socket: a message always leaves a control message or
 * MSG_CTRUNC behind. An unmarked one (the fallback): a 0 read while the
 * peer has not shut down (no POLLRDHUP after the read; shutdown is never
 * undone, so none during it either) is an empty message; after the peer's
 * shutdown a 0 is taken as the end, so an empty message sent right before
 * the shutdown can be lost there.
 */
int uds__pkt_eof(int fd, ssize_t n, const struct msghdr *mh, int marked)
{
    if (n != 0)
        return 0;
    if (marked)
        return mh->msg_controllen == 0 && !(mh->msg_flags & MSG_CTRUNC);
    struct pollfd p = {fd, POLLRDHUP, 0};
    int r = UDS__RETRY(poll(&p, 1, 0));
    return r != 0 && (r < 0 || (p.revents & (POLLRDHUP | POLLHUP | POLLERR)));
}

/* ---- datagrams ---------------------------------------------------------- */

ssize_t uds_sendto(int fd, const void *buf, size_t len, const uds_addr *to)
{
    uds__kname k; /* not zeroed: the common send pays nothing for it */
    k.sa = NULL;
    k.len = 0;
    k.pfd = -1;
    if (to) {
        int r = uds__kname_get(&k, to);
        if (r < 0)
            return r;
    }
    ssize_t n = UDS__RETRY(sendto(fd, buf, len, MSG_NOSIGNAL, k.sa, k.len));
    uds__kname_done(&k);
    return n < 0 ? (errno == EWOULDBLOCK ? -EAGAIN : uds__err()) : n;
}

ssize_t uds_recvfrom(int fd, void *buf, size_t len, uds_addr *from, int flags)
{
    struct sockaddr_storage ss;
    socklen_t sl = sizeof(ss);
    /* MSG_TRUNC: return the datagram's real length so truncation is visible */
    ssize_t n = UDS__RETRY(recvfrom(fd, buf, len, flags | MSG_TRUNC,
                                    from ? (struct sockaddr *)&ss : NULL, from ? &sl : NULL));
    if (n < 0)
        return errno == EWOULDBLOCK ? -EAGAIN : uds__err();
    if (from) {
        int t = uds_sock_type(fd);
        if (uds_addr_from_sockaddr(from, (struct sockaddr *)&ss, sl, t < 0 ? SOCK_DGRAM : t) < 0)
            memset(from, 0, sizeof(*from));
    }
    return n;
}
