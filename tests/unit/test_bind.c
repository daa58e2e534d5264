/*
 * test_bind.c — the safe-bind matrix: what uds_listen() does when the path
 * already exists, permissions before listen(), removal on close only when
 * the file is still ours, and two-server races on a stale path.
 */
#include "testutil.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <unistd.h>

static char *dir;

static int setup(void **state)
{
    (void)state;
    dir = tu_tmpdir();
    return dir ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    tu_rmtree(dir);
    free(dir);
    dir = NULL;
    return 0;
}

/* What we compare before/after: identity, type, mode, target/content. */
struct snap {
    struct stat st;
    char data[256];
    ssize_t dlen;
};

static void take(struct snap *s, const char *p)
{
    memset(s, 0, sizeof(*s));
    assert_int_equal(lstat(p, &s->st), 0);
    s->dlen = -1;
    if (S_ISLNK(s->st.st_mode)) {
        s->dlen = readlink(p, s->data, sizeof(s->data));
    } else if (S_ISREG(s->st.st_mode)) {
        int fd = open(p, O_RDONLY | O_CLOEXEC);
        assert_true(fd >= 0);
        s->dlen = read(fd, s->data, sizeof(s->data));
        close(fd);
    }
}

static void same(const struct snap *a, const char *p)
{
    struct snap b;
    take(&b, p);
    assert_int_equal(a->st.st_ino, b.st.st_ino);
    assert_int_equal(a->st.st_dev, b.st.st_dev);
    assert_int_equal(a->st.st_mode, b.st.st_mode);
    assert_int_equal(a->st.st_uid, b.st.st_uid);
    assert_int_equal(a->st.st_size, b.st.st_size);
    assert_int_equal(a->dlen, b.dlen);
    if (a->dlen > 0)
        assert_memory_equal(a->data, b.data, (size_t)a->dlen);
}

static int exists(const char *p)
{
    struct stat st;
    return lstat(p, &st) == 0;
}

static void no_lock_left(const char *p)
{
    char lp[4200];
    snprintf(lp, sizeof(lp), "%s%s", p, UDS_LOCK_SUFFIX);
    assert_false(exists(lp));
    snprintf(lp, sizeof(lp), "%s.lock", p); /* the name before 0.2 */
    assert_false(exists(lp));
}

static void assert_cloexec(int fd)
{
    int fl = fcntl(fd, F_GETFD);
    assert_true(fl >= 0);
    assert_true(fl & FD_CLOEXEC);
}

/* uds_listen on p must fail with `want` and leave p exactly as it was. */
static void refused(const char *p, int want)
{
    struct snap before;
    take(&before, p);
    uds_addr a;
    uds_listener l;
    assert_int_equal(uds_addr_parse(&a, p), 0);
    int r = uds_listen(&l, &a, NULL);
    if (r != want)
        fail_msg("listen %s: got %d (%s), want %d", p, r, uds_strerror(r), want);
    assert_int_equal(l.fd, -1);
    same(&before, p);
    no_lock_left(p);
    /* the library's own path-less API must not have touched it either */
    uds_listener_close(&l);
    same(&before, p);
}

static void test_regular_file(void **state)
{
    (void)state;
    const char *p = tu_path(dir, "file");
    int fd = open(p, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, "precious data\n", 14), 14);
    close(fd);
    refused(p, -EEXIST);
    /* an empty file too (the content check above is not what saves it) */
    const char *q = tu_path(dir, "empty");
    fd = open(q, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    close(fd);
    refused(q, -EEXIST);
}

static void test_directory(void **state)
{
    (void)state;
    const char *p = tu_path(dir, "adir");
    assert_int_equal(mkdir(p, 0755), 0);
    refused(p, -EEXIST);
}

static void test_fifo(void **state)
{
    (void)state;
    const char *p = tu_path(dir, "fifo");
    assert_int_equal(mkfifo(p, 0644), 0);
    refused(p, -EEXIST);
}

