/*
 * pidfd.c — the peer of a unix socket as a pidfd, so that a decision about
 * "the process that connected" cannot land on a process that merely got
 * its pid later.
 *
 * Two ways to get one, chosen at run time:
 *   SO_PEERPIDFD (Linux 6.5): the kernel hands out a pidfd for the struct
 *     pid it recorded at connect(); exact, never a recycled pid.
 *   pidfd_open(SO_PEERCRED pid) (Linux 5.3; Debian 12's 6.1 has only
 *     this): racy between the client's exit and our open, documented as
 *     such (udsock.h).
 * The first ENOPROTOOPT from SO_PEERPIDFD clears UDS__FEAT_PEERPIDFD for
 * good (tests clear it to force the fallback). EINVAL is NOT taken as
 * "option unknown": an unknown SOL_SOCKET option is ENOPROTOOPT on every
 * kernel, while kernels 6.5..6.15 answer EINVAL when the connecting
 * process is already gone (pidfd_prepare finds no task) — falling back to
 * pidfd_open(pid) there would be exactly the recycled-pid mistake, so it
 * is reported as -ESRCH.
 */
#include "internal.h"

#include <poll.h>
#include <sys/pidfd.h>
#include <sys/socket.h>

/* Feature bit still believed present? */
static int feat(unsigned bit)
{
    return (__atomic_load_n(&uds__features, __ATOMIC_RELAXED) & bit) != 0;
}

/* Clears a feature bit for good (the kernel said it does not have it). */
static void feat_off(unsigned bit)
{
    __atomic_fetch_and(&uds__features, ~bit, __ATOMIC_RELAXED);
}

/*
 * Why both paths live in one function: the caller wants "a pidfd for the
 * peer, and what it is worth"; which kernel interface answered is a detail
 * reported through *how. cred must be the SO_PEERCRED just read (the
 * fallback opens its pid: the sooner after the read, the smaller the race).
 */
int uds__peer_pidfd_cred(int fd, const uds_cred *cred, int *how)
{
    int dummy;
    if (!how)
        how = &dummy;
    *how = UDS_PIDFD_NONE;
    if (feat(UDS__FEAT_PEERPIDFD)) {
        int pfd = -1;
        socklen_t l = sizeof(pfd);
        if (getsockopt(fd, SOL_SOCKET, SO_PEERPIDFD, &pfd, &l) == 0 && pfd >= 0) {
            *how = UDS_PIDFD_PEER;
            return pfd;
        }
        int e = errno;
        if (e == EINVAL || e == ESRCH) {
            *how = UDS_PIDFD_GONE;
            return -ESRCH;
        }
        if (e != ENOPROTOOPT)
            return -e; /* ENODATA (no peer), ENOTSOCK, EMFILE...: no guess */
        feat_off(UDS__FEAT_PEERPIDFD);
    }
    if (!cred || cred->pid <= 0)
        return -ENODATA; /* pid 0: a peer outside our pid namespace */
    if (!feat(UDS__FEAT_PIDFD_OPEN))
        return -EOPNOTSUPP;
    int pfd = pidfd_open(cred->pid, 0); /* pidfds are always close-on-exec */
    if (pfd >= 0) {
        *how = UDS_PIDFD_OPENED;
        return pfd;
    }
    int e = errno;
    if (e == ESRCH) {
        *how = UDS_PIDFD_GONE;
        return -ESRCH;
    }
    if (e == ENOSYS) {
        feat_off(UDS__FEAT_PIDFD_OPEN);
        return -EOPNOTSUPP;
    }
    return -e;
}

/* SO_PEERCRED first (the fallback needs its pid), then the pidfd. */
int uds_peer_pidfd(int fd, uds_cred *cred, int *how)
{
    uds_cred c;
    if (how)
        *how = UDS_PIDFD_NONE;
    int r = uds_peer_cred(fd, &c);
    if (r < 0)
        return r;
    if (cred)
        *cred = c;
    return uds__peer_pidfd_cred(fd, &c, how);
}

/*
 * A pidfd polls readable once its process has exited (zombie included);
 * a zero-timeout poll asks without waiting and without signalling the
 * process (kill(pid, 0) would also need the pid, the very thing in doubt).
 */
int uds_pidfd_alive(int pidfd)
{
    if (pidfd < 0)
        return -EBADF;
    struct pollfd p = {.fd = pidfd, .events = POLLIN};
    int r = UDS__RETRY(poll(&p, 1, 0));
    if (r < 0)
        return uds__err();
    if (p.revents & POLLNVAL)
        return -EBADF;
    return (p.revents & (POLLIN | POLLHUP | POLLERR)) ? 0 : 1;
}
