/*
 * opts.c — option parsing and signal helpers shared by the subcommands
 * (see opts.h).
 */
#include "opts.h"

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

unsigned cli_opt_mode(const char *cmd, const char *text)
{
    char *end;
    errno = 0;
    unsigned long m = strtoul(text, &end, 8);
    if (!*text || *end || errno || m > 07777)
        cli_usage_error(cmd, "bad --mode '%s': expected octal permissions such as 0660", text);
    return (unsigned)m;
}

/* All digits? (then a name lookup is not needed) */
static int numeric(const char *s)
{
    if (!*s)
        return 0;
    for (; *s; s++)
        if (*s < '0' || *s > '9')
            return 0;
    return 1;
}

uid_t cli_opt_user(const char *cmd, const char *text)
{
    if (numeric(text))
        return (uid_t)strtoul(text, NULL, 10);
    struct passwd *pw = getpwnam(text);
    if (!pw)
        cli_usage_error(cmd, "unknown user '%s'", text);
    return pw->pw_uid;
}

gid_t cli_opt_group(const char *cmd, const char *text)
{
    if (numeric(text))
        return (gid_t)strtoul(text, NULL, 10);
    struct group *gr = getgrnam(text);
    if (!gr)
        cli_usage_error(cmd, "unknown group '%s'", text);
    return gr->gr_gid;
}

int cli_opt_seconds_ms(const char *cmd, const char *opt, const char *text)
{
    char *end;
    errno = 0;
    double s = strtod(text, &end);
    if (!*text || *end || errno || !(s >= 0) || s > 2000000.0)
        cli_usage_error(cmd, "bad %s '%s': expected seconds (e.g. 5 or 0.5)", opt, text);
    return (int)lround(s * 1000.0);
}

long cli_opt_count(const char *cmd, const char *opt, const char *text)
{
    char *end;
    errno = 0;
    long n = strtol(text, &end, 10);
    if (!*text || *end || errno || n < 1)
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
    double v = strtod(s, &end);
    if (end == s || errno || !(v >= 0))
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
