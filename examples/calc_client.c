/*
 * calc_client [--line|--seqpacket] [--pipeline] [--timeout MS] ADDR [REQUEST...]
 * Sends each REQUEST (or, without any, each line of stdin) to calc_server
 * and prints each result on its own line, in order.
 *   calc_client /tmp/calc.sock "sum 1 2 3" "expr (1+2)*3"
 *   printf 'sort 3 1 2\nupper hi\n' | calc_client --pipeline /tmp/calc.sock
 * Default: one request, wait for its answer, next (uds_client_call).
 * --pipeline: send them all, then read all the answers (uds_client_send +
 * uds_client_recv): one round trip instead of one per request.
 * Exit status: 0 all answered, 1 a failure or any "error: ..." answer,
 * 2 usage.
 */
#include <udsock.h>

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int timeout_ms = 10000, status;

/* Prints one answer; remembers whether the server said "error". */
static void show(const char *resp, size_t len)
{
    printf("%.*s\n", (int)len, resp);
    if (len >= 6 && !memcmp(resp, "error:", 6))
        status = 1;
}

static int fail(const char *what, int r)
{
    const char *hint = "";
    if (r == -ENOENT || r == -ECONNREFUSED)
        hint = " (is calc_server running?)";
    else if (r == UDS_ECLOSED || r == -ECONNRESET || r == -EPIPE)
        hint = " (the server hung up: connection limit, timeout or shutdown?)";
    fprintf(stderr, "calc_client: %s: %s%s\n", what, uds_strerror(r), hint);
    return 1;
}

int main(int argc, char **argv)
{
    uds_client_opts o = {.framing = UDS_FRAME_LEN32};
    int pipeline = 0, i, r;
    for (i = 1; i < argc && argv[i][0] == '-' && argv[i][1] == '-'; i++) {
        if (!strcmp(argv[i], "--line"))
            o.framing = UDS_FRAME_LINE;
        else if (!strcmp(argv[i], "--seqpacket"))
            o.type = UDS_SEQPACKET; /* one message per packet, no framing */
        else if (!strcmp(argv[i], "--pipeline"))
            pipeline = 1;
        else if (!strcmp(argv[i], "--timeout") && i + 1 < argc)
            timeout_ms = atoi(argv[++i]);
        else
            break;
    }
    if (i >= argc || argv[i][0] == '-') {
        fprintf(stderr, "usage: calc_client [--line|--seqpacket] [--pipeline] [--timeout MS] ADDR "
                        "[REQUEST...]\n");
        return 2;
    }
    const char *addr_text = argv[i];
    int first_req = i + 1;
    signal(SIGPIPE, SIG_IGN);

    uds_addr addr;
    uds_client *c;
    if ((r = uds_addr_parse(&addr, addr_text)) < 0)
        return fail(addr_text, r) + 1;
    if ((r = uds_client_connect(&c, &addr, &o)) < 0)
        return fail(addr_text, r);

    char *line = NULL;
    size_t cap = 0, sent = 0;
    for (i = first_req;; i++) {
        const char *req;
        size_t len;
        if (first_req < argc) { /* requests from the command line */
            if (i == argc)
                break;
            req = argv[i];
            len = strlen(req);
        } else { /* one per line of stdin */
            ssize_t n = getline(&line, &cap, stdin);
            if (n < 0)
                break;
            len = (size_t)n - (n > 0 && line[n - 1] == '\n');
            req = line;
        }
        void *resp;
        size_t rlen;
        if (pipeline) {
            r = uds_client_send(c, req, len);
            sent++;
        } else if ((r = uds_client_call(c, req, len, &resp, &rlen, timeout_ms)) == 0) {
            show(resp, rlen);
            free(resp);
        }
        if (r < 0) {
            free(line);
            uds_client_close(c);
            return fail("request", r);
        }
    }
    free(line);
    for (; sent > 0; sent--) { /* --pipeline: now every answer, in order */
        void *resp;
        size_t rlen;
        if ((r = uds_client_recv(c, &resp, &rlen, timeout_ms)) < 0) {
            uds_client_close(c);
            return fail("response", r == -EAGAIN ? -ETIMEDOUT : r);
        }
        show(resp, rlen);
        free(resp);
    }
    uds_client_close(c);
    return status;
}
