#!/bin/sh
# make run: start the echo server on the default socket and say how to use it.
# Default socket: $XDG_RUNTIME_DIR/udsock/echo.sock, or /tmp/udsock-$UID/echo.sock
# (a directory created with mode 0700 and refused if it is not ours).
set -eu
build=${1:-build}
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
sock="${UDSOCK_SOCKET:-$dir/echo.sock}"
server=${UDSOCK_SERVER:-echo_server}
echo "udsock: starting $server on $sock (Ctrl-C to stop)"
echo "  talk to it:  $build/examples/echo_client $sock"
echo "          or:  echo hello | $build/examples/echo_client $sock"
exec "$build/examples/$server" "$sock"
