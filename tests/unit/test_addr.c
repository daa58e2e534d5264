/* test_addr.c — the address syntax: parse, format, from_sockaddr, limits. */
#include "testutil.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define SUN_OFF offsetof(struct sockaddr_un, sun_path)

static void test_paths(void **state)
{
    (void)state;
    uds_addr a;
    const char *ok[] = {"/run/x.sock", "./x.sock", "x.sock", "../a/b", "/a:b", "./c:d"};
    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        assert_int_equal(uds_addr_parse(&a, ok[i]), 0);
        assert_int_equal(a.kind, UDS_ADDR_PATH);
        assert_int_equal(a.u.un.sun_family, AF_UNIX);
        assert_string_equal(uds_addr_path(&a), ok[i]);
        assert_int_equal(a.len, SUN_OFF + strlen(ok[i]) + 1);
        assert_int_equal(uds_addr_family(&a), AF_UNIX);
    }
    assert_int_equal(uds_addr_parse(&a, "unix:/tmp/y.sock"), 0);
    assert_int_equal(a.kind, UDS_ADDR_PATH);
    assert_string_equal(uds_addr_path(&a), "/tmp/y.sock");
    /* unix: makes anything a path, even a name with a colon or an @ */
    assert_int_equal(uds_addr_parse(&a, "unix:rel:x"), 0);
    assert_string_equal(uds_addr_path(&a), "rel:x");
    assert_int_equal(uds_addr_parse(&a, "unix:@notabstract"), 0);
    assert_int_equal(a.kind, UDS_ADDR_PATH);
    assert_string_equal(uds_addr_path(&a), "@notabstract");
}

static void test_abstract(void **state)
{
    (void)state;
    uds_addr a;
    assert_int_equal(uds_addr_parse(&a, "@name"), 0);
    assert_int_equal(a.kind, UDS_ADDR_ABSTRACT);
    assert_int_equal(a.u.un.sun_path[0], '\0');
    assert_memory_equal(a.u.un.sun_path + 1, "name", 4);
    assert_int_equal(a.len, SUN_OFF + 1 + 4); /* no terminator counted */
    assert_null(uds_addr_path(&a));

    uds_addr b;
    assert_int_equal(uds_addr_parse(&b, "abstract:name"), 0);
    assert_true(uds_addr_equal(&a, &b));
    assert_int_equal(uds_addr_parse(&b, "@name2"), 0);
    assert_false(uds_addr_equal(&a, &b));

    /* longest abstract name: 107 bytes after the leading NUL */
    char t[200];
    t[0] = '@';
    memset(t + 1, 'a', 107);
    t[108] = '\0';
    assert_int_equal(uds_addr_parse(&a, t), 0);
    assert_int_equal(a.len, sizeof(struct sockaddr_un));
    t[108] = 'a';
    t[109] = '\0';
    assert_int_equal(uds_addr_parse(&a, t), -ENAMETOOLONG);
}

