#!/bin/sh
# Start Docker Engine's daemon the way Vectra Guard needs it, on hosts without
# systemd (and for the test suite). Run as root. Idempotent: when the socket
# already answers, nothing is started.
#
#   contrib/docker/dockerd.sh          start it (if its socket does not answer) and
#                                      wait until GET /_ping answers
#   contrib/docker/dockerd.sh --stop   stop the dockerd this script started (its
#                                      pid file), and nothing else
#
# The flags, and why:
#   --userns-remap=default   every container in a user namespace of its own range
#                            (user `dockremap`): uid 1000 in a sandbox is not uid
#                            1000 on the host. Vectra Guard refuses a daemon
#                            without it unless a profile accepts `userns: shared`.
#   --iptables=false --ip-forward=false --ip-masq=false --bridge=none
#                            Docker leaves the host's firewall, forwarding and
#                            bridges alone, so Podman's networks (and the tests
#                            that run both engines) keep working.
#   --pidfile, --data-root, --exec-root, --host
#                            fixed places, so that --stop finds this daemon and
#                            only this one.
#
# The paths can be moved (for a second, private daemon, e.g. in a test) with
# VECTRAGUARD_DOCKERD_SOCKET, _PIDFILE, _DATA_ROOT, _EXEC_ROOT and _LOG; the
# defaults are the ones the design and the tests use.
set -eu

socket=${VECTRAGUARD_DOCKERD_SOCKET:-/run/docker.sock}
pidfile=${VECTRAGUARD_DOCKERD_PIDFILE:-/run/vectraguard-dockerd.pid}
data_root=${VECTRAGUARD_DOCKERD_DATA_ROOT:-/var/lib/docker}
exec_root=${VECTRAGUARD_DOCKERD_EXEC_ROOT:-/run/docker}
log=${VECTRAGUARD_DOCKERD_LOG:-/var/log/vectraguard-dockerd.log}
start_deadline_s=60
stop_deadline_s=30
me="contrib/docker/dockerd.sh"

# The range Docker's `default` remapping user gets when it has none yet:
# SUB_UID_COUNT of /etc/login.defs, like `useradd` gives a user.
remap_user=dockremap
remap_count=65536
remap_first=100000

die() {
    echo "$me: $*" >&2
    exit 1
}

answers() {
    # The CLI asks GET /_ping first and fails when nothing answers.
    docker --host "unix://$socket" version --format '{{.Server.Version}}' >/dev/null 2>&1
}

# The pid in the pid file, if it is a live dockerd (not a reused pid).
our_pid() {
    [ -r "$pidfile" ] || return 1
    pid=$(cat "$pidfile")
    case $pid in ''|*[!0-9]*) return 1 ;; esac
    [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = dockerd ] && alive "$pid" || return 1
    echo "$pid"
}

# Whether the process is there and not a zombie (once this script has exited,
# dockerd's new parent may take a while to reap it).
alive() {
    [ -d "/proc/$1" ] && [ "$(cut -d' ' -f3 "/proc/$1/stat" 2>/dev/null)" != Z ]
}

now() {
    date +%s
}

stop() {
    if ! pid=$(our_pid); then
        echo "$me: no dockerd of ours is running (pid file $pidfile)"
        return 0
    fi
    kill -TERM "$pid"
    deadline=$(( $(now) + stop_deadline_s ))
    while alive "$pid"; do
        [ "$(now)" -lt "$deadline" ] || die "dockerd (pid $pid) still running ${stop_deadline_s}s after SIGTERM; its log: $log"
        sleep 0.1
    done
    echo "$me: stopped dockerd (pid $pid)"
}

