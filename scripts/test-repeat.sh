#!/usr/bin/env bash
# scripts/test-repeat.sh — runs `make test` N times in a row and stops at the
# first failure: the suite must not flake (issue 14 item 9). With --hog, a
# CPU hog runs beside it the whole time (stress-ng --cpu NPROC, or one busy
# shell loop per CPU when stress-ng is missing), so every test also passes
# on a machine that is busy with something else.
#
#   scripts/test-repeat.sh [-n N] [--hog] [--keep-going] [--log DIR]
#   make test-repeat N=20 [HOG=1]
#
# Each run's output goes to DIR/run-K.log (default build/repeat); a line per
# run says ok or which tests failed, with the time it took. Exit 0 when all
# N runs passed, 1 when one failed, 2 on a usage error. The hog is stopped
# by pid when the script ends, however it ends.
set -u
n=20 hog=0 keep=0 dir=""
usage() { echo "usage: $0 [-n N] [--hog] [--keep-going] [--log DIR]" >&2; exit 2; }
while [ $# -gt 0 ]; do
    case $1 in
    -n) [ $# -ge 2 ] || usage; n=$2; shift 2 ;;
    --hog) hog=1; shift ;;
    --keep-going) keep=1; shift ;;
    --log) [ $# -ge 2 ] || usage; dir=$2; shift 2 ;;
    -h | --help) usage ;;
    *) echo "test-repeat: unknown argument '$1'" >&2; usage ;;
    esac
done
[[ $n =~ ^[1-9][0-9]{0,3}$ ]] || { echo "test-repeat: -n '$n': want a count from 1 to 9999" >&2; exit 2; }
cd "$(dirname "$0")/.."
dir=${dir:-${BUILD:-build}/repeat}
mkdir -p "$dir" || { echo "test-repeat: cannot create $dir" >&2; exit 1; }

hogs=()
stop_hog() {
    local p
    for p in "${hogs[@]}"; do kill "$p" 2>/dev/null; done
    for p in "${hogs[@]}"; do wait "$p" 2>/dev/null; done
    hogs=()
}
trap stop_hog EXIT
trap 'exit 130' INT TERM
if [ $hog = 1 ]; then
    cpus=$(nproc 2>/dev/null || echo 2)
    if command -v stress-ng >/dev/null 2>&1; then
        stress-ng --cpu "$cpus" --timeout 0 --quiet >/dev/null 2>&1 &
        hogs+=($!)
        what="stress-ng --cpu $cpus"
    else
        for ((i = 0; i < cpus; i++)); do
            sh -c 'while :; do :; done' &
            hogs+=($!)
        done
        what="$cpus busy loops"
    fi
    echo "test-repeat: CPU hog beside the suite: $what (pid ${hogs[*]})"
fi

passed=0 failed=0 t_all=$SECONDS
for ((k = 1; k <= n; k++)); do
    log="$dir/run-$k.log"
    t0=$SECONDS
    if make test >"$log" 2>&1; then
        passed=$((passed + 1))
        echo "test-repeat: run $k/$n ok in $((SECONDS - t0)) s"
    else
        failed=$((failed + 1))
        # ctest's summary names the failed tests; else the last make error
        which=$(sed -n '/The following tests FAILED/,/^Errors while running/p' "$log" |
            sed -n 's/^[[:space:]]*[0-9]* - \([^ ]*\).*/\1/p' | tr '\n' ' ')
        [ -n "$which" ] || which="(no ctest failure: $(grep -m1 -E 'Error|FAIL' "$log" || echo 'see the log'))"
        echo "test-repeat: run $k/$n FAILED in $((SECONDS - t0)) s: $which(log: $log)"
        [ $keep = 1 ] || break
    fi
done
echo "test-repeat: $passed passed, $failed failed, of $((passed + failed)) runs in $((SECONDS - t_all)) s$([ $hog = 1 ] && echo ", beside a CPU hog")"
[ $failed = 0 ] && [ $passed = "$n" ]
