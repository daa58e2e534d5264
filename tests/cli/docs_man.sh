#!/bin/bash
# Issue 10 defect 9: the man page and the help texts agree. For every
# command: each option its --help lists is in docs/udsock.1's SYNOPSIS and
# in the command's section, and each option the man page gives the command
# (its SYNOPSIS line and the .TP tags of its section) is in its --help;
# `udsock help CMD` prints exactly `udsock CMD --help`; the states `udsock
# ls` can print (live, bound, stale, unlinked, unknown) are documented;
# DESCRIPTION names no program twice. Before the fix the SYNOPSIS lacked
# -N, recv's --raw -m -o -g -v and more, and `help listen` printed the
# global help.
# uds-test-timeout: 60
set -u
UDS_BUILD_DIR=${UDS_BUILD_DIR:-build}
. "$(dirname "$0")/io_common.bash"
SRC=$(cd "$(dirname "$0")/../.." && pwd)
MAN=$SRC/docs/udsock.1
need python3

for c in listen connect send recv bench serve relay ls; do
    "$U" "$c" --help >"$T/a" 2>&1 || fail "$c --help: status $?"
    "$U" help "$c" >"$T/b" 2>&1 || fail "help $c: status $?"
    cmp -s "$T/a" "$T/b" || fail "'udsock help $c' differs from '$c --help': $(head -3 "$T/b")"
done
"$U" help completion | grep -q '^usage: udsock completion' || fail "help completion"
"$U" help nosuch >/dev/null 2>&1; rc=$?
[ $rc = 2 ] || fail "help nosuch: status $rc, want 2"
"$U" help | grep -q '^usage: udsock COMMAND' || fail "plain 'udsock help' lost the global help"
ok "udsock help CMD prints CMD's own help, for every command"

python3 - "$MAN" "$U" <<'PY' || fail "udsock.1 and --help disagree (above)"
import re, subprocess, sys
man, udsock = sys.argv[1], sys.argv[2]
cmds = ["listen", "connect", "send", "recv", "serve", "relay", "ls", "bench"]
help_opts = {c: set() for c in cmds}
out = subprocess.run([udsock, "completion", "list"], capture_output=True, text=True, check=True).stdout
for line in out.splitlines():
    c, o = line.split()[:2]
    if c in help_opts:
        help_opts[c].add(o)
text = open(man).read()
def plain(s):
    s = re.sub(r'\\f[BIRP]', '', s)
    s = s.replace('\\-', '-').replace('\\(em', '-').replace('\\ ', ' ').replace('\\&', '')
    return s
lines = text.split('\n')
# sections
secs, cur = {}, None
for l in lines:
    m = re.match(r'^\.SH\s+"?([A-Z ]+?)"?\s*$', l)
    if m:
        cur = m.group(1).strip().lower()
        secs[cur] = []
        continue
    if cur:
        secs[cur].append(l)
# synopsis per command
syn = {}
cur = None
for l in secs.get('synopsis', []):
    m = re.match(r'^\.B udsock (\w+)', l)
    if m:
        cur = m.group(1); syn[cur] = []
        continue
    if l.startswith('.br'):
        cur = None
    elif cur:
        syn[cur].append(l)
optre = re.compile(r'(?<![\w-])(--?[A-Za-z][A-Za-z0-9-]*)')
bad = 0
for c in cmds:
    sect = plain('\n'.join(secs.get(c, [])))
    synt = plain('\n'.join(syn.get(c, [])))
    sect_opts = set(optre.findall(sect))
    syn_opts = set(optre.findall(synt))
    # options the man page defines for c: the SYNOPSIS and the .TP tags
    tags = set()
    sl = secs.get(c, [])
    for i, l in enumerate(sl):
        if l.startswith('.TP') and i + 1 < len(sl):
            tags |= set(optre.findall(plain(sl[i + 1])))
    for o in sorted(help_opts[c]):
        if o in ('-h', '--help'):
            continue
        if o not in syn_opts:
            print(f"{c}: {o} (in --help) is not in the SYNOPSIS"); bad = 1
        if o not in sect_opts:
            print(f"{c}: {o} (in --help) is not in the {c.upper()} section"); bad = 1
    for o in sorted((syn_opts | tags) - help_opts[c]):
        print(f"{c}: {o} (in udsock.1) is not in 'udsock {c} --help'"); bad = 1
sys.exit(bad)
PY
ok "every --help option is in the man page's SYNOPSIS and section, and back"

plain=$(sed -e 's/\\-/-/g' -e 's/\\f[BIRP]//g' "$MAN")
for st in live bound stale unlinked unknown; do
    grep -q "^\.B $st\$" "$MAN" || fail "ls state '$st' is not documented (.B $st)"
done
ok "ls states live, bound, stale, unlinked, unknown are documented"

desc=$(printf '%s\n' "$plain" | sed -n '/^\.SH DESCRIPTION/,/^\.SH /p')
for w in socat nc ncat s6-ipcserver ss libudsock "address syntax"; do
    n=$(printf '%s\n' "$desc" | grep -oE "(^|[^a-z6-])$w([^a-z-]|$)" | wc -l)
    [ "$n" -le 1 ] || fail "DESCRIPTION names '$w' $n times"
done
ok "DESCRIPTION says each thing once"
echo ALL OK
