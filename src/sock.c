/*
 * sock.c — creating, binding (safely), listening, accepting, connecting.
 *
 * The interesting part is uds_listen() on a filesystem path: a path that
 * already exists may be someone else's file, a live server, or the leftover
 * of a crashed one. Only the last may be removed, and only after proving
 * nobody answers on it, while holding a lock so two starting servers cannot
 * both decide it is stale.
 */
#include "internal.h"

#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

int uds__socket(int family, int type, int flags)
{
    int t = type | SOCK_CLOEXEC | ((flags & UDS_NONBLOCK) ? SOCK_NONBLOCK : 0);
    int fd = socket(family, t, 0);
    return fd < 0 ? uds__err() : fd;
}

int uds_type_parse(const char *text)
{
    if (!text)
        return -EINVAL;
    if (!strcmp(text, "stream"))
        return UDS_STREAM;
    if (!strcmp(text, "dgram") || !strcmp(text, "datagram"))
        return UDS_DGRAM;
    if (!strcmp(text, "seqpacket"))
        return UDS_SEQPACKET;
    return -EINVAL;
}

const char *uds_type_name(int type)
{
    switch (type) {
    case UDS_STREAM:
        return "stream";
    case UDS_DGRAM:
        return "dgram";
    case UDS_SEQPACKET:
        return "seqpacket";
    default:
        return "?";
    }
}

/* The socket type to use: explicit, else implied by the address. */
static int pick_type(const uds_addr *a, int type)
{
    if (a->kind == UDS_ADDR_UDP)
        return type && type != UDS_DGRAM ? -EPROTOTYPE : UDS_DGRAM;
    if (a->kind == UDS_ADDR_TCP)
        return type && type != UDS_STREAM ? -EPROTOTYPE : UDS_STREAM;
    if (!type)
        return UDS_STREAM;
    if (type != UDS_STREAM && type != UDS_DGRAM && type != UDS_SEQPACKET)
        return -EINVAL;
    return type;
}

int uds_set_nonblock(int fd, int on)
{
    int fl = fcntl(fd, F_GETFL);
    if (fl < 0)
        return uds__err();
    int nfl = on ? fl | O_NONBLOCK : fl & ~O_NONBLOCK;
    if (nfl != fl && fcntl(fd, F_SETFL, nfl) < 0)
        return uds__err();
    return 0;
}

int uds_set_bufsizes(int fd, int sndbuf, int rcvbuf)
{
    if (sndbuf > 0 && setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof(sndbuf)) < 0)
        return uds__err();
    if (rcvbuf > 0 && setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf)) < 0)
        return uds__err();
    return 0;
}

int uds_sock_type(int fd)
{
    int t = 0;
    socklen_t l = sizeof(t);
    if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &t, &l) < 0)
        return uds__err();
    return t;
}

int uds_local_addr(int fd, uds_addr *out)
{
    struct sockaddr_storage ss;
    socklen_t l = sizeof(ss);
    if (getsockname(fd, (struct sockaddr *)&ss, &l) < 0)
        return uds__err();
    int t = uds_sock_type(fd);
    return uds_addr_from_sockaddr(out, (struct sockaddr *)&ss, l, t < 0 ? SOCK_STREAM : t);
}

int uds_pair(int type, int flags, int fds[2])
{
    int t = type | SOCK_CLOEXEC | ((flags & UDS_NONBLOCK) ? SOCK_NONBLOCK : 0);
    return socketpair(AF_UNIX, t, 0, fds) < 0 ? uds__err() : 0;
}

/* ---- safe bind ---------------------------------------------------------- */

void (*uds__bind_hook)(int step);
#define BIND_HOOK(n)                                                           \
    do {                                                                       \
        if (uds__bind_hook)                                                    \
            uds__bind_hook(n);                                                 \
    } while (0)

/*
 * Decides whether the socket file dirfd/name (examined as *st) has a live
 * listener, by connecting to it: through the /proc link of an O_PATH
 * descriptor of that very file, so no path is resolved again. Returns 1
 * live, 0 stale, or -errno when undecidable (e.g. -EACCES): an undecidable
 * file is never removed.
 */
