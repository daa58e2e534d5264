#!/bin/bash
# serve -u/-g/-U (issue 10, s6-ipcserver's habit): PROGRAM runs as another
# user, with that user's groups (and nothing of root's), set in the child
# before exec; -U takes UID, GID and GIDLIST from the environment (as
# s6-envuidgid sets them); the program cannot get root back; the server
# itself stays as it was (it still removes its socket file). Usage errors
# exit 2; asking for another user when not root exits 1 and says why.
# Compared with s6-ipcserver -U run the same way.
# uds-test-timeout: 60
set -u
if [ "$(id -u)" != 0 ]; then
    echo "SKIP: needs root (it changes the program's user)"
    exit 0
fi
. "$(dirname "$0")/io_common.bash"
need socat
need python3
fail=0
bad() { echo "FAIL: $*"; fail=1; }
chmod 755 "$T"
# who PROGRAM is: "uid gid groups", and whether setuid(0) works afterwards
cat >"$T/who.py" <<'EOF'
import os
g = sorted(set(os.getgroups()))
try:
    os.setuid(0)
    back = "regained-root"
except PermissionError:
    back = "no-root"
print(os.getuid(), os.getgid(), ",".join(map(str, g)), back)
EOF
chmod 644 "$T/who.py"
ask() { timeout 10 socat -t 5 - UNIX-CONNECT:"$1" </dev/null; }
NOGROUP=$(getent group nogroup | cut -d: -f3)
# run_as WANT ARGS...: serve with ARGS, one client, its answer must be WANT
run_as() {
    local want=$1 got
    shift
    local S="$T/s$RANDOM.sock"
    "$@" "$S" -- python3 "$T/who.py" 2>"$T/err" &
    local P=$!
    PIDS+=($P)
    uds_wait_listen "$S" "$P" || { bad "$*: no server: $(cat "$T/err")"; return; }
    got=$(ask "$S")
    [ "$got" = "$want" ] || bad "$*: program is '$got', want '$want'; $(cat "$T/err")"
    kill "$P"; wait "$P" 2>/dev/null
    [ ! -e "$S" ] || bad "$*: the server (still root) did not remove its socket file"
}
run_as "65534 65534 $NOGROUP no-root" "$U" serve -u nobody
run_as "65534 0 0 no-root" "$U" serve -u 65534 -g 0
run_as "0 $NOGROUP $NOGROUP regained-root" "$U" serve -g nogroup
run_as "65534 65534 $NOGROUP no-root" "$U" serve --run-user nobody
run_as "5 7 7,8 no-root" env UID=5 GID=7 GIDLIST=7,8 "$U" serve -U
run_as "5 7 7 no-root" env -u GIDLIST UID=5 GID=7 "$U" serve -U
[ $fail = 0 ] && echo "ok: -u, -g, -U: the program runs with exactly that uid, gid and groups, and cannot regain root"

# s6-ipcserver -U does the same with the same variables (its children only)
if command -v s6-ipcserver >/dev/null; then
    S6="$T/s6.sock"
    env UID=5 GID=7 GIDLIST=7,8 s6-ipcserver -U "$S6" python3 "$T/who.py" 2>/dev/null &
    P=$!
    PIDS+=($P)
    wait_listen "$S6" "$P"
    got=$(ask "$S6")
    echo "s6-ipcserver -U with UID=5 GID=7 GIDLIST=7,8: program is '$got'"
    kill "$P"; wait "$P" 2>/dev/null
fi

# usage errors (2), and not root (1)
for args in "-u no-such-user-here" "-g no-such-group-here" "-u 4294967295" "-U -u nobody" "-U"; do
    # shellcheck disable=SC2086
    err=$(env -u UID -u GID "$U" serve $args "$T/x.sock" -- true 2>&1); rc=$?
    [ $rc = 2 ] || bad "serve $args: status $rc (want 2): $err"
done
err=$(env UID=x GID=1 "$U" serve -U "$T/x.sock" -- true 2>&1); rc=$?
[ $rc = 2 ] && [[ $err == *"bad \$UID 'x'"* ]] || bad "-U with UID=x: status $rc: $err"
err=$(setpriv --reuid 65534 --regid 65534 --clear-groups "$U" serve -u root "$T/x.sock" -- true 2>&1); rc=$?
[ $rc = 1 ] && [[ $err == *"needs root"* ]] || bad "-u root as uid 65534: status $rc: $err"
[ ! -e "$T/x.sock" ] || bad "a refused serve made a socket file"
[ $fail = 0 ] && echo "ok: bad users, groups and variables exit 2; another user without root exits 1 and says why"
exit $fail