static void test_inet(void **state)
{
    (void)state;
    uds_addr a;
    assert_int_equal(uds_addr_parse(&a, "tcp:127.0.0.1:8080"), 0);
    assert_int_equal(a.kind, UDS_ADDR_TCP);
    assert_int_equal(a.u.in.sin_family, AF_INET);
    assert_int_equal(ntohs(a.u.in.sin_port), 8080);
    assert_int_equal(ntohl(a.u.in.sin_addr.s_addr), 0x7f000001);
    assert_int_equal(a.len, sizeof(struct sockaddr_in));
    assert_int_equal(uds_addr_family(&a), AF_INET);

    assert_int_equal(uds_addr_parse(&a, "tcp:[::1]:65535"), 0);
    assert_int_equal(a.kind, UDS_ADDR_TCP);
    assert_int_equal(a.u.in6.sin6_family, AF_INET6);
    assert_int_equal(ntohs(a.u.in6.sin6_port), 65535);
    struct in6_addr lo = IN6ADDR_LOOPBACK_INIT;
    assert_memory_equal(&a.u.in6.sin6_addr, &lo, sizeof(lo));
    assert_int_equal(uds_addr_family(&a), AF_INET6);

    assert_int_equal(uds_addr_parse(&a, "udp:10.1.2.3:0"), 0);
    assert_int_equal(a.kind, UDS_ADDR_UDP);
    assert_int_equal(ntohs(a.u.in.sin_port), 0);
    assert_int_equal(uds_addr_parse(&a, "udp:[::1]:53"), 0);
    assert_int_equal(a.kind, UDS_ADDR_UDP);
    assert_int_equal(a.u.in6.sin6_family, AF_INET6);

    /* empty host and * are the wildcard */
    assert_int_equal(uds_addr_parse(&a, "tcp::9000"), 0);
    assert_int_equal(a.u.in.sin_addr.s_addr, htonl(INADDR_ANY));
    assert_int_equal(uds_addr_parse(&a, "tcp:*:9000"), 0);
    assert_int_equal(a.u.in.sin_addr.s_addr, htonl(INADDR_ANY));

    /* localhost resolves (from /etc/hosts, no DNS) to a loopback address */
    assert_int_equal(uds_addr_parse(&a, "tcp:localhost:80"), 0);
    assert_true(a.u.sa.sa_family == AF_INET || a.u.sa.sa_family == AF_INET6);

    /* service names, as socat and nc take them (from /etc/services, no
       network): http is 80/tcp, domain 53/udp; the wildcard host too */
    assert_int_equal(uds_addr_parse(&a, "tcp:localhost:http"), 0);
    assert_true(a.u.sa.sa_family == AF_INET || a.u.sa.sa_family == AF_INET6);
    assert_int_equal(ntohs(a.u.sa.sa_family == AF_INET ? a.u.in.sin_port : a.u.in6.sin6_port), 80);
    assert_int_equal(uds_addr_parse(&a, "tcp:127.0.0.1:http"), 0);
    assert_int_equal(ntohs(a.u.in.sin_port), 80);
    assert_int_equal(uds_addr_parse(&a, "udp:[::1]:domain"), 0);
    assert_int_equal(ntohs(a.u.in6.sin6_port), 53);
    assert_int_equal(uds_addr_parse(&a, "tcp::ssh"), 0);
    assert_int_equal(ntohs(a.u.in.sin_port), 22);
}

