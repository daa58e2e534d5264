/*
 * raw_stream.c — the limit for one-way throughput over a unix stream
 * socket: large write() calls from memory on one side, large read() calls
 * on the other, no library. Three ways to run it:
 *
 *   raw_stream pair [-s CHUNK] [-d SEC] [-c S,C] [-b SOCKBUF]
 *       both ends here (socketpair + fork); prints the rate
 *   raw_stream recv PATH [-s CHUNK] [-b SOCKBUF]
 *       listen on PATH, accept one connection, read to EOF, print the rate
 *   raw_stream send PATH -B BYTES [-s CHUNK] [-b SOCKBUF]
 *       connect to PATH (waiting for it to appear), write BYTES, close
 *
 * recv/send are the two ends bench/compare puts around a relay.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "raw_common.h"

static void bufs(int fd, int sz)
{
    if (sz > 0) {
        setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sz, sizeof(sz));
        setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &sz, sizeof(sz));
    }
}

/* Reads to EOF; returns bytes, and the time from first byte to EOF in *ns. */
static uint64_t drain(int fd, size_t chunk, uint64_t *ns)
{
    char *buf = malloc(chunk);
    uint64_t total = 0, t0 = 0;
    for (;;) {
        ssize_t n = read(fd, buf, chunk);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        if (!t0)
            t0 = now_ns();
        total += (uint64_t)n;
    }
    *ns = t0 ? now_ns() - t0 : 1;
    free(buf);
    return total;
}

/* Writes `bytes` (or for `secs`) in chunk-sized writes; returns bytes. */
static uint64_t pour(int fd, size_t chunk, uint64_t bytes, double secs)
{
    char *buf = calloc(1, chunk);
    uint64_t sent = 0, end = secs > 0 ? now_ns() + (uint64_t)(secs * 1e9) : 0;
    for (;;) {
        size_t want = chunk;
        if (bytes) {
            if (sent >= bytes)
                break;
            if (bytes - sent < want)
                want = (size_t)(bytes - sent);
        } else if (now_ns() >= end)
            break;
        ssize_t n = send(fd, buf, want, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        sent += (uint64_t)n;
    }
    free(buf);
    return sent;
}

static int addr_of(const char *path, struct sockaddr_un *sa)
{
    memset(sa, 0, sizeof(*sa));
    sa->sun_family = AF_UNIX;
    if (strlen(path) >= sizeof(sa->sun_path))
        return -1;
    strcpy(sa->sun_path, path);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
    usage:
        fprintf(stderr, "usage: raw_stream pair [-s CHUNK] [-d SEC] [-c S,C] [-b SOCKBUF]\n"
                        "       raw_stream recv PATH [-s CHUNK] [-b SOCKBUF]\n"
                        "       raw_stream send PATH -B BYTES [-s CHUNK] [-b SOCKBUF]\n");
        return 2;
    }
    const char *mode = argv[1], *path = NULL;
    int argi = 2;
    if (strcmp(mode, "pair")) {
        if (argc < 3)
            goto usage;
        path = argv[2];
        argi = 3;
    }
    size_t chunk = 65536;
    double secs = 2;
    uint64_t bytes = 0;
    int cs = -1, cc = -1, sockbuf = 0, o;
    optind = argi;
    while ((o = getopt(argc, argv, "s:d:c:b:B:")) != -1) {
        switch (o) {
        case 's': chunk = strtoul(optarg, NULL, 0); break;
        case 'd': secs = atof(optarg); break;
        case 'c': cs = cc = atoi(optarg); if (strchr(optarg, ',')) cc = atoi(strchr(optarg, ',') + 1); break;
        case 'b': sockbuf = atoi(optarg); break;
        case 'B': bytes = strtoull(optarg, NULL, 0); break;
        default: goto usage;
        }
    }
    if (!chunk)
        goto usage;
    if (!strcmp(mode, "pair")) {
        int sv[2];
        if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
            return 1;
        bufs(sv[0], sockbuf);
        bufs(sv[1], sockbuf);
        int p[2];
        if (pipe2(p, O_CLOEXEC) < 0)
            return 1;
        pid_t pid = fork();
        if (pid == 0) {
            close(sv[0]);
            close(p[0]);
            pin(cs);
            uint64_t ns, got = drain(sv[1], chunk, &ns);
            if (write(p[1], &got, sizeof(got)) < 0 || write(p[1], &ns, sizeof(ns)) < 0)
                _exit(1);
            _exit(0);
        }
        close(sv[1]);
        close(p[1]);
        pin(cc);
        uint64_t t0 = now_ns();
        pour(sv[0], chunk, bytes, bytes ? 0 : secs);
        close(sv[0]);
        uint64_t got = 0, ns = 0;
        if (read(p[0], &got, sizeof(got)) != sizeof(got) || read(p[0], &ns, sizeof(ns)) != sizeof(ns))
            return 1;
        waitpid(pid, NULL, 0);
        double s = (double)(now_ns() - t0) / 1e9;
        printf("raw_stream mode=pair chunk=%zu cpus=%d,%d sockbuf=%d bytes=%llu secs=%.3f gb_s=%.3f\n",
               chunk, cs, cc, sockbuf, (unsigned long long)got, s, (double)got / s / 1e9);
        return 0;
    }
    struct sockaddr_un sa;
    if (addr_of(path, &sa) < 0)
        return 2;
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (!strcmp(mode, "recv")) {
        struct stat st;
        if (lstat(path, &st) == 0 && S_ISSOCK(st.st_mode))
            unlink(path); /* our own leftover from an earlier run */
        bufs(fd, sockbuf);
        if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(fd, 16) < 0) {
            perror("raw_stream: bind");
            return 1;
        }
        int c = accept4(fd, NULL, NULL, SOCK_CLOEXEC);
        if (c < 0)
            return 1;
        pin(cs);
        uint64_t ns, got = drain(c, chunk, &ns);
        unlink(path);
        printf("raw_stream mode=recv chunk=%zu bytes=%llu secs=%.3f gb_s=%.3f\n", chunk,
               (unsigned long long)got, (double)ns / 1e9, (double)got / ((double)ns / 1e9) / 1e9);
        return 0;
    }
    if (!strcmp(mode, "send")) {
        bufs(fd, sockbuf);
        for (int i = 0; connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0; i++) {
            if (i > 1000 || (errno != ENOENT && errno != ECONNREFUSED)) {
                perror("raw_stream: connect");
                return 1;
            }
            usleep(10000);
        }
        pin(cc);
        uint64_t sent = pour(fd, chunk, bytes, bytes ? 0 : secs);
        close(fd);
        return sent ? 0 : 1;
    }
    goto usage;
}
