/*
 * cmd_ls.c — `udsock ls [DIR]`: the Unix sockets of this machine with their
 * owners, and stale socket files under DIR.
 *
 * Sources:
 *   /proc/net/unix   inode, type, state, flags (__SO_ACCEPTCON = listening)
 *                    and the bound name of every unix socket in this network
 *                    namespace (an accepted socket shows its listener's name);
 *   /proc/PID/fd/N   "socket:[INODE]" links: which process holds which socket
 *                    (the lowest pid wins when several share one); comm and
 *                    the real uid from /proc/PID/comm and /proc/PID/status.
 *                    Other users' processes are unreadable unless we are
 *                    root; they are skipped without a message.
 * Stale files (with DIR): a socket file is live if a listening (or bound
 * datagram) socket with exactly that path is in /proc/net/unix; otherwise a
 * non-blocking connect() probe decides: ECONNREFUSED means nobody is bound
 * there, i.e. stale. The probe covers paths bound relative to another
 * directory and servers in other network namespaces. Nothing is removed.
 */
#include "cli.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#define SO_ACCEPTCON_FLAG 0x10000 /* __SO_ACCEPTCON in /proc/net/unix Flags */
#define WALK_MAX_ENTRIES 200000   /* bound on the DIR walk */

typedef struct ent {
    unsigned long ino;
    int type;      /* SOCK_STREAM... or 0 = unknown */
    int st;        /* socket state from /proc (1 unconnected, 3 connected...) */
    int listening;
    char *path;    /* NULL = unnamed */
    long pid;      /* 0 = unknown */
    long uid;      /* -1 = unknown */
    char comm[32];
    int stale;     /* a socket file nobody is bound to (DIR walk) */
    int probed_live; /* a file found live by the connect probe only */
} ent;

typedef struct list {
    ent *v;
    size_t n, cap;
} list;

static void usage(FILE *f)
{
    fprintf(f, "usage: udsock ls [OPTIONS] [DIR]\n"
               "List the Unix domain sockets of this machine: name (path or @abstract), type,\n"
               "state, owning pid, command and uid (from /proc/net/unix and /proc/*/fd).\n"
               "With DIR: only sockets under DIR, and the socket files found there (symlinks\n"
               "not followed); a file nobody is bound to is marked 'stale' (never removed).\n"
               "\noptions:\n"
               "  -a, --all        include unnamed sockets (socketpairs, clients)\n"
               "  -l, --listening  only listening sockets (and stale files)\n"
               "  --depth N        how deep to walk DIR (default 8)\n"
               "  --json           JSON array instead of a table\n"
               "  -h, --help       this text\n"
               "Processes of other users are shown only when /proc lets us read them.\n");
}

static ent *push(list *l)
{
    if (l->n == l->cap) {
        size_t nc = l->cap ? l->cap * 2 : 256;
        ent *p = realloc(l->v, nc * sizeof(*p));
        if (!p)
            cli_die(CLI_FAIL, "ls: out of memory");
        l->v = p;
        l->cap = nc;
    }
    ent *e = &l->v[l->n++];
    memset(e, 0, sizeof(*e));
    e->uid = -1;
    return e;
}

/* Reads /proc/net/unix into l. Returns 0 or -errno. */
static int read_net_unix(list *l)
{
    FILE *f = fopen("/proc/net/unix", "re");
    if (!f)
        return -errno;
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    int first = 1;
    while ((len = getline(&line, &cap, f)) > 0) {
        if (first) { /* header */
            first = 0;
            continue;
        }
        if (line[len - 1] == '\n')
            line[--len] = 0;
        unsigned flags, type, st;
        unsigned long ino;
        int off = 0;
        if (sscanf(line, "%*s %*x %*x %x %x %x %lu%n", &flags, &type, &st, &ino, &off) != 4)
            continue;
        ent *e = push(l);
        e->ino = ino;
        e->type = (int)type;
        e->st = (int)st;
        e->listening = (flags & SO_ACCEPTCON_FLAG) != 0;
        if (line[off] == ' ' && line[off + 1]) {
            e->path = strdup(line + off + 1);
            if (!e->path)
                cli_die(CLI_FAIL, "ls: out of memory");
        }
    }
    free(line);
    fclose(f);
    return 0;
}

