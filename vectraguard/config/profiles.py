"""Selecting a profile by name and flattening its `extends` chain.

A profile NAME may be defined in several places, lowest first: shipped
(`profiles/NAME.yaml`), system (`/etc/vectraguard/profiles.d/NAME.yaml`) and
user (`$XDG_CONFIG_HOME/vectraguard/profiles.d/NAME.yaml`); the files of one
name merge in that order, on top of the profile they extend. Project files
and the system policy's ceilings plug in here (DESIGN §2) without changing
the merge or the resolved model.
"""

from __future__ import annotations

import re
from pathlib import Path

from vectraguard import paths, resources
from vectraguard.config import merge, resolved
from vectraguard.config.layers import Layer, load_file
from vectraguard.errors import ConfigError

MAX_EXTENDS_DEPTH = 16
_NAME = re.compile(r"[a-z0-9][a-z0-9_.-]{0,63}")


def search_dirs() -> list[Path]:
    """Where profile files are looked for, lowest precedence first."""
    return [resources.profiles_dir(), paths.system_dir() / "profiles.d", paths.config_dir() / "profiles.d"]


def available() -> list[str]:
    return sorted({p.stem for d in search_dirs() for p in d.glob("*.yaml")})


def profile_files(name: str) -> list[Path]:
    if not _NAME.fullmatch(name):
        raise ConfigError(
            f"vectraguard: {name!r} is not a valid profile name",
            hint="profile names are lowercase letters, digits, '.', '_' and '-'",
        )
    return [path for d in search_dirs() if (path := d / f"{name}.yaml").is_file()]


def chain(name: str) -> list[Layer]:
    """The layers of a profile and of its ancestors, root first."""
    layers: list[Layer] = []
    seen: list[str] = []
    current: str | None = name
    while current is not None:
        if current in seen:
            raise ConfigError(
                f"vectraguard: profile {name!r} extends itself in a cycle",
                details=[" -> ".join([*seen, current])],
            )
        if len(seen) >= MAX_EXTENDS_DEPTH:
            raise ConfigError(f"vectraguard: profile {name!r} has more than {MAX_EXTENDS_DEPTH} levels of extends")
        files = profile_files(current)
        if not files:
            child = f" (extended by profile {seen[-1]!r})" if seen else ""
            raise ConfigError(
                f"vectraguard: unknown profile {current!r}{child}",
                hint=f"available profiles: {', '.join(available())}",
            )
        seen.append(current)
        own = [load_file(path, "profile") for path in files]
        layers[:0] = own
        # The highest file that names a parent decides it.
        current = next((layer.data["extends"] for layer in reversed(own) if "extends" in layer.data), None)
    return layers


def resolve(name: str, overrides: list[Layer]) -> resolved.ResolvedProfile:
    merged = merge.merge([*chain(name), *overrides])
    return resolved.build(name, merged)
