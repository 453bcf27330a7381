#!/bin/sh
# Start Docker Engine's daemon the way Vectra Guard needs it, on hosts without
# systemd (and for the test suite). Run as root. Idempotent: when the socket
# already answers, nothing is started.
#
#   contrib/docker/dockerd.sh          start it (if its socket does not answer) and
#                                      wait until GET /_ping answers
#   contrib/docker/dockerd.sh --stop   stop the dockerd this script started (its
#                                      pid file), and nothing else
#   contrib/docker/dockerd.sh --enable-remap
#                                      as the first, and when the daemon that answers
#                                      is systemd's docker.service without
#                                      userns-remap: turn it on (below)
#
# A daemon that already answers is not replaced. One without userns-remap
# (e.g. the docker.service Debian's docker.io enables, with default flags) is
# reported with exit status 3: Vectra Guard refuses runs on it. Turning
# remapping on is not done silently: Docker keeps a remapped daemon's images
# and containers apart (under <data-root>/UID.GID), so the daemon's existing
# images and containers are no longer shown (nor removed) while it is on.
# With --enable-remap, and only for systemd's docker.service, this script
# sets "userns-remap": "default" in /etc/docker/daemon.json (the file's
# earlier version kept as daemon.json.before-vectraguard) and restarts the
# service; removing the key and restarting brings the old images back.
# On a systemd host with Debian's docker.service (and the default socket),
# that service is started, not a dockerd of this script's: it is enabled, so
# it would come back at the next boot in place of ours. It gets remapping the
# same way, without asking when it has no images yet, and keeps Docker's
# own network defaults (its bridge and firewall rules), which are its
# administrator's to change in daemon.json.
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
# VECTRAGUARD_DOCKERD_SOCKET, _PIDFILE, _DATA_ROOT, _EXEC_ROOT, _LOG and _CONFIG; the
# defaults are the ones the design and the tests use. VECTRAGUARD_DOCKERD_BIP=ADDR/LEN
# gives that daemon Docker's default bridge (docker0) with this address instead of
# --bridge=none, still without firewall rules, forwarding or masquerading: a
# network `full` sandbox then reaches the host's side of the bridge and nothing
# beyond it (tests/test_network_docker.py).
set -eu

socket=${VECTRAGUARD_DOCKERD_SOCKET:-/run/docker.sock}
pidfile=${VECTRAGUARD_DOCKERD_PIDFILE:-/run/vectraguard-dockerd.pid}
data_root=${VECTRAGUARD_DOCKERD_DATA_ROOT:-/var/lib/docker}
exec_root=${VECTRAGUARD_DOCKERD_EXEC_ROOT:-/run/docker}
log=${VECTRAGUARD_DOCKERD_LOG:-/var/log/vectraguard-dockerd.log}
config=${VECTRAGUARD_DOCKERD_CONFIG:-/etc/docker/daemon.json}
bridge=--bridge=none
if [ -n "${VECTRAGUARD_DOCKERD_BIP:-}" ]; then
    bridge=--bip=$VECTRAGUARD_DOCKERD_BIP
fi
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

# Whether the daemon that answers gives containers a user namespace: userns-remap
# (SecurityOptions "name=userns") or a rootless daemon ("name=rootless").
remaps() {
    docker --host "unix://$socket" info --format '{{json .SecurityOptions}}' 2>/dev/null |
        grep -q -e 'name=userns' -e 'name=rootless'
}

# Remapping is not on, and turning it on would hide existing images and
# containers: said, with the choice, and exit 3 (see the top of this file).
refuse_remap() {
    echo "$me: $1: Vectra Guard refuses runs on it (the sandbox's uids would be the host's own)." >&2
    echo "$me: turning userns-remap on hides this daemon's existing images and containers while it is on" \
         "(Docker keeps them apart per remapping), so it is not done without asking:" >&2
    echo "$me: rerun with --enable-remap (contrib/install.sh --engine docker --docker-userns-remap)" \
         "for systemd's docker.service, or start dockerd with --userns-remap=default yourself" >&2
    exit 3
}

# Whether systemd runs this host and knows Debian's docker.service.
systemd_docker() {
    [ -d /run/systemd/system ] && systemctl cat docker.service >/dev/null 2>&1
}

# "userns-remap": "default" in $config (its earlier version kept), then
# docker.service (re)started and checked.
systemd_remap() {
    remap_ids
    mkdir -p "$(dirname "$config")"
    [ ! -e "$config" ] || cp -p "$config" "$config.before-vectraguard"
    python3 -c 'import json, sys
path = sys.argv[1]
try:
    with open(path) as f:
        settings = json.load(f)
except FileNotFoundError:
    settings = {}
settings["userns-remap"] = "default"
with open(path + ".new", "w") as f:
    f.write(json.dumps(settings, indent=2) + "\n")' "$config" || die "$config cannot be read as JSON: fix it, then run me again"
    mv -f "$config.new" "$config"
    systemctl restart docker.service
    deadline=$(( $(now) + start_deadline_s ))
    until answers; do
        [ "$(now)" -lt "$deadline" ] || die "docker.service did not answer within ${start_deadline_s}s (journalctl -u docker)"
        sleep 0.1
    done
    remaps || die "docker.service answers, still without userns-remap: see $config and journalctl -u docker"
    echo "$me: docker.service runs with userns-remap=default (set in $config; images and containers it had" \
         "before are hidden while it is on: remove the key and restart docker.service to see them again)"
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
        if ! remaps; then
            [ "$enable_remap" = 1 ] || refuse_remap "dockerd answers on $socket, but without userns-remap"
            systemd_docker && systemctl is-active --quiet docker.service ||
                die "the dockerd on $socket is not systemd's docker.service: restart it with --userns-remap=default yourself"
            systemd_remap
            return 0
        fi
        echo "$me: dockerd answers on $socket"
        return 0
    fi
    if [ "$socket" = /run/docker.sock ] && systemd_docker; then
        # The package's own service, so that the daemon comes back with remapping
        # after a reboot too (it is enabled; a dockerd of this script's would not be).
        if [ -n "$(ls -A "$data_root/image" 2>/dev/null)" ] && [ "$enable_remap" != 1 ]; then
            refuse_remap "docker.service is stopped and has images in $data_root"
        fi
        systemd_remap
        return 0
    fi
    remap_ids
    if ! pid=$(our_pid); then
        # A pid file naming no dockerd is stale: dockerd would refuse to start.
        rm -f "$pidfile"
        mkdir -p "$(dirname "$log")"
        echo "$me: starting dockerd at $(date -u +%Y-%m-%dT%H:%M:%SZ)" >> "$log"
        # setsid: the daemon outlives this script and its terminal's signals.
        setsid dockerd --userns-remap=default --iptables=false --ip-forward=false --ip-masq=false "$bridge" \
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
enable_remap=0
case ${1:-} in
    '') action=start ;;
    --enable-remap) action=start; enable_remap=1 ;;
    --stop) action=stop ;;
    *) die "unknown argument: $1 (usage: $me [--stop | --enable-remap])" ;;
esac
[ $# -le 1 ] || die "too many arguments (usage: $me [--stop | --enable-remap])"

mkdir -p "$(dirname "$pidfile")"
# One at a time: two callers must not start two daemons on one pid file.
exec 9>>"$pidfile.lock"
flock 9
$action
