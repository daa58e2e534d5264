#!/bin/bash
# uds-test-timeout: 180
# udsock listen -k on the library's loop, acceptor and connections:
#  (a) out of fds (prlimit lowers listen's limit while clients keep
#      knocking): a connected chatty client keeps its full rate, listen does
#      not spin, and once the limit is back a new client is served at once;
#  (b) --idle-timeout 1 -c 10 with 20 silent clients: those over the limit
#      are closed at once, the others after about 1 s, and a good client is
#      served after them; with the default limit 1000 idle clients do not
#      stop accepting: the next client is closed at once, not left hanging;
#  (c) -c / -C: a client over a limit is closed at once and one line is
#      logged; a flood of them is logged at most 10 lines a second plus a
#      summary whose counts add up;
#  and: seqpacket (a message is the unit, each stdin chunk one message),
#  stdin from a regular file, backpressure from a client that does not
#  read, stdout failure, SIGTERM flushing a held partial line, usage.
. "$(dirname "$0")/io_common.bash"
need prlimit; need python3

now_ms() { echo $(( $(date +%s%N) / 1000000 )); }
# CPU ticks (utime + stime) of pid $1
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }
# the lowest fd number pid $1 does not use
lowest_free_fd() {
    local n=0
    while [ -e "/proc/$1/fd/$n" ]; do n=$((n + 1)); done
    echo $n
}
lines() { wc -l < "$1"; }

cat > "$T/peer.py" <<'EOF'
# Test peers for listen -k. Every mode ends by itself (bounded in time).
import os, select, socket, sys, time
mode, path = sys.argv[1], sys.argv[2]

def conn(sndbuf=0):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    if sndbuf:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, sndbuf)
    s.connect(path)
    return s

def eof_watch(socks, t0, limit, out):
    """Waits until each socket sees EOF; returns the times (s since t0)."""
    times = []
    while socks and time.monotonic() - t0 < limit:
        r, _, _ = select.select(socks, [], [], 0.05)
        for s in r:
            try:
                d = s.recv(65536)
            except OSError:
                d = b""
            if not d:
                times.append(time.monotonic() - t0)
                socks.remove(s)
                s.close()
    return times

if mode == "chatty":
    # short lines as fast as a minimal send buffer lets them go: only a few
    # are ever in flight, so the rate is the rate listen reads at
    s = conn(sndbuf=1)
    end = time.monotonic() + float(sys.argv[3])
    i = 0
    while time.monotonic() < end:
        s.sendall(b"chat-%09d\n" % i)
        i += 1
elif mode == "knock":
    # a new client every 50 ms; each is dropped once listen closes it
    end = time.monotonic() + float(sys.argv[3])
    socks, made = [], 0
    while time.monotonic() < end:
        try:
            socks.append(conn())
            made += 1
        except OSError:
            pass
        r, _, _ = select.select(socks, [], [], 0.05)
        for s in r:
            if not s.recv(1):
                socks.remove(s)
                s.close()
    print("knocked %d, %d still waiting" % (made, len(socks)))
elif mode == "silent":
    # n clients that never send; marks when all are connected, then prints
    # for each the seconds until it saw EOF
    n, mark, limit = int(sys.argv[3]), sys.argv[4], float(sys.argv[5])
    t0 = time.monotonic()
    socks = [conn() for _ in range(n)]
    open(mark, "w").close()
    times = eof_watch(list(socks), t0, limit, None)
    print(" ".join("%.3f" % t for t in sorted(times)))
elif mode == "hold":
    # n clients that stay connected (silent) until the file argv[4] appears
    import resource
    n, stop = int(sys.argv[3]), sys.argv[4]
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < n + 64 <= hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (n + 64, hard))
    socks = [conn() for _ in range(n)]
    end = time.monotonic() + 30
    while not os.path.exists(stop) and time.monotonic() < end:
        time.sleep(0.02)
