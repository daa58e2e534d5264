/*
 * dgram_client ADDR [MSG...] — sends each MSG (or each line of stdin) as one
 * datagram and prints the reply. The socket gets a unique abstract address
 * automatically, so the server can answer without this client binding a
 * path anywhere.
 */
#include <udsock.h>

#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static int ask(int fd, const char *msg, size_t len)
{
    char buf[65536];
    ssize_t n = uds_send(fd, msg, len);
    if (n < 0) {
        fprintf(stderr, "dgram_client: send: %s\n", uds_strerror((int)n));
        return 1;
    }
    struct pollfd p = {fd, POLLIN, 0};
    if (poll(&p, 1, 5000) <= 0) {
        fprintf(stderr, "dgram_client: no reply within 5 s\n");
        return 1;
    }
    n = uds_recvfrom(fd, buf, sizeof(buf), NULL, 0);
    if (n < 0) {
        fprintf(stderr, "dgram_client: recv: %s\n", uds_strerror((int)n));
        return 1;
    }
    printf("%.*s\n", (int)(n > (ssize_t)sizeof(buf) ? (ssize_t)sizeof(buf) : n), buf);
    fflush(stdout);
    return 0;
}

int main(int argc, char **argv)
{
    uds_addr addr;
    int r;

    if (argc < 2) {
        fprintf(stderr, "usage: dgram_client ADDR [MSG...]\n");
        return 2;
    }
    if ((r = uds_addr_parse(&addr, argv[1])) < 0) {
        fprintf(stderr, "dgram_client: %s: %s\n", argv[1], uds_strerror(r));
        return 2;
    }
    uds_connect_opts o = {.type = UDS_DGRAM};
    int fd = uds_connect(&addr, &o);
    if (fd < 0) {
        fprintf(stderr, "dgram_client: connect %s: %s\n", argv[1], uds_strerror(fd));
        return 1;
    }
    int rc = 0;
    if (argc > 2) {
        for (int i = 2; i < argc && rc == 0; i++)
            rc = ask(fd, argv[i], strlen(argv[i]));
    } else {
        char line[65536];
        while (rc == 0 && fgets(line, sizeof(line), stdin)) {
            size_t n = strcspn(line, "\n");
            rc = ask(fd, line, n);
        }
    }
    close(fd);
    return rc;
}
