/*
 * access.c — the command line's uid/gid allow/deny rules: names and
 * numbers parsed here, judged by the library (uds_access_check; see
 * access.h for the order in which they are applied).
 */
#include "access.h"

#include <errno.h>
#include <stdio.h>
#include <grp.h>
#include <pwd.h>
#include <stdlib.h>
#include <string.h>

/*
 * Decimal id: digits only (no sign, no space, no trailing junk), fitting
 * 32 bits minus the -1 value, which chown() and the kernel take for "no
 * id" (so 4294967295 would be silently ignored, and a wider number would
 * wrap onto a real id). 1: not a number (a name, maybe), 0: *out set,
 * -ERANGE: all digits but out of range.
 */
static int parse_num(const char *s, unsigned *out)
{
    if (!*s)
        return 1;
    for (const char *q = s; *q; q++)
        if (*q < '0' || *q > '9')
            return 1;
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || *end || v >= 0xffffffffULL)
        return -ERANGE;
    *out = (unsigned)v;
    return 0;
}

int cli_parse_uid(const char *s, uid_t *out)
{
    unsigned v;
    int r = parse_num(s, &v);
    if (r <= 0) {
        if (r == 0)
            *out = (uid_t)v;
        return r;
    }
    struct passwd *pw = getpwnam(s);
    if (!pw)
        return -EINVAL;
    *out = pw->pw_uid;
    return 0;
}

int cli_parse_gid(const char *s, gid_t *out)
{
    unsigned v;
    int r = parse_num(s, &v);
    if (r <= 0) {
        if (r == 0)
            *out = (gid_t)v;
        return r;
    }
    struct group *gr = getgrnam(s);
    if (!gr)
        return -EINVAL;
    *out = gr->gr_gid;
    return 0;
}

/* One option's list (--allow-uid root,1000): each entry a name or number,
   added to the library's rule set, which is created on the first rule. */
int cli_access_add(cli_access *a, int which, const char *list, const char **bad)
{
    static char badbuf[256];
    int is_uid = which == CLI_ALLOW_UID || which == CLI_DENY_UID;
    int rule = which == CLI_ALLOW_UID   ? UDS_ALLOW_UID
               : which == CLI_DENY_UID  ? UDS_DENY_UID
               : which == CLI_ALLOW_GID ? UDS_ALLOW_GID
                                        : UDS_DENY_GID;
    if (!a->rules) {
        int r = uds_access_new(&a->rules);
        if (r < 0)
            return r;
    }
    const char *p = list;
    for (;;) {
        const char *comma = strchr(p, ',');
        size_t len = comma ? (size_t)(comma - p) : strlen(p);
        char item[256];
        if (len == 0 || len >= sizeof(item)) {
            snprintf(badbuf, sizeof(badbuf), "%.*s", (int)(len < 200 ? len : 200), p);
            if (bad)
                *bad = badbuf;
            return -EINVAL;
        }
        memcpy(item, p, len);
        item[len] = 0;
        unsigned id;
        int r;
        if (is_uid) {
            uid_t u;
            r = cli_parse_uid(item, &u);
            id = u;
        } else {
            gid_t g;
            r = cli_parse_gid(item, &g);
            id = g;
        }
        if (r < 0) {
            snprintf(badbuf, sizeof(badbuf), "%s", item);
            if (bad)
                *bad = badbuf;
            return r;
        }
        r = uds_access_add(a->rules, rule, id);
        if (r < 0) {
            snprintf(badbuf, sizeof(badbuf), "%s", item);
            if (bad)
                *bad = badbuf;
            return r;
        }
        if (!comma)
            return 0;
        p = comma + 1;
    }
}

/* The commands refuse rules on a TCP listener: they need to know. */
int cli_access_active(const cli_access *a)
{
    return uds_access_active(a->rules);
}

/* A thin wrapper: the decision (and failing closed) is the library's. */
int cli_access_check(const cli_access *a, int fd, uds_cred *cred, const char **why)
{
    return uds_access_check(a->rules, fd, cred, why);
}

/* Safe on a zeroed struct and twice (the commands free on every exit path). */
void cli_access_free(cli_access *a)
{
    uds_access_free(a->rules);
    a->rules = NULL;
}
