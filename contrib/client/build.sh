#!/bin/sh
# Build the native front end (contrib/client/vectraguard-client.c) for one
# installation:
#
#   contrib/client/build.sh SCRIPT OUTPUT
#
# SCRIPT is that installation's Python front end (pip's `vectraguard` script,
# moved aside): its first line names the interpreter, which prints the
# installation's identity (vectraguard.forkserver.native) in an empty
# environment, as the native front end will send it; the program is compiled
# static with that header and stripped, and replaces OUTPUT atomically.
set -eu
[ $# -eq 2 ] || { echo "usage: $0 SCRIPT OUTPUT" >&2; exit 2; }
script=$1
output=$2
here=$(cd "$(dirname "$0")" && pwd)
python=$(sed -n '1s/^#!//p' "$script")
case $python in
    /*) ;;
    *) echo "$0: $script: its first line does not name an interpreter by absolute path" >&2; exit 1 ;;
esac
config=$(mktemp)
trap 'rm -f "$config" "$output.new"' EXIT
env -i "$python" -P -m vectraguard.forkserver.native "$script" > "$config"
gcc -static -Os -Wall -Werror -include "$config" -o "$output.new" "$here/vectraguard-client.c"
strip "$output.new"
chmod 755 "$output.new"
mv -f "$output.new" "$output"
