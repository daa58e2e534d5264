/* internal.h — shared by the library's source files; not installed. */
#ifndef UDS_INTERNAL_H
#define UDS_INTERNAL_H

#include "udsock.h"

#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>

/*
 * The one place EINTR is retried: evaluates `expr` (a syscall returning -1
 * on error) until it does not fail with EINTR; yields its value.
 */
#define UDS__RETRY(expr)                                                       \
    __extension__({                                                            \
        long uds__r;                                                           \
        do {                                                                   \
            uds__r = (long)(expr);                                             \
        } while (uds__r == -1 && errno == EINTR);                              \
        uds__r;                                                                \
    })

/* -errno of the last failed syscall (never 0, so it is always an error). */
static inline int uds__err(void) { return errno ? -errno : -EIO; }

/* Monotonic clock in milliseconds / nanoseconds. */
static inline uint64_t uds__now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}
static inline uint64_t uds__now_ms(void) { return uds__now_ns() / 1000000u; }

/* Sleep for ms milliseconds (EINTR resumes the remaining time). */
void uds__sleep_ms(int ms);

/* SIGPIPE blocked for this thread while held (io.c): for writes that
   cannot take MSG_NOSIGNAL. release() consumes the SIGPIPE an EPIPE raised
   and restores the mask; errno is preserved. */
typedef struct uds__sigpipe {
    sigset_t old;
    int was_pending;
} uds__sigpipe;
void uds__sigpipe_hold(uds__sigpipe *g);
void uds__sigpipe_release(uds__sigpipe *g, int got_epipe);

/* Creates a CLOEXEC socket of family/type; flags may hold UDS_NONBLOCK. */
int uds__socket(int family, int type, int flags);

/* The socket type for connecting to a (opts may be NULL), or -EINVAL for
   a NULL, unset or unnamed address, -EPROTOTYPE / -EINVAL for a type that
   does not fit it (sock.c). */
int uds__connect_type(const uds_addr *a, const uds_connect_opts *opts);

/* A fresh CLOEXEC socket for one connect attempt to a (non-blocking if
   nonblock); a unix datagram socket is autobound unless flags has
   UDS_NO_AUTOBIND. Returns the fd or -errno (sock.c). */
int uds__connect_socket(const uds_addr *a, int type, int flags, int nonblock);

/* The pending error of a socket whose connect was in progress, as -errno;
   0 = connected (sock.c). */
int uds__so_error(int fd);

/*
 * A buffer of at least `size` bytes owned by the loop, for reading into
 * before the data is known to need keeping (loop.c). Valid until the next
 * call; NULL if out of memory.
 */
void *uds__loop_scratch(uds_loop *loop, size_t size);

/* Closes c at once; on_close is never called; freed by the loop (conn.c). */
void uds__conn_destroy(uds_conn *c);

/* Bytes of output the kernel has taken from c so far (conn.c). */
uint64_t uds__conn_sent(const uds_conn *c);

/*
 * Hooks of a connection for the forwarder (conn.c, used by forward.c):
 * while a direction splices, the forwarder moves its bytes itself and the
 * connection keeps the rest (reading on/off, EOF, the queue, shutdown,
 * close). readable replaces the connection's own reads while hook_read is
 * on (uds_conn_read_stop/start still decide whether the fd is watched);
 * writable runs when the socket is writable and the connection's own queue
 * is empty, while hook_write is on.
 */
typedef struct uds__conn_hooks {
    void (*readable)(uds_conn *c, void *arg);
    void (*writable)(uds_conn *c, void *arg);
} uds__conn_hooks;
void uds__conn_hooks_set(uds_conn *c, const uds__conn_hooks *h, void *arg);
void uds__conn_hook_read(uds_conn *c, int on);
void uds__conn_hook_write(uds_conn *c, int on);
/* A hook's read found end of stream: on_eof as if the conn had read it. */
void uds__conn_eof(uds_conn *c);
/* A hook's I/O failed: the connection closes with err. */
void uds__conn_fail(uds_conn *c, int err);
/* 1 for SEQPACKET/DGRAM connections. */
int uds__conn_is_packets(const uds_conn *c);
/* A terminal connection (sockinfo.tty) whose other end is gone: what is
   queued and what is written from now on is dropped (conn.c). */
void uds__conn_tty_gone(uds_conn *c);
/* uds_access_check for a socket of a known family (access.c). */
int uds__access_check_af(const uds_access *a, int fd, int family, uds_cred *cred,
                         const char **why);

