/*
 * access.c — uid/gid allow/deny rules (see access.h for the order in which
 * they are applied).
 */
#include "access.h"

#include <errno.h>
#include <stdio.h>
#include <grp.h>
#include <pwd.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

/* Decimal id, no sign, no trailing junk, fits 32 bits minus the -1 value. */
static int parse_num(const char *s, unsigned *out)
{
    if (!*s || *s < '0' || *s > '9')
        return -EINVAL;
    char *end;
    errno = 0;
    unsigned long v = strtoul(s, &end, 10);
    if (errno || *end || v >= 0xffffffffUL)
        return -EINVAL;
    *out = (unsigned)v;
    return 0;
}

int cli_parse_uid(const char *s, uid_t *out)
{
    unsigned v;
    if (parse_num(s, &v) == 0) {
        *out = (uid_t)v;
        return 0;
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
    if (parse_num(s, &v) == 0) {
        *out = (gid_t)v;
        return 0;
    }
    struct group *gr = getgrnam(s);
    if (!gr)
        return -EINVAL;
    *out = gr->gr_gid;
    return 0;
}

static int list_push(cli_idlist *l, unsigned id)
{
    if (l->n == l->cap) {
        size_t nc = l->cap ? l->cap * 2 : 8;
        unsigned *p = realloc(l->ids, nc * sizeof(*p));
        if (!p)
            return -ENOMEM;
        l->ids = p;
        l->cap = nc;
    }
    l->ids[l->n++] = id;
    return 0;
}

static int list_has(const cli_idlist *l, unsigned id)
{
    for (size_t i = 0; i < l->n; i++)
        if (l->ids[i] == id)
            return 1;
    return 0;
}

int cli_access_add(cli_access *a, int which, const char *list, const char **bad)
{
    static char badbuf[256];
    cli_idlist *l = which == CLI_ALLOW_UID   ? &a->allow_uid
                    : which == CLI_DENY_UID  ? &a->deny_uid
                    : which == CLI_ALLOW_GID ? &a->allow_gid
                                             : &a->deny_gid;
    int is_uid = which == CLI_ALLOW_UID || which == CLI_DENY_UID;
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
        r = list_push(l, id);
        if (r < 0)
            return r;
        if (!comma)
            return 0;
        p = comma + 1;
    }
}

int cli_access_active(const cli_access *a)
{
    return a->allow_uid.n || a->deny_uid.n || a->allow_gid.n || a->deny_gid.n;
}

/*
 * The peer's supplementary groups (SO_PEERGROUPS). Why optional: older
 * kernels lack it; then only the effective gid takes part, which is what
 * s6-ipcserver-access and ucspi tools look at as well.
 */
static int peer_groups(int fd, gid_t *out, int cap)
{
#ifdef SO_PEERGROUPS
    socklen_t len = (socklen_t)(cap * (int)sizeof(gid_t));
    if (getsockopt(fd, SOL_SOCKET, SO_PEERGROUPS, out, &len) < 0)
        return 0; /* ERANGE (more than cap groups) or not supported */
    return (int)(len / sizeof(gid_t));
#else
    (void)fd;
    (void)out;
    (void)cap;
    return 0;
#endif
}

int cli_access_check(const cli_access *a, int fd, uds_cred *cred, const char **why)
{
    uds_cred c;
    int r = uds_peer_cred(fd, &c);
    if (r < 0)
        return r;
    if (cred)
        *cred = c;
    if (!cli_access_active(a))
        return 1;
    gid_t groups[256];
    int ng = 0;
    if (a->allow_gid.n || a->deny_gid.n)
        ng = peer_groups(fd, groups, 256);

    if (list_has(&a->deny_uid, c.uid) || list_has(&a->deny_gid, c.gid)) {
        *why = "denied";
        return 0;
    }
    for (int i = 0; i < ng; i++)
        if (list_has(&a->deny_gid, groups[i])) {
            *why = "denied";
            return 0;
        }
    if (!a->allow_uid.n && !a->allow_gid.n)
        return 1;
    if (list_has(&a->allow_uid, c.uid) || list_has(&a->allow_gid, c.gid))
        return 1;
    for (int i = 0; i < ng; i++)
        if (list_has(&a->allow_gid, groups[i]))
            return 1;
    *why = "not allowed";
    return 0;
}

void cli_access_free(cli_access *a)
{
    free(a->allow_uid.ids);
    free(a->deny_uid.ids);
    free(a->allow_gid.ids);
    free(a->deny_gid.ids);
    memset(a, 0, sizeof(*a));
}
