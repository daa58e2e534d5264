/*
 * opts.h — helpers shared by the udsock subcommands: option values
 * (types, modes, users, durations), usage errors, and the last step of a
 * stop by signal (the signals themselves arrive on the loop: service.h):
 * once the socket file is removed, die from the same signal so the caller
 * sees why.
 */
#ifndef UDS_CLI_OPTS_H
#define UDS_CLI_OPTS_H

#include "cli.h"

#include <signal.h>
#include <stdint.h>
#include <sys/types.h>

/* "udsock CMD: MESSAGE (try 'udsock CMD --help')" on stderr, exit 2. */
void cli_usage_error(const char *cmd, const char *fmt, ...)
    __attribute__((format(printf, 2, 3), noreturn));

/*
 * Reports the option getopt_long() just refused (unknown option or missing
 * argument) for subcommand `cmd`, then exits 2. `argv`/`optind`/`optopt`
 * are getopt's view.
 */
void cli_bad_option(const char *cmd, char **argv) __attribute__((noreturn));

/* Nonzero if text is one or more decimal digits and nothing else (no
   space, no sign): the shape every count the CLI takes must have. Every
   number parser here checks this shape first (see opts.c). */
int cli_is_decimal(const char *text);
/* --type: "stream", "seqpacket", "dgram"; exits 2 otherwise. */
int cli_opt_type(const char *cmd, const char *text);
/* --mode: octal permission bits (at most 07777); exits 2 otherwise. */
unsigned cli_opt_mode(const char *cmd, const char *text);
/* --owner: user name or numeric uid (cli_parse_uid); exits 2 if unknown or
   out of range, naming the option and the value. */
uid_t cli_opt_user(const char *cmd, const char *text);
/* --group: the same for a group name or numeric gid. */
gid_t cli_opt_group(const char *cmd, const char *text);
/* Seconds, fractions allowed ("1.5"), >= 0; returns milliseconds. Exits 2. */
int cli_opt_seconds_ms(const char *cmd, const char *opt, const char *text);
/* "64", "4k", "1M", "2GiB" -> bytes; 0 on error. */
uint64_t cli_parse_size(const char *text);
/* A size for option opt, 1..max bytes; exits 2 otherwise. */
uint64_t cli_opt_size(const char *cmd, const char *opt, const char *text, uint64_t max);
/* A count >= 1 (e.g. -n); exits 2 otherwise. */
long cli_opt_count(const char *cmd, const char *opt, const char *text);

/*
 * Ends the process as if `signo` had killed it (default action, unblocked),
 * after the caller has cleaned up: shells and service managers then see the
 * real reason. Falls back to exit(128 + signo).
 */
void cli_die_by_signal(int signo) __attribute__((noreturn));

/*
 * Makes sure fds 0, 1 and 2 are open (on /dev/null if they were closed), so
 * a socket created later can never land on them and be mistaken for stdin
 * or stdout (`udsock connect X <&-` would otherwise copy the socket into
 * itself).
 */
void cli_std_fds_open(void);

/* Bytes as text: "0 B", "512 B", "1.50 KiB", "3.20 GiB" into buf. */
const char *cli_fmt_bytes(double bytes, char *buf, size_t size);

#endif
