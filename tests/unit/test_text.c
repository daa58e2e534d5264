/*
 * test_text.c — uds_escape (nothing a peer chose reaches a terminal raw)
 * and uds_ratelimit.
 */
#include "testutil.h"

#include <errno.h>
#include <string.h>

static void esc_is(const char *in, size_t len, const char *want)
{
    char out[256];
    ssize_t n = uds_escape(in, len, out, sizeof(out));
    assert_int_equal(n, (ssize_t)strlen(want));
    assert_string_equal(out, want);
}

static void test_escape(void **state)
{
    (void)state;
    esc_is("plain text 123", 14, "plain text 123");
    esc_is("a\\b", 3, "a\\\\b");
    esc_is("l1\nl2\r\t", 7, "l1\\nl2\\r\\t");
    /* a forged /proc/net/unix line and terminal escapes stay inert */
    esc_is("x\n0000: 00000002 /run/forged.sock", 33, "x\\n0000: 00000002 /run/forged.sock");
    esc_is("\x1b]0;title\x07\x1b[2J", 14, "\\x1b]0;title\\x07\\x1b[2J");
    esc_is("\0ab\x7f", 4, "\\x00ab\\x7f");
    /* valid UTF-8 stays, invalid and C1 controls are escaped */
    esc_is("caf\xc3\xa9", 5, "caf\xc3\xa9");
    esc_is("\xe2\x82\xac", 3, "\xe2\x82\xac");
    esc_is("\xf0\x9f\x98\x80", 4, "\xf0\x9f\x98\x80");
    esc_is("\xc3", 1, "\\xc3");               /* cut short */
    esc_is("\xc0\xaf", 2, "\\xc0\\xaf");       /* overlong '/' */
    esc_is("\xed\xa0\x80", 3, "\\xed\\xa0\\x80"); /* a surrogate */
    esc_is("\xc2\x9b", 2, "\\xc2\\x9b");       /* C1 CSI */
    esc_is("\xff\xfe", 2, "\\xff\\xfe");
}

static void test_escape_truncation(void **state)
{
    (void)state;
    char out[8];
    /* needs 12 bytes; gets cut between whole escapes, always terminated */
    ssize_t n = uds_escape("\x01\x02\x03", 3, out, sizeof(out));
    assert_int_equal(n, 12);
    assert_string_equal(out, "\\x01");
    n = uds_escape("abcdefghij", 10, out, sizeof(out));
    assert_int_equal(n, 10);
    assert_string_equal(out, "abcdefg");
    assert_int_equal(uds_escape("ab", 2, NULL, 0), 2);
    assert_int_equal(uds_escape(NULL, 1, out, sizeof(out)), -EINVAL);
    assert_int_equal(uds_escape(NULL, 0, out, sizeof(out)), 0);
    assert_string_equal(out, "");
}

static void test_ratelimit(void **state)
{
    (void)state;
    uds_ratelimit r;
    memset(&r, 0, sizeof(r));
    unsigned sup = 99;
    int passed = 0;
    for (int i = 0; i < 100; i++)
        passed += uds_ratelimit_pass(&r, 5000 + (uint64_t)i, &sup);
    assert_int_equal(passed, 10);
    assert_int_equal(sup, 0);
    assert_int_equal(uds_ratelimit_flush(&r, 5500), 0);   /* not over yet */
    assert_int_equal(uds_ratelimit_end(&r), 6000);
    /* a new second: the count of the old one is reported once */
    assert_int_equal(uds_ratelimit_pass(&r, 6001, &sup), 1);
    assert_int_equal(sup, 90);
    for (int i = 0; i < 20; i++)
        uds_ratelimit_pass(&r, 6002, NULL);
    assert_int_equal(uds_ratelimit_flush(&r, 7001), 11);
    assert_int_equal(uds_ratelimit_flush(&r, 7002), 0);
    assert_int_equal(uds_ratelimit_pass(&r, 7003, &sup), 1);
    assert_int_equal(sup, 0);
    uds_ratelimit q = {.interval_ms = 100, .burst = 2};
    assert_int_equal(uds_ratelimit_pass(&q, 1, NULL), 1);
    assert_int_equal(uds_ratelimit_pass(&q, 2, NULL), 1);
    assert_int_equal(uds_ratelimit_pass(&q, 3, NULL), 0);
    assert_int_equal(uds_ratelimit_pass(&q, 101, &sup), 1);
    assert_int_equal(sup, 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_escape),
        cmocka_unit_test(test_escape_truncation),
        cmocka_unit_test(test_ratelimit),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
