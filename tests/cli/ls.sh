#!/bin/bash
# udsock ls (from sock_diag): a test server's listening socket with the
# right pid, command and uid; DIR: live, stale, bound, a server killed
# (stale), a socket file replaced by another socket (the new one live, the
# old listener "unlinked"), symlinks not followed, --depth; the whole
# machine: abstract names, a connected client with its peer; ls PATH
# fields (mode, owner, listener, pending and accepted connections with
# their processes); --json with the same facts; as uid 65534: other users'
# processes shown as unknown ("?"), an unreadable DIR is an error
# ("udsock: ls DIR: Permission denied", exit 1: issue 10 item 6); without
# sock_diag (the UDSOCK_NO_SOCK_DIAG seam): the machine-wide listing is
# refused, DIR and PATH show files as "unknown".
# uds-test-timeout: 90
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
# field N of the row whose last field is $2, in text $1
row() { echo "$1" | awk -v p="$2" '$NF == p'; }
col() { echo "$1" | awk -v p="$2" -v n="$3" '$NF == p { print $n; exit }'; }

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
# bound, not listening: python keeps it open
$PY -c 'import socket,sys,time; s=socket.socket(socket.AF_UNIX); s.bind(sys.argv[1]); print("b", flush=True); time.sleep(60)' "$T/bound.sock" >"$T/bound.ready" &
PIDS+=($!)
poll_until grep -q b "$T/bound.ready" || bad "bound socket not made"

out=$("$U" ls "$T")
echo "$out"
line=$(row "$out" "$T/live.sock")
set -- $line
[ "${1:-}" = live ] && [ "${2:-}" = stream ] && [ "${3:-}" = 0755 ] && [ "${8:-}" = "$SRV/socat($(id -u))" ] \
    && ok "live socket: live stream 0755, process $SRV/socat($(id -u))" || bad "live line: '$line'"
[ "$(col "$out" "$T/stale.sock" 1)" = stale ] && ok "stale file marked stale" || bad "stale line: '$(row "$out" "$T/stale.sock")'"
[ "$(col "$out" "$T/sub/deeper/old.sock" 1)" = stale ] && ok "stale file two levels down found" || bad "deep stale file not found"
[ "$(col "$out" "$T/bound.sock" 1)" = bound ] && ok "bound, not listening: 'bound'" || bad "bound line: '$(row "$out" "$T/bound.sock")'"
echo "$out" | grep -q link-to-run && bad "symlink followed" || ok "symlink not followed"
[ -S "$T/stale.sock" ] && [ -S "$T/sub/deeper/old.sock" ] && ok "stale files left in place" || bad "stale file removed"
off=$(echo "$out" | awk '{ print index($0, $NF) }' | sort -u | wc -l)
[ "$off" = 1 ] && ok "columns aligned" || bad "columns not aligned"
"$U" ls --depth 0 "$T" | grep -q old.sock && bad "--depth 0 went down" || ok "--depth 0 stays at the top"
"$U" ls -l "$T" | awk 'NR > 1 && $1 != "live"' | grep -q . && bad "-l DIR shows non-live files" || ok "-l DIR: only live files"

# a server killed with SIGKILL leaves a stale file; a socket file replaced
# by another server: the new one is live, the old listener is "unlinked"
"$U" listen "$T/killed.sock" </dev/null >/dev/null 2>&1 &
K=$!
PIDS+=($K)
wait_listen "$T/killed.sock" "$K"
"$U" listen "$T/repl.sock" </dev/null >/dev/null 2>&1 &
OLD=$!
PIDS+=($OLD)
wait_listen "$T/repl.sock" "$OLD"
kill -9 "$K"
wait "$K" 2>/dev/null
rm "$T/repl.sock"
socat UNIX-LISTEN:"$T/repl.sock",fork EXEC:cat 2>/dev/null &
NEW=$!
PIDS+=($NEW)
poll_until "$PY" -c 'import os,stat,sys; sys.exit(not stat.S_ISSOCK(os.lstat(sys.argv[1]).st_mode))' "$T/repl.sock" 2>/dev/null || bad "no new repl.sock"
poll_until sh -c '"$1" ls "$2" | awk -v p="$2/repl.sock" -v pid="$3" '"'"'$NF == p && $1 == "live" && index($8, pid "/")'"'"' | grep -q .' _ "$U" "$T" "$NEW" \
    || bad "new repl.sock server never live"
