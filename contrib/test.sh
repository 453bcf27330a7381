#!/bin/sh
# Run the whole test suite, rootful and rootless, against real Podman (and
# Docker Engine, rootful).
# Run as root. Installs what it needs first (contrib/install.sh, a C compiler
# for the test probe, busybox for the test image, fish, zsh and bash-completion
# for the completion tests, catatonit for podman kube play, checkov for the
# Kubernetes manifests, an unprivileged user for the
# rootless tests), so it works on a fresh machine. Idempotent.
set -eu

repo=$(cd "$(dirname "$0")/.." && pwd)
# Docker Engine too: the Docker tests run beside the Podman ones, on a daemon
# that leaves Podman's networks alone (contrib/docker/dockerd.sh).
"$repo/contrib/install.sh" --engine docker
"$repo/contrib/docker/dockerd.sh"

export DEBIAN_FRONTEND=noninteractive
apt-get install -y -qq --no-install-recommends gcc libc6-dev busybox-static tmux fish zsh bash-completion catatonit \
    strace locales >/dev/null  # strace, locales: tests/test_native_client.py

# checkov (setup.cfg's kube-scan extra) in a venv of its own: it pins many packages of its own.
checkov=$(sed -n 's/^[[:space:]]*\(checkov>=[^[:space:]]*\)[[:space:]]*$/\1/p' "$repo/setup.cfg")
[ -x /opt/vectraguard-checkov/bin/python ] || python3 -m venv /opt/vectraguard-checkov
/opt/vectraguard-checkov/bin/pip install -q --disable-pip-version-check "$checkov"

# The rootless tests run the real `vectraguard` as this user.
id vgtest >/dev/null 2>&1 || useradd --create-home --shell /bin/sh vgtest

cd "$repo"
status=0
# The slowest tests are listed at the end, to keep CI well under its time limit.
/opt/vectraguard/bin/python -m pytest --durations=25 "$@" tests || status=$?
if [ "$status" -eq 5 ]; then
    echo "contrib/test.sh: pytest collected no tests: treating that as a failure" >&2
    exit 1
fi
exit "$status"
