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
from typing import Any

from vectraguard import paths, resources
from vectraguard.config import merge, project, resolved
from vectraguard.config.layers import Layer, load_file
from vectraguard.errors import ConfigError
from vectraguard.records import record

MAX_EXTENDS_DEPTH = 16
IMPLICIT_PARENT = "default"
_NAME = re.compile(r"[a-z0-9][a-z0-9_.-]{0,63}")


@record
class Sources:
    """Where profiles come from for one invocation. The project file, when
    given, has already passed the trust check (see config/project.py)."""

    project: Layer | None = None

    @classmethod
    def for_directory(cls, cwd: str, *, ignore_project: bool) -> Sources:
        """The sources for a run from `cwd`: with its project file, if there is
        one, it is trusted, and it is not ignored (an untrusted one refuses)."""
        if ignore_project:
            return cls()
        found = project.find(cwd)
        return cls(project.load_trusted(found) if found else None)

    def directories(self) -> list[Path]:
        """Directories of profile files: shipped, system, user — lowest precedence first."""
        return [resources.profiles_dir(), paths.system_dir() / "profiles.d", paths.config_dir() / "profiles.d"]

    def fragment_directories(self) -> list[Path]:
        return [resources.profiles_dir() / "fragments", paths.system_dir() / "fragments",
                paths.config_dir() / "fragments"]

    def project_profiles(self) -> dict[str, Any]:
        return dict(self.project.data.get("profiles", {})) if self.project else {}

    def default_name(self) -> str:
        return str(self.project.data.get("default_profile", "default")) if self.project else "default"


def available(sources: Sources) -> dict[str, list[str]]:
    """Every profile name, with the files that define it, lowest first."""
    found: dict[str, list[str]] = {}
    for directory in sources.directories():
        for path in sorted(directory.glob("*.yaml")):
            found.setdefault(path.stem, []).append(str(path))
    for name in sources.project_profiles():
        assert sources.project is not None
        found.setdefault(name, []).append(sources.project.source)
    return dict(sorted(found.items()))


def check_name(name: str) -> None:
    if not _NAME.fullmatch(name):
        # Only a refused name pays for the import.
        from vectraguard.usage_hints import profile_name_hint

        raise ConfigError(
            f"vectraguard: {name!r} is not a valid profile name",
            hint=profile_name_hint(name) or "profile names are lowercase letters, digits, '.', '_' and '-'",
        )


def layers_of(name: str, sources: Sources) -> list[Layer]:
    """The layers that define profile NAME itself (not its parents), lowest first."""
    try:
        check_name(name)
    except ConfigError as exc:  # `-p Dev`: names are lowercase, and a close one is likely what was meant
        from vectraguard.suggest import did_you_mean

        exc.message += did_you_mean(name.lower(), available(sources))
        raise
    layers = [load_file(path, "profile") for directory in sources.directories()
              if _looked_for_file(path := directory / f"{name}.yaml")]
    if name in sources.project_profiles():
        assert sources.project is not None
        layers.append(sources.project.section(f"profiles.{name}"))
    return layers


def chain(name: str, sources: Sources) -> list[Layer]:
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
        own = layers_of(current, sources)
        if not own:
            from vectraguard.suggest import did_you_mean

            child = f" (extended by profile {seen[-1]!r})" if seen else ""
            names = available(sources)
            raise ConfigError(
                f"vectraguard: unknown profile {current!r}{child}{did_you_mean(current, names)}",
                hint=f"available profiles: {', '.join(names)}",
            )
        seen.append(current)
        layers[:0] = with_fragments(own, sources)
        # The highest layer that names a parent decides it; without one, a
        # profile builds on `default`, which holds every default value.
        current = next((layer.data["extends"] for layer in reversed(own) if "extends" in layer.data),
                       None if current == IMPLICIT_PARENT else IMPLICIT_PARENT)
    return layers


def with_fragments(own: list[Layer], sources: Sources) -> list[Layer]:
    """Each layer preceded by the fragments it includes: an include merges at
    the precedence of the layer that names it — above the layers below it,
    below the layers above it. (A user layer that only says
    `include: [allow-best-effort-limits]` therefore wins over the shipped
    profile, as the user meant; it cannot take back what a lower layer
    included, only override its values.)

    A fragment's `network.allow` adds to the allowlist instead of replacing
    it, and after the including layer's own list, so that
    `include: [allow-pypi, allow-npm]` allows both, next to whatever the
    profile itself allows. Everywhere else an allowlist replaces."""
    layers: list[Layer] = []
    for layer in own:
        fragments = [split_additions(fragment) for fragment in fragments_of(layer, sources)]
        layers += [*(values for values, _ in fragments), layer, *(added for _, added in fragments if added)]
    return layers


