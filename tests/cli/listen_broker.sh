#!/bin/bash
# uds-test-timeout: 180
# udsock listen --broker / --chat (issue 10: ncat --broker/--chat), with
# real peers (socat, OpenBSD nc -U, python sockets: broker_peer.py):
#  (a) --broker without -k (it implies -k, as in ncat): what A (socat) sends
#      reaches B (nc -U) and C (python), never A (and so for B and C); stdin
#      reaches all three; C's partial line is held until its newline, so B's
#      line sent in between stays whole at A; a line cut by C's EOF is
#      ended before another sender's line; nothing goes to stdout;
#  (b) two senders (socat, nc) with lines of random length split across
#      writes: at C no line is mixed and each sender's lines come in order;
#  (c) -k --broker: a client that never reads (python, SO_RCVBUF 4096) is
#      cut off once over the cap, with one log line naming it; what it got
#      is a gap-free prefix (cut short at the end at most); a fast pair (python) goes
#      on sending, and B gets every later line; the broker's RSS stays
#      bounded (96 MiB went through; the cap is 1 MiB);
#  (d) --chat: "<userN> " prefixes, the line escaped through uds_escape (a
#      terminal escape arrives as text), join/leave announcements;
#  (e) TCP port 0; usage: --broker with --type dgram / udp:, --max-queue
#      without --broker or below 512k: exit status 2.
. "$(dirname "$0")/io_common.bash"
need socat; need nc; need python3
PEER="$(dirname "$0")/broker_peer.py"
[ -f "$PEER" ] || fail "no $PEER"

# ---- (a) one sender reaches every other client ----------------------------
S="$T/a.sock"
mkfifo "$T/a.stdin" "$T/a.in" "$T/b.in" "$T/c.in"
exec {BIN}<>"$T/a.stdin"
"$U" listen --broker -v "$S" < "$T/a.stdin" {BIN}>&- > "$T/a.out" 2> "$T/a.err" &
lp=$!; PIDS+=($lp)
wait_listen "$S" "$lp"
exec {AIN}<>"$T/a.in" {BBIN}<>"$T/b.in" {CIN}<>"$T/c.in"
socat - "UNIX-CONNECT:$S" < "$T/a.in" > "$T/a.got" {BIN}>&- {AIN}>&- {BBIN}>&- {CIN}>&- &
ap=$!; PIDS+=($ap)
wait_grep "$T/a.err" "client #1 connected"
nc -N -U "$S" < "$T/b.in" > "$T/b.got" {BIN}>&- {AIN}>&- {BBIN}>&- {CIN}>&- &
bp=$!; PIDS+=($bp)
wait_grep "$T/a.err" "client #2 connected"
python3 "$PEER" recv "$S" "$T/c.got" "$T/c.mark" < "$T/c.in" {BIN}>&- {AIN}>&- {BBIN}>&- {CIN}>&- &
cp=$!; PIDS+=($cp)
wait_grep "$T/a.err" "client #3 connected"
echo "from-A" >&$AIN
wait_grep "$T/b.got" "from-A"
wait_grep "$T/c.got" "from-A"
echo "from-B" >&$BBIN
wait_grep "$T/a.got" "from-B"
wait_grep "$T/c.got" "from-B"
echo "from-stdin" >&$BIN
for f in a b c; do wait_grep "$T/$f.got" "from-stdin"; done
# C's partial line is held: B's line, sent after it, arrives whole, and
# C's line later in one piece. The broker has read the partial line once
# C's send has returned (the bytes are then in the broker's receive queue)
# and no socket of the broker has unread bytes (ss: Recv-Q 0)
printf 'partial-C-' >&$CIN
sent10() { [ "$(cat "$T/c.got.sent" 2>/dev/null)" = 10 ]; }
poll_until sent10 || fail "(a) C did not send its partial line"
held() { [ "$(ss -xnp | awk -v p="pid=$lp," 'index($0, p) && $3 != 0' | wc -l)" = 0 ]; }
poll_until held || fail "(a) the broker did not read C's partial line: $(ss -xnp | grep "pid=$lp,")"
echo "from-B2" >&$BBIN
wait_grep "$T/a.got" "from-B2"
wait_grep "$T/c.got" "from-B2"
echo "rest-C" >&$CIN
wait_grep "$T/a.got" "partial-C-rest-C"
wait_grep "$T/b.got" "partial-C-rest-C"
# C leaves inside a line: its "cut-" goes out at its EOF, and the next
# line from another sender starts on a line of its own
printf 'cut-' >&$CIN
sent21() { [ "$(cat "$T/c.got.sent" 2>/dev/null)" = 21 ]; }
poll_until sent21 || fail "(a) C did not send 'cut-'"
exec {CIN}>&-
wait "$cp"
wait_grep "$T/a.err" "client #3 left"
echo "after-cut" >&$BIN
wait_grep "$T/a.got" "after-cut"
wait_grep "$T/b.got" "after-cut"
exec {BBIN}>&-
wait "$bp"
[ "$(cat "$T/a.got")" = $'from-B\nfrom-stdin\nfrom-B2\npartial-C-rest-C\ncut-\nafter-cut' ] || fail "(a) A got: $(cat -A "$T/a.got")"
[ "$(cat "$T/b.got")" = $'from-A\nfrom-stdin\npartial-C-rest-C\ncut-\nafter-cut' ] || fail "(a) B got: $(cat -A "$T/b.got")"
[ "$(cat "$T/c.got")" = $'from-A\nfrom-B\nfrom-stdin\nfrom-B2' ] || fail "(a) C got: $(cat -A "$T/c.got")"
[ ! -s "$T/a.out" ] || fail "(a) the broker wrote to stdout: $(head -c 200 "$T/a.out")"
kill "$lp"; wait "$lp" 2>/dev/null
exec {AIN}>&- {BIN}>&-
ok "--broker (no -k): each of socat, nc, python reaches the other two and never itself; stdin reaches all; a held partial line stays whole, B's line in between too; a line cut by EOF is ended before the next sender's; stdout untouched"

