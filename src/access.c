/*
 * access.c — uid/gid allow/deny rules for unix socket peers.
 *
 * The rules are judged from what the kernel recorded at connect(): the
 * effective uid/gid (SO_PEERCRED) and the supplementary groups
 * (SO_PEERGROUPS). Everything fails closed: a credential or group list that
 * cannot be read is an error the caller must treat as a refusal, never as
 * "no groups" (a client in many groups must not slip past a deny-gid rule
 * because its list did not fit a fixed buffer).
 */
#include "internal.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

/* The kernel's limit on supplementary groups (NGROUPS_MAX on Linux). */
#define GROUPS_LIMIT 65536
/* Groups read into the stack buffer before asking the kernel for the size. */
#define GROUPS_STACK 64
/* Tries of the ERANGE -> retry dance before giving up. */
#define GROUPS_TRIES 4

struct idlist {
    unsigned *ids;
    size_t n, cap;
};

struct uds_access {
    struct idlist l[4]; /* indexed by enum uds_access_rule */
};

/* Rules are few (a command line's worth): a linear scan beats any index. */
static int has(const struct idlist *l, unsigned id)
{
    for (size_t i = 0; i < l->n; i++)
        if (l->ids[i] == id)
            return 1;
    return 0;
}

int uds_access_new(uds_access **out)
{
    if (!out)
        return -EINVAL;
    uds_access *a = calloc(1, sizeof(*a));
    if (!a)
        return -ENOMEM;
    *out = a;
    return 0;
}

int uds_access_add(uds_access *a, int rule, unsigned id)
{
    if (!a || rule < UDS_ALLOW_UID || rule > UDS_DENY_GID || id == (unsigned)-1)
        return -EINVAL;
    struct idlist *l = &a->l[rule];
    if (has(l, id))
        return 0;
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 8;
        unsigned *p = realloc(l->ids, cap * sizeof(*p));
        if (!p)
            return -ENOMEM;
        l->ids = p;
        l->cap = cap;
    }
    l->ids[l->n++] = id;
    return 0;
}

int uds_access_active(const uds_access *a)
{
    if (!a)
        return 0;
    for (int i = 0; i < 4; i++)
        if (a->l[i].n)
            return 1;
    return 0;
}

void uds_access_free(uds_access *a)
{
    if (!a)
        return;
    for (int i = 0; i < 4; i++)
        free(a->l[i].ids);
    free(a);
}

/*
 * The peer's supplementary groups, however many. Why a retry loop: the
 * kernel answers ERANGE when the buffer is too small and writes the size it
 * needs into optlen; the list is fixed at connect() time, so one retry with
 * that size normally succeeds (bounded anyway). *heap is set when the list
 * did not fit `stack` and must be freed by the caller. Returns the number
 * of groups, or -errno (never "0 groups" for a failure).
 */
static int peer_groups(int fd, gid_t *stack, size_t stack_n, gid_t **heap,
                       const gid_t **out)
{
    *heap = NULL;
    gid_t *buf = stack;
    socklen_t cap = (socklen_t)(stack_n * sizeof(gid_t));
    int err = -ERANGE;
    for (int tries = 0; tries < GROUPS_TRIES; tries++) {
        socklen_t len = cap;
        if (getsockopt(fd, SOL_SOCKET, SO_PEERGROUPS, buf, &len) == 0) {
            if (len > cap) { /* cannot happen; never read past the buffer */
                err = -EIO;
                break;
            }
            *out = buf;
            return (int)(len / sizeof(gid_t));
        }
        if (errno != ERANGE) {
            err = uds__err();
            break;
        }
        if (len <= cap || len > GROUPS_LIMIT * sizeof(gid_t))
            break; /* a size we cannot trust: -ERANGE */
        free(*heap);
        *heap = malloc(len);
        if (!*heap) {
            err = -ENOMEM;
            break;
        }
        buf = *heap;
        cap = len;
    }
    free(*heap);
    *heap = NULL;
    return err;
}

/* 1 if gid or one of the n groups is in l. */
static int any_in(const struct idlist *l, gid_t gid, const gid_t *g, int n)
{
    if (has(l, gid))
        return 1;
    for (int i = 0; i < n; i++)
        if (has(l, g[i]))
            return 1;
    return 0;
}

/*
 * Decision order as in the header: deny rules first, then "no allow rule",
 * then the allow rules. The group list is read only when a gid rule needs
 * it (and then at most once); any failure to read it is returned as the
 * error, so the caller refuses.
 */
