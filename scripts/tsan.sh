#!/bin/sh
# Builds tests/unit/test_post.c (the threads of uds_loop_post) with the
# library sources under clang's ThreadSanitizer and runs it. Only what that
# test needs is compiled, straight from the sources (no CMake tree).
# Skips, exit 0 with a message, when clang is missing or TSan does not work
# on this machine: that is decided first by a tiny probe, which must run
# cleanly AND must report a deliberate race (so a TSan that runs but sees
# nothing does not count as working). If the probe fails the way TSan does
# on some kernels' address-space layouts ("unexpected memory mapping"), it
# is tried again with ASLR off (setarch -R), and the test then runs so too.
# Usage: scripts/tsan.sh [OUTDIR]     (default build-tsan; CC: $TSAN_CC or clang)
set -eu
src=$(cd "$(dirname "$0")/.." && pwd)
out=${1:-build-tsan}
cc=${TSAN_CC:-clang}
skip() { echo "test-tsan: SKIPPED: $*"; exit 0; }
command -v "$cc" >/dev/null 2>&1 || skip "$cc not found"
mkdir -p "$out"
cat >"$out/probe.c" <<'PROBE'
#include <pthread.h>
#include <stdlib.h>
static int shared;
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static int racy;
static void *work(void *arg)
{
    pthread_mutex_lock(&mu);
    shared++;
    pthread_mutex_unlock(&mu);
    if (arg)
        racy++;
    return NULL;
}
int main(int argc, char **argv)
{
    (void)argv;
    void *race = argc > 1 ? &racy : NULL;
    pthread_t t;
    if (pthread_create(&t, NULL, work, race) != 0)
        return 2;
    work(race);
    pthread_join(t, NULL);
    return shared == 2 ? 0 : 3;
}
PROBE
"$cc" -fsanitize=thread -g -O1 "$out/probe.c" -o "$out/probe" -lpthread \
    >"$out/probe.log" 2>&1 || skip "$cc cannot build with -fsanitize=thread: $(head -3 "$out/probe.log")"
export TSAN_OPTIONS="halt_on_error=1 exitcode=66 ${TSAN_OPTIONS:-}"
run=""
if ! "$out/probe" >"$out/probe.log" 2>&1; then
    first=$(head -3 "$out/probe.log")
    if setarch -R "$out/probe" >"$out/probe.log" 2>&1; then
        run="setarch -R"
        echo "test-tsan: TSan needs ASLR off here ($first); running under setarch -R"
    else
        skip "TSan does not run on this machine: $first"
    fi
fi
if $run "$out/probe" race >"$out/probe.log" 2>&1 || ! grep -q "data race" "$out/probe.log"; then
    skip "TSan runs but did not report the probe's deliberate race"
fi
echo "test-tsan: building test_post with -fsanitize=thread"
"$cc" -std=c11 -D_GNU_SOURCE -g -O1 -fsanitize=thread -fno-omit-frame-pointer \
    -Wall -Wextra -Werror -Wshadow -Wno-unused-parameter \
    -I"$src/include" -I"$src/src" -I"$src/tests/unit" \
    "$src"/src/*.c "$src/tests/unit/testutil.c" "$src/tests/unit/test_post.c" \
    -lcmocka -lpthread -lm -o "$out/test_post"
$run "$out/test_post"
echo "test-tsan: test_post passed under ThreadSanitizer"
