#!/bin/bash
# uds-test-timeout: 90
# The readiness helpers themselves (scripts/wait-listen.sh through
# io_common.bash): a socket that is bound but not yet listening is NOT
# ready (its file exists already: the race [ -S ] lost), and is ready right
# after listen(); for a path, an abstract name, tcp:127.0.0.1 and tcp:[::1].
# A datagram socket is ready once bound (wait_bound), a stream one is not
# "bound" in that sense. A stale socket file, a listener whose file was
# removed, a server that exits, a bad ADDR: not ready, with a message naming
# ADDR. No probe connect: a one-shot server still gets its real client.
. "$(dirname "$0")/io_common.bash"
need python3
export UDS_WAIT_SECS=1 # the negative cases wait this long

# The peer: makes a socket (kind: stream, dgram, tcp, tcp6, udp), binds it,
# prints "bound PORT", then waits for a line on stdin before listen() (for
# stream kinds), prints "listening", and waits for stdin to end.
cat > "$T/peer.py" << 'EOF'
import socket, sys
kind, addr = sys.argv[1], sys.argv[2]
if kind in ("stream", "dgram"):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM if kind == "stream" else socket.SOCK_DGRAM)
    s.bind("\0" + addr[1:] if addr.startswith("@") else addr)
    port = 0
else:
    fam = socket.AF_INET6 if kind == "tcp6" else socket.AF_INET
    s = socket.socket(fam, socket.SOCK_DGRAM if kind == "udp" else socket.SOCK_STREAM)
    s.bind((addr, 0))
    port = s.getsockname()[1]
print("bound", port, flush=True)
sys.stdin.readline()
if kind in ("stream", "tcp", "tcp6"):
    s.listen(8)
print("listening", flush=True)
sys.stdin.read()
EOF

# peer KIND ADDR: starts the peer (coprocess P), PORT from its first line
peer() {
    coproc P { exec python3 "$T/peer.py" "$1" "$2"; }
    PEER=$P_PID
    PIDS+=($PEER)
    local w
    read -r -t 10 -u "${P[0]}" w PORT || fail "peer $1 $2 did not start"
    [ "$w" = bound ] || fail "peer $1 $2: '$w'"
}
# peer_listen: lets the peer go on to listen(), returns once it did
peer_listen() {
    local w
    echo go >&"${P[1]}"
    read -r -t 10 -u "${P[0]}" w || fail "peer did not say it listens"
    [ "$w" = listening ] || fail "peer: '$w'"
}
peer_end() {
    local pid=$PEER
    eval "exec ${P[1]}>&-"
    wait "$pid" 2> /dev/null
}
# not_ready_yet ADDR: the state check says no, and so does the bounded wait
# (with a message that names ADDR)
not_ready_yet() {
    local err rc
    uds_is_listening "$1" && fail "$1: reported listening before listen()"
    err=$(uds_wait_listen "$1" 2>&1) && fail "$1: wait_listen returned ready before listen()"
    [[ $err == *"$1"* ]] || fail "$1: the timeout message does not name it: '$err'"
}
ready_now() {
    uds_is_listening "$1" || fail "$1: not reported listening right after listen()"
    uds_wait_listen "$1" || fail "$1: wait_listen failed after listen()"
}

# ---- 1. a path: bound, file there, not listening -> not ready; then ready ----
S="$T/s.sock"
peer stream "$S"
[ -S "$S" ] || fail "the peer's socket file should exist once bound"
not_ready_yet "$S"
not_ready_yet "unix:$S"
uds_is_bound "$S" && fail "a stream socket counted as a bound datagram socket"
peer_listen
ready_now "$S"
ready_now "unix:$S"
ok "path: bound (file exists) is not ready; ready right after listen()"
# a socket file without a socket: the file was kept, its listener is gone
peer_end
[ -S "$S" ] || fail "the stale socket file should be left behind"
err=$(uds_wait_listen "$S" 2>&1) && fail "stale socket file reported ready"
[[ $err == *"exists but no listening socket"* ]] || fail "stale file message: $err"
ok "stale socket file is not ready: $err"
rm -f "$S"

# a listener whose file was removed does not count (the name is still in
# /proc/net/unix, the file is gone)
peer stream "$S"
peer_listen
rm -f "$S"
uds_is_listening "$S" && fail "listener without its file reported ready"
peer_end
ok "listener whose file was removed is not ready"

# ---- 2. abstract ----
A="@udsock-readiness-$$-$RANDOM"
peer stream "$A"
not_ready_yet "$A"
peer_listen
ready_now "$A"
ready_now "abstract:${A#@}"
uds_is_listening "${A}x" && fail "another abstract name reported listening"
peer_end
uds_is_listening "$A" && fail "abstract name still listening after its server ended"
ok "abstract: bound is not ready; ready right after listen()"