# ---- (b) two senders: no line mixed ---------------------------------------
S="$T/b.sock"
python3 - "$T/sa.txt" A 0 "$T/sb.txt" B 1 <<'PY'
import random, sys
args = sys.argv[1:]
for k in range(0, len(args), 3):
    path, who, seed = args[k], args[k + 1], int(args[k + 2])
    r = random.Random(seed)
    with open(path, "w") as f:
        for i in range(1500):
            n = r.choice([0, 1, 10, 100, 700, 3000, 9000])
            f.write("%s %d %d %s\n" % (who, i, n, "y" * n))
PY
mkfifo "$T/b.stdin" "$T/r.in"
exec {BIN}<>"$T/b.stdin" {RIN}<>"$T/r.in"
# two senders fed from files outrun any one reader: a cap above the 5.4 MB
# they send keeps C connected (the cap is what (c) tests)
"$U" listen -k --broker --max-queue 64M -v "$S" < "$T/b.stdin" {BIN}>&- {RIN}>&- > /dev/null 2> "$T/b.err" &
lp=$!; PIDS+=($lp)
wait_listen "$S" "$lp"
python3 "$PEER" lines "$S" "$T/r.got" "$T/r.mark" < "$T/r.in" {BIN}>&- {RIN}>&- > "$T/r.res" &
rp=$!; PIDS+=($rp)
wait_grep "$T/b.err" "client #1 connected"
# both senders read what the other sends (it goes to /dev/null); each ends
# at EOF of its file, which closes its connection
timeout 60 socat -t 5 STDIO "UNIX-CONNECT:$S" < "$T/sa.txt" > /dev/null {BIN}>&- {RIN}>&- &
s1=$!
timeout 60 nc -N -U "$S" < "$T/sb.txt" > /dev/null {BIN}>&- {RIN}>&- &
s2=$!
wait "$s1" || fail "(b) socat sender: status $?"
wait "$s2" || fail "(b) nc sender: status $?"
want=$(( $(stat -c %s "$T/sa.txt") + $(stat -c %s "$T/sb.txt") ))
got_all() { [ "$(stat -c %s "$T/r.got")" -ge "$want" ]; }
poll_until got_all || fail "(b) C got $(stat -c %s "$T/r.got") of $want bytes: $(tail -3 "$T/b.err")"
exec {RIN}>&-
wait "$rp"
[ "$(cat "$T/r.res")" = "lines 3000 1500/1500 bad 0" ] || fail "(b) C: $(cat "$T/r.res")"
cmp -s <(grep '^A' "$T/r.got") "$T/sa.txt" || fail "(b) A's lines differ at C"
cmp -s <(grep '^B' "$T/r.got") "$T/sb.txt" || fail "(b) B's lines differ at C"
! grep -q dropped "$T/b.err" || fail "(b) $(grep dropped "$T/b.err")"
kill "$lp"; wait "$lp" 2>/dev/null
exec {BIN}>&-
ok "two senders (socat, nc; lines of 0..9000 bytes): C got all 3000 lines, none mixed, each sender's in order"

