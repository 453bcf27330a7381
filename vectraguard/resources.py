"""Where shipped data lives: profiles, schemas, the seccomp profile.

In a source checkout they sit at the top of the repository; once installed
they are under `<sys.prefix>/share/vectraguard` (see setup.cfg data_files).
The checkout wins so that tests always see the files they are next to.
"""

from __future__ import annotations

import sys
from functools import cache
from pathlib import Path

from vectraguard.errors import ConfigError


@cache
def data_root() -> Path:
    checkout = Path(__file__).resolve().parent.parent
    installed = Path(sys.prefix) / "share" / "vectraguard"
    for candidate in (checkout, installed):
        if (candidate / "profiles").is_dir() and (candidate / "schemas").is_dir():
            return candidate
    raise ConfigError(
        "vectraguard: shipped profiles and schemas not found",
        details=[f"looked in {checkout} and {installed}"],
        hint="reinstall Vectra Guard (see README.md)",
    )


def profiles_dir() -> Path:
    return data_root() / "profiles"


def schema_path(name: str) -> Path:
    return data_root() / "schemas" / f"{name}.schema.json"


def seccomp_path(name: str, *, noexec: bool) -> Path:
    """The shipped seccomp profile `name`: profiles/seccomp/NAME.json, or
    NAME-noexec.json when `noexec` (filesystem.noexec_tmpfs).

    The -noexec variant also refuses memfd_create, the way to execute a file
    that no noexec mount governs (contrib/seccomp/generate_strict.py). It is
    chosen here, from the setting itself and with no default, so that no
    profile and no caller can have noexec mounts without it.
    Raises ConfigError when the file is missing.
    """
    file = f"{name}-noexec.json" if noexec else f"{name}.json"
    path = data_root() / "profiles" / "seccomp" / file
    if not path.is_file():
        # Fail closed: Podman would otherwise be asked for a profile it cannot read.
        raise ConfigError(f"vectraguard: seccomp profile {file!r} not found at {path}",
                          hint="reinstall Vectra Guard (see README.md)")
    return path