elif mode == "refused":
    # n clients one after another; prints how many saw EOF within 2 s and
    # the slowest time
    n = int(sys.argv[3])
    worst, closed = 0.0, 0
    for _ in range(n):
        t0 = time.monotonic()
        s = conn()
        t = eof_watch([s], t0, 2.0, None)
        if t:
            closed += 1
            worst = max(worst, t[0])
    print("%d %.3f" % (closed, worst))
elif mode == "seq":
    # seqpacket client: sends its messages, then reports the sizes of the
    # messages it received until EOF (or 5 s)
    s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    s.connect(path)
    for m in sys.argv[4:]:
        s.send(m.encode())
    open(sys.argv[3], "w").close()
    got, end = [], time.monotonic() + 20
    s.settimeout(20)
    while time.monotonic() < end:
        try:
            m = s.recv(1 << 20)
        except OSError:
            break
        if not m:
            break
        got.append(m.decode())
        with open(sys.argv[3] + ".n", "w") as f:  # how many so far
            f.write("%d\n" % len(got))
    print(" ".join(got))
elif mode == "slow":
    # connects, reads nothing until the file argv[3] appears, then reads
    # everything until EOF and prints the byte count
    s = conn()
    open(sys.argv[4], "w").close()
    end = time.monotonic() + 60
    while not os.path.exists(sys.argv[3]) and time.monotonic() < end:
        time.sleep(0.02)
    n = 0
    s.settimeout(20)
    while True:
        try:
            d = s.recv(1 << 20)
        except OSError:
            break
        if not d:
            break
        n += len(d)
    print(n)
EOF
peer() { python3 "$T/peer.py" "$@"; }

# ---- (a) out of fds ------------------------------------------------------
S="$T/a.sock"
bg "$U" listen -k -v "$S" < /dev/null > "$T/a.out" 2> "$T/a.err"
lp=$LAST
wait_listen "$S"
bg timeout 60 python3 "$T/peer.py" chatty "$S" 40
chat=$LAST
wait_grep "$T/a.out" "chat-"
l0=$(lines "$T/a.out"); sleep 1; l1=$(lines "$T/a.out")
free_rate=$((l1 - l0))
soft=$(awk '/^Max open files/ { print $4 }' "/proc/$lp/limits")
low=$(lowest_free_fd "$lp")
prlimit --pid "$lp" --nofile="$low": || fail "prlimit"
bg timeout 60 python3 "$T/peer.py" knock "$S" 30
knock=$LAST
wait_grep "$T/a.err" "Too many open files"
# starved (clients keep knocking): the chatty client's lines keep coming
c0=$(cpu_ticks "$lp"); l0=$(lines "$T/a.out"); t0=$(now_ms)
sleep 1
l1=$(lines "$T/a.out"); t1=$(now_ms)
sleep 1
c1=$(cpu_ticks "$lp"); t2=$(now_ms)
rate=$(( (l1 - l0) * 1000 / (t1 - t0) ))
hz=$(getconf CLK_TCK)
cpu_chat=$(( (c1 - c0) * 100000 / hz / (t2 - t0) )) # per mille
[ "$rate" -ge 2000 ] ||
    fail "out of fds: the connected client got $rate lines/s (before the limit: $free_rate/s); $(tail -3 "$T/a.err")"
# still starved, the chatty client gone: listen must not spin
kill "$chat"; wait "$chat" 2>/dev/null
sleep 0.3
c0=$(cpu_ticks "$lp"); t0=$(now_ms)
sleep 2
c1=$(cpu_ticks "$lp"); t1=$(now_ms)
cpu_idle=$(( (c1 - c0) * 100000 / hz / (t1 - t0) ))
[ "$cpu_idle" -lt 50 ] || fail "out of fds: listen used $cpu_idle per mille CPU while starved and idle"
grep -q "one waiting client closed, pausing accepts for 100 ms" "$T/a.err" ||
    fail "out of fds: no pause reported: $(tail -3 "$T/a.err")"
