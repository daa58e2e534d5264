#!/bin/bash
# Passing fds on a connection (issue 10; util-linux#3683; socat cannot):
# `connect --fd N|FILE` sends the fds (SCM_RIGHTS) with the first data;
# `listen --fds` says what each batch is and, with `-- PROGRAM`, runs
# PROGRAM per batch with the fds as 3, 4, ... (UDSOCK_FDS, LISTEN_FDS,
# LISTEN_PID) beside the copy, which it never stops. Without --fds the
# fds never stay with listen: refused at the sender (SO_PASSRIGHTS off,
# where the kernel has it) or closed and said once (the fallback, forced
# with UDSOCK_NO_PASSRIGHTS=1). Peers nobody here wrote: python's socket
# module (send_fds / recv_fds) on either side.
# uds-test-timeout: 90
set -u
. "$(dirname "$0")/io_common.bash"
need python3
fail=0
bad() { echo "FAIL: $*"; fail=1; }
echo "the file's content" >"$T/f.txt"
echo "connect's stdin" >"$T/in.txt"

# 1. udsock to udsock: a file, a pipe and fd 0 (a file here) go to PROGRAM
#    as 3, 4, 5; it reads the file and the pipe through them; the client's
#    data arrives before PROGRAM's output (written before it starts)
L="$T/l1.sock"
bg "$U" listen --fds "$L" -- sh -c 'cat <&3; cat <&4; readlink /proc/self/fd/5;
    echo "n=$UDSOCK_FDS/$LISTEN_FDS pid=$([ "$LISTEN_PID" = $$ ] && echo self)"' \
    </dev/null >"$T/l1.out" 2>"$T/l1.err"
LP=$LAST
wait_listen "$L" "$LP"
timeout 10 "$U" connect --fd "$T/f.txt" --fd 7 --fd 0 "$L" <"$T/in.txt" 7< <(echo "via a pipe") ||
    bad "connect --fd FILE --fd PIPE --fd 0: status $?"
wait "$LP" || bad "listen --fds -- PROGRAM: status $?"
want=$(printf "connect's stdin\nthe file's content\nvia a pipe\n%s\nn=3/3 pid=self" "$T/in.txt")
[ "$(cat "$T/l1.out")" = "$want" ] || bad "listen --fds -- PROGRAM: output '$(cat "$T/l1.out")'"
grep -q "^udsock: 3 fds from uid [0-9]* gid [0-9]* pid [0-9]*: 0: regular file $T/f.txt, 1: pipe pipe:\[[0-9]*\], 2: regular file $T/in.txt\$" "$T/l1.err" ||
    bad "listen --fds did not say what arrived: $(cat "$T/l1.err")"
[ $fail = 0 ] && ok "connect --fd FILE/PIPE/0 -> listen --fds -- PROGRAM: fds 3, 4, 5 read, UDSOCK_FDS=LISTEN_FDS=3, LISTEN_PID its own; the kinds said"

