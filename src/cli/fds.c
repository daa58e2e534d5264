/*
 * fds.c — the fd-passing pieces the commands share (fds.h): the --fd
 * arguments, the report of what arrived, and the hand-over to a program.
 */
#include "fds.h"
#include "opts.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Why texts now and fds later: the address is checked first (a tcp: with
   --fd is a usage error before any file is opened). */
void cli_fds_arg(const char *cmd, const char **args, size_t *n, const char *text)
{
    if (*n == UDS_MAX_FDS)
        cli_usage_error(cmd, "at most %d --fd", UDS_MAX_FDS);
    args[(*n)++] = text;
}

/* Why O_NONBLOCK on the open only: a FIFO would block it until a writer
   came; the receiver expects an ordinary (blocking) file description. */
void cli_fds_open(const char *cmd, const char *const *args, size_t n, int *fds)
{
    for (size_t i = 0; i < n; i++) {
        const char *t = args[i];
        if (cli_is_decimal(t) && strlen(t) < 8) {
            fds[i] = atoi(t);
            if (fcntl(fds[i], F_GETFD) < 0)
                cli_usage_error(cmd, "--fd %s: fd %s is not open", t, t);
        } else if ((fds[i] = open(t, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK)) < 0) {
            cli_usage_error(cmd, "--fd %s: %s", t, strerror(errno));
        } else {
            int fl = fcntl(fds[i], F_GETFL);
            if (fl >= 0)
                fcntl(fds[i], F_SETFL, fl & ~O_NONBLOCK);
        }
    }
}

/* Why one line a batch: a log reader sees what one message carried, and
   the path comes from /proc (the kernel's name for it), escaped because a
   peer chose it. */
void cli_fds_say(const char *peer, const int *fds, size_t n)
{
    char line[4096];
    size_t pos = (size_t)snprintf(line, sizeof(line), "%zu fd%s from %s:", n, n == 1 ? "" : "s",
                                  peer);
    for (size_t i = 0; i < n && pos < sizeof(line) - 1; i++) {
        struct stat st;
        const char *kind = "?";
        if (fstat(fds[i], &st) == 0)
            kind = S_ISREG(st.st_mode)    ? "regular file"
                   : S_ISDIR(st.st_mode)  ? "directory"
                   : S_ISFIFO(st.st_mode) ? "pipe"
                   : S_ISSOCK(st.st_mode) ? "socket"
                   : S_ISCHR(st.st_mode)  ? "character device"
                   : S_ISBLK(st.st_mode)  ? "block device"
                                          : "other";
        char proc[64], target[1024] = "", esc[2048] = "";
        snprintf(proc, sizeof(proc), "/proc/self/fd/%d", fds[i]);
        ssize_t k = readlink(proc, target, sizeof(target) - 1);
        if (k > 0) {
            target[k] = 0;
            uds_escape(target, (size_t)k, esc, sizeof(esc));
        }
        pos += (size_t)snprintf(line + pos, sizeof(line) - pos, "%s %zu: %s%s%s",
                                i ? "," : "", i, kind, *esc ? " " : "", esc);
    }
    cli_warn("%s", line);
}

/* Why a function: every path that got fds must give them back. */
void cli_fds_close(const int *fds, size_t n)
{
    for (size_t i = 0; i < n; i++)
        close(fds[i]);
}

/* Why move them up first: a received fd may itself be 3 or 4, and
   placing fd i must not overwrite one not yet placed. setenv in the
   child: only this thread exists there, and no thread of ours ever holds
   the environment's lock (nobody calls setenv while threads run). */
void cli_fds_child(const int *fds, size_t n)
{
    if (!n) {
        unsetenv("UDSOCK_FDS");
        return;
    }
    int hi[UDS_MAX_FDS];
    for (size_t i = 0; i < n; i++)
        hi[i] = fcntl(fds[i], F_DUPFD, 3 + (int)n);
    for (size_t i = 0; i < n; i++)
        if (hi[i] < 0 || dup2(hi[i], 3 + (int)i) < 0)
            _exit(126);
    close_range(3 + (unsigned)n, ~0U, 0);
    char b[32];
    snprintf(b, sizeof(b), "%zu", n);
    setenv("UDSOCK_FDS", b, 1);
    setenv("LISTEN_FDS", b, 1);
    snprintf(b, sizeof(b), "%d", (int)getpid());
    setenv("LISTEN_PID", b, 1);
    unsetenv("LISTEN_FDNAMES");
}
