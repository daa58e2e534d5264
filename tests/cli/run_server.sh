#!/usr/bin/env bash
# scripts/run-server.sh (`make run` without XDG_RUNTIME_DIR) against another
# user (uid 65534) who gets to /tmp/udsock-$UID first (issue 14 item 6).
# The shared /tmp is a private sticky directory of the test here
# (UDSOCK_RUN_TMP), so the wanted name is $B/udsock-0:
#   fresh    the directory is made 0700 and the server listens in it
#   mode     an existing directory of ours with mode 0755 is made 0700
#   symlink  a symlink under the name (to a root-owned 0755 directory, and
#            to one of 65534's): never followed, the target keeps its mode
#            and contents, the server runs in a fresh mktemp directory
#   foreign  a directory of 65534 under the name: nothing is made in it,
#            its mode stays, the server runs in a fresh directory
#   race     65534 swaps its directory and its symlink to a root-owned
#            directory under the name (tests/tools/swapper.c) while
#            run-server starts, RUN_SERVER_ROUNDS times (default 12): every
#            round the server listens in a private directory of ours, and
#            neither swapped-in directory ever changes
# Each check is deterministic but the race, whose every round must hold.
# uds-test-timeout: 120
set -u
. "$(dirname "$0")/io_common.bash"
RUN=$(cd "$(dirname "$0")/../../scripts" && pwd -P)/run-server.sh
[ -f "$RUN" ] || fail "no $RUN"
if [ "$(id -u)" != 0 ]; then
    echo "SKIP: needs root (a second user, 65534, plays the attacker)"
    exit 0
fi
NOBODY=(setpriv --reuid=65534 --regid=65534 --clear-groups)
chmod 0711 "$T" # 65534 must reach its own entries in $B
B=$T/tmp
mkdir -m 1777 "$B"
W=$B/udsock-0
ROUNDS=${RUN_SERVER_ROUNDS:-12}

