#!/usr/bin/env bash
# The hardening battery, row 7: every library unit test (BUILD/tests/test_*)
# under valgrind --leak-check=full --track-fds=yes --error-exitcode=1.
# A test fails when it fails by itself, when valgrind reports an error or a
# leak (definite or possible) in any of its processes (forked children too:
# one log per pid), or when the test process leaves an fd open at exit that
# it did not inherit. UDS_VALGRIND=1 is set for the tests: the few timing
# bounds that cannot hold 20-50x slower are widened there, and cases that
# exhaust RLIMIT_NOFILE (valgrind keeps fds of its own at the top) or need
# a signal inside a syscall skip.
#   scripts/valgrind.sh BUILD [TEST_NAME...]     (e.g. build frame fwd)
# BUILD is a plain build (not the ASan one). VALGRIND_JOBS (default 2) tests
# run at once. Prints one line per test and a summary; exit 1 on any failure.
set -u
build=${1:?usage: scripts/valgrind.sh BUILD [TEST...]}
shift
command -v valgrind >/dev/null || { echo "valgrind: not installed (scripts/deps.sh installs it)"; exit 1; }
if grep -q '^UDS_SANITIZE:BOOL=ON' "$build/CMakeCache.txt" 2>/dev/null; then
    echo "valgrind: $build is a sanitizer build; use a plain one"; exit 1
fi
src=$(cd "$(dirname "$0")/.." && pwd)
out=$(mktemp -d /tmp/udsock-valgrind.XXXXXX)
jobs=${VALGRIND_JOBS:-2}
# VALGRIND_EXCLUDE="a b" leaves tests out of the full run (each named on the
# output). Empty by default: every test runs.
exclude=${VALGRIND_EXCLUDE-}
tests=()
if [ $# -gt 0 ]; then
    for t in "$@"; do tests+=("$build/tests/test_$t"); done
else
    for t in "$build"/tests/test_*; do
        [ -x "$t" ] || continue
        n=${t##*/test_}
        case " $exclude " in *" $n "*) echo "valgrind: EXCLUDED test_$n (see scripts/valgrind.sh)"; continue ;; esac
        tests+=("$t")
    done
fi

# one test: its status line goes to $out/NAME.result
run_one() {
    local exe=$1 name rc verdict=ok why=""
    name=$(basename "$exe")
    local start=$SECONDS
    UDS_BUILD_DIR="$build" UDS_SOURCE_DIR="$src" UDS_VALGRIND=1 timeout 900 valgrind \
        --leak-check=full --track-fds=yes --error-exitcode=1 --log-file="$out/$name.%p.vg" \
        "$exe" >"$out/$name.out" 2>&1
    rc=$?
    [ $rc = 0 ] || { verdict=FAIL; why="exit $rc"; }
    grep -q '\[  FAILED  \]' "$out/$name.out" && { verdict=FAIL; why="$why (a test case failed)"; }
    # errors (leaks included) in any process of the test, forked ones too
    local bad
    bad=$(grep -lE "ERROR SUMMARY: [1-9]" "$out/$name".*.vg 2>/dev/null | tr '\n' ' ')
    [ -z "$bad" ] || { verdict=FAIL; why="$why errors in $bad"; }
    # fds: the test process itself (the log whose parent is no other log's
    # process); forked children end with _exit and whatever they held, and a
    # failed case ends with whatever it held, so only a passing run counts
    local main="" f pp
    for f in "$out/$name".*.vg; do
        pp=$(sed -n 's/^==[0-9]*== Parent PID: \([0-9]*\)/\1/p' "$f" | head -1)
        [ -e "$out/$name.$pp.vg" ] || main=$f
    done
    if [ $rc = 0 ] && [ -n "$main" ]; then
        local fdl
        fdl=$(awk '/Open (file descriptor|AF_UNIX socket|AF_INET)/ { pend = $0; next }
                   pend != "" { if ($0 !~ /inherited from parent/) print pend; pend = "" }' "$main")
        [ -z "$fdl" ] || { verdict=FAIL; why="$why fd left open: $fdl"; }
    fi
    echo "$verdict $name $((SECONDS - start))s$why" >"$out/$name.result"
}

start=$SECONDS
running=0
for t in "${tests[@]}"; do
    run_one "$t" &
    running=$((running + 1))
    if [ $running -ge "$jobs" ]; then wait -n; running=$((running - 1)); fi
done
wait
fail=0
n=0
for t in "${tests[@]}"; do
    name=$(basename "$t")
    n=$((n + 1))
    line=$(cat "$out/$name.result" 2>/dev/null || echo "FAIL $name no result")
    echo "valgrind: $line"
    case $line in FAIL*) fail=$((fail + 1)); tail -30 "$out/$name.out"; cat "$out/$name".*.vg 2>/dev/null | head -60 ;; esac
done
echo "valgrind: $n tests, $fail failed, $((SECONDS - start)) s (logs in $out)"
[ $fail = 0 ] && rm -rf "$out"
[ $fail = 0 ]
