/*
 * test_diag.c — the sock_diag queries (diag.c): a socketpair and a
 * listener are found with the right peer, file identity, state and queue
 * lengths; hostile names (a newline and a forged line, terminal escapes,
 * invalid UTF-8, NUL bytes, the 107-byte maximum) come back as the exact
 * bytes; a dump of hundreds of sockets spans several netlink datagrams;
 * the one-socket query; both ways sock_diag can be missing come out as
 * -EPROTONOSUPPORT.
 */
#include "testutil.h"
#include "internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

static uint64_t ino_of(int fd)
{
    struct stat st;
    assert_int_equal(fstat(fd, &st), 0);
    return (uint64_t)st.st_ino;
}

static const uds_diag_sock *find(const uds_diag_list *l, uint64_t ino)
{
    const uds_diag_sock *hit = NULL;
    for (size_t i = 0; i < l->count; i++)
        if (l->socks[i].ino == ino) {
            assert_null(hit); /* each inode once */
            hit = &l->socks[i];
        }
    return hit;
}

/* A socket of `type` bound to the raw sun_path bytes (len of them). */
static int bound(int type, const void *path, size_t len)
{
    int fd = socket(AF_UNIX, type | SOCK_CLOEXEC, 0);
    assert_true(fd >= 0);
    struct sockaddr_un un;
    memset(&un, 0, sizeof(un));
    un.sun_family = AF_UNIX;
    assert_true(len <= sizeof(un.sun_path));
    memcpy(un.sun_path, path, len);
    assert_int_equal(bind(fd, (struct sockaddr *)&un,
                          (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len)), 0);
    return fd;
}

