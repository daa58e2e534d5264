/*
 * raw_connect.c — the limit for connection setup: a server that accepts
 * and closes, a client that connects and closes, over a named unix stream
 * socket; no library.
 *
 *   raw_connect [-d SEC] [-c S,C] [-r SIZE]
 *
 * -r SIZE adds one SIZE-byte request and its echo per connection.
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

static int xfer(int fd, char *buf, size_t len, int rd)
{
    size_t done = 0;
    while (done < len) {
        ssize_t n = rd ? read(fd, buf + done, len - done) : send(fd, buf + done, len - done, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return -1;
        done += (size_t)n;
    }
    return 0;
}

int main(int argc, char **argv)
{
    double secs = 2;
    int cs = -1, cc = -1, o;
    size_t req = 0;
    while ((o = getopt(argc, argv, "d:c:r:")) != -1) {
        switch (o) {
        case 'd': secs = atof(optarg); break;
        case 'c': cs = cc = atoi(optarg); if (strchr(optarg, ',')) cc = atoi(strchr(optarg, ',') + 1); break;
        case 'r': req = strtoul(optarg, NULL, 0); break;
        default:
            fprintf(stderr, "usage: raw_connect [-d SEC] [-c S,C] [-r SIZE]\n");
            return 2;
        }
    }
    char dir[] = "/tmp/raw_connect.XXXXXX";
    if (!mkdtemp(dir))
        return 1;
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    snprintf(sa.sun_path, sizeof(sa.sun_path), "%s/s", dir);
    int lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (bind(lfd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(lfd, 4096) < 0) {
        perror("raw_connect: bind");
        return 1;
    }
    char *buf = calloc(1, req ? req : 1);
    pid_t pid = fork();
    if (pid == 0) {
        pin(cs);
        for (;;) {
            int c = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
            if (c < 0) {
                if (errno == EINTR || errno == ECONNABORTED)
                    continue;
                _exit(1);
            }
            if (req && xfer(c, buf, req, 1) == 0)
                xfer(c, buf, req, 0);
            close(c);
        }
    }
    close(lfd);
    pin(cc);
    uint64_t n = 0, t0 = now_ns(), end = t0 + (uint64_t)(secs * 1e9), t = t0;
    while (t < end) {
        int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
            perror("raw_connect: connect");
            break;
        }
        if (req && (xfer(fd, buf, req, 0) < 0 || xfer(fd, buf, req, 1) < 0))
            break;
        close(fd);
        n++;
        t = now_ns();
    }
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    unlink(sa.sun_path);
    rmdir(dir);
    printf("raw_connect req=%zu cpus=%d,%d count=%llu secs=%.3f ops_s=%.0f\n", req, cs, cc,
           (unsigned long long)n, (double)(t - t0) / 1e9, (double)n / ((double)(t - t0) / 1e9));
    return 0;
}
