/*
 * bench.h — shared by the pieces of `udsock bench` (cmd_bench.c and the
 * bench_*.c helpers). Not part of the library.
 *
 * The two ends talk a tiny protocol so that one bench server can serve
 * every mode and a client can measure a server started elsewhere
 * (`udsock bench MODE --server ADDR` / `--client ADDR`): each session
 * starts with a fixed 32-byte hello from the client that says what follows,
 * answered by a 64-byte bench_ack (admitted, or refused and why) before
 * anything else. Two kinds of connection carry a hello but get no ack: a
 * connect request (BM_CONNECT with BC_REQUEST: the request follows at
 * once, its echo is the answer) and a hold member (BM_JOIN: one of the
 * idle connections of the hold session its token names). A connection
 * that ends before sending a byte is a plain connect (connect --size 0).
 */
#ifndef UDS_CLI_BENCH_H
#define UDS_CLI_BENCH_H

#include "udsock.h"

#include <stddef.h>
#include <stdint.h>
#include <time.h>

/* ---- modes and the hello --------------------------------------------- */

enum bench_mode {
    BM_PINGPONG = 1, /* echo `size`-byte messages one at a time */
    BM_STREAM = 2,   /* sink until EOF, then reply with the byte count */
    BM_RR = 3,       /* `clients` connections, echo pipelined messages */
    BM_CONNECT = 4,  /* control connection: accept+close until it ends */
    BM_DGRAM = 5,    /* count datagrams until an END hello */
    BM_END = 6,      /* datagram: end of a BM_DGRAM burst */
    BM_HOLD = 7,     /* control connection: hold `clients` idle connections */
    BM_JOIN = 8      /* one idle connection of the hold session `token` */
};

#define BC_REQUEST 1u /* BM_CONNECT flags: this connection carries one request */

#define BENCH_MAGIC 0x42534455u /* "UDSB" little-endian */
#define BENCH_MAX_SIZE (64u << 20) /* largest message a bench server accepts */
#define BENCH_MAX_CLIENTS 100000u  /* what the client may ask for (-c) */

/*
 * The server's limits (`udsock bench --server`, docs/udsock.1): a hello
 * asking for more is refused with a bench_ack saying which limit.
 */
#define BENCH_HELLO_MS 5000u      /* a connection's hello must be complete by then */
#define BENCH_IDLE_MS 10000u      /* a session with no traffic that long ends */
#define BENCH_MEM_BUDGET (256u << 20) /* message buffers of all sessions together */
#define BENCH_MAX_THREADS 32u     /* pingpong/stream sessions at once */
#define BENCH_MAX_RR 1024u        /* rr connections at once */
#define BENCH_MAX_CONNS 24576u    /* connections held at once, all kinds */
#define BENCH_MAX_CONNS_PER_UID 12288u /* ... by one unix uid */
#define BENCH_HOLD_MAX 10000u     /* clients of one hold session */
#define BENCH_CONNECT_MAX (1u << 20) /* connect --size */
#define BENCH_DGRAM_MAX (4u << 20) /* datagram size */
#define BENCH_DGRAM_PEERS 256u    /* datagram sessions at once */
#define BENCH_MAX_SPIN_US 10000u  /* a hello's spin is cut to this */
#define BENCH_LIB_MAX_CONNS 64u   /* rr --server (library server): connections */
#define BENCH_LIB_MAX_CONNS_PER_UID 32u /* ... of one unix uid */
#define BENCH_LIB_MAX_MSG (1u << 20) /* rr --server: largest request */
#define BENCH_LIB_OUT_CAP (2u << 20) /* rr --server: queued replies per connection */

/* Host byte order: both ends are on this machine (unix or loopback). */
typedef struct bench_hello {
    uint32_t magic;
    uint32_t mode;
    uint32_t size;     /* message size in bytes */
    uint32_t spin_us;  /* server-side busy-poll before blocking */
    uint32_t clients;  /* BM_RR / BM_HOLD: connections that make up the session */
    uint32_t pipeline; /* BM_RR: requests in flight per connection */
    uint32_t batch;    /* BM_DGRAM: recvmmsg batch; BM_HOLD/BM_JOIN: token, low half */
    uint32_t flags;    /* BM_CONNECT: BC_REQUEST; BM_HOLD/BM_JOIN: token, high half */
} bench_hello;

/* The answer to a hello: status 0 admitted, else an errno value and why. */
typedef struct bench_ack {
    uint32_t magic;
    uint32_t status;
    uint64_t limit;    /* the limit that refused it, if one did */
    char why[48];      /* NUL-terminated */
} bench_ack;

/* The server's answer to a stream / dgram session (and hold). */
typedef struct bench_report {
    uint64_t count; /* bytes (stream) or datagrams (dgram) received */
    uint64_t ns;    /* server-side time from first to last byte/datagram */
    uint64_t extra; /* BM_HOLD: server RSS growth in bytes */
    uint64_t extra2;
} bench_report;

/* ---- time ---------------------------------------------------------------- */

static inline uint64_t bench_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* ---- latency histogram (bench_hist.c) ---------------------------------- */

/*
 * Log-linear buckets (the HdrHistogram idea): values below 128 ns are
 * exact; above, each power of two is split into 64 linear sub-buckets, so
 * any recorded value is known to within 1/64 (1.6 %) whatever its size,
 * with a fixed 18 KiB table and O(1) recording.
 */
