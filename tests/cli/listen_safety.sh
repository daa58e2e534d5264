#!/bin/bash
# uds-test-timeout: 90
# udsock listen/recv and what is already at the path: a regular file is
# refused and left unchanged, a live server is not taken over, a stale
# socket is replaced; the socket file is removed on SIGTERM/SIGINT;
# --mode/--owner/--group; -k with several clients at once (whole lines,
# stdin broadcast); usage errors exit 2.
. "$(dirname "$0")/io_common.bash"
need socat

# a regular file at the path: refused, unchanged (content and inode)
F="$T/file.sock"
echo "precious data" > "$F"
before="$(sha "$F") $(stat -c %i "$F")"
for cmd in listen recv; do
    err=$(timeout 5 "$U" $cmd "$F" 2>&1 < /dev/null); rc=$?
    op=$cmd; [ $cmd = recv ] && op=bind
    [ $rc = 1 ] || fail "$cmd on a regular file: rc $rc"
    [ "$err" = "udsock: $op $F: exists and is not a socket: it is a regular file; refusing to remove it" ] || fail "message: $err"
    [ "$(sha "$F") $(stat -c %i "$F")" = "$before" ] || fail "$cmd changed the regular file"
done
ok "regular file refused and unchanged: $err"

# a live server (socat) is not taken over
L="$T/live.sock"
bg timeout 20 socat -u UNIX-LISTEN:"$L",fork OPEN:"$T/socat-got",creat,append
wait_listen "$L" "$LAST"
ino=$(stat -c %i "$L")
err=$(timeout 5 "$U" listen "$L" 2>&1 < /dev/null); rc=$?
[ $rc = 1 ] && [ "$err" = "udsock: listen $L: Address already in use (a server is running there; not taking it over)" ] ||
    fail "live server: rc $rc '$err'"
[ "$(stat -c %i "$L")" = "$ino" ] || fail "live server's socket file was replaced"
echo still-socat | timeout 5 "$U" connect "$L" || fail "connect to socat after refusal"
for i in $(seq 100); do [ -s "$T/socat-got" ] && break; sleep 0.02; done
[ "$(cat "$T/socat-got")" = still-socat ] || fail "socat no longer reachable"
ok "live server not taken over: $err"
kill $LAST

# a stale socket file (its server was killed with SIGKILL) is replaced
Z="$T/stale.sock"
"$U" listen "$Z" < /dev/null > /dev/null &
zp=$!; PIDS+=($zp)
wait_listen "$Z" "$zp"
kill -KILL $zp; wait $zp 2>/dev/null
[ -S "$Z" ] || fail "SIGKILL should leave the file behind"
bg timeout 10 bash -c "$U listen $Z < /dev/null > $T/stale-got"
spid=$LAST
# the killed server's socket is gone (waited for): a listener there is the new one
wait_listen "$Z" "$spid"
echo reused | timeout 5 "$U" connect --wait 3 "$Z" || fail "connect to the replaced stale socket"
wait "$spid"
[ "$(cat "$T/stale-got")" = reused ] || fail "stale replacement got '$(cat "$T/stale-got")'"
ok "stale socket file replaced"

# SIGTERM / SIGINT: the socket file is removed, the status says which signal
for sig in TERM INT HUP; do
    S="$T/sig-$sig.sock"
    "$U" listen "$S" < /dev/null > /dev/null &
    p=$!; PIDS+=($p)
    wait_listen "$S" "$p"
    kill -$sig $p
    wait $p; rc=$?
    wait_gone "$S" || fail "SIG$sig: socket file left behind"
    [ $rc = $((128 + $(kill -l $sig))) ] || fail "SIG$sig: status $rc"
