#!/usr/bin/env bash
# cli.bench_hostile — `udsock bench --server` (and `bench rr --server`, the
# library server) against hostile local peers (issue 14 item 2). Each
# attacker is tests/cli/bench_hostile.py run as uid 65534 (setpriv), the
# server started with --allow-uid 65534 so the attack reaches it (on a
# server without that option, i.e. before the fix, every user got in
# anyway); beside each attack an innocent client (this uid) must complete
# its benchmark within LIM ms:
#   1. pingpong hellos, then silence     (was: every other client blocked);
#      more than one user's half of the sessions are refused, saying why,
#      and the admitted ones are ended after 10 s of silence
#   2. a hold hello asking 100 000 clients (was: wedged for good) — and the
#      attacker is told why it is refused
#   3. a connect hello                     (was: everyone else's connections
#                                           closed)
#   4. one dgram hello, then the sender exits (was: dgram server wedged)
#   5. silent connections                  (was: 10 s each, one by one);
#      the server must end them itself (hello deadline, 5 s)
#   6. 64 MiB frames from 8 connections to `bench rr --server` (was: 2 MB
#      -> 526 MB): VmRSS stays under RSS_MAX; 40 connections of 1 MiB
#      frames (more than one user may hold): under RSS_LIB, and another
#      user is still served; and 64 MiB pingpong hellos
#      to the core server stop at that user's half of the memory budget,
#      with the reason told
#   7. by default (no --allow-uid) another user is refused, and an
#      innocent client is still served
# Every part runs, then the test fails if any did (the report says which).
# Innocent client times and server VmRSS are printed for the record.
# uds-test-timeout: 240
set -u
if [ "$(id -u)" != 0 ]; then
    echo "SKIP: needs root (setpriv runs the attackers as uid 65534)"
    exit 0
fi
. "$(dirname "$0")/io_common.bash"
need setpriv
PY=/usr/bin/python3 # not a per-user shim: uid 65534 must be able to run it
[ -x "$PY" ] || fail "no $PY"
HP="$(cd "$(dirname "$0")" && pwd)/bench_hostile.py"
[ -r "$HP" ] || fail "no $HP"
# the code goes in with -c: a fresh clone under a 0700 mktemp dir is not
# readable by uid 65534
AS=(setpriv --reuid=65534 --regid=65534 --clear-groups "$PY" -c "$(cat "$HP")")
LIM=8000        # ms for an innocent client (a silent peer cost 10 s each before)
RSS_MAX=65536   # KiB: the library server under 8 x 64 MiB frames
RSS_LIB=204800  # KiB: 64 connections x (1 MiB in + 2 MiB out) + the process (docs/udsock.1)
if is_asan; then
    LIM=20000 RSS_MAX=262144 RSS_LIB=524288
fi
# the option exists only where other users are refused by default
ALLOW=()
"$U" bench --help | grep -q -- --allow-uid && ALLOW=(--allow-uid 65534)
rss_kb() { awk '/^VmRSS:/ { print $2 }' "/proc/$1/status"; }
now_ms() { date +%s%3N; }
FAILED=()
bad() { echo "FAIL: $*" >&2; FAILED+=("$1"); }
N=0
# start_attacker NAME ARGS...: runs it in the background as uid 65534 and
# waits (10 s at most) for its "ready"
start_attacker() {
    local name=$1 i
    shift
    : >"$T/$name.out"
    bg "${AS[@]}" "$@" >"$T/$name.out" 2>"$T/$name.err"
    APID=$LAST
    for ((i = 0; i < 500; i++)); do
        grep -q '^ready' "$T/$name.out" && return 0
        kill -0 "$APID" 2>/dev/null || break
        sleep 0.02
    done
    grep -q '^ready' "$T/$name.out" || { bad "$name" "attacker not ready: $(cat "$T/$name.err")"; return 1; }
}
stop_pid() { kill "$1" 2>/dev/null; wait "$1" 2>/dev/null; }
# innocent NAME CMD...: runs the client (bounded by timeout), sets MS; fails NAME unless it exits 0 in time
innocent() {
    local name=$1 t0 rc
    shift
    t0=$(now_ms)
    timeout $((LIM / 1000 + 5)) "$@" >"$T/$name.inn" 2>&1
    rc=$?
    MS=$(($(now_ms) - t0))
    echo "$name: innocent client ${MS} ms (rc $rc)"
    if [ "$rc" -ne 0 ] || [ "$MS" -gt "$LIM" ] || grep -q 'refused\|no answer\|reset' "$T/$name.inn"; then
        bad "$name" "innocent client rc=$rc in ${MS} ms: $(cat "$T/$name.inn")"
    fi
}