static int probe_live(int dirfd, const char *name, const struct stat *st, const uds_addr *a,
                      int type)
{
    int pfd = openat(dirfd, name, O_PATH | O_NOFOLLOW | O_CLOEXEC);
    if (pfd < 0)
        return errno == ENOENT ? 0 : uds__err(); /* vanished: nothing to remove */
    struct stat st2;
    if (fstat(pfd, &st2) < 0 || st2.st_dev != st->st_dev || st2.st_ino != st->st_ino) {
        close(pfd);
        return 1; /* replaced meanwhile: someone is at work there */
    }
    struct sockaddr_un un;
    socklen_t len = 0;
    int r = -ENAMETOOLONG;
    if (__atomic_load_n(&uds__features, __ATOMIC_RELAXED) & UDS__FEAT_PROCFD)
        r = uds__proc_sun(&un, &len, pfd, NULL);
    else if (a->len <= sizeof(un)) { /* no /proc: the path itself */
        memcpy(&un, &a->u.un, a->len);
        len = a->len;
        r = 0;
    }
    int fd = r < 0 ? r : uds__socket(AF_UNIX, type, UDS_NONBLOCK);
    if (fd < 0) {
        close(pfd);
        return fd;
    }
    r = connect(fd, (struct sockaddr *)&un, len);
    int e = r == 0 ? 0 : errno;
    close(fd);
    close(pfd);
    switch (e) {
    case 0:
    case EAGAIN:      /* backlog full: very much alive */
    case EINPROGRESS:
    case EPROTOTYPE:  /* a socket of another type is bound there */
        return 1;
    case ECONNREFUSED:
        return 0;
    case ENOENT:
        return 0; /* vanished meanwhile: nothing to remove */
    default:
        return -e;
    }
}

/* The umask is process-wide: serialise our temporary changes to it. */
static pthread_mutex_t umask_lock = PTHREAD_MUTEX_INITIALIZER;

/* bind(), with the file created as `mode` (0 = kernel default). */
static int bind_with_mode(int fd, const struct sockaddr *sa, socklen_t len, int is_path,
                          unsigned mode)
{
    int r, e = 0;
    if (mode && is_path) {
        pthread_mutex_lock(&umask_lock);
        mode_t old = umask((mode_t)(~mode & 0777));
        r = bind(fd, sa, len);
        e = errno;
        umask(old);
        pthread_mutex_unlock(&umask_lock);
    } else {
        r = bind(fd, sa, len);
        e = errno;
    }
    return r < 0 ? -e : 0;
}

/*
 * Whether to bind the path itself rather than "/proc/self/fd/DIRFD/NAME".
 * Why prefer it: the kernel records the bind's string as the socket's name
 * (getsockname, peers, ss), and only the real path means anything outside
 * this process. Why only for a trusted chain: a bind by name resolves the
 * path again, and only a chain nobody else can change is sure to lead to
 * dirfd again. Without /proc there is no other way (short paths only).
 */
static int bind_by_name(const uds_listener *l, int dirfd, int flags)
{
    if (!(__atomic_load_n(&uds__features, __ATOMIC_RELAXED) & UDS__FEAT_PROCFD))
        return 1; /* (bind_at refuses a path too long for sun_path) */
    if (l->addr.len > sizeof(struct sockaddr_un))
        return 0;
    if (flags & UDS_BIND_PINNED)
        return 0;
    return uds__chain_trusted(l->addr.u.path.name, dirfd);
}

/*
 * The bind of a path: by name (see bind_by_name; with a requested mode the
 * file is created with no permission bits, and settle_file sets the mode
 * once it has proven the file is ours), or through
 * "/proc/self/fd/DIRFD/NAME", which makes the kernel create NAME in the
 * directory behind DIRFD whatever the path leads to by now. Without /proc
 * (detected when that bind fails with ENOENT and /proc/self/fd is
 * missing) the path itself when it fits. *by_name says which was used.
 */
static int bind_at(uds_listener *l, int dirfd, const char *name, unsigned mode, int *by_name)
{
    struct sockaddr_un un;
    socklen_t len;
    int r;
    if (!*by_name) {
        r = uds__proc_sun(&un, &len, dirfd, name);
        if (r < 0)
            return r; /* the last component is too long to bind */
        r = bind_with_mode(l->fd, (struct sockaddr *)&un, len, 1, mode);
        if (r != -ENOENT || faccessat(AT_FDCWD, "/proc/self/fd", F_OK, 0) == 0)
            return r;
        __atomic_fetch_and(&uds__features, ~UDS__FEAT_PROCFD, __ATOMIC_RELAXED);
        *by_name = 1;
    }
    if (l->addr.len > sizeof(struct sockaddr_un))
        return -ENAMETOOLONG;
    /* a mode with no permission bit set (01000): created under umask 0777 */
    return bind_with_mode(l->fd, &l->addr.u.sa, l->addr.len, 1, mode ? 01000u : 0);
}

