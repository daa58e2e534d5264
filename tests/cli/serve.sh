#!/bin/bash
# udsock serve end to end: environment given to the program, uid/gid rules
# with a client under another uid, -c/-C limits, reaping, fds 0-2 only,
# curl --unix-socket against an HTTP responder, safe bind, cleanup on SIGTERM.
# uds-test-timeout: 90
set -u
if [ "$(id -u)" != 0 ]; then
    echo "SKIP: needs root (it switches clients to uid 65534 with setpriv and checks root's uid 0)"
    exit 0
fi
UDS_BUILD_DIR=${UDS_BUILD_DIR:-build}
# $U, $T, PIDS and the readiness helpers; cleanup and ok are ours (below)
. "$(dirname "$0")/io_common.bash"
PY=/usr/bin/python3
chmod 755 "$T"
fail=0
cleanup() {
    for p in "${PIDS[@]}"; do
        for k in $(ps --ppid "$p" -o pid= 2>/dev/null); do kill "$k" 2>/dev/null; done
        kill "$p" 2>/dev/null
    done
    wait 2>/dev/null
    rm -rf "$T"
}
trap cleanup EXIT
bad() { echo "FAIL: $*"; fail=1; }
ok() { echo "ok: $*"; }
# wait until a file has content (bounded)
# (bounds of 10 s: the suite runs in parallel under ASan on a loaded machine)
wait_file() { for _ in $(seq 200); do [ -s "$1" ] && return 0; sleep 0.05; done; return 1; }
# start "udsock serve" in the background, stderr to $T/NAME.log
start() { # NAME ARGS...
    local name=$1; shift
    "$U" serve "$@" 2>"$T/$name.log" &
    SP=$!
    PIDS+=("$SP")
}
NOBODY="setpriv --reuid=65534 --regid=65534 --clear-groups"

# ---- 1. environment, checked by the child against what the client says ----
cat >"$T/envcheck.sh" <<'EOF'
#!/bin/sh
# the client sends "euid egid pid"; compare with what serve exported
read -r cuid cgid cpid
err=""
[ "$PROTO" = IPC ] || err="$err PROTO=$PROTO"
[ "$IPCREMOTEEUID" = "$cuid" ] || err="$err IPCREMOTEEUID=$IPCREMOTEEUID/$cuid"
[ "$IPCREMOTEEGID" = "$cgid" ] || err="$err IPCREMOTEEGID=$IPCREMOTEEGID/$cgid"
[ "$UNIXREMOTEEUID" = "$cuid" ] || err="$err UNIXREMOTEEUID=$UNIXREMOTEEUID/$cuid"
[ "$UNIXREMOTEEGID" = "$cgid" ] || err="$err UNIXREMOTEEGID=$UNIXREMOTEEGID/$cgid"
[ "$UNIXREMOTEPID" = "$cpid" ] || err="$err UNIXREMOTEPID=$UNIXREMOTEPID/$cpid"
[ "$IPCCONNNUM" = 1 ] || err="$err IPCCONNNUM=$IPCCONNNUM"
[ "$IPCLOCALPATH" = "$EXPECT_PATH" ] || err="$err IPCLOCALPATH=$IPCLOCALPATH"
[ "$UNIXLOCALPATH" = "$EXPECT_PATH" ] || err="$err UNIXLOCALPATH=$UNIXLOCALPATH"
[ -z "${TCPREMOTEIP+x}" ] || err="$err TCPREMOTEIP set"
# only fds 0, 1, 2: listed by the wrapper (see FDPROG) before this script ran
fds=$1
[ "$fds" = "0 1 2 " ] || err="$err fds=[$fds]"
blk=$(awk '/^SigBlk/ {print $2}' /proc/$$/status)
[ "$blk" = 0000000000000000 ] || err="$err SigBlk=$blk"
ign=$(awk '/^SigIgn/ {print $2}' /proc/$$/status)
[ $(( 0x$ign & 0x1000 )) = 0 ] || err="$err SIGPIPE ignored ($ign)"
[ -z "$err" ] && echo "ENV-OK" || echo "ENV-BAD:$err"
EOF
chmod 755 "$T/envcheck.sh"
cat >"$T/client.py" <<'EOF'
import os, socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.settimeout(10)
s.connect(sys.argv[1])
s.sendall(("%d %d %d\n" % (os.geteuid(), os.getegid(), os.getpid())).encode())
s.shutdown(socket.SHUT_WR)
out = b""
while True:
    b = s.recv(4096)
    if not b:
        break
    out += b
