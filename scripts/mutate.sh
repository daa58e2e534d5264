#!/bin/bash
# make mutate: seeds one plausible bug at a time (tests/mutate/NN-name.patch)
# into a scratch copy of the tree, rebuilds it incrementally, runs the
# tests named in the mutant's header, and says whether they noticed.
# Prints the score (killed/total) and the survivors. Not in CI, not in
# make test. The real tree is never touched: the copy is a temp dir.
#
#   scripts/mutate.sh [MUTANT...]   (names or NN prefixes; default: all)
# Environment:
#   MUTATE_TIMEOUT  seconds for one mutant's tests (default 400; a hang
#                   counts as killed: ctest's own timeouts would fail it too)
#   MUTATE_JOBS     ctest -j and build -j (default 2)
#   MUTATE_KEEP=1   keep the scratch copy (its path is printed)
#   MUTATE_DIR      use this scratch dir (kept; reused builds are faster)
#
# A mutant file: header lines "# bug: WHAT IT PLANTS" and "# tests: REGEX"
# (a ctest -R regex), then a unified diff against the tree (git apply).
# Outcomes: killed (the tests failed or timed out), survived (they passed),
# and, not counted in the score, "does not apply" (the code moved on: the
# patch needs rewriting) and "build failed" (the mutant is not a program).
set -u
ROOT=$(cd "$(dirname "$0")/.." && pwd)
MDIR=$ROOT/tests/mutate
TMO=${MUTATE_TIMEOUT:-400}
JOBS=${MUTATE_JOBS:-2}
command -v git >/dev/null || { echo "mutate: git is needed (git apply)"; exit 2; }

