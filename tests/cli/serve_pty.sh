#!/bin/bash
# serve --pty (issue 10; socat EXEC:prog,pty,setsid,ctty): the program runs
# on a pseudo-terminal of its own, a session leader with the terminal as
# its controlling tty and as fds 0, 1, 2 (nothing else open), 80x24, cooked
# with echo (\n goes out as \r\n); the client's EOF reaches it as ^D (twice
# after a partial line), its exit closes the connection once every byte of
# its output arrived; two clients get two terminals; -i, -c, -u and the
# environment still apply; without --pty no terminal at all. Clients:
# python's socket module (pty_client.py) and socat; socat's own pty mode is
# run beside it for the record (it hangs the terminal up at EOF).
# uds-test-timeout: 150
set -u
. "$(dirname "$0")/io_common.bash"
need python3
need socat
PC=(python3 "$(dirname "$0")/pty_client.py")
chmod 755 "$T"
fails=0
bad() { echo "FAIL: $*"; fails=$((fails + 1)); }
n=0
# start ARGS...: udsock serve $S ARGS (log $LOG), waits until it listens
start() {
    n=$((n + 1))
    S="$T/s$n.sock" LOG="$T/s$n.log"
    "$U" serve "$S" "$@" 2>"$LOG" &
    SP=$!
    PIDS+=("$SP")
    wait_listen "$S" "$SP"
}
stop() { kill "$SP" 2>/dev/null; wait "$SP" 2>/dev/null; }
# shows bytes with \r, \n and control bytes visible
show() { python3 -c 'import sys; print(repr(sys.stdin.buffer.read())[2:-1])'; }

# ---- 1. what the program finds: a terminal, its own session, fds 0-2 ----
cat >"$T/ttyinfo.py" <<'EOF'
import os, termios
extra = []
for f in range(3, 256):
    try:
        os.fstat(f)
        extra.append(f)
    except OSError:
        pass
name = os.ttyname(0)
print("isatty", os.isatty(0), os.isatty(1), os.isatty(2))
print("same", all(os.readlink("/proc/self/fd/%d" % f) == name for f in (0, 1, 2)))
print("extra-fds", extra)
print("leader", os.getsid(0) == os.getpid())
print("ctty", os.tcgetpgrp(0) == os.getpgrp())
fd = os.open("/dev/tty", os.O_RDWR)  # the controlling terminal
os.write(fd, b"devtty ok\n")
os.close(fd)
sz = os.get_terminal_size(0)
print("size", sz.columns, sz.lines)
a = termios.tcgetattr(0)
print("cooked", bool(a[3] & termios.ICANON), bool(a[3] & termios.ECHO), bool(a[1] & termios.ONLCR))
print("env", os.environ.get("PROTO"), os.environ.get("IPCREMOTEEUID"), os.environ.get("IPCCONNNUM"))
EOF
start --pty -- sh -c 'tty; test -t 1 && [ -t 0 ] && echo sh-sees-tty; exec python3 "$0"' "$T/ttyinfo.py"
out=$("${PC[@]}" "$S" eof) || bad "ttyinfo: the connection did not close after the program exited"
plain=$(printf '%s' "$out" | tr -d '\r')
want="isatty True True True
same True
extra-fds []
leader True
ctty True
devtty ok
size 80 24
cooked True True True
env IPC $(id -u) 1"
[[ $plain == /dev/pts/[0-9]*$'\n'sh-sees-tty$'\n'"$want" ]] ||
    bad "the program on the pty saw: $(printf '%s' "$out" | show)"
[[ $out == *$'sh-sees-tty\r\nisatty'* ]] || bad "lines do not end in \\r\\n (onlcr): $(printf '%s' "$out" | show)"
stop
[ $fails = 0 ] && ok "--pty: tty is /dev/pts/N, fds 0-2 are it and nothing else is open, session leader, controlling tty (/dev/tty opens), 80x24, cooked+echo+onlcr, environment set"