out=$("$U" ls "$T")
echo "$out"
[ "$(col "$out" "$T/killed.sock" 1)" = stale ] && ok "killed server: stale" || bad "killed: '$(row "$out" "$T/killed.sock")'"
n=$(echo "$out" | awk -v p="$T/repl.sock" '$NF == p' | wc -l)
live=$(echo "$out" | awk -v p="$T/repl.sock" -v pid="$NEW" '$NF == p && $1 == "live" && index($8, pid "/socat")' | wc -l)
unl=$(echo "$out" | awk -v p="$T/repl.sock" -v pid="$OLD" '$NF == p && $1 == "unlinked" && index($8, pid "/udsock")' | wc -l)
[ "$n" = 2 ] && [ "$live" = 1 ] && [ "$unl" = 1 ] && ok "replaced file: new server live, old listener unlinked" \
    || bad "replaced: $(echo "$out" | grep repl.sock)"

# ls PATH: mode, owner, listener, pending and accepted connections
chmod 0640 "$T/live.sock"
socat -u UNIX-CONNECT:"$T/live.sock" - >/dev/null 2>&1 &
CL=$!
PIDS+=($CL)
poll_until is_connected "$CL" || bad "client did not connect"
poll_until sh -c '"$1" ls "$2" | grep -q "^connection: .*$3/socat"' _ "$U" "$T/live.sock" "$CL" || true
p=$("$U" ls "$T/live.sock")
echo "$p"
get() { echo "$p" | awk -v k="$1:" '$1 == k { $1 = ""; sub(/^ +/, ""); print; exit }'; }
[ "$(get state)" = live ] && [ "$(get type)" = stream ] && [ "$(get mode)" = "0640 srw-r-----" ] \
    && [ "$(get owner)" = "$(id -un) ($(id -u))" ] && [ "$(get group)" = "$(id -gn) ($(id -g))" ] \
    && ok "ls PATH: state, type, mode, owner, group" || bad "ls PATH header"
echo "$p" | grep -q "^socket: .* held by $SRV/socat($(id -u))\$" && ok "ls PATH: the listener's process" || bad "ls PATH listener"
echo "$p" | grep -q "^connection: .*, peer [0-9]* held by $CL/socat($(id -u))\$" \
    && ok "ls PATH: the accepted connection and the client's process" || bad "ls PATH connection"
# pending: a one-shot listener with nobody accepting a second client
"$PY" - "$T/pend.sock" >"$T/pend.ready" <<'PYEOF' &
import socket, sys, time
s = socket.socket(socket.AF_UNIX); s.bind(sys.argv[1]); s.listen(3)
c = socket.socket(socket.AF_UNIX); c.connect(sys.argv[1])
print("p", flush=True); time.sleep(60)
PYEOF
PEND=$!
PIDS+=($PEND)
poll_until grep -q p "$T/pend.ready" || bad "pending server not ready"
p=$("$U" ls "$T/pend.sock")
[ "$(get pending)" = 1 ] && [ "$(get backlog)" = 3 ] && echo "$p" | grep -q "^waiting: *client [0-9]* held by $PEND/python3" \
    && ok "ls PATH: 1 pending connection, backlog 3, the waiting client's process" || bad "pending: $p"
"$U" ls --json "$T/pend.sock" | $PY -c '
import json, sys
d = json.load(sys.stdin)
ok = d["state"] == "live" and d["backlog"] == 3 and len(d["pending"]) == 1 and d["pending"][0]["peer_processes"][0]["pid"] == int(sys.argv[1])
sys.exit(0 if ok else 1)' "$PEND" && ok "ls --json PATH: pending" || bad "ls --json PATH"
p=$("$U" ls "$T/stale.sock")
[ "$(get state)" = stale ] && ! echo "$p" | grep -q '^socket:' && ok "ls PATH on a stale file: stale, no socket" || bad "ls stale PATH: $p"

