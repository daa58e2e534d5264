/*
 * diag.c — asking the kernel about unix sockets: a NETLINK_SOCK_DIAG dump
 * of AF_UNIX sockets (every socket of this network namespace) and a query
 * for one socket by inode.
 *
 * Everything the kernel sends is treated as a length-prefixed structure to
 * check, not trusted text: each netlink header, each attribute and each
 * payload is measured against what was received before it is read. Names
 * are copied as bytes with their length, so no name can pose as another
 * record (the flaw of parsing /proc/net/unix). Nothing here connects to any
 * socket.
 */
#include "internal.h"

#include <linux/netlink.h>
#include <linux/sock_diag.h>
#include <linux/unix_diag.h>
#include <stdlib.h>
#include <string.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#ifndef UNIX_DIAG_UID
#define UNIX_DIAG_UID 7 /* linux/unix_diag.h, Linux 5.3 */
#endif
#ifndef UDIAG_SHOW_UID
#define UDIAG_SHOW_UID 0x40
#endif
#ifndef NLM_F_DUMP_INTR
#define NLM_F_DUMP_INTR 0x10
#endif

int uds__diag_proto = NETLINK_SOCK_DIAG;
int uds__diag_family = AF_UNIX;

#define DIAG_SHOW (UDIAG_SHOW_NAME | UDIAG_SHOW_VFS | UDIAG_SHOW_PEER | UDIAG_SHOW_ICONS | \
                   UDIAG_SHOW_RQLEN | UDIAG_SHOW_UID)
#define DIAG_TRIES 3          /* dumps flagged NLM_F_DUMP_INTR before -EBUSY */
#define DIAG_BUF_MIN 32768    /* first receive buffer (what ss uses) */
#define DIAG_BUF_MAX (16u << 20) /* no datagram from the kernel is larger */

typedef struct chan {
    int fd;
    char *buf;
    size_t cap;
    uint32_t seq;
} chan;

/* What a reply loop stores records into: a list (dump) or one record. */
typedef struct sink {
    uds_diag_list *list;
    uds_diag_sock *one;
    uint64_t want_ino;
    int got_one;
    int intr; /* a message carried NLM_F_DUMP_INTR */
} sink;

/* Opens the netlink socket; a kernel without sock_diag (or a protocol the
   seam made up) is -EPROTONOSUPPORT, whatever errno socket() chose. */
static int chan_open(chan *c)
{
    memset(c, 0, sizeof(*c));
    c->fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, uds__diag_proto);
    if (c->fd < 0) {
        int e = errno;
        if (e == EPROTONOSUPPORT || e == EAFNOSUPPORT || e == ESOCKTNOSUPPORT)
            return -EPROTONOSUPPORT;
        return -e;
    }
    c->cap = DIAG_BUF_MIN;
    c->buf = malloc(c->cap);
    if (!c->buf) {
        close(c->fd);
        c->fd = -1;
        return -ENOMEM;
    }
    return 0;
}

static void chan_close(chan *c)
{
    if (c->fd >= 0)
        close(c->fd);
    free(c->buf);
    c->fd = -1;
    c->buf = NULL;
}

/* Sends one unix_diag request: a dump of the sockets in `states`, or (ino
   != 0) the one socket with that inode, acknowledged so that the reply
   always ends with an NLMSG_ERROR. */
static int chan_send(chan *c, uint32_t states, uint32_t ino)
{
    struct {
        struct nlmsghdr nh;
        struct unix_diag_req r;
    } req;
    memset(&req, 0, sizeof(req));
    c->seq++;
    req.nh.nlmsg_len = sizeof(req);
    req.nh.nlmsg_type = SOCK_DIAG_BY_FAMILY;
    req.nh.nlmsg_flags = NLM_F_REQUEST | (ino ? NLM_F_ACK : NLM_F_DUMP);
    req.nh.nlmsg_seq = c->seq;
    req.r.sdiag_family = (uint8_t)uds__diag_family;
    req.r.udiag_states = states;
    req.r.udiag_ino = ino;
    req.r.udiag_show = DIAG_SHOW;
    req.r.udiag_cookie[0] = ~0u; /* INET_DIAG_NOCOOKIE: any socket */
    req.r.udiag_cookie[1] = ~0u;
    struct sockaddr_nl kernel;
    memset(&kernel, 0, sizeof(kernel));
    kernel.nl_family = AF_NETLINK;
    ssize_t n = UDS__RETRY(sendto(c->fd, &req, sizeof(req), 0, (struct sockaddr *)&kernel,
                                  sizeof(kernel)));
    if (n < 0)
        return uds__err();
    return n == (ssize_t)sizeof(req) ? 0 : -EIO;
}

