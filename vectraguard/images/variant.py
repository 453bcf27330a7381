"""A variant of the default image with extra Debian packages (a profile's `image.packages`).

The variant is built exactly as the default image is (recipe.py, mmdebstrap),
with the extra packages added to mmdebstrap's `--include` list. It is named
by the SHA-256 of its recipe — suite, every package, the dpkg and apt
options, the hooks and the image config — so a package list and the
default recipe select exactly one image: the same inputs find the image
already built, any change to either names a new one (and builds it).

Pure: no I/O, cheap to import (a run of a profile with packages resolves
its image name here).
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable

from vectraguard.images import recipe

REPOSITORY = "localhost/vectraguard/variant"
KIND = "variant"
MAX_PACKAGES = 128
RECIPE_VERSION = 1  # bump when the recipe's meaning changes without its data changing

# Debian policy §5.6.1: lower case letters, digits, + - and ., at least two
# characters, starting with an alphanumeric. Nothing else can reach
# mmdebstrap's argv: no option, no comma (its list separator), no space.
_PACKAGE = re.compile(r"[a-z0-9][a-z0-9+.-]+")
_DEFAULT_REF = re.compile(re.escape(recipe.REPOSITORY) + r":([a-z][a-z0-9.-]{0,31})")


def checked_packages(names: Iterable[object]) -> tuple[str, ...]:
    """The package names sorted and deduplicated; ValueError naming the first bad one."""
    result = set()
    for name in names:
        if not isinstance(name, str) or len(name) > 100 or not _PACKAGE.fullmatch(name):
            raise ValueError(f"{name!r} is not a Debian package name (lower-case letters, digits, + - and ., "
                             "at least two characters, starting with a letter or digit)")
        result.add(name)
    if len(result) > MAX_PACKAGES:
        raise ValueError(f"{len(result)} packages: at most {MAX_PACKAGES}")
    return tuple(sorted(result))


def suite_of(base_ref: str) -> str:
    """The Debian suite of the default image `base_ref` names; ValueError for any other image."""
    match = _DEFAULT_REF.fullmatch(base_ref)
    if match is None:
        raise ValueError(f"packages can only be added to Vectra Guard's default image ({recipe.REPOSITORY}:SUITE), "
                         f"not {base_ref}")
    return match.group(1)


def variant_plan(suite: str, packages: tuple[str, ...]) -> recipe.ImagePlan:
    """The default image's plan plus `packages` (already checked), tagged by its recipe digest."""
    base = recipe.default_plan(suite)
    extra = tuple(p for p in packages if p not in base.packages)
    plan = recipe.ImagePlan(KIND, "", suite, base.packages + extra, base.hooks, extra=packages)
    digest = recipe_digest(plan)
    return recipe.ImagePlan(KIND, variant_ref(suite, digest), suite, plan.packages, plan.hooks,
                            extra=packages, recipe_digest=digest)


def variant_ref(suite: str, digest: str) -> str:
    return f"{REPOSITORY}:{suite}-{digest[:16]}"


def ref_for(base_ref: str, packages: tuple[str, ...]) -> str:
    """The image a profile with `image.ref` = base_ref and `image.packages` runs."""
    return variant_plan(suite_of(base_ref), packages).ref


def recipe_digest(plan: recipe.ImagePlan) -> str:
    """SHA-256 (hex) of everything that decides the image's content and config (not the mirror)."""
    canonical = {
        "version": RECIPE_VERSION, "suite": plan.suite, "packages": sorted(plan.packages),
        "extra": list(plan.extra), "dpkg": list(recipe.DPKG_OPTIONS), "apt": list(recipe.APT_OPTIONS),
        "hooks": list(plan.hooks), "config": recipe.image_changes(plan),
    }
    return hashlib.sha256(json.dumps(canonical, sort_keys=True).encode()).hexdigest()