kill "$knock"; wait "$knock" 2>/dev/null
# the limit back: a new client is served within 1 s
prlimit --pid "$lp" --nofile="$soft": || fail "prlimit back"
t0=$(now_ms)
echo "after-the-limit" | timeout 10 "$U" connect "$S" > /dev/null || fail "connect after the limit: $?"
wait_grep "$T/a.out" "after-the-limit"
el=$(( $(now_ms) - t0 ))
[ "$el" -lt 3000 ] || fail "out of fds: the client after the limit was served after $el ms (the pause is 100 ms)"
kill -0 "$lp" || fail "listen died"
ok "out of fds (soft limit $low): connected client at $rate lines/s (unstarved $free_rate/s), listen CPU $cpu_chat per mille with it, $cpu_idle per mille starved and idle; served $el ms after the limit was raised"
kill "$lp"; wait "$lp" 2>/dev/null

# ---- (b) --idle-timeout with -c ----------------------------------------
S="$T/b.sock"
bg "$U" listen -k -v -c 10 --idle-timeout 2 "$S" < /dev/null > "$T/b.out" 2> "$T/b.err"
lp=$LAST
wait_listen "$S"
bg timeout 30 bash -c "python3 $T/peer.py silent $S 20 $T/b.mark 12 > $T/b.times"
sp=$LAST
wait_grep "$T/b.err" "client #10 connected"
for i in $(seq 200); do [ -e "$T/b.mark" ] && break; sleep 0.025; done
[ -e "$T/b.mark" ] || fail "idle: the silent clients did not connect"
# a good client: refused while the slots are held, served once they are free
t0=$(now_ms); tries=0; served=""
while [ $(( $(now_ms) - t0 )) -lt 15000 ]; do
    tries=$((tries + 1))
    echo "good-$tries" | timeout 5 "$U" connect "$S" > /dev/null 2>&1
    if grep -q "^good-$tries\$" "$T/b.out"; then served=$(( $(now_ms) - t0 )); break; fi
    sleep 0.1
done
[ -n "$served" ] || fail "idle: the good client was never served: $(tail -3 "$T/b.err")"
wait "$sp"
read -r -a times < "$T/b.times"
[ "${#times[@]}" = 20 ] || fail "idle: ${#times[@]} of 20 silent clients saw EOF: ${times[*]}"
at_once=0; later=0
for t in "${times[@]}"; do
    ms=$(awk -v t="$t" 'BEGIN { printf "%d", t * 1000 }')
    # 2 s of idle time: "at once" and "after the timeout" stay apart even
    # when a loaded machine delays either by most of a second
    if [ "$ms" -lt 1500 ]; then at_once=$((at_once + 1))
    elif [ "$ms" -ge 1800 ] && [ "$ms" -lt 10000 ]; then later=$((later + 1)); fi
done
[ "$at_once" = 10 ] && [ "$later" = 10 ] ||
    fail "idle: EOF times ${times[*]} (want 10 at once, 10 after about 2 s)"
[ "$tries" -ge 2 ] || fail "idle: the good client was served at once (the slots were not held?)"
grep -q "client #1 sent nothing for 2 s: closing it" "$T/b.err" || fail "idle: no -v line"
ok "--idle-timeout 2 -c 10: silent clients closed at ${times[0]}..${times[19]} s (10 at once, 10 idle); good client served after $served ms (try $tries)"
kill "$lp"; wait "$lp" 2>/dev/null

