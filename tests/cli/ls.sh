#!/bin/bash
# udsock ls: finds a test server's listening socket with the right pid,
# command and uid; marks a stale socket file stale and leaves it in place;
# abstract names; --json is valid JSON with the same facts.
# uds-test-timeout: 60
set -u
UDS_BUILD_DIR=${UDS_BUILD_DIR:-build}
# $U, $T, PIDS and the readiness helpers; cleanup and ok are ours (below)
. "$(dirname "$0")/io_common.bash"
PY=/usr/bin/python3
fail=0
cleanup() {
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done
    wait 2>/dev/null
    rm -rf "$T"
}
trap cleanup EXIT
bad() { echo "FAIL: $*"; fail=1; }
ok() { echo "ok: $*"; }

# a listening server that no one here wrote
socat UNIX-LISTEN:"$T/live.sock",fork EXEC:cat 2>/dev/null &
SRV=$!
PIDS+=($SRV)
# a stale socket file: bound, then its process exited
$PY -c 'import socket,sys; socket.socket(socket.AF_UNIX).bind(sys.argv[1])' "$T/stale.sock"
mkdir -p "$T/sub/deeper"
$PY -c 'import socket,sys; socket.socket(socket.AF_UNIX).bind(sys.argv[1])' "$T/sub/deeper/old.sock"
ln -s /run "$T/sub/link-to-run"         # must not be followed
echo data >"$T/regular"
# an abstract listener
AB="udsock-ls-$$-$RANDOM"
socat ABSTRACT-LISTEN:"$AB",fork EXEC:cat 2>/dev/null &
ASRV=$!
PIDS+=($ASRV)
wait_listen "$T/live.sock" "$SRV"
wait_listen "@$AB" "$ASRV"

out=$("$U" ls "$T")
echo "$out"
line=$(echo "$out" | awk -v p="$T/live.sock" '$NF == p && $2 == "listening"')
set -- $line
[ "${1:-}" = stream ] && [ "${3:-}" = "$SRV" ] && [ "${4:-}" = "$(id -u)" ] && [ "${5:-}" = socat ] \
    && ok "live socket: stream listening pid $SRV uid $(id -u) socat" || bad "live line: '$line'"
line=$(echo "$out" | awk -v p="$T/stale.sock" '$NF == p')
[ "$(echo "$line" | awk '{print $2}')" = stale ] && ok "stale file marked stale" || bad "stale line: '$line'"
echo "$out" | awk -v p="$T/sub/deeper/old.sock" '$NF == p && $2 == "stale"' | grep -q . \
    && ok "stale file two levels down found" || bad "deep stale file not found"
echo "$out" | grep -q link-to-run && bad "symlink followed" || ok "symlink not followed"
[ -S "$T/stale.sock" ] && [ -S "$T/sub/deeper/old.sock" ] && ok "stale files left in place" || bad "stale file removed"
# header and rows aligned: the PATH column starts at the same offset
off=$(echo "$out" | awk '{ print index($0, $NF) }' | sort -u | wc -l)
[ "$off" = 1 ] && ok "columns aligned" || bad "columns not aligned"
"$U" ls --depth 0 "$T" | grep -q old.sock && bad "--depth 0 went down" || ok "--depth 0 stays at the top"

# the whole machine: our server and the abstract one are there
all=$("$U" ls)
echo "$all" | awk -v p="$T/live.sock" -v pid="$SRV" '$NF == p && $3 == pid' | grep -q . \
    && ok "ls (no DIR) lists the server" || bad "ls without DIR misses the server"
echo "$all" | awk -v p="@$AB" -v pid="$ASRV" '$NF == p && $2 == "listening" && $3 == pid' | grep -q . \
    && ok "abstract listener listed with pid" || bad "abstract: $(echo "$all" | grep "$AB")"
"$U" ls -l | awk 'NR > 1 && $2 != "listening" && $2 != "stale"' | grep -q . \
    && bad "-l shows non-listening sockets" || ok "-l only listening"

# a connected client shows up as connected (with -a for its unnamed end)
socat -u UNIX-CONNECT:"$T/live.sock" - >/dev/null 2>&1 &
CL=$!
PIDS+=($CL)
poll_until is_connected "$CL" || bad "client did not connect"
"$U" ls -a | awk -v pid="$CL" '$3 == pid && $2 == "connected"' | grep -q . \
    && ok "-a: the client's unnamed socket is connected, pid $CL" || bad "-a: client not listed"
kill "$CL" 2>/dev/null

# --json: valid, and the same facts
"$U" ls --json "$T" >"$T/out.json"
if $PY -m json.tool "$T/out.json" >/dev/null; then ok "--json is valid JSON"; else bad "--json invalid"; fi
r=$($PY - "$T" "$SRV" "$T/out.json" <<'PYEOF'
import json, os, sys
d, pid, f = sys.argv[1], int(sys.argv[2]), sys.argv[3]
rows = json.load(open(f))
live = [r for r in rows if r["path"] == d + "/live.sock" and r["state"] == "listening"]
stale = [r for r in rows if r["path"] == d + "/stale.sock"]
okl = len(live) == 1 and live[0]["pid"] == pid and live[0]["type"] == "stream" and live[0]["uid"] == os.getuid() \
      and live[0]["command"] == "socat" and not live[0]["stale"]
oks = len(stale) == 1 and stale[0]["stale"] is True and stale[0]["state"] == "stale"
print("yes" if okl and oks else "no %r" % rows)
PYEOF
)
[ "$r" = yes ] && ok "--json rows right" || bad "--json rows: $r"
"$U" ls --json -a | $PY -m json.tool >/dev/null && ok "--json -a (whole machine) is valid JSON" || bad "--json -a invalid"

# as another user: root's processes cannot be read; skipped without a word
if [ "$(id -u)" = 0 ] && [ -x "$U" ]; then
    chmod 755 "$T"
    setpriv --reuid=65534 --regid=65534 --clear-groups "$U" ls "$T" >"$T/nobody.out" 2>"$T/nobody.err"
    rc=$?
    line=$(awk -v p="$T/live.sock" '$NF == p' "$T/nobody.out")
    [ $rc = 0 ] && [ ! -s "$T/nobody.err" ] && [ "$(echo "$line" | awk '{print $2, $3}')" = "listening -" ] \
        && ok "uid 65534: listener shown without owner, no errors" \
        || bad "as 65534: rc $rc, err '$(cat "$T/nobody.err")', line '$line'"
fi

# errors
"$U" ls "$T/regular" 2>/dev/null; [ $? = 2 ] && ok "ls FILE: exit 2" || bad "ls FILE"
"$U" ls "$T/none" 2>/dev/null; [ $? = 1 ] && ok "ls missing dir: exit 1" || bad "ls missing"

exit $fail