/* What a caller already knows of a socket (so nobody asks the kernel twice). */
typedef struct uds__sockinfo {
    int type;     /* SOCK_STREAM, ... */
    int family;   /* AF_UNIX, AF_INET, AF_INET6 */
    int nonblock; /* 1: O_NONBLOCK is set already */
    int tty;      /* 1: not a socket but a terminal (a pty master, for the
                     forwarder): read()/write(), no shutdown, and EIO is the
                     end (type and family are then ignored) */
} uds__sockinfo;
/* uds_conn_new for a socket described by si (conn.c). */
int uds__conn_new_known(uds_conn **out, uds_loop *loop, int fd, const uds_conn_opts *opts,
                        const uds_conn_cbs *cbs, void *arg, const uds__sockinfo *si);

/* uds_conn_writev that sends at once when nothing is queued ahead (conn.c):
   for writers with one write per read. Returns as uds_conn_writev. */
int uds__conn_writev_now(uds_conn *c, const struct iovec *iov, int iovcnt);

/* The input buffered and not yet consumed by on_data. */
const void *uds__conn_input(const uds_conn *c, size_t *len);
/* Frees a connection fresh from uds_conn_new (nothing queued, no callback
   run yet) without closing its fd and without on_close. */
void uds__conn_forget(uds_conn *c);

/*
 * Kernel features detected at run time (conn.c). A bit is set while the
 * feature is believed present and cleared for good by the first call that
 * finds it missing. Tests clear bits to force the fallback path.
 *   UDS__FEAT_PASSRIGHTS  SO_PASSRIGHTS (Linux 6.16): a socket can refuse
 *                         SCM_RIGHTS at the sender (EPERM)
 *   UDS__FEAT_PEERPIDFD   SO_PEERPIDFD (Linux 6.5): the peer as a pidfd
 *                         (pidfd.c; cleared: pidfd_open of the pid)
 *   UDS__FEAT_PIDFD_OPEN  pidfd_open (Linux 5.3; cleared with the bit
 *                         above: no pidfd at all)
 */
#define UDS__FEAT_PASSRIGHTS 0x01u
/*   UDS__FEAT_SOCKDIAG    NETLINK_SOCK_DIAG answers for AF_UNIX with
 *                         UNIX_DIAG_VFS (unix_diag loaded): safe bind
 *                         confirms the file it bound is its own socket
 *                         (pin.c); without it, an S_ISSOCK check
 *   UDS__FEAT_PROCFD      /proc/self/fd is there: pinned bind and probe,
 *                         long paths (pin.c); without it, the path itself
 *                         when it fits sun_path */
#define UDS__FEAT_SOCKDIAG 0x08u
#define UDS__FEAT_PROCFD 0x10u
#define UDS__FEAT_PEERPIDFD 0x02u
#define UDS__FEAT_PIDFD_OPEN 0x04u
/*   UDS__FEAT_PKTMARK     SO_TIMESTAMP on SEQPACKET sockets, so that every
 *                         message read carries a control message and an
 *                         empty message is told from end of stream (io.c,
 *                         uds__pkt_mark); cleared (a test seam, or a socket
 *                         that refuses it): the poll(POLLRDHUP) rule */
#define UDS__FEAT_PKTMARK 0x20u
#define UDS__FEAT_ALL (UDS__FEAT_PASSRIGHTS | UDS__FEAT_PEERPIDFD | UDS__FEAT_PIDFD_OPEN | \
                       UDS__FEAT_SOCKDIAG | UDS__FEAT_PROCFD | UDS__FEAT_PKTMARK)
extern unsigned uds__features;

#ifndef SO_PEERPIDFD
#define SO_PEERPIDFD 77 /* asm-generic/socket.h, Linux 6.5 */
#endif

/* Empty SEQPACKET messages (io.c). uds__pkt_mark asks the kernel to attach
   a control message to every message read from fd (1: it did, 0: it will
   not, the fallback rule applies); UDS__PKT_CTL is the room that takes in
   a control buffer. uds__pkt_eof says whether recvmsg's result n with the
   msghdr it filled in is end of stream rather than a message (marked:
   whether fd was marked). */
#define UDS__PKT_CTL CMSG_SPACE(sizeof(struct timeval))
int uds__pkt_mark(int fd);
int uds__pkt_eof(int fd, ssize_t n, const struct msghdr *mh, int marked);

/* uds_peer_pidfd for a peer whose SO_PEERCRED the caller has just read
   (the acceptor: the rules read it): no second getsockopt (pidfd.c). */
int uds__peer_pidfd_cred(int fd, const uds_cred *cred, int *how);

#ifndef SO_PASSRIGHTS
#define SO_PASSRIGHTS 83 /* asm-generic/socket.h, Linux 6.16 */
#endif