# the whole machine: our server and the abstract one are there
all=$("$U" ls)
echo "$all" | awk -v p="$T/live.sock" -v pid="$SRV" '$NF == p && $2 == "listening" && index($6, pid "/socat")' | grep -q . \
    && ok "ls (no DIR) lists the server" || bad "ls without DIR misses the server"
echo "$all" | awk -v p="$T/live.sock" '$NF == p && $2 == "listening" && $9 == "0640"' | grep -q . \
    && ok "ls: the file's mode" || bad "ls: mode of live.sock"
echo "$all" | awk -v p="@$AB" -v pid="$ASRV" '$NF == p && $2 == "listening" && index($6, pid "/socat")' | grep -q . \
    && ok "abstract listener listed with pid" || bad "abstract: $(echo "$all" | grep "$AB")"
echo "$all" | awk -v p="$T/repl.sock" '$NF == p && $2 == "listening" && $9 == "unlinked"' | grep -q . \
    && ok "ls: the replaced listener's file is unlinked" || bad "ls: unlinked"
"$U" ls -l | awk 'NR > 1 && $2 != "listening"' | grep -q . && bad "-l shows non-listening sockets" || ok "-l only listening"
# the client's unnamed socket, connected, with its peer held by the server
# (socat's forked child holds the accepted end)
"$U" ls -a | awk -v pid="$CL" '$NF == "(unnamed)" && $2 == "connected" && index($6, pid "/socat") && $8 ~ /^[0-9]+\/socat\(/' | grep -q . \
    && ok "-a: the client's unnamed socket is connected, peer held by the server's socat" || bad "-a: client not listed"
kill "$CL" 2>/dev/null

# --json: valid, and the same facts
"$U" ls --json "$T" >"$T/out.json"
r=$($PY - "$T" "$SRV" "$T/out.json" <<'PYEOF'
import json, os, sys
d, pid, f = sys.argv[1], int(sys.argv[2]), sys.argv[3]
rows = json.load(open(f))
live = [r for r in rows if r["path"] == d + "/live.sock"]
stale = [r for r in rows if r["path"] == d + "/stale.sock"]
okl = len(live) == 1 and live[0]["state"] == "live" and live[0]["type"] == "stream" \
      and [p["pid"] for p in live[0]["processes"]] == [pid] and live[0]["processes"][0]["command"] == "socat" \
      and live[0]["processes"][0]["uid"] == os.getuid() and live[0]["mode"] == "0640" \
      and bytes.fromhex(live[0]["path_hex"]) == (d + "/live.sock").encode()
oks = len(stale) == 1 and stale[0]["state"] == "stale" and stale[0]["inode"] is None
print("yes" if okl and oks else "no %r" % rows)
PYEOF
)
[ "$r" = yes ] && ok "--json DIR rows right" || bad "--json rows: $r"
"$U" ls --json -a | $PY -c '
import json, sys
rows = json.load(sys.stdin)
ab = [r for r in rows if r["kind"] == "abstract" and r["name"] == sys.argv[1] and r["state"] == "listening"]
sys.exit(0 if len(ab) == 1 and ab[0]["processes"][0]["pid"] == int(sys.argv[2]) else 1)' "$AB" "$ASRV" \
    && ok "--json -a (whole machine): the abstract listener" || bad "--json -a"

