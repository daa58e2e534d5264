/*
 * fuzz_cli.c — the option parsing of every udsock subcommand, in process.
 * Byte 0 picks the subcommand (listen, connect, send, recv, bench, serve,
 * relay, ls, or a free-form argv[1] such as --help); the rest, split at
 * NUL bytes, is its argv. The real main() of src/cli/main.c runs (renamed
 * udsock_main) with the seam cli_parse_only set, so each command returns
 * right after parsing, before any I/O.
 *
 * Linked with -Wl,--wrap=... (tests/fuzz/CMakeLists part of
 * cmake/UdsTest.cmake) so that, while a parse runs:
 *   exit()         longjmps back here with the status (usage errors);
 *   getaddrinfo()  never asks DNS (AI_NUMERICHOST added);
 *   getpwnam/getgrnam answer from a fixed table (no /etc reads);
 *   socket()/fork() abort: the parse must not get that far.
 * Oracle: the status is 0 (parsed, or --help) or 2 (usage error), and a
 * usage error always says something on stderr.
 */
#define main udsock_main
#include "../../src/cli/main.c"
#undef main

#include <getopt.h>
#include <grp.h>
#include <netdb.h>
#include <pwd.h>
#include <setjmp.h>
#include <stdint.h>
#include <unistd.h>

#if defined(__has_feature)
#if __has_feature(address_sanitizer)
#define FZ_LSAN 1
#endif
#endif
#if defined(__SANITIZE_ADDRESS__)
#define FZ_LSAN 1
#endif
#ifdef FZ_LSAN
#include <sanitizer/lsan_interface.h>
#endif

#define FZ_MAX_ARGS 64

static int fz_armed;
static jmp_buf fz_jb;
static int fz_status;

void __real_exit(int code) __attribute__((noreturn));
int __real_getaddrinfo(const char *node, const char *service, const struct addrinfo *hints,
                       struct addrinfo **res);
int __real_socket(int domain, int type, int protocol);
pid_t __real_fork(void);

/* A usage error ends the command with exit(): come back with its status. */
void __wrap_exit(int code)
{
    if (fz_armed) {
        fz_status = code;
        longjmp(fz_jb, 1);
    }
    __real_exit(code);
}

/* Numeric hosts only: a fuzz input must never make a DNS query. A name
   resolves to 127.0.0.1 (an unknown host is a runtime failure, status 1,
   which is not what this target judges). */
int __wrap_getaddrinfo(const char *node, const char *service, const struct addrinfo *hints,
                       struct addrinfo **res)
{
    struct addrinfo h;
    if (hints)
        h = *hints;
    else
        memset(&h, 0, sizeof(h));
    h.ai_flags |= AI_NUMERICHOST | AI_NUMERICSERV;
    int r = __real_getaddrinfo(node, service, &h, res);
    if (r == EAI_NONAME && node)
        r = __real_getaddrinfo("127.0.0.1", service, &h, res);
    return r;
}

/* Two users and groups that exist everywhere, without reading /etc. */
struct passwd *__wrap_getpwnam(const char *name)
{
    static struct passwd pw;
    static char nm[16];
    uid_t uid;
    if (!strcmp(name, "root"))
        uid = 0;
    else if (!strcmp(name, "nobody"))
        uid = 65534;
    else
        return NULL;
    snprintf(nm, sizeof(nm), "%s", name);
    memset(&pw, 0, sizeof(pw));
    pw.pw_name = nm;
    pw.pw_uid = uid;
    pw.pw_gid = uid;
    return &pw;
}

/* The same for groups. */
struct group *__wrap_getgrnam(const char *name)
{
    static struct group gr;
    static char nm[16];
    gid_t gid;
    if (!strcmp(name, "root"))
        gid = 0;
    else if (!strcmp(name, "nogroup"))
        gid = 65534;
    else
        return NULL;
    snprintf(nm, sizeof(nm), "%s", name);
    memset(&gr, 0, sizeof(gr));
    gr.gr_name = nm;
    gr.gr_gid = gid;
    return &gr;
}