static void test_socketpair(void **state)
{
    (void)state;
    int fds0 = tu_count_fds();
    int sv[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
    assert_int_equal(write(sv[0], "hello", 5), 5);
    uint64_t a = ino_of(sv[0]), b = ino_of(sv[1]);
    uds_diag_list l = {0};
    int n = uds_diag_dump(&l, UDS_DIAG_ALL);
    assert_true(n >= 2);
    assert_int_equal((size_t)n, l.count);
    const uds_diag_sock *sa = find(&l, a), *sb = find(&l, b);
    assert_non_null(sa);
    assert_non_null(sb);
    assert_int_equal(sa->type, SOCK_STREAM);
    assert_int_equal(sa->state, UDS_DIAG_CONNECTED);
    assert_int_equal(sb->state, UDS_DIAG_CONNECTED);
    assert_true(sa->peer == b && sb->peer == a);
    assert_int_equal(sa->name_len, 0);
    assert_null(sa->name);
    assert_false(sa->have & UDS_DIAG_HAVE_VFS);
    assert_true(sb->have & UDS_DIAG_HAVE_RQLEN);
    assert_int_equal(sb->rqueue, 5); /* the 5 bytes wait at b */
    assert_int_equal(sa->rqueue, 0);
    assert_true(sa->have & UDS_DIAG_HAVE_UID);
    assert_int_equal(sa->uid, geteuid());
    uds_diag_free(&l);
    uds_diag_free(&l); /* twice is safe */
    assert_int_equal(l.count, 0);

    /* the same through the one-socket query */
    uds_diag_sock s;
    assert_int_equal(uds_diag_get(b, &s), 0);
    assert_true(s.ino == b && s.peer == a && s.rqueue == 5 && s.state == UDS_DIAG_CONNECTED);
    uds_diag_sock_free(&s);
    uds_diag_sock_free(&s);

    /* a dump of only listening sockets leaves the pair out */
    assert_true(uds_diag_dump(&l, 1u << UDS_DIAG_LISTENING) >= 0);
    assert_null(find(&l, a));
    for (size_t i = 0; i < l.count; i++)
        assert_int_equal(l.socks[i].state, UDS_DIAG_LISTENING);
    uds_diag_free(&l);

    close(sv[0]);
    close(sv[1]);
    assert_int_equal(uds_diag_get(a, &s), -ENOENT); /* gone */
    assert_int_equal(uds_diag_get(0, &s), -ENOENT);
    assert_int_equal(uds_diag_get(1ull << 40, &s), -ENOENT);
    assert_int_equal(uds_diag_dump(NULL, 0), -EINVAL);
    assert_int_equal(uds_diag_get(1, NULL), -EINVAL);
    assert_int_equal(tu_count_fds(), fds0);
}

static void test_listener(void **state)
{
    (void)state;
    char *dir = tu_tmpdir();
    assert_non_null(dir);
    const char *path = tu_path(dir, "l.sock");
    int lfd = bound(SOCK_STREAM, path, strlen(path));
    assert_int_equal(listen(lfd, 7), 0);
    /* one client queued (never accepted), one accepted */
    int c1 = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int c2 = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_un un;
    memset(&un, 0, sizeof(un));
    un.sun_family = AF_UNIX;
    memcpy(un.sun_path, path, strlen(path));
    assert_int_equal(connect(c2, (struct sockaddr *)&un, sizeof(un)), 0);
    int acc = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
    assert_true(acc >= 0);
    assert_int_equal(connect(c1, (struct sockaddr *)&un, sizeof(un)), 0);
    struct stat st;
    assert_int_equal(stat(path, &st), 0);

    uds_diag_list l = {0};
    assert_true(uds_diag_dump(&l, UDS_DIAG_ALL) >= 4);
    const uds_diag_sock *s = find(&l, ino_of(lfd));
    assert_non_null(s);
    assert_int_equal(s->type, SOCK_STREAM);
    assert_int_equal(s->state, UDS_DIAG_LISTENING);
    assert_int_equal(s->name_len, strlen(path));
    assert_memory_equal(s->name, path, strlen(path));
    assert_int_equal(s->name[s->name_len], 0);
    assert_true(s->have & UDS_DIAG_HAVE_VFS);
    assert_int_equal(s->vfs_ino, (uint32_t)st.st_ino);
    assert_true(s->vfs_dev == st.st_dev);
    assert_int_equal(s->rqueue, 1); /* one waiting for accept */
    assert_int_equal(s->wqueue, 7); /* the backlog */
    assert_true(s->have & UDS_DIAG_HAVE_ICONS);
    assert_int_equal(s->n_icons, 1);
    assert_true(s->icons[0] == ino_of(c1)); /* the client end of the pending one */
    assert_int_equal(s->peer, 0);
    /* the accepted end: connected to c2, carries the listener's name and
       file identity (how ls finds a listener's connections) */
    const uds_diag_sock *a = find(&l, ino_of(acc));
    assert_non_null(a);
    assert_int_equal(a->state, UDS_DIAG_CONNECTED);
    assert_true(a->peer == ino_of(c2));
    assert_int_equal(a->name_len, strlen(path));
    assert_memory_equal(a->name, path, strlen(path));
    assert_true(a->have & UDS_DIAG_HAVE_VFS);
    assert_int_equal(a->vfs_ino, (uint32_t)st.st_ino);
    const uds_diag_sock *k = find(&l, ino_of(c2));
    assert_non_null(k);
    assert_true(k->peer == ino_of(acc));
    uds_diag_free(&l);

    uds_diag_sock one;
    assert_int_equal(uds_diag_get(ino_of(lfd), &one), 0);
    assert_int_equal(one.state, UDS_DIAG_LISTENING);
    assert_int_equal(one.vfs_ino, (uint32_t)st.st_ino);
    assert_int_equal(one.n_icons, 1);
    assert_int_equal(one.name_len, strlen(path));
    uds_diag_sock_free(&one);
    close(c1);
    close(c2);
    close(acc);
    close(lfd);
    tu_rmtree(dir);
    free(dir);
}

/* Every hostile name comes back byte for byte, with its length. */
static void test_hostile_names(void **state)
{
    (void)state;
    static const char forged[] = "\0x\n/run/forged-admin.sock LISTEN";
    static const char esc[] = "\0\x1b]0;title\x07\x1b[2J";
    static const char bad_utf8[] = "\0caf\xc3\x28\xff\xfe";
    char max[108];
    max[0] = 0;
    for (size_t i = 1; i < sizeof(max); i++)
        max[i] = (char)(i % 7 == 0 ? 0 : i % 5 == 0 ? '\n' : 0x80 + i % 100);
    struct {
        const char *name;
        size_t len;
        int type;
    } cases[] = {
        {forged, sizeof(forged) - 1, SOCK_STREAM},
        {esc, sizeof(esc) - 1, SOCK_DGRAM},
        {bad_utf8, sizeof(bad_utf8) - 1, SOCK_SEQPACKET},
        {max, sizeof(max), SOCK_STREAM}, /* 1 NUL + 107 bytes: the maximum */
    };
    int fds[4];
    for (size_t i = 0; i < 4; i++) {
        fds[i] = bound(cases[i].type, cases[i].name, cases[i].len);
        if (cases[i].type != SOCK_DGRAM)
            assert_int_equal(listen(fds[i], 1), 0);
    }
    /* a path with control bytes and a newline in its last component */
    char *dir = tu_tmpdir();
    assert_non_null(dir);
    const char *path = tu_path(dir, "p\x1b[2J\nx\xff.sock");
    int pfd = bound(SOCK_DGRAM, path, strlen(path));

    uds_diag_list l = {0};
    assert_true(uds_diag_dump(&l, UDS_DIAG_ALL) >= 5);
    for (size_t i = 0; i < 4; i++) {
        const uds_diag_sock *s = find(&l, ino_of(fds[i]));
        assert_non_null(s);
        assert_int_equal(s->type, cases[i].type);
        assert_int_equal(s->name_len, cases[i].len);
        assert_memory_equal(s->name, cases[i].name, cases[i].len);
        assert_false(s->have & UDS_DIAG_HAVE_VFS);
    }
    const uds_diag_sock *p = find(&l, ino_of(pfd));
    assert_non_null(p);
    assert_int_equal(p->name_len, strlen(path));
    assert_memory_equal(p->name, path, strlen(path));
    assert_int_equal(p->state, UDS_DIAG_UNCONNECTED);
    assert_true(p->have & UDS_DIAG_HAVE_VFS);
    /* no record other than ours claims the forged path */
    for (size_t i = 0; i < l.count; i++)
        assert_false(l.socks[i].name_len == 23 &&
                     !memcmp(l.socks[i].name, "/run/forged-admin.sock", 22));
    uds_diag_free(&l);
    for (size_t i = 0; i < 4; i++)
        close(fds[i]);
    close(pfd);
    tu_rmtree(dir);
    free(dir);
}

/* Hundreds of sockets: the dump spans several datagrams (the kernel fills
   one skb at a time), and each socket is reported exactly once. */
static void test_many(void **state)
{
    (void)state;
    enum { N = 400 };
    int (*sv)[2] = calloc(N, sizeof(*sv));
    assert_non_null(sv);
    for (int i = 0; i < N; i++)
        assert_int_equal(socketpair(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0, sv[i]), 0);
    uds_diag_list l = {0};
    assert_true(uds_diag_dump(&l, UDS_DIAG_ALL) >= 2 * N);
    for (int i = 0; i < N; i++) {
        const uds_diag_sock *s = find(&l, ino_of(sv[i][0]));
        assert_non_null(s);
        assert_int_equal(s->type, SOCK_DGRAM);
        assert_true(s->peer == ino_of(sv[i][1]));
    }
    uds_diag_free(&l);
    for (int i = 0; i < N; i++) {
        close(sv[i][0]);
        close(sv[i][1]);
    }
    free(sv);
}

/* The two ways sock_diag can be missing, forced through the seams: no
   NETLINK_SOCK_DIAG protocol (socket() fails), and no diag handler for the
   family (the kernel answers ENOENT, as without the unix_diag module). */
static void test_unavailable(void **state)
{
    (void)state;
    int fds0 = tu_count_fds();
    int sv[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
    uds_diag_list l = {0};
    uds_diag_sock s;
    int proto = uds__diag_proto;
    uds__diag_proto = 31; /* MAX_LINKS - 1: no such netlink protocol */
    assert_int_equal(uds_diag_dump(&l, UDS_DIAG_ALL), -EPROTONOSUPPORT);
    assert_int_equal(l.count, 0);
    assert_null(l.socks);
    assert_int_equal(uds_diag_get(ino_of(sv[0]), &s), -EPROTONOSUPPORT);
    uds__diag_proto = proto;

    int fam = uds__diag_family;
    uds__diag_family = 12; /* AF_DECnet: gone from the kernel, no handler */
    assert_int_equal(uds_diag_dump(&l, UDS_DIAG_ALL), -EPROTONOSUPPORT);
    assert_int_equal(l.count, 0);
    assert_int_equal(uds_diag_get(ino_of(sv[0]), &s), -EPROTONOSUPPORT);
    uds__diag_family = fam;

    assert_int_equal(uds_diag_get(ino_of(sv[0]), &s), 0); /* back to normal */
    uds_diag_sock_free(&s);
    close(sv[0]);
    close(sv[1]);
    assert_int_equal(tu_count_fds(), fds0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_socketpair),
        cmocka_unit_test(test_listener),
        cmocka_unit_test(test_hostile_names),
        cmocka_unit_test(test_many),
        cmocka_unit_test(test_unavailable),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
