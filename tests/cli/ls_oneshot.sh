#!/bin/bash
# Issue 9 defect 4: a listing never connects to anybody. One-shot servers
# (`udsock listen X.sock`, OpenBSD `nc -lU`) take the first connection as
# their client and then exit; the old connect probe of `udsock ls DIR` was
# that connection (for a server that bound a relative path). Here both
# servers are listed by every form of ls (DIR, PATH, machine-wide, JSON),
# and afterwards they are still running, still listening, and still
# waiting for their client: a client then connects and exchanges a line
# with each of them.
# uds-test-timeout: 60
set -u
UDS_BUILD_DIR=${UDS_BUILD_DIR:-build}
. "$(dirname "$0")/io_common.bash"
U=$(readlink -f "$U")
fail=0
bad() { echo "FAIL: $*"; fail=1; }

mkdir "$T/d"
echo pong-udsock >"$T/pong1"
echo pong-nc >"$T/pong2"
# relative names, bound from inside the directory (what made the old code
# probe: /proc/net/unix shows "X.sock", not the path found by the walk)
(cd "$T/d" && exec "$U" listen X.sock <"$T/pong1" >"$T/out1" 2>"$T/err1") &
L=$!
PIDS+=($L)
(cd "$T/d" && exec "$U" listen "$T/d/abs.sock" <"$T/pong1" >"$T/out3" 2>/dev/null) &
A=$!
PIDS+=($A)
have_nc=0
if command -v nc >/dev/null && nc -h 2>&1 | grep -q OpenBSD; then
    have_nc=1
    (cd "$T/d" && exec nc -lU Y.sock <"$T/pong2" >"$T/out2" 2>/dev/null) &
    N=$!
    PIDS+=($N)
else
    echo "SKIP: OpenBSD nc is not installed (scripts/deps.sh installs netcat-openbsd): the nc half is skipped"
fi
# (a relative name is matched in the kernel's table from inside the directory)
in_d() { (cd "$T/d" && "$@"); }
in_d uds_wait_listen X.sock "$L" || fail "udsock listen X.sock not listening"
wait_listen "$T/d/abs.sock" "$A"
[ $have_nc = 0 ] || in_d uds_wait_listen Y.sock "$N" || fail "nc -lU Y.sock not listening"

"$U" ls "$T/d" >"$T/ls1" || bad "ls DIR failed"
cat "$T/ls1"
"$U" ls --json "$T/d" >/dev/null || bad "ls --json DIR failed"
"$U" ls "$T/d/X.sock" >/dev/null || bad "ls PATH failed"
[ $have_nc = 1 ] && { "$U" ls "$T/d/Y.sock" >/dev/null || bad "ls PATH (nc) failed"; }
"$U" ls -a >/dev/null || bad "ls -a failed"
"$U" ls --json -a >/dev/null || bad "ls --json -a failed"
"$U" ls -l "$T/d" >/dev/null || bad "ls -l DIR failed"

awk -v p="$T/d/X.sock" '$NF == p && $1 == "live"' "$T/ls1" | grep -q . && echo "ok: X.sock listed live" || bad "X.sock not live"
[ $have_nc = 1 ] && { awk -v p="$T/d/Y.sock" '$NF == p && $1 == "live"' "$T/ls1" | grep -q . && echo "ok: Y.sock listed live" || bad "Y.sock not live"; }

# still there, still listening, nobody accepted
kill -0 "$L" 2>/dev/null && in_d uds_is_listening X.sock && [ -S "$T/d/X.sock" ] \
    && echo "ok: udsock listen still waiting after the listings" || bad "udsock listen gone: $(cat "$T/err1")"
kill -0 "$A" 2>/dev/null && uds_is_listening "$T/d/abs.sock" && echo "ok: udsock listen (absolute path) still waiting" || bad "abs listen gone"
[ ! -s "$T/out1" ] || bad "udsock listen received something: $(cat "$T/out1")"
if [ $have_nc = 1 ]; then
    kill -0 "$N" 2>/dev/null && in_d uds_is_listening Y.sock && echo "ok: nc -lU still waiting after the listings" || bad "nc -lU gone"
fi

# the proof: each one still takes its client and exchanges a line
r=$(echo ping-udsock | timeout 20 "$U" connect "$T/d/X.sock" 2>&1)
[ "$r" = pong-udsock ] && echo "ok: udsock listen answered its client" || bad "udsock listen exchange: '$r'"
wait "$L" 2>/dev/null
[ "$(cat "$T/out1")" = ping-udsock ] && echo "ok: udsock listen got the client's line" || bad "out1: '$(cat "$T/out1")'"
r=$(echo ping-abs | timeout 20 "$U" connect "$T/d/abs.sock" 2>&1)
[ "$r" = pong-udsock ] && [ "$(cat "$T/out3")" = ping-abs ] && echo "ok: udsock listen (absolute) exchanged a line" || bad "abs exchange: '$r'"
if [ $have_nc = 1 ]; then
    r=$(echo ping-nc | timeout 20 "$U" connect "$T/d/Y.sock" 2>&1)
    [ "$r" = pong-nc ] && echo "ok: nc -lU answered its client" || bad "nc exchange: '$r'"
    wait "$N" 2>/dev/null
    [ "$(cat "$T/out2")" = ping-nc ] && echo "ok: nc -lU got the client's line" || bad "out2: '$(cat "$T/out2")'"
fi
exit $fail
