#!/usr/bin/env python3
# dgram_peer.py — hostile datagram peers for cli.dgram_hostile and
# cli.dgram_server (a helper, not a test). ADDR: /path or @abstract. Each
# mode prints "ready" (flushed) once its harm is done, then keeps its
# sockets open, never reading, until killed (at most LIFE seconds, 60).
#   flood ADDR NSOCK [PER]  NSOCK sockets (bound to abstract names) send
#                           PER * NSOCK datagrams (default PER 24) in turn,
#                           never reading, then wait: what they were
#                           answered stays queued to them
#   udpflood HOST PORT NSOCK MSG  the same over udp (64 ports, say)
#   burst ADDR N            one bound socket sends N datagrams, then waits
#   full NAME               binds @NAME and fills its own queue from a
#                           second socket until it is full, then waits
import os
import socket
import sys
import time

LIFE = 60


def sa(a):
    return b"\0" + a[1:].encode() if a.startswith("@") else a.encode()


def ready():
    sys.stdout.write("ready\n")
    sys.stdout.flush()


def bound(tag, i):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    s.bind(b"\0udsock-hostile-%d-%s-%d" % (os.getpid(), tag.encode(), i))
    s.setblocking(False)
    return s


def main():
    mode, end = sys.argv[1], time.monotonic() + LIFE
    if mode == "flood":
        target, n = sa(sys.argv[2]), int(sys.argv[3])
        per = int(sys.argv[4]) if len(sys.argv) > 4 else 24
        socks = [bound("f", i) for i in range(n)]
        sent = [0] * n  # each socket sends exactly PER (each then holds
        while time.monotonic() < end and min(sent) < per:  # min(PER, 11) replies)
            for i, s in enumerate(socks):
                if sent[i] >= per:
                    continue
                try:
                    s.sendto(b"hostile", target)
                    sent[i] += 1
                except (BlockingIOError, ConnectionRefusedError, FileNotFoundError):
                    pass
            time.sleep(0.001)
        ready()
        while time.monotonic() < end:
            time.sleep(0.2)
    elif mode == "udpflood":
        host, port, n = sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
        msg = sys.argv[5].encode()
        socks = []
        for _ in range(n):
            u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            u.bind((host, 0))
            u.setblocking(False)
            socks.append(u)
        sent, said = 0, False
        while time.monotonic() < end:
            for u in socks:
                try:
                    u.sendto(msg, (host, port))
                    sent += 1
                except (BlockingIOError, ConnectionRefusedError):
                    pass
            if not said and sent >= 100 * n:
                ready()
                said = True
            time.sleep(0.001)  # ~60000/s: a flood, but the innocent's datagram fits in
    elif mode == "burst":
        target, n = sa(sys.argv[2]), int(sys.argv[3])
        s = bound("b", 0)
        s.setblocking(True)
        s.settimeout(5)
        for _ in range(n):
            s.sendto(b"hostile", target)
        ready()
        while time.monotonic() < end:
            time.sleep(0.2)
    elif mode == "full":
        r = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        r.bind(b"\0" + sys.argv[2].encode())
        w = bound("w", 0)
        for _ in range(10000):
            try:
                w.sendto(b"filler", b"\0" + sys.argv[2].encode())
            except BlockingIOError:
                break
        else:
            sys.exit("the queue never filled")
        ready()
        while time.monotonic() < end:
            time.sleep(0.2)
    else:
        sys.exit("usage: dgram_peer.py flood|udpflood|burst|full ...")


main()
