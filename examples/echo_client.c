/*
 * echo_client ADDR — the tutorial's client: socket -> connect -> write/read
 * -> close. Sends stdin to the server and prints what comes back. At the end
 * of stdin it half-closes (shutdown SHUT_WR) and keeps printing until the
 * server closes, so no reply is lost.
 */
#include <udsock.h>

#include <poll.h>
#include <stdio.h>
#include <sys/socket.h>
#include <unistd.h>

int main(int argc, char **argv)
{
    uds_addr addr;
    char buf[65536];
    int r;

    if (argc != 2) {
        fprintf(stderr, "usage: echo_client ADDR\n");
        return 2;
    }
    if ((r = uds_addr_parse(&addr, argv[1])) < 0) {
        fprintf(stderr, "echo_client: %s: %s\n", argv[1], uds_strerror(r));
        return 2;
    }
    uds_connect_opts o = {.timeout_ms = 5000};
    int fd = uds_connect(&addr, &o);
    if (fd < 0) {
        fprintf(stderr, "echo_client: connect %s: %s\n", argv[1], uds_strerror(fd));
        return 1;
    }
    struct pollfd p[2] = {{STDIN_FILENO, POLLIN, 0}, {fd, POLLIN, 0}};
    for (;;) {
        if (poll(p, 2, -1) < 0)
            continue; /* EINTR */
        if (p[0].revents) {
            ssize_t n = uds_read_some(STDIN_FILENO, buf, sizeof(buf));
            if (n <= 0) {
                shutdown(fd, SHUT_WR); /* "that's all": the server sees EOF */
                p[0].fd = -1;
            } else if ((r = (int)uds_write_all(fd, buf, (size_t)n)) < 0) {
                fprintf(stderr, "echo_client: write: %s\n", uds_strerror(r));
                return 1;
            }
        }
        if (p[1].revents) {
            ssize_t n = uds_read_some(fd, buf, sizeof(buf));
            if (n < 0) {
                fprintf(stderr, "echo_client: read: %s\n", uds_strerror((int)n));
                return 1;
            }
            if (n == 0)
                break; /* server closed */
            if (uds_write_all(STDOUT_FILENO, buf, (size_t)n) < 0)
                return 1;
        }
    }
    close(fd);
    return 0;
}
