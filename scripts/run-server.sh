#!/bin/sh
# make run: start the echo server (UDSOCK_SERVER=calc_server: the computation
# service) on the default socket and say how to use it.
# Default socket: $XDG_RUNTIME_DIR/udsock/echo.sock (calc.sock), or
# /tmp/udsock-$UID/echo.sock: a directory of ours, mode 0700. If that name
# is not a private directory of ours (another user made it first, or a
# symlink), a fresh one from mktemp -d is used instead, and said so.
#
# Why it is done this way: /tmp is shared, and any user can put a symlink or
# a directory of their own under the name we want, and swap them while we
# look. Two checks of the name (test -O, test -L) each see a different
# object (tests showed a swap getting past both), and a chmod by name
# follows whatever the name is at that moment. So the name is used once:
# mkdir (which never follows a symlink and fails if anything is there),
# then a single `cd -P`; from then on the directory we are in is fixed, and
# it is checked and changed only as "." (its physical path must be the
# name we asked for, so we did not arrive through a symlink; its owner must
# be us), and the socket is made relative to it (so `udsock ls` and ss
# show it as ./echo.sock; clients use the absolute path printed below).
# UDSOCK_RUN_TMP (default /tmp) is where the fallback name lives; the tests
# point it at a directory of their own.
set -eu
build=${1:-build}
server=${UDSOCK_SERVER:-echo_server}
case $build in /*) ;; *) build=$(pwd -P)/$build ;; esac # we cd away below
uid=$(id -u)
tmp=${UDSOCK_RUN_TMP:-/tmp}
if [ -n "${XDG_RUNTIME_DIR:-}" ] && [ -d "$XDG_RUNTIME_DIR" ]; then
  parent=$XDG_RUNTIME_DIR
  name=udsock
else
  parent=$tmp
  name=udsock-$uid
fi

# use_dir PARENT NAME: cd into PARENT/NAME if it is a directory of ours,
# reached without a symlink, and make it 0700 (as "."); 1 otherwise
use_dir() {
  pp=$(cd -P -- "$1" 2>/dev/null && pwd -P) || return 1
  cd -P -- "$pp/$2" 2>/dev/null || return 1
  [ "$(pwd -P)" = "$pp/$2" ] || return 1
  [ "$(stat -c %u .)" = "$uid" ] || return 1
  chmod 0700 . || return 1
  [ "$(stat -c %a .)" = 700 ]
}

mkdir -m 0700 -- "$parent/$name" 2>/dev/null || : # there already: checked below
if ! use_dir "$parent" "$name"; then
  echo "run: $parent/$name is not a private directory of yours (another user's, or a symlink); using a fresh one" >&2
  fresh=$(mktemp -d -- "$tmp/udsock-$uid.XXXXXX") || exit 1
  if ! use_dir "$(dirname -- "$fresh")" "$(basename -- "$fresh")"; then
    echo "run: cannot use $fresh either; refusing" >&2
    exit 1
  fi
fi
here=$(pwd -P)
base=${server%_server}.sock
if [ -n "${UDSOCK_SOCKET:-}" ]; then
  sock=$UDSOCK_SOCKET
  bind=$UDSOCK_SOCKET
else
  sock=$here/$base
  bind=./$base # relative to the directory checked above, never the name again
fi
echo "udsock: starting $server on $sock (Ctrl-C to stop)"
case $server in
calc_server)
  echo "  talk to it:  $build/examples/calc_client $sock 'sum 1 2 3' 'expr (1+2)*3'"
  printf '%s\n' "          or:  printf 'sort 3 1 2\\nupper hi\\n' | $build/examples/calc_client $sock" ;;
*)
  echo "  talk to it:  $build/examples/echo_client $sock"
  echo "          or:  echo hello | $build/examples/echo_client $sock" ;;
esac
exec "$build/examples/$server" "$bind"
