#!/usr/bin/env bash
# Socket activation end to end with systemd-socket-activate (Debian package
# systemd): the server runs on the inherited socket, answers, notifies
# READY=1 / STOPPING=1 on NOTIFY_SOCKET, and leaves the inherited socket file
# in place when it exits; a self-bound server removes its own file; a socket
# of the wrong type is refused.
# uds-test-timeout: 60
set -u
B=${UDS_BUILD_DIR:-build}
srv=$B/examples/activated_echo
if ! command -v systemd-socket-activate >/dev/null; then
  echo "SKIP-FAIL: systemd-socket-activate missing (scripts/deps.sh installs systemd)" >&2
  exit 1
fi
command -v socat >/dev/null || { echo "socat missing (scripts/deps.sh)" >&2; exit 1; }
[ -x "$srv" ] || { echo "missing $srv" >&2; exit 1; }

d=$(mktemp -d /tmp/udsock-activation-XXXXXX)
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
wait_for test -S "$d/notify.sock" || fail "notify receiver did not start"

# 1. activated: systemd-socket-activate binds, execs the server on the first connection
systemd-socket-activate -l "$d/echo.sock" --fdname=echo -E NOTIFY_SOCKET="$d/notify.sock" \
  "$srv" 2>"$d/server.err" &
act=$!
pids+=($act)
wait_for test -S "$d/echo.sock" || fail "systemd-socket-activate did not bind $d/echo.sock"
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
"$srv" "$d/own.sock" --ready-fd 5 5>"$d/ready.out" 2>"$d/server.err" &
own=$!
pids+=($own)
wait_for test -s "$d/ready.out" || fail "no readiness byte on --ready-fd"
[ "$(od -An -c "$d/ready.out" | tr -d ' ')" = '\n' ] || fail "ready-fd content: $(od -c "$d/ready.out")"
out=$(echo "own" | socat -t 5 - UNIX-CONNECT:"$d/own.sock")
[ "$out" = "own" ] || fail "self-bound answer: got '$out'"
kill -TERM "$own"
wait "$own" || fail "self-bound server exit status $?"
[ ! -e "$d/own.sock" ] || fail "self-bound server left its socket file"

# 3. wrong socket type: a datagram socket where a stream one is expected
systemd-socket-activate -d -l "$d/dg.sock" "$srv" 2>"$d/server.err" &
dg=$!
pids+=($dg)
wait_for test -S "$d/dg.sock" || fail "systemd-socket-activate -d did not bind"
echo "x" | socat -u - UNIX-SENDTO:"$d/dg.sock"
wait "$dg"
rc=$?
[ "$rc" -eq 1 ] || fail "wrong-type socket: exit status $rc, want 1"
grep -q "Protocol wrong type" "$d/server.err" || fail "wrong-type socket: no clear error"
[ -S "$d/dg.sock" ] || fail "inherited datagram socket file was removed"
echo "activation: ok"