# Print the start of the first free range of $remap_count ids at or above
# $remap_first in both /etc/subuid and /etc/subgid, ignoring $remap_user's
# own lines. Every other line is avoided: the "containers" range rootful
# Podman's --userns=auto takes its namespaces from (storage.conf's
# root-auto-userns-user; /etc/containers/storage.conf may not exist, and then
# it is "containers"), and the rootless users' own ranges (vgtest).
free_range() {
    cat /etc/subuid /etc/subgid 2>/dev/null | awk -F: -v user="$remap_user" \
        -v count="$remap_count" -v start="$remap_first" '
        $1 != user && NF == 3 { n++; lo[n] = $2 + 0; hi[n] = $2 + $3 }
        END {
            moved = 1
            while (moved) {
                moved = 0
                for (i = 1; i <= n; i++)
                    if (start < hi[i] && lo[i] < start + count) { start = hi[i]; moved = 1 }
            }
            printf "%.0f\n", start
        }'
}

# Fail if $remap_user's range in $1 overlaps anybody else's.
check_overlap() {
    clash=$(awk -F: -v user="$remap_user" '
        $1 == user { ulo[++u] = $2 + 0; uhi[u] = $2 + $3; next }
        NF == 3 { olo[++o] = $2 + 0; ohi[o] = $2 + $3; oname[o] = $1 }
        END {
            for (i = 1; i <= u; i++)
                for (j = 1; j <= o; j++)
                    if (ulo[i] < ohi[j] && olo[j] < uhi[i]) print oname[j]
        }' "$1")
    [ -z "$clash" ] || die "$1: the $remap_user range overlaps the range of: $(echo $clash); give $remap_user a range of its own (every sandbox on Docker runs in it)"
}

# What --userns-remap=default needs: the user and its subordinate ranges.
# dockerd would create them itself, but then it picks the range; here it is
# chosen not to overlap anything, and checked when it is already there.
remap_ids() {
    id "$remap_user" >/dev/null 2>&1 || \
        useradd --system --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin "$remap_user"
    if ! grep -q "^$remap_user:" /etc/subuid 2>/dev/null || ! grep -q "^$remap_user:" /etc/subgid 2>/dev/null; then
        start=$(free_range)
        for file in /etc/subuid /etc/subgid; do
            grep -q "^$remap_user:" "$file" 2>/dev/null || echo "$remap_user:$start:$remap_count" >> "$file"
        done
    fi
    check_overlap /etc/subuid
    check_overlap /etc/subgid
}

start() {
    command -v dockerd >/dev/null 2>&1 || die "dockerd not found: install docker.io (contrib/install.sh --engine docker)"
    if answers; then
        echo "$me: dockerd answers on $socket"
        return 0
    fi
    remap_ids
    if ! pid=$(our_pid); then
        # A pid file naming no dockerd is stale: dockerd would refuse to start.
        rm -f "$pidfile"
        mkdir -p "$(dirname "$log")"
        echo "$me: starting dockerd at $(date -u +%Y-%m-%dT%H:%M:%SZ)" >> "$log"
        # setsid: the daemon outlives this script and its terminal's signals.
        setsid dockerd --userns-remap=default --iptables=false --ip-forward=false --ip-masq=false --bridge=none \
            --host "unix://$socket" --pidfile "$pidfile" --data-root "$data_root" \
            --exec-root "$exec_root" --log-level warn </dev/null >>"$log" 2>&1 9>&- &
        pid=$!
    fi
    started=$(now)
    deadline=$(( started + start_deadline_s ))
    until answers; do
        if ! alive "$pid" && ! our_pid >/dev/null; then
            tail -n 20 "$log" >&2
            die "dockerd exited before its socket answered; the end of $log is above"
        fi
        if [ "$(now)" -ge "$deadline" ]; then
            tail -n 20 "$log" >&2
            die "dockerd's socket $socket did not answer within ${start_deadline_s}s; the end of $log is above"
        fi
        sleep 0.1
    done
    echo "$me: dockerd answers on $socket (pid $(our_pid || echo "$pid"), $(( $(now) - started ))s)"
}

[ "$(id -u)" -eq 0 ] || die "run me as root"
case ${1:-} in
    '') action=start ;;
    --stop) action=stop ;;
    *) die "unknown argument: $1 (usage: $me [--stop])" ;;
esac
[ $# -le 1 ] || die "too many arguments (usage: $me [--stop])"

mkdir -p "$(dirname "$pidfile")"
# One at a time: two callers must not start two daemons on one pid file.
exec 9>>"$pidfile.lock"
flock 9
$action
