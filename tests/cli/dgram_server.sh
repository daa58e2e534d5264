#!/bin/bash
# uds-test-timeout: 120
# Issue 14 item 4: the library's datagram server limits requests in
# flight (max_dgram_inflight 4096, max_dgram_per_peer 32). A hostile peer
# (dgram_peer.py udpflood, uid 65534 when we are root) sends "sleep 10000"
# (answered only in 10 s) to examples/calc_server udp:... from 64 sockets
# for 6 s: calc_server's VmRSS must grow by less than 16 MiB (ASan: 64;
# without the limits it grew by ~150 MiB in 8 s here, the issue saw
# 1.6 -> 369 MB), the drops are logged at most once a second (+ summary),
# and an innocent `udsock send -r -T 2 ... "sum 1 2"` is answered meanwhile
# (asking again, as UDP clients do, when the kernel dropped its request).
set -u
. "$(dirname "$0")/io_common.bash"
CALC=$UDS_BUILD_DIR/examples/calc_server
[ -x "$CALC" ] || fail "calc_server not built"
PEER=$(dirname "$0")/dgram_peer.py
PY=/usr/bin/python3
[ -x "$PY" ] || PY=$(command -v python3)
AS=() WHO=$(id -u)
[ "$WHO" = 0 ] && AS=(setpriv --reuid=65534 --regid=65534 --clear-groups) WHO=65534
MARGIN=16384 # KiB
is_asan && MARGIN=65536
ms() { echo $(($(date +%s%N) / 1000000)); }
rss_kb() { awk '/^VmRSS:/ { print $2 }' "/proc/$1/status"; }

bg "$CALC" udp:127.0.0.1:0 2>"$T/calc.err"
CP=$LAST
wait_grep "$T/calc.err" "serving on udp:"
PORT=$(sed -n 's/.*serving on udp:127\.0\.0\.1:\([0-9]*\).*/\1/p' "$T/calc.err")
[ -n "$PORT" ] || fail "no port in: $(cat "$T/calc.err")"
A=udp:127.0.0.1:$PORT
r=$(timeout 5 "$U" send -r -T 3 "$A" "sum 1 2") && [ "$r" = 3 ] || fail "calc over udp before the attack: '$r'"
R0=$(rss_kb "$CP")

t0=$(ms)
bg "${AS[@]}" "$PY" -c "$(cat "$PEER")" udpflood 127.0.0.1 "$PORT" 64 "sleep 10000" >"$T/h.out" 2>&1
HP=$LAST
wait_grep "$T/h.out" ready
worst=0 n=0 lost=0 RMAX=$R0
while [ $(($(ms) - t0)) -lt 6000 ]; do
    # UDP: when the machine is loaded the flood fills calc_server's
    # receive buffer between two of its reads, and the kernel drops what
    # comes then, the innocent request too (seen at load average 6-8: "no
    # reply within 3 s"); no server can prevent that, so the innocent
    # client does what UDP clients do: it asks again (3 tries of 2 s)
    s=$(ms) try=0
    until r=$(timeout 10 "$U" send -r -T 2 "$A" "sum 1 2" 2>&1); do
        try=$((try + 1)) lost=$((lost + 1))
        [ $try -lt 3 ] || fail "innocent client under the flood, 3 tries: $r"
    done
    [ "$r" = 3 ] || fail "innocent client: '$r'"
    el=$(($(ms) - s)) n=$((n + 1))
    [ $el -gt $worst ] && worst=$el
    rs=$(rss_kb "$CP")
    [ "$rs" -gt "$RMAX" ] && RMAX=$rs
    sleep 0.2 # pacing of the probes, not a wait for readiness
done
kill "$HP"
kill -0 "$CP" || fail "calc_server died: $(tail -3 "$T/calc.err")"
[ $worst -lt 6000 ] || fail "innocent client: slowest answer $worst ms"
[ $lost -le $((n / 2)) ] || fail "innocent client: $lost requests lost for $n answered"
[ $((RMAX - R0)) -lt $MARGIN ] || fail "calc_server RSS $R0 -> $RMAX KiB under the flood"
# the log: one line a second at most, plus the summary lines
poll_until grep -q 'more datagram requests dropped over the in-flight limits' "$T/calc.err" ||
    fail "no summary of drops: $(tail -3 "$T/calc.err")"
secs=$((($(ms) - t0 + 999) / 1000))
lines=$(grep -c 'dropped' "$T/calc.err")
[ "$lines" -le $((2 * secs + 2)) ] || fail "$lines drop lines in $secs s"
grep -q 'max_dgram_per_peer' "$T/calc.err" || fail "no per-sender drop said: $(tail -3 "$T/calc.err")"
ok "calc_server udp vs 64 sockets of 'sleep 10000' (uid $WHO): RSS $R0 -> $RMAX KiB (max), $n innocent probes answered ($lost requests lost and asked again), slowest $worst ms; $lines drop lines in $secs s"
echo "all passed"
