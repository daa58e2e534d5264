#!/bin/bash
# The allow/deny matrix (battery row 4): every rule kind and the
# combinations whose order matters, against serve and relay, over a path
# and an abstract socket, for clients with 0, 1 and 300 supplementary
# groups as uid 0 and as uid 65534 (setpriv). One server per rule set and
# transport; each client's outcome is compared with the decision order of
# udsock(1) (deny first, then "no allow rule", then the allow rules),
# computed here independently. A refused client must get nothing and the
# server must log a refusal for each one ("deny never fails open").
# TCP (127.0.0.1 and ::1): a uid/gid rule cannot be judged for a TCP peer,
# so serve and relay refuse to start with one (exit 2, nothing listening);
# without rules they serve TCP clients.
# Prints "N/N correct, deny never failed open" on success.
# uds-test-timeout: 240
set -u
if [ "$(id -u)" != 0 ]; then
    echo "SKIP: needs root (setpriv gives the clients other uids and groups)"
    exit 0
fi
. "$(dirname "$0")/io_common.bash"
chmod 755 "$T"
total=0 right=0 failopen=0
bad() { echo "FAIL: $*"; }

G1=200001
G300=$(seq -s, 200000 200299)   # 300 groups: 200001 is the 2nd, 200280 the 281st
# client NAME -> setpriv arguments; its uid, primary gid and groups
CLIENTS="r0 r1 r300 n0 n1 n300"
declare -A SP UID_ GID_ GRP
for c in $CLIENTS; do
    case $c in
    r*) SP[$c]="--reuid 0 --regid 0"; UID_[$c]=0; GID_[$c]=0 ;;
    n*) SP[$c]="--reuid 65534 --regid 65534"; UID_[$c]=65534; GID_[$c]=65534 ;;
    esac
    case $c in
    *0) SP[$c]+=" --clear-groups"; GRP[$c]="" ;;
    *1) SP[$c]+=" --groups $G1"; GRP[$c]=$G1 ;;
    *300) SP[$c]+=" --groups $G300"; GRP[$c]=$G300 ;;
    esac
done
# the clients really are who they should be
for c in $CLIENTS; do
    got=$(setpriv ${SP[$c]} sh -c 'echo "$(id -u) $(id -g) $(id -G | wc -w)"')
    want="${UID_[$c]} ${GID_[$c]} $((1 + $(echo "${GRP[$c]}" | tr , ' ' | wc -w)))"
    [ "$got" = "$want" ] || fail "client $c: id says '$got', want '$want'"
done

# rule sets: the options as given to serve/relay
RULES=(
    ""
    "--allow-uid 0"
    "--deny-uid 0"
    "--allow-uid 65534"
    "--deny-uid 65534"
    "--allow-uid 0,65534"
    "--allow-gid $G1"
    "--deny-gid $G1"
    "--allow-gid 200280"
    "--deny-gid 200280"
    "--allow-gid 65534"
    "--deny-gid 0"
    "--allow-gid $G1,200280"
    "--allow-uid 0 --deny-gid 200280"
    "--allow-uid 65534 --allow-gid $G1"
    "--deny-uid 0 --allow-gid $G1"
    "--deny-uid 65534 --deny-gid 200280"
    "--allow-gid 0 --deny-gid $G1"
    "--allow-uid 0 --deny-uid 0"
)

