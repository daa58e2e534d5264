#!/usr/bin/env bash
# Empty SEQPACKET messages are messages (issue 14 item 3), end to end:
#   - calc_server --seqpacket answers "sum 1 2", an empty request (with its
#     "unknown command ''" error), "upper" with no text (an empty reply) and
#     the requests after them, one by one and pipelined; the client prints
#     the empty reply as an empty line, never "Connection closed" or a reset
#   - the same through `udsock relay --type seqpacket` (packet <-> packet:
#     empty packets pass as empty packets, both directions)
#   - and through a relay from seqpacket to a LEN32 stream server (an empty
#     packet is an empty frame and back)
#   - a hostile peer (uid 65534) that floods the server with empty messages
#     and never reads the replies: an innocent client is still answered
#     (within 5 s; the time is printed), and the server's VmRSS grows by
#     less than 64 MiB (before/after printed)
# Before the fix the empty request ended the connection: the later answers
# were lost and the client saw the server hang up.
set -u
. "$(dirname "$0")/io_common.bash"
srv=$UDS_BUILD_DIR/examples/calc_server
cli=$UDS_BUILD_DIR/examples/calc_client
for x in "$srv" "$cli"; do [ -x "$x" ] || fail "missing $x"; done

start_calc() { # start_calc NAME ARGS...
    local name=$1; shift
    ready_open "$name"
    bg "$srv" "$@" --ready-fd 7 7>"$T/$name.ready" {RFD}<&- 2>"$T/$name.err"
    wait_ready "$LAST" "calc_server ($name)"
}

unknown="error: unknown command '' (try sum mul sort expr hash upper sleep)"
want=$(printf '3\n%s\n\n7\nAB' "$unknown")

# check WHAT ADDR [--pipeline]: the four answers in order, exit 1 (the error
# answer), nothing on stderr
check() {
    local what=$1 addr=$2; shift 2
    local got st
    got=$(timeout 20 "$cli" --seqpacket "$@" "$addr" "sum 1 2" "" "upper" "sum 3 4" "upper ab" 2>"$T/cli.err")
    st=$?
    [ "$got" = "$want" ] || fail "$what: got '$got' (stderr: $(cat "$T/cli.err"))"
    [ "$st" = 1 ] || fail "$what: calc_client exit status $st, want 1 (the error answer)"
    [ ! -s "$T/cli.err" ] || fail "$what: calc_client said: $(cat "$T/cli.err")"
    ok "$what"
}

Q=$T/q.sock
start_calc seq "$Q" --seqpacket
SEQ=$LAST
check "seqpacket server, one call at a time" "$Q"
check "seqpacket server, pipelined" "$Q" --pipeline

bg "$U" relay --type seqpacket "$T/r.sock" "$Q" 2>"$T/relay.err"
RELAY=$LAST
wait_listen "$T/r.sock" "$RELAY"
check "through a seqpacket <-> seqpacket relay" "$T/r.sock"
check "through a seqpacket <-> seqpacket relay, pipelined" "$T/r.sock" --pipeline

S=$T/calc.sock
start_calc len32 "$S"
bg "$U" relay --type seqpacket --target-type stream --target-frame len32 "$T/r2.sock" "$S" 2>"$T/relay2.err"
RELAY2=$LAST
wait_listen "$T/r2.sock" "$RELAY2"
check "through a seqpacket -> LEN32 stream relay" "$T/r2.sock" --pipeline

# a flood of empty messages from another user, who never reads the replies
if [ "$(id -u)" = 0 ]; then
    A=@udsock-empty-pkt-$$-$RANDOM
    start_calc hostile "$A" --seqpacket
    HC=$LAST
    rss() { awk '/^VmRSS/ { print $2 }' "/proc/$1/status"; }
    rss0=$(rss "$HC")
    ready_open flood
    setpriv --reuid=65534 --regid=65534 --clear-groups /usr/bin/python3 -c '
import os, socket, sys, time
s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
s.connect("\0" + sys.argv[1][1:])
s.setblocking(False)
n, end = 0, time.monotonic() + 3
while n < 100000 and time.monotonic() < end:
    try:
        s.send(b"")
        n += 1
    except BlockingIOError:
        time.sleep(0.001)
os.write(7, b"%d\n" % n)
os.close(7)
time.sleep(60)  # holds the connection, never reads
' "$A" 7>"$T/flood.ready" {RFD}<&- &
    FLOOD=$!
    PIDS+=($FLOOD)
    wait_ready "$FLOOD" "the flooding peer"
    sent=$READY_LINE
    [ "${sent:-0}" -gt 0 ] || fail "flood: nothing sent"
    t0=$(date +%s%N)
    got=$(timeout 20 "$cli" --seqpacket --timeout 5000 "$A" "sum 40 2" "" "upper x" 2>&1)
    t1=$(date +%s%N)
    ms=$(((t1 - t0) / 1000000))
    [ "$got" = "$(printf '42\n%s\nX' "$unknown")" ] || fail "flood: the innocent client got '$got'"
    [ "$ms" -lt 5000 ] || fail "flood: the innocent client took $ms ms"
    rss1=$(rss "$HC")
    [ $((rss1 - rss0)) -lt 65536 ] || fail "flood: calc_server VmRSS $rss0 -> $rss1 kB"
    kill "$FLOOD"; wait "$FLOOD" 2>/dev/null
    kill -TERM "$HC"; wait "$HC" || fail "calc_server (flooded) exit status $?"
    ok "flood of $sent empty messages from uid 65534 that never reads: innocent client answered in $ms ms, calc_server VmRSS $rss0 -> $rss1 kB"
fi

kill -0 "$RELAY" && kill -0 "$RELAY2" || fail "a relay exited"
kill -TERM "$SEQ"
wait "$SEQ" || fail "calc_server --seqpacket exit status $?"
! grep -qi "reset\|error" "$T/seq.err" || fail "calc_server said: $(cat "$T/seq.err")"
ok "calc_server --seqpacket ended cleanly"
