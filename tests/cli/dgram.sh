#!/bin/bash
# uds-test-timeout: 90
# Datagrams and seqpacket: udsock send -> udsock recv (arguments, stdin lines,
# --whole, --reply), logger -u -> recv (an unnamed sender: printed, never
# answered), socat UNIX-SENDTO <-> recv --echo, recv --reply CMD, --from,
# --cred, -n; listen/connect --type seqpacket and dgram; socat as peer.
. "$(dirname "$0")/io_common.bash"
need socat; need logger

D="$T/d.sock"
# send -> recv: arguments, stdin lines, --whole; -n ends recv
rm -f "$D"
timeout 10 "$U" recv -n 5 "$D" > "$T/r1" &
spid=$!; PIDS+=($spid)
wait_bound "$D"
timeout 5 "$U" send "$D" one "two words" || fail "send args"
printf 'line3\nline4\n' | timeout 5 "$U" send "$D" || fail "send lines"
printf 'whole\nmulti-line\n' | timeout 5 "$U" send --whole "$D" || fail "send --whole"
wait "$spid" || fail "recv -n 5: status $?"
printf 'one\ntwo words\nline3\nline4\nwhole\nmulti-line\n' | cmp -s - "$T/r1" || fail "recv output: $(cat "$T/r1")"
[ -e "$D" ] && fail "recv left its socket file behind"
ok "send (args, lines, --whole) -> recv -n 5; socket file removed"

# --from and --cred: the sender's autobound abstract name and its pid/uid/gid
timeout 10 "$U" recv -n 1 --from --cred "$D" > "$T/r2" &
spid=$!; PIDS+=($spid)
wait_bound "$D"
(exec "$U" send "$D" hello-cred) &
sender=$!
wait $sender
wait "$spid" || fail "recv --from --cred"
grep -qE "^@[0-9a-f]{5} pid=$sender uid=$(id -u) gid=$(id -g): hello-cred$" "$T/r2" ||
    fail "--from --cred line: $(cat "$T/r2") (sender pid $sender)"
ok "recv --from --cred: $(cat "$T/r2")"

# logger -u: an unnamed sender is printed, and --echo does not try to answer it
timeout 10 "$U" recv -n 2 --from --echo -v "$D" > "$T/r3" 2> "$T/e3" &
spid=$!; PIDS+=($spid)
wait_bound "$D"
logger -u "$D" "message from logger" || fail "logger"
timeout 5 "$U" send -r "$D" after-logger > "$T/r3b" || fail "send after logger"
wait "$spid" || fail "recv after logger: status $?"
grep -q "^(unnamed): <[0-9]*>.*message from logger$" "$T/r3" || fail "logger line: $(cat "$T/r3")"
grep -q "not answering a sender without an address" "$T/e3" || fail "no note about the unnamed sender: $(cat "$T/e3")"
[ "$(cat "$T/r3b")" = after-logger ] || fail "echo after logger: $(cat "$T/r3b")"
ok "logger -u -> recv (unnamed sender printed, not answered; recv still serves others)"

# socat UNIX-SENDTO with a bound reply address <-> recv --echo
timeout 10 "$U" recv -n 1 --echo "$D" > /dev/null &
spid=$!; PIDS+=($spid)
wait_bound "$D"
r=$(echo ping-from-socat | timeout 5 socat -t 1 - UNIX-SENDTO:"$D",bind="$T/socat-client.sock") || fail "socat sendto"
wait "$spid"
[ "$r" = ping-from-socat ] || fail "socat got '$r'"
ok "socat UNIX-SENDTO,bind= <-> recv --echo"

# socat as the receiver (UNIX-RECV) of udsock send
rm -f "$T/sr.sock"
bg timeout 10 socat -u UNIX-RECV:"$T/sr.sock" "OPEN:$T/r4,creat"
spid=$LAST
wait_bound "$T/sr.sock"
timeout 5 "$U" send "$T/sr.sock" to-socat || fail "send to socat"
wait_grep "$T/r4" to-socat
kill "$spid" 2>/dev/null
[ "$(cat "$T/r4")" = to-socat ] || fail "socat UNIX-RECV got '$(cat "$T/r4")'"
ok "udsock send -> socat UNIX-RECV"