inlist() { # ID LIST(comma-separated)
    case ",$2," in *",$1,"*) return 0 ;; esac
    return 1
}
# expect RULES CLIENT -> "allow" or "deny" (udsock(1)'s order)
expect() {
    local -a w=($1)
    local c=$2 i au="" du="" ag="" dg="" g
    for ((i = 0; i < ${#w[@]}; i += 2)); do
        case ${w[i]} in
        --allow-uid) au+=",${w[i + 1]}" ;;
        --deny-uid) du+=",${w[i + 1]}" ;;
        --allow-gid) ag+=",${w[i + 1]}" ;;
        --deny-gid) dg+=",${w[i + 1]}" ;;
        esac
    done
    local groups="${GID_[$c]},${GRP[$c]}"
    inlist "${UID_[$c]}" "$du" && { echo deny; return; }
    for g in ${groups//,/ }; do inlist "$g" "$dg" && { echo deny; return; }; done
    [ -z "$au$ag" ] && { echo allow; return; }
    inlist "${UID_[$c]}" "$au" && { echo allow; return; }
    for g in ${groups//,/ }; do inlist "$g" "$ag" && { echo allow; return; }; done
    echo deny
}

socat UNIX-LISTEN:"$T/echo.sock",fork,backlog=64 EXEC:cat 2>/dev/null &
PIDS+=($!)
wait_listen "$T/echo.sock"

echo ok >"$T/ok.txt"
n=0
for cmd in serve relay; do
    for tr in path abstract; do
        for rs in "${RULES[@]}"; do
            n=$((n + 1))
            if [ $tr = path ]; then A=$T/m$n.sock; C=UNIX-CONNECT:$A; else A=@udsock-matrix-$$-$n; C=ABSTRACT-CONNECT:${A#@}; fi
            log=$T/m$n.log
            if [ $cmd = serve ]; then
                "$U" serve $rs --mode 0666 "$A" -- sh -c 'echo ok' 2>"$log" &
            else
                "$U" relay $rs --mode 0666 "$A" "$T/echo.sock" 2>"$log" &
            fi
            P=$!
            PIDS+=($P)
            wait_listen "$A" "$P"
            refusals=0
            for c in $CLIENTS; do
                want=$(expect "$rs" "$c")
                [ $want = deny ] && refusals=$((refusals + 1))
                # serve's program does not read: the client sends nothing
                # (writing to a program that has exited may fail socat)
                if [ $cmd = serve ]; then in=/dev/null; else in=$T/ok.txt; fi
                r=$(timeout 10 setpriv ${SP[$c]} socat -t 5 - "$C" <"$in" 2>/dev/null)
                [ "$r" = ok ] && got=allow || got=deny
                total=$((total + 1))
                if [ $got = $want ]; then
                    right=$((right + 1))
                else
                    bad "$cmd $tr '$rs' client $c: $got, want $want"
                    [ $want = deny ] && failopen=$((failopen + 1))
                fi
            done
            # every refusal logged as one by the rules (the log may lag: poll)
            poll_until test "$(grep -c 'by the access rules' "$log")" = $refusals \
                || bad "$cmd $tr '$rs': $(grep -c 'by the access rules' "$log") refusals logged, want $refusals: $(cat "$log")"
            kill $P
            wait $P 2>/dev/null
        done
    done
done

# TCP: rules are refused at start (a TCP peer has no uid), nothing listens
for cmd in serve relay; do
    for host in 127.0.0.1 '[::1]'; do
        for rs in "--allow-uid 0" "--deny-uid 65534" "--allow-gid 0" "--deny-gid $G1"; do
            total=$((total + 1))
            if [ $cmd = serve ]; then
                timeout 10 "$U" serve $rs "tcp:$host:0" -- sh -c 'echo ok' 2>"$T/tcp.log"
            else
                timeout 10 "$U" relay $rs "tcp:$host:0" "$T/echo.sock" 2>"$T/tcp.log"
            fi
            st=$?
            if [ $st = 2 ] && grep -q 'need a' "$T/tcp.log"; then
                right=$((right + 1))
            else
                bad "$cmd tcp:$host '$rs': exit $st ($(cat "$T/tcp.log")), want 2 (usage: rules need a unix socket)"
                failopen=$((failopen + 1))
            fi
        done
        # without rules a TCP client is served
        total=$((total + 1))
        # a free port now may be taken by another program before we bind it:
        # the wait (which counts only our process's socket) says so, try another
        for try in 1 2 3 4 5; do
            port=$(python3 -c 'import socket,sys; s=socket.socket(socket.AF_INET6 if ":" in sys.argv[1] else socket.AF_INET); s.bind((sys.argv[1].strip("[]"),0)); print(s.getsockname()[1])' "$host")
            if [ $cmd = serve ]; then
                "$U" serve "tcp:$host:$port" -- sh -c 'echo ok' 2>"$T/tcp.log" &
            else
                "$U" relay "tcp:$host:$port" "$T/echo.sock" 2>"$T/tcp.log" &
            fi
            P=$!
            PIDS+=($P)
            uds_wait_listen "tcp:$host:$port" "$P" && break
            [ $try != 5 ] || fail "$cmd tcp:$host:$port: no listener after 5 ports: $(cat "$T/tcp.log")"
            kill $P 2>/dev/null
            wait $P 2>/dev/null
        done
        if [ $cmd = serve ]; then in=/dev/null; else in=$T/ok.txt; fi
        r=$(timeout 10 setpriv --reuid 65534 --regid 65534 --clear-groups socat -t 5 - "TCP:$host:$port" <"$in" 2>/dev/null)
        [ "$r" = ok ] && right=$((right + 1)) || bad "$cmd tcp:$host:$port without rules: got '$r'"
        kill $P
        wait $P 2>/dev/null
    done
done

if [ $right = $total ] && [ $failopen = 0 ]; then
    echo "$right/$total correct, deny never failed open"
    exit 0
fi
echo "$right/$total correct, $failopen failed open"
exit 1
