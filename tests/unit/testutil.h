/* testutil.h — helpers shared by the cmocka tests. */
#ifndef UDS_TESTUTIL_H
#define UDS_TESTUTIL_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "udsock.h"

/* A fresh private temporary directory (mode 0700); removed by tu_rmtree. */
char *tu_tmpdir(void);
/* Removes a directory tree made by tu_tmpdir (best effort). */
void tu_rmtree(const char *dir);
/* dir + "/" + name, in a static rotating buffer (8 slots). */
const char *tu_path(const char *dir, const char *name);
/* Number of open fds of this process (entries in /proc/self/fd). */
int tu_count_fds(void);
/* Fills buf with a deterministic pseudo-random pattern from seed. */
void tu_fill(void *buf, size_t len, uint32_t seed);
/* FNV-1a 64-bit checksum. */
uint64_t tu_fnv(const void *buf, size_t len);
/* Milliseconds from a monotonic clock. */
uint64_t tu_now_ms(void);

/* Nonzero when scripts/valgrind.sh runs the test (UDS_VALGRIND=1). */
int tu_under_valgrind(void);
/*
 * Skips the calling test case under valgrind, saying why: for the few that
 * cannot mean anything there (valgrind keeps fds of its own under
 * RLIMIT_NOFILE, delivers signals between syscalls, runs 20-50x slower
 * than the deadlines such a case asserts).
 */
#define TU_VALGRIND_SKIP(why)                                                  \
    do {                                                                       \
        if (tu_under_valgrind()) {                                             \
            print_message("skipped under valgrind: %s\n", why);                \
            skip();                                                            \
        }                                                                      \
    } while (0)

#endif
