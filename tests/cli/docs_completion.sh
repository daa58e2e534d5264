#!/bin/bash
# Issue 10: bash and zsh completion made from the same option tables as
# --help (`udsock completion bash|zsh`, installed by `make install`). The
# bash script is sourced and _udsock is called with COMP_WORDS set as bash
# would; COMPREPLY is checked for commands, options (every option of every
# command's --help), option values (TYPE, a|b choices) and addresses.
# uds-test-timeout: 60
set -u
UDS_BUILD_DIR=${UDS_BUILD_DIR:-build}
. "$(dirname "$0")/io_common.bash"
U=$(readlink -f "$U") # the test changes directory
B=$(cd "$UDS_BUILD_DIR" && pwd)

"$U" completion bash >"$T/udsock.bash" || fail "completion bash: status $?"
bash -n "$T/udsock.bash" || fail "the bash script does not parse"
# shellcheck disable=SC1091
. "$T/udsock.bash"

# comp WORD...: completes the last word; COMPREPLY sorted into $R (one line)
comp() {
    COMP_WORDS=(udsock "$@")
    COMP_CWORD=$((${#COMP_WORDS[@]} - 1))
    COMPREPLY=()
    _udsock
    R=""
    [ ${#COMPREPLY[@]} = 0 ] || R=$(printf "%s\n" "${COMPREPLY[@]}" | sort | tr "\n" " ")
}
has() { case " $R" in *" $1 "*) ;; *) fail "$2: no '$1' in: $R" ;; esac; }
hasnt() { case " $R" in *" $1 "*) fail "$2: '$1' offered: $R" ;; esac; }

comp ""
for c in listen connect send recv bench serve relay ls help completion; do has "$c" "commands"; done
comp co
[ "$R" = "completion connect " ] || fail "'co' completed to: $R"
comp help l
[ "$R" = "listen ls " ] || fail "'help l': $R"
comp connect --
has --type "connect --"; has --wait "connect --"; has --no-shutdown "connect --"; hasnt --keep "connect --"
comp recv -
has --raw "recv -"; has -m "recv -"; has -o "recv -"; has -g "recv -"; has -v "recv -"
comp listen -t ""
[ "$R" = "dgram seqpacket stream " ] || fail "listen -t: $R"
comp connect --type s
[ "$R" = "seqpacket stream " ] || fail "connect --type s: $R"
comp bench --impl ""
[ "$R" = "core lib " ] || fail "bench --impl: $R"
comp completion ""
[ "$R" = "bash list zsh " ] || fail "completion: $R"
comp listen -c ""
[ -z "$R" ] || fail "listen -c (a number) offered: $R"
ok "commands, options, option values complete"

cd "$T" || fail "cd"
mkdir sockdir
comp connect sockd
has sockdir "a path"
comp connect tc
[ "$R" = "tcp: " ] || fail "connect tc: $R"
ok "addresses complete to files and schemes"

# every option each --help lists is offered (the tables are the help texts)
n=0
for c in listen connect send recv bench serve relay ls; do
    comp "$c" -
    while read -r opt; do
        has "$opt" "$c --help lists $opt"
        n=$((n + 1))
    done < <("$U" "$c" --help | grep -oE '^ {1,6}-[^ ].*' | grep -oE '(^|[ ,|])--?[A-Za-z][A-Za-z0-9-]*' | tr -d ' ,|' | sort -u)
done
[ "$n" -gt 100 ] || fail "only $n options found in the help texts"
ok "all $n options of the help texts are completed"

"$U" completion zsh >"$T/_udsock" || fail "completion zsh: status $?"
head -1 "$T/_udsock" | grep -qx '#compdef udsock' || fail "zsh script lacks #compdef"
if command -v zsh >/dev/null; then
    zsh -n "$T/_udsock" || fail "the zsh script does not parse"
    ok "the zsh script parses"
else
    echo "skip - no zsh here: its script is not parsed"
fi
"$U" completion fish >/dev/null 2>&1; rc=$?
[ $rc = 2 ] || fail "completion fish: status $rc, want 2"

# make install puts both where bash-completion and zsh look
if [ -f "$B/cmake_install.cmake" ]; then
    cmake --install "$B" --prefix "$T/inst" >/dev/null || fail "cmake --install: status $?"
    cmp "$T/inst/share/bash-completion/completions/udsock" "$T/udsock.bash" ||
        fail "installed bash completion differs from 'udsock completion bash'"
    cmp "$T/inst/share/zsh/site-functions/_udsock" "$T/_udsock" ||
        fail "installed zsh completion differs from 'udsock completion zsh'"
    ok "installed to share/bash-completion/completions and share/zsh/site-functions"
else
    echo "skip - no cmake_install.cmake in $B: install not checked"
fi
echo ALL OK
