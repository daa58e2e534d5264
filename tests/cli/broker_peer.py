#!/usr/bin/env python3
# Test peers for `udsock listen --broker` (tests/cli/listen_broker.sh).
# Every mode is bounded in time; stdin is a FIFO the test holds open, and
# its EOF is the signal to finish.
#   recv ADDR OUT MARK      reads the socket into OUT (flushed per read) and
#                           sends what stdin gives, writing the count sent so
#                           far to OUT.sent once each send has returned; MARK
#                           is made once connected; ends at stdin EOF or
#                           socket EOF
#   sink ADDR MARK          SO_RCVBUF 4096, never reads until stdin EOF; then
#                           drains and prints "prefix LINES eof" if what it got
#                           is a gap-free prefix of the pair's stream (its last
#                           line may be cut short) followed by EOF (it was cut
#                           off)
#   pair ADDR GO REPORT P1_MIB TOTAL_MIB
#                           two sockets A and B: A sends numbered 1 KiB lines in
#                           128 KiB batches, B must receive each batch whole
#                           and in order before the next goes; A must receive
#                           nothing. After P1_MIB it waits for the file GO,
#                           then sends the rest; REPORT gets "phase1 N" and
#                           "done N" (lines B got); then waits for stdin EOF
#   lines ADDR OUT MARK     as recv, then checks OUT: prints "lines N A/B"
# ADDR: a path, or tcp:HOST:PORT
import os, select, socket, sys, time

LINE = 1024


def connect(addr, rcvbuf=0):
    if addr.startswith("tcp:"):
        host, port = addr[4:].rsplit(":", 1)
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if rcvbuf:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        s.connect((host, int(port)))
    else:
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        if rcvbuf:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        s.connect(addr)
    return s


def line(i):
    head = b"%09d " % i
    return head + b"x" * (LINE - len(head) - 1) + b"\n"


def touch(path):
    open(path, "w").close()


def stdin_closed(timeout):
    r, _, _ = select.select([0], [], [], timeout)
    return bool(r) and os.read(0, 4096) == b""


mode, addr = sys.argv[1], sys.argv[2]
deadline = time.monotonic() + 120

if mode in ("recv", "lines"):
    out, mark = sys.argv[3], sys.argv[4]
    s = connect(addr)
    touch(mark)
    sent = 0
    with open(out, "wb") as f:
        while time.monotonic() < deadline:
            r, _, _ = select.select([s, 0], [], [], 1.0)
            if 0 in r:
                d = os.read(0, 4096)
                if not d:
                    break
                s.sendall(d)
                sent += len(d)
                with open(out + ".sent", "w") as c:
                    c.write("%d\n" % sent)
            if s in r:
                d = s.recv(65536)
                if not d:
                    break
                f.write(d)
                f.flush()
    if mode == "lines":
        # every line is one sender's whole line: "A 000042 xxxx" with the
        # length it announces, and each sender's lines arrive in order
        want = {"A": 0, "B": 0}
        bad = 0
        with open(out, "rb") as f:
            for l in f:
                parts = l.rstrip(b"\n").split(b" ")
                try:
                    who, n, ln = parts[0].decode(), int(parts[1]), int(parts[2])
                    ok = (l.endswith(b"\n") and who in want and n == want[who]
                          and len(parts) == 4 and parts[3] == b"y" * ln)
                except (ValueError, IndexError, UnicodeDecodeError):
                    ok = False
                if not ok:
                    bad += 1
                    sys.stderr.write("bad line: %r\n" % l[:80])
                    break
                want[who] += 1
        print("lines %d %d/%d bad %d" % (want["A"] + want["B"], want["A"], want["B"], bad))

elif mode == "sink":
    mark = sys.argv[3]
    s = connect(addr, rcvbuf=4096)
    touch(mark)
    while time.monotonic() < deadline and not stdin_closed(1.0):
        pass
    s.settimeout(10)
    got = bytearray()
    eof = False
    while True:
        try:
            d = s.recv(65536)
        except OSError:
            break
        if not d:
            eof = True
            break
        got += d
    # the kernel may have taken part of the last chunk before the cut: the
    # end can be inside a line, but nothing before it may be missing
    n = (len(got) + LINE - 1) // LINE
    ok = bytes(got) == b"".join(line(i) for i in range(n))[:len(got)]
    print("%s %d %s" % ("prefix" if ok else "HOLE", n, "eof" if eof else "no-eof"))

elif mode == "pair":
    go, report, p1, total = sys.argv[3], sys.argv[4], int(sys.argv[5]), int(sys.argv[6])
    a, b = connect(addr), connect(addr)
    a.settimeout(30)
    b.settimeout(30)
    per_batch = 128
    batches = total * 1024 // per_batch
    i = 0
    rep = open(report, "w")
    for k in range(batches):
        if k == p1 * 1024 // per_batch:
            rep.write("phase1 %d\n" % i)
            rep.flush()
            while not os.path.exists(go) and time.monotonic() < deadline:
                time.sleep(0.02)
        batch = b"".join(line(i + j) for j in range(per_batch))
        a.sendall(batch)  # a stalled broker makes this time out
        got = bytearray()
        while len(got) < len(batch):
            d = b.recv(len(batch) - len(got))
            if not d:
                sys.exit("B saw EOF after %d lines" % i)
            got += d
        if got != batch:
            sys.exit("B got other bytes in batch %d" % k)
        i += per_batch
    a.setblocking(False)
    try:
        own = a.recv(65536)
    except BlockingIOError:
        own = b""
    if own:
        sys.exit("A got %d bytes back (its own data?)" % len(own))
    rep.write("done %d\n" % i)
    rep.flush()
    while time.monotonic() < deadline and not stdin_closed(1.0):
        pass
else:
    sys.exit("unknown mode " + mode)
