#!/usr/bin/python3
"""fdpeer.py — a peer that passes file descriptors (SCM_RIGHTS) and
credentials (SCM_CREDENTIALS), for the relay's fd-forwarding tests.

  fdpeer.py server PATH READY_FIFO
      accepts connections one after another; for each message it receives
      (a line of text, with fds attached), it reads every fd (each is a
      file whose content names it), and answers with one line
      "msg=<text> fds=<n> ok=<n matching> uid=<sender uid> pid=<sender pid>"
      and, for a message "give N", N fds of its own (files "srv-0".."srv-N-1").
  fdpeer.py client PATH COUNT...
      connects, for each COUNT sends "m<COUNT>" with COUNT fds (files
      "c-<i>"), prints the server's answer line; then sends "give 3" and
      checks the 3 fds it gets back; prints "back=<n> ok=<n>".
"""
import array, os, socket, struct, sys, tempfile

SO_PASSCRED = getattr(socket, "SO_PASSCRED", 16)
SCM_CREDENTIALS = getattr(socket, "SCM_CREDENTIALS", 2)


def files(prefix, n, d):
    fds = []
    for i in range(n):
        p = os.path.join(d, "%s-%d" % (prefix, i))
        with open(p, "w") as f:
            f.write("%s-%d" % (prefix, i))
        fds.append(os.open(p, os.O_RDONLY))
        os.unlink(p)
    return fds


def content(fd):
    try:
        os.lseek(fd, 0, 0)
        return os.read(fd, 100).decode()
    except OSError:  # not one of our files (a pipe from another test)
        return ""


def recv_line(c, buf, fdbox, credbox):
    """Reads until a newline; collects fds and the last credentials seen."""
    while b"\n" not in buf[0]:
        msg, anc, flags, _ = c.recvmsg(65536, socket.CMSG_SPACE(253 * 4) + socket.CMSG_SPACE(12))
        if flags & socket.MSG_CTRUNC:
            raise SystemExit("control data truncated")
        for level, typ, data in anc:
            if level == socket.SOL_SOCKET and typ == socket.SCM_RIGHTS:
                a = array.array("i")
                a.frombytes(data[: len(data) - len(data) % 4])
                fdbox.extend(a)
            elif level == socket.SOL_SOCKET and typ == SCM_CREDENTIALS:
                credbox[:] = list(struct.unpack("iII", data[:12]))
        if not msg:
            return None
        buf[0] += msg
    line, _, rest = buf[0].partition(b"\n")
    buf[0] = rest
    return line.decode()


def server(path, ready):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.bind(path)
    s.listen(16)
    with open(ready, "w") as f:
        f.write("ready\n")
    d = tempfile.mkdtemp()
    while True:
        c, _ = s.accept()
        c.setsockopt(socket.SOL_SOCKET, SO_PASSCRED, 1)
        buf = [b""]
        while True:
            fds, cred = [], [0, 0, 0]
            try:
                line = recv_line(c, buf, fds, cred)
            except OSError:  # a client that vanished: next one
                line = None
            if line is None:
                break
            good = sum(1 for i, fd in enumerate(fds) if content(fd) == "c-%d" % i)
            for fd in fds:
                os.close(fd)
            out = "msg=%s fds=%d ok=%d uid=%d pid=%d\n" % (line, len(fds), good, cred[1], cred[0])
            if line.startswith("give "):
                mine = files("srv", int(line[5:]), d)
                try:
                    socket.send_fds(c, [out.encode()], mine)
                except PermissionError:  # refused by the relay (no --fds)
                    c.sendall(out.encode())
                for fd in mine:
                    os.close(fd)
            else:
                try:
                    c.sendall(out.encode())
                except OSError:
                    break
        c.close()


def client(path, counts):
    c = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    c.settimeout(10)
    c.connect(path)
    d = tempfile.mkdtemp()
    buf = [b""]
    for n in counts:
        n = int(n)
        fds = files("c", n, d)
        try:
            socket.send_fds(c, [("m%d\n" % n).encode()], fds)
        except OSError as e:
            # refused (SO_PASSRIGHTS off at the receiver): say so, go on plain
            print("send-refused errno=%d" % e.errno, end=" ")
            c.sendall(("m%d\n" % n).encode())
        for fd in fds:
            os.close(fd)
        got, cred = [], [0, 0, 0]
        print(recv_line(c, buf, got, cred))
        for fd in got:
            os.close(fd)
    c.sendall(b"give 3\n")
    got, cred = [], [0, 0, 0]
    line = recv_line(c, buf, got, cred)
    good = sum(1 for i, fd in enumerate(got) if content(fd) == "srv-%d" % i)
    print("back=%d ok=%d" % (len(got), good))
    c.close()


if __name__ == "__main__":
    if sys.argv[1] == "server":
        server(sys.argv[2], sys.argv[3])
    else:
        client(sys.argv[2], sys.argv[3:])
