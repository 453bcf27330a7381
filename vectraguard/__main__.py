"""Entry point of the `vectraguard` console script (and `python -m vectraguard`)."""

from __future__ import annotations

import os
import sys


def main() -> int:
    from vectraguard.forkserver import client

    if client.wanted(sys.argv):
        try:
            served = client.run(sys.argv)  # this user's fork server (forkserver/): the imports below are done there
        except KeyboardInterrupt:  # Ctrl-C before the server took the run: nothing ran
            os.write(2, b"vectraguard: interrupted\n")
            os._exit(130)
        if served is not None:
            sys.stdout.flush()
            os._exit(served)
    from vectraguard import startup

    startup.begin()  # fewer garbage collections while starting (startup.py)
    # Imported here, not at module level, so that `python -m vectraguard`
    # and the console script share one code path through cli.main.
    from vectraguard.cli import main as cli_main

    status = cli_main(sys.argv[1:])
    startup.exit_now(status)  # a finished run: no interpreter finalisation (startup.py)
    return status


if __name__ == "__main__":
    sys.exit(main())
