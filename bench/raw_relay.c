/*
 * raw_relay.c — a plain epoll relay, the baseline for `udsock relay`:
 * every client of LISTEN gets its own connection to TARGET and bytes are
 * copied both ways, with read()/write() through a buffer or (-S) with
 * splice() through a pipe. Half-close is passed on. No library.
 *
 *   raw_relay [-S] [-s BUF] LISTEN_PATH TARGET_PATH
 *
 * Runs until killed. Level-triggered; a direction whose output is full
 * stops reading its input (backpressure); at most 16 transfers per
 * direction per wakeup so one busy pair cannot starve the others.
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
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

typedef struct dir {
    int from, to;
    char *buf;       /* read/write mode */
    size_t len, off;
    int pipe[2];     /* splice mode */
    size_t inpipe;
    int eof;
} dir;

typedef struct pair {
    int fd[2];       /* client, target */
    dir d[2];        /* d[0]: client -> target, d[1]: target -> client */
    unsigned ev[2];
    int dead;
} pair;

static int use_splice;
static size_t bufsz = 65536;
static int ep;

static int pending(const dir *d) { return use_splice ? d->inpipe > 0 : d->len > d->off; }

/* Moves data along one direction until it would block. -1: connection broken. */
static int pump(dir *d)
{
    for (int i = 0; i < 16; i++) {
        if (pending(d)) {
            ssize_t n = use_splice
                ? splice(d->pipe[0], NULL, d->to, NULL, d->inpipe, SPLICE_F_MOVE | SPLICE_F_NONBLOCK)
                : send(d->to, d->buf + d->off, d->len - d->off, MSG_NOSIGNAL | MSG_DONTWAIT);
            if (n < 0)
                return errno == EAGAIN || errno == EINTR ? 0 : -1;
            if (use_splice)
                d->inpipe -= (size_t)n;
            else
                d->off += (size_t)n;
            continue;
        }
        if (d->eof)
            return 0;
        ssize_t n = use_splice
            ? splice(d->from, NULL, d->pipe[1], NULL, bufsz, SPLICE_F_MOVE | SPLICE_F_NONBLOCK)
            : recv(d->from, d->buf, bufsz, MSG_DONTWAIT);
        if (n < 0)
            return errno == EAGAIN || errno == EINTR ? 0 : -1;
        if (n == 0) {
            d->eof = 1;
            shutdown(d->to, SHUT_WR);
            return 0;
        }
        if (use_splice)
            d->inpipe = (size_t)n;
        else {
            d->len = (size_t)n;
            d->off = 0;
        }
    }
    return 0;
}

static void pair_free(pair *p)
{
    for (int i = 0; i < 2; i++) {
        epoll_ctl(ep, EPOLL_CTL_DEL, p->fd[i], NULL);
        close(p->fd[i]);
        free(p->d[i].buf);
        if (use_splice) {
            close(p->d[i].pipe[0]);
            close(p->d[i].pipe[1]);
        }
    }
    free(p);
}

/* Interest of each fd: read if its outgoing direction has room, write if
   its incoming direction has bytes waiting. */
static void rearm(pair *p)
{
    for (int i = 0; i < 2; i++) {
        dir *out = &p->d[i], *in = &p->d[1 - i];
        unsigned ev = (!out->eof && !pending(out) ? EPOLLIN : 0) | (pending(in) ? EPOLLOUT : 0);
        if (ev != p->ev[i]) {
            struct epoll_event e = {.events = ev, .data.ptr = p};
            epoll_ctl(ep, EPOLL_CTL_MOD, p->fd[i], &e);
            p->ev[i] = ev;
        }
    }
}

int main(int argc, char **argv)
{
    int o;
    while ((o = getopt(argc, argv, "Ss:")) != -1) {
        if (o == 'S')
            use_splice = 1;
        else if (o == 's')
            bufsz = strtoul(optarg, NULL, 0);
        else
            goto usage;
    }
    if (argc - optind != 2 || !bufsz) {
    usage:
        fprintf(stderr, "usage: raw_relay [-S] [-s BUF] LISTEN_PATH TARGET_PATH\n");
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    struct sockaddr_un la = {.sun_family = AF_UNIX}, ta = {.sun_family = AF_UNIX};
    snprintf(la.sun_path, sizeof(la.sun_path), "%s", argv[optind]);
    snprintf(ta.sun_path, sizeof(ta.sun_path), "%s", argv[optind + 1]);
    struct stat st;
    if (lstat(la.sun_path, &st) == 0 && S_ISSOCK(st.st_mode))
        unlink(la.sun_path);
    int lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (bind(lfd, (struct sockaddr *)&la, sizeof(la)) < 0 || listen(lfd, 1024) < 0) {
        perror("raw_relay: bind");
        return 1;
    }
    ep = epoll_create1(EPOLL_CLOEXEC);
    struct epoll_event le = {.events = EPOLLIN, .data.ptr = NULL};
    epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &le);
    struct epoll_event evs[128];
    for (;;) {
        int k = epoll_wait(ep, evs, 128, -1);
        if (k < 0 && errno != EINTR)
            return 1;
        for (int j = 0; j < k; j++) {
            pair *p = evs[j].data.ptr;
            if (!p) { /* new clients */
                int c;
                while ((c = accept4(lfd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK)) >= 0) {
                    int t = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
                    if (t < 0 || connect(t, (struct sockaddr *)&ta, sizeof(ta)) < 0) {
                        if (t >= 0)
                            close(t);
                        close(c);
                        continue;
                    }
                    fcntl(t, F_SETFL, O_NONBLOCK);
                    p = calloc(1, sizeof(*p));
                    p->fd[0] = c;
                    p->fd[1] = t;
                    for (int i = 0; i < 2; i++) {
                        p->d[i].from = p->fd[i];
                        p->d[i].to = p->fd[1 - i];
                        if (use_splice) {
                            if (pipe2(p->d[i].pipe, O_CLOEXEC | O_NONBLOCK) < 0)
                                return 1;
                            fcntl(p->d[i].pipe[1], F_SETPIPE_SZ, (int)bufsz);
                        } else {
                            p->d[i].buf = malloc(bufsz);
                        }
                        p->ev[i] = EPOLLIN;
                        struct epoll_event e = {.events = EPOLLIN, .data.ptr = p};
                        epoll_ctl(ep, EPOLL_CTL_ADD, p->fd[i], &e);
                    }
                }
                continue;
            }
            if (p->dead)
                continue;
            if (pump(&p->d[0]) < 0 || pump(&p->d[1]) < 0 ||
                (p->d[0].eof && p->d[1].eof && !pending(&p->d[0]) && !pending(&p->d[1]))) {
                p->dead = 1;
                /* freed after this batch: a later event may still point at it */
                continue;
            }
            rearm(p);
        }
        for (int j = 0; j < k; j++) {
            pair *p = evs[j].data.ptr;
            if (p && p->dead == 1) {
                p->dead = 2;
                for (int i = j + 1; i < k; i++)
                    if (evs[i].data.ptr == p)
                        evs[i].data.ptr = NULL, evs[i].events = 0;
                pair_free(p);
            }
        }
    }
}
