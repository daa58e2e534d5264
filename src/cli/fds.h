/*
 * fds.h — passing fds from the shell (SCM_RIGHTS), shared by send --fd /
 * connect --fd (what to pass) and recv --fds / listen --fds (what came,
 * and a program that gets it as fds 3, 4, ...).
 */
#ifndef UDS_CLI_FDS_H
#define UDS_CLI_FDS_H

#include "cli.h"

#include <stddef.h>

/* --fd N|FILE given once more: kept in args[*n] (the text, parsed later
   by cli_fds_open); more than UDS_MAX_FDS is a usage error of cmd. */
void cli_fds_arg(const char *cmd, const char **args, size_t *n, const char *text);

/*
 * Each --fd: a number is an open fd of ours (e.g. 0 for stdin), anything
 * else a file opened read-only (close-on-exec, blocking; a FIFO does not
 * block the open). Checked before anything is sent, so a typo is a usage
 * error of cmd (exit 2): "--fd 99: fd 99 is not open", "--fd F: <errno>".
 * fds[i] is the fd for args[i]; opened files stay open until exit.
 */
void cli_fds_open(const char *cmd, const char *const *args, size_t n, int *fds);

/* One stderr line for a batch of fds that arrived: "2 fds from PEER:
   0: regular file /path, 1: pipe pipe:[123]" (the kind, and the path the
   kernel has for it, escaped). */
void cli_fds_say(const char *peer, const int *fds, size_t n);

void cli_fds_close(const int *fds, size_t n);

/*
 * In a forked child, before exec: fds become 3, 4, ... (n of them; every
 * other fd above 2 closed) and the environment says so: UDSOCK_FDS=n,
 * LISTEN_FDS=n, LISTEN_PID=the child's pid (LISTEN_FDNAMES removed: ours
 * have no names), as a service manager passes sockets. n 0: UDSOCK_FDS
 * is removed, nothing else changes. Exits 126 when the fds cannot be put
 * in place.
 */
void cli_fds_child(const int *fds, size_t n);

#endif
