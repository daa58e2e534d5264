/*
 * cmd_ls.c — `udsock ls [DIR|PATH]`: the unix sockets of this network
 * namespace with the processes that hold them, the socket files under DIR
 * (live or stale), and the details of one socket file.
 *
 * Sources, none of which connects to anybody:
 *   sock_diag        (uds_diag_dump) every socket: inode, type, state, name
 *                    as bytes with a length, the file it is bound to
 *                    (dev/ino), peer, queues, pending connections, uid;
 *   /proc/PID/fd/N   "socket:[INODE]" links: every process holding each
 *                    socket, with /proc/PID/comm and the real uid from
 *                    /proc/PID/status. Processes whose fds we may not read
 *                    are counted, and a socket nobody readable holds shows
 *                    its holder as unknown ("?"), never as nobody;
 *   the directory    walked through directory fds (openat, O_NOFOLLOW,
 *                    fstatat): a socket file is live when a listening (or
 *                    bound datagram) socket reports its dev/ino.
 * Without sock_diag (the unix_diag module missing) /proc/net/unix is NOT
 * parsed instead: its names are printed raw, a newline in an abstract name
 * forges a whole line, and no rule can tell the forged line from a real
 * one. The machine-wide listing is then refused; DIR and PATH still show
 * the files, with the state "unknown".
 * Text output passes every name through cli_esc (uds_escape); --json keeps
 * the exact bytes (a string, plus a _hex field with the raw bytes).
 */
#include "cli.h"
#include "opts.h"
#include "service.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <grp.h>
#include <limits.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#define WALK_MAX_ENTRIES 200000 /* bound on the DIR walk */
#define ESC_MAX 1024            /* an escaped name: 108 bytes * 4 + room */

/* ---- small growable things -------------------------------------------- */

typedef struct sbuf {
    char *s;
    size_t n, cap;
} sbuf;

/* Appends formatted text; exits on out of memory (a listing is useless
   half done). */
static void sb_printf(sbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void sb_printf(sbuf *b, const char *fmt, ...)
{
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(b->s ? b->s + b->n : NULL, b->s ? b->cap - b->n : 0, fmt, ap);
        va_end(ap);
        if (n < 0)
            cli_die(CLI_FAIL, "ls: formatting failed");
        if (b->s && b->n + (size_t)n < b->cap) {
            b->n += (size_t)n;
            return;
        }
        size_t nc = (b->cap ? b->cap : 64) * 2;
        while (nc < b->n + (size_t)n + 1)
            nc *= 2;
        char *p = realloc(b->s, nc);
        if (!p)
            cli_die(CLI_FAIL, "ls: out of memory");
        b->s = p;
        b->cap = nc;
        b->s[b->n] = 0;
    }
}

static char *sb_take(sbuf *b)
{
    if (!b->s)
        sb_printf(b, "%s", "");
    char *s = b->s;
    memset(b, 0, sizeof(*b));
    return s;
}

static void *xrealloc(void *p, size_t n, size_t size)
{
    if (size && n > SIZE_MAX / size)
        cli_die(CLI_FAIL, "ls: out of memory");
    size_t bytes = n * size;
    void *q = realloc(p, bytes ? bytes : 1);
    if (!q)
        cli_die(CLI_FAIL, "ls: out of memory");
    return q;
}

/* ---- escaping ----------------------------------------------------------- */

/* A name for a table cell that is not the last one: cli_esc, then space
   and comma as \x20 \x2c too, so a cell stays one word and a list of
   processes cannot be extended by a command name. */
static const char *esc_cell(const void *data, size_t len, char *buf, size_t size)
{
    char tmp[ESC_MAX];
    cli_esc(data, len, tmp, sizeof(tmp));
    size_t w = 0;
    for (const char *p = tmp; *p && w + 5 < size; p++) {
        if (*p == ' ' || *p == ',') {
            w += (size_t)snprintf(buf + w, size - w, "\\x%02x", (unsigned char)*p);
        } else {
            buf[w++] = *p;
        }
    }
    if (size)
        buf[w < size ? w : size - 1] = 0;
    return buf;
}

/* Length of the valid UTF-8 character at p (1..4; 0: not valid or not
   wanted raw in JSON: C0/C1 controls, DEL, surrogates, overlong forms). */
static size_t utf8_char(const unsigned char *p, size_t n)
{
    unsigned c = p[0];
    if (c < 0x80)
        return c >= 0x20 && c != 0x7f ? 1 : 0;
    size_t len = c >= 0xc2 && c <= 0xdf ? 2 : c >= 0xe0 && c <= 0xef ? 3 : c >= 0xf0 && c <= 0xf4 ? 4 : 0;
    if (!len || n < len)
        return 0;
    unsigned cp = c & (len == 2 ? 0x1f : len == 3 ? 0x0f : 0x07);
    for (size_t i = 1; i < len; i++) {
        if ((p[i] & 0xc0) != 0x80)
            return 0;
        cp = cp << 6 | (p[i] & 0x3f);
    }
    if ((len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) || cp > 0x10ffff ||
        (cp >= 0xd800 && cp <= 0xdfff) || (cp >= 0x80 && cp <= 0x9f))
        return 0;
    return len;
}

/* A JSON string of len bytes: valid UTF-8 as it is, control bytes as
   \u00XX (so a valid-UTF-8 name decodes to exactly its bytes), a byte that
   is not valid UTF-8 as U+FFFD (the _hex field then has the bytes). */