/* Times a queued piece's credentials were refused by the kernel (EPERM,
   ESRCH) and it was sent without them (buf.c; process-wide, for tests). */
extern uint64_t uds__cred_fallbacks;

/* TCP_NODELAY on a TCP stream socket (request/response traffic must not
   wait for Nagle); harmless on anything else (sock.c). */
void uds__nodelay(int fd);

/*
 * Admission for a connection that did not come through the acceptor's
 * accept (uds_server_add_conn): the same access rules, limits and admit
 * hook as an accepted client, logged and counted the same way (acceptor.c).
 * Returns 0 with the slot taken and *out filled (seq 0, listen_fd -1,
 * pidfd -1: a UDS_ACCEPT_PIDFD pidfd is closed before returning;
 * release it with uds_acceptor_release as usual), or a negative code
 * (-EUSERS a limit, -EACCES the rules or the hook, the rules' error);
 * fd is never closed and cb is never called.
 */
int uds__acceptor_admit_fd(uds_acceptor *a, int fd, uds_peer *out);

/* ---- pinned path operations (pin.c) ---- */

/* Opens the parent directory of path once (O_PATH, one component at a
   time with O_NOFOLLOW, following only symlinks owned by root or the euid)
   and copies the last component into name (cap >= NAME_MAX + 1). Returns
   the directory fd, UDS_ESYMLINK, or -errno (-ENAMETOOLONG, -EINVAL for a
   path ending in '/', "." or ".."). */
int uds__pin_parent(const char *path, char *name, size_t cap);

/* "/proc/self/fd/FD" or "/proc/self/fd/FD/NAME" (name may be NULL) as a
   sockaddr_un; -ENAMETOOLONG if it does not fit sun_path. */
int uds__proc_sun(struct sockaddr_un *un, socklen_t *len, int fd, const char *name);

/* The dev/ino of the file a bound unix socket's name points at, from
   sock_diag (UNIX_DIAG_VFS; ino only its low 32 bits, dev in stat's
   encoding). 0, -ENOPROTOOPT when sock_diag cannot say (feature bit
   cleared), or -errno. */
int uds__sock_vfs(int sockfd, dev_t *dev, uint32_t *ino);

/* 1 if nobody but root and our euid can change where the directory part
   of `path` leads (every directory entered, as written and along the
   canonical path of dirfd, is root's or ours and not group/other
   writable unless sticky; every symlink followed is root's or ours) and
   it leads to dirfd; else 0. Then a bind by name lands in dirfd. */
int uds__chain_trusted(const char *path, int dirfd);

/* Test seam: if set, the safe bind calls it between its steps (1 after
   opening the directory, 2 before bind, 3 before settling the file), so a
   test can swap directories at exactly those moments (sock.c). */
extern void (*uds__bind_hook)(int step);

/* Times uds__sock_vfs confirmed a bound file (for tests). */
extern unsigned long uds__sockdiag_checks;

/* The lock file next to dirfd/name (name + UDS_LOCK_SUFFIX): waits for it
   at most timeout_ms (<0: no limit). Returns the locked fd, or -errno
   (-ETIMEDOUT, -EINTR), UDS_ELOCKFILE. */
int uds__lock_take(int dirfd, const char *name, int timeout_ms);
/* Removes the lock file if it is still the one held by fd, and closes fd. */
void uds__lock_drop(int dirfd, const char *name, int fd);

/* What to hand the kernel for connect/sendto to an address: the address
   itself, or for a path longer than sun_path "/proc/self/fd/N" of an
   O_PATH descriptor of its file (pfd, to close with uds__kname_done). */
typedef struct uds__kname {
    const struct sockaddr *sa;
    socklen_t len;
    int pfd;
    struct sockaddr_un un;
} uds__kname;
int uds__kname_long(uds__kname *k, const uds_addr *a);
/* Fills k for a (0 or -errno); the common case costs no system call. */
static inline int uds__kname_get(uds__kname *k, const uds_addr *a)
{
    k->pfd = -1;
    if (a->kind != UDS_ADDR_PATH || a->len <= sizeof(struct sockaddr_un)) {
        k->sa = &a->u.sa;
        k->len = a->len;
        return 0;
    }
    return uds__kname_long(k, a);
}
void uds__kname_done(uds__kname *k);

#define UDS__ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

/*
 * sock_diag seams (diag.c), for tests only: the netlink protocol and the
 * family asked for. A protocol the kernel does not know makes socket() fail
 * with EPROTONOSUPPORT; a family without a diag handler gets ENOENT from
 * the kernel, as when the unix_diag module is missing. Both must come out
 * as -EPROTONOSUPPORT.
 */
extern int uds__diag_proto;
extern int uds__diag_family;

#endif
