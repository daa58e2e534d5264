/*
 * bench_hist.c — the latency histogram of `udsock bench`.
 *
 * Why a histogram and not an average: IPC latency is a long-tailed
 * distribution (scheduler wakeups, cross-CPU IPIs, page faults), and the
 * tail is what a user of a request/response service feels. Percentiles
 * need every sample or a histogram; a histogram keeps memory fixed and
 * recording O(1) whatever the run length.
 */
#include "bench.h"

#include <string.h>

void bench_hist_init(bench_hist *h)
{
    memset(h, 0, sizeof(*h));
    h->min = UINT64_MAX;
}

/* Bucket index of v: exact below 2*SUB, then SUB sub-buckets per octave. */
static size_t hist_index(uint64_t v)
{
    if (v < 2 * BENCH_HIST_SUB)
        return (size_t)v;
    int e = 63 - __builtin_clzll(v); /* v in [2^e, 2^(e+1)), e >= 7 */
    if (e >= BENCH_HIST_EXP)
        return BENCH_HIST_N - 1;
    uint64_t m = v >> (e - 6); /* in [64, 128) */
    return 2 * BENCH_HIST_SUB + (size_t)(e - 7) * BENCH_HIST_SUB + (size_t)(m - BENCH_HIST_SUB);
}

/* The middle of bucket i (its representative value). */
static double hist_value(size_t i)
{
    if (i < 2 * BENCH_HIST_SUB)
        return (double)i;
    size_t k = i - 2 * BENCH_HIST_SUB;
    int e = (int)(k / BENCH_HIST_SUB) + 7;
    uint64_t m = (k % BENCH_HIST_SUB) + BENCH_HIST_SUB;
    double lo = (double)(m << (e - 6));
    double width = (double)(1ull << (e - 6));
    return lo + width / 2;
}

void bench_hist_add(bench_hist *h, uint64_t ns)
{
    h->b[hist_index(ns)]++;
    h->n++;
    h->sum += (double)ns;
    if (ns < h->min)
        h->min = ns;
    if (ns > h->max)
        h->max = ns;
}

double bench_hist_quantile(const bench_hist *h, double q)
{
    if (!h->n)
        return 0;
    if (q >= 1)
        return (double)h->max;
    /* rank of the sample at quantile q (1-based, nearest-rank method) */
    uint64_t rank = (uint64_t)(q * (double)h->n);
    if ((double)rank < q * (double)h->n)
        rank++;
    if (rank < 1)
        rank = 1;
    uint64_t seen = 0;
    for (size_t i = 0; i < BENCH_HIST_N; i++) {
        seen += h->b[i];
        if (seen >= rank) {
            double v = hist_value(i);
            /* never report beyond what was actually seen */
            if (v > (double)h->max)
                v = (double)h->max;
            if (v < (double)h->min)
                v = (double)h->min;
            return v;
        }
    }
    return (double)h->max;
}
