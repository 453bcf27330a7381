#!/bin/sh
# Regenerate man/vectraguard.1 from the real parser (vectraguard/cli.py), with
# our own generator (vectraguard/manpage.py: each option described once).
# Usage: contrib/make-manpage.sh [PYTHON]
set -eu
repo=$(cd "$(dirname "$0")/.." && pwd)
python=${1:-python3}
cd "$repo"
PYTHONPATH="$repo" "$python" -m vectraguard.manpage --output man/vectraguard.1
