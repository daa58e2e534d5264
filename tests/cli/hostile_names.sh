#!/bin/bash
# Hostile peer names (battery row 5, for recv -f, relay -v, serve -v):
# peers bound to names holding a newline and a forged log line, \e]0;x\a,
# \e[2J, invalid UTF-8, and a 107-byte abstract name with a NUL inside
# (tests/cli/hostile.py), as abstract names and as file names.
#   - recv -f: one output line per datagram (nothing forged), no raw
#     control byte, every sender's name there, escaped (uds_escape)
#   - relay -v (stream and dgram): no raw control byte on stderr, each
#     client's name in its "open" line, escaped
#   - serve -v: the same for its log; the children's IPCREMOTEPATH is the
#     exact bytes (unset for the name with a NUL)
#   - serve: UNIXREMOTEPID is the client's pid while it lives; a client
#     that exits right after connecting gets no UNIXREMOTEPID (its pid may
#     already be someone else's): serve is stopped (SIGSTOP) while the
#     client connects and exits, so the order is certain
# Regression test: on c880748, recv -f printed path names raw (the forged
# line became a line of its own), relay -v and serve -v did not show the
# names, the abstract name reached IPCREMOTEPATH \x-escaped, and the pid of
# an exited client was exported.
# uds-test-timeout: 120
set -u
. "$(dirname "$0")/io_common.bash"
H="python3 $(dirname "$0")/hostile.py"
export HOSTILE_TOK="-$$"
N=9 # 5 abstract + 4 path names
mkdir "$T/n"
status=0
bad() { echo "FAIL: $*"; status=1; }
good() { echo "ok - $*"; }
$H expect "$T/n" >"$T/expect"
[ "$(wc -l <"$T/expect")" = $N ] || fail "hostile.py expect: $(wc -l <"$T/expect") names"

# every expected escaped name, followed by SUFFIX, is a substring of FILE
has_all() { # FILE PREFIX SUFFIX WHAT
    local e miss=0
    while IFS= read -r e; do
        grep -qF -- "$2$e$3" "$1" || { echo "  missing: $2$e$3"; miss=1; }
    done <"$T/expect"
    [ $miss = 0 ] && good "$4: all $N names shown escaped" || bad "$4: names missing (output: $(od -c "$1" | head -20))"
}
clean() { # FILE WHAT
    local why
    why=$($H clean "$1") && good "$2: no raw control byte, valid UTF-8" || bad "$2: $why"
}

# ---- recv -f ----
R=$T/r.sock
"$U" recv -f -n $N "$R" >"$T/recv.out" 2>"$T/recv.err" &
RP=$!
PIDS+=($RP)
wait_bound "$R" "$RP"
$H dgram "$T/n" "$R" || bad "hostile.py dgram failed"
timeout 10 tail --pid=$RP -f /dev/null
kill -0 $RP 2>/dev/null && bad "recv -n $N still running"
why=$($H lines "$T/recv.out" $N) && good "recv -f: $N lines for $N datagrams (no forged line)" || bad "recv -f: $why"
clean "$T/recv.out" "recv -f stdout"
clean "$T/recv.err" "recv -f stderr"
has_all "$T/recv.out" "" ": hello" "recv -f"

# ---- relay -v, stream ----
socat UNIX-LISTEN:"$T/echo.sock",fork,backlog=64 EXEC:cat 2>/dev/null &
PIDS+=($!)
wait_listen "$T/echo.sock"
"$U" relay -v "$T/rl.sock" "$T/echo.sock" 2>"$T/relay.err" &
RLP=$!
PIDS+=($RLP)
wait_listen "$T/rl.sock" "$RLP"
$H stream "$T/n" "$T/rl.sock" || bad "hostile.py stream through the relay failed"
poll_until grep -q "#$N closed" "$T/relay.err" || bad "relay: no '#$N closed' line"
clean "$T/relay.err" "relay -v stderr"
has_all "$T/relay.err" " name " " -> " "relay -v (stream)"
kill $RLP; wait $RLP 2>/dev/null

