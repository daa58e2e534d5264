/*
 * raw_dgram.c — the limit for datagrams per second: a unix datagram
 * receiver bound to a path, a connected sender, plain send()/recv() or
 * sendmmsg()/recvmmsg() in batches of B. No library.
 *
 *   raw_dgram [-s SIZE] [-b BATCH] [-d SECONDS] [-c SERVER_CPU,CLIENT_CPU]
 *
 * The receiver counts until a 1-byte end marker and reports the rate.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "raw_common.h"

int main(int argc, char **argv)
{
    size_t size = 64;
    unsigned batch = 1;
    double secs = 2;
    int cs = -1, cc = -1, o;
    while ((o = getopt(argc, argv, "s:b:d:c:")) != -1) {
        switch (o) {
        case 's': size = strtoul(optarg, NULL, 0); break;
        case 'b': batch = (unsigned)atoi(optarg); break;
        case 'd': secs = atof(optarg); break;
        case 'c': cs = cc = atoi(optarg); if (strchr(optarg, ',')) cc = atoi(strchr(optarg, ',') + 1); break;
        default:
            fprintf(stderr, "usage: raw_dgram [-s SIZE] [-b BATCH] [-d SEC] [-c S,C]\n");
            return 2;
        }
    }
    if (batch < 1 || batch > 1024 || size < 2)
        return 2;
    char dir[] = "/tmp/raw_dgram.XXXXXX";
    if (!mkdtemp(dir))
        return 1;
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    snprintf(sa.sun_path, sizeof(sa.sun_path), "%s/s", dir);
    int rfd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (bind(rfd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
        perror("raw_dgram: bind");
        return 1;
    }
    pid_t pid = fork();
    if (pid == 0) { /* receiver */
        pin(cs);
        char *buf = calloc(batch, size);
        struct mmsghdr *mm = calloc(batch, sizeof(*mm));
        struct iovec *iov = calloc(batch, sizeof(*iov));
        for (unsigned i = 0; i < batch; i++) {
            iov[i].iov_base = buf + i * size;
            iov[i].iov_len = size;
            mm[i].msg_hdr.msg_iov = &iov[i];
            mm[i].msg_hdr.msg_iovlen = 1;
        }
        uint64_t count = 0, t0 = 0;
        for (int end = 0; !end;) {
            int k;
            if (batch > 1) {
                k = recvmmsg(rfd, mm, batch, MSG_WAITFORONE, NULL);
            } else {
                ssize_t r = recv(rfd, buf, size, 0);
                mm[0].msg_len = r < 0 ? 0 : (unsigned)r;
                k = r < 0 ? -1 : 1;
            }
            if (k < 0)
                break;
            if (!t0)
                t0 = now_ns();
            for (int i = 0; i < k; i++) {
                if (mm[i].msg_len == 1)
                    end = 1;
                else
                    count++;
            }
        }
        double s = (double)(now_ns() - t0) / 1e9;
        printf("raw_dgram size=%zu batch=%u cpus=%d,%d count=%llu secs=%.3f ops_s=%.0f\n", size,
               batch, cs, cc, (unsigned long long)count, s, (double)count / s);
        fflush(stdout);
        _exit(0);
    }
    pin(cc);
    int sfd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (connect(sfd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
        perror("raw_dgram: connect");
        return 1;
    }
    char *buf = calloc(1, size);
    struct mmsghdr *mm = calloc(batch, sizeof(*mm));
    struct iovec iov = {buf, size};
    for (unsigned i = 0; i < batch; i++) {
        mm[i].msg_hdr.msg_iov = &iov;
        mm[i].msg_hdr.msg_iovlen = 1;
    }
    uint64_t end = now_ns() + (uint64_t)(secs * 1e9);
    while (now_ns() < end) {
        if (batch > 1) {
            if (sendmmsg(sfd, mm, batch, MSG_NOSIGNAL) < 0 && errno != EINTR)
                break;
        } else if (send(sfd, buf, size, MSG_NOSIGNAL) < 0 && errno != EINTR)
            break;
    }
    send(sfd, buf, 1, MSG_NOSIGNAL);
    waitpid(pid, NULL, 0);
    unlink(sa.sun_path);
    rmdir(dir);
    return 0;
}
