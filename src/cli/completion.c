/*
 * completion.c — `udsock completion bash|zsh|list`: shell completion made
 * from the subcommands' own --help texts, so the options completed are the
 * options documented (one source: the help text each cmd_*.c prints). Each
 * help text is captured by running the subcommand with --help in a child
 * (its output goes to a pipe), and every line that starts, indented at
 * most 6 columns, with '-' is an option line: "-t, --type TYPE  text",
 * "    --json | --csv  text", "--sndbuf N, --rcvbuf N  text".
 */
#include "cli.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define CMP_MAX_OPTS 96

/* One option as the help text shows it. */
typedef struct cmp_opt {
    char name[40]; /* "-t" or "--type" */
    char arg[24];  /* "TYPE", "lib|core", "" for a flag */
    char desc[80]; /* the first line of its text */
} cmp_opt;

typedef struct cmp_cmd {
    const cli_cmd *cmd;
    cmp_opt opts[CMP_MAX_OPTS];
    int n;
} cmp_cmd;

/* The --help text of c, as the command prints it (malloc'd), or NULL. */
static char *help_text(const cli_cmd *c)
{
    int p[2];
    if (pipe2(p, O_CLOEXEC) < 0)
        return NULL;
    fflush(stdout);
    pid_t pid = fork();
    if (pid < 0) {
        close(p[0]);
        close(p[1]);
        return NULL;
    }
    if (pid == 0) {
        if (dup2(p[1], STDOUT_FILENO) < 0)
            _exit(127);
        char *argv[] = {(char *)c->name, (char *)"--help", NULL};
        int r = c->run(2, argv);
        fflush(stdout);
        _exit(r);
    }
    close(p[1]);
    size_t len = 0, cap = 8192;
    char *buf = malloc(cap);
    for (;;) {
        if (buf && len + 1 >= cap) {
            char *nb = realloc(buf, cap * 2);
            if (!nb) {
                free(buf);
                buf = NULL;
            } else {
                buf = nb;
                cap *= 2;
            }
        }
        char sink[512];
        ssize_t n = buf ? read(p[0], buf + len, cap - len - 1) : read(p[0], sink, sizeof(sink));
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        if (buf)
            len += (size_t)n;
    }
    close(p[0]);
    int st;
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
        ;
    if (buf)
        buf[len] = '\0';
    return buf;
}

/* Copies at most n bytes of s into dst[size], NUL-terminated. */
static void copy_n(char *dst, size_t size, const char *s, size_t n)
{
    if (n >= size)
        n = size - 1;
    memcpy(dst, s, n);
    dst[n] = '\0';
}

/*
 * One option line: the option part is what comes before the first gap of
 * two spaces; it holds pieces "OPT [ARG]" separated by ", " or " | ". A
 * piece without ARG takes the ARG of the last piece of its comma group
 * ("-t, --type TYPE": -t takes TYPE too).
 */
static void parse_line(cmp_cmd *cc, const char *line, const char *end)
{
    const char *p = line;
    while (p < end && *p == ' ')
        p++;
    if (p - line > 6 || p >= end || *p != '-')
        return;
    const char *gap = p;
    while (gap < end && !(gap[0] == ' ' && gap + 1 < end && gap[1] == ' '))
        gap++;
    const char *d = gap;
    while (d < end && *d == ' ')
        d++;
    int first = cc->n;
    const char *q = p;
    while (q < gap && cc->n < CMP_MAX_OPTS) {
        while (q < gap && (*q == ' ' || *q == ',' || *q == '|'))
            q++;
        if (q >= gap || *q != '-')
            break;
        const char *ne = q;
        while (ne < gap && *ne != ' ' && *ne != ',' && *ne != '=')
            ne++;
        cmp_opt *o = &cc->opts[cc->n++];
        memset(o, 0, sizeof(*o));
        copy_n(o->name, sizeof(o->name), q, (size_t)(ne - q));
        copy_n(o->desc, sizeof(o->desc), d, (size_t)(end - d));
        q = ne;
        if (q < gap && (*q == ' ' || *q == '=') && q + 1 < gap && q[1] != '|' && q[1] != '-') {
            const char *ae = ++q;
            int depth = 0; /* "S[,C]": a comma inside brackets is the arg's */
            while (ae < gap && *ae != ' ' && (*ae != ',' || depth > 0)) {
                depth += *ae == '[' ? 1 : *ae == ']' ? -1 : 0;
                ae++;
            }
            copy_n(o->arg, sizeof(o->arg), q, (size_t)(ae - q));
            for (int i = first; i < cc->n - 1; i++)
                if (!cc->opts[i].arg[0])
                    memcpy(cc->opts[i].arg, o->arg, sizeof(o->arg));
            first = cc->n;
            q = ae;
        }
        if (q < gap && *q == ',')
            continue;
        if (q + 2 < gap && q[0] == ' ' && q[1] == '|') {
            first = cc->n;
            continue;
        }
    }
}

