#!/bin/bash
# path_safety.sh — issue 9, defects 1, 5 and 6, and paths of any length,
# against the real CLI:
#   race  uid 65534 owns D and swaps D/sub (a directory) with D/alt (its
#         symlink to V, a root-only directory holding a root-only socket
#         V/app.sock) in a tight loop (tests/tools/swapper.c, renameat2
#         RENAME_EXCHANGE), while root runs `udsock listen --owner 65534
#         --mode 0666 D/sub/app.sock` (killed, or served by a client),
#         `serve` and `relay` on that path, round after round; after each
#         round nothing in V may have changed (entries, inode, mode, owner)
#         and D keeps its mode and owner. Rounds and time are bounded
#         (PATH_SAFETY_ROUNDS, default 300; PATH_SAFETY_SECS, default 40).
#   long  a path of 300 bytes: listen binds, connect reaches it, send
#         reaches a recv on it, relay reaches a serve on it, every file is
#         removed at exit; a last component too long: exit 1 and a message
#         naming it.
#   d5    another program's X.sock.lock (and s6-ipcserver on X.sock): a
#         refused `udsock listen X.sock` leaves both alone.
#   d6    the lock file held by uid 65534 (flock(1)): listen gives up after
#         its bound (5 s) naming the holder; SIGTERM and SIGINT end the wait
#         of listen, serve and relay promptly.
# UDSOCK_BIN runs the script against another binary (e.g. main's old code,
# see tests/stress/README.md); PATH_SAFETY_LOCK_SUFFIX names that binary's
# lock file (default .udsock.lock; the old code used .lock).
# PATH_SAFETY_ONLY=race|long|d5|d6 runs one part.
# uds-test-timeout: 300
set -u
. "$(dirname "$0")/io_common.bash"
U=${UDSOCK_BIN:-$U}
[ -x "$U" ] || fail "no udsock at $U"
ONLY=${PATH_SAFETY_ONLY:-}
LSUF=${PATH_SAFETY_LOCK_SUFFIX:-.udsock.lock}
ROUNDS=${PATH_SAFETY_ROUNDS:-300}
SECS=${PATH_SAFETY_SECS:-40}
NOBODY=(setpriv --reuid=65534 --regid=65534 --clear-groups)
chmod 0711 "$T" # 65534 must reach its own directories below
failures=0
bad() { echo "FAIL: $*"; failures=$((failures + 1)); }
want() { [ -z "$ONLY" ] || [ "$ONLY" = "$1" ]; }
# okif F0 TEXT: "ok" only if no check failed since failures was F0
okif() { [ "$failures" = "$1" ] && ok "$2"; }
now_us() { echo "${EPOCHREALTIME/[.,]/}"; }
# waits (bounded: 10 s) until file $1 has a line matching $2 or pid $3 exits
wait_line() {
    local i
    for ((i = 0; i < 2000; i++)); do
        grep -q "$2" "$1" 2>/dev/null && return 0
        kill -0 "$3" 2>/dev/null || { grep -q "$2" "$1" 2>/dev/null; return $?; }
        sleep 0.005
    done
    return 1
}
# a stale socket file at $1 (bound, its socket closed), mode $2
stale_sock() {
    python3 -c 'import socket, sys; s = socket.socket(socket.AF_UNIX); s.bind(sys.argv[1])' "$1" &&
        chmod "$2" "$1"
}

