#!/usr/bin/env bash
# Socket activation end to end with systemd-socket-activate (Debian package
# systemd): the server runs on the inherited socket, answers, notifies
# READY=1 / STOPPING=1 on NOTIFY_SOCKET, and leaves the inherited socket file
# in place when it exits; a self-bound server removes its own file; a socket
# of the wrong type is refused.
# uds-test-timeout: 60
set -u
UDS_BUILD_DIR=${UDS_BUILD_DIR:-build}
B=$UDS_BUILD_DIR
srv=$B/examples/activated_echo
if ! command -v systemd-socket-activate >/dev/null; then
  echo "SKIP-FAIL: systemd-socket-activate missing (scripts/deps.sh installs systemd)" >&2
  exit 1
fi
command -v socat >/dev/null || { echo "socat missing (scripts/deps.sh)" >&2; exit 1; }
[ -x "$srv" ] || { echo "missing $srv" >&2; exit 1; }

# readiness helpers (wait_listen, wait_bound, ready_open/wait_ready); its $T is our dir
. "$(dirname "$0")/io_common.bash"
d=$T
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null; done
  wait 2>/dev/null
  rm -rf "$d"
}
trap cleanup EXIT
fail() { echo "FAIL: $*" >&2; [ -f "$d/server.err" ] && sed 's/^/  server: /' "$d/server.err" >&2; exit 1; }

# wait_for CMD...: retries for up to 5 s
wait_for() {
  for _ in $(seq 100); do "$@" && return 0; sleep 0.05; done
  return 1
}

# The service manager's notification socket, logging every datagram (socat
# appends them without separators, so the checks below look for substrings).
socat -u UNIX-RECV:"$d/notify.sock" OPEN:"$d/notify.log",creat,append &
pids+=($!)
wait_bound "$d/notify.sock"

# 1. activated: systemd-socket-activate binds, execs the server on the first connection
systemd-socket-activate -l "$d/echo.sock" --fdname=echo -E NOTIFY_SOCKET="$d/notify.sock" \
  "$srv" 2>"$d/server.err" &
act=$!
pids+=($act)
# the file appears at bind(), before listen(): wait for the LISTEN state
wait_listen "$d/echo.sock" "$act"
out=$(echo "hello activated" | socat -t 5 - UNIX-CONNECT:"$d/echo.sock")
[ "$out" = "hello activated" ] || fail "first answer: got '$out'"
out=$(echo "second" | socat -t 5 - UNIX-CONNECT:"$d/echo.sock")
[ "$out" = "second" ] || fail "second answer: got '$out'"
[ "$(cat /proc/$act/comm 2>/dev/null)" = "activated_echo" ] || fail "pid $act is not the server"
grep -q "inherited" "$d/server.err" || fail "server did not say it serves an inherited socket"
wait_for grep -q "READY=1" "$d/notify.log" || fail "no READY=1 on NOTIFY_SOCKET"

kill -TERM "$act"
wait "$act"
rc=$?
[ "$rc" -eq 0 ] || fail "server exit status $rc after SIGTERM"
wait_for grep -q "STOPPING=1" "$d/notify.log" || fail "no STOPPING=1 on NOTIFY_SOCKET"
[ -S "$d/echo.sock" ] || fail "inherited socket file was removed"

# 2. self-bound, readiness on --ready-fd: its own file is removed at exit
ready_open own
"$srv" "$d/own.sock" --ready-fd 5 5>"$d/own.ready" {RFD}<&- 2>"$d/server.err" &
own=$!
pids+=($own)
wait_ready "$own" "activated_echo --ready-fd 5"
# exactly one "\n": an empty line and nothing after it
[ -z "$READY_LINE" ] && [ "$READY_EXTRA" = 0 ] || fail "ready-fd content: '$READY_LINE' (more: $READY_EXTRA)"
out=$(echo "own" | socat -t 5 - UNIX-CONNECT:"$d/own.sock")
[ "$out" = "own" ] || fail "self-bound answer: got '$out'"
kill -TERM "$own"
wait "$own" || fail "self-bound server exit status $?"
[ ! -e "$d/own.sock" ] || fail "self-bound server left its socket file"

# 3. wrong socket type: a datagram socket where a stream one is expected
systemd-socket-activate -d -l "$d/dg.sock" "$srv" 2>"$d/server.err" &
dg=$!
pids+=($dg)
wait_bound "$d/dg.sock" "$dg"
echo "x" | socat -u - UNIX-SENDTO:"$d/dg.sock"
wait "$dg"
rc=$?
[ "$rc" -eq 1 ] || fail "wrong-type socket: exit status $rc, want 1"
grep -q "Protocol wrong type" "$d/server.err" || fail "wrong-type socket: no clear error"
[ -S "$d/dg.sock" ] || fail "inherited datagram socket file was removed"
echo "activation: ok"
