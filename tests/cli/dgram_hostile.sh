#!/bin/bash
# uds-test-timeout: 150
# Issue 14 item 1 (and `listen -k --type dgram`, item 7): datagram replies
# never block. A hostile peer (dgram_peer.py, uid 65534 when we are root)
# sends requests and never reads its replies; an innocent `udsock send -r
# -T 3` must still be answered, well within its timeout, by:
#   - recv --echo and recv --reply CMD against 64 (40) such sockets (each
#     keeps 11 unread replies charged to recv's send buffer: the default
#     208 KiB is full after 25 of them and every other reply was lost);
#   - listen --type dgram (also with -k), whose stdin went to the hostile
#     sender through a blocking sendto that slept for as long as it lived;
# the drops are said at most once a second (plus a summary line), where
# recv used to print one line per lost reply. `send -T 1` to a receiver
# whose queue is full fails in about 1 s (it waited for ever).
set -u
. "$(dirname "$0")/io_common.bash"
PEER=$(dirname "$0")/dgram_peer.py
PY=/usr/bin/python3 # the system one: a user's pyenv shim is not ours to run as 65534
[ -x "$PY" ] || PY=$(command -v python3)
AS=() WHO=$(id -u)
[ "$WHO" = 0 ] && AS=(setpriv --reuid=65534 --regid=65534 --clear-groups) WHO=65534
LIM=3000 # the innocent's -T; asserted: served before it
ms() { echo $(($(date +%s%N) / 1000000)); }
# hostile NAME MODE ARGS...: starts the peer (its text on the command line:
# readable whatever the checkout's permissions), waits for its "ready";
# sets HPID
hostile() {
    local n=$1
    shift
    bg "${AS[@]}" "$PY" -c "$(cat "$PEER")" "$@" >"$T/$n.hout" 2>&1
    HPID=$LAST
    wait_grep "$T/$n.hout" ready
}
# innocent ADDR: one send -r -T 3; sets IMS (ms) and IOUT, fails unless answered
innocent() {
    local t0 rc
    t0=$(ms)
    IOUT=$(timeout 10 "$U" send -r -T 3 "$1" innocent-hello 2>&1)
    rc=$?
    IMS=$(($(ms) - t0))
    [ $rc = 0 ] || fail "$2: innocent client: status $rc after $IMS ms: $IOUT"
    [ $IMS -lt $LIM ] || fail "$2: innocent client answered only after $IMS ms"
}
# bounded_log FILE SECONDS WHAT: at most 2 drop lines a second (+2)
bounded_log() {
    local n
    n=$(grep -c 'dropped' "$1")
    [ "$n" -ge 1 ] || fail "$3: no drop was logged: $(head -3 "$1")"
    [ "$n" -le $((2 * $2 + 2)) ] || fail "$3: $n drop lines in $2 s: $(head -5 "$1")"
    grep -q 'more replies dropped in the last second' "$1" || fail "$3: no summary line: $(head -5 "$1")"
    DROPS=$n
}

# ---- recv --echo and recv --reply against 64 sockets that never read ----
for how in echo reply; do
    A=@udsock-dgh-$how-$$
    case $how in
    echo) bg "$U" recv --echo "$A" >/dev/null 2>"$T/$how.err" ;;
    reply) bg "$U" recv --reply cat "$A" >/dev/null 2>"$T/$how.err" ;;
    esac
    RP=$LAST
    wait_bound "$A" "$RP"
    t0=$(ms)
    # "ready": 24 (--reply, one fork each: 12 from 40 sockets) requests per
    # socket taken by recv, whose replies fill their queues (11 each: 768
    # bytes of recv's send buffer apiece, so 540 KB, or 338 KB, of the
    # default 208 KiB before the fix); they then stay open, never reading
    case $how in
    echo) NS=64; hostile $how flood "$A" 64 24 ;;
    reply) NS=40; hostile $how flood "$A" 40 12 ;;
    esac
    innocent "$A" "recv --$how"
    [ "$IOUT" = innocent-hello ] || fail "recv --$how: reply '$IOUT'"
    kill "$HPID"
    kill -0 "$RP" || fail "recv --$how died"
    # one more interval, for the summary line
    poll_until grep -q 'more replies dropped' "$T/$how.err"
    secs=$((($(ms) - t0 + 999) / 1000))
    bounded_log "$T/$how.err" "$secs" "recv --$how"
    ok "recv --$how vs $NS sockets that never read (uid $WHO): innocent send -r -T 3 answered in $IMS ms; $DROPS drop lines in ${secs} s"
    kill "$RP"
done

# ---- listen --type dgram: stdin to a sender that never reads ----------------
for k in "" -k; do
    A=@udsock-dgh-listen$k-$$
    # stdin never ends: every read goes to the last named sender at once
    bg bash -c "exec \"$U\" listen $k -v --type dgram \"$A\" < <(yes listen-data) >\"$T/l.out\" 2>\"$T/l.err\""
    LP=$LAST
    wait_bound "$A"
    hostile listen burst "$A" 5
    # the hostile is the last sender (its datagrams printed): stdin fills
    # its queue at once (before the fix listen then slept in sendto)
    wait_grep "$T/l.out" hostile
    innocent "$A" "listen $k --type dgram"
    grep -q dropped "$T/l.err" || fail "listen $k: nothing dropped: $(head -3 "$T/l.err")"
    [[ "$IOUT" == listen-data* ]] || fail "listen $k --type dgram: reply '${IOUT:0:80}'"
    grep -q innocent-hello "$T/l.out" || fail "listen $k: the innocent datagram was not printed"
    [ -z "$k" ] || grep -q -- '-k: datagrams from every sender are heard' "$T/l.err" || fail "listen -k --type dgram -v: no note about -k"
    ok "listen $k --type dgram, stdin to a sender that never reads: innocent send -r -T 3 answered in $IMS ms"
    kill "$HPID" "$LP"
done

# ---- listen -k's limits mean nothing for datagrams: refused -----------------
for opt in "-c 5" "-C 5" "--idle-timeout 5"; do
    # shellcheck disable=SC2086
    err=$("$U" listen -k $opt --type dgram "$T/never.sock" 2>&1 </dev/null)
    rc=$?
    [ $rc = 2 ] && [[ "$err" == *"datagrams have none"* ]] || fail "listen -k $opt --type dgram: status $rc: $err"
    [ -e "$T/never.sock" ] && fail "listen -k $opt --type dgram bound a socket"
done
err=$("$U" listen -k -c 5 udp:127.0.0.1:0 2>&1 </dev/null)
[ $? = 2 ] || fail "listen -k -c 5 udp: accepted: $err"
ok "listen -k with -c/-C/--idle-timeout and datagrams: exit 2 ($err)"

# ---- send -T 1 to a receiver whose queue is full -------------------------------
N=udsock-dgh-full-$$
hostile full full "$N"
t0=$(ms)
err=$(timeout 10 "$U" send -T 1 "@$N" one-more 2>&1)
rc=$?
el=$(($(ms) - t0))
[ $rc = 1 ] || fail "send -T 1 to a full queue: status $rc after $el ms: $err"
[[ "$err" == *"could not send within 1 s"* ]] || fail "send -T 1: message '$err'"
hi=2500
is_asan && hi=5000
[ $el -ge 900 ] && [ $el -lt $hi ] || fail "send -T 1 gave up after $el ms"
ok "send -T 1 to a full queue: status 1 after $el ms: $err"
echo "all passed"
