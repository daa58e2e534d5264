# scripts/wait-listen.sh — "is the server ready?" for shell scripts, read
# from the kernel's socket tables, never from the file system and never by
# connecting. Sourced (bash) by tests/cli/io_common.bash and bench/compare.
#
# Why not [ -S PATH ]: bind() creates the file, listen() comes later, and a
# client that connects in between gets ECONNREFUSED. Why not a probe
# connect: one-shot servers (udsock listen, nc -lU, socat without fork) take
# the first connection as their client and then exit.
#
#   uds_is_listening ADDR        0 if a socket is in the LISTEN state at ADDR now
#   uds_is_bound ADDR            0 if a datagram socket is bound at ADDR now
#   uds_wait_listen ADDR [PID]   wait until so (at most $UDS_WAIT_SECS, default
#   uds_wait_bound ADDR [PID]      10 s, polling every 20 ms); with PID, the
#                                socket must be held by PID or one of its
#                                descendants (another program that happens
#                                to hold the same port or abstract name does
#                                not count), and the wait gives up as soon
#                                as PID has exited
# The waits return 0 when ready; else they say why on stderr and return 1
# (timeout), 2 (ADDR cannot be checked) or 3 (PID exited first).
# ADDR as udsock writes it: PATH (unix:PATH), @NAME (abstract:NAME),
# tcp:HOST:PORT, tcp:[V6]:PORT, udp:HOST:PORT, udp:[V6]:PORT. HOST is a
# numeric address or localhost; PORT is not 0. A PATH is matched as the
# server passed it to bind() (use absolute paths).
# Everything here is safe under set -euo pipefail.

# 1 when this machine stores integers little-endian: /proc/net/tcp prints an
# address as the %08X of its in-memory 32-bit words, so the byte order of
# the text depends on it.
_uds_wl_le() {
    if [ -z "${_UDS_WL_LE:-}" ]; then
        if [ "$(printf '\001\000\000\000' | od -An -tx4 | tr -d ' ')" = 00000001 ]; then
            _UDS_WL_LE=1
        else
            _UDS_WL_LE=0
        fi
    fi
    [ "$_UDS_WL_LE" = 1 ]
}

# Prints one 32-bit word of 4 address bytes (hex pairs, network order) the
# way the kernel prints it.
_uds_wl_word() {
    if _uds_wl_le; then printf '%s%s%s%s' "$4" "$3" "$2" "$1"; else printf '%s%s%s%s' "$1" "$2" "$3" "$4"; fi
}

