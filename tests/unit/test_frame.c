/* test_frame.c — the framing codec: every split, limits, bad headers, lines. */
#include "testutil.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* Encodes msgs 0..n-1 (message i has length lens[i], content tu_fill(i)). */
static size_t build(const uds_framer *f, const size_t *lens, int n, char *out,
                    size_t cap)
{
    size_t off = 0;
    for (int i = 0; i < n; i++) {
        char m[300];
        tu_fill(m, lens[i], (uint32_t)i + 1);
        if (f->mode == UDS_FRAME_LINE)
            for (size_t k = 0; k < lens[i]; k++)
                m[k] = (char)('a' + (unsigned char)m[k] % 26);
        ssize_t r = uds_frame_encode(f, m, lens[i], out + off, cap - off);
        assert_true(r > 0);
        off += (size_t)r;
    }
    return off;
}

/*
 * Feeds `wire` to a decoder as two reads split at every byte boundary,
 * like a connection's input buffer would: decode all complete frames,
 * keep the rest, append the next piece. Every message must come out
 * exactly once, intact and in order.
 */
static void check_splits(const uds_framer *f, const size_t *lens, int n)
{
    char wire[4096];
    size_t total = build(f, lens, n, wire, sizeof(wire));
    for (size_t cut = 0; cut <= total; cut++) {
        char buf[4096];
        size_t have = 0, off = 0;
        int got = 0;
        size_t pieces[2] = {cut, total - cut};
        size_t src = 0;
        for (int p = 0; p < 2; p++) {
            memcpy(buf + have, wire + src, pieces[p]);
            have += pieces[p];
            src += pieces[p];
            for (;;) {
                uds_frame fr;
                int r = uds_frame_decode(f, buf + off, have - off, &fr);
                assert_true(r >= 0);
                if (r == 0) {
                    if (f->mode != UDS_FRAME_LINE && have - off >= UDS_FRAME_HDR_LEN)
                        assert_true(fr.need > have - off);
                    break;
                }
                assert_true(got < n);
                assert_int_equal(fr.len, lens[got]);
                char m[300];
                tu_fill(m, lens[got], (uint32_t)got + 1);
                if (f->mode == UDS_FRAME_LINE)
                    for (size_t k = 0; k < lens[got]; k++)
                        m[k] = (char)('a' + (unsigned char)m[k] % 26);
                if (lens[got])
                    assert_memory_equal(fr.data, m, lens[got]);
                off += (size_t)r;
                got++;
            }
        }
        assert_int_equal(got, n);
        assert_int_equal(off, total);
    }
}

static void test_len32_splits(void **state)
{
    (void)state;
    uds_framer f = {UDS_FRAME_LEN32, 1000};
    size_t lens[] = {0, 1, 5, 200, 3, 0, 17};
    check_splits(&f, lens, (int)(sizeof(lens) / sizeof(lens[0])));
}

static void test_line_splits(void **state)
{
    (void)state;
    uds_framer f = {UDS_FRAME_LINE, 1000};
    size_t lens[] = {0, 1, 5, 200, 3, 0, 17};
    check_splits(&f, lens, (int)(sizeof(lens) / sizeof(lens[0])));
}

/* Three-way splits at every pair of boundaries over a small input. */
static void test_len32_three_way(void **state)
{
    (void)state;
    uds_framer f = {UDS_FRAME_LEN32, 100};
    size_t lens[] = {2, 0, 9};
    char wire[128];
    size_t total = build(&f, lens, 3, wire, sizeof(wire));
    for (size_t a = 0; a <= total; a++)
        for (size_t b = a; b <= total; b++) {
            char buf[128];
            size_t have = 0, off = 0, cuts[3] = {a, b, total};
            int got = 0;
            for (int p = 0; p < 3; p++) {
                memcpy(buf + have, wire + have, cuts[p] - have);
                have = cuts[p];
                uds_frame fr;
                int r;
                while ((r = uds_frame_decode(&f, buf + off, have - off, &fr)) > 0) {
                    assert_int_equal(fr.len, lens[got]);
                    off += (size_t)r;
                    got++;
                }
                assert_int_equal(r, 0);
            }
            assert_int_equal(got, 3);
        }
}

