/*
 * test_access.c — uid/gid access rules (uds_access_*): the decision order
 * (deny before allow, "no allow rule" allows), the supplementary groups
 * read in full (a client in 300 groups is judged on all of them: the
 * regression test for the old fail-open that read at most 256 and took
 * ERANGE as "no groups"), 0 and 1 groups, uid 0 and 65534, and failing
 * closed: a TCP peer with rules, an fd that is not a socket, a socket
 * whose group list cannot be read. Parts that need setgroups()/setresuid()
 * are skipped when not root.
 */
#include "testutil.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

/* ---- helpers -------------------------------------------------------------- */

static uds_access *rules(int rule, unsigned id)
{
    uds_access *a;
    assert_int_equal(uds_access_new(&a), 0);
    assert_int_equal(uds_access_add(a, rule, id), 0);
    return a;
}

/* Judges fd with a one-rule set; returns the result, *why the reason. */
static int judge1(int fd, int rule, unsigned id, const char **why)
{
    uds_access *a = rules(rule, id);
    uds_cred c;
    int r = uds_access_check(a, fd, &c, why);
    uds_access_free(a);
    return r;
}

/* A client process connected with given ids, seen from the server side. */
struct peer {
    pid_t pid;
    int fd; /* the accepted socket */
};

static int seq;

/*
 * Forks a child that takes the given groups (ngroups < 0: unchanged), gid
 * and uid, then connects to an abstract socket of ours (no file
 * permissions in the way) and waits for EOF. Returns the accepted end.
 */
static struct peer connect_as(uid_t uid, gid_t gid, int ngroups, const gid_t *groups)
{
    char name[64];
    snprintf(name, sizeof(name), "@udsock-test-access-%ld-%d", (long)getpid(), ++seq);
    uds_addr a;
    uds_listener l;
    assert_int_equal(uds_addr_parse(&a, name), 0);
    assert_int_equal(uds_listen(&l, &a, NULL), 0);
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        /* hold no copy of an earlier peer's socket: it waits for our EOF */
        close_range(3, ~0U, 0);
        if (ngroups >= 0 && setgroups((size_t)ngroups, groups) < 0)
            _exit(10);
        if (setresgid(gid, gid, gid) < 0 || setresuid(uid, uid, uid) < 0)
            _exit(11);
        int fd = uds_connect(&a, NULL);
        if (fd < 0)
            _exit(12);
        char b;
        (void)uds_read_exact(fd, &b, 1); /* until the parent closes */
        _exit(0);
    }
    struct pollfd p = {l.fd, POLLIN, 0};
    assert_int_equal(poll(&p, 1, 10000), 1); /* the child connected */
    int fd = uds_accept(l.fd, NULL, 0);
    assert_true(fd >= 0);
    uds_listener_close(&l);
    struct peer r = {pid, fd};
    return r;
}

static void peer_done(struct peer *p)
{
    close(p->fd);
    int st;
    assert_int_equal(waitpid(p->pid, &st, 0), p->pid);
    assert_true(WIFEXITED(st));
    assert_int_equal(WEXITSTATUS(st), 0);
}

static int is_root(void) { return geteuid() == 0; }

/* ---- tests ---------------------------------------------------------------- */

