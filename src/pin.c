/*
 * pin.c — path operations pinned to a directory descriptor.
 *
 * A path is looked up afresh by every system call that takes it, and
 * O_NOFOLLOW guards only its last component: whoever owns a directory on
 * the way can rename it or swap it for a symlink between two calls. So the
 * safe bind (sock.c) opens the parent directory once and does everything
 * else relative to that descriptor: *at() calls where they exist, and for
 * bind/connect, which take only a sockaddr_un, the magic links of
 * /proc/self/fd (the kernel follows "/proc/self/fd/N" to the very object
 * behind descriptor N, not to a name). The same links carry paths longer
 * than sun_path: only the last component has to fit.
 *
 * Also here: the lock file of the safe bind, and the sock_diag question
 * "which file is my socket bound to?".
 */
#include "internal.h"

#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

unsigned long uds__sockdiag_checks;

/*
 * Opens the directory part of a path (dir, dl bytes) the way the kernel
 * would resolve it, one component at a time with O_PATH|O_NOFOLLOW, but
 * follows a symlink only when it is owned by root or our euid. Why: the
 * first open decides where everything else happens, and a symlink owned by
 * someone else (or one swapped in by someone who owns a directory on the
 * way) would let that user choose the directory root works in: root would
 * create, chmod, chown or remove files in a directory the user could not
 * touch (a confused deputy). ".." is resolved by the kernel against the
 * directory already open, so it cannot be redirected either. Returns the
 * directory fd, UDS_ESYMLINK, or -errno (-ELOOP past 40 links).
 */
static int open_dir_walk(const char *dir, size_t dl)
{
    char rest[PATH_MAX], t[PATH_MAX];
    if (dl >= sizeof(rest))
        return -ENAMETOOLONG;
    memcpy(rest, dir, dl);
    rest[dl] = '\0';
    uid_t me = geteuid();
    int fd = open(rest[0] == '/' ? "/" : ".", O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return uds__err();
    int links = 0;
    char *r = rest;
    while (*r) {
        while (*r == '/')
            r++;
        if (!*r)
            break;
        char *end = strchrnul(r, '/');
        char c = *end;
        *end = '\0';
        int nfd = openat(fd, r, O_PATH | O_NOFOLLOW | O_CLOEXEC);
        *end = c;
        struct stat st;
        if (nfd < 0 || fstat(nfd, &st) < 0) {
            int e = uds__err();
            if (nfd >= 0)
                close(nfd);
            close(fd);
            return e;
        }
        if (S_ISLNK(st.st_mode)) {
            ssize_t tl = -1;
            if (st.st_uid == 0 || st.st_uid == me)
                tl = readlinkat(nfd, "", t, sizeof(t) - 1);
            int e = st.st_uid != 0 && st.st_uid != me ? UDS_ESYMLINK
                    : tl < 0                          ? uds__err()
                    : ++links > 40                    ? -ELOOP
                                                      : 0;
            size_t nl = strlen(end);
            if (e == 0 && (tl == 0 || (size_t)tl + nl + 1 > sizeof(t)))
                e = tl == 0 ? -ENOENT : -ENAMETOOLONG;
            close(nfd);
            if (e < 0) {
                close(fd);
                return e;
            }
            memcpy(t + tl, end, nl + 1); /* the target, then what is left */
            memcpy(rest, t, (size_t)tl + nl + 1);
            r = rest;
            if (rest[0] == '/') {
                close(fd);
                fd = open("/", O_PATH | O_DIRECTORY | O_CLOEXEC);
                if (fd < 0)
                    return uds__err();
            }
            continue;
        }
        close(fd);
        if (!S_ISDIR(st.st_mode)) {
            close(nfd);
            return -ENOTDIR;
        }
        fd = nfd;
        r = end;
    }
    return fd;
}

/*
 * Why not dirname(3): it may modify its argument and maps "a/" oddly; the
 * rules here are the kernel's: the last component is what bind creates.
 */
int uds__pin_parent(const char *path, char *name, size_t cap)
{
    size_t n = strlen(path);
    if (n == 0 || path[n - 1] == '/')
        return -EINVAL;
    const char *slash = strrchr(path, '/');
    const char *base = slash ? slash + 1 : path;
    size_t bl = strlen(base);
    if (!strcmp(base, ".") || !strcmp(base, ".."))
        return -EINVAL;
    if (bl > NAME_MAX || bl + 1 > cap)
        return -ENAMETOOLONG;
    memcpy(name, base, bl + 1);
    if (!slash)
        return open_dir_walk("", 0);
    return open_dir_walk(path, slash == path ? 1 : (size_t)(slash - path));
}

int uds__proc_sun(struct sockaddr_un *un, socklen_t *len, int fd, const char *name)
{
    memset(un, 0, offsetof(struct sockaddr_un, sun_path));
    un->sun_family = AF_UNIX;
    int k = name ? snprintf(un->sun_path, sizeof(un->sun_path), "/proc/self/fd/%d/%s", fd, name)
                 : snprintf(un->sun_path, sizeof(un->sun_path), "/proc/self/fd/%d", fd);
    if (k < 0 || (size_t)k >= sizeof(un->sun_path))
        return -ENAMETOOLONG;
    *len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + (size_t)k + 1);
    return 0;
}

