/*
 * main.c — the udsock command. Each subcommand lives in its own file
 * (src/cli/cmd_NAME.c) and is listed in the table below.
 */
#include "cli.h"
#include "progress.h"
#include "service.h"

#include <stddef.h>

int cmd_listen(int argc, char **argv);
int cmd_connect(int argc, char **argv);
int cmd_send(int argc, char **argv);
int cmd_recv(int argc, char **argv);
int cmd_bench(int argc, char **argv);
int cmd_serve(int argc, char **argv);
int cmd_relay(int argc, char **argv);
int cmd_ls(int argc, char **argv);

#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Subcommands, in the order --help lists them. */
static const cli_cmd commands[] = {
    /* CLI_COMMANDS (one line per subcommand; keep this marker) */
    {"listen", "accept a client; copy socket <-> stdin/stdout", cmd_listen},
    {"connect", "connect; copy stdin/stdout <-> socket", cmd_connect},
    {"send", "send datagrams (arguments or stdin lines)", cmd_send},
    {"recv", "receive and print datagrams", cmd_recv},
    {"bench", "measure latency and throughput (pingpong, stream, rr, connect, dgram)", cmd_bench},
    {"serve", "run a program for each connection (like s6-ipcserver)", cmd_serve},
    {"relay", "connect each client of one address to another (splice)", cmd_relay},
    {"ls", "list unix sockets, their owners, and stale socket files", cmd_ls},
    {NULL, NULL, NULL},
};

const cli_cmd *cli_commands(void) { return commands; }

