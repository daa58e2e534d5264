/*
 * test_io.c — write-all/read-exact under short writes and signals,
 * non-blocking writes as a state, vectors, vanished peers without SIGPIPE,
 * and non-socket fds.
 */
#include "testutil.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

static volatile sig_atomic_t alarms;

static void on_alarm(int sig)
{
    (void)sig;
    alarms++;
}

/* SIGALRM every `us` microseconds, handler without SA_RESTART. */
static void start_timer(long us)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_alarm;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = 0; /* no SA_RESTART: blocked calls fail with EINTR */
    assert_int_equal(sigaction(SIGALRM, &sa, NULL), 0);
    struct itimerval it = {{0, us}, {0, us}};
    assert_int_equal(setitimer(ITIMER_REAL, &it, NULL), 0);
}

static void stop_timer(void)
{
    struct itimerval it;
    memset(&it, 0, sizeof(it));
    setitimer(ITIMER_REAL, &it, NULL);
    signal(SIGALRM, SIG_DFL);
}

static void assert_cloexec(int fd)
{
    int fl = fcntl(fd, F_GETFD);
    assert_true(fl >= 0 && (fl & FD_CLOEXEC));
}

#define BIG (6u << 20) /* 6 MiB */

/*
 * A forked writer pushes 6 MiB through a socket with a 4 KiB send buffer
 * while SIGALRM interrupts it every millisecond; the parent reads it in
 * odd-sized pieces, pausing now and then, with its own timer interrupting
 * the reads. The bytes must arrive exactly, and both sides must actually
 * have been interrupted.
 */
static void test_eintr_partial(void **state)
{
    (void)state;
    TU_VALGRIND_SKIP("a signal every millisecond leaves no time for the syscall under valgrind");
    int sv[2];
    assert_int_equal(uds_pair(UDS_STREAM, 0, sv), 0);
    assert_cloexec(sv[0]);
    assert_cloexec(sv[1]);
    assert_int_equal(uds_set_bufsizes(sv[0], 4096, 0), 0);
    assert_int_equal(uds_set_bufsizes(sv[1], 0, 4096), 0);
    int rep[2];
    assert_int_equal(pipe2(rep, O_CLOEXEC), 0);

    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        close(sv[1]);
        close(rep[0]);
        unsigned char *buf = malloc(BIG);
        if (!buf)
            _exit(3);
        tu_fill(buf, BIG, 42);
        alarms = 0;
        start_timer(1000);
        ssize_t n = uds_write_all(sv[0], buf, BIG);
        stop_timer();
        long res[2] = {(long)n, (long)alarms};
        (void)!write(rep[1], res, sizeof(res));
        free(buf);
        _exit(0);
    }
    close(sv[0]);
    close(rep[1]);
    unsigned char *got = malloc(BIG), *want = malloc(BIG);
    assert_non_null(got);
    assert_non_null(want);
    tu_fill(want, BIG, 42);
    alarms = 0;
    start_timer(1000);
    size_t off = 0, k = 0;
    while (off < BIG) {
        size_t chunk = 1000 + (k * 7919) % 30000;
        if (chunk > BIG - off)
            chunk = BIG - off;
        ssize_t n = uds_read_exact(sv[1], got + off, chunk);
        if (n != (ssize_t)chunk)
            fail_msg("read_exact at %zu: %zd (%s)", off, n, n < 0 ? uds_strerror((int)n) : "short");
        off += chunk;
        if (++k % 16 == 0)
            usleep(500); /* slow reader: the writer's buffer fills */
    }
    stop_timer();
    long reader_alarms = alarms;
    char extra;
    assert_int_equal(uds_read_exact(sv[1], &extra, 1), 0); /* then EOF */
    long res[2];
    assert_int_equal(uds_read_exact(rep[0], res, sizeof(res)), sizeof(res));
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    assert_int_equal(res[0], (long)BIG);
    assert_true(res[1] > 10);        /* the writer was interrupted, often */
    assert_true(reader_alarms > 10); /* and so was the reader */
    assert_int_equal(tu_fnv(got, BIG), tu_fnv(want, BIG));
    assert_memory_equal(got, want, BIG);
    free(got);
    free(want);
    close(sv[1]);
    close(rep[0]);
}