# ---------------------------------------------------------------- race ----
if want race; then
    D=$T/race V=$T/vault
    mkdir -p "$D/sub" "$V"
    chown 65534:65534 "$D" "$D/sub"
    chmod 0755 "$D"
    chmod 0777 "$D/sub"
    chmod 0700 "$V"
    "${NOBODY[@]}" ln -s "$V" "$D/alt" || fail "65534 cannot make its symlink"
    stale_sock "$V/app.sock" 0600 || fail "stale socket"
    echo secret >"$V/keep"
    chmod 0600 "$V/keep"
    # every entry of V with inode, mode, owner; and D's own mode/owner
    snap() {
        (cd "$V" && stat -c '%i %a %u %g %F %n' . ./* ./.[!.]* 2>/dev/null | sort)
        stat -c '%a %u %g' "$D"
    }
    base=$(snap)
    restore() { # back to the baseline after a violation, to count the next ones
        rm -rf "${V:?}"/* "$V"/.[!.]* 2>/dev/null
        stale_sock "$V/app.sock" 0600
        echo secret >"$V/keep"
        chmod 0600 "$V/keep" "$V"
        chown 0:0 "$V" "$V/app.sock" "$V/keep"
        chmod 0755 "$D"
        base=$(snap)
    }
    cp "$UDS_BUILD_DIR/tests/swapper" "$T/swapper" && chmod 0755 "$T/swapper" || fail "no swapper tool"
    socat UNIX-LISTEN:"$T/echo.sock",fork EXEC:cat 2>/dev/null &
    PIDS+=($!)
    wait_listen "$T/echo.sock" "$!"
    ready_open swap
    (cd "$D" && exec "${NOBODY[@]}" "$T/swapper" sub alt "$((SECS + 20))" 7) 7>"$T/swap.ready" {RFD}<&- >"$T/swaps" 2>"$T/swap.err" &
    SWP=$!
    PIDS+=($SWP)
    wait_ready "$SWP" swapper
    violations=0 bound=0 refused=0 served=0 rounds=0 symlink=0 other=0 hung=0
    gone() { ! kill -0 "$1" 2>/dev/null; }
    start=$(now_us)
    deadline=$((start + SECS * 1000000))
    P=$D/sub/app.sock
    for ((r = 0; r < ROUNDS; r++)); do
        [ "$(now_us)" -lt "$deadline" ] || break
        rounds=$((rounds + 1))
        kind=$((r % 4))
        E=$T/r.err.$r # a new file each round: never last round's "listening"
        case $kind in
        0 | 1) "$U" listen -v --owner 65534 --mode 0666 "$P" </dev/null >/dev/null 2>"$E" & ;;
        2) "$U" serve -v --owner 65534 --mode 0666 "$P" -- cat 2>"$E" & ;;
        3) "$U" relay -v --owner 65534 --mode 0666 "$P" "$T/echo.sock" 2>"$E" & ;;
        esac
        p=$!
        if wait_line "$E" "listening on" "$p"; then
            bound=$((bound + 1))
            if [ $kind = 1 ]; then
                # a client through the swapping path: may reach ours or V's
                # stale socket (refused); the listen then ends by itself
                echo hi | timeout 3 "$U" connect "$P" >/dev/null 2>&1 && served=$((served + 1))
            fi
        fi
        kill -TERM "$p" 2>/dev/null
        if ! poll_until gone "$p"; then
            hung=$((hung + 1))
            echo "note: round $r (kind $kind) did not end on SIGTERM: $(head -c 300 "$E")"
            kill -KILL "$p" 2>/dev/null
        fi
        wait "$p" 2>/dev/null
        rc=$?
        if [ $rc != 0 ] && [ $rc != 143 ] && ! grep -q "listening on" "$E"; then
            refused=$((refused + 1))
            if grep -q "symlink owned by another user" "$E"; then
                symlink=$((symlink + 1))
            else
                other=$((other + 1))
                [ "$other" -le 3 ] && echo "note: round $r refused: $(head -c 300 "$E")"
            fi
        fi
        now=$(snap)
        if [ "$now" != "$base" ]; then
            violations=$((violations + 1))
            [ "$violations" -le 3 ] && echo "VIOLATION round $r (kind $kind: $(head -c 200 "$E")):" &&
                diff <(echo "$base") <(echo "$now") | sed 's/^/    /'
            restore
        fi
        rm -f "$E"
    done
    secs_used=$((($(now_us) - start) / 1000))
    kill -TERM "$SWP" 2>/dev/null
    wait "$SWP" 2>/dev/null
    swaps=$(cat "$T/swaps" 2>/dev/null)
    echo "race: $rounds rounds in $secs_used ms, $swaps swaps; bound $bound (client served $served), refused $refused ($symlink at the swapped-in symlink, $other other), violations $violations, hung $hung"
    [ -d "$D/sub" ] && [ ! -L "$D/sub" ] || bad "race: D/sub is not the directory again"
    [ "${swaps:-0}" -gt 0 ] || bad "race: the swapper did not swap: $(cat "$T/swap.err")"
    [ "$bound" -gt 0 ] || bad "race: no round ever bound (the test would be vacuous)"
    [ "$rounds" -ge 20 ] || bad "race: only $rounds rounds"
    [ "$hung" = 0 ] || bad "race: $hung rounds did not end on SIGTERM"
    [ "$violations" = 0 ] && ok "race: $rounds rounds, nothing outside the named socket changed" ||
        bad "race: $violations rounds changed something outside the named socket"
fi

# ---------------------------------------------------------------- long ----
if want long; then
    LD=$T
    for i in 1 2 3 4 5; do LD="$LD/$(printf "%050d" "$i")"; done
    mkdir -p "$LD"
    LP=$LD/listen.sock
    pad=$((300 - ${#LP}))
    [ $pad -gt 0 ] && LP=$LD/$(head -c "$pad" /dev/zero | tr '\0' l)listen.sock
    echo "long: a ${#LP}-byte path"
    f0=$failures
    bg timeout 10 "$U" listen "$LP" </dev/null >"$T/long.got" 2>"$T/long.err"
    lp=$LAST
    if uds_wait_listen "$LP" "$lp"; then
        echo over-300 | timeout 5 "$U" connect "$LP" || bad "long: connect to the ${#LP}-byte path"
        wait "$lp" || bad "long: listen status $?: $(cat "$T/long.err")"
        [ "$(cat "$T/long.got")" = over-300 ] || bad "long: listen got '$(cat "$T/long.got")'"
        [ ! -e "$LP" ] || bad "long: the socket file was left behind"
        [ "$(ls "$LD")" = "" ] || bad "long: files left in the directory: $(ls "$LD")"
        okif "$f0" "long: listen on a ${#LP}-byte path binds, connect reaches it, the file is removed"
    else
        bad "long: listen did not listen: $(cat "$T/long.err")"
        kill "$lp" 2>/dev/null
    fi
    DP=$LD/$(head -c "$pad" /dev/zero | tr '\0' d)dgram.sock
    f0=$failures
    bg timeout 10 "$U" recv -n 1 "$DP" >"$T/dgram.got" 2>"$T/dgram.err"
    dp=$LAST
    if uds_wait_bound "$DP" "$dp"; then
        timeout 5 "$U" send "$DP" datagram-over-300 || bad "long: send to the ${#DP}-byte path"
        wait "$dp" || bad "long: recv status $?"
        grep -q "datagram-over-300" "$T/dgram.got" || bad "long: recv got '$(cat "$T/dgram.got")'"
        [ ! -e "$DP" ] || bad "long: recv left its socket file"
        okif "$f0" "long: send reaches a recv bound on a ${#DP}-byte path; its file is removed"
    else
        bad "long: recv did not bind: $(cat "$T/dgram.err")"
    fi
    SP=$LD/$(head -c "$pad" /dev/zero | tr '\0' s)serve.sock
    RL=$LD/$(head -c "$pad" /dev/zero | tr '\0' r)relay.sock
    f0=$failures
    bg "$U" serve "$SP" -- cat
    sp=$LAST
    bg "$U" relay "$RL" "$SP"
    rp=$LAST
    if uds_wait_listen "$SP" "$sp" && uds_wait_listen "$RL" "$rp"; then
        r=$(echo through-relay | timeout 5 "$U" connect "$RL")
        [ "$r" = through-relay ] || bad "long: relay (${#RL} bytes) to serve (${#SP} bytes) gave '$r'"
        r=$(echo direct | timeout 5 "$U" connect "$SP")
        [ "$r" = direct ] || bad "long: serve gave '$r'"
        kill -TERM "$rp" "$sp"
        wait "$rp" "$sp" 2>/dev/null
        [ ! -e "$SP" ] && [ ! -e "$RL" ] || bad "long: serve/relay left their files"
        okif "$f0" "long: relay on a ${#RL}-byte path reaches serve on a ${#SP}-byte path; files removed"
    else
        bad "long: serve/relay did not listen"
    fi
    err=$(timeout 5 "$U" listen "$LD/$(head -c 120 /dev/zero | tr '\0' x)" 2>&1 </dev/null)
    rc=$?
    [ $rc = 1 ] && [[ $err == *"last path component is too long to bind"* ]] &&
        ok "long: a 120-byte last component: exit 1, '$err'" ||
        bad "long: a 120-byte last component: status $rc: $err"
fi

# ------------------------------------------------------------------ d5 ----
if want d5; then
    X=$T/d5/X.sock
    mkdir -p "$T/d5"
    # another program's lock file as such programs make them: empty, made
    # by flock(1) (udsock 0.1 took an empty X.sock.lock for its own)
    flock "$X.lock" true || fail "d5: flock(1)"
    lk0=$(stat -c '%i %s %a' "$X.lock")
    bg s6-ipcserver "$X" cat
    s6p=$LAST
    if uds_wait_listen "$X" "$s6p"; then
        s0=$(stat -c %i "$X")
        f0=$failures
        err=$(timeout 10 "$U" listen "$X" 2>&1 </dev/null)
        rc=$?
        [ $rc = 1 ] || bad "d5: listen on s6's socket: status $rc: $err"
        [[ $err == *"a server is running there"* ]] || bad "d5: message '$err'"
        [ -e "$X.lock" ] && [ "$(stat -c '%i %s %a' "$X.lock")" = "$lk0" ] &&
            [ ! -s "$X.lock" ] || bad "d5: the other program's X.sock.lock was changed or removed"
        [ "$(stat -c %i "$X")" = "$s0" ] || bad "d5: s6's socket file was replaced"
        [ "$X$LSUF" = "$X.lock" ] || [ ! -e "$X$LSUF" ] || bad "d5: our lock file was left behind"
        r=$(echo still-s6 | timeout 5 "$U" connect "$X")
        [ "$r" = still-s6 ] || bad "d5: s6-ipcserver no longer answers: '$r'"
        okif "$f0" "d5: refused listen on s6-ipcserver's X.sock ('$err'); X.sock.lock and X.sock untouched"
    else
        bad "d5: s6-ipcserver did not listen"
    fi
    kill "$s6p" 2>/dev/null
fi

# ------------------------------------------------------------------ d6 ----
if want d6; then
    mkdir -p "$T/d6"
    chmod 0755 "$T/d6"
    X=$T/d6/held.sock
    L=$X$LSUF
    printf 'udsock lock file\npid 1\n' >"$L"
    chown 65534:65534 "$L"
    chmod 0644 "$L"
    ino=$(stat -c %i "$L")
    # -o: flock itself holds the lock, its child does not (killed by pid below)
    bg "${NOBODY[@]}" flock -x -o "$L" sleep 600
    holder=$LAST
    # held once /proc/locks lists a lock on the file's inode
    held() { grep -q ":$ino " /proc/locks; }
    poll_until held || fail "d6: flock did not take the lock"
    t0=$(now_us)
    err=$(timeout -k 5 20 "$U" listen "$X" 2>&1 </dev/null) # TERM at 20 s, KILL at 25
    rc=$?
    dt=$((($(now_us) - t0) / 1000))
    echo "d6: listen gave up after $dt ms: $err"
    [ $rc = 1 ] || bad "d6: status $rc (want 1)"
    [ $dt -ge 4500 ] && [ $dt -lt 20000 ] || bad "d6: gave up after $dt ms (bound 5 s)"
    [[ $err == *"held by pid $holder (flock)"* ]] || bad "d6: the holder (pid $holder, flock) is not named: $err"
    [ "$(stat -c %i "$L")" = "$ino" ] || bad "d6: the holder's lock file was replaced"
    [ ! -e "$X" ] || bad "d6: a socket was bound without the lock"
    # SIGTERM / SIGINT while waiting: the waiter has the lock file open
    waiting() { ls -l /proc/"$1"/fd 2>/dev/null | grep -q -- "-> $L\$"; }
    for cmd in listen serve relay; do
        for sig in TERM INT; do
            case $cmd in
            listen) "$U" listen "$X" </dev/null >/dev/null 2>"$T/d6.err" & ;;
            serve) "$U" serve "$X" -- cat 2>"$T/d6.err" & ;;
            relay) "$U" relay "$X" "$T/nowhere.sock" 2>"$T/d6.err" & ;;
            esac
            p=$!
            PIDS+=($p)
            if ! poll_until waiting "$p"; then
                bad "d6: $cmd never waited for the lock: $(cat "$T/d6.err")"
                kill -KILL "$p" 2>/dev/null
                continue
            fi
            t0=$(now_us)
            kill -"$sig" "$p"
            gone() { ! kill -0 "$1" 2>/dev/null; }
            if poll_until gone "$p"; then
                dt=$((($(now_us) - t0) / 1000))
                wait "$p" 2>/dev/null
                rc=$?
                [ $dt -lt 3000 ] && ok "d6: $cmd waiting for the lock: SIG$sig ended it in $dt ms (status $rc)" ||
                    bad "d6: $cmd took $dt ms to end on SIG$sig"
            else
                bad "d6: $cmd ignored SIG$sig while waiting for the lock"
                kill -KILL "$p" 2>/dev/null
                wait "$p" 2>/dev/null
            fi
            [ ! -e "$X" ] || bad "d6: $cmd bound without the lock"
        done
    done
    [ "$(stat -c %i "$L")" = "$ino" ] || bad "d6: the holder's lock file was replaced"
    for k in $(ps --ppid "$holder" -o pid= 2>/dev/null); do kill "$k" 2>/dev/null; done
    kill "$holder" 2>/dev/null
fi

[ $failures = 0 ] || fail "$failures check(s) failed"
echo "all passed"