/* Every option of every command, from their help texts. */
static int collect(cmp_cmd *all, int max)
{
    int n = 0;
    for (const cli_cmd *c = cli_commands(); c->name && n < max; c++) {
        cmp_cmd *cc = &all[n++];
        cc->cmd = c;
        cc->n = 0;
        char *text = help_text(c);
        if (!text)
            return -1;
        for (char *l = text; *l;) {
            char *e = strchr(l, '\n');
            if (!e)
                e = l + strlen(l);
            parse_line(cc, l, e);
            l = *e ? e + 1 : e;
        }
        free(text);
    }
    return n;
}

/* The words an option's argument completes to, by the help's name for it:
   a choice "a|b", TYPE, or nothing (NULL) when it is free text. */
static const char *arg_words(const cmp_opt *o, char *buf, size_t size)
{
    if (strchr(o->arg, '|')) {
        snprintf(buf, size, "%s", o->arg);
        for (char *p = buf; *p; p++)
            if (*p == '|')
                *p = ' ';
        return buf;
    }
    if (!strcmp(o->arg, "TYPE"))
        return "stream seqpacket dgram";
    return NULL;
}

/* Writes s for a single-quoted shell word (' becomes '\''). */
static void put_sq(const char *s)
{
    for (; *s; s++)
        if (*s == '\'')
            fputs("'\\''", stdout);
        else
            putchar(*s);
}

static void gen_list(const cmp_cmd *all, int n)
{
    for (int i = 0; i < n; i++)
        for (int k = 0; k < all[i].n; k++)
            printf("%s %s%s%s\n", all[i].cmd->name, all[i].opts[k].name,
                   all[i].opts[k].arg[0] ? " " : "", all[i].opts[k].arg);
}

static void gen_bash(const cmp_cmd *all, int n)
{
    printf("# bash completion for udsock: made by 'udsock completion bash' from the\n"
           "# commands' --help texts (do not edit; regenerate).\n"
           "_udsock()\n{\n"
           "    local cur=${COMP_WORDS[COMP_CWORD]} prev=${COMP_WORDS[COMP_CWORD-1]}\n"
           "    local cmds=\"");
    for (int i = 0; i < n; i++)
        printf("%s ", all[i].cmd->name);
    printf("help completion\"\n"
           "    COMPREPLY=()\n"
           "    if [ \"$COMP_CWORD\" -eq 1 ]; then\n"
           "        COMPREPLY=($(compgen -W \"$cmds --help --version\" -- \"$cur\"))\n"
           "        return 0\n"
           "    fi\n"
           "    local flags=\"\" args=\"\"\n"
           "    case ${COMP_WORDS[1]} in\n"
           "    help) [ \"$COMP_CWORD\" -eq 2 ] && COMPREPLY=($(compgen -W \"$cmds\" -- \"$cur\")); return 0 ;;\n"
           "    completion) [ \"$COMP_CWORD\" -eq 2 ] && COMPREPLY=($(compgen -W \"bash zsh list\" -- \"$cur\")); return 0 ;;\n");
    for (int i = 0; i < n; i++) {
        printf("    %s)\n        flags=\"", all[i].cmd->name);
        for (int k = 0, sp = 0; k < all[i].n; k++)
            if (!all[i].opts[k].arg[0])
                printf("%s%s", sp++ ? " " : "", all[i].opts[k].name);
        printf("\"\n        args=\"");
        for (int k = 0, sp = 0; k < all[i].n; k++)
            if (all[i].opts[k].arg[0])
                printf("%s%s", sp++ ? " " : "", all[i].opts[k].name);
        printf("\"\n        case $prev in\n");
        for (int k = 0; k < all[i].n; k++) {
            const cmp_opt *o = &all[i].opts[k];
            char wb[64];
            const char *w = o->arg[0] ? arg_words(o, wb, sizeof(wb)) : NULL;
            if (o->arg[0] && w)
                printf("        %s) COMPREPLY=($(compgen -W \"%s\" -- \"$cur\")); return 0 ;;\n",
                       o->name, w);
            else if (!strcmp(o->arg, "USER"))
                printf("        %s) COMPREPLY=($(compgen -u -- \"$cur\")); return 0 ;;\n", o->name);
            else if (!strcmp(o->arg, "GROUP"))
                printf("        %s) COMPREPLY=($(compgen -g -- \"$cur\")); return 0 ;;\n", o->name);
            else if (!strcmp(o->arg, "ADDR"))
                printf("        %s) COMPREPLY=($(compgen -f -- \"$cur\")); return 0 ;;\n", o->name);
            else if (o->arg[0])
                printf("        %s) return 0 ;;\n", o->name);
        }
        printf("        esac\n        ;;\n");
    }
    printf("    *) return 0 ;;\n"
           "    esac\n"
           "    if [[ $cur == -* ]]; then\n"
           "        COMPREPLY=($(compgen -W \"$flags $args\" -- \"$cur\"))\n"
           "        return 0\n"
           "    fi\n"
           "    # an address: a file (a socket path), or the start of a scheme\n"
           "    COMPREPLY=($(compgen -f -- \"$cur\") $(compgen -W \"unix: abstract: tcp: udp:\" -- \"$cur\"))\n"
           "    return 0\n"
           "}\n"
           "complete -o filenames -o nospace -F _udsock udsock\n");
}

