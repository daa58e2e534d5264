/*
 * udsock.h — the one public header of libudsock.
 *
 * libudsock: inter-process communication over Unix domain sockets (and the
 * same calls over TCP/UDP), for Linux.
 *
 * Conventions (they hold for every function below unless its comment says
 * otherwise):
 *   - Functions return >= 0 on success and a negative errno value (-EINVAL,
 *     -ECONNREFUSED, ...) on failure. errno itself is not meaningful after a
 *     call. uds_strerror() turns a return code into text.
 *   - The library never prints, never exits and never raises signals.
 *   - Every file descriptor it creates is close-on-exec.
 *   - Every send uses MSG_NOSIGNAL: a vanished peer yields -EPIPE, not SIGPIPE.
 *   - EINTR is retried inside the library. -EAGAIN is returned only by the
 *     calls documented as non-blocking, and means "not now", not "failed".
 *   - Buffers passed in are borrowed for the duration of the call only.
 *     File descriptors returned (sockets, received fds) belong to the caller.
 *   - Names: uds_ is public, uds__ is internal.
 *   - Timeouts in milliseconds: in an options struct, 0 means the documented
 *     default (so a zeroed struct behaves sensibly) and a negative value
 *     means no limit; as a call argument, 0 means "do not wait" and a
 *     negative value "no limit". Fields that predate this rule say so.
 */
#ifndef UDSOCK_H
#define UDSOCK_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/un.h>
#include <netinet/in.h>