static void test_len32_limits(void **state)
{
    (void)state;
    uds_framer f = {UDS_FRAME_LEN32, 1000};
    uint8_t h[4];
    uds_frame fr;
    /* exactly at the limit: accepted (incomplete, needs 1004 bytes) */
    assert_int_equal(uds_frame_header(&f, 1000, h), 4);
    assert_int_equal(uds_frame_decode(&f, h, 4, &fr), 0);
    assert_int_equal(fr.need, 1004);
    /* one above: refused from the header alone, before any payload */
    h[3]++;
    assert_int_equal(uds_frame_decode(&f, h, 4, &fr), -EMSGSIZE);
    assert_int_equal(uds_frame_header(&f, 1001, h), -EMSGSIZE);
    /* top bit set: malformed */
    uint8_t bad[4] = {0x80, 0, 0, 1};
    assert_int_equal(uds_frame_decode(&f, bad, 4, &fr), UDS_EFRAME);
    uint8_t huge[4] = {0x7f, 0xff, 0xff, 0xff};
    assert_int_equal(uds_frame_decode(&f, huge, 4, &fr), -EMSGSIZE);
    /* less than a header: just incomplete */
    assert_int_equal(uds_frame_decode(&f, bad, 3, &fr), 0);
    /* a full message at the limit decodes */
    char *buf = malloc(1004);
    uds_frame_header(&f, 1000, (uint8_t *)buf);
    memset(buf + 4, 'x', 1000);
    assert_int_equal(uds_frame_decode(&f, buf, 1004, &fr), 1004);
    assert_int_equal(fr.len, 1000);
    assert_int_equal(uds_frame_encode(&f, buf + 4, 1000, buf, 1003), -ENOSPC);
    free(buf);
    /* default maximum when max is 0 */
    uds_framer d = {0, 0};
    assert_int_equal(uds_frame_header(&d, UDS_FRAME_DEFAULT_MAX, h), 4);
    assert_int_equal(uds_frame_header(&d, UDS_FRAME_DEFAULT_MAX + 1, h), -EMSGSIZE);
    uds_framer inval = {99, 0};
    assert_int_equal(uds_frame_decode(&inval, h, 4, &fr), -EINVAL);
}

static void test_line_limits(void **state)
{
    (void)state;
    uds_framer f = {UDS_FRAME_LINE, 10};
    uds_frame fr;
    assert_int_equal(uds_frame_decode(&f, "0123456789\n", 11, &fr), 11);
    assert_int_equal(fr.len, 10);
    assert_int_equal(uds_frame_decode(&f, "0123456789\r\n", 12, &fr), 12);
    assert_int_equal(fr.len, 10);
    assert_int_equal(uds_frame_decode(&f, "0123456789A\n", 12, &fr), -EMSGSIZE);
    /* no newline yet: incomplete until it cannot fit any more */
    assert_int_equal(uds_frame_decode(&f, "0123456789A", 11, &fr), 0);
    assert_int_equal(uds_frame_decode(&f, "0123456789AB", 12, &fr), -EMSGSIZE);
    assert_int_equal(uds_frame_decode(&f, "a\r\nb\n", 5, &fr), 3);
    assert_int_equal(fr.len, 1);
    assert_memory_equal(fr.data, "a", 1);
    char out[16];
    assert_int_equal(uds_frame_encode(&f, "a\nb", 3, out, sizeof(out)), -EINVAL);
    assert_int_equal(uds_frame_encode(&f, "ab", 2, out, sizeof(out)), 3);
    assert_memory_equal(out, "ab\n", 3);
    /* a newline anywhere in the message, also first or last, is refused */
    assert_int_equal(uds_frame_encode(&f, "ab\n", 3, out, sizeof(out)), -EINVAL);
    assert_int_equal(uds_frame_encode(&f, "\n", 1, out, sizeof(out)), -EINVAL);
    assert_int_equal(uds_frame_encode(&f, "\nab", 3, out, sizeof(out)), -EINVAL);
    /* the empty line, bare and as CRLF: an empty message either way */
    assert_int_equal(uds_frame_decode(&f, "\n", 1, &fr), 1);
    assert_int_equal(fr.len, 0);
    assert_int_equal(uds_frame_decode(&f, "\r\nx\n", 5, &fr), 2);
    assert_int_equal(fr.len, 0);
    /* only a CR right before the newline goes */
    assert_int_equal(uds_frame_decode(&f, "\r\r\n", 3, &fr), 3);
    assert_int_equal(fr.len, 1);
    assert_memory_equal(fr.data, "\r", 1);
}

static void test_packet(void **state)
{
    (void)state;
    uds_framer f = {UDS_FRAME_PACKET, 4};
    uds_frame fr;
    assert_int_equal(uds_frame_decode(&f, "abcd", 4, &fr), 4);
    assert_int_equal(fr.len, 4);
    assert_int_equal(uds_frame_decode(&f, "abcde", 5, &fr), -EMSGSIZE);
    char out[8];
    assert_int_equal(uds_frame_encode(&f, "ab", 2, out, sizeof(out)), 2);
}

/* An empty packet is an empty message (it was -EINVAL, which a caller
   that closes on codec errors took for a bad peer). */
static void test_packet_empty(void **state)
{
    (void)state;
    uds_framer f = {UDS_FRAME_PACKET, 4};
    uds_frame fr;
    const char b[1] = {'x'};
    fr.len = 99;
    fr.need = 99;
    assert_int_equal(uds_frame_decode(&f, b, 0, &fr), 0);
    assert_ptr_equal(fr.data, b);
    assert_int_equal(fr.len, 0);
    assert_int_equal(fr.need, 0);
    assert_int_equal(uds_frame_decode(&f, NULL, 0, &fr), 0);
    assert_int_equal(fr.len, 0);
    char out[1];
    assert_int_equal(uds_frame_encode(&f, NULL, 0, out, 0), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_len32_splits),
        cmocka_unit_test(test_line_splits),
        cmocka_unit_test(test_len32_three_way),
        cmocka_unit_test(test_len32_limits),
        cmocka_unit_test(test_line_limits),
        cmocka_unit_test(test_packet),
        cmocka_unit_test(test_packet_empty),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