A="@udsock-bench-hostile-$$"
bg "$U" bench --server "$A" "${ALLOW[@]}" 2>"$T/srv.err"
SP=$LAST
wait_listen "$A" "$SP"
echo "core server VmRSS at start: $(rss_kb "$SP") KiB"
PP=("$U" bench pingpong --client "$A" -n 2000)

# 1. pingpong hellos, then silence: 20 of them, more than one user may
# run at once (16 of 32), so the last are refused, saying why
start_attacker pp pingpong "$A" 20 && {
    innocent 1-pingpong-silent "${PP[@]}"
    poll_until grep -q '^answered' "$T/pp.out"
    echo "1-pingpong-silent: attacker sessions admitted $(grep -c '^answer ok' "$T/pp.out"), refused $(grep -c '^answer refused' "$T/pp.out")"
    grep -q '^answer refused busy: sessions' "$T/pp.out" ||
        bad 1-pingpong-silent "20 silent sessions of one user were not limited: $(sort "$T/pp.out" | uniq -c)"
    wait "$APID" 2>/dev/null # it leaves when all are ended, or after 30 s
    last=$(awk '/^closed/ { m = $2 } END { print m + 0 }' "$T/pp.out")
    echo "1-pingpong-silent: the server ended $(grep -c '^closed' "$T/pp.out") silent sessions, the last after $last ms ($(grep '^left' "$T/pp.out"))"
    grep -q '^left 0' "$T/pp.out" && [ "$(grep -c '^closed' "$T/pp.out")" -gt 0 ] ||
        bad 1-pingpong-silent "silent sessions were not ended (idle timeout 10 s): $(tail -3 "$T/pp.out")"
}

# 2. hold of 100 000
start_attacker hold hold "$A" 100000 && {
    innocent 2-hold-100000 "${PP[@]}"
    poll_until grep -q '^answer' "$T/hold.out"
    grep -q '^answer refused hold over the limit of 10000' "$T/hold.out" ||
        bad 2-hold-100000 "the attacker was not told why: $(cat "$T/hold.out")"
    stop_pid "$APID"
}

# 3. connect hello, then the innocent's own connections must stay its own
start_attacker conn connect "$A" && {
    innocent 3-connect "${PP[@]}"
    innocent 3-connect-stream "$U" bench stream --client "$A" -d 0.2
    stop_pid "$APID"
}

# 5. silent connections: served beside them, and they are ended by the server
start_attacker silent silent "$A" 3 && {
    innocent 5-silent "${PP[@]}"
    wait "$APID" 2>/dev/null
    n=$(grep -c '^closed' "$T/silent.out")
    last=$(awk '/^closed/ { m = $2 } END { print m + 0 }' "$T/silent.out")
    echo "5-silent: the server ended $n of 3 silent connections, the last after $last ms"
    { [ "$n" -eq 3 ] && [ "$last" -le 15000 ]; } ||
        bad 5-silent "silent connections not ended by the server: $(cat "$T/silent.out")"
}

