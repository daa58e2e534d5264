#!/bin/bash
# udsock relay end to end, against peers we did not write (socat, redis):
# unix->unix, unix->tcp, tcp->unix, abstract, byte-exact both ways (64 MiB
# random through an echo server); redis-cli through a relay; half-close
# passed on; -v direction dump (text and hex); seqpacket boundaries; access
# rules; failed target; socket file removed on SIGTERM.
# uds-test-timeout: 120
set -u
if [ "$(id -u)" != 0 ]; then
    echo "SKIP: needs root (it switches a client to uid 65534 with setpriv)"
    exit 0
fi
UDS_BUILD_DIR=${UDS_BUILD_DIR:-build}
# $U, $T, PIDS and the readiness helpers; cleanup and ok are ours (below)
. "$(dirname "$0")/io_common.bash"
PY=/usr/bin/python3
chmod 755 "$T"
fail=0
cleanup() {
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done
    [ -S "$T/redis.sock" ] && timeout 5 redis-cli -s "$T/redis.sock" shutdown nosave >/dev/null 2>&1
    wait 2>/dev/null
    rm -rf "$T"
}
trap cleanup EXIT
bad() { echo "FAIL: $*"; fail=1; }
ok() { echo "ok: $*"; }
free_port() { $PY -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
relay() { # NAME ARGS...: start a relay, stderr to $T/NAME.log
    local name=$1; shift
    "$U" relay "$@" 2>"$T/$name.log" &
    PIDS+=($!)
    RP=$!
}

head -c 64M /dev/urandom >"$T/data"
want=$(sha256sum <"$T/data" | cut -d' ' -f1)

# echo servers: socat + cat, on a unix path and on TCP
socat UNIX-LISTEN:"$T/echo.sock",fork,backlog=64 EXEC:cat 2>/dev/null & PIDS+=($!)
EP=
for _ in 1 2 3 4 5; do
    EP=$(free_port)
    socat TCP-LISTEN:"$EP",bind=127.0.0.1,reuseaddr,fork EXEC:cat 2>/dev/null & PIDS+=($!)
    uds_wait_listen tcp:127.0.0.1:"$EP" "$!" && break # else the port was taken: another
done
wait_listen "$T/echo.sock"

# sends $T/data through ADDR (socat address) and checks what comes back
roundtrip() { # LABEL SOCAT_ADDR
    local got
    got=$(timeout 60 socat -t 30 - "$2" <"$T/data" | sha256sum | cut -d' ' -f1)
    [ "$got" = "$want" ] && ok "$1: 64 MiB both ways byte-exact" || bad "$1: checksum $got != $want"
}

# ---- 1. unix -> unix ----
relay uu "$T/r-uu.sock" "$T/echo.sock"
UU=$RP
wait_listen "$T/r-uu.sock" "$RP"
roundtrip "unix->unix" UNIX-CONNECT:"$T/r-uu.sock"

# ---- 2. unix -> tcp ----
relay ut "$T/r-ut.sock" tcp:127.0.0.1:"$EP"
wait_listen "$T/r-ut.sock" "$RP"
roundtrip "unix->tcp" UNIX-CONNECT:"$T/r-ut.sock"

# ---- 3. tcp -> unix ----
for _ in 1 2 3 4 5; do
    RPORT=$(free_port)
    relay tu tcp:127.0.0.1:"$RPORT" "$T/echo.sock"
    uds_wait_listen tcp:127.0.0.1:"$RPORT" "$RP" && break # else the port was taken: another
done
roundtrip "tcp->unix" TCP:127.0.0.1:"$RPORT"

# ---- 4. abstract -> unix (small) ----
AB="udsock-test-$$-$RANDOM"
relay ab "@$AB" "$T/echo.sock"
wait_listen "@$AB" "$RP"
r=$(echo abstract-hello | timeout 5 socat -t 3 - ABSTRACT-CONNECT:"$AB")
[ "$r" = abstract-hello ] && ok "abstract->unix" || bad "abstract: '$r'"

# ---- 5. redis-cli through a relay to redis-server --unixsocket ----
redis-server --port 0 --unixsocket "$T/redis.sock" --save '' --appendonly no --dir "$T" \
    --daemonize no >"$T/redis.log" 2>&1 &
REDIS=$!
PIDS+=($REDIS)
wait_listen "$T/redis.sock" "$REDIS"
relay rd "$T/r-redis.sock" "$T/redis.sock"
wait_listen "$T/r-redis.sock" "$RP"
r=$(timeout 5 redis-cli -s "$T/r-redis.sock" ping)
[ "$r" = PONG ] && ok "redis-cli ping through relay" || bad "redis ping: '$r'"
timeout 5 redis-cli -s "$T/r-redis.sock" set relaykey "value-$$" >/dev/null
r=$(timeout 5 redis-cli -s "$T/redis.sock" get relaykey)
[ "$r" = "value-$$" ] && ok "redis set through relay, get direct" || bad "redis get: '$r'"
r=$(timeout 5 redis-cli -s "$T/r-redis.sock" get relaykey)
[ "$r" = "value-$$" ] && ok "redis get through relay" || bad "redis get via relay: '$r'"
timeout 5 redis-cli -s "$T/redis.sock" shutdown nosave >/dev/null 2>&1
wait "$REDIS" 2>/dev/null

# ---- 6. half-close: the server sees EOF, and its reply still arrives ----
socat UNIX-LISTEN:"$T/hc.sock",fork SYSTEM:"cat >$T/hc.got; echo reply-after-eof" 2>/dev/null & PIDS+=($!)
wait_listen "$T/hc.sock" "$!"
relay hc "$T/r-hc.sock" "$T/hc.sock"
wait_listen "$T/r-hc.sock" "$RP"
r=$(printf 'sent-then-eof' | timeout 10 socat -t 5 - UNIX-CONNECT:"$T/r-hc.sock")
[ "$r" = reply-after-eof ] && [ "$(cat "$T/hc.got" 2>/dev/null)" = sent-then-eof ] \
    && ok "half-close passed on, reply after EOF delivered" \
    || bad "half-close: reply '$r', server got '$(cat "$T/hc.got" 2>/dev/null)'"

# ---- 7. -v: directions, text and hex ----
relay v -v "$T/r-v.sock" "$T/echo.sock"
wait_listen "$T/r-v.sock" "$RP"
r=$(printf 'ping-line\n' | timeout 5 socat -t 3 - UNIX-CONNECT:"$T/r-v.sock")
# the dump of the answer is written after it was passed on: wait for it
poll_until grep -q '^#1 < ping-line\\n$' "$T/v.log"
[ "$r" = ping-line ] && grep -q '^#1 > ping-line\\n$' "$T/v.log" && grep -q '^#1 < ping-line\\n$' "$T/v.log" \
    && grep -Eq '[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{6} #1 > 10 bytes' "$T/v.log" \
    && ok "-v shows both directions with timestamps" || bad "-v: '$r'; log: $(cat "$T/v.log")"
# the dump's worst case (every byte a newline) must fit its buffer
r=$(head -c 200000 /dev/zero | tr '\0' '\n' | timeout 10 socat -t 5 - UNIX-CONNECT:"$T/r-v.sock" | wc -c)
[ "$r" = 200000 ] && [ "$(grep -c '^#2 > \\n$' "$T/v.log")" = 200000 ] \
    && ok "-v: 200000 newlines dumped one per line" || bad "-v newlines: $r bytes back, $(grep -c '^#2 > \\n$' "$T/v.log") lines"
relay vx -v --hex "$T/r-vx.sock" "$T/echo.sock"
wait_listen "$T/r-vx.sock" "$RP"
r=$(printf 'AB\001' | timeout 5 socat -t 3 - UNIX-CONNECT:"$T/r-vx.sock" | od -An -tx1 | tr -d ' \n')
poll_until grep -q '^#1 < 000000  41 42 01' "$T/vx.log"
[ "$r" = 414201 ] && grep -q '^#1 > 000000  41 42 01 .*|AB.|' "$T/vx.log" && grep -q '^#1 < 000000  41 42 01' "$T/vx.log" \
    && ok "-v --hex" || bad "--hex: '$r'; log: $(cat "$T/vx.log")"

# ---- 8. seqpacket keeps message boundaries ----
cat >"$T/seq.py" <<'EOF'
import os, socket, sys
mode, path = sys.argv[1], sys.argv[2]
if mode == "server":
    s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    s.bind(path); s.listen(4)
    c, _ = s.accept()
    while True:
        m = c.recv(1 << 20)
        if not m:
            break
        c.send(b"len=%d" % len(m))
else:
    s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    s.settimeout(5); s.connect(path)
    out = []
    for n in (1, 1000, 65000, 3):
        s.send(b"x" * n)
        out.append(s.recv(100).decode())
    print(" ".join(out))
EOF
$PY "$T/seq.py" server "$T/seq.sock" & PIDS+=($!)
wait_listen "$T/seq.sock" "$!"
relay seq -v --type seqpacket "$T/r-seq.sock" "$T/seq.sock"
wait_listen "$T/r-seq.sock" "$RP"
r=$(timeout 10 $PY "$T/seq.py" client "$T/r-seq.sock")
poll_until grep -q '#1 > 65000 bytes' "$T/seq.log"
[ "$r" = "len=1 len=1000 len=65000 len=3" ] && grep -q '#1 > 65000 bytes' "$T/seq.log" \
    && ok "seqpacket boundaries kept (-v shows each message)" || bad "seqpacket: '$r'"

# ---- 9. failed target connect: client closed at once, logged ----
relay nt "$T/r-nt.sock" "$T/nothing-here.sock"
wait_listen "$T/r-nt.sock" "$RP"
r=$(echo x | timeout 5 socat -t 3 - UNIX-CONNECT:"$T/r-nt.sock" 2>/dev/null)
[ -z "$r" ] && grep -q "connect $T/nothing-here.sock: No such file or directory" "$T/nt.log" \
    && ok "failed target: client closed, logged" || bad "failed target: '$r'; $(cat "$T/nt.log")"
kill "$RP"; wait "$RP"; rc=$?
[ $rc = 0 ] && ok "exit 0 on SIGTERM" || bad "relay exited $rc: $(cat "$T/nt.log")"
[ -e "$T/r-nt.sock" ] && bad "relay socket left after SIGTERM" || ok "socket file removed on SIGTERM"

# a TCP target that refuses: the non-blocking connect fails later, same result
NP=$(free_port)
relay nt2 "$T/r-nt2.sock" tcp:127.0.0.1:"$NP"
wait_listen "$T/r-nt2.sock" "$RP"
r=$(echo x | timeout 5 socat -t 3 - UNIX-CONNECT:"$T/r-nt2.sock" 2>/dev/null)
[ -z "$r" ] && grep -q "connect tcp:127.0.0.1:$NP: Connection refused" "$T/nt2.log" \
    && ok "refused TCP target: client closed, logged" || bad "tcp target: '$r'; $(cat "$T/nt2.log")"

# ---- 10. access rules on a unix listener ----
relay acl --mode 0666 --allow-uid root "$T/r-acl.sock" "$T/echo.sock"
wait_listen "$T/r-acl.sock" "$RP"
r=$(echo x | timeout 5 setpriv --reuid=65534 --regid=65534 --clear-groups socat -t 3 - UNIX-CONNECT:"$T/r-acl.sock" 2>/dev/null)
[ -z "$r" ] && grep -q 'udsock: relay: refused connection #1 from pid [0-9]* uid 65534: not allowed by the access rules' "$T/acl.log" \
    && ok "allow-uid: 65534 refused" || bad "acl: '$r'; $(cat "$T/acl.log")"
r=$(echo x | timeout 5 socat -t 3 - UNIX-CONNECT:"$T/r-acl.sock")
[ "$r" = x ] && ok "allow-uid: root relayed" || bad "acl root: '$r'"

# ---- 11. many short connections, nothing left open ----
n=0
for i in $(seq 40); do
    r=$(echo "c$i" | timeout 5 socat -t 3 - UNIX-CONNECT:"$T/r-uu.sock")
    [ "$r" = "c$i" ] && n=$((n + 1))
done
# the relay closes both ends of each connection once they are done: wait for it
# (the allowance counts the relay's own fds: stdio, epoll, eventfd,
# signalfd, the listener and, since the pinned bind, the listener's
# directory fd kept to remove the socket file at exit: one more than before)
fds_back() { [ "$(ls /proc/"$UU"/fd 2>/dev/null | wc -l)" -lt 13 ]; }
poll_until fds_back
nfd=$(ls /proc/"$UU"/fd 2>/dev/null | wc -l)
[ $n = 40 ] && [ "$nfd" -lt 13 ] && ok "40 connections, $nfd fds open afterwards" \
    || bad "short connections: $n/40, $nfd fds"

kill "$UU"; wait "$UU"; rc=$?
[ $rc = 0 ] && ok "busy relay: exit 0 on SIGTERM (no sanitizer report)" || bad "relay uu exited $rc: $(cat "$T/uu.log")"

# ---- 12. target backlog full: the relay retries instead of dropping ----
cat >"$T/slow.py" <<'EOF2'
import socket, sys, time
s = socket.socket(socket.AF_UNIX); s.bind(sys.argv[1]); s.listen(1)
time.sleep(1.0)   # accept nothing for a second: backlog 1 fills up
while True:
    c, _ = s.accept()
    d = b""
    while True:
        b = c.recv(65536)
        if not b:
            break
        d += b
    c.sendall(b"got %d\n" % len(d)); c.close()
EOF2
$PY "$T/slow.py" "$T/slow.sock" & PIDS+=($!)
wait_listen "$T/slow.sock" "$!"
relay bl -v "$T/r-bl.sock" "$T/slow.sock"
wait_listen "$T/r-bl.sock" "$RP"
for i in 1 2 3 4; do
    (echo "client $i" | timeout 10 socat -t 8 - UNIX-CONNECT:"$T/r-bl.sock" >"$T/bl.$i") &
done
wait_n=0
for _ in $(seq 200); do
    wait_n=$(cat "$T"/bl.* 2>/dev/null | grep -c '^got 9$')
    [ "$wait_n" = 4 ] && break
    sleep 0.05
done
[ "$wait_n" = 4 ] \
    && ok "full target backlog: connects retried, 4/4 clients served" \
    || bad "backlog: $wait_n/4 served: $(cat "$T/bl.log")"

# ---- 13. backpressure: a target that never reads does not fill our memory ----
cat >"$T/deaf.py" <<'EOF2'
import socket, sys, time
s = socket.socket(socket.AF_UNIX); s.bind(sys.argv[1]); s.listen(4)
c, _ = s.accept()
time.sleep(30)
EOF2
$PY "$T/deaf.py" "$T/deaf.sock" & DEAF=$!; PIDS+=($DEAF)
wait_listen "$T/deaf.sock" "$DEAF"
relay bp "$T/r-bp.sock" "$T/deaf.sock"
BP=$RP
wait_listen "$T/r-bp.sock" "$BP"
rss0=$(awk '/^VmRSS/ {print $2}' /proc/$BP/status)
head -c 300M /dev/zero | timeout 3 socat -u - UNIX-CONNECT:"$T/r-bp.sock" 2>/dev/null
rc=$?
rss1=$(awk '/^VmRSS/ {print $2}' /proc/$BP/status)
# the writer is held back (timeout kills it: 124) and the relay grew by less than 16 MiB
[ $rc = 124 ] && [ $((rss1 - rss0)) -lt 16384 ] && ok "backpressure: writer blocked, relay RSS +$((rss1 - rss0)) KiB" \
    || bad "backpressure: writer rc $rc, relay RSS $rss0 -> $rss1 KiB"
kill "$DEAF" 2>/dev/null

# ---- 14. -c: a client over the limit is closed at once and logged ----
relay lim -c 1 "$T/r-lim.sock" "$T/echo.sock"
wait_listen "$T/r-lim.sock" "$RP"
# a client that holds its connection open: its stdin is a FIFO this shell
# holds until the check is done (a sleep 5 there raced the machine's load)
mkfifo "$T/hold.in"
exec {HOLDIN}<>"$T/hold.in"
socat - UNIX-CONNECT:"$T/r-lim.sock" <"$T/hold.in" {HOLDIN}>&- >/dev/null 2>&1 &
HOLD=$!
PIDS+=($HOLD)
# its connect() has returned: the relay accepts in backlog order
poll_until is_connected "$HOLD" || bad "-c: the first client did not connect"
r=$(echo x | timeout 5 socat -t 4 - UNIX-CONNECT:"$T/r-lim.sock" 2>/dev/null)
[ -z "$r" ] && grep -q 'refused connection #2 from pid [0-9]* uid 0: 1 connections open (-c 1)' "$T/lim.log" \
    && ok "-c 1: second client closed, logged" || bad "-c: '$r'; $(cat "$T/lim.log")"
exec {HOLDIN}>&-
kill "$HOLD" 2>/dev/null

# ---- 15. usage ----
"$U" relay "$T/only-one.sock" 2>/dev/null; [ $? = 2 ] && ok "one address: exit 2" || bad "usage"
echo precious >"$T/file"
"$U" relay "$T/file" "$T/echo.sock" 2>"$T/file.log"
[ $? = 1 ] && [ "$(cat "$T/file")" = precious ] && ok "regular file refused and kept" || bad "file: $(cat "$T/file.log")"

exit $fail