/* ---- long paths for connect/sendto ---------------------------------------- */

/*
 * Why an O_PATH descriptor of the file itself (following symlinks, as
 * connect would): its /proc link fits sun_path whatever the path's length.
 * The permission checks are the same as for the path (search on every
 * directory to open it, write on the socket to connect).
 */
int uds__kname_long(uds__kname *k, const uds_addr *a)
{
    k->pfd = -1;
    if (!(__atomic_load_n(&uds__features, __ATOMIC_RELAXED) & UDS__FEAT_PROCFD))
        return -ENAMETOOLONG; /* no /proc: a long path cannot be named */
    int fd = open(a->u.path.name, O_PATH | O_CLOEXEC);
    if (fd < 0)
        return uds__err();
    int r = uds__proc_sun(&k->un, &k->len, fd, NULL);
    if (r < 0) {
        close(fd);
        return r;
    }
    k->pfd = fd;
    k->sa = (const struct sockaddr *)&k->un;
    return 0;
}

void uds__kname_done(uds__kname *k)
{
    if (k->pfd >= 0) {
        int e = errno;
        close(k->pfd);
        errno = e;
    }
    k->pfd = -1;
}

/* ---- sock_diag ------------------------------------------------------------- */

/*
 * Which file our own socket is bound to, from sock_diag's UNIX_DIAG_VFS
 * (through diag.c, the one place that speaks NETLINK_SOCK_DIAG). Why a
 * missing sock_diag clears the feature bit: a kernel without unix_diag
 * cannot gain it later, so the safe bind stops asking and falls back to
 * its S_ISSOCK check. Returns 0, -ENOENT (not bound to a file) or
 * -ENOPROTOOPT (no sock_diag) or another -errno.
 */
int uds__sock_vfs(int sockfd, dev_t *dev, uint32_t *ino)
{
    if (!(__atomic_load_n(&uds__features, __ATOMIC_RELAXED) & UDS__FEAT_SOCKDIAG))
        return -ENOPROTOOPT;
    struct stat st;
    if (fstat(sockfd, &st) < 0)
        return uds__err();
    uds_diag_sock d;
    int r = uds_diag_get((uint64_t)st.st_ino, &d);
    if (r == -EPROTONOSUPPORT || r == -EAFNOSUPPORT || r == -EACCES || r == -EPERM) {
        __atomic_fetch_and(&uds__features, ~UDS__FEAT_SOCKDIAG, __ATOMIC_RELAXED);
        return -ENOPROTOOPT;
    }
    if (r < 0)
        return r == -ENOENT ? -EIO : r; /* our own live socket must be found */
    if (!(d.have & UDS_DIAG_HAVE_VFS)) {
        uds_diag_sock_free(&d);
        return -ENOENT;
    }
    *dev = d.vfs_dev;
    *ino = d.vfs_ino;
    uds_diag_sock_free(&d);
    return 0;
}

/* ---- the lock file ---------------------------------------------------------- */

/* name + UDS_LOCK_SUFFIX; -ENAMETOOLONG past NAME_MAX. */
static int lock_name(char *out, size_t cap, const char *name)
{
    int k = snprintf(out, cap, "%s%s", name, UDS_LOCK_SUFFIX);
    return k < 0 || (size_t)k >= cap || k > NAME_MAX ? -ENAMETOOLONG : 0;
}

