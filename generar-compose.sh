#!/bin/sh
# Writes a docker compose file for the server and N agency clients.
# Usage: ./generar-compose.sh <output-file> <N>   (also: bash generar-compose.sh, sh generar-compose.sh)
# POSIX sh and any python3 >= 3.8 with only its standard library: it runs on a fresh clone.
set -eu
usage="usage: ./generar-compose.sh <output-file> <N>   (N = number of agency clients, 0 or more)"
if [ $# -ne 2 ]; then
  echo "$usage" >&2
  exit 2
fi
case "$2" in
  ''|*[!0-9]*) echo "$usage" >&2; exit 2 ;;
esac
here=$(CDPATH= cd -- "$(dirname -- "$0")" && pwd)
python=""
for candidate in python3 python; do
  if command -v "$candidate" >/dev/null 2>&1 &&
     "$candidate" -c 'import sys; sys.exit(sys.version_info < (3, 8))' 2>/dev/null; then
    python=$candidate
    break
  fi
done
if [ -z "$python" ]; then
  echo "error: generar-compose.sh needs python3 >= 3.8 (standard library only)" >&2
  exit 1
fi
exec "$python" "$here/scripts/compose.py" "$@"