static void test_write_nb(void **state)
{
    (void)state;
    int sv[2];
    assert_int_equal(uds_pair(UDS_STREAM, UDS_NONBLOCK, sv), 0);
    assert_true(fcntl(sv[0], F_GETFL) & O_NONBLOCK);
    assert_int_equal(uds_set_bufsizes(sv[0], 8192, 0), 0);
    size_t len = 1u << 20;
    unsigned char *buf = malloc(len), *got = malloc(len);
    assert_non_null(buf);
    assert_non_null(got);
    tu_fill(buf, len, 7);
    size_t done = 0, rd = 0, prev;
    int r = uds_write_nb(sv[0], buf, len, &done);
    assert_int_equal(r, -EAGAIN); /* full: a state, not a failure */
    assert_true(done > 0 && done < len);
    /* nothing more fits: a second call makes no progress, still -EAGAIN */
    prev = done;
    assert_int_equal(uds_write_nb(sv[0], buf, len, &done), -EAGAIN);
    assert_int_equal(done, prev);
    int rounds = 0;
    while (r == -EAGAIN) {
        ssize_t n;
        while ((n = uds_read_some(sv[1], got + rd, len - rd)) > 0)
            rd += (size_t)n;
        assert_int_equal(n, -EAGAIN);
        prev = done;
        r = uds_write_nb(sv[0], buf, len, &done);
        assert_true(r == 0 || r == -EAGAIN);
        assert_true(done > prev); /* resumed where it stopped */
        rounds++;
    }
    assert_int_equal(done, len);
    assert_true(rounds > 1);
    while (rd < len) {
        ssize_t n = uds_read_some(sv[1], got + rd, len - rd);
        assert_true(n > 0);
        rd += (size_t)n;
    }
    assert_memory_equal(got, buf, len);
    /* done == len: nothing to do */
    assert_int_equal(uds_write_nb(sv[0], buf, len, &done), 0);
    /* uds_write_all on a non-blocking full socket: -EAGAIN too */
    assert_int_equal(uds_write_all(sv[0], buf, len), -EAGAIN);
    free(buf);
    free(got);
    close(sv[0]);
    close(sv[1]);
}

struct reader {
    int fd;
    unsigned char *buf;
    size_t len;
    ssize_t got;
    int slow;
    int shut;     /* socket: after len bytes, refuse more and count extras */
    size_t extra; /* bytes that arrived beyond len */
};

static void *reader_main(void *arg)
{
    struct reader *r = arg;
    size_t off = 0;
    /* the timer's signals go to the writing (main) thread */
    sigset_t al;
    sigemptyset(&al);
    sigaddset(&al, SIGALRM);
    pthread_sigmask(SIG_BLOCK, &al, NULL);
    while (off < r->len) {
        size_t c = r->len - off < 3000 ? r->len - off : 3000;
        ssize_t n = uds_read_exact(r->fd, r->buf + off, c);
        if (n <= 0)
            break;
        off += (size_t)n;
        if (r->slow && off % 30000 < 3000)
            usleep(500);
    }
    r->got = (ssize_t)off;
    if (r->shut) {
        /* A writer that sends more than len (e.g. resends after a short
           write) gets EPIPE now instead of blocking forever, and what it
           already sent is counted. */
        shutdown(r->fd, SHUT_RD);
        char tmp[4096];
        ssize_t n;
        while ((n = recv(r->fd, tmp, sizeof(tmp), MSG_DONTWAIT)) > 0)
            r->extra += (size_t)n;
    }
    return NULL;
}