/* Reaching a socket or a child means the parse-only seam was missed. */
int __wrap_socket(int domain, int type, int protocol)
{
    if (fz_armed)
        abort();
    return __real_socket(domain, type, protocol);
}

/* See __wrap_socket. */
pid_t __wrap_fork(void)
{
    if (fz_armed)
        abort();
    return __real_fork();
}

/* stdout/stderr of the command go here: counted, never written anywhere. */
static ssize_t fz_sink(void *cookie, const char *buf, size_t size)
{
    (void)buf;
    *(size_t *)cookie += size;
    return (ssize_t)size;
}

static const char *const fz_cmds[] = {"listen", "connect", "send", "recv",
                                      "bench",  "serve",   "relay", "ls"};
#define FZ_NCMDS (sizeof(fz_cmds) / sizeof(fz_cmds[0]))

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1 || size > 4096)
        return 0;
    char *argv[FZ_MAX_ARGS + 3];
    int argc = 0;
    argv[argc++] = strdup("udsock");
    size_t i = 1;
    if (data[0] % (FZ_NCMDS + 1) < FZ_NCMDS)
        argv[argc++] = strdup(fz_cmds[data[0] % (FZ_NCMDS + 1)]);
    /* else: the first piece of the input is argv[1] itself */
    while (i < size && argc < FZ_MAX_ARGS + 2) {
        const uint8_t *nul = memchr(data + i, '\0', size - i);
        size_t n = nul ? (size_t)(nul - (data + i)) : size - i;
        char *a = malloc(n + 1); /* exactly sized: ASan sees overreads */
        memcpy(a, data + i, n);
        a[n] = '\0';
        argv[argc++] = a;
        i += n + 1;
    }
    argv[argc] = NULL;
    char *owned[FZ_MAX_ARGS + 3];
    memcpy(owned, argv, sizeof(argv)); /* getopt permutes argv */

    size_t nout = 0, nerr = 0;
    FILE *out = fopencookie(&nout, "w", (cookie_io_functions_t){.write = fz_sink});
    FILE *err = fopencookie(&nerr, "w", (cookie_io_functions_t){.write = fz_sink});
    if (!out || !err)
        abort();
    FILE *saved_out = stdout, *saved_err = stderr;
    stdout = out;
    stderr = err;

    /* a fresh getopt: optind 0 re-initialises glibc's state (also the
       position inside a cluster like -abc left by an earlier run) */
    static char *reset_argv[] = {"x", NULL};
    optind = 0;
    opterr = 0;
    getopt(1, reset_argv, "");
    optind = 0;
    cli_parse_only = 1;
#ifdef FZ_LSAN
    /* the commands leave their memory to exit(), as any CLI does */
    __lsan_disable();
#endif
    fz_armed = 1;
    volatile int status;
    if (setjmp(fz_jb) == 0)
        status = udsock_main(argc, argv);
    else
        status = fz_status;
    fz_armed = 0;
#ifdef FZ_LSAN
    __lsan_enable();
#endif
    cli_parse_only = 0;
    fflush(out);
    fflush(err);
    stdout = saved_out;
    stderr = saved_err;
    fclose(out);
    fclose(err);

    if (getenv("FUZZ_CLI_TRACE")) { /* to see what a corpus exercises */
        for (int k = 0; k < argc; k++)
            fprintf(stderr, "%s%s", k ? " " : "", owned[k]);
        fprintf(stderr, " -> %d\n", status);
    }
    if (status != CLI_OK && status != CLI_USAGE)
        abort(); /* parsing alone can only succeed or be a usage error */
    if (status == CLI_USAGE && nerr == 0)
        abort(); /* a refusal always says why */
    for (int k = 0; k < argc; k++)
        free(owned[k]);
    return 0;
}