static int by_ino(const void *a, const void *b)
{
    const ent *x = a, *y = b;
    return x->ino < y->ino ? -1 : x->ino > y->ino;
}

static void proc_info(long pid, char *comm, size_t commlen, long *uid)
{
    char p[64];
    snprintf(p, sizeof(p), "/proc/%ld/comm", pid);
    comm[0] = 0;
    FILE *f = fopen(p, "re");
    if (f) {
        if (fgets(comm, (int)commlen, f))
            comm[strcspn(comm, "\n")] = 0;
        fclose(f);
    }
    snprintf(p, sizeof(p), "/proc/%ld/status", pid);
    *uid = -1;
    f = fopen(p, "re");
    if (f) {
        char line[256];
        while (fgets(line, sizeof(line), f))
            if (!strncmp(line, "Uid:", 4)) {
                *uid = strtol(line + 4, NULL, 10);
                break;
            }
        fclose(f);
    }
}

/* Fills pid/comm/uid of every entry held by a process we may look at. */
static void join_fds(list *l)
{
    qsort(l->v, l->n, sizeof(ent), by_ino);
    DIR *proc = opendir("/proc");
    if (!proc)
        return;
    struct dirent *de;
    while ((de = readdir(proc))) {
        if (!isdigit((unsigned char)de->d_name[0]))
            continue;
        long pid = strtol(de->d_name, NULL, 10);
        char p[64];
        snprintf(p, sizeof(p), "/proc/%ld/fd", pid);
        int dfd = open(p, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dfd < 0)
            continue; /* another user's process, or gone: skipped */
        DIR *fds = fdopendir(dfd);
        if (!fds) {
            close(dfd);
            continue;
        }
        int have_info = 0;
        char comm[32];
        long uid = -1;
        struct dirent *fe;
        while ((fe = readdir(fds))) {
            if (fe->d_name[0] == '.')
                continue;
            char link[64];
            ssize_t n = readlinkat(dirfd(fds), fe->d_name, link, sizeof(link) - 1);
            if (n <= 8 || strncmp(link, "socket:[", 8))
                continue;
            link[n] = 0;
            ent key;
            key.ino = strtoul(link + 8, NULL, 10);
            ent *e = bsearch(&key, l->v, l->n, sizeof(ent), by_ino);
            if (!e || e->pid)
                continue;
            if (!have_info) {
                proc_info(pid, comm, sizeof(comm), &uid);
                have_info = 1;
            }
            e->pid = pid;
            e->uid = uid;
            snprintf(e->comm, sizeof(e->comm), "%s", comm);
        }
        closedir(fds);
    }
    closedir(proc);
}

/*
 * Is someone bound at this socket file? 1 live, 0 stale (ECONNREFUSED),
 * -1 unknown (no permission, path too long...). Tries stream, then
 * seqpacket, then datagram, because a connect of the wrong type says
 * EPROTOTYPE and tells nothing else.
 */
