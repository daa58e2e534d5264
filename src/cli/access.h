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
 * "Its groups" are the effective gid from SO_PEERCRED plus, where the kernel
 * offers it (SO_PEERGROUPS, Linux 4.13), the supplementary groups the client
 * had when it connected.
 */
#ifndef UDS_CLI_ACCESS_H
#define UDS_CLI_ACCESS_H

#include "udsock.h"

#include <sys/types.h>

typedef struct cli_idlist {
    unsigned *ids;
    size_t n, cap;
} cli_idlist;

typedef struct cli_access {
    cli_idlist allow_uid, deny_uid, allow_gid, deny_gid;
} cli_access;

/* Which list cli_access_add() extends. */
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
 * connect()). Returns 1 if allowed, 0 if refused (with *why set to a static
 * text such as "not allowed" / "denied"), or a negative errno if the
 * credentials could not be read (the caller refuses the connection).
 * `cred` receives the peer's credentials when non-NULL.
 */
int cli_access_check(const cli_access *a, int fd, uds_cred *cred, const char **why);

/* Frees the lists. */
void cli_access_free(cli_access *a);

/*
 * Parses a user as a number or a name; the same for a group.
 * Return 0 or -EINVAL. Used for --owner/--group as well.
 */
int cli_parse_uid(const char *s, uid_t *out);
int cli_parse_gid(const char *s, gid_t *out);

#endif
