"""Entry point of the `vectraguard` console script (and `python -m vectraguard`)."""

from __future__ import annotations

import sys


def main() -> int:
    from vectraguard import startup

    startup.begin()  # fewer garbage collections while starting (startup.py)
    # Imported here, not at module level, so that `python -m vectraguard`
    # and the console script share one code path through cli.main.
    from vectraguard.cli import main as cli_main

    return cli_main(sys.argv[1:])


if __name__ == "__main__":
    sys.exit(main())