/* Deny rules win over allow rules; without allow rules everyone else is in. */
static void test_order(void **state)
{
    (void)state;
    int p[2];
    assert_int_equal(uds_pair(SOCK_STREAM, 0, p), 0);
    unsigned me = getuid(), mg = getgid(), other = me + 4242, og = mg + 4242;
    const char *why = NULL;
    uds_cred c;

    /* no rules (NULL or empty): allowed, credentials filled in */
    assert_int_equal(uds_access_check(NULL, p[0], &c, &why), 1);
    assert_int_equal(c.uid, me);
    assert_int_equal(c.gid, mg);
    assert_int_equal(c.pid, getpid());
    uds_access *a;
    assert_int_equal(uds_access_new(&a), 0);
    assert_int_equal(uds_access_active(a), 0);
    assert_int_equal(uds_access_active(NULL), 0);
    assert_int_equal(uds_access_check(a, p[0], NULL, NULL), 1);
    /* bad rules are refused and change nothing */
    assert_int_equal(uds_access_add(a, 7, 1), -EINVAL);
    assert_int_equal(uds_access_add(a, -1, 1), -EINVAL);
    assert_int_equal(uds_access_add(a, UDS_DENY_UID, (unsigned)-1), -EINVAL);
    assert_int_equal(uds_access_add(NULL, UDS_DENY_UID, 1), -EINVAL);
    assert_int_equal(uds_access_active(a), 0);
    uds_access_free(a);
    uds_access_free(NULL);

    /* uid rules */
    assert_int_equal(judge1(p[0], UDS_DENY_UID, me, &why), 0);
    assert_string_equal(why, "denied");
    assert_int_equal(judge1(p[0], UDS_DENY_UID, other, &why), 1);
    assert_int_equal(judge1(p[0], UDS_ALLOW_UID, me, &why), 1);
    assert_int_equal(judge1(p[0], UDS_ALLOW_UID, other, &why), 0);
    assert_string_equal(why, "not allowed");

    /* gid rules on the effective gid */
    assert_int_equal(judge1(p[0], UDS_DENY_GID, mg, &why), 0);
    assert_string_equal(why, "denied");
    assert_int_equal(judge1(p[0], UDS_DENY_GID, og, &why), 1);
    assert_int_equal(judge1(p[0], UDS_ALLOW_GID, mg, &why), 1);
    assert_int_equal(judge1(p[0], UDS_ALLOW_GID, og, &why), 0);
    assert_string_equal(why, "not allowed");

    /* deny first: allowed by uid, denied by uid -> denied */
    a = rules(UDS_ALLOW_UID, me);
    assert_int_equal(uds_access_active(a), 1);
    assert_int_equal(uds_access_add(a, UDS_DENY_UID, me), 0);
    assert_int_equal(uds_access_check(a, p[0], &c, &why), 0);
    assert_string_equal(why, "denied");
    uds_access_free(a);
    /* allowed by uid, denied by gid -> denied */
    a = rules(UDS_ALLOW_UID, me);
    assert_int_equal(uds_access_add(a, UDS_DENY_GID, mg), 0);
    assert_int_equal(uds_access_check(a, p[0], &c, &why), 0);
    assert_string_equal(why, "denied");
    uds_access_free(a);
    /* either allow rule is enough: uid not listed, gid listed -> allowed */
    a = rules(UDS_ALLOW_UID, other);
    assert_int_equal(uds_access_add(a, UDS_ALLOW_GID, mg), 0);
    assert_int_equal(uds_access_check(a, p[0], &c, &why), 1);
    uds_access_free(a);
    /* a deny rule that does not match leaves the allow rules to decide */
    a = rules(UDS_DENY_GID, og);
    assert_int_equal(uds_access_add(a, UDS_ALLOW_UID, other), 0);
    assert_int_equal(uds_access_check(a, p[0], &c, &why), 0);
    assert_string_equal(why, "not allowed");
    assert_int_equal(uds_access_add(a, UDS_ALLOW_UID, me), 0);
    assert_int_equal(uds_access_check(a, p[0], &c, &why), 1);
    uds_access_free(a);
    close(p[0]);
    close(p[1]);
}

/*
 * A client in 300 supplementary groups: a rule on a group past the 256th
 * must see it. Before the fix the group list was read into 256 slots and
 * ERANGE meant "no groups", so --deny-gid on such a group let it in.
 */