/* 1 if fd is a regular file whose content starts with our marker. */
static int is_ours(int fd)
{
    struct stat st;
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode))
        return 0;
    char b[sizeof(UDS_LOCK_MARKER) - 1];
    ssize_t n = UDS__RETRY(pread(fd, b, sizeof(b), 0));
    return n == (ssize_t)sizeof(b) && memcmp(b, UDS_LOCK_MARKER, sizeof(b)) == 0;
}

/* 1 if dirfd/name is (still) the file open as fd. */
static int same_file(int dirfd, const char *name, int fd)
{
    struct stat a, b;
    return fstat(fd, &a) == 0 && fstatat(dirfd, name, &b, AT_SYMLINK_NOFOLLOW) == 0 &&
           a.st_dev == b.st_dev && a.st_ino == b.st_ino;
}

/*
 * Why a temporary name and a link: the lock file must never be seen
 * without its marker (a waiter that found an empty file could not tell our
 * newborn file from another program's), so the marker is written first, the
 * file locked, and only then given its name with linkat(), which fails if
 * the name exists. Returns the locked fd, -EEXIST if the name is taken, or
 * -errno.
 */
static int lock_create(int dirfd, const char *lk)
{
    char tmp[NAME_MAX + 1];
    static unsigned seq;
    unsigned s = __atomic_fetch_add(&seq, 1, __ATOMIC_RELAXED);
    int k = snprintf(tmp, sizeof(tmp), "%.200s.%ld.%u.tmp", lk, (long)getpid(), s);
    if (k < 0 || (size_t)k >= sizeof(tmp))
        return -ENAMETOOLONG;
    int fd = UDS__RETRY(openat(dirfd, tmp, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_NOCTTY | O_CLOEXEC, 0600));
    if (fd < 0)
        return uds__err();
    char text[sizeof(UDS_LOCK_MARKER) + 32];
    int tl = snprintf(text, sizeof(text), "%spid %ld\n", UDS_LOCK_MARKER, (long)getpid());
    int r = 0;
    if (UDS__RETRY(write(fd, text, (size_t)tl)) != tl)
        r = errno ? -errno : -EIO;
    else if (flock(fd, LOCK_EX | LOCK_NB) < 0) /* nobody else knows the file */
        r = uds__err();
    else if (linkat(dirfd, tmp, dirfd, lk, 0) < 0)
        r = uds__err();
    unlinkat(dirfd, tmp, 0);
    if (r < 0) {
        close(fd);
        return r;
    }
    return fd;
}

/* -EINTR if one of the stop signals is pending while blocked. */
static int stop_pending(void)
{
    sigset_t p;
    if (sigpending(&p) < 0)
        return 0;
    return sigismember(&p, SIGINT) == 1 || sigismember(&p, SIGTERM) == 1 ||
                   sigismember(&p, SIGHUP) == 1 || sigismember(&p, SIGQUIT) == 1
               ? -EINTR
               : 0;
}

/*
 * Waits for the lock on fd. Why polling with LOCK_NB instead of a blocking
 * flock(): the wait must be bounded and must end for a signal that a
 * program blocked in order to read it from a signalfd (a blocking flock
 * would never see it). Why every signal is blocked while polling and
 * unblocked only inside ppoll(): a handled signal that arrived between two
 * sleeps would otherwise run unnoticed; this way it stays pending until
 * ppoll atomically restores the caller's mask, runs the handler and
 * returns EINTR, which is returned on purpose.
 */
static int lock_wait(int fd, uint64_t deadline)
{
    sigset_t all, orig;
    sigfillset(&all);
    static const int sync_sigs[] = {SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGTRAP};
    for (size_t i = 0; i < UDS__ARRAY_SIZE(sync_sigs); i++)
        sigdelset(&all, sync_sigs[i]);
    pthread_sigmask(SIG_BLOCK, &all, &orig);
    int r;
    for (;;) {
        if (flock(fd, LOCK_EX | LOCK_NB) == 0) {
            r = 0;
            break;
        }
        if (errno != EWOULDBLOCK && errno != EINTR) {
            r = uds__err();
            break;
        }
        if ((r = stop_pending()) < 0)
            break;
        if (uds__now_ms() >= deadline) {
            r = -ETIMEDOUT;
            break;
        }
        struct timespec ts = {0, 10 * 1000000L};
        if (ppoll(NULL, 0, &ts, &orig) < 0 && errno == EINTR) {
            r = -EINTR;
            break;
        }
    }
    pthread_sigmask(SIG_SETMASK, &orig, NULL);
    return r;
}