# as another user
if [ "$(id -u)" = 0 ]; then
    chmod 755 "$T"
    setpriv --reuid=65534 --regid=65534 --clear-groups "$U" ls "$T" >"$T/nobody.out" 2>"$T/nobody.err"
    rc=$?
    line=$(awk -v p="$T/live.sock" '$NF == p' "$T/nobody.out")
    [ $rc = 0 ] && [ ! -s "$T/nobody.err" ] && [ "$(echo "$line" | awk '{print $1, $8}')" = "live ?" ] \
        && ok "uid 65534: listener live, its root process unknown ('?'), no errors" \
        || bad "as 65534: rc $rc, err '$(cat "$T/nobody.err")', line '$line'"
    # issue 10 item 6: an unreadable DIR is an error, not an empty table
    mkdir -m 0700 "$T/secret"
    setpriv --reuid=65534 --regid=65534 --clear-groups "$U" ls "$T/secret" >"$T/s.out" 2>"$T/s.err"
    rc=$?
    [ $rc = 1 ] && [ ! -s "$T/s.out" ] && [ "$(cat "$T/s.err")" = "udsock: ls $T/secret: Permission denied" ] \
        && ok "unreadable DIR: 'udsock: ls DIR: Permission denied', exit 1" \
        || bad "unreadable DIR: rc $rc, out '$(cat "$T/s.out")', err '$(cat "$T/s.err")'"
    mkdir -m 0711 "$T/noread"
    setpriv --reuid=65534 --regid=65534 --clear-groups "$U" ls "$T/noread" >/dev/null 2>"$T/s.err"
    rc=$?
    [ $rc = 1 ] && grep -q "Permission denied" "$T/s.err" && ok "DIR searchable but not readable: exit 1" || bad "noread: rc $rc"
    # an unreadable subdirectory: said, exit 1, the rest still listed
    mkdir -p "$T/part" && mkdir -m 0700 "$T/part/hidden"
    $PY -c 'import socket,sys; socket.socket(socket.AF_UNIX).bind(sys.argv[1])' "$T/part/s.sock"
    setpriv --reuid=65534 --regid=65534 --clear-groups "$U" ls "$T/part" >"$T/s.out" 2>"$T/s.err"
    rc=$?
    [ $rc = 1 ] && grep -qx "udsock: ls $T/part/hidden: Permission denied" "$T/s.err" && grep -q "$T/part/s.sock" "$T/s.out" \
        && ok "unreadable subdirectory: named on stderr, exit 1, the rest listed" \
        || bad "subdir: rc $rc, err '$(cat "$T/s.err")', out '$(cat "$T/s.out")'"
fi

# without sock_diag: no /proc/net/unix fallback for the machine-wide list
UDSOCK_NO_SOCK_DIAG=1 "$U" ls >"$T/f.out" 2>"$T/f.err"
rc=$?
[ $rc = 1 ] && [ ! -s "$T/f.out" ] && grep -q "sock_diag for unix sockets is unavailable.*not falling back to /proc/net/unix" "$T/f.err" \
    && ok "no sock_diag: machine-wide ls refused, exit 1" || bad "no sock_diag: rc $rc, err '$(cat "$T/f.err")'"
UDSOCK_NO_SOCK_DIAG=1 "$U" ls "$T" >"$T/f.out" 2>"$T/f.err"
rc=$?
[ $rc = 0 ] && [ "$(col "$(cat "$T/f.out")" "$T/live.sock" 1)" = unknown ] && [ "$(col "$(cat "$T/f.out")" "$T/stale.sock" 1)" = unknown ] \
    && grep -q "state unknown" "$T/f.err" && ok "no sock_diag: DIR files shown 'unknown' with a warning" \
    || bad "no sock_diag DIR: rc $rc, $(cat "$T/f.out" "$T/f.err")"
UDSOCK_NO_SOCK_DIAG=1 "$U" ls --json "$T/live.sock" 2>/dev/null | $PY -c 'import json,sys; sys.exit(json.load(sys.stdin)["state"] != "unknown")' \
    && ok "no sock_diag: ls PATH state unknown" || bad "no sock_diag PATH"

# errors
"$U" ls "$T/regular" 2>/dev/null; [ $? = 2 ] && ok "ls FILE: exit 2" || bad "ls FILE"
"$U" ls "$T/none" 2>"$T/e.err"; rc=$?
[ $rc = 1 ] && [ "$(cat "$T/e.err")" = "udsock: ls $T/none: No such file or directory" ] && ok "ls missing dir: exit 1" || bad "ls missing: $rc $(cat "$T/e.err")"

exit $fail