static void test_300_groups(void **state)
{
    (void)state;
    if (!is_root())
        skip();
    enum { N = 300 };
    gid_t g[N];
    for (int i = 0; i < N; i++)
        g[i] = (gid_t)(200000 + i);
    struct peer p = connect_as(0, 0, N, g);
    const char *why = NULL;
    /* past the 256th group (and the last one) */
    assert_int_equal(judge1(p.fd, UDS_DENY_GID, 200280, &why), 0);
    assert_string_equal(why, "denied");
    assert_int_equal(judge1(p.fd, UDS_DENY_GID, 200000 + N - 1, &why), 0);
    assert_int_equal(judge1(p.fd, UDS_ALLOW_GID, 200280, &why), 1);
    assert_int_equal(judge1(p.fd, UDS_ALLOW_GID, 200000, &why), 1);
    /* a group it is not in */
    assert_int_equal(judge1(p.fd, UDS_DENY_GID, 199999, &why), 1);
    assert_int_equal(judge1(p.fd, UDS_ALLOW_GID, 199999, &why), 0);
    assert_string_equal(why, "not allowed");
    peer_done(&p);
}

/* No supplementary group, and exactly one. */
static void test_few_groups(void **state)
{
    (void)state;
    if (!is_root())
        skip();
    const char *why = NULL;
    struct peer p = connect_as(0, 4242, 0, NULL);
    assert_int_equal(judge1(p.fd, UDS_DENY_GID, 200001, &why), 1);
    assert_int_equal(judge1(p.fd, UDS_ALLOW_GID, 200001, &why), 0);
    assert_string_equal(why, "not allowed");
    assert_int_equal(judge1(p.fd, UDS_ALLOW_GID, 4242, &why), 1); /* effective gid */
    assert_int_equal(judge1(p.fd, UDS_DENY_GID, 4242, &why), 0);
    peer_done(&p);

    gid_t one = 200001;
    p = connect_as(0, 4242, 1, &one);
    assert_int_equal(judge1(p.fd, UDS_DENY_GID, 200001, &why), 0);
    assert_string_equal(why, "denied");
    assert_int_equal(judge1(p.fd, UDS_ALLOW_GID, 200001, &why), 1);
    assert_int_equal(judge1(p.fd, UDS_ALLOW_GID, 200002, &why), 0);
    assert_int_equal(judge1(p.fd, UDS_DENY_GID, 200002, &why), 1);
    peer_done(&p);
}

/* uid 0 and the unprivileged 65534, as SO_PEERCRED reports them. */
static void test_uids(void **state)
{
    (void)state;
    if (!is_root())
        skip();
    const char *why = NULL;
    uds_cred c;
    struct peer root = connect_as(0, 0, 0, NULL);
    struct peer nobody = connect_as(65534, 65534, 0, NULL);
    uds_access *a = rules(UDS_DENY_UID, 65534);
    assert_int_equal(uds_access_check(a, nobody.fd, &c, &why), 0);
    assert_string_equal(why, "denied");
    assert_int_equal(c.uid, 65534);
    assert_int_equal(c.gid, 65534);
    assert_int_equal(c.pid, nobody.pid);
    assert_int_equal(uds_access_check(a, root.fd, &c, &why), 1);
    assert_int_equal(c.uid, 0);
    assert_int_equal(c.pid, root.pid);
    uds_access_free(a);
    a = rules(UDS_ALLOW_UID, 0);
    assert_int_equal(uds_access_check(a, nobody.fd, &c, &why), 0);
    assert_string_equal(why, "not allowed");
    assert_int_equal(uds_access_check(a, root.fd, &c, &why), 1);
    uds_access_free(a);
    a = rules(UDS_ALLOW_GID, 65534);
    assert_int_equal(uds_access_check(a, nobody.fd, &c, &why), 1);
    assert_int_equal(uds_access_check(a, root.fd, &c, &why), 0);
    uds_access_free(a);
    peer_done(&root);
    peer_done(&nobody);
}

/*
 * Peers whose uid and gid differ (65534:0 and 0:65534, no supplementary
 * group): a rule that compared the uid with a gid rule's list, or the gid
 * with a uid rule's, would judge one of them wrongly. Every other peer of
 * these tests has uid == gid, where such a mix-up cannot show.
 */
