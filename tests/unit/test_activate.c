/*
 * test_activate.c — socket activation (LISTEN_*) and readiness
 * notification (NOTIFY_SOCKET, ready-fd), driven by setting the variables
 * ourselves. Anything that puts sockets on fds 3, 4, ... runs in a forked
 * child so the test runner's own fds are never clobbered; the child
 * reports the line of its first failed check as its exit status.
 */
#include "testutil.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

/* In a forked child: a failed check exits with the line number (mod 256,
   never 0) so the parent can say where. */
#define CHILD_CHECK(c)                                                          \
    do {                                                                        \
        if (!(c)) {                                                             \
            fprintf(stderr, "child check failed at line %d: %s\n", __LINE__, #c); \
            _exit(__LINE__ % 255 + 1);                                          \
        }                                                                       \
    } while (0)

static void clear_env(void)
{
    unsetenv("LISTEN_PID");
    unsetenv("LISTEN_FDS");
    unsetenv("LISTEN_FDNAMES");
    unsetenv("NOTIFY_SOCKET");
}

static void set_pid_env(pid_t pid)
{
    char b[32];
    snprintf(b, sizeof(b), "%ld", (long)pid);
    setenv("LISTEN_PID", b, 1);
}

/* Runs fn in a child process and asserts it exited 0. */
static void run_child(void (*fn)(const char *dir), const char *dir)
{
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        fn(dir);
        _exit(0);
    }
    int st = 0;
    assert_int_equal(waitpid(pid, &st, 0), pid);
    assert_true(WIFEXITED(st));
    assert_int_equal(WEXITSTATUS(st), 0);
}

/* Moves fd to exactly `target` (which must not be `fd`'s source again). */
static void place_fd(int fd, int target)
{
    if (fd == target)
        return;
    CHILD_CHECK(dup2(fd, target) == target); /* dup2: the copy has no CLOEXEC */
    close(fd);
}

/* Makes fds 3.. free by moving anything there out of the way (closed). */
static void free_low_fds(int upto)
{
    for (int fd = 3; fd <= upto; fd++)
        close(fd);
}

static void test_not_activated(void **state)
{
    (void)state;
    clear_env();
    uds_activation a;
    assert_int_equal(uds_activation_get(&a, 0), 0);
    assert_int_equal(a.count, 0);
    assert_null(a.names);
    assert_int_equal(uds_activation_fd(&a, NULL, 0, 0), -ENOENT);
    uds_listener l;
    assert_int_equal(uds_activation_listener(&a, &l, NULL, UDS_STREAM), -ENOENT);
    uds_activation_free(&a);
    uds_activation_free(&a);
}

/* LISTEN_PID of another process: the fds are not ours, nothing is touched. */
static void test_wrong_pid_ignored(void **state)
{
    (void)state;
    clear_env();
    set_pid_env(getpid() + 1);
    setenv("LISTEN_FDS", "1", 1);
    setenv("LISTEN_FDNAMES", "x", 1);
    uds_activation a;
    assert_int_equal(uds_activation_get(&a, 0), 0);
    assert_int_equal(a.count, 0);
    assert_non_null(getenv("LISTEN_FDS")); /* left alone without the flag */
    assert_int_equal(uds_activation_get(&a, UDS_ACT_UNSET_ENV), 0);
    assert_null(getenv("LISTEN_PID"));
    assert_null(getenv("LISTEN_FDS"));
    assert_null(getenv("LISTEN_FDNAMES"));
    clear_env();
}

static void test_malformed_env(void **state)
{
    (void)state;
    uds_activation a;
    clear_env();
    set_pid_env(getpid());
    setenv("LISTEN_FDS", "2x", 1);
    assert_int_equal(uds_activation_get(&a, 0), -EINVAL);
    setenv("LISTEN_FDS", "-1", 1);
    assert_int_equal(uds_activation_get(&a, 0), -EINVAL);
    setenv("LISTEN_FDS", "99999999999999999999999", 1);
    assert_int_equal(uds_activation_get(&a, 0), -EINVAL);
    setenv("LISTEN_PID", "12abc", 1);
    setenv("LISTEN_FDS", "1", 1);
    assert_int_equal(uds_activation_get(&a, UDS_ACT_UNSET_ENV), -EINVAL);
    assert_int_equal(a.count, 0);
    assert_null(getenv("LISTEN_PID")); /* unset even on error */
    clear_env();
}