/* zsh: a description for _arguments: no [ ] : (they are its syntax). */
static void put_zdesc(const char *s)
{
    for (; *s; s++) {
        char c = *s;
        if (c == '[' || c == '(')
            c = '<';
        else if (c == ']' || c == ')')
            c = '>';
        else if (c == ':')
            c = ' ';
        if (c == '\'')
            fputs("'\\''", stdout);
        else if (c == '\\')
            fputs("\\\\", stdout);
        else
            putchar(c);
    }
}

static void gen_zsh(const cmp_cmd *all, int n)
{
    printf("#compdef udsock\n"
           "# zsh completion for udsock: made by 'udsock completion zsh' from the\n"
           "# commands' --help texts (do not edit; regenerate).\n"
           "_udsock() {\n"
           "  local -a cmds\n"
           "  cmds=(\n");
    for (int i = 0; i < n; i++) {
        printf("    '%s:", all[i].cmd->name);
        put_sq(all[i].cmd->summary);
        printf("'\n");
    }
    printf("    'help:the help of a command'\n"
           "    'completion:print a bash or zsh completion script'\n"
           "  )\n"
           "  if (( CURRENT == 2 )); then\n"
           "    _describe -t commands 'udsock command' cmds\n"
           "    return\n"
           "  fi\n"
           "  local cmd=$words[2]\n"
           "  shift words\n"
           "  (( CURRENT-- ))\n"
           "  case $cmd in\n"
           "  help) _describe -t commands 'udsock command' cmds ;;\n"
           "  completion) _values 'shell' bash zsh list ;;\n");
    for (int i = 0; i < n; i++) {
        printf("  %s)\n    _arguments -s", all[i].cmd->name);
        for (int k = 0; k < all[i].n; k++) {
            const cmp_opt *o = &all[i].opts[k];
            printf(" \\\n      '%s[", o->name);
            put_zdesc(o->desc);
            printf("]");
            if (o->arg[0]) {
                char wb[64];
                const char *w = arg_words(o, wb, sizeof(wb));
                printf(":%s:", o->arg[0] == '-' ? "value" : "arg");
                if (w)
                    printf("(%s)", w);
                else if (!strcmp(o->arg, "USER"))
                    printf("_users");
                else if (!strcmp(o->arg, "GROUP"))
                    printf("_groups");
                else if (!strcmp(o->arg, "ADDR"))
                    printf("_files");
                else
                    printf(" ");
            }
            printf("'");
        }
        printf(" \\\n      '*:address:_files'\n    ;;\n");
    }
    printf("  esac\n}\n_udsock \"$@\"\n");
}

int cli_completion(int argc, char **argv)
{
    static const char help[] = "usage: udsock completion bash|zsh|list\n"
                               "\n"
                               "Print a completion script for bash or zsh, made from the --help\n"
                               "text of every command (list: one 'COMMAND OPTION [ARG]' a line).\n"
                               "  bash: source it, or install as\n"
                               "        share/bash-completion/completions/udsock\n"
                               "  zsh:  install as share/zsh/site-functions/_udsock\n"
                               "  -h, --help  this text\n";
    if (argc < 2 || !strcmp(argv[1], "-h") || !strcmp(argv[1], "--help")) {
        fputs(help, argc < 2 ? stderr : stdout);
        return argc < 2 ? CLI_USAGE : CLI_OK;
    }
    int kind = !strcmp(argv[1], "bash") ? 1 : !strcmp(argv[1], "zsh") ? 2
               : !strcmp(argv[1], "list") ? 3 : 0;
    if (!kind || argc > 2) {
        cli_warn("completion: %s (bash, zsh or list)",
                 kind ? "too many arguments" : "unknown shell");
        return CLI_USAGE;
    }
    if (cli_parse_only) /* fuzz seam (cli.h): no child processes */
        return CLI_OK;
    static cmp_cmd all[16];
    int n = collect(all, 16);
    if (n < 0) {
        cli_warn("completion: cannot read the help texts: %s", strerror(errno));
        return CLI_FAIL;
    }
    if (kind == 1)
        gen_bash(all, n);
    else if (kind == 2)
        gen_zsh(all, n);
    else
        gen_list(all, n);
    return fflush(stdout) == 0 ? CLI_OK : CLI_FAIL;
}
