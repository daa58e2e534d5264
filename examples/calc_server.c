/*
 * calc_server [ADDR] [options] — the tutorial's "the client sends a
 * computation request, the server sends back the result", for real, and
 * the canonical example of the server API: many clients at once on ONE
 * thread, replies in request order per client (pipelining), some replies
 * given later from a timer, signals as loop events, graceful shutdown,
 * socket activation and readiness notification.
 *
 * Requests and replies are text messages (framed as 4-byte big-endian
 * length + payload; with --line, one line each so socat/nc can talk to it):
 *   sum 1 2 3        -> 6            mul 2 3.5   -> 7
 *   sort 5 3 9       -> 3 5 9        upper hi    -> HI
 *   expr (1+2)*3     -> 9            hash DATA   -> FNV-1a 64 of DATA, hex
 *   sleep 200        -> "slept 200 ms", answered 200 ms later (<= 10000)
 * Bad input gets a reply starting with "error: ".
 *
 * Options:
 *   --line               newline-delimited messages instead of LEN32
 *   --seqpacket          a SOCK_SEQPACKET socket: one message per packet
 *   --ready-fd N         write "\n" to fd N once serving, then close it
 *   --max-conns N        refuse connections beyond N
 *   --msg-timeout MS     drop a client whose message is not complete in MS
 *   --idle-timeout MS    drop a client idle for MS
 *   --shutdown-ms MS     on SIGTERM/SIGINT: time allowed to finish (5000)
 * Started by systemd (or systemd-socket-activate) with LISTEN_FDS, it
 * serves the inherited sockets instead of ADDR and never unlinks them.
 */
#include <udsock.h>

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The computation (at the end of the file): request text -> reply text in
   out (cap bytes); errors are replies too ("error: ..."). */
static size_t calc(const char *req, size_t reqlen, char *out, size_t cap);

/* ---- the service: one loop, one server, replies now or from a timer ---- */

static uds_loop *loop;
static uds_server *server;
static unsigned shutdown_ms = 5000;

/* A "sleep" request waiting for its timer; listed so exit can drop it. */
struct sleeper {
    struct sleeper *next, **pprev;
    uds_req *req;
    unsigned ms;
    int64_t timer;
};
static struct sleeper *sleepers;

static void unlist(struct sleeper *z)
{
    if (z->next)
        z->next->pprev = z->pprev;
    *z->pprev = z->next;
}

/* The timer fired: answer now. Replies still go out in request order. */
static void on_sleep_done(uds_loop *l, uint64_t id, void *arg)
{
    struct sleeper *z = arg;
    char out[64];
    int n = snprintf(out, sizeof(out), "slept %u ms", z->ms);
    uds_req_reply(z->req, out, (size_t)n); /* UDS_ECLOSED if the client left: fine */
    unlist(z);
    free(z);
}

/* Answers "sleep MS" later: the request stays open while others are served. */
static void start_sleep(uds_req *req, const char *args)
{
    char *end;
    unsigned long ms = strtoul(args, &end, 10);
    struct sleeper *z = NULL;
    if (end == args || *end || ms > 10000 || !(z = calloc(1, sizeof(*z)))) {
        const char *e = "error: sleep needs milliseconds, 0 to 10000";
        uds_req_reply(req, e, strlen(e));
        return;
    }
    z->req = req;
    z->ms = (unsigned)ms;
    if ((z->timer = uds_loop_timer(loop, ms, on_sleep_done, z)) < 0) {
        uds_req_reply(req, "error: no timer", 15);
        free(z);
        return;
    }
    z->next = sleepers;
    if (sleepers)
        sleepers->pprev = &z->next;
    z->pprev = &sleepers;
    sleepers = z;
}

/* Room for any reply: the fixed texts (the longest, the unknown-command
   error with its 32-byte name, is 98 bytes) plus what grows with the request (sort, upper). */
#define REPLY_ROOM(len) (256 + 8 * (len))

/* One request: compute, reply. msg is only valid during this call. */
static void on_request(uds_server *s, uds_req *req, const void *msg, size_t len, void *arg)
{
    char *text = malloc(len + 1), *out = malloc(REPLY_ROOM(len));
    if (!text || !out) {
        free(text);
        free(out);
        uds_req_close(req); /* cannot even say why: hang up */
        return;
    }
    memcpy(text, msg, len);
    text[len] = '\0';
    if (!strncmp(text, "sleep", 5) && (text[5] == ' ' || text[5] == '\0'))
        start_sleep(req, text + 5 + (text[5] == ' '));
    else
        uds_req_reply(req, out, calc(text, len, out, REPLY_ROOM(len)));
    free(text);
    free(out);
}