static void test_symlink_dangling(void **state)
{
    (void)state;
    const char *p = tu_path(dir, "dangling");
    char target[4096];
    snprintf(target, sizeof(target), "%s", tu_path(dir, "nowhere"));
    assert_int_equal(symlink(target, p), 0);
    refused(p, -EEXIST);
    assert_false(exists(target)); /* bind did not create the target */
}

static void test_symlink_to_file(void **state)
{
    (void)state;
    const char *p = tu_path(dir, "link");
    char target[4096];
    snprintf(target, sizeof(target), "%s", tu_path(dir, "target"));
    int fd = open(target, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0640);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, "target data", 11), 11);
    close(fd);
    struct snap t;
    take(&t, target);
    assert_int_equal(symlink(target, p), 0);
    refused(p, -EEXIST);
    same(&t, target);
}

/* A symlink to a socket: still a symlink, never followed or replaced. */
static void test_symlink_to_socket(void **state)
{
    (void)state;
    const char *s = tu_path(dir, "real.sock");
    const char *p = tu_path(dir, "alias.sock");
    uds_addr a;
    uds_listener l;
    assert_int_equal(uds_addr_parse(&a, s), 0);
    assert_int_equal(uds_listen(&l, &a, NULL), 0);
    close(l.fd); /* the real socket is now stale */
    l.fd = -1;
    close(l.dirfd); /* the listener's pinned directory goes with it */
    l.dirfd = -1;
    assert_int_equal(symlink(s, p), 0);
    struct snap ss;
    take(&ss, s);
    refused(p, -EEXIST);
    same(&ss, s);
}

static void test_live_socket(void **state)
{
    (void)state;
    const char *p = tu_path(dir, "live.sock");
    uds_addr a;
    uds_listener l;
    assert_int_equal(uds_addr_parse(&a, p), 0);
    assert_int_equal(uds_listen(&l, &a, NULL), 0);
    assert_cloexec(l.fd);
    refused(p, -EADDRINUSE);
    /* for every socket type we might try to bind there */
    uds_listen_opts o = {.type = UDS_SEQPACKET};
    uds_listener l2;
    assert_int_equal(uds_listen(&l2, &a, &o), -EADDRINUSE);
    o.type = UDS_DGRAM;
    assert_int_equal(uds_listen(&l2, &a, &o), -EADDRINUSE);
    /* the original server still works (its first pending connections are
       the probes, which closed at once: drain them) */
    assert_int_equal(uds_set_nonblock(l.fd, 1), 0);
    int pr;
    while ((pr = uds_accept(l.fd, NULL, 0)) >= 0)
        close(pr);
    assert_int_equal(pr, -EAGAIN);
    assert_int_equal(uds_set_nonblock(l.fd, 0), 0);
    int c = uds_connect(&a, NULL);
    assert_true(c >= 0);
    int s = uds_accept(l.fd, NULL, 0);
    assert_true(s >= 0);
    assert_int_equal(uds_write_all(c, "hi", 2), 2);
    char b[2];
    assert_int_equal(uds_read_exact(s, b, 2), 2);
    close(c);
    close(s);
    uds_listener_close(&l);
    assert_false(exists(p));
}

static void test_live_full_backlog(void **state)
{
    (void)state;
    const char *p = tu_path(dir, "full.sock");
    uds_addr a;
    uds_listener l;
    uds_listen_opts o = {.backlog = 1};
    assert_int_equal(uds_addr_parse(&a, p), 0);
    assert_int_equal(uds_listen(&l, &a, &o), 0);
    int fds[64], n = 0, last = 0;
    for (n = 0; n < 64; n++) {
        fds[n] = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        assert_true(fds[n] >= 0);
        if (connect(fds[n], &a.u.sa, a.len) < 0) {
            last = errno;
            close(fds[n]);
            break;
        }
    }
    assert_int_equal(last, EAGAIN); /* the backlog really is full */
    assert_true(n >= 1);
    refused(p, -EADDRINUSE);
    for (int i = 0; i < n; i++)
        close(fds[i]);
    uds_listener_close(&l);
}

