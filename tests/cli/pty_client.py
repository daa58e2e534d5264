#!/usr/bin/env python3
"""A peer for cli.serve_pty that nobody here wrote the socket code of
(python's socket module): connects to a unix socket PATH and runs the
actions in order, then writes every byte it received to stdout.

  send:TEXT   send TEXT (backslash escapes: \\n, \\x04, ...)
  wait:TEXT   read until TEXT has arrived (10 s at most)
  shut        shutdown(SHUT_WR): EOF for the server, the socket still reads
  eof         read until the server closes (20 s at most)

Exit status 0, or 3 when a wait or eof ran out of time (what arrived by
then goes to stderr).
"""
import socket
import sys
import time


def main():
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(sys.argv[1])
    got = b""
    for act in sys.argv[2:]:
        verb, _, arg = act.partition(":")
        text = arg.encode().decode("unicode_escape").encode("latin-1")
        if verb == "send":
            s.sendall(text)
        elif verb == "shut":
            s.shutdown(socket.SHUT_WR)
        elif verb in ("wait", "eof"):
            end = time.monotonic() + (10 if verb == "wait" else 20)
            while verb == "eof" or text not in got:
                left = end - time.monotonic()
                if left <= 0:
                    sys.stdout.buffer.write(got)
                    sys.stderr.write("pty_client: %s timed out; got %r\n" % (act, got[-300:]))
                    sys.exit(3)
                s.settimeout(left)
                try:
                    b = s.recv(65536)
                except socket.timeout:
                    continue
                except ConnectionResetError:
                    b = b""
                if not b:
                    if verb == "wait":
                        sys.stdout.buffer.write(got)
                        sys.stderr.write("pty_client: EOF before %r; got %r\n" % (text, got[-300:]))
                        sys.exit(3)
                    break
                got += b
        else:
            sys.exit("pty_client: unknown action " + act)
    sys.stdout.buffer.write(got)


main()