sys.stdout.write(out.decode())
EOF
# the program: a shell that notes which of its fds exist (test -e opens
# nothing; a script file or a redirection would add fds of the shell's own)
# and then becomes the checking script
FDPROG=(sh -c 'f=; for n in $(seq 0 300); do [ -e /proc/$$/fd/$n ] && f="$f$n "; done
               exec "$0/envcheck.sh" "$f"' "$T")
S=$T/env.sock
EXPECT_PATH=$S start env --mode 0666 "$S" -- "${FDPROG[@]}"
wait_listen "$S" "$SP"
r=$(timeout 10 $PY "$T/client.py" "$S")
[ "$r" = ENV-OK ] && ok "env as root" || bad "env as root: $r"
r=$(timeout 10 $NOBODY $PY "$T/client.py" "$S")
[ "$r" = ENV-OK ] && ok "env as uid 65534" || bad "env as 65534: $r"
# fds 3+ that the server itself inherited must not reach the program
kill "$SP"; wait "$SP"; rc=$?
[ $rc = 0 ] && ok "exit 0 on SIGTERM (no sanitizer report)" || bad "serve exited $rc on SIGTERM: $(cat "$T/env.log")"
[ -e "$S" ] && bad "socket file left after SIGTERM" || ok "socket file removed on SIGTERM"
EXPECT_PATH=$S "$U" serve "$S" -- "${FDPROG[@]}" 2>"$T/env2.log" 7<"$T/envcheck.sh" 9>"$T/junk" &
SP=$!; PIDS+=("$SP")
wait_listen "$S" "$SP"
r=$(timeout 10 $PY "$T/client.py" "$S")
[ "$r" = ENV-OK ] && ok "inherited fds 7, 9 not passed on" || bad "inherited fds: $r"
kill "$SP"; wait "$SP" 2>/dev/null

# ---- 2. allow/deny rules, client under another uid ----
S=$T/acl.sock
start acl --mode 0666 --allow-uid root "$S" -- sh -c 'echo hello'
wait_listen "$S" "$SP"
r=$(timeout 5 socat -t 3 - UNIX-CONNECT:"$S" </dev/null)
[ "$r" = hello ] && ok "allow-uid root: root served" || bad "allow-uid: root got '$r'"
start_t=$(date +%s%N)
r=$(timeout 12 $NOBODY socat -t 8 - UNIX-CONNECT:"$S" </dev/null 2>/dev/null)
el=$(( ($(date +%s%N) - start_t) / 1000000 ))
[ -z "$r" ] && [ "$el" -lt 5000 ] && ok "allow-uid root: 65534 closed at once (${el} ms)" \
    || bad "allow-uid: 65534 got '$r' after ${el} ms"
grep -q 'udsock: serve: refused connection #[0-9]* from pid [0-9]* uid 65534: not allowed by the access rules' "$T/acl.log" && ok "refusal logged" \
    || bad "no refusal line: $(cat "$T/acl.log")"
kill "$SP"; wait "$SP" 2>/dev/null

start deny --mode 0666 --deny-uid nobody "$S" -- sh -c 'echo hello'
wait_listen "$S" "$SP"
r=$(timeout 5 $NOBODY socat -t 3 - UNIX-CONNECT:"$S" </dev/null 2>/dev/null)
[ -z "$r" ] && grep -q 'refused connection #[0-9]* from pid [0-9]* uid 65534: denied by the access rules' "$T/deny.log" && ok "deny-uid nobody" \
    || bad "deny-uid: got '$r'; log: $(cat "$T/deny.log")"
r=$(timeout 5 socat -t 3 - UNIX-CONNECT:"$S" </dev/null)
[ "$r" = hello ] && ok "deny-uid nobody: root served" || bad "deny-uid: root got '$r'"
kill "$SP"; wait "$SP" 2>/dev/null

start gid --mode 0666 --allow-gid nogroup "$S" -- sh -c 'echo hello'
wait_listen "$S" "$SP"
r=$(timeout 5 $NOBODY socat -t 3 - UNIX-CONNECT:"$S" </dev/null 2>/dev/null)
[ "$r" = hello ] && ok "allow-gid nogroup: 65534 served" || bad "allow-gid: 65534 got '$r'"
r=$(timeout 5 setpriv --regid=0 --clear-groups socat -t 3 - UNIX-CONNECT:"$S" </dev/null 2>/dev/null)
[ -z "$r" ] && grep -q 'refused connection #[0-9]* from pid [0-9]* uid 0: not allowed by the access rules' "$T/gid.log" && ok "allow-gid: gid 0 refused" \
    || bad "allow-gid: root got '$r'"
kill "$SP"; wait "$SP" 2>/dev/null

"$U" serve --allow-uid no-such-user-xyz "$S" -- true 2>"$T/u.log"
[ $? = 2 ] && grep -q "unknown user 'no-such-user-xyz'" "$T/u.log" && ok "unknown user: exit 2" \
    || bad "unknown user: $(cat "$T/u.log")"

# ---- 3. -c and -C: extra clients are closed at once, not left hanging ----
nchildren() { ps --ppid "$1" -o pid= | wc -l; }
wait_children() { # PID N
    for _ in $(seq 200); do [ "$(nchildren "$1")" -ge "$2" ] && return 0; sleep 0.05; done
    return 1
}
S=$T/lim.sock
start lim -c 2 --mode 0666 "$S" -- sh -c 'echo in; exec sleep 8'
wait_listen "$S" "$SP"
timeout 12 socat -u UNIX-CONNECT:"$S" - >"$T/h1" 2>/dev/null & PIDS+=($!)
timeout 12 socat -u UNIX-CONNECT:"$S" - >"$T/h2" 2>/dev/null & PIDS+=($!)
wait_children "$SP" 2 || bad "-c: two children did not start"
start_t=$(date +%s%N)
r=$(timeout 8 socat -u UNIX-CONNECT:"$S" - 2>/dev/null)
el=$(( ($(date +%s%N) - start_t) / 1000000 ))
[ -z "$r" ] && [ "$el" -lt 5000 ] && grep -q 'refused connection #3 from pid [0-9]* uid 0: 2 connections open (-c 2)' "$T/lim.log" \
    && ok "-c 2: third client closed at once (${el} ms)" || bad "-c: got '$r' after $el ms; $(cat "$T/lim.log")"
[ "$(nchildren "$SP")" = 2 ] && ok "-c 2: still 2 children" || bad "-c: $(nchildren "$SP") children"
for k in $(ps --ppid "$SP" -o pid=); do kill "$k"; done
kill "$SP"; wait "$SP" 2>/dev/null

start perl -C 1 --mode 0666 "$S" -- sh -c 'echo "n=$IPCCONNNUM"; exec sleep 8'
wait_listen "$S" "$SP"
timeout 12 socat -u UNIX-CONNECT:"$S" - >"$T/h3" 2>/dev/null & PIDS+=($!)
wait_children "$SP" 1 || bad "-C: first client not served"
r=$(timeout 5 socat -t 3 -u UNIX-CONNECT:"$S" - 2>/dev/null)
[ -z "$r" ] && grep -q 'refused connection #[0-9]* from pid [0-9]* uid 0: uid 0 has 1 connections open (-C 1)' "$T/perl.log" \
    && ok "-C 1: second root client refused" || bad "-C: got '$r'; $(cat "$T/perl.log")"
timeout 12 $NOBODY socat -u UNIX-CONNECT:"$S" - >"$T/h4" 2>/dev/null & PIDS+=($!)
wait_children "$SP" 2 && ok "-C 1: client of another uid accepted" || bad "-C: 65534 not served"
wait_file "$T/h4"
grep -q 'n=1' "$T/h4" && ok "IPCCONNNUM=1 for the first connection of 65534" || bad "h4: $(cat "$T/h4")"
for k in $(ps --ppid "$SP" -o pid=); do kill "$k"; done
kill "$SP"; wait "$SP" 2>/dev/null

# IPCCONNNUM counts this uid's connections open now, this one included (as s6)
start num "$S" -- sh -c 'echo "n=$IPCCONNNUM"; exec sleep 8'
wait_listen "$S" "$SP"
timeout 12 socat -u UNIX-CONNECT:"$S" - >"$T/n1" 2>/dev/null & PIDS+=($!)
wait_children "$SP" 1 || bad "IPCCONNNUM: first client not served"
timeout 12 socat -u UNIX-CONNECT:"$S" - >"$T/n2" 2>/dev/null & PIDS+=($!)
wait_children "$SP" 2; wait_file "$T/n1"; wait_file "$T/n2"
[ "$(cat "$T/n1")" = n=1 ] && [ "$(cat "$T/n2")" = n=2 ] && ok "IPCCONNNUM 1 then 2" \
    || bad "IPCCONNNUM: $(cat "$T/n1") $(cat "$T/n2")"
for k in $(ps --ppid "$SP" -o pid=); do kill "$k"; done
kill "$SP"; wait "$SP" 2>/dev/null

# ---- 4. no zombies after many connections ----
S=$T/z.sock
start z -c 100 "$S" -- sh -c 'echo hi'
wait_listen "$S" "$SP"
n=0
for i in $(seq 60); do
    r=$(timeout 5 socat -t 3 - UNIX-CONNECT:"$S" </dev/null)
    [ "$r" = hi ] && n=$((n + 1))
done
[ $n = 60 ] && ok "60 connections served" || bad "only $n/60 served"
# every child has exited; serve reaps them as they go (give it up to 10 s)
no_zombies() { [ "$(ps --ppid "$SP" -o stat= | grep -c Z)" = 0 ]; }
poll_until no_zombies
z=$(ps --ppid "$SP" -o stat= | grep -c Z)
[ "$z" = 0 ] && ok "no zombies" || bad "$z zombies"
kill "$SP"; wait "$SP" 2>/dev/null

# ---- 5. curl against an HTTP responder ----
cat >"$T/http.sh" <<'EOF'
#!/bin/sh
while read -r line; do
    line=$(printf '%s' "$line" | tr -d '\r')
    [ -z "$line" ] && break
done
body="hello uid $IPCREMOTEEUID via $PROTO"
printf 'HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\nContent-Length: %d\r\n\r\n%s' "${#body}" "$body"
EOF
chmod 755 "$T/http.sh"
S=$T/http.sock
start http "$S" -- "$T/http.sh"
wait_listen "$S" "$SP"
r=$(timeout 10 curl -s --max-time 5 --unix-socket "$S" http://x/)
[ "$r" = "hello uid 0 via IPC" ] && ok "curl --unix-socket" || bad "curl got '$r'"

# ---- 6. safe bind: a live server is not taken over, a file is not removed ----
"$U" serve "$S" -- true 2>"$T/live.log"
[ $? = 1 ] && grep -q 'not taking it over' "$T/live.log" && ok "live socket not taken over" \
    || bad "second serve: $(cat "$T/live.log")"
r=$(timeout 10 curl -s --max-time 5 --unix-socket "$S" http://x/)
[ "$r" = "hello uid 0 via IPC" ] && ok "first server still answers" || bad "after takeover attempt: '$r'"
kill "$SP"; wait "$SP" 2>/dev/null
echo precious >"$T/file"
"$U" serve "$T/file" -- true 2>"$T/file.log"
[ $? = 1 ] && [ "$(cat "$T/file")" = precious ] && grep -q 'not a socket' "$T/file.log" \
    && ok "regular file refused and kept" || bad "file: $(cat "$T/file.log")"

# ---- 7. TCP: ucspi-tcp names ----
start tcp -v tcp:127.0.0.1:0 -- sh -c 'echo "$PROTO $TCPREMOTEIP $TCPLOCALIP $TCPLOCALPORT"'
# the port is the kernel's choice: read it from -v's line, then wait for LISTEN
poll_until grep -q 'listening on' "$T/tcp.log"
port=$(sed -n 's/.*listening on tcp:127.0.0.1:\([0-9]*\).*/\1/p' "$T/tcp.log")
wait_listen "tcp:127.0.0.1:${port:-0}" "$SP"
r=$(timeout 5 socat -t 3 - TCP:127.0.0.1:"$port" </dev/null)
[ "$r" = "TCP 127.0.0.1 127.0.0.1 $port" ] && ok "tcp env" || bad "tcp env: '$r' (port $port)"
kill "$SP"; wait "$SP" 2>/dev/null

# ---- 8. --mode/--owner/--group applied to the socket file ----
S=$T/own.sock
start own --mode 0640 --owner nobody --group nogroup "$S" -- true
wait_listen "$S" "$SP"
[ "$(stat -c '%a %U %G' "$S")" = "640 nobody nogroup" ] && ok "--mode 0640 --owner nobody --group nogroup" \
    || bad "socket file: $(stat -c '%a %U %G' "$S")"
kill "$SP"; wait "$SP" 2>/dev/null

# ---- 9. a program that cannot be run: logged, the client closed ----
S=$T/nx.sock
start nx "$S" -- "$T/no-such-program"
wait_listen "$S" "$SP"
r=$(timeout 5 socat -t 3 - UNIX-CONNECT:"$S" </dev/null 2>/dev/null)
poll_until grep -q "exec $T/no-such-program" "$T/nx.log"
[ -z "$r" ] && grep -q "exec $T/no-such-program: No such file or directory" "$T/nx.log" \
    && ok "missing program: logged, client closed" || bad "missing program: '$r'; $(cat "$T/nx.log")"
# SIGINT too (a background job of a script starts with SIGINT ignored)
kill -INT "$SP"
for _ in $(seq 100); do kill -0 "$SP" 2>/dev/null || break; sleep 0.05; done
kill -0 "$SP" 2>/dev/null && { bad "SIGINT ignored"; kill "$SP"; }
wait "$SP"; rc=$?
[ $rc = 0 ] && [ ! -e "$S" ] && ok "SIGINT: exit 0, socket file removed" || bad "SIGINT: rc $rc, file $(ls "$S" 2>&1)"

# ---- 10. usage errors ----
"$U" serve "$T/x.sock" 2>/dev/null; [ $? = 2 ] && ok "no program: exit 2" || bad "no program"
"$U" serve -c 0 "$T/x.sock" -- true 2>/dev/null; [ $? = 2 ] && ok "-c 0: exit 2" || bad "-c 0"

exit $fail
