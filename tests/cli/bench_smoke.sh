#!/usr/bin/env bash
# cli.bench_smoke — a short run of every `udsock bench` mode; asserts that the
# table, --json and --csv outputs parse and carry plausible numbers, that the
# one-end modes (--server / --client) work together, and that usage errors
# exit 2. Speed targets are not checked here (see bench/compare).
# uds-test-timeout: 60
set -euo pipefail
B=${UDS_BUILD_DIR:?}/udsock
# readiness helpers (uds_wait_listen); its $T is our dir, the cleanup below replaces its own
. "$(dirname "$0")/io_common.bash"
tmp=$T
srv=""
cleanup() {
  [ -n "$srv" ] && kill "$srv" 2>/dev/null && wait "$srv" 2>/dev/null
  rm -rf "$tmp"
}
trap cleanup EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

# 1. table: header + one row per transport, p50 a positive number
"$B" bench pingpong -t unix,abstract,seqpacket,dgram,tcp -d 0.1 --cpus 0 >"$tmp/t.txt"
grep -q '^mode *transport' "$tmp/t.txt" || fail "no table header"
rows=$(grep -c '^pingpong ' "$tmp/t.txt")
[ "$rows" -eq 5 ] || fail "expected 5 pingpong rows, got $rows"
awk '/^pingpong /{ if ($5 != "same:0") exit 1; if (!($7 > 0) || !($9 > 0) || $9 > $11+0.001) exit 1 }' "$tmp/t.txt" \
  || fail "table values implausible: $(cat "$tmp/t.txt")"

# 2. --json: valid JSON (json.tool), every mode present with sane fields
{
  "$B" bench pingpong -n 300 --json -s 64,4k
  "$B" bench stream -d 0.1 -s 64k --json
  "$B" bench rr -c 4 -P 8 -d 0.1 --json --impl core
  "$B" bench connect -n 200 --json
  "$B" bench dgram -d 0.1 --json
  "$B" bench hold -c 50 --json
} >"$tmp/all.json"
i=0
csplit -s -z -f "$tmp/j" "$tmp/all.json" '/^{"tool"/' '{*}'
for f in "$tmp"/j*; do
  python3 -m json.tool "$f" >/dev/null || fail "invalid JSON: $(cat "$f")"
  i=$((i + 1))
done
[ "$i" -eq 6 ] || fail "expected 6 JSON documents, got $i"
python3 - "$tmp" <<'PY' || fail "JSON content"
import json, glob, sys
rows = []
for f in sorted(glob.glob(sys.argv[1] + "/j*")):
    rows += json.load(open(f))["results"]
modes = {r["mode"] for r in rows}
assert modes == {"pingpong", "stream", "rr", "connect", "dgram", "hold"}, modes
assert {r["impl"] for r in rows if r["mode"] in ("rr", "hold")} == {"core", "lib"}, rows
for r in rows:
    assert r["note"] == "", r
    assert r["ops"] > 0 and r["secs"] > 0, r
    if r["mode"] in ("pingpong", "rr", "connect"):
        l = r["lat_us"]
        assert 0 < l["min"] <= l["p50"] <= l["p90"] <= l["p99"] <= l["p999"] <= l["max"] + 1e-6, r
pp = [r for r in rows if r["mode"] == "pingpong"]
assert [r["size"] for r in pp] == [64, 4096] and all(r["ops"] == 300 for r in pp), pp
assert [r["batch"] for r in rows if r["mode"] == "dgram"] == [1, 32]
st = [r for r in rows if r["mode"] == "stream"][0]
assert st["bytes"] == st["ops"] * 65536, st
assert [r for r in rows if r["mode"] == "hold"][0]["ops"] == 50
PY

# 3. --csv: header and rows have the same number of fields
"$B" bench rr -c 2 -P 2 -d 0.1 --csv -t unix,tcp >"$tmp/r.csv"
python3 - "$tmp/r.csv" <<'PY' || fail "CSV: $(cat "$tmp/r.csv")"
import csv, sys
rows = list(csv.reader(open(sys.argv[1])))
assert rows[0][0] == "mode" and len(rows) == 3, rows
assert all(len(r) == len(rows[0]) for r in rows), rows
h = rows[0]
for r in rows[1:]:
    d = dict(zip(h, r))
    assert d["mode"] == "rr" and float(d["ops_per_s"]) > 0 and float(d["p99_us"]) > 0, d
PY

# 4. one end each: --server in the background, --client measures it
sock="$tmp/b.sock"
"$B" bench --server "$sock" 2>"$tmp/srv.err" &
srv=$!
uds_wait_listen "$sock" || fail "bench server did not start: $(cat "$tmp/srv.err")"
"$B" bench pingpong --client "$sock" -n 200 --csv >"$tmp/c.csv"
"$B" bench stream --client "$sock" -d 0.1 --csv >>"$tmp/c.csv"
grep -q '^pingpong,unix,core,64,' "$tmp/c.csv" || fail "client pingpong: $(cat "$tmp/c.csv")"
grep -q '^stream,unix,' "$tmp/c.csv" || fail "client stream: $(cat "$tmp/c.csv")"
kill "$srv"; wait "$srv" 2>/dev/null || true; srv=""
[ ! -e "$sock" ] || fail "bench server left its socket file behind"

# 4b. the same with the library's server and client (rr defaults to --impl lib)
sock2="$tmp/lib.sock"
"$B" bench rr --server "$sock2" 2>"$tmp/srv2.err" &
srv=$!
uds_wait_listen "$sock2" || fail "library bench server did not start: $(cat "$tmp/srv2.err")"
"$B" bench rr --client "$sock2" -n 500 -P 4 --csv >"$tmp/c2.csv"
grep -q '^rr,unix,lib,64,1,4,.*,500,' "$tmp/c2.csv" || fail "client rr lib: $(cat "$tmp/c2.csv")"
kill "$srv"; wait "$srv" 2>/dev/null || true; srv=""
[ ! -e "$sock2" ] || fail "library bench server left its socket file behind"

# 5. usage errors exit 2 and say why
set +e
"$B" bench nosuchmode >/dev/null 2>"$tmp/e"; rc=$?
set -e
[ "$rc" -eq 2 ] && grep -q "unknown mode" "$tmp/e" || fail "bad mode: rc=$rc $(cat "$tmp/e")"
set +e
"$B" bench pingpong --cpus x >/dev/null 2>"$tmp/e"; rc=$?
set -e
[ "$rc" -eq 2 ] || fail "bad --cpus: rc=$rc"
set +e
"$B" bench pingpong --client /nonexistent/x.sock -n 10 >"$tmp/o" 2>&1; rc=$?
[ "$rc" -eq 1 ] || fail "missing server: rc=$rc"
set -e
grep -q "connect" "$tmp/o" || fail "missing server not reported: $(cat "$tmp/o")"
echo "bench_smoke: ok"
