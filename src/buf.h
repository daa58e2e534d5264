/* buf.h — internal: the output queue of a connection (buf.c). */
#ifndef UDS_BUF_H
#define UDS_BUF_H

#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#include "udsock.h"

struct uds__piece;

typedef struct uds__outq {
    struct uds__piece *head, *tail;
    size_t bytes; /* queued and not yet sent */
} uds__outq;

/* Appends a copy of iov; coalesce = 0 keeps it a separate message.
   Stream callers never append 0 bytes. 0 or -ENOMEM. */
int uds__outq_copy(uds__outq *q, const struct iovec *iov, int n, int coalesce);
/* Appends a buffer handed over with its free function. 0 or -ENOMEM (then
   nothing is owned). */
int uds__outq_owned(uds__outq *q, void *data, size_t len,
                    void (*free_fn)(void *, void *), void *free_arg);
/*
 * Appends a copy of iov as a piece of its own that carries nfds fds (owned
 * by the queue from now on: closed once the kernel took them, or by
 * uds__outq_clear) and/or cred as SCM_CREDENTIALS. It never merges with
 * another piece and always starts a new sendmsg; on a stream its fds leave
 * with its first byte, its cred with every byte of it. The caller has
 * checked the limits (nfds <= UDS_MAX_FDS, len >= 1 where needed).
 * 0 or -ENOMEM (then the fds are still the caller's).
 */
int uds__outq_anc(uds__outq *q, const struct iovec *iov, int n, const int *fds,
                  size_t nfds, const uds_cred *cred, int packets);
/* Sends as much as the socket takes: 0 = empty now, -EAGAIN, -errno. */
int uds__outq_flush(uds__outq *q, int fd, int packets);
/* Frees every piece (owned ones through their free function). */
void uds__outq_clear(uds__outq *q);

#endif
