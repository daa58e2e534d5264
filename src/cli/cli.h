/* cli.h — shared by the udsock subcommands (src/cli/cmd_*.c). */
#ifndef UDS_CLI_H
#define UDS_CLI_H

#include "udsock.h"

/* Exit codes: 0 success, 1 runtime failure, 2 usage error. */
#define CLI_OK 0
#define CLI_FAIL 1
#define CLI_USAGE 2

/* One subcommand: run(argc, argv) gets argv[0] == the subcommand name. */
typedef struct cli_cmd {
    const char *name;
    const char *summary;
    int (*run)(int argc, char **argv);
} cli_cmd;

/* "udsock: " + formatted message + newline, on stderr. */
void cli_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* cli_warn then exit(code). */
void cli_die(int code, const char *fmt, ...)
    __attribute__((format(printf, 2, 3), noreturn));

/*
 * Text for a failed operation on an address, with a hint where one helps:
 *   "connect /run/x.sock: No such file or directory (is the server running?)"
 *   "listen /tmp/x: exists and is not a socket; refusing to remove it"
 * `op` is "connect", "listen", "bind"...; err is a library return code.
 */
const char *cli_errtext(const char *op, const char *addr, int err);

/* uds_diag_dump; -EPROTONOSUPPORT when UDSOCK_NO_SOCK_DIAG=1 (test seam) */
int cli_diag_dump(uds_diag_list *l, unsigned states);

/*
 * cli_errtext, and for -EPROTOTYPE on a unix address which type the socket
 * is (learned without connecting to it: sock_diag, else a datagram probe)
 * and which was asked for (`asked`: UDS_STREAM... or 0 if not known):
 *   "connect /x: wrong socket type: it is a datagram socket, and stream was
 *    asked for (-t dgram)"
 * cli_errtext itself says "not a socket: it is a regular file" for a
 * connect to a path that is no socket, and calls this with asked 0.
 */
const char *cli_errtext_type(const char *op, const char *addr, int err, int asked);

/*
 * Parses an address or exits: 2 when the text is wrong ("udsock: connect:
 * bad address tcp:1.2.3.4:99999: port 99999 is out of range (0-65535)"),
 * 1 when the resolver failed ("udsock: connect tcp:nohost:80: cannot
 * resolve host 'nohost': Name or service not known").
 */
void cli_parse_addr(uds_addr *out, const char *text);

/* The cause of a failed uds_addr_parse(text) == r as one phrase naming
   the part at fault (static buffer). */
const char *cli_addr_errtext(const char *text, int r);

/* The subcommand running ("connect"...), set by main before it runs;
   NULL before. Messages that name the command use it. */
extern const char *cli_cmd_name;

/* The subcommands, as --help lists them, ended by a {NULL} entry. */
const cli_cmd *cli_commands(void);

/* `udsock completion bash|zsh|list` (src/cli/completion.c): argv[0] is
   "completion". Returns the exit status. */
int cli_completion(int argc, char **argv);

/* Ignores SIGPIPE for the whole process (pipes, not only sockets). */
void cli_ignore_sigpipe(void);

/*
 * Fuzz seam, used by tests/fuzz/fuzz_cli.c only: when nonzero, every
 * subcommand returns CLI_OK right after parsing its options and arguments,
 * before any I/O. udsock itself never sets it.
 */
extern int cli_parse_only;

#endif
