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


def seccomp_path(name: str) -> Path:
    path = data_root() / "profiles" / "seccomp" / f"{name}.json"
    if not path.is_file():
        # Fail closed: Podman would otherwise be asked for a profile it cannot read.
        raise ConfigError(f"vectraguard: seccomp profile {name!r} not found at {path}",
                          hint="reinstall Vectra Guard (see README.md)")
    return path
