#!/bin/bash
# integrity.sh [CLIENTS [MSGS]] — battery row 9 (issue 9), the full run:
# CLIENTS (default 1000) clients x MSGS (default 1000) messages, each with
# client id, sequence number, length and checksum (tests/tools/integrity),
# through the library server (examples/calc_server) and through
# `udsock relay` to it; passes on 0 lost, duplicated, reordered, corrupted.
# Prints the integrity summary of each run (messages, time, errors).
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/../cli/io_common.bash"
N=${1:-1000} M=${2:-1000}
IT=$UDS_BUILD_DIR/tests/integrity
# 1000 clients: 1000 fds in calc_server, 2000 in the relay
ulimit -n "$(ulimit -Hn)" 2>/dev/null
[ "$(ulimit -n)" -ge $((2 * N + 64)) ] || fail "RLIMIT_NOFILE $(ulimit -n) is too low for $N clients"
bg "$UDS_BUILD_DIR/examples/calc_server" "$T/calc.sock" 2>"$T/calc.err"
CP=$LAST
wait_listen "$T/calc.sock" "$CP"
bg "$U" relay -c $((N + 10)) "$T/relay.sock" "$T/calc.sock" 2>"$T/relay.err"
RP=$LAST
wait_listen "$T/relay.sock" "$RP"
st=0
for what in calc_server:calc.sock relay:relay.sock; do
    out=$("$IT" "$T/${what#*:}" --clients "$N" --msgs "$M" --window 8 --timeout 1200 2>"$T/it.err") || st=1
    echo "${what%%:*}: $out"
    [ -s "$T/it.err" ] && head -10 "$T/it.err"
done
kill -0 "$CP" && kill -0 "$RP" || { echo "a server died"; st=1; }
[ $st = 0 ] && ok "$N x $M through calc_server and relay: 0 lost, duplicated, reordered, corrupted" || fail "integrity: see above"
