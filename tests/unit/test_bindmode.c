/*
 * test_bindmode.c — the socket file's mode is in place before anyone can
 * use the socket, checked at the exact moment instead of by a racing
 * observer (test_bind's test_mode_before_listen sees a late mode only when
 * its child happens to look inside the window).
 *
 * This binary is linked with -Wl,--wrap=bind,--wrap=listen
 * (cmake/UdsTest.cmake): every bind() and listen() of the library goes
 * through the wrappers below, which record the file's mode (lstat of the
 * very name the library bound, "/proc/self/fd/DIRFD/NAME" or the path
 * itself) right after bind() returns and right before listen() runs.
 *
 * What "before" means, per type:
 *   - stream and seqpacket: a client can connect only once listen() has
 *     run, so at listen() the mode must be exactly the one asked for; at
 *     bind() the file may be narrower (a bind by name creates it with no
 *     permission bit; a default ACL can take bits away) but never wider.
 *   - datagram: the socket receives from the moment bind() creates the
 *     file, so at bind() the file must never be wider than asked (the
 *     umask of the pinned bind gives exactly the mode; a bind by name gives
 *     none), and the exact mode must be there when uds_listen returns.
 * Each for the three ways the library binds: pinned (UDS_BIND_PINNED:
 * /proc/self/fd/DIRFD/NAME under a umask), by name in a trusted chain
 * (the default here: no bits, then chmod of the /proc link), and without
 * /proc (the UDS__FEAT_PROCFD seam: by name, then fchmodat), plus a
 * directory with a default ACL that takes bits away from the pinned bind.
 */
#include "testutil.h"
#include "internal.h" /* uds__features: the no-/proc seam */

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/xattr.h>
#include <unistd.h>

int __real_bind(int fd, const struct sockaddr *sa, socklen_t len);
int __real_listen(int fd, int backlog);
int __wrap_bind(int fd, const struct sockaddr *sa, socklen_t len);
int __wrap_listen(int fd, int backlog);

/* What the wrappers saw of the last path bind and the listen after it. */
static struct {
    int fd;                 /* the socket of the last path bind (-1 none) */
    char path[sizeof(((struct sockaddr_un *)0)->sun_path) + 1];
    int binds;              /* successful path binds seen */
    int bind_mode;          /* st_mode & 07777 right after bind, -1 unknown */
    int listens;            /* listen() calls on that socket */
    int listen_mode;        /* st_mode & 07777 right before listen, -1 unknown */
} seen;

static void seen_reset(void)
{
    memset(&seen, 0, sizeof(seen));
    seen.fd = -1;
    seen.bind_mode = seen.listen_mode = -1;
}

static int mode_of(const char *p)
{
    struct stat st;
    if (lstat(p, &st) < 0 || !S_ISSOCK(st.st_mode))
        return -1;
    return (int)(st.st_mode & 07777);
}

/* Why record the name from the sockaddr: it is the string the kernel
   resolved, so lstat of it finds the file this bind created (its DIRFD is
   still open until uds_listen returns). */
int __wrap_bind(int fd, const struct sockaddr *sa, socklen_t len)
{
    int r = __real_bind(fd, sa, len);
    int e = errno;
    const struct sockaddr_un *un = (const struct sockaddr_un *)sa;
    if (r == 0 && sa->sa_family == AF_UNIX && len > sizeof(sa_family_t) &&
        un->sun_path[0] != '\0') {
        size_t n = len - offsetof(struct sockaddr_un, sun_path);
        if (n >= sizeof(seen.path))
            n = sizeof(seen.path) - 1;
        memcpy(seen.path, un->sun_path, n);
        seen.path[n] = '\0';
        seen.fd = fd;
        seen.binds++;
        seen.bind_mode = mode_of(seen.path);
    }
    errno = e;
    return r;
}

/* The mode at the instant before the socket starts to accept. */
int __wrap_listen(int fd, int backlog)
{
    if (fd == seen.fd) {
        seen.listens++;
        seen.listen_mode = mode_of(seen.path);
    }
    return __real_listen(fd, backlog);
}

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
    __atomic_fetch_or(&uds__features, UDS__FEAT_PROCFD, __ATOMIC_RELAXED);
    tu_rmtree(dir);
    free(dir);
    dir = NULL;
    return 0;
}

