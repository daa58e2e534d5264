/*
 * buf.c — the output queue of a connection: a list of pieces, either
 * copies (small writes coalesced into one chunk) or buffers handed over with
 * a free function. Empty queue = no memory at all, which is what keeps an
 * idle connection small.
 */
#include "internal.h"
#include "buf.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>

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
    int msg_end; /* packet sockets: this piece ends a message */
    char inl[];  /* copy chunks keep their bytes here */
};

void uds__outq_clear(uds__outq *q)
{
    struct uds__piece *p = q->head, *n;
    for (; p; p = n) {
        n = p->next;
        if (p->free_fn)
            p->free_fn(p->data, p->free_arg);
        free(p);
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
        memcpy(t->data + t->len, iov[i].iov_base, iov[i].iov_len);
        t->len += iov[i].iov_len;
    }
    t->msg_end = !coalesce;
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
        if (p->free_fn)
            p->free_fn(p->data, p->free_arg);
        free(p);
    }
}

#define IOV_BATCH 64

/*
 * Stream: one sendmsg for up to 64 pieces, repeated while the kernel takes
 * everything. Returns 0 when the queue is empty, -EAGAIN when the socket is
 * full, or -errno.
 */
static int flush_stream(uds__outq *q, int fd)
{
    while (q->head) {
        struct iovec iov[IOV_BATCH];
        int n = 0;
        size_t want = 0;
        for (struct uds__piece *p = q->head; p && n < IOV_BATCH; p = p->next) {
            iov[n].iov_base = p->data + p->off;
            iov[n].iov_len = p->len - p->off;
            want += iov[n].iov_len;
            n++;
        }
        struct msghdr mh;
        memset(&mh, 0, sizeof(mh));
        mh.msg_iov = iov;
        mh.msg_iovlen = (size_t)n;
        ssize_t w = UDS__RETRY(sendmsg(fd, &mh, MSG_NOSIGNAL | MSG_DONTWAIT));
        if (w < 0)
            return errno == EWOULDBLOCK ? -EAGAIN : uds__err();
        outq_consume(q, (size_t)w);
        if ((size_t)w < want)
            return -EAGAIN;
    }
    return 0;
}

/*
 * Packet sockets: a message may span pieces only if written with writev
 * (then it is one copy piece), so each piece is one message and sendmmsg
 * sends up to 64 of them per syscall.
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
            n++;
        }
        int s = UDS__RETRY(sendmmsg(fd, mm, (unsigned)n, MSG_NOSIGNAL | MSG_DONTWAIT));
        if (s < 0)
            return errno == EWOULDBLOCK ? -EAGAIN : uds__err();
        for (int i = 0; i < s; i++) {
            struct uds__piece *p = q->head;
            q->head = p->next;
            q->bytes -= p->len;
            if (p->free_fn)
                p->free_fn(p->data, p->free_arg);
            free(p);
        }
        if (!q->head)
            q->tail = NULL;
        if (s < n)
            return -EAGAIN;
    }
    return 0;
}

int uds__outq_flush(uds__outq *q, int fd, int packets)
{
    return packets ? flush_packets(q, fd) : flush_stream(q, fd);
}
