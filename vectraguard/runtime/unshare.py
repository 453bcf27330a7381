"""Running one of Vectra Guard's own modules under `podman unshare` (rootless helpers).

A rootless sandbox's namespaces belong to the user's rootless user namespace;
only a process inside it may enter them or write files as the sandbox's ids,
so planting listeners (network/plant_helper.py), making sockets for published
ports (network/netns_socket_helper.py) and reading overlay layers
(workspace/helper.py) run in a helper that `podman unshare` starts.

The helper is Vectra Guard's code and nothing else, wherever `vectraguard`
was started: `python -m` puts the working directory first on the module
path, and a run's working directory is the project — a repository from
anywhere, which a sandbox with a read-write workspace may also have written.
A `socket.py` or a `vectraguard/` package there ran on the host, as the user,
in every rootless `--publish` and allowlist run. Hence `-P` (nothing
prepended to sys.path; Python 3.11) and the helper started in `/`, so that a
relative entry of the caller's PYTHONPATH does not name the project either.
"""

from __future__ import annotations

import sys

HELPER_CWD = "/"


def helper_argv(module: str, *args: str) -> list[str]:
    """`podman unshare` running `python -P -m MODULE ARGS...` with this interpreter;
    start it with cwd=HELPER_CWD."""
    return ["podman", "unshare", sys.executable, "-P", "-m", module, *args]
