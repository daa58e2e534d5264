/*
 * buf.c — the output queue of a connection: a list of pieces, either
 * copies (small writes coalesced into one chunk) or buffers handed over with
 * a free function. Empty queue = no memory at all, which is what keeps an
 * idle connection small. A piece may also carry ancillary data (fds,
 * credentials): it then has a record with a ready-made control buffer
 * between the struct and its bytes, so plain pieces stay as they were.
 */
#include "internal.h"
#include "buf.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

/* Copies smaller than this share chunks of this size. */
#define CHUNK_MIN 4096

struct uds__piece {
    struct uds__piece *next;
    char *data;
    size_t off;  /* bytes already sent */
    size_t len;  /* bytes of data */
    size_t cap;  /* copy chunk: room at data; 0 for owned buffers */
    void (*free_fn)(void *, void *);
    void *free_arg;
    uint8_t msg_end; /* packet sockets: this piece ends a message */
    uint8_t anc;     /* an anc record (below) follows the struct and still
                        has something to send */
    char inl[];      /* copy chunks keep their bytes here */
};

/*
 * The ancillary data of a piece, right after the struct (sizeof is a
 * multiple of 8, so ctl is aligned for cmsghdr). ctl holds the
 * SCM_CREDENTIALS header first (if any), then SCM_RIGHTS; what is still to
 * be sent is ctl[off .. off + len): dropping the credentials (the kernel
 * refused them) moves off past them, dropping the fds (sent with the first
 * byte) shortens len. nfds counts the descriptors in the SCM_RIGHTS
 * header that the queue still owns (0 once closed).
 */
struct uds__anc {
    uint16_t off, len;   /* bytes of ctl still to send */
    uint16_t cred_len;   /* bytes of the credentials header (0: none) */
    uint16_t nfds;       /* fds owned (closed once sent or cleared) */
    struct cmsghdr ctl[]; /* control buffer; the piece's bytes follow it */
};

uint64_t uds__cred_fallbacks;

static struct uds__anc *anc_of(struct uds__piece *p)
{
    return (struct uds__anc *)(void *)(p + 1);
}

/* The fds inside the SCM_RIGHTS header of a record. */
static unsigned char *anc_fds(struct uds__anc *a)
{
    struct cmsghdr *h = (struct cmsghdr *)(void *)((char *)a->ctl + a->cred_len);
    return CMSG_DATA(h);
}

/*
 * Closes the queue's copies of a piece's fds (after the kernel took them,
 * or unsent at clear time) and drops them from what is left to send. An fd
 * listed twice is closed once: a second close() could hit a descriptor
 * that another thread has just been given the same number.
 */
static void anc_close_fds(struct uds__piece *p)
{
    struct uds__anc *a = anc_of(p);
    unsigned char *d = anc_fds(a);
    for (size_t i = 0; i < a->nfds; i++) {
        int f, g, dup = 0;
        memcpy(&f, d + i * sizeof(int), sizeof(int));
        for (size_t j = 0; j < i && !dup; j++) {
            memcpy(&g, d + j * sizeof(int), sizeof(int));
            dup = f == g;
        }
        if (!dup)
            close(f);
    }
    a->nfds = 0;
    a->len = (uint16_t)(a->cred_len > a->off ? a->cred_len - a->off : 0);
    p->anc = a->len > 0;
}

/* Frees a piece: its fds (if still held), its buffer, itself. */
static void piece_free(struct uds__piece *p)
{
    if (p->anc)
        anc_close_fds(p);
    if (p->free_fn)
        p->free_fn(p->data, p->free_arg);
    free(p);
}

void uds__outq_clear(uds__outq *q)
{
    struct uds__piece *p = q->head, *n;
    for (; p; p = n) {
        n = p->next;
        piece_free(p);
    }
    q->head = q->tail = NULL;
    q->bytes = 0;
}

/* Appends a copy. `coalesce` is 0 for packet sockets: one piece = one
   message, so pieces must not merge. */
int uds__outq_copy(uds__outq *q, const struct iovec *iov, int n, int coalesce)
{
    size_t len = 0;
    for (int i = 0; i < n; i++)
        len += iov[i].iov_len;
    struct uds__piece *t = q->tail;
    if (!(coalesce && t && t->cap && t->cap - t->len >= len)) {
        size_t cap = coalesce && len < CHUNK_MIN ? CHUNK_MIN : len;
        t = malloc(sizeof(*t) + (cap ? cap : 1));
        if (!t)
            return -ENOMEM;
        memset(t, 0, sizeof(*t));
        t->data = t->inl;
        t->cap = cap ? cap : 1;
        if (q->tail)
            q->tail->next = t;
        else
            q->head = t;
        q->tail = t;
    }
    for (int i = 0; i < n; i++) {
        if (iov[i].iov_len == 0)
            continue; /* an empty packet's iov may be {NULL, 0}: no memcpy */
        memcpy(t->data + t->len, iov[i].iov_base, iov[i].iov_len);
        t->len += iov[i].iov_len;
    }
    t->msg_end = !coalesce;
    q->bytes += len;
    return 0;
}

