# io_common.bash — shared by the listen/connect/send/recv tests (sourced,
# not a test itself: only tests/cli/*.sh are run).
# Gives: $U (the udsock binary), $T (a private temp dir, removed at exit),
# bg CMD... (start in background, killed at exit), fail, ok, wait_listen,
# wait_bound, ready_open/wait_ready, wait_gone, wait_grep, is_asan.
set -u
U="${UDS_BUILD_DIR:?UDS_BUILD_DIR not set}/udsock"
[ -x "$U" ] || { echo "no udsock binary at $U" >&2; exit 1; }
T=$(mktemp -d /tmp/udsock-cli.XXXXXX)
PIDS=()
cleanup() {
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done
    for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null; done
    rm -rf "$T"
}
trap cleanup EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
ok() { echo "ok - $*"; }
bg() { "$@" & PIDS+=($!); LAST=$!; }
# Readiness, read from the kernel's socket tables (scripts/wait-listen.sh):
# never "the file exists" (bind() makes the file before listen()), never a
# probe connect (a one-shot server would take it for its client), never a
# fixed sleep. ADDR: PATH, @NAME, tcp:HOST:PORT, tcp:[V6]:PORT, udp:...
. "$(dirname "${BASH_SOURCE[0]}")/../../scripts/wait-listen.sh"
# wait_listen ADDR [PID]: waits (at most 10 s, polling every 20 ms) until a
# socket LISTENs at ADDR, or FAILs (at once if process PID exits first)
wait_listen() { uds_wait_listen "$@" || fail "no server listening on $1"; }
# the same for a datagram socket (bound = ready): SOCK_DGRAM at PATH/@NAME, or udp:HOST:PORT
wait_bound() { uds_wait_bound "$@" || fail "no datagram socket bound at $1"; }
# poll_until CMD...: runs CMD every 20 ms until it succeeds, for at most 10 s
# (status 1 then); for states other than readiness (a log line, a count)
poll_until() {
    local i
    for ((i = 0; i < 500; i++)); do "$@" && return 0; sleep 0.02; done
    "$@"
}
# is_connected PID: PID holds a stream or seqpacket unix socket in the
# connected state (Type 0001/0005, St 03 in /proc/net/unix), i.e. its
# connect() has returned (socat's own datagram socketpair does not count)
is_connected() {
    local f ino inos=" "
    for f in /proc/"$1"/fd/*; do
        ino=$(readlink "$f" 2>/dev/null) || continue
        case $ino in socket:\[*\]) ino=${ino#socket:\[}; ino=${ino%\]}; inos="$inos$ino " ;; esac
    done
    [ "$inos" != " " ] || return 1
    UDS_INOS=$inos awk 'FNR > 1 && $6 == "03" && ($5 == "0001" || $5 == "0005") && index(ENVIRON["UDS_INOS"], " " $7 " ") { f = 1; exit } END { exit !f }' /proc/net/unix
}
# gone: a file that exists is not a server that is ready
wait_sock() { fail "wait_sock $1: use wait_listen or wait_bound (a socket file is not a ready server)"; }
# Readiness through a server's --ready-fd N (it writes "\n" on fd N once it
# serves, then closes it: uds_ready_fd(3)):
#   ready_open NAME      makes the FIFO $T/NAME.ready and opens it on fd $RFD,
#                        read-write, so that neither this open nor the
#                        server's open of the write end blocks
#   SERVER ... --ready-fd 7 7>"$T/NAME.ready" {RFD}<&- &
#   wait_ready PID WHAT  reads one line from $RFD (at most 10 s; fails at once
#                        when PID exits first) into READY_LINE, sets
#                        READY_EXTRA=1 if more bytes were already there, and
#                        closes $RFD
ready_open() {
    rm -f "$T/$1.ready"
    mkfifo "$T/$1.ready" || fail "mkfifo $T/$1.ready"
    exec {RFD}<>"$T/$1.ready"
}
# Why `read -t 0` and then a plain read, not `read -t 0.1` in the loop:
# bash's timed read can lose what arrives as its timer fires (the alarm's
# longjmp drops the byte it had just read); under load, a woken reader
# often runs after its timer expired. Seen: cli.calc "wrote nothing on its
# --ready-fd within 10 s" while the server had said it serves; a loop of
# `read -t 0.001` on a FIFO lost 2 of 3000 lines here. `read -t 0` only
# asks whether input is there (select), and the line then read is whole
# (the server writes "\n" in one write).
wait_ready() {
    local i
    READY_LINE="" READY_EXTRA=0
    for ((i = 0; i < 200; i++)); do
        if read -t 0 -u "$RFD"; then
            IFS= read -r -u "$RFD" READY_LINE
            read -t 0 -u "$RFD" && READY_EXTRA=1
            exec {RFD}<&-
            return 0
        fi
        if ! kill -0 "$1" 2>/dev/null; then
            read -t 0 -u "$RFD" && continue # it wrote, then exited
            exec {RFD}<&-
            fail "$2 exited before it wrote on its --ready-fd"
        fi
        sleep 0.05 # the bounded poll's step (10 s in all)
    done
    exec {RFD}<&-
    fail "$2 wrote nothing on its --ready-fd within 10 s"
}
# waits (at most 5 s) until $1 no longer exists
wait_gone() {
    local i
    for i in $(seq 200); do [ -e "$1" ] || return 0; sleep 0.025; done
    return 1
}
# waits (at most 10 s) until file $1 contains the fixed string $2
wait_grep() {
    local i
    for i in $(seq 400); do grep -qF -- "$2" "$1" 2>/dev/null && return 0; sleep 0.025; done
    fail "'$2' did not appear in $1: $(cat "$1" 2>/dev/null)"
}
# is this an AddressSanitizer build?
is_asan() { grep -q '^UDS_SANITIZE:BOOL=ON' "$UDS_BUILD_DIR/CMakeCache.txt" 2>/dev/null; }
sha() { sha256sum "$1" | cut -d' ' -f1; }
need() { command -v "$1" >/dev/null || fail "$1 is not installed (scripts/deps.sh installs it)"; }
