#!/bin/sh
# Runs every libFuzzer target in BUILD/fuzz for SECONDS each, starting from
# its committed corpus. Fails if a target finds a crash.
set -eu
build=$1; secs=${2:-20}
src=$(cd "$(dirname "$0")/.." && pwd)
found=0
for f in "$build"/fuzz/fuzz_*; do
  [ -x "$f" ] || continue
  found=1
  name=$(basename "$f"); short=${name#fuzz_}
  work=$(mktemp -d)
  cp -r "$src/tests/fuzz/corpus/$short/." "$work/" 2>/dev/null || true
  echo "fuzz: $name for ${secs}s"
  "$f" -max_total_time="$secs" -print_final_stats=1 -artifact_prefix="$work/" "$work" 2>"$work.log" || {
    tail -40 "$work.log"; echo "fuzz: $name FAILED (artifacts in $work)"; exit 1; }
  grep -E 'stat::number_of_executed_units' "$work.log" || true
  rm -rf "$work" "$work.log"
done
[ $found = 1 ] || echo "fuzz: no targets built"
