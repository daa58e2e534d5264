/*
 * echo_server ADDR — the tutorial's server, one client at a time:
 * socket -> bind -> listen -> accept -> read/write -> close, and back to
 * accept. Prints to stdout what each client sends and sends it back.
 * ADDR is any udsock address: /tmp/echo.sock, @echo, tcp:127.0.0.1:7000.
 */
#include <udsock.h>

#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static uds_listener srv;

/* lstat, unlink and close are async-signal-safe: clean up and leave. */
static void on_signal(int sig)
{
    (void)sig;
    uds_listener_close(&srv);
    _exit(0);
}

int main(int argc, char **argv)
{
    uds_addr addr;
    char buf[65536], name[UDS_ADDR_STRLEN];
    int r;

    if (argc != 2) {
        fprintf(stderr, "usage: echo_server ADDR\n");
        return 2;
    }
    if ((r = uds_addr_parse(&addr, argv[1])) < 0) {
        fprintf(stderr, "echo_server: %s: %s\n", argv[1], uds_strerror(r));
        return 2;
    }
    if ((r = uds_listen(&srv, &addr, NULL)) < 0) {
        fprintf(stderr, "echo_server: listen %s: %s\n", argv[1], uds_strerror(r));
        return 1;
    }
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
    signal(SIGPIPE, SIG_IGN); /* stdout may be a pipe that closes: see below */
    uds_addr_format(&srv.addr, name, sizeof(name));
    fprintf(stderr, "echo_server: listening on %s\n", name);

    for (;;) {
        int c = uds_accept(srv.fd, NULL, 0);
        if (c < 0) {
            fprintf(stderr, "echo_server: accept: %s\n", uds_strerror(c));
            continue;
        }
        ssize_t n;
        while ((n = uds_read_some(c, buf, sizeof(buf))) > 0) {
            if (fwrite(buf, 1, (size_t)n, stdout) != (size_t)n || fflush(stdout) != 0) {
                /* nobody reads our output any more: leave, tidily */
                close(c);
                uds_listener_close(&srv);
                return 1;
            }
            if ((r = (int)uds_write_all(c, buf, (size_t)n)) < 0)
                break; /* client left before reading its echo */
        }
        close(c);
    }
}