int uds__lock_take(int dirfd, const char *name, int timeout_ms)
{
    char lk[NAME_MAX + 1];
    int r = lock_name(lk, sizeof(lk), name);
    if (r < 0)
        return r;
    uint64_t deadline = timeout_ms < 0 ? UINT64_MAX : uds__now_ms() + (uint64_t)timeout_ms;
    for (int tries = 0; tries < 1000; tries++) {
        int fd = lock_create(dirfd, lk);
        if (fd >= 0)
            return fd;
        if (fd != -EEXIST)
            return fd;
        /* the name exists: look before opening (never open a device) */
        struct stat st;
        if (fstatat(dirfd, lk, &st, AT_SYMLINK_NOFOLLOW) < 0) {
            if (errno == ENOENT)
                continue; /* its holder just removed it */
            return uds__err();
        }
        if (!S_ISREG(st.st_mode))
            return UDS_ELOCKFILE;
        fd = UDS__RETRY(openat(dirfd, lk, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC));
        if (fd < 0) {
            if (errno == ENOENT)
                continue;
            return errno == ELOOP ? UDS_ELOCKFILE : uds__err();
        }
        if (!is_ours(fd)) {
            close(fd);
            return UDS_ELOCKFILE;
        }
        r = lock_wait(fd, deadline);
        if (r < 0) {
            close(fd);
            return r;
        }
        /* a previous holder removes the file when done: a lock on a file
           that no longer has the name protects nothing */
        if (same_file(dirfd, lk, fd))
            return fd;
        close(fd);
    }
    return -EDEADLK;
}

void uds__lock_drop(int dirfd, const char *name, int fd)
{
    if (fd < 0)
        return;
    char lk[NAME_MAX + 1];
    if (lock_name(lk, sizeof(lk), name) == 0 && is_ours(fd) && same_file(dirfd, lk, fd))
        unlinkat(dirfd, lk, 0); /* still locked: nobody else can be relying on it */
    close(fd);
}

/*
 * /proc/locks lines look like
 *   "1: FLOCK  ADVISORY  WRITE 1234 08:01:5678 0 EOF"
 * (blocked waiters have "->" after the number); the device is the
 * kernel's major:minor in hex.
 */
int uds_listen_lock_holder(const uds_addr *addr)
{
    const char *path = uds_addr_path(addr);
    if (!path)
        return -EINVAL;
    char name[NAME_MAX + 1], lk[NAME_MAX + 1];
    int dfd = uds__pin_parent(path, name, sizeof(name));
    if (dfd < 0)
        return dfd;
    struct stat st;
    int r = lock_name(lk, sizeof(lk), name);
    if (r == 0 && fstatat(dfd, lk, &st, AT_SYMLINK_NOFOLLOW) < 0)
        r = uds__err();
    close(dfd);
    if (r < 0)
        return r;
    FILE *f = fopen("/proc/locks", "re");
    if (!f)
        return uds__err();
    char line[256];
    int pid = 0;
    while (fgets(line, sizeof(line), f)) {
        char type[16], mode[16], rw[16];
        long p;
        unsigned maj, min;
        unsigned long ino;
        if (strstr(line, "->"))
            continue;
        if (sscanf(line, "%*d: %15s %15s %15s %ld %x:%x:%lu", type, mode, rw, &p, &maj, &min, &ino) != 7)
            continue;
        if (strcmp(type, "FLOCK") || maj != major(st.st_dev) || min != minor(st.st_dev) ||
            ino != (unsigned long)st.st_ino)
            continue;
        if (p > 0) {
            pid = (int)p;
            break;
        }
    }
    fclose(f);
    return pid;
}

/* ---- the trusted chain ------------------------------------------------------ */

/*
 * A directory that only root and we can change: owned by one of us, and
 * not writable by group or other unless sticky (in a sticky directory
 * others may add entries but cannot rename or remove ours). The same
 * rule as OpenSSH's StrictModes applies to the path of a key file.
 */
static int dir_trusted(const struct stat *st, uid_t me)
{
    if (!S_ISDIR(st->st_mode) || (st->st_uid != 0 && st->st_uid != me))
        return 0;
    return !(st->st_mode & (S_IWGRP | S_IWOTH)) || (st->st_mode & S_ISVTX);
}

/* 1 if "/" and every directory on the canonical absolute path p (p
   included) is trusted. */
