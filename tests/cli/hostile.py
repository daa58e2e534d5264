#!/usr/bin/env python3
# hostile.py — peers with hostile names, for cli.hostile_names (a helper,
# not a test). Every name is used as an abstract name and (without NULs)
# as a file name in DIR.
#   hostile.py dgram DIR TARGET     one datagram "hello\n" from each name
#   hostile.py stream DIR TARGET    one connection from each name: sends
#                                   "hi\n", shuts down, reads to EOF
#   hostile.py expect DIR           the escaped forms, one per line
#   hostile.py env DIR              the exact forms (NUL-separated), as a
#                                   serve child must see IPCREMOTEPATH
#   hostile.py clean FILE           exit 1 (saying where) if FILE holds a
#                                   control byte other than \n, a C1
#                                   control or invalid UTF-8
#   hostile.py lines FILE N         exit 1 unless FILE has exactly N lines
import os
import socket
import sys

FORGED = b"x\nudsock: relay: #99 open: client uid 0 gid 0 pid 1 -> /run/forged-admin.sock"
NAMES = [
    FORGED,
    b"t\x1b]0;x\x07",
    b"c\x1b[2J",
    b"u\xff\xfe\xc0\xaf",
]
# 107 bytes, the longest abstract name, with a NUL, an escape and a newline
LONG = (b"L" * 40 + b"\x1b[2J\n\x00" + b"M" * 107)[:107]


def addrs(d):
    """(kind, sockaddr, raw name bytes) for each hostile peer name."""
    out = []
    # abstract names are machine-wide: a token of the run (HOSTILE_TOK, the
    # same for every call of one test) keeps two suites from colliding
    tok = os.environ.get("HOSTILE_TOK", "").encode()
    for n in [n + tok for n in NAMES] + [(tok + LONG)[:107]]:
        out.append(("abstract", b"\0" + n, b"@" + n))
    for n in NAMES:  # a file name cannot hold "/"
        p = os.path.join(os.fsencode(d), n.replace(b"/", b"%"))
        out.append(("path", p, p))
    return out


def esc(b):
    """uds_escape for these names (ASCII and invalid UTF-8 only)."""
    o = []
    for c in b:
        if c == 0x5C:
            o.append("\\\\")
        elif c == 10:
            o.append("\\n")
        elif c == 13:
            o.append("\\r")
        elif c == 9:
            o.append("\\t")
        elif 0x20 <= c < 0x7F:
            o.append(chr(c))
        else:
            o.append("\\x%02x" % c)
    return "".join(o)


def fresh(sa):
    if isinstance(sa, bytes) and sa[:1] != b"\0":
        try:
            os.unlink(sa)
        except FileNotFoundError:
            pass


def main():
    cmd = sys.argv[1]
    if cmd in ("dgram", "stream"):
        d, target = sys.argv[2], sys.argv[3]
        for _, sa, _ in addrs(d):
            fresh(sa)
            t = socket.SOCK_DGRAM if cmd == "dgram" else socket.SOCK_STREAM
            s = socket.socket(socket.AF_UNIX, t)
            s.bind(sa)
            s.settimeout(10)
            if cmd == "dgram":
                s.sendto(b"hello\n", target)
            else:
                s.connect(target)
                s.sendall(b"hi\n")
                s.shutdown(socket.SHUT_WR)
                while s.recv(4096):
                    pass
            s.close()
            fresh(sa)
    elif cmd == "expect":
        for _, _, raw in addrs(sys.argv[2]):
            print(esc(raw))
    elif cmd == "env":
        out = b""
        for _, _, raw in addrs(sys.argv[2]):
            out += (raw if b"\0" not in raw else b"unset") + b"\0"
        sys.stdout.buffer.write(out)
    elif cmd == "clean":
        data = open(sys.argv[2], "rb").read()
        for i, c in enumerate(data):
            if (c < 0x20 and c != 10) or c == 0x7F:
                print("raw control byte 0x%02x at offset %d: %r" % (c, i, data[max(0, i - 20):i + 20]))
                sys.exit(1)
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as e:
            print("invalid UTF-8: %s" % e)
            sys.exit(1)
        for i, ch in enumerate(text):
            if 0x80 <= ord(ch) <= 0x9F:
                print("C1 control U+%04X at character %d" % (ord(ch), i))
                sys.exit(1)
    elif cmd == "lines":
        n = open(sys.argv[2], "rb").read().count(b"\n")
        if n != int(sys.argv[3]):
            print("%d lines, want %s" % (n, sys.argv[3]))
            sys.exit(1)
    else:
        sys.exit(2)


main()
