/*
 * activate.c — living under a service manager: sockets handed over by
 * systemd-style socket activation, and telling the manager "I am ready".
 *
 * Protocol facts used here (from the sd_listen_fds(3) and sd_notify(3)
 * manual pages, re-implemented, no code taken): inherited fds start at 3;
 * LISTEN_PID names the process they are for; LISTEN_FDNAMES is a
 * colon-separated list with one name per fd; NOTIFY_SOCKET is an AF_UNIX
 * datagram socket given as a path or as "@abstract"; a notification is one
 * datagram of newline-separated KEY=VALUE assignments.
 * The s6 "notification-fd" convention: write a newline to the fd, close it.
 */
#include "internal.h"

#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

/* Parses a whole string of decimal digits into *out; -EINVAL otherwise. */
static int parse_uint(const char *s, long *out)
{
    if (!s || !*s)
        return -EINVAL;
    long v = 0;
    for (const char *p = s; *p; p++) {
        if (*p < '0' || *p > '9')
            return -EINVAL;
        if (v > (LONG_MAX - 9) / 10)
            return -EINVAL;
        v = v * 10 + (*p - '0');
    }
    *out = v;
    return 0;
}

/*
 * Splits LISTEN_FDNAMES (or makes "unknown" names) into one allocation:
 * the pointer array followed by the strings, so one free() releases all.
 */
static int make_names(uds_activation *a, int n, const char *fdnames)
{
    size_t textlen = fdnames ? strlen(fdnames) + 1 : (size_t)n * sizeof("unknown");
    if ((size_t)n > (SIZE_MAX - textlen) / sizeof(char *))
        return -ENOMEM;
    char **names = malloc((size_t)n * sizeof(char *) + textlen);
    if (!names)
        return -ENOMEM;
    char *text = (char *)(names + n);
    if (fdnames) {
        memcpy(text, fdnames, textlen);
        int i = 0;
        char *p = text;
        for (;;) {
            if (i == n) { /* more names than fds */
                free(names);
                return -EINVAL;
            }
            names[i++] = p;
            char *colon = strchr(p, ':');
            if (!colon)
                break;
            *colon = '\0';
            p = colon + 1;
        }
        if (i != n) { /* fewer names than fds */
            free(names);
            return -EINVAL;
        }
    } else {
        for (int i = 0; i < n; i++) {
            names[i] = text + (size_t)i * sizeof("unknown");
            memcpy(names[i], "unknown", sizeof("unknown"));
        }
    }
    a->names = names;
    a->count = n;
    return 0;
}

/* The work of uds_activation_get(), without the environment clean-up. */
static int read_env(uds_activation *a)
{
    const char *spid = getenv("LISTEN_PID");
    const char *sfds = getenv("LISTEN_FDS");
    long pid, n;
    if (!spid || !sfds)
        return 0; /* not activated */
    if (parse_uint(spid, &pid) < 0 || pid <= 0 || parse_uint(sfds, &n) < 0)
        return -EINVAL;
    if (pid != (long)getpid())
        return 0; /* meant for another process */
    if (n == 0)
        return 0;
    if (n > INT_MAX - UDS_LISTEN_FDS_START)
        return -EINVAL;
    for (int fd = UDS_LISTEN_FDS_START; fd < UDS_LISTEN_FDS_START + (int)n; fd++) {
        int fl = fcntl(fd, F_GETFD);
        if (fl < 0)
            return -EBADF;
        if (!(fl & FD_CLOEXEC) && fcntl(fd, F_SETFD, fl | FD_CLOEXEC) < 0)
            return uds__err();
    }
    int r = make_names(a, (int)n, getenv("LISTEN_FDNAMES"));
    return r < 0 ? r : (int)n;
}

int uds_activation_get(uds_activation *a, int flags)
{
    if (!a)
        return -EINVAL;
    a->count = 0;
    a->names = NULL;
    int r = read_env(a);
    if (flags & UDS_ACT_UNSET_ENV) {
        unsetenv("LISTEN_PID");
        unsetenv("LISTEN_FDS");
        unsetenv("LISTEN_FDNAMES");
    }
    return r;
}

void uds_activation_free(uds_activation *a)
{
    if (!a)
        return;
    free(a->names);
    a->names = NULL;
    a->count = 0;
}

int uds_socket_check(int fd, int type, int family, int listening)
{
    if (fd < 0 || fcntl(fd, F_GETFD) < 0)
        return -EBADF;
    struct stat st;
    if (fstat(fd, &st) < 0)
        return uds__err();
    if (!S_ISSOCK(st.st_mode))
        return -ENOTSOCK;
    int t = uds_sock_type(fd);
    if (t < 0)
        return t;
    if (type && t != type)
        return -EPROTOTYPE;
    if (family) {
        struct sockaddr_storage ss;
        socklen_t sl = sizeof(ss);
        memset(&ss, 0, sizeof(ss));
        if (getsockname(fd, (struct sockaddr *)&ss, &sl) < 0)
            return uds__err();
        if (sl < sizeof(sa_family_t) || ss.ss_family != family)
            return -EAFNOSUPPORT;
    }
    if (listening >= 0) {
        int acc = 0;
        socklen_t al = sizeof(acc);
        if (getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &acc, &al) < 0)
            return uds__err();
        if ((acc != 0) != (listening != 0))
            return -EINVAL;
    }
    return 0;
}

