#!/bin/bash
# cli.conn_reset — issue 10 defect 7: a handler that answers and closes
# without reading what we sent makes the kernel reset the connection.
# Rule: that reset is exit 0 when our stdin had reached EOF and every byte
# read from it had been accepted by the kernel (as socat and nc); it stays
# exit 1, said on stderr, when input was still to be sent (stdin open) or
# a send failed (stdin larger than the peer would take); a pipe or file
# that reaches EOF within 1 s of the reset counts as at EOF. Peer:
# tests/cli/conn_peer.py noread (python; closes once our data is queued).
. "$(dirname "$0")/io_common.bash"
PEER="$(dirname "$0")/conn_peer.py"
S="$T/nr.sock"
bg python3 "$PEER" noread "$S" > "$T/ready"
wait_grep "$T/ready" READY

# 1. all of stdin sent, then the reset: status 0, the reply printed, quiet
echo data | timeout 20 "$U" connect "$S" > "$T/1.out" 2> "$T/1.err"; rc=$?
[ $rc = 0 ] || fail "all sent, then reset: status $rc (want 0): $(cat "$T/1.err")"
[ "$(cat "$T/1.out")" = hello ] || fail "reply: '$(cat "$T/1.out")'"
[ ! -s "$T/1.err" ] || fail "all sent, then reset: stderr: $(cat "$T/1.err")"
echo data | timeout 20 "$U" connect -v "$S" > /dev/null 2> "$T/1v.err" || fail "-v: status $?: $(cat "$T/1v.err")"
grep -q "the peer reset the connection after everything was sent" "$T/1v.err" || fail "-v: $(cat "$T/1v.err")"
ok "echo | connect, handler does not read: reply printed, status 0 (-v says why)"

# 1b. the writer of stdin ends it a little after the reset (as echo in a
# pipeline may under load): nothing more came, so nothing was lost: 0.
# Before the 1 s grace this was status 1 "before all of stdin was sent".
# The writer's 0.3 s are the slow writer, not a wait for readiness.
{ echo data; sleep 0.3; } | timeout 20 "$U" connect "$S" > "$T/1b.out" 2> "$T/1b.err"; rc=$?
[ $rc = 0 ] || fail "stdin ends 0.3 s after the reset: status $rc (want 0): $(cat "$T/1b.err")"
[ "$(cat "$T/1b.out")" = hello ] || fail "1b reply: '$(cat "$T/1b.out")'"
ok "stdin's writer ends it 0.3 s after the reset: status 0"

# 2. stdin still open (more could come): the reset is a failure
mkfifo "$T/in"; exec {F}<>"$T/in"
echo data >&$F
timeout 20 "$U" connect "$S" < "$T/in" {F}>&- > "$T/2.out" 2> "$T/2.err"; rc=$?
[ $rc = 1 ] || fail "stdin open, reset: status $rc (want 1): $(cat "$T/2.err")"
grep -q "Connection reset by peer (the peer reset the connection before all of stdin was sent)" "$T/2.err" \
    || fail "stdin open: message: $(cat "$T/2.err")"
exec {F}>&-
ok "stdin still open when the peer resets: status 1, said"

# 3. more stdin than the peer takes: a send fails, data is lost: status 1
head -c 64M /dev/zero | timeout 30 "$U" connect "$S" > /dev/null 2> "$T/3.err"; rc=${PIPESTATUS[1]}
[ $rc = 1 ] || fail "64 MiB to a peer that resets: status $rc (want 1): $(cat "$T/3.err")"
# which is said depends on where the sender was: in a send (it fails) or
# waiting for head(1) to write more (input still to come)
grep -qE "send to .*(Broken pipe|Connection reset by peer)|reset the connection before all of stdin was sent" "$T/3.err" \
    || fail "lost data: message: $(cat "$T/3.err")"
ok "64 MiB to a peer that resets: the failed send is said, status 1"