# ---- relay -v, dgram ----
"$U" recv -n $N "$T/dt.sock" >/dev/null 2>&1 &
DTP=$!
PIDS+=($DTP)
wait_bound "$T/dt.sock" "$DTP"
"$U" relay -v --type dgram "$T/rd.sock" "$T/dt.sock" 2>"$T/relayd.err" &
RDP=$!
PIDS+=($RDP)
wait_bound "$T/rd.sock" "$RDP"
$H dgram "$T/n" "$T/rd.sock" || bad "hostile.py dgram through the relay failed"
poll_until grep -q "#$N open" "$T/relayd.err" || bad "relay --type dgram: no '#$N open' line"
kill $RDP; wait $RDP 2>/dev/null
clean "$T/relayd.err" "relay -v --type dgram stderr"
has_all "$T/relayd.err" "open: sender " " -> " "relay -v (dgram)"

# ---- serve -v: log escaped, environment exact ----
S=$T/s.sock
: >"$T/env"
"$U" serve -v "$S" -- sh -c 'cat >/dev/null; printf "%s\0" "${IPCREMOTEPATH-unset}" >>"$0"' "$T/env" 2>"$T/serve.err" &
SP=$!
PIDS+=($SP)
wait_listen "$S" "$SP"
$H stream "$T/n" "$S" || bad "hostile.py stream to serve failed"
poll_until grep -q "exited 0" "$T/serve.err"
poll_until test "$(grep -c 'exited 0' "$T/serve.err")" = $N || bad "serve: not $N children exited"
clean "$T/serve.err" "serve -v stderr"
has_all "$T/serve.err" " name " ": started" "serve -v"
$H env "$T/n" >"$T/env.want"
cmp -s "$T/env" "$T/env.want" && good "serve: IPCREMOTEPATH has the exact bytes of all $N names (unset for the one with a NUL)" \
    || bad "serve: IPCREMOTEPATH: got $(od -c "$T/env" | head -12), want $(od -c "$T/env.want" | head -12)"
kill $SP; wait $SP 2>/dev/null

# ---- serve: UNIXREMOTEPID only for a client that is still there ----
S2=$T/s2.sock
: >"$T/pid"
"$U" serve -v "$S2" -- sh -c 'printf "%s\n" "${UNIXREMOTEPID-unset}" >>"$0"' "$T/pid" 2>"$T/serve2.err" &
SP=$!
PIDS+=($SP)
wait_listen "$S2" "$SP"
live=$(python3 -c '
import os, socket, sys
s = socket.socket(socket.AF_UNIX); s.connect(sys.argv[1]); print(os.getpid(), flush=True)
while s.recv(64): pass' "$S2")
poll_until test "$(wc -l <"$T/pid")" = 1
[ "$(sed -n 1p "$T/pid")" = "$live" ] && good "serve: a live client's UNIXREMOTEPID is its pid ($live)" \
    || bad "serve: live client: UNIXREMOTEPID '$(sed -n 1p "$T/pid")', want $live"
kill -STOP $SP
poll_until grep -q '^State:.*T' /proc/$SP/status || bad "serve did not stop"
gone=$(python3 -c '
import os, socket, sys
s = socket.socket(socket.AF_UNIX); s.connect(sys.argv[1]); print(os.getpid())' "$S2")
kill -CONT $SP
poll_until test "$(wc -l <"$T/pid")" = 2
got=$(sed -n 2p "$T/pid")
[ "$got" = unset ] && good "serve: a client that exited after connecting (pid $gone): no UNIXREMOTEPID" \
    || bad "serve: exited client $gone: UNIXREMOTEPID '$got', want unset"
grep -q "client pid $gone has exited: UNIXREMOTEPID not set" "$T/serve2.err" \
    && good "serve -v says so" || bad "serve -v: no line about pid $gone: $(cat "$T/serve2.err")"
kill $SP; wait $SP 2>/dev/null
exit $status