/*
 * The control buffer is built once here, in the piece itself, so a flush
 * (sendmsg, or sendmmsg with one control buffer per message) only points at
 * it: nothing is allocated or copied per send attempt, and a piece keeps
 * its own cmsg however long it waits.
 */
int uds__outq_anc(uds__outq *q, const struct iovec *iov, int n, const int *fds,
                  size_t nfds, const uds_cred *cred, int packets)
{
    size_t len = 0;
    for (int i = 0; i < n; i++)
        len += iov[i].iov_len;
    size_t cred_sp = cred ? CMSG_SPACE(sizeof(struct ucred)) : 0;
    size_t fds_sp = nfds ? CMSG_SPACE(nfds * sizeof(int)) : 0;
    size_t rec = sizeof(struct uds__anc) + cred_sp + fds_sp;
    struct uds__piece *t = malloc(sizeof(*t) + rec + (len ? len : 1));
    if (!t)
        return -ENOMEM;
    memset(t, 0, sizeof(*t) + rec);
    struct uds__anc *a = anc_of(t);
    char *ctl = (char *)a->ctl;
    if (cred) {
        struct cmsghdr *h = a->ctl;
        struct ucred uc = {cred->pid, cred->uid, cred->gid};
        h->cmsg_level = SOL_SOCKET;
        h->cmsg_type = SCM_CREDENTIALS;
        h->cmsg_len = CMSG_LEN(sizeof(uc));
        memcpy(CMSG_DATA(h), &uc, sizeof(uc));
    }
    if (nfds) {
        struct cmsghdr *h = (struct cmsghdr *)(void *)(ctl + cred_sp);
        h->cmsg_level = SOL_SOCKET;
        h->cmsg_type = SCM_RIGHTS;
        h->cmsg_len = CMSG_LEN(nfds * sizeof(int));
        memcpy(CMSG_DATA(h), fds, nfds * sizeof(int));
    }
    a->cred_len = (uint16_t)cred_sp;
    a->len = (uint16_t)(cred_sp + fds_sp);
    a->nfds = (uint16_t)nfds;
    t->anc = a->len > 0;
    t->data = ctl + cred_sp + fds_sp;
    t->cap = len; /* full: nothing coalesces into it */
    for (int i = 0; i < n; i++) {
        if (iov[i].iov_len == 0)
            continue; /* an empty packet's iov may be {NULL, 0}: no memcpy */
        memcpy(t->data + t->len, iov[i].iov_base, iov[i].iov_len);
        t->len += iov[i].iov_len;
    }
    t->msg_end = packets != 0;
    if (q->tail)
        q->tail->next = t;
    else
        q->head = t;
    q->tail = t;
    q->bytes += len;
    return 0;
}

int uds__outq_owned(uds__outq *q, void *data, size_t len,
                    void (*free_fn)(void *, void *), void *free_arg)
{
    struct uds__piece *p = calloc(1, sizeof(*p));
    if (!p)
        return -ENOMEM;
    p->data = data;
    p->len = len;
    p->free_fn = free_fn;
    p->free_arg = free_arg;
    p->msg_end = 1;
    if (q->tail)
        q->tail->next = p;
    else
        q->head = p;
    q->tail = p;
    q->bytes += len;
    return 0;
}

/* Drops `n` sent bytes from the front, freeing finished pieces. */
static void outq_consume(uds__outq *q, size_t n)
{
    q->bytes -= n;
    while (n > 0 && q->head) {
        struct uds__piece *p = q->head;
        size_t left = p->len - p->off;
        if (n < left) {
            p->off += n;
            return;
        }
        n -= left;
        q->head = p->next;
        if (!q->head)
            q->tail = NULL;
        piece_free(p);
    }
}

#define IOV_BATCH 64

/*
 * The kernel refused a piece's credentials (EPERM: a pid/uid/gid we may not
 * claim; ESRCH: no such pid): drop them once, so the piece goes out with
 * the credentials the kernel supplies itself. 1 if there is something to
 * retry, 0 if the error stands (no credentials, or already dropped).
 */
static int anc_drop_cred(struct uds__piece *p, int err)
{
    if (!p->anc || (err != EPERM && err != ESRCH))
        return 0;
    struct uds__anc *a = anc_of(p);
    if (a->off >= a->cred_len)
        return 0;
    a->len = (uint16_t)(a->len - (a->cred_len - a->off));
    a->off = a->cred_len;
    p->anc = a->len > 0;
    __atomic_fetch_add(&uds__cred_fallbacks, 1, __ATOMIC_RELAXED);
    return 1;
}