static void test_invalid(void **state)
{
    (void)state;
    uds_addr a;
    /* each cause has its own code (defect 3 of issue 10: "tcp:::1:7411"
       and "tcp:[::1]:" used to get the same -EINVAL as any other typo) */
    static const struct {
        const char *text;
        int want;
    } bad[] = {
        {"", UDS_EADDR_EMPTY},
        {"unix:", UDS_EADDR_EMPTY},
        {"@", UDS_EADDR_EMPTY},
        {"abstract:", UDS_EADDR_EMPTY},
        {"tcp:", UDS_EADDR_NOPORT},
        {"tcp:127.0.0.1", UDS_EADDR_NOPORT},
        {"tcp:127.0.0.1:", UDS_EADDR_NOPORT},
        {"tcp:[::1]:", UDS_EADDR_NOPORT},
        {"tcp:[::1]", UDS_EADDR_NOPORT},
        {"tcp:127.0.0.1:65536", UDS_EADDR_PORTRANGE},
        {"tcp:1.2.3.4:99999", UDS_EADDR_PORTRANGE},
        {"tcp:127.0.0.1:99999999999999999999", UDS_EADDR_PORTRANGE},
        {"tcp:127.0.0.1:-1", UDS_EADDR_PORT},
        {"tcp:127.0.0.1:+1", UDS_EADDR_PORT},
        {"tcp:127.0.0.1: 80", UDS_EADDR_PORT},
        {"tcp:127.0.0.1:80x", UDS_EADDR_SERVICE},
        {"udp:1.2.3.4:abc", UDS_EADDR_SERVICE},
        {"tcp:::1:80", UDS_EADDR_V6BRACKETS},
        {"tcp:::1:7411", UDS_EADDR_V6BRACKETS},
        {"tcp:[::1]80", UDS_EADDR_SYNTAX},
        {"tcp:[]:80", UDS_EADDR_EMPTY},
        {"tcp:[::1:80", UDS_EADDR_SYNTAX},
        {"http://x", UDS_EADDR_SCHEME},
        {"foo:bar", UDS_EADDR_SCHEME},
        {"sctp:1.2.3.4:5", UDS_EADDR_SCHEME},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        a.kind = 99;
        int r = uds_addr_parse(&a, bad[i].text);
        if (r != bad[i].want)
            fail_msg("'%s' gave %d (%s), want %d (%s)", bad[i].text, r, uds_strerror(r),
                     bad[i].want, uds_strerror(bad[i].want));
        assert_true(UDS_EADDR_IS_SYNTAX(r));
        assert_int_equal(a.kind, UDS_ADDR_NONE); /* cleared on failure */
    }
    assert_int_equal(uds_addr_parse(&a, NULL), -EINVAL);
    assert_int_equal(uds_addr_parse(NULL, "/x"), -EINVAL);
    /* an unresolvable host name: "a..b" is not a valid DNS name, so glibc
       refuses it without sending a query (no network needed, no waiting) */
    int r = uds_addr_parse(&a, "tcp:bad..host:80");
    assert_int_equal(r, UDS_EADDR_NOHOST);
    assert_false(UDS_EADDR_IS_SYNTAX(r)); /* a resolver failure, not a typo */
    assert_string_equal(uds_strerror(r), "Name or service not known");
    assert_int_equal(a.kind, UDS_ADDR_NONE);
    /* every code has its own text */
    for (int c = UDS_EADDR_RESOLVE; c <= UDS_EADDR_SYNTAX; c++)
        assert_true(strncmp(uds_strerror(c), "Unknown error", 13) != 0);
}

static void test_parsen_nul(void **state)
{
    (void)state;
    uds_addr a;
    assert_int_equal(uds_addr_parsen(&a, "/tmp/a\0b", 8), -EINVAL);
    assert_int_equal(uds_addr_parsen(&a, "@ab\0", 4), -EINVAL);
    assert_int_equal(uds_addr_parsen(&a, "\0", 1), -EINVAL);
    assert_int_equal(uds_addr_parsen(&a, "tcp:1.2.3.4:8\0", 14), -EINVAL);
    assert_int_equal(uds_addr_parsen(&a, "x", 0), UDS_EADDR_EMPTY);
    /* not NUL-terminated: only len bytes count */
    assert_int_equal(uds_addr_parsen(&a, "/tmp/abcXXXX", 8), 0);
    assert_string_equal(uds_addr_path(&a), "/tmp/abc");
    assert_int_equal(uds_addr_parsen(&a, "@abcdef", 3), 0);
    assert_int_equal(a.len, SUN_OFF + 1 + 2);
}

static void roundtrip(const char *text, const char *want)
{
    uds_addr a, b;
    char buf[UDS_ADDR_STRLEN];
    int r = uds_addr_parse(&a, text);
    if (r != 0)
        fail_msg("parse '%s': %d", text, r);
    int n = uds_addr_format(&a, buf, sizeof(buf));
    assert_true(n > 0);
    assert_int_equal((size_t)n, strlen(buf));
    if (strcmp(buf, want) != 0)
        fail_msg("format '%s' gave '%s', want '%s'", text, buf, want);
    assert_int_equal(uds_addr_parse(&b, buf), 0);
    if (!uds_addr_equal(&a, &b))
        fail_msg("'%s' -> '%s' does not parse back to the same address", text, buf);
}