# recv --reply CMD: the command sees the datagram on stdin and UDSOCK_PEER
timeout 10 "$U" recv -n 2 --reply 'tr a-z A-Z; printf " from %s" "${UDSOCK_PEER%%[0-9a-f]*}"' "$D" > /dev/null &
spid=$!; PIDS+=($spid)
wait_bound "$D"
r=$(timeout 5 "$U" send --reply "$D" hello world) || fail "send --reply: status $?"
wait "$spid"
[ "$r" = "$(printf 'HELLO from @\nWORLD from @')" ] || fail "--reply output: '$r'"
ok "recv --reply CMD / send --reply"

# SIGTERM while a --reply command runs: served at once (the command's
# output and exit are waited for on the loop), the socket file removed
R="$T/rt.sock"
"$U" recv --reply 'sleep 8; echo late' "$R" > /dev/null 2>&1 &
spid=$!; PIDS+=($spid)
wait_bound "$R"
timeout 5 "$U" send "$R" start-the-command || fail "send to recv --reply"
poll_until pgrep -P "$spid" > /dev/null || fail "recv --reply: the command did not start"
start=$(date +%s%N)
kill -TERM "$spid"; wait "$spid"; rc=$?
el=$(( ($(date +%s%N) - start) / 1000000 ))
[ $rc = 143 ] && [ $el -lt 3000 ] || fail "recv --reply: SIGTERM status $rc after $el ms"
wait_gone "$R" || fail "recv --reply: socket file left after SIGTERM"
ok "recv: SIGTERM while --reply runs: status 143 after $el ms, socket file removed"

# send --reply with nobody answering: a clear failure after --timeout
timeout 10 "$U" recv -n 1 "$D" > /dev/null &
spid=$!; PIDS+=($spid)
wait_bound "$D"
err=$(timeout 5 "$U" send --reply --timeout 0.3 "$D" unanswered 2>&1); rc=$?
wait "$spid"
[ $rc = 1 ] && [[ "$err" == *"no reply within 0.3 s"* ]] || fail "no reply: rc $rc, '$err'"
ok "send --reply --timeout: $err"

# sending to nobody
err=$(timeout 5 "$U" send "$T/nobody.sock" x 2>&1); rc=$?
[ $rc = 1 ] && [ "$err" = "udsock: connect $T/nobody.sock: No such file or directory (is the server running?)" ] ||
    fail "send to nobody: rc $rc '$err'"
ok "send to a missing receiver: $err"

# abstract datagram address
A="@udsock-dgram-$$-$RANDOM"
timeout 10 "$U" recv -n 1 "$A" > "$T/r5" &
spid=$!; PIDS+=($spid)
timeout 5 "$U" send --wait 5 "$A" abstract-dgram || fail "abstract send"
wait "$spid"
[ "$(cat "$T/r5")" = abstract-dgram ] || fail "abstract recv: $(cat "$T/r5")"
ok "abstract datagram address"

# listen --type dgram prints datagrams raw; stdin goes to the last named sender
# (the answer is written to listen's stdin once the datagram has arrived)
Q="$T/q.sock"
mkfifo "$T/q.in"
exec {qin}<>"$T/q.in"
bg timeout 10 bash -c "$U listen --type dgram $Q < $T/q.in > $T/r6"
spid=$LAST
wait_bound "$Q" "$spid"
printf 'dgram-in' | timeout 5 socat -t 2 - UNIX-SENDTO:"$Q",bind="$T/qc.sock" > "$T/q.reply" &
qc=$!
wait_grep "$T/r6" dgram-in
echo answer-to-sender >&$qin
exec {qin}>&-
wait "$qc"
r=$(cat "$T/q.reply")
[ "$(cat "$T/r6")" = dgram-in ] || fail "listen --type dgram got '$(cat "$T/r6")'"
[ "$r" = answer-to-sender ] || fail "listen --type dgram reply: '$r'"
kill "$spid"
ok "listen --type dgram <-> socat UNIX-SENDTO"

