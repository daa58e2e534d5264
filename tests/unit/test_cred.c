/*
 * test_cred.c — peer credentials: SO_PEERCRED reports the connecting
 * process's real pid/uid/gid (also after it dropped to another uid), and
 * SCM_CREDENTIALS travel with a message when the receiver asks for them.
 */
#include "testutil.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <grp.h>
#include <unistd.h>

struct ids {
    long pid, uid, gid;
};

/*
 * Forks a child that (optionally) drops to 65534:65534, connects to `a`,
 * and writes the ids it believes it has. Returns the child's pid.
 */
static pid_t client_child(const uds_addr *a, int drop)
{
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid)
        return pid;
    if (drop) {
        if (setgroups(0, NULL) < 0 || setresgid(65534, 65534, 65534) < 0 ||
            setresuid(65534, 65534, 65534) < 0)
            _exit(10);
    }
    int fd = uds_connect(a, NULL);
    if (fd < 0)
        _exit(11);
    struct ids me = {getpid(), getuid(), getgid()};
    if (uds_write_all(fd, &me, sizeof(me)) != (ssize_t)sizeof(me))
        _exit(12);
    char b;
    (void)uds_read_exact(fd, &b, 1); /* stay until the server is done */
    close(fd);
    _exit(0);
}

static void check_peer(int drop)
{
    char *dir = tu_tmpdir();
    assert_non_null(dir);
    assert_int_equal(chmod(dir, 0711), 0); /* the dropped child must reach it */
    uds_addr a;
    uds_listener l;
    uds_listen_opts o = {.mode = 0666};
    assert_int_equal(uds_addr_parse(&a, tu_path(dir, "cred.sock")), 0);
    assert_int_equal(uds_listen(&l, &a, &o), 0);
    pid_t pid = client_child(&a, drop);
    int s = uds_accept(l.fd, NULL, 0);
    assert_true(s >= 0);
    struct ids said;
    assert_int_equal(uds_read_exact(s, &said, sizeof(said)), sizeof(said));
    uds_cred c;
    assert_int_equal(uds_peer_cred(s, &c), 0);
    assert_int_equal(c.pid, pid);
    assert_int_equal(c.pid, said.pid);
    assert_int_equal(c.uid, said.uid);
    assert_int_equal(c.gid, said.gid);
    if (drop) {
        assert_int_equal(c.uid, 65534);
        assert_int_equal(c.gid, 65534);
    } else {
        assert_int_equal(c.uid, getuid());
        assert_int_equal(c.gid, getgid());
    }
    close(s);
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
    uds_listener_close(&l);
    tu_rmtree(dir);
    free(dir);
}

static void test_peercred(void **state)
{
    (void)state;
    check_peer(0);
}

static void test_peercred_dropped(void **state)
{
    (void)state;
    if (geteuid() != 0) {
        skip();
        return;
    }
    check_peer(1);
}

static void test_peercred_errors(void **state)
{
    (void)state;
    uds_cred c;
    int p[2];
    assert_int_equal(pipe2(p, O_CLOEXEC), 0);
    assert_int_equal(uds_peer_cred(p[0], &c), -ENOTSOCK);
    assert_int_equal(uds_peer_cred(p[0], NULL), -EINVAL);
    close(p[0]);
    close(p[1]);
    /* a socketpair: the peer is this process */
    int sv[2];
    assert_int_equal(uds_pair(UDS_STREAM, 0, sv), 0);
    assert_int_equal(uds_peer_cred(sv[0], &c), 0);
    assert_int_equal(c.pid, getpid());
    assert_int_equal(c.uid, getuid());
    close(sv[0]);
    close(sv[1]);
}

static ssize_t recv_cred(int fd, uds_msg *m, char *b, size_t len)
{
    memset(m, 0, sizeof(*m));
    m->buf = b;
    m->len = len;
    return uds_recvmsg(fd, m, 0);
}

