/*
 * addr.c — the address syntax shared by the library and the CLI.
 *
 * A uds_addr is a value: a kind plus a ready-to-use sockaddr and its length,
 * so bind()/connect()/sendto() never need to know where it came from.
 */
#include "internal.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define UDS__SUN_OFF offsetof(struct sockaddr_un, sun_path)

static int has_prefix(const char *s, size_t n, const char *p)
{
    size_t pl = strlen(p);
    return n >= pl && memcmp(s, p, pl) == 0;
}

/*
 * Filesystem path: must be non-empty and at most UDS_PATH_MAX bytes. It is
 * kept whole in u.path.name; len counts it as a sockaddr_un would, so a
 * path that fits sun_path is a ready sockaddr and a longer one has a len
 * the kernel refuses (the library reaches it through /proc, pin.c).
 */
static int parse_path(uds_addr *out, const char *s, size_t n)
{
    if (n == 0)
        return UDS_EADDR_EMPTY;
    if (n > UDS_PATH_MAX)
        return -ENAMETOOLONG;
    out->kind = UDS_ADDR_PATH;
    out->u.path.family = AF_UNIX;
    memcpy(out->u.path.name, s, n);
    out->u.path.name[n] = '\0';
    out->len = (socklen_t)(UDS__SUN_OFF + n + 1);
    return 0;
}

/*
 * Abstract name: a leading NUL byte then the name, and the length says
 * where it ends (no terminator), so "@a" and "@a\0" would be different names.
 */
static int parse_abstract(uds_addr *out, const char *s, size_t n)
{
    if (n == 0)
        return UDS_EADDR_EMPTY;
    if (n > sizeof(out->u.un.sun_path) - 1)
        return -ENAMETOOLONG;
    out->kind = UDS_ADDR_ABSTRACT;
    out->u.un.sun_family = AF_UNIX;
    out->u.un.sun_path[0] = '\0';
    memcpy(out->u.un.sun_path + 1, s, n);
    out->len = (socklen_t)(UDS__SUN_OFF + 1 + n);
    return 0;
}

/*
 * The port part of tcp:/udp: text: a decimal number 0-65535, or a service
 * name from /etc/services for this protocol ("http", as socat and nc take
 * them). Each way it can be wrong has its own code so a caller can say
 * which (see the UDS_EADDR_* list in udsock.h).
 */
static int parse_port(const char *port, size_t pl, int kind, unsigned *out)
{
    if (pl == 0)
        return UDS_EADDR_NOPORT;
    int digits = 1, letters = 0;
    for (size_t i = 0; i < pl; i++) {
        unsigned char c = (unsigned char)port[i];
        if (isalpha(c))
            letters = 1;
        if (!isdigit(c))
            digits = 0;
        if (!isalnum(c) && !(i > 0 && (c == '-' || c == '_' || c == '.')))
            return UDS_EADDR_PORT;
    }
    if (digits) {
        unsigned long pv = 0;
        for (size_t i = 0; i < pl; i++) {
            pv = pv * 10 + (unsigned long)(port[i] - '0');
            if (pv > 65535)
                return UDS_EADDR_PORTRANGE;
        }
        *out = (unsigned)pv;
        return 0;
    }
    if (!letters)
        return UDS_EADDR_PORT;
    struct servent se, *res = NULL;
    char buf[1024];
    if (getservbyname_r(port, kind == UDS_ADDR_UDP ? "udp" : "tcp", &se, buf, sizeof(buf),
                        &res) != 0 || !res)
        return UDS_EADDR_SERVICE;
    *out = ntohs((uint16_t)res->s_port);
    return 0;
}

/* A getaddrinfo() failure as a return code of this library. */
static int gai_code(int g, int saved_errno)
{
    switch (g) {
    case EAI_NONAME:
#ifdef EAI_NODATA
    case EAI_NODATA:
#endif
#ifdef EAI_ADDRFAMILY
    case EAI_ADDRFAMILY:
#endif
        return UDS_EADDR_NOHOST;
    case EAI_MEMORY:
        return -ENOMEM;
    case EAI_SYSTEM:
        return saved_errno > 0 ? -saved_errno : UDS_EADDR_RESOLVE;
    default: /* EAI_AGAIN, EAI_FAIL and the rest */
        return UDS_EADDR_RESOLVE;
    }
}