static void test_other_type(void **state)
{
    (void)state;
    /* a datagram socket bound at the path; we want a stream listener */
    const char *p = tu_path(dir, "dgram.sock");
    uds_addr a;
    assert_int_equal(uds_addr_parse(&a, p), 0);
    int d = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    assert_true(d >= 0);
    assert_int_equal(bind(d, &a.u.sa, a.len), 0);
    refused(p, -EADDRINUSE);
    /* and a stream listener, probed by a seqpacket server */
    const char *q = tu_path(dir, "stream.sock");
    uds_addr b;
    uds_listener l, l2;
    assert_int_equal(uds_addr_parse(&b, q), 0);
    assert_int_equal(uds_listen(&l, &b, NULL), 0);
    uds_listen_opts o = {.type = UDS_SEQPACKET};
    struct snap s;
    take(&s, q);
    assert_int_equal(uds_listen(&l2, &b, &o), -EADDRINUSE);
    same(&s, q);
    uds_listener_close(&l);
    close(d);
}

static void test_stale_replaced(void **state)
{
    (void)state;
    const char *p = tu_path(dir, "stale.sock");
    uds_addr a;
    assert_int_equal(uds_addr_parse(&a, p), 0);
    int d = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true(d >= 0);
    assert_int_equal(bind(d, &a.u.sa, a.len), 0);
    assert_int_equal(listen(d, 4), 0);
    close(d); /* a crashed server: the file stays, nobody listens */
    struct stat old;
    assert_int_equal(lstat(p, &old), 0);
    assert_true(S_ISSOCK(old.st_mode));

    uds_listener l;
    assert_int_equal(uds_listen(&l, &a, NULL), 0);
    struct stat now;
    assert_int_equal(lstat(p, &now), 0);
    assert_true(S_ISSOCK(now.st_mode));
    assert_int_equal(now.st_ino, l.ino);
    assert_int_equal(now.st_dev, l.dev);
    no_lock_left(p);
    int c = uds_connect(&a, NULL); /* it is really ours now */
    assert_true(c >= 0);
    close(c);
    uds_listener_close(&l);
    assert_false(exists(p));

    /* a stale datagram socket is replaced by a datagram server too */
    d = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    assert_int_equal(bind(d, &a.u.sa, a.len), 0);
    close(d);
    uds_listen_opts o = {.type = UDS_DGRAM};
    assert_int_equal(uds_listen(&l, &a, &o), 0);
    assert_cloexec(l.fd);
    uds_listener_close(&l);
    assert_false(exists(p));
}

/*
 * The lock file is PATH.udsock.lock. What already has that name and is
 * not ours (a symlink, another program's file, a FIFO) is refused with
 * UDS_ELOCKFILE and left exactly as it was; another tool's PATH.lock is
 * not ours either and is never touched (defect 5: 0.1 locked and then
 * removed an empty PATH.lock, e.g. s6-ipcserver's); a crash leftover with
 * our marker is used and removed.
 */
