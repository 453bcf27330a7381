#!/bin/sh
# Install Vectra Guard and everything it needs on a Debian 12 / Ubuntu 24.04 host.
# Run as root. Idempotent: running it again upgrades Vectra Guard in place.
#
#   - system packages: Podman with runc (works on every cgroup layout), gVisor's
#     runsc (`isolation: gvisor`), bubblewrap (`isolation: lite`), the rootless helpers, tini (the sandbox's init), mmdebstrap (builds images
#     from Debian packages, no registry needed), git (reviewing an overlay
#     workspace asks it what it would read or run, and re-checks new objects);
#   - a subordinate id range for the "containers" user, so that rootful Podman
#     can give every sandbox a user namespace of its own (--userns=auto);
#   - the system user `vectraguard-sandbox`, which owns nothing: a rootful
#     `isolation: lite` sandbox runs as it (vectraguard/lite/support.py);
#   - Vectra Guard itself in a virtual environment at /opt/vectraguard, with
#     the command in /usr/local/bin and its man pages where `man` finds them.
#
# `--engine docker` also installs Docker Engine (Debian's docker.io) and starts
# its daemon with contrib/docker/dockerd.sh (user-namespace remapping on, the
# firewall and Podman's networks left alone); `--engine podman` (the default)
# installs Podman only. Where a Docker daemon already answers without
# userns-remap (e.g. the docker.service of an earlier docker.io install, with
# its default flags), it is left as it is and the install ends with exit
# status 3 and the choice: turning remapping on hides that daemon's existing
# images and containers while it is on. `--docker-userns-remap` makes that
# choice: for systemd's docker.service, "userns-remap": "default" is set in
# /etc/docker/daemon.json and the service restarted (contrib/docker/dockerd.sh).
set -eu

repo=$(cd "$(dirname "$0")/.." && pwd)
prefix=/opt/vectraguard

engine=podman
remap=
while [ $# -gt 0 ]; do
    case $1 in
        --engine) [ $# -ge 2 ] || { echo "contrib/install.sh: --engine needs podman or docker" >&2; exit 2; }
                  engine=$2; shift 2 ;;
        --engine=*) engine=${1#--engine=}; shift ;;
        --docker-userns-remap) remap=--enable-remap; shift ;;
        *) echo "contrib/install.sh: unknown argument: $1 (usage: $0 [--engine podman|docker] [--docker-userns-remap])" >&2
           exit 2 ;;
    esac
done
case $engine in
    podman|docker) ;;
    *) echo "contrib/install.sh: --engine $engine: expected podman or docker" >&2; exit 2 ;;
esac

if [ "$(id -u)" -ne 0 ]; then
    echo "contrib/install.sh: run me as root (e.g. sudo $0)" >&2
    exit 1
fi

export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends \
    podman runc conmon slirp4netns uidmap fuse-overlayfs nftables iproute2 \
    mmdebstrap tini git ca-certificates man-db runsc bubblewrap \
    python3 python3-venv gcc libc6-dev >/dev/null

if [ "$engine" = docker ]; then
    # Debian's packaging would start dockerd with its default flags (which
    # rewrite the firewall and leave user namespaces off): a policy-rc.d that
    # refuses every start (101, "action forbidden") keeps it from starting, for
    # invoke-rc.d and deb-systemd-invoke alike; contrib/docker/dockerd.sh
    # starts it instead. An administrator's own policy-rc.d is left as it is.
    if [ -e /usr/sbin/policy-rc.d ]; then
        apt-get install -y -qq --no-install-recommends docker.io >/dev/null
    else
        printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
        chmod 755 /usr/sbin/policy-rc.d
        trap 'rm -f /usr/sbin/policy-rc.d' EXIT
        apt-get install -y -qq --no-install-recommends docker.io >/dev/null
        rm -f /usr/sbin/policy-rc.d
        trap - EXIT
    fi
fi

for file in /etc/subuid /etc/subgid; do
    grep -q '^containers:' "$file" 2>/dev/null || echo 'containers:2147483647:2147483648' >> "$file"
done

id vectraguard-sandbox >/dev/null 2>&1 || \
    useradd --system --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin vectraguard-sandbox

# Debian's own Python, not whatever `python3` is first on PATH (pyenv,
# conda...): the venv must be usable by every user, rootless ones included.
if ! grep -qx 'home = /usr/bin' "$prefix/pyvenv.cfg" 2>/dev/null; then
    rm -rf "$prefix"
    /usr/bin/python3 -m venv "$prefix"