#define BENCH_HIST_SUB 64
#define BENCH_HIST_EXP 40 /* up to 2^40 ns (18 minutes) */
#define BENCH_HIST_N (2 * BENCH_HIST_SUB + (BENCH_HIST_EXP - 7) * BENCH_HIST_SUB)

typedef struct bench_hist {
    uint64_t n, min, max;
    double sum;
    uint64_t b[BENCH_HIST_N];
} bench_hist;

void bench_hist_init(bench_hist *h);
void bench_hist_add(bench_hist *h, uint64_t ns);
/* The value (ns) at quantile q in [0,1]; 0 when empty. */
double bench_hist_quantile(const bench_hist *h, double q);

/* ---- results (bench_out.c) ---------------------------------------------- */

typedef struct bench_row {
    const char *mode;      /* "pingpong", ... */
    const char *transport; /* "unix", ... */
    const char *impl;      /* "core" or "lib" (rr) */
    size_t size;
    int clients, pipeline, batch;
    int spin_us;
    int cpu_server, cpu_client; /* -1: not pinned */
    int sndbuf, rcvbuf;
    uint64_t ops;    /* round trips, messages, connections, datagrams */
    uint64_t bytes;  /* payload bytes moved one way */
    double secs;
    int has_lat;     /* latency columns are meaningful */
    double p50, p90, p99, p999, max, min, mean; /* microseconds */
    double extra;    /* hold: user-space bytes per idle connection */
    char note[96];   /* "" or why the row is empty (e.g. message too big) */
} bench_row;

enum bench_fmt { BF_TABLE, BF_JSON, BF_CSV };

void bench_out_begin(int fmt, const char *argv_line);
void bench_out_row(int fmt, const bench_row *r);
void bench_out_end(int fmt);
/* "server:0 client:1", "both:0", "unpinned"... into buf. */
const char *bench_placement(const bench_row *r, char *buf, size_t size);

/* ---- server side (bench_server.c) -------------------------------------- */

typedef struct bench_srv_opts {
    int spin_us;        /* if > 0, overrides the hello's spin */
    int sndbuf, rcvbuf; /* applied to each accepted connection (0: leave) */
    const uds_access *access; /* unix peers (borrowed); NULL: everyone */
    int allow_remote;   /* TCP/UDP: also peers not on the loopback */
    int private_addr;   /* fork mode: sizes as the client asked (no budget) */
    const char *name;   /* log prefix ("bench") */
} bench_srv_opts;

/*
 * Serves sessions on a listener (stream/seqpacket) or bound datagram
 * socket on a uds_loop until SIGINT/SIGTERM/SIGHUP: connections through a
 * uds_acceptor (the access rules, or loopback-only for TCP), every hello
 * within BENCH_HELLO_MS, sessions side by side within the limits above
 * (pingpong and stream each in a thread of their own, blocking as before;
 * rr, connect, hold and datagrams on the loop). Takes l (closed at the
 * end). Returns 0 or -errno.
 */
int bench_serve(uds_listener *l, const bench_srv_opts *opts);

/* ---- the library's server and client (bench_lib.c) -------------------- */

typedef struct bench_rr_params {
    unsigned clients, depth; /* connections, requests in flight on each */
    size_t size;             /* request (and response) payload bytes */
    uint64_t spin_ns;        /* client busy-poll before blocking */
    double duration;         /* seconds (0: only count) */
    uint64_t count;          /* responses to measure (0: only duration) */
    uint64_t warm;           /* responses not measured at the start */
} bench_rr_params;

/*
 * Serves an echo with uds_server on a uds_loop (what `rr --impl lib`
 * measures) on listener l (taken), until SIGINT/SIGTERM/SIGHUP, through a
 * uds_acceptor with o's access rules (TCP: loopback only unless
 * o->allow_remote). max_msg: the largest request; max_conns: 0 none.
 * Spins up to spin_us polling the loop after the last request before
 * blocking. Returns 0 or -errno.
 */
int bench_lib_serve(uds_listener *l, const bench_srv_opts *o, size_t max_msg,
                    unsigned max_conns);
/* Measures request/response with uds_client connections into *row. */
void bench_lib_rr(const uds_addr *a, int type, const bench_rr_params *p, bench_row *row);

/* ---- helpers shared by both ends (bench_server.c) ---------------------- */

/* recv() that busy-polls with MSG_DONTWAIT for spin_ns before blocking. */
ssize_t bench_recv(int fd, void *buf, size_t len, uint64_t spin_ns);
/* Reads exactly len bytes (spinning as above). len, short at EOF, or -errno. */
ssize_t bench_recv_exact(int fd, void *buf, size_t len, uint64_t spin_ns);
/* Pins the calling process to one CPU (cpu < 0: no change). 0 or -errno. */
int bench_pin(int cpu);
/* The CPU process pid (0: the caller) is pinned to as the kernel says
   (sched_getaffinity), or -1 if it may run on more than one. */
int bench_pinned(pid_t pid);
/* Sets TCP_NODELAY on a TCP socket; harmless no-op on others. */
void bench_nodelay(int fd);
/* The process's resident set size in bytes (from /proc/self/statm). */
uint64_t bench_rss(void);
/* 1 if the connected or sending peer sa is on the loopback (or unix). */
int bench_is_loopback(const struct sockaddr *sa);
/* A random 64-bit token (getrandom; the clock if that fails). */
uint64_t bench_token(void);

#endif