mutants=()
if [ $# -gt 0 ]; then
    for a in "$@"; do
        f=$(ls "$MDIR"/*.patch | grep -E "/(${a}|${a}-.*|[0-9]+-${a})\.patch$" | head -1)
        [ -n "$f" ] || { echo "mutate: no mutant '$a' in $MDIR"; exit 2; }
        mutants+=("$f")
    done
else
    mutants=("$MDIR"/*.patch)
fi

if [ -n "${MUTATE_DIR:-}" ]; then
    S=$MUTATE_DIR
    mkdir -p "$S"
    MUTATE_KEEP=1
else
    S=$(mktemp -d /tmp/udsock-mutate.XXXXXX)
fi
cleanup() {
    if [ "${MUTATE_KEEP:-0}" = 1 ]; then echo "mutate: scratch copy kept in $S"; else rm -rf "$S"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# The copy: the tracked files as they are in the working tree (so tests
# written but not committed take part), without any build directory.
T=$S/tree
mkdir -p "$T"
(cd "$ROOT" && git ls-files -z --cached --others --exclude-standard | \
    while IFS= read -r -d '' f; do [ -e "$f" ] && printf '%s\0' "$f"; done | \
    xargs -0 cp --parents -t "$T") # (no -p: fresh mtimes, so a reused build rebuilds what it must)
B=$S/build
log=$S/log
mkdir -p "$log"
echo "mutate: scratch tree $T, build $B, logs $log"
cmake -S "$T" -B "$B" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DUDS_WERROR=ON >"$log/cmake.txt" 2>&1 \
    || { echo "mutate: cmake failed (see $log/cmake.txt)"; MUTATE_KEEP=1; exit 2; }
if ! cmake --build "$B" -j"$JOBS" >"$log/build-base.txt" 2>&1; then
    echo "mutate: the unmutated tree does not build (see $log/build-base.txt)"
    MUTATE_KEEP=1
    exit 2
fi

# Runs ctest -R $1 in its own process group; kills the group at the deadline.
# Returns ctest's status, or 124 for a timeout.
run_tests() {
    local re=$1 out=$2
    (cd "$B" && exec setsid ctest --output-on-failure -j"$JOBS" -R "$re" >"$out" 2>&1) &
    local pid=$! end=$((SECONDS + TMO))
    while kill -0 "$pid" 2>/dev/null; do
        if [ $SECONDS -ge $end ]; then
            kill -TERM -- "-$pid" 2>/dev/null
            sleep 3
            kill -KILL -- "-$pid" 2>/dev/null
            wait "$pid" 2>/dev/null
            echo "mutate: timed out after ${TMO}s" >>"$out"
            return 124
        fi
        sleep 1
    done
    wait "$pid"
}

# The baseline: every test any mutant names, once, on the unmutated tree
# (one ctest run); a mutant whose tests fail without it proves nothing.
declare -A base_ok
res=()
for m in "${mutants[@]}"; do
    re=$(sed -n 's/^# tests: //p' "$m" | head -1)
    [ -n "$re" ] || { echo "mutate: $(basename "$m") has no '# tests:' line"; exit 2; }
    res+=("$re")
done
# (ctest's regex engine takes at most 9 groups: the union is a list of names)
all=$(cd "$B" && ctest -N | sed -n 's/^ *Test *#[0-9]*: //p')
names=$(for re in $(printf '%s\n' "${res[@]}" | sort -u); do echo "$all" | grep -E "$re"; done | sort -u)
[ -n "$names" ] || { echo "mutate: the mutants' regexes match no test"; exit 2; }
union="^($(echo "$names" | sed 's/\./\\./g' | paste -sd'|'))\$"
t0=$SECONDS
run_tests "$union" "$log/baseline.txt"
base_failed=$(grep -Eo '[0-9]+ - [^ ]+ \(' "$log/baseline.txt" | awk '{print $3}')
for re in "${res[@]}"; do
    base_ok[$re]=1
    for t in $base_failed; do
        if echo "$t" | grep -Eq "$re"; then
            base_ok[$re]=0
            echo "mutate: BASELINE FAILS: $t (mutants with tests '$re' are not scored; see $log/baseline.txt)"
        fi
    done
done
summary=$(grep -Eo '[0-9]+% tests passed.*' "$log/baseline.txt")
[ -n "$summary" ] || { echo "mutate: the baseline run did not run ($log/baseline.txt)"; MUTATE_KEEP=1; exit 2; }
echo "mutate: baseline ($(echo "$names" | wc -l) tests): $summary, $((SECONDS - t0)) s"

killed=0 survived=0 other=0
surv=() skipped=()
start=$SECONDS
for m in "${mutants[@]}"; do
    name=$(basename "$m" .patch)
    re=$(sed -n 's/^# tests: //p' "$m" | head -1)
    bug=$(sed -n 's/^# bug: //p' "$m" | head -1)
    t0=$SECONDS
    if [ "${base_ok[$re]}" != 1 ]; then
        other=$((other + 1)); skipped+=("$name (baseline of its tests fails)")
        printf '%-28s %-10s\n' "$name" "baseline"
        continue
    fi
    if ! (cd "$T" && git apply "$m") 2>"$log/$name.apply.txt"; then
        other=$((other + 1)); skipped+=("$name (does not apply)")
        printf '%-28s %-10s\n' "$name" "no-apply"
        continue
    fi
    if ! cmake --build "$B" -j"$JOBS" >"$log/$name.build.txt" 2>&1; then
        outcome=build-failed
        other=$((other + 1)); skipped+=("$name (build failed)")
    elif run_tests "$re" "$log/$name.test.txt"; then
        outcome=SURVIVED
        survived=$((survived + 1)); surv+=("$name: $bug [tests: $re]")
    else
        outcome=killed
        killed=$((killed + 1))
    fi
    # restore; the reverse patch must give back the original bytes
    if ! (cd "$T" && git apply -R "$m") 2>>"$log/$name.apply.txt"; then
        echo "mutate: could not revert $name; stopping (scratch copy kept)"
        MUTATE_KEEP=1
        exit 2
    fi
    for f in $(sed -n 's|^+++ b/||p' "$m"); do
        cmp -s "$T/$f" "$ROOT/$f" || { echo "mutate: $f differs after reverting $name"; MUTATE_KEEP=1; exit 2; }
    done
    failed=$(grep -Eo '[0-9]+ - [^ ]+ \((Failed|Timeout|SEGFAULT|Subprocess aborted|Not Run)\)' "$log/$name.test.txt" 2>/dev/null | tr '\n' ' ')
    printf '%-28s %-10s %4ds  %s\n' "$name" "$outcome" $((SECONDS - t0)) "$failed"
done

total=$((killed + survived))
echo
echo "mutate: $killed/$total killed ($([ $total -gt 0 ] && echo $((100 * killed / total)) || echo 0) %), $survived survived, $other not scored; $((SECONDS - start)) s"
for s in "${surv[@]+"${surv[@]}"}"; do echo "  survived: $s"; done
for s in "${skipped[@]+"${skipped[@]}"}"; do echo "  not scored: $s"; done
[ $survived -eq 0 ]