static void json_str(FILE *f, const void *data, size_t len)
{
    const unsigned char *p = data;
    fputc('"', f);
    for (size_t i = 0; i < len;) {
        size_t u = utf8_char(p + i, len - i);
        if (u == 1 && (p[i] == '"' || p[i] == '\\')) {
            fprintf(f, "\\%c", p[i]);
        } else if (u) {
            fwrite(p + i, 1, u, f);
        } else if (p[i] < 0x80 || (p[i] == 0xc2 && i + 1 < len && p[i + 1] >= 0x80 &&
                                   p[i + 1] <= 0x9f)) {
            /* C0 control, DEL; a C1 control (U+0080..U+009F) as itself */
            unsigned cp = p[i] < 0x80 ? p[i] : p[i + 1];
            fprintf(f, "\\u%04x", cp);
            i += p[i] < 0x80 ? 1 : 2;
            continue;
        } else {
            fputs("\\ufffd", f);
        }
        i += u ? u : 1;
    }
    fputc('"', f);
}

/* "key": "text", "key_hex": "raw bytes in hex" (lossless for any bytes). */
static void json_bytes(FILE *f, const char *key, const void *data, size_t len)
{
    const unsigned char *p = data;
    fprintf(f, "\"%s\": ", key);
    json_str(f, data, len);
    fprintf(f, ", \"%s_hex\": \"", key);
    for (size_t i = 0; i < len; i++)
        fprintf(f, "%02x", p[i]);
    fputc('"', f);
}

/* ---- processes ---------------------------------------------------------- */

typedef struct proc {
    long pid;
    long uid; /* -1: unknown */
    char comm[72];
    size_t comm_len;
} proc;

typedef struct holder {
    uint64_t ino;
    size_t proc; /* index into procs.v */
} holder;

typedef struct procs {
    proc *v;
    size_t n, cap;
    holder *h;
    size_t nh, caph;
    size_t unreadable; /* processes whose fds we could not read */
} procs;

/* The command (raw bytes, the one trailing newline the kernel adds
   removed) and real uid of pid. */
static void proc_info(int pfd, proc *p)
{
    p->comm_len = 0;
    p->uid = -1;
    int fd = openat(pfd, "comm", O_RDONLY | O_CLOEXEC);
    if (fd >= 0) {
        ssize_t n = read(fd, p->comm, sizeof(p->comm) - 1);
        if (n > 0) {
            if (p->comm[n - 1] == '\n')
                n--;
            p->comm_len = (size_t)n;
        }
        close(fd);
    }
    fd = openat(pfd, "status", O_RDONLY | O_CLOEXEC);
    if (fd >= 0) {
        FILE *f = fdopen(fd, "re");
        if (!f) {
            close(fd);
            return;
        }
        char line[256];
        for (int i = 0; i < 64 && fgets(line, sizeof(line), f); i++)
            if (!strncmp(line, "Uid:\t", 5)) {
                char *end;
                long u = strtol(line + 5, &end, 10);
                if (end != line + 5 && u >= 0)
                    p->uid = u;
                break;
            }
        fclose(f);
    }
}

static int by_holder(const void *a, const void *b)
{
    const holder *x = a, *y = b;
    if (x->ino != y->ino)
        return x->ino < y->ino ? -1 : 1;
    return x->proc < y->proc ? -1 : x->proc > y->proc;
}

