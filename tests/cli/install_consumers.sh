#!/bin/bash
# Issue 12 (packaging): the installed library is usable from outside
# projects. `cmake --install` of this build into the test's directory, then
#  (a) an outside CMake project: find_package(udsock 0.1 REQUIRED) and
#      target_link_libraries(... udsock::udsock) (and udsock::udsock_static),
#      configured with -DCMAKE_PREFIX_PATH=<prefix>, built and run; the
#      program links the installed libudsock.so, and the version CMake found
#      is the header's UDSOCK_VERSION;
#  (b) an outside plain Makefile project with `pkg-config --cflags --libs
#      udsock` (the relocatable udsock.pc), built and run;
#  (c) find_package(udsock 1.0 REQUIRED) and, before 1.0, a request for
#      another minor (0.0) fail to configure (udsockConfigVersion.cmake,
#      SameMinorVersion while the major is 0).
# The installed CMake files name no path of the source or build tree.
# In the ASan build the library carries ASan/UBSan, so the consumers are
# compiled and linked with the same -fsanitize flags.
# uds-test-timeout: 180
set -u
UDS_BUILD_DIR=${UDS_BUILD_DIR:-build}
. "$(dirname "$0")/io_common.bash"
SRC=$(cd "$(dirname "$0")/../.." && pwd)
B=$(cd "$UDS_BUILD_DIR" && pwd)
CC=${CC:-cc}
need "$CC"
need cmake
need make
need pkg-config
P=$T/inst
cmake --install "$B" --prefix "$P" >"$T/install.log" 2>&1 ||
    fail "cmake --install $B: $(tail -5 "$T/install.log")"
cfg=$(find "$P" -name udsockConfig.cmake | head -1)
[ -n "$cfg" ] || fail "no udsockConfig.cmake under $P"
cdir=$(dirname "$cfg")
case $cdir in "$P"/lib*/cmake/udsock) ;; *) fail "udsockConfig.cmake in $cdir, not LIBDIR/cmake/udsock" ;; esac
for f in udsockConfigVersion.cmake udsockTargets.cmake; do
    [ -f "$cdir/$f" ] || fail "no $f beside udsockConfig.cmake ($(ls "$cdir"))"
done
if grep -rlF -e "$SRC" -e "$B" "$cdir" >"$T/paths.txt"; then
    fail "installed CMake files name the source or build tree: $(cat "$T/paths.txt")"
fi
ok "installed: $(cd "$P" && find . -path '*cmake/udsock/*' | sort | tr '\n' ' ')"

san=()
is_asan && san=(-fsanitize=address,undefined)
want=$(sed -n 's/^#define UDSOCK_VERSION "\(.*\)"$/\1/p' "$SRC/include/udsock.h")
[ -n "$want" ] || fail "no UDSOCK_VERSION in include/udsock.h"

# The consumer program, shared by both projects: a couple of public calls
# (address parse/format, an error text, a socketpair round trip).
mkdir -p "$T/app"
cat >"$T/app/app.c" <<'EOF'
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <udsock.h>

int main(void)
{
    uds_addr a;
    char text[128], buf[5];
    int fds[2];
    int r = uds_addr_parse(&a, "@udsock-consumer");
    if (r < 0 || uds_addr_format(&a, text, sizeof text) < 0) {
        fprintf(stderr, "parse/format: %s\n", uds_strerror(r));
        return 1;
    }
    if (uds_addr_parse(&a, "nope:x") != UDS_EADDR_SCHEME || strlen(uds_strerror(UDS_EADDR_SCHEME)) == 0) {
        fprintf(stderr, "an unknown scheme was not UDS_EADDR_SCHEME with a text\n");
        return 1;
    }
    if ((r = uds_pair(SOCK_STREAM, 0, fds)) < 0 || (r = (int)uds_write_all(fds[0], "ping", 4)) != 4 ||
        (r = (int)uds_read_exact(fds[1], buf, 4)) != 4) {
        fprintf(stderr, "round trip: %d %s\n", r, uds_strerror(r < 0 ? r : -EIO));
        return 1;
    }
    buf[4] = '\0';
    printf("%s %s %s\n", UDSOCK_VERSION, text, buf);
    close(fds[0]);
    close(fds[1]);
    return 0;
}
EOF
expect="$want @udsock-consumer ping"