static void test_format(void **state)
{
    (void)state;
    roundtrip("/run/x.sock", "/run/x.sock");
    roundtrip("unix:/run/x.sock", "/run/x.sock");
    roundtrip("./x.sock", "./x.sock");
    roundtrip("x.sock", "x.sock");
    roundtrip("unix:a:b", "unix:a:b");
    roundtrip("unix:@at", "unix:@at");
    roundtrip("@name", "@name");
    roundtrip("abstract:with space", "@with space");
    roundtrip("tcp:127.0.0.1:80", "tcp:127.0.0.1:80");
    roundtrip("tcp:[::1]:8080", "tcp:[::1]:8080");
    roundtrip("udp:192.168.0.1:53", "udp:192.168.0.1:53");
    roundtrip("udp:[fe80::1]:53", "udp:[fe80::1]:53");

    /* non-printable bytes in an abstract name are escaped */
    uds_addr a;
    char buf[UDS_ADDR_STRLEN];
    memset(&a, 0, sizeof(a));
    a.kind = UDS_ADDR_ABSTRACT;
    a.u.un.sun_family = AF_UNIX;
    memcpy(a.u.un.sun_path, "\0a\001\\", 4);
    a.len = (socklen_t)(SUN_OFF + 4);
    assert_int_equal(uds_addr_format(&a, buf, sizeof(buf)), 10);
    assert_string_equal(buf, "@a\\x01\\x5c");

    /* too small a buffer: -ENOSPC, still NUL-terminated */
    assert_int_equal(uds_addr_parse(&a, "/run/x.sock"), 0);
    memset(buf, 'Z', sizeof(buf));
    assert_int_equal(uds_addr_format(&a, buf, 5), -ENOSPC);
    assert_int_equal(buf[4], '\0');
    assert_int_equal(uds_addr_format(&a, buf, 12), 11); /* exactly fits */
    assert_int_equal(uds_addr_format(&a, buf, 11), -ENOSPC);

    memset(&a, 0, sizeof(a));
    assert_int_equal(uds_addr_format(&a, buf, sizeof(buf)), -EINVAL);
    a.kind = UDS_ADDR_UNNAMED;
    assert_int_equal(uds_addr_format(&a, buf, sizeof(buf)), 9);
    assert_string_equal(buf, "(unnamed)");
}