int uds_access_check(const uds_access *a, int fd, uds_cred *cred,
                     const char **why)
{
    struct sockaddr_storage ss;
    socklen_t sl = sizeof(ss);
    memset(&ss, 0, sizeof(ss));
    if (getsockname(fd, (struct sockaddr *)&ss, &sl) < 0) {
        if (why)
            *why = "not a socket";
        if (cred)
            *cred = (uds_cred){0, (uid_t)-1, (gid_t)-1};
        return uds__err();
    }
    return uds__access_check_af(a, fd, ss.ss_family, cred, why);
}

/* uds_access_check for a socket whose family the caller knows (the
   acceptor knows its listener's): one syscall fewer per connection. */
int uds__access_check_af(const uds_access *a, int fd, int family, uds_cred *cred,
                         const char **why)
{
    static const char *const none = "";
    const char *dummy;
    if (!why)
        why = &dummy;
    *why = none;
    uds_cred c = {0, (uid_t)-1, (gid_t)-1};
    if (cred)
        *cred = c;
    int active = uds_access_active(a);
    if (family != AF_UNIX) {
        if (!active)
            return 1;
        *why = "not a unix socket: the access rules need a peer uid";
        return -EAFNOSUPPORT;
    }
    int r = uds_peer_cred(fd, &c);
    if (r < 0) {
        *why = "cannot read the peer's credentials";
        return r;
    }
    if (cred)
        *cred = c;
    if (!active)
        return 1;

    const struct idlist *allow_uid = &a->l[UDS_ALLOW_UID];
    const struct idlist *deny_uid = &a->l[UDS_DENY_UID];
    const struct idlist *allow_gid = &a->l[UDS_ALLOW_GID];
    const struct idlist *deny_gid = &a->l[UDS_DENY_GID];
    gid_t stack[GROUPS_STACK];
    gid_t *heap = NULL;
    const gid_t *g = NULL;
    int ng = -1; /* not read yet */
    int ret;

    if (has(deny_uid, c.uid) || has(deny_gid, c.gid)) {
        *why = "denied";
        return 0;
    }
    if (deny_gid->n) {
        ng = peer_groups(fd, stack, GROUPS_STACK, &heap, &g);
        if (ng < 0) {
            *why = "cannot read the peer's groups";
            return ng;
        }
        if (any_in(deny_gid, c.gid, g, ng)) {
            *why = "denied";
            ret = 0;
            goto out;
        }
    }
    if (!allow_uid->n && !allow_gid->n) {
        ret = 1;
        goto out;
    }
    if (has(allow_uid, c.uid) || has(allow_gid, c.gid)) {
        ret = 1;
        goto out;
    }
    if (allow_gid->n) {
        if (ng < 0) {
            ng = peer_groups(fd, stack, GROUPS_STACK, &heap, &g);
            if (ng < 0) {
                *why = "cannot read the peer's groups";
                return ng;
            }
        }
        if (any_in(allow_gid, c.gid, g, ng)) {
            ret = 1;
            goto out;
        }
    }
    *why = "not allowed";
    ret = 0;
out:
    free(heap);
    return ret;
}

/*
 * The same decision for a sender known only by the credentials that came
 * with its message (a datagram's SCM_CREDENTIALS): no supplementary groups
 * exist there, so a deny-gid rule that did not match the primary gid
 * cannot be ruled out and refuses (fails closed), and allow-gid looks at
 * the primary gid only.
 */
int uds_access_check_cred(const uds_access *a, const uds_cred *cred, const char **why)
{
    const char *dummy;
    if (!why)
        why = &dummy;
    *why = "";
    if (!uds_access_active(a))
        return 1;
    if (!cred || cred->uid == (uid_t)-1) {
        *why = "no credentials: the access rules need a peer uid";
        return -EINVAL;
    }
    if (has(&a->l[UDS_DENY_UID], cred->uid) || has(&a->l[UDS_DENY_GID], cred->gid)) {
        *why = "denied";
        return 0;
    }
    if (a->l[UDS_DENY_GID].n) {
        *why = "cannot read the peer's groups";
        return -ENODATA;
    }
    if (!a->l[UDS_ALLOW_UID].n && !a->l[UDS_ALLOW_GID].n)
        return 1;
    if (has(&a->l[UDS_ALLOW_UID], cred->uid) || has(&a->l[UDS_ALLOW_GID], cred->gid))
        return 1;
    *why = "not allowed";
    return 0;
}
