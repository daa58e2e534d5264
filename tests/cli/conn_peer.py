#!/usr/bin/env python3
"""Peers for the tests/cli/conn_*.sh tests (python's socket module, a peer
nobody here wrote). Each prints READY (and the port for tcp) on stdout
once it listens; it runs until killed.

  conn_peer.py mute PATH          accept and hold every client, never send
  conn_peer.py full PATH          listen(0), never accept; fill the backlog
                                  (held clients) and print READY when a
                                  further connect would wait
  conn_peer.py tcpfull -          TCP on 127.0.0.1, port 0, listen(0), never
                                  accept; connect until one connect stays
                                  in SYN_SENT (TCP_INFO: the kernel drops
                                  SYNs to a full accept queue); print
                                  READY PORT
  conn_peer.py noread PATH        per client: wait until it has sent
                                  something, send "hello\\n", close without
                                  reading (the kernel resets the connection)
  conn_peer.py tick PATH N SEC    per client: send "tick\\n" N times, SEC
                                  apart, then hold it silent
  conn_peer.py reset PATH CTL     accept one client, wait for a line on
                                  the FIFO CTL and for data from the
                                  client, then close without reading it
                                  (the kernel resets the connection)
"""
import os
import select
import socket
import sys
import time

mode, path = sys.argv[1], sys.argv[2]


def listener(backlog=64):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
    s.bind(path)
    s.listen(backlog)
    return s


def ready():
    print("READY", flush=True)


held = []
if mode == "mute":
    s = listener()
    ready()
    while True:
        held.append(s.accept()[0])
elif mode == "full":
    s = listener(0)
    for _ in range(64):
        c = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        c.setblocking(False)
        try:
            c.connect(path)
        except BlockingIOError:
            c.close()
            break
        held.append(c)
    else:
        sys.exit("the backlog never filled")
    ready()
    while True:
        time.sleep(3600)
elif mode == "tcpfull":
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind(("127.0.0.1", 0))
    s.listen(0)
    port = s.getsockname()[1]
    for _ in range(64):
        c = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        c.setblocking(False)
        try:
            c.connect(("127.0.0.1", port))
        except BlockingIOError:
            pass
        held.append(c)
        if not select.select([], [c], [], 1.0)[1]:
            info = c.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 8)
            if info[0] == 2:  # TCP_SYN_SENT: its SYN was dropped
                break
    else:
        sys.exit("no connect stayed in SYN_SENT")
    print("READY", port, flush=True)
    while True:
        time.sleep(3600)
elif mode == "noread":
    s = listener()
    ready()
    while True:
        c = s.accept()[0]
        select.select([c], [], [], 30)  # its data is queued, unread
        c.sendall(b"hello\n")
        c.close()
elif mode == "tick":
    n, gap = int(sys.argv[3]), float(sys.argv[4])
    s = listener()
    ready()
    while True:
        c = s.accept()[0]
        for _ in range(n):
            c.sendall(b"tick\n")
            time.sleep(gap)
        held.append(c)
elif mode == "reset":
    ctl = sys.argv[3]
    s = listener()
    ready()
    c = s.accept()[0]
    with open(ctl) as f:
        f.readline()
    select.select([c], [], [], 30)
    c.close()
    while True:
        time.sleep(3600)
else:
    sys.exit("unknown mode " + mode)
