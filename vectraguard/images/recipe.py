"""What the default sandbox image is made of. Data, not steps.

A small Debian: minbase plus the tools people reach for in a sandbox. The
network is off by default, so curl and git only matter once a profile
allowlists hosts; they are here so that such a profile needs no other image.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass

from vectraguard.errors import UsageError

LABEL = "io.vectraguard.image"  # every image Vectra Guard builds carries it
LABEL_SUITE = "io.vectraguard.suite"
LABEL_PACKAGES = "io.vectraguard.packages"  # a variant's extra packages, comma-separated
LABEL_RECIPE = "io.vectraguard.recipe"  # a variant's recipe digest
NAME = "default"
REPOSITORY = "localhost/vectraguard/default"
AGENT_REPOSITORY_PREFIX = "localhost/vectraguard/agent-"
DEFAULT_SUITE = "bookworm"

SANDBOX_USER = "sandbox"
SANDBOX_UID = 1000  # the profiles' `security.user: "1000:1000"`
SANDBOX_HOME = "/home/sandbox"
WORKSPACE = "/workspace"
PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

PACKAGES: tuple[str, ...] = (
    "bash", "coreutils", "ca-certificates", "curl", "git", "python3",
    "procps", "less", "file", "xz-utils", "unzip",
)

# Manuals, docs and translations are a large share of a small rootfs and
# nobody reads them inside a throw-away sandbox. Licences stay.
DPKG_OPTIONS: tuple[str, ...] = (
    "path-exclude=/usr/share/man/*",
    "path-exclude=/usr/share/info/*",
    "path-exclude=/usr/share/locale/*",
    "path-include=/usr/share/locale/locale.alias",
    "path-exclude=/usr/share/doc/*",
    "path-include=/usr/share/doc/*/copyright",
)
APT_OPTIONS: tuple[str, ...] = ('Acquire::Languages "none"',)

# Run by mmdebstrap with the finished rootfs at "$1". Setup first, then what
# a plan installs (agents' npm and pip packages), then the cleanup.
SETUP_HOOKS: tuple[str, ...] = (
    f'chroot "$1" useradd --uid {SANDBOX_UID} --user-group --create-home '
    f'--home-dir {SANDBOX_HOME} --shell /bin/bash {SANDBOX_USER}',
    f'install -d -o {SANDBOX_UID} -g {SANDBOX_UID} -m 0755 "$1{WORKSPACE}"',
)
# mmdebstrap copies the host's resolv.conf and hostname in for apt; they
# must not travel into the image (Podman provides its own at run time).
CLEANUP_HOOKS: tuple[str, ...] = (
    ': > "$1/etc/resolv.conf"; echo sandbox > "$1/etc/hostname"',
)

# npm and pip inside the chroot verify TLS against the host's CA bundle,
# which knows any CA the host's network needs (a TLS-inspecting proxy);
# the copy is removed before the image is made.
HOST_CA_BUNDLE = "/etc/ssl/certs/ca-certificates.crt"
BUILD_CA = "/tmp/vectraguard-build-ca.crt"
AGENT_VENV = "/opt/agent"


@dataclass(frozen=True)
class ImagePlan:
    """One image `image build` can make: what goes in, and where it is tagged."""

    kind: str  # the io.vectraguard.image label, and the build record's name
    ref: str
    suite: str
    packages: tuple[str, ...]
    hooks: tuple[str, ...]  # mmdebstrap customize hooks, in order
    extra: tuple[str, ...] = ()  # a variant's packages beyond the default ones (variant.py)
    recipe_digest: str = ""  # a variant's name: SHA-256 of its recipe (variant.py)

    @property
    def record_name(self) -> str:
        """The build record's file name (record.py): one per variant, as one per agent."""
        return f"{self.kind}-{self.recipe_digest[:16]}" if self.recipe_digest else self.kind


def default_plan(suite: str) -> ImagePlan:
    suite = checked_suite(suite)
    return ImagePlan(NAME, image_ref(suite), suite, PACKAGES, SETUP_HOOKS + CLEANUP_HOOKS)