static void on_log(void *arg, int level, const char *text)
{
    if (level <= UDS_LOG_INFO)
        fprintf(stderr, "calc_server: %s\n", text);
}

static void on_stopped(uds_server *s, void *arg) { uds_loop_stop(loop); }

/* First SIGTERM/SIGINT: finish what is in flight; a second one: stop now. */
static void on_signal(uds_loop *l, int signo, void *arg)
{
    static int stopping;
    fprintf(stderr, "calc_server: %s, %s\n", strsignal(signo),
            stopping ? "stopping now" : "finishing requests in flight");
    if (stopping++) {
        uds_loop_stop(l);
        return;
    }
    uds_notify_stopping();
    uds_server_shutdown(server, shutdown_ms, on_stopped, NULL);
}

/* Serves the sockets a service manager passed; returns how many, or -1. */
static int adopt_inherited(void)
{
    uds_activation act;
    int r = uds_activation_get(&act, UDS_ACT_UNSET_ENV);
    if (r < 0) {
        fprintf(stderr, "calc_server: LISTEN_FDS: %s\n", uds_strerror(r));
        return -1;
    }
    for (int i = 0; i < act.count; i++) {
        int fd = UDS_LISTEN_FDS_START + i;
        r = uds_socket_check(fd, UDS_STREAM, 0, 1);
        if (r == -EPROTOTYPE)
            r = uds_socket_check(fd, UDS_SEQPACKET, 0, 1);
        if (r == 0)
            r = uds_server_adopt(server, fd); /* never unlinks its path */
        if (r < 0) {
            fprintf(stderr, "calc_server: inherited fd %d (%s): %s (need a listening stream "
                    "or seqpacket socket)\n", fd, act.names[i], uds_strerror(r));
            uds_activation_free(&act);
            return -1;
        }
    }
    r = act.count;
    uds_activation_free(&act);
    return r;
}

static int usage(void)
{
    fprintf(stderr, "usage: calc_server [ADDR] [--line|--seqpacket] [--ready-fd N] [--max-conns N]\n"
                    "         [--msg-timeout MS] [--idle-timeout MS] [--shutdown-ms MS]\n");
    return 2;
}

int main(int argc, char **argv)
{
    uds_server_opts o = {.framing = UDS_FRAME_LEN32, .log = on_log};
    uds_listen_opts lo = {.type = 0}; /* 0: from the address (stream) */
    const char *addr_text = NULL;
    unsigned ready_fd = (unsigned)-1, *opt;
    int r;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--line")) {
            o.framing = UDS_FRAME_LINE;
            continue;
        }
        if (!strcmp(a, "--seqpacket")) {
            lo.type = UDS_SEQPACKET;
            continue;
        }
        if (!strcmp(a, "--ready-fd"))
            opt = &ready_fd;
        else if (!strcmp(a, "--max-conns"))
            opt = &o.max_conns;
        else if (!strcmp(a, "--msg-timeout"))
            opt = &o.msg_timeout_ms;
        else if (!strcmp(a, "--idle-timeout"))
            opt = &o.idle_timeout_ms;
        else if (!strcmp(a, "--shutdown-ms"))
            opt = &shutdown_ms;
        else if (a[0] != '-' && !addr_text) {
            addr_text = a;
            continue;
        } else
            return usage();
        char *end;
        if (++i == argc || (*opt = (unsigned)strtoul(argv[i], &end, 10), *end || end == argv[i]))
            return usage();
    }

    int status = 1;
    if ((r = uds_loop_new(&loop)) < 0 ||
        (r = uds_server_new(&server, loop, &o, on_request, NULL)) < 0) {
        fprintf(stderr, "calc_server: %s\n", uds_strerror(r));
        goto out;
    }
    int inherited = adopt_inherited();
    if (inherited < 0)
        goto out;
    if (inherited == 0) {
        uds_addr addr;
        if (!addr_text) {
            status = usage();
            goto out;
        }
        if ((r = uds_addr_parse(&addr, addr_text)) < 0 ||
            (r = uds_server_listen(server, &addr, &lo)) < 0) {
            fprintf(stderr, "calc_server: listen %s: %s\n", addr_text, uds_strerror(r));
            goto out;
        }
    }
    if ((r = uds_loop_signal(loop, SIGTERM, on_signal, NULL)) < 0 ||
        (r = uds_loop_signal(loop, SIGINT, on_signal, NULL)) < 0) {
        fprintf(stderr, "calc_server: signals: %s\n", uds_strerror(r));
        goto out;
    }
    signal(SIGPIPE, SIG_IGN); /* sockets use MSG_NOSIGNAL; this is for stderr */

    uds_addr bound;
    char name[UDS_ADDR_STRLEN] = "?";
    if (uds_server_addr(server, &bound) == 0)
        uds_addr_format(&bound, name, sizeof(name));
    fprintf(stderr, "calc_server: serving on %s%s\n", name, inherited ? " (inherited)" : "");
    uds_notify_ready();
    if (ready_fd != (unsigned)-1 && (r = uds_ready_fd((int)ready_fd)) < 0)
        fprintf(stderr, "calc_server: --ready-fd %u: %s\n", ready_fd, uds_strerror(r));

    status = uds_loop_run(loop) < 0 ? 1 : 0;
