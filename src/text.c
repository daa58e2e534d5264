/*
 * text.c — text meant for people: the one escaping rule for anything a peer
 * chose (names, paths, data shown by -v), and a rate limit for log lines a
 * peer can trigger at will.
 */
#include "internal.h"

#include <string.h>

/* Length of the valid UTF-8 sequence at p (2..4), or 0. Overlong forms,
   surrogates, code points above U+10FFFF and C1 controls (U+0080..U+009F,
   which terminals obey as escape sequences) do not count as valid. */
static size_t utf8_len(const unsigned char *p, size_t n)
{
    unsigned c = p[0];
    size_t len;
    unsigned cp;
    if (c >= 0xc2 && c <= 0xdf) {
        len = 2;
        cp = c & 0x1f;
    } else if (c >= 0xe0 && c <= 0xef) {
        len = 3;
        cp = c & 0x0f;
    } else if (c >= 0xf0 && c <= 0xf4) {
        len = 4;
        cp = c & 0x07;
    } else {
        return 0;
    }
    if (n < len)
        return 0;
    for (size_t i = 1; i < len; i++) {
        if ((p[i] & 0xc0) != 0x80)
            return 0;
        cp = cp << 6 | (p[i] & 0x3f);
    }
    if ((len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) || cp > 0x10ffff ||
        (cp >= 0xd800 && cp <= 0xdfff) || (cp >= 0x80 && cp <= 0x9f))
        return 0;
    return len;
}

ssize_t uds_escape(const void *data, size_t len, char *out, size_t cap)
{
    static const char hex[] = "0123456789abcdef";
    const unsigned char *p = data;
    size_t need = 0, w = 0;
    int full = 0;
    if (!data && len)
        return -EINVAL;
    for (size_t i = 0; i < len;) {
        char tmp[4];
        const char *piece = tmp;
        size_t pl;
        unsigned c = p[i];
        size_t u = c >= 0x80 ? utf8_len(p + i, len - i) : 0;
        if (u) {
            piece = (const char *)p + i;
            pl = u;
        } else if (c == '\\' || c == '\n' || c == '\r' || c == '\t') {
            tmp[0] = '\\';
            tmp[1] = c == '\\' ? '\\' : c == '\n' ? 'n' : c == '\r' ? 'r' : 't';
            pl = 2;
        } else if (c >= 0x20 && c < 0x7f) {
            tmp[0] = (char)c;
            pl = 1;
        } else {
            tmp[0] = '\\';
            tmp[1] = 'x';
            tmp[2] = hex[c >> 4];
            tmp[3] = hex[c & 15];
            pl = 4;
        }
        i += u ? u : 1;
        /* never cut an escape or a character in half */
        if (!full && out && w + pl < cap) {
            memcpy(out + w, piece, pl);
            w += pl;
        } else {
            full = 1;
        }
        need += pl;
    }
    if (out && cap)
        out[w < cap ? w : cap - 1] = 0;
    return (ssize_t)need;
}

int uds_ratelimit_pass(uds_ratelimit *r, uint64_t now_ms, unsigned *suppressed)
{
    unsigned interval = r->interval_ms ? r->interval_ms : 1000;
    unsigned burst = r->burst ? r->burst : 10;
    if (suppressed)
        *suppressed = 0;
    if (r->begin_ms == 0 || now_ms - r->begin_ms >= interval) {
        if (suppressed)
            *suppressed = r->suppressed;
        r->begin_ms = now_ms ? now_ms : 1;
        r->used = 0;
        r->suppressed = 0;
    }
    if (r->used < burst) {
        r->used++;
        return 1;
    }
    r->suppressed++;
    return 0;
}

unsigned uds_ratelimit_flush(uds_ratelimit *r, uint64_t now_ms)
{
    unsigned interval = r->interval_ms ? r->interval_ms : 1000;
    if (r->begin_ms == 0 || now_ms - r->begin_ms < interval)
        return 0;
    unsigned n = r->suppressed;
    r->begin_ms = 0; /* the next pass opens a new interval */
    r->used = 0;
    r->suppressed = 0;
    return n;
}

uint64_t uds_ratelimit_end(const uds_ratelimit *r)
{
    return r->begin_ms + (r->interval_ms ? r->interval_ms : 1000);
}
