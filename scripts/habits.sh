#!/usr/bin/env bash
# scripts/habits.sh — run the habits of socat, OpenBSD nc, ncat and
# s6-ipcserver beside udsock's, scenario by scenario, on this machine, and
# print what each one did (exit status, time, first line it printed) as a
# markdown table. The habit table in docs/habits.md is read from its output.
#
#   bash scripts/habits.sh [UDSOCK] > build/habits.out.md
#
# Not a test: nothing here asserts; the tests in tests/cli assert udsock's
# side. Each scenario starts its own servers in a temporary directory
# (loopback only), waits for them by probing, and stops them by pid.
set -u
U=${1:-$(cd "$(dirname "$0")/.." && pwd)/build/udsock}
[ -x "$U" ] || { echo "habits: $U: not built (make build first)" >&2; exit 1; }
D=$(mktemp -d /tmp/habits.XXXXXX)
PIDS=()
cleanup() {
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done
    wait 2>/dev/null
    rm -rf "$D"
}
trap cleanup EXIT

# try LABEL CMD...: run CMD (stdin as given by the caller, at most 10 s),
# print one table row: label | status | seconds | first line of output.
try() {
    local label=$1; shift
    local t0 t1 rc out
    t0=$(date +%s.%N)
    out=$(timeout -k 1 10 "$@" 2>&1)
    rc=$?
    t1=$(date +%s.%N)
    out=$(printf '%s' "$out" | tr '\r' ' ' | grep -v '^$' | head -n 2 | tr '\n' ' ' |
          sed 's/|/\\|/g' | cut -c1-150)
    [ $rc = 124 ] && rc="killed at 10 s"
    printf '| %s | %s | %.2f | %s |\n' "$label" "$rc" "$(echo "$t1 - $t0" | bc)" "$out"
}
head_() { printf '\n### %s\n\n| command | status | s | printed |\n|---|---|---|---|\n' "$1"; }

# A python server on a unix path: MODE mute (accept, never read or write),
# backlog (listen(0), never accept: the queue fills), seqpacket, dgram,
# reset (accept, close at once without reading: a reset for the sender).
pyserv() {
    local mode=$1 path=$2
    python3 - "$mode" "$path" <<'EOF' &
import socket, sys, time, os
mode, path = sys.argv[1], sys.argv[2]
ty = {"seqpacket": socket.SOCK_SEQPACKET, "dgram": socket.SOCK_DGRAM}.get(mode, socket.SOCK_STREAM)
s = socket.socket(socket.AF_UNIX, ty)
s.bind(path)
if ty != socket.SOCK_DGRAM:
    s.listen(0 if mode == "backlog" else 16)
held = []
t_end = time.time() + 120
while time.time() < t_end:
    if mode == "backlog" or ty == socket.SOCK_DGRAM:
        time.sleep(0.2); continue
    c, _ = s.accept()
    if mode == "reset":
        time.sleep(0.3); c.close(); continue
    if mode == "seqpacket":   # echo each message; close at EOF
        while True:
            m = c.recv(65536)
            if not m: break
            c.send(m)
        c.close(); continue
    held.append(c)
EOF
    PIDS+=($!)
    local i
    for i in $(seq 1 200); do [ -S "$path" ] && break; sleep 0.05; done
}

mkfifo "$D/hold"; exec {HOLD}<>"$D/hold"   # an stdin that never ends

head_ "mute server, client stdin open: an idle timeout of 1 s"
pyserv mute "$D/mute"
try "socat -T 1 - UNIX-CONNECT:S" socat -T 1 - UNIX-CONNECT:"$D/mute" <"$D/hold"
try "nc -U -w 1 S" nc -U -w 1 "$D/mute" <"$D/hold"
try "ncat -U -i 1 S" ncat -U -i 1 "$D/mute" <"$D/hold"
try "udsock connect -i 1 S" "$U" connect -i 1 "$D/mute" <"$D/hold"

head_ "full backlog: a connect timeout of 1 s"
pyserv backlog "$D/full"
for i in 1 2 3 4; do python3 -c "import socket,sys,time
s=socket.socket(socket.AF_UNIX); s.setblocking(False)
try: s.connect(sys.argv[1])
except Exception: pass
time.sleep(60)" "$D/full" & PIDS+=($!); done
sleep 0.5
try "socat - UNIX-CONNECT:S,connect-timeout=1" socat - UNIX-CONNECT:"$D/full",connect-timeout=1 </dev/null
try "nc -U -w 1 S" nc -U -w 1 "$D/full" </dev/null
try "ncat -U -w 1 S" ncat -U -w 1 "$D/full" </dev/null
try "udsock connect --connect-timeout 1 S" "$U" connect --connect-timeout 1 "$D/full" </dev/null

