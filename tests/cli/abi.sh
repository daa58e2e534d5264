#!/bin/bash
# Issue 12, symbol visibility and one version number. libudsock.so exports
# exactly the symbols of abi/libudsock.symbols, all public uds_ API (before
# -fvisibility=hidden it also exported 46 uds__ internals); the checker
# itself fails on a removed, an added and an internal symbol (shown here on
# a changed list and on a small library made for the purpose, so this test
# can fail); the library's file name and SONAME, `udsock --version` and
# UDSOCK_VERSION_HEX all carry the header's UDSOCK_VERSION_MAJOR/MINOR/PATCH.
# To accept a deliberate change of the API: abi/abi.sh --update BUILD_DIR.
# uds-test-timeout: 60
set -u
UDS_BUILD_DIR=${UDS_BUILD_DIR:-build}
. "$(dirname "$0")/io_common.bash"
SRC=$(cd "$(dirname "$0")/../.." && pwd)
ABI=$SRC/abi/abi.sh
LIST=$SRC/abi/libudsock.symbols
B=$UDS_BUILD_DIR
need nm
need readelf
need cc

# 1. the built library against the committed list
sh "$ABI" "$B" >"$T/abi.out" 2>&1 || fail "$(cat "$T/abi.out")"
ok "$(cat "$T/abi.out")"
n=$(wc -l <"$LIST")
[ "$n" -ge 100 ] || fail "abi/libudsock.symbols has only $n lines"
grep -qx uds_loop_new "$LIST" || fail "uds_loop_new is not in abi/libudsock.symbols"

# 2. the checker fails, with the diff, when a public function left the
# library (here: left out of a copy of the list the other way round, an
# extra name), when one was added, and when the list is not sorted
first=$(head -1 "$LIST")
sed 1d "$LIST" >"$T/fewer"
{ cat "$LIST"; echo uds_zz_removed_call; } >"$T/more"
ABI_SYMBOLS=$T/fewer sh "$ABI" "$B" >"$T/o1" 2>&1; rc=$?
[ $rc = 1 ] || fail "a symbol not in the list: status $rc, want 1: $(cat "$T/o1")"
grep -qx "  +$first" "$T/o1" || fail "a symbol not in the list: '+$first' not shown: $(cat "$T/o1")"
grep -q 'abi/abi.sh --update' "$T/o1" || fail "the failure does not say how to update: $(cat "$T/o1")"
ABI_SYMBOLS=$T/more sh "$ABI" "$B" >"$T/o2" 2>&1; rc=$?
[ $rc = 1 ] || fail "a listed symbol gone: status $rc, want 1: $(cat "$T/o2")"
grep -qx "  -uds_zz_removed_call" "$T/o2" || fail "a listed symbol gone: not shown: $(cat "$T/o2")"
{ sed 1d "$LIST"; echo "$first"; } >"$T/unsorted"
ABI_SYMBOLS=$T/unsorted sh "$ABI" "$B" >"$T/o3" 2>&1; rc=$?
[ $rc = 1 ] || fail "an unsorted list: status $rc, want 1: $(cat "$T/o3")"
ok "the checker fails on an added symbol (+$first), a removed one (-uds_zz_removed_call) and an unsorted list"

# 3. ... and when a library exports an internal (uds__) or a foreign name
mkdir -p "$T/fake"
printf '%s\n' 'int uds_fake_api(void) { return 1; }' 'int uds__fake_internal(void) { return 2; }' \
    'int other_name(void) { return 3; }' >"$T/fake/f.c"
cc -shared -fPIC -o "$T/fake/libudsock.so" "$T/fake/f.c" 2>"$T/fake/cc.err" || fail "cc: $(cat "$T/fake/cc.err")"
echo uds_fake_api >"$T/fake/list"
ABI_SYMBOLS=$T/fake/list sh "$ABI" "$T/fake" >"$T/o4" 2>&1; rc=$?
[ $rc = 1 ] || fail "a library exporting uds__fake_internal: status $rc, want 1: $(cat "$T/o4")"
grep -qx "  uds__fake_internal" "$T/o4" && grep -qx "  other_name" "$T/o4" ||
    fail "the internal and the foreign name are not both named: $(cat "$T/o4")"
grep -q "uds_fake_api" "$T/o4" && fail "the public name was reported: $(cat "$T/o4")"
ok "the checker fails on a library exporting uds__fake_internal and other_name"

# 4. one version number: the header's, everywhere
H=$SRC/include/udsock.h
num() { sed -n "s/^#define UDSOCK_VERSION_$1 \([0-9][0-9]*\)\$/\1/p" "$H"; }
ma=$(num MAJOR); mi=$(num MINOR); pa=$(num PATCH)
[ -n "$ma" ] && [ -n "$mi" ] && [ -n "$pa" ] || fail "no UDSOCK_VERSION_MAJOR/MINOR/PATCH in $H"
v=$ma.$mi.$pa
[ -f "$B/libudsock.so.$v" ] || fail "no $B/libudsock.so.$v (the header says $v): $(ls "$B"/libudsock.so*)"
so=$(readelf -d "$B/libudsock.so" | sed -n 's/.*(SONAME).*\[\(.*\)\]/\1/p')
[ "$so" = "libudsock.so.$ma" ] || fail "SONAME '$so', want libudsock.so.$ma"
got=$("$U" --version) || fail "udsock --version: status $?"
[ "$got" = "udsock $v" ] || fail "udsock --version printed '$got', want 'udsock $v'"
printf '%s\n' '#include <stdio.h>' '#include <udsock.h>' \
    'int main(void) { printf("%d %s\n", UDSOCK_VERSION_HEX, UDSOCK_VERSION); return 0; }' >"$T/hex.c"
cc -std=c11 -Wall -Wextra -Werror -pedantic -I"$SRC/include" -o "$T/hex" "$T/hex.c" 2>"$T/hex.err" ||
    fail "a program including udsock.h does not compile: $(cat "$T/hex.err")"
want="$(((ma << 16) | (mi << 8) | pa)) $v"
[ "$("$T/hex")" = "$want" ] || fail "UDSOCK_VERSION_HEX/UDSOCK_VERSION: '$("$T/hex")', want '$want'"
ok "version $v: libudsock.so.$v, SONAME $so, udsock --version, UDSOCK_VERSION_HEX $(printf '0x%06x' "$(((ma << 16) | (mi << 8) | pa))")"
