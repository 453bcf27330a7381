"""`vectraguard image build`: an image from Debian packages (the default one, or an agent's), no registry.

Sequence: look the image up (skip unless --rebuild), mmdebstrap a rootfs
tar into a private temporary directory, stream it into Podman with the
image config, drop the image it replaced, write the build record, unpack
the image for isolation lite (unpacked.py; also when the build is skipped,
if it is not unpacked yet) and drop the replaced image's tree. The
temporary directories go away on every exit path, Ctrl-C included.
"""

from __future__ import annotations

import signal
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from types import FrameType
from typing import TYPE_CHECKING

from vectraguard.images import (
    progress,
    recipe,
    record,
    rootfs,
    scratch,
    unpacked,
)

if TYPE_CHECKING:
    from vectraguard.runtime.image_stores import ImageStore

IMPORT_TIMEOUT_S = 600.0  # a few hundred MB through the socket; seconds in practice
Report = Callable[[str], None]


@dataclass(frozen=True)
class BuildResult:
    ref: str
    id: str  # "sha256:<hex>"
    skipped: bool


def build_image(plan: recipe.ImagePlan, mirror: str | None, *, rebuild: bool, report: Report,
                echo: bool = False, verbose: bool = False, show_progress: bool = False,
                unpack: bool = True, engine: str = "podman") -> BuildResult:
    """Build `plan` unless its image exists (or `rebuild`). `show_progress`: a progress
    display on stderr (progress.py) while mmdebstrap works; `unpack`: also the tree
    for isolation lite (a run's first-use build skips it unless the run is lite);
    `engine`: whose image storage it goes to (runtime/image_stores.py)."""
    from vectraguard.runtime import image_stores

    mirror = recipe.checked_mirror(mirror)
    ref = plan.ref
    with image_stores.opened(engine, IMPORT_TIMEOUT_S) as store:
        previous = store.existing_id(ref)
        if previous and not rebuild:
            report(f"{ref} already exists ({previous}); skipping the build (--rebuild builds it again)")
            if unpack:
                store.unpack(ref, report)
            return BuildResult(ref, previous, skipped=True)
        rootfs.require_mmdebstrap()
        started = time.monotonic()
        image_id = _build_and_import(store, plan, mirror, report=report, echo=echo, verbose=verbose,
                                     show_progress=show_progress and not echo)
        if previous and previous != image_id and store.remove_if_unused(previous):
            report(f"removed the image it replaces ({previous})")
        # Each engine's build has its own record: the same tar gets another ID in each store.
        record.write_record(plan.record_name if store.engine == "podman" else f"{plan.record_name}-{store.engine}",
                            record.BuildRecord(
            ref=ref, id=image_id, built_at=datetime.now(UTC).isoformat(timespec="seconds"),
            suite=plan.suite, mirror=mirror, packages=list(plan.packages),
            recipe=plan.recipe_digest or None, extra=list(plan.extra),
        ))
        if unpack:
            store.unpack(ref, report)
    if previous and previous != image_id and unpacked.discard_unreferenced(previous):
        report(f"removed the unpacked tree of the image it replaces ({previous})")
    report(f"done: {ref} {image_id} ({_since(started)} in all)")
    return BuildResult(ref, image_id, skipped=False)


def _build_and_import(store: ImageStore, plan: recipe.ImagePlan, mirror: str | None, *,
                      report: Report, echo: bool, verbose: bool, show_progress: bool) -> str:
    with _termination_interrupts(), scratch.build_dirs(rootless=rootfs.needs_unshare()) as dirs:
        phase = time.monotonic()
        report(f"building rootfs of Debian {plan.suite} with mmdebstrap{_what(plan)}…")
        display = progress.Display() if show_progress else None
        try:
            rootfs.build_rootfs(plan, mirror, dirs.tarball, tmpdir=dirs.mmdebstrap_tmp, echo=echo, verbose=verbose,
                                on_line=display.feed if display is not None else None)
        finally:
            if display is not None:
                display.close()
        report(f"rootfs built in {_since(phase)} ({dirs.tarball.stat().st_size / (1 << 20):.0f} MiB)")
        phase = time.monotonic()
        report(f"importing into {'Docker Engine' if store.engine == 'docker' else 'Podman'}…")
        image_id = store.import_rootfs(dirs.tarball, plan.ref, recipe.image_changes(plan))
        report(f"imported in {_since(phase)}")
    return image_id


def _what(plan: recipe.ImagePlan) -> str:
    if plan.extra:
        return f" and {', '.join(plan.extra)} (a few minutes)"
    return " and the agent's packages (several minutes)" if plan.kind != recipe.NAME else " (about a minute)"


def _since(start: float) -> str:
    return f"{time.monotonic() - start:.1f} s"


@contextmanager
def _termination_interrupts() -> Iterator[None]:
    """SIGTERM and SIGHUP clean up the way Ctrl-C does, instead of leaving a large tar behind."""
    def interrupt(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    previous = {sig: signal.signal(sig, interrupt) for sig in (signal.SIGTERM, signal.SIGHUP)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