# ---- (b2) the default limit: 1000 idle clients, the next one is closed
# at once (the old fixed table stopped accepting: it hung in the backlog)
S="$T/b2.sock"
bg "$U" listen -k -v "$S" < /dev/null > /dev/null 2> "$T/b2.err"
lp=$LAST
wait_listen "$S"
rm -f "$T/b2.stop"
bg timeout 60 python3 "$T/peer.py" hold "$S" 1000 "$T/b2.stop"
hp=$LAST
wait_grep "$T/b2.err" "client #1000 connected"
r=$(peer refused "$S" 1)
[ "${r%% *}" = 1 ] || fail "1000 idle clients: the next one was not closed within 2 s ($r)"
wait_grep "$T/b2.err" "1000 connections open (max_conns 1000)"
touch "$T/b2.stop"; wait "$hp"
for i in $(seq 400); do grep -q "client #1000 left" "$T/b2.err" && break; sleep 0.025; done
echo "after-the-1000" | timeout 10 "$U" connect "$S" > /dev/null || fail "connect after the 1000"
wait_grep "$T/b2.err" "client #1001 connected"
kill "$lp"; wait "$lp" 2>/dev/null
ok "default -c 1000: the 1001st client closed at once (${r#* } s) and logged; served again once they left"

# ---- (c) -c / -C: over a limit, closed at once, logged rate-limited -----
S="$T/c.sock"
bg "$U" listen -k -v -c 2 "$S" < /dev/null > "$T/c.out" 2> "$T/c.err"
lp=$LAST
wait_listen "$S"
bg timeout 40 python3 "$T/peer.py" hold "$S" 2 "$T/c.stop"
hp=$LAST
wait_grep "$T/c.err" "client #2 connected"
r=$(peer refused "$S" 1)
[ "${r%% *}" = 1 ] || fail "-c 2: the third client was not closed ($r)"
wait_grep "$T/c.err" "refused connection #3"
n=$(grep -c "refused connection" "$T/c.err")
[ "$n" = 1 ] || fail "-c 2: $n refusal lines for one client"
grep -q "^udsock: listen: refused connection #3 from pid [0-9]* uid $(id -u): 2 connections open (max_conns 2)\$" "$T/c.err" ||
    fail "-c 2: refusal line: $(grep refused "$T/c.err")"
r=$(peer refused "$S" 40)
[ "${r%% *}" = 40 ] || fail "-c 2: of 40 clients over the limit only ${r%% *} were closed"
wait_grep "$T/c.err" "more connections refused in the last second"
logged=$(grep -c "refused connection" "$T/c.err")
summed=$(grep -o "[0-9]* more connections refused" "$T/c.err" | awk '{ s += $1 } END { print s + 0 }')
[ $((logged + summed)) = 41 ] || fail "-c 2: $logged lines + $summed summarised != 41 refusals"
[ "$logged" -le 30 ] || fail "-c 2: $logged refusal lines for 41 clients (not rate-limited)"
touch "$T/c.stop"; wait "$hp"
kill "$lp"; wait "$lp" 2>/dev/null
ok "-c 2: over-limit clients closed at once (slowest ${r#* } s); $logged lines + $summed summarised for 41 refusals"

S="$T/c2.sock"
bg "$U" listen -k -v -C 1 "$S" < /dev/null > /dev/null 2> "$T/c2.err"
lp=$LAST
wait_listen "$S"
rm -f "$T/c.stop"
bg timeout 40 python3 "$T/peer.py" hold "$S" 1 "$T/c.stop"
hp=$LAST
wait_grep "$T/c2.err" "client #1 connected"
r=$(peer refused "$S" 1)
[ "${r%% *}" = 1 ] || fail "-C 1: the second client of uid $(id -u) was not closed ($r)"
wait_grep "$T/c2.err" "uid $(id -u) has 1 connections open (max_conns_per_uid 1)"
touch "$T/c.stop"; wait "$hp"
kill "$lp"; wait "$lp" 2>/dev/null
ok "-C 1: a second client of the same uid is closed and logged"