# ---- (c) a client that never reads is cut off; the others go on -----------
S="$T/c.sock"
mkfifo "$T/c.stdin" "$T/k.in" "$T/p.in"
exec {BIN}<>"$T/c.stdin" {KIN}<>"$T/k.in" {PIN}<>"$T/p.in"
# ASan keeps freed memory in quarantine (256 MiB by default): keep it small
# so that RSS tells what the broker holds
ASAN_OPTIONS="${ASAN_OPTIONS:-}:quarantine_size_mb=8" \
    "$U" listen -k --broker -v "$S" < "$T/c.stdin" {BIN}>&- {KIN}>&- {PIN}>&- > /dev/null 2> "$T/c.err" &
lp=$!; PIDS+=($lp)
wait_listen "$S" "$lp"
rss() { awk '/^VmRSS:/ { print $2 }' "/proc/$lp/status"; }
rss0=$(rss)
python3 "$PEER" sink "$S" "$T/k.mark" < "$T/k.in" {BIN}>&- {KIN}>&- {PIN}>&- > "$T/k.res" &
kp=$!; PIDS+=($kp)
wait_grep "$T/c.err" "client #1 connected"
kpid_line=$(grep "client #1 connected" "$T/c.err")
python3 "$PEER" pair "$S" "$T/c.go" "$T/p.rep" 8 96 < "$T/p.in" {BIN}>&- {KIN}>&- {PIN}>&- 2> "$T/p.err" &
pp=$!; PIDS+=($pp)
wait_grep "$T/p.rep" "phase1"
# 8 MiB have gone from A to B; the sink is over the cap (1 MiB queue plus
# the kernel's buffers) and has been dropped
wait_grep "$T/c.err" "dropped"
n=$(grep -c "dropped" "$T/c.err")
[ "$n" = 1 ] || fail "(c) $n drop lines: $(grep dropped "$T/c.err")"
grep -q "^udsock: listen: client #1 (uid [0-9]* gid [0-9]* pid $kp) dropped: more than 1048576 bytes queued for it (it does not read)\$" "$T/c.err" ||
    fail "(c) drop line: $(grep dropped "$T/c.err") (client: $kpid_line)"
touch "$T/c.go"
wait_grep "$T/p.rep" "done"
kill -0 "$pp" 2>/dev/null || fail "(c) the pair ended early: $(cat "$T/p.err")"
rss1=$(rss)
exec {PIN}>&-
wait "$pp" || fail "(c) pair: $(cat "$T/p.err")"
[ "$(sed -n 2p "$T/p.rep")" = "done 98304" ] || fail "(c) pair report: $(cat "$T/p.rep")"
exec {KIN}>&-
wait "$kp"
read -r what lines eof < "$T/k.res"
[ "$what" = prefix ] && [ "$eof" = eof ] || fail "(c) the slow client got: $(cat "$T/k.res")"
[ "$lines" -ge 1 ] && [ "$lines" -lt 8192 ] || fail "(c) the slow client got $lines lines before the cut"
! grep -q "client #[23].*dropped" "$T/c.err" || fail "(c) a fast client was dropped"
grow=$(( (rss1 - rss0) / 1024 ))
bound=32; is_asan && bound=80
[ "$grow" -lt "$bound" ] || fail "(c) RSS grew by $grow MiB (from $((rss0 / 1024)) MiB) for a 1 MiB cap"
kill "$lp"; wait "$lp" 2>/dev/null
exec {BIN}>&-
ok "a client that never reads: dropped once (logged), got a gap-free prefix ($lines lines) then EOF; B got all 98304 lines (96 MiB) with no stall; RSS grew $grow MiB (bound $bound)"