# 2. seqpacket: the first message carries them
L="$T/l2.sock"
bg "$U" listen -t seqpacket --fds "$L" -- sh -c 'cat <&3' </dev/null >"$T/l2.out" 2>"$T/l2.err"
LP=$LAST
wait_listen "$L" "$LP"
echo msg | timeout 10 "$U" connect -t seqpacket --fd "$T/f.txt" "$L" || bad "seqpacket connect --fd: status $?"
wait "$LP"
[ "$(cat "$T/l2.out")" = "$(printf "msg\nthe file's content")" ] || bad "seqpacket --fds: '$(cat "$T/l2.out")'"
[ $fail = 0 ] && ok "seqpacket: connect --fd's first message carries the fd; PROGRAM reads the file"

# 3. python's send_fds -> listen --fds: the kinds said; a PROGRAM that lives
#    on does not stop the copy: data sent after the batch reaches stdout
#    while PROGRAM provably still runs (blocked on a pipe whose write end
#    the client holds); then PROGRAM ends, and listen after it
cat >"$T/client.py" <<'EOF'
import os, socket, sys, time
addr, out, started = sys.argv[1:4]
def seen(path, text):  # bounded poll on a file the other side writes
    for _ in range(500):
        try:
            if text in open(path).read():
                return True
        except FileNotFoundError:
            pass
        time.sleep(0.02)
    return False
r, w = os.pipe()
f = os.open(sys.argv[4], os.O_RDONLY)
c = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
c.connect(addr)
socket.send_fds(c, [b"first\n"], [r, f])
os.close(r)
os.close(f)
ok = seen(started, "started")
c.sendall(b"after\n")
print("not-blocked" if ok and seen(out, "after") else "blocked", flush=True)
os.write(w, b"via the pipe\n")  # now PROGRAM may finish
os.close(w)
c.close()
EOF
L="$T/l3.sock"
bg "$U" listen --fds "$L" -- sh -c "echo started >'$T/p3.started'; cat <&3 >'$T/p3.out'" \
    </dev/null >"$T/l3.out" 2>"$T/l3.err"
LP=$LAST
wait_listen "$L" "$LP"
got=$(timeout 20 python3 "$T/client.py" "$L" "$T/l3.out" "$T/p3.started" "$T/f.txt")
wait "$LP" || bad "listen --fds with python: status $?"
[ "$got" = not-blocked ] || bad "the copy waited for PROGRAM: $got; $(cat "$T/l3.out")"
[ "$(cat "$T/l3.out")" = "$(printf "first\nafter")" ] || bad "python -> listen --fds: data '$(cat "$T/l3.out")'"
[ "$(cat "$T/p3.out")" = "via the pipe" ] || bad "PROGRAM did not read the pipe: '$(cat "$T/p3.out" 2>&1)'"
grep -q "2 fds from .*: 0: pipe pipe:\[[0-9]*\], 1: regular file $T/f.txt" "$T/l3.err" ||
    bad "listen --fds: python's fds not said: $(cat "$T/l3.err")"
[ $fail = 0 ] && ok "python send_fds -> listen --fds: kinds said; data after the batch arrived while PROGRAM still ran; PROGRAM read the pipe"

# 4. udsock connect --fd -> python's recv_fds: it reads the file through it
cat >"$T/server.py" <<'EOF'
import os, socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.bind(sys.argv[1])
s.listen(1)
open(sys.argv[2], "w").write("ready\n")
c, _ = s.accept()
msg, fds, _, _ = socket.recv_fds(c, 1000, 10)
print(msg.decode().strip(), len(fds), os.read(fds[0], 100).decode().strip() if fds else "-")
EOF
mkfifo "$T/s4.ready"
exec {R4}<>"$T/s4.ready"
python3 "$T/server.py" "$T/p4.sock" "$T/s4.ready" >"$T/p4.out" {R4}>&- &
SP=$!
PIDS+=($SP)
read -r -t 10 -u "$R4" _ || bad "python server not ready"
exec {R4}<&-
echo hello | timeout 10 "$U" connect --fd "$T/f.txt" "$T/p4.sock" >/dev/null || bad "connect --fd to python: status $?"
wait "$SP"
[ "$(cat "$T/p4.out")" = "hello 1 the file's content" ] || bad "python recv_fds: '$(cat "$T/p4.out")'"
[ $fail = 0 ] && ok "connect --fd -> python recv_fds: one fd with the first data; the file read through it"

# 5. without --fds no fd stays with listen. The python sender passes its
#    pipe's write end, closes its own and must see EOF on the read end;
#    the data (1 MiB around the fds) arrives intact either way.
#    default: refused at the sender (EPERM) where the kernel can; the
#    fallback (UDSOCK_NO_PASSRIGHTS=1): taken, closed, said once
cat >"$T/sender.py" <<'EOF'
import errno, os, select, socket, sys
c = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
c.connect(sys.argv[1])
block = bytes(range(256)) * 4096  # 1 MiB
how = []
for i in range(2):
    r, w = os.pipe()
    c.sendall(block[: 300000])
    try:
        socket.send_fds(c, [block[300000:600000]], [w])
        how.append("sent")
    except PermissionError:
        how.append("refused")
        c.sendall(block[300000:600000])
    os.close(w)
    ok, _, _ = select.select([r], [], [], 10)
    how.append("closed" if ok and os.read(r, 1) == b"" else "kept")
    os.close(r)
    c.sendall(block[600000:])
print(" ".join(how), flush=True)
EOF
python3 -c 'import sys; b = bytes(range(256)) * 4096; sys.stdout.buffer.write(b + b)' >"$T/want5"
for seam in "" 1; do
    L="$T/l5-$seam.sock"
    UDSOCK_NO_PASSRIGHTS=$seam bg "$U" listen "$L" </dev/null >"$T/l5.out" 2>"$T/l5.err"
    LP=$LAST
    wait_listen "$L" "$LP"
    got=$(timeout 20 python3 "$T/sender.py" "$L")
    wait "$LP" || bad "listen without --fds (seam '$seam'): status $?"
    cmp -s "$T/l5.out" "$T/want5" || bad "listen without --fds (seam '$seam'): the data is not intact"
    n=$(grep -c "the peer passed fds (SCM_RIGHTS); closed them (take them with --fds; said once)" "$T/l5.err")
    case "$seam:$got" in
    ":refused closed refused closed") [ "$n" = 0 ] || bad "refused, yet said: $(cat "$T/l5.err")" ;;
    *":sent closed sent closed") [ "$n" = 1 ] || bad "closed fds said $n times: $(cat "$T/l5.err")" ;;
    *) bad "listen without --fds (seam '$seam'): the python sender saw '$got'" ;;
    esac
    echo "  (UDSOCK_NO_PASSRIGHTS='$seam': $got; said $n)"