# ---- seqpacket: messages whole, each stdin chunk one message ----------
S="$T/p.sock"
mkfifo "$T/p.in"
bg bash -c "exec $U listen -k -v --type seqpacket $S < $T/p.in > $T/p.out 2> $T/p.err"
lp=$LAST
exec 3> "$T/p.in"
wait_listen "$S"
bg bash -c "python3 $T/peer.py seq $S $T/p.m1 one two > $T/p.got1"
q1=$LAST
bg bash -c "python3 $T/peer.py seq $S $T/p.m2 three > $T/p.got2"
q2=$LAST
wait_grep "$T/p.err" "client #2 connected"
for i in $(seq 200); do [ -e "$T/p.m1" ] && [ -e "$T/p.m2" ] && break; sleep 0.025; done
printf 'to-all' >&3
# two chunks, two messages (a pipe read takes what is there): the second is
# written once both clients have the first
got_n() { [ "$(cat "$T/p.m1.n" 2>/dev/null)" = "$1" ] && [ "$(cat "$T/p.m2.n" 2>/dev/null)" = "$1" ]; }
poll_until got_n 1 || fail "seqpacket broadcast: the first message did not reach both clients"
printf 'again' >&3
exec 3>&-
wait "$q1"; wait "$q2"
[ "$(cat "$T/p.got1")" = "to-all again" ] && [ "$(cat "$T/p.got2")" = "to-all again" ] ||
    fail "seqpacket broadcast: '$(cat "$T/p.got1")' / '$(cat "$T/p.got2")'"
out=$(cat "$T/p.out")
case "$out" in onetwothree | onethreetwo | threeonetwo) ;; *) fail "seqpacket -k output '$out'" ;; esac
kill "$lp"; wait "$lp" 2>/dev/null
ok "-k --type seqpacket: messages to stdout, two stdin chunks = two messages to each client"

# ---- stdin a regular file (cannot be watched by epoll) ----------------
S="$T/f.sock"
head -c 3000000 /dev/urandom > "$T/f.data"
"$U" listen -k "$S" < "$T/f.data" > /dev/null & # (bg would give it /dev/null)
lp=$!; PIDS+=($lp)
wait_listen "$S"
mkfifo "$T/f.in" # the client's stdin, open until it has everything
exec {FIN}<>"$T/f.in"
timeout 20 "$U" connect "$S" < "$T/f.in" {FIN}>&- > "$T/f.got" &
cp=$!
for i in $(seq 800); do [ "$(stat -c %s "$T/f.got")" -ge 3000000 ] && break; sleep 0.025; done
kill "$lp"; wait "$lp" 2>/dev/null; wait "$cp"
exec {FIN}>&-
cmp -s "$T/f.data" "$T/f.got" || fail "-k < file: client got $(stat -c %s "$T/f.got") bytes"
ok "-k with stdin a regular file: broadcast byte-exact"

# ---- backpressure: stdin waits for a client that does not read ---------
S="$T/w.sock"
head -c 67108864 /dev/zero > "$T/w.data"
bg bash -c "exec $U listen -k -v $S < $T/w.data > /dev/null 2> $T/w.err"
lp=$LAST
wait_listen "$S"
rm -f "$T/w.go" "$T/w.c1"
bg bash -c "python3 $T/peer.py slow $S $T/w.go $T/w.c1 > $T/w.slow"
sl=$LAST
for i in $(seq 200); do [ -e "$T/w.c1" ] && break; sleep 0.025; done
wait_grep "$T/w.err" "client #1 connected"
# listen reads stdin only until the slow client's queue passes high water
for i in $(seq 40); do
    pos=$(awk '/^pos:/ { print $2 }' "/proc/$lp/fdinfo/0")
    sleep 0.05
    [ "$pos" = "$(awk '/^pos:/ { print $2 }' "/proc/$lp/fdinfo/0")" ] && break
done
[ "$pos" -lt 33554432 ] || fail "backpressure: listen read $pos bytes of stdin for a client that reads nothing"
touch "$T/w.go"
for i in $(seq 400); do
    [ "$(awk '/^pos:/ { print $2 }' "/proc/$lp/fdinfo/0")" = 67108864 ] && break
    sleep 0.025
