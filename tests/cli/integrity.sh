#!/bin/bash
# integrity.sh — battery row 9 (issue 9), the short version: clients x
# messages with sequence numbers, lengths and checksums (tests/tools/
# integrity, raw syscalls) through the library server (examples/
# calc_server: uds_server, one loop) and through `udsock relay` to it, also
# with reconnects and big messages; 0 lost, duplicated, reordered,
# corrupted. First the judge is shown to catch each fault, against a
# LEN32 echo that drops, duplicates, swaps or flips a message.
# The full 1000 x 1000 run: tests/stress/integrity.sh.
# uds-test-timeout: 180
set -u
. "$(dirname "$0")/io_common.bash"
IT=$UDS_BUILD_DIR/tests/integrity
CALC=$UDS_BUILD_DIR/examples/calc_server
[ -x "$IT" ] && [ -x "$CALC" ] || fail "integrity or calc_server not built"

# ---- the judge catches every kind of fault --------------------------------
cat >"$T/liar.py" <<'EOF'
# A LEN32 echo server that misbehaves once, on the 6th frame of the first
# connection: drop (never answered), dup (answered twice), swap (the 7th
# answered before it), flip (one byte of the data changed).
import socket, sys
mode, path = sys.argv[1], sys.argv[2]
ls = socket.socket(socket.AF_UNIX)
ls.bind(path); ls.listen(8)
c, _ = ls.accept()
buf, n, held = b"", 0, None
while True:
    d = c.recv(65536)
    if not d:
        break
    buf += d
    while len(buf) >= 4 and len(buf) >= 4 + int.from_bytes(buf[:4], "big"):
        k = 4 + int.from_bytes(buf[:4], "big")
        f, buf = buf[:k], buf[k:]
        n += 1
        if n == 6 and mode == "drop":
            continue
        if n == 6 and mode == "dup":
            c.sendall(f)
        if n == 6 and mode == "swap":
            held = f
            continue
        if n == 6 and mode == "flip":
            f = f[:-1] + (b"A" if f[-1:] != b"A" else b"B")
        c.sendall(f)
        if held is not None and n == 7:
            c.sendall(held)
            held = None
EOF
for m in drop:lost dup:duplicated swap:reordered flip:corrupted; do
    mode=${m%%:*} what=${m#*:}
    rm -f "$T/liar.sock"
    bg python3 "$T/liar.py" "$mode" "$T/liar.sock"
    wait_listen "$T/liar.sock" "$LAST"
    out=$(timeout 20 "$IT" "$T/liar.sock" --proto echo --clients 1 --msgs 20 --window 4 --timeout 3 2>"$T/liar.err")
    rc=$?
    [ $rc = 1 ] || fail "$mode: integrity exited $rc: $out $(cat "$T/liar.err")"
    n=$(sed -n "s/.* $what \([0-9]*\) .*/\1/p" <<<"$out")
    [ "${n:-0}" -ge 1 ] || fail "$mode: not seen as $what: $out"
    kill "$LAST" 2>/dev/null
    ok "the judge sees a $mode as $what ($out)"
done

# ---- the library server and the relay -------------------------------------
bg "$CALC" "$T/calc.sock" 2>"$T/calc.err"
CP=$LAST
wait_listen "$T/calc.sock" "$CP"
bg "$U" relay "$T/relay.sock" "$T/calc.sock" 2>"$T/relay.err"
RP=$LAST
wait_listen "$T/relay.sock" "$RP"
N=100 M=100
is_asan && N=50
run() { # WHAT ADDR ARGS...
    local what=$1 out
    shift
    out=$(timeout 120 "$IT" "$@" --timeout 100 2>"$T/it.err") ||
        fail "$what: $out $(head -5 "$T/it.err")"
    case "$out" in *" lost 0 duplicated 0 reordered 0 corrupted 0 errors 0 "*) ;; *) fail "$what: $out" ;; esac
    ok "$what: $out"
}
run "calc_server, $N x $M" "$T/calc.sock" --clients $N --msgs $M --window 8
run "relay, $N x $M" "$T/relay.sock" --clients $N --msgs $M --window 8
run "calc_server, reconnect every 7, up to 256 KiB" "$T/calc.sock" --clients 20 --msgs 50 --reconnect 7 --max 262144 --seed 7
run "relay, reconnect every 7, up to 256 KiB" "$T/relay.sock" --clients 20 --msgs 50 --reconnect 7 --max 262144 --seed 7
run "relay, one byte messages, window 64" "$T/relay.sock" --clients 10 --msgs 2000 --min 1 --max 1 --window 64
kill -0 "$CP" && kill -0 "$RP" || fail "a server died"
exit 0