/*
 * HOST:PORT or [V6HOST]:PORT. An empty host or "*" means the wildcard
 * address (for listening). Numeric hosts never touch the resolver; a
 * service name is looked up in /etc/services only (getservbyname_r).
 */
static int parse_inet(uds_addr *out, const char *s, size_t n, int kind)
{
    char host[256], port[64];
    const char *colon;
    size_t hl;

    if (n > 0 && s[0] == '[') {
        const char *rb = memchr(s, ']', n);
        if (!rb)
            return UDS_EADDR_SYNTAX; /* unclosed bracket */
        if (rb + 1 == s + n)
            return UDS_EADDR_NOPORT; /* "[::1]" */
        if (rb[1] != ':')
            return UDS_EADDR_SYNTAX; /* "[::1]80" */
        hl = (size_t)(rb - s - 1);
        if (hl == 0)
            return UDS_EADDR_EMPTY; /* "[]:80" */
        if (hl >= sizeof(host))
            return -ENAMETOOLONG;
        memcpy(host, s + 1, hl);
        host[hl] = '\0';
        colon = rb + 1;
    } else {
        colon = NULL;
        for (size_t i = n; i > 0; i--)
            if (s[i - 1] == ':') {
                colon = s + i - 1;
                break;
            }
        if (!colon)
            return UDS_EADDR_NOPORT; /* "tcp:" or "tcp:HOST" */
        hl = (size_t)(colon - s);
        if (memchr(s, ':', hl))
            return UDS_EADDR_V6BRACKETS; /* a bare IPv6 address */
        if (hl >= sizeof(host))
            return -ENAMETOOLONG;
        memcpy(host, s, hl);
        host[hl] = '\0';
    }
    size_t pl = (size_t)(s + n - colon - 1);
    if (pl >= sizeof(port))
        return UDS_EADDR_PORT;
    memcpy(port, colon + 1, pl);
    port[pl] = '\0';
    unsigned pv = 0;
    int r = parse_port(port, pl, kind, &pv);
    if (r < 0)
        return r;

    out->kind = kind;
    if (host[0] == '\0' || strcmp(host, "*") == 0) {
        out->u.in.sin_family = AF_INET;
        out->u.in.sin_addr.s_addr = htonl(INADDR_ANY);
        out->u.in.sin_port = htons((uint16_t)pv);
        out->len = sizeof(struct sockaddr_in);
        return 0;
    }
    if (inet_pton(AF_INET, host, &out->u.in.sin_addr) == 1) {
        out->u.in.sin_family = AF_INET;
        out->u.in.sin_port = htons((uint16_t)pv);
        out->len = sizeof(struct sockaddr_in);
        return 0;
    }
    if (inet_pton(AF_INET6, host, &out->u.in6.sin6_addr) == 1) {
        out->u.in6.sin6_family = AF_INET6;
        out->u.in6.sin6_port = htons((uint16_t)pv);
        out->len = sizeof(struct sockaddr_in6);
        return 0;
    }
    char num[8];
    snprintf(num, sizeof(num), "%u", pv);
    struct addrinfo hints, *res = NULL;
    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = kind == UDS_ADDR_UDP ? SOCK_DGRAM : SOCK_STREAM;
    hints.ai_flags = AI_NUMERICSERV | AI_ADDRCONFIG;
    int g = getaddrinfo(host, num, &hints, &res);
    if (g != 0 || !res) {
        /* AI_ADDRCONFIG hides "localhost" on hosts with loopback only */
        hints.ai_flags = AI_NUMERICSERV;
        errno = 0;
        g = getaddrinfo(host, num, &hints, &res);
        if (g != 0 || !res)
            return g != 0 ? gai_code(g, errno) : UDS_EADDR_NOHOST;
    }
    if (res->ai_addrlen > sizeof(out->u.ss)) {
        freeaddrinfo(res);
        return UDS_EADDR_RESOLVE;
    }
    memcpy(&out->u.ss, res->ai_addr, res->ai_addrlen);
    out->len = (socklen_t)res->ai_addrlen;
    freeaddrinfo(res);
    return 0;
}

