#!/bin/bash
# udsock relay under resource pressure, against the defects of the old
# hand-made loop: out of fds (prlimit) with one chatty connection kept
# busy, accepting must come back by itself (the old relay re-armed its
# listener only when epoll_wait returned nothing, i.e. never while any
# connection talked) without spinning; --idle-timeout frees the slots idle
# clients hold (20 idle clients used to lock `relay -c 20` out for good);
# -C bounds one uid without touching another.
# uds-test-timeout: 120
set -u
. "$(dirname "$0")/io_common.bash"
PY=/usr/bin/python3
HZ=$(getconf CLK_TCK)
cpu_ticks() { awk '{print $14 + $15}' /proc/"$1"/stat; }
fdcount() { ls /proc/"$1"/fd | wc -l; }
ask() { printf "$2" | timeout 10 socat -t 5 - UNIX-CONNECT:"$1" 2>/dev/null; }

bg socat UNIX-LISTEN:"$T/echo.sock",fork,backlog=64 EXEC:cat
wait_listen "$T/echo.sock"

# ---- 1. EMFILE with a chatty connection ----
bg "$U" relay "$T/r.sock" "$T/echo.sock" 2>"$T/r.log"
R=$LAST
wait_listen "$T/r.sock"
# the chatty client: a line every 20 ms through the relay, counting echoes
cat >"$T/chatty.py" <<'PYEOF'
import socket, sys, time
s = socket.socket(socket.AF_UNIX); s.connect(sys.argv[1]); s.settimeout(5)
end = time.time() + float(sys.argv[2]); n = 0
f = open(sys.argv[3], "w")
while time.time() < end:
    s.sendall(b"tick\n")
    if s.recv(100) == b"tick\n":
        n += 1
    f.seek(0); f.write("%d\n" % n); f.flush()
    time.sleep(0.02)
PYEOF
$PY "$T/chatty.py" "$T/r.sock" 8 "$T/chatty.n" & CH=$!; PIDS+=($CH)
poll_until [ -s "$T/chatty.n" ] || fail "chatty client did not start"
n=$(fdcount $R)
prlimit --pid $R --nofile=$n: || fail "prlimit"
# clients now meet EMFILE (each is accepted and closed through the reserve
# fd, or waits in the backlog)
for i in 1 2 3; do ask "$T/r.sock" 'starved\n' >/dev/null; done
poll_until grep -q 'Too many open files' "$T/r.log" || fail "EMFILE not logged: $(cat "$T/r.log")"
c0=$(cpu_ticks $R); k0=$(cat "$T/chatty.n"); sleep 2; c1=$(cpu_ticks $R); k1=$(cat "$T/chatty.n")
pct=$(( (c1 - c0) * 100 / (2 * HZ) ))
[ $pct -lt 5 ] || fail "relay used $pct % CPU while starved (a spin)"
[ $((k1 - k0)) -ge 25 ] || fail "the chatty connection stalled while starved: $((k1 - k0)) echoes in 2 s"
ok "out of fds: relay at $pct % CPU, the chatty connection went on ($((k1 - k0)) echoes in 2 s)"
prlimit --pid $R --nofile=1024:
t0=$(date +%s%N)
r=$(ask "$T/r.sock" 'back\n')
ms=$(( ($(date +%s%N) - t0) / 1000000 ))
[ "$r" = back ] && [ $ms -lt 3000 ] && ok "fds back: a new client served after $ms ms (chatty client still talking)" \
    || fail "after the limit was raised: '$r' in $ms ms; $(tail -3 "$T/r.log")"
kill -0 $CH || fail "the chatty client died"
kill $CH 2>/dev/null

# ---- 2. --idle-timeout frees the slots of idle clients ----
bg "$U" relay -c 4 --idle-timeout 1 "$T/ri.sock" "$T/echo.sock" 2>"$T/ri.log"
RI=$LAST
wait_listen "$T/ri.sock"
idle=()
for i in $(seq 8); do
    sleep 30 | socat - UNIX-CONNECT:"$T/ri.sock" >/dev/null 2>&1 &
    idle+=($!); PIDS+=($!)
done
refused4() { [ "$(grep -c 'refused connection' "$T/ri.log")" -ge 4 ]; }
poll_until refused4 \
    || fail "4 of 8 idle clients should be refused by -c 4: $(cat "$T/ri.log")"
# a good client tries until it is let in: the idle ones must not hold the
# slots for good (they are dropped after 1 s of silence)
t0=$(date +%s%N)
for _ in $(seq 50); do
    r=$(ask "$T/ri.sock" 'good client\n')
    [ "$r" = "good client" ] && break
    sleep 0.1
done
ms=$(( ($(date +%s%N) - t0) / 1000000 ))
[ "$r" = "good client" ] && [ $ms -lt 5000 ] \
    && ok "-c 4 with 8 idle clients: a good client served after $ms ms (idle ones dropped at 1 s)" \
    || fail "good client: '$r' after $ms ms; $(tail -5 "$T/ri.log")"
# the idle clients' connections ended (socat exits at EOF)
gone=0
for p in "${idle[@]}"; do
    for _ in $(seq 150); do kill -0 $p 2>/dev/null || break; sleep 0.02; done
    kill -0 $p 2>/dev/null || gone=$((gone + 1))
done
[ $gone = 8 ] && ok "all 8 idle clients saw their connection end" || fail "$gone of 8 idle clients ended"

# ---- 3. -C: one uid bounded, another served ----
chmod 755 "$T"
bg "$U" relay -C 2 --mode 0666 "$T/rc.sock" "$T/echo.sock" 2>"$T/rc.log"
wait_listen "$T/rc.sock"
holders=()
for i in 1 2; do sleep 30 | socat - UNIX-CONNECT:"$T/rc.sock" >/dev/null 2>&1 & holders+=($!); PIDS+=($!); done
both_in() { is_connected ${holders[0]} && is_connected ${holders[1]}; }
poll_until both_in || fail "-C: the two holders did not connect"
r=$(ask "$T/rc.sock" 'third\n')
[ -z "$r" ] && poll_until grep -q 'uid 0 has 2 connections open (-C 2)' "$T/rc.log" \
    || fail "-C 2: a third root client got '$r'; $(cat "$T/rc.log")"
if [ "$(id -u)" = 0 ]; then
    r=$(printf 'other uid\n' | timeout 10 setpriv --reuid=65534 --regid=65534 --clear-groups \
        socat -t 5 - UNIX-CONNECT:"$T/rc.sock")
    [ "$r" = "other uid" ] || fail "-C 2: uid 65534 was not served: '$r'"
fi
ok "-C 2: the third connection of uid 0 refused and logged, another uid served"
exit 0
