# io_common.bash — shared by the listen/connect/send/recv tests (sourced,
# not a test itself: only tests/cli/*.sh are run).
# Gives: $U (the udsock binary), $T (a private temp dir, removed at exit),
# bg CMD... (start in background, killed at exit), fail, wait_sock, is_asan.
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
# waits (at most 5 s) until $1 is a socket
wait_sock() {
    local i
    for i in $(seq 200); do [ -S "$1" ] && return 0; sleep 0.025; done
    fail "socket $1 did not appear"
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