out:
    uds_server_free(server); /* socket file removed if it is ours */
    while (sleepers) {       /* a second signal cut "sleep"s short */
        struct sleeper *z = sleepers;
        uds_loop_timer_cancel(loop, (uint64_t)z->timer);
        uds_req_drop(z->req);
        unlist(z);
        free(z);
    }
    uds_loop_free(loop);
    return status;
}

/* ---- the computations: pure functions from request text to reply text ---- */

/* A number: an exact 64-bit integer while possible, a double otherwise. */
typedef struct num {
    int is_int;
    long long i;
    double d;
} num;

static double as_double(num n) { return n.is_int ? (double)n.i : n.d; }

static void fmt_num(num n, char *out, size_t cap)
{
    if (n.is_int)
        snprintf(out, cap, "%lld", n.i);
    else
        snprintf(out, cap, "%.15g", n.d);
}

/* Parses one number at *p (integer or decimal/exponent); advances *p. */
static int parse_num(const char **p, num *out)
{
    char *end;
    errno = 0;
    long long i = strtoll(*p, &end, 10);
    if (end != *p && *end != '.' && *end != 'e' && *end != 'E' && errno == 0) {
        *out = (num){1, i, 0};
        *p = end;
        return 0;
    }
    double d = strtod(*p, &end);
    if (end == *p || !isfinite(d))
        return -1;
    *out = (num){0, 0, d};
    *p = end;
    return 0;
}

/* a OP b for + - * with integer overflow falling back to double. */
static num arith(num a, num b, char op)
{
    long long r;
    if (a.is_int && b.is_int) {
        int ovf = op == '+' ? __builtin_add_overflow(a.i, b.i, &r)
                : op == '-' ? __builtin_sub_overflow(a.i, b.i, &r)
                            : __builtin_mul_overflow(a.i, b.i, &r);
        if (!ovf)
            return (num){1, r, 0};
    }
    double x = as_double(a), y = as_double(b);
    return (num){0, 0, op == '+' ? x + y : op == '-' ? x - y : x * y};
}

/*
 * expr: a recursive-descent parser over
 *   expr   := term (('+' | '-') term)*
 *   term   := unary (('*' | '/' | '%') unary)*
 *   unary  := ('-' | '+') unary | '(' expr ')' | number
 * Depth is bounded so "((((..." cannot exhaust the stack. Errors set
 * p->err to a static message and unwind.
 */
struct parser {
    const char *s;
    const char *err;
    int depth;
};

static void skip_ws(struct parser *p)
{
    while (*p->s == ' ' || *p->s == '\t')
        p->s++;
}

static num p_expr(struct parser *p);

static num p_unary(struct parser *p)
{
    num zero = {1, 0, 0}, v;
    skip_ws(p);
    if (++p->depth > 100) {
        p->err = "expression nested too deeply";
        return zero;
    }
    if (*p->s == '-' || *p->s == '+') {
        char op = *p->s++;
        v = p_unary(p);
        v = op == '-' ? arith(zero, v, '-') : v;
    } else if (*p->s == '(') {
        p->s++;
        v = p_expr(p);
        skip_ws(p);
        if (!p->err && *p->s != ')')
            p->err = "missing ')'";
        else if (!p->err)
            p->s++;
    } else if (parse_num(&p->s, &v) < 0) {
        p->err = *p->s ? "number expected" : "unexpected end of expression";
        v = zero;
    }
    p->depth--;
    return v;
}

