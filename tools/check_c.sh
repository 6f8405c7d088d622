#!/usr/bin/env bash
# Compile csrc/ with -Wall -Wextra -Werror against every given Python's headers.
# CPython's own headers are included as system headers: their warnings are not
# ours (3.14's internal headers have unused parameters).
# The extension build itself cannot use -Werror (setuptools applies one flag set
# to the Cython-generated C too); this is where our own C is held to it.
# usage: tools/check_c.sh [python ...]   (default: python3)
set -euo pipefail
cd "$(dirname "$0")/.."
pythons=("$@")
[ ${#pythons[@]} -eq 0 ] && pythons=(python3)
for py in "${pythons[@]}"; do
  inc=$("$py" -c 'import sysconfig; print(sysconfig.get_paths()["include"])')
  for src in csrc/*.c; do
    gcc -std=gnu11 -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes -O2 -fPIC \
        -Icsrc -isystem "$inc" -c "$src" -o /dev/null
  done
  echo "check_c: csrc/ clean under -Wall -Wextra -Werror for $("$py" -V 2>&1)"
done
