/*
 * progress.h — a pv-like byte counter on stderr for `connect` and `listen`.
 *
 * The copy loops only add to two counters; progress_tick() is called by
 * the loop's control thread a few times per second and decides whether to
 * print, so the data path pays nothing for it.
 *
 * When it shows by itself (PROGRESS_AUTO): only in the pv situation —
 * neither stdin nor stdout is a terminal and stderr is — and only after
 * the transfer has run for 2 s. Anything else that goes to stderr first
 * erases the line (cli_warn calls progress_hold/progress_release), so a
 * message never lands glued to it; the next tick draws it again.
 */
#ifndef UDS_CLI_PROGRESS_H
#define UDS_CLI_PROGRESS_H

#include <stdint.h>

/* When to show progress. */
enum { PROGRESS_AUTO = 0, PROGRESS_ON = 1, PROGRESS_OFF = -1 };

typedef struct progress {
    int mode;          /* PROGRESS_* */
    int tty;           /* stderr is a terminal: redraw one line with \r */
    int enabled;       /* it may show at all (the rule above, or forced) */
    int shown;         /* something has been printed */
    uint64_t start_ns; /* when the transfer started */
    uint64_t last_ns;  /* last update printed */
    uint64_t last_total;
} progress;

/* Interval between updates on a terminal (4 per second). */
#define PROGRESS_TICK_MS 250

/* Starts the clock and decides p->enabled (see above). */
void progress_init(progress *p, int mode);

/* Whether PROGRESS_AUTO shows at all, given which of stdin, stdout and
   stderr are terminals: the pv rule above. */
int progress_auto_allowed(int in_tty, int out_tty, int err_tty);

/* Prints an update if one is due. sent/received are running totals. */
void progress_tick(progress *p, uint64_t sent, uint64_t received);

/* Prints the final totals (only if progress was shown or forced on). */
void progress_done(progress *p, uint64_t sent, uint64_t received);

/*
 * Before anything else is written to the terminal the progress line is on:
 * progress_hold() takes the terminal (a lock shared with the ticks) and
 * erases the line if one is drawn; progress_release() gives it back (the
 * next tick draws the line again). Safe from any thread; cheap (a mutex)
 * when no line is drawn.
 */
void progress_hold(void);
void progress_release(void);

/* Between hold and release, after writing n bytes ending in `last` to the
   same terminal (stdout on a terminal with -p): a line left open there
   makes the next progress line start on a line of its own. */
void progress_wrote(char last);

/* Monotonic clock in nanoseconds. */
uint64_t progress_now_ns(void);

#endif