done
ok "SIGTERM/SIGINT/SIGHUP while waiting: file removed, status 128+signo"
S="$T/sig-k.sock"
"$U" listen -k -v "$S" < /dev/null > /dev/null 2> "$T/sig-k.err" &
p=$!; PIDS+=($p)
wait_listen "$S" "$p"
# the client's stdin stays open (a FIFO we hold) until it has ended: part
# of the test (a sleep there raced the machine's load)
mkfifo "$T/sig-k.in"
exec {KIN}<>"$T/sig-k.in"
timeout 10 "$U" connect "$S" < "$T/sig-k.in" {KIN}>&- > /dev/null &
c=$!
wait_grep "$T/sig-k.err" "client #1 connected"
kill -TERM $p; wait $p; rc=$?
wait_gone "$S" || fail "-k SIGTERM: socket file left behind"
[ $rc = 143 ] || fail "-k SIGTERM status $rc"
wait $c || fail "client of a terminated listen -k: status $?"
exec {KIN}>&-
ok "SIGTERM with a client connected (-k): file removed; the client ends cleanly"
"$U" recv "$T/sig-r.sock" > /dev/null &
p=$!; PIDS+=($p)
wait_bound "$T/sig-r.sock" "$p"
kill -TERM $p; wait $p
wait_gone "$T/sig-r.sock" || fail "recv SIGTERM: socket file left behind"
ok "recv: SIGTERM removes the socket file"

# --mode (and as root --owner/--group) applied before anyone can connect
M="$T/mode.sock"
if [ "$(id -u)" = 0 ]; then
    "$U" listen --mode 0640 --owner nobody --group nogroup "$M" < /dev/null > /dev/null &
    want="640 nobody nogroup"
else
    "$U" listen --mode 0640 "$M" < /dev/null > /dev/null &
    want="640 $(id -un) $(id -gn)"
fi
p=$!; PIDS+=($p)
wait_listen "$M" "$p"
[ "$(stat -c '%a %U %G' "$M")" = "$want" ] || fail "mode/owner: $(stat -c '%a %U %G' "$M") (want $want)"
kill $p; wait $p
ok "--mode 0640 (--owner/--group as root): $want"

# -k: four clients at once, long lines that arrive in pieces: every output
# line is whole, every client's lines are all there and in order.
K="$T/k.sock"
bg timeout 30 bash -c "$U listen -k $K < /dev/null > $T/k.out"
kp=$LAST
wait_listen "$K" "$kp"
gen() { # client number: 300 lines of 3000+ bytes; stdio's 4 KiB writes cut
        # most lines in two, so they reach udsock in pieces
    awk -v c="$1" 'BEGIN { pad = sprintf("%3000s", ""); gsub(/ /, c, pad);
        for (j = 1; j <= 300; j++) printf "c%d-%03d-%s\n", c, j, pad }'
}
cps=()
for i in 1 2 3 4; do
    gen $i | timeout 20 "$U" connect "$K" > /dev/null &
    cps+=($!)
done
for c in "${cps[@]}"; do wait $c || fail "-k client status"; done
# listen -k has written out everything its clients sent
k_done() { [ "$(wc -l < "$T/k.out")" -ge 1200 ]; }
poll_until k_done
kill $kp; wait $kp 2>/dev/null
lines=$(wc -l < "$T/k.out")
[ "$lines" = 1200 ] || fail "-k: $lines lines, want 1200"
# every line: "cN-NNN-" and 3000 times the digit N; per client 1..300 in order
bad=$(awk '{
    c = substr($0, 2, 1); n = substr($0, 4, 3) + 0; pad = substr($0, 8)
    if ($0 !~ /^c[1-4]-[0-9][0-9][0-9]-/ || length(pad) != 3000 || pad ~ ("[^" c "]")) bad++
    else if (n != last[c] + 1) order++
    else last[c] = n
} END { for (k = 1; k <= 4; k++) if (last[k] != 300) order++; print bad + 0, order + 0 }' "$T/k.out")
[ "$bad" = "0 0" ] || fail "-k: mixed lines / order errors: $bad"
ok "-k with 4 concurrent clients: 1200 whole lines, per-client order kept"