static void test_writev_partial(void **state)
{
    (void)state;
    TU_VALGRIND_SKIP("a signal every millisecond leaves no time for the syscall under valgrind");
    int sv[2];
    assert_int_equal(uds_pair(UDS_STREAM, 0, sv), 0);
    assert_int_equal(uds_set_bufsizes(sv[0], 4096, 0), 0);
    size_t total = 3u << 20;
    unsigned char *src = malloc(total);
    assert_non_null(src);
    tu_fill(src, total, 99);
    /* uneven pieces, empty ones among them, across the whole buffer */
    struct iovec iov[64], copy[64];
    int cnt = 0;
    size_t off = 0;
    for (int i = 0; off < total && cnt < 63; i++) {
        size_t l = i % 5 == 3 ? 0 : (size_t)(1 + (i * 104729u) % 200000u);
        if (l > total - off)
            l = total - off;
        iov[cnt].iov_base = src + off;
        iov[cnt].iov_len = l;
        off += l;
        cnt++;
    }
    iov[cnt].iov_base = src + off;
    iov[cnt].iov_len = total - off;
    cnt++;
    memcpy(copy, iov, sizeof(iov));

    struct reader rd = {sv[1], malloc(total), total, 0, 1, 1, 0};
    assert_non_null(rd.buf);
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, reader_main, &rd), 0);
    /* a blocking sendmsg returns short only when a signal interrupts it:
       interrupt it every millisecond so the resume path really runs */
    alarms = 0;
    start_timer(1000);
    assert_int_equal(uds_writev_all(sv[0], iov, cnt), (ssize_t)total);
    stop_timer();
    assert_true(alarms > 5);
    pthread_join(th, NULL);
    assert_int_equal(rd.got, (ssize_t)total);
    assert_memory_equal(rd.buf, src, total);
    assert_memory_equal(copy, iov, sizeof(iov)); /* iov not modified */
    assert_int_equal(rd.extra, 0); /* and not a byte more */

    /* the reader shut its side: the next write is -EPIPE */
    assert_int_equal(uds_writev_all(sv[0], iov, cnt), -EPIPE);
    /* non-blocking and full: -EAGAIN */
    int nb[2];
    assert_int_equal(uds_pair(UDS_STREAM, UDS_NONBLOCK, nb), 0);
    assert_int_equal(uds_writev_all(nb[0], iov, cnt), -EAGAIN);
    close(nb[0]);
    close(nb[1]);
    assert_int_equal(uds_writev_all(sv[0], iov, -1), -EINVAL);
    assert_int_equal(uds_writev_all(sv[0], NULL, 0), 0);
    free(rd.buf);
    free(src);
    close(sv[0]);
    close(sv[1]);
}

/* Runs fn in a child with SIGPIPE at its default (fatal) action. */
static void in_child_default_sigpipe(void (*fn)(void))
{
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        signal(SIGPIPE, SIG_DFL);
        sigset_t s;
        sigemptyset(&s);
        sigprocmask(SIG_SETMASK, &s, NULL);
        fn();
        _exit(0);
    }
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    if (WIFSIGNALED(status))
        fail_msg("child killed by signal %d", WTERMSIG(status));
    assert_true(WIFEXITED(status));
    if (WEXITSTATUS(status) != 0)
        fail_msg("child check %d failed", WEXITSTATUS(status));
}

#define CHECK(n, cond) do { if (!(cond)) _exit(n); } while (0)

static void epipe_socket(void)
{
    int sv[2];
    CHECK(10, uds_pair(UDS_STREAM, 0, sv) == 0);
    close(sv[1]);
    char b[100] = {0};
    CHECK(11, uds_write_all(sv[0], b, sizeof(b)) == -EPIPE);
    CHECK(12, uds_send(sv[0], b, sizeof(b)) == -EPIPE);
    struct iovec v[2] = {{b, 10}, {b, 20}};
    CHECK(13, uds_writev_all(sv[0], v, 2) == -EPIPE);
    size_t done = 0;
    CHECK(14, uds_write_nb(sv[0], b, sizeof(b), &done) == -EPIPE && done == 0);
    int fd = sv[0];
    CHECK(15, uds_send_fds(sv[0], b, 1, &fd, 1) == -EPIPE);
    CHECK(16, uds_sendto(sv[0], b, 1, NULL) == -EPIPE);
    /* also after the peer closed with data in flight */
    CHECK(17, uds_pair(UDS_SEQPACKET, 0, sv) == 0);
    close(sv[1]);
    CHECK(18, uds_write_all(sv[0], b, sizeof(b)) == -EPIPE);
    sigset_t pend;
    sigpending(&pend);
    CHECK(19, !sigismember(&pend, SIGPIPE));
}

