/*
 * service.h — what the long-running commands (relay, serve, listen -k)
 * share on top of the library's loop: stop signals delivered on the loop,
 * the library's log lines on stderr, rate-limited warnings for things a
 * peer can trigger at will, and peer names escaped for a terminal.
 */
#ifndef UDS_CLI_SERVICE_H
#define UDS_CLI_SERVICE_H

#include "cli.h"

#include <stdint.h>

typedef struct cli_svc {
    const char *cmd;     /* "relay", "serve", "listen" */
    uds_loop *loop;
    int stop_signo;      /* the signal that stopped the loop (0: none yet) */
    int verbose;
    uds_ratelimit rl;    /* for cli_svc_warn */
    int64_t rl_timer;    /* pending summary of suppressed warnings */
    void (*on_stop)(struct cli_svc *s, int signo, void *arg);
    void *stop_arg;
} cli_svc;

/*
 * Creates the loop and routes SIGINT, SIGTERM and SIGHUP to it (SIGINT is
 * reset from SIG_IGN first: a shell starts background jobs with it ignored).
 * on_stop runs from the loop when one arrives (NULL: stop the loop).
 * Exits 1 on failure.
 */
void cli_svc_init(cli_svc *s, const char *cmd,
                  void (*on_stop)(cli_svc *s, int signo, void *arg), void *arg);

/*
 * In a forked child about to exec a program: the signal state a program
 * expects (an empty mask: the loop blocks its signals in us; SIGPIPE back
 * to its default: main.c ignores it for the whole process).
 */
void cli_child_signals(void);

/* Frees the loop (after what is pending in it has run). */
void cli_svc_free(cli_svc *s);

/* A uds_log_cb: "udsock: CMD: TEXT" on stderr; INFO/DEBUG only with -v. */
void cli_svc_log(void *arg, int level, const char *text);

/* A warning a peer can cause (bad frame, failed connect...): at most 10 a
   second, then one summary line with the count. */
void cli_svc_warn(cli_svc *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* A -v line (not rate-limited: asked for). */
void cli_svc_info(cli_svc *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* After a failed uds_listen: -EINTR means a stop signal (blocked for the
   loop, so pending) ended the wait for the lock file: dies by that signal,
   as the loop would have. Any other value returns. */
void cli_svc_interrupted(int err);

/* A peer-chosen name or text, escaped (uds_escape) into buf; returns buf. */
const char *cli_esc(const void *data, size_t len, char *buf, size_t size);

/* An address for a terminal (log lines, recv -f): every byte of a path or
   abstract name through cli_esc; returns buf (UDS_ADDR_STRLEN is room). */
const char *cli_addr_text(const uds_addr *a, char *buf, size_t size);

/* An address for a child's environment, exact bytes (not escaped): 0, or
   -1 when it cannot be a C string (an abstract name holding a NUL). */
int cli_addr_env(const uds_addr *a, char *buf, size_t size);

/* A peer for a log line: "uid 1000 gid 1000 pid 4242" (unix; then
   " (exited)" when its pidfd says so, " name NAME" when it bound one) or
   its address ("tcp:127.0.0.1:5555"), escaped. */
const char *cli_peer_text(const uds_peer *p, char *buf, size_t size);

/*
 * Replies on a datagram socket (recv --echo/--reply, listen --type dgram).
 * A reply never blocks: the socket must be non-blocking (cli_dgram_prepare
 * makes it so); a reply that cannot go out now (the sender's queue or our
 * send buffer full, the sender gone) is dropped and counted, and said on
 * stderr at most once a second, with a summary of the rest.
 */
typedef struct cli_dreply {
    cli_svc *svc;
    uds_ratelimit rl;  /* one line a second */
    int64_t timer;     /* pending summary */
    uint64_t dropped;  /* replies dropped so far */
    uint64_t held;     /* dropped but not said yet */
} cli_dreply;

/* Non-blocking, and a unix socket's send buffer as large as allowed (each
   unread reply holds part of it; see cli_dreply_send). Exits 1 on failure. */
void cli_dgram_prepare(int fd);

void cli_dreply_init(cli_dreply *d, cli_svc *s);

/* Sends len bytes to `to` without waiting: 0, or -errno when dropped
   (counted and logged, rate-limited). */
int cli_dreply_send(cli_dreply *d, int fd, const void *buf, size_t len, const uds_addr *to);

/* Says what is still held back, cancels the summary timer. */
void cli_dreply_done(cli_dreply *d);

/*
 * Listens on ADDR as uds_listen() does, unless the service manager passed
 * a socket for it (socket activation: LISTEN_PID/LISTEN_FDS, as systemd,
 * systemd-socket-activate and s6-fdholder setups do): then that socket is
 * used, wrapped with uds_listener_from_fd(), and its path is never removed
 * (the manager owns it). An inherited fd counts when it is bound to ADDR
 * (the same address; a relative path is compared by its directory's real
 * path) and has the type asked for (o->type, 0 = stream); the others are
 * left alone (CLOEXEC). The LISTEN_* variables are removed from the
 * environment on the first call, so programs started later do not see
 * them. *inherited (if not NULL) says which way it went. Returns 0 or the
 * -errno of uds_listen().
 */
int cli_listen(uds_listener *l, const uds_addr *a, const uds_listen_opts *o, int *inherited);

/*
 * --ready-fd N: N must be an open fd (checked now, so a wrong number is a
 * usage error of cmd, exit 2); it gets FD_CLOEXEC. Returns N.
 */
int cli_opt_ready_fd(const char *cmd, const char *text);

/*
 * The service serves from now on: writes "\n" to ready_fd and closes it
 * (if >= 0; uds_ready_fd) and sends READY=1 to $NOTIFY_SOCKET (if set;
 * uds_notify_ready). A failure is a warning, never fatal.
 */
void cli_ready(const char *cmd, int ready_fd);

/* 1 if a is a tcp: or udp: address with port 0 (the kernel picks one, and
   the command must say which: "listening on tcp:127.0.0.1:PORT"). */
int cli_port0(const uds_addr *a);

#endif