static int probe(const char *path)
{
    struct sockaddr_un un;
    memset(&un, 0, sizeof(un));
    un.sun_family = AF_UNIX;
    size_t len = strlen(path);
    if (len >= sizeof(un.sun_path))
        return -1;
    memcpy(un.sun_path, path, len);
    static const int types[] = {SOCK_STREAM, SOCK_SEQPACKET, SOCK_DGRAM};
    for (size_t i = 0; i < 3; i++) {
        int fd = socket(AF_UNIX, types[i] | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (fd < 0)
            return -1;
        int r = connect(fd, (struct sockaddr *)&un, (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len + 1));
        int e = errno;
        close(fd);
        if (r == 0 || e == EAGAIN || e == EINPROGRESS)
            return 1;
        if (e == ECONNREFUSED)
            return 0;
        if (e != EPROTOTYPE)
            return -1;
    }
    return -1;
}

typedef struct walk {
    list *files; /* socket files found: path only */
    int maxdepth;
    size_t visited;
} walk;

/* Walks dir (an open fd for `path`) for socket files, without following
   symlinks, at most w->maxdepth levels deep. */
static void walk_dir(walk *w, int dfd, const char *path, int depth)
{
    DIR *d = fdopendir(dfd);
    if (!d) {
        close(dfd);
        return;
    }
    struct dirent *de;
    while ((de = readdir(d)) && w->visited < WALK_MAX_ENTRIES) {
        w->visited++;
        if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
            continue;
        struct stat st;
        if (fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0)
            continue;
        char *full;
        if (asprintf(&full, "%s%s%s", path, path[strlen(path) - 1] == '/' ? "" : "/",
                     de->d_name) < 0)
            cli_die(CLI_FAIL, "ls: out of memory");
        if (S_ISSOCK(st.st_mode)) {
            ent *e = push(w->files);
            e->path = full;
            e->ino = (unsigned long)st.st_ino;
            continue;
        }
        if (S_ISDIR(st.st_mode) && depth < w->maxdepth) {
            int sub = openat(dirfd(d), de->d_name,
                             O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
            if (sub >= 0)
                walk_dir(w, sub, full, depth + 1);
        }
        free(full);
    }
    closedir(d);
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
    case 0:
        return "-";
    }
    return "other";
}

static const char *state_name(const ent *e)
{
    if (e->stale)
        return "stale";
    if (e->listening)
        return "listening";
    if (e->probed_live)
        return "live";
    switch (e->st) {
    case 1:
        return "unconnected";
    case 2:
        return "connecting";
    case 3:
        return "connected";
    case 4:
        return "disconnecting";
    }
    return "unknown";
}

/* Valid UTF-8? Then high bytes may go into JSON as they are. */
static int utf8_ok(const unsigned char *s)
{
    while (*s) {
        int n = *s < 0x80 ? 0 : (*s & 0xe0) == 0xc0 ? 1 : (*s & 0xf0) == 0xe0 ? 2
                           : (*s & 0xf8) == 0xf0 ? 3 : -1;
        if (n < 0)
            return 0;
        s++;
        for (int i = 0; i < n; i++, s++)
            if ((*s & 0xc0) != 0x80)
                return 0;
    }
    return 1;
}

static void json_str(FILE *f, const char *s)
{
    if (!s) {
        fputs("null", f);
        return;
    }
    int raw_high = utf8_ok((const unsigned char *)s);
    fputc('"', f);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == '"' || *p == '\\')
            fprintf(f, "\\%c", *p);
        else if (*p < 0x20 || *p == 0x7f || (*p >= 0x80 && !raw_high))
            fprintf(f, "\\u%04x", *p);
        else
            fputc(*p, f);
    }
    fputc('"', f);
}

static int by_path(const void *a, const void *b)
{
    const ent *x = a, *y = b;
    int c = strcmp(x->path ? x->path : "\x7f", y->path ? y->path : "\x7f");
    if (c)
        return c;
    if (x->listening != y->listening)
        return y->listening - x->listening;
    return x->ino < y->ino ? -1 : x->ino > y->ino;
}