# ---- (d) --chat: names, escaping, announcements ---------------------------
S="$T/d.sock"
mkfifo "$T/d.stdin" "$T/d1.in" "$T/d2.in"
exec {BIN}<>"$T/d.stdin" {D1}<>"$T/d1.in" {D2}<>"$T/d2.in"
"$U" listen --chat -v "$S" < "$T/d.stdin" {BIN}>&- {D1}>&- {D2}>&- > "$T/d.out" 2> "$T/d.err" &
lp=$!; PIDS+=($lp)
wait_listen "$S" "$lp"
socat - "UNIX-CONNECT:$S" < "$T/d1.in" > "$T/d1.got" {BIN}>&- {D1}>&- {D2}>&- &
d1=$!; PIDS+=($d1)
wait_grep "$T/d1.got" "you are <user1>; nobody else is here"
python3 "$PEER" recv "$S" "$T/d2.got" "$T/d2.mark" < "$T/d2.in" {BIN}>&- {D1}>&- {D2}>&- &
d2=$!; PIDS+=($d2)
wait_grep "$T/d2.got" "you are <user2>; also here: <user1>"
wait_grep "$T/d1.got" "<announce> <user2> connected (uid "
printf 'hi \033]0;owned\007\033[2J\\ end\r\n' >&$D1
wait_grep "$T/d2.got" "<user1> hi"
echo "operator" >&$BIN
wait_grep "$T/d1.got" "<user0> operator"
wait_grep "$T/d2.got" "<user0> operator"
exec {D2}>&-
wait "$d2"
wait_grep "$T/d1.got" "<announce> <user2> left"
exec {D1}>&-
wait "$d1"
want2=$(printf '%s\n' '<announce> you are <user2>; also here: <user1>' '<user1> hi \x1b]0;owned\x07\x1b[2J\\ end' '<user0> operator')
[ "$(cat "$T/d2.got")" = "$want2" ] || fail "(d) user2 got: $(cat -A "$T/d2.got")"
! grep -q $'\033' "$T/d2.got" || fail "(d) an escape byte reached user2"
! grep -q "<user1> hi" "$T/d1.got" || fail "(d) user1 got its own line back"
[ ! -s "$T/d.out" ] || fail "(d) --chat wrote to stdout"
kill "$lp"; wait "$lp" 2>/dev/null
exec {BIN}>&-
ok "--chat: <userN> prefixes, a terminal escape arrives as \\x1b text (CR dropped), stdin is <user0>, joins and leaves announced"

# ---- (e) TCP, port 0 ----------------------------------------------------------
mkfifo "$T/e.stdin"
exec {BIN}<>"$T/e.stdin"
"$U" listen --broker tcp:127.0.0.1:0 < "$T/e.stdin" {BIN}>&- > /dev/null 2> "$T/e.err" &
lp=$!; PIDS+=($lp)
wait_grep "$T/e.err" "listening on tcp:127.0.0.1:"
port=$(sed -n 's/.*listening on tcp:127.0.0.1:\([0-9]*\).*/\1/p' "$T/e.err")
wait_listen "tcp:127.0.0.1:$port" "$lp"
mkfifo "$T/e1.in"
exec {E1}<>"$T/e1.in"
python3 "$PEER" recv "tcp:127.0.0.1:$port" "$T/e1.got" "$T/e1.mark" < "$T/e1.in" {BIN}>&- {E1}>&- &
e1=$!; PIDS+=($e1)
for i in $(seq 400); do [ -e "$T/e1.mark" ] && break; sleep 0.025; done
# the broker has admitted the python client once it holds two sockets of
# this port (listener and the accepted one)
admitted() { [ "$(ss -tnp state established "( sport = :$port )" | grep -c "pid=$lp,")" = 1 ]; }
poll_until admitted || fail "(e) the broker did not accept the python client"
echo "over-tcp" | timeout 10 socat -t 1 - "TCP:127.0.0.1:$port" > /dev/null
wait_grep "$T/e1.got" "over-tcp"
exec {E1}>&-
wait "$e1"
kill "$lp"; wait "$lp" 2>/dev/null
exec {BIN}>&-
ok "--broker on tcp:127.0.0.1:0: port said, socat's line reached the python client"

# ---- (e) usage ----------------------------------------------------------------
usage() {
    local rc
    "$U" listen "$@" > /dev/null 2> "$T/u.err" < /dev/null; rc=$?
    [ "$rc" = 2 ] || fail "listen $*: status $rc (want 2): $(cat "$T/u.err")"
}
usage --broker --type dgram "$T/u1.sock"
grep -q "datagrams have none" "$T/u.err" || fail "--broker dgram: $(cat "$T/u.err")"
usage --chat "udp:127.0.0.1:0"
usage --max-queue 2M "$T/u2.sock"
grep -q "goes with --broker" "$T/u.err" || fail "--max-queue alone: $(cat "$T/u.err")"
usage -k --max-queue 2M "$T/u3.sock"
usage --broker --max-queue 100k "$T/u4.sock"
grep -q "at least 512k" "$T/u.err" || fail "--max-queue 100k: $(cat "$T/u.err")"
usage --broker --max-queue lots "$T/u5.sock"
[ ! -e "$T/u1.sock" ] && [ ! -e "$T/u2.sock" ] || fail "a usage error left a socket file"
"$U" listen --help | grep -q -- "--max-queue BYTES" || fail "--help lacks --max-queue"
ok "usage: --broker/--chat with datagrams, --max-queue without --broker, below 512k or not a size: status 2"
