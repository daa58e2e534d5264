/*
 * activated_echo [ADDR] [--ready-fd N] — an echo server that can be started
 * by a service manager:
 *   - socket-activated (systemd, systemd-socket-activate): it serves on the
 *     inherited socket and, when it stops, leaves the socket file alone
 *     (the manager owns it);
 *   - otherwise it binds ADDR itself, and removes the file when it stops;
 *   - once it can serve, it says so: READY=1 to $NOTIFY_SOCKET (systemd
 *     Type=notify) and "\n" on fd N with --ready-fd N (s6, scripts).
 * SIGTERM/SIGINT arrive as loop events: it sends STOPPING=1, closes the
 * listener and exits 0. Each client gets back what it sends.
 *
 *   systemd-socket-activate -l /tmp/e.sock build/examples/activated_echo
 *   echo hi | socat - UNIX-CONNECT:/tmp/e.sock
 */
#include <udsock.h>

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static uds_listener srv;

/* A client sent something (or left): echo it back, or say goodbye. */
static void on_client(uds_loop *loop, int fd, unsigned events, void *arg)
{
    char buf[4096];
    ssize_t n = uds_read_some(fd, buf, sizeof(buf));
    if (n == -EAGAIN)
        return;
    /* blocking write: fine for an example whose clients read their echo */
    if (n <= 0 || uds_write_all(fd, buf, (size_t)n) < 0) {
        uds_loop_unwatch(loop, fd);
        close(fd);
    }
}

static void on_accept(uds_loop *loop, int fd, unsigned events, void *arg)
{
    int c = uds_accept(fd, NULL, UDS_NONBLOCK);
    if (c < 0) {
        if (c != -EAGAIN)
            fprintf(stderr, "activated_echo: accept: %s\n", uds_strerror(c));
        return;
    }
    if (uds_loop_watch(loop, c, UDS_EV_READ, on_client, NULL) < 0)
        close(c);
}

static void on_signal(uds_loop *loop, int signo, void *arg)
{
    fprintf(stderr, "activated_echo: %s, stopping\n", strsignal(signo));
    uds_notify_stopping();
    uds_loop_stop(loop);
}

int main(int argc, char **argv)
{
    const char *addr_text = NULL;
    int ready_fd = -1, r;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--ready-fd") && i + 1 < argc)
            ready_fd = atoi(argv[++i]);
        else if (argv[i][0] != '-' && !addr_text)
            addr_text = argv[i];
        else {
            fprintf(stderr, "usage: activated_echo [ADDR] [--ready-fd N]\n");
            return 2;
        }
    }

    /* 1. an inherited socket if the manager passed one, else our own */
    uds_activation act;
    if ((r = uds_activation_get(&act, UDS_ACT_UNSET_ENV)) < 0) {
        fprintf(stderr, "activated_echo: LISTEN_FDS: %s\n", uds_strerror(r));
        return 1;
    }
    if (act.count > 0) {
        r = uds_activation_listener(&act, &srv, NULL, UDS_STREAM);
        if (r < 0) {
            fprintf(stderr, "activated_echo: inherited fd 3 (%s): %s\n", act.names[0],
                    uds_strerror(r));
            return 1;
        }
    } else if (addr_text) {
        uds_addr a;
        if ((r = uds_addr_parse(&a, addr_text)) < 0 || (r = uds_listen(&srv, &a, NULL)) < 0) {
            fprintf(stderr, "activated_echo: listen %s: %s\n", addr_text, uds_strerror(r));
            return 1;
        }
    } else {
        fprintf(stderr, "activated_echo: no inherited socket and no ADDR given\n");
        return 2;
    }
    uds_activation_free(&act);

    /* 2. one loop: the listener, the clients, and the signals as events */
    uds_loop *loop;
    if ((r = uds_loop_new(&loop)) < 0 || (r = uds_set_nonblock(srv.fd, 1)) < 0 ||
        (r = uds_loop_watch(loop, srv.fd, UDS_EV_READ, on_accept, NULL)) < 0 ||
        (r = uds_loop_signal(loop, SIGTERM, on_signal, NULL)) < 0 ||
        (r = uds_loop_signal(loop, SIGINT, on_signal, NULL)) < 0) {
        fprintf(stderr, "activated_echo: setup: %s\n", uds_strerror(r));
        return 1;
    }
    signal(SIGPIPE, SIG_IGN);

    /* 3. ready: tell whoever is waiting */
    char name[UDS_ADDR_STRLEN];
    uds_addr_format(&srv.addr, name, sizeof(name));
    fprintf(stderr, "activated_echo: serving on %s%s\n", name,
            srv.owns_path ? "" : " (inherited)");
    uds_notify_ready();
    if (ready_fd >= 0 && (r = uds_ready_fd(ready_fd)) < 0)
        fprintf(stderr, "activated_echo: --ready-fd %d: %s\n", ready_fd, uds_strerror(r));

    r = uds_loop_run(loop);
    uds_loop_free(loop);         /* clients' fds go with the process */
    uds_listener_close(&srv);    /* unlinks only a path we created */
    return r < 0 ? 1 : 0;
}
