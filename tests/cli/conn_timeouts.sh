#!/bin/bash
# cli.conn_timeouts — issue 10 defect 2 and its options: connect to a full
# backlog ends after --connect-timeout; -i (idle, either way) and -q SEC
# (after EOF on stdin) end a connect to a mute server; -i is reset by data;
# listen -i ends a one-client listen. Peers: tests/cli/conn_peer.py
# (python's socket module). Timeouts are the property here: a 1 s bound
# must end after >= 0.9 s and well before 8 s (load margin).
. "$(dirname "$0")/io_common.bash"
PEER="$(dirname "$0")/conn_peer.py"
now_ms() { date +%s%3N; }
# peer MODE NAME ARGS...: starts conn_peer.py, waits for its READY line
peer() {
    local mode=$1 name=$2; shift 2
    bg python3 "$PEER" "$mode" "$T/$name.sock" "$@" > "$T/$name.ready"
    wait_grep "$T/$name.ready" READY
}
# in_window MS LOW HIGH: LOW <= MS <= HIGH
in_window() { [ "$1" -ge "$2" ] && [ "$1" -le "$3" ]; }

# 1. a full backlog: the connect gives up after --connect-timeout
peer full full
t0=$(now_ms)
timeout 20 "$U" connect --connect-timeout 1 "$T/full.sock" < /dev/null > /dev/null 2> "$T/1.err"; rc=$?
el=$(( $(now_ms) - t0 ))
[ $rc = 1 ] || fail "full backlog: status $rc after $el ms (want 1): $(cat "$T/1.err")"
in_window $el 900 8000 || fail "full backlog: ended after $el ms (want about 1000)"
grep -q "timed out (gave up after 1 s; see --connect-timeout)" "$T/1.err" || fail "full backlog: message: $(cat "$T/1.err")"
ok "connect --connect-timeout 1 to a full backlog: status 1 after $el ms, says so"

# 1b. TCP: a host that does not answer (SYNs dropped: the accept queue of
# a listener that never accepts is full) is given up after the timeout
peer tcpfull tcpfull
read -r _ TPORT <"$T/tcpfull.ready"
t0=$(now_ms)
timeout 20 "$U" connect --connect-timeout 1 "tcp:127.0.0.1:$TPORT" < /dev/null > /dev/null 2> "$T/1b.err"; rc=$?
el=$(( $(now_ms) - t0 ))
[ $rc = 1 ] || fail "tcp, SYN dropped: status $rc after $el ms (want 1): $(cat "$T/1b.err")"
in_window $el 900 8000 || fail "tcp, SYN dropped: ended after $el ms (want about 1000)"
grep -q "timed out (gave up after 1 s; see --connect-timeout)" "$T/1b.err" || fail "tcp, SYN dropped: message: $(cat "$T/1b.err")"
ok "connect --connect-timeout 1 to a TCP port whose SYNs are dropped: status 1 after $el ms, says so"

# 2. a mute server, stdin held open: -i 1 ends it (status 0, -v says why)
peer mute mute
mkfifo "$T/in"; exec {F}<>"$T/in"
t0=$(now_ms)
timeout 20 "$U" connect -v -i 1 "$T/mute.sock" < "$T/in" {F}>&- > "$T/2.out" 2> "$T/2.err"; rc=$?
el=$(( $(now_ms) - t0 ))
[ $rc = 0 ] || fail "-i 1, mute server: status $rc after $el ms: $(cat "$T/2.err")"
in_window $el 900 8000 || fail "-i 1: ended after $el ms"
grep -q "idle timeout (-i): no data either way" "$T/2.err" || fail "-i 1 -v: no reason: $(cat "$T/2.err")"
ok "connect -i 1, mute server, stdin open: status 0 after $el ms"

# 3. -q 1: quits 1 s after EOF on stdin although the server never closes
t0=$(now_ms)
timeout 20 "$U" connect -q 1 "$T/mute.sock" < /dev/null > /dev/null 2> "$T/3.err"; rc=$?
el=$(( $(now_ms) - t0 ))
[ $rc = 0 ] && in_window $el 900 8000 || fail "-q 1: status $rc after $el ms: $(cat "$T/3.err")"
ok "connect -q 1 </dev/null, mute server: status 0 after $el ms"
t0=$(now_ms)
timeout 20 "$U" connect -q 0 "$T/mute.sock" < /dev/null > /dev/null 2> "$T/3b.err"; rc=$?
el=$(( $(now_ms) - t0 ))
[ $rc = 0 ] && [ $el -lt 8000 ] || fail "-q 0: status $rc after $el ms: $(cat "$T/3b.err")"
ok "connect -q 0: quits at EOF on stdin (status 0, $el ms)"
# without -q or -i a mute server is waited for (the default, like nc):
# proven by state, the client still connected after -q 1 would have ended
bg "$U" connect "$T/mute.sock" < /dev/null > /dev/null 2>&1
W=$LAST
poll_until is_connected $W || fail "default: client did not connect"
t0=$(now_ms); while [ $(( $(now_ms) - t0 )) -lt 1500 ]; do sleep 0.1; done
kill -0 $W 2>/dev/null && is_connected $W || fail "default: the client gave up on a mute server"
kill $W
ok "default: a mute server after EOF on stdin is waited for (still connected after 1.5 s)"

