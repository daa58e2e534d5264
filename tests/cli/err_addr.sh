#!/bin/bash
# Issue 10 defect 3: an address error says what is wrong, names the address,
# and exits 2 when the text is wrong, 1 when the resolver failed; for every
# command that takes an address (connect, listen, send, recv, serve, relay
# on both sides, bench --server/--client). Service names (tcp:HOST:http)
# are taken where socat takes them. Before the fix: "tcp:nohost:80" said
# "No route to host", the other four all said the same generic sentence,
# and "tcp:localhost:http" was refused.
# uds-test-timeout: 120
set -u
UDS_BUILD_DIR=${UDS_BUILD_DIR:-build}
. "$(dirname "$0")/io_common.bash"

# every form of every command that takes an address; X marks where it goes
forms=(
    "connect X"
    "listen X"
    "send X hi"
    "recv X"
    "serve X -- true"
    "relay X @udsock-err-$$"
    "relay @udsock-err-$$ X"
    "bench pingpong --server X"
    "bench pingpong --client X"
)

# check RC WANT_RC ADDR PATTERN...: runs every form with ADDR, wants status
# WANT_RC at once (stdin closed, no server anywhere) and each PATTERN (fixed
# text) in what it printed
check() {
    local want=$1 addr=$2
    shift 2
    local f
    for f in "${forms[@]}"; do
        local -a argv=()
        local w
        for w in $f; do
            if [ "$w" = X ]; then argv+=("$addr"); else argv+=("$w"); fi
        done
        local err rc
        err=$(timeout 30 "$U" "${argv[@]}" </dev/null 2>&1 >/dev/null)
        rc=$?
        [ "$rc" = "$want" ] || fail "udsock $f with '$addr': status $rc, want $want ($err)"
        [ "$(printf '%s\n' "$err" | wc -l)" = 1 ] || fail "udsock $f '$addr': not one line: $err"
        local p
        for p in "$addr" "$@"; do
            case "$err" in
            *"$p"*) ;;
            *) fail "udsock $f '$addr': no '$p' in: $err" ;;
            esac
        done
        case "$err" in
        *"No route to host"* | *"expected /path, unix:PATH"*)
            fail "udsock $f '$addr': the old generic text: $err" ;;
        esac
    done
}

# the resolver's failure: a runtime error (status 1), not "No route to host"
check 1 tcp:nohost:80 "cannot resolve host 'nohost'"
check 1 udp:bad..host:53 "cannot resolve host 'bad..host'"
ok "an unknown host: 'cannot resolve host', status 1, in every command"
err=$("$U" connect tcp:bad..host:80 </dev/null 2>&1)
[ "$err" = "udsock: connect tcp:bad..host:80: cannot resolve host 'bad..host': Name or service not known" ] ||
    fail "the whole text: $err"

check 2 tcp:1.2.3.4:99999 "port 99999 is out of range (0-65535)"
check 2 tcp:::1:7411 "IPv6 address needs brackets" "tcp:[::1]:7411"
check 2 "tcp:[::1]:" "port is missing"
check 2 tcp:127.0.0.1 "port is missing"
check 2 abstract: "abstract name is empty"
check 2 @ "abstract name is empty"
check 2 unix: "path is empty"
check 2 "tcp:[]:80" "host between [ and ] is empty"
check 2 "tcp:[::1:80" "'[' without its ']'"
check 2 tcp:127.0.0.1:-1 "bad port '-1'"
check 2 tcp:127.0.0.1:nosuchservice "unknown service 'nosuchservice'"
check 2 sctp:1.2.3.4:5 "unknown scheme 'sctp:'"
ok "bad address text: the cause named, status 2, in every command"
err=$("$U" connect "" </dev/null 2>&1); rc=$?
[ $rc = 2 ] && [ "$err" = "udsock: connect: bad address '': the address is empty" ] ||
    fail "empty address: $rc $err"
ok "an empty address says so"

# service names: a listener on the port a name stands for is reached by the
# name (/etc/services: "http-alt" is 8080/tcp; skipped if the port is held)
svc_port=$(getent services http-alt/tcp | awk '{split($2, a, "/"); print a[1]}')
[ -n "$svc_port" ] || fail "no http-alt in /etc/services (package netbase)"
if ss -Htln "sport = :$svc_port" | grep -q .; then
    echo "skip - port $svc_port is held by another program"
else
    echo by-name >"$T/reply"
    "$U" listen "tcp:127.0.0.1:http-alt" <"$T/reply" &
    L=$!
    PIDS+=($L)
    if uds_wait_listen "tcp:127.0.0.1:$svc_port" "$L" 2>/dev/null; then
        got=$(timeout 20 "$U" connect tcp:localhost:http-alt </dev/null) ||
            fail "connect tcp:localhost:http-alt: status $?"
        [ "$got" = by-name ] || fail "connect by service name got '$got'"
        ok "tcp:HOST:SERVICE listens and connects (port $svc_port from /etc/services)"
    else
        wait "$L"; rc=$?
        echo "skip - listen tcp:127.0.0.1:http-alt did not come up (status $rc; port taken meanwhile?)"
    fi
fi
echo ALL OK