done
sleep 0.5
kill "$lp"; wait "$lp" 2>/dev/null
wait "$sl"
[ "$(cat "$T/w.slow")" = 67108864 ] || fail "backpressure: slow client got $(cat "$T/w.slow") bytes"
! grep -q dropped "$T/w.err" || fail "backpressure: $(grep dropped "$T/w.err")"
ok "backpressure: stdin paused at $pos bytes while the client did not read; all 64 MiB delivered after"

# ---- stdout failure: socket removed, status 1 ----------------------------
S="$T/o.sock"
"$U" listen -k "$S" < /dev/null > /dev/full 2> "$T/o.err" &
lp=$!; PIDS+=($lp)
wait_listen "$S"
echo "into-full" | timeout 5 "$U" connect "$S" > /dev/null 2>&1
wait "$lp"; rc=$?
[ "$rc" = 1 ] || fail "stdout /dev/full: status $rc"
[ ! -e "$S" ] || fail "stdout /dev/full: socket file left"
grep -q "^udsock: write stdout: No space left on device" "$T/o.err" || fail "stdout failure: $(cat "$T/o.err")"
ok "stdout failure: exit 1, socket file removed"

# ---- SIGTERM: a held partial line is written, socket removed -----------
S="$T/t.sock"
"$U" listen -k -v "$S" < /dev/null > "$T/t.out" 2> "$T/t.err" &
lp=$!; PIDS+=($lp)
wait_listen "$S"
# the client's stdin: a FIFO this shell holds; listen has read everything
# once its end of the connection has nothing queued (ss: Recv-Q 0) and the
# FIFO is empty (FIONREAD)
mkfifo "$T/t.in"
exec {TIN}<>"$T/t.in"
timeout 10 "$U" connect "$S" < "$T/t.in" {TIN}>&- > /dev/null &
cp=$!
printf 'whole line\npartial-no-newline' >&$TIN
wait_grep "$T/t.out" "whole line"
all_read() {
    python3 -c 'import fcntl, struct, sys, termios
print(struct.unpack("i", fcntl.ioctl(int(sys.argv[1]), termios.FIONREAD, b"\0" * 4))[0])' "$TIN" | grep -qx 0 &&
        [ "$(ss -xH src "$S" | awk '$2 == "ESTAB" && $3 == 0' | wc -l)" = 1 ]
}
poll_until all_read || fail "SIGTERM: listen did not read the partial line: $(ss -xH src "$S")"
kill -TERM "$lp"; wait "$lp"; rc=$?
[ "$rc" = 143 ] || fail "SIGTERM: status $rc"
[ "$(cat "$T/t.out")" = "$(printf 'whole line\npartial-no-newline')" ] || fail "SIGTERM: stdout '$(cat "$T/t.out")'"
[ ! -e "$S" ] || fail "SIGTERM: socket file left"
wait "$cp"
exec {TIN}>&-
ok "SIGTERM: held partial line written, socket file removed, status 143"

# ---- usage and --help -----------------------------------------------------
for bad in "-c 5" "-i x" "-C 2" "-k -c 0" "-k -c x" "-k --idle-timeout x"; do
    err=$(timeout 5 "$U" listen $bad "$T/u.sock" 2>&1 < /dev/null); rc=$?
    [ $rc = 2 ] || fail "listen $bad: status $rc ($err)"
done
err=$(timeout 5 "$U" listen -k -C 1 tcp:127.0.0.1:1 2>&1 < /dev/null); rc=$?
[ $rc = 2 ] && [[ "$err" == *"--max-per-uid needs a unix address"* ]] || fail "-C with tcp: $rc $err"
[ ! -e "$T/u.sock" ] || fail "a usage error created the socket"
h=$("$U" listen --help)
for want in "default 1000" "--idle-timeout SEC" "(default: never)" "--max-per-uid"; do
    grep -qF -- "$want" <<< "$h" || fail "--help lacks '$want'"
done
ok "usage errors exit 2; --help documents -c/-C/--idle-timeout and their defaults"
echo "all passed"
