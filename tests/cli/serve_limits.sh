#!/bin/bash
# udsock serve under pressure (regression tests for the rewrite on the
# library's acceptor):
#   1. a connect flood against -c 4: children are reaped during the flood
#      (no child stays a zombie), the refusal log is rate-limited, a good
#      client is served afterwards;
#   2. out of fds (prlimit lowers RLIMIT_NOFILE of the running server):
#      clients that come meanwhile are closed at once instead of hanging,
#      little CPU, few log lines, served again within 1 s once the limit is
#      back; once plain, once with --idle-timeout and a chatty connection in
#      the server's loop;
#   3. --idle-timeout: silent clients (twice the -c limit) are dropped and
#      their programs end, a good client gets in; a client that keeps
#      talking is not dropped (4 at once, a line each 1.2 s against a 2 s
#      timeout: the server must see every line the program reads); 8 MiB go
#      through the interposed forward and back intact (sha256); seqpacket
#      message boundaries are kept; serve's fd count is back to where it
#      was once the connections have ended; output of the program does not
#      count; a program that ignores SIGTERM gets SIGKILL.
# Readiness is the LISTEN state in /proc/net/unix, never a file or a sleep.
# uds-test-timeout: 240
set -u
U=${UDS_BUILD_DIR:-build}/udsock
PY=/usr/bin/python3
T=$(mktemp -d /tmp/udsock-serve-limits.XXXXXX)
PIDS=()
fail=0
cleanup() {
    for p in "${PIDS[@]}"; do
        for k in $(ps --ppid "$p" -o pid= 2>/dev/null); do kill -9 "$k" 2>/dev/null; done
        kill "$p" 2>/dev/null
    done
    wait 2>/dev/null
    rm -rf "$T"
}
trap cleanup EXIT
bad() { echo "FAIL: $*"; fail=1; }
ok() { echo "ok: $*"; }
is_asan() { grep -q '^UDS_SANITIZE:BOOL=ON' "${UDS_BUILD_DIR:-build}/CMakeCache.txt" 2>/dev/null; }
now_ms() { echo $(( $(date +%s%N) / 1000000 )); }
# waits (at most 10 s) until a unix socket listens on path $1: the entry of
# /proc/net/unix with the __SO_ACCEPTCON flag, by the shared helper, which
# also knows the name a pinned bind records (/proc/self/fd/N/BASENAME)
. "$(dirname "${BASH_SOURCE[0]}")/../../scripts/wait-listen.sh"
wait_listen() { uds_wait_listen "$1" 2>/dev/null; }
# waits (at most 10 s) until file $1 contains the fixed string $2
wait_grep() {
    local i
    for i in $(seq 400); do grep -qF -- "$2" "$1" 2>/dev/null && return 0; sleep 0.025; done
    return 1
}
wait_file() { local i; for i in $(seq 400); do [ -s "$1" ] && return 0; sleep 0.025; done; return 1; }
# start "udsock serve" in the background, stderr to $T/NAME.log; pid in SP
start() { # NAME ARGS...
    local name=$1; shift
    "$U" serve "$@" 2>"$T/$name.log" &
    SP=$!
    PIDS+=("$SP")
}
stop() { kill "$SP" 2>/dev/null; wait "$SP" 2>/dev/null; }
# pids of zombie children of $1 (state Z, ppid $1), sorted
zombies() { cat /proc/[0-9]*/stat 2>/dev/null | awk -v P="$1" '$3 == "Z" && $4 == P { print $1 }' | sort -n | tr '\n' ' '; }
nchildren() { ps --ppid "$1" -o pid= | wc -l; }
# utime + stime of $1 in clock ticks
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }
# the lowest fd number $1 does not have open: with RLIMIT_NOFILE set to it,
# the next fd it asks for fails with EMFILE
lowest_free_fd() { local i; for i in $(seq 0 4096); do [ -e "/proc/$1/fd/$i" ] || { echo "$i"; return; }; done; }

cat >"$T/cl.py" <<'EOF'
import os, select, socket, struct, sys, time

def conn(path, timeout=5.0):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    # bounds a blocking unix connect that waits for room in the backlog
    s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDTIMEO, struct.pack('ll', int(timeout), 0))
    s.connect(path)
    return s