static void test_from_sockaddr(void **state)
{
    (void)state;
    uds_addr a;
    char buf[UDS_ADDR_STRLEN];
    struct sockaddr_un un;
    memset(&un, 0, sizeof(un));
    un.sun_family = AF_UNIX;

    /* unnamed: only the family, or nothing at all */
    assert_int_equal(uds_addr_from_sockaddr(&a, (struct sockaddr *)&un, sizeof(sa_family_t), SOCK_STREAM), 0);
    assert_int_equal(a.kind, UDS_ADDR_UNNAMED);
    assert_int_equal(uds_addr_from_sockaddr(&a, NULL, 0, SOCK_DGRAM), 0);
    assert_int_equal(a.kind, UDS_ADDR_UNNAMED);
    assert_int_equal(uds_addr_family(&a), AF_UNIX);

    /* abstract (an autobind-style name) */
    memcpy(un.sun_path, "\0" "0001f", 6);
    assert_int_equal(uds_addr_from_sockaddr(&a, (struct sockaddr *)&un, (socklen_t)(SUN_OFF + 6), SOCK_DGRAM), 0);
    assert_int_equal(a.kind, UDS_ADDR_ABSTRACT);
    assert_int_equal(uds_addr_format(&a, buf, sizeof(buf)), 6);
    assert_string_equal(buf, "@0001f");

    /* path, with or without the NUL counted in the length */
    memset(un.sun_path, 0, sizeof(un.sun_path));
    strcpy(un.sun_path, "/tmp/s");
    uds_addr b;
    assert_int_equal(uds_addr_from_sockaddr(&a, (struct sockaddr *)&un, (socklen_t)(SUN_OFF + 6), SOCK_STREAM), 0);
    assert_int_equal(a.kind, UDS_ADDR_PATH);
    assert_string_equal(uds_addr_path(&a), "/tmp/s");
    assert_int_equal(uds_addr_from_sockaddr(&b, (struct sockaddr *)&un, (socklen_t)sizeof(un), SOCK_STREAM), 0);
    assert_true(uds_addr_equal(&a, &b));
    assert_int_equal(a.len, b.len);

    /* Internet: the socket type picks tcp vs udp */
    struct sockaddr_in sin;
    memset(&sin, 0, sizeof(sin));
    sin.sin_family = AF_INET;
    sin.sin_port = htons(1234);
    sin.sin_addr.s_addr = htonl(0x7f000001);
    assert_int_equal(uds_addr_from_sockaddr(&a, (struct sockaddr *)&sin, sizeof(sin), SOCK_DGRAM), 0);
    assert_int_equal(a.kind, UDS_ADDR_UDP);
    assert_int_equal(uds_addr_format(&a, buf, sizeof(buf)), (int)strlen("udp:127.0.0.1:1234"));
    assert_string_equal(buf, "udp:127.0.0.1:1234");
    assert_int_equal(uds_addr_from_sockaddr(&a, (struct sockaddr *)&sin, sizeof(sin), SOCK_STREAM), 0);
    assert_int_equal(a.kind, UDS_ADDR_TCP);

    /* lengths no kernel returns: refused, not read past (found by fuzz_addr) */
    struct sockaddr_storage ss;
    memset(&ss, 0xff, sizeof(ss));
    ss.ss_family = AF_UNIX;
    ((struct sockaddr_un *)&ss)->sun_path[0] = '\0';
    assert_int_equal(uds_addr_from_sockaddr(&a, (struct sockaddr *)&ss, sizeof(ss), SOCK_DGRAM), -EINVAL);
    assert_int_equal(a.kind, UDS_ADDR_NONE);
    assert_int_equal(uds_addr_from_sockaddr(&a, (struct sockaddr *)&sin, 4, SOCK_STREAM), -EINVAL);
    memset(&a, 0, sizeof(a));
    a.kind = UDS_ADDR_ABSTRACT;
    a.len = sizeof(ss);
    assert_int_equal(uds_addr_format(&a, buf, sizeof(buf)), -EINVAL);

    /* an unknown family */
    struct sockaddr sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_family = AF_APPLETALK;
    assert_int_equal(uds_addr_from_sockaddr(&a, &sa, sizeof(sa), SOCK_STREAM), -EAFNOSUPPORT);
    assert_int_equal(a.kind, UDS_ADDR_NONE);

    /* what the kernel reports for a real bound socket */
    char *dir = tu_tmpdir();
    assert_non_null(dir);
    uds_listener l;
    assert_int_equal(uds_addr_parse(&a, tu_path(dir, "k.sock")), 0);
    /* a trusted chain (the default binds by name): the real path */
    assert_int_equal(uds_listen(&l, &a, NULL), 0);
    assert_int_equal(uds_local_addr(l.fd, &b), 0);
    assert_true(uds_addr_equal(&a, &b));
    uds_listener_close(&l);
    /* a pinned bind is recorded as /proc/self/fd/DIRFD/NAME */
    uds_listen_opts pinned = {.flags = UDS_BIND_PINNED};
    assert_int_equal(uds_listen(&l, &a, &pinned), 0);
    assert_int_equal(uds_local_addr(l.fd, &b), 0);
    char want[64];
    snprintf(want, sizeof(want), "/proc/self/fd/%d/k.sock", l.dirfd);
    assert_string_equal(uds_addr_path(&b), want);
    uds_listener_close(&l);
    int fd = uds_dgram_socket(AF_UNIX, 0); /* autobound */
    assert_true(fd >= 0);
    assert_int_equal(uds_local_addr(fd, &b), 0);
    assert_int_equal(b.kind, UDS_ADDR_ABSTRACT);
    close(fd);
    fd = uds_dgram_socket(AF_UNIX, UDS_NO_AUTOBIND);
    assert_true(fd >= 0);
    assert_int_equal(uds_local_addr(fd, &b), 0);
    assert_int_equal(b.kind, UDS_ADDR_UNNAMED);
    close(fd);
    tu_rmtree(dir);
    free(dir);
}