# 4. -i is about silence: data every 0.5 s for 4 s keeps a -i 2 session up
peer tick tick 8 0.5
t0=$(now_ms)
timeout 30 "$U" connect -i 2 "$T/tick.sock" < "$T/in" {F}>&- > "$T/4.out" 2> "$T/4.err"; rc=$?
el=$(( $(now_ms) - t0 ))
n=$(grep -c '^tick$' "$T/4.out")
[ $rc = 0 ] && [ "$n" = 8 ] || fail "-i 2 with data every 0.5 s: status $rc, $n of 8 ticks after $el ms: $(cat "$T/4.err")"
ok "connect -i 2: data every 0.5 s keeps it open (8 of 8 ticks), then idle ends it ($el ms)"

# 5. listen -i 1 (one client): a client that stays silent is closed
L="$T/l.sock"
bg "$U" listen -v -i 1 "$L" < "$T/in" {F}>&- > /dev/null 2> "$T/5.err"
LP=$LAST
wait_listen "$L" $LP
bg socat -u "OPEN:$T/in" "UNIX-CONNECT:$L"
SC=$LAST
wait_grep "$T/5.err" "client connected"
t0=$(now_ms)
for ((i = 0; i < 400; i++)); do kill -0 $LP 2>/dev/null || break; sleep 0.025; done
wait $LP; rc=$?
el=$(( $(now_ms) - t0 ))
[ $rc = 0 ] || fail "listen -i 1: status $rc: $(cat "$T/5.err")"
in_window $el 500 8000 || fail "listen -i 1: ended $el ms after the client came"
grep -q "idle timeout" "$T/5.err" || fail "listen -i 1 -v: no reason: $(cat "$T/5.err")"
kill $SC 2>/dev/null
ok "listen -i 1: a silent client is closed after $el ms, status 0"

# 5b. listen -q 1 (one client, nc -q): stdin is at EOF at once, the client
# keeps its connection open (its stdin is the FIFO we hold): listen quits
# about 1 s after the client came, status 0
L="$T/lq.sock"
bg "$U" listen -v -q 1 "$L" < /dev/null > /dev/null 2> "$T/5b.err"
LP=$LAST
wait_listen "$L" $LP
bg socat -u "OPEN:$T/in" "UNIX-CONNECT:$L"
SC=$LAST
wait_grep "$T/5b.err" "client connected"
t0=$(now_ms)
for ((i = 0; i < 400; i++)); do kill -0 $LP 2>/dev/null || break; sleep 0.025; done
wait $LP; rc=$?
el=$(( $(now_ms) - t0 ))
[ $rc = 0 ] && in_window $el 500 8000 || fail "listen -q 1: status $rc after $el ms: $(cat "$T/5b.err")"
kill -0 $SC 2>/dev/null || fail "listen -q 1: the client ended first (the test proves nothing)"
kill $SC 2>/dev/null
ok "listen -q 1 </dev/null, client still connected: status 0 after $el ms"
for bad in "-q 1 -k" "-q 1 --type dgram" "-q x"; do
    timeout 5 "$U" listen $bad "$T/never.sock" < /dev/null > /dev/null 2>&1; rc=$?
    [ $rc = 2 ] || fail "listen $bad: status $rc (want 2)"
done
[ ! -e "$T/never.sock" ] || fail "a listen usage error made a socket file"
h=$("$U" listen --help)
for want in "-q SEC" "--no-progress"; do
    grep -qF -- "$want" <<< "$h" || fail "listen --help lacks '$want'"
done

# 6. usage
for bad in "-i 0" "-i x" "-q -1" "--connect-timeout x"; do
    timeout 5 "$U" connect $bad "$T/mute.sock" < /dev/null > /dev/null 2>&1; rc=$?
    [ $rc = 2 ] || fail "connect $bad: status $rc (want 2)"
done
h=$("$U" connect --help)
for want in "--connect-timeout SEC" "(default 30" "--idle-timeout SEC" "-q SEC" "--no-progress" "-z, --probe"; do
    grep -qF -- "$want" <<< "$h" || fail "connect --help lacks '$want'"
done
ok "usage errors exit 2; --help names the options"
exec {F}>&-