# ---- 2. an interactive program answers; the client's EOF is ^D ----
f0=$fails
start --pty -- sh -c 'read x; echo "got $x"'
out=$("${PC[@]}" "$S" 'send:hello\n' 'wait:got hello' eof)
[ "$out" = $'hello\r\ngot hello\r' ] || bad "read/echo via python: $(printf '%s' "$out" | show)"
# socat as the client: its stdin's EOF follows the line at once
out=$(printf 'hi there\n' | timeout 20 socat -t 15 - UNIX-CONNECT:"$S")
[ "$out" = $'hi there\r\ngot hi there\r' ] || bad "read/echo via socat: $(printf '%s' "$out" | show)"
stop
# cat ends at the client's EOF, also after a partial line (^D ^D), and
# sees every byte; ^D itself is not echoed
start -v --pty -- cat
out=$("${PC[@]}" "$S" 'send:abc\npartial' shut eof) || bad "cat after EOF mid-line: did not end"
[ "$(grep -o abc <<<"$out" | wc -l) $(grep -o partial <<<"$out" | wc -l)" = "2 2" ] ||
    bad "cat, 'abc\\npartial' then EOF: want each twice (echo + cat): $(printf '%s' "$out" | show)"
[[ $out != *$'\x04'* && $out != *'^D'* ]] || bad "^D was echoed: $(printf '%s' "$out" | show)"
out=$(printf 'x\n' | timeout 20 socat -t 15 - UNIX-CONNECT:"$S")
[ "$out" = $'x\r\nx\r' ] || bad "cat, 'x\\n' then EOF via socat: $(printf '%s' "$out" | show)"
out=$("${PC[@]}" "$S" shut eof) || bad "cat, EOF at once: did not end"
[ -z "$out" ] || bad "cat, EOF at once: got $(printf '%s' "$out" | show)"
stop
# each cat exited by itself (none hung up while it ended: serve keeps a
# terminal its program has closed until the program is reaped)
[ "$(grep -c 'exited 0' "$LOG") $(grep -c 'killed' "$LOG")" = "3 0" ] ||
    bad "cat did not exit 0 on ^D each time: $(cat "$LOG")"
[ $fails = "$f0" ] && ok "--pty: read/echo answers (python and socat clients); the client's EOF is ^D: cat ends, after a partial line too, every byte seen"

# ---- 3. the program's exit: all its output, then the connection closes ----
f0=$fails
start --pty -v -- seq 1 20000
for round in 1 2 3; do
    # the client never sends EOF: the close comes from the program's exit
    "${PC[@]}" "$S" eof >"$T/seq.out" || bad "seq round $round: the connection did not close"
    lines=$(tr -d '\r' <"$T/seq.out" | wc -l)
    crlf=$(grep -c $'\r$' "$T/seq.out")
    last=$(tail -n 1 "$T/seq.out" | tr -d '\r')
    [ "$lines $crlf $last" = "20000 20000 20000" ] ||
        bad "seq round $round: $lines lines, $crlf with \\r\\n, last '$last'"
done
timeout 20 socat -t 15 - UNIX-CONNECT:"$S" </dev/null >"$T/seq.out"
[ "$(tr -d '\r' <"$T/seq.out" | sha256sum)" = "$(seq 1 20000 | sha256sum)" ] ||
    bad "seq via socat (EOF at once): output differs ($(wc -c <"$T/seq.out") bytes)"
stop
[ $fails = "$f0" ] && ok "--pty: seq 1 20000 arrives whole (4 runs, python and socat), then the connection closes"

# ---- 4. two clients at once: two terminals ----
f0=$fails
start --pty -- sh -c 'tty; read x; echo "bye $x"'
two=$(python3 - "$S" <<'EOF'
import socket, sys, time
def readuntil(s, pat, got=b""):
    end = time.monotonic() + 10
    while pat not in got:
        s.settimeout(max(0.01, end - time.monotonic()))
        b = s.recv(4096)
        if not b:
            raise SystemExit("EOF before %r: %r" % (pat, got))
        got += b
    return got
a, b = (socket.socket(socket.AF_UNIX) for _ in range(2))
a.connect(sys.argv[1]); b.connect(sys.argv[1])
# both programs run at once: each said its tty before either got a line
ta, tb = (readuntil(s, b"\r\n").strip().decode() for s in (a, b))
a.sendall(b"A\n"); b.sendall(b"B\n")
ra, rb = readuntil(a, b"bye A"), readuntil(b, b"bye B")
print(ta, tb, ta != tb and ta.startswith("/dev/pts/") and tb.startswith("/dev/pts/"))
EOF
)
[[ $two == *" True" ]] || bad "two clients: $two"
stop
[ $fails = "$f0" ] && ok "--pty: two clients at once get two terminals ($two)"