void cli_warn(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    progress_hold(); /* a progress line on the terminal is erased first */
    fputs("udsock: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    progress_release();
    va_end(ap);
}

void cli_die(int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    progress_hold();
    fputs("udsock: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    progress_release();
    va_end(ap);
    exit(code);
}

/*
 * Who holds the lock file of `addr` (a path's text), for the message of a
 * listen that gave up waiting: "held by pid 1234 (s6-ipcserver)". The
 * command name is the holder's choice: escaped.
 */
static void lock_holder_text(const char *addr, char *buf, size_t size)
{
    uds_addr a;
    int pid = uds_addr_parse(&a, addr) == 0 ? uds_listen_lock_holder(&a) : -EINVAL;
    if (pid <= 0) {
        snprintf(buf, size, "held by another process");
        return;
    }
    char path[64], comm[64] = "", esc[160];
    snprintf(path, sizeof(path), "/proc/%d/comm", pid);
    FILE *f = fopen(path, "re");
    size_t n = 0;
    if (f) {
        n = fread(comm, 1, sizeof(comm) - 1, f);
        fclose(f);
    }
    while (n > 0 && comm[n - 1] == '\n')
        n--;
    if (n)
        snprintf(buf, size, "held by pid %d (%s)", pid, cli_esc(comm, n, esc, sizeof(esc)));
    else
        snprintf(buf, size, "held by pid %d", pid);
}

/* "a regular file", "a directory"...: what a file that is not a socket is. */
static const char *file_kind(mode_t m)
{
    if (S_ISREG(m))
        return "a regular file";
    if (S_ISDIR(m))
        return "a directory";
    if (S_ISFIFO(m))
        return "a FIFO (named pipe)";
    if (S_ISCHR(m))
        return "a character device";
    if (S_ISBLK(m))
        return "a block device";
    if (S_ISLNK(m))
        return "a symlink";
    return S_ISSOCK(m) ? "a socket" : "of an unknown file type";
}

/* "stream", "datagram", "seqpacket" for a SOCK_* value. */
static const char *sock_kind(int type)
{
    return type == SOCK_STREAM      ? "stream"
           : type == SOCK_DGRAM     ? "datagram"
           : type == SOCK_SEQPACKET ? "seqpacket"
                                    : "unknown";
}

/* uds_diag_dump, or -EPROTONOSUPPORT (sock_diag unavailable) when
   UDSOCK_NO_SOCK_DIAG=1: the test seam for the fallbacks of ls and of the
   type probe below. */
int cli_diag_dump(uds_diag_list *l, unsigned states)
{
    const char *seam = getenv("UDSOCK_NO_SOCK_DIAG");
    if (seam && *seam == '1')
        return -EPROTONOSUPPORT;
    return uds_diag_dump(l, states);
}

/*
 * The type (SOCK_*) of the unix socket bound at `a`, without connecting to
 * it: from sock_diag (the listening or bound socket whose file is a's, or
 * whose abstract name is a's). Without sock_diag, a datagram connect (it
 * sends nothing, a server sees nothing) tells whether it is a datagram
 * socket. 0 when unknown.
 */
static int peer_sock_type(const uds_addr *a)
{
    struct stat st;
    const char *path = uds_addr_path(a);
    if (a->kind != UDS_ADDR_ABSTRACT && (!path || stat(path, &st) < 0 || !S_ISSOCK(st.st_mode)))
        return 0;
    uds_diag_list l = {0};
    int type = 0;
    if (cli_diag_dump(&l, (1u << UDS_DIAG_LISTENING) | (1u << UDS_DIAG_UNCONNECTED)) >= 0) {
        for (size_t i = 0; i < l.count && !type; i++) {
            const uds_diag_sock *d = &l.socks[i];
            if (d->type != SOCK_DGRAM && d->state != UDS_DIAG_LISTENING)
                continue; /* bound, not listening: refuses every type */
            if (path)
                type = (d->have & UDS_DIAG_HAVE_VFS) && d->vfs_dev == st.st_dev &&
                               d->vfs_ino == (uint32_t)st.st_ino
                           ? d->type
                           : 0;
            else
                type = d->name_len == a->len - offsetof(struct sockaddr_un, sun_path) &&
                               !memcmp(d->name, a->u.un.sun_path, d->name_len)
                           ? d->type
                           : 0;
        }
        uds_diag_free(&l);
    }
    if (!type) {
        uds_connect_opts co = {.type = UDS_DGRAM, .flags = UDS_NO_AUTOBIND};
        int fd = uds_connect(a, &co);
        if (fd >= 0) {
            close(fd);
            type = SOCK_DGRAM;
        }
    }
    return type;
}

/*
 * Why a connect (or send) to a path failed when the kernel only says
 * ECONNREFUSED/ENOENT: the file is no socket ("not a socket: it is a
 * regular file"), or a symlink that leads nowhere. NULL when the file is a
 * socket (the usual "nobody listens") or cannot be examined.
 */
static const char *not_socket_text(const char *addr, int err, char *buf, size_t size)
{
    uds_addr a;
    struct stat st;
    if (uds_addr_parse(&a, addr) < 0 || !uds_addr_path(&a))
        return NULL;
    const char *path = uds_addr_path(&a);
    if (err == -ECONNREFUSED && stat(path, &st) == 0 && !S_ISSOCK(st.st_mode)) {
        struct stat lst;
        int via = lstat(path, &lst) == 0 && S_ISLNK(lst.st_mode);
        snprintf(buf, size, "not a socket: it is %s%s", file_kind(st.st_mode),
                 via ? " (through a symlink)" : "");
        return buf;
    }
    if (err == -ENOENT && lstat(path, &st) == 0 && S_ISLNK(st.st_mode)) {
        char to[256], esc[1024];
        ssize_t n = readlink(path, to, sizeof(to));
        if (n < 0)
            n = 0;
        snprintf(buf, size, "a symlink to '%s', which does not exist",
                 cli_esc(to, (size_t)n, esc, sizeof(esc)));
        return buf;
    }
    return NULL;
}

const char *cli_errtext_type(const char *op, const char *addr, int err, int asked)
{
    static char tbuf[2 * UDS_ADDR_STRLEN + 256];
    uds_addr a;
    if (err != -EPROTOTYPE || uds_addr_parse(&a, addr) < 0 ||
        (a.kind != UDS_ADDR_PATH && a.kind != UDS_ADDR_ABSTRACT))
        return cli_errtext(op, addr, err);
    int is = peer_sock_type(&a);
    char want[64] = "";
    if (asked > 0)
        snprintf(want, sizeof(want), ", and %s was asked for", sock_kind(asked));
    if (is)
        snprintf(tbuf, sizeof(tbuf), "%s %s: wrong socket type: it is a %s socket%s (-t %s)", op,
                 addr, sock_kind(is), want, is == SOCK_DGRAM ? "dgram" : sock_kind(is));
    else
        snprintf(tbuf, sizeof(tbuf), "%s %s: wrong socket type: the socket is of another type "
                 "than %s", op, addr, asked > 0 ? sock_kind(asked) : "the one asked for");
    return tbuf;
}

const char *cli_errtext(const char *op, const char *addr, int err)
{
    static char buf[2 * UDS_ADDR_STRLEN + 256];
    const char *hint = "";
    int binding = !strcmp(op, "listen") || !strcmp(op, "bind");
    int connecting = !strcmp(op, "connect") || !strcmp(op, "send to");
    if (connecting && (err == -ENOENT || err == -ECONNREFUSED)) {
        char why[1200];
        if (not_socket_text(addr, err, why, sizeof(why))) {
            snprintf(buf, sizeof(buf), "%s %s: %s", op, addr, why);
            return buf;
        }
    }
    if (connecting && err == -EPROTOTYPE)
        return cli_errtext_type(op, addr, err, 0);
    if (connecting && err == -ECONNREFUSED) {
        /* an abstract name is looked up per socket type: another type's
           socket of that name is "refused", not EPROTOTYPE */
        uds_addr a;
        if (uds_addr_parse(&a, addr) == 0 && a.kind == UDS_ADDR_ABSTRACT && peer_sock_type(&a))
            return cli_errtext_type(op, addr, -EPROTOTYPE, 0);
    }
    if (!strcmp(op, "connect") && (err == -ENOENT || err == -ECONNREFUSED))
        hint = " (is the server running?)";
    if (binding && err == -EEXIST) {
        uds_addr a;
        struct stat st;
        const char *kind = "";
        if (uds_addr_parse(&a, addr) == 0 && uds_addr_path(&a) &&
            lstat(uds_addr_path(&a), &st) == 0)
            kind = file_kind(st.st_mode);
        snprintf(buf, sizeof(buf), "%s %s: exists and is not a socket%s%s; refusing to remove it",
                 op, addr, *kind ? ": it is " : "", kind);
        return buf;
    }
    if (binding && err == UDS_ELOCKFILE) {
        snprintf(buf, sizeof(buf),
                 "%s %s: %s%s exists and is not udsock's lock file; leaving it alone", op, addr,
                 addr, UDS_LOCK_SUFFIX);
        return buf;
    }
    if (binding && err == UDS_EPATHMOVED) {
        snprintf(buf, sizeof(buf),
                 "%s %s: the path was moved or swapped while binding (the socket did not "
                 "land in the directory opened first); owner and mode left alone, not "
                 "listening",
                 op, addr);
        return buf;
    }
    if (binding && err == UDS_ESYMLINK) {
        snprintf(buf, sizeof(buf),
                 "%s %s: the path goes through a symlink owned by another user; not "
                 "following it (give the resolved path if you trust its owner)",
                 op, addr);
        return buf;
    }
    if (binding && err == -ETIMEDOUT) {
        char who[256];
        lock_holder_text(addr, who, sizeof(who));
        snprintf(buf, sizeof(buf), "%s %s: lock %s%s %s for %d s; giving up", op, addr, addr,
                 UDS_LOCK_SUFFIX, who, UDS_LOCK_TIMEOUT_DEFAULT_MS / 1000);
        return buf;
    }
    if (binding && err == -EADDRINUSE)
        hint = " (a server is running there; not taking it over)";
    if (err == -ENAMETOOLONG)
        hint = binding ? " (the last path component is too long to bind: at most "
                         "87 bytes, or 107 for the whole path without /proc)"
                       : " (a path may be at most 4095 bytes; longer than 107 needs /proc)";
    snprintf(buf, sizeof(buf), "%s %s: %s%s", op, addr, uds_strerror(err), hint);
    return buf;
}

const char *cli_cmd_name;

/*
 * What is wrong with address text `text` after uds_addr_parse said `r`:
 * one sentence naming the part at fault ("port 99999 is out of range
 * (0-65535)"), for cli_parse_addr and whoever reports a bad address.
 */
const char *cli_addr_errtext(const char *text, int r)
{
    static char buf[640];
    int inet = !strncmp(text, "tcp:", 4) || !strncmp(text, "udp:", 4);
    const char *rest = inet ? text + 4 : text;
    const char *colon = inet ? strrchr(rest, ':') : NULL;
    const char *port = colon ? colon + 1 : "";
    int abstract = text[0] == '@' || !strncmp(text, "abstract:", 9);
    char host[300] = "";
    if (inet) {
        const char *h = rest, *e = colon ? colon : rest + strlen(rest);
        if (*h == '[') {
            h++;
            const char *rb = strchr(h, ']');
            if (rb && rb < e + 1)
                e = rb;
        }
        snprintf(host, sizeof(host), "%.*s", (int)(e - h), h);
    }
    switch (r) {
    case UDS_EADDR_EMPTY:
        if (!*text)
            return "the address is empty";
        if (inet)
            return "the host between [ and ] is empty";
        return abstract ? "the abstract name is empty (@NAME or abstract:NAME)"
                        : "the path is empty (unix:PATH)";
    case UDS_EADDR_SCHEME: {
        const char *c = strchr(text, ':');
        snprintf(buf, sizeof(buf),
                 "unknown scheme '%.*s:' (expected /path, ./path, unix:PATH, @name, "
                 "abstract:NAME, tcp:HOST:PORT or udp:HOST:PORT)",
                 c ? (int)(c - text) : 0, text);
        return buf;
    }
    case UDS_EADDR_NOPORT:
        return "the port is missing (tcp:HOST:PORT, tcp:[IPV6]:PORT)";
    case UDS_EADDR_PORT:
        snprintf(buf, sizeof(buf), "bad port '%.64s' (a number 0-65535 or a service name)", port);
        return buf;
    case UDS_EADDR_PORTRANGE:
        snprintf(buf, sizeof(buf), "port %.64s is out of range (0-65535)", port);
        return buf;
    case UDS_EADDR_V6BRACKETS:
        snprintf(buf, sizeof(buf), "an IPv6 address needs brackets: %.4s[%.256s]:%.64s", text,
                 host, port);
        return buf;
    case UDS_EADDR_SERVICE:
        snprintf(buf, sizeof(buf), "unknown service '%.64s' (not in /etc/services for %s)",
                 port, !strncmp(text, "udp:", 4) ? "udp" : "tcp");
        return buf;
    case UDS_EADDR_SYNTAX:
        if (inet && rest[0] == '[')
            return strchr(rest, ']') ? "expected ':' and a port after ']' (tcp:[IPV6]:PORT)"
                                     : "'[' without its ']' (tcp:[IPV6]:PORT)";
        return inet ? "expected tcp:HOST:PORT or tcp:[IPV6]:PORT" : "address not understood";
    case UDS_EADDR_NOHOST:
    case UDS_EADDR_RESOLVE:
        snprintf(buf, sizeof(buf), "cannot resolve host '%.256s': %s", host, uds_strerror(r));
        return buf;
    case -ENAMETOOLONG:
        return abstract ? "the abstract name is over 107 bytes"
               : inet   ? "the host name is over 255 bytes"
                        : "the path is over 4095 bytes (PATH_MAX)";
    case -EINVAL:
        return "expected /path, unix:PATH, @name, tcp:HOST:PORT or udp:HOST:PORT";
    default:
        return uds_strerror(r);
    }
}

void cli_parse_addr(uds_addr *out, const char *text)
{
    int r = uds_addr_parse(out, text);
    if (r >= 0)
        return;
    /* the text is wrong: a usage error; the resolver failed: a runtime one */
    int code = UDS_EADDR_IS_SYNTAX(r) || r == -ENAMETOOLONG || r == -EINVAL ? CLI_USAGE : CLI_FAIL;
    const char *cmd = cli_cmd_name ? cli_cmd_name : "udsock";
    if (code == CLI_USAGE)
        cli_die(code, "%s: bad address '%s': %s", cmd, text, cli_addr_errtext(text, r));
    cli_die(code, "%s %s: %s", cmd, text, cli_addr_errtext(text, r));
}

void cli_ignore_sigpipe(void) { signal(SIGPIPE, SIG_IGN); }

static void usage(FILE *f)
{
    fprintf(f, "usage: udsock COMMAND [OPTIONS] ...\n"
               "       udsock --version | --help | COMMAND --help\n\ncommands:\n");
    for (const cli_cmd *c = commands; c->name; c++)
        fprintf(f, "  %-10s %s\n", c->name, c->summary);
    fprintf(f, "  %-10s %s\n", "completion", "print a bash or zsh completion script (bash|zsh)");
    fprintf(f, "  %-10s %s\n", "help CMD", "the help of CMD (as CMD --help)");
    fprintf(f, "\naddresses: /path, ./path, unix:PATH, @abstract, abstract:NAME,\n"
               "           tcp:HOST:PORT, tcp:[::1]:PORT, udp:HOST:PORT\n");
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return CLI_USAGE;
    }
    if (!strcmp(argv[1], "--version") || !strcmp(argv[1], "-V")) {
        printf("udsock %s\n", uds_version());
        return CLI_OK;
    }
    if (!strcmp(argv[1], "help") && argc >= 3) { /* help CMD: CMD's own --help */
        for (const cli_cmd *c = commands; c->name; c++)
            if (!strcmp(argv[2], c->name)) {
                char *hargv[] = {(char *)c->name, (char *)"--help", NULL};
                cli_cmd_name = c->name;
                return c->run(2, hargv);
            }
        if (!strcmp(argv[2], "completion")) {
            char *hargv[] = {(char *)"completion", (char *)"--help", NULL};
            return cli_completion(2, hargv);
        }
        cli_warn("help: unknown command '%s' (try 'udsock --help')", argv[2]);
        return CLI_USAGE;
    }
    if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
        usage(stdout);
        return CLI_OK;
    }
    if (!strcmp(argv[1], "completion"))
        return cli_completion(argc - 1, argv + 1);
    for (const cli_cmd *c = commands; c->name; c++)
        if (!strcmp(argv[1], c->name)) {
            cli_ignore_sigpipe();
            cli_cmd_name = c->name;
            return c->run(argc - 1, argv + 1);
        }
    cli_warn("unknown command '%s' (try 'udsock --help')", argv[1]);
    return CLI_USAGE;
}
