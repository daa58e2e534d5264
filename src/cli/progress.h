/*
 * progress.h — a pv-like byte counter on stderr for `connect` and `listen`.
 *
 * The copy loops only add to two counters; progress_tick() is called by
 * the loop's control thread a few times per second and decides whether to
 * print, so the data path pays nothing for it.
 */
#ifndef UDS_CLI_PROGRESS_H
#define UDS_CLI_PROGRESS_H

#include <stdint.h>

/* When to show progress. */
enum { PROGRESS_AUTO = 0, PROGRESS_ON = 1, PROGRESS_OFF = -1 };

typedef struct progress {
    int mode;          /* PROGRESS_* */
    int tty;           /* stderr is a terminal: redraw one line with \r */
    int shown;         /* something has been printed */
    uint64_t start_ns; /* when the transfer started */
    uint64_t last_ns;  /* last update printed */
    uint64_t last_total;
} progress;

/* Interval between updates on a terminal (4 per second). */
#define PROGRESS_TICK_MS 250

/* Starts the clock. mode: PROGRESS_AUTO shows progress only when stderr is
   a terminal and the transfer has run for more than 2 seconds. */
void progress_init(progress *p, int mode);

/* Prints an update if one is due. sent/received are running totals. */
void progress_tick(progress *p, uint64_t sent, uint64_t received);

/* Prints the final totals (only if progress was shown or forced on). */
void progress_done(progress *p, uint64_t sent, uint64_t received);

/* Monotonic clock in nanoseconds. */
uint64_t progress_now_ns(void);

#endif
