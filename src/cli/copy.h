/*
 * copy.h — the two-way copy between stdin/stdout and one connected socket,
 * used by `udsock connect` and `udsock listen` (one client).
 */
#ifndef UDS_CLI_COPY_H
#define UDS_CLI_COPY_H

#include "cli.h"
#include "service.h"

typedef struct cli_copy {
    int sock;         /* the connected socket (borrowed; not closed) */
    int type;         /* UDS_STREAM, UDS_SEQPACKET or UDS_DGRAM */
    const char *name; /* the peer's address as text, for messages */
    int in_fd;        /* usually STDIN_FILENO */
    int out_fd;       /* usually STDOUT_FILENO */
    cli_svc *svc;     /* its loop does the watching; its stop signals (on_stop
                         NULL: they stop the loop) end the copy */
    int progress;     /* PROGRESS_AUTO / _ON / _OFF */
    int no_shutdown;  /* 1: do not half-close at EOF on in_fd */
    int idle_ms;      /* > 0: end after this long without data either way */
    int quit_ms;      /* >= 0: end this long after EOF on in_fd (nc -q);
                         negative: wait for the peer to close */
    int verbose;      /* say on stderr why the copy ended (-v) */
    int frame;        /* 1 (--frame len32|line): each in_fd line is one
                         message (a LEN32 frame on a stream, a packet on
                         seqpacket/dgram) and each message one out_fd
                         line; at most 1 MiB each. 0: bytes as they come */
    /* fds (SCM_RIGHTS; unix sockets only) */
    const int *send_fds; /* connect --fd: passed with the first data sent
                            (borrowed; nothing is sent before stdin has a
                            byte: at EOF before one the copy fails, said) */
    size_t send_nfds;
    int recv_fds;     /* 1: the socket is read with recvmsg (not splice),
                         so fds that arrive are seen: given to on_fds, else
                         closed at once and said once on stderr */
    void (*on_fds)(const int *fds, size_t n, void *arg); /* listen --fds: in
                         the receiving thread, after the data they came
                         with is written; borrows them (closed after it) */
    void *fds_arg;
} cli_copy;

/*
 * Copies in_fd -> sock and sock -> out_fd at the same time, one thread per
 * direction, with blocking I/O: splice() through a pipe for stream sockets
 * (no copy through user space), 256 KiB buffers otherwise.
 * At EOF on in_fd the socket is half-closed (shutdown SHUT_WR, unless
 * no_shutdown) and reading goes on. Returns when the socket has reached
 * EOF and either in_fd is finished too or the peer has closed completely
 * (hang-up); for datagram sockets, when in_fd is finished.
 * idle_ms and quit_ms end it earlier (CLI_OK; said with verbose).
 * A reset by the peer (ECONNRESET while receiving) is an end, not a
 * failure, when in_fd had reached EOF and every byte read from it had been
 * accepted by the kernel (sent): the peer closed without reading all of it,
 * as a handler that never reads stdin does (socat and nc exit 0 there).
 * Otherwise — input still to send, or a send that failed — it is CLI_FAIL.
 * Returns CLI_OK, CLI_FAIL (a direction failed; already reported on
 * stderr), or -SIGNO when SIGINT/SIGTERM/SIGHUP stopped svc's loop. The
 * copy threads may still be running (blocked on a terminal): the caller is
 * expected to exit soon after (they never touch the loop again, so it may
 * be freed).
 */
int cli_copy_run(const cli_copy *c);

/* --frame MODE: UDS_FRAME_LEN32 ("len32") or UDS_FRAME_LINE ("line");
   anything else is a usage error of cmd (exit 2). */
int cli_opt_frame(const char *cmd, const char *text);

/* cli_copy.frame for --frame MODE (0 = none) on a socket of this type:
   len32 needs a stream (else a usage error of cmd); line on a stream is
   the plain byte copy (0); line on seqpacket/dgram is 1. */
int cli_frame_for(const char *cmd, int mode, int type);

/*
 * Makes the kernel's socket buffers larger (4 MiB, capped by
 * net.core.wmem_max/rmem_max) so a bulk stream moves in fewer, larger
 * steps. Best effort: errors are ignored.
 */
void cli_big_buffers(int sock);

#endif