/* Is path inside dir ("dir" itself or "dir/...")? */
static int under(const char *path, const char *dir)
{
    size_t n = strlen(dir);
    if (n > 1 && dir[n - 1] == '/')
        n--;
    return path[0] == '/' && !strncmp(path, dir, n) && (path[n] == '/' || (n == 1 && dir[0] == '/'));
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
            if (!*optarg || *end || depth < 0 || depth > 64)
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
    char *dir = NULL;
    if (optind < argc) {
        dir = realpath(argv[optind], NULL);
        struct stat st;
        if (!dir || stat(dir, &st) < 0)
            cli_die(CLI_FAIL, "ls: %s: %s", argv[optind], strerror(errno));
        if (!S_ISDIR(st.st_mode))
            cli_die(CLI_USAGE, "ls: %s: not a directory", argv[optind]);
    }

    list l = {0};
    int r = read_net_unix(&l);
    if (r < 0)
        cli_die(CLI_FAIL, "ls: /proc/net/unix: %s (is /proc mounted?)", strerror(-r));
    join_fds(&l);

    list out = {0};
    for (size_t i = 0; i < l.n; i++) {
        ent *e = &l.v[i];
        if (!all && !e->path)
            continue;
        if (only_listen && !e->listening)
            continue;
        if (dir && (!e->path || !under(e->path, dir)))
            continue;
        *push(&out) = *e;
        e->path = NULL; /* moved */
    }
    if (dir) {
        list files = {0};
        walk w = {&files, depth, 0};
        int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dfd >= 0)
            walk_dir(&w, dfd, dir, 0);
        for (size_t i = 0; i < files.n; i++) {
            ent *f = &files.v[i];
            int bound = 0;
            for (size_t j = 0; j < l.n + out.n && !bound; j++) {
                const ent *e = j < out.n ? &out.v[j] : &l.v[j - out.n];
                bound = e->path && (e->listening || e->type == SOCK_DGRAM) &&
                        !strcmp(e->path, f->path);
            }
            if (!bound) {
                int p = probe(f->path);
                if (p <= 0 || !only_listen) {
                    ent *n = push(&out);
                    n->path = f->path;
                    f->path = NULL;
                    n->stale = p == 0;
                    n->probed_live = p == 1;
                    n->st = p < 0 ? -1 : 0;
                }
            }
            free(f->path);
        }
        free(files.v);
    }
    qsort(out.v, out.n, sizeof(ent), by_path);

    if (json) {
        fputs("[", stdout);
        for (size_t i = 0; i < out.n; i++) {
            const ent *e = &out.v[i];
            fputs(i ? ",\n  {" : "\n  {", stdout);
            fputs("\"path\": ", stdout);
            json_str(stdout, e->path && e->path[0] != '@' ? e->path : NULL);
            fputs(", \"abstract\": ", stdout);
            json_str(stdout, e->path && e->path[0] == '@' ? e->path + 1 : NULL);
            fputs(", \"type\": ", stdout);
            json_str(stdout, e->type ? type_name(e->type) : NULL);
            printf(", \"state\": \"%s\", \"stale\": %s", state_name(e),
                   e->stale ? "true" : "false");
            if (e->ino && !e->stale && !e->probed_live && e->st >= 0)
                printf(", \"inode\": %lu", e->ino);
            else
                fputs(", \"inode\": null", stdout);
            if (e->pid)
                printf(", \"pid\": %ld", e->pid);
            else
                fputs(", \"pid\": null", stdout);
            fputs(", \"command\": ", stdout);
            json_str(stdout, e->pid ? e->comm : NULL);
            if (e->uid >= 0)
                printf(", \"uid\": %ld}", e->uid);
            else
                fputs(", \"uid\": null}", stdout);
        }
        fputs(out.n ? "\n]\n" : "]\n", stdout);
    } else {
        /* column widths from the data, so the table lines up */
        int wt = 4, ws = 5, wp = 3, wu = 3, wc = 7, wi = 5;
        char b[64];
        for (size_t i = 0; i < out.n; i++) {
            const ent *e = &out.v[i];
            int n;
            if ((n = (int)strlen(type_name(e->type))) > wt) wt = n;
            if ((n = (int)strlen(state_name(e))) > ws) ws = n;
            if ((n = snprintf(b, sizeof(b), "%ld", e->pid)) > wp) wp = n;
            if ((n = snprintf(b, sizeof(b), "%ld", e->uid)) > wu) wu = n;
            if ((n = (int)strlen(e->comm)) > wc) wc = n;
            if ((n = snprintf(b, sizeof(b), "%lu", e->ino)) > wi) wi = n;
        }
        printf("%-*s  %-*s  %*s  %*s  %-*s  %*s  %s\n", wt, "TYPE", ws, "STATE", wp, "PID", wu,
               "UID", wc, "COMMAND", wi, "INODE", "PATH");
        for (size_t i = 0; i < out.n; i++) {
            const ent *e = &out.v[i];
            char pid[24] = "-", uid[24] = "-", ino[24] = "-";
            if (e->pid)
                snprintf(pid, sizeof(pid), "%ld", e->pid);
            if (e->uid >= 0)
                snprintf(uid, sizeof(uid), "%ld", e->uid);
            if (e->ino && !e->stale && !e->probed_live && e->st >= 0)
                snprintf(ino, sizeof(ino), "%lu", e->ino);
            printf("%-*s  %-*s  %*s  %*s  %-*s  %*s  %s\n", wt, type_name(e->type), ws,
                   state_name(e), wp, pid, wu, uid, wc, e->pid ? e->comm : "-", wi, ino,
                   e->path ? e->path : "(unnamed)");
        }
    }
    for (size_t i = 0; i < l.n; i++)
        free(l.v[i].path);
    for (size_t i = 0; i < out.n; i++)
        free(out.v[i].path);
    free(l.v);
    free(out.v);
    free(dir);
    return CLI_OK;
}
