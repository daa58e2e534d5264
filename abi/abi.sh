#!/bin/sh
# The ABI check of libudsock.so (issue 12): the symbols the shared library
# exports must be exactly those in abi/libudsock.symbols (sorted, one per
# line), and every one of them must be public API (uds_, never uds__).
#
#   abi/abi.sh [BUILD_DIR]            check (default build/); exit 1 with
#                                     the diff when the list and the library
#                                     differ (the test cli.abi runs this)
#   abi/abi.sh --update [BUILD_DIR]   write the library's list into
#                                     abi/libudsock.symbols (after adding or
#                                     removing a public function on purpose;
#                                     commit the list with the change, and
#                                     note a removal in NEWS.md)
#
# The list is what `nm -D --defined-only` shows, less the linker's and the
# sanitizers' own symbols (a build with UDS_SANITIZE or UDS_FUZZ may add
# some), so plain and ASan builds check against the same list.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
list=${ABI_SYMBOLS:-$here/libudsock.symbols}   # (ABI_SYMBOLS: cli.abi's self-test)
update=0
if [ "${1:-}" = "--update" ]; then
    update=1
    shift
fi
build=${1:-build}
lib=$build/libudsock.so
[ -e "$lib" ] || { echo "abi: no $lib (build first: make build)" >&2; exit 2; }
command -v nm >/dev/null 2>&1 || { echo "abi: nm not found (binutils)" >&2; exit 2; }

tmp=$(mktemp -d "${TMPDIR:-/tmp}/udsock-abi.XXXXXX")
trap 'rm -rf "$tmp"' EXIT INT TERM

# Names only (a versioned name's @VERSION cut off), without the toolchain's
# own: _init/_fini/_edata/_end/__bss_start (older binutils list them) and the
# sanitizer runtime's __asan_/__ubsan_/__sanitizer_/__odr_asan/__sancov names
# (clang's UDS_FUZZ build exports __start___sancov_*/__stop___sancov_*).
nm -D --defined-only "$lib" >"$tmp/nm" || { echo "abi: nm -D $lib failed" >&2; exit 2; }
awk '{ n = $NF; sub(/@.*/, "", n); print n }' "$tmp/nm" |
    grep -Ev '^(_init|_fini|_edata|_end|__bss_start|_DYNAMIC|_GLOBAL_OFFSET_TABLE_)$' |
    grep -Ev '^(__asan_|___asan_|__odr_asan|__ubsan_|__sanitizer_|__sancov_|__lsan_|__start___sancov_|__stop___sancov_)' |
    LC_ALL=C sort -u >"$tmp/have"

# every exported symbol is public API
if grep -Ev '^uds_[a-z0-9]' "$tmp/have" >"$tmp/bad"; then
    echo "abi: FAIL: $lib exports $(wc -l <"$tmp/bad") symbol(s) that are not public uds_ API:" >&2
    sed 's/^/  /' "$tmp/bad" >&2
    echo "abi: internal names are uds__ and declared in src/internal.h (hidden by" >&2
    echo "     -fvisibility=hidden); only include/udsock.h's declarations, inside its" >&2
    echo "     '#pragma GCC visibility push(default)', are exported." >&2
    exit 1
fi

if [ "$update" = 1 ]; then
    cp "$tmp/have" "$list"
    echo "abi: wrote $(wc -l <"$list") symbols of $lib into $list"
    exit 0
fi

[ -f "$list" ] || { echo "abi: no $list (abi/abi.sh --update $build makes it)" >&2; exit 2; }
if ! LC_ALL=C sort -c "$list" 2>/dev/null; then
    echo "abi: FAIL: $list is not sorted (LC_ALL=C); abi/abi.sh --update $build rewrites it" >&2
    exit 1
fi
if ! diff -u "$list" "$tmp/have" >"$tmp/diff"; then
    echo "abi: FAIL: the symbols $lib exports differ from abi/libudsock.symbols" >&2
    echo "     ('-' = in the list, gone from the library: an ABI break; '+' = new):" >&2
    sed -n '3,$p' "$tmp/diff" | grep '^[-+]' | sed 's/^/  /' >&2
    echo "abi: if the change is meant, run 'abi/abi.sh --update $build' and commit" >&2
    echo "     abi/libudsock.symbols with it (a removal or rename also goes in NEWS.md)." >&2
    exit 1
fi
echo "abi: ok: $lib exports the $(wc -l <"$list") symbols of abi/libudsock.symbols, all uds_"
