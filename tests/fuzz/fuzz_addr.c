/*
 * fuzz_addr.c — the address parser and formatter on arbitrary bytes.
 * First byte selects the mode:
 *   even: the rest is address text for uds_addr_parsen(); when it parses,
 *         formatting must succeed and (for every kind whose text form is
 *         exact) parse back to an equal address;
 *   odd:  the rest is a raw sockaddr as the kernel might return it, for
 *         uds_addr_from_sockaddr() followed by uds_addr_format().
 * Host names are never looked up (only numeric tcp:/udp: hosts are fed to
 * the parser) so a run never waits on DNS.
 */
#include "udsock.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/*
 * tcp:/udp: text whose host part could make getaddrinfo() ask DNS: only
 * hosts that are empty, "*", or numeric (IPv4 plain, IPv6 in brackets) are
 * let through; the parser never resolves those.
 */
static int may_resolve(const char *s, size_t n)
{
    char host[300];
    size_t hl;
    if (n < 4 || (memcmp(s, "tcp:", 4) != 0 && memcmp(s, "udp:", 4) != 0))
        return 0;
    s += 4;
    n -= 4;
    if (n > 0 && s[0] == '[') {
        const char *rb = memchr(s, ']', n);
        if (!rb)
            return 0; /* refused before any lookup */
        hl = (size_t)(rb - s - 1);
        if (hl >= sizeof(host))
            return 0;
        memcpy(host, s + 1, hl);
        host[hl] = '\0';
        unsigned char a6[16];
        return hl > 0 && inet_pton(AF_INET6, host, a6) != 1;
    }
    const char *colon = NULL;
    for (size_t i = n; i > 0; i--)
        if (s[i - 1] == ':') {
            colon = s + i - 1;
            break;
        }
    if (!colon)
        return 0;
    hl = (size_t)(colon - s);
    if (hl >= sizeof(host))
        return 0;
    memcpy(host, s, hl);
    host[hl] = '\0';
    unsigned char a4[4], a6[16];
    if (hl == 0 || strcmp(host, "*") == 0 || inet_pton(AF_INET, host, a4) == 1)
        return 0;
    /* a colon in an unbracketed host is refused by the parser; others resolve */
    return memchr(host, ':', hl) == NULL || inet_pton(AF_INET6, host, a6) == 1;
}

static int printable_abstract(const uds_addr *a)
{
    size_t n = a->len - offsetof(struct sockaddr_un, sun_path) - 1;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)a->u.un.sun_path[1 + i];
        if (c < 0x20 || c > 0x7e || c == '\\')
            return 0;
    }
    return 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char buf[UDS_ADDR_STRLEN];
    uds_addr a, b;
    if (size < 1)
        return 0;
    const char *s = (const char *)data + 1;
    size_t n = size - 1;
    if ((data[0] & 1) == 0) {
        if (may_resolve(s, n))
            return 0;
        if (uds_addr_parsen(&a, s, n) != 0)
            return 0;
        int k = uds_addr_format(&a, buf, sizeof(buf));
        if (k <= 0 || (size_t)k != strlen(buf))
            abort();
        if (a.kind == UDS_ADDR_ABSTRACT && !printable_abstract(&a))
            return 0;
        if (uds_addr_parse(&b, buf) != 0 || !uds_addr_equal(&a, &b))
            abort();
        return 0;
    }
    if (n > sizeof(struct sockaddr_storage))
        n = sizeof(struct sockaddr_storage);
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof(ss));
    memcpy(&ss, s, n);
    if (uds_addr_from_sockaddr(&a, (struct sockaddr *)&ss, (socklen_t)n,
                               (data[0] & 2) ? SOCK_DGRAM : SOCK_STREAM) == 0) {
        int k = uds_addr_format(&a, buf, sizeof(buf));
        if (k == -ENOSPC || (k > 0 && (size_t)k != strlen(buf)))
            abort();
    }
    return 0;
}
