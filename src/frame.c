/*
 * frame.c — the message codec: length-prefixed, newline-delimited and
 * one-packet-one-message. Pure functions over caller buffers: no I/O, no
 * allocation, no state, so a fuzzer can drive them directly and a peer's
 * length is judged before anyone allocates for it.
 */
#include "internal.h"

#include <string.h>

static size_t frame_max(const uds_framer *f)
{
    size_t m = f->max ? f->max : UDS_FRAME_DEFAULT_MAX;
    return m > UDS_FRAME_LIMIT ? UDS_FRAME_LIMIT : m;
}

int uds_frame_decode(const uds_framer *f, const void *buf, size_t len,
                     uds_frame *out)
{
    if (!f || !out || (!buf && len))
        return -EINVAL;
    const unsigned char *p = buf;
    size_t max = frame_max(f);
    out->data = NULL;
    out->len = 0;
    out->need = 0;
    switch (f->mode) {
    case 0:
    case UDS_FRAME_LEN32: {
        if (len < UDS_FRAME_HDR_LEN)
            return 0;
        uint32_t n = (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
                     (uint32_t)p[2] << 8 | p[3];
        if (n & 0x80000000u)
            return UDS_EFRAME;
        if (n > max)
            return -EMSGSIZE;
        size_t total = UDS_FRAME_HDR_LEN + (size_t)n;
        if (len < total) {
            out->need = total;
            return 0;
        }
        out->data = p + UDS_FRAME_HDR_LEN;
        out->len = n;
        return (int)total;
    }
    case UDS_FRAME_LINE: {
        /* look no further than a maximal line: the verdict on an endless
           line comes as soon as max + "\r\n" bytes are in */
        size_t scan = len < max + 2 ? len : max + 2;
        /* scan == 0 (nothing buffered yet, p may be NULL): memchr(NULL, .., 0)
           is undefined behaviour, so do not call it */
        const unsigned char *nl = scan ? memchr(p, '\n', scan) : NULL;
        if (!nl)
            return len >= max + 2 ? -EMSGSIZE : 0;
        size_t n = (size_t)(nl - p);
        size_t used = n + 1;
        if (n > 0 && p[n - 1] == '\r')
            n--;
        if (n > max)
            return -EMSGSIZE;
        out->data = p;
        out->len = n;
        return (int)used;
    }
    case UDS_FRAME_PACKET:
        /* an empty packet is an empty message, not an error: it uses no
           bytes, so it is the one 0 return of this mode (a packet is never
           incomplete), with data and len describing it */
        if (len == 0) {
            out->data = buf;
            return 0;
        }
        if (len > max)
            return -EMSGSIZE;
        out->data = p;
        out->len = len;
        return (int)(len > INT32_MAX ? INT32_MAX : len);
    default:
        return -EINVAL;
    }
}

int uds_frame_header(const uds_framer *f, size_t len,
                     uint8_t hdr[UDS_FRAME_HDR_LEN])
{
    if (!f)
        return -EINVAL;
    if (len > frame_max(f))
        return -EMSGSIZE;
    if (f->mode != 0 && f->mode != UDS_FRAME_LEN32)
        return f->mode == UDS_FRAME_LINE || f->mode == UDS_FRAME_PACKET ? 0 : -EINVAL;
    hdr[0] = (uint8_t)(len >> 24);
    hdr[1] = (uint8_t)(len >> 16);
    hdr[2] = (uint8_t)(len >> 8);
    hdr[3] = (uint8_t)len;
    return UDS_FRAME_HDR_LEN;
}

ssize_t uds_frame_encode(const uds_framer *f, const void *msg, size_t len,
                         void *out, size_t cap)
{
    if (!f || (!msg && len) || (!out && cap))
        return -EINVAL;
    uint8_t hdr[UDS_FRAME_HDR_LEN];
    int h = uds_frame_header(f, len, hdr);
    if (h < 0)
        return h;
    size_t trail = f->mode == UDS_FRAME_LINE ? 1 : 0;
    if (trail && len && memchr(msg, '\n', len))
        return -EINVAL;
    size_t total = (size_t)h + len + trail;
    if (total > cap)
        return -ENOSPC;
    unsigned char *o = out;
    memcpy(o, hdr, (size_t)h);
    if (len)
        memcpy(o + h, msg, len);
    if (trail)
        o[h + len] = '\n';
    return (ssize_t)total;
}
