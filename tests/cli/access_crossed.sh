#!/bin/bash
# --allow-uid/--deny-uid/--allow-gid/--deny-gid of serve and relay for
# clients whose uid and gid differ: uid 65534 gid 0 and uid 0 gid 65534
# (setpriv --reuid/--regid, no supplementary group). Every other CLI test
# client has uid == gid, so a rule that compared the uid with a gid list
# (or the gid with a uid list), in the library or in the option parsing
# (--deny-gid taken as a uid rule), would pass them all. Each rule alone,
# on each id, for both commands; a refusal must give the client nothing
# and be logged by the access rules.
# uds-test-timeout: 120
set -u
if [ "$(id -u)" != 0 ]; then
    echo "SKIP: needs root (setpriv gives the clients other uids and gids)"
    exit 0
fi
. "$(dirname "$0")/io_common.bash"
chmod 755 "$T"
X="setpriv --reuid 65534 --regid 0 --clear-groups"
Y="setpriv --reuid 0 --regid 65534 --clear-groups"
[ "$($X id -u):$($X id -g):$($X id -G)" = "65534:0:0" ] || fail "client x is $($X id)"
[ "$($Y id -u):$($Y id -g):$($Y id -G)" = "0:65534:65534" ] || fail "client y is $($Y id)"

socat UNIX-LISTEN:"$T/echo.sock",fork,backlog=64 EXEC:cat 2>/dev/null &
PIDS+=($!)
wait_listen "$T/echo.sock"
echo ok >"$T/ok.txt"

# RULE ID WANT_X WANT_Y (x: uid 65534 gid 0; y: uid 0 gid 65534)
CASES=(
    "--allow-uid 0 deny allow"
    "--allow-uid 65534 allow deny"
    "--deny-uid 0 allow deny"
    "--deny-uid 65534 deny allow"
    "--allow-gid 0 allow deny"
    "--allow-gid 65534 deny allow"
    "--deny-gid 0 deny allow"
    "--deny-gid 65534 allow deny"
)
total=0 right=0 n=0
for cmd in serve relay; do
    for cs in "${CASES[@]}"; do
        set -- $cs
        rule="$1 $2" wx=$3 wy=$4
        n=$((n + 1))
        A=$T/c$n.sock log=$T/c$n.log
        if [ $cmd = serve ]; then
            "$U" serve $rule --mode 0666 "$A" -- sh -c 'echo ok' 2>"$log" &
            in=/dev/null
        else
            "$U" relay $rule --mode 0666 "$A" "$T/echo.sock" 2>"$log" &
            in=$T/ok.txt
        fi
        P=$!
        PIDS+=($P)
        wait_listen "$A" "$P"
        refusals=0
        for c in x y; do
            if [ $c = x ]; then sp=$X want=$wx; else sp=$Y want=$wy; fi
            [ $want = deny ] && refusals=$((refusals + 1))
            r=$(timeout 10 $sp socat -t 5 - UNIX-CONNECT:"$A" <"$in" 2>/dev/null)
            [ "$r" = ok ] && got=allow || got=deny
            total=$((total + 1))
            if [ $got = $want ]; then
                right=$((right + 1))
            else
                echo "FAIL: $cmd '$rule' client $c ($($sp id -u):$($sp id -g)): $got, want $want"
            fi
        done
        poll_until test "$(grep -c 'by the access rules' "$log")" = $refusals \
            || { echo "FAIL: $cmd '$rule': $(grep -c 'by the access rules' "$log") refusals logged, want $refusals: $(cat "$log")"; right=$((right - 1)); }
        kill $P
        wait $P 2>/dev/null
    done
done
echo "$right/$total correct"
[ $right = $total ] || exit 1
ok "uid != gid clients judged by the right id for every rule"
