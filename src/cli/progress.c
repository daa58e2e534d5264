/*
 * progress.c — bytes and rate on stderr, like pv. See progress.h.
 *
 * On a terminal one line is redrawn (\r) at most 4 times a second; when
 * stderr is a file or pipe (--progress given explicitly) a full line is
 * written once a second, so a log does not fill with redraws.
 *
 * Why a lock and a "drawn" flag: the line is drawn without a newline (so
 * it can be redrawn in place), and anything else written to the terminal
 * after it — a warning from a copy thread, a -v line, received data with
 * -p on a terminal — would be glued onto it. Every such writer takes the
 * lock and erases the line first; the next tick draws it again below.
 */
#include "progress.h"
#include "opts.h"

#include <pthread.h>
#include <stdio.h>
#include <time.h>
#include <unistd.h>

static pthread_mutex_t g_term = PTHREAD_MUTEX_INITIALIZER;
static int g_drawn;   /* a progress line is on the terminal, unterminated */
static int g_midline; /* the terminal's cursor is inside someone's line */

uint64_t progress_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

int progress_auto_allowed(int in_tty, int out_tty, int err_tty)
{
    return !in_tty && !out_tty && err_tty;
}

void progress_init(progress *p, int mode)
{
    p->mode = mode;
    p->tty = isatty(STDERR_FILENO);
    p->enabled = mode == PROGRESS_ON ||
                 (mode == PROGRESS_AUTO &&
                  progress_auto_allowed(isatty(STDIN_FILENO), isatty(STDOUT_FILENO), p->tty));
    p->shown = 0;
    p->start_ns = p->last_ns = progress_now_ns();
    p->last_total = 0;
}

void progress_hold(void)
{
    pthread_mutex_lock(&g_term);
    if (g_drawn) {
        fputs("\r\033[K", stderr);
        fflush(stderr);
        g_drawn = 0;
    }
}

void progress_release(void) { pthread_mutex_unlock(&g_term); }

void progress_wrote(char last) { g_midline = last != '\n'; }

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
    pthread_mutex_lock(&g_term);
    /* on a line of its own: after someone's unfinished line, start below it */
    const char *lead = p->tty ? (g_midline ? "\n" : g_drawn ? "\r" : "") : "";
    g_midline = 0;
    if (final)
        fprintf(stderr, "%sudsock: sent %s, received %s in %u:%02u:%02u.%02u (%s)%s\n", lead,
                cli_fmt_bytes((double)sent, s, sizeof(s)),
                cli_fmt_bytes((double)recvd, r, sizeof(r)), secs / 3600, secs / 60 % 60,
                secs % 60, (unsigned)((el - secs) * 100), avg, p->tty ? "\033[K" : "");
    else
        fprintf(stderr, "%sudsock: sent %s, received %s  %u:%02u:%02u  [%s] (avg %s)%s", lead,
                cli_fmt_bytes((double)sent, s, sizeof(s)),
                cli_fmt_bytes((double)recvd, r, sizeof(r)), secs / 3600, secs / 60 % 60,
                secs % 60, cur, avg, p->tty ? "\033[K" : "\n");
    fflush(stderr);
    g_drawn = p->tty && !final;
    pthread_mutex_unlock(&g_term);
    p->shown = 1;
    p->last_ns = now;
    p->last_total = total;
}

void progress_tick(progress *p, uint64_t sent, uint64_t received)
{
    if (!p->enabled)
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
    if (!p->enabled || (!p->shown && p->mode != PROGRESS_ON))
        return;
    print_line(p, progress_now_ns(), sent, received, 1);
}