/*
 * After bind(): makes sure dirfd/name is the socket we bound, records its
 * identity (so close removes only our own file) and applies the owner and
 * mode through an O_PATH|O_NOFOLLOW descriptor of it. "Ours" is proven by
 * sock_diag when it can say (the socket's UNIX_DIAG_VFS names the file's
 * dev/ino); otherwise it must at least be a socket, and after a bind by
 * name one owned by our euid (a socket someone else put there is theirs).
 * Anything else means the path moved under us: UDS_EPATHMOVED, nothing
 * touched.
 */
static int settle_file(uds_listener *l, int dirfd, const char *name, const uds_listen_opts *o,
                       int by_name)
{
    int pfd = openat(dirfd, name, O_PATH | O_NOFOLLOW | O_CLOEXEC);
    if (pfd < 0)
        return errno == ENOENT ? UDS_EPATHMOVED : uds__err();
    struct stat st;
    int r = 0;
    if (fstat(pfd, &st) < 0)
        r = uds__err();
    else if (!S_ISSOCK(st.st_mode))
        r = UDS_EPATHMOVED; /* swapped under us: not ours, do not touch */
    if (r == 0) {
        dev_t vdev;
        uint32_t vino;
        int v = uds__sock_vfs(l->fd, &vdev, &vino);
        if (v == 0) {
            if (vdev != st.st_dev || vino != (uint32_t)st.st_ino)
                r = UDS_EPATHMOVED; /* another socket has the name: not ours */
            else
                __atomic_fetch_add(&uds__sockdiag_checks, 1, __ATOMIC_RELAXED);
        } else if (v != -ENOPROTOOPT) {
            r = v;
        } else if (by_name && st.st_uid != geteuid()) {
            r = UDS_EPATHMOVED;
        }
    }
    if (r == 0) {
        l->dev = st.st_dev;
        l->ino = st.st_ino;
        l->owns_path = 1;
        if (o && o->set_owner && fchownat(pfd, "", o->owner, o->group, AT_EMPTY_PATH) < 0)
            r = uds__err();
        /* A default ACL on the directory is applied on top of the umask and
           can take bits away, and a bind by name creates the file with none:
           then set the mode through the descriptor's /proc link, which
           names this very inode (no path lookup an attacker could
           redirect); without /proc, by name in the pinned directory. */
        if (r == 0 && o && o->mode && (st.st_mode & 07777) != (o->mode & 07777)) {
            char pp[64];
            snprintf(pp, sizeof(pp), "/proc/self/fd/%d", pfd);
            int c = (__atomic_load_n(&uds__features, __ATOMIC_RELAXED) & UDS__FEAT_PROCFD)
                        ? chmod(pp, (mode_t)(o->mode & 07777))
                        : fchmodat(dirfd, name, (mode_t)(o->mode & 07777), 0);
            if (c < 0)
                r = uds__err();
        }
    }
    close(pfd);
    return r;
}

/* Removes dirfd/name if it is still the socket dev/ino. 1 removed, 0 not. */
static int unlink_if_same(int dirfd, const char *name, dev_t dev, ino_t ino)
{
    struct stat st;
    if (fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISSOCK(st.st_mode) &&
        st.st_dev == dev && st.st_ino == ino)
        return unlinkat(dirfd, name, 0) == 0 ? 1 : (errno == ENOENT ? 0 : uds__err());
    return 0;
}

/* The last component of the listener's path (valid while it has dirfd). */
static const char *base_name(const uds_listener *l)
{
    const char *p = l->addr.u.path.name;
    const char *s = strrchr(p, '/');
    return s ? s + 1 : p;
}

/*
 * Why listen() happens here, under the lock: a socket that is bound but not
 * yet listening refuses connections, so a second server probing it between
 * our bind() and listen() would call it stale and unlink it. `backlog` < 0
 * means a datagram socket (bound is already live).
 */