# ---- 3. TCP, IPv4 and IPv6 loopback ----
peer tcp 127.0.0.1
not_ready_yet "tcp:127.0.0.1:$PORT"
peer_listen
ready_now "tcp:127.0.0.1:$PORT"
ready_now "tcp:localhost:$PORT"
uds_is_listening "tcp:[::1]:$PORT" && fail "IPv4 listener reported on [::1]"
peer_end
ok "tcp:127.0.0.1: bound is not ready; ready right after listen()"
if python3 -c 'import socket; socket.socket(socket.AF_INET6).bind(("::1", 0))' 2> /dev/null; then
    peer tcp6 ::1
    not_ready_yet "tcp:[::1]:$PORT"
    peer_listen
    ready_now "tcp:[::1]:$PORT"
    uds_is_listening "tcp:127.0.0.1:$PORT" && fail "[::1] listener reported on 127.0.0.1"
    peer_end
    ok "tcp:[::1]: bound is not ready; ready right after listen()"
else
    echo "no IPv6 on loopback here: tcp:[::1] not checked"
fi

# ---- 4. datagrams: bound = ready ----
D="$T/d.sock"
peer dgram "$D"
uds_is_bound "$D" || fail "bound datagram socket not reported bound"
wait_bound "$D"
uds_is_listening "$D" && fail "a datagram socket reported listening"
peer_listen # (no listen() for datagrams: it just goes on)
peer_end
peer dgram "@udsock-readiness-dg-$$"
wait_bound "@udsock-readiness-dg-$$"
peer_end
peer udp 127.0.0.1
wait_bound "udp:127.0.0.1:$PORT"
uds_is_bound "udp:127.0.0.1:$((PORT == 65535 ? 1 : PORT + 1))" && fail "udp: another port reported bound"
peer_listen
peer_end
ok "wait_bound: unix path, abstract, udp"

# ---- 5. a server that exits: the wait stops at once, status 3 ----
t0=${EPOCHREALTIME/./}
(exit 0) &
gone=$!
err=$(UDS_WAIT_SECS=10 uds_wait_listen "$T/never.sock" "$gone" 2>&1)
rc=$?
el=$(((${EPOCHREALTIME/./} - t0) / 1000))
[ $rc = 3 ] && [[ $err == *"exited before $T/never.sock"* ]] || fail "exited server: rc $rc, '$err'"
[ $el -lt 5000 ] || fail "exited server: wait_listen took $el ms"
ok "a server that exits ends the wait at once (${el} ms): $err"

# ---- 5b. with PID, only that process's socket counts ----
# A port a test picked (or an abstract name) may be taken by another
# program at the same moment: a wait that counted the stranger's listener
# sent the test's client to it (cli.relay once got an empty reply so).
peer tcp 127.0.0.1
peer_listen # the stranger listens on tcp:127.0.0.1:$PORT
SPORT=$PORT
bg sleep 30 # alive, holds no socket
err=$(uds_wait_listen "tcp:127.0.0.1:$SPORT" "$LAST" 2>&1); rc=$?
[ $rc = 1 ] && [[ $err == *"process $LAST does not hold it"* ]] ||
    fail "stranger's port counted for process $LAST: rc $rc, '$err'"