fi
"$prefix/bin/pip" install -q --disable-pip-version-check "$repo[test]"
# A checkout with an unchanged version number is still new code: reinstall it.
"$prefix/bin/pip" install -q --disable-pip-version-check --no-deps --force-reinstall "$repo"

# The first program of every sandbox (contrib/entry/vectraguard-entry.c):
# static, since it is bind-mounted into images that may have no C library.
mkdir -p "$prefix/libexec"
gcc -static -Os -Wall -Werror -o "$prefix/libexec/vectraguard-entry.new" "$repo/contrib/entry/vectraguard-entry.c"
strip "$prefix/libexec/vectraguard-entry.new"
chmod 755 "$prefix/libexec/vectraguard-entry.new"
mv -f "$prefix/libexec/vectraguard-entry.new" "$prefix/libexec/vectraguard-entry"

# `isolation: lite`: the first program of every sandbox bubblewrap starts
# (contrib/lite/vectraguard-lite-init.c; static for the same reason).
gcc -static -Os -Wall -Werror -o "$prefix/libexec/vectraguard-lite-init.new" "$repo/contrib/lite/vectraguard-lite-init.c"
strip "$prefix/libexec/vectraguard-lite-init.new"
chmod 755 "$prefix/libexec/vectraguard-lite-init.new"
mv -f "$prefix/libexec/vectraguard-lite-init.new" "$prefix/libexec/vectraguard-lite-init"

# `isolation: gvisor`: the OCI runtimes Podman is given, runsc with fixed flags
# (contrib/gvisor/, why: vectraguard/isolation/gvisor.py); root-owned, 0755.
for wrapper in "$repo"/contrib/gvisor/runsc-*; do
    install -m 755 -o root -g root "$wrapper" "$prefix/libexec/$(basename "$wrapper")"
done

# The `vectraguard` command is the native front end (contrib/client/): it
# hands `run` and `check` to the fork server without starting an interpreter,
# and execs pip's Python script, moved to libexec/vectraguard-python, for
# everything else. pip (re)writes bin/vectraguard as the script on every
# install above; an install that did not leaves the binary and the moved
# script as they were.
if [ "$(head -c 2 "$prefix/bin/vectraguard")" = "#!" ]; then
    mv -f "$prefix/bin/vectraguard" "$prefix/libexec/vectraguard-python"
fi
"$repo/contrib/client/build.sh" "$prefix/libexec/vectraguard-python" "$prefix/bin/vectraguard"

ln -sf "$prefix/bin/vectraguard" /usr/local/bin/vectraguard
for page in "$prefix"/share/man/man1/*.1 "$prefix"/share/man/man5/*.5; do
    [ -e "$page" ] || continue
    section=$(basename "$(dirname "$page")")
    mkdir -p "/usr/local/share/man/$section"
    ln -sf "$page" "/usr/local/share/man/$section/"
done
# Shell completion, where each shell looks without configuration (Debian 12):
# bash-completion reads /usr/local/share before /usr/share (XDG_DATA_DIRS'
# default); zsh has /usr/local/share/zsh/site-functions in its $fpath; fish has
# no /usr/local directory in its path, and vendor_completions.d is the one
# meant for software that is not fish's own.
for target in bash:/usr/local/share/bash-completion/completions/vectraguard \
              zsh:/usr/local/share/zsh/site-functions/_vectraguard \
              fish:/usr/share/fish/vendor_completions.d/vectraguard.fish; do
    mkdir -p "$(dirname "${target#*:}")"
    "$prefix/bin/vectraguard" completion "${target%%:*}" > "${target#*:}.new"
    mv -f "${target#*:}.new" "${target#*:}"
done
if [ "$engine" = docker ]; then
    status=0
    "$repo/contrib/docker/dockerd.sh" $remap || status=$?
    if [ "$status" -eq 3 ]; then
        echo "contrib/install.sh: vectraguard installed ($(vectraguard --version)), but runs on this Docker daemon are" \
             "refused until it remaps user namespaces: see above, and README.md, \"Docker instead of Podman\"" >&2
        exit 3
    fi
    [ "$status" -eq 0 ] || exit "$status"
fi
echo "vectraguard installed: $(vectraguard --version)"