/*
 * The main case: a listening stream socket as "web" on fd 3 and a bound
 * datagram socket as "logs" on fd 4, like a .socket unit with two
 * ListenStream=/ListenDatagram= lines.
 */
static void child_two_sockets(const char *dir)
{
    const char *spath = tu_path(dir, "web.sock");
    const char *dpath = tu_path(dir, "logs.sock");
    uds_addr sa, da;
    uds_listener ls, ld;
    /* a trusted chain (a root-owned temp dir): bound by name, so the child
       reads the names back with getsockname */
    uds_listen_opts dopt = {.type = UDS_DGRAM};
    uds_listen_opts sopt = {0};
    CHILD_CHECK(uds_addr_parse(&sa, spath) == 0);
    CHILD_CHECK(uds_addr_parse(&da, dpath) == 0);
    free_low_fds(10);
    CHILD_CHECK(uds_listen(&ls, &sa, &sopt) == 0);
    CHILD_CHECK(uds_listen(&ld, &da, &dopt) == 0);
    /* move them above 3/4 first so placing one cannot close the other */
    int s = fcntl(ls.fd, F_DUPFD, 20), d = fcntl(ld.fd, F_DUPFD, 20);
    CHILD_CHECK(s >= 20 && d >= 20);
    close(ls.fd);
    close(ld.fd);
    place_fd(s, 3);
    place_fd(d, 4);
    CHILD_CHECK(!(fcntl(3, F_GETFD) & FD_CLOEXEC));

    set_pid_env(getpid());
    setenv("LISTEN_FDS", "2", 1);
    setenv("LISTEN_FDNAMES", "web:logs", 1);
    uds_activation a;
    CHILD_CHECK(uds_activation_get(&a, UDS_ACT_UNSET_ENV) == 2);
    CHILD_CHECK(a.count == 2);
    CHILD_CHECK(strcmp(a.names[0], "web") == 0 && strcmp(a.names[1], "logs") == 0);
    CHILD_CHECK(fcntl(3, F_GETFD) & FD_CLOEXEC);
    CHILD_CHECK(fcntl(4, F_GETFD) & FD_CLOEXEC);
    CHILD_CHECK(!getenv("LISTEN_PID") && !getenv("LISTEN_FDS") && !getenv("LISTEN_FDNAMES"));

    /* lookups by name, type and family */
    CHILD_CHECK(uds_activation_fd(&a, "logs", UDS_DGRAM, AF_UNIX) == 4);
    CHILD_CHECK(uds_activation_fd(&a, "web", UDS_STREAM, AF_UNIX) == 3);
    CHILD_CHECK(uds_activation_fd(&a, NULL, 0, 0) == 3);
    CHILD_CHECK(uds_activation_fd(&a, "web", UDS_DGRAM, 0) == -EPROTOTYPE);
    CHILD_CHECK(uds_activation_fd(&a, "web", UDS_STREAM, AF_INET) == -EAFNOSUPPORT);
    CHILD_CHECK(uds_activation_fd(&a, "nope", 0, 0) == -ENOENT);

    /* wrong type refused by the listener helper, and nothing taken over */
    uds_listener l;
    CHILD_CHECK(uds_activation_listener(&a, &l, "logs", UDS_STREAM) == -EPROTOTYPE);
    CHILD_CHECK(fcntl(4, F_GETFD) >= 0);

    /* serve one request on the inherited listener */
    CHILD_CHECK(uds_activation_listener(&a, &l, "web", UDS_STREAM) == 0);
    CHILD_CHECK(l.fd == 3 && l.type == UDS_STREAM && l.owns_path == 0);
    CHILD_CHECK(uds_addr_equal(&l.addr, &sa));
    int c = uds_connect(&sa, NULL);
    CHILD_CHECK(c >= 0);
    int sc = uds_accept(l.fd, NULL, 0);
    CHILD_CHECK(sc >= 0);
    CHILD_CHECK(uds_write_all(c, "ping", 4) == 4);
    char buf[8] = {0};
    CHILD_CHECK(uds_read_exact(sc, buf, 4) == 4 && memcmp(buf, "ping", 4) == 0);
    close(c);
    close(sc);

    /* the datagram one works too */
    uds_listener dl;
    CHILD_CHECK(uds_activation_listener(&a, &dl, "logs", UDS_DGRAM) == 0);
    int dc = uds_dgram_socket(AF_UNIX, 0);
    CHILD_CHECK(dc >= 0);
    CHILD_CHECK(uds_sendto(dc, "log", 3, &da) == 3);
    CHILD_CHECK(uds_recvfrom(dl.fd, buf, sizeof(buf), NULL, 0) == 3);
    close(dc);

    /* closing an inherited listener never removes its path */
    uds_listener_close(&l);
    uds_listener_close(&dl);
    struct stat st;
    CHILD_CHECK(lstat(spath, &st) == 0 && S_ISSOCK(st.st_mode));
    CHILD_CHECK(lstat(dpath, &st) == 0 && S_ISSOCK(st.st_mode));
    CHILD_CHECK(fcntl(3, F_GETFD) < 0); /* the listener owned and closed it */
    uds_activation_free(&a);
    uds_activation_free(&a);
}