/* A path of exactly `len` bytes inside dir: dir + "/" + a long file name. */
static void make_path(char *out, const char *dir, size_t len)
{
    size_t dl = strlen(dir);
    assert_true(len > dl + 10);
    memcpy(out, dir, dl);
    out[dl] = '/';
    memset(out + dl + 1, 'p', len - dl - 1);
    out[len] = '\0';
}

/*
 * Paths of any length up to UDS_PATH_MAX: a long one binds (through the
 * pinned directory), connects and sends (through an O_PATH descriptor),
 * formats whole and is removed at close; one byte more is refused by the
 * parser; a last component too long to bind is -ENAMETOOLONG with nothing
 * created. Regression: on 0.1 anything over 107 bytes was refused.
 */
static void test_path_limits(void **state)
{
    (void)state;
    char *dir = tu_tmpdir();
    assert_non_null(dir);
    static char p[UDS_PATH_MAX + 64], txt[UDS_ADDR_STRLEN];
    uds_addr a;
    uds_listener l;
    struct stat st;

    /* 107 bytes still fits sun_path; the kernel records the pinned name */
    make_path(p, dir, 107);
    assert_int_equal(uds_addr_parse(&a, p), 0);
    assert_true(a.len <= sizeof(struct sockaddr_un));
    assert_int_equal(uds_listen(&l, &a, NULL), 0);
    assert_int_equal(lstat(p, &st), 0);
    assert_true(S_ISSOCK(st.st_mode));
    int c = uds_connect(&a, NULL);
    assert_true(c >= 0);
    close(c);
    uds_listener_close(&l);
    assert_int_equal(lstat(p, &st), -1);

    /* 300 bytes: nested directories so the last component fits */
    size_t dl = strlen(dir);
    memcpy(p, dir, dl + 1);
    while (strlen(p) < 250) {
        strcat(p, "/dddddddddddddddddddddddddddddddddddddddd");
        assert_true(mkdir(p, 0700) == 0);
    }
    size_t n = strlen(p);
    p[n++] = '/';
    while (n < 300)
        p[n++] = 's';
    p[n] = '\0';
    assert_int_equal(strlen(p), 300);
    assert_int_equal(uds_addr_parse(&a, p), 0);
    assert_true(a.len > sizeof(struct sockaddr_un));
    assert_string_equal(uds_addr_path(&a), p);
    assert_int_equal(uds_addr_format(&a, txt, sizeof(txt)), 300);
    assert_string_equal(txt, p);
    uds_addr copy = a; /* a value: copies are whole */
    assert_true(uds_addr_equal(&copy, &a));
    assert_int_equal(uds_listen(&l, &a, NULL), 0);
    assert_int_equal(lstat(p, &st), 0);
    assert_true(S_ISSOCK(st.st_mode));
    c = uds_connect(&copy, NULL);
    assert_true(c >= 0);
    int s = uds_accept(l.fd, NULL, 0);
    assert_true(s >= 0);
    assert_int_equal(write(c, "x", 1), 1);
    char ch = 0;
    assert_int_equal(read(s, &ch, 1), 1);
    close(c);
    close(s);
    int before = tu_count_fds();
    assert_int_equal(uds_connect(&copy, &(uds_connect_opts){.type = UDS_DGRAM}), -EPROTOTYPE);
    assert_int_equal(tu_count_fds(), before); /* the O_PATH fd was closed */
    uds_listener_close(&l);
    assert_int_equal(lstat(p, &st), -1);

    /* datagrams to a long path: uds_sendto and uds_sendmsg */
    uds_listen_opts dg = {.type = UDS_DGRAM};
    assert_int_equal(uds_listen(&l, &a, &dg), 0);
    int u = uds_dgram_socket(AF_UNIX, 0);
    assert_true(u >= 0);
    assert_int_equal(uds_sendto(u, "hi", 2, &a), 2);
    uds_msg m = {.buf = (void *)"yo", .len = 2, .addr = &a};
    assert_int_equal(uds_sendmsg(u, &m), 2);
    char b[8];
    assert_int_equal(uds_recvfrom(l.fd, b, sizeof(b), NULL, 0), 2);
    assert_int_equal(uds_recvfrom(l.fd, b, sizeof(b), NULL, 0), 2);
    assert_memory_equal(b, "yo", 2);
    close(u);
    assert_int_equal(tu_count_fds(), before); /* no O_PATH fd left by a send */
    uds_listener_close(&l);
    assert_int_equal(tu_count_fds(), before - 2); /* socket and directory */

    /* the longest path the parser takes, and one byte more */
    memset(p, 'q', UDS_PATH_MAX + 1);
    p[0] = '/';
    p[UDS_PATH_MAX] = '\0';
    assert_int_equal(uds_addr_parse(&a, p), 0);
    assert_int_equal(strlen(uds_addr_path(&a)), UDS_PATH_MAX);
    p[UDS_PATH_MAX] = 'q';
    p[UDS_PATH_MAX + 1] = '\0';
    assert_int_equal(uds_addr_parse(&a, p), -ENAMETOOLONG);
    char u2[sizeof(p) + 8];
    snprintf(u2, sizeof(u2), "unix:%s", p);
    assert_int_equal(uds_addr_parse(&a, u2), -ENAMETOOLONG);

    /* a last component too long to bind: refused, nothing created */
    make_path(p, dir, dl + 1 + 100);
    assert_int_equal(uds_addr_parse(&a, p), 0);
    assert_int_equal(uds_listen(&l, &a, NULL), -ENAMETOOLONG);
    assert_int_equal(lstat(p, &st), -1);
    char lk[sizeof(p) + sizeof(UDS_LOCK_SUFFIX)];
    snprintf(lk, sizeof(lk), "%s%s", p, UDS_LOCK_SUFFIX);
    assert_int_equal(lstat(lk, &st), -1);
    tu_rmtree(dir);
    free(dir);
}