# (a) CMake: find_package + the imported targets
cat >"$T/app/CMakeLists.txt" <<'EOF'
cmake_minimum_required(VERSION 3.16)
project(consumer LANGUAGES C)
find_package(udsock ${WANT} REQUIRED)
message(STATUS "consumer: found udsock ${udsock_VERSION} in ${udsock_DIR}")
add_executable(app app.c)
target_compile_options(app PRIVATE -std=c11 -Wall -Wextra -Werror)
target_link_libraries(app PRIVATE udsock::udsock)
add_executable(app_static app.c)
target_compile_options(app_static PRIVATE -std=c11 -Wall -Wextra -Werror)
target_link_libraries(app_static PRIVATE udsock::udsock_static)
EOF
cm=(-DCMAKE_PREFIX_PATH="$P" -DCMAKE_C_COMPILER="$CC" -DCMAKE_BUILD_TYPE=Debug)
[ ${#san[@]} -gt 0 ] && cm+=("-DCMAKE_C_FLAGS=${san[*]}" "-DCMAKE_EXE_LINKER_FLAGS=${san[*]}")
cmake -S "$T/app" -B "$T/app/b" -DWANT=0.1 "${cm[@]}" >"$T/a.cfg" 2>&1 ||
    fail "(a) find_package(udsock 0.1 REQUIRED) did not configure: $(tail -20 "$T/a.cfg")"
found=$(sed -n 's/^-- consumer: found udsock \([^ ]*\) in .*/\1/p' "$T/a.cfg")
[ "$found" = "$want" ] || fail "(a) CMake found udsock '$found', the header says '$want'"
grep -qF "in $cdir" "$T/a.cfg" || fail "(a) udsock_DIR is not $cdir: $(grep 'consumer:' "$T/a.cfg")"
cmake --build "$T/app/b" >"$T/a.build" 2>&1 || fail "(a) the consumer does not build: $(tail -20 "$T/a.build")"
ldd "$T/app/b/app" | grep -F "libudsock.so" >"$T/a.ldd"
grep -qF "=> $P/" "$T/a.ldd" || fail "(a) app does not load the installed libudsock: $(cat "$T/a.ldd")"
if ldd "$T/app/b/app_static" | grep -q libudsock; then fail "(a) app_static loads libudsock.so"; fi
for exe in app app_static; do
    got=$(timeout 20 "$T/app/b/$exe") || fail "(a) $exe: status $?"
    [ "$got" = "$expect" ] || fail "(a) $exe printed '$got', want '$expect'"
done
ok "(a) find_package(udsock 0.1 REQUIRED): found $found, app (udsock::udsock, $(sed 's/^[[:space:]]*//; s/ (0x.*//' "$T/a.ldd")) and app_static (udsock::udsock_static) print '$expect'"

# (b) a plain Makefile with pkg-config
pcdir=$(dirname "$(find "$P" -name udsock.pc | head -1)")
[ -f "$pcdir/udsock.pc" ] || fail "no udsock.pc under $P"
mkdir -p "$T/mk"
cp "$T/app/app.c" "$T/mk/"
printf '%s\n' 'CFLAGS += -std=c11 -Wall -Wextra -Werror $(SAN) $(shell pkg-config --cflags udsock)' \
    'LDLIBS += $(shell pkg-config --libs udsock)' \
    'LDFLAGS += $(SAN) -Wl,-rpath,$(shell pkg-config --variable=libdir udsock)' \
    'app: app.c' >"$T/mk/Makefile"
PKG_CONFIG_PATH=$pcdir make -C "$T/mk" CC="$CC" SAN="${san[*]}" >"$T/b.build" 2>&1 ||
    fail "(b) the Makefile project does not build: $(tail -20 "$T/b.build")"
inc=$(PKG_CONFIG_PATH=$pcdir pkg-config --variable=includedir udsock)
[ "$(cd "$inc" && pwd -P)" = "$(cd "$P/include" && pwd -P)" ] || fail "(b) udsock.pc's includedir $inc is not $P/include"
grep -qF -- "-I$inc" "$T/b.build" || fail "(b) the build did not use -I$inc: $(cat "$T/b.build")"
ldd "$T/mk/app" | grep -qF "libudsock.so.0 => $P/" || fail "(b) app does not load the installed libudsock: $(ldd "$T/mk/app")"
got=$(timeout 20 "$T/mk/app") || fail "(b) app: status $?"
[ "$got" = "$expect" ] || fail "(b) app printed '$got', want '$expect'"
ok "(b) Makefile + pkg-config ($(PKG_CONFIG_PATH=$pcdir pkg-config --cflags --libs udsock)): app prints '$expect'"

# (c) the version file refuses what this release does not satisfy
for v in 1.0 0.0; do
    rm -rf "$T/app/b$v"
    if cmake -S "$T/app" -B "$T/app/b$v" -DWANT=$v "${cm[@]}" >"$T/c$v.cfg" 2>&1; then
        fail "(c) find_package(udsock $v REQUIRED) configured against $want"
    fi
    grep -q 'udsockConfig.cmake, version: ' "$T/c$v.cfg" ||
        fail "(c) find_package(udsock $v) failed, but not for the version: $(tail -20 "$T/c$v.cfg")"
    ok "(c) find_package(udsock $v REQUIRED) fails: $(grep -o 'udsockConfig.cmake, version: .*' "$T/c$v.cfg" | head -1)"
done
# (d) add_subdirectory(udsock) in a parent project: the library targets
# (same names) but no tests, examples or benchmarks, and no cmocka looked
# for (configured only: building it would rebuild the library here)
mkdir -p "$T/parent"
cp "$T/app/app.c" "$T/parent/"
cat >"$T/parent/CMakeLists.txt" <<EOF
cmake_minimum_required(VERSION 3.16)
project(parent LANGUAGES C)
add_subdirectory("$SRC" udsock)
add_executable(app app.c)
target_link_libraries(app PRIVATE udsock::udsock)
EOF
cmake -S "$T/parent" -B "$T/parent/b" -DCMAKE_C_COMPILER="$CC" >"$T/d.cfg" 2>&1 ||
    fail "(d) a parent project with add_subdirectory(udsock) does not configure: $(tail -20 "$T/d.cfg")"
if grep -E '^CMOCKA_' "$T/parent/b/CMakeCache.txt" >"$T/d.cmocka"; then
    fail "(d) the parent's configure looked for cmocka: $(cat "$T/d.cmocka")"
fi
grep -q '^UDS_TESTS:BOOL=OFF$' "$T/parent/b/CMakeCache.txt" || fail "(d) UDS_TESTS is not OFF under a parent"
cmake --build "$T/parent/b" --target help >"$T/d.help" 2>&1 || fail "(d) no target list: $(tail -5 "$T/d.help")"
grep -qx '\.\.\. udsock_shared' "$T/d.help" || fail "(d) no udsock_shared target under a parent"
if grep -E '^\.\.\. (test_|replay_|bench_|echo_server|calc_server)' "$T/d.help" >"$T/d.extra"; then
    fail "(d) a parent project gets udsock's tests/examples/benchmarks: $(tr '\n' ' ' <"$T/d.extra")"
fi
ok "(d) add_subdirectory(udsock): configures with udsock::udsock, UDS_TESTS=OFF, no cmocka, no test/example/bench targets"
echo ALL OK
