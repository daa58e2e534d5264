#!/usr/bin/env bash
# Installs what a fresh Debian 12 machine lacks to build and test udsock.
# Idempotent: does nothing when every package is already present.
# Usage: scripts/deps.sh [--bench]   (--bench adds the peers used by bench/compare)
set -eu
pkgs="build-essential cmake pkg-config libcmocka-dev clang libclang-rt-14-dev \
socat netcat-openbsd ncat curl bsdutils util-linux systemd redis-server redis-tools \
procps iproute2 python3 strace s6 valgrind stress-ng netbase tmux zsh"
if [ "${1:-}" = "--bench" ]; then
  pkgs="$pkgs libzmq3-dev libnng-dev gnuplot hyperfine linux-perf"
fi
missing=""
for p in $pkgs; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
[ -z "$missing" ] && exit 0
echo "deps: installing:$missing" >&2
SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
# redis-server's postinst tries to start the service; policy-rc.d stops that in containers
$SUDO apt-get install -y -qq --no-install-recommends $missing >/dev/null
