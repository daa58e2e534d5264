/*
 * raw_common.h — the two helpers every raw baseline needs: a monotonic
 * clock and CPU pinning. Header-only so each raw_*.c stays one program
 * with no library code (the baselines must not measure libudsock).
 */
#ifndef UDS_RAW_COMMON_H
#define UDS_RAW_COMMON_H

#include <sched.h>
#include <stdint.h>
#include <time.h>

static inline uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Pins the calling process to `cpu` (negative: leave it unpinned). */
static inline void pin(int cpu)
{
    if (cpu < 0)
        return;
    cpu_set_t s;
    CPU_ZERO(&s);
    CPU_SET(cpu, &s);
    sched_setaffinity(0, sizeof(s), &s);
}

#endif
