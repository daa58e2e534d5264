#!/bin/bash
# udsock relay --fds: SCM_RIGHTS fds travel with the bytes they were sent
# with, both ways (1, 16, 253 fds, Python's socket.send_fds/recv_fds as the
# peers), the sender's credentials too (the relay runs as root; the client
# as uid 65534), no fd left in the relay afterwards — also when a side
# vanishes with fds in flight; without --fds no fd ever crosses. And tmux,
# whose client hands its terminal to the server as fds, through the relay
# (systemd's socket-proxyd cannot do this: systemd#22744).
# uds-test-timeout: 180
set -u
. "$(dirname "$0")/io_common.bash"
if [ "$(id -u)" != 0 ]; then
    echo "SKIP: needs root (the client runs as uid 65534 through setpriv)"
    exit 0
fi
PY=/usr/bin/python3
chmod 755 "$T"
# a copy uid 65534 can read wherever the checkout is
cp "$(dirname "$0")/fdpeer.py" "$T/fdpeer.py" && chmod 644 "$T/fdpeer.py"
PEER="$T/fdpeer.py"
fdcount() { ls /proc/"$1"/fd 2>/dev/null | wc -l; }

mkfifo "$T/ready"
bg $PY "$PEER" server "$T/target.sock" "$T/ready"
read -t 10 line <"$T/ready" || fail "fd peer did not start"
[ "$line" = ready ] || fail "fd peer: '$line'"

# ---- 1. --fds: 1, 16 and 253 fds each way, credentials of the real client ----
bg "$U" relay --fds --mode 0666 -v "$T/r.sock" "$T/target.sock" 2>"$T/r.log"
R=$LAST
wait_listen "$T/r.sock"
base=$(fdcount $R)
setpriv --reuid=65534 --regid=65534 --clear-groups $PY "$PEER" client "$T/r.sock" 1 16 253 \
    >"$T/c1.out" 2>&1 &
CP=$!
wait $CP
cat "$T/c1.out"
grep -q '^msg=m1 fds=1 ok=1 uid=65534 ' "$T/c1.out" || fail "1 fd: $(cat "$T/c1.out")"
grep -q '^msg=m16 fds=16 ok=16 uid=65534 ' "$T/c1.out" || fail "16 fds"
grep -q '^msg=m253 fds=253 ok=253 uid=65534 ' "$T/c1.out" || fail "253 fds"
grep -q '^back=3 ok=3$' "$T/c1.out" || fail "fds from the server back to the client"
# the pid the target saw is the client's, not the relay's
grep -q "^msg=m1 fds=1 ok=1 uid=65534 pid=$CP\$" "$T/c1.out" \
    || fail "credentials: the target did not see the client's pid $CP: $(head -1 "$T/c1.out")"
ok "--fds: 1, 16, 253 fds to the target and 3 back, each with its message; client's uid and pid passed on"
grep -q '#1 > passing 253 fds, credentials pid' "$T/r.log" || fail "-v does not show the fds passed: $(grep passing "$T/r.log" | head -3)"
grep -q '#1 < passing 3 fds' "$T/r.log" || fail "-v does not show the fds passed back"
grep -Eq '#1 closed .*fds > 270 < 3' "$T/r.log" || fail "-v closing line: $(grep '#1 closed' "$T/r.log")"
ok "-v shows the fds and credentials passed, per connection"
for _ in $(seq 200); do [ "$(fdcount $R)" -le "$base" ] && break; sleep 0.02; done
[ "$(fdcount $R)" = "$base" ] || fail "relay holds $(fdcount $R) fds after the client left (was $base)"
ok "relay's fd table unchanged afterwards ($base)"

# ---- 2. a client that vanishes with fds in flight leaks nothing ----
cat >"$T/vanish.py" <<'PYEOF'
import os, socket, sys
c = socket.socket(socket.AF_UNIX); c.connect(sys.argv[1])
r, w = os.pipe()
for i in range(50):
    socket.send_fds(c, [b"burst\n"], [r, w] * 100)
os._exit(0)
PYEOF
for i in 1 2 3; do $PY "$T/vanish.py" "$T/r.sock" 2>/dev/null; done
# the senders are gone before the relay has read them: wait until it has
# ended their connections (#2..#4, -v), else the fd count is looked at
# before the fds ever reached the relay
vanished() { grep -q '#4 closed' "$T/r.log"; }
poll_until vanished || fail "relay did not end the vanished senders' connections: $(tail -5 "$T/r.log")"
for _ in $(seq 250); do [ "$(fdcount $R)" -le "$base" ] && break; sleep 0.02; done
[ "$(fdcount $R)" = "$base" ] || fail "after vanishing senders the relay holds $(fdcount $R) fds (was $base)"
kill -0 $R || fail "relay died"
ok "senders vanishing with 10000 fds in flight: relay's fd table back to $base"

# ---- 3. without --fds no fd crosses ----
bg "$U" relay "$T/r2.sock" "$T/target.sock" 2>"$T/r2.log"
R2=$LAST
wait_listen "$T/r2.sock"
base2=$(fdcount $R2)
$PY "$PEER" client "$T/r2.sock" 1 16 >"$T/c2.out" 2>&1
cat "$T/c2.out"
grep -q 'msg=m1 fds=0 ' "$T/c2.out" && grep -q 'msg=m16 fds=0 ' "$T/c2.out" \
    && grep -q '^back=0 ok=0$' "$T/c2.out" || fail "fds crossed a relay without --fds: $(cat "$T/c2.out")"
[ "$(fdcount $R2)" = "$base2" ] || fail "relay without --fds holds $(fdcount $R2) fds (was $base2)"
ok "without --fds: no fd crosses either way, none kept"

# ---- 4. tmux through the relay ----
need tmux
export TERM=xterm
tmux -S "$T/tmux.sock" -f /dev/null new-session -d -s relaytest 'sleep 600' || fail "tmux server"
TMUXPID=$(tmux -S "$T/tmux.sock" display-message -p '#{pid}')
PIDS+=($TMUXPID)
bg "$U" relay --fds "$T/r-tmux.sock" "$T/tmux.sock" 2>"$T/rt.log"
RT=$LAST
wait_listen "$T/r-tmux.sock"
# stdin from /dev/null and stdout to a file: the client then hands both to
# the server as fds (the server writes -p's answer into that very file)
tm() { local s=$1; shift; timeout 10 tmux -S "$s" "$@" </dev/null >"$T/tm.out" 2>&1; cat "$T/tm.out"; }
r=$(tm "$T/r-tmux.sock" display-message -p '#{session_name}')
[ "$r" = relaytest ] || fail "tmux through relay --fds: '$r' $(cat "$T/rt.log")"
tm "$T/r-tmux.sock" send-keys -t relaytest 'echo via-relay' >/dev/null || fail "send-keys"
r=$(tm "$T/r-tmux.sock" list-sessions -F '#{session_name}:#{session_windows}')
[ "$r" = relaytest:1 ] || fail "list-sessions: '$r'"
ok "tmux -S relay.sock display-message/send-keys/list-sessions through relay --fds"
# the same without --fds fails, as with any fd-dropping proxy
bg "$U" relay "$T/r-tmux2.sock" "$T/tmux.sock" 2>"$T/rt2.log"
wait_listen "$T/r-tmux2.sock"
r=$(tm "$T/r-tmux2.sock" display-message -p '#{session_name}')
[ "$r" != relaytest ] || fail "tmux worked without --fds? '$r' $(cat "$T/rt2.log")"
ok "tmux without --fds fails ('$r'), as it must"
tmux -S "$T/tmux.sock" kill-server 2>/dev/null
exit 0