# -k: stdin goes to every connected client
B="$T/b.sock"
mkfifo "$T/b.in"
bg timeout 20 bash -c "$U listen -k -v $B < $T/b.in > /dev/null 2> $T/b.err"
bp=$LAST
exec 3> "$T/b.in"
wait_listen "$B" "$bp"
# the clients' stdin stays open (FIFOs we hold) until they got the
# broadcast: part of the test (sleeps there raced the machine's load)
mkfifo "$T/b1.in" "$T/b2.in"
exec {B1}<>"$T/b1.in" {B2}<>"$T/b2.in"
timeout 20 "$U" connect "$B" < "$T/b1.in" {B1}>&- {B2}>&- > "$T/b1" &
c1=$!
timeout 20 "$U" connect "$B" < "$T/b2.in" {B1}>&- {B2}>&- > "$T/b2" &
c2=$!
wait_grep "$T/b.err" "client #2 connected"
echo to-everyone >&3
wait_grep "$T/b1" to-everyone
wait_grep "$T/b2" to-everyone
exec 3>&- {B1}>&- {B2}>&-
kill $bp
wait $c1; wait $c2
[ "$(cat "$T/b1")" = to-everyone ] && [ "$(cat "$T/b2")" = to-everyone ] ||
    fail "-k broadcast: '$(cat "$T/b1")' '$(cat "$T/b2")'"
ok "-k: stdin broadcast to all connected clients"

# usage errors: exit 2 and a message naming the problem
chk2() {
    local err rc
    err=$(timeout 5 "$U" "$@" 2>&1 < /dev/null); rc=$?
    [ $rc = 2 ] || fail "'udsock $*': status $rc (want 2): $err"
    [ -n "$err" ] || fail "'udsock $*': no message"
}
chk2 connect
chk2 connect --bogus "$T/x"
chk2 connect --type bogus "$T/x"
chk2 connect "$T/x" "$T/y"
chk2 listen
chk2 listen --mode 999 "$T/x"
chk2 listen --owner no-such-user-here "$T/x"
chk2 listen --mode 0600 @abstract-x
chk2 listen "$T/$(head -c 4100 /dev/zero | tr '\0' a)" # over PATH_MAX: a bad address
chk2 send
chk2 send --timeout x "$T/x" m
chk2 recv -n 0 "$T/x"
chk2 recv --echo --reply cat "$T/x"
chk2 no-such-subcommand
[ ! -e "$T/x" ] || fail "a usage error created a file"
for c in listen connect send recv; do
    timeout 5 "$U" $c --help | grep -q "^usage: udsock $c" || fail "$c --help"
done
ok "usage errors exit 2; --help for listen, connect, send, recv"

# paths longer than sun_path (108 bytes) bind, are reached and are removed;
# only a last component too long to bind is an error (exit 1, like any
# failure to listen; not a usage error: the address itself is valid)
LD="$T/$(head -c 60 /dev/zero | tr '\0' d)"
mkdir "$LD"
LP="$LD/$(head -c 50 /dev/zero | tr '\0' b).sock"
[ ${#LP} -ge 120 ] || fail "long path only ${#LP} bytes"
bg timeout 10 "$U" listen "$LP" < /dev/null > "$T/long-got"
lp=$LAST
wait_listen "$LP" "$lp"
echo over-108 | timeout 5 "$U" connect "$LP" || fail "connect to a ${#LP}-byte path"
wait "$lp" || fail "listen on a ${#LP}-byte path: status $?"
[ "$(cat "$T/long-got")" = over-108 ] || fail "long path got '$(cat "$T/long-got")'"
[ ! -e "$LP" ] || fail "the ${#LP}-byte socket file was left behind"
ok "a ${#LP}-byte path: listen binds, connect reaches it, the file is removed"
err=$(timeout 5 "$U" listen "$T/$(head -c 120 /dev/zero | tr '\0' a)" 2>&1 < /dev/null); rc=$?
[ $rc = 1 ] || fail "a 120-byte last component: status $rc (want 1): $err"
[[ $err == *"last path component is too long to bind"* ]] || fail "a 120-byte last component: '$err'"
[ -z "$(ls "$T" | grep '^aaaa')" ] || fail "a too-long last component left a file"
ok "a 120-byte last component: exit 1, 'last path component is too long to bind'"
echo "all passed"