static void test_lock_file(void **state)
{
    (void)state;
    const char *p = tu_path(dir, "lk.sock");
    char lp[4200], other[4200], victim[4096];
    snprintf(lp, sizeof(lp), "%s%s", p, UDS_LOCK_SUFFIX);
    snprintf(other, sizeof(other), "%s.lock", p);
    snprintf(victim, sizeof(victim), "%s", tu_path(dir, "victim"));
    uds_addr a;
    uds_listener l;
    assert_int_equal(uds_addr_parse(&a, p), 0);
    struct snap s;

    assert_int_equal(symlink(victim, lp), 0);
    take(&s, lp);
    assert_int_equal(uds_listen(&l, &a, NULL), UDS_ELOCKFILE);
    same(&s, lp);
    assert_false(exists(victim));
    assert_false(exists(p));
    assert_int_equal(unlink(lp), 0);

    /* a regular file without our marker */
    int fd = open(lp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    assert_int_equal(write(fd, "x", 1), 1);
    close(fd);
    take(&s, lp);
    assert_int_equal(uds_listen(&l, &a, NULL), UDS_ELOCKFILE);
    same(&s, lp);
    assert_false(exists(p));
    assert_int_equal(unlink(lp), 0);
    fd = open(lp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644); /* empty */
    close(fd);
    assert_int_equal(uds_listen(&l, &a, NULL), UDS_ELOCKFILE);
    assert_true(exists(lp));
    assert_int_equal(unlink(lp), 0);

    /* a FIFO (opening it could block or have effects: it is not opened) */
    assert_int_equal(mkfifo(lp, 0600), 0);
    take(&s, lp);
    assert_int_equal(uds_listen(&l, &a, NULL), UDS_ELOCKFILE);
    same(&s, lp);
    assert_int_equal(unlink(lp), 0);

    /* another program's PATH.lock (empty, as s6's): left alone, and our
       own lock file comes and goes */
    fd = open(other, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    close(fd);
    take(&s, other);
    assert_int_equal(uds_listen(&l, &a, NULL), 0);
    same(&s, other);
    assert_false(exists(lp));
    uds_listener_close(&l);
    same(&s, other);
    assert_int_equal(unlink(other), 0);

    /* a leftover of ours (crashed holder): used, then removed */
    fd = open(lp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    assert_int_equal(write(fd, UDS_LOCK_MARKER "pid 1\n", sizeof(UDS_LOCK_MARKER) + 5),
                     (ssize_t)sizeof(UDS_LOCK_MARKER) + 5);
    close(fd);
    assert_int_equal(uds_listen(&l, &a, NULL), 0);
    assert_false(exists(lp));
    uds_listener_close(&l);

    /* UDS_NO_LOCK: no lock file is ever created */
    uds_listen_opts o = {.flags = UDS_NO_LOCK};
    assert_int_equal(uds_listen(&l, &a, &o), 0);
    no_lock_left(p);
    uds_listener_close(&l);
}

static void check_mode(unsigned mode, mode_t umask_val)
{
    const char *p = tu_path(dir, "mode.sock");
    uds_addr a;
    uds_listener l;
    uds_listen_opts o = {.mode = mode};
    mode_t old = umask(umask_val);
    assert_int_equal(uds_addr_parse(&a, p), 0);
    assert_int_equal(uds_listen(&l, &a, &o), 0);
    assert_int_equal(umask(old), umask_val); /* the umask was restored */
    struct stat st;
    assert_int_equal(lstat(p, &st), 0);
    assert_true(S_ISSOCK(st.st_mode));
    assert_int_equal(st.st_mode & 07777, mode);
    uds_listener_close(&l);
}

static void test_mode(void **state)
{
    (void)state;
    check_mode(0600, 022);
    check_mode(0660, 022);
    check_mode(0666, 077); /* wider than the umask allows: still exact */
    check_mode(0700, 0);
    /* mode 0: the kernel default, 0777 & ~umask */
    const char *p = tu_path(dir, "def.sock");
    uds_addr a;
    uds_listener l;
    mode_t old = umask(027);
    assert_int_equal(uds_addr_parse(&a, p), 0);
    assert_int_equal(uds_listen(&l, &a, NULL), 0);
    umask(old);
    struct stat st;
    assert_int_equal(lstat(p, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0750);
    uds_listener_close(&l);
}

/*
 * A default ACL on the directory is applied by the kernel on top of the
 * umask and can take bits away from the requested mode; the mode must still
 * be exact. The ACL is written as the raw system.posix_acl_default xattr
 * (no libacl needed): user::rwx group::--- other::---.
 */
static void test_mode_default_acl(void **state)
{
    (void)state;
    struct {
        uint32_t version;
        struct {
            uint16_t tag, perm;
            uint32_t id;
        } e[3];
    } acl = {2, {{0x01, 7, 0xffffffffu}, {0x04, 0, 0xffffffffu}, {0x20, 0, 0xffffffffu}}};
    const char *sub = tu_path(dir, "acl");
    assert_int_equal(mkdir(sub, 0777), 0);
    if (setxattr(sub, "system.posix_acl_default", &acl, sizeof(acl), 0) < 0) {
        skip(); /* file system without POSIX ACLs */
        return;
    }
    char p[4096];
    snprintf(p, sizeof(p), "%s/s.sock", sub);
    /* first prove the ACL really takes bits away from a plain bind */
    uds_addr a;
    assert_int_equal(uds_addr_parse(&a, p), 0);
    int d = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    mode_t old = umask(0);
    assert_int_equal(bind(d, &a.u.sa, a.len), 0);
    umask(old);
    struct stat st;
    assert_int_equal(lstat(p, &st), 0);
    close(d);
    assert_int_equal(unlink(p), 0);
    assert_int_equal(st.st_mode & 0777, 0700);
    uds_listener l;
    uds_listen_opts o = {.mode = 0660};
    assert_int_equal(uds_listen(&l, &a, &o), 0);
    assert_int_equal(lstat(p, &st), 0);
    assert_int_equal(st.st_mode & 07777, 0660);
    uds_listener_close(&l);
}

/* The mode is in place before listen(): a forked child races to connect. */
static void test_mode_before_listen(void **state)
{
    (void)state;
    const char *p = tu_path(dir, "early.sock");
    uds_addr a;
    uds_listener l;
    assert_int_equal(uds_addr_parse(&a, p), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        /* observe the file as soon as it appears, as an unprivileged
           attacker would: the first mode seen is never wider than asked
           (a bind by name creates it with no bits and then sets 0600) */
        uint64_t end = tu_now_ms() + 5000;
        struct stat st;
        while (tu_now_ms() < end)
            if (lstat(p, &st) == 0)
                _exit((st.st_mode & 0777 & ~0600) == 0 ? 0 : 1);
        _exit(2);
    }
    usleep(20000);
    uds_listen_opts o = {.mode = 0600};
    assert_int_equal(uds_listen(&l, &a, &o), 0);
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
    uds_listener_close(&l);
}

static void test_owner(void **state)
{
    (void)state;
    if (geteuid() != 0) {
        skip();
        return;
    }
    const char *p = tu_path(dir, "own.sock");
    uds_addr a;
    uds_listener l;
    uds_listen_opts o = {.mode = 0660, .set_owner = 1, .owner = 65534, .group = 65534};
    assert_int_equal(uds_addr_parse(&a, p), 0);
    assert_int_equal(uds_listen(&l, &a, &o), 0);
    struct stat st;
    assert_int_equal(lstat(p, &st), 0);
    assert_int_equal(st.st_uid, 65534);
    assert_int_equal(st.st_gid, 65534);
    assert_int_equal(st.st_mode & 07777, 0660);
    uds_listener_close(&l);
    assert_false(exists(p));

    /* -1 leaves that part alone */
    o.owner = (uid_t)-1;
    o.group = 65534;
    assert_int_equal(uds_listen(&l, &a, &o), 0);
    assert_int_equal(lstat(p, &st), 0);
    assert_int_equal(st.st_uid, geteuid());
    assert_int_equal(st.st_gid, 65534);
    uds_listener_close(&l);
}

static void test_close_only_ours(void **state)
{
    (void)state;
    const char *p = tu_path(dir, "mine.sock");
    uds_addr a;
    uds_listener l;
    assert_int_equal(uds_addr_parse(&a, p), 0);
    assert_int_equal(uds_listen(&l, &a, NULL), 0);
    /* someone replaces the file with their own socket at the same path */
    assert_int_equal(unlink(p), 0);
    int d = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_int_equal(bind(d, &a.u.sa, a.len), 0);
    assert_int_equal(listen(d, 4), 0);
    struct snap s;
    take(&s, p);
    uds_listener_close(&l);
    same(&s, p); /* theirs stays */
    int c = uds_connect(&a, NULL);
    assert_true(c >= 0);
    close(c);
    close(d);
    assert_int_equal(unlink(p), 0);

    /* replaced by a regular file: stays too */
    assert_int_equal(uds_listen(&l, &a, NULL), 0);
    assert_int_equal(unlink(p), 0);
    int fd = open(p, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    assert_int_equal(write(fd, "x", 1), 1);
    close(fd);
    take(&s, p);
    uds_listener_close(&l);
    same(&s, p);
    assert_int_equal(unlink(p), 0);

    /* UDS_NO_UNLINK leaves our own file; close twice is harmless */
    uds_listen_opts o = {.flags = UDS_NO_UNLINK};
    assert_int_equal(uds_listen(&l, &a, &o), 0);
    uds_listener_close(&l);
    uds_listener_close(&l);
    assert_true(exists(p));
    /* ... and it is now stale: the next server takes it over */
    assert_int_equal(uds_listen(&l, &a, NULL), 0);
    uds_listener_close(&l);
    assert_false(exists(p));

    uds_listener z;
    memset(&z, 0, sizeof(z));
    z.fd = -1;
    uds_listener_close(&z);
    uds_listener_close(NULL);
}

/* Missing directory and other plain errors: nothing is created. */
static void test_errors(void **state)
{
    (void)state;
    uds_addr a;
    uds_listener l;
    assert_int_equal(uds_addr_parse(&a, tu_path(dir, "nodir/x.sock")), 0);
    assert_int_equal(uds_listen(&l, &a, NULL), -ENOENT);
    assert_int_equal(uds_listen(NULL, &a, NULL), -EINVAL);
    memset(&a, 0, sizeof(a));
    assert_int_equal(uds_listen(&l, &a, NULL), -EINVAL);
    a.kind = UDS_ADDR_UNNAMED;
    assert_int_equal(uds_listen(&l, &a, NULL), -EINVAL);
    assert_int_equal(uds_addr_parse(&a, "tcp:127.0.0.1:0"), 0);
    uds_listen_opts o = {.type = UDS_DGRAM};
    assert_int_equal(uds_listen(&l, &a, &o), -EPROTOTYPE);
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    assert_int_equal(uds_listener_from_fd(&l, fds[0]), -ENOTSOCK);
    close(fds[0]);
    close(fds[1]);
}

/* An inherited bound socket: wrapped, never unlinked. */
static void test_from_fd(void **state)
{
    (void)state;
    const char *p = tu_path(dir, "inh.sock");
    uds_addr a;
    assert_int_equal(uds_addr_parse(&a, p), 0);
    int d = socket(AF_UNIX, SOCK_STREAM, 0); /* no CLOEXEC, as inherited */
    assert_int_equal(bind(d, &a.u.sa, a.len), 0);
    assert_int_equal(listen(d, 4), 0);
    uds_listener l;
    assert_int_equal(uds_listener_from_fd(&l, d), 0);
    assert_int_equal(l.type, UDS_STREAM);
    assert_true(uds_addr_equal(&l.addr, &a));
    assert_cloexec(l.fd);
    uds_listener_close(&l);
    assert_true(exists(p));
}

/*
 * A stale socket the caller may not connect to (EACCES) cannot be judged:
 * it must be left alone and the error reported. Run as uid 65534 against a
 * root-owned 0600 socket in a world-writable sticky directory.
 */
static void test_undecidable_kept(void **state)
{
    (void)state;
    if (geteuid() != 0) {
        skip();
        return;
    }
    const char *sub = tu_path(dir, "pub");
    assert_int_equal(mkdir(sub, 0700), 0);
    assert_int_equal(chmod(dir, 0711), 0);
    assert_int_equal(chmod(sub, 01777), 0);
    char p[4096];
    snprintf(p, sizeof(p), "%s/root.sock", sub);
    uds_addr a;
    assert_int_equal(uds_addr_parse(&a, p), 0);
    int d = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    mode_t old = umask(077);
    assert_int_equal(bind(d, &a.u.sa, a.len), 0);
    umask(old);
    close(d); /* stale, but only root could find out */
    struct snap s;
    take(&s, p);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        if (setgroups(0, NULL) < 0 || setresgid(65534, 65534, 65534) < 0 ||
            setresuid(65534, 65534, 65534) < 0)
            _exit(10);
        uds_listener l;
        int r = uds_listen(&l, &a, NULL);
        _exit(r == -EACCES ? 0 : 11);
    }
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
    same(&s, p);
    no_lock_left(p);
}

#define RACERS 8

/*
 * N processes start at the same moment on the same stale path. Exactly one
 * may win; the others must see it as live (-EADDRINUSE). Without the lock
 * two could both judge the file stale and each unlink the other's socket.
 */
static void test_race(void **state)
{
    (void)state;
    const char *p = tu_path(dir, "race.sock");
    char path[4096];
    snprintf(path, sizeof(path), "%s", p);
    uds_addr a;
    assert_int_equal(uds_addr_parse(&a, path), 0);

    for (int round = 0; round < 5; round++) {
        int d = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        assert_int_equal(bind(d, &a.u.sa, a.len), 0);
        close(d); /* stale */

        int go[2], res[2], rel[2];
        assert_int_equal(pipe2(go, O_CLOEXEC), 0);
        assert_int_equal(pipe2(res, O_CLOEXEC), 0);
        assert_int_equal(pipe2(rel, O_CLOEXEC), 0);
        pid_t pids[RACERS];
        for (int i = 0; i < RACERS; i++) {
            pids[i] = fork();
            assert_true(pids[i] >= 0);
            if (pids[i] == 0) {
                close(go[1]);
                close(res[0]);
                close(rel[1]);
                char c;
                if (read(go[0], &c, 1) != 0)
                    _exit(3);
                uds_listener l;
                int r = uds_listen(&l, &a, NULL);
                if (write(res[1], &r, sizeof(r)) != (ssize_t)sizeof(r))
                    _exit(3);
                (void)!read(rel[0], &c, 1); /* hold until released */
                if (r == 0)
                    uds_listener_close(&l);
                _exit(0);
            }
        }
        close(go[0]);
        close(res[1]);
        close(rel[0]);
        close(go[1]); /* start! */
        int wins = 0, inuse = 0;
        for (int i = 0; i < RACERS; i++) {
            int r;
            assert_int_equal(uds_read_exact(res[0], &r, sizeof(r)), sizeof(r));
            if (r == 0)
                wins++;
            else if (r == -EADDRINUSE)
                inuse++;
            else
                fail_msg("racer got %d (%s)", r, uds_strerror(r));
        }
        /* the winner's socket is the one at the path, and it answers */
        int c = uds_connect(&a, NULL);
        assert_true(c >= 0);
        close(c);
        close(rel[1]);
        close(res[0]);
        for (int i = 0; i < RACERS; i++) {
            int status;
            assert_int_equal(waitpid(pids[i], &status, 0), pids[i]);
            assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
        }
        assert_int_equal(wins, 1);
        assert_int_equal(inuse, RACERS - 1);
        no_lock_left(path);
        assert_false(exists(path)); /* the winner removed its own file */
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_regular_file, setup, teardown),
        cmocka_unit_test_setup_teardown(test_directory, setup, teardown),
        cmocka_unit_test_setup_teardown(test_fifo, setup, teardown),
        cmocka_unit_test_setup_teardown(test_symlink_dangling, setup, teardown),
        cmocka_unit_test_setup_teardown(test_symlink_to_file, setup, teardown),
        cmocka_unit_test_setup_teardown(test_symlink_to_socket, setup, teardown),
        cmocka_unit_test_setup_teardown(test_live_socket, setup, teardown),
        cmocka_unit_test_setup_teardown(test_live_full_backlog, setup, teardown),
        cmocka_unit_test_setup_teardown(test_other_type, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stale_replaced, setup, teardown),
        cmocka_unit_test_setup_teardown(test_lock_file, setup, teardown),
        cmocka_unit_test_setup_teardown(test_mode, setup, teardown),
        cmocka_unit_test_setup_teardown(test_mode_default_acl, setup, teardown),
        cmocka_unit_test_setup_teardown(test_mode_before_listen, setup, teardown),
        cmocka_unit_test_setup_teardown(test_owner, setup, teardown),
        cmocka_unit_test_setup_teardown(test_close_only_ours, setup, teardown),
        cmocka_unit_test_setup_teardown(test_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_from_fd, setup, teardown),
        cmocka_unit_test_setup_teardown(test_undecidable_kept, setup, teardown),
        cmocka_unit_test_setup_teardown(test_race, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