# Dotted IPv4 -> 4 hex pairs "AA BB CC DD" (network order), or status 1.
_uds_wl_v4bytes() {
    local IFS=. p out=""
    local -a a
    read -r -a a <<<"$1"
    [ "${#a[@]}" = 4 ] || return 1
    for p in "${a[@]}"; do
        [[ $p =~ ^[0-9]{1,3}$ ]] && [ "$((10#$p))" -le 255 ] || return 1
        out="$out $(printf '%02X' "$((10#$p))")"
    done
    printf '%s' "${out# }"
}

# IPv4 text -> the 8 hex digits of /proc/net/{tcp,udp}.
_uds_wl_v4hex() {
    local b
    b=$(_uds_wl_v4bytes "$1") || return 1
    # shellcheck disable=SC2086
    _uds_wl_word $b
}

# IPv6 text (no brackets) -> the 32 hex digits of /proc/net/{tcp6,udp6}.
_uds_wl_v6hex() {
    local s=$1 head tail g out="" v4 i
    local -a hg=() tg=() all=()
    [[ $s =~ ^[0-9A-Fa-f:.]+$ ]] || return 1
    if [[ $s == *.* ]]; then # trailing dotted IPv4 (::ffff:127.0.0.1)
        v4=$(_uds_wl_v4bytes "${s##*:}") || return 1
        v4=${v4// /}
        s="${s%:*}:${v4:0:4}:${v4:4:4}"
    fi
    if [[ $s == *::* ]]; then
        head=${s%%::*} tail=${s#*::}
        [[ $tail != *::* ]] || return 1
        [ -z "$head" ] || IFS=: read -r -a hg <<<"$head"
        [ -z "$tail" ] || IFS=: read -r -a tg <<<"$tail"
        [ $((${#hg[@]} + ${#tg[@]})) -le 7 ] || return 1
        all=("${hg[@]}")
        for ((i = ${#hg[@]} + ${#tg[@]}; i < 8; i++)); do all+=(0); done
        all+=("${tg[@]}")
    else
        IFS=: read -r -a all <<<"$s"
    fi
    [ "${#all[@]}" = 8 ] || return 1
    for g in "${all[@]}"; do
        [[ $g =~ ^[0-9A-Fa-f]{1,4}$ ]] || return 1
    done
    for ((i = 0; i < 8; i += 2)); do
        g=$(printf '%04X%04X' "$((16#${all[i]}))" "$((16#${all[i + 1]}))")
        out="$out$(_uds_wl_word "${g:0:2}" "${g:2:2}" "${g:4:2}" "${g:6:2}")"
    done
    printf '%s' "$out"
}

# tcp:/udp: ADDR -> "PROTO KEY..." : the /proc file stem and every
# local_address text that serves a client of ADDR (the address itself, the
# wildcard of its family, and for IPv4 the v4-mapped and wildcard IPv6 forms
# a dual-stack listener shows).
_uds_wl_inet_keys() {
    local proto=${1%%:*} rest=${1#*:} host port h p4 z4 z6
    port=${rest##*:}
    host=${rest%:*}
    [[ $port =~ ^[0-9]{1,5}$ ]] && [ "$((10#$port))" -ge 1 ] && [ "$((10#$port))" -le 65535 ] || return 1
    p4=$(printf '%04X' "$((10#$port))")
    z4=00000000 z6=00000000000000000000000000000000
    [ "$host" = localhost ] && host=127.0.0.1
    if [[ $host == \[*\] ]]; then
        h=$(_uds_wl_v6hex "${host:1:${#host}-2}") || return 1
        printf '%s %s:%s %s:%s' "$proto" "$h" "$p4" "$z6" "$p4"
    elif [ -z "$host" ] || [ "$host" = "*" ]; then
        printf '%s %s:%s %s:%s' "$proto" "$z4" "$p4" "$z6" "$p4"
    else
        h=$(_uds_wl_v4hex "$host") || return 1
        printf '%s %s:%s %s:%s %s:%s %s:%s' "$proto" "$h" "$p4" "$z4" "$p4" \
            "$(_uds_wl_v6hex "::ffff:$host")" "$p4" "$z6" "$p4"
    fi
}

# The /proc/net files of PROTO (tcp or udp) that exist here.
_uds_wl_inet_files() {
    local f
    for f in "/proc/net/$1" "/proc/net/${1}6"; do [ -r "$f" ] && printf '%s\n' "$f"; done
    return 0
}

# A unix ADDR -> _UDS_WL_NAME (as /proc/net/unix shows it: an abstract name
# with its leading '@') and _UDS_WL_ABSTRACT (1 or 0); status 1 if empty.
_uds_wl_unix_name() {
    _UDS_WL_ABSTRACT=0
    case $1 in
    @*) _UDS_WL_NAME=$1 _UDS_WL_ABSTRACT=1 ;;
    abstract:*) _UDS_WL_NAME="@${1#abstract:}" _UDS_WL_ABSTRACT=1 ;;
    unix:*) _UDS_WL_NAME=${1#unix:} ;;
    *) _UDS_WL_NAME=$1 ;;
    esac
    [ -n "$_UDS_WL_NAME" ] && [ "$_UDS_WL_NAME" != @ ]
}

# _uds_wl_pid_inos PID: " INO INO ... " — the socket inodes that PID and its
# descendants hold open (children from /proc/PID/task/*/children). Why: a
# TCP port picked by a test may be taken by another program at the same
# moment, and a wait that counted that program's listener would send the
# test's client to a stranger (seen as an empty reply under load).
_uds_wl_pid_inos() {
    local p c l out=" " seen=" " i=0
    local -a todo=("$1") kids
    while [ "$i" -lt "${#todo[@]}" ]; do
        p=${todo[i]}
        i=$((i + 1))
        case $seen in *" $p "*) continue ;; esac
        seen="$seen$p "
        for l in $(find /proc/"$p"/fd -mindepth 1 -maxdepth 1 -lname 'socket:\[*' -printf '%l\n' 2>/dev/null || true); do
            l=${l#socket:\[}
            out="$out${l%\]} "
        done
        for c in /proc/"$p"/task/*/children; do
            [ -r "$c" ] || continue
            read -r -a kids <"$c" 2>/dev/null || true
            todo+=("${kids[@]}")
        done
    done
    printf '%s' "$out"
}

# _uds_wl_check MODE ADDR [PID]: MODE listen or bound. 0 ready, 1 not yet,
# 2 bad ADDR. With PID, only a socket PID (or a descendant) holds counts.
_uds_wl_check() {
    local mode=$1 addr=$2 pid=${3:-} pinos="" name keys proto files
    case $addr in
    tcp:* | udp:*)
        keys=$(_uds_wl_inet_keys "$addr") || return 2
        proto=${keys%% *} keys=${keys#* }
        if [ "$mode" = listen ] && [ "$proto" != tcp ]; then return 2; fi
        if [ "$mode" = bound ] && [ "$proto" != udp ]; then return 2; fi
        files=$(_uds_wl_inet_files "$proto")
        [ -n "$files" ] || return 1
        # local_address is field 2, st field 4: 0A is TCP_LISTEN; a bound
        # UDP socket may be in any state (07 unconnected, 01 connected);
        # the inode is field 10
        [ -z "$pid" ] || pinos=$(_uds_wl_pid_inos "$pid")
        # shellcheck disable=SC2086
        UDS_WL_KEYS=" $keys " UDS_WL_INOS="$pinos" awk -v mode="$mode" -v bypid="${pid:+1}" '
            FNR == 1 { next }
            index(ENVIRON["UDS_WL_KEYS"], " " $2 " ") && (mode == "bound" || $4 == "0A") &&
                (bypid != 1 || index(ENVIRON["UDS_WL_INOS"], " " $10 " ")) { f = 1; exit }
            END { exit !f }' $files
        return $?
        ;;
    *)
        _uds_wl_unix_name "$addr" || return 2
        name=$_UDS_WL_NAME
        ;;
    esac
    # a path: the file must be there (a listener whose file was removed and
    # replaced does not count) and a socket of that name in the table
    if [ "$_UDS_WL_ABSTRACT" = 0 ] && [ ! -S "$name" ]; then return 1; fi
    # /proc/net/unix: Num RefCount Protocol Flags Type St Inode [Path]; Flags
    # has __SO_ACCEPTCON (0x00010000) once listen() ran; Type 0002 is
    # SOCK_DGRAM; an abstract name is shown with a leading '@'. The path is
    # the rest of the line after the seventh field (it may hold spaces).
    # A pinned bind (uds_listen in a directory others may change, or a path
    # longer than sun_path) is recorded as /proc/self/fd/DIRFD/BASENAME: such
    # a line with our basename is a candidate, printed as "INODE DIRFD", and
    # counts once a process holding that socket has, as fd DIRFD, the
    # directory the path leads to (the real name needs no such check).
    local out ino dfd holder want
    [ -z "$pid" ] || pinos=$(_uds_wl_pid_inos "$pid")
    out=$(UDS_WL_NAME=$name UDS_WL_INOS="$pinos" awk -v mode="$mode" -v abs="$_UDS_WL_ABSTRACT" -v bypid="${pid:+1}" '
        FNR == 1 || NF < 8 { next }
        {
            p = $0
            for (i = 0; i < 7; i++) sub(/^[^ ]+ +/, "", p)
            if (mode == "listen" && index("13579BDFbdf", substr($4, 4, 1)) == 0) next
            if (mode == "bound" && $5 != "0002") next
            if (bypid == 1 && !index(ENVIRON["UDS_WL_INOS"], " " $7 " ")) next
            if (p == ENVIRON["UDS_WL_NAME"]) { print "real"; exit }
            if (abs == 1) next
            b = ENVIRON["UDS_WL_NAME"]; sub(/.*\//, "", b)
            q = p
            if (!sub(/^\/proc\/self\/fd\/[0-9]+\//, "", q) || q != b) next
            d = p; sub(/^\/proc\/self\/fd\//, "", d); sub(/\/.*/, "", d)
            print $7, d
        }' /proc/net/unix) || return 1
    [ -n "$out" ] || return 1
    [ "$out" != real ] || return 0
    want=$(realpath -e -- "$(dirname -- "$name")" 2>/dev/null) || return 1
    while read -r ino dfd; do
        [ "$ino" != real ] || return 0
        for holder in $(find /proc/[0-9]*/fd -maxdepth 1 -lname "socket:\[$ino\]" 2>/dev/null); do
            [ "$(readlink "${holder%/*}/$dfd" 2>/dev/null)" = "$want" ] && return 0
        done
    done <<<"$out"
    return 1
}

# Why a wait ended without a server: one line for stderr.
_uds_wl_why() {
    local mode=$1 addr=$2 pid=${3:-} what=listening name
    [ "$mode" = listen ] || what=bound
    if [ -n "$pid" ] && _uds_wl_check "$mode" "$addr"; then
        printf 'a %s socket is at %s, but process %s does not hold it (another program has that address)' "$what" "$addr" "$pid"
        return 0
    fi
    case $addr in
    tcp:* | udp:*) printf 'no %s socket on %s' "$what" "$addr"; return 0 ;;
    esac
    [ "$mode" = listen ] || what=datagram
    _uds_wl_unix_name "$addr" || true
    name=$_UDS_WL_NAME
    if [ "$_UDS_WL_ABSTRACT" = 1 ]; then
        printf 'no %s socket named %s in /proc/net/unix' "$what" "$name"
    elif [ ! -e "$name" ]; then
        printf '%s does not exist' "$name"
    elif [ ! -S "$name" ]; then
        printf '%s exists but is not a socket' "$name"
    else
        printf 'the socket file %s exists but no %s socket has that name in /proc/net/unix' "$name" "$what"
    fi
}

# _uds_wl_alive PID: the process exists and is not a zombie (a child the
# caller has not reaped yet still answers kill -0, but holds no socket).
_uds_wl_alive() {
    local st
    kill -0 "$1" 2>/dev/null || return 1
    st=$(cat "/proc/$1/stat" 2>/dev/null || true)
    st=${st##*) }
    [ "${st%% *}" != Z ]
}

# _uds_wl_wait MODE ADDR [PID]: the polling loop, bounded in time (a
# deadline on EPOCHREALTIME, so slow reads of the tables on a loaded machine
# do not stretch it) and in count.
_uds_wl_wait() {
    local mode=$1 addr=$2 pid=${3:-} secs=${UDS_WAIT_SECS:-10} rc=1 i max now deadline
    [[ $secs =~ ^[0-9]+$ ]] && [ "$secs" -gt 0 ] || secs=10
    max=$((secs * 50 + 1))
    now=${EPOCHREALTIME/[.,]/}
    deadline=$((now + secs * 1000000))
    for ((i = 0; i < max; i++)); do
        rc=0
        _uds_wl_check "$mode" "$addr" "$pid" || rc=$?
        [ "$rc" = 1 ] || break
        if [ -n "$pid" ] && ! _uds_wl_alive "$pid"; then
            # it exited: whatever listens there now is not its socket
            rc=3
            break
        fi
        now=${EPOCHREALTIME/[.,]/}
        [ "$now" -lt "$deadline" ] || break
        sleep 0.02
    done
    case $rc in
    0) return 0 ;;
    3) echo "wait_$mode: process $pid exited before $addr was ready: $(_uds_wl_why "$mode" "$addr" "$pid")" >&2 ;;
    2) echo "wait_$mode: cannot check '$addr' (want PATH, @NAME, $([ "$mode" = listen ] && echo tcp || echo udp):HOST:PORT with a numeric HOST and PORT > 0)" >&2 ;;
    *) echo "wait_$mode: $addr not ready after $secs s: $(_uds_wl_why "$mode" "$addr" "$pid")" >&2 ;;
    esac
    [ "$rc" = 2 ] || [ "$rc" = 3 ] || rc=1
    return "$rc"
}

uds_is_listening() { _uds_wl_check listen "$1"; }
uds_is_bound() { _uds_wl_check bound "$1"; }
uds_wait_listen() { _uds_wl_wait listen "$@"; }
uds_wait_bound() { _uds_wl_wait bound "$@"; }