static void test_two_sockets(void **state)
{
    (void)state;
    clear_env();
    char *dir = tu_tmpdir();
    assert_non_null(dir);
    run_child(child_two_sockets, dir);
    tu_rmtree(dir);
    free(dir);
}

/*
 * One unit, two sockets, one name: systemd names every socket of a unit
 * after the unit ("x.socket:x.socket"). Asking for the datagram one must
 * find fd 4, not fail on fd 3 (it returned -EPROTOTYPE).
 */
static void child_same_name(const char *dir)
{
    uds_addr sa, da;
    uds_listener ls, ld;
    uds_listen_opts dopt = {.type = UDS_DGRAM};
    uds_listen_opts sopt = {0};
    CHILD_CHECK(uds_addr_parse(&sa, tu_path(dir, "s.sock")) == 0);
    CHILD_CHECK(uds_addr_parse(&da, tu_path(dir, "d.sock")) == 0);
    free_low_fds(10);
    CHILD_CHECK(uds_listen(&ls, &sa, &sopt) == 0);
    CHILD_CHECK(uds_listen(&ld, &da, &dopt) == 0);
    int s = fcntl(ls.fd, F_DUPFD, 20), d = fcntl(ld.fd, F_DUPFD, 20);
    CHILD_CHECK(s >= 20 && d >= 20);
    close(ls.fd);
    close(ld.fd);
    place_fd(s, 3);
    place_fd(d, 4);
    set_pid_env(getpid());
    setenv("LISTEN_FDS", "2", 1);
    setenv("LISTEN_FDNAMES", "x.socket:x.socket", 1);
    uds_activation a;
    CHILD_CHECK(uds_activation_get(&a, UDS_ACT_UNSET_ENV) == 2);
    CHILD_CHECK(uds_activation_fd(&a, "x.socket", UDS_DGRAM, AF_UNIX) == 4);
    CHILD_CHECK(uds_activation_fd(&a, "x.socket", UDS_STREAM, AF_UNIX) == 3);
    CHILD_CHECK(uds_activation_fd(&a, "x.socket", 0, 0) == 3);
    CHILD_CHECK(uds_activation_fd(&a, NULL, UDS_DGRAM, 0) == 4);
    /* none of that name matches: the first one's mismatch */
    CHILD_CHECK(uds_activation_fd(&a, "x.socket", UDS_SEQPACKET, 0) == -EPROTOTYPE);
    CHILD_CHECK(uds_activation_fd(&a, "x.socket", UDS_STREAM, AF_INET) == -EAFNOSUPPORT);
    CHILD_CHECK(uds_activation_fd(&a, "y.socket", 0, 0) == -ENOENT);
    uds_listener dl;
    CHILD_CHECK(uds_activation_listener(&a, &dl, "x.socket", UDS_DGRAM) == 0);
    CHILD_CHECK(dl.fd == 4 && dl.type == UDS_DGRAM);
    uds_listener_close(&dl);
    close(3);
    uds_activation_free(&a);
}