ADDITIVE_KEYS = ("network.allow",)


def split_additions(fragment: Layer) -> tuple[Layer, Layer | None]:
    """A fragment as (its values, a layer appending its ADDITIVE_KEYS lists)."""
    appends = [(path, values) for path in ADDITIVE_KEYS if (values := _list_at(fragment.data, path)) is not None]
    if not appends:
        return fragment, None  # most fragments (risk-rules, the largest, among them): nothing to copy
    data = merge.copy_data(fragment.data)
    for path, _ in appends:
        *parents, leaf = path.split(".")
        node: Any = data
        for part in parents:
            node = node[part]
        del node[leaf]
    return Layer(fragment.source, data, fragment.lines), Layer(fragment.source, {}, fragment.lines, tuple(appends))


def _list_at(data: dict[str, Any], path: str) -> tuple[Any, ...] | None:
    """The list at dotted `path` in `data` as a tuple; None if it or a section on the way is missing."""
    *parents, leaf = path.split(".")
    node: Any = data
    for part in parents:
        node = node.get(part) if isinstance(node, dict) else None
    return tuple(node[leaf]) if isinstance(node, dict) and leaf in node else None


def fragments_of(layer: Layer, sources: Sources) -> list[Layer]:
    """The fragments one layer includes, in order, each once; a fragment
    defined in several places merges shipped < system < user."""
    found_layers: list[Layer] = []
    for name in dict.fromkeys(layer.data.get("include", [])):
        check_name(name)
        found = [load_file(path, "profile") for directory in sources.fragment_directories()
                 if _looked_for_file(path := directory / f"{name}.yaml")]
        if not found:
            known = sorted({path.stem for directory in sources.fragment_directories()
                            for path in directory.glob("*.yaml")})
            raise ConfigError(f"vectraguard: unknown fragment {name!r} (included by {layer.source})",
                              hint=f"available fragments: {', '.join(known)} "
                              f"(in {', '.join(map(str, sources.fragment_directories()))})")
        for fragment in found:
            if "extends" in fragment.data or "include" in fragment.data:
                raise ConfigError(f"vectraguard: {fragment.source}: a fragment may not use extends or include")
        found_layers += found
    return found_layers


# The chain a resolution last read, with the name and the Sources object it
# was read for: a run resolves its profile twice — with its command line's
# values, then (approvals/decision_key.py) without them — and the second
# reads the same files again (~6 ms). Reused only for that very Sources
# object, so the second resolution judges the very layers the first ran.
_last_chain: tuple[str, Sources, list[Layer], list[Path]] | None = None


# While a resolution that may be kept runs: every profile and fragment file
# it looked for, found or not (config/resolved_cache.py checks them on use).
_looked_for: list[Path] | None = None


def _looked_for_file(path: Path) -> bool:
    if _looked_for is not None:
        _looked_for.append(path)
    return path.is_file()


def resolve(name: str, overrides: list[Layer], sources: Sources | None = None) -> resolved.ResolvedProfile:
    """Profile `name` with `overrides` (the command line's layers) on top;
    from the cache of resolved profiles when nothing it rests on changed."""
    global _last_chain, _looked_for
    from vectraguard.config import resolved_cache

    sources = sources or Sources()
    looked: list[Path] | None = None
    if _last_chain is not None and _last_chain[0] == name and _last_chain[1] is sources:
        layers, looked = _last_chain[2], _last_chain[3]
    else:
        cached = resolved_cache.lookup(name, overrides, sources)
        if cached is not None:
            return cached
        _looked_for = looked = []
        try:
            layers = chain(name, sources)
        finally:
            _looked_for = None
        _last_chain = (name, sources, layers, looked)
    merged = merge.merge([*layers, *overrides])
    profile = resolved.build(name, merged)
    if looked is not None:
        resolved_cache.store(name, overrides, sources, looked, merged, profile)
    return profile
