#!/usr/bin/env bash
# Numbers on the command line (issue 14 items 5 and 7):
#   - --owner/--group of listen, recv, serve and relay go through one
#     parser: a uid/gid above 4294967294 (which wrapped onto a real id:
#     4294968296 -> 1000) and (uid_t)-1 itself (4294967295, silently
#     ignored by chown) are refused with exit 2, a message naming the
#     option and the value, and no socket file; 65534 still works (root)
#   - every count, size, mode and duration is digits only: ' 5', '+5',
#     '5 ', '0x5', '1e3' are refused (exit 2) by serve -c/-C/--backlog,
#     relay -c/--max-msg, recv --count, listen --mode, send --timeout,
#     connect --wait, ls --depth; the plain forms are still taken
set -u
. "$(dirname "$0")/io_common.bash"

# refused WHAT-MUST-APPEAR CMD...: exit 2, the text in the message, no file
refused() {
    local must=$1; shift
    local err rc
    rm -f "$T/s.sock"
    err=$(timeout 10 "$U" "$@" 2>&1 </dev/null >/dev/null); rc=$?
    [ "$rc" = 2 ] || fail "'udsock $*': status $rc, want 2 ($err)"
    case $err in *"$must"*) ;; *) fail "'udsock $*': message '$err' does not name '$must'" ;; esac
    [ ! -e "$T/s.sock" ] || fail "'udsock $*': refused, but made the socket file"
}
# taken CMD...: parsing went through (any status but 2: the command ran)
taken() {
    local rc err
    err=$(timeout 10 "$U" "$@" 2>&1 </dev/null >/dev/null); rc=$?
    [ "$rc" != 2 ] || fail "'udsock $*': refused as a usage error: $err"
}

S=$T/s.sock
for v in 4294968296 4294967295 99999999999999999999999; do
    refused "--owner '$v'" listen --owner "$v" "$S"
    refused "--group '$v'" listen --group "$v" "$S"
    refused "--owner '$v'" recv --owner "$v" "$S"
    refused "--group '$v'" recv --group "$v" "$S"
    refused "--owner '$v'" serve --owner "$v" "$S" -- true
    refused "--group '$v'" serve --group "$v" "$S" -- true
    refused "--owner '$v'" relay --owner "$v" "$S" "$T/t.sock"
    refused "--group '$v'" relay --group "$v" "$S" "$T/t.sock"
done
refused "--owner 'no-such-user-here'" listen --owner no-such-user-here "$S"
refused "--group '+5'" recv --group +5 "$S"
ok "--owner/--group: out of range and (uid_t)-1 refused (exit 2, option and value named)"

if [ "$(id -u)" = 0 ]; then
    bg "$U" listen --owner 65534 --group 65534 "$S"
    wait_listen "$S" "$LAST"
    [ "$(stat -c '%u:%g' "$S")" = 65534:65534 ] || fail "listen --owner 65534: $(stat -c '%u:%g' "$S")"
    kill "$LAST"; wait "$LAST" 2>/dev/null
    rm -f "$S"
    bg "$U" recv --owner 65534 --group 65534 "$S"
    wait_bound "$S" "$LAST"
    [ "$(stat -c '%u:%g' "$S")" = 65534:65534 ] || fail "recv --owner 65534: $(stat -c '%u:%g' "$S")"
    kill "$LAST"; wait "$LAST" 2>/dev/null
    rm -f "$S"
    ok "--owner/--group 65534 still applied (listen, recv)"
fi

for v in ' 5' '+5' '5 ' '0x5' '5x' '' '-5'; do
    refused "-c '$v'" serve -c "$v" "$S" -- true
    refused "-C '$v'" serve -C "$v" "$S" -- true
    refused "--backlog '$v'" serve --backlog "$v" "$S" -- true
    refused "-c '$v'" relay -c "$v" "$S" "$T/t.sock"
    refused "--count '$v'" recv --count "$v" "$S"
    refused "--depth '$v'" ls --depth "$v"
done
for v in ' 1' '+1' '1 ' '0x10' '1e3' 'inf' 'nan' '.' '1.2.3'; do
    refused "--timeout '$v'" send --timeout "$v" "$S" m
    refused "--wait '$v'" connect --wait "$v" "$S"
done
for v in ' 4k' '+4k' '0x10' '1e3' '4 k'; do
    refused "--max-msg '$v'" relay --max-msg "$v" "$S" "$T/t.sock"
done
for v in ' 0600' '+0600' '0689' '0600 '; do
    refused "--mode '$v'" listen --mode "$v" "$S"
    refused "--mode '$v'" serve --mode "$v" "$S" -- true
done
ok "counts, sizes, modes, durations: spaces, signs, hex, exponents refused"

# the plain forms still parse (the commands then fail on the missing socket)
taken send --timeout 0.5 "$T/none.sock" m
taken send --timeout 2 "$T/none.sock" m
taken connect --wait 0.2 "$T/none.sock"
taken ls --depth 3
bg "$U" serve -c 5 -C 2 --backlog 8 --mode 0600 "$S" -- true
wait_listen "$S" "$LAST"
kill "$LAST"; wait "$LAST" 2>/dev/null
rm -f "$S"
bg "$U" relay -c 5 --max-msg 4k "$S" "$T/t.sock"
wait_listen "$S" "$LAST"
kill "$LAST"; wait "$LAST" 2>/dev/null
ok "plain numbers still taken (send, connect, ls, serve, relay)"
