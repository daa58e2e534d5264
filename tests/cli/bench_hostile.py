#!/usr/bin/env python3
# bench_hostile.py — hostile peers of `udsock bench --server`, for
# cli.bench_hostile (a helper, not a test). Run as another user through
# setpriv. ADDR is @NAME (abstract) or a path. Each attack prints "ready"
# (flushed) once it is in place, then what it saw, and stays until killed
# unless said otherwise.
#   pingpong ADDR [N]   N (1) connections: a pingpong hello, then silence;
#                       prints each one's answer, then "closed MS" as the
#                       server ends the admitted ones, "left K" and exits
#                       (all ended, or 30 s)
#   hold ADDR N         a hold hello asking for N clients; prints the answer
#   connect ADDR        a connect hello (control connection), then silence
#   dgram ADDR          one BM_DGRAM hello from a bound datagram socket,
#                       then exits (the process goes away)
#   silent ADDR K       K connections that never send; prints, for each,
#                       "closed MS" when the server ends it (exits when all
#                       are closed, or after 30 s)
#   bigframe ADDR K SZ  K connections to the library server, each sending a
#                       LEN32 header of SZ bytes and then as much of the
#                       body as the server takes (never reading)
#   bigpp ADDR K        K pingpong hellos of 64 MiB; prints each answer
#   probe ADDR          one pingpong hello + 10 round trips of 64 bytes;
#                       prints "served" or "refused WHY" (exits)
import os
import select
import socket
import struct
import sys
import time

MAGIC = 0x42534455
PINGPONG, STREAM, RR, CONNECT, DGRAM, END, HOLD, JOIN = range(1, 9)


def hello(mode, size=64, clients=0, batch=0, flags=0):
    return struct.pack("<8I", MAGIC, mode, size, 0, clients, 0, batch, flags)


def sockaddr(a):
    return "\0" + a[1:] if a.startswith("@") else a


def conn(a, kind=socket.SOCK_STREAM):
    s = socket.socket(socket.AF_UNIX, kind)
    s.settimeout(10)
    s.connect(sockaddr(a))
    return s


def say(*w):
    print(*w, flush=True)


def answer(s, t=10):
    """The server's 64-byte ack: ("ok", "") or ("refused", why); "none" if
    nothing came (an old server sends none), "closed" at EOF."""
    s.settimeout(t)
    try:
        b = b""
        while len(b) < 64:
            k = s.recv(64 - len(b))
            if not k:
                return ("closed", "")
            b += k
    except socket.timeout:
        return ("none", "")
    except OSError as e:
        return ("closed", str(e))
    magic, status = struct.unpack("<2I", b[:8])
    if magic != MAGIC:
        return ("other", b[:16].hex())
    why = b[16:].split(b"\0")[0].decode(errors="replace")
    return ("ok", "") if status == 0 else ("refused", why)


def forever():
    while True:
        time.sleep(60)


def main():
    cmd, a = sys.argv[1], sys.argv[2]
    if cmd == "pingpong":
        keep = []
        for _ in range(int(sys.argv[3]) if len(sys.argv) > 3 else 1):
            try:
                s = conn(a)
                s.sendall(hello(PINGPONG))
                keep.append(s)
            except OSError:
                pass
        say("ready")
        t0 = time.monotonic()
        admitted = []
        for s in keep:  # what each was told (an old server says nothing)
            st = answer(s, 0.5)
            say("answer", *st)
            if st[0] in ("ok", "none"):
                admitted.append(s)
        say("answered")
        # then silence: the server must end the admitted sessions itself
        while admitted and time.monotonic() - t0 < 30:
            r, _, _ = select.select(admitted, [], [], 1)
            for s in r:
                try:
                    d = s.recv(4096)
                except OSError:
                    d = b""
                if not d:
                    say("closed %d" % int((time.monotonic() - t0) * 1000))
                    admitted.remove(s)
        say("left %d" % len(admitted))
    elif cmd == "hold":
        s = conn(a)
        s.sendall(hello(HOLD, 0, clients=int(sys.argv[3])))  # no token: an old server checks batch <= 1024
        say("ready")
        say("answer", *answer(s, 5))
        forever()
    elif cmd == "connect":
        s = conn(a)
        s.sendall(hello(CONNECT, 0))
        say("ready")
        forever()
    elif cmd == "dgram":
        s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        s.bind("\0udsock-bench-hostile-%d" % os.getpid())
        s.sendto(hello(DGRAM, 64, batch=1), sockaddr(a))
        say("ready")
    elif cmd == "silent":
        k = int(sys.argv[3])
        ss = [conn(a) for _ in range(k)]
        t0 = time.monotonic()
        say("ready")
        open_ = list(ss)
        while open_ and time.monotonic() - t0 < 30:
            r, _, _ = select.select(open_, [], [], 1)
            for s in r:
                try:
                    d = s.recv(4096)
                except OSError:
                    d = b""
                if not d:
                    say("closed %d" % int((time.monotonic() - t0) * 1000))
                    open_.remove(s)
    elif cmd == "bigframe":
        k, size = int(sys.argv[3]), int(sys.argv[4])
        ss = []
        refused = 0
        for _ in range(k):
            try:
                s = conn(a)
                s.sendall(struct.pack(">I", size))
            except OSError:
                refused += 1  # over a limit: closed by the server
                continue
            s.setblocking(False)
            ss.append(s)
        say("ready")
        say("refused %d" % refused)
        chunk = b"\0" * 65536
        while True:
            _, w, _ = select.select([], ss, [], 1)
            for s in w:
                try:
                    s.send(chunk)
                except OSError:
                    ss.remove(s)
            if not ss:
                say("all closed")
                forever()
    elif cmd == "bigpp":
        k = int(sys.argv[3])
        ss = []
        for _ in range(k):
            s = conn(a)
            s.sendall(hello(PINGPONG, 64 << 20))
            ss.append(s)
            say("answer", *answer(s, 5))
        say("ready")
        forever()
    elif cmd == "probe":
        try:
            s = conn(a)
            s.sendall(hello(PINGPONG))
            st, why = answer(s, 5)
            if st in ("closed", "refused"):
                say("refused", why or st)
                return
            s.settimeout(5)
            for _ in range(10):
                s.sendall(b"x" * 64)
                got = b""
                while len(got) < 64:
                    d = s.recv(64 - len(got))
                    if not d:
                        say("refused", "closed")
                        return
                    got += d
            say("served")
        except OSError as e:
            say("refused", str(e))
    else:
        sys.exit("unknown command " + cmd)


main()
