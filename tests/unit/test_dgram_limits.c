/*
 * test_dgram_limits.c — issue 14 item 4: a datagram server holds at most
 * max_dgram_per_peer requests of one sender and max_dgram_inflight in all;
 * the rest is dropped unanswered, counted (dgram_over_limit) and logged at
 * most once a second; a reply that cannot be sent counts in replies_lost.
 */
#include "testutil.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MAXR 64
static uds_req *held[MAXR];
static int nheld, nlog;

static void on_req(uds_server *s, uds_req *r, const void *m, size_t n, void *arg)
{
    (void)s;
    (void)m;
    (void)n;
    (void)arg;
    assert_true(nheld < MAXR);
    held[nheld++] = r; /* answered later, or never */
}

static void on_log(void *arg, int level, const char *text)
{
    (void)arg;
    (void)level;
    if (strstr(text, "dropped"))
        nlog++;
}

/* Runs the loop until the server has seen `want` datagrams (taken or
   dropped), at most 5 s. */
static void pump(uds_loop *loop, uds_server *s, uint64_t want)
{
    uds_server_stats st;
    uint64_t end = tu_now_ms() + 5000;
    do {
        assert_true(uds_loop_run_once(loop, 50) >= 0);
        uds_server_stats_get(s, &st);
    } while (st.requests + st.dgram_over_limit < want && tu_now_ms() < end);
    assert_int_equal(st.requests + st.dgram_over_limit, want);
}

static int client(const uds_addr *a)
{
    uds_connect_opts co = {.type = UDS_DGRAM};
    int c = uds_connect(a, &co);
    assert_true(c >= 0);
    return c;
}

static void sendn(int c, int n)
{
    for (int i = 0; i < n; i++)
        assert_int_equal(uds_send(c, "sleep", 5), 5);
}

static void test_limits(void **state)
{
    (void)state;
    char name[80];
    snprintf(name, sizeof(name), "@udsock-test-dgram-limits-%d-%u", (int)getpid(),
             (unsigned)tu_now_ms());
    uds_addr a;
    assert_int_equal(uds_addr_parse(&a, name), 0);
    uds_loop *loop;
    assert_int_equal(uds_loop_new(&loop), 0);
    uds_server_opts o = {.max_dgram_inflight = 6, .max_dgram_per_peer = 4, .log = on_log};
    uds_server *s;
    assert_int_equal(uds_server_new(&s, loop, &o, on_req, NULL), 0);
    uds_listen_opts lo = {.type = UDS_DGRAM};
    assert_int_equal(uds_server_listen(s, &a, &lo), 0);

    int ca = client(&a), cb = client(&a);
    sendn(ca, 10); /* 4 taken, 6 over the per-sender limit */
    pump(loop, s, 10);
    uds_server_stats st;
    uds_server_stats_get(s, &st);
    assert_int_equal(st.requests, 4);
    assert_int_equal(st.dgram_over_limit, 6);
    assert_int_equal(st.dgram_inflight, 4);
    sendn(cb, 10); /* 2 taken, then the total of 6 is reached */
    pump(loop, s, 20);
    uds_server_stats_get(s, &st);
    assert_int_equal(st.requests, 6);
    assert_int_equal(st.dgram_over_limit, 14);
    assert_int_equal(st.dgram_inflight, 6);
    assert_int_equal(nheld, 6);
    /* one line in this second (the summary comes when it is over) */
    assert_int_equal(nlog, 1);

    /* answered: room again, for A too (its count went back to 0) */
    for (int i = 0; i < 4; i++)
        assert_int_equal(uds_req_reply(held[i], "ok", 2), 0);
    char b[8];
    for (int i = 0; i < 4; i++)
        assert_int_equal(uds_read_some(ca, b, sizeof(b)), 2);
    sendn(ca, 4);
    pump(loop, s, 24);
    uds_server_stats_get(s, &st);
    assert_int_equal(st.requests, 10);
    assert_int_equal(st.dgram_inflight, 6);

    /* the summary of the held-back lines, once the second is over */
    uint64_t end = tu_now_ms() + 3000;
    while (nlog < 2 && tu_now_ms() < end)
        assert_true(uds_loop_run_once(loop, 100) >= 0);
    assert_int_equal(nlog, 2);

    /* a reply to a sender that is gone is lost and counted */
    close(cb);
    assert_true(uds_req_reply(held[4], "late", 4) < 0);
    uds_server_stats_get(s, &st);
    assert_int_equal(st.replies_lost, 1);
    for (int i = 5; i < nheld; i++)
        uds_req_drop(held[i]);
    uds_server_stats_get(s, &st);
    assert_int_equal(st.dgram_inflight, 0);
    close(ca);
    uds_server_free(s);
    uds_loop_free(loop);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_limits),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