/* Receives one datagram from the kernel into c->buf, growing the buffer
   first if the datagram would not fit (peeked with MSG_TRUNC), so nothing
   is ever cut. Datagrams not from the kernel (nl_pid != 0) are dropped.
   Returns its length, or -errno. */
static ssize_t chan_recv(chan *c)
{
    for (int round = 0; round < 64; round++) {
        ssize_t n = UDS__RETRY(recv(c->fd, c->buf, c->cap, MSG_PEEK | MSG_TRUNC));
        if (n < 0)
            return uds__err();
        if ((size_t)n > c->cap) {
            if ((size_t)n > DIAG_BUF_MAX)
                return -EMSGSIZE;
            char *nb = realloc(c->buf, (size_t)n);
            if (!nb)
                return -ENOMEM;
            c->buf = nb;
            c->cap = (size_t)n;
        }
        struct sockaddr_nl from;
        struct iovec iov = {c->buf, c->cap};
        struct msghdr mh;
        memset(&mh, 0, sizeof(mh));
        memset(&from, 0, sizeof(from));
        mh.msg_name = &from;
        mh.msg_namelen = sizeof(from);
        mh.msg_iov = &iov;
        mh.msg_iovlen = 1;
        n = UDS__RETRY(recvmsg(c->fd, &mh, 0));
        if (n < 0)
            return uds__err();
        if (mh.msg_flags & MSG_TRUNC)
            return -EMSGSIZE; /* cannot happen after the peek; never parse a cut reply */
        if (mh.msg_namelen >= sizeof(from) && from.nl_pid != 0)
            continue; /* not the kernel */
        return n;
    }
    return -EIO;
}

/* Parses the attributes of one unix_diag record (p, len: what follows the
   unix_diag_msg) into s. Every attribute's length is checked against what
   is left and against the size its type needs. */
static int parse_attrs(const unsigned char *p, size_t len, uds_diag_sock *s)
{
    while (len >= NLA_HDRLEN) {
        struct nlattr a;
        memcpy(&a, p, sizeof(a));
        if (a.nla_len < NLA_HDRLEN || a.nla_len > len)
            return -EBADMSG;
        const unsigned char *pl = p + NLA_HDRLEN;
        size_t plen = a.nla_len - NLA_HDRLEN;
        uint32_t u[2];
        switch (a.nla_type & NLA_TYPE_MASK) {
        case UNIX_DIAG_NAME: {
            if (plen == 0 || plen > sizeof(((struct sockaddr_un *)0)->sun_path))
                return -EBADMSG;
            size_t n = plen;
            if (pl[0] != 0) { /* a path: up to the NUL that ends it */
                const unsigned char *z = memchr(pl, 0, plen);
                if (z)
                    n = (size_t)(z - pl);
            }
            char *name = malloc(n + 1);
            if (!name)
                return -ENOMEM;
            memcpy(name, pl, n);
            name[n] = 0;
            free(s->name);
            s->name = name;
            s->name_len = n;
            break;
        }
        case UNIX_DIAG_VFS:
            if (plen < 2 * sizeof(uint32_t))
                return -EBADMSG;
            memcpy(u, pl, 2 * sizeof(uint32_t));
            s->vfs_ino = u[0];
            /* the kernel's dev_t (major << 20 | minor) as user space sees it */
            s->vfs_dev = makedev(u[1] >> 20, u[1] & 0xfffffu);
            s->have |= UDS_DIAG_HAVE_VFS;
            break;
        case UNIX_DIAG_PEER:
            if (plen < sizeof(uint32_t))
                return -EBADMSG;
            memcpy(u, pl, sizeof(uint32_t));
            s->peer = u[0];
            break;
        case UNIX_DIAG_ICONS: {
            if (plen % sizeof(uint32_t))
                return -EBADMSG;
            size_t n = plen / sizeof(uint32_t);
            uint64_t *v = malloc((n ? n : 1) * sizeof(*v));
            if (!v)
                return -ENOMEM;
            for (size_t i = 0; i < n; i++) {
                memcpy(u, pl + i * sizeof(uint32_t), sizeof(uint32_t));
                v[i] = u[0];
            }
            free(s->icons);
            s->icons = v;
            s->n_icons = n;
            s->have |= UDS_DIAG_HAVE_ICONS;
            break;
        }
        case UNIX_DIAG_RQLEN:
            if (plen < 2 * sizeof(uint32_t))
                return -EBADMSG;
            memcpy(u, pl, 2 * sizeof(uint32_t));
            s->rqueue = u[0];
            s->wqueue = u[1];
            s->have |= UDS_DIAG_HAVE_RQLEN;
            break;
        case UNIX_DIAG_UID:
            if (plen < sizeof(uint32_t))
                return -EBADMSG;
            memcpy(u, pl, sizeof(uint32_t));
            s->uid = u[0];
            s->have |= UDS_DIAG_HAVE_UID;
            break;
        default:
            break; /* newer attributes: not ours to interpret */
        }
        size_t step = NLA_ALIGN(a.nla_len);
        if (step >= len)
            break;
        p += step;
        len -= step;
    }
    return 0;
}