static int parse_any(uds_addr *out, const char *s, size_t n)
{
    if (n == 0)
        return UDS_EADDR_EMPTY;
    if (memchr(s, '\0', n))
        return -EINVAL;
    if (s[0] == '@')
        return parse_abstract(out, s + 1, n - 1);
    if (has_prefix(s, n, "abstract:"))
        return parse_abstract(out, s + 9, n - 9);
    if (has_prefix(s, n, "unix:"))
        return parse_path(out, s + 5, n - 5);
    if (has_prefix(s, n, "tcp:"))
        return parse_inet(out, s + 4, n - 4, UDS_ADDR_TCP);
    if (has_prefix(s, n, "udp:"))
        return parse_inet(out, s + 4, n - 4, UDS_ADDR_UDP);
    /* Anything that looks like a path is one; an unknown "scheme:" is not. */
    if (s[0] != '/' && s[0] != '.' && memchr(s, ':', n))
        return UDS_EADDR_SCHEME;
    return parse_path(out, s, n);
}

/* A failed parse leaves UDS_ADDR_NONE, never a half-filled address. */
int uds_addr_parsen(uds_addr *out, const char *s, size_t n)
{
    if (!out || !s)
        return -EINVAL;
    memset(out, 0, sizeof(*out));
    int r = parse_any(out, s, n);
    if (r < 0)
        memset(out, 0, sizeof(*out));
    return r;
}

int uds_addr_parse(uds_addr *out, const char *text)
{
    if (!text) {
        if (out)
            memset(out, 0, sizeof(*out));
        return -EINVAL;
    }
    return uds_addr_parsen(out, text, strlen(text));
}

