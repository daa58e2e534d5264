#!/usr/bin/env python3
"""calc_check.py ADDR --frame len32|line --bytes N --seed S [--timeout SEC]

A checking client for examples/calc_server (directly, or through
`udsock relay`): sends "upper DATA" requests (DATA: random lowercase
letters and digits, 1..32 KiB each) until N payload bytes went out, pipelined
from a writer thread, and checks that every reply is DATA in upper case, in
order. Prints "ok SENT RECEIVED SHA256" (sha256 of all replies) and exits 0;
exits 1 on a wrong, missing or extra reply, an early EOF or the timeout.
Plain Python sockets: nothing of libudsock is used to judge it.
"""
import argparse, hashlib, random, socket, struct, sys, threading

ap = argparse.ArgumentParser()
ap.add_argument("addr")
ap.add_argument("--frame", choices=["len32", "line"], default="len32")
ap.add_argument("--bytes", type=int, default=1 << 20)
ap.add_argument("--seed", type=int, default=1)
ap.add_argument("--timeout", type=float, default=30)
a = ap.parse_args()

rnd = random.Random(a.seed)
alpha = b"abcdefghijklmnopqrstuvwxyz0123456789"
reqs = []
total = 0
while total < a.bytes:
    n = rnd.randint(1, 32768)
    reqs.append(bytes(rnd.choice(alpha) for _ in range(n)) if n < 64 else
                (bytes(rnd.choice(alpha) for _ in range(64)) * (n // 64 + 1))[:n])
    total += n

def frame(p):
    return struct.pack(">I", len(p)) + p if a.frame == "len32" else p + b"\n"

s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.settimeout(a.timeout)
s.connect(a.addr)
werr = []

def writer():
    try:
        for r in reqs:
            s.sendall(frame(b"upper " + r))
        s.shutdown(socket.SHUT_WR)
    except Exception as e:  # reported by the reader's verdict
        werr.append(e)

t = threading.Thread(target=writer, daemon=True)
t.start()
buf = b""
h = hashlib.sha256()
got = 0

def fail(msg):
    print("calc_check: FAIL: " + msg, file=sys.stderr)
    sys.exit(1)

try:
    for i, r in enumerate(reqs):
        while True:
            if a.frame == "len32" and len(buf) >= 4:
                n = struct.unpack(">I", buf[:4])[0]
                if len(buf) >= 4 + n:
                    rep, buf = buf[4:4 + n], buf[4 + n:]
                    break
            elif a.frame == "line" and b"\n" in buf:
                rep, buf = buf.split(b"\n", 1)
                break
            d = s.recv(1 << 16)
            if not d:
                fail("EOF after %d of %d replies (writer: %s)" % (i, len(reqs), werr))
            buf += d
        if rep != r.upper():
            fail("reply %d: %d bytes, want %d (%r...)" % (i, len(rep), len(r), rep[:40]))
        h.update(rep)
        got += len(rep)
    while True:
        d = s.recv(1 << 16)
        if not d:
            break
        buf += d
    if buf:
        fail("%d bytes after the last reply" % len(buf))
except socket.timeout:
    fail("timeout")
print("ok %d %d %s" % (total, got, h.hexdigest()))