head_ "EOF on stdin, the server never closes: quit after 1 s"
try "echo hi | socat - UNIX-CONNECT:S (default -t 0.5)" sh -c "echo hi | socat - UNIX-CONNECT:$D/mute"
try "echo hi | nc -U -q 1 S" sh -c "echo hi | nc -U -q 1 $D/mute"
try "echo hi | nc -U S" sh -c "echo hi | nc -U $D/mute"
try "echo hi | ncat -U S" sh -c "echo hi | ncat -U $D/mute"
try "echo hi | udsock connect -q 1 S" sh -c "echo hi | $U connect -q 1 $D/mute"
try "echo hi | udsock connect S" sh -c "echo hi | $U connect $D/mute"

head_ "probe without sending (-z): a live server, then a stale socket file"
python3 -c "import socket,sys; s=socket.socket(socket.AF_UNIX); s.bind(sys.argv[1])" "$D/stale"
try "nc -zU LIVE" nc -zU "$D/mute"
try "nc -zU STALE" nc -zU "$D/stale"
try "ncat -z -U LIVE" ncat -z -U "$D/mute"
try "ncat -z -U STALE" ncat -z -U "$D/stale"
try "socat -u /dev/null UNIX-CONNECT:STALE (no -z)" socat -u /dev/null UNIX-CONNECT:"$D/stale"
try "udsock connect -z LIVE" "$U" connect -z "$D/mute"
try "udsock connect -z STALE" "$U" connect -z "$D/stale"

head_ "a seqpacket server, client gives no type"
pyserv seqpacket "$D/seq"
try "echo hi | socat - UNIX-CLIENT:S" sh -c "echo hi | socat - UNIX-CLIENT:$D/seq"
try "echo hi | nc -U -N S" sh -c "echo hi | nc -U -N $D/seq"
try "echo hi | ncat -U S" sh -c "echo hi | ncat -U $D/seq"
try "echo hi | udsock connect -v S" sh -c "echo hi | $U connect -v $D/seq"

head_ "not a socket: a regular file"
: >"$D/file"
try "socat - UNIX-CONNECT:FILE" socat - UNIX-CONNECT:"$D/file" </dev/null
try "nc -U FILE" nc -U "$D/file" </dev/null
try "ncat -U FILE" ncat -U "$D/file" </dev/null
try "s6-ipcclient FILE true" s6-ipcclient "$D/file" true
try "udsock connect FILE" "$U" connect "$D/file" </dev/null

head_ "address errors: an unknown host, a port out of range, a service name"
try "socat - TCP:nohost.invalid:80" socat - TCP:nohost.invalid:80 </dev/null
try "nc nohost.invalid 80" nc nohost.invalid 80 </dev/null
try "ncat nohost.invalid 80" ncat nohost.invalid 80 </dev/null
try "udsock connect tcp:nohost.invalid:80" "$U" connect tcp:nohost.invalid:80 </dev/null
try "socat - TCP:127.0.0.1:99999" socat - TCP:127.0.0.1:99999 </dev/null
try "nc 127.0.0.1 99999" nc 127.0.0.1 99999 </dev/null
try "ncat 127.0.0.1 99999" ncat 127.0.0.1 99999 </dev/null
try "udsock connect tcp:127.0.0.1:99999" "$U" connect tcp:127.0.0.1:99999 </dev/null
try "socat - TCP:127.0.0.1:http" socat - TCP:127.0.0.1:http </dev/null
try "nc 127.0.0.1 http" nc 127.0.0.1 http </dev/null
try "ncat 127.0.0.1 http" ncat 127.0.0.1 http </dev/null
try "udsock connect tcp:127.0.0.1:http" "$U" connect tcp:127.0.0.1:http </dev/null

head_ "the handler does not read: echo | CLIENT, then a reset"
pyserv reset "$D/reset"
try "echo | socat - UNIX-CONNECT:S" sh -c "echo | socat - UNIX-CONNECT:$D/reset"
try "echo | nc -U S" sh -c "echo | nc -U $D/reset"
try "echo | ncat -U S" sh -c "echo | ncat -U $D/reset"
try "echo | udsock connect S" sh -c "echo | $U connect $D/reset"

head_ "listen on TCP port 0: is the port said?"
try "socat TCP-LISTEN:0,bind=127.0.0.1 - (1 s)" timeout 1 socat TCP-LISTEN:0,bind=127.0.0.1 - <"$D/hold"
try "nc -l -v 127.0.0.1 0 (1 s)" timeout 1 nc -l -v 127.0.0.1 0 <"$D/hold"
try "ncat -l -v 127.0.0.1 0 (1 s)" timeout 1 ncat -l -v 127.0.0.1 0 <"$D/hold"
try "udsock listen tcp:127.0.0.1:0 (1 s)" timeout 1 "$U" listen tcp:127.0.0.1:0 <"$D/hold"