#ifdef __cplusplus
extern "C" {
#endif

/*
 * The one version number: CMakeLists.txt reads these three lines for
 * project(VERSION) (the shared library's file name and SONAME, udsock.pc,
 * udsockConfigVersion.cmake), and refuses to configure when UDSOCK_VERSION
 * does not spell them. UDSOCK_VERSION_HEX is 0xMMmmpp, for comparisons
 * in #if.
 */
#define UDSOCK_VERSION_MAJOR 0
#define UDSOCK_VERSION_MINOR 1
#define UDSOCK_VERSION_PATCH 0
#define UDSOCK_VERSION "0.1.0"
#define UDSOCK_VERSION_HEX ((UDSOCK_VERSION_MAJOR << 16) | (UDSOCK_VERSION_MINOR << 8) | UDSOCK_VERSION_PATCH)

/*
 * Everything declared in this header is the library's ABI: the library is
 * compiled with -fvisibility=hidden, and this pragma makes what is declared
 * between here and the matching pop (at the end) visible, so libudsock.so
 * exports the uds_ API and nothing else (abi/libudsock.symbols lists it; a
 * test compares). In a program that includes the header it changes nothing.
 */
#pragma GCC visibility push(default)

/* Returns the library's version string, e.g. "0.1.0". */
const char *uds_version(void);

/*
 * Returns a static, human-readable text for a return code of this library
 * (a negative errno value, or one of the UDS_E* codes below). Never NULL.
 */
const char *uds_strerror(int err);

/*
 * The one escaping rule for text a peer chose (paths, abstract names,
 * program names, data shown to a person): printable ASCII and valid UTF-8
 * stay, backslash becomes "\\", newline/CR/tab "\n" "\r" "\t", every other
 * byte (control bytes, DEL, C1 controls, invalid UTF-8) "\xNN". Nothing
 * that reaches a terminal through it can move the cursor, set a title or
 * forge a line. Writes at most cap bytes including the NUL (output is cut
 * only between whole characters/escapes; out may be NULL with cap 0 to
 * measure). Returns the length the whole text needs (without the NUL), or
 * -EINVAL.
 */
ssize_t uds_escape(const void *data, size_t len, char *out, size_t cap);

/*
 * A rate limit for log lines a peer can trigger at will (refused clients,
 * bad frames): at most `burst` lines per `interval_ms` (zeroed struct: 10
 * per second). uds_ratelimit_pass says whether to log now; when a new
 * interval starts it reports through *suppressed (may be NULL) how many
 * lines the previous one swallowed, so a summary can be logged.
 */
typedef struct uds_ratelimit {
    unsigned interval_ms; /* 0: 1000 */
    unsigned burst;       /* 0: 10 */
    uint64_t begin_ms;    /* internal */
    unsigned used;        /* internal */
    unsigned suppressed;  /* internal */
} uds_ratelimit;
int uds_ratelimit_pass(uds_ratelimit *r, uint64_t now_ms, unsigned *suppressed);
/* If the current interval is over: ends it and returns how many lines it
   suppressed (for a summary from a timer when the flood has stopped);
   otherwise 0. */
unsigned uds_ratelimit_flush(uds_ratelimit *r, uint64_t now_ms);
/* When the current interval ends (ms, the clock given to pass). */
uint64_t uds_ratelimit_end(const uds_ratelimit *r);

/* ------------------------------------------------------------------------ */
/* Addresses                                                                */
/* ------------------------------------------------------------------------ */

/*
 * Text syntax (the same in the library and the CLI):
 *   /run/x.sock, ./x.sock, x.sock, unix:PATH   filesystem socket
 *   @name, abstract:name                        Linux abstract namespace
 *   tcp:HOST:PORT, tcp:[::1]:PORT               TCP over IPv4/IPv6
 *   udp:HOST:PORT, udp:[::1]:PORT               UDP over IPv4/IPv6
 * A bare word that contains no ':' and does not start with '@' is a path.
 * A path may be up to UDS_PATH_MAX bytes long (PATH_MAX - 1), far beyond
 * sun_path's 108: a path that fits sun_path is used as it is (no extra
 * system call); a longer one is reached through a descriptor of its file
 * (connect, sendto) or of its directory (bind), see uds_listen. Binding
 * also needs the last component to fit (UDS_NAME_MAX_BIND); nothing is
 * ever truncated. Longer paths are refused with -ENAMETOOLONG.
 */
enum uds_addr_kind {
    UDS_ADDR_NONE = 0,     /* not set */
    UDS_ADDR_PATH = 1,     /* filesystem path */
    UDS_ADDR_ABSTRACT = 2, /* Linux abstract name */
    UDS_ADDR_UNNAMED = 3,  /* an unbound AF_UNIX peer (e.g. logger -u) */
    UDS_ADDR_TCP = 4,      /* AF_INET or AF_INET6, stream */
    UDS_ADDR_UDP = 5       /* AF_INET or AF_INET6, datagram */
};

/* Longest path accepted (bytes, without the NUL): PATH_MAX - 1. Paths up
   to 107 bytes fit sun_path and take the fast way (until 0.1 this was the
   limit, 107). */
#define UDS_PATH_MAX 4095
/* Longest path that fits sun_path (bytes, without the NUL). */
#define UDS_SUN_PATH_MAX 107
/* Longest last path component uds_listen can bind (bytes): the bind goes
   through "/proc/self/fd/DIRFD/NAME", which must fit sun_path (the exact
   limit depends on the descriptor number; this is the lower bound for
   descriptors below 100000). */
#define UDS_NAME_MAX_BIND 87
/* Room for any address formatted as text, NUL included. */
#define UDS_ADDR_STRLEN (UDS_PATH_MAX + 17)

/*
 * A socket address as a plain value: copy it, compare it, keep it. A path
 * of up to UDS_PATH_MAX bytes is held in place (u.path.name; u.un.sun_path
 * is the same bytes for a path that fits it), so the value needs no
 * freeing; len is the sockaddr length (offsetof sun_path + bytes + 1),
 * larger than sizeof(struct sockaddr_un) for a long path, which the
 * kernel would refuse (-EINVAL): hand such an address only to this
 * library. Use uds_addr_path() rather than u.un.sun_path.
 */
typedef struct uds_addr {
    int kind;      /* enum uds_addr_kind */
    socklen_t len; /* bytes of u that are meaningful (for bind/connect) */
    union {
        struct sockaddr sa;
        struct sockaddr_un un;
        struct sockaddr_in in;
        struct sockaddr_in6 in6;
        struct sockaddr_storage ss;
        struct {
            sa_family_t family;           /* AF_UNIX */
            char name[UDS_PATH_MAX + 1];  /* the path, NUL-terminated */
        } path;
    } u;
} uds_addr;

/*
 * Parses the NUL-terminated `text` into *out.
 * Host names in tcp:/udp: addresses are resolved with getaddrinfo (the first
 * result is used; numeric addresses never touch DNS).
 * The port is a number 0-65535 or a service name of /etc/services for the
 * protocol ("tcp:localhost:http"). Returns 0, or one code per cause:
 *   UDS_EADDR_EMPTY       empty text, path, abstract name or [] host
 *   UDS_EADDR_SCHEME      "x:..." with an unknown scheme
 *   UDS_EADDR_SYNTAX      tcp:/udp: text of no known form ("[::1]80")
 *   UDS_EADDR_NOPORT      tcp:/udp: without a port ("tcp:[::1]:")
 *   UDS_EADDR_PORT        a port that is neither a number nor a name
 *   UDS_EADDR_PORTRANGE   a numeric port over 65535
 *   UDS_EADDR_V6BRACKETS  a bare IPv6 address ("tcp:::1:80")
 *   UDS_EADDR_SERVICE     a service name /etc/services does not list
 *   UDS_EADDR_NOHOST      the resolver says the host name does not exist
 *   UDS_EADDR_RESOLVE     the resolver failed (temporary or server failure)
 *   -ENAMETOOLONG  path over UDS_PATH_MAX bytes / abstract name over 107 /
 *                  host over 255
 *   -EINVAL        text or out NULL, a NUL byte inside the text
 *   -ENOMEM, -errno  the resolver ran out of memory / a system error
 * (Before 0.2 every syntax error was -EINVAL and an unknown host
 * -EHOSTUNREACH.) UDS_EADDR_IS_SYNTAX(r) is true for the codes that mean
 * "the text is wrong" (not the resolver's failures).
 */
int uds_addr_parse(uds_addr *out, const char *text);

/* uds_addr_parse: what is wrong with an address text (uds_strerror gives
   each a text; see uds_addr_parse for which is which). */
#define UDS_EADDR_SYNTAX (-10020)
#define UDS_EADDR_SCHEME (-10021)
#define UDS_EADDR_EMPTY (-10022)
#define UDS_EADDR_NOPORT (-10023)
#define UDS_EADDR_PORT (-10024)
#define UDS_EADDR_PORTRANGE (-10025)
#define UDS_EADDR_V6BRACKETS (-10026)
#define UDS_EADDR_SERVICE (-10027)
#define UDS_EADDR_NOHOST (-10028)
#define UDS_EADDR_RESOLVE (-10029)
#define UDS_EADDR_IS_SYNTAX(r) ((r) <= UDS_EADDR_SYNTAX && (r) >= UDS_EADDR_SERVICE)

/*
 * Like uds_addr_parse() but for `len` bytes of `text` that need not be
 * NUL-terminated. A NUL byte inside the first `len` bytes is -EINVAL.
 */
int uds_addr_parsen(uds_addr *out, const char *text, size_t len);

/*
 * Formats `a` as text in the syntax above into buf (always NUL-terminated
 * when size > 0). Abstract names with non-printable bytes are written with
 * \xNN escapes; an unnamed peer is "(unnamed)".
 * Returns the length of the text, or -ENOSPC if it does not fit, -EINVAL.
 */
int uds_addr_format(const uds_addr *a, char *buf, size_t size);

/*
 * Fills *out from a sockaddr returned by the kernel (accept, recvfrom,
 * getsockname). `socktype` (SOCK_STREAM/SOCK_DGRAM) selects tcp vs udp for
 * Internet addresses. Returns 0 or -EAFNOSUPPORT / -EINVAL.
 */
int uds_addr_from_sockaddr(uds_addr *out, const struct sockaddr *sa,
                           socklen_t len, int socktype);

/* The address family of `a` (AF_UNIX, AF_INET, AF_INET6), or -EINVAL. */
int uds_addr_family(const uds_addr *a);

/* The filesystem path of a UDS_ADDR_PATH address (the whole path, however
   long), otherwise NULL. Points into a. */
const char *uds_addr_path(const uds_addr *a);

/* 1 if a and b name the same endpoint, else 0. */
int uds_addr_equal(const uds_addr *a, const uds_addr *b);

/* ------------------------------------------------------------------------ */
/* Sockets                                                                  */
/* ------------------------------------------------------------------------ */

/* Socket types, the kernel's values. */
#define UDS_STREAM SOCK_STREAM
#define UDS_DGRAM SOCK_DGRAM
#define UDS_SEQPACKET SOCK_SEQPACKET

/* Flags for uds_listen_opts.flags and uds_connect_opts.flags. */
#define UDS_NONBLOCK 0x01    /* the returned fd is O_NONBLOCK */
#define UDS_NO_AUTOBIND 0x02 /* datagram client: do not autobind a reply address */
#define UDS_NO_LOCK 0x04     /* safe bind without the lock file */
#define UDS_NO_UNLINK 0x08   /* uds_listener_close() leaves the file in place */
#define UDS_BIND_PINNED 0x10  /* uds_listen: always bind through
                                 /proc/self/fd/DIRFD/NAME, even where the
                                 path's directory chain is trusted (the
                                 kernel then records that string as the
                                 socket's name, see uds_listen) */

/* Parses "stream", "dgram"/"datagram", "seqpacket". Returns the type or -EINVAL. */
int uds_type_parse(const char *text);
/* "stream", "dgram", "seqpacket" or "?" */
const char *uds_type_name(int type);

/* Options for uds_listen(); zero-initialise and set what you need. */
typedef struct uds_listen_opts {
    int type;    /* UDS_STREAM (default for unix/tcp), UDS_DGRAM, UDS_SEQPACKET;
                    0 = from the address (udp: -> UDS_DGRAM) */
    int backlog; /* listen() backlog; 0 = SOMAXCONN */
    int flags;   /* UDS_NONBLOCK, UDS_NO_LOCK, UDS_NO_UNLINK, UDS_BIND_PINNED */
    unsigned mode;  /* permission bits of the socket file, e.g. 0660;
                       0 = 0777 & ~umask (the kernel's default) */
    int set_owner;  /* if nonzero, chown the file to owner:group before listen */
    uid_t owner;    /* (uid_t)-1 leaves the owner */
    gid_t group;    /* (gid_t)-1 leaves the group */
    int lock_timeout_ms; /* how long to wait for the lock file while another
                            process holds it: 0 = UDS_LOCK_TIMEOUT_DEFAULT_MS,
                            negative = no limit, else ms (then -ETIMEDOUT) */
} uds_listen_opts;

/* The lock file of a path is PATH + UDS_LOCK_SUFFIX, in the same directory. */
#define UDS_LOCK_SUFFIX ".udsock.lock"
/* The first line of every lock file udsock creates (its marker). */
#define UDS_LOCK_MARKER "udsock lock file\n"
#define UDS_LOCK_TIMEOUT_DEFAULT_MS 5000
/* uds_listen: a file with the lock file's name exists and is not udsock's
   (not a regular file, or without UDS_LOCK_MARKER); it was left alone. */
#define UDS_ELOCKFILE (-10011)
/* uds_listen: the socket bound by name is not the file NAME in the
   directory opened first (the path was moved or swapped meanwhile); its
   owner and mode were left alone and nothing listens. */
#define UDS_EPATHMOVED (-10012)
/* uds_listen, uds_listen_lock_holder: the path's directory part goes
   through a symlink owned by neither root nor the effective uid; it was
   not followed (its owner could point it anywhere). */
#define UDS_ESYMLINK (-10013)

/*
 * A bound (and for stream/seqpacket, listening) socket. Plain struct so it
 * can live on the stack; release it with uds_listener_close().
 */
typedef struct uds_listener {
    int fd;        /* the socket; owned by the listener */
    int type;      /* UDS_STREAM / UDS_DGRAM / UDS_SEQPACKET */
    uds_addr addr; /* the address bound (port filled in for tcp:...:0) */
    dev_t dev;     /* socket file identity, to remove it only if still ours */
    ino_t ino;
    int owns_path; /* 1 if close should unlink addr's path (if dev/ino match) */
    int dirfd;     /* while owns_path: the directory the file was bound in
                      (O_PATH, owned by the listener); otherwise -1 */
} uds_listener;

/*
 * Creates a socket bound to `addr` and, for stream and seqpacket, listening.
 * For a filesystem path that already exists ("safe bind"):
 *   - not a socket (file, directory, FIFO, symlink...): -EEXIST, nothing is
 *     touched;
 *   - a socket someone listens on (connect probe succeeds, or the backlog
 *     is full, or a socket of another type is bound there): -EADDRINUSE;
 *   - a stale socket (nobody listening): removed, then bound.
 * Pinned: the parent directory is opened once (O_PATH, one component at
 * a time, following a symlink only if it is owned by root or the
 * effective uid, else UDS_ESYMLINK) and every later step works relative to that
 * descriptor: the lock file (openat, O_NOFOLLOW), the check (fstatat), the
 * probe (a connect to /proc/self/fd/N of an O_PATH|O_NOFOLLOW descriptor
 * of the file), the bind (see below), the owner
 * (fchownat AT_EMPTY_PATH) and mode (chmod of /proc/self/fd/N) of the file
 * we bound, and the stale unlink (unlinkat after re-checking dev/ino). A
 * directory renamed or swapped for a symlink meanwhile cannot redirect any
 * of them.
 * The bind: the kernel records the name a socket was bound with, and getsockname(),
 * a peer's getpeername()/recvfrom(), ss(8) and /proc/net/unix show it, so
 * the bind takes the path itself (the real name) when (1) the path fits
 * sun_path and (2) its directory chain is trusted: nobody but root and
 * the effective uid can change where it leads (every directory entered,
 * as written, from the canonical cwd for a relative path, and along the
 * canonical path of the opened directory, is owned by root or the euid
 * and not writable by group or other unless sticky; every symlink
 * followed is owned by root or the euid), and it leads to the directory
 * opened. Otherwise (a directory on the way someone else may change, a
 * path longer than sun_path, or UDS_BIND_PINNED) the bind goes to
 * "/proc/self/fd/DIRFD/NAME", which creates NAME in the opened directory
 * whatever happens to the path, and the kernel records that string as
 * the name (meaningless in another process; l->addr keeps the path, and
 * `udsock ls` matches sockets by their file's inode). After a bind by
 * name, sock_diag must confirm that the socket is the file NAME in the
 * opened directory (without sock_diag: that file is a socket owned by the
 * euid); if not, UDS_EPATHMOVED, and the requested mode and owner are not
 * applied (a bind by name with opts->mode creates the file with no
 * permission bits and sets the mode after that check).
 * Without /proc mounted the bind and the probe use the path itself (only
 * when it fits sun_path; the directory is then not pinned for those two
 * steps).
 * The check-remove-bind sequence runs while holding flock() on the lock
 * file PATH UDS_LOCK_SUFFIX ("x.sock.udsock.lock"): created 0600 with
 * UDS_LOCK_MARKER as its first line (written to a temporary name, then
 * linked in place so it never exists without the marker), waited for at
 * most opts->lock_timeout_ms (5 s by default; then -ETIMEDOUT, see
 * uds_listen_lock_holder), and removed again by the holder, after checking
 * it is still the same file and carries the marker. An existing file of
 * that name that is not a regular file with the marker is never used or
 * removed: UDS_ELOCKFILE. The wait polls at 10 ms and ends with -EINTR
 * when a signal handler ran, or when SIGINT, SIGTERM, SIGHUP or SIGQUIT
 * is pending while blocked (a program that takes its signals from a
 * signalfd); the exception to "EINTR is retried".
 * The file mode (opts->mode) is applied through the umask during bind()
 * (serialised by a process-wide mutex), and the owner before listen().
 * `opts` may be NULL for defaults. A successful path listener keeps the
 * directory descriptor open (l->dirfd) until close, to remove the file
 * from the same directory.
 * Returns 0 and fills *l, or a negative errno (-EACCES, -ENOENT for a
 * missing directory, -EADDRINUSE, -EEXIST, -ENAMETOOLONG for a last
 * component too long to bind, -ETIMEDOUT for the lock, -EINTR, ...),
 * UDS_ELOCKFILE, UDS_EPATHMOVED or UDS_ESYMLINK. On failure *l is unusable and nothing
 * needs closing.
 * The probe is a real connect: a live stream server sees one client that
 * connects and closes at once.
 */
int uds_listen(uds_listener *l, const uds_addr *addr,
               const uds_listen_opts *opts);

/*
 * Wraps an inherited, already bound socket (systemd socket activation, a
 * --fd option). The listener never unlinks anything (dirfd -1). Returns 0
 * or -errno (-ENOTSOCK if fd is not a socket).
 */
int uds_listener_from_fd(uds_listener *l, int fd);

/*
 * Closes the socket and, if this listener created the socket file and its
 * name in the directory it was bound in (l->dirfd) still names the same
 * file (same st_dev and st_ino), removes it with unlinkat on that
 * directory. Closes l->dirfd. Safe to call on a zeroed struct or twice
 * (fd is set to -1).
 */
void uds_listener_close(uds_listener *l);

/*
 * Removes the socket file now, as uds_listener_close would, but leaves the
 * socket open (e.g. after handing it to a child, or from a signal handler:
 * it only calls fstatat, unlinkat and close, which are async-signal-safe).
 * Afterwards close removes nothing. Returns 1 if removed, 0 if there was
 * nothing of ours to remove, or -errno.
 */
int uds_listener_unlink(uds_listener *l);

/*
 * The pid of the process holding the lock file of path address `addr`
 * (see uds_listen), from /proc/locks (the entry whose device and inode are
 * the lock file's). Returns the pid (> 0), 0 if the file exists but no
 * holder is listed (or it is in another pid namespace), -ENOENT if there
 * is no lock file, -EINVAL for an address that is not a path, or -errno.
 * Reading /proc/PID/comm for a name is left to the caller.
 */
int uds_listen_lock_holder(const uds_addr *addr);

/*
 * Accepts one connection (accept4 with SOCK_CLOEXEC, plus SOCK_NONBLOCK if
 * flags has UDS_NONBLOCK). If peer is non-NULL it receives the client's
 * address. Returns the new fd, -EAGAIN on a non-blocking listener with no
 * pending client, or -errno (-EMFILE, -ENFILE, -ECONNABORTED...).
 */
int uds_accept(int listen_fd, uds_addr *peer, int flags);

/* Options for uds_connect(); zero-initialise and set what you need. */
typedef struct uds_connect_opts {
    int type;       /* as in uds_listen_opts */
    int flags;      /* UDS_NONBLOCK, UDS_NO_AUTOBIND */
    int timeout_ms; /* total time allowed; 0 or negative = no limit */
    int wait;       /* nonzero: while the server is not there yet (ENOENT,
                       ECONNREFUSED), retry until timeout_ms has passed */
} uds_connect_opts;

/*
 * Connects to `addr`; returns the connected fd or -errno.
 * Stream/seqpacket: a full backlog is retried until the timeout.
 * Unix datagram: the socket is first autobound to a unique abstract name
 * (unless UDS_NO_AUTOBIND), so the server can reply with sendto().
 * The fd is blocking unless opts->flags has UDS_NONBLOCK.
 * Errors: -ENOENT, -ECONNREFUSED (no server), -ETIMEDOUT, -EPROTOTYPE (the
 * server's socket is of another type), -EACCES, ...
 */
int uds_connect(const uds_addr *addr, const uds_connect_opts *opts);

/*
 * An unconnected datagram socket for `family` (AF_UNIX, AF_INET, AF_INET6).
 * For AF_UNIX it is autobound to a unique abstract name unless
 * UDS_NO_AUTOBIND is in flags, so replies can reach it.
 * Returns the fd or -errno.
 */
int uds_dgram_socket(int family, int flags);

/* A connected pair (socketpair, CLOEXEC). Returns 0 or -errno. */
int uds_pair(int type, int flags, int fds[2]);

/* Sets or clears O_NONBLOCK. Returns 0 or -errno. */
int uds_set_nonblock(int fd, int on);

/* Sets SO_SNDBUF and/or SO_RCVBUF (a value <= 0 leaves it). 0 or -errno. */
int uds_set_bufsizes(int fd, int sndbuf, int rcvbuf);

/* The local address of a socket (getsockname). 0 or -errno. */
int uds_local_addr(int fd, uds_addr *out);

/* The socket type of fd (SO_TYPE), or -errno (-ENOTSOCK). */
int uds_sock_type(int fd);

/* ------------------------------------------------------------------------ */
/* I/O                                                                      */
/* ------------------------------------------------------------------------ */

/*
 * Blocking: writes all `len` bytes, resuming after partial writes and
 * EINTR. Works on sockets (send with MSG_NOSIGNAL) and on other fds (write).
 * Returns len, or -errno (-EPIPE when the peer has gone; -EAGAIN only if fd
 * is non-blocking, and then some bytes may have been written: use
 * uds_write_nb to know how many).
 */
ssize_t uds_write_all(int fd, const void *buf, size_t len);

/* As uds_write_all for a vector; iov is not modified. Returns the total. */
ssize_t uds_writev_all(int fd, const struct iovec *iov, int iovcnt);

/*
 * Blocking: reads exactly `len` bytes, resuming after partial reads and
 * EINTR. Returns len, or fewer (0..len-1) if the peer closed first, or
 * -errno.
 */
ssize_t uds_read_exact(int fd, void *buf, size_t len);

/*
 * Non-blocking write: writes as much of buf[*done..len) as the socket takes
 * now and advances *done. Returns 0 when everything is written, -EAGAIN when
 * the socket is full (call again when it is writable), or -errno.
 */
int uds_write_nb(int fd, const void *buf, size_t len, size_t *done);

/*
 * One read (recv for sockets). Returns bytes read (> 0), 0 at end of
 * stream, -EAGAIN if nothing is there on a non-blocking fd, or -errno.
 */
ssize_t uds_read_some(int fd, void *buf, size_t len);

/* One send with MSG_NOSIGNAL (EINTR retried). Returns bytes sent or -errno. */
ssize_t uds_send(int fd, const void *buf, size_t len);

/*
 * One splice(2): moves up to len bytes from fd_in to fd_out (one of them
 * must be a pipe) inside the kernel, without copying them through user
 * space; both fds are used at their current file position. flags are
 * splice's own (SPLICE_F_MOVE, SPLICE_F_NONBLOCK, SPLICE_F_MORE). EINTR is
 * retried. Writing into a pipe or socket whose reader has gone yields
 * -EPIPE, never SIGPIPE (splice cannot take MSG_NOSIGNAL: the signal is
 * held off for the call unless it is ignored anyway). Neither fd is owned
 * or changed by the call.
 * Returns the bytes moved (> 0, possibly fewer than len), 0 at end of
 * input (or for len 0), -EAGAIN when nothing can move now (SPLICE_F_NONBLOCK
 * or a non-blocking fd), -EINVAL when this pair cannot be spliced (a
 * terminal, a file opened O_APPEND, no pipe among the two: copy with
 * read/write instead), or -errno.
 */
ssize_t uds_splice(int fd_in, int fd_out, size_t len, unsigned flags);

/* Maximum number of fds in one message (the kernel's SCM_MAX_FD). */
#define UDS_MAX_FDS 253

/* Credentials of a process, as the kernel reports them. */
typedef struct uds_cred {
    pid_t pid;
    uid_t uid;
    gid_t gid;
} uds_cred;

/*
 * One message with optional ancillary data, for uds_sendmsg/uds_recvmsg.
 * Send: buf/len is the data (at least 1 byte on stream sockets when fds or
 * credentials are attached); fds/nfds the descriptors to pass (copied by
 * the kernel, still owned by the caller); if send_cred is nonzero, this
 * process's pid/uid/gid are attached as SCM_CREDENTIALS.
 * Receive: buf/len is the space for data; fds points to room for fds_cap
 * descriptors, nfds is set to the number received (owned by the caller,
 * close-on-exec); if the socket has SO_PASSCRED on (uds_set_passcred) and
 * credentials arrived, has_cred is 1 and cred is filled.
 */
typedef struct uds_msg {
    void *buf;
    size_t len;
    int *fds;
    size_t nfds;
    size_t fds_cap;
    int send_cred;
    int has_cred;
    uds_cred cred;
    uds_addr *addr; /* datagram: destination (send) / source (recv); or NULL */
} uds_msg;

/*
 * Sends one message (sendmsg, MSG_NOSIGNAL, EINTR retried). Returns the
 * number of data bytes sent (may be < len on a stream socket: the fds went
 * with the first byte; send the rest with uds_write_all) or -errno:
 * -EINVAL for nfds > UDS_MAX_FDS or fds without data.
 */
ssize_t uds_sendmsg(int fd, const uds_msg *m);

/*
 * Receives one message (recvmsg with MSG_CMSG_CLOEXEC, EINTR retried).
 * Returns the number of data bytes (0 at end of stream), -EAGAIN, or -errno.
 * If the sender passed more fds than fit in fds_cap (MSG_CTRUNC), or a
 * datagram was longer than len (MSG_TRUNC), every fd that did arrive is
 * closed, nfds is 0, and the call returns -EMSGSIZE: nothing leaks (the
 * data bytes of that message are discarded too). An fds_cap above
 * UDS_MAX_FDS is treated as UDS_MAX_FDS.
 * `flags` may hold MSG_DONTWAIT / MSG_PEEK.
 */
ssize_t uds_recvmsg(int fd, uds_msg *m, int flags);

/* Convenience: sends `len` bytes of buf (len >= 1) with nfds fds attached. */
ssize_t uds_send_fds(int fd, const void *buf, size_t len, const int *fds,
                     size_t nfds);

/*
 * Convenience: receives data and up to *nfds fds (in: capacity, out:
 * received). Errors as uds_recvmsg.
 */
ssize_t uds_recv_fds(int fd, void *buf, size_t len, int *fds, size_t *nfds);

/*
 * The peer process's pid, effective uid and effective gid as of its
 * connect() or socketpair() (SO_PEERCRED; recorded by the kernel, cannot be
 * forged). Returns 0, -EINVAL (out NULL), -ENOTSOCK or -errno.
 */
int uds_peer_cred(int fd, uds_cred *out);

/*
 * The peer process as a pidfd: a companion to uds_cred (whose pid is only
 * a number, and a number can be recycled once the process has exited).
 * Which path gave the pidfd (*how) says what it guarantees:
 *   UDS_PIDFD_PEER    SO_PEERPIDFD (Linux >= 6.5): the kernel's own
 *                     reference to the process that called connect() (or
 *                     socketpair()). It can never name another process,
 *                     even after that one exited and its pid was reused.
 *   UDS_PIDFD_OPENED  fallback (older kernels): pidfd_open() of the
 *                     SO_PEERCRED pid, done right after reading it. From
 *                     then on it tracks one process, but which one is
 *                     racy: if the client had already exited and its pid
 *                     had been reused in between, it names the newcomer.
 *   UDS_PIDFD_GONE    the process that connected has exited (no pidfd).
 *   UDS_PIDFD_NONE    no pidfd (not asked for, not a unix peer, or a
 *                     kernel without pidfds at all).
 * SO_PEERPIDFD is detected at run time: the first ENOPROTOOPT switches to
 * the fallback for good.
 */
enum uds_pidfd_how {
    UDS_PIDFD_NONE = 0,
    UDS_PIDFD_PEER = 1,
    UDS_PIDFD_OPENED = 2,
    UDS_PIDFD_GONE = 3
};

/*
 * A pidfd for the peer of connected unix socket fd. Returns the new fd
 * (>= 0, close-on-exec, OWNED BY THE CALLER, who must close it), or
 * -errno: -ESRCH the connecting process has exited (*how UDS_PIDFD_GONE),
 * -EOPNOTSUPP this kernel has no pidfds (UDS_PIDFD_NONE), -ENODATA no peer
 * (or a peer pid this pid namespace cannot see), -ENOTSOCK, -EMFILE...
 * cred (may be NULL) receives SO_PEERCRED as uds_peer_cred gives it (read
 * first: the fallback opens that pid). how may be NULL. Nothing is
 * allocated on failure.
 */
int uds_peer_pidfd(int fd, uds_cred *cred, int *how);

/*
 * Whether the process of pidfd is still running: 1 yes, 0 it has exited
 * (a zombie not yet reaped counts as exited), -errno (-EBADF). Does not
 * close or consume pidfd.
 */
int uds_pidfd_alive(int pidfd);

/* Turns SO_PASSCRED on or off (needed to receive SCM_CREDENTIALS). On a
   listening socket it is inherited by the sockets accepted from it. */
int uds_set_passcred(int fd, int on);

/*
 * Turns SO_PASSRIGHTS on or off (Linux 6.16): off, the kernel refuses fds
 * sent to this socket (the sender's sendmsg fails with EPERM). On a
 * listening socket it is inherited by the sockets accepted from it, also
 * for what clients send before the accept. Returns 0, -ENOPROTOOPT when
 * the kernel does not have it (detected once; then only the receiver can
 * discard fds, as uds_conn does for connections without UDS_CONN_FDS),
 * -EOPNOTSUPP for a non-unix socket, or -errno.
 */
int uds_set_passrights(int fd, int on);

/*
 * Datagram send to `to` (or the connected peer if to is NULL), MSG_NOSIGNAL.
 * Returns bytes sent or -errno.
 */
ssize_t uds_sendto(int fd, const void *buf, size_t len, const uds_addr *to);

/*
 * Receives one datagram into buf. If from is non-NULL it gets the sender's
 * address (UDS_ADDR_UNNAMED for a sender that never bound one). Returns the
 * datagram's full length: if that is larger than len, the datagram was
 * truncated to len bytes. -EAGAIN on a non-blocking empty socket, -errno.
 * `flags` may hold MSG_DONTWAIT. For datagram and seqpacket sockets only:
 * on TCP the kernel discards data read with MSG_TRUNC (use uds_read_some).
 */
ssize_t uds_recvfrom(int fd, void *buf, size_t len, uds_addr *from, int flags);

/* ------------------------------------------------------------------------ */
/* Library-specific return codes (beyond errno)                             */
/* ------------------------------------------------------------------------ */

#define UDS_EFRAME (-10001)   /* a peer sent a malformed frame header */
#define UDS_ECLOSED (-10002)  /* the connection was closed */

/* UDS_LOOP_API_BEGIN (event loop, connections, framing, server: issue 3) */

/* ------------------------------------------------------------------------ */
/* Event loop                                                               */
/* ------------------------------------------------------------------------ */

/*
 * A small level-triggered epoll loop (a watcher may ask for edge-triggered
 * reports with UDS_EV_EDGE). One loop per thread; nothing in it is
 * thread-safe except uds_loop_post(). Callbacks run on the thread that calls
 * uds_loop_run().
 * A call that takes a callback and fails never calls that callback.
 */
typedef struct uds_loop uds_loop;

/* Event bits for fd watchers. */
#define UDS_EV_READ 0x01
#define UDS_EV_WRITE 0x02
#define UDS_EV_HUP 0x04   /* reported only: peer hung up */
#define UDS_EV_ERROR 0x08 /* reported only: error condition on the fd */
#define UDS_EV_EDGE 0x10  /* asked only: edge-triggered (EPOLLET), see
                             uds_loop_watch */

typedef void (*uds_io_cb)(uds_loop *loop, int fd, unsigned events, void *arg);
typedef void (*uds_timer_cb)(uds_loop *loop, uint64_t id, void *arg);
typedef void (*uds_signal_cb)(uds_loop *loop, int signo, void *arg);
typedef void (*uds_defer_cb)(uds_loop *loop, void *arg);

/* Creates a loop: two fds, an epoll fd and the eventfd of uds_loop_post,
   both CLOEXEC. Returns 0 and *out, or -errno. */
int uds_loop_new(uds_loop **out);

/*
 * Frees the loop. Deferred calls still pending (uds_loop_defer) and posted
 * calls still queued (uds_loop_post) are run first, on the calling thread,
 * so objects waiting to be freed are not leaked. Watched fds are not
 * closed (they belong to the caller); signals taken with uds_loop_signal are
 * unblocked again. NULL is a no-op.
 */
void uds_loop_free(uds_loop *loop);

/*
 * Watches fd for `events` (UDS_EV_READ|UDS_EV_WRITE), calling cb with the
 * events that are ready. Calling it again for the same fd changes the
 * events, callback and arg. events == 0 (or UDS_EV_EDGE alone) keeps the
 * fd registered but quiet.
 * With UDS_EV_EDGE added the watch is edge-triggered (EPOLLET): cb runs
 * once per NEW readiness (each arrival of data, a hang-up, the socket
 * becoming writable again), not again while the state lasts. Data left
 * unread is not reported a second time; more data arriving is, whether or
 * not the earlier data was read (also by another process sharing the
 * socket). Arrivals between two rounds may be reported as one. The caller
 * must not expect repeats. Registering the watch, or changing its events,
 * reports a readiness that holds at that moment (once).
 * Returns 0 or -errno.
 */
int uds_loop_watch(uds_loop *loop, int fd, unsigned events, uds_io_cb cb, void *arg);

/* Stops watching fd (call before closing it). Returns 0 or -ENOENT. */
int uds_loop_unwatch(uds_loop *loop, int fd);

/*
 * Calls cb once after `ms` milliseconds (monotonic clock). Timers due at the
 * same time fire in the order they were added. Returns the timer's id (> 0)
 * or -errno.
 */
int64_t uds_loop_timer(uds_loop *loop, uint64_t ms, uds_timer_cb cb, void *arg);

/* Cancels a pending timer. Returns 0 or -ENOENT (already fired or unknown). */
int uds_loop_timer_cancel(uds_loop *loop, uint64_t id);

/*
 * Delivers `signo` as a loop event (signalfd): the signal is blocked for
 * the calling thread and cb runs from the loop each time it arrives.
 * Returns 0 or -errno.
 */
int uds_loop_signal(uds_loop *loop, int signo, uds_signal_cb cb, void *arg);

/*
 * Runs cb(loop, arg) after the current round of callbacks, before the loop
 * waits again. This is how objects are freed from inside their own
 * callbacks: mark closed now, free in the deferred call.
 * Returns 0 or -ENOMEM.
 */
int uds_loop_defer(uds_loop *loop, uds_defer_cb cb, void *arg);

/*
 * Runs until uds_loop_stop() is called or nothing is left to wait for (no
 * watched fds, timers, signals or deferred calls; posted calls do not
 * count). Returns 0, or -errno if epoll failed.
 */
int uds_loop_run(uds_loop *loop);

/* Runs one round: waits at most timeout_ms (-1 = forever), dispatches. */
int uds_loop_run_once(uds_loop *loop, int timeout_ms);

/* Makes uds_loop_run() return after the current round. */
void uds_loop_stop(uds_loop *loop);

/* The loop's cached monotonic time in milliseconds (updated each round). */
uint64_t uds_loop_now(const uds_loop *loop);

/*
 * The one thread-safe call of the loop: runs cb(loop, arg) on the loop's
 * thread, soon (the loop is woken through an eventfd it owns). Calls posted
 * from one thread run in the order they were posted; each runs exactly
 * once, also if uds_loop_free() comes first (it runs what is still queued,
 * on the thread that frees). This is how a worker thread hands a result
 * back: compute there, post, answer from the callback (uds_req_reply,
 * uds_conn_write are loop-thread calls). A posted call does not keep
 * uds_loop_run() alive by itself. Posting to a loop being freed, or after,
 * is undefined: stop the posting threads first.
 * Returns 0, -EINVAL (cb NULL), -ENOMEM.
 */
int uds_loop_post(uds_loop *loop, uds_defer_cb cb, void *arg);

/* Log levels, the syslog values. */
#define UDS_LOG_ERR 3
#define UDS_LOG_WARNING 4
#define UDS_LOG_INFO 6
#define UDS_LOG_DEBUG 7

/* The library never prints: long-running objects (server, acceptor) report
   through this, if set. text is one line without a newline; names and data
   from peers in it have their control bytes escaped. */
typedef void (*uds_log_cb)(void *arg, int level, const char *text);

/* UDS_CONN_API: buffered connections, framing, server, client (issue 3) */

/* ------------------------------------------------------------------------ */
/* Framing: a pure codec (no I/O, no allocation), so it can be fuzzed       */
/* ------------------------------------------------------------------------ */

/*
 * Frame formats:
 *   UDS_FRAME_LEN32   stream sockets: a 4-byte header holding the payload
 *                     length as an unsigned big-endian integer, then the
 *                     payload. The top bit of the header is reserved and must
 *                     be 0 (UDS_EFRAME otherwise); a length above the
 *                     configured maximum is -EMSGSIZE. Both are checked from
 *                     the header alone, before anything is allocated.
 *   UDS_FRAME_LINE    stream sockets: the payload then '\n'. A "\r\n" ending
 *                     is accepted and the '\r' is not part of the message.
 *                     A line longer than the maximum is -EMSGSIZE.
 *   UDS_FRAME_PACKET  SEQPACKET and DGRAM: one kernel message is one frame.
 */
#define UDS_FRAME_LEN32 1
#define UDS_FRAME_LINE 2
#define UDS_FRAME_PACKET 3

#define UDS_FRAME_HDR_LEN 4                  /* bytes of a LEN32 header */
#define UDS_FRAME_DEFAULT_MAX (1024u * 1024u) /* when max is 0 */
#define UDS_FRAME_LIMIT 0x7fffffffu          /* largest max accepted */

/* Codec settings: zero-initialise, set mode; max 0 = UDS_FRAME_DEFAULT_MAX. */
typedef struct uds_framer {
    int mode;   /* UDS_FRAME_LEN32 (also used when 0), _LINE or _PACKET */
    size_t max; /* largest payload accepted, in bytes */
} uds_framer;

/* One decoded frame. data points into the caller's buffer (borrowed). */
typedef struct uds_frame {
    const void *data; /* payload */
    size_t len;       /* payload length */
    size_t need;      /* after a 0 return: total bytes of input the frame
                         needs (known for LEN32 once the header is in),
                         or 0 if unknown */
} uds_frame;

/*
 * Decodes the first frame of buf[0..len).
 * Returns the number of input bytes the frame used (> 0) and fills *out;
 * 0 if the frame is not complete yet (out->need says how much is needed);
 * -EMSGSIZE if the frame is or will be larger than the maximum; UDS_EFRAME
 * for a malformed header; -EINVAL for bad arguments. Never allocates.
 * In PACKET mode buf is taken as one whole message: returns len, or
 * -EMSGSIZE; an empty message (len 0) returns 0 with out->len 0 and
 * out->need 0 (a packet is never incomplete, so in this mode 0 means the
 * empty message, which uses no input).
 * Call it in a loop to take every frame out of one read.
 */
int uds_frame_decode(const uds_framer *f, const void *buf, size_t len,
                     uds_frame *out);

/*
 * Writes the header for a payload of `len` bytes into hdr (LEN32 only).
 * Returns the header length (4 for LEN32, 0 for LINE and PACKET), or
 * -EMSGSIZE if len exceeds the maximum.
 */
int uds_frame_header(const uds_framer *f, size_t len,
                     uint8_t hdr[UDS_FRAME_HDR_LEN]);

/*
 * Encodes one message into out[0..cap): header + payload (LEN32), payload
 * + '\n' (LINE) or the payload (PACKET). Returns the encoded length, or
 * -ENOSPC (cap too small), -EMSGSIZE (over the maximum), -EINVAL (LINE
 * payload containing '\n').
 */
ssize_t uds_frame_encode(const uds_framer *f, const void *msg, size_t len,
                         void *out, size_t cap);

/* ------------------------------------------------------------------------ */
/* Buffered connections                                                     */
/* ------------------------------------------------------------------------ */

/*
 * A non-blocking socket on a loop, with an input buffer and an output
 * queue. Buffers are allocated only while they hold data: an idle
 * connection is the struct alone (see docs/design.md for the figure).
 * Reads: at most `reads_per_wakeup` reads per loop round, so one busy peer
 * cannot starve the others. Writes are queued and flushed at the end of the
 * loop round with one writev (sendmmsg for packet sockets) for everything
 * queued, so many replies cost one syscall.
 */
typedef struct uds_conn uds_conn;

/*
 * Ancillary data of one read (SCM_RIGHTS, SCM_CREDENTIALS).
 * fds are close-on-exec. cred is the sender's pid/uid/gid as the kernel
 * vouches for it (has_cred 0 when none came: UDS_CONN_CREDS not set).
 * Stream: `at` is where this read's bytes start in the data of the on_data
 * call that follows (0, or the bytes kept unconsumed from before). The
 * bytes the fds were sent with are among this read's: the kernel ends a
 * read with the write that carried fds (never two writes' fds in one
 * read), but bytes written before it without fds may start the same read.
 * Protocols that need the exact byte should send fds with a message
 * header, or use a packet socket. Packet sockets: at is 0, the fds came
 * with that message.
 */
typedef struct uds_anc {
    int *fds;      /* nfds descriptors, valid during the callback */
    size_t nfds;
    int has_cred;
    uds_cred cred;
    size_t at;     /* stream: offset in the next on_data's data */
} uds_anc;

/* Callbacks; the struct must stay valid while the connection lives
   (typically a static const). Every callback may call uds_conn_close. */
typedef struct uds_conn_cbs {
    /*
     * Data arrived. Stream: `data` is everything buffered so far; return
     * how many bytes you consumed, the rest is kept and offered again with
     * more data (or after uds_conn_read_start). Packet sockets: one call
     * per message, the return value is ignored; an empty message is a call
     * with len 0 (SEQPACKET too: it is not end of stream, see on_eof).
     * Required.
     */
    size_t (*on_data)(uds_conn *c, const void *data, size_t len, void *arg);
    /* The peer shut down its sending side (EOF). Writing still works.
       NULL: the connection is closed at EOF. SEQPACKET: end of stream is
       a read that dequeues no message, told from an empty message by the
       control message the kernel attaches to every message once
       SO_TIMESTAMP is on, which uds_conn_new sets on a SEQPACKET socket
       (leave it on). Where the socket refuses it, a 0-byte read while the
       peer has not shut down is an empty message, and after its shutdown
       end of stream (an empty message sent just before a shutdown is then
       taken for the end). */
    void (*on_eof)(uds_conn *c, void *arg);
    /* The output queue went from above high_water to below half of it. */
    void (*on_drain)(uds_conn *c, void *arg);
    /*
     * Called exactly once when the connection is gone, from the loop after
     * the current callbacks; the conn is freed when it returns. err is 0 for
     * uds_conn_close/uds_conn_end, -ENOBUFS when the output cap was hit,
     * -EMSGSIZE when unconsumed input exceeded max_input, or the socket
     * error (-ECONNRESET, -EPIPE...; -EPERM when the peer refuses the
     * fds of a uds_conn_write_anc, see there). With UDS_CONN_FDS, -EMSGSIZE
     * also when a read's fds were cut short (MSG_CTRUNC). May be NULL.
     */
    void (*on_close)(uds_conn *c, int err, void *arg);
    /*
     * File descriptors and/or credentials arrived (only with UDS_CONN_FDS
     * or UDS_CONN_CREDS in uds_conn_opts.flags; may be NULL otherwise).
     * Called just before the on_data call that first offers the bytes they
     * came with: those bytes start at offset anc->at of that call's data
     * (packet sockets: they came with that message). From this call on the
     * fds belong to the callback: keep them, pass them on with
     * uds_conn_write_anc, or close them. NULL with UDS_CONN_FDS set: every
     * fd is closed at once. With UDS_CONN_CREDS it is called for every read
     * (each carries credentials). The bytes are offered even if this
     * callback stops reading (uds_conn_read_stop takes effect after that
     * on_data); not if it closes the connection.
     */
    void (*on_anc)(uds_conn *c, const uds_anc *anc, void *arg);
} uds_conn_cbs;

/* Flags for uds_conn_opts.flags. */
#define UDS_CONN_FDS 0x01   /* accept fds from the peer (on_anc). Without it
                               no fd ever enters this process: where the
                               kernel has SO_PASSRIGHTS (Linux 6.16) it is
                               told to refuse them (the sender's sendmsg
                               fails with EPERM); elsewhere the kernel
                               discards them as we read (no room is given
                               for them). MSG_CTRUNC (fds cut short, e.g.
                               this process at RLIMIT_NOFILE) closes every
                               fd of that read, drops its bytes and closes
                               the connection with -EMSGSIZE: later fds
                               could no longer be matched to their data. */
#define UDS_CONN_CREDS 0x02 /* SO_PASSCRED: each read's sender credentials
                               go to on_anc (has_cred). Bytes queued before
                               uds_conn_new set it report pid 0 (uid, gid
                               right): set it on the listener (accepted
                               sockets inherit it) if that matters. */

/* Options; zero-initialise, 0 means the default. */
typedef struct uds_conn_opts {
    size_t high_water; /* queued output bytes at which writes return 1 (pause
                          the producer); default 256 KiB */
    size_t out_cap;    /* queued output above this drops the connection
                          (-ENOBUFS); default 16 MiB */
    size_t max_input;  /* unconsumed input kept at most (packet sockets:
                          the largest message); default 1 MiB + 4 */
    unsigned reads_per_wakeup; /* default 16 */
    int flags;         /* UDS_CONN_FDS, UDS_CONN_CREDS (unix sockets) */
} uds_conn_opts;

/*
 * Wraps connected socket `fd` (made non-blocking here) into a connection on
 * `loop` and starts reading. On success the connection owns fd; on failure
 * (-ENOMEM, -EINVAL (also unknown flags), -EAFNOSUPPORT (UDS_CONN_FDS or
 * UDS_CONN_CREDS on a socket that is not AF_UNIX), an epoll error) fd is
 * still the caller's and no callback is ever called. Sets SO_PASSCRED for
 * UDS_CONN_CREDS, and SO_PASSRIGHTS (where the kernel has it) on for
 * UDS_CONN_FDS, off otherwise.
 */
int uds_conn_new(uds_conn **out, uds_loop *loop, int fd,
                 const uds_conn_opts *opts, const uds_conn_cbs *cbs, void *arg);

/*
 * Queues a copy of data (one message on packet sockets). Returns 0, or 1
 * when the queue is now above high_water (the producer should pause until
 * on_drain), or UDS_ECLOSED if the connection is closing, or -ENOBUFS if
 * this would exceed out_cap (the connection is then closed).
 */
int uds_conn_write(uds_conn *c, const void *data, size_t len);

/* As uds_conn_write for a gather list (one message on packet sockets). */
int uds_conn_writev(uds_conn *c, const struct iovec *iov, int iovcnt);

/*
 * Queues `data` without copying: the connection owns it from now on and
 * calls free_fn(data, free_arg) once it is sent or the connection is gone.
 * On failure (< 0) ownership stays with the caller and free_fn is never
 * called. Returns as uds_conn_write.
 */
int uds_conn_write_owned(uds_conn *c, void *data, size_t len,
                         void (*free_fn)(void *data, void *free_arg),
                         void *free_arg);

/*
 * Queues a copy of the gather list with nfds descriptors (at most
 * UDS_MAX_FDS) and/or credentials attached (unix sockets only). They leave
 * with the first byte of this data (stream) or with this message (packet
 * sockets), never merged with another write's fds. Ownership of the fds
 * passes to the connection on success (>= 0): it closes them once the
 * kernel has taken them, or when the connection goes (an fd listed twice
 * is sent twice, closed once). On failure (< 0) they are still the
 * caller's. cred (may be NULL) is sent as
 * SCM_CREDENTIALS; a pid/uid/gid other than this process's own needs
 * privilege (CAP_SYS_ADMIN, CAP_SETUID, CAP_SETGID): if the kernel refuses
 * it (EPERM, ESRCH for a pid that has exited), the data and fds are sent
 * without it and the kernel supplies ours (once per write, never in a
 * loop). On a stream the credentials cover every byte of this write and
 * no other. Stream data must be at least 1 byte when fds or cred are
 * attached; packets (seqpacket, datagram) may be empty. nfds 0 and cred
 * NULL is uds_conn_writev. A peer
 * that refuses fds (SO_PASSRIGHTS off) makes the send fail: the connection
 * closes with -EPERM (its fds closed). Does not need UDS_CONN_FDS (that
 * flag is about receiving). Returns as uds_conn_write, or -EINVAL (too
 * many fds, fds NULL, empty stream data with fds or cred), -EBADF (a negative fd),
 * -EAFNOSUPPORT (not a unix socket).
 */
int uds_conn_write_anc(uds_conn *c, const struct iovec *iov, int iovcnt,
                       int *fds, size_t nfds, const uds_cred *cred);

/* Tries to send the queue now instead of at the end of the round. Returns
   0, or the connection error (the connection is then closed). */
int uds_conn_flush(uds_conn *c);

/* Bytes queued for output and not yet accepted by the kernel. */
size_t uds_conn_queued(const uds_conn *c);

/* Bytes received and not yet consumed by on_data. */
size_t uds_conn_buffered(const uds_conn *c);

/* Stops reading from the peer (its data waits in the kernel: TCP-like
   backpressure) / resumes; buffered input is offered again on resume. */
void uds_conn_read_stop(uds_conn *c);
void uds_conn_read_start(uds_conn *c);

/* Half-close: shutdown(SHUT_WR) once the queue has been sent. Reading goes
   on. Returns 0 or UDS_ECLOSED. */
int uds_conn_shutdown(uds_conn *c);

/* Graceful close: stops reading, sends the queue, then closes (err 0). */
void uds_conn_end(uds_conn *c);

/* Closes now; queued output is discarded. on_close follows from the loop.
   Safe to call twice and from any callback. */
void uds_conn_close(uds_conn *c);

/* 1 once uds_conn_close/uds_conn_end was called or the connection failed. */
int uds_conn_closing(const uds_conn *c);

/* The socket (still owned by the connection), its loop, the user arg. */
int uds_conn_fd(const uds_conn *c);
uds_loop *uds_conn_loop(const uds_conn *c);
void *uds_conn_arg(const uds_conn *c);
void uds_conn_set_arg(uds_conn *c, void *arg);

/* ------------------------------------------------------------------------ */
/* Access rules                                                             */
/* ------------------------------------------------------------------------ */

/*
 * Who may use a unix socket, judged from the credentials the kernel
 * recorded at connect(): the effective uid and gid (SO_PEERCRED) and the
 * supplementary groups (SO_PEERGROUPS, however many there are).
 * Decision, first match wins:
 *   1. uid in a deny-uid rule, or the gid or a supplementary group in a
 *      deny-gid rule                                  -> refused, "denied"
 *   2. no allow rule at all                           -> allowed
 *   3. uid in allow-uid, or the gid or a supplementary group in allow-gid
 *                                                     -> allowed
 *   4. otherwise                                      -> refused, "not allowed"
 * Rules fail closed: when the credentials or the group list cannot be read
 * (or the peer is not a unix socket and any rule is set) the client is
 * refused and the error says why.
 */
typedef struct uds_access uds_access;

/* Rule kinds for uds_access_add(). */
enum uds_access_rule {
    UDS_ALLOW_UID = 0,
    UDS_DENY_UID = 1,
    UDS_ALLOW_GID = 2,
    UDS_DENY_GID = 3
};

/* An empty rule set (everyone allowed). Returns 0 and *out, or -ENOMEM. */
int uds_access_new(uds_access **out);

/* Adds one id to a rule. Returns 0, -EINVAL (bad rule, id (unsigned)-1),
   -ENOMEM. */
int uds_access_add(uds_access *a, int rule, unsigned id);

/* 1 if any rule is set, else 0 (NULL: 0). */
int uds_access_active(const uds_access *a);

/*
 * Judges the peer of connected socket fd. cred (may be NULL) receives the
 * peer's credentials when they could be read (a non-unix peer: pid 0,
 * uid/gid (uid_t)-1). Returns 1 allowed, 0 refused (*why, if why is
 * non-NULL, set to a static text: "denied", "not allowed"), or a negative
 * errno when a rule could not be evaluated (-ENOTSOCK, -EAFNOSUPPORT for a
 * non-unix peer while rules are set, the error of SO_PEERCRED or
 * SO_PEERGROUPS, e.g. -ENODATA for a socket with no peer, -ENOMEM): the
 * caller must refuse; *why then says which step failed ("cannot read the
 * peer's groups", ...). The supplementary groups are read only when a gid
 * rule needs them, all of them (no fixed limit). a NULL or without rules
 * allows everyone (credentials still filled in).
 */
int uds_access_check(const uds_access *a, int fd, uds_cred *cred,
                     const char **why);

/*
 * Judges a sender known only by credentials that came with a message
 * (SCM_CREDENTIALS of a datagram; no connection to ask for more), with the
 * same order. No supplementary groups are known: allow-gid matches the
 * primary gid only, and a deny-gid rule that the primary gid does not
 * match refuses anyway (fail closed: -ENODATA, "cannot read the peer's
 * groups"). Returns 1, 0 (*why as above) or -EINVAL (cred NULL or uid
 * (uid_t)-1 while rules are set). a NULL or without rules: 1.
 */
int uds_access_check_cred(const uds_access *a, const uds_cred *cred,
                          const char **why);

/* Frees the rules. NULL is a no-op. */
void uds_access_free(uds_access *a);

/* ------------------------------------------------------------------------ */
/* Acceptor                                                                 */
/* ------------------------------------------------------------------------ */

/*
 * Accepts connections on one or more listening sockets from a loop and
 * hands each admitted one to a callback; the one accepting engine of the
 * library (uds_server and the udsock commands use it).
 *   - Bounded work: at most `batch` accepts per listener per loop round,
 *     so timers, signals and busy connections run between batches.
 *   - Out of fds (EMFILE/ENFILE/ENOBUFS/ENOMEM): a reserve fd (/dev/null)
 *     is spent to accept and close one pending client, so it sees a closed
 *     connection instead of hanging, and the listeners are left alone for
 *     emfile_pause_ms; accepting resumes by timer whatever else is busy.
 *   - Limits: max_conns in total and max_conns_per_uid per unix peer uid
 *     count connections handed out and not yet released
 *     (uds_acceptor_release). A client over a limit, refused by the access
 *     rules or by the admit hook is accepted and closed at once (it is not
 *     left in the backlog) and logged; refusal lines are rate-limited
 *     (10 per second, then one summary line per second with the count).
 * Not thread-safe (a loop object).
 */
typedef struct uds_acceptor uds_acceptor;

/* What the acceptor knows about a client when it hands it on. */
typedef struct uds_peer {
    int is_unix;        /* AF_UNIX: cred is the kernel's SO_PEERCRED */
    uds_cred cred;      /* unix peer; otherwise pid 0, uid/gid (uid_t)-1 */
    uds_addr addr;      /* the peer's address: tcp:HOST:PORT, a unix peer's
                           bound name, or UDS_ADDR_UNNAMED */
    unsigned uid_conns; /* unix: connections of this uid now held, this one
                           included (1 for the first) */
    uint64_t seq;       /* 1, 2, 3... for every connection accepted,
                           refused ones included */
    int listen_fd;      /* the listener it came from */
    int pidfd;          /* UDS_ACCEPT_PIDFD, unix peer: the client process
                           as a pidfd (uds_peer_pidfd; close-on-exec),
                           OWNED BY THE ACCEPTOR: valid during the admit
                           hook and the accept callback, closed when the
                           callback returns (dup it to keep it); else -1 */
    int pidfd_how;      /* enum uds_pidfd_how: what pidfd guarantees;
                           UDS_PIDFD_GONE: the client had already exited */
} uds_peer;

/*
 * An admitted connection: fd (CLOEXEC; O_NONBLOCK unless the acceptor has
 * UDS_ACCEPT_BLOCKING) belongs to the callback. It holds one slot of the
 * limits until uds_acceptor_release(a, peer->cred.uid) is called, also
 * when the callback closes fd at once. peer is valid during the call. The
 * callback may call uds_acceptor_pause/resume/close/release/add; it must
 * not free the acceptor (close it, and free it later, e.g. from
 * uds_loop_defer).
 */
typedef void (*uds_accept_cb)(uds_acceptor *a, int fd, const uds_peer *peer,
                              void *arg);

/*
 * Optional extra admission check, after the access rules and limits:
 * return 0 to admit, or a negative value to refuse; *why (static text) is
 * logged. The fd must not be closed or kept; the acceptor must not be
 * freed from here.
 */
typedef int (*uds_admit_cb)(uds_acceptor *a, int fd, const uds_peer *peer,
                            const char **why, void *arg);

#define UDS_ACCEPT_BLOCKING 0x01 /* hand out blocking fds (for exec) */
/* Also get each unix client's pidfd (uds_peer.pidfd), right after its
   SO_PEERCRED: one more fd per connection while it is judged and handed
   out. The access rules still judge the SO_PEERCRED uid/gid. A client
   whose pidfd cannot be had for another reason than "it has exited" or
   "this kernel has no pidfds" (e.g. -EMFILE) is refused (fail closed). */
#define UDS_ACCEPT_PIDFD 0x02

/* Options; zero-initialise, 0 means the default / no limit. */
typedef struct uds_acceptor_opts {
    unsigned max_conns;         /* total connections held; 0 = no limit */
    unsigned max_conns_per_uid; /* per unix peer uid; 0 = no limit */
    unsigned batch;             /* accepts per listener per round; default 64 */
    unsigned emfile_pause_ms;   /* default 100 */
    int flags;                  /* UDS_ACCEPT_BLOCKING, UDS_ACCEPT_PIDFD */
    const uds_access *access;   /* borrowed (must outlive the acceptor);
                                   NULL: everyone */
    uds_admit_cb admit;
    void *admit_arg;
    uds_log_cb log;
    void *log_arg;
    const char *name;           /* prefix of log lines, e.g. "relay"; may be NULL */
    const char *limit_names[2]; /* how log lines name max_conns and
                                   max_conns_per_uid (e.g. "-c", "-C" for a
                                   command line); NULL: those words */
} uds_acceptor_opts;

/*
 * Creates an acceptor on loop that calls cb for each admitted client.
 * opts may be NULL; opts->name is copied. Opens the reserve fd. Returns 0
 * and *out, or -EINVAL (loop or cb NULL, unknown flags), -ENOMEM, -EMFILE.
 * Nothing is called back on failure.
 */
int uds_acceptor_new(uds_acceptor **out, uds_loop *loop,
                     const uds_acceptor_opts *opts, uds_accept_cb cb, void *arg);

/*
 * Accepts on listener *l (stream or seqpacket, listening), which is moved
 * into the acceptor: on success the acceptor owns it (l->fd is set to -1)
 * and closes it at uds_acceptor_close/free, removing the socket file if it
 * is still ours (uds_listener_close). On failure *l is unchanged and still
 * the caller's. Returns 0, -EINVAL (not listening, datagram), -errno.
 */
int uds_acceptor_add(uds_acceptor *a, uds_listener *l);

/* A connection handed out by cb has ended: its slot is free again. uid is
   peer->cred.uid as given to cb. */
void uds_acceptor_release(uds_acceptor *a, uid_t uid);

/* Stops / resumes accepting (pending clients wait in the backlog). */
void uds_acceptor_pause(uds_acceptor *a);
void uds_acceptor_resume(uds_acceptor *a);

/* Closes the listeners (files removed if ours); the acceptor stays valid
   for uds_acceptor_release and the counters (and uds_acceptor_add). Safe
   from the callbacks and twice. */
void uds_acceptor_close(uds_acceptor *a);

/* Frees: listeners closed as above; a refusal summary still held back is
   logged now. Not from the acceptor's own callbacks. NULL is a no-op. */
void uds_acceptor_free(uds_acceptor *a);

typedef struct uds_acceptor_stats {
    uint64_t accepted;  /* handed to cb */
    uint64_t refused;   /* closed at once: rules, limits, admit hook, and
                           the clients closed through the reserve fd */
    uint64_t emfile;    /* times accepting paused for lack of fds */
    unsigned conns;     /* slots held now */
} uds_acceptor_stats;
void uds_acceptor_stats_get(const uds_acceptor *a, uds_acceptor_stats *out);

/* Slots held now by unix peer uid. */
unsigned uds_acceptor_uid_conns(const uds_acceptor *a, uid_t uid);

/* ------------------------------------------------------------------------ */
/* Asynchronous connect                                                     */
/* ------------------------------------------------------------------------ */

typedef struct uds_connect_op uds_connect_op;

/*
 * Result of uds_connect_start: fd >= 0 is the connected socket
 * (non-blocking, CLOEXEC), owned by the callback from then on; fd < 0 is
 * the error (-ECONNREFUSED, -ENOENT, -ETIMEDOUT, -EPROTOTYPE, ...).
 */
typedef void (*uds_connect_cb)(uds_loop *loop, int fd, void *arg);

/*
 * Connects to addr without blocking the loop. opts as for uds_connect()
 * (type, flags UDS_NO_AUTOBIND, timeout_ms <= 0 = no limit, wait: retry
 * ENOENT/ECONNREFUSED until the timeout, then that error; without a
 * timeout, until cancelled); UDS_NONBLOCK is implied. A unix stream or
 * seqpacket connect that meets a full backlog (EAGAIN) is retried with a
 * back-off of 1 ms growing to 50 ms until timeout_ms (for 2 s when no
 * timeout is set; then -ETIMEDOUT), never failed at once. A TCP handshake
 * is waited for on the loop, bounded by timeout_ms (-ETIMEDOUT). The
 * timeout covers the whole operation, retries included. cb is always
 * called from the loop, never from inside this call, exactly once unless
 * the operation is cancelled; the op is freed before cb runs. *op (op may
 * be NULL) identifies the operation until then. Cancel pending operations
 * before uds_loop_free(). Returns 0, or -EINVAL (NULL loop, cb or addr, an
 * unset or unnamed address, a bad type), -EPROTOTYPE (type does not fit
 * the address), -ENOMEM or an epoll error; then cb is never called.
 */
int uds_connect_start(uds_connect_op **op, uds_loop *loop, const uds_addr *addr,
                      const uds_connect_opts *opts, uds_connect_cb cb, void *arg);

/* Cancels a pending connect: cb is not called, the socket is closed, the
   op is freed (also when the result was already queued for delivery). Must
   not be called from or after cb. NULL is a no-op. */
void uds_connect_cancel(uds_connect_op *op);

/* ------------------------------------------------------------------------ */
/* Forwarding: two connections joined                                       */
/* ------------------------------------------------------------------------ */

/*
 * Joins two connected sockets (side 0 and side 1) on a loop and copies
 * everything each one sends to the other until both directions have ended:
 *   - bytes between two raw stream sides go through recv/send while the
 *     traffic is small and switch to splice() (socket -> pipe -> socket,
 *     one pipe per direction, created on first use) once a read fills the
 *     buffer: bulk data never enters user space;
 *   - packet sides (SOCK_SEQPACKET, connected SOCK_DGRAM) keep message
 *     boundaries; framed stream sides (UDS_FRAME_LEN32, UDS_FRAME_LINE)
 *     are decoded into messages and re-encoded for the other side, so a
 *     line client can talk to a length-prefixed or seqpacket server; a raw
 *     stream read becomes one message on a packet side; an empty message
 *     (an empty packet, LEN32 frame or line) stays one: an empty packet,
 *     a 4-byte zero header, an empty line, and nothing on a raw stream
 *     side (which has no boundaries to keep);
 *   - EOF from one side becomes shutdown(SHUT_WR) on the other once
 *     everything before it is written (a datagram side has no EOF);
 *   - backpressure both ways: a side is read only while the other side's
 *     queue (or the direction's pipe) has room;
 *   - with UDS_FWD_FDS, fds (SCM_RIGHTS) travel with the bytes or message
 *     they were sent with, and with UDS_FWD_CREDS the sender's credentials
 *     too (see uds_conn_write_anc for the privilege this needs); no splice
 *     then. Without it fds are refused or closed as uds_conn does.
 * A malformed or oversized frame, a socket error or the idle timeout ends
 * the forward (both sides closed); done reports why.
 */
typedef struct uds_fwd uds_fwd;

/* Flags for uds_fwd_opts.flags. */
#define UDS_FWD_FDS 0x01       /* pass fds between unix sides */
#define UDS_FWD_CREDS 0x02     /* pass the sender's credentials too */
#define UDS_FWD_NO_SPLICE 0x04 /* always copy through user space */
#define UDS_FWD_IDLE_SIDE0 0x08 /* idle_timeout_ms: only data read from side 0
                                   counts as activity (udsock serve: the
                                   client's input, not the program's output) */

/* Framing of a stream side, for uds_fwd_opts.frame[]. */
#define UDS_FRAME_RAW 0 /* bytes as they come (the default) */

typedef struct uds_fwd_stats {
    uint64_t bytes[2];  /* payload bytes forwarded: [0] side 0 -> 1, [1] 1 -> 0 */
    uint64_t msgs[2];   /* messages forwarded (packet or framed sides) */
    uint64_t fds[2];    /* descriptors passed */
    uint64_t creds[2];  /* credentials passed */
    int spliced[2];     /* the direction switched to splice() */
} uds_fwd_stats;

/*
 * Called once when the forward has ended, from the loop; f is freed when it
 * returns. err: 0 both directions ended (EOF passed on each way) or
 * uds_fwd_close(); -ETIMEDOUT idle timeout; -EMSGSIZE a message over
 * max_msg; UDS_EFRAME a malformed frame (bad LEN32 header, a newline
 * inside a message for a LINE side); or the socket error. side: the side
 * the error came from (0, 1), -1 when not one side's.
 */
typedef void (*uds_fwd_done_cb)(uds_fwd *f, int err, int side,
                                const uds_fwd_stats *st, void *arg);

/*
 * Sees the traffic (udsock relay -v): dir 0 is side 0 -> 1. Called for
 * each chunk or message as it is forwarded, with the fds/credentials that
 * go with it (anc NULL when none). Setting a tap turns splice off.
 */
typedef void (*uds_fwd_tap_cb)(uds_fwd *f, int dir, const void *data, size_t len,
                               const uds_anc *anc, void *arg);

/* Options; zero-initialise, 0 means the default. */
typedef struct uds_fwd_opts {
    int frame[2];        /* stream sides: UDS_FRAME_RAW (0), UDS_FRAME_LEN32,
                            UDS_FRAME_LINE; ignored for packet sides */
    size_t max_msg;      /* largest message of a framed or packet side;
                            default UDS_FRAME_DEFAULT_MAX */
    int flags;           /* UDS_FWD_FDS, UDS_FWD_CREDS, UDS_FWD_NO_SPLICE */
    int idle_timeout_ms; /* end after this long with no data either way
                            (from side 0 only, with UDS_FWD_IDLE_SIDE0);
                            <= 0: never */
    size_t high_water;   /* queued bytes per direction before its source is
                            paused; default 256 KiB */
    size_t pipe_size;    /* splice pipe per direction; default 1 MiB
                            (F_SETPIPE_SZ; the system's limit otherwise) */
    uds_fwd_tap_cb tap;
    void *tap_arg;
} uds_fwd_opts;

/*
 * Joins fd0 and fd1 (connected sockets, made non-blocking). On success the
 * forward owns both fds; on failure (-EINVAL, -ENOMEM, -EPROTOTYPE for a
 * framing the socket types cannot carry, an epoll error) both are still the
 * caller's and done is never called.
 * Either fd may instead be a terminal (a pty master, as for `udsock serve
 * --pty`): a byte stream without splice; the other side's EOF reaches it as
 * its VEOF character (^D; twice after a partial line in canonical mode), a
 * terminal without VEOF is hung up; its end (EIO: every slave fd closed)
 * ends the forward once the other side has all its output.
 */
int uds_fwd_new(uds_fwd **out, uds_loop *loop, int fd0, int fd1,
                const uds_fwd_opts *opts, uds_fwd_done_cb done, void *arg);

/* Ends the forward now (both sockets closed, queued data discarded); done
   follows from the loop with err 0. Safe from any callback and twice. */
void uds_fwd_close(uds_fwd *f);

/* Counters so far. */
void uds_fwd_stats_get(const uds_fwd *f, uds_fwd_stats *out);

/* The user arg given to uds_fwd_new. */
void *uds_fwd_arg(const uds_fwd *f);

/* ------------------------------------------------------------------------ */
/* Request/response server                                                  */
/* ------------------------------------------------------------------------ */

typedef struct uds_server uds_server;
/* One received request, until answered with uds_req_reply or uds_req_drop. */
typedef struct uds_req uds_req;


/*
 * A message arrived. `msg` is valid during the call only. Answer now or
 * later (keep req) with uds_req_reply; every req must be answered or
 * dropped exactly once. Replies go out in request order per connection,
 * whatever order they are given in.
 */
typedef void (*uds_request_cb)(uds_server *s, uds_req *req, const void *msg,
                               size_t len, void *arg);

/* Options; zero-initialise, 0 means the default / no limit. */
typedef struct uds_server_opts {
    int framing;      /* stream sockets: UDS_FRAME_LEN32 (default) or
                         UDS_FRAME_LINE; packet sockets always PACKET */
    size_t max_msg;   /* largest request; default UDS_FRAME_DEFAULT_MAX */
    size_t high_water;/* per-connection queued replies above which the
                         server stops reading that peer; default 256 KiB */
    size_t out_cap;   /* per-connection queued replies above which the peer
                         is dropped; default 16 MiB */
    unsigned max_inflight;   /* unanswered requests per connection before
                                reading pauses; default 1024 */
    unsigned max_conns;      /* total connections; more are refused */
    unsigned max_conns_per_uid; /* per peer uid (AF_UNIX only) */
    unsigned idle_timeout_ms; /* close a connection with nothing in flight
                                 and nothing received for this long */
    unsigned msg_timeout_ms;  /* close a connection whose started message is
                                 not complete within this long (slowloris) */
    unsigned send_timeout_ms; /* drop a peer whose queued replies make no
                                 progress for this long (it does not read) */
    uds_log_cb log;
    void *log_arg;
    /* Datagram sockets (a datagram is a request, held until answered or
       dropped): requests over either limit are dropped unanswered, counted
       in dgram_over_limit and logged at most once a second (0: default). */
    unsigned max_dgram_inflight; /* unanswered at once, all senders; 4096 */
    unsigned max_dgram_per_peer; /* unanswered at once from one sender
                                    address (unix name, ip:port); 32 */
} uds_server_opts;

/*
 * Creates a server on `loop` that calls cb for every message. opts may be
 * NULL. Returns 0 and *out, or -ENOMEM / -EINVAL. Nothing is called back
 * on failure.
 */
int uds_server_new(uds_server **out, uds_loop *loop, const uds_server_opts *opts,
                   uds_request_cb cb, void *arg);

/*
 * Listens on addr (uds_listen: safe bind; lopts may be NULL) and accepts
 * from the loop. May be called more than once. Returns 0 or -errno.
 * The socket file is removed at shutdown/free if it is still ours.
 * Datagram sockets (UDS_DGRAM, udp:) work too: each datagram is a request,
 * answered with sendto() to its sender (a unix client must be bound, as
 * uds_connect does); replies that do not fit the socket buffer now are
 * dropped (-EAGAIN from uds_req_reply, counted in replies_lost); no
 * ordering; requests in flight limited by max_dgram_inflight and
 * max_dgram_per_peer (uds_server_opts).
 */
int uds_server_listen(uds_server *s, const uds_addr *addr,
                      const uds_listen_opts *lopts);

/*
 * Accepts on an inherited listening socket (socket activation, --fd), or
 * serves an inherited bound datagram socket. The server owns fd on success
 * (closes it at the end) but never unlinks its path. Returns 0 or -errno
 * (-ENOTSOCK; -EINVAL for a stream socket that is not listening).
 */
int uds_server_adopt(uds_server *s, int fd);

/* Serves an already connected socket (socketpair, inherited connection).
   The server owns fd on success. Returns 0 or -errno. */
int uds_server_add_conn(uds_server *s, int fd);

/* The first listener's bound address (for tcp:...:0, the real port). */
int uds_server_addr(const uds_server *s, uds_addr *out);

/*
 * Graceful shutdown: stops accepting (listeners are closed, socket files
 * removed if still ours), stops reading new requests, lets the requests
 * in flight be answered and sent, closing each connection when it is done;
 * after deadline_ms whatever is left is closed. done (may be NULL) is
 * called once when no connection is left: from the loop, or before this
 * call returns if there was none. The server may be freed from done.
 * Returns 0 (-EINVAL for s NULL).
 */
int uds_server_shutdown(uds_server *s, unsigned deadline_ms,
                        void (*done)(uds_server *s, void *arg), void *arg);

/* Frees the server at once: listeners closed (files removed if ours),
   connections closed; outstanding reqs stay valid and their replies are
   discarded. NULL is a no-op. */
void uds_server_free(uds_server *s);

/* Counters, for tests and monitoring. */
typedef struct uds_server_stats {
    uint64_t accepted;     /* connections accepted and served */
    uint64_t refused;      /* connections refused by a limit */
    uint64_t dropped;      /* connections dropped (bad frame, cap, timeout) */
    uint64_t requests;     /* messages received */
    uint64_t replies;      /* replies queued */
    unsigned conns;        /* connections open now */
    size_t queued;         /* reply bytes queued now, all connections */
    size_t max_conn_queued;/* the most ever queued on one connection */
    uint64_t dgram_over_limit; /* datagram requests dropped: over
                                  max_dgram_inflight or max_dgram_per_peer */
    uint64_t replies_lost; /* datagram replies that could not be sent (the
                              sender does not read, or is gone) */
    unsigned dgram_inflight; /* datagram requests unanswered now */
} uds_server_stats;
void uds_server_stats_get(const uds_server *s, uds_server_stats *out);

/*
 * Answers req with a copy of data (framed like the request). req is
 * released by the call, whatever it returns. Returns 0, UDS_ECLOSED if the
 * connection is gone (the reply is discarded), -EMSGSIZE if len is over
 * max_msg (the request gets no answer), -EINVAL for a '\n' in a LINE-mode
 * reply; datagram requests: -EAGAIN or the sendto error (reply lost).
 */
int uds_req_reply(uds_req *req, const void *data, size_t len);

/* Releases req without an answer; later replies are not held up. */
void uds_req_drop(uds_req *req);

/* The peer's credentials (AF_UNIX; zeros for TCP). */
const uds_cred *uds_req_cred(const uds_req *req);

/* Closes the connection the request came from (e.g. on a bad request);
   req is released. */
void uds_req_close(uds_req *req);

/* ------------------------------------------------------------------------ */
/* Request/response client                                                  */
/* ------------------------------------------------------------------------ */

/*
 * A client for a uds_server (or anything speaking the same framing).
 * Blocking use: uds_client_call. Pipelined use: uds_client_send many, then
 * uds_client_recv the responses in order. With a loop: watch
 * uds_client_fd and call send/flush/recv with timeout_ms 0 (they then
 * return -EAGAIN instead of waiting). Not thread-safe. Requests and
 * responses may be empty; on SEQPACKET an empty response is a response
 * (the socket gets SO_TIMESTAMP to tell it from end of stream, as
 * uds_conn_cbs.on_eof explains).
 */
typedef struct uds_client uds_client;

typedef struct uds_client_opts {
    int type;         /* as uds_connect_opts.type; 0 = from the address */
    int framing;      /* stream: UDS_FRAME_LEN32 (default) or UDS_FRAME_LINE */
    size_t max_msg;   /* largest response accepted; default as the codec */
    int connect_timeout_ms; /* 0 = no limit */
    unsigned spin_us; /* before blocking for a response, poll the socket
                         with MSG_DONTWAIT for up to this many µs (latency
                         vs CPU); 0 = block at once */
} uds_client_opts;

/* Connects to addr. Returns 0 and *out, or -errno as uds_connect. */
int uds_client_connect(uds_client **out, const uds_addr *addr,
                       const uds_client_opts *opts);

/* Wraps a connected socket; the client owns fd on success. Returns 0,
   -EINVAL, -ENOTSOCK, -ENOMEM. */
int uds_client_from_fd(uds_client **out, int fd, const uds_client_opts *opts);

/* Closes the socket and frees. NULL is a no-op. */
void uds_client_close(uds_client *c);

/* The socket, for a loop (owned by the client). The client never changes
   its O_NONBLOCK flag and never waits in calls given timeout_ms 0. */
int uds_client_fd(const uds_client *c);

/*
 * Sends req and waits for its response, at most timeout_ms (0 or < 0:
 * no limit). On success *resp is a malloc'd buffer the caller frees (a NUL is
 * appended, not counted in *resp_len). Responses to earlier uds_client_send
 * requests still pending are read and discarded first. Returns 0,
 * -ETIMEDOUT (the late response will be skipped by the next call; over
 * datagrams, where responses can be lost, it is not: put an id in your
 * messages if late answers matter),
 * UDS_ECLOSED (server closed), -EMSGSIZE, UDS_EFRAME, -errno.
 */
int uds_client_call(uds_client *c, const void *req, size_t len, void **resp,
                    size_t *resp_len, int timeout_ms);

/*
 * Queues one request (copied) without waiting for the response; queued
 * requests are sent together when the queue grows past 64 KiB, or by
 * uds_client_flush / uds_client_recv. Returns 0 or -errno.
 */
int uds_client_send(uds_client *c, const void *req, size_t len);

/* Sends what is queued: 0 when all is sent, -EAGAIN if timeout_ms ran out
   (0 = do not wait), or -errno. */
int uds_client_flush(uds_client *c, int timeout_ms);

/*
 * Receives the next response in request order (flushing queued requests
 * first). *resp is malloc'd as in uds_client_call. Returns 0, -EAGAIN if
 * none arrived within timeout_ms (0 = do not wait, < 0 = no limit),
 * -ENOMSG if no request is pending, UDS_ECLOSED, -EMSGSIZE, UDS_EFRAME or
 * -errno. A framing error is sticky: later calls return it too.
 */
int uds_client_recv(uds_client *c, void **resp, size_t *resp_len,
                    int timeout_ms);

/* Requests sent or queued whose responses have not been received yet
   (not counting those abandoned by a timed-out uds_client_call). */
size_t uds_client_pending(const uds_client *c);

/* UDS_LOOP_API_END */

/* UDS_ACTIVATION_API_BEGIN (socket activation, readiness: issue 3) */

/* ------------------------------------------------------------------------ */
/* Service managers: socket activation and readiness                        */
/* ------------------------------------------------------------------------ */

/*
 * systemd socket activation (also systemd-socket-activate, s6-fdholder
 * setups and others that speak the same protocol): the manager binds the
 * sockets, starts the service with them open as fds 3, 4, ... and sets
 *   LISTEN_PID=<pid the fds are meant for>
 *   LISTEN_FDS=<how many>
 *   LISTEN_FDNAMES=<name1>:<name2>:...  (optional; FileDescriptorName=)
 * A service started that way must use the inherited sockets and must never
 * unlink their paths: the manager owns them and keeps them across restarts.
 */

/* The first inherited fd (systemd's SD_LISTEN_FDS_START). */
#define UDS_LISTEN_FDS_START 3

/* Flags for uds_activation_get(). */
#define UDS_ACT_UNSET_ENV 0x01 /* remove LISTEN_PID/FDS/FDNAMES afterwards, so
                                  child processes do not see them */

/* What the service manager passed. Release with uds_activation_free(). */
typedef struct uds_activation {
    int count;    /* inherited fds: UDS_LISTEN_FDS_START .. +count-1 */
    char **names; /* count names, from LISTEN_FDNAMES, or "unknown" for each
                     when the variable is absent (as systemd does); NULL
                     when count is 0. Owned by the struct. */
} uds_activation;

/*
 * Reads LISTEN_PID, LISTEN_FDS and LISTEN_FDNAMES into *a.
 * The variables are honoured only if LISTEN_PID equals getpid(): otherwise
 * they were meant for another process (a parent that forked us) and *a is
 * empty (count 0). Each inherited fd is checked to be open and gets
 * FD_CLOEXEC. With UDS_ACT_UNSET_ENV the three variables are removed from
 * the environment in every case (setenv/unsetenv: not thread-safe, call it
 * early in main).
 * The fds themselves belong to the caller; wrap the ones you use with
 * uds_activation_listener() or uds_listener_from_fd(), close the others.
 * Returns the number of fds (0 = not socket-activated), or:
 *   -EINVAL   a variable is malformed, or LISTEN_FDNAMES has a different
 *             number of names than LISTEN_FDS
 *   -EBADF    one of the announced fds is not open
 *   -ENOMEM
 * On error *a is empty (count 0) and nothing needs freeing.
 */
int uds_activation_get(uds_activation *a, int flags);

/* Frees the names (not the fds). Safe on a zeroed struct and twice. */
void uds_activation_free(uds_activation *a);

/*
 * Checks that fd is a socket of the given kind, as sd_is_socket() does.
 * type: UDS_STREAM/UDS_DGRAM/UDS_SEQPACKET, or 0 for any.
 * family: AF_UNIX/AF_INET/AF_INET6, or 0 for any (AF_UNSPEC).
 * listening: 1 = must be listening (SO_ACCEPTCONN), 0 = must not be
 * (a connected socket, as with Accept=yes), -1 = either.
 * Returns 0 if it matches, or:
 *   -EBADF         fd is not open
 *   -ENOTSOCK      fd is not a socket
 *   -EPROTOTYPE    socket of another type
 *   -EAFNOSUPPORT  socket of another family
 *   -EINVAL        listening state differs from `listening`
 */
int uds_socket_check(int fd, int type, int family, int listening);

/*
 * Finds an inherited fd by name (LISTEN_FDNAMES) that passes
 * uds_socket_check(fd, type, family, -1): every fd of that name is tried
 * in order (systemd gives all sockets of one unit the unit's name, e.g.
 * "x.socket:x.socket" for a stream and a datagram socket), the first
 * match wins. name NULL: every inherited fd is a candidate. Returns the
 * fd (still owned by the caller, not duplicated), or:
 *   -ENOENT  no fd has that name (or nothing was inherited)
 *   and the error of uds_socket_check() for the first fd of that name
 *   when none of them matches.
 */
int uds_activation_fd(const uds_activation *a, const char *name, int type,
                      int family);

/*
 * uds_activation_fd(), then wraps the fd with uds_listener_from_fd() so it
 * can be served like a uds_listen() result. The listener owns the fd from
 * then on (uds_listener_close() closes it) but never unlinks its path.
 * Stream and seqpacket sockets must be listening. type 0 accepts any type.
 * Returns 0, or the errors above (-ENOENT, -EPROTOTYPE, -EINVAL for a
 * connected rather than a listening socket, ...).
 */
int uds_activation_listener(const uds_activation *a, uds_listener *l,
                            const char *name, int type);

/*
 * Readiness notification to the service manager (sd_notify protocol):
 * sends `state` as one datagram to the AF_UNIX socket named by the
 * NOTIFY_SOCKET variable, a path ("/run/...") or an abstract name ("@...").
 * state is newline-separated KEY=VALUE lines: "READY=1", "STOPPING=1",
 * "RELOADING=1", "STATUS=serving 12 clients", "MAINPID=...".
 * The socket used is CLOEXEC and closed again; the send uses MSG_NOSIGNAL
 * and waits at most 1 s for room if the manager's socket is full.
 * Returns 1 if sent, 0 if NOTIFY_SOCKET is not set (nothing to do: not
 * running under a manager that wants it), or:
 *   -EINVAL        state NULL/empty, or NOTIFY_SOCKET empty
 *   -EAFNOSUPPORT  NOTIFY_SOCKET is neither a path nor @name (e.g. vsock:)
 *   -ENAMETOOLONG  the name does not fit in sun_path (a path over 107
 *                  bytes; an @name over 107 bytes after the '@', which
 *                  stands for the leading NUL)
 *   -EAGAIN        the manager's socket stayed full for 1 s
 *   -errno of socket()/sendmsg() (-ECONNREFUSED if nobody listens there)
 */
int uds_notify(const char *state);

/* uds_notify("READY=1"): the service is ready to serve. */
int uds_notify_ready(void);

/* uds_notify("STOPPING=1"): the service begins its shutdown. */
int uds_notify_stopping(void);

/*
 * uds_notify("STATUS=<text>"): a one-line status shown by `systemctl
 * status`. A newline in text ends it there. Returns as uds_notify(), plus
 * -EMSGSIZE if the text is longer than 4000 bytes.
 */
int uds_notify_status(const char *text);

/*
 * The "notification-fd" style of readiness (s6, runit-style scripts, a
 * test harness that passes a pipe): writes one "\n" to fd, then closes fd.
 * The fd is closed whatever happens (if it was open), so call this once.
 * A pipe whose reader has gone gives -EPIPE, never SIGPIPE (the signal is
 * blocked for the write and a SIGPIPE it caused is consumed).
 * Returns 0, or -EBADF (fd < 0 or not open), -EPIPE, -errno of write().
 */
int uds_ready_fd(int fd);

/* UDS_ACTIVATION_API_END */

/* ------------------------------------------------------------------------ */
/* Asking the kernel about unix sockets (sock_diag)                         */
/* ------------------------------------------------------------------------ */
/* UDS_DIAG_API_BEGIN */

/*
 * What the kernel knows about the unix sockets of the caller's network
 * namespace, from NETLINK_SOCK_DIAG (the unix_diag handler; what `ss -x`
 * reads). Unlike /proc/net/unix, every name arrives as bytes with a length,
 * so a name holding a newline cannot pose as another socket. Needs no
 * privilege; nothing here connects to any socket.
 */

/* Socket states as the kernel reports them (the TCP_* numbers it reuses). */
enum uds_diag_state {
    UDS_DIAG_CONNECTED = 1,  /* TCP_ESTABLISHED: connected (or a dgram with a peer) */
    UDS_DIAG_CONNECTING = 2, /* TCP_SYN_SENT */
    UDS_DIAG_UNCONNECTED = 7, /* TCP_CLOSE: not connected, not listening */
    UDS_DIAG_LISTENING = 10  /* TCP_LISTEN */
};

/* Which optional fields of a uds_diag_sock the kernel filled (have). */
#define UDS_DIAG_HAVE_VFS 0x01   /* bound to a file: vfs_dev, vfs_ino */
#define UDS_DIAG_HAVE_RQLEN 0x02 /* rqueue, wqueue */
#define UDS_DIAG_HAVE_UID 0x04   /* uid (Linux >= 5.3) */
#define UDS_DIAG_HAVE_ICONS 0x08 /* a listener: icons, n_icons */

/*
 * One socket. name, icons are owned by the record (uds_diag_sock_free, or
 * uds_diag_free for a whole list).
 */
typedef struct uds_diag_sock {
    uint64_t ino;       /* the socket's inode: "socket:[ino]" in /proc/PID/fd */
    int type;           /* SOCK_STREAM, SOCK_DGRAM, SOCK_SEQPACKET */
    int state;          /* enum uds_diag_state (other values passed through) */
    unsigned have;      /* UDS_DIAG_HAVE_* */
    /* The bound name, exactly: sun_path bytes, name_len of them (0 and
       name NULL: unnamed). An abstract name starts with a '\0' byte and
       may hold any byte; a path name is given without the NUL that ends it
       (as it was passed to bind, so it may be relative). An accepted
       socket carries its listener's name and file (vfs_*). A NUL follows the name_len
       bytes, for convenience only. */
    char *name;
    size_t name_len;
    dev_t vfs_dev;      /* the socket file's device, as stat() gives st_dev */
    uint32_t vfs_ino;   /* the file's inode number, low 32 bits (the kernel
                           sends no more: compare with (uint32_t)st_ino) */
    uint64_t peer;      /* inode of the socket at the other end, 0: none */
    uint32_t rqueue;    /* bytes queued to read; a listener: connections
                           waiting for accept */
    uint32_t wqueue;    /* bytes queued to send; a listener: its backlog */
    uint32_t uid;       /* the socket's owner (its creator's fsuid) */
    uint64_t *icons;    /* a listener: inodes of the connections waiting
                           for accept (the client ends), n_icons of them */
    size_t n_icons;
} uds_diag_sock;

/* A list of sockets: socks[0 .. count-1], owned by the list. */
typedef struct uds_diag_list {
    uds_diag_sock *socks;
    size_t count;
    size_t cap; /* internal */
} uds_diag_list;

/* Every state, for uds_diag_dump's states argument. */
#define UDS_DIAG_ALL 0u

/*
 * Fills *out (its previous contents are not freed: pass a zeroed list)
 * with every unix socket of this network namespace whose state s has bit
 * (1u << s) set in `states` (UDS_DIAG_ALL: all of them), in the kernel's
 * order. On success the caller owns the list and frees it with
 * uds_diag_free(); on failure *out is left empty (nothing to free).
 * Returns the number of sockets, or:
 *   -EPROTONOSUPPORT  sock_diag for unix sockets is unavailable (no
 *                     NETLINK_SOCK_DIAG, or the unix_diag module is missing
 *                     and cannot be loaded)
 *   -EBUSY            the kernel flagged every one of 3 dumps as
 *                     inconsistent (NLM_F_DUMP_INTR)
 *   -EBADMSG          a reply that does not parse (a length that does not
 *                     fit, a record of another family)
 *   -ENOMEM, or -errno of socket/sendto/recvmsg
 */
int uds_diag_dump(uds_diag_list *out, unsigned states);

/* Frees what uds_diag_dump put in l and zeroes it; safe on a zeroed list
   and twice. */
void uds_diag_free(uds_diag_list *l);

/*
 * Asks the kernel about the one socket with inode ino and fills *out (the
 * caller frees it with uds_diag_sock_free(); on failure *out is zeroed).
 * Returns 0, or -ENOENT (no such unix socket in this network namespace),
 * -EMSGSIZE (the kernel could not fit the record in its one-page reply: a
 * listener with very many pending connections; uds_diag_dump has no such
 * limit), and the errors of uds_diag_dump.
 */
int uds_diag_get(uint64_t ino, uds_diag_sock *out);

/* Frees a record's name and icons and zeroes it; safe twice. */
void uds_diag_sock_free(uds_diag_sock *s);

/* UDS_DIAG_API_END */

#pragma GCC visibility pop

#ifdef __cplusplus
}
#endif
#endif /* UDSOCK_H */
