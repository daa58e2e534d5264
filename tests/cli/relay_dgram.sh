#!/bin/bash
# udsock relay for datagrams: each sender address gets its own socket to the
# target and its replies back (udp -> udp, unix dgram -> unix dgram, udp ->
# unix), two senders never see each other's replies, a silent session is
# closed after --idle-timeout, -c bounds the sessions, and a sender that
# does not read its replies cannot block the relay.
# uds-test-timeout: 120
set -u
. "$(dirname "$0")/io_common.bash"
PY=/usr/bin/python3
free_udp() { $PY -c 'import socket; s=socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

cat >"$T/echo.py" <<'PYEOF'
import socket, sys
a = sys.argv[1]
if a.startswith("udp:"):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("127.0.0.1", int(a[4:])))
else:
    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM); s.bind(a)
while True:
    m, src = s.recvfrom(65536)
    s.sendto(b"echo:" + m, src)
PYEOF
# CLIENT ADDR NAME N: N datagrams "NAME-i", prints the replies in order
cat >"$T/client.py" <<'PYEOF'
import socket, sys
a, name, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
if a.startswith("udp:"):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); dst = ("127.0.0.1", int(a[4:]))
else:
    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM); s.bind(""); dst = a  # autobind: a reply address
s.settimeout(5)
out = []
for i in range(n):
    s.sendto(("%s-%d" % (name, i)).encode(), dst)
    out.append(s.recv(65536).decode())
print(" ".join(out))
PYEOF

# ---- 1. udp -> udp, two senders at once ----
# on_free_udp VAR ERRFILE CMD...: picks a free UDP port into VAR, starts
# CMD (with {PORT} replaced; stderr to ERRFILE) in the background and waits
# until that process holds it; another port if another program took it in
# between (5 tries)
on_free_udp() {
    local var=$1 errf=$2 try a
    local -a argv
    shift 2
    for try in 1 2 3 4 5; do
        printf -v "$var" '%s' "$(free_udp)"
        argv=()
        for a in "$@"; do argv+=("${a//\{PORT\}/${!var}}"); done
        bg "${argv[@]}" 2>"$errf"
        uds_wait_bound "udp:127.0.0.1:${!var}" "$LAST" && return 0
        kill "$LAST" 2>/dev/null
    done
    fail "no free UDP port for $* after 5 tries"
}
on_free_udp EP /dev/null $PY "$T/echo.py" "udp:{PORT}"
on_free_udp RP "$T/u.log" "$U" relay -v "udp:127.0.0.1:{PORT}" "udp:127.0.0.1:$EP"
$PY "$T/client.py" "udp:$RP" alice 20 >"$T/a.out" &
A=$!
$PY "$T/client.py" "udp:$RP" bob 20 >"$T/b.out" &
B=$!
wait $A $B
want_a=$(for i in $(seq 0 19); do printf 'echo:alice-%d ' $i; done)
want_b=$(for i in $(seq 0 19); do printf 'echo:bob-%d ' $i; done)
[ "$(cat "$T/a.out") " = "$want_a" ] && [ "$(cat "$T/b.out") " = "$want_b" ] \
    && ok "udp -> udp: two senders, each gets exactly its own replies" \
    || fail "udp: a='$(cat "$T/a.out")' b='$(cat "$T/b.out")'"
[ "$(grep -c ' open: sender ' "$T/u.log")" = 2 ] || fail "expected 2 sessions: $(grep open "$T/u.log")"

# ---- 2. unix dgram -> unix dgram, idle sessions closed ----
bg $PY "$T/echo.py" "$T/dg.sock"
wait_bound "$T/dg.sock"
bg "$U" relay -v --type dgram --idle-timeout 1 "$T/rd.sock" "$T/dg.sock" 2>"$T/d.log"
RD=$LAST
wait_bound "$T/rd.sock"
r=$($PY "$T/client.py" "$T/rd.sock" u 3)
[ "$r" = "echo:u-0 echo:u-1 echo:u-2" ] && ok "unix dgram -> unix dgram" || fail "unix dgram: '$r' $(cat "$T/d.log")"
t0=$(date +%s%N)
poll_until grep -q '#1 idle for 1 s: closing its socket' "$T/d.log" || fail "idle session not closed: $(cat "$T/d.log")"
ms=$(( ($(date +%s%N) - t0) / 1000000 ))
[ $ms -lt 8000 ] && ok "--idle-timeout 1: the silent session closed after about 1 s ($ms ms after its last reply)" \
    || fail "idle close took $ms ms"

# ---- 3. udp -> unix dgram ----
on_free_udp RP2 "$T/ux.log" "$U" relay "udp:127.0.0.1:{PORT}" "$T/dg.sock" --target-type dgram
r=$($PY "$T/client.py" "udp:$RP2" x 2)
[ "$r" = "echo:x-0 echo:x-1" ] && ok "udp -> unix dgram" || fail "udp->unix: '$r' $(cat "$T/ux.log")"

# ---- 4. -c: sessions bounded, a sender over the limit dropped and logged ----
bg "$U" relay -c 1 --type dgram "$T/rc.sock" "$T/dg.sock" 2>"$T/c.log"
wait_bound "$T/rc.sock"
cat >"$T/hold.py" <<'PYEOF'
import socket, sys, time
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM); s.bind(""); s.settimeout(5)
s.sendto(b"first", sys.argv[1]); print(s.recv(100).decode()); sys.stdout.flush()
time.sleep(3)
PYEOF
$PY "$T/hold.py" "$T/rc.sock" >"$T/hold.out" & H=$!; PIDS+=($H)
poll_until grep -q echo:first "$T/hold.out" || fail "first sender not served"
r=$($PY - "$T/rc.sock" <<'PYEOF'
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM); s.bind(""); s.settimeout(1)
s.sendto(b"late", sys.argv[1])
try:
    print("reply:" + s.recv(100).decode())
except socket.timeout:
    print("no reply")
PYEOF
)
[ "$r" = "no reply" ] || fail "a second sender over -c 1 got: '$r'"
grep -q 'dropped: 1 senders already (limit -c 1)' "$T/c.log" && ok "-c 1: a second sender is dropped and logged" \
    || fail "-c: $(cat "$T/c.log")"

# ---- 5. a sender that never reads its replies cannot block the relay ----
cat >"$T/deaf.py" <<'PYEOF'
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM); s.bind("")
s.setblocking(False)
n = 0
for i in range(2000):
    try:
        s.sendto(b"x" * 100, sys.argv[1]); n += 1
    except BlockingIOError:
        pass
print(n)
PYEOF
timeout 10 $PY "$T/deaf.py" "$T/rd.sock" >/dev/null
r=$(timeout 10 $PY "$T/client.py" "$T/rd.sock" ok 3)
[ "$r" = "echo:ok-0 echo:ok-1 echo:ok-2" ] && kill -0 $RD \
    && ok "a sender that never reads its replies: others are still served" \
    || fail "after a deaf sender: '$r' $(tail -3 "$T/d.log")"
exit 0
