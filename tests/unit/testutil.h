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

#endif