/* One SOCK_DIAG_BY_FAMILY message (payload p, len bytes) into *s. */
static int parse_sock(const unsigned char *p, size_t len, uds_diag_sock *s)
{
    struct unix_diag_msg m;
    memset(s, 0, sizeof(*s));
    if (len < sizeof(m))
        return -EBADMSG;
    memcpy(&m, p, sizeof(m));
    if (m.udiag_family != AF_UNIX)
        return -EBADMSG;
    s->ino = m.udiag_ino;
    s->type = m.udiag_type;
    s->state = m.udiag_state;
    size_t off = NLMSG_ALIGN(sizeof(m));
    int r = off < len ? parse_attrs(p + off, len - off, s) : 0;
    if (r < 0)
        uds_diag_sock_free(s);
    return r;
}

/* Appends s to l (taking its memory). */
static int list_push(uds_diag_list *l, uds_diag_sock *s)
{
    if (l->count == l->cap) {
        size_t nc = l->cap ? l->cap * 2 : 64;
        uds_diag_sock *v = realloc(l->socks, nc * sizeof(*v));
        if (!v)
            return -ENOMEM;
        l->socks = v;
        l->cap = nc;
    }
    l->socks[l->count++] = *s;
    memset(s, 0, sizeof(*s));
    return 0;
}

/* Reads the replies to the last request until NLMSG_DONE or an
   NLMSG_ERROR, storing records into k. Returns 0 at the end of the reply,
   or a negative error (the kernel's, or ours for a malformed reply). */