static void test_scm_credentials(void **state)
{
    (void)state;
    int types[] = {UDS_STREAM, UDS_SEQPACKET, UDS_DGRAM};
    for (int t = 0; t < 3; t++) {
        int sv[2];
        assert_int_equal(uds_pair(types[t], 0, sv), 0);
        uds_msg m;
        char b[16];
        /* without SO_PASSCRED nothing arrives, even if sent */
        memset(&m, 0, sizeof(m));
        m.buf = "a";
        m.len = 1;
        m.send_cred = 1;
        assert_int_equal(uds_sendmsg(sv[0], &m), 1);
        assert_int_equal(recv_cred(sv[1], &m, b, sizeof(b)), 1);
        assert_int_equal(m.has_cred, 0);

        assert_int_equal(uds_set_passcred(sv[1], 1), 0);
        memset(&m, 0, sizeof(m));
        m.buf = "b";
        m.len = 1;
        m.send_cred = 1;
        assert_int_equal(uds_sendmsg(sv[0], &m), 1);
        assert_int_equal(recv_cred(sv[1], &m, b, sizeof(b)), 1);
        assert_int_equal(b[0], 'b');
        assert_int_equal(m.has_cred, 1);
        assert_int_equal(m.cred.pid, getpid());
        assert_int_equal(m.cred.uid, geteuid());
        assert_int_equal(m.cred.gid, getegid());

        /* with SO_PASSCRED on, the kernel attaches them even unasked */
        assert_int_equal(uds_write_all(sv[0], "u", 1), 1);
        assert_int_equal(recv_cred(sv[1], &m, b, sizeof(b)), 1);
        assert_int_equal(m.has_cred, 1);
        assert_int_equal(m.cred.pid, getpid());

        /* credentials together with fds */
        int fds[2] = {sv[0], sv[1]}, got[2];
        memset(&m, 0, sizeof(m));
        m.buf = "c";
        m.len = 1;
        m.fds = fds;
        m.nfds = 2;
        m.send_cred = 1;
        assert_int_equal(uds_sendmsg(sv[0], &m), 1);
        memset(&m, 0, sizeof(m));
        m.buf = b;
        m.len = sizeof(b);
        m.fds = got;
        m.fds_cap = 2;
        assert_int_equal(uds_recvmsg(sv[1], &m, 0), 1);
        assert_int_equal(m.has_cred, 1);
        assert_int_equal(m.cred.pid, getpid());
        assert_int_equal(m.nfds, 2);
        close(got[0]);
        close(got[1]);

        assert_int_equal(uds_set_passcred(sv[1], 0), 0);
        close(sv[0]);
        close(sv[1]);
    }
}

/* A child that dropped privileges sends its credentials: 65534 arrives. */
static void test_scm_credentials_child(void **state)
{
    (void)state;
    if (geteuid() != 0) {
        skip();
        return;
    }
    int sv[2];
    assert_int_equal(uds_pair(UDS_SEQPACKET, 0, sv), 0);
    assert_int_equal(uds_set_passcred(sv[1], 1), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        close(sv[1]);
        if (setgroups(0, NULL) < 0 || setresgid(65534, 65534, 65534) < 0 ||
            setresuid(65534, 65534, 65534) < 0)
            _exit(10);
        uds_msg m;
        memset(&m, 0, sizeof(m));
        m.buf = "z";
        m.len = 1;
        m.send_cred = 1;
        _exit(uds_sendmsg(sv[0], &m) == 1 ? 0 : 11);
    }
    close(sv[0]);
    uds_msg m;
    char b[4];
    assert_int_equal(recv_cred(sv[1], &m, b, sizeof(b)), 1);
    assert_int_equal(m.has_cred, 1);
    assert_int_equal(m.cred.pid, pid);
    assert_int_equal(m.cred.uid, 65534);
    assert_int_equal(m.cred.gid, 65534);
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    close(sv[1]);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_peercred),
        cmocka_unit_test(test_peercred_dropped),
        cmocka_unit_test(test_peercred_errors),
        cmocka_unit_test(test_scm_credentials),
        cmocka_unit_test(test_scm_credentials_child),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
