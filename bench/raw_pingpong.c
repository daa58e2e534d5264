/*
 * raw_pingpong.c — the physical limit for a round trip on this machine:
 * two processes on a socketpair, no library, no framework, nothing but
 * send()/recv(). bench/compare puts udsock next to this number.
 *
 *   raw_pingpong [-t stream|seqpacket|dgram] [-s SIZE] [-d SECONDS]
 *                [-c SERVER_CPU,CLIENT_CPU] [-S SPIN_USEC]
 *
 * -S 0 blocks in recv(); -S N polls with MSG_DONTWAIT for up to N µs first
 * (a huge N is pure busy-polling). Prints one line of key=value pairs;
 * percentiles come from every sample (sorted), not from an average.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "raw_common.h"

/* Receives exactly len bytes, spinning for spin_ns before each block. */
static int recv_all(int fd, char *buf, size_t len, uint64_t spin_ns, int msg)
{
    size_t got = 0;
    while (got < len) {
        ssize_t n = -1;
        if (spin_ns) {
            uint64_t t0 = now_ns();
            while ((n = recv(fd, buf + got, len - got, MSG_DONTWAIT)) < 0 && errno == EAGAIN &&
                   now_ns() - t0 < spin_ns)
                ;
        }
        if (n < 0)
            n = recv(fd, buf + got, len - got, 0);
        if (n <= 0)
            return -1;
        got += (size_t)n;
        if (msg)
            break;
    }
    return 0;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
    int type = SOCK_STREAM, cs = -1, cc = -1, o;
    size_t size = 64;
    double secs = 2;
    uint64_t spin_ns = 0;
    const char *tname = "stream";
    while ((o = getopt(argc, argv, "t:s:d:c:S:")) != -1) {
        switch (o) {
        case 't':
            tname = optarg;
            type = !strcmp(optarg, "seqpacket") ? SOCK_SEQPACKET
                   : !strcmp(optarg, "dgram")   ? SOCK_DGRAM
                                                : SOCK_STREAM;
            break;
        case 's': size = strtoul(optarg, NULL, 0); break;
        case 'd': secs = atof(optarg); break;
        case 'c': cs = cc = atoi(optarg); if (strchr(optarg, ',')) cc = atoi(strchr(optarg, ',') + 1); break;
        case 'S': spin_ns = strtoull(optarg, NULL, 0) * 1000u; break;
        default:
            fprintf(stderr, "usage: raw_pingpong [-t stream|seqpacket|dgram] [-s SIZE] [-d SEC] [-c S,C] [-S USEC]\n");
            return 2;
        }
    }
    int sv[2];
    if (socketpair(AF_UNIX, type | SOCK_CLOEXEC, 0, sv) < 0) {
        perror("raw_pingpong: socketpair");
        return 1;
    }
    char *buf = calloc(1, size ? size : 1);
    int msg = type != SOCK_STREAM;
    pid_t pid = fork();
    if (pid == 0) { /* the echo end */
        close(sv[0]);
        pin(cs);
        while (recv_all(sv[1], buf, size, spin_ns, msg) == 0)
            if (send(sv[1], buf, size, MSG_NOSIGNAL) < 0)
                break;
        _exit(0);
    }
    close(sv[1]);
    pin(cc);
    size_t cap = 1 << 24, n = 0;
    uint64_t *lat = malloc(cap * sizeof(uint64_t));
    for (int i = 0; i < 1000; i++) /* warm-up */
        if (send(sv[0], buf, size, MSG_NOSIGNAL) < 0 || recv_all(sv[0], buf, size, spin_ns, msg) < 0)
            return 1;
    uint64_t start = now_ns(), end = start + (uint64_t)(secs * 1e9), t = start;
    while (t < end && n < cap) {
        uint64_t t0 = now_ns();
        if (send(sv[0], buf, size, MSG_NOSIGNAL) < 0 || recv_all(sv[0], buf, size, spin_ns, msg) < 0)
            break;
        t = now_ns();
        lat[n++] = t - t0;
    }
    close(sv[0]);
    waitpid(pid, NULL, 0);
    if (!n)
        return 1;
    qsort(lat, n, sizeof(uint64_t), cmp_u64);
#define Q(q) ((double)lat[(size_t)((double)(n - 1) * (q))] / 1e3)
    printf("raw_pingpong type=%s size=%zu cpus=%d,%d spin_us=%llu n=%zu ops_s=%.0f p50_us=%.2f "
           "p90_us=%.2f p99_us=%.2f p999_us=%.2f max_us=%.1f\n",
           tname, size, cs, cc, (unsigned long long)(spin_ns / 1000), n,
           (double)n / ((double)(t - start) / 1e9), Q(0.5), Q(0.9), Q(0.99), Q(0.999),
           (double)lat[n - 1] / 1e3);
    return 0;
}