done
[ $fail = 0 ] && ok "listen without --fds: the passed pipe end never stays open (refused at the sender, or closed and said once); 2 MiB intact"

# 6. stdin empty: nothing passed (fds ride on data), status 1, said; the
#    server still sees EOF and is not left waiting
L="$T/l6.sock"
bg "$U" listen --fds "$L" </dev/null >"$T/l6.out" 2>"$T/l6.err"
LP=$LAST
wait_listen "$L" "$LP"
err=$(timeout 10 "$U" connect --fd "$T/f.txt" "$L" </dev/null 2>&1); rc=$?
[ $rc = 1 ] && [[ $err == *"stdin ended before any data"*"none was passed"* ]] ||
    bad "connect --fd with empty stdin: status $rc: $err"
wait "$LP" || bad "listen after an empty client: status $?"
grep -q "fds from" "$T/l6.err" && bad "fds arrived without data: $(cat "$T/l6.err")"
[ $fail = 0 ] && ok "connect --fd with empty stdin: exit 1, 'none was passed'; the server saw EOF"

# 7. usage errors (2), before anything is connected
many=()
for ((i = 0; i < 254; i++)); do many+=(--fd 0); done
check2() { # WANT-TEXT ARGS...
    local want=$1 err rc
    shift
    err=$(timeout 5 "$U" "$@" 2>&1 </dev/null 99>&-); rc=$?
    [ $rc = 2 ] && [[ $err == *"$want"* ]] || bad "udsock ${*:1:4}...: status $rc (want 2, '$want'): $err"
}
check2 "fd 99 is not open" connect --fd 99 "$T/none.sock"
check2 "No such file or directory" connect --fd "$T/no-such-file" "$T/none.sock"
check2 "--fd needs a unix address" connect --fd 0 tcp:127.0.0.1:9
check2 "at most 253 --fd" connect "${many[@]}" "$T/none.sock"
check2 "--fds needs a unix address" listen --fds tcp:127.0.0.1:0
check2 "--fds is for one client" listen -k --fds "$T/none.sock"
check2 "it goes with --fds" listen "$T/none.sock" -- cat
check2 "missing PROGRAM" listen --fds "$T/none.sock" --
[ -e "$T/none.sock" ] && bad "a usage error left a socket file"
[ $fail = 0 ] && ok "usage errors: fd not open, no such file, tcp:, more than 253, listen --fds on tcp:, with -k, PROGRAM without --fds"
exit $fail
