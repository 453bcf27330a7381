"""Run commands as root with an empty /run/vectraguard, then stop what they started.

    unshare --mount --propagation private PYTHON fresh_runtime_dir.py JSON

JSON: {"cwd": DIR, "env": {...}, "commands": [[NAME, ARGV], ...]}. Prints
{NAME: [status, stdout, stderr], ..., "services": [ARGV, ...]} where
"services" lists the `podman system service` processes the commands left in
this mount namespace (so: started by them), which are then stopped.

Root's private Podman services listen in /run/vectraguard, shared by every
run on the host; a tmpfs over it in a mount namespace of our own makes the
commands start a fresh service, seen by no one else, without stopping (or
reusing) the services others are using. The tmpfs goes away with the
namespace.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

from tests.support.services import services_where, stop

RUNTIME_DIR = "/run/vectraguard"


def main() -> int:
    request = json.loads(sys.argv[1])
    own_namespace = os.readlink("/proc/self/ns/mnt")
    os.makedirs(RUNTIME_DIR, mode=0o700, exist_ok=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", "mode=0700,size=16m", "vg-test-runtime", RUNTIME_DIR], check=True)
    out: dict[str, object] = {}
    try:
        for name, argv in request["commands"]:
            done = subprocess.run(argv, cwd=request["cwd"], env=request["env"], capture_output=True,
                                  timeout=300, check=False, start_new_session=True)
            out[name] = [done.returncode, done.stdout.decode(errors="replace"), done.stderr.decode(errors="replace")]
    finally:
        ours = services_where(lambda pid, _: _namespace(pid) == own_namespace)
        out["services"] = [_argv(pid) for pid in ours]
        stop(ours)
    print(json.dumps(out))
    return 0


def _namespace(pid: int) -> str | None:
    try:
        return os.readlink(f"/proc/{pid}/ns/mnt")
    except OSError:
        return None


def _argv(pid: int) -> list[str]:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as handle:
            return [part.decode(errors="replace") for part in handle.read().split(b"\0") if part]
    except OSError:
        return []


if __name__ == "__main__":
    sys.exit(main())
