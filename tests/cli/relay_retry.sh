#!/bin/bash
# relay --retry N / --retry-delay SEC and --keepalive (issue 10): while the
# target is down, a client waits and the connect is tried again; once the
# target appears the client's data goes through; after N retries the
# client is closed and the log says so; a client that leaves during the
# wait frees its slot; without --retry the client is closed at once (as
# before). --keepalive puts SO_KEEPALIVE on both TCP ends (ss shows the
# keepalive timer); TCP_NODELAY is set on both TCP ends (strace shows it).
# Usage errors exit 2.
# uds-test-timeout: 60
set -u
. "$(dirname "$0")/io_common.bash"
need socat
need python3
fail=0
bad() { echo "FAIL: $*"; fail=1; }
E="$T/echo.sock"

# 1. the target appears after the client came: it is served
"$U" relay -v --retry 50 --retry-delay 0.1 "$T/r1.sock" "$E" 2>"$T/r1.log" &
R1=$!
PIDS+=($R1)
wait_listen "$T/r1.sock" "$R1"
mkfifo "$T/c1.in"
exec {C1}<>"$T/c1.in"
socat - UNIX-CONNECT:"$T/r1.sock" <"$T/c1.in" {C1}>&- >"$T/c1.out" 2>/dev/null &
CP=$!
PIDS+=($CP)
echo waited-for-target >&$C1
wait_grep "$T/r1.log" "retry 1 of 50"
socat UNIX-LISTEN:"$E",fork EXEC:cat {C1}>&- 2>/dev/null &
PIDS+=($!)
wait_listen "$E" "$!"
wait_grep "$T/c1.out" waited-for-target
exec {C1}>&-
wait "$CP"
grep -q "#1 connected to $E" "$T/r1.log" || bad "no 'connected' after the retries: $(cat "$T/r1.log")"
n=$(grep -c "retry [0-9]* of 50" "$T/r1.log")
echo "ok: the client waited through $n retries until the target came, then its data went through"

# 2. the target stays down: closed after N retries, said
"$U" relay --retry 3 --retry-delay 0.1 "$T/r2.sock" "$T/never.sock" 2>"$T/r2.log" &
R2=$!
PIDS+=($R2)
wait_listen "$T/r2.sock" "$R2"
out=$(echo x | timeout 10 socat -t 5 - UNIX-CONNECT:"$T/r2.sock" 2>/dev/null); rc=$?
[ $rc = 0 ] && [ -z "$out" ] || bad "target down: socat status $rc, got '$out'"
grep -q "No such file or directory.* after 3 retries; closing the client" "$T/r2.log" ||
    bad "no 'after 3 retries' line: $(cat "$T/r2.log")"
# a client that leaves during the wait frees its slot (-c 1: the next one is taken)
kill "$R2"; wait "$R2" 2>/dev/null
"$U" relay -v -c 1 --retry 1000 --retry-delay 0.2 "$T/r3.sock" "$T/never.sock" 2>"$T/r3.log" &
R3=$!
PIDS+=($R3)
wait_listen "$T/r3.sock" "$R3"
python3 -c '
import socket, sys
s = socket.socket(socket.AF_UNIX); s.connect(sys.argv[1])' "$T/r3.sock"
wait_grep "$T/r3.log" "the client left before"
python3 -c '
import socket, sys
s = socket.socket(socket.AF_UNIX); s.connect(sys.argv[1])' "$T/r3.sock"
wait_grep "$T/r3.log" "#2 open"
! grep -q "refused connection #2" "$T/r3.log" || bad "the slot of a client that left during the retries was kept: $(cat "$T/r3.log")"
echo "ok: target down: closed after 3 retries (said); a client that leaves during the wait frees its slot"

# 3. without --retry: closed at once, as before
"$U" relay "$T/r4.sock" "$T/never.sock" 2>"$T/r4.log" &
R4=$!
PIDS+=($R4)
wait_listen "$T/r4.sock" "$R4"
out=$(echo x | timeout 10 socat -t 5 - UNIX-CONNECT:"$T/r4.sock" 2>/dev/null)
[ -z "$out" ] && ! grep -q retry "$T/r4.log" && grep -q "closing the client" "$T/r4.log" ||
    bad "without --retry: '$out'; $(cat "$T/r4.log")"

# 4. --keepalive on both TCP ends (ss -o shows timer:(keepalive,...))
socat TCP-LISTEN:0,bind=127.0.0.1,fork EXEC:cat 2>/dev/null &
TS=$!
PIDS+=($TS)
tport=""
for _ in $(seq 250); do
    tport=$(ss -ltnpH 2>/dev/null | awk -v p="pid=$TS," 'index($0, p) { n = split($4, a, ":"); print a[n]; exit }')
    [ -n "$tport" ] && break
    sleep 0.02
