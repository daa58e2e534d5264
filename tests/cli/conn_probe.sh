#!/bin/bash
# cli.conn_probe — issue 10: connect -z (probe without sending) for stream,
# seqpacket, unix dgram and udp; connect without -t finds a seqpacket or
# datagram server (socat UNIX: habit) and -v says so; -v shows the peer
# (pid/uid/gid of a unix server, address of a TCP one; listen -v: the
# client's); listen on port 0 says the port it got (defect 8). Peers:
# socat, python's socket module.
. "$(dirname "$0")/io_common.bash"
need socat

# 1. stream: -z against a socat server that records what it gets
S="$T/s.sock"
bg socat -u "UNIX-LISTEN:$S,fork" "OPEN:$T/s.got,creat,append"
SP=$LAST
wait_listen "$S" $SP
"$U" connect -z -v "$S" < /dev/null > "$T/1.out" 2> "$T/1.err" || fail "-z stream: status $?: $(cat "$T/1.err")"
grep -q "^udsock: connected to $S (stream): server pid $SP uid $(id -u) gid $(id -g)\$" "$T/1.err" \
    || fail "-z -v: peer line: $(cat "$T/1.err")"
# a second connection that does send, to prove the server records data
echo marker | "$U" connect -q 2 "$S" || fail "stream send"
poll_until grep -q marker "$T/s.got" || fail "the server got nothing"
[ "$(cat "$T/s.got")" = marker ] || fail "-z sent something: $(od -c "$T/s.got" | head -3)"
[ ! -s "$T/1.out" ] || fail "-z printed on stdout"
ok "-z stream: status 0, nothing sent; -v shows the server's pid $SP, uid, gid"

# 2. nothing there: status 1 with the reason
"$U" connect -z "$T/none.sock" 2> "$T/2.err"; rc=$?
[ $rc = 1 ] && grep -q "No such file or directory" "$T/2.err" || fail "-z missing: $rc $(cat "$T/2.err")"
"$U" connect -z tcp:127.0.0.1:1 2> "$T/2b.err"; rc=$?
[ $rc = 1 ] && grep -q "Connection refused" "$T/2b.err" || fail "-z refused tcp: $rc $(cat "$T/2b.err")"
ok "-z with no server: status 1 and the reason (unix ENOENT, tcp ECONNREFUSED)"

# 3. seqpacket without -t: detected, data goes through, -v says so
Q="$T/q.sock"
bg socat -u "UNIX-LISTEN:$Q,type=5,fork" "OPEN:$T/q.got,creat,append"
QP=$LAST
wait_listen "$Q" $QP
"$U" connect -z -v "$Q" 2> "$T/3.err" || fail "-z seqpacket: $(cat "$T/3.err")"
grep -q "(seqpacket, detected: the server's socket is not stream): server pid $QP" "$T/3.err" \
    || fail "seqpacket -v: $(cat "$T/3.err")"
echo seqdata | "$U" connect -q 2 "$Q" 2> "$T/3b.err" || fail "seqpacket connect: $(cat "$T/3b.err")"
poll_until grep -q seqdata "$T/q.got" || fail "seqpacket: data not delivered"
ok "seqpacket server, no -t: detected (-v says so), data delivered; -z status 0"

# 4. unix datagram without -t: detected; -z tells a bound socket from a stale file
D="$T/d.sock"
bg socat -u "UNIX-RECV:$D" "OPEN:$T/d.got,creat,append"
DP=$LAST
wait_bound "$D" $DP
echo dgdata | "$U" connect -v "$D" 2> "$T/4.err" || fail "dgram connect: $(cat "$T/4.err")"
grep -q "(dgram, detected: the server's socket is not stream)" "$T/4.err" || fail "dgram -v: $(cat "$T/4.err")"
poll_until grep -q dgdata "$T/d.got" || fail "dgram: data not delivered"
"$U" connect -z "$D" 2> "$T/4b.err" || fail "-z bound dgram: $(cat "$T/4b.err")"
python3 -c 'import socket,sys; s=socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM); s.bind(sys.argv[1]); s.close()' "$T/stale.sock"
"$U" connect -z "$T/stale.sock" 2> "$T/4c.err"; rc=$?
[ $rc = 1 ] && grep -q "Connection refused" "$T/4c.err" || fail "-z stale dgram file: $rc $(cat "$T/4c.err")"
ok "unix dgram, no -t: detected, delivered; -z: bound 0, stale file 1 (refused)"

# 5. udp -z: said plainly that only the address was checked
"$U" connect -z udp:127.0.0.1:9 2> "$T/5.err"; rc=$?
[ $rc = 0 ] && grep -q "a UDP port cannot be probed without sending" "$T/5.err" || fail "-z udp: $rc $(cat "$T/5.err")"
ok "-z udp: status 0 with the note that nothing could be learnt beyond the address"

# 6. listen on tcp port 0 says the port (without -v); connect -v shows the
#    TCP peer; listen -v shows the client (its address; unix: pid/uid/gid)
bg "$U" listen tcp:127.0.0.1:0 < /dev/null > "$T/6.out" 2> "$T/6.err"
LP=$LAST
wait_grep "$T/6.err" "listening on tcp:127.0.0.1:"
PORT=$(sed -n 's/^udsock: listening on tcp:127\.0\.0\.1:\([0-9]*\) (stream)$/\1/p' "$T/6.err")
[ -n "$PORT" ] && [ "$PORT" != 0 ] || fail "port 0: no port said: $(cat "$T/6.err")"
wait_listen "tcp:127.0.0.1:$PORT" $LP
echo viatcp | "$U" connect -v "tcp:127.0.0.1:$PORT" 2> "$T/6c.err" || fail "tcp connect: $(cat "$T/6c.err")"
wait $LP || fail "listen tcp:0: status $?"
[ "$(cat "$T/6.out")" = viatcp ] || fail "tcp:0: got '$(cat "$T/6.out")'"
grep -q "^udsock: connected to tcp:127.0.0.1:$PORT (stream): peer tcp:127.0.0.1:$PORT\$" "$T/6c.err" \
    || fail "connect -v tcp: $(cat "$T/6c.err")"
bg "$U" listen udp:127.0.0.1:0 < /dev/null > /dev/null 2> "$T/6u.err"
wait_grep "$T/6u.err" "listening on udp:127.0.0.1:"
kill $LAST
ok "listen tcp:127.0.0.1:0 says its port ($PORT) without -v; udp:0 too; connect -v shows the TCP peer"
L="$T/l.sock"
bg "$U" listen -v "$L" < /dev/null > /dev/null 2> "$T/7.err"
LP=$LAST
wait_listen "$L" $LP
python3 -c 'import socket,sys,os; s=socket.socket(socket.AF_UNIX); s.connect(sys.argv[1]); print(os.getpid(), flush=True); s.shutdown(socket.SHUT_WR); s.recv(1)' "$L" > "$T/7.pid"
wait $LP
grep -q "^udsock: client connected on $L (uid $(id -u) gid $(id -g) pid $(cat "$T/7.pid"))\$" "$T/7.err" \
    || fail "listen -v peer: $(cat "$T/7.err") (client pid $(cat "$T/7.pid"))"
ok "listen -v shows the unix client's uid, gid and pid"