static int chan_reply(chan *c, sink *k)
{
    for (;;) {
        ssize_t got = chan_recv(c);
        if (got < 0)
            return (int)got;
        const unsigned char *p = (const unsigned char *)c->buf;
        size_t left = (size_t)got;
        while (left >= sizeof(struct nlmsghdr)) {
            struct nlmsghdr nh;
            memcpy(&nh, p, sizeof(nh));
            if (nh.nlmsg_len < sizeof(nh) || nh.nlmsg_len > left)
                return -EBADMSG;
            const unsigned char *pl = p + NLMSG_HDRLEN;
            size_t plen = nh.nlmsg_len > NLMSG_HDRLEN ? nh.nlmsg_len - NLMSG_HDRLEN : 0;
            size_t step = NLMSG_ALIGN(nh.nlmsg_len);
            p += step < left ? step : left;
            left -= step < left ? step : left;
            if (nh.nlmsg_seq != c->seq)
                continue; /* an answer to something else */
            if (nh.nlmsg_flags & NLM_F_DUMP_INTR)
                k->intr = 1;
            if (nh.nlmsg_type == NLMSG_DONE) {
                int e = 0;
                if (plen >= sizeof(e))
                    memcpy(&e, pl, sizeof(e));
                return e < 0 ? e : 0;
            }
            if (nh.nlmsg_type == NLMSG_ERROR) {
                int e;
                if (plen < sizeof(e))
                    return -EBADMSG;
                memcpy(&e, pl, sizeof(e));
                return e < 0 ? e : 0; /* 0: the acknowledgement */
            }
            if (nh.nlmsg_type != SOCK_DIAG_BY_FAMILY)
                continue;
            uds_diag_sock s;
            int r = parse_sock(pl, plen, &s);
            if (r < 0)
                return r;
            if (k->list) {
                r = list_push(k->list, &s);
                if (r < 0) {
                    uds_diag_sock_free(&s);
                    return r;
                }
            } else if (!k->got_one && s.ino == k->want_ino) {
                *k->one = s;
                k->got_one = 1;
            } else {
                uds_diag_sock_free(&s);
            }
        }
        if (left)
            return -EBADMSG; /* a piece of a header */
    }
}

/* One dump of the sockets in `states` (raw kernel mask) into l. */
static int dump_once(chan *c, uint32_t states, uds_diag_list *l, int *intr)
{
    int r = chan_send(c, states, 0);
    if (r < 0)
        return r;
    sink k = {l, NULL, 0, 0, 0};
    r = chan_reply(c, &k);
    *intr = k.intr;
    /* a dump is never "not found": ENOENT is the missing unix_diag handler */
    return r == -ENOENT ? -EPROTONOSUPPORT : r;
}

int uds_diag_dump(uds_diag_list *out, unsigned states)
{
    if (!out)
        return -EINVAL;
    memset(out, 0, sizeof(*out));
    chan c;
    int r = chan_open(&c);
    if (r < 0)
        return r;
    uint32_t mask = states == UDS_DIAG_ALL ? ~0u : states;
    for (int t = 0; t < DIAG_TRIES; t++) {
        int intr = 0;
        r = dump_once(&c, mask, out, &intr);
        if (r == 0 && !intr)
            break;
        uds_diag_free(out);
        if (r < 0)
            break;
        r = -EBUSY;
    }
    chan_close(&c);
    return r < 0 ? r : (int)(out->count > (size_t)INT32_MAX ? INT32_MAX : out->count);
}

void uds_diag_free(uds_diag_list *l)
{
    if (!l)
        return;
    for (size_t i = 0; i < l->count; i++)
        uds_diag_sock_free(&l->socks[i]);
    free(l->socks);
    memset(l, 0, sizeof(*l));
}

int uds_diag_get(uint64_t ino, uds_diag_sock *out)
{
    if (!out)
        return -EINVAL;
    memset(out, 0, sizeof(*out));
    if (ino == 0 || ino > UINT32_MAX)
        return -ENOENT; /* the kernel numbers sockets in 32 bits */
    chan c;
    int r = chan_open(&c);
    if (r < 0)
        return r;
    r = chan_send(&c, 0, (uint32_t)ino);
    sink k = {NULL, out, ino, 0, 0};
    if (r == 0)
        r = chan_reply(&c, &k);
    if (r == 0 && !k.got_one)
        r = -ENOENT;
    if (r == -ENOENT) {
        /* no such socket, or no unix_diag handler at all? An empty dump
           (no state asked for) tells the two apart. */
        uds_diag_list none = {0};
        int intr;
        int d = dump_once(&c, 0, &none, &intr);
        uds_diag_free(&none);
        if (d == -EPROTONOSUPPORT)
            r = d;
    }
    if (r < 0)
        uds_diag_sock_free(out);
    chan_close(&c);
    return r;
}

void uds_diag_sock_free(uds_diag_sock *s)
{
    if (!s)
        return;
    free(s->name);
    free(s->icons);
    memset(s, 0, sizeof(*s));
}