/* Every process's socket fds: which process holds which socket inode. */
static void scan_procs(procs *ps)
{
    memset(ps, 0, sizeof(*ps));
    DIR *d = opendir("/proc");
    if (!d)
        return;
    struct dirent *de;
    while ((de = readdir(d))) {
        char *end;
        long pid = strtol(de->d_name, &end, 10);
        if (!isdigit((unsigned char)de->d_name[0]) || *end || pid <= 0)
            continue;
        int pfd = openat(dirfd(d), de->d_name, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (pfd < 0)
            continue; /* gone */
        int ffd = openat(pfd, "fd", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (ffd < 0) {
            if (errno == EACCES || errno == EPERM)
                ps->unreadable++;
            close(pfd);
            continue;
        }
        DIR *fds = fdopendir(ffd);
        if (!fds) {
            close(ffd);
            close(pfd);
            continue;
        }
        size_t me = SIZE_MAX;
        struct dirent *fe;
        while ((fe = readdir(fds))) {
            if (fe->d_name[0] == '.')
                continue;
            char link[64];
            ssize_t n = readlinkat(dirfd(fds), fe->d_name, link, sizeof(link) - 1);
            if (n <= 9 || strncmp(link, "socket:[", 8) || link[n - 1] != ']')
                continue;
            link[n - 1] = 0;
            uint64_t ino = strtoull(link + 8, &end, 10);
            if (*end || !ino)
                continue;
            if (me == SIZE_MAX) {
                if (ps->n == ps->cap) {
                    ps->cap = ps->cap ? ps->cap * 2 : 256;
                    ps->v = xrealloc(ps->v, ps->cap, sizeof(proc));
                }
                me = ps->n++;
                ps->v[me].pid = pid;
                proc_info(pfd, &ps->v[me]);
            }
            if (ps->nh == ps->caph) {
                ps->caph = ps->caph ? ps->caph * 2 : 1024;
                ps->h = xrealloc(ps->h, ps->caph, sizeof(holder));
            }
            ps->h[ps->nh].ino = ino;
            ps->h[ps->nh].proc = me;
            ps->nh++;
        }
        closedir(fds);
        close(pfd);
    }
    closedir(d);
    if (ps->nh) /* qsort wants a non-NULL array even for 0 items */
        qsort(ps->h, ps->nh, sizeof(holder), by_holder);
    /* one entry per (socket, process), however many fds it has */
    size_t w = 0;
    for (size_t i = 0; i < ps->nh; i++)
        if (!w || ps->h[w - 1].ino != ps->h[i].ino || ps->h[w - 1].proc != ps->h[i].proc)
            ps->h[w++] = ps->h[i];
    ps->nh = w;
}

/* The holders of ino: *first and the count. */
static size_t holders(const procs *ps, uint64_t ino, size_t *first)
{
    size_t lo = 0, hi = ps->nh;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (ps->h[mid].ino < ino)
            lo = mid + 1;
        else
            hi = mid;
    }
    size_t n = 0;
    while (lo + n < ps->nh && ps->h[lo + n].ino == ino)
        n++;
    *first = lo;
    return n;
}

/* "PID/COMM(UID),..." for a table cell; "?" when nobody we could read holds
   it but some processes were unreadable, "-" when nobody holds it. */
static char *procs_cell(const procs *ps, uint64_t ino)
{
    size_t first, n = ino ? holders(ps, ino, &first) : 0;
    sbuf b = {0};
    if (!n)
        sb_printf(&b, "%s", ino && ps->unreadable ? "?" : "-");
    for (size_t i = 0; i < n; i++) {
        const proc *p = &ps->v[ps->h[first + i].proc];
        char c[ESC_MAX], u[24] = "?";
        if (p->uid >= 0)
            snprintf(u, sizeof(u), "%ld", p->uid);
        sb_printf(&b, "%s%ld/%s(%s)", i ? "," : "", p->pid, esc_cell(p->comm, p->comm_len, c, sizeof(c)),
                  u);
    }
    return sb_take(&b);
}

/* The same as a JSON key: "KEY": [{"pid":..,"command":..,"uid":..}],
   "KEY_complete": whether every process could be read. */
static void procs_json(FILE *f, const char *key, const procs *ps, uint64_t ino)
{
    size_t first, n = ino ? holders(ps, ino, &first) : 0;
    fprintf(f, "\"%s\": [", key);
    for (size_t i = 0; i < n; i++) {
        const proc *p = &ps->v[ps->h[first + i].proc];
        fprintf(f, "%s{\"pid\": %ld, ", i ? ", " : "", p->pid);
        json_bytes(f, "command", p->comm, p->comm_len);
        if (p->uid >= 0)
            fprintf(f, ", \"uid\": %ld}", p->uid);
        else
            fputs(", \"uid\": null}", f);
    }
    fprintf(f, "], \"%s_complete\": %s", key, ps->unreadable ? "false" : "true");
}

static void procs_free(procs *ps)
{
    free(ps->v);
    free(ps->h);
    memset(ps, 0, sizeof(*ps));
}

/* ---- sockets ------------------------------------------------------------ */

typedef struct socks {
    uds_diag_list l;
    int ok;                       /* 0: sock_diag unavailable */
    int err;
} socks;

/* The kernel's table, or (ok 0, err) when sock_diag is unavailable.
   UDSOCK_NO_SOCK_DIAG=1 makes it unavailable (the seam in cli_diag_dump).
   Any other failure ends the command. */
static void load_socks(socks *s)
{
    memset(s, 0, sizeof(*s));
    int r = cli_diag_dump(&s->l, UDS_DIAG_ALL);
    if (r == -EPROTONOSUPPORT) {
        s->err = r;
        return;
    }
    if (r < 0)
        cli_die(CLI_FAIL, "ls: sock_diag: %s", uds_strerror(r));
    s->ok = 1;
}

static void socks_free(socks *s)
{
    uds_diag_free(&s->l);
}

static const char *unavailable_text(void)
{
    return "the kernel's sock_diag for unix sockets is unavailable (is the unix_diag module "
           "loaded? 'modprobe unix_diag')";
}

static const char *type_name(int t)
{
    switch (t) {
    case SOCK_STREAM:
        return "stream";
    case SOCK_DGRAM:
        return "dgram";
    case SOCK_SEQPACKET:
        return "seqpacket";
    }
    return "other";
}

static const char *state_name(int st, char *buf, size_t size)
{
    switch (st) {
    case UDS_DIAG_LISTENING:
        return "listening";
    case UDS_DIAG_CONNECTED:
        return "connected";
    case UDS_DIAG_UNCONNECTED:
        return "unconnected";
    case UDS_DIAG_CONNECTING:
        return "connecting";
    }
    snprintf(buf, size, "state%d", st);
    return buf;
}

static int is_abstract(const uds_diag_sock *s) { return s->name_len > 0 && s->name[0] == 0; }

/* The name as text: "@" + escaped abstract name, the escaped path, or
   "(unnamed)". */
static const char *name_text(const uds_diag_sock *s, char *buf, size_t size)
{
    if (!s->name_len) {
        snprintf(buf, size, "(unnamed)");
        return buf;
    }
    if (is_abstract(s)) {
        buf[0] = '@';
        cli_esc(s->name + 1, s->name_len - 1, buf + 1, size - 1);
        return buf;
    }
    return cli_esc(s->name, s->name_len, buf, size);
}

/* Does the socket file st belong to socket s (UNIX_DIAG_VFS)? The kernel
   sends 32 bits of the inode number. */
static int vfs_match(const uds_diag_sock *s, const struct stat *st)
{
    return (s->have & UDS_DIAG_HAVE_VFS) && s->vfs_dev == st->st_dev &&
           s->vfs_ino == (uint32_t)st->st_ino;
}

/* A socket that makes its file live: listening, or a bound datagram
   socket (accepted connections carry the file too, but do not count). */
static int serves_file(const uds_diag_sock *s)
{
    return s->state == UDS_DIAG_LISTENING ||
           (s->type == SOCK_DGRAM && (s->have & UDS_DIAG_HAVE_VFS));
}

static const char *user_name(uid_t uid, char *buf, size_t size)
{
    struct passwd *pw = getpwuid(uid);
    if (pw && pw->pw_name)
        return esc_cell(pw->pw_name, strlen(pw->pw_name), buf, size);
    snprintf(buf, size, "%u", (unsigned)uid);
    return buf;
}

static const char *group_name(gid_t gid, char *buf, size_t size)
{
    struct group *gr = getgrgid(gid);
    if (gr && gr->gr_name)
        return esc_cell(gr->gr_name, strlen(gr->gr_name), buf, size);
    snprintf(buf, size, "%u", (unsigned)gid);
    return buf;
}

/* ---- a text table -------------------------------------------------------- */

typedef struct table {
    int ncol;
    char **cell; /* rows * ncol, owned */
    size_t rows, cap;
} table;

static void t_row(table *t, char **cells)
{
    if (t->rows == t->cap) {
        t->cap = t->cap ? t->cap * 2 : 64;
        t->cell = xrealloc(t->cell, t->cap * (size_t)t->ncol, sizeof(char *));
    }
    for (int i = 0; i < t->ncol; i++)
        t->cell[t->rows * (size_t)t->ncol + (size_t)i] = cells[i];
    t->rows++;
}

static char *xstrdup(const char *s)
{
    char *p = strdup(s);
    if (!p)
        cli_die(CLI_FAIL, "ls: out of memory");
    return p;
}

/* Prints the table, columns padded to their widest cell, the last one
   (the name) not padded; frees it. */
static void t_print(table *t, const char *const *head)
{
    size_t w[16] = {0};
    for (int c = 0; c < t->ncol; c++) {
        w[c] = strlen(head[c]);
        for (size_t r = 0; r < t->rows; r++) {
            size_t n = strlen(t->cell[r * (size_t)t->ncol + (size_t)c]);
            if (n > w[c])
                w[c] = n;
        }
    }
    for (int c = 0; c < t->ncol; c++)
        if (c + 1 < t->ncol)
            printf("%-*s  ", (int)w[c], head[c]);
        else
            printf("%s\n", head[c]);
    for (size_t r = 0; r < t->rows; r++)
        for (int c = 0; c < t->ncol; c++) {
            char *s = t->cell[r * (size_t)t->ncol + (size_t)c];
            if (c + 1 < t->ncol)
                printf("%-*s  ", (int)w[c], s);
            else
                printf("%s\n", s);
            free(s);
        }
    free(t->cell);
}

static char *fmt(const char *f, ...) __attribute__((format(printf, 1, 2)));
static char *fmt(const char *f, ...)
{
    char *s;
    va_list ap;
    va_start(ap, f);
    int n = vasprintf(&s, f, ap);
    va_end(ap);
    if (n < 0)
        cli_die(CLI_FAIL, "ls: out of memory");
    return s;
}

/* ---- the machine-wide listing ------------------------------------------- */

/* What we know of the file at a path socket's name: 1 it is this socket's
   (st filled), 0 the name leads elsewhere or nowhere (unlinked), -1 cannot
   tell (a relative name, no permission). */
static int name_file(const uds_diag_sock *s, struct stat *st)
{
    if (!s->name_len || is_abstract(s) || !(s->have & UDS_DIAG_HAVE_VFS))
        return -1;
    if (s->name[0] != '/')
        return -1;
    if (lstat(s->name, st) < 0)
        return errno == ENOENT || errno == ENOTDIR ? 0 : -1;
    return S_ISSOCK(st->st_mode) && vfs_match(s, st);
}

static int by_name(const void *a, const void *b)
{
    const uds_diag_sock *x = *(const uds_diag_sock *const *)a, *y = *(const uds_diag_sock *const *)b;
    if (!x->name_len != !y->name_len)
        return x->name_len ? -1 : 1;
    size_t n = x->name_len < y->name_len ? x->name_len : y->name_len;
    int c = n ? memcmp(x->name, y->name, n) : 0;
    if (c)
        return c;
    if (x->name_len != y->name_len)
        return x->name_len < y->name_len ? -1 : 1;
    int lx = x->state == UDS_DIAG_LISTENING, ly = y->state == UDS_DIAG_LISTENING;
    if (lx != ly)
        return ly - lx;
    return x->ino < y->ino ? -1 : x->ino > y->ino;
}

static void json_sock(FILE *f, const uds_diag_sock *s, const procs *ps, const struct stat *st,
                      int file)
{
    char sb[32];
    fprintf(f, "{\"kind\": \"%s\", ", !s->name_len ? "unnamed" : is_abstract(s) ? "abstract" : "path");
    if (s->name_len)
        json_bytes(f, "name", s->name + is_abstract(s), s->name_len - (size_t)is_abstract(s));
    else
        fputs("\"name\": null, \"name_hex\": null", f);
    fprintf(f, ", \"type\": \"%s\", \"state\": \"%s\", \"inode\": %llu", type_name(s->type),
            state_name(s->state, sb, sizeof(sb)), (unsigned long long)s->ino);
    if (s->have & UDS_DIAG_HAVE_UID)
        fprintf(f, ", \"uid\": %u", (unsigned)s->uid);
    else
        fputs(", \"uid\": null", f);
    if (s->have & UDS_DIAG_HAVE_RQLEN)
        fprintf(f, ", \"rqueue\": %u, \"wqueue\": %u", (unsigned)s->rqueue, (unsigned)s->wqueue);
    else
        fputs(", \"rqueue\": null, \"wqueue\": null", f);
    if (s->have & UDS_DIAG_HAVE_ICONS)
        fprintf(f, ", \"pending\": %zu", s->n_icons);
    else
        fputs(", \"pending\": null", f);
    fputs(", ", f);
    procs_json(f, "processes", ps, s->ino);
    if (s->peer)
        fprintf(f, ", \"peer\": %llu, ", (unsigned long long)s->peer);
    else
        fputs(", \"peer\": null, ", f);
    procs_json(f, "peer_processes", ps, s->peer);
    fprintf(f, ", \"file\": %s", file == 1 ? "\"ok\"" : file == 0 ? "\"unlinked\"" : "null");
    if (file == 1)
        fprintf(f, ", \"mode\": \"%04o\", \"owner_uid\": %u, \"owner_gid\": %u}",
                (unsigned)(st->st_mode & 07777), (unsigned)st->st_uid, (unsigned)st->st_gid);
    else
        fputs(", \"mode\": null, \"owner_uid\": null, \"owner_gid\": null}", f);
}

static int list_all(int all, int only_listen, int json)
{
    socks s;
    load_socks(&s);
    if (!s.ok)
        cli_die(CLI_FAIL,
                "ls: %s; not falling back to /proc/net/unix, whose names can forge entries",
                unavailable_text());
    procs ps;
    scan_procs(&ps);
    const uds_diag_sock **v = xrealloc(NULL, s.l.count ? s.l.count : 1, sizeof(*v));
    size_t n = 0;
    for (size_t i = 0; i < s.l.count; i++) {
        const uds_diag_sock *x = &s.l.socks[i];
        if ((!all && !x->name_len) || (only_listen && x->state != UDS_DIAG_LISTENING))
            continue;
        v[n++] = x;
    }
    qsort(v, n, sizeof(*v), by_name);
    if (json) {
        fputs("[", stdout);
        for (size_t i = 0; i < n; i++) {
            struct stat st;
            int file = name_file(v[i], &st);
            fputs(i ? ",\n  " : "\n  ", stdout);
            json_sock(stdout, v[i], &ps, &st, file);
        }
        fputs(n ? "\n]\n" : "]\n", stdout);
    } else {
        static const char *const head[] = {"TYPE", "STATE", "RECV-Q", "INODE", "UID", "PROCESS",
                                           "PEER", "PEER-PROCESS", "MODE", "OWNER", "NAME"};
        table t = {11, NULL, 0, 0};
        for (size_t i = 0; i < n; i++) {
            const uds_diag_sock *x = v[i];
            struct stat st;
            int file = name_file(x, &st);
            char sb[32], name[ESC_MAX], un[ESC_MAX], gn[ESC_MAX];
            char *c[11];
            c[0] = xstrdup(type_name(x->type));
            c[1] = xstrdup(state_name(x->state, sb, sizeof(sb)));
            c[2] = x->have & UDS_DIAG_HAVE_RQLEN ? fmt("%u", (unsigned)x->rqueue) : xstrdup("-");
            c[3] = fmt("%llu", (unsigned long long)x->ino);
            c[4] = x->have & UDS_DIAG_HAVE_UID ? fmt("%u", (unsigned)x->uid) : xstrdup("-");
            c[5] = procs_cell(&ps, x->ino);
            c[6] = x->peer ? fmt("%llu", (unsigned long long)x->peer) : xstrdup("-");
            c[7] = x->peer ? procs_cell(&ps, x->peer) : xstrdup("-");
            c[8] = file == 1 ? fmt("%04o", (unsigned)(st.st_mode & 07777))
                             : xstrdup(file == 0 ? "unlinked" : "-");
            c[9] = file == 1 ? fmt("%s:%s", user_name(st.st_uid, un, sizeof(un)),
                                   group_name(st.st_gid, gn, sizeof(gn)))
                             : xstrdup("-");
            c[10] = xstrdup(name_text(x, name, sizeof(name)));
            t_row(&t, c);
        }
        t_print(&t, head);
    }
    free(v);
    procs_free(&ps);
    socks_free(&s);
    return CLI_OK;
}

/* ---- DIR: the socket files ---------------------------------------------- */

typedef struct sfile {
    char *path; /* display path (DIR as given, resolved, + names) */
    size_t len;
    struct stat st;
} sfile;

typedef struct walk {
    sfile *v;
    size_t n, cap;
    int maxdepth;
    size_t visited;
    int failed; /* a subdirectory could not be read */
} walk;

/* Walks the directory open at dfd (shown as `path`) for socket files,
   through directory fds only (openat O_NOFOLLOW, fstatat
   AT_SYMLINK_NOFOLLOW): no symlink is followed, no path looked up again. */
static void walk_dir(walk *w, int dfd, const char *path, int depth)
{
    DIR *d = fdopendir(dfd);
    if (!d) {
        close(dfd);
        return;
    }
    size_t plen = strlen(path);
    struct dirent *de;
    while ((de = readdir(d)) && w->visited < WALK_MAX_ENTRIES) {
        w->visited++;
        if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
            continue;
        struct stat st;
        if (fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0)
            continue; /* gone meanwhile */
        if (!S_ISSOCK(st.st_mode) && !(S_ISDIR(st.st_mode) && depth < w->maxdepth))
            continue;
        char *full = fmt("%s%s%s", path, plen && path[plen - 1] == '/' ? "" : "/", de->d_name);
        if (S_ISSOCK(st.st_mode)) {
            if (w->n == w->cap) {
                w->cap = w->cap ? w->cap * 2 : 64;
                w->v = xrealloc(w->v, w->cap, sizeof(sfile));
            }
            w->v[w->n].path = full;
            w->v[w->n].len = strlen(full);
            w->v[w->n].st = st;
            w->n++;
            continue;
        }
        int sub = openat(dirfd(d), de->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (sub >= 0) {
            walk_dir(w, sub, full, depth + 1);
        } else if (errno != ENOENT && errno != ELOOP && errno != ENOTDIR) {
            char e[ESC_MAX];
            cli_warn("ls %s: %s", cli_esc(full, strlen(full), e, sizeof(e)), strerror(errno));
            w->failed = 1;
        }
        free(full);
    }
    closedir(d);
}

static int by_sfile(const void *a, const void *b)
{
    return strcmp(((const sfile *)a)->path, ((const sfile *)b)->path);
}

/* What the kernel says of one socket file: the socket serving it (or the
   bound-but-not-listening one), and how many accepted connections carry
   it. Returns "live", "bound", "stale" or "unknown". */
static const char *file_state(const socks *s, const struct stat *st, const uds_diag_sock **srv,
                              size_t *conns)
{
    *srv = NULL;
    *conns = 0;
    if (!s->ok)
        return "unknown";
    const uds_diag_sock *bound = NULL;
    for (size_t i = 0; i < s->l.count; i++) {
        const uds_diag_sock *x = &s->l.socks[i];
        if (!vfs_match(x, st))
            continue;
        if (serves_file(x))
            *srv = x;
        else if (x->state == UDS_DIAG_CONNECTED)
            (*conns)++;
        else
            bound = x;
    }
    if (*srv)
        return "live";
    if (bound) {
        *srv = bound;
        return "bound";
    }
    return "stale";
}

static void json_file(FILE *f, const sfile *sf, const char *state, const uds_diag_sock *srv,
                      size_t conns, const procs *ps)
{
    fputs("{", f);
    json_bytes(f, "path", sf->path, sf->len);
    fprintf(f, ", \"state\": \"%s\", \"type\": ", state);
    if (srv)
        fprintf(f, "\"%s\", \"inode\": %llu", type_name(srv->type), (unsigned long long)srv->ino);
    else
        fputs("null, \"inode\": null", f);
    fprintf(f, ", \"mode\": \"%04o\", \"owner_uid\": %u, \"owner_gid\": %u",
            (unsigned)(sf->st.st_mode & 07777), (unsigned)sf->st.st_uid, (unsigned)sf->st.st_gid);
    if (srv && (srv->have & UDS_DIAG_HAVE_ICONS))
        fprintf(f, ", \"pending\": %zu", srv->n_icons);
    else
        fputs(", \"pending\": null", f);
    if (srv)
        fprintf(f, ", \"connections\": %zu, ", conns);
    else
        fputs(", \"connections\": null, ", f);
    procs_json(f, "processes", ps, srv ? srv->ino : 0);
    fputs("}", f);
}

/* The listeners named under dir (absolute names) whose file is gone or
   belongs to another socket now: reachable by nobody through that path. */
static int unlinked_under(const uds_diag_sock *x, const char *dir)
{
    if (!serves_file(x) || !x->name_len || is_abstract(x) || x->name[0] != '/')
        return 0;
    size_t n = strlen(dir);
    while (n > 1 && dir[n - 1] == '/')
        n--;
    if (n == 1 && dir[0] == '/')
        n = 0;
    if (x->name_len <= n || memcmp(x->name, dir, n) || x->name[n] != '/')
        return 0;
    struct stat st;
    return name_file(x, &st) == 0;
}

static int list_dir(const char *arg, const char *dir, int dfd, int only_listen, int json, int depth)
{
    socks s;
    load_socks(&s);
    if (!s.ok)
        cli_warn("ls: %s; live or stale cannot be told (a listing never connects): state unknown",
                 unavailable_text());
    walk w = {0};
    w.maxdepth = depth;
    walk_dir(&w, dfd, dir, 0);
    if (w.n)
        qsort(w.v, w.n, sizeof(sfile), by_sfile);
    procs ps;
    if (s.ok)
        scan_procs(&ps);
    else
        memset(&ps, 0, sizeof(ps));
    const uds_diag_sock **unl = xrealloc(NULL, s.l.count ? s.l.count : 1, sizeof(*unl));
    size_t nunl = 0;
    for (size_t i = 0; s.ok && i < s.l.count; i++)
        if (unlinked_under(&s.l.socks[i], dir))
            unl[nunl++] = &s.l.socks[i];
    qsort(unl, nunl, sizeof(*unl), by_name);

    static const char *const head[] = {"STATE", "TYPE",  "MODE",    "OWNER",  "PENDING",
                                       "CONNS", "INODE", "PROCESS", "PATH"};
    table t = {9, NULL, 0, 0};
    if (json)
        fputs("[", stdout);
    size_t rows = 0;
    for (size_t i = 0; i < w.n; i++) {
        const sfile *sf = &w.v[i];
        const uds_diag_sock *srv;
        size_t conns;
        const char *state = file_state(&s, &sf->st, &srv, &conns);
        if (only_listen && strcmp(state, "live"))
            continue;
        if (json) {
            fputs(rows++ ? ",\n  " : "\n  ", stdout);
            json_file(stdout, sf, state, srv, conns, &ps);
            continue;
        }
        char un[ESC_MAX], gn[ESC_MAX], pe[ESC_MAX];
        char *c[9];
        c[0] = xstrdup(state);
        c[1] = xstrdup(srv ? type_name(srv->type) : "-");
        c[2] = fmt("%04o", (unsigned)(sf->st.st_mode & 07777));
        c[3] = fmt("%s:%s", user_name(sf->st.st_uid, un, sizeof(un)),
                   group_name(sf->st.st_gid, gn, sizeof(gn)));
        c[4] = srv && (srv->have & UDS_DIAG_HAVE_ICONS) ? fmt("%zu", srv->n_icons) : xstrdup("-");
        c[5] = srv ? fmt("%zu", conns) : xstrdup("-");
        c[6] = srv ? fmt("%llu", (unsigned long long)srv->ino) : xstrdup("-");
        c[7] = srv ? procs_cell(&ps, srv->ino) : xstrdup("-");
        c[8] = xstrdup(cli_esc(sf->path, sf->len, pe, sizeof(pe)));
        t_row(&t, c);
    }
    for (size_t i = 0; i < nunl; i++) {
        const uds_diag_sock *x = unl[i];
        if (json) {
            fputs(rows++ ? ",\n  " : "\n  ", stdout);
            fputs("{", stdout);
            json_bytes(stdout, "path", x->name, x->name_len);
            fprintf(stdout, ", \"state\": \"unlinked\", \"type\": \"%s\", \"inode\": %llu, "
                            "\"mode\": null, \"owner_uid\": null, \"owner_gid\": null",
                    type_name(x->type), (unsigned long long)x->ino);
            if (x->have & UDS_DIAG_HAVE_ICONS)
                fprintf(stdout, ", \"pending\": %zu", x->n_icons);
            else
                fputs(", \"pending\": null", stdout);
            fputs(", \"connections\": null, ", stdout);
            procs_json(stdout, "processes", &ps, x->ino);
            fputs("}", stdout);
            continue;
        }
        char pe[ESC_MAX];
        char *c[9];
        c[0] = xstrdup("unlinked");
        c[1] = xstrdup(type_name(x->type));
        c[2] = xstrdup("-");
        c[3] = xstrdup("-");
        c[4] = x->have & UDS_DIAG_HAVE_ICONS ? fmt("%zu", x->n_icons) : xstrdup("-");
        c[5] = xstrdup("-");
        c[6] = fmt("%llu", (unsigned long long)x->ino);
        c[7] = procs_cell(&ps, x->ino);
        c[8] = xstrdup(cli_esc(x->name, x->name_len, pe, sizeof(pe)));
        t_row(&t, c);
    }
    if (json)
        fputs(rows ? "\n]\n" : "]\n", stdout);
    else
        t_print(&t, head);
    for (size_t i = 0; i < w.n; i++)
        free(w.v[i].path);
    free(w.v);
    free(unl);
    procs_free(&ps);
    socks_free(&s);
    (void)arg;
    return w.failed ? CLI_FAIL : CLI_OK;
}

/* ---- PATH: one socket file ------------------------------------------------ */

/* "INO held by P" for a detail line. */
static void detail_sock(sbuf *b, const procs *ps, uint64_t ino)
{
    char *p = procs_cell(ps, ino);
    sb_printf(b, "%llu held by %s", (unsigned long long)ino, p);
    free(p);
}

static int show_path(const char *arg, const struct stat *st, int json)
{
    socks s;
    load_socks(&s);
    if (!s.ok)
        cli_warn("ls: %s; live or stale cannot be told (a listing never connects): state unknown",
                 unavailable_text());
    procs ps;
    if (s.ok)
        scan_procs(&ps);
    else
        memset(&ps, 0, sizeof(ps));
    const uds_diag_sock *srv;
    size_t conns;
    const char *state = file_state(&s, st, &srv, &conns);
    /* the accepted connections: connected sockets carrying this file */
    const uds_diag_sock **cv = xrealloc(NULL, conns ? conns : 1, sizeof(*cv));
    size_t nc = 0;
    for (size_t i = 0; s.ok && i < s.l.count && nc < conns; i++) {
        const uds_diag_sock *x = &s.l.socks[i];
        if (vfs_match(x, st) && !serves_file(x) && x->state == UDS_DIAG_CONNECTED)
            cv[nc++] = x;
    }
    size_t alen = strlen(arg);
    if (json) {
        fputs("{", stdout);
        json_bytes(stdout, "path", arg, alen);
        fprintf(stdout,
                ", \"state\": \"%s\", \"mode\": \"%04o\", \"owner_uid\": %u, \"owner_gid\": %u, "
                "\"dev\": \"%u:%u\", \"file_inode\": %llu",
                state, (unsigned)(st->st_mode & 07777), (unsigned)st->st_uid, (unsigned)st->st_gid,
                major(st->st_dev), minor(st->st_dev), (unsigned long long)st->st_ino);
        if (srv) {
            fprintf(stdout, ", \"type\": \"%s\", \"inode\": %llu", type_name(srv->type),
                    (unsigned long long)srv->ino);
            if (srv->have & UDS_DIAG_HAVE_UID)
                fprintf(stdout, ", \"uid\": %u", (unsigned)srv->uid);
            else
                fputs(", \"uid\": null", stdout);
            fputs(", ", stdout);
            procs_json(stdout, "processes", &ps, srv->ino);
            if (srv->have & UDS_DIAG_HAVE_ICONS) {
                fprintf(stdout, ", \"backlog\": %u, \"pending\": [", (unsigned)srv->wqueue);
                for (size_t i = 0; i < srv->n_icons; i++) {
                    fprintf(stdout, "%s{\"peer\": %llu, ", i ? ", " : "",
                            (unsigned long long)srv->icons[i]);
                    procs_json(stdout, "peer_processes", &ps, srv->icons[i]);
                    fputs("}", stdout);
                }
                fputs("]", stdout);
            } else {
                fputs(", \"backlog\": null, \"pending\": null", stdout);
            }
        } else {
            fputs(", \"type\": null, \"inode\": null, \"uid\": null, \"processes\": [], "
                  "\"processes_complete\": true, \"backlog\": null, \"pending\": null",
                  stdout);
        }
        fputs(", \"connections\": [", stdout);
        for (size_t i = 0; i < nc; i++) {
            fprintf(stdout, "%s{\"inode\": %llu, ", i ? ", " : "", (unsigned long long)cv[i]->ino);
            procs_json(stdout, "processes", &ps, cv[i]->ino);
            if (cv[i]->peer)
                fprintf(stdout, ", \"peer\": %llu, ", (unsigned long long)cv[i]->peer);
            else
                fputs(", \"peer\": null, ", stdout);
            procs_json(stdout, "peer_processes", &ps, cv[i]->peer);
            fputs("}", stdout);
        }
        fputs("]}\n", stdout);
    } else {
        char pe[ESC_MAX], un[ESC_MAX], gn[ESC_MAX], mode[11];
        static const char rwx[] = "rwxrwxrwx";
        mode[0] = 's';
        for (int i = 0; i < 9; i++)
            mode[i + 1] = st->st_mode & (0400u >> i) ? rwx[i] : '-';
        mode[10] = 0;
        printf("path:        %s\n", cli_esc(arg, alen, pe, sizeof(pe)));
        printf("state:       %s\n", state);
        printf("mode:        %04o %s\n", (unsigned)(st->st_mode & 07777), mode);
        printf("owner:       %s (%u)\n", user_name(st->st_uid, un, sizeof(un)), (unsigned)st->st_uid);
        printf("group:       %s (%u)\n", group_name(st->st_gid, gn, sizeof(gn)), (unsigned)st->st_gid);
        printf("file:        device %u:%u inode %llu\n", major(st->st_dev), minor(st->st_dev),
               (unsigned long long)st->st_ino);
        if (srv) {
            sbuf b = {0};
            detail_sock(&b, &ps, srv->ino);
            char *line = sb_take(&b);
            printf("type:        %s\n", type_name(srv->type));
            printf("socket:      %s\n", line);
            free(line);
            if (srv->have & UDS_DIAG_HAVE_UID)
                printf("socket-uid:  %u\n", (unsigned)srv->uid);
            if (srv->have & UDS_DIAG_HAVE_ICONS) {
                printf("backlog:     %u\n", (unsigned)srv->wqueue);
                printf("pending:     %zu\n", srv->n_icons);
                for (size_t i = 0; i < srv->n_icons; i++) {
                    detail_sock(&b, &ps, srv->icons[i]);
                    line = sb_take(&b);
                    printf("waiting:     client %s\n", line);
                    free(line);
                }
            }
            printf("connections: %zu\n", nc);
            for (size_t i = 0; i < nc; i++) {
                detail_sock(&b, &ps, cv[i]->ino);
                sb_printf(&b, ", peer ");
                if (cv[i]->peer)
                    detail_sock(&b, &ps, cv[i]->peer);
                else
                    sb_printf(&b, "-");
                line = sb_take(&b);
                printf("connection:  %s\n", line);
                free(line);
            }
        }
    }
    free(cv);
    procs_free(&ps);
    socks_free(&s);
    return CLI_OK;
}

/* ---- the command ---------------------------------------------------------- */

static void usage(FILE *f)
{
    fprintf(f, "usage: udsock ls [OPTIONS] [DIR|PATH]\n"
               "List the unix sockets of this machine (this network namespace): type, state,\n"
               "receive queue, inode, uid, every process holding it, the peer and its\n"
               "processes, and for path sockets the file's mode and owner. From the kernel's\n"
               "sock_diag and /proc/*/fd; nothing ever connects to a socket.\n"
               "With DIR: the socket files under DIR (symlinks not followed), each 'live'\n"
               "(a listening or bound datagram socket owns it), 'bound' (bound, not listening),\n"
               "'stale' (nobody), or 'unknown' (sock_diag unavailable); 'unlinked' rows are\n"
               "listeners named under DIR whose file is gone or replaced. Nothing is removed.\n"
               "With PATH (a socket file): its details, pending and accepted connections.\n"
               "\noptions:\n"
               "  -a, --all        include unnamed sockets (socketpairs, clients)\n"
               "  -l, --listening  only listening sockets (with DIR: only live files)\n"
               "  --depth N        how deep to walk DIR (default 8)\n"
               "  --json           JSON instead of a table (exact bytes: see udsock(1))\n"
               "  -h, --help       this text\n"
               "A process whose fds cannot be read (another user's, unless root) is counted:\n"
               "a socket no readable process holds then shows '?', not '-'.\n");
}

int cmd_ls(int argc, char **argv)
{
    int all = 0, only_listen = 0, json = 0, depth = 8;
    enum { O_JSON = 256, O_DEPTH };
    static const struct option longopts[] = {
        {"help", no_argument, NULL, 'h'},  {"all", no_argument, NULL, 'a'},
        {"listening", no_argument, NULL, 'l'}, {"json", no_argument, NULL, O_JSON},
        {"depth", required_argument, NULL, O_DEPTH}, {NULL, 0, NULL, 0},
    };
    optind = 0;
    opterr = 0; /* our own message, naming udsock and the subcommand */
    int opt;
    while ((opt = getopt_long(argc, argv, "hal", longopts, NULL)) != -1) {
        char *end;
        switch (opt) {
        case 'h':
            usage(stdout);
            return CLI_OK;
        case 'a':
            all = 1;
            break;
        case 'l':
            only_listen = 1;
            break;
        case O_JSON:
            json = 1;
            break;
        case O_DEPTH:
            depth = (int)strtol(optarg, &end, 10);
            if (!cli_is_decimal(optarg) || *end || depth < 0 || depth > 64)
                cli_die(CLI_USAGE, "ls: bad --depth '%s' (0..64)", optarg);
            break;
        default:
            if (optopt > 0 && optopt < 128)
                cli_warn("ls: option '-%c' is unknown or needs a value (try 'udsock ls --help')", optopt);
            else
                cli_warn("ls: option '%s' is unknown or needs a value (try 'udsock ls --help')",
                         argv[optind - 1]);
            return CLI_USAGE;
        }
    }
    if (argc - optind > 1) {
        usage(stderr);
        return CLI_USAGE;
    }
    if (cli_parse_only) /* fuzz seam (cli.h): options parsed, no I/O yet */
        return CLI_OK;
    if (optind == argc)
        return list_all(all, only_listen, json);

    const char *arg = argv[optind];
    char ea[ESC_MAX];
    cli_esc(arg, strlen(arg), ea, sizeof(ea));
    struct stat st;
    if (stat(arg, &st) < 0)
        cli_die(CLI_FAIL, "ls %s: %s", ea, strerror(errno));
    if (S_ISSOCK(st.st_mode))
        return show_path(arg, &st, json);
    if (!S_ISDIR(st.st_mode))
        cli_die(CLI_USAGE, "ls %s: not a directory or a socket", ea);
    /* open it first: an unreadable DIR is an error, never an empty table */
    int dfd = open(arg, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0)
        cli_die(CLI_FAIL, "ls %s: %s", ea, strerror(errno));
    char *dir = realpath(arg, NULL);
    if (!dir) {
        int e = errno;
        close(dfd);
        cli_die(CLI_FAIL, "ls %s: %s", ea, strerror(e));
    }
    /* readdir itself may still be refused (a directory with r but not x,
       or an LSM): look once before printing anything */
    struct stat dst;
    if (fstat(dfd, &dst) < 0 || faccessat(dfd, ".", R_OK | X_OK, AT_EACCESS) < 0) {
        int e = errno;
        close(dfd);
        free(dir);
        cli_die(CLI_FAIL, "ls %s: %s", ea, strerror(e));
    }
    int rc = list_dir(arg, dir, dfd, only_listen, json, depth);
    free(dir);
    return rc;
}
