#!/bin/bash
# Issue 9 defect 3: `udsock ls` cannot be fed fake entries or terminal
# escapes. Hostile names: an abstract name holding a newline and then a
# forged line (short, and one in the exact /proc/net/unix format that
# showed root a listening /run/forged-admin.sock), \e]0;title\a and \e[2J,
# the longest abstract name (107 bytes after the NUL) full of control and
# invalid bytes, invalid UTF-8, a path socket whose name has control bytes
# and a newline, and a process whose command name is an escape sequence.
# In every text output (ls, ls -a, ls -l, ls DIR, ls PATH): no forged
# entry, no raw control byte, valid UTF-8. In every --json output: it
# decodes (python3 json), no forged record, and each name comes back as its
# exact bytes (name_hex / path_hex / command_hex; the string too when the
# bytes are valid UTF-8).
# uds-test-timeout: 60
set -u
UDS_BUILD_DIR=${UDS_BUILD_DIR:-build}
. "$(dirname "$0")/io_common.bash"
PY=/usr/bin/python3
fail=0
bad() { echo "FAIL: $*"; fail=1; }

mkdir "$T/h"
# a token of this run in every abstract name: other tests (or another
# checkout's suite) running at the same time bind names of their own with
# "forged-admin" in them, a machine-wide listing shows theirs too, and a
# fixed abstract name would collide with theirs (EADDRINUSE)
export LSH_TOK=$$
# the hostile process: binds everything, names itself, says "ready", waits
$PY - "$T/h" >"$T/ready" <<'PYEOF' &
import os, socket, sys, time
d = sys.argv[1].encode()
F = ("/run/forged-admin-%s.sock" % os.environ["LSH_TOK"]).encode()
TOK = ("-" + os.environ["LSH_TOK"]).encode()  # abstract names are machine-wide
names = {
    "forged": b"\0x\n" + F + b" LISTEN",
    "procline": b"\0y\n0000000000000000: 00000002 00000000 00010000 0001 01 12345 " + F,
    "esc": b"\0\x1b]0;title\x07\x1b[2J" + TOK,
    "max": b"\0" + (TOK + bytes((0x0a, 0x1b, 0xff, 0x41, 0x07, 0x00, 0xc3)[i % 7] for i in range(107)))[:107],
    "utf8": b"\0caf\xc3\x28\xff\xfe" + TOK,
    "path": d + b"/p\x1b[2J\nq\xff.sock",
}
keep = []
for k, n in names.items():
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.bind(n)
    s.listen(4)
    keep.append(s)
# a client of the forged listener: its accepted end carries the name too
c = socket.socket(socket.AF_UNIX)
c.connect(names["forged"])
a, _ = keep[0].accept()
keep += [c, a]
with open("/proc/self/comm", "wb") as f:
    f.write(b"\x1b]0;pwn\x07")
print("ready", flush=True)
time.sleep(120)
PYEOF
H=$!
PIDS+=($H)
poll_until grep -q ready "$T/ready" || fail "hostile process not ready"
P1=$(printf '%s/p\033[2J\nq\377.sock' "$T/h")

# text: no forged line, no raw control byte, valid UTF-8
check_text() { # WHAT FILE EXPECTED-FORGED-LINES
    $PY - "$1" "$2" "$3" <<'PYEOF'
import sys
what, f, want = sys.argv[1], sys.argv[2], int(sys.argv[3])
b = open(f, "rb").read()
errs = []
raw = sorted({c for c in b if (c < 0x20 and c != 0x0a) or c == 0x7f})
if raw:
    errs.append("raw control bytes %r" % raw)
try:
    t = b.decode("utf-8")
    if any(0x80 <= ord(ch) <= 0x9f for ch in t):
        errs.append("a C1 control")
except UnicodeDecodeError as e:
    errs.append("invalid UTF-8: %s" % e)
    t = b.decode("utf-8", "replace")
lines = t.split("\n")
# a machine-wide listing: every row starts with a type, and the NAME
# column (from the header's offset) is the whole name
col = lines[0].find("NAME") if lines[0].startswith("TYPE") else -1
for l in lines[1:] if col >= 0 else lines:
    if not l:
        continue
    f = l.split()
    if col >= 0 and (f[0] not in ("stream", "dgram", "seqpacket", "other") or l[col:].startswith("/run/")):
        errs.append("forged entry: %r" % l)
    if f[0].startswith("0000000000000000:") or l.startswith("/run/"):
        errs.append("forged entry: %r" % l)
import os
F = "/run/forged-admin-%s.sock" % os.environ["LSH_TOK"]
forged = [l for l in lines if F in l]
for l in forged:
    if "@x\\n" + F + " LISTEN" not in l and "@y\\n0000000000000000: " not in l:
        errs.append("forged name not escaped on its line: %r" % l)
if len(forged) != want:
    errs.append("%d lines name forged-admin, want %d" % (len(forged), want))
print("ok: %s: no forged entry, no raw control byte, valid UTF-8" % what if not errs else "FAIL: %s: %s" % (what, "; ".join(errs)))
sys.exit(1 if errs else 0)
PYEOF
}
"$U" ls >"$T/t1" || bad "ls failed"
check_text "ls" "$T/t1" 3 || fail=1
"$U" ls -a >"$T/t2" || bad "ls -a failed"
check_text "ls -a" "$T/t2" 3 || fail=1
"$U" ls -l >"$T/t3" || bad "ls -l failed"
check_text "ls -l" "$T/t3" 2 || fail=1
"$U" ls "$T/h" >"$T/t4" || bad "ls DIR failed"
check_text "ls DIR" "$T/t4" 0 || fail=1
"$U" ls "$P1" >"$T/t5" || bad "ls PATH failed"
check_text "ls PATH" "$T/t5" 0 || fail=1
grep -qF '\x1b]0;pwn\x07' "$T/t2" && echo "ok: the command name shown escaped" || bad "escaped command name not in ls -a"
grep -qF '@\x1b]0;title\x07\x1b[2J' "$T/t1" && echo "ok: the escape-sequence name shown escaped" || bad "escaped title name missing"
grep -qF "$T/h/p\\x1b[2J\\nq\\xff.sock" "$T/t4" && echo "ok: the path name shown escaped in ls DIR" || bad "escaped path missing in ls DIR"

