#!/bin/bash
# --frame len32|line on connect and listen (issue 10): the CLI talks to
# servers and clients built on the library (examples/calc_server and
# calc_client, LEN32 frames on a stream, one packet a message on
# seqpacket): each stdin line is one message, each message one output line.
# A hostile peer's frame header (over the 1 MiB limit, or the reserved top
# bit) and a stream that ends inside a frame fail with a message (status
# 1); bad uses are usage errors (2).
# uds-test-timeout: 60
set -u
. "$(dirname "$0")/io_common.bash"
need python3
CALC=$UDS_BUILD_DIR/examples/calc_server
CC=$UDS_BUILD_DIR/examples/calc_client
[ -x "$CALC" ] && [ -x "$CC" ] || fail "calc_server/calc_client not built"
fail=0
bad() { echo "FAIL: $*"; fail=1; }

# 1. connect --frame len32 to the library's server: requests pipelined,
#    "\r\n" and a last line without "\n" each one message; an empty line is
#    an empty request (answered with the server's error)
bg "$CALC" "$T/c.sock" 2>/dev/null
wait_listen "$T/c.sock" "$LAST"
got=$(printf 'sum 1 2\nupper ab\r\n\nsum 3 4' | timeout 10 "$U" connect --frame len32 "$T/c.sock"); rc=$?
want=$(printf '3\nAB\n%s\n7' "error: unknown command '' (try sum mul sort expr hash upper sleep)")
[ $rc = 0 ] && [ "$got" = "$want" ] || bad "connect --frame len32 to calc_server: status $rc, got '$got'"
# without --frame the server gets bytes that are no frame and answers nothing
got=$(printf 'sum 1 2\n' | timeout 10 "$U" connect -q 1 "$T/c.sock" 2>/dev/null)
[ -z "$got" ] || bad "without --frame: got '$got'"
[ $fail = 0 ] && echo "ok: connect --frame len32: 4 lines, 4 framed requests, 4 answers as lines"

# 2. seqpacket: --frame line makes each line one packet
bg "$CALC" --seqpacket "$T/q.sock" 2>/dev/null
wait_listen "$T/q.sock" "$LAST"
got=$(printf 'sum 5 5\nupper q\n' | timeout 10 "$U" connect --frame line "$T/q.sock"); rc=$?
[ $rc = 0 ] && [ "$got" = "$(printf '10\nQ')" ] || bad "connect --frame line to calc_server --seqpacket: status $rc, '$got'"

# 3. listen --frame len32 with the library's client: the request is printed
#    as a line, our stdin line is its answer (written once the request is in)
mkfifo "$T/l.in"
exec {LIN}<>"$T/l.in"
# (not bg: an & inside a function gets /dev/null as stdin)
"$U" listen -v --frame len32 "$T/l.sock" <"$T/l.in" {LIN}>&- >"$T/l.out" 2>"$T/l.err" &
LP=$!
PIDS+=($LP)
wait_listen "$T/l.sock" "$LP"
"$CC" "$T/l.sock" "hello there" >"$T/cc.out" 2>&1 &
CP=$!
wait_grep "$T/l.out" "hello there"
echo "the answer" >&$LIN
wait "$CP"; rc=$?
exec {LIN}>&-
wait "$LP"
[ $rc = 0 ] && [ "$(cat "$T/cc.out")" = "the answer" ] && [ "$(cat "$T/l.out")" = "hello there" ] ||
    bad "listen --frame len32 with calc_client: client status $rc '$(cat "$T/cc.out")', listen printed '$(cat "$T/l.out")'; $(cat "$T/l.err")"
[ $fail = 0 ] && echo "ok: --frame line on seqpacket; listen --frame len32 served calc_client"

# 4. hostile frames: each server sends BYTES once and closes
hostile() { # NAME BYTES(python literal)
    python3 -c '
import socket, sys
s = socket.socket(socket.AF_UNIX); s.bind(sys.argv[1]); s.listen(1)
c, _ = s.accept(); c.sendall(eval(sys.argv[2])); c.close()' "$T/$1.sock" "$2" &
    PIDS+=($!)
    wait_listen "$T/$1.sock" "$!"
}
hostile big 'b"\x40\x00\x00\x00" + b"x" * 100'
err=$(timeout 10 "$U" connect --frame len32 "$T/big.sock" </dev/null 2>&1 >/dev/null); rc=$?
[ $rc = 1 ] && [[ $err == *"over --frame's limit of 1 MiB"* ]] || bad "1 GiB header: status $rc, '$err'"
hostile top 'b"\x80\x00\x00\x05hello"'
err=$(timeout 10 "$U" connect --frame len32 "$T/top.sock" </dev/null 2>&1 >/dev/null); rc=$?
[ $rc = 1 ] && [[ $err == *"top bit"* ]] || bad "reserved bit: status $rc, '$err'"
hostile cut 'b"\x00\x00\x00\x02ok\x00\x00\x00\x10part"'
out=$(timeout 10 "$U" connect --frame len32 "$T/cut.sock" </dev/null 2>"$T/cut.err"); rc=$?
[ $rc = 1 ] && [ "$out" = ok ] && grep -q "ended inside a message (8 bytes of it)" "$T/cut.err" ||
    bad "cut frame: status $rc, out '$out', $(cat "$T/cut.err")"
[ $fail = 0 ] && echo "ok: a 1 GiB header, the reserved bit and a cut frame: status 1, said; the whole frame before them printed"

# 5. usage
for args in "connect --frame bogus $T/c.sock" "connect --frame len32 $T/q.sock" \
    "listen -k --frame len32 $T/x.sock" "listen --type dgram --frame line $T/x.sock"; do
    # shellcheck disable=SC2086
    err=$(timeout 5 "$U" $args </dev/null 2>&1); rc=$?
    [ $rc = 2 ] || bad "udsock $args: status $rc (want 2): $err"
done
[ ! -e "$T/x.sock" ] || bad "a usage error made a socket file"
exit $fail