def wait_eof(s, limit):
    """Reads until EOF; returns (seconds until EOF or None, bytes read)."""
    t0 = time.monotonic()
    got = 0
    while True:
        left = limit - (time.monotonic() - t0)
        if left <= 0:
            return None, got
        r, _, _ = select.select([s], [], [], left)
        if not r:
            continue
        try:
            b = s.recv(65536)
        except OSError:
            b = b''
        if not b:
            return time.monotonic() - t0, got
        got += len(b)

def wait_eof_data(s, limit):
    """Reads until EOF; returns (seconds until EOF or None, the data)."""
    t0 = time.monotonic()
    data = b''
    s.settimeout(limit)
    try:
        while time.monotonic() - t0 < limit:
            b = s.recv(65536)
            if not b:
                return time.monotonic() - t0, data
            data += b
    except OSError:
        pass
    return None, data

cmd, path = sys.argv[1], sys.argv[2]
if cmd == 'flood':            # flood PATH SECONDS: connect and close, fast
    end = time.monotonic() + float(sys.argv[3])
    n = 0
    while time.monotonic() < end:
        try:
            s = conn(path, 1)
            n += 1
            s.close()
        except OSError:
            pass
    print(n)
elif cmd == 'ask':            # ask PATH DEADLINE: retry until "ping" is echoed
    t0 = time.monotonic()
    deadline = float(sys.argv[3])
    tries = 0
    while time.monotonic() - t0 < deadline:
        tries += 1
        try:
            s = conn(path, 1)
            s.settimeout(max(0.1, deadline - (time.monotonic() - t0)))
            s.sendall(b'ping\n')
            b = s.recv(100)
            s.close()
            if b == b'ping\n':
                print('served %d ms %d tries' % ((time.monotonic() - t0) * 1000, tries))
                sys.exit(0)
        except OSError:
            pass
        time.sleep(0.05)
    print('not served in %.1f s (%d tries)' % (deadline, tries))
    sys.exit(1)
elif cmd == 'hello':          # hello PATH DEADLINE: retry until "hi" is read
    t0 = time.monotonic()
    deadline = float(sys.argv[3])
    tries = 0
    while time.monotonic() - t0 < deadline:
        tries += 1
        try:
            s = conn(path, 1)
            t, got = wait_eof_data(s, 2.0)
            s.close()
            if got == b'hi\n':
                print('served after %d ms, %d tries' % ((time.monotonic() - t0) * 1000, tries))
                sys.exit(0)
        except OSError:
            pass
        time.sleep(0.05)
    print('not served in %.1f s (%d tries)' % (deadline, tries))
    sys.exit(1)
elif cmd == 'idle':           # idle PATH N LIMIT READYFILE: N silent clients
    n, limit = int(sys.argv[3]), float(sys.argv[4])
    socks = [conn(path) for _ in range(n)]
    open(sys.argv[5], 'w').write('connected\n')
    t0 = time.monotonic()
    res = ['never'] * n
    live = dict((s.fileno(), i) for i, s in enumerate(socks))
    while live and time.monotonic() - t0 < limit:
        r, _, _ = select.select(list(live), [], [], max(0, limit - (time.monotonic() - t0)))
        for fd in r:
            try:
                b = socks[live[fd]].recv(65536)
            except OSError:
                b = b''
            if not b:
                res[live.pop(fd)] = '%.2f' % (time.monotonic() - t0)
    print(' '.join(res))
elif cmd == 'silent':         # silent PATH LIMIT: one silent client
    s = conn(path)
    t, got = wait_eof(s, float(sys.argv[3]))
    print('%s %d' % ('never' if t is None else '%.2f' % t, got))
elif cmd == 'talk':           # talk PATH N INTERVAL: a line every INTERVAL s
    s = conn(path)
    s.settimeout(5)
    n, iv = int(sys.argv[3]), float(sys.argv[4])
    for i in range(n):
        line = b'line %d\n' % i
        s.sendall(line)
        b = b''
        while len(b) < len(line):
            c = s.recv(100)
            if not c:
                print('dropped after %d lines' % i)
                sys.exit(1)
            b += c
        if b != line:
            print('bad echo %r' % b)
            sys.exit(1)
        time.sleep(iv)
    print('ok %d' % n)