static void test_types(void **state)
{
    (void)state;
    assert_int_equal(uds_type_parse("stream"), UDS_STREAM);
    assert_int_equal(uds_type_parse("dgram"), UDS_DGRAM);
    assert_int_equal(uds_type_parse("datagram"), UDS_DGRAM);
    assert_int_equal(uds_type_parse("seqpacket"), UDS_SEQPACKET);
    assert_int_equal(uds_type_parse("raw"), -EINVAL);
    assert_int_equal(uds_type_parse(NULL), -EINVAL);
    assert_string_equal(uds_type_name(UDS_SEQPACKET), "seqpacket");
    assert_string_equal(uds_type_name(12345), "?");
    assert_string_equal(uds_version(), UDSOCK_VERSION);
    assert_string_equal(uds_strerror(-ENOENT), strerror(ENOENT));
    assert_string_equal(uds_strerror(UDS_EFRAME), "Malformed frame header from peer");
    assert_non_null(uds_strerror(-99999));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_paths),
        cmocka_unit_test(test_abstract),
        cmocka_unit_test(test_inet),
        cmocka_unit_test(test_invalid),
        cmocka_unit_test(test_parsen_nul),
        cmocka_unit_test(test_format),
        cmocka_unit_test(test_from_sockaddr),
        cmocka_unit_test(test_path_limits),
        cmocka_unit_test(test_types),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
