/*
 * swapper.c — the attacker of the directory-swap race (tests/cli/path_safety.sh,
 * tests/stress/README.md): exchanges two names with renameat2(RENAME_EXCHANGE)
 * in a tight loop, raw syscalls only (no libudsock), so that a path through
 * the first name leads alternately to a real directory and through a symlink
 * to somewhere else.
 *
 *   swapper A B SECONDS [READY_FD]
 *
 * Run it as the unprivileged user who owns the directory holding A and B.
 * It writes "s\n" on READY_FD (if given) after its first successful swap,
 * swaps until SECONDS have passed or SIGTERM/SIGINT arrives, and prints the
 * number of swaps on stdout. Exit 0, or 1 if a swap failed (with the
 * error on stderr).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#ifndef RENAME_EXCHANGE
#define RENAME_EXCHANGE (1 << 1)
#endif

static volatile sig_atomic_t stop;

/* Why a flag only: the loop checks it between two swaps. */
static void on_stop(int sig)
{
    (void)sig;
    stop = 1;
}

/* Seconds from a monotonic clock. */
static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
    if (argc < 4) {
        fprintf(stderr, "usage: swapper A B SECONDS [READY_FD]\n");
        return 2;
    }
    double secs = atof(argv[3]);
    int rfd = argc > 4 ? atoi(argv[4]) : -1;
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_stop;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    double end = now_s() + secs;
    unsigned long n = 0;
    while (!stop) {
        if (syscall(SYS_renameat2, AT_FDCWD, argv[1], AT_FDCWD, argv[2], RENAME_EXCHANGE) != 0) {
            fprintf(stderr, "swapper: renameat2 %s %s: %s\n", argv[1], argv[2], strerror(errno));
            printf("%lu\n", n);
            return 1;
        }
        if (n++ == 0 && rfd >= 0) {
            (void)!write(rfd, "s\n", 2);
            close(rfd);
        }
        /* the clock every 1024 swaps: a syscall costs about as much as a swap */
        if ((n & 1023) == 0 && now_s() >= end)
            break;
    }
    /* an even number of swaps puts every name back where it was */
    if (n & 1) {
        if (syscall(SYS_renameat2, AT_FDCWD, argv[1], AT_FDCWD, argv[2], RENAME_EXCHANGE) == 0)
            n++;
    }
    printf("%lu\n", n);
    return 0;
}
