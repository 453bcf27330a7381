"""Progress of an mmdebstrap build, read from what mmdebstrap, apt and dpkg print.

mmdebstrap keeps apt's machine-readable status descriptor (APT::Status-Fd)
for its own progress bars, which it draws only on a terminal of its own. So
the build runs it with `--verbose`, which forwards apt's and dpkg's output
to its stderr, and this module reads those lines (apt 2.x and dpkg 1.21
formats, as in tests/data/mmdebstrap-verbose.txt):

  I: downloading packages with apt...              mmdebstrap's phase
  0 upgraded, 69 newly installed, 0 to remove ...  apt: N packages in this step
  Get:12 http://deb.debian.org/debian bookworm/main amd64 make amd64 4.3-4.1 [396 kB]
  Unpacking make (4.3-4.1) ...                     dpkg
  Setting up make (4.3-4.1) ...                    dpkg

A build installs in two steps (the essential packages with dpkg, the rest
with apt in the chroot), each with its own N. The display (Display) is a
redrawn line on a terminal and a few plain lines otherwise.
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass, replace
from typing import TextIO

# mmdebstrap's "I: ..." lines, in the order they come, and how we name the phase.
PHASES: tuple[tuple[str, str], ...] = (
    ("running apt-get update", "reading package lists"),
    ("downloading packages", "downloading essential packages"),
    ("extracting archives", "extracting essential packages"),
    ("installing essential packages", "installing essential packages"),
    ("installing remaining packages", "installing packages"),
    ("creating tarball", "writing the image"),
)
NEW_STEP = frozenset({1, 4, 5})  # phases that start afresh: their counts are their own

_SUMMARY = re.compile(r"^\d+ upgraded, (\d+) newly installed")
_GET = re.compile(r"^Get:\d+ \S+ \S+ \S+ (\S+) \S+ \S+ \[")  # a package file, not an index
_UNPACKING = re.compile(r"^Unpacking (\S+) ")
_SETTING_UP = re.compile(r"^Setting up (\S+) ")


@dataclass(frozen=True)
class Progress:
    """Where a build is: its phase (index into PHASES, -1 before the first) and
    the counts of the current install step, out of `total` packages (0: unknown)."""

    phase: int = -1
    total: int = 0
    downloaded: int = 0
    unpacked: int = 0
    configured: int = 0
    package: str = ""  # the package last named

    @property
    def phase_name(self) -> str:
        return PHASES[self.phase][1] if self.phase >= 0 else "starting mmdebstrap"

    @property
    def fraction(self) -> float | None:
        """Of the current step: downloads, unpacking and configuring count a third each."""
        if not self.total:
            return None
        done = min(self.downloaded, self.total) + min(self.unpacked, self.total) + min(self.configured, self.total)
        return done / (3 * self.total)


def parse(progress: Progress, line: str) -> Progress:
    """The progress after one line of mmdebstrap's verbose stderr (unchanged if it says nothing of it)."""
    if line.startswith("I: "):
        for index, (marker, _) in enumerate(PHASES):
            if marker in line and index > progress.phase:
                if index in NEW_STEP:
                    return Progress(phase=index)
                return replace(progress, phase=index)  # the essential step's counts go on across its phases
        return progress
    if (match := _SUMMARY.match(line)) is not None:
        return replace(progress, total=int(match.group(1)), downloaded=0, unpacked=0, configured=0)
    if (match := _GET.match(line)) is not None:
        return replace(progress, downloaded=progress.downloaded + 1, package=match.group(1))
    if (match := _UNPACKING.match(line)) is not None:
        return replace(progress, unpacked=progress.unpacked + 1, package=_name(match.group(1)))
    if (match := _SETTING_UP.match(line)) is not None:
        return replace(progress, configured=progress.configured + 1, package=_name(match.group(1)))
    return progress


def _name(package: str) -> str:
    return package.partition(":")[0]  # "make:amd64" -> "make"


def describe(progress: Progress) -> str:
    """One line of text: the phase, the step's counts, the package last named."""
    text = f"[{progress.phase + 1}/{len(PHASES)}] {progress.phase_name}"
    if progress.total:
        text += (f": {progress.downloaded} of {progress.total} downloaded, {progress.unpacked} unpacked, "
                 f"{progress.configured} set up")
    return text


def bar(progress: Progress, width: int) -> str:
    """`describe` with a percentage bar and the package, fitted to `width` columns."""
    fraction = progress.fraction
    text = f"[{progress.phase + 1}/{len(PHASES)}] {progress.phase_name}"
    if fraction is not None:
        cells = 20
        filled = int(fraction * cells)
        text += f" {'#' * filled}{'.' * (cells - filled)} {fraction * 100:3.0f}% of {progress.total} {progress.package}"
    return text[: max(width - 1, 10)]


class Display:
    """Shows a build's progress on `stream`: a line redrawn in place on a
    terminal; otherwise a plain line at each phase and each quarter of a step."""

    def __init__(self, stream: TextIO | None = None, *, terminal: bool | None = None) -> None:
        self.stream = stream if stream is not None else sys.stderr
        self.terminal = self.stream.isatty() if terminal is None else terminal
        self.progress = Progress()
        self._shown = ("", -1)  # (phase name, quarter) last written as a plain line
        self._drawn = False

    def feed(self, line: str) -> None:
        new = parse(self.progress, line)
        if new != self.progress:
            self.progress = new
            self._show()

    def _show(self) -> None:
        if self.terminal:
            import shutil

            width = shutil.get_terminal_size((80, 24)).columns
            self._write(f"\r\033[2K{bar(self.progress, width)}")
            self._drawn = True
            return
        fraction = self.progress.fraction
        key = (self.progress.phase_name, int(fraction * 4) if fraction is not None else -1)
        if key != self._shown:
            self._shown = key
            self._write(f"vectraguard: {describe(self.progress)}\n")

    def close(self) -> None:
        """Ends the redrawn line, so that what follows starts on a clean one."""
        if self._drawn:
            self._write("\r\033[2K")
            self._drawn = False

    def _write(self, text: str) -> None:
        try:
            self.stream.write(text)
            self.stream.flush()
        except (OSError, ValueError):
            pass  # progress is a courtesy: a closed stderr must not fail the build
