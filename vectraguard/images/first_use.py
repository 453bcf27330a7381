"""A profile's package variant, built on the first run that needs it.

A profile with `image.packages` (the shipped `dev`) runs a variant image
named by its recipe's digest (variant.py). When Podman has no such image,
the run builds it first — the same build as `vectraguard image build
--profile NAME`, with its progress on stderr — rather than refusing: the
image is fully determined by the profile and Vectra Guard's recipe, and the
first `run -p dev` should work on a machine that ran the README's set-up.
Runs of profiles without packages never come here (no lookup, no import).

Two runs that find it missing at once build it once: the second waits on a
lock (a file beside the build records) and then finds the image there.
"""

from __future__ import annotations

import fcntl
import sys

from vectraguard.config.resolved import ResolvedProfile
from vectraguard.images import build, record, variant


def ensure_variant(profile: ResolvedProfile, *, quiet: bool, unpack: bool, engine: str = "podman",
                   ahead: str = "") -> None:
    """Build the profile's variant image unless `engine` has it (profile.image_packages must be set).
    `ahead`: the command that builds this very variant ahead of a run (the run's own options that shape
    it: commands/run.py build_ahead), said while building; default `image build --profile NAME`."""
    plan = variant.variant_plan(variant.suite_of(profile.image_base), profile.image_packages)
    if _exists(plan.ref, engine):
        return
    lock_path = record.record_path(f".{plan.record_name}.lock")
    record.private_dirs(lock_path.parent)
    with open(lock_path, "a") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)  # released when the file closes
        except BlockingIOError:
            _say(f"waiting for another run that is building {plan.ref}", quiet)
            fcntl.flock(lock, fcntl.LOCK_EX)
        if _exists(plan.ref, engine):  # another run built it while this one waited
            return
        _say(f"profile {profile.name} runs on {plan.ref} (the default image with {', '.join(plan.extra)}), "
             f"which is not built yet: building it now (`{ahead or 'vectraguard image build --profile ' + profile.name}` "
             "does it ahead)", quiet)
        build.build_image(plan, None, rebuild=False, report=lambda text: _say(text, quiet),
                          show_progress=not quiet, unpack=unpack, engine=engine)


def _exists(ref: str, engine: str) -> bool:
    from vectraguard.runtime import image_stores

    with image_stores.opened(engine, 60) as store:
        return store.existing_id(ref) is not None


def _say(text: str, quiet: bool) -> None:
    if not quiet:
        print(f"vectraguard: {text}", file=sys.stderr, flush=True)
