/*
 * opts.c — option parsing and signal helpers shared by the subcommands
 * (see opts.h).
 */
#include "opts.h"
#include "access.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <grp.h>
#include <math.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int cli_parse_only; /* fuzz seam: see cli.h */

void cli_usage_error(const char *cmd, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "udsock %s: ", cmd);
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, " (try 'udsock %s --help')\n", cmd);
    va_end(ap);
    exit(CLI_USAGE);
}

void cli_bad_option(const char *cmd, char **argv)
{
    const char *bad = argv[optind - 1];
    if (optopt && (!bad || strncmp(bad, "--", 2)))
        cli_usage_error(cmd, "bad option or missing value for '-%c'", optopt);
    cli_usage_error(cmd, "bad option or missing value for '%s'", bad ? bad : "?");
}

int cli_opt_type(const char *cmd, const char *text)
{
    int t = uds_type_parse(text);
    if (t < 0)
        cli_usage_error(cmd, "bad --type '%s': expected stream, seqpacket or dgram", text);
    return t;
}

/*
 * The shape every number on the command line must have before strtoul or
 * strtod sees it: they skip leading white space and take a sign ('+', and
 * '-' which strtoul then wraps), strtod also hex, exponents, "inf" and
 * "nan", so ' 5', '+5', '0x10' or '1e3' would pass for numbers. Digits
 * only (frac: one '.' allowed among them, with a digit on at least one
 * side). Returns where the number ends (the caller checks what follows),
 * or NULL when text does not start with a plain number.
 */
static const char *plain_number(const char *text, int frac)
{
    const char *p = text;
    int digits = 0, dot = 0;
    for (;; p++) {
        if (*p >= '0' && *p <= '9') {
            digits++;
        } else if (*p == '.' && frac && !dot) {
            dot = 1;
        } else {
            break;
        }
    }
    return digits ? p : NULL;
}

int cli_is_decimal(const char *text)
{
    const char *e = plain_number(text, 0);
    return e && !*e;
}

unsigned cli_opt_mode(const char *cmd, const char *text)
{
    char *end;
    errno = 0;
    unsigned long m = strtoul(text, &end, 8);
    if (!cli_is_decimal(text) || strpbrk(text, "89") || *end || errno || m > 07777)
        cli_usage_error(cmd, "bad --mode '%s': expected octal permissions such as 0660", text);
    return (unsigned)m;
}

/* --owner/--group through the rules' parser (access.c), so every command
   takes the same ids and refuses the same ones, naming option and value. */
uid_t cli_opt_user(const char *cmd, const char *text)
{
    uid_t u;
    int r = cli_parse_uid(text, &u);
    if (r == -ERANGE)
        cli_usage_error(cmd, "bad --owner '%s': a uid is at most 4294967294", text);
    if (r < 0)
        cli_usage_error(cmd, "bad --owner '%s': no such user", text);
    return u;
}

gid_t cli_opt_group(const char *cmd, const char *text)
{
    gid_t g;
    int r = cli_parse_gid(text, &g);
    if (r == -ERANGE)
        cli_usage_error(cmd, "bad --group '%s': a gid is at most 4294967294", text);
    if (r < 0)
        cli_usage_error(cmd, "bad --group '%s': no such group", text);
    return g;
}

int cli_opt_seconds_ms(const char *cmd, const char *opt, const char *text)
{
    char *end;
    errno = 0;
    const char *plain = plain_number(text, 1);
    double s = strtod(text, &end);
    if (!plain || *plain || *end || errno || !(s >= 0) || s > 2000000.0)
        cli_usage_error(cmd, "bad %s '%s': expected seconds (e.g. 5 or 0.5)", opt, text);
    return (int)lround(s * 1000.0);
}

long cli_opt_count(const char *cmd, const char *opt, const char *text)
{
    char *end;
    errno = 0;
    long n = strtol(text, &end, 10);
    if (!cli_is_decimal(text) || *end || errno || n < 1)
        cli_usage_error(cmd, "bad %s '%s': expected a number >= 1", opt, text);
    return n;
}

void cli_die_by_signal(int signo)
{
    fflush(stdout);
    signal(signo, SIG_DFL);
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, signo);
    raise(signo); /* pending while blocked; delivered on unblock */
    pthread_sigmask(SIG_UNBLOCK, &set, NULL);
    _exit(128 + signo);
}

void cli_std_fds_open(void)
{
    for (int fd = 0; fd < 3; fd++)
        if (fcntl(fd, F_GETFD) < 0 && errno == EBADF) {
            /* open() returns the lowest free number: this very fd. No
               O_CLOEXEC on purpose: a standard fd is meant to be inherited. */
            int n = open("/dev/null", fd == 0 ? O_RDONLY : O_WRONLY);
            if (n >= 0 && n != fd)
                close(n);
        }
}

const char *cli_fmt_bytes(double b, char *buf, size_t size)
{
    static const char *units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
    int u = 0;
    while (b >= 1024.0 && u < 4) {
        b /= 1024.0;
        u++;
    }
    if (u == 0)
        snprintf(buf, size, "%.0f B", b);
    else
        snprintf(buf, size, "%.2f %s", b, units[u]);
    return buf;
}

uint64_t cli_parse_size(const char *s)
{
    char *end;
    errno = 0;
    const char *plain = plain_number(s, 1);
    double v = strtod(s, &end);
    if (!plain || end != plain || errno || !(v >= 0))
        return 0;
    uint64_t mul = 1;
    switch (*end) {
    case 'k': case 'K': mul = 1024; end++; break;
    case 'm': case 'M': mul = 1024 * 1024; end++; break;
    case 'g': case 'G': mul = 1024ull * 1024 * 1024; end++; break;
    default: break;
    }
    if (*end == 'i')
        end++;
    if (*end == 'B' || *end == 'b')
        end++;
    if (*end || v * (double)mul > 1e18)
        return 0;
    return (uint64_t)(v * (double)mul);
}

uint64_t cli_opt_size(const char *cmd, const char *opt, const char *text, uint64_t max)
{
    uint64_t v = cli_parse_size(text);
    if (!v || v > max)
        cli_usage_error(cmd, "bad %s '%s': expected a size from 1 to %llu bytes (e.g. 64k, 1M)",
                        opt, text, (unsigned long long)max);
    return v;
}
