"""What the default sandbox image is made of. Data, not steps.

A small Debian: minbase plus the tools people reach for in a sandbox. The
network is off by default, so curl and git only matter once a profile
allowlists hosts; they are here so that such a profile needs no other image.
"""

from __future__ import annotations

import re

from vectraguard.errors import UsageError

LABEL = "io.vectraguard.image"  # every image Vectra Guard builds carries it
LABEL_SUITE = "io.vectraguard.suite"
NAME = "default"
REPOSITORY = "localhost/vectraguard/default"
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

# Run by mmdebstrap inside the finished rootfs ("$1"), before its cleanup.
# mmdebstrap copies the host's resolv.conf and hostname in for apt; they
# must not travel into the image (Podman provides its own at run time).
CUSTOMIZE_HOOKS: tuple[str, ...] = (
    f'chroot "$1" useradd --uid {SANDBOX_UID} --user-group --create-home '
    f'--home-dir {SANDBOX_HOME} --shell /bin/bash {SANDBOX_USER}',
    f'install -d -o {SANDBOX_UID} -g {SANDBOX_UID} -m 0755 "$1{WORKSPACE}"',
    ': > "$1/etc/resolv.conf"; echo sandbox > "$1/etc/hostname"',
)

_SUITE = re.compile(r"[a-z][a-z0-9.-]{0,31}")
_MIRROR = re.compile(r"(https?|file)://[^\s,'\"]+")


def image_ref(suite: str) -> str:
    return f"{REPOSITORY}:{suite}"


def image_changes(suite: str) -> list[str]:
    """Dockerfile-style instructions applied on import (`podman import --change`)."""
    return [
        'CMD ["/bin/bash"]',
        f"USER {SANDBOX_UID}:{SANDBOX_UID}",
        f"WORKDIR {WORKSPACE}",
        f"ENV PATH={PATH}",
        "ENV LANG=C.UTF-8",
        f"LABEL {LABEL}={NAME}",
        f"LABEL {LABEL_SUITE}={suite}",
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
