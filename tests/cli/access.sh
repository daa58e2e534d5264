#!/bin/bash
# --allow-gid/--deny-gid of udsock serve and udsock relay with a client in
# 300 supplementary groups (setpriv --groups): a rule on a group past the
# 256th must be seen. Regression test: the rules used to read at most 256
# groups and took the kernel's ERANGE as "no groups", so such a client got
# past --deny-gid (fail-open).
# uds-test-timeout: 90
set -u
if [ "$(id -u)" != 0 ]; then
    echo "SKIP: needs root (setpriv --groups gives the client 300 groups)"
    exit 0
fi
. "$(dirname "$0")/io_common.bash"
chmod 755 "$T"
fail=0
bad() { echo "FAIL: $*"; fail=1; }
ok() { echo "ok: $*"; }
run() { # NAME ARGS...: start udsock in the background, stderr to $T/NAME.log
    local name=$1; shift
    "$U" "$@" 2>"$T/$name.log" &
    SP=$!
    PIDS+=("$SP")
}
stop() { kill "$SP"; wait "$SP" 2>/dev/null; }

G=$(seq -s, 200000 200299)       # 300 groups; 200280 is the 281st
MANY="setpriv --groups $G"
NONE="setpriv --clear-groups"
# the client really has them
n=$($MANY id -G | wc -w)
[ "$n" -ge 300 ] && ok "client in $n groups" || bad "setpriv gave $n groups"

# ---- serve ----
S=$T/s.sock
run sdeny serve --deny-gid 200280 "$S" -- sh -c 'echo hello'
wait_listen "$S"
r=$(timeout 5 $MANY socat -t 3 - UNIX-CONNECT:"$S" </dev/null 2>/dev/null)
[ -z "$r" ] && grep -q 'udsock: serve: refused connection #[0-9]* from pid [0-9]* uid 0: denied by the access rules' "$T/sdeny.log" \
    && ok "serve --deny-gid on the 281st group: refused" \
    || bad "serve deny-gid: got '$r'; log: $(cat "$T/sdeny.log")"
r=$(timeout 5 $NONE socat -t 3 - UNIX-CONNECT:"$S" </dev/null)
[ "$r" = hello ] && ok "serve --deny-gid: a client without the group served" \
    || bad "serve deny-gid, no groups: got '$r'"
stop

run sallow serve --allow-gid 200280 "$S" -- sh -c 'echo hello'
wait_listen "$S"
r=$(timeout 5 $MANY socat -t 3 - UNIX-CONNECT:"$S" </dev/null)
[ "$r" = hello ] && ok "serve --allow-gid on the 281st group: served" \
    || bad "serve allow-gid: got '$r'; log: $(cat "$T/sallow.log")"
r=$(timeout 5 $NONE socat -t 3 - UNIX-CONNECT:"$S" </dev/null 2>/dev/null)
[ -z "$r" ] && grep -q 'refused connection #[0-9]* from pid [0-9]* uid 0: not allowed by the access rules' "$T/sallow.log" \
    && ok "serve --allow-gid: a client without the group refused" \
    || bad "serve allow-gid, no groups: got '$r'"
stop

# ---- relay ----
socat UNIX-LISTEN:"$T/echo.sock",fork,backlog=64 EXEC:cat 2>/dev/null &
PIDS+=($!)
wait_listen "$T/echo.sock"
R=$T/r.sock
run rdeny relay --deny-gid 200280 "$R" "$T/echo.sock"
wait_listen "$R"
r=$(echo x | timeout 5 $MANY socat -t 3 - UNIX-CONNECT:"$R" 2>/dev/null)
[ -z "$r" ] && grep -q 'udsock: relay: refused connection #1 from pid [0-9]* uid 0: denied by the access rules' "$T/rdeny.log" \
    && ok "relay --deny-gid on the 281st group: refused" \
    || bad "relay deny-gid: got '$r'; log: $(cat "$T/rdeny.log")"
r=$(echo x | timeout 5 $NONE socat -t 3 - UNIX-CONNECT:"$R")
[ "$r" = x ] && ok "relay --deny-gid: a client without the group relayed" \
    || bad "relay deny-gid, no groups: got '$r'"
stop

run rallow relay --allow-gid 200280 "$R" "$T/echo.sock"
wait_listen "$R"
r=$(echo x | timeout 5 $MANY socat -t 3 - UNIX-CONNECT:"$R")
[ "$r" = x ] && ok "relay --allow-gid on the 281st group: relayed" \
    || bad "relay allow-gid: got '$r'; log: $(cat "$T/rallow.log")"
stop

exit $fail