/* Appends printf-style text at *pos, tracking overflow instead of failing early. */
static void put(char *buf, size_t size, size_t *pos, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
#include <stdarg.h>
static void put(char *buf, size_t size, size_t *pos, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *dst = *pos < size ? buf + *pos : NULL;
    size_t room = *pos < size ? size - *pos : 0;
    int k = vsnprintf(dst, room, fmt, ap);
    va_end(ap);
    if (k > 0)
        *pos += (size_t)k;
}

int uds_addr_format(const uds_addr *a, char *buf, size_t size)
{
    size_t pos = 0;
    char ip[INET6_ADDRSTRLEN];

    if (!a || (!buf && size))
        return -EINVAL;
    switch (a->kind) {
    case UDS_ADDR_PATH: {
        const char *p = a->u.path.name;
        int needs_scheme = p[0] != '/' && p[0] != '.' && (p[0] == '@' || strchr(p, ':'));
        put(buf, size, &pos, "%s%s", needs_scheme ? "unix:" : "", p);
        break;
    }
    case UDS_ADDR_ABSTRACT: {
        if (a->len <= UDS__SUN_OFF || a->len > sizeof(struct sockaddr_un))
            return -EINVAL; /* a hand-made value with an impossible length */
        size_t n = a->len - UDS__SUN_OFF - 1;
        put(buf, size, &pos, "@");
        for (size_t i = 0; i < n; i++) {
            unsigned char c = (unsigned char)a->u.un.sun_path[1 + i];
            if (isprint(c) && c != '\\')
                put(buf, size, &pos, "%c", c);
            else
                put(buf, size, &pos, "\\x%02x", c);
        }
        break;
    }
    case UDS_ADDR_UNNAMED:
        put(buf, size, &pos, "(unnamed)");
        break;
    case UDS_ADDR_TCP:
    case UDS_ADDR_UDP: {
        const char *scheme = a->kind == UDS_ADDR_TCP ? "tcp" : "udp";
        if (a->u.sa.sa_family == AF_INET) {
            inet_ntop(AF_INET, &a->u.in.sin_addr, ip, sizeof(ip));
            put(buf, size, &pos, "%s:%s:%u", scheme, ip, ntohs(a->u.in.sin_port));
        } else if (a->u.sa.sa_family == AF_INET6) {
            inet_ntop(AF_INET6, &a->u.in6.sin6_addr, ip, sizeof(ip));
            put(buf, size, &pos, "%s:[%s]:%u", scheme, ip, ntohs(a->u.in6.sin6_port));
        } else {
            return -EINVAL;
        }
        break;
    }
    default:
        return -EINVAL;
    }
    if (pos >= size) {
        if (size)
            buf[size - 1] = '\0';
        return -ENOSPC;
    }
    return (int)pos;
}

int uds_addr_from_sockaddr(uds_addr *out, const struct sockaddr *sa,
                           socklen_t len, int socktype)
{
    if (!out || (!sa && len))
        return -EINVAL;
    /* a kernel address fits sockaddr_storage: the long-path room of
       u.path is left as it is (every accept and recvfrom comes here) */
    memset(out, 0, offsetof(uds_addr, u) + sizeof(out->u.ss));
    if (len > sizeof(out->u.ss))
        return -EINVAL;
    if (len < sizeof(sa_family_t)) { /* some kernels report 0 for unnamed */
        out->kind = UDS_ADDR_UNNAMED;
        out->u.un.sun_family = AF_UNIX;
        out->len = sizeof(sa_family_t);
        return 0;
    }
    memcpy(&out->u.ss, sa, len);
    out->len = len;
    switch (sa->sa_family) {
    case AF_UNIX:
        if (len > sizeof(struct sockaddr_un)) {
            memset(out, 0, offsetof(uds_addr, u) + sizeof(out->u.ss));
            return -EINVAL; /* longer than any name the kernel can hold */
        }
        if (len <= UDS__SUN_OFF) {
            out->kind = UDS_ADDR_UNNAMED;
        } else if (out->u.un.sun_path[0] == '\0') {
            out->kind = UDS_ADDR_ABSTRACT;
        } else {
            /* the kernel may or may not count the NUL: normalise to counting it */
            size_t n = strnlen(out->u.un.sun_path, len - UDS__SUN_OFF);
            /* a full 108-byte name without its NUL (bound by someone
               else): room for the NUL is in u.path */
            out->u.path.name[n] = '\0';
            out->kind = UDS_ADDR_PATH;
            out->len = (socklen_t)(UDS__SUN_OFF + n + 1);
        }
        return 0;
    case AF_INET:
    case AF_INET6:
        if (len < (sa->sa_family == AF_INET ? sizeof(struct sockaddr_in)
                                            : sizeof(struct sockaddr_in6))) {
            memset(out, 0, offsetof(uds_addr, u) + sizeof(out->u.ss));
            return -EINVAL; /* too short to hold the address it claims */
        }
        out->kind = socktype == SOCK_DGRAM ? UDS_ADDR_UDP : UDS_ADDR_TCP;
        return 0;
    default:
        memset(out, 0, offsetof(uds_addr, u) + sizeof(out->u.ss));
        return -EAFNOSUPPORT;
    }
}

int uds_addr_family(const uds_addr *a)
{
    if (!a)
        return -EINVAL;
    switch (a->kind) {
    case UDS_ADDR_PATH:
    case UDS_ADDR_ABSTRACT:
    case UDS_ADDR_UNNAMED:
        return AF_UNIX;
    case UDS_ADDR_TCP:
    case UDS_ADDR_UDP:
        return a->u.sa.sa_family;
    default:
        return -EINVAL;
    }
}

const char *uds_addr_path(const uds_addr *a)
{
    return a && a->kind == UDS_ADDR_PATH ? a->u.path.name : NULL;
}

int uds_addr_equal(const uds_addr *a, const uds_addr *b)
{
    if (!a || !b || a->kind != b->kind)
        return 0;
    switch (a->kind) {
    case UDS_ADDR_PATH:
        return strcmp(a->u.path.name, b->u.path.name) == 0;
    case UDS_ADDR_UNNAMED:
        return 1;
    default:
        return a->len == b->len && memcmp(&a->u, &b->u, a->len) == 0;
    }
}
