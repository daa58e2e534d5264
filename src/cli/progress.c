/*
 * progress.c — bytes and rate on stderr, like pv. See progress.h.
 *
 * On a terminal one line is redrawn (\r) at most 4 times a second; when
 * stderr is a file or pipe (--progress given explicitly) a full line is
 * written once a second, so a log does not fill with redraws.
 */
#include "progress.h"
#include "opts.h"

#include <stdio.h>
#include <time.h>
#include <unistd.h>

uint64_t progress_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

void progress_init(progress *p, int mode)
{
    p->mode = mode;
    p->tty = isatty(STDERR_FILENO);
    p->shown = 0;
    p->start_ns = p->last_ns = progress_now_ns();
    p->last_total = 0;
}

/* Decimal rate, as pv and dd print it: "5.63 GB/s". */
static const char *fmt_rate(double bps, char *buf, size_t size)
{
    static const char *units[] = {"B/s", "kB/s", "MB/s", "GB/s", "TB/s"};
    int u = 0;
    while (bps >= 1000.0 && u < 4) {
        bps /= 1000.0;
        u++;
    }
    snprintf(buf, size, "%.2f %s", bps, units[u]);
    return buf;
}

/* One status line: totals, average rate since start, current rate. */
static void print_line(progress *p, uint64_t now, uint64_t sent, uint64_t recvd, int final)
{
    char s[32], r[32], avg[32], cur[32];
    double el = (double)(now - p->start_ns) / 1e9;
    uint64_t total = sent + recvd;
    double dt = (double)(now - p->last_ns) / 1e9;
    fmt_rate(el > 0 ? (double)total / el : 0, avg, sizeof(avg));
    fmt_rate(dt > 0 ? (double)(total - p->last_total) / dt : 0, cur, sizeof(cur));
    unsigned secs = (unsigned)el;
    if (final)
        fprintf(stderr, "%sudsock: sent %s, received %s in %u:%02u:%02u.%02u (%s)%s\n",
                p->tty && p->shown ? "\r" : "", cli_fmt_bytes((double)sent, s, sizeof(s)),
                cli_fmt_bytes((double)recvd, r, sizeof(r)), secs / 3600, secs / 60 % 60,
                secs % 60, (unsigned)((el - secs) * 100), avg, p->tty ? "\033[K" : "");
    else
        fprintf(stderr, "%sudsock: sent %s, received %s  %u:%02u:%02u  [%s] (avg %s)%s",
                p->tty ? "\r" : "", cli_fmt_bytes((double)sent, s, sizeof(s)),
                cli_fmt_bytes((double)recvd, r, sizeof(r)), secs / 3600, secs / 60 % 60,
                secs % 60, cur, avg, p->tty ? "\033[K" : "\n");
    fflush(stderr);
    p->shown = 1;
    p->last_ns = now;
    p->last_total = total;
}

void progress_tick(progress *p, uint64_t sent, uint64_t received)
{
    if (p->mode == PROGRESS_OFF || (p->mode == PROGRESS_AUTO && !p->tty))
        return;
    uint64_t now = progress_now_ns();
    if (p->mode == PROGRESS_AUTO && now - p->start_ns < 2000000000u)
        return; /* short transfers stay quiet */
    uint64_t every = p->tty ? PROGRESS_TICK_MS * 1000000ull : 1000000000ull;
    if (now - p->last_ns < every)
        return;
    print_line(p, now, sent, received, 0);
}

void progress_done(progress *p, uint64_t sent, uint64_t received)
{
    if (p->mode == PROGRESS_OFF || (!p->shown && p->mode != PROGRESS_ON))
        return;
    print_line(p, progress_now_ns(), sent, received, 1);
}