enum how { PINNED, BY_NAME, NO_PROC };
static const char *const how_name[] = {"pinned", "by name", "no /proc"};

/* One listen of type/how/mode under umask um in directory d; asserts the
   guarantee described at the top. */
static void check(const char *d, int type, enum how how, unsigned mode, mode_t um)
{
    char p[256];
    snprintf(p, sizeof(p), "%s/m.sock", d);
    uds_addr a;
    assert_int_equal(uds_addr_parse(&a, p), 0);
    uds_listen_opts o = {.type = type, .mode = mode};
    if (how == PINNED)
        o.flags = UDS_BIND_PINNED;
    if (how == NO_PROC)
        __atomic_fetch_and(&uds__features, ~UDS__FEAT_PROCFD, __ATOMIC_RELAXED);
    seen_reset();
    mode_t old = umask(um);
    uds_listener l;
    int r = uds_listen(&l, &a, &o);
    umask(old);
    __atomic_fetch_or(&uds__features, UDS__FEAT_PROCFD, __ATOMIC_RELAXED);
    char lm[16] = "no listen";
    if (seen.listens)
        snprintf(lm, sizeof(lm), "%04o", (unsigned)seen.listen_mode);
    print_message("%s %s mode %04o umask %03o: bind saw %04o, listen saw %s\n",
                  uds_type_name(type), how_name[how], mode, (unsigned)um,
                  (unsigned)seen.bind_mode, lm);
    assert_int_equal(r, 0);
    assert_int_equal(seen.binds, 1);
    assert_int_equal(seen.fd, l.fd);
    assert_true(seen.bind_mode >= 0);
    /* never wider than asked, from the moment the file exists */
    assert_int_equal(seen.bind_mode & 0777 & ~(int)mode, 0);
    if (how == PINNED)
        assert_true(strncmp(seen.path, "/proc/self/fd/", 14) == 0);
    else
        assert_string_equal(seen.path, p);
    if (type == UDS_DGRAM) {
        assert_int_equal(seen.listens, 0);
    } else {
        assert_int_equal(seen.listens, 1);
        assert_int_equal(seen.listen_mode, (int)mode); /* exact before listen */
    }
    assert_int_equal(mode_of(p), (int)mode); /* and when uds_listen returns */
    uds_listener_close(&l);
}

static void matrix(const char *d, int type)
{
    static const unsigned modes[] = {0600, 0660, 0666, 0640, 0700};
    static const mode_t umasks[] = {022, 077, 0};
    for (int h = PINNED; h <= NO_PROC; h++)
        for (size_t m = 0; m < sizeof(modes) / sizeof(modes[0]); m++)
            check(d, type, (enum how)h, modes[m], umasks[m % 3]);
}

static void test_stream(void **state)
{
    (void)state;
    matrix(dir, UDS_STREAM);
}

static void test_seqpacket(void **state)
{
    (void)state;
    matrix(dir, UDS_SEQPACKET);
}

static void test_dgram(void **state)
{
    (void)state;
    matrix(dir, UDS_DGRAM);
}

/*
 * A default ACL (user::rwx group::--- other::---, the raw
 * system.posix_acl_default xattr) takes the group and other bits away from
 * the pinned bind's umask: the chmod that puts them back must come before
 * listen() too.
 */
static void test_default_acl(void **state)
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
    assert_int_equal(mkdir(sub, 0700), 0);
    if (setxattr(sub, "system.posix_acl_default", &acl, sizeof(acl), 0) < 0) {
        skip(); /* file system without POSIX ACLs */
        return;
    }
    check(sub, UDS_STREAM, PINNED, 0660, 022);
    assert_int_equal(seen.bind_mode & 0777, 0600); /* the ACL did take bits */
    check(sub, UDS_SEQPACKET, PINNED, 0666, 0);
    check(sub, UDS_DGRAM, PINNED, 0660, 022);
    check(sub, UDS_STREAM, BY_NAME, 0660, 022);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_stream, setup, teardown),
        cmocka_unit_test_setup_teardown(test_seqpacket, setup, teardown),
        cmocka_unit_test_setup_teardown(test_dgram, setup, teardown),
        cmocka_unit_test_setup_teardown(test_default_acl, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