static void test_same_name(void **state)
{
    (void)state;
    clear_env();
    char *dir = tu_tmpdir();
    assert_non_null(dir);
    run_child(child_same_name, dir);
    tu_rmtree(dir);
    free(dir);
}

/* Without LISTEN_FDNAMES every fd is "unknown"; a name count mismatch and a
   closed fd are refused. */
static void child_names_and_bad_fd(const char *dir)
{
    (void)dir;
    int sv[2];
    free_low_fds(10);
    CHILD_CHECK(uds_pair(UDS_STREAM, 0, sv) == 0);
    int a0 = fcntl(sv[0], F_DUPFD, 20), a1 = fcntl(sv[1], F_DUPFD, 20);
    close(sv[0]);
    close(sv[1]);
    place_fd(a0, 3);
    place_fd(a1, 4);
    set_pid_env(getpid());
    setenv("LISTEN_FDS", "2", 1);
    uds_activation a;
    CHILD_CHECK(uds_activation_get(&a, 0) == 2);
    CHILD_CHECK(strcmp(a.names[0], "unknown") == 0 && strcmp(a.names[1], "unknown") == 0);
    /* a connected socket (Accept=yes style) is found, but is no listener */
    CHILD_CHECK(uds_activation_fd(&a, "unknown", UDS_STREAM, AF_UNIX) == 3);
    CHILD_CHECK(uds_socket_check(3, UDS_STREAM, AF_UNIX, 0) == 0);
    CHILD_CHECK(uds_socket_check(3, UDS_STREAM, AF_UNIX, 1) == -EINVAL);
    uds_listener l;
    CHILD_CHECK(uds_activation_listener(&a, &l, NULL, UDS_STREAM) == -EINVAL);
    uds_activation_free(&a);

    setenv("LISTEN_FDNAMES", "one", 1);
    CHILD_CHECK(uds_activation_get(&a, 0) == -EINVAL);
    CHILD_CHECK(a.count == 0 && a.names == NULL);
    setenv("LISTEN_FDNAMES", "one:two:three", 1);
    CHILD_CHECK(uds_activation_get(&a, 0) == -EINVAL);
    setenv("LISTEN_FDNAMES", "one:", 1); /* an empty second name is a name */
    CHILD_CHECK(uds_activation_get(&a, 0) == 2);
    CHILD_CHECK(strcmp(a.names[1], "") == 0);
    uds_activation_free(&a);

    setenv("LISTEN_FDS", "3", 1); /* fd 5 is not open */
    unsetenv("LISTEN_FDNAMES");
    CHILD_CHECK(uds_activation_get(&a, 0) == -EBADF);
    setenv("LISTEN_FDS", "0", 1);
    CHILD_CHECK(uds_activation_get(&a, 0) == 0);
}

static void test_names_and_bad_fd(void **state)
{
    (void)state;
    clear_env();
    run_child(child_names_and_bad_fd, NULL);
}

static void test_socket_check(void **state)
{
    (void)state;
    int p[2];
    assert_int_equal(pipe2(p, O_CLOEXEC), 0);
    assert_int_equal(uds_socket_check(p[0], 0, 0, -1), -ENOTSOCK);
    close(p[0]);
    close(p[1]);
    assert_int_equal(uds_socket_check(p[0], 0, 0, -1), -EBADF);
    assert_int_equal(uds_socket_check(-1, 0, 0, -1), -EBADF);
    int s = uds_dgram_socket(AF_UNIX, 0);
    assert_true(s >= 0);
    assert_int_equal(uds_socket_check(s, UDS_DGRAM, AF_UNIX, -1), 0);
    assert_int_equal(uds_socket_check(s, UDS_DGRAM, AF_UNIX, 0), 0);
    assert_int_equal(uds_socket_check(s, UDS_SEQPACKET, 0, -1), -EPROTOTYPE);
    assert_int_equal(uds_socket_check(s, 0, AF_INET6, -1), -EAFNOSUPPORT);
    close(s);
    uds_addr a;
    uds_listener l;
    assert_int_equal(uds_addr_parse(&a, "tcp:127.0.0.1:0"), 0);
    assert_int_equal(uds_listen(&l, &a, NULL), 0);
    assert_int_equal(uds_socket_check(l.fd, UDS_STREAM, AF_INET, 1), 0);
    assert_int_equal(uds_socket_check(l.fd, UDS_STREAM, AF_UNIX, 1), -EAFNOSUPPORT);
    uds_listener_close(&l);
}

