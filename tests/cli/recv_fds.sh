#!/bin/bash
# Passing fds from the shell (issue 10; util-linux#3683; socat cannot):
# `send --fd N|FILE` attaches fds to the first datagram (SCM_RIGHTS);
# `recv --fds` says on stderr what each fd is and, with --reply CMD, hands
# them to CMD as fds 3, 4, ... (UDSOCK_FDS / LISTEN_FDS say how many). Fds
# are never kept: without --fds they are refused and closed, with --fds
# closed once reported or once CMD has run (a python peer sees its pipe's
# write end go away). A python receiver takes what send passes.
# uds-test-timeout: 60
set -u
. "$(dirname "$0")/io_common.bash"
need python3
fail=0
bad() { echo "FAIL: $*"; fail=1; }
echo "the file's content" >"$T/f.txt"

# 1. send --fd FILE --fd 0 -> recv --fds --reply: the command reads both
R="$T/r.sock"
bg "$U" recv -n 1 --fds --reply 'cat <&3; cat <&4; echo "n=$UDSOCK_FDS/$LISTEN_FDS"' "$R" \
    >"$T/r.out" 2>"$T/r.err"
RP=$LAST
wait_bound "$R" "$RP"
got=$(echo "piped data" | timeout 10 "$U" send -r --fd "$T/f.txt" --fd 0 "$R" hello); rc=$?
want=$(printf "the file's content\npiped data\nn=2/2")
[ $rc = 0 ] && [ "$got" = "$want" ] || bad "send --fd FILE --fd 0 to recv --fds --reply: status $rc, '$got'"
wait "$RP"
grep -q "2 fds from .*: 0: regular file $T/f.txt, 1: pipe" "$T/r.err" || bad "recv --fds did not say what arrived: $(cat "$T/r.err")"
[ "$(cat "$T/r.out")" = hello ] || bad "recv --fds: the datagram itself: '$(cat "$T/r.out")'"
[ $fail = 0 ] && echo "ok: send --fd FILE --fd 0, recv --fds --reply: the command read fd 3 (the file) and fd 4 (the pipe); stderr said what they were"

# 2. fds are never kept: a python sender passes its pipe's write end, closes
#    its own, and must see EOF on the read end (recv closed the copy)
cat >"$T/fdpeer.py" <<'EOF'
import array, os, select, socket, sys
addr = sys.argv[1]
r, w = os.pipe()
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind("")  # an address, so recv can answer
s.sendmsg([b"with-an-fd"], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", [w]))], 0, addr)
os.close(w)
ok, _, _ = select.select([r], [], [], 10)
print("closed" if ok and os.read(r, 1) == b"" else "kept")
EOF
for mode in "" "--fds" "--fds --echo"; do
    R2="$T/r2-$RANDOM.sock"
    # shellcheck disable=SC2086
    bg "$U" recv -n 1 $mode "$R2" >/dev/null 2>"$T/r2.err"
    P=$LAST
    wait_bound "$R2" "$P"
    got=$(timeout 15 python3 "$T/fdpeer.py" "$R2")
    [ "$got" = closed ] || bad "recv ${mode:-without --fds}: the passed fd was $got: $(cat "$T/r2.err")"
    kill "$P" 2>/dev/null # (a refused datagram does not count for -n)
    wait "$P" 2>/dev/null
    if [ -z "$mode" ]; then
        grep -q "a datagram was refused: it carried fds (take them with --fds)" "$T/r2.err" ||
            bad "recv without --fds: no reason given: $(cat "$T/r2.err")"
    fi
done
[ $fail = 0 ] && echo "ok: recv closes every fd it is passed: refused without --fds, after the report with --fds, after --echo"

# 3. a receiver nobody here wrote (python recvmsg) takes what send passes
cat >"$T/taker.py" <<'EOF'
import array, os, socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1])
print("bound", flush=True)
msg, anc, flags, _ = s.recvmsg(100, socket.CMSG_SPACE(4 * 4))
fds = array.array("i")
for lvl, typ, data in anc:
    if lvl == socket.SOL_SOCKET and typ == socket.SCM_RIGHTS:
        fds.frombytes(data[: len(data) - len(data) % 4])
print(msg.decode(), len(fds), os.read(fds[0], 100).decode().strip() if fds else "-", flush=True)
EOF
python3 "$T/taker.py" "$T/t.sock" >"$T/t.out" &
TP=$!
PIDS+=($TP)
wait_bound "$T/t.sock" "$TP"
timeout 10 "$U" send --fd "$T/f.txt" "$T/t.sock" take-this || bad "send --fd to python: status $?"
wait "$TP"
[ "$(tail -1 "$T/t.out")" = "take-this 1 the file's content" ] || bad "python receiver: '$(cat "$T/t.out")'"
[ $fail = 0 ] && echo "ok: a python recvmsg receiver got the datagram and one fd, and read the file through it"

# 4. usage
for args in "--fd 99 $T/t.sock x" "--fd $T/no-such-file $T/t.sock x" "--fd 0 udp:127.0.0.1:9 x"; do
    # shellcheck disable=SC2086
    err=$(timeout 5 "$U" send $args 2>&1 99>&-); rc=$?
    [ $rc = 2 ] || bad "send $args: status $rc (want 2): $err"
done
exit $fail
