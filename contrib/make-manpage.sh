#!/bin/sh
# Regenerate man/vectraguard.1 from the real parser (vectraguard/cli.py).
# Usage: contrib/make-manpage.sh [PYTHON]   (a Python with argparse-manpage installed)
set -eu
repo=$(cd "$(dirname "$0")/.." && pwd)
python=${1:-python3}
cd "$repo"
# argparse wraps usage lines at the terminal width: pin it, so the page is
# the same wherever it is generated (tests/test_manpages.py checks it).
export COLUMNS=80
PYTHONPATH="$repo" "$python" -c "import sys; from argparse_manpage.cli import main; sys.argv[0] = \"argparse-manpage\"; main()" --module vectraguard.cli --function build_parser \
    --prog vectraguard --project-name "Vectra Guard" --manual-title "Vectra Guard manual" \
    --version "$(PYTHONPATH="$repo" "$python" -c 'import vectraguard; print(vectraguard.__version__)')" \
    --description "run commands, scripts and AI agents in locked-down Podman sandboxes" \
    --format single-commands-section --output man/vectraguard.1
