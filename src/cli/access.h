/*
 * access.h — uid/gid allow/deny rules for connections to a unix socket,
 * shared by `udsock serve` and `udsock relay`.
 *
 * Decision order (first match wins):
 *   1. the peer's uid is in a deny-uid list, or one of its groups is in a
 *      deny-gid list                                  -> refused ("denied")
 *   2. no allow list was given                         -> allowed
 *   3. the uid is in allow-uid, or a group in allow-gid -> allowed
 *   4. otherwise                                       -> refused ("not allowed")
 * "Its groups" are the effective gid from SO_PEERCRED plus the supplementary
 * groups the client had when it connected (SO_PEERGROUPS, all of them). The
 * rules themselves are the library's (uds_access_*); this file parses the
 * command line's names and numbers into them.
 */
#ifndef UDS_CLI_ACCESS_H
#define UDS_CLI_ACCESS_H

#include "udsock.h"

#include <sys/types.h>

/* The rules, as the library's uds_access (created on the first rule). */
typedef struct cli_access {
    uds_access *rules;
} cli_access;

/* Which list cli_access_add() extends (the same order as enum uds_access_rule). */
enum { CLI_ALLOW_UID, CLI_DENY_UID, CLI_ALLOW_GID, CLI_DENY_GID };

/*
 * Adds a comma-separated LIST of numbers or user/group names to one list.
 * Returns 0, or -EINVAL with *bad pointing at a static copy of the entry
 * that is neither a number nor a known name, or -ENOMEM.
 */
int cli_access_add(cli_access *a, int which, const char *list, const char **bad);

/* Nonzero if any rule was given. */
int cli_access_active(const cli_access *a);

/*
 * Checks the peer of connected unix socket `fd` (credentials as of
 * connect()) with uds_access_check(). Returns 1 if allowed, 0 if refused
 * (*why: "not allowed" / "denied"), or a negative errno if a rule could not
 * be evaluated (credentials or group list unreadable): the caller must
 * refuse, and *why then says what could not be read (e.g. "cannot read the
 * peer's groups"). `cred` receives the peer's credentials when non-NULL.
 */
int cli_access_check(const cli_access *a, int fd, uds_cred *cred, const char **why);

/* Frees the rules. */
void cli_access_free(cli_access *a);

/*
 * Parses a user as a number or a name; the same for a group. A number is
 * digits only and at most 4294967294 ((uid_t)-1 means "no id" to the
 * kernel). Return 0, -ERANGE (all digits, out of range) or -EINVAL (no
 * such name). The one parser for ids: the rules, and --owner/--group of
 * every command (cli_opt_user/cli_opt_group).
 */
int cli_parse_uid(const char *s, uid_t *out);
int cli_parse_gid(const char *s, gid_t *out);

#endif