static int canon_trusted(const char *p, uid_t me)
{
    char b[PATH_MAX];
    size_t n = strlen(p);
    if (p[0] != '/' || n >= sizeof(b))
        return 0;
    memcpy(b, p, n + 1);
    struct stat st;
    if (lstat("/", &st) < 0 || !dir_trusted(&st, me))
        return 0;
    for (size_t i = 1; i <= n; i++) {
        if (b[i] != '/' && b[i] != '\0')
            continue;
        if (b[i - 1] == '/')
            continue; /* "//" or a trailing '/' */
        char c = b[i];
        b[i] = '\0';
        int ok = lstat(b, &st) == 0 && dir_trusted(&st, me);
        b[i] = c;
        if (!ok)
            return 0;
    }
    return 1;
}

/*
 * Why a walk of our own instead of realpath(3): realpath says where a path
 * leads now, not who could make it lead elsewhere. This resolves the
 * directory part of `path` one component at a time the way the kernel
 * does, starting at "/" or at the canonical cwd, and checks every
 * directory it enters and every symlink it follows (a symlink must be
 * root's or ours: it sits in a trusted directory, so nobody else can
 * replace it, and its target is walked and checked in turn, up to 40
 * links as the kernel allows). Then the walk's end must be the directory
 * open as dirfd, and the canonical path of dirfd (its /proc link) must be
 * trusted too. The walk can be fooled only by someone who can change a
 * directory on it, and every such directory makes it answer 0 first.
 */
int uds__chain_trusted(const char *path, int dirfd)
{
    uid_t me = geteuid();
    char cur[PATH_MAX], rest[PATH_MAX], tmp[PATH_MAX], t2[PATH_MAX];
    const char *slash = strrchr(path, '/');
    size_t dl = slash ? (size_t)(slash - path) : 0;
    if (dl >= sizeof(rest))
        return 0;
    memcpy(rest, path, dl);
    rest[dl] = '\0';
    if (path[0] == '/')
        strcpy(cur, "/");
    else if (!getcwd(cur, sizeof(cur)) || cur[0] != '/')
        return 0;
    if (!canon_trusted(cur, me))
        return 0;
    int links = 0;
    char *r = rest;
    while (*r) {
        while (*r == '/')
            r++;
        if (!*r)
            break;
        char *end = strchrnul(r, '/');
        size_t cl = (size_t)(end - r);
        char *next = end;
        if (cl == 1 && r[0] == '.') {
            r = next;
            continue;
        }
        if (cl == 2 && r[0] == '.' && r[1] == '.') {
            char *s = strrchr(cur, '/');
            if (s == cur)
                cur[1] = '\0';
            else
                *s = '\0';
            r = next;
            continue;
        }
        size_t ul = strlen(cur);
        if (ul + 1 + cl >= sizeof(tmp))
            return 0;
        memcpy(tmp, cur, ul);
        size_t k = ul;
        if (ul > 1)
            tmp[k++] = '/';
        memcpy(tmp + k, r, cl);
        tmp[k + cl] = '\0';
        struct stat st;
        if (lstat(tmp, &st) < 0)
            return 0;
        if (S_ISLNK(st.st_mode)) {
            if ((st.st_uid != 0 && st.st_uid != me) || ++links > 40)
                return 0;
            ssize_t tl = readlink(tmp, t2, sizeof(t2) - 1);
            if (tl <= 0)
                return 0;
            size_t nl = strlen(next);
            if ((size_t)tl + nl + 1 >= sizeof(t2))
                return 0;
            memcpy(t2 + tl, next, nl + 1); /* the target, then what is left */
            memcpy(rest, t2, (size_t)tl + nl + 1);
            r = rest;
            if (rest[0] == '/')
                strcpy(cur, "/");
            continue;
        }
        if (!dir_trusted(&st, me))
            return 0;
        memcpy(cur, tmp, k + cl + 1);
        r = next;
    }
    struct stat a, b;
    if (fstat(dirfd, &a) < 0 || lstat(cur, &b) < 0 || a.st_dev != b.st_dev || a.st_ino != b.st_ino)
        return 0;
    char pp[64];
    snprintf(pp, sizeof(pp), "/proc/self/fd/%d", dirfd);
    ssize_t n = readlink(pp, tmp, sizeof(tmp) - 1);
    if (n <= 0)
        return 0;
    tmp[n] = '\0';
    if (!canon_trusted(tmp, me) || lstat(tmp, &b) < 0 || a.st_dev != b.st_dev || a.st_ino != b.st_ino)
        return 0;
    return 1;
}