elif cmd == 'talkers':        # talkers PATH K N INTERVAL: K clients at once,
    k, n, iv = int(sys.argv[3]), int(sys.argv[4]), float(sys.argv[5])  # a line each
    socks = [conn(path) for _ in range(k)]                 # every INTERVAL s
    res = ['ok'] * k
    for i in range(n):
        for j, s in enumerate(socks):
            if res[j] != 'ok':
                continue
            line = b'client %d line %d\n' % (j, i)
            try:
                s.sendall(line)
                s.settimeout(5)
                b = b''
                while len(b) < len(line):
                    c = s.recv(100)
                    if not c:
                        break
                    b += c
            except OSError:
                b = b''
            if b != line:
                res[j] = 'dropped@%d' % i
        time.sleep(iv)
    print(' '.join(res))
elif cmd == 'bulk':           # bulk PATH MIB: MIB MiB through and back, sha256
    import hashlib, threading
    s = conn(path)
    data = os.urandom(int(sys.argv[3]) << 20)
    def writer():
        s.sendall(data)
        s.shutdown(socket.SHUT_WR)
    th = threading.Thread(target=writer)
    th.start()
    s.settimeout(20)
    h = hashlib.sha256()
    got = 0
    while True:
        b = s.recv(1 << 16)
        if not b:
            break
        h.update(b)
        got += len(b)
    th.join()
    print('%s %d %s %d' % (hashlib.sha256(data).hexdigest(), len(data), h.hexdigest(), got))
elif cmd == 'packets':        # packets PATH: seqpacket messages come back whole
    s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    s.connect(path)
    s.settimeout(5)
    sizes = [1, 7, 100, 4096, 5000, 65536, 100000, 3]
    bad = []
    for i, n in enumerate(sizes):
        m = bytes([65 + i]) * n
        s.send(m)
        r = s.recv(1 << 20)
        if r != m:
            bad.append('%d:%d->%d' % (i, n, len(r)))
    print('ok %d' % len(sizes) if not bad else 'bad ' + ' '.join(bad))
elif cmd == 'chatty':         # chatty PATH READYFILE STOPFILE LIMIT: talk until told
    s = conn(path)
    s.settimeout(5)
    ready, stopf, limit = sys.argv[3], sys.argv[4], float(sys.argv[5])
    t0 = time.monotonic()
    n = 0
    while not os.path.exists(stopf) and time.monotonic() - t0 < limit:
        s.sendall(b'x\n')
        b = b''
        while len(b) < 2:
            c = s.recv(100)
            if not c:
                print('broken after %d' % n)
                sys.exit(1)
            b += c
        n += 1
        if n == 1:
            open(ready, 'w').write('ready\n')
        time.sleep(0.02)
    print('ok %d' % n)
elif cmd == 'knock':          # knock PATH SECONDS: a client every 100 ms, each
    end = time.monotonic() + float(sys.argv[3])   # must be closed within 2 s
    closed = hung = served = 0
    while time.monotonic() < end:
        try:
            s = conn(path, 2)
            t, got = wait_eof(s, 2.0)
            s.close()
            if t is None:
                hung += 1
            elif got:
                served += 1
            else:
                closed += 1
        except OSError:
            hung += 1
        time.sleep(0.1)
    print('closed %d hung %d served %d' % (closed, hung, served))
EOF

# ---- 1. connect flood against -c 4 ----
S=$T/flood.sock
start flood -c 4 "$S" -- echo hi
wait_listen "$S" || bad "flood: serve did not listen"
t0=$(now_ms)
for i in 1 2 3; do
    timeout 20 $PY "$T/cl.py" flood "$S" 3 >"$T/flood.$i" &
    PIDS+=($!)
    FL[$i]=$!
done
# a child that stays a zombie for a second was not reaped during the flood
sleep 1
z1=$(zombies "$SP")
sleep 1.2
z2=$(zombies "$SP")
same=""
for p in $z1; do case " $z2 " in *" $p "*) same="$same $p" ;; esac; done
[ -z "$same" ] && ok "flood: no child stayed a zombie for 1 s ([$z1] then [$z2])" \
    || bad "flood: children left unreaped during the flood:$same ([$z1] then [$z2])"