/*
 * Every fd of that name is a candidate, not only the first: systemd names
 * each socket of a unit after the unit unless FileDescriptorName= says
 * otherwise, so "x.socket:x.socket" (a stream and a datagram socket) is
 * the usual case, and the caller tells them apart by type and family.
 * The first fd that matches wins; when none does, the first candidate's
 * mismatch is the answer (-EPROTOTYPE, -EAFNOSUPPORT...).
 */
int uds_activation_fd(const uds_activation *a, const char *name, int type, int family)
{
    if (!a)
        return -EINVAL;
    int first_err = -ENOENT;
    for (int i = 0; i < a->count; i++) {
        if (name && strcmp(a->names[i], name) != 0)
            continue;
        int fd = UDS_LISTEN_FDS_START + i;
        int r = uds_socket_check(fd, type, family, -1);
        if (r == 0)
            return fd;
        if (first_err == -ENOENT)
            first_err = r;
    }
    return first_err;
}

int uds_activation_listener(const uds_activation *a, uds_listener *l, const char *name, int type)
{
    if (!l)
        return -EINVAL;
    int fd = uds_activation_fd(a, name, type, 0);
    if (fd < 0)
        return fd;
    int t = uds_sock_type(fd);
    if (t < 0)
        return t;
    if (t != UDS_DGRAM) { /* a connected socket (Accept=yes) is not a listener */
        int r = uds_socket_check(fd, 0, 0, 1);
        if (r < 0)
            return r;
    }
    return uds_listener_from_fd(l, fd); /* never owns (unlinks) the path */
}

/* ---- readiness ---------------------------------------------------------- */

/* Longest uds_notify() waits for room in a full notification socket. */
#define NOTIFY_TIMEOUT_MS 1000

/*
 * Turns NOTIFY_SOCKET's value into a sockaddr_un. A path keeps its NUL
 * (length counted without it, as the kernel accepts): at most 107 bytes.
 * "@name" becomes an abstract address whose length counts exactly the
 * name's bytes: the '@' takes the place of the leading NUL, so the name
 * may fill the other 107 bytes of sun_path (the limit uds_addr_parse
 * applies to abstract names too).
 */
static int notify_addr(const char *e, struct sockaddr_un *un, socklen_t *len)
{
    size_t n = strlen(e);
    memset(un, 0, sizeof(*un));
    un->sun_family = AF_UNIX;
    if (n == 0)
        return -EINVAL;
    if (e[0] != '/' && e[0] != '@')
        return -EAFNOSUPPORT; /* e.g. "vsock:..." of newer systemd */
    if (n > sizeof(un->sun_path) - (e[0] == '/' ? 1 : 0))
        return -ENAMETOOLONG;
    memcpy(un->sun_path, e, n);
    if (e[0] == '@')
        un->sun_path[0] = '\0';
    *len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n + (e[0] == '/' ? 1 : 0));
    return 0;
}

int uds_notify(const char *state)
{
    if (!state || !*state)
        return -EINVAL;
    const char *e = getenv("NOTIFY_SOCKET");
    if (!e)
        return 0;
    struct sockaddr_un un;
    socklen_t len;
    int r = notify_addr(e, &un, &len);
    if (r < 0)
        return r;
    int fd = uds__socket(AF_UNIX, SOCK_DGRAM, 0);
    if (fd < 0)
        return fd;
    /* a manager that stopped reading must not hang us forever */
    struct timeval tmo = {NOTIFY_TIMEOUT_MS / 1000, (NOTIFY_TIMEOUT_MS % 1000) * 1000};
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tmo, sizeof(tmo));
    ssize_t n = UDS__RETRY(sendto(fd, state, strlen(state), MSG_NOSIGNAL, (struct sockaddr *)&un, len));
    r = n < 0 ? (errno == EWOULDBLOCK ? -EAGAIN : uds__err()) : 1;
    close(fd);
    return r;
}

int uds_notify_ready(void) { return uds_notify("READY=1"); }

int uds_notify_stopping(void) { return uds_notify("STOPPING=1"); }

int uds_notify_status(const char *text)
{
    if (!text)
        return -EINVAL;
    char buf[sizeof("STATUS=") + 4000];
    size_t n = strcspn(text, "\n");
    if (n > 4000)
        return -EMSGSIZE;
    memcpy(buf, "STATUS=", 7);
    memcpy(buf + 7, text, n);
    buf[7 + n] = '\0';
    return uds_notify(buf);
}

/*
 * Why the signal dance: the fd is usually a pipe, and write() to a pipe
 * whose reader has gone raises SIGPIPE, which a library must never let
 * kill its caller. SIGPIPE is blocked for this thread during the write; if
 * the write produced one (EPIPE) and none was pending before, it is taken
 * off the pending set with sigtimedwait before the old mask comes back.
 */
int uds_ready_fd(int fd)
{
    if (fd < 0 || fcntl(fd, F_GETFD) < 0)
        return -EBADF;
    sigset_t pipe_set, old, pending;
    sigemptyset(&pipe_set);
    sigaddset(&pipe_set, SIGPIPE);
    sigemptyset(&pending);
    pthread_sigmask(SIG_BLOCK, &pipe_set, &old);
    sigpending(&pending);
    int was_pending = sigismember(&pending, SIGPIPE);
    ssize_t n = UDS__RETRY(write(fd, "\n", 1));
    int r = n == 1 ? 0 : n < 0 ? uds__err() : -EIO;
    if (r == -EPIPE && !was_pending) {
        struct timespec zero = {0, 0};
        while (sigtimedwait(&pipe_set, NULL, &zero) < 0 && errno == EINTR)
            ;
    }
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    close(fd);
    return r;
}