done
[ -n "$tport" ] || fail "socat TCP echo did not listen"
"$U" relay --keepalive tcp:127.0.0.1:0 "tcp:127.0.0.1:$tport" 2>"$T/r5.log" &
R5=$!
PIDS+=($R5)
poll_until grep -q "listening on tcp:127.0.0.1:" "$T/r5.log" || fail "relay tcp:0: no port said: $(cat "$T/r5.log")"
rport=$(sed -n 's/.*listening on tcp:127\.0\.0\.1:\([0-9]*\).*/\1/p' "$T/r5.log" | head -1)
mkfifo "$T/c5.in"
exec {C5}<>"$T/c5.in"
socat - TCP:127.0.0.1:"$rport" <"$T/c5.in" {C5}>&- >"$T/c5.out" 2>/dev/null &
CP=$!
PIDS+=($CP)
echo over-tcp >&$C5
wait_grep "$T/c5.out" over-tcp
# the relay's two sockets: the accepted one (local port rport) and the one
# to the target (remote port tport), each with the keepalive timer
ka=$(ss -tnoH state established 2>/dev/null | awk -v a=":$rport" -v b=":$tport" '
    ($3 ~ a "$" || $4 ~ b "$") && /timer:\(keepalive/ { n++ } END { print n + 0 }')
[ "$ka" -ge 2 ] || bad "--keepalive: $ka of the relay's TCP sockets have a keepalive timer: $(ss -tnoH state established)"
exec {C5}>&-
wait "$CP"
"$U" relay tcp:127.0.0.1:0 "tcp:127.0.0.1:$tport" 2>"$T/r6.log" &
R6=$!
PIDS+=($R6)
poll_until grep -q "listening on tcp:127.0.0.1:" "$T/r6.log" || fail "relay tcp:0 (no keepalive): $(cat "$T/r6.log")"
r6port=$(sed -n 's/.*listening on tcp:127\.0\.0\.1:\([0-9]*\).*/\1/p' "$T/r6.log" | head -1)
mkfifo "$T/c6.in"
exec {C6}<>"$T/c6.in"
socat - TCP:127.0.0.1:"$r6port" <"$T/c6.in" {C6}>&- >"$T/c6.out" 2>/dev/null &
CP=$!
PIDS+=($CP)
echo plain >&$C6
wait_grep "$T/c6.out" plain
ka=$(ss -tnoH state established 2>/dev/null | awk -v a=":$r6port" '$3 ~ a "$" && /timer:\(keepalive/ { n++ } END { print n + 0 }')
[ "$ka" = 0 ] || bad "without --keepalive a keepalive timer is on"
exec {C6}>&-
wait "$CP"
[ $fail = 0 ] && echo "ok: --keepalive: SO_KEEPALIVE on the accepted TCP socket and the one to the target (none without it)"

# 4b. TCP_NODELAY on both TCP ends (Nagle off: a relay must not add
# 40 ms to each small request); ss does not show it, strace does: the
# relay's setsockopt calls on the accepted socket and on the one to the
# target
need strace
strace -f -qq -e trace=setsockopt -o "$T/st.log" "$U" relay tcp:127.0.0.1:0 "tcp:127.0.0.1:$tport" 2>"$T/r7.log" &
R7=$!
PIDS+=($R7)
poll_until grep -q "listening on tcp:127.0.0.1:" "$T/r7.log" || fail "relay under strace: $(cat "$T/r7.log")"
r7port=$(sed -n 's/.*listening on tcp:127\.0\.0\.1:\([0-9]*\).*/\1/p' "$T/r7.log" | head -1)
got=$(echo nagle | timeout 10 socat -t 2 - TCP:127.0.0.1:"$r7port" 2>&1)
[ "$got" = nagle ] || bad "relay under strace: the echo said '$got'"
nd=$(grep -cE '(SOL_TCP|IPPROTO_TCP), TCP_NODELAY, \[1\]' "$T/st.log")
[ "$nd" -ge 2 ] || bad "TCP_NODELAY set on $nd of the relay's 2 TCP sockets: $(grep -c setsockopt "$T/st.log") setsockopt calls"
# stop the relay itself (strace, killed, would detach and leave it running)
rp=$(pgrep -P "$R7" | head -1)
[ -n "$rp" ] && kill "$rp"
wait "$R7" 2>/dev/null
[ $fail = 0 ] && echo "ok: TCP_NODELAY on the accepted TCP socket and on the one to the target ($nd setsockopt TCP_NODELAY calls)"

# 5. usage
for args in "--retry 0" "--retry x" "--retry-delay 0" "--retry 2 --type dgram"; do
    # shellcheck disable=SC2086
    err=$(timeout 5 "$U" relay $args "$T/x.sock" "$T/y.sock" 2>&1); rc=$?
    [ $rc = 2 ] || bad "relay $args: status $rc (want 2): $err"
done
exit $fail
