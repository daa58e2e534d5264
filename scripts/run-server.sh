#!/bin/sh
# make run: start the echo server (UDSOCK_SERVER=calc_server: the computation
# service) on the default socket and say how to use it.
# Default socket: $XDG_RUNTIME_DIR/udsock/echo.sock (calc.sock), or
# /tmp/udsock-$UID/echo.sock
# (a directory created with mode 0700 and refused if it is not ours).
set -eu
build=${1:-build}
server=${UDSOCK_SERVER:-echo_server}
if [ -n "${XDG_RUNTIME_DIR:-}" ] && [ -d "$XDG_RUNTIME_DIR" ]; then
  dir="$XDG_RUNTIME_DIR/udsock"
else
  dir="/tmp/udsock-$(id -u)"
fi
mkdir -p -m 0700 "$dir"
if [ ! -O "$dir" ] || [ -L "$dir" ]; then
  echo "run: $dir is not owned by you (or is a symlink); refusing to use it" >&2
  exit 1
fi
chmod 0700 "$dir"
sock="${UDSOCK_SOCKET:-$dir/${server%_server}.sock}"
echo "udsock: starting $server on $sock (Ctrl-C to stop)"
case $server in
calc_server)
  echo "  talk to it:  $build/examples/calc_client $sock 'sum 1 2 3' 'expr (1+2)*3'"
  printf '%s\n' "          or:  printf 'sort 3 1 2\\nupper hi\\n' | $build/examples/calc_client $sock" ;;
*)
  echo "  talk to it:  $build/examples/echo_client $sock"
  echo "          or:  echo hello | $build/examples/echo_client $sock" ;;
esac
exec "$build/examples/$server" "$sock"
