#!/bin/sh
# Prints the Debian packages the container image installs, one per line: every package of
# deploy/packages.txt (the list tests/rig/setup.sh installs) except the lines marked `# test-only`.
# Usage: runtime-packages.sh [deploy/packages.txt]
set -eu
list=${1:-deploy/packages.txt}
[ -r "$list" ] || { echo "runtime-packages.sh: cannot read $list" >&2; exit 1; }
sed -e '/#[[:space:]]*test-only/d' -e 's/#.*//' -e 's/[[:space:]]//g' -e '/^$/d' "$list"
