#!/bin/sh
# The long fuzz run of the hardening battery (row 1): each libFuzzer target
# in BUILD/fuzz (or only the ones named) runs RUNS executions (default 10^6)
# at low priority, starting from a copy of its committed corpus. Prints
# executions and crashes per target; exits 1 if any target crashed.
#   scripts/fuzz-long.sh build-fuzz [TARGET...]     (RUNS=N to change the count)
# Inputs that found new coverage stay in $OUT/<target>/ (default a temp dir)
# for anyone who wants to merge them into tests/fuzz/corpus/ (-merge=1).
set -u
build=$1; shift
runs=${RUNS:-1000000}
src=$(cd "$(dirname "$0")/.." && pwd)
out=${OUT:-$(mktemp -d)}
targets="$*"
[ -n "$targets" ] || targets=$(cd "$build/fuzz" && ls fuzz_* | sed 's/^fuzz_//')
fail=0
for t in $targets; do
  f="$build/fuzz/fuzz_$t"
  [ -x "$f" ] || { echo "fuzz-long: $f not built"; fail=1; continue; }
  mkdir -p "$out/$t"
  cp -r "$src/tests/fuzz/corpus/$t/." "$out/$t/" 2>/dev/null || true
  start=$(date +%s)
  nice -n 19 "$f" -runs="$runs" -print_final_stats=1 -close_fd_mask=1 \
    -artifact_prefix="$out/$t-" "$out/$t" >"$out/$t.log" 2>&1
  rc=$?
  secs=$(( $(date +%s) - start ))
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$out/$t.log" | tail -1)
  crashes=$(ls "$out/$t-"crash-* "$out/$t-"leak-* "$out/$t-"timeout-* "$out/$t-"oom-* 2>/dev/null | wc -l)
  echo "fuzz-long: $t: ${execs:-?} executions, $crashes crashes, rc $rc, ${secs}s (log $out/$t.log)"
  [ "$rc" = 0 ] && [ "$crashes" = 0 ] || { tail -30 "$out/$t.log"; fail=1; }
done
exit $fail