def agent_plan(agent_name: str, ref: str, suite: str, debian: tuple[str, ...], npm: tuple[str, ...],
               pip: tuple[str, ...]) -> ImagePlan:
    """The default image plus an agent's packages, tagged as its profile's `image`.
    Package names were checked against the profile schema; they are quoted anyway."""
    suite = checked_suite(suite)
    if not ref.startswith(f"{AGENT_REPOSITORY_PREFIX}"):
        raise UsageError(f"vectraguard: agent {agent_name!r} uses image {ref}, which Vectra Guard does not build",
                         hint=f"only images named {AGENT_REPOSITORY_PREFIX}NAME:SUITE are built; "
                         "set the profile's `image` to one, or load the image into Podman yourself")
    hooks: list[str] = []
    if npm or pip:
        hooks.append(f'if [ -r {HOST_CA_BUNDLE} ]; then cp {HOST_CA_BUNDLE} "$1{BUILD_CA}"; '
                     f'else cp "$1{HOST_CA_BUNDLE}" "$1{BUILD_CA}"; fi')
    if npm:
        hooks.append(f'chroot "$1" env HOME=/root NODE_EXTRA_CA_CERTS={BUILD_CA} npm install --global --no-fund '
                     f'--no-audit --no-update-notifier {" ".join(map(shlex.quote, npm))}')
        hooks.append('rm -rf "$1/root/.npm"')
    if pip:
        hooks.append(f'chroot "$1" python3 -m venv {AGENT_VENV}')
        hooks.append(f'chroot "$1" env HOME=/root PIP_CERT={BUILD_CA} {AGENT_VENV}/bin/pip install --no-cache-dir '
                     f'--disable-pip-version-check {" ".join(map(shlex.quote, pip))}')
        # The packages' programs on the sandbox's PATH; the venv's own tools stay out.
        hooks.append(f'for f in "$1"{AGENT_VENV}/bin/*; do n=${{f##*/}}; case "$n" in '
                     f'python*|pip*|activate*|Activate*|deactivate) ;; '
                     f'*) ln -sf "{AGENT_VENV}/bin/$n" "$1/usr/local/bin/$n" ;; esac; done')
    if npm or pip:
        hooks.append(f'rm -f "$1{BUILD_CA}"')
    packages = PACKAGES + tuple(p for p in debian if p not in PACKAGES)
    return ImagePlan(f"agent-{agent_name}", ref, suite, packages, SETUP_HOOKS + tuple(hooks) + CLEANUP_HOOKS)


_SUITE = re.compile(r"[a-z][a-z0-9.-]{0,31}")
_MIRROR = re.compile(r"(https?|file)://[^\s,'\"]+")


def image_ref(suite: str) -> str:
    return f"{REPOSITORY}:{suite}"


def image_changes(plan: ImagePlan) -> list[str]:
    """Dockerfile-style instructions applied on import (`podman import --change`)."""
    return [
        'CMD ["/bin/bash"]',
        f"USER {SANDBOX_UID}:{SANDBOX_UID}",
        f"WORKDIR {WORKSPACE}",
        f"ENV PATH={PATH}",
        "ENV LANG=C.UTF-8",
        f"LABEL {LABEL}={plan.kind}",
        f"LABEL {LABEL_SUITE}={plan.suite}",
        *([f"LABEL {LABEL_PACKAGES}={','.join(plan.extra)}"] if plan.extra else []),
        *([f"LABEL {LABEL_RECIPE}={plan.recipe_digest}"] if plan.recipe_digest else []),
    ]


def checked_suite(suite: str) -> str:
    # The suite becomes an image tag and an mmdebstrap argument: a value
    # starting with "-" would be read as an option.
    if not _SUITE.fullmatch(suite):
        raise UsageError(f"vectraguard: --suite {suite!r} is not a Debian suite name",
                         hint="use a codename such as bookworm or trixie")
    return suite


def checked_mirror(mirror: str | None) -> str | None:
    if mirror is not None and not _MIRROR.fullmatch(mirror):
        raise UsageError(f"vectraguard: --mirror {mirror!r} is not a mirror URL",
                         hint="e.g. --mirror http://deb.debian.org/debian")
    return mirror