static num p_term(struct parser *p)
{
    num v = p_unary(p);
    for (skip_ws(p); !p->err && (*p->s == '*' || *p->s == '/' || *p->s == '%'); skip_ws(p)) {
        char op = *p->s++;
        num w = p_unary(p);
        if (p->err)
            break;
        if (op == '*') {
            v = arith(v, w, '*');
        } else if (as_double(w) == 0) {
            p->err = "division by zero";
        } else if (op == '%') {
            if (!v.is_int || !w.is_int)
                p->err = "% needs integers";
            else
                v.i = (w.i == -1) ? 0 : v.i % w.i; /* LLONG_MIN % -1 traps */
        } else if (v.is_int && w.is_int && w.i != -1 && v.i % w.i == 0) {
            v.i /= w.i; /* exact integer quotient */
        } else {
            v = (num){0, 0, as_double(v) / as_double(w)};
        }
    }
    return v;
}

static num p_expr(struct parser *p)
{
    num v = p_term(p);
    for (skip_ws(p); !p->err && (*p->s == '+' || *p->s == '-'); skip_ws(p)) {
        char op = *p->s++;
        num w = p_term(p);
        v = arith(v, w, op);
    }
    return v;
}

/* Splits args into numbers; returns how many, or -1 (bad token in *bad). */
static long parse_list(const char *args, num *out, size_t cap, const char **bad)
{
    long n = 0;
    const char *p = args;
    for (;;) {
        while (*p == ' ' || *p == '\t')
            p++;
        if (!*p)
            return n;
        *bad = p;
        if ((size_t)n == cap || parse_num(&p, &out[n]) < 0 || (*p && *p != ' ' && *p != '\t'))
            return -1;
        n++;
    }
}

static int cmp_num(const void *a, const void *b)
{
    double x = as_double(*(const num *)a), y = as_double(*(const num *)b);
    return (x > y) - (x < y);
}

/*
 * Computes the reply to one request ("CMD ARGS", a NUL-terminated line)
 * into out. Returns the reply length. Errors are replies too: "error: ...".
 */
static size_t calc(const char *req, size_t reqlen, char *out, size_t cap)
{
    const char *sp = memchr(req, ' ', reqlen);
    size_t cmdlen = sp ? (size_t)(sp - req) : reqlen;
    const char *args = sp ? sp + 1 : req + reqlen;
    size_t arglen = reqlen - (size_t)(args - req);
    int n;
#define IS(name) (cmdlen == sizeof(name) - 1 && !memcmp(req, name, cmdlen))
    if (IS("hash")) { /* FNV-1a 64 over the raw payload bytes */
        uint64_t h = 0xcbf29ce484222325ull;
        for (size_t i = 0; i < arglen; i++)
            h = (h ^ (unsigned char)args[i]) * 0x100000001b3ull;
        n = snprintf(out, cap, "%016llx", (unsigned long long)h);
    } else if (IS("upper")) {
        n = (int)(arglen < cap ? arglen : cap - 1);
        for (int i = 0; i < n; i++)
            out[i] = (char)toupper((unsigned char)args[i]);
        out[n] = '\0';
    } else if (IS("sum") || IS("mul") || IS("sort")) {
        size_t max = arglen / 2 + 1; /* numbers are separated by spaces */
        num *v = malloc(max * sizeof(num));
        const char *bad = "";
        long k = v ? parse_list(args, v, max, &bad) : -1;
        if (!v)
            n = snprintf(out, cap, "error: out of memory");
        else if (k < 0)
            n = snprintf(out, cap, "error: not a number: '%.*s'", (int)strcspn(bad, " \t"), bad);
        else if (IS("sort")) {
            qsort(v, (size_t)k, sizeof(num), cmp_num);
            n = 0;
            for (long i = 0; i < k && (size_t)n < cap; i++) {
                char t[64];
                fmt_num(v[i], t, sizeof(t));
                n += snprintf(out + n, cap - (size_t)n, i ? " %s" : "%s", t);
            }
        } else {
            num acc = {1, IS("sum") ? 0 : 1, 0};
            for (long i = 0; i < k; i++)
                acc = arith(acc, v[i], IS("sum") ? '+' : '*');
            fmt_num(acc, out, cap);
            n = (int)strlen(out);
        }
        free(v);
    } else if (IS("expr")) {
        struct parser p = {args, NULL, 0};
        num v = p_expr(&p);
        skip_ws(&p);
        if (!p.err && *p.s)
            p.err = "unexpected character";
        if (p.err)
            n = snprintf(out, cap, "error: %s at offset %d", p.err, (int)(p.s - args));
        else {
            fmt_num(v, out, cap);
            n = (int)strlen(out);
        }
    } else {
        n = snprintf(out, cap, "error: unknown command '%.*s' (try sum mul sort expr hash upper sleep)",
                     (int)(cmdlen > 32 ? 32 : cmdlen), req);
    }
#undef IS
    return n < 0 ? 0 : (size_t)n >= cap ? cap - 1 : (size_t)n;
}
