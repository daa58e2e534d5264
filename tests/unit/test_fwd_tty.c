/*
 * test_fwd_tty.c — uds_fwd with a terminal side (a pty master, as `udsock
 * serve --pty` uses it): bytes both ways; the socket side's EOF becomes the
 * terminal's VEOF (twice after a partial line in canonical mode, once as a
 * keystroke in raw mode); the end of the terminal (every slave fd closed:
 * EIO) ends the forward after the last output, also while input queued for
 * the terminal can never drain. One thread: the test drives the loop with
 * uds_loop_run_once and reads the slave without blocking.
 *   uds-test-timeout: 60
 */
#include "testutil.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <termios.h>
#include <unistd.h>

struct fx {
    uds_loop *loop;
    uds_fwd *f;
    int cli;  /* the test's end of the socket side */
    int sl;   /* the pty slave (the "program") */
    int done, err;
};

static void on_done(uds_fwd *f, int err, int side, const uds_fwd_stats *st, void *arg)
{
    (void)f;
    (void)side;
    (void)st;
    struct fx *x = arg;
    x->done++;
    x->err = err;
}

/* A forward between a socketpair end and a new pty's master; the slave
   non-blocking, echo off, canonical unless raw. */
static void fx_open(struct fx *x, int raw)
{
    memset(x, 0, sizeof(*x));
    int sv[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
    int m = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
    assert_true(m >= 0);
    assert_int_equal(grantpt(m), 0);
    assert_int_equal(unlockpt(m), 0);
    x->sl = ioctl(m, TIOCGPTPEER, O_RDWR | O_NOCTTY | O_CLOEXEC | O_NONBLOCK);
    assert_true(x->sl >= 0);
    struct termios t;
    assert_int_equal(tcgetattr(x->sl, &t), 0);
    t.c_lflag &= ~(tcflag_t)ECHO;
    if (raw)
        t.c_lflag &= ~(tcflag_t)ICANON;
    assert_int_equal(tcsetattr(x->sl, TCSANOW, &t), 0);
    assert_int_equal(uds_loop_new(&x->loop), 0);
    assert_int_equal(uds_fwd_new(&x->f, x->loop, sv[0], m, NULL, on_done, x), 0);
    x->cli = sv[1];
}

static void fx_close(struct fx *x)
{
    if (x->sl >= 0)
        close(x->sl);
    for (int i = 0; i < 200 && !x->done; i++) /* the forward ends with its terminal */
        uds_loop_run_once(x->loop, 20);
    assert_int_equal(x->done, 1);
    uds_loop_free(x->loop);
    close(x->cli);
}

/* Runs the loop and reads the slave until `want` reads (each one kept,
   a 0-byte read as "<EOF>") have come, for at most 5 s. */
static void slave_reads(struct fx *x, char out[][64], int want)
{
    int got = 0;
    for (int i = 0; i < 250 && got < want; i++) {
        uds_loop_run_once(x->loop, 20);
        char b[63];
        ssize_t n;
        while (got < want && (n = read(x->sl, b, sizeof(b))) >= 0) {
            if (n == 0)
                strcpy(out[got++], "<EOF>");
            else
                memcpy(out[got], b, (size_t)n), out[got++][n] = 0;
        }
    }
    assert_int_equal(got, want);
}

/* Canonical: the line, the partial line, then EOF; afterwards output the
   "program" writes before closing reaches the client, then EOF. */
static void test_eof_canonical(void **state)
{
    (void)state;
    struct fx x;
    fx_open(&x, 0);
    assert_int_equal(write(x.cli, "abc\npartial", 11), 11);
    assert_int_equal(shutdown(x.cli, SHUT_WR), 0);
    char r[3][64];
    slave_reads(&x, r, 3);
    assert_string_equal(r[0], "abc\n");
    assert_string_equal(r[1], "partial");
    assert_string_equal(r[2], "<EOF>");
    assert_int_equal(write(x.sl, "out\n", 4), 4);
    close(x.sl);
    x.sl = -1;
    char buf[64];
    size_t have = 0;
    for (int i = 0; i < 250 && !x.done; i++)
        uds_loop_run_once(x.loop, 20);
    assert_int_equal(x.done, 1);
    assert_int_equal(x.err, 0);
    ssize_t n;
    while ((n = read(x.cli, buf + have, sizeof(buf) - 1 - have)) > 0)
        have += (size_t)n;
    buf[have] = 0;
    assert_string_equal(buf, "out\r\n"); /* onlcr; then EOF (read 0) */
    assert_int_equal(n, 0);
    fx_close(&x);
}

/* At a line start one ^D is EOF: nothing else arrives after it. */
static void test_eof_line_start(void **state)
{
    (void)state;
    struct fx x;
    fx_open(&x, 0);
    assert_int_equal(write(x.cli, "l\n", 2), 2);
    assert_int_equal(shutdown(x.cli, SHUT_WR), 0);
    char r[2][64];
    slave_reads(&x, r, 2);
    assert_string_equal(r[0], "l\n");
    assert_string_equal(r[1], "<EOF>");
    for (int i = 0; i < 10; i++)
        uds_loop_run_once(x.loop, 10);
    char b[8];
    assert_int_equal(read(x.sl, b, sizeof(b)), -1); /* no second EOF */
    assert_int_equal(errno, EAGAIN);
    fx_close(&x);
}

/* Raw mode: the EOF is one ^D keystroke, whatever came before. */
static void test_eof_raw(void **state)
{
    (void)state;
    struct fx x;
    fx_open(&x, 1);
    assert_int_equal(write(x.cli, "k", 1), 1);
    assert_int_equal(shutdown(x.cli, SHUT_WR), 0);
    char all[16] = "";
    for (int i = 0; i < 250 && strlen(all) < 2; i++) {
        uds_loop_run_once(x.loop, 20);
        char b[8];
        ssize_t n = read(x.sl, b, sizeof(b) - 1);
        if (n > 0) {
            b[n] = 0;
            strncat(all, b, sizeof(all) - strlen(all) - 1);
        }
    }
    assert_string_equal(all, "k\x04");
    fx_close(&x);
}

/* Input queued for a terminal nobody reads can never drain: once the
   terminal's end is read the forward still ends at once (not after the
   30 s drain bound), and the client gets EOF. */
static void test_end_with_stuck_input(void **state)
{
    (void)state;
    struct fx x;
    fx_open(&x, 1);
    static char big[256 * 1024];
    memset(big, 'z', sizeof(big));
    assert_int_equal(fcntl(x.cli, F_SETFL, O_NONBLOCK), 0);
    size_t sent = 0;
    for (int i = 0; i < 100; i++) { /* the pty takes a few KiB, the queue the rest */
        ssize_t n = write(x.cli, big, sizeof(big));
        if (n > 0)
            sent += (size_t)n;
        uds_loop_run_once(x.loop, 5);
    }
    assert_true(sent > 64 * 1024);
    close(x.sl);
    x.sl = -1;
    uint64_t t0 = tu_now_ms();
    for (int i = 0; i < 500 && !x.done; i++)
        uds_loop_run_once(x.loop, 20);
    assert_int_equal(x.done, 1);
    assert_int_equal(x.err, 0);
    assert_true(tu_now_ms() - t0 < 8000);
    char b[16];
    ssize_t n;
    while ((n = read(x.cli, b, sizeof(b))) > 0)
        ;
    /* closed: EOF, or ECONNRESET for the client's own input the forward
       never read (a unix socket closed with unread data) */
    assert_true(n == 0 || errno == ECONNRESET);
    fx_close(&x);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_eof_canonical),
        cmocka_unit_test(test_eof_line_start),
        cmocka_unit_test(test_eof_raw),
        cmocka_unit_test(test_end_with_stuck_input),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