uds_wait_listen "tcp:127.0.0.1:$SPORT" "$PEER" || fail "the holder itself not ready"
# a server that fails on the taken port and exits: status 3, not ready
err=$(python3 -c 'import socket, sys, time
s = socket.socket(); time.sleep(0.2)
try: s.bind(("127.0.0.1", int(sys.argv[1])))
except OSError: sys.exit(1)' "$SPORT" & UDS_WAIT_SECS=10 uds_wait_listen "tcp:127.0.0.1:$SPORT" "$!" 2>&1); rc=$?
[ $rc = 3 ] && [[ $err == *"does not hold it"* ]] || fail "failed bind on a taken port: rc $rc, '$err'"
peer_end
# the same for an abstract name
A2="@udsock-readiness-taken-$$-$RANDOM"
peer stream "$A2"
peer_listen
err=$(uds_wait_listen "$A2" "$LAST" 2>&1); rc=$?
[ $rc = 1 ] || fail "stranger's abstract name counted for process $LAST: rc $rc, '$err'"
peer_end
# a wrapper's child holds it: counts for the wrapper (timeout, setpriv, ...)
bg bash -c 'python3 -c "import socket, sys, time
s = socket.socket(); s.bind((\"127.0.0.1\", 0)); s.listen(1)
print(s.getsockname()[1], flush=True); time.sleep(30)" > "$1"; true' wrap "$T/wrap.port"
poll_until test -s "$T/wrap.port" || fail "wrapped listener did not start"
wait_listen "tcp:127.0.0.1:$(cat "$T/wrap.port")" "$LAST"
pkill -P "$LAST" python3 # the child first: killing the wrapper would orphan it
ok "with PID, a listener held by another program does not count; a child's does"

# ---- 6. bad addresses: status 2 at once ----
for bad in "" "tcp:127.0.0.1:0" "tcp:127.0.0.1:x" "tcp:::1:80" "tcp:no.such.host:80" "tcp:1.2.3.256:80"; do
    err=$(uds_wait_listen "$bad" 2>&1); rc=$?
    [ $rc = 2 ] || fail "bad ADDR '$bad': rc $rc ($err)"
done
err=$(uds_wait_bound "tcp:127.0.0.1:80" 2>&1); rc=$?
[ $rc = 2 ] || fail "wait_bound tcp: rc $rc"
ok "bad ADDR: status 2 at once"

# ---- 7. no probe connect: a one-shot server still gets its one client ----
O="$T/oneshot.sock"
bg timeout 10 bash -c "$U listen $O < /dev/null > $T/oneshot.out"
wait_listen "$O" "$LAST"
wait_listen "$O" "$LAST" # twice: still nobody connected
echo the-real-client | timeout 5 "$U" connect "$O" || fail "one-shot: the real client could not connect"
wait "$LAST" || fail "one-shot listen: status $?"
[ "$(cat "$T/oneshot.out")" = the-real-client ] || fail "one-shot listen got '$(cat "$T/oneshot.out")'"
ok "wait_listen does not connect: one-shot udsock listen served the real client"

# ---- 8. the FIFO ready fd of io_common: line read, EOF-free, server death seen ----
ready_open rd
bash -c 'printf "\n" >&7; exec 7>&-; exec sleep 5' 7> "$T/rd.ready" {RFD}<&- &
rp=$!
PIDS+=($rp)
wait_ready "$rp" "fake server"
[ -z "$READY_LINE" ] && [ "$READY_EXTRA" = 0 ] || fail "ready line '$READY_LINE' extra $READY_EXTRA"
ready_open rd2
(exit 1) 7> "$T/rd2.ready" {RFD}<&- &
rp=$!
out=$( (wait_ready "$rp" "dying server") 2>&1) && fail "wait_ready succeeded for a server that died"
[[ $out == *"dying server exited"* ]] || fail "wait_ready message: $out"
exec {RFD}<&-
ok "ready_open/wait_ready: readiness line read; a server that exits first is reported"

# ---- 9. the race that broke calc.sh, made certain: systemd-socket-activate
# with its listen() held back 2 s by strace. The file is there at once, a
# client connecting then is refused; wait_listen waits for the LISTEN state
# and the activated server then answers. ----
need strace; need socat
if ! command -v systemd-socket-activate > /dev/null; then
    fail "systemd-socket-activate missing (scripts/deps.sh installs systemd)"
fi
if ! strace -f --seccomp-bpf -qq -o /dev/null -e trace=listen -e inject=listen:delay_enter=1 true 2> /dev/null; then
    echo "strace cannot trace here (ptrace not allowed?): section 9 not run"
    echo "all passed"
    exit 0
fi
AS="$T/act.sock"
strace -f --seccomp-bpf -qq -o /dev/null -e trace=listen -e inject=listen:delay_enter=2000000 \
    systemd-socket-activate -l "$AS" "$UDS_BUILD_DIR/examples/activated_echo" 2> "$T/act.err" &
sp=$!
PIDS+=($sp)
# (the server runs as strace's grandchild: stop it first, then strace ends)
stop_activated() {
    local c
    for c in $(cat /proc/"$sp"/task/"$sp"/children 2> /dev/null); do kill "$c" 2> /dev/null; done
    kill "$sp" 2> /dev/null
    wait "$sp" 2> /dev/null
}
poll_until test -S "$AS" || fail "systemd-socket-activate did not bind $AS"
uds_is_listening "$AS" && fail "listening already although listen() is held back 2 s"
err=$(socat -u /dev/null UNIX-CONNECT:"$AS" 2>&1) && fail "a client connected before listen()"
[[ $err == *"Connection refused"* ]] || fail "early client: '$err'"
t0=${EPOCHREALTIME/./}
UDS_WAIT_SECS=15 wait_listen "$AS" "$sp"
el=$(((${EPOCHREALTIME/./} - t0) / 1000))
r=$(echo activated | timeout 10 socat -t 5 - UNIX-CONNECT:"$AS")
[ "$r" = activated ] || fail "activated server after wait_listen: '$r' ($(cat "$T/act.err"))"
stop_activated
ok "socket file before listen(): a client is refused; wait_listen waited ${el} ms, then served"
echo "all passed"
