#!/bin/bash
# Issue 10 defect 4: connecting to a path that is no socket says what it is
# ("not a socket: it is a regular file"), not "Connection refused (is the
# server running?)"; a type mismatch (EPROTOTYPE) says which type the
# socket is, learned without connecting to it (a one-shot server is still
# waiting for its real client afterwards). Before the fix: "Connection
# refused (is the server running?)" and "Protocol wrong type for socket".
# uds-test-timeout: 60
set -u
UDS_BUILD_DIR=${UDS_BUILD_DIR:-build}
. "$(dirname "$0")/io_common.bash"
U=$(readlink -f "$U") # the test changes directory

# want CMD... -- STATUS TEXT: the command's stderr is exactly "udsock: TEXT"
want() {
    local -a argv=()
    while [ "$1" != -- ]; do argv+=("$1"); shift; done
    local st=$2 text=$3 err rc
    err=$(timeout 20 "$U" "${argv[@]}" </dev/null 2>&1 >/dev/null); rc=$?
    [ "$rc" = "$st" ] || fail "${argv[*]}: status $rc, want $st ($err)"
    [ "$err" = "udsock: $text" ] || fail "${argv[*]}: said '$err', want 'udsock: $text'"
}

cd "$T" || fail "cd $T"
: >file
mkdir dir
mkfifo fifo
ln -s file link
ln -s nowhere dangling
want connect file -- 1 "connect file: not a socket: it is a regular file"
want connect "$T/dir" -- 1 "connect $T/dir: not a socket: it is a directory"
want connect ./fifo -- 1 "connect ./fifo: not a socket: it is a FIFO (named pipe)"
want connect unix:link -- 1 "connect unix:link: not a socket: it is a regular file (through a symlink)"
want connect dangling -- 1 "connect dangling: a symlink to 'nowhere', which does not exist"
want connect -t seqpacket file -- 1 "connect file: not a socket: it is a regular file"
want send file hi -- 1 "connect file: not a socket: it is a regular file"
want connect /dev/null -- 1 "connect /dev/null: not a socket: it is a character device"
ok "connect/send to a file, directory, FIFO, device, symlink: says what it is"
want listen file -- 1 "listen file: exists and is not a socket: it is a regular file; refusing to remove it"
want recv fifo -- 1 "bind fifo: exists and is not a socket: it is a FIFO (named pipe); refusing to remove it"
ok "listen/recv on a file that is no socket: says what it is"
want connect nothing-here -- 1 "connect nothing-here: No such file or directory (is the server running?)"
ok "a missing path keeps its hint"

# type mismatches; the servers are one-shot and must still get their client
echo stream-reply >reply
"$U" listen "$T/s.sock" <reply >s.out &
S=$!
PIDS+=($S)
wait_listen "$T/s.sock" "$S"
want connect -t seqpacket "$T/s.sock" -- 1 "connect $T/s.sock: wrong socket type: it is a stream socket (-t stream)"
want connect -t dgram "$T/s.sock" -- 1 "connect $T/s.sock: wrong socket type: it is a stream socket (-t stream)"
want send "$T/s.sock" hi -- 1 "connect $T/s.sock: wrong socket type: it is a stream socket (-t stream)"

name=udsock-err-nonsock-$$
"$U" listen -t seqpacket "@$name" <reply >q.out &
Q=$!
PIDS+=($Q)
wait_listen "@$name" "$Q"
want connect -t stream "@$name" -- 1 "connect @$name: wrong socket type: it is a seqpacket socket (-t seqpacket)"

"$U" recv "$T/d.sock" >d.out &
D=$!
PIDS+=($D)
wait_bound "$T/d.sock" "$D"
want connect -t stream "$T/d.sock" -- 1 "connect $T/d.sock: wrong socket type: it is a datagram socket (-t dgram)"
want connect -t seqpacket "$T/d.sock" -- 1 "connect $T/d.sock: wrong socket type: it is a datagram socket (-t dgram)"
ok "a type mismatch names the socket's type (stream, seqpacket, datagram; path and abstract)"

# without sock_diag (the UDSOCK_NO_SOCK_DIAG seam): a datagram socket is
# still named (a datagram connect, which sends nothing, tells); another
# type is said without a name; the servers still get their clients below
UDSOCK_NO_SOCK_DIAG=1 want connect -t stream "$T/d.sock" -- 1 "connect $T/d.sock: wrong socket type: it is a datagram socket (-t dgram)"
UDSOCK_NO_SOCK_DIAG=1 want connect -t seqpacket "$T/s.sock" -- 1 "connect $T/s.sock: wrong socket type: the socket is of another type than the one asked for"
# an abstract name is looked up per type by the kernel: without sock_diag a
# seqpacket name asked for as stream is just not there (probing it as
# seqpacket would connect the one-shot server)
UDSOCK_NO_SOCK_DIAG=1 want connect -t stream "@$name" -- 1 "connect @$name: Connection refused (is the server running?)"
ok "without sock_diag: a datagram socket is still named, other types said without a name"

# nobody was connected by the checks: the one-shot servers still serve
got=$(echo to-stream | timeout 20 "$U" connect "$T/s.sock") || fail "stream server gone: $?"
[ "$got" = stream-reply ] || fail "stream server answered '$got'"
got=$(echo to-seq | timeout 20 "$U" connect -t seqpacket "@$name") || fail "seqpacket server gone: $?"
[ "$got" = stream-reply ] || fail "seqpacket server answered '$got'"
wait "$S" || fail "listen (stream): status $?"
wait "$Q" || fail "listen (seqpacket): status $?"
[ "$(cat s.out)" = to-stream ] || fail "stream server got '$(cat s.out)'"
[ "$(cat q.out)" = to-seq ] || fail "seqpacket server got '$(cat q.out)'"
[ ! -s d.out ] || fail "the datagram server got something: $(cat d.out)"
ok "learning the type connected to nobody: the one-shot servers got their real clients first"
echo ALL OK