static int bind_path(uds_listener *l, const uds_listen_opts *o, int flags, int backlog)
{
    char name[NAME_MAX + 1];
    int dirfd = uds__pin_parent(l->addr.u.path.name, name, sizeof(name));
    if (dirfd < 0)
        return dirfd;
    int lockfd = -1, r;
    BIND_HOOK(1);

    if (!(flags & UDS_NO_LOCK)) {
        int t = o && o->lock_timeout_ms ? o->lock_timeout_ms : UDS_LOCK_TIMEOUT_DEFAULT_MS;
        lockfd = uds__lock_take(dirfd, name, t);
        if (lockfd < 0) {
            close(dirfd);
            return lockfd;
        }
    }
    struct stat st;
    if (fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0) {
        if (!S_ISSOCK(st.st_mode)) {
            r = -EEXIST;
            goto out;
        }
        r = probe_live(dirfd, name, &st, &l->addr, l->type);
        if (r != 0) {
            r = r > 0 ? -EADDRINUSE : r;
            goto out;
        }
        /* Stale. Remove it only if it is still the file we examined. */
        r = unlink_if_same(dirfd, name, st.st_dev, st.st_ino);
        if (r < 0)
            goto out;
        if (r == 0 && faccessat(dirfd, name, F_OK, AT_SYMLINK_NOFOLLOW) == 0) {
            r = -EADDRINUSE; /* replaced by something else meanwhile */
            goto out;
        }
    } else if (errno != ENOENT) {
        r = uds__err();
        goto out;
    }
    int by_name = bind_by_name(l, dirfd, flags);
    BIND_HOOK(2);
    r = bind_at(l, dirfd, name, o ? o->mode : 0, &by_name);
    if (r == 0) {
        BIND_HOOK(3);
        r = settle_file(l, dirfd, name, o, by_name);
        if (r == 0 && backlog >= 0 && listen(l->fd, backlog) < 0)
            r = uds__err();
        if (r < 0 && l->owns_path) {
            unlink_if_same(dirfd, name, l->dev, l->ino); /* ours: take it back */
            l->owns_path = 0;
        }
    }
out:
    uds__lock_drop(dirfd, name, lockfd);
    if (r == 0 && l->owns_path && !(flags & UDS_NO_UNLINK)) {
        l->dirfd = dirfd; /* kept to remove the file at close */
    } else {
        l->owns_path = 0;
        close(dirfd);
    }
    return r;
}

/*
 * One entry point for every kind of address so servers need no special
 * cases: paths go through the safe bind (bind_path, which also listens under
 * its lock), abstract names and Internet addresses are bound directly (the
 * kernel itself refuses a name or port in use; SO_REUSEADDR only lets a
 * restarted TCP server reuse a port still in TIME_WAIT), and the bound
 * address is read back so tcp:...:0 reports the real port.
 */
