/*
 * echo_client ADDR — the tutorial's client: socket -> connect -> write/read
 * -> close. Sends stdin to the server and prints what comes back. At the end
 * of stdin it half-closes (shutdown SHUT_WR) and keeps printing until the
 * server closes, so no reply is lost.
 *
 * Why non-blocking writes: the server echoes while we are still sending. If
 * we blocked in a write while the server blocked writing its echo to us,
 * neither would ever read again. So the socket is non-blocking, a chunk that
 * does not fit waits for POLLOUT, and replies are read whenever they come.
 */
#include <udsock.h>

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <sys/socket.h>
#include <unistd.h>

int main(int argc, char **argv)
{
    uds_addr addr;
    char out[65536], in[65536];
    size_t out_len = 0, out_done = 0; /* stdin bytes not yet sent */
    int r, stdin_open = 1;

    if (argc != 2) {
        fprintf(stderr, "usage: echo_client ADDR\n");
        return 2;
    }
    if ((r = uds_addr_parse(&addr, argv[1])) < 0) {
        fprintf(stderr, "echo_client: %s: %s\n", argv[1], uds_strerror(r));
        return 2;
    }
    uds_connect_opts o = {.timeout_ms = 5000, .flags = UDS_NONBLOCK};
    int fd = uds_connect(&addr, &o);
    if (fd < 0) {
        fprintf(stderr, "echo_client: connect %s: %s\n", argv[1], uds_strerror(fd));
        return 1;
    }
    for (;;) {
        /* read stdin only when the previous chunk is out */
        struct pollfd p[2] = {
            {stdin_open && out_done == out_len ? STDIN_FILENO : -1, POLLIN, 0},
            {fd, (short)(POLLIN | (out_done < out_len ? POLLOUT : 0)), 0},
        };
        if (poll(p, 2, -1) < 0) {
            if (errno == EINTR)
                continue;
            perror("echo_client: poll");
            return 1;
        }
        if (p[0].revents) {
            ssize_t n = uds_read_some(STDIN_FILENO, out, sizeof(out));
            if (n <= 0) {
                shutdown(fd, SHUT_WR); /* "that's all": the server sees EOF */
                stdin_open = 0;
            } else {
                out_len = (size_t)n;
                out_done = 0;
            }
        }
        if (out_done < out_len) {
            r = uds_write_nb(fd, out, out_len, &out_done);
            if (r < 0 && r != -EAGAIN) {
                fprintf(stderr, "echo_client: write: %s\n", uds_strerror(r));
                return 1;
            }
        }
        if (p[1].revents & (POLLIN | POLLHUP | POLLERR)) {
            ssize_t n = uds_read_some(fd, in, sizeof(in));
            if (n == -EAGAIN)
                continue;
            if (n < 0) {
                fprintf(stderr, "echo_client: read: %s\n", uds_strerror((int)n));
                return 1;
            }
            if (n == 0)
                break; /* server closed */
            if (uds_write_all(STDOUT_FILENO, in, (size_t)n) < 0)
                return 1;
        }
    }
    close(fd);
    return 0;
}