static void anc_control(struct uds__piece *p, struct msghdr *mh)
{
    struct uds__anc *a = anc_of(p);
    mh->msg_control = (char *)a->ctl + a->off;
    mh->msg_controllen = a->len;
}

/*
 * Stream: one sendmsg for up to 64 pieces, repeated while the kernel takes
 * everything. A piece with ancillary data starts a new sendmsg, with its
 * cmsg: the kernel attaches fds to the first byte of a sendmsg, so this is
 * what makes them leave with the first byte of their own write and never
 * with a neighbour's. A piece with credentials also ends its sendmsg (the
 * kernel stamps every byte of a sendmsg with its credentials, and the next
 * piece's bytes are not the ones they were given for). Once the kernel has
 * taken any byte of a piece its fds went with it: they are closed and
 * dropped from the piece, so the rest of a partly sent piece never sends
 * them again; its credentials stay with all of its bytes.
 * Returns 0 when the queue is empty, -EAGAIN when the socket is full, or
 * -errno.
 */
static int flush_stream(uds__outq *q, int fd)
{
    while (q->head) {
        struct iovec iov[IOV_BATCH];
        int n = 0;
        size_t want = 0;
        struct uds__piece *h = q->head;
        for (struct uds__piece *p = h; p && n < IOV_BATCH; p = p->next) {
            if (p->anc && n > 0)
                break;
            iov[n].iov_base = p->data + p->off;
            iov[n].iov_len = p->len - p->off;
            want += iov[n].iov_len;
            n++;
            if (p->anc && anc_of(p)->off < anc_of(p)->cred_len)
                break;
        }
        struct msghdr mh;
        memset(&mh, 0, sizeof(mh));
        mh.msg_iov = iov;
        mh.msg_iovlen = (size_t)n;
        if (h->anc)
            anc_control(h, &mh);
        ssize_t w = UDS__RETRY(sendmsg(fd, &mh, MSG_NOSIGNAL | MSG_DONTWAIT));
        /* not a socket: a terminal (conn.c's tty mode, for the forwarder;
           a tty reports EIO, never SIGPIPE). Only such a queue is ever
           flushed to a non-socket, and it holds no ancillary data */
        if (w < 0 && errno == ENOTSOCK && !h->anc)
            w = UDS__RETRY(writev(fd, iov, n));
        if (w < 0) {
            if (anc_drop_cred(h, errno))
                continue;
            return errno == EWOULDBLOCK ? -EAGAIN : uds__err();
        }
        if (w > 0 && h->anc && anc_of(h)->nfds)
            anc_close_fds(h);
        outq_consume(q, (size_t)w);
        if ((size_t)w < want)
            return -EAGAIN;
    }
    return 0;
}

/*
 * Packet sockets: a message may span pieces only if written with writev
 * (then it is one copy piece), so each piece is one message and sendmmsg
 * sends up to 64 of them per syscall, each with its own control buffer.
 */
static int flush_packets(uds__outq *q, int fd)
{
    while (q->head) {
        struct mmsghdr mm[IOV_BATCH];
        struct iovec iov[IOV_BATCH];
        int n = 0;
        memset(mm, 0, sizeof(mm));
        for (struct uds__piece *p = q->head; p && n < IOV_BATCH; p = p->next) {
            iov[n].iov_base = p->data;
            iov[n].iov_len = p->len;
            mm[n].msg_hdr.msg_iov = &iov[n];
            mm[n].msg_hdr.msg_iovlen = 1;
            if (p->anc)
                anc_control(p, &mm[n].msg_hdr);
            n++;
        }
        int s = UDS__RETRY(sendmmsg(fd, mm, (unsigned)n, MSG_NOSIGNAL | MSG_DONTWAIT));
        if (s < 0) {
            if (anc_drop_cred(q->head, errno))
                continue;
            return errno == EWOULDBLOCK ? -EAGAIN : uds__err();
        }
        for (int i = 0; i < s; i++) {
            struct uds__piece *p = q->head;
            q->head = p->next;
            q->bytes -= p->len;
            piece_free(p);
        }
        if (!q->head)
            q->tail = NULL;
        /* sendmmsg stops at a message the kernel refuses and drops the
           error: ask again at once for one with ancillary data, whose
           error (refused credentials, fds) must be seen, not waited out */
        if (s < n && !(s > 0 && q->head->anc))
            return -EAGAIN;
    }
    return 0;
}

int uds__outq_flush(uds__outq *q, int fd, int packets)
{
    return packets ? flush_packets(q, fd) : flush_stream(q, fd);
}