int uds_listen(uds_listener *l, const uds_addr *addr, const uds_listen_opts *opts)
{
    if (!l || !addr)
        return -EINVAL;
    memset(l, 0, sizeof(*l));
    l->fd = -1;
    l->dirfd = -1;
    int family = uds_addr_family(addr);
    if (family < 0 || addr->kind == UDS_ADDR_UNNAMED)
        return -EINVAL;
    int type = pick_type(addr, opts ? opts->type : 0);
    if (type < 0)
        return type;
    int flags = opts ? opts->flags : 0;
    l->type = type;
    l->addr = *addr;
    l->fd = uds__socket(family, type, flags);
    if (l->fd < 0) {
        int e = l->fd;
        l->fd = -1;
        return e;
    }
    int r;
    int backlog = type == UDS_DGRAM ? -1 : opts && opts->backlog > 0 ? opts->backlog : SOMAXCONN;
    if (addr->kind == UDS_ADDR_PATH) {
        r = bind_path(l, opts, flags, backlog);
    } else {
        if (family != AF_UNIX) {
            int one = 1;
            setsockopt(l->fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
        }
        r = bind_with_mode(l->fd, &addr->u.sa, addr->len, 0, 0);
        if (r == 0 && backlog >= 0 && listen(l->fd, backlog) < 0)
            r = uds__err();
    }
    if (r == 0 && family != AF_UNIX)
        r = uds_local_addr(l->fd, &l->addr); /* learn the port of tcp:...:0 */
    if (r < 0) {
        uds_listener_close(l);
        return r;
    }
    return 0;
}

int uds_listener_from_fd(uds_listener *l, int fd)
{
    if (!l || fd < 0)
        return -EINVAL;
    memset(l, 0, sizeof(*l));
    l->fd = -1;
    l->dirfd = -1;
    int t = uds_sock_type(fd);
    if (t < 0)
        return t;
    int r = uds_local_addr(fd, &l->addr);
    if (r < 0)
        return r;
    l->type = t;
    l->fd = fd;
    fcntl(fd, F_SETFD, FD_CLOEXEC);
    return 0;
}

/*
 * Why through the kept directory fd: the path may lead elsewhere by now
 * (a directory renamed or swapped); the file we bound is in that directory
 * or nowhere. Only syscalls, so a signal handler may call it.
 */
int uds_listener_unlink(uds_listener *l)
{
    if (!l || !l->owns_path)
        return 0;
    int r = 0;
    if (l->dirfd >= 0 && l->addr.kind == UDS_ADDR_PATH)
        r = unlink_if_same(l->dirfd, base_name(l), l->dev, l->ino);
    if (l->dirfd >= 0)
        close(l->dirfd);
    l->dirfd = -1;
    l->owns_path = 0;
    return r;
}

void uds_listener_close(uds_listener *l)
{
    if (!l)
        return;
    /* unlink before close: no window where a new server bound the same
       path and we would remove its file */
    uds_listener_unlink(l);
    if (l->fd >= 0)
        close(l->fd);
    l->fd = -1;
    l->owns_path = 0;
    l->dirfd = -1;
}

int uds_accept(int lfd, uds_addr *peer, int flags)
{
    struct sockaddr_storage ss;
    socklen_t sl = sizeof(ss);
    int f = SOCK_CLOEXEC | ((flags & UDS_NONBLOCK) ? SOCK_NONBLOCK : 0);
    int fd = UDS__RETRY(accept4(lfd, (struct sockaddr *)&ss, &sl, f));
    if (fd < 0)
        return errno == EWOULDBLOCK ? -EAGAIN : uds__err();
    if (peer) {
        int t = uds_sock_type(fd);
        if (uds_addr_from_sockaddr(peer, (struct sockaddr *)&ss, sl, t) < 0)
            memset(peer, 0, sizeof(*peer));
    }
    return fd;
}

/* ---- connect ------------------------------------------------------------ */

/* Binds an AF_UNIX socket to a kernel-chosen unique abstract name. */
static int autobind(int fd)
{
    struct sockaddr_un un;
    memset(&un, 0, sizeof(un));
    un.sun_family = AF_UNIX;
    return bind(fd, (struct sockaddr *)&un, sizeof(sa_family_t)) < 0 ? uds__err() : 0;
}

/*
 * Why one function: uds_connect and uds_connect_start (connect.c) must
 * refuse the same addresses and choose the same socket type.
 */
int uds__connect_type(const uds_addr *a, const uds_connect_opts *o)
{
    if (!a || a->kind == UDS_ADDR_NONE || a->kind == UDS_ADDR_UNNAMED)
        return -EINVAL;
    return pick_type(a, o ? o->type : 0);
}

/*
 * The socket of one connect attempt, shared by the blocking and the loop
 * connect so both autobind a unix datagram client the same way (the server
 * needs an address to reply to).
 */
int uds__connect_socket(const uds_addr *a, int type, int flags, int nonblock)
{
    int family = uds_addr_family(a);
    if (family < 0)
        return family;
    int fd = uds__socket(family, type, nonblock ? UDS_NONBLOCK : 0);
    if (fd < 0)
        return fd;
    if (family == AF_UNIX && type == UDS_DGRAM && !(flags & UDS_NO_AUTOBIND)) {
        int r = autobind(fd);
        if (r < 0) {
            close(fd);
            return r;
        }
    }
    return fd;
}

/* The outcome of a non-blocking connect that was in progress, as -errno
   (0 = connected): the pending error of the socket. */
int uds__so_error(int fd)
{
    int soerr = 0;
    socklen_t sl = sizeof(soerr);
    if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) < 0)
        return uds__err();
    return -soerr;
}