/* A datagram socket in a temp dir plays the service manager. */
static int manager_socket(const char *path_or_at)
{
    uds_addr a;
    uds_listener l;
    uds_listen_opts o = {.type = UDS_DGRAM};
    assert_int_equal(uds_addr_parse(&a, path_or_at), 0);
    assert_int_equal(uds_listen(&l, &a, &o), 0);
    assert_int_equal(uds_set_passcred(l.fd, 1), 0);
    if (l.dirfd >= 0)
        close(l.dirfd); /* only the socket is kept */
    return l.fd; /* the test removes the temp dir, file and all */
}

/* Receives one notification; checks the text and that it came from us. */
static void expect_notification(int fd, const char *want)
{
    char buf[4200];
    uds_msg m;
    memset(&m, 0, sizeof(m));
    m.buf = buf;
    m.len = sizeof(buf) - 1;
    ssize_t n = uds_recvmsg(fd, &m, MSG_DONTWAIT);
    assert_true(n >= 0);
    buf[n] = '\0';
    assert_string_equal(buf, want);
    assert_int_equal(m.has_cred, 1);
    assert_int_equal(m.cred.pid, getpid());
}

static void test_notify_path(void **state)
{
    (void)state;
    clear_env();
    char *dir = tu_tmpdir();
    assert_non_null(dir);
    const char *path = tu_path(dir, "notify");
    int m = manager_socket(path);
    int fds_before = tu_count_fds();

    assert_int_equal(uds_notify_ready(), 0); /* no NOTIFY_SOCKET: nothing */
    setenv("NOTIFY_SOCKET", path, 1);
    assert_int_equal(uds_notify_ready(), 1);
    expect_notification(m, "READY=1");
    assert_int_equal(uds_notify_status("serving 3 clients\nSECRET=1"), 1);
    expect_notification(m, "STATUS=serving 3 clients");
    assert_int_equal(uds_notify_stopping(), 1);
    expect_notification(m, "STOPPING=1");
    assert_int_equal(uds_notify("READY=1\nSTATUS=all good"), 1);
    expect_notification(m, "READY=1\nSTATUS=all good");
    assert_int_equal(tu_count_fds(), fds_before); /* the sending socket was closed */

    char big[4100];
    memset(big, 'x', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    assert_int_equal(uds_notify_status(big), -EMSGSIZE);
    assert_int_equal(uds_notify(""), -EINVAL);
    assert_int_equal(uds_notify(NULL), -EINVAL);

    /* nobody listening any more: an error, not a crash or a hang */
    close(m);
    unlink(path);
    assert_int_equal(uds_notify_ready(), -ENOENT);
    setenv("NOTIFY_SOCKET", "vsock:2:1234", 1);
    assert_int_equal(uds_notify_ready(), -EAFNOSUPPORT);
    setenv("NOTIFY_SOCKET", "", 1);
    assert_int_equal(uds_notify_ready(), -EINVAL);
    char longp[200];
    memset(longp, 'a', sizeof(longp) - 1);
    longp[0] = '/';
    longp[sizeof(longp) - 1] = '\0';
    setenv("NOTIFY_SOCKET", longp, 1);
    assert_int_equal(uds_notify_ready(), -ENAMETOOLONG);
    clear_env();
    tu_rmtree(dir);
    free(dir);
}

/* A manager that stopped reading: -EAGAIN after about a second, no hang. */
static void test_notify_full(void **state)
{
    (void)state;
    clear_env();
    char *dir = tu_tmpdir();
    assert_non_null(dir);
    const char *path = tu_path(dir, "full");
    int m = manager_socket(path);
    uds_addr a;
    assert_int_equal(uds_addr_parse(&a, path), 0);
    /* Fill its queue (net.unix.max_dgram_qlen datagrams). A sender's own
       buffer may run out first, so fresh senders go on until one cannot
       send even its first datagram: then the receiver is full. */
    int senders[64], ns = 0, queued = 0, sent;
    do {
        assert_true(ns < 64);
        senders[ns] = uds_dgram_socket(AF_UNIX, UDS_NONBLOCK);
        assert_true(senders[ns] >= 0);
        for (sent = 0; sent < 100000 && uds_sendto(senders[ns], "x", 1, &a) == 1; sent++)
            queued++;
        ns++;
    } while (sent > 0);
    assert_true(queued > 0);
    setenv("NOTIFY_SOCKET", path, 1);
    uint64_t t0 = tu_now_ms();
    assert_int_equal(uds_notify_ready(), -EAGAIN);
    uint64_t dt = tu_now_ms() - t0;
    assert_true(dt >= 900 && dt < 5000);
    for (int i = 0; i < ns; i++)
        close(senders[i]);
    close(m);
    clear_env();
    tu_rmtree(dir);
    free(dir);
}

static void test_notify_abstract(void **state)
{
    (void)state;
    clear_env();
    char name[64];
    snprintf(name, sizeof(name), "@udsock-test-notify-%ld-%llu", (long)getpid(),
             (unsigned long long)tu_now_ms());
    int m = manager_socket(name);
    setenv("NOTIFY_SOCKET", name, 1);
    assert_int_equal(uds_notify_ready(), 1);
    expect_notification(m, "READY=1");
    close(m);
    clear_env();
}

/* An abstract name may fill all 107 bytes after its leading NUL (the '@'
   of NOTIFY_SOCKET): such a manager socket is reachable (it was refused
   with -ENAMETOOLONG); one byte more cannot be. */
static void test_notify_abstract_full(void **state)
{
    (void)state;
    clear_env();
    char name[110];
    memset(name, 'n', sizeof(name));
    int k = snprintf(name, sizeof(name), "@udsock-test-notify-%ld-%llu-", (long)getpid(),
                     (unsigned long long)tu_now_ms());
    name[k] = 'n'; /* snprintf's NUL: padded on to the full length */
    name[108] = '\0';  /* '@' + 107 */
    int m = manager_socket(name);
    setenv("NOTIFY_SOCKET", name, 1);
    assert_int_equal(uds_notify_ready(), 1);
    expect_notification(m, "READY=1");
    name[108] = 'n';
    name[109] = '\0'; /* '@' + 108: does not fit */
    setenv("NOTIFY_SOCKET", name, 1);
    assert_int_equal(uds_notify_ready(), -ENAMETOOLONG);
    close(m);
    clear_env();
}

static void test_ready_fd(void **state)
{
    (void)state;
    int p[2];
    char c[4];
    assert_int_equal(pipe2(p, O_CLOEXEC), 0);
    assert_int_equal(uds_ready_fd(p[1]), 0);
    assert_int_equal(read(p[0], c, sizeof(c)), 1);
    assert_int_equal(c[0], '\n');
    assert_int_equal(read(p[0], c, sizeof(c)), 0); /* writer closed */
    assert_true(fcntl(p[1], F_GETFD) < 0);
    close(p[0]);

    /* reader gone: -EPIPE, and no SIGPIPE left to kill us or pend */
    assert_int_equal(pipe2(p, O_CLOEXEC), 0);
    close(p[0]);
    assert_int_equal(uds_ready_fd(p[1]), -EPIPE);
    sigset_t pend;
    sigemptyset(&pend);
    sigpending(&pend);
    assert_false(sigismember(&pend, SIGPIPE));
    assert_true(fcntl(p[1], F_GETFD) < 0);

    assert_int_equal(uds_ready_fd(-1), -EBADF);
    assert_int_equal(uds_ready_fd(p[1]), -EBADF); /* already closed */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_not_activated),
        cmocka_unit_test(test_wrong_pid_ignored),
        cmocka_unit_test(test_malformed_env),
        cmocka_unit_test(test_two_sockets),
        cmocka_unit_test(test_same_name),
        cmocka_unit_test(test_names_and_bad_fd),
        cmocka_unit_test(test_socket_check),
        cmocka_unit_test(test_notify_path),
        cmocka_unit_test(test_notify_full),
        cmocka_unit_test(test_notify_abstract),
        cmocka_unit_test(test_notify_abstract_full),
        cmocka_unit_test(test_ready_fd),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