# JSON: decodes, exact bytes, no forged record
"$U" ls --json -a >"$T/j1" || bad "ls --json -a failed"
"$U" ls --json "$T/h" >"$T/j2" || bad "ls --json DIR failed"
"$U" ls --json "$P1" >"$T/j3" || bad "ls --json PATH failed"
$PY - "$T" "$H" <<'PYEOF' || fail=1
import json, os, sys
T, pid = sys.argv[1], int(sys.argv[2])
F = "/run/forged-admin-%s.sock" % os.environ["LSH_TOK"]
TOK = ("-" + os.environ["LSH_TOK"]).encode()
d = T.encode() + b"/h"
names = {
    "forged": (b"x\n" + F.encode() + b" LISTEN", 2),
    "procline": (b"y\n0000000000000000: 00000002 00000000 00010000 0001 01 12345 " + F.encode(), 1),
    "esc": (b"\x1b]0;title\x07\x1b[2J" + TOK, 1),
    "max": ((TOK + bytes((0x0a, 0x1b, 0xff, 0x41, 0x07, 0x00, 0xc3)[i % 7] for i in range(107)))[:107], 1),
    "utf8": (b"caf\xc3\x28\xff\xfe" + TOK, 1),
}
path = d + b"/p\x1b[2J\nq\xff.sock"
bad = []
raw = {}
for f in ("j1", "j2", "j3"):
    b = open(T + "/" + f, "rb").read()
    raw[f] = b
    if any((c < 0x20 and c != 0x0a) or c == 0x7f for c in b):
        bad.append("%s: raw control byte in the JSON text" % f)
try:
    rows = json.loads(raw["j1"])
    drow = json.loads(raw["j2"])
    prow = json.loads(raw["j3"])
except ValueError as e:
    print("FAIL: JSON does not decode: %s" % e)
    sys.exit(1)
for k, (want, count) in names.items():
    hits = [r for r in rows if r["kind"] == "abstract" and bytes.fromhex(r["name_hex"]) == want]
    if len(hits) != count:
        bad.append("%s: %d records with the exact bytes, want %d" % (k, len(hits), count))
    try:
        s = want.decode("utf-8")
        if not all(h["name"] == s for h in hits):
            bad.append("%s: the name string is not exact" % k)
    except UnicodeDecodeError:
        pass
    if not all([p["pid"] for p in h["processes"]] == [pid] for h in hits):
        bad.append("%s: not held by the hostile process" % k)
    if k == "max" and hits and len(bytes.fromhex(hits[0]["name_hex"])) != 107:
        bad.append("max: not 107 bytes")
forged = [r for r in rows if r["name"] is not None and F == r["name"]]
forged += [r for r in rows if r["name_hex"] and bytes.fromhex(r["name_hex"]).startswith(b"/run/")]
if forged:
    bad.append("forged records: %r" % forged)
p = [r for r in rows if r["kind"] == "path" and bytes.fromhex(r["name_hex"]) == path]
if len(p) != 1:
    bad.append("the path socket: %d records" % len(p))
me = [q for r in rows for q in r["processes"] if q["pid"] == pid]
if not me or any(bytes.fromhex(q["command_hex"]) != b"\x1b]0;pwn\x07" or q["command"] != "\x1b]0;pwn\x07" for q in me):
    bad.append("the command name is not exact: %r" % me[:1])
dp = [r for r in drow if bytes.fromhex(r["path_hex"]) == path]
if len(dp) != 1 or dp[0]["state"] != "live" or len(drow) != 1:
    bad.append("ls --json DIR: %r" % drow)
if bytes.fromhex(prow["path_hex"]) != path or prow["state"] != "live" or prow["processes"][0]["pid"] != pid:
    bad.append("ls --json PATH: %r" % prow)
if bad:
    print("FAIL: " + "\nFAIL: ".join(bad))
    sys.exit(1)
print("ok: --json decodes; every hostile name and the command come back as their exact bytes; no forged record")
PYEOF

exit $fail