static void test_uid_ne_gid(void **state)
{
    (void)state;
    if (!is_root())
        skip();
    struct peer x = connect_as(65534, 0, 0, NULL); /* uid 65534, gid 0 */
    struct peer y = connect_as(0, 65534, 0, NULL); /* uid 0, gid 65534 */
    const char *why = NULL;
    uds_cred c;
    uds_access *a = rules(UDS_ALLOW_UID, 0);
    assert_int_equal(uds_access_check(a, x.fd, &c, &why), 0); /* creds as set */
    assert_int_equal(c.uid, 65534);
    assert_int_equal(c.gid, 0);
    uds_access_free(a);
    static const struct {
        int rule;
        unsigned id;
        int x, y; /* expected for uid 65534 gid 0, uid 0 gid 65534 */
    } t[] = {
        {UDS_ALLOW_UID, 0, 0, 1},     {UDS_ALLOW_UID, 65534, 1, 0},
        {UDS_DENY_UID, 0, 1, 0},      {UDS_DENY_UID, 65534, 0, 1},
        {UDS_ALLOW_GID, 0, 1, 0},     {UDS_ALLOW_GID, 65534, 0, 1},
        {UDS_DENY_GID, 0, 0, 1},      {UDS_DENY_GID, 65534, 1, 0},
    };
    for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
        int rx = judge1(x.fd, t[i].rule, t[i].id, &why);
        int ry = judge1(y.fd, t[i].rule, t[i].id, &why);
        if (rx != t[i].x || ry != t[i].y)
            fail_msg("rule %d id %u: uid 65534 gid 0 got %d (want %d), uid 0 gid 65534 "
                     "got %d (want %d)", t[i].rule, t[i].id, rx, t[i].x, ry, t[i].y);
    }
    /* combined: allowed by uid but denied by gid, and the reverse order */
    a = rules(UDS_ALLOW_UID, 65534);
    assert_int_equal(uds_access_add(a, UDS_DENY_GID, 0), 0);
    assert_int_equal(uds_access_check(a, x.fd, &c, &why), 0);
    assert_string_equal(why, "denied");
    assert_int_equal(uds_access_check(a, y.fd, &c, &why), 0);
    assert_string_equal(why, "not allowed");
    uds_access_free(a);
    a = rules(UDS_ALLOW_GID, 65534);
    assert_int_equal(uds_access_add(a, UDS_DENY_UID, 65534), 0);
    assert_int_equal(uds_access_check(a, x.fd, &c, &why), 0);
    assert_string_equal(why, "denied");
    assert_int_equal(uds_access_check(a, y.fd, &c, &why), 1);
    uds_access_free(a);
    peer_done(&x);
    peer_done(&y);
}

/* A TCP peer has no uid: with rules it is refused with an error, without
   rules it is allowed with the "no credentials" values. */
static void test_tcp_peer(void **state)
{
    (void)state;
    uds_addr a;
    uds_listener l;
    assert_int_equal(uds_addr_parse(&a, "tcp:127.0.0.1:0"), 0);
    assert_int_equal(uds_listen(&l, &a, NULL), 0);
    int cfd = uds_connect(&l.addr, NULL);
    assert_true(cfd >= 0);
    int sfd = uds_accept(l.fd, NULL, 0);
    assert_true(sfd >= 0);
    uds_cred c = {1, 2, 3};
    const char *why = NULL;
    assert_int_equal(uds_access_check(NULL, sfd, &c, &why), 1);
    assert_int_equal(c.pid, 0);
    assert_true(c.uid == (uid_t)-1);
    assert_true(c.gid == (gid_t)-1);
    uds_access *r;
    assert_int_equal(uds_access_new(&r), 0);
    assert_int_equal(uds_access_check(r, sfd, &c, &why), 1); /* empty set */
    assert_int_equal(uds_access_add(r, UDS_ALLOW_UID, 0), 0);
    assert_int_equal(uds_access_check(r, sfd, &c, &why), -EAFNOSUPPORT);
    assert_non_null(why);
    assert_true(strlen(why) > 0);
    /* a deny-only rule set does not let it through either */
    uds_access_free(r);
    r = rules(UDS_DENY_UID, 12345);
    assert_int_equal(uds_access_check(r, sfd, &c, &why), -EAFNOSUPPORT);
    uds_access_free(r);
    close(sfd);
    close(cfd);
    uds_listener_close(&l);
}

