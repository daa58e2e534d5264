#!/bin/bash
# cli.conn_progress — issue 10 defect 1, in a real terminal (tmux): the
# progress line shows by itself only in the pv situation (stdin and stdout
# not terminals, stderr one); typing into an interactive connect for 3 s
# shows none; a message on stderr erases the line first instead of being
# glued onto it; -p forces it on a terminal. Peers: socat (an echo
# server), tests/cli/conn_peer.py reset.
. "$(dirname "$0")/io_common.bash"
need tmux
need socat
PEER="$(dirname "$0")/conn_peer.py"
export TERM=xterm-256color
echo "set -g remain-on-exit on" > "$T/tmux.conf"
TM=(tmux -S "$T/tmux.sock" -f "$T/tmux.conf")
"${TM[@]}" new-session -d -s base -x 200 -y 40 "exec cat" || fail "tmux would not start"
PIDS+=("$("${TM[@]}" display -p -t base '#{pid}')")
# pane NAME CMD: a new window running CMD (exec'd: the pane's pid is CMD's)
pane() { "${TM[@]}" new-window -d -n "$1" "exec $2"; }
pane_pid() { "${TM[@]}" display -p -t "base:$1" '#{pane_pid}'; }
screen() { "${TM[@]}" capture-pane -p -S - -t "base:$1"; }
has() { screen "$1" | grep -qF -- "$2"; }

S="$T/echo.sock"
bg socat "UNIX-LISTEN:$S,fork" EXEC:cat
wait_listen "$S" $LAST

# 1. interactive: stdin and stdout are the terminal. Type for 3 s.
pane typing "'$U' connect '$S'"
P=$(pane_pid typing)
poll_until is_connected "$P" || fail "typing: client did not connect: $(screen typing)"
for ((i = 0; i < 12; i++)); do "${TM[@]}" send-keys -t base:typing -l a; sleep 0.25; done
"${TM[@]}" send-keys -t base:typing Enter
# the line comes back from the echo server: the terminal's echo and the reply
poll_until sh -c '[ "$(tmux -S "$1" capture-pane -p -S - -t base:typing | grep -c "^aaaaaaaaaaaa$")" = 2 ]' _ "$T/tmux.sock" \
    || fail "typing: no echo: $(screen typing)"
! has typing "udsock: sent" || fail "progress text in an interactive session: $(screen typing)"
kill "$P"
ok "interactive connect, typed for 3 s: the line came back, no progress text in the pane"

# 2. the pv situation: stdin a FIFO, stdout /dev/null, stderr the terminal
mkfifo "$T/in"; exec {F}<>"$T/in"
printf 'x%.0s' {1..100} >&$F
pane pv "'$U' connect '$S' < '$T/in' > /dev/null"
poll_until has pv "udsock: sent 100 B, received 100 B" || fail "pv situation: no progress: $(screen pv)"
exec {F}>&-
poll_until has pv "udsock: sent 100 B, received 100 B in " || fail "pv situation: no final line: $(screen pv)"
ok "pv situation (stdin FIFO, stdout /dev/null, stderr terminal): the progress line shows, then the totals"

# 3. a message while the line is drawn: erased first, message on its own line
C="$T/ctl"; mkfifo "$C"
R="$T/reset.sock"
bg python3 "$PEER" reset "$R" "$C" > "$T/r.ready"
wait_grep "$T/r.ready" READY
mkfifo "$T/in2"; exec {F}<>"$T/in2"
printf 'xy' >&$F
pane msg "'$U' connect '$R' < '$T/in2' > /dev/null"
poll_until has msg "udsock: sent 2 B, received 0 B  " || fail "msg: no progress: $(screen msg)"
echo go > "$C"
poll_until has msg "udsock: sent 2 B, received 0 B in " || fail "msg: did not end: $(screen msg)"
screen msg > "$T/msg.screen"
grep -q "^udsock: receive from $R: Connection reset by peer" "$T/msg.screen" \
    || fail "the message is not on a line of its own: $(cat "$T/msg.screen")"
! grep -q "avg.*udsock: receive" "$T/msg.screen" || fail "message glued to the progress line: $(cat "$T/msg.screen")"
exec {F}>&-
ok "a warning while the progress line is drawn: the line is erased, the warning stands alone"

# 4. -p forces it, also on an interactive terminal
pane forced "'$U' connect -p '$S'"
poll_until has forced "udsock: sent 0 B, received 0 B" || fail "-p: no progress: $(screen forced)"
kill "$(pane_pid forced)"
ok "-p forces the progress line on a terminal"