# listen --type dgram with stdin /dev/null (epoll cannot watch it): still
# prints every datagram, from several senders
rm -f "$Q"
"$U" listen --type dgram "$Q" < /dev/null > "$T/r6b" &
spid=$!; PIDS+=($spid)
wait_bound "$Q"
timeout 5 "$U" send "$Q" first-dgram || fail "send 1"
timeout 5 "$U" send "$Q" second-dgram || fail "send 2"
poll_until grep -q second "$T/r6b"
kill "$spid"; wait "$spid" 2>/dev/null
[ "$(cat "$T/r6b")" = first-dgramsecond-dgram ] || fail "listen --type dgram < /dev/null: '$(cat "$T/r6b")'"
ok "listen --type dgram < /dev/null"

# seqpacket: boundaries kept both ways (udsock <-> udsock and socat); the
# pauses in the input pipes cut it into separate chunks (one message each):
# part of what is tested, not a wait for a server
P="$T/p.sock"
bg timeout 10 bash -c "(sleep 0.3; printf msg-a; sleep 0.3; printf msg-b) | $U listen --type seqpacket $P > $T/r7"
spid=$LAST
wait_listen "$P" "$spid"
r=$( (printf first; sleep 0.3; printf second) | timeout 10 "$U" connect --type seqpacket "$P") || fail "seqpacket connect"
wait "$spid" || fail "seqpacket listen status"
[ "$r" = msg-amsg-b ] && [ "$(cat "$T/r7")" = firstsecond ] || fail "seqpacket: '$r' / '$(cat "$T/r7")'"
rm -f "$P"
bg timeout 10 socat UNIX-LISTEN:"$P",socktype=5 SYSTEM:"cat > $T/r8; echo seq-reply"
wait_listen "$P" "$LAST"
r=$(printf seq-data | timeout 10 "$U" connect --type seqpacket "$P") || fail "seqpacket vs socat"
[ "$r" = seq-reply ] && [ "$(cat "$T/r8")" = seq-data ] || fail "seqpacket vs socat: '$r'"
ok "seqpacket listen/connect both ways, and connect vs socat socktype=5"
# message boundaries: each chunk of connect's stdin is one message (checked by
# a Python peer that records the size of every message it receives); the
# next chunk is written only once the peer has the previous one (its count
# file says so), so a loaded machine cannot merge two chunks in the pipe
if command -v python3 > /dev/null; then
    rm -f "$P"
    bg timeout 10 python3 -c '
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
s.bind(sys.argv[1]); s.listen(1)
c, _ = s.accept()
sizes = []
while True:
    m = c.recv(1 << 20)
    if not m: break
    sizes.append(str(len(m)))
    with open(sys.argv[3], "w") as f: f.write("%d\n" % len(sizes))
for m in (b"a", b"bb", b"ccc"): c.send(m)
open(sys.argv[2], "w").write(" ".join(sizes))
' "$P" "$T/sizes" "$T/nseen"
    spid=$LAST
    wait_listen "$P" "$spid"
    seen() { [ "$(cat "$T/nseen" 2>/dev/null)" = "$1" ]; }
    r=$( (printf 12345; poll_until seen 1; printf 1234567; poll_until seen 2; printf 123) |
        timeout 20 "$U" connect --type seqpacket "$P") ||
        fail "seqpacket vs python: status $?"
    wait "$spid"
    [ "$(cat "$T/sizes")" = "5 7 3" ] && [ "$r" = abbccc ] || fail "seqpacket boundaries: sizes '$(cat "$T/sizes")', got '$r'"
    ok "seqpacket: one message per stdin chunk (sizes 5 7 3 seen by the peer)"
fi
err=$(timeout 5 "$U" connect "$P.none" --type seqpacket 2>&1 < /dev/null); [ $? = 1 ] || fail "seqpacket missing"
echo "all passed"