# ---- 5. --idle-timeout with --pty; -c with --pty ----
f0=$fails
start --idle-timeout 1 --pty -v -- cat
t0=$EPOCHREALTIME
out=$("${PC[@]}" "$S" eof) || bad "--idle-timeout 1 --pty: the idle client was not dropped within 20 s"
t1=$EPOCHREALTIME
el=$(python3 -c "print(round($t1 - $t0, 2))")
python3 -c "import sys; sys.exit(not (0.9 <= $el < 10))" || bad "--idle-timeout 1 --pty: dropped after $el s"
wait_grep "$LOG" "nothing from the client for 1 s"
poll_until grep -q 'killed by signal' "$LOG" || bad "--idle-timeout 1 --pty: the program was not stopped: $(cat "$LOG")"
# a client that talks is not dropped while it talks (echo goes both ways)
out=$("${PC[@]}" "$S" 'send:a\n' 'wait:a\r\na\r\n' 'send:b\n' 'wait:b\r\nb\r\n' shut eof)
[ "$out" = $'a\r\na\r\nb\r\nb\r' ] || bad "--idle-timeout 1 --pty, a talking client: $(printf '%s' "$out" | show)"
stop
start -c 1 -v --pty -- sh -c 'read x; echo "got $x"'
# the first client holds the only slot (admitted: its program started)
"${PC[@]}" "$S" 'wait:never' </dev/null >/dev/null 2>&1 &
HP=$!
PIDS+=("$HP")
poll_until grep -q 'started sh' "$LOG" || bad "-c 1: the first client was not served"
out=$("${PC[@]}" "$S" eof) || bad "-c 1 --pty: the second client was not closed"
[ -z "$out" ] || bad "-c 1 --pty: the refused client got $(printf '%s' "$out" | show)"
grep -q 'connection #2 closed\|refused\|-c' "$LOG" || bad "-c 1 --pty: no refusal logged: $(cat "$LOG")"
kill "$HP" 2>/dev/null; wait "$HP" 2>/dev/null
stop
[ $fails = "$f0" ] && ok "--pty with --idle-timeout 1: an idle client dropped after $el s, a talking one served; with -c 1 a second client is refused"

# ---- 6. -u: the terminal belongs to the program's user (root only) ----
f0=$fails
if [ "$(id -u)" = 0 ]; then
    TTYG=$(getent group tty | cut -d: -f3)
    want=${TTYG:+"65534 $TTYG 620"}
    start --pty -u nobody -- sh -c 'id -u; stat -c "%u %g %a" "$(tty)"'
    out=$("${PC[@]}" "$S" eof | tr -d '\r')
    [ "$out" = $'65534\n'"${want:-65534 65534 600}" ] || bad "-u nobody --pty: $(printf '%s' "$out" | show)"
    stop
    # without -u the terminal is the server's (uid 0), as devpts made it
    start --pty -- sh -c 'stat -c "%u" "$(tty)"'
    out=$("${PC[@]}" "$S" eof | tr -d '\r')
    [ "$out" = 0 ] || bad "--pty as root: $(printf '%s' "$out" | show)"
    stop
    [ $fails = "$f0" ] && ok "--pty -u nobody: the program runs as 65534 on a terminal owned by 65534, group tty, mode 0620"
else
    echo "skip: -u with --pty needs root"
fi

# ---- 7. without --pty: no terminal (with and without -i) ----
f0=$fails
for args in "" "--idle-timeout 30"; do
    # shellcheck disable=SC2086
    start $args -- sh -c 'tty; [ -t 0 ] || echo no-tty-0; [ -t 1 ] || echo no-tty-1; [ -t 2 ] && echo tty-2'
    out=$("${PC[@]}" "$S" eof </dev/null 2>&1)
    [ "$out" = $'not a tty\nno-tty-0\nno-tty-1' ] || bad "serve $args without --pty: $(printf '%s' "$out" | show)"
    stop
done
[ $fails = "$f0" ] && ok "without --pty the program has no terminal (stdin/stdout the socket, or the socketpair with --idle-timeout)"

# ---- the same habits in socat's pty mode, for the record ----
SS="$T/socat.sock"
socat UNIX-LISTEN:"$SS",fork EXEC:cat,pty,setsid,ctty 2>/dev/null &
SCP=$!
PIDS+=("$SCP")
if uds_wait_listen "$SS" "$SCP"; then
    out=$("${PC[@]}" "$SS" 'send:abc\npartial' shut eof 2>/dev/null)
    echo "socat EXEC:cat,pty,setsid,ctty, 'abc\\npartial' then EOF: $(printf '%s' "$out" | show)"
fi
kill "$SCP" 2>/dev/null; wait "$SCP" 2>/dev/null

[ $fails = 0 ] || exit 1