for i in 1 2 3; do wait "${FL[$i]}"; done
conns=$(cat "$T/flood.1" "$T/flood.2" "$T/flood.3" | awk '{ s += $1 } END { print s + 0 }')
[ "$conns" -ge 1000 ] && ok "flood: $conns connections in 3 s" || bad "flood: only $conns connections (no flood)"
# after the flood a good client is served (it may be refused while the
# flood's last connections, still in the backlog, hold the slots: it tries
# again), then every child ends and none is left a zombie
r=$(timeout 15 $PY "$T/cl.py" hello "$S" 10)
case "$r" in
"served "*) ok "flood: a good client served afterwards ($r)" ;;
*) bad "flood: afterwards: $r" ;;
esac
for _ in $(seq 400); do [ "$(nchildren "$SP")" = 0 ] && break; sleep 0.025; done
z=$(zombies "$SP")
[ -z "$z" ] && [ "$(nchildren "$SP")" = 0 ] && ok "flood: no children and no zombies afterwards" \
    || bad "flood: afterwards: zombies [$z], children $(nchildren "$SP")"
kill -0 "$SP" 2>/dev/null && ok "flood: serve alive" || bad "flood: serve died"
# refusal lines: at most 10 a second plus one summary a second
sleep 1.2 # the summary of the last window is written when it ends
el=$(( ($(now_ms) - t0 + 999) / 1000 ))
lines=$(wc -l <"$T/flood.log")
max=$(( 11 * (el + 1) + 5 ))
[ "$lines" -le "$max" ] && ok "flood: $lines log lines in $el s (at most $max)" \
    || bad "flood: $lines log lines in $el s (at most $max): $(head -c 300 "$T/flood.log")"
grep -q 'more connections refused in the last second' "$T/flood.log" \
    && ok "flood: summary lines count the suppressed refusals" \
    || bad "flood: no summary line: $(tail -3 "$T/flood.log")"
stop

# ---- 2. out of fds ----
# emfile_case NAME CHATTY SERVE-ARGS...: CHATTY 1 keeps a talking client
# connected (with --idle-timeout its events keep the server's loop busy)
emfile_case() {
    local name=$1 chatty=$2; shift 2
    local S=$T/$name.sock ch=""
    start "$name" -c 8 "$@" "$S" -- cat
    if ! wait_listen "$S"; then
        bad "$name: serve did not listen: $(cat "$T/$name.log")"
        stop
        return
    fi
    if [ "$chatty" = 1 ]; then
        timeout 60 $PY "$T/cl.py" chatty "$S" "$T/$name.ready" "$T/$name.stop" 50 >"$T/$name.chatty" &
        ch=$!
        PIDS+=("$ch")
        wait_file "$T/$name.ready" || bad "$name: chatty client not served"
    fi
    local soft hard lf
    read -r soft hard < <(prlimit --pid "$SP" --nofile --noheadings -o SOFT,HARD)
    lf=$(lowest_free_fd "$SP")
    prlimit --pid "$SP" --nofile="$lf:$hard" || bad "$name: prlimit failed"
    # clients arrive while serve is out of fds: each must be closed, none
    # left hanging in the backlog
    timeout 20 $PY "$T/cl.py" knock "$S" 3 >"$T/$name.knock" &
    local kn=$!
    PIDS+=("$kn")
    wait_grep "$T/$name.log" "Too many open files" || bad "$name: no EMFILE seen: $(cat "$T/$name.log")"
    local c0 c1 tk
    c0=$(cpu_ticks "$SP")
    sleep 2
    c1=$(cpu_ticks "$SP")
    tk=$(getconf CLK_TCK)
    # below 5 % of one CPU over 2 s
    [ $(( (c1 - c0) * 100 )) -lt $(( 5 * 2 * tk )) ] \
        && ok "$name: out of fds: serve used $((c1 - c0)) of $((2 * tk)) ticks in 2 s" \
        || bad "$name: out of fds: serve used $((c1 - c0)) of $((2 * tk)) ticks in 2 s"
    wait "$kn"
    local k
    k=$(cat "$T/$name.knock")
    case "$k" in
    "closed "[1-9]*" hung 0 served 0") ok "$name: clients during the starvation closed at once ($k)" ;;
    *) bad "$name: clients during the starvation: $k" ;;
    esac
    kill -0 "$SP" 2>/dev/null && ok "$name: serve alive" || bad "$name: serve died"
    local n
    n=$(grep -c "Too many open files" "$T/$name.log")
    [ "$n" -le 5 ] && ok "$name: $n EMFILE lines in ~3 s" || bad "$name: $n EMFILE lines in ~3 s"
    prlimit --pid "$SP" --nofile="$soft:$hard"
    local r lim=1000
    is_asan && lim=3000
    r=$(timeout 10 $PY "$T/cl.py" ask "$S" 5)
    local ms
    ms=$(echo "$r" | sed -n 's/^served \([0-9]*\) ms.*/\1/p')
    [ -n "$ms" ] && [ "$ms" -le "$lim" ] && ok "$name: limit back: served after $ms ms" \
        || bad "$name: limit back: $r (limit $lim ms)"
    if [ -n "$ch" ]; then
        touch "$T/$name.stop"
        wait "$ch"
        case "$(cat "$T/$name.chatty")" in
        "ok "*) ok "$name: the chatty connection kept working ($(cat "$T/$name.chatty"))" ;;
        *) bad "$name: chatty connection: $(cat "$T/$name.chatty")" ;;
        esac
    fi
    stop
}
emfile_case emfile 0
emfile_case emfile_idle 1 --idle-timeout 30