/* Fail closed: whatever cannot be read refuses, with the error. */
static void test_errors(void **state)
{
    (void)state;
    int pp[2];
    assert_int_equal(pipe2(pp, O_CLOEXEC), 0);
    const char *why = NULL;
    uds_cred c;
    uds_access *a = rules(UDS_DENY_GID, 12345);
    assert_int_equal(uds_access_check(a, pp[0], &c, &why), -ENOTSOCK);
    assert_int_equal(uds_access_check(NULL, pp[0], &c, &why), -ENOTSOCK);
    assert_int_equal(uds_access_check(a, -1, &c, &why), -EBADF);
    close(pp[0]);
    close(pp[1]);
    /* a unix socket with no peer: it has no group list to read */
    int s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true(s >= 0);
    int r = uds_access_check(a, s, &c, &why);
    print_message("unconnected socket with a gid rule: %s (%s)\n", uds_strerror(r), why);
    assert_true(r < 0);
    assert_string_equal(why, "cannot read the peer's groups");
    uds_access_free(a);
    a = rules(UDS_ALLOW_GID, 12345);
    assert_true(uds_access_check(a, s, &c, &why) < 0);
    uds_access_free(a);
    close(s);
}

/* uds_access_check_cred: the decision for a datagram sender (no groups). */
static void test_check_cred(void **state)
{
    (void)state;
    const char *why = NULL;
    uds_cred c = {42, 1000, 100};
    assert_int_equal(uds_access_check_cred(NULL, &c, &why), 1);
    uds_access *a = rules(UDS_ALLOW_UID, 1000);
    assert_int_equal(uds_access_check_cred(a, &c, &why), 1);
    c.uid = 1001;
    assert_int_equal(uds_access_check_cred(a, &c, &why), 0);
    assert_string_equal(why, "not allowed");
    assert_int_equal(uds_access_check_cred(a, NULL, &why), -EINVAL);
    uds_cred none = {0, (uid_t)-1, (gid_t)-1};
    assert_int_equal(uds_access_check_cred(a, &none, &why), -EINVAL);
    /* allow-gid: the primary gid only; a uid rule must not match a gid */
    assert_int_equal(uds_access_add(a, UDS_ALLOW_GID, 100), 0);
    assert_int_equal(uds_access_check_cred(a, &c, &why), 1);
    uds_cred g = {42, 100, 1000};
    assert_int_equal(uds_access_check_cred(a, &g, &why), 0);
    uds_access_free(a);
    /* deny-uid wins over allow; deny-gid that misses the primary gid fails closed */
    a = rules(UDS_DENY_UID, 7);
    uds_cred d = {1, 7, 7};
    assert_int_equal(uds_access_check_cred(a, &d, &why), 0);
    assert_string_equal(why, "denied");
    d.uid = 8;
    assert_int_equal(uds_access_check_cred(a, &d, &why), 1);
    assert_int_equal(uds_access_add(a, UDS_DENY_GID, 9), 0);
    assert_int_equal(uds_access_check_cred(a, &d, &why), -ENODATA);
    d.gid = 9;
    assert_int_equal(uds_access_check_cred(a, &d, &why), 0);
    uds_access_free(a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_order),
        cmocka_unit_test(test_300_groups),
        cmocka_unit_test(test_few_groups),
        cmocka_unit_test(test_uids),
        cmocka_unit_test(test_uid_ne_gid),
        cmocka_unit_test(test_tcp_peer),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_check_cred),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
