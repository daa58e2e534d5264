#!/bin/bash
# examples.sh — the example programs end to end, as separate processes:
# echo_server with several echo_client runs one after another (text and a
# 5 MiB binary), socat as another peer, TCP, SIGTERM cleanup, a regular file
# at the path refused and untouched; dgram_server/dgram_client request->reply
# and an unbound sender (logger -u).
# uds-test-timeout: 120
set -u
UDS_BUILD_DIR=${UDS_BUILD_DIR:-build}
B=$UDS_BUILD_DIR/examples
# $T and the readiness helpers (wait_listen, wait_bound); the cleanup below replaces its own
. "$(dirname "$0")/io_common.bash"
PIDS=()

cleanup() {
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done
    wait 2>/dev/null
    rm -rf "$T"
}
trap cleanup EXIT

fail() {
    echo "FAIL: $*" >&2
    for f in "$T"/*.err; do [ -s "$f" ] && { echo "--- $f"; tail -5 "$f"; } >&2; done
    exit 1
}

# wait_for COND...: retries COND for up to 5 s
wait_for() {
    for _ in $(seq 100); do "$@" && return 0; sleep 0.05; done
    return 1
}

for p in echo_server echo_client dgram_server dgram_client; do
    [ -x "$B/$p" ] || fail "$B/$p not built"
done

# ---- stream echo over a filesystem socket --------------------------------
S=$T/echo.sock
"$B/echo_server" "$S" >"$T/server.out" 2>"$T/server.err" &
SPID=$!
PIDS+=("$SPID")
wait_listen "$S" "$SPID"

expected=""
for i in 1 2 3; do
    line="hello number $i from client"
    out=$(printf '%s\n' "$line" | timeout 10 "$B/echo_client" "$S" 2>"$T/client.err") ||
        fail "echo_client run $i exited with $?"
    [ "$out" = "$line" ] || fail "client $i got '$out', want '$line'"
    expected+="$line"$'\n'
done
# several lines from one client, the last without a newline
printf 'a\nbb\nccc' | timeout 10 "$B/echo_client" "$S" >"$T/multi.out" 2>"$T/client.err" ||
    fail "multi-line client failed"
[ "$(cat "$T/multi.out")" = $'a\nbb\nccc' ] || fail "multi-line echo differs"
expected+=$'a\nbb\nccc'
server_printed() { [ "$(cat "$T/server.out")" = "$expected" ]; }
wait_for server_printed ||
    fail "server stdout is '$(cat "$T/server.out")', want the clients' text"

# 5 MiB of random bytes: echoed back byte-exact and printed by the server
head -c 5242880 /dev/urandom >"$T/big.bin"
before=$(stat -c %s "$T/server.out")
timeout 60 "$B/echo_client" "$S" <"$T/big.bin" >"$T/big.out" 2>"$T/client.err" ||
    fail "binary client exited with $?"
want=$(sha256sum <"$T/big.bin" | cut -d' ' -f1)
got=$(sha256sum <"$T/big.out" | cut -d' ' -f1)
[ "$want" = "$got" ] || fail "5 MiB echo differs ($(stat -c %s "$T/big.out") bytes back)"
server_out_size() { [ "$(stat -c %s "$T/server.out")" "$1" "$2" ]; }
wait_for server_out_size -eq $((before + 5242880)) ||
    fail "server printed $(($(stat -c %s "$T/server.out") - before)) of 5242880 bytes"
srv=$(tail -c 5242880 "$T/server.out" | sha256sum | cut -d' ' -f1)
[ "$srv" = "$want" ] || fail "server stdout does not hold the binary client's bytes"

# an empty client (stdin at EOF at once) is fine too
timeout 10 "$B/echo_client" "$S" </dev/null >"$T/empty.out" 2>"$T/client.err" || fail "empty client"
[ ! -s "$T/empty.out" ] || fail "empty client got data"

# socat as a peer of echo_server
if command -v socat >/dev/null; then
    out=$(printf 'via socat\n' | timeout 10 socat -t 2 - "UNIX-CONNECT:$S") || fail "socat exited with $?"
    [ "$out" = "via socat" ] || fail "socat got '$out'"
fi

# a client killed in the middle of a transfer does not take the server down
before=$(stat -c %s "$T/server.out")
head -c 20000000 /dev/zero | "$B/echo_client" "$S" >/dev/null 2>&1 &
KPID=$!
# in the middle: the server has printed some of its bytes already
wait_for server_out_size -gt "$before" || fail "the client to be killed sent nothing"
kill -KILL "$KPID" 2>/dev/null
wait "$KPID" 2>/dev/null
out=$(printf 'after a killed client\n' | timeout 10 "$B/echo_client" "$S" 2>"$T/client.err") ||
    fail "client after a killed client: exit $?"
[ "$out" = "after a killed client" ] || fail "client after a killed client got '$out'"

kill -0 "$SPID" 2>/dev/null || fail "echo_server died"

# SIGTERM: the server removes its own socket file and exits 0
kill -TERM "$SPID"
wait "$SPID"
rc=$?
[ $rc -eq 0 ] || fail "echo_server exit status $rc after SIGTERM"
[ ! -e "$S" ] || fail "socket file left after SIGTERM"
[ ! -e "$S.lock" ] || fail "lock file left"

# client with no server: a clear error, exit 1
timeout 10 "$B/echo_client" "$S" </dev/null >/dev/null 2>"$T/noserver.err"
rc=$?
[ $rc -eq 1 ] || fail "echo_client without server: exit $rc, want 1"
grep -q "No such file or directory" "$T/noserver.err" || fail "no-server error text: $(cat "$T/noserver.err")"

# a regular file at the path: refused, and left exactly as it was
F=$T/file.sock
printf 'precious\n' >"$F"
ino=$(stat -c %i "$F")
timeout 10 "$B/echo_server" "$F" >/dev/null 2>"$T/refused.err"
rc=$?
[ $rc -eq 1 ] || fail "echo_server on a regular file: exit $rc, want 1"
grep -q "File exists" "$T/refused.err" || fail "refusal text: $(cat "$T/refused.err")"
[ "$(cat "$F")" = "precious" ] || fail "regular file content changed"
[ "$(stat -c %i "$F")" = "$ino" ] || fail "regular file replaced"

# a stale socket left by a killed server is taken over
"$B/echo_server" "$S" >/dev/null 2>"$T/server2.err" &
SPID=$!
PIDS+=("$SPID")
wait_listen "$S" "$SPID"
kill -KILL "$SPID"
wait "$SPID" 2>/dev/null
[ -S "$S" ] || fail "SIGKILL should leave the file behind"
"$B/echo_server" "$S" >"$T/server3.out" 2>"$T/server3.err" &
SPID=$!
PIDS+=("$SPID")
wait_listen "$S" "$SPID"
out=$(printf 'again\n' | timeout 10 "$B/echo_client" "$S" 2>"$T/client.err") || fail "client after takeover"
[ "$out" = "again" ] || fail "client after takeover got '$out'"
# and a second server on the live socket is refused
timeout 10 "$B/echo_server" "$S" >/dev/null 2>"$T/inuse.err"
[ $? -eq 1 ] || fail "second server on a live socket did not fail"
grep -q "Address already in use" "$T/inuse.err" || fail "in-use text: $(cat "$T/inuse.err")"
kill -TERM "$SPID"
wait "$SPID"

# stdout closed by its reader: the server leaves tidily (exit 1, file removed)
P=$T/pipe.sock
( "$B/echo_server" "$P" 2>"$T/pipe.err"; echo $? >"$T/pipe.rc" ) 2>/dev/null | head -c 1 >/dev/null &
HPID=$! # head's: the server is its sibling, so the wait takes no PID
wait_listen "$P"
printf 'first\n' | timeout 10 "$B/echo_client" "$P" >/dev/null 2>&1
wait_for test ! -e /proc/$HPID || true
printf 'second\n' | timeout 10 "$B/echo_client" "$P" >/dev/null 2>&1
wait_for test -s "$T/pipe.rc" || fail "echo_server kept running with nobody reading its stdout"
[ "$(cat "$T/pipe.rc")" = 1 ] || fail "echo_server (stdout gone) exit $(cat "$T/pipe.rc"), want 1"
[ ! -e "$P" ] || fail "echo_server (stdout gone) left its socket file"
wait "$HPID" 2>/dev/null

# ---- the same echo over TCP on loopback (port chosen by the kernel) -------
"$B/echo_server" tcp:127.0.0.1:0 >"$T/tcp.out" 2>"$T/tcp.err" &
TPID=$!
PIDS+=("$TPID")
wait_for grep -q "listening on tcp:127.0.0.1:" "$T/tcp.err" || fail "tcp echo_server did not start"
TADDR=$(sed -n 's/.*listening on \(tcp:[^ ]*\).*/\1/p' "$T/tcp.err")
wait_listen "$TADDR"
out=$(printf 'over tcp\n' | timeout 10 "$B/echo_client" "$TADDR" 2>"$T/client.err") || fail "tcp client"
[ "$out" = "over tcp" ] || fail "tcp client got '$out'"
wait_for grep -q "over tcp" "$T/tcp.out" || fail "tcp server did not print the text"
kill -TERM "$TPID"
wait "$TPID"

# ---- datagrams ------------------------------------------------------------
D=$T/dgram.sock
"$B/dgram_server" "$D" >"$T/dgram.out" 2>"$T/dgram.err" &
DPID=$!
PIDS+=("$DPID")
wait_bound "$D" "$DPID"
out=$(timeout 10 "$B/dgram_client" "$D" hello world 2>"$T/dclient.err") || fail "dgram_client exited with $?"
[ "$out" = $'HELLO\nWORLD' ] || fail "dgram_client got '$out'"
out=$(printf 'one\ntwo\n' | timeout 10 "$B/dgram_client" "$D" 2>"$T/dclient.err") || fail "dgram_client stdin"
[ "$out" = $'ONE\nTWO' ] || fail "dgram_client (stdin) got '$out'"
# the client never bound a path: only the server's socket is in the directory
[ "$(find "$T" -type s | wc -l)" -eq 1 ] || fail "a client left a socket file: $(find "$T" -type s)"
grep -q '^@[0-9a-f]*: hello$' "$T/dgram.out" || fail "server did not print the autobound sender: $(cat "$T/dgram.out")"
# an unbound sender (logger -u writes without binding an address)
if command -v logger >/dev/null; then
    logger -u "$D" -t udstest "from logger $$" 2>"$T/logger.err" || fail "logger -u failed: $(cat "$T/logger.err")"
    wait_for grep -q "^(unnamed): .*from logger $$" "$T/dgram.out" ||
        fail "logger's datagram not seen: $(cat "$T/dgram.out")"
fi
# an abstract-address datagram server works the same
A="@udsock-examples-$$-$RANDOM"
"$B/dgram_server" "$A" >"$T/dgram2.out" 2>"$T/dgram2.err" &
PIDS+=("$!")
wait_bound "$A"
out=$(timeout 10 "$B/dgram_client" "$A" abstract 2>"$T/dclient.err") || fail "abstract dgram_client"
[ "$out" = "ABSTRACT" ] || fail "abstract dgram_client got '$out'"
kill -0 "$DPID" 2>/dev/null || fail "dgram_server died"
kill -TERM "$DPID"
wait "$DPID"
[ ! -e "$D" ] || fail "dgram socket file left after SIGTERM"

echo "examples: ok"