# ---- 3. --idle-timeout ----
S=$T/idle.sock
start idle -c 4 --idle-timeout 1 "$S" -- cat
wait_listen "$S" || bad "idle: serve did not listen: $(cat "$T/idle.log")"
timeout 20 $PY "$T/cl.py" idle "$S" 8 10 "$T/idle.ready" >"$T/idle.out" &
IC=$!
PIDS+=($IC)
wait_file "$T/idle.ready" || bad "idle: the silent clients did not connect"
# the good client comes after the 8 silent ones (twice -c)
r=$(timeout 15 $PY "$T/cl.py" ask "$S" 5)
case "$r" in
"served "*) ok "idle: a good client $r while 8 silent clients held on" ;;
*) bad "idle: good client $r" ;;
esac
wait "$IC"
out=$(cat "$T/idle.out")
late=$(echo "$out" | tr ' ' '\n' | awk '$1 == "never" || $1 > 3 { n++ } END { print n + 0 }')
dropped=$(echo "$out" | tr ' ' '\n' | awk '$1 != "never" && $1 >= 0.5 { n++ } END { print n + 0 }')
[ "$late" = 0 ] && [ "$dropped" -ge 1 ] && ok "idle: every silent client saw EOF within 3 s ($out)" \
    || bad "idle: EOF times of the silent clients: $out"
n=$(grep -c 'nothing from the client for 1 s: connection shut down, SIGTERM sent' "$T/idle.log")
[ "$n" -ge 1 ] && [ "$n" = "$dropped" ] && ok "idle: $n drops logged" \
    || bad "idle: $n drop lines for $dropped dropped clients: $(cat "$T/idle.log")"
for _ in $(seq 200); do [ "$(nchildren "$SP")" = 0 ] && break; sleep 0.025; done
[ "$(nchildren "$SP")" = 0 ] && ok "idle: the programs of the dropped connections ended" \
    || bad "idle: children left: $(ps --ppid "$SP" -o pid=,stat=,args=)"
stop

# clients that keep talking are not idle, although cat reads every byte at
# once. Each client's lines are 1.2 s apart against --idle-timeout 2: one
# line the server fails to see is a drop (a server that watched the socket
# the program reads missed lines that cat had read first, under load or
# ASan most times); 0.8 s of margin for a slow machine otherwise.
S=$T/talk.sock
start talk --idle-timeout 2 "$S" -- cat
wait_listen "$S" || bad "talk: serve did not listen: $(cat "$T/talk.log")"
fd0=$(ls "/proc/$SP/fd" | wc -l)
r=$(timeout 40 $PY "$T/cl.py" talkers "$S" 4 8 1.2)
[ "$r" = "ok ok ok ok" ] && ok "idle: 4 clients sending a line every 1.2 s kept for 9.6 s" \
    || bad "idle: talking clients: $r ($(cat "$T/talk.log"))"
