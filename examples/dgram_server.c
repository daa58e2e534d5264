/*
 * dgram_server ADDR — datagram request in, reply out. Each datagram is
 * printed to stdout with its sender and answered with the same text in
 * upper case. Senders that never bound an address (logger -u) are printed
 * but cannot be answered: there is nowhere to send the reply.
 */
#include <udsock.h>

#include <ctype.h>
#include <signal.h>
#include <stdio.h>
#include <unistd.h>

static uds_listener srv;

static void on_signal(int sig)
{
    (void)sig;
    uds_listener_close(&srv);
    _exit(0);
}

int main(int argc, char **argv)
{
    uds_addr addr, from;
    char buf[65536], name[UDS_ADDR_STRLEN];
    int r;

    if (argc != 2) {
        fprintf(stderr, "usage: dgram_server ADDR\n");
        return 2;
    }
    if ((r = uds_addr_parse(&addr, argv[1])) < 0) {
        fprintf(stderr, "dgram_server: %s: %s\n", argv[1], uds_strerror(r));
        return 2;
    }
    uds_listen_opts o = {.type = UDS_DGRAM};
    if ((r = uds_listen(&srv, &addr, &o)) < 0) {
        fprintf(stderr, "dgram_server: bind %s: %s\n", argv[1], uds_strerror(r));
        return 1;
    }
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
    fprintf(stderr, "dgram_server: waiting on %s\n", argv[1]);

    for (;;) {
        ssize_t n = uds_recvfrom(srv.fd, buf, sizeof(buf), &from, 0);
        if (n < 0) {
            fprintf(stderr, "dgram_server: recv: %s\n", uds_strerror((int)n));
            continue;
        }
        if ((size_t)n > sizeof(buf))
            n = sizeof(buf); /* truncated: answer what we got */
        uds_addr_format(&from, name, sizeof(name));
        printf("%s: %.*s\n", name, (int)n, buf);
        fflush(stdout);
        if (from.kind == UDS_ADDR_UNNAMED)
            continue;
        for (ssize_t i = 0; i < n; i++)
            buf[i] = (char)toupper((unsigned char)buf[i]);
        if ((r = (int)uds_sendto(srv.fd, buf, (size_t)n, &from)) < 0)
            fprintf(stderr, "dgram_server: reply to %s: %s\n", name, uds_strerror(r));
    }
}
