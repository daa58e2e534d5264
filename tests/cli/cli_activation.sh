#!/bin/bash
# Socket activation and readiness in the CLI (issue 10): serve, relay,
# listen and recv take their socket from the service manager
# (systemd-socket-activate: LISTEN_PID/LISTEN_FDS) instead of binding, never
# remove its file, and keep the LISTEN_* variables from the programs they
# start; --ready-fd N writes one newline once serving (s6 notification-fd)
# and READY=1 goes to $NOTIFY_SOCKET. A socket passed for another address
# is not taken: the command binds its own, as without activation. Before
# this, `systemd-socket-activate -l S udsock serve S -- prog` failed with
# "Address already in use".
# uds-test-timeout: 90
set -u
. "$(dirname "$0")/io_common.bash"
need systemd-socket-activate
need socat
need python3
fail=0
bad() { echo "FAIL: $*"; fail=1; }

# ---- serve on an inherited socket; its programs do not see LISTEN_* ----
S="$T/s.sock"
systemd-socket-activate -l "$S" "$U" serve -v "$S" -- \
    sh -c 'echo "hi ${LISTEN_FDS:-none} ${LISTEN_PID:-none}"' 2>"$T/s.err" &
AP=$!
PIDS+=($AP)
wait_listen "$S" "$AP"
r=$(timeout 10 socat -t 5 - UNIX-CONNECT:"$S" </dev/null)
[ "$r" = "hi none none" ] || bad "serve on an inherited socket: got '$r'; $(cat "$T/s.err")"
grep -q "listening on $S (inherited from the service manager: never removed)" "$T/s.err" ||
    bad "serve: no 'inherited' line: $(cat "$T/s.err")"
r=$(timeout 10 socat -t 5 - UNIX-CONNECT:"$S" </dev/null)
[ "$r" = "hi none none" ] || bad "serve, second client: got '$r'"
kill -TERM "$AP"; wait "$AP"; rc=$?
[ $rc = 0 ] || bad "serve on an inherited socket: status $rc after SIGTERM"
[ -S "$S" ] && echo "ok: serve served two clients on the inherited socket, kept its file, LISTEN_* unset for the program" ||
    bad "serve removed the inherited socket file"

# ---- relay: listening side inherited ----
socat UNIX-LISTEN:"$T/echo.sock",fork EXEC:cat 2>/dev/null &
PIDS+=($!)
wait_listen "$T/echo.sock" "$!"
R="$T/r.sock"
systemd-socket-activate -l "$R" "$U" relay "$R" "$T/echo.sock" 2>"$T/r.err" &
AP=$!
PIDS+=($AP)
wait_listen "$R" "$AP"
r=$(echo through-relay | timeout 10 socat -t 5 - UNIX-CONNECT:"$R")
[ "$r" = through-relay ] || bad "relay on an inherited socket: got '$r'; $(cat "$T/r.err")"
kill -TERM "$AP"; wait "$AP"
[ -S "$R" ] && echo "ok: relay on the inherited socket, file kept" || bad "relay removed the inherited socket file"

# ---- listen (one client) ----
L="$T/l.sock"
systemd-socket-activate -l "$L" "$U" listen -v "$L" </dev/null >"$T/l.out" 2>"$T/l.err" &
AP=$!
PIDS+=($AP)
wait_listen "$L" "$AP"
echo to-listen | timeout 10 socat -t 5 - UNIX-CONNECT:"$L" >/dev/null
wait "$AP"; rc=$?
[ $rc = 0 ] && [ "$(cat "$T/l.out")" = to-listen ] || bad "listen on an inherited socket: status $rc, got '$(cat "$T/l.out")'; $(cat "$T/l.err")"
grep -q "inherited from the service manager" "$T/l.err" || bad "listen -v: no 'inherited': $(cat "$T/l.err")"
[ -S "$L" ] && echo "ok: listen took its client on the inherited socket, file kept" || bad "listen removed the inherited socket file"

# ---- recv: an inherited datagram socket ----
D="$T/d.sock"
systemd-socket-activate --datagram -l "$D" "$U" recv -n 1 "$D" >"$T/d.out" 2>"$T/d.err" &
AP=$!
PIDS+=($AP)
wait_bound "$D" "$AP"
"$U" send "$D" one-datagram || bad "send to the inherited datagram socket"
wait "$AP"; rc=$?
[ $rc = 0 ] && [ "$(cat "$T/d.out")" = one-datagram ] || bad "recv on an inherited socket: status $rc, got '$(cat "$T/d.out")'; $(cat "$T/d.err")"
[ -S "$D" ] && echo "ok: recv on the inherited datagram socket, file kept" || bad "recv removed the inherited socket file"