# the bytes pass through serve's forward intact, both ways (splice for bulk)
r=$(timeout 60 $PY "$T/cl.py" bulk "$S" 8)
set -- $r
[ $# = 4 ] && [ "$1" = "$3" ] && [ "$2" = 8388608 ] && [ "$4" = 8388608 ] \
    && ok "idle: 8 MiB through serve --idle-timeout -- cat and back, sha256 equal" \
    || bad "idle: bulk: $r"
set --
# every connection's fds are gone once it has ended (forward, pair, pipes)
fd1=""
for _ in $(seq 400); do
    fd1=$(ls "/proc/$SP/fd" | wc -l)
    [ "$fd1" = "$fd0" ] && [ "$(nchildren "$SP")" = 0 ] && break
    sleep 0.025
done
[ "$fd1" = "$fd0" ] && ok "idle: serve holds $fd1 fds after the connections, as before them" \
    || bad "idle: serve holds $fd1 fds after the connections, $fd0 before: $(ls -l "/proc/$SP/fd")"
stop

# seqpacket: the program gets a seqpacket pair; message boundaries are kept
S=$T/pkt.sock
start pkt --type seqpacket --idle-timeout 1 "$S" -- cat
wait_listen "$S" || bad "pkt: serve did not listen: $(cat "$T/pkt.log")"
fd0=$(ls "/proc/$SP/fd" | wc -l)
r=$(timeout 20 $PY "$T/cl.py" packets "$S")
[ "$r" = "ok 8" ] && ok "idle: seqpacket messages of 1 B to 100000 B came back whole" \
    || bad "idle: seqpacket: $r ($(cat "$T/pkt.log"))"
for _ in $(seq 400); do
    fd1=$(ls "/proc/$SP/fd" | wc -l)
    [ "$fd1" = "$fd0" ] && [ "$(nchildren "$SP")" = 0 ] && break
    sleep 0.025
done
[ "$fd1" = "$fd0" ] && ok "idle: seqpacket: serve holds $fd1 fds afterwards, as before" \
    || bad "idle: seqpacket: serve holds $fd1 fds afterwards, $fd0 before"
stop

# output of the program is not activity of the client
S=$T/out.sock
start out --idle-timeout 1 "$S" -- sh -c 'while echo tick; do sleep 0.2; done'
wait_listen "$S" || bad "out: serve did not listen"
r=$(timeout 15 $PY "$T/cl.py" silent "$S" 10)
t=${r% *}; got=${r#* }
[ "$t" != never ] && [ "$got" -gt 0 ] && awk -v t="$t" 'BEGIN { exit !(t >= 0.5 && t <= 4) }' \
    && ok "idle: a silent client reading output is dropped after $t s ($got bytes read)" \
    || bad "idle: silent reader: $r"
stop

# a program that ignores SIGTERM (and does not read) gets SIGKILL 5 s later
S=$T/kill.sock
start kill -v --idle-timeout 0.5 "$S" -- sh -c 'trap "" TERM; exec sleep 60'
wait_listen "$S" || bad "kill: serve did not listen"
r=$(timeout 15 $PY "$T/cl.py" silent "$S" 10)
[ "${r% *}" != never ] && ok "kill: client dropped after ${r% *} s" || bad "kill: client: $r"
for _ in $(seq 600); do grep -q 'killed by signal 9' "$T/kill.log" && break; sleep 0.025; done
grep -q 'still running 5 s after SIGTERM: SIGKILL sent' "$T/kill.log" && grep -q 'killed by signal 9' "$T/kill.log" \
    && ok "kill: SIGKILL 5 s after SIGTERM, child reaped" || bad "kill: $(cat "$T/kill.log")"
[ "$(nchildren "$SP")" = 0 ] && ok "kill: no child left" || bad "kill: children left"
stop

# usage
"$U" serve --idle-timeout 0 "$T/x.sock" -- true 2>"$T/u.log"
[ $? = 2 ] && grep -q "bad --idle-timeout '0'" "$T/u.log" && ok "--idle-timeout 0: exit 2" \
    || bad "--idle-timeout 0: $(cat "$T/u.log")"
"$U" serve --idle-timeout soon "$T/x.sock" -- true 2>/dev/null
[ $? = 2 ] && ok "--idle-timeout soon: exit 2" || bad "--idle-timeout soon"
"$U" serve --help | grep -q -- '--idle-timeout SEC' && "$U" serve --help | grep -q -- '-C N' \
    && ok "--help shows --idle-timeout and -C" || bad "--help"

exit $fail