static void epipe_pipe(void)
{
    int p[2];
    CHECK(20, pipe2(p, O_CLOEXEC) == 0);
    close(p[0]);
    char b[100] = {0};
    CHECK(21, uds_write_all(p[1], b, sizeof(b)) == -EPIPE);
    struct iovec v[2] = {{b, 10}, {b, 20}};
    CHECK(22, uds_writev_all(p[1], v, 2) == -EPIPE);
    /* no SIGPIPE left pending, and the mask is as before */
    sigset_t pend, mask;
    sigpending(&pend);
    CHECK(23, !sigismember(&pend, SIGPIPE));
    sigprocmask(SIG_SETMASK, NULL, &mask);
    CHECK(24, !sigismember(&mask, SIGPIPE));
    close(p[1]);
}

static void test_epipe_no_sigpipe(void **state)
{
    (void)state;
    in_child_default_sigpipe(epipe_socket);
    in_child_default_sigpipe(epipe_pipe);
}

/* The non-socket path: write_all/writev_all/read_exact over a pipe. */
static void test_pipe(void **state)
{
    (void)state;
    TU_VALGRIND_SKIP("a signal every millisecond leaves no time for the syscall under valgrind");
    int p[2];
    assert_int_equal(pipe2(p, O_CLOEXEC), 0);
    size_t len = 2u << 20;
    unsigned char *src = malloc(len);
    assert_non_null(src);
    tu_fill(src, len, 5);
    struct reader rd = {p[0], malloc(len), len, 0, 0, 0, 0};
    assert_non_null(rd.buf);
    pthread_t th;
    rd.slow = 1;
    assert_int_equal(pthread_create(&th, NULL, reader_main, &rd), 0);
    alarms = 0;
    start_timer(1000); /* short writes on the pipe too */
    assert_int_equal(uds_write_all(p[1], src, len / 2), (ssize_t)(len / 2));
    struct iovec v[3] = {{src + len / 2, 1000}, {src + len / 2 + 1000, 0},
                         {src + len / 2 + 1000, len / 2 - 1000}};
    assert_int_equal(uds_writev_all(p[1], v, 3), (ssize_t)(len / 2));
    stop_timer();
    assert_true(alarms > 5);
    pthread_join(th, NULL);
    assert_int_equal(rd.got, (ssize_t)len);
    assert_memory_equal(rd.buf, src, len);

    /* read_exact stops short at end of file */
    assert_int_equal(uds_write_all(p[1], "abc", 3), 3);
    close(p[1]);
    char b[10];
    assert_int_equal(uds_read_exact(p[0], b, sizeof(b)), 3);
    assert_memory_equal(b, "abc", 3);
    assert_int_equal(uds_read_exact(p[0], b, sizeof(b)), 0);
    close(p[0]);
    /* errors are -errno */
    assert_int_equal(uds_write_all(p[0], "x", 1), -EBADF);
    assert_int_equal(uds_read_some(p[0], b, 1), -EBADF);
    free(rd.buf);
    free(src);
}

static void test_read_some_nonblock(void **state)
{
    (void)state;
    int sv[2];
    assert_int_equal(uds_pair(UDS_STREAM, UDS_NONBLOCK, sv), 0);
    char b[8];
    assert_int_equal(uds_read_some(sv[0], b, sizeof(b)), -EAGAIN);
    assert_int_equal(uds_send(sv[1], "hello", 5), 5);
    assert_int_equal(uds_read_some(sv[0], b, sizeof(b)), 5);
    close(sv[1]);
    assert_int_equal(uds_read_some(sv[0], b, sizeof(b)), 0);
    close(sv[0]);
    /* uds_pair CLOEXEC on every type */
    int types[] = {UDS_STREAM, UDS_DGRAM, UDS_SEQPACKET};
    for (int i = 0; i < 3; i++) {
        assert_int_equal(uds_pair(types[i], 0, sv), 0);
        assert_cloexec(sv[0]);
        assert_cloexec(sv[1]);
        assert_int_equal(uds_sock_type(sv[0]), types[i]);
        assert_false(fcntl(sv[0], F_GETFL) & O_NONBLOCK);
        close(sv[0]);
        close(sv[1]);
    }
    assert_int_equal(uds_sock_type(12345), -EBADF);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_eintr_partial),
        cmocka_unit_test(test_write_nb),
        cmocka_unit_test(test_writev_partial),
        cmocka_unit_test(test_epipe_no_sigpipe),
        cmocka_unit_test(test_pipe),
        cmocka_unit_test(test_read_some_nonblock),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