# start_run NAME: run-server.sh in the background; sets RPID and SOCK once
# the server listens (the socket path from its first line)
start_run() {
    local out=$T/$1.out err=$T/$1.err i
    : >"$out" # now, not in the child: never last round's line
    env -u XDG_RUNTIME_DIR -u UDSOCK_SOCKET UDSOCK_RUN_TMP="$B" sh "$RUN" "$UDS_BUILD_DIR" >"$out" 2>"$err" &
    RPID=$!
    PIDS+=($RPID)
    SOCK=
    for ((i = 0; i < 500; i++)); do
        SOCK=$(sed -n 's/^udsock: starting [a-z_]* on \(.*\) (Ctrl-C to stop)$/\1/p' "$out")
        [ -n "$SOCK" ] && break
        kill -0 "$RPID" 2>/dev/null || break
        sleep 0.02
    done
    [ -n "$SOCK" ] || fail "$1: run-server printed no socket (status: $(wait "$RPID"; echo $?)): $(cat "$err")"
    # the server binds ./echo.sock inside the checked directory (never the
    # name again), which is the name the kernel's table shows
    (cd "${SOCK%/*}" && uds_wait_listen ./echo.sock "$RPID") || fail "$1: no server listening on $SOCK"
    [ -S "$SOCK" ] || fail "$1: no socket file at $SOCK"
    local got
    got=$(echo "hi $1" | timeout 10 "$UDS_BUILD_DIR/examples/echo_client" "$SOCK" 2>&1)
    [ "$got" = "hi $1" ] || fail "$1: echo_client via $SOCK got '$got'"
}
stop_run() {
    kill "$RPID" 2>/dev/null
    wait "$RPID" 2>/dev/null
}
# the socket is in a private directory of ours: owner 0, mode 700, a real
# directory (no symlink on the way)
private_sock() {
    local d=${SOCK%/*}
    [ "$(realpath -e "$d")" = "$d" ] || fail "$1: $d is reached through a symlink"
    [ "$(stat -c '%u %a %F' "$d")" = "0 700 directory" ] ||
        fail "$1: the socket's directory is $(stat -c '%u %a %F' "$d")"
}
fresh_dir() { # the fallback's name: $B/udsock-0.XXXXXX
    case $SOCK in "$B"/udsock-0.??????/echo.sock) ;; *) fail "$1: socket at $SOCK, not in a fresh directory" ;; esac
}
snap() { stat -c '%i %a %u %g %F' "$1" "$1"/* 2>/dev/null; }

# ---- fresh
start_run fresh
[ "$SOCK" = "$W/echo.sock" ] || fail "fresh: socket at $SOCK"
private_sock fresh
stop_run
ok "fresh: $W made 0700, the server listens in it"

# ---- mode: ours, but 0755
rm -rf "$W"
mkdir -m 0755 "$W"
start_run mode
[ "$SOCK" = "$W/echo.sock" ] || fail "mode: socket at $SOCK"
private_sock mode
stop_run
ok "mode: our $W with mode 0755 made 0700 and used"

# ---- symlink to a root-owned directory, and to one of 65534's
V=$T/victim
mkdir -m 0755 "$V"
echo keep >"$V/keep"
VN=$T/nvictim
mkdir -m 0755 "$VN"
chown 65534:65534 "$VN"
for target in "$V" "$VN"; do
    rm -rf "$W" "$B"/udsock-0.*
    "${NOBODY[@]}" ln -s "$target" "$W" || fail "65534 cannot make its symlink"
    before=$(snap "$target")
    start_run symlink
    fresh_dir "symlink to $target"
    private_sock "symlink to $target"
    stop_run
    [ "$(snap "$target")" = "$before" ] || fail "symlink: $target changed: $(snap "$target")"
    [ -L "$W" ] || fail "symlink: the symlink is gone"
    grep -q "not a private directory of yours" "$T/symlink.err" || fail "symlink: nothing said: $(cat "$T/symlink.err")"
done
ok "symlink: never followed (target mode and contents kept), a fresh private directory used"

# ---- a directory of 65534 under the name
rm -rf "$W" "$B"/udsock-0.*
"${NOBODY[@]}" mkdir -m 0777 "$W" || fail "65534 cannot make its directory"
before=$(snap "$W")
start_run foreign
fresh_dir foreign
private_sock foreign
stop_run
[ "$(snap "$W")" = "$before" ] || fail "foreign: $W changed: $(snap "$W")"
ok "foreign: 65534's $W left alone, a fresh private directory used"

# ---- race: 65534 swaps its directory and a symlink to V under the name
rm -rf "$W" "$B"/udsock-0.*
"${NOBODY[@]}" mkdir -m 0777 "$W" || fail "65534 cannot make its directory"
"${NOBODY[@]}" ln -s "$V" "$B/alt" || fail "65534 cannot make its symlink"
cp "$UDS_BUILD_DIR/tests/swapper" "$T/swapper" && chmod 0755 "$T/swapper" || fail "no swapper tool"
vbefore=$(snap "$V")
ready_open swap
(cd "$B" && exec "${NOBODY[@]}" "$T/swapper" udsock-0 alt 100 7) 7>"$T/swap.ready" {RFD}<&- >"$T/swaps" 2>"$T/swap.err" &
SWP=$!
PIDS+=($SWP)
wait_ready "$SWP" swapper
for ((r = 0; r < ROUNDS; r++)); do
    start_run race
    private_sock "race round $r"
    fresh_dir "race round $r"
    stop_run
    [ "$(snap "$V")" = "$vbefore" ] || fail "race round $r: $V changed: $(snap "$V")"
    for d in "$W" "$B/alt"; do # whichever is the directory now: nothing made in it
        [ -L "$d" ] || [ ! -e "$d/echo.sock" ] || fail "race round $r: a socket in 65534's directory"
    done
    rm -rf "$B"/udsock-0.??????
done
kill "$SWP"
wait "$SWP" 2>/dev/null
swaps=$(cat "$T/swaps" 2>/dev/null)
[ "${swaps:-0}" -gt 0 ] || fail "race: the swapper did not swap: $(cat "$T/swap.err")"
ok "race: $ROUNDS rounds against $swaps swaps, every server in a private directory, $V untouched"
