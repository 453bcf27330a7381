"""The repository's own `core.hooksPath`, read without running anything.

`git config --file` reads one file and does not follow `include`
directives (nor run fsmonitor, hooks or aliases); the user's global
configuration is consulted too, since a global relative hooksPath applies
to every repository. Only a path inside the workspace matters here.
"""

from __future__ import annotations

import os
import posixpath
import shutil
import subprocess
from pathlib import Path


def hooks_path(workspace: Path) -> str:
    """core.hooksPath relative to `workspace`, or "" (unset, outside, or git missing)."""
    git = shutil.which("git")
    config = workspace / ".git" / "config"
    if git is None:
        return ""
    for args in (["--file", str(config)], ["--global"]):
        if args[0] == "--file" and not config.is_file():
            continue
        try:
            done = subprocess.run([git, "config", *args, "--get", "core.hooksPath"], capture_output=True, text=True,
                                  timeout=10, check=False, cwd="/",
                                  env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"),
                                       "HOME": os.environ.get("HOME", "/nonexistent"), "GIT_CONFIG_NOSYSTEM": "1"})
        except (OSError, subprocess.SubprocessError):
            continue
        value = done.stdout.strip()
        if done.returncode == 0 and value:
            return _inside(workspace, value)
    return ""


def _inside(workspace: Path, value: str) -> str:
    absolute = value if value.startswith("/") else posixpath.join(str(workspace), value)
    relative = posixpath.relpath(posixpath.normpath(absolute), str(workspace))
    return "" if relative == "." or relative.startswith("..") else relative