# 6b. the core server's memory budget: 64 MiB pingpong sessions
if [ ${#ALLOW[@]} -gt 0 ]; then
    start_attacker bigpp bigpp "$A" 5 && {
        grep -q '^answer refused busy: this user.s memory share' "$T/bigpp.out" ||
            bad 6-core-budget "the budget did not stop 5 x 64 MiB: $(cat "$T/bigpp.out")"
        innocent 6-core-budget "${PP[@]}"
        echo "6-core-budget: core server VmRSS $(rss_kb "$SP") KiB with the attacker's 64 MiB sessions; $(grep -c '^answer ok' "$T/bigpp.out") of 5 admitted"
        stop_pid "$APID"
    }
else
    bad 6-core-budget "no memory budget (no --allow-uid: old server)"
fi
kill -0 "$SP" 2>/dev/null || bad server "the core server died: $(cat "$T/srv.err")"
stop_pid "$SP"

# 4. one dgram hello, then the sender is gone
D="@udsock-bench-hostile-d-$$"
bg "$U" bench --server "$D" -t dgram "${ALLOW[@]}" 2>"$T/dsrv.err"
DP=$LAST
wait_bound "$D" "$DP"
start_attacker dg dgram "$D" && {
    wait "$APID" 2>/dev/null
    innocent 4-dgram "$U" bench dgram --client "$D" -d 0.2 -b 1,32
    innocent 4-dgram-pingpong "$U" bench pingpong --client "$D" -t dgram -n 2000
}
stop_pid "$DP"

# 6. 64 MiB frames from 8 connections to the library server
L="@udsock-bench-hostile-l-$$"
bg "$U" bench rr --server "$L" "${ALLOW[@]}" 2>"$T/lsrv.err"
LP=$LAST
wait_listen "$L" "$LP"
r0=$(rss_kb "$LP")
start_attacker big bigframe "$L" 8 $((64 << 20)) && {
    peak=$r0
    for ((i = 0; i < 30; i++)); do # 3 s of the attack, sampled
        r=$(rss_kb "$LP")
        [ "$r" -gt "$peak" ] && peak=$r
        sleep 0.1
    done
    innocent 6-lib-64MiB "$U" bench rr --client "$L" -n 500
    r=$(rss_kb "$LP")
    [ "$r" -gt "$peak" ] && peak=$r
    echo "6-lib-64MiB: library server VmRSS $r0 KiB before, peak $peak KiB (bound $RSS_MAX KiB)"
    [ "$peak" -le "$RSS_MAX" ] || bad 6-lib-64MiB "VmRSS $peak KiB > $RSS_MAX KiB"
    stop_pid "$APID"
}
# 6c. more connections of 1 MiB frames than one user may hold (32 of 64):
# the memory stays within the stated bound and another user is served
start_attacker big2 bigframe "$L" 40 $((1000 << 10)) && {
    peak=0
    for ((i = 0; i < 30; i++)); do
        r=$(rss_kb "$LP")
        [ "$r" -gt "$peak" ] && peak=$r
        sleep 0.1
    done
    innocent 6-lib-1MiB-x40 "$U" bench rr --client "$L" -n 500
    echo "6-lib-1MiB-x40: library server VmRSS peak $peak KiB (bound $RSS_LIB KiB)"
    [ "$peak" -le "$RSS_LIB" ] || bad 6-lib-1MiB-x40 "VmRSS $peak KiB > $RSS_LIB KiB"
    stop_pid "$APID"
}
kill -0 "$LP" 2>/dev/null || bad server "the library server died: $(cat "$T/lsrv.err")"
stop_pid "$LP"

# 7. default: another user is refused (and told nothing but a closed
# connection; the server logs why), this user is served
B="@udsock-bench-hostile-b-$$"
bg "$U" bench --server "$B" 2>"$T/bsrv.err"
BP=$LAST
wait_listen "$B" "$BP"
"${AS[@]}" probe "$B" >"$T/probe.out" 2>&1
echo "7-other-uid: the uid 65534 probe: $(cat "$T/probe.out")"
grep -q '^refused' "$T/probe.out" || bad 7-other-uid "uid 65534 served by default: $(cat "$T/probe.out")"
innocent 7-other-uid "$U" bench pingpong --client "$B" -n 200
stop_pid "$BP"

if [ ${#FAILED[@]} -gt 0 ]; then
    echo "bench_hostile: FAILED: ${FAILED[*]}" >&2
    exit 1
fi
echo "bench_hostile: ok"