int uds_dgram_socket(int family, int flags)
{
    int fd = uds__socket(family, SOCK_DGRAM, flags);
    if (fd >= 0 && family == AF_UNIX && !(flags & UDS_NO_AUTOBIND)) {
        int r = autobind(fd);
        if (r < 0) {
            close(fd);
            return r;
        }
    }
    return fd;
}

/* Milliseconds left until `deadline` (UINT64_MAX = none), at least 0. */
static int left_ms(uint64_t deadline)
{
    if (deadline == UINT64_MAX)
        return -1;
    uint64_t now = uds__now_ms();
    return now >= deadline ? 0 : (int)(deadline - now > 0x7fffffff ? 0x7fffffff : deadline - now);
}

/*
 * One connect attempt on a fresh socket; returns fd or -errno.
 * Why two ways: a unix connect with no deadline that ends up blocking is
 * cheapest as a plain blocking connect() (the kernel waits for room in a
 * full backlog itself): socket + connect, nothing else. With a deadline, or
 * for TCP (whose handshake must be bounded), the socket starts non-blocking
 * and is switched back with one F_SETFL (its only file status flag is
 * O_NONBLOCK, so 0 clears it without an F_GETFL first).
 */
static int connect_once(const uds_addr *a, int type, int flags, uint64_t deadline)
{
    int family = uds_addr_family(a);
    int blocking = family == AF_UNIX && deadline == UINT64_MAX && !(flags & UDS_NONBLOCK);
    int fd = uds__connect_socket(a, type, flags, !blocking);
    if (fd < 0)
        return fd;
    uds__kname k;
    int r = uds__kname_get(&k, a);
    if (r < 0) {
        close(fd);
        return r;
    }
    /* an interrupted unix connect leaves the socket unconnected: retry it */
    if ((blocking ? UDS__RETRY(connect(fd, k.sa, k.len)) : connect(fd, k.sa, k.len)) < 0) {
        r = -errno;
        if (r == -EINPROGRESS || r == -EINTR) { /* TCP: wait for the handshake */
            struct pollfd p = {fd, POLLOUT, 0};
            int pr = UDS__RETRY(poll(&p, 1, left_ms(deadline)));
            if (pr == 0)
                r = -ETIMEDOUT;
            else if (pr < 0)
                r = uds__err();
            else
                r = uds__so_error(fd);
        }
    }
    uds__kname_done(&k);
    if (r == 0 && !blocking && !(flags & UDS_NONBLOCK) && fcntl(fd, F_SETFL, 0) < 0)
        r = uds__err();
    if (r < 0) {
        close(fd);
        return r;
    }
    return fd;
}

/*
 * Why a loop: a unix stream connect to a full backlog fails at once with
 * EAGAIN on a non-blocking socket, and a server that is still starting gives
 * ENOENT/ECONNREFUSED. Both are "try again shortly" until the deadline; the
 * back-off grows from 1 ms to 50 ms so a waiting client neither spins nor
 * sleeps through a server's start.
 */
int uds_connect(const uds_addr *a, const uds_connect_opts *o)
{
    int type = uds__connect_type(a, o);
    if (type < 0)
        return type;
    int flags = o ? o->flags : 0;
    int wait = o ? o->wait : 0;
    uint64_t deadline = o && o->timeout_ms > 0 ? uds__now_ms() + (uint64_t)o->timeout_ms : UINT64_MAX;
    int backoff = 1;
    for (;;) {
        int fd = connect_once(a, type, flags, deadline);
        if (fd >= 0)
            return fd;
        int retry = fd == -EAGAIN || (wait && (fd == -ENOENT || fd == -ECONNREFUSED));
        if (!retry)
            return fd;
        if (left_ms(deadline) == 0)
            return deadline == UINT64_MAX ? fd : (fd == -EAGAIN ? -ETIMEDOUT : fd);
        int ms = left_ms(deadline);
        uds__sleep_ms(ms >= 0 && ms < backoff ? ms : backoff);
        backoff = backoff * 2 > 50 ? 50 : backoff * 2;
    }
}

/*
 * TCP_NODELAY, asked of any socket: request/response traffic must not wait
 * for Nagle. One setsockopt and no questions first: a unix or UDP socket
 * refuses it (EOPNOTSUPP/ENOPROTOOPT), which costs the same as asking what
 * the socket is, and there is nothing to undo.
 */
void uds__nodelay(int fd)
{
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}