head_ "who is the peer (-v): a python client connects to a listener"
peer() { python3 -c "import socket,sys,time
for i in range(100):
    try:
        s=socket.socket(socket.AF_UNIX); s.connect(sys.argv[1]); break
    except OSError: time.sleep(0.05)
s.close()" "$1"; }
( sleep 0.3; peer "$D/v1" ) & try "socat -d -d UNIX-LISTEN:S -" socat -d -d UNIX-LISTEN:"$D/v1" - </dev/null
( sleep 0.3; peer "$D/v2" ) & try "nc -lU -v S" nc -lU -v "$D/v2" </dev/null
( sleep 0.3; peer "$D/v3" ) & try "ncat -lU -v S" sh -c "ncat -lU -v $D/v3 </dev/null 2>&1 | grep -i connection"
( sleep 0.3; peer "$D/v4" ) & try "udsock listen -v S" sh -c "$U listen -v $D/v4 </dev/null 2>&1 | grep client"

# srv LABEL PATH CMD...: start a server on unix path PATH, wait for its
# socket, run one client (python: connect, bind a name first so the
# server can see it, read all, print), then stop the server.
cat >"$D/client.py" <<'EOF'
import socket, sys, time
s = socket.socket(socket.AF_UNIX)
s.bind(sys.argv[1] + ".client")
for i in range(200):
    try:
        s.connect(sys.argv[1]); break
    except OSError:
        time.sleep(0.05)
s.shutdown(socket.SHUT_WR)
d = b""
while True:
    b = s.recv(65536)
    if not b: break
    d += b
print(d.decode(errors="replace").replace("\r", "\\r").replace("\n", " "))
EOF
srv() {
    local label=$1 path=$2; shift 2
    "$@" </dev/null >/dev/null 2>&1 & local sp=$!
    try "$label" python3 "$D/client.py" "$path"
    kill $sp 2>/dev/null; wait $sp 2>/dev/null
    rm -f "$path" "$path.client"
}
head_ "a program per client: the environment it gets (identity, the client's bound name)"
P='echo PROTO=$PROTO uid=$IPCREMOTEEUID path=$IPCREMOTEPATH'
srv "s6-ipcserver S sh -c '$P'" "$D/e1" s6-ipcserver "$D/e1" sh -c "$P"
srv "socat UNIX-LISTEN:S,fork SYSTEM:'$P'" "$D/e2" socat UNIX-LISTEN:"$D/e2",fork SYSTEM:"$P"
srv "ncat -lU S -k --sh-exec '$P'" "$D/e3" ncat -lU "$D/e3" -k --sh-exec "$P"
srv "udsock serve S -- sh -c '$P'" "$D/e4" "$U" serve "$D/e4" -- sh -c "$P"

head_ "privilege drop before exec (the program prints id -u, id -g, id -G)"
I='echo $(id -u) $(id -g) $(id -G)'
srv "s6-ipcserver -u 65534 -g 65534 S sh -c ID" "$D/p1" s6-ipcserver -u 65534 -g 65534 "$D/p1" sh -c "$I"
srv "socat UNIX-LISTEN:S,fork SYSTEM:ID,su=nobody" "$D/p2" socat UNIX-LISTEN:"$D/p2",fork SYSTEM:"$I",su=nobody
srv "udsock serve -u nobody S -- sh -c ID" "$D/p4" "$U" serve -u nobody "$D/p4" -- sh -c "$I"
try "nc / ncat: no option to drop privileges for -e" sh -c "(nc -h; ncat -h) 2>&1 | grep -ciE 'setuid|--user|su='"

head_ "a pty for the program (it prints tty)"
srv "socat UNIX-LISTEN:S,fork EXEC:tty,pty,setsid,ctty" "$D/t1" socat UNIX-LISTEN:"$D/t1",fork EXEC:tty,pty,setsid,ctty
srv "s6-ipcserver S tty (no pty mode)" "$D/t2" s6-ipcserver "$D/t2" tty
srv "ncat -lU S -k -e tty (no pty mode)" "$D/t3" ncat -lU "$D/t3" -k -e /usr/bin/tty
srv "udsock serve --pty S -- tty" "$D/t4" "$U" serve --pty "$D/t4" -- tty

head_ "socket activation and readiness"
try "socat: LISTEN_FDS / ACCEPT-FD" sh -c "socat -h | grep -ciE 'accept-fd|listen_fds'"
try "ncat / nc: LISTEN_FDS" sh -c "(ncat -h; nc -h) 2>&1 | grep -ci listen_fds"
try "s6-ipcserver readiness (-1)" sh -c "s6-ipcserver 2>&1 | grep -o -- '-1' | head -1"
try "udsock: --ready-fd, LISTEN_FDS" sh -c "$U listen --help | grep -E -- '--ready-fd' | head -1"

head_ "connection broker: A sends a line, B and A read for 1 s (what each got)"
cat >"$D/broker.py" <<'EOF'
import socket, sys, time
fam, addr = (socket.AF_UNIX, sys.argv[1]) if sys.argv[1].startswith("/") else \
    (socket.AF_INET, ("127.0.0.1", int(sys.argv[1])))
def conn():
    for i in range(200):
        try:
            c = socket.socket(fam); c.connect(addr); return c
        except OSError:
            time.sleep(0.05)
    sys.exit("cannot connect")
a, b = conn(), conn()
time.sleep(0.3)            # both joined
a.sendall(b"from-A\n")
def got(c):
    c.settimeout(1.0); d = b""
    try:
        while True:
            x = c.recv(4096)
            if not x: break
            d += x
    except socket.timeout:
        pass
    return d.decode(errors="replace").replace("\n", " ").strip()
print("B got [%s], A got [%s]" % (got(b), got(a)))
EOF
bsrv() {
    local label=$1 addr=$2; shift 2
    "$@" <"$D/hold" >/dev/null 2>"$D/bsrv.err" & local sp=$!
    try "$label" python3 "$D/broker.py" "$addr"
    kill $sp 2>/dev/null; wait $sp 2>/dev/null
}
try "ncat -l -U --broker S" ncat -l -U --broker "$D/b1.sock" </dev/null
bsrv "ncat -l --broker 127.0.0.1 PORT (TCP)" 47391 ncat -l --broker 127.0.0.1 47391
bsrv "ncat -l --chat 127.0.0.1 PORT (TCP)" 47392 ncat -l --chat 127.0.0.1 47392
try "socat / nc: a broker mode?" sh -c "(socat -hh; nc -h) 2>&1 | grep -ciE 'broker|chat'"
bsrv "udsock listen --broker S" "$D/b4.sock" "$U" listen --broker "$D/b4.sock"
bsrv "udsock listen --chat S" "$D/b5.sock" "$U" listen --chat "$D/b5.sock"

head_ "passing an fd from the shell: a python recv_fds server reports what came"
cat >"$D/fdsrv.py" <<'EOF'
import socket, sys, os
s = socket.socket(socket.AF_UNIX); s.bind(sys.argv[1]); s.listen(8)
print("ready", flush=True)
while True:
    c, _ = s.accept()
    msg, fds, _, _ = socket.recv_fds(c, 4096, 8)
    txt = os.read(fds[0], 100).decode().strip() if fds else ""
    print("got [%s] fds=%d %s" % (msg.decode().strip(), len(fds), txt), flush=True)
    for f in fds: os.close(f)
    c.close()
EOF
echo file-content >"$D/f.txt"
python3 "$D/fdsrv.py" "$D/fd.sock" >"$D/fdsrv.out" & PIDS+=($!)
for i in $(seq 200); do grep -q ready "$D/fdsrv.out" 2>/dev/null && break; sleep 0.05; done
fdtry() { local label=$1; shift; : >"$D/fdsrv.out"; try "$label" "$@"
    printf '| (the server) | | | %s |\n' "$(tail -1 "$D/fdsrv.out")"; }
fdtry "echo hi | socat - UNIX-CONNECT:S (no way to attach an fd)" sh -c "echo hi | socat - UNIX-CONNECT:$D/fd.sock"
fdtry "echo hi | nc -N -U S (-F hands only its own socket)" sh -c "echo hi | nc -N -U $D/fd.sock"
fdtry "echo hi | ncat -U S" sh -c "echo hi | ncat -U $D/fd.sock"
fdtry "echo hi | udsock connect --fd f.txt S" sh -c "echo hi | $U connect --fd $D/f.txt $D/fd.sock"
try "s6-fdholder: a daemon that holds fds (not a shell pipe)" sh -c "ls /usr/bin/s6-fdholder-store /bin/s6-fdholder-store 2>/dev/null | head -1"

head_ "relay: keepalive, nodelay, retry while the target is down"
try "socat: keepalive, nodelay, retry=N, interval=S options" sh -c "socat -hh | grep -cwE '^ +(keepalive|nodelay|retry|interval)'"
try "ncat / nc (relay)" sh -c "(ncat -h; nc -h) 2>&1 | grep -ciE 'keepalive|retry'"
try "udsock relay" sh -c "$U relay --help | grep -E -- '--retry |--keepalive' | head -2"

head_ "shell completion"
for t in socat nc ncat s6-ipcserver udsock; do
    try "$t" sh -c "ls /usr/share/bash-completion/completions/$t 2>/dev/null || echo none"
done
try "udsock completion bash (make install puts it there)" sh -c "$U completion bash | grep -c complete"
