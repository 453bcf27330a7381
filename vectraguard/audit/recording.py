"""Session recordings as asciicast v2 files (what asciinema plays).

Output only, with timing; keystrokes are not recorded (they carry
passwords and tokens). Window resizes are: an asciicast v2 resize event
`[time, "r", "COLSxROWS"]` is written before the first output drawn at the
new size (the terminal is measured, one ioctl, before each output event;
the run's relay follows SIGWINCH for the sandbox itself). `replay` ignores
resize events: it writes into the viewer's window, which it does not resize
(the sequence that could, CSI 8 t, is one the live view drops too). The recording is size-capped: past the cap, output
is no longer written and the file says so in a final marker event. Bytes
are decoded incrementally as UTF-8 (asciicast events are strings), so a
character split across two reads is not mangled.
"""

from __future__ import annotations

import codecs
import hashlib
import json
import os
import time
from pathlib import Path
from typing import Any

from vectraguard import paths

CAP_BYTES = 50 * 1024 * 1024


def recordings_dir() -> Path:
    return paths.recordings_dir()


class AsciicastWriter:
    def __init__(self, session_id: str, width: int, height: int, command: str, tty_fd: int | None = None) -> None:
        """`tty_fd`: the terminal whose size the session follows (resizes are recorded)."""
        directory = recordings_dir()
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        self.path = directory / f"{session_id}.cast"
        fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        self.file = os.fdopen(fd, "w", encoding="utf-8")
        self.decoder = codecs.getincrementaldecoder("utf-8")("replace")
        self.start = time.monotonic()
        self.written = 0
        self.capped = False
        header = {"version": 2, "width": width, "height": height, "timestamp": int(time.time()),
                  "title": command, "env": {"TERM": os.environ.get("TERM", "xterm")}}
        self.file.write(json.dumps(header) + "\n")
        self.tty_fd, self.size = tty_fd, (width, height)

    def _note_resize(self) -> None:
        if self.tty_fd is None:
            return
        try:
            size = tuple(os.get_terminal_size(self.tty_fd))
        except OSError:  # no longer a terminal (hung up): nothing to follow
            return
        if size != self.size:
            self.size = (size[0], size[1])
            self.file.write(json.dumps([self._now(), "r", f"{size[0]}x{size[1]}"]) + "\n")

    def _now(self) -> float:
        return round(time.monotonic() - self.start, 6)

    def feed(self, stream: int, data: bytes) -> None:
        if self.capped:
            return
        text = self.decoder.decode(data)
        if not text:
            return
        if self.written + len(data) > CAP_BYTES:
            self.capped = True
            text = "\r\n[vectraguard: recording stopped at its size cap]\r\n"
        self.written += len(data)
        self._note_resize()
        self.file.write(json.dumps([self._now(), "o", text]) + "\n")

    def close(self) -> dict[str, Any]:
        self.file.close()
        digest = hashlib.sha256(self.path.read_bytes()).hexdigest()
        return {"path": str(self.path), "format": "asciicast-v2", "output_bytes": self.written,
                "capped": self.capped, "sha256": digest}


def replay(data: bytes, write: Any, *, speed: float, idle_limit: float | None) -> None:
    """Play a recording (its bytes, checked against its record's SHA-256 by the caller)
    to `write` (a bytes writer), honouring its timing."""
    header, *lines = data.decode("utf-8").split("\n")
    json.loads(header)
    previous = 0.0
    for line in filter(None, lines):
        at, kind, text = json.loads(line)
        if kind != "o":  # "r" (resize) and input events: not played (module docstring)
            continue
        pause = max(0.0, at - previous)
        if idle_limit is not None:
            pause = min(pause, idle_limit)
        if pause and speed > 0:
            time.sleep(pause / speed)
        previous = at
        write(text.encode("utf-8"))