# ---- a socket passed for another address is not taken ----
O="$T/other.sock" M="$T/mine.sock"
systemd-socket-activate -l "$O" "$U" listen "$M" </dev/null >"$T/m.out" 2>"$T/m.err" &
AP=$!
PIDS+=($AP)
wait_listen "$O" "$AP"
echo wake | timeout 5 socat -t 1 - UNIX-CONNECT:"$O" >/dev/null 2>&1 # starts it (no accept there)
wait_listen "$M" "$AP"
echo to-mine | timeout 10 socat -t 5 - UNIX-CONNECT:"$M" >/dev/null
wait "$AP"; rc=$?
[ $rc = 0 ] && [ "$(cat "$T/m.out")" = to-mine ] || bad "listen on its own address beside an inherited one: status $rc, got '$(cat "$T/m.out")'"
[ ! -e "$M" ] && [ -S "$O" ] && echo "ok: a socket for another address is left alone; its own file bound and removed" ||
    bad "mismatch: mine $(ls -l "$M" 2>&1), other $(ls -l "$O" 2>&1)"

# ---- --ready-fd N: one newline once serving, then the fd is closed ----
for cmd in serve relay listen recv; do
    A="$T/rf-$cmd.sock"
    ready_open "rf-$cmd"
    case $cmd in
    serve) "$U" serve "$A" --ready-fd 7 -- echo ready-served 7>"$T/rf-$cmd.ready" {RFD}<&- 2>"$T/rf.err" & ;;
    relay) "$U" relay --ready-fd 7 "$A" "$T/echo.sock" 7>"$T/rf-$cmd.ready" {RFD}<&- 2>"$T/rf.err" & ;;
    listen) "$U" listen --ready-fd 7 "$A" </dev/null >"$T/rf.out" 7>"$T/rf-$cmd.ready" {RFD}<&- 2>"$T/rf.err" & ;;
    recv) "$U" recv -n 1 --ready-fd 7 "$A" >"$T/rf.out" 7>"$T/rf-$cmd.ready" {RFD}<&- 2>"$T/rf.err" & ;;
    esac
    P=$!
    PIDS+=($P)
    wait_ready "$P" "$cmd --ready-fd"
    [ "$READY_EXTRA" = 0 ] || bad "$cmd --ready-fd: more than one line"
    # ready means a client is served now, with no other wait
    case $cmd in
    serve) r=$(timeout 10 socat -t 5 - UNIX-CONNECT:"$A" </dev/null); [ "$r" = ready-served ] || bad "serve after ready: '$r'" ;;
    relay) r=$(echo relayed | timeout 10 socat -t 5 - UNIX-CONNECT:"$A"); [ "$r" = relayed ] || bad "relay after ready: '$r'" ;;
    listen) echo listened | timeout 10 socat -t 5 - UNIX-CONNECT:"$A" >/dev/null; wait "$P"; [ "$(cat "$T/rf.out")" = listened ] || bad "listen after ready: '$(cat "$T/rf.out")'" ;;
    recv) "$U" send "$A" received; wait "$P"; [ "$(cat "$T/rf.out")" = received ] || bad "recv after ready: '$(cat "$T/rf.out")'" ;;
    esac
    # the fd was closed: nothing holds the FIFO's write end but us
    [ -z "$(find /proc/"$P"/fd -lname "$T/rf-$cmd.ready" 2>/dev/null)" ] || bad "$cmd kept its --ready-fd open"
    kill "$P" 2>/dev/null
    wait "$P" 2>/dev/null
done
echo "ok: --ready-fd on serve, relay, listen and recv: one newline, then a client is served"
err=$("$U" listen --ready-fd 9 "$T/x.sock" 2>&1 </dev/null 9>&-); rc=$?
[ $rc = 2 ] && [[ $err == *"fd 9 is not open"* ]] || bad "--ready-fd of a closed fd: status $rc, '$err'"
err=$("$U" serve "$T/x.sock" --ready-fd x -- true 2>&1); rc=$?
[ $rc = 2 ] || bad "--ready-fd x: status $rc, '$err'"
[ ! -e "$T/x.sock" ] || bad "a usage error made a socket file"

# ---- NOTIFY_SOCKET: READY=1 once listening ----
python3 -c '
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1]); s.settimeout(20)
print("bound", flush=True)
print(s.recv(4096).decode(), flush=True)
' "$T/notify.sock" >"$T/notify.out" &
NP=$!
PIDS+=($NP)
poll_until grep -q bound "$T/notify.out" || fail "notify peer did not start"
NOTIFY_SOCKET="$T/notify.sock" "$U" listen -k "$T/n.sock" </dev/null >/dev/null 2>"$T/n.err" &
P=$!
PIDS+=($P)
wait "$NP"
grep -qx "READY=1" "$T/notify.out" && uds_is_listening "$T/n.sock" &&
    echo "ok: READY=1 on NOTIFY_SOCKET, and the socket listens" || bad "NOTIFY_SOCKET: '$(cat "$T/notify.out")'; $(cat "$T/n.err")"
kill "$P"; wait "$P" 2>/dev/null

exit $fail
