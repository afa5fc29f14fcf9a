#!/usr/bin/env bash
# Writes a docker compose file for the server and N agency clients.
# Usage: ./generar-compose.sh <output-file> <N>
set -euo pipefail
cd "$(dirname "$0")"
if [ $# -ne 2 ] || ! [[ "$2" =~ ^[0-9]+$ ]]; then
  echo "usage: ./generar-compose.sh <output-file> <N>   (N = number of agency clients, 0 or more)" >&2
  exit 2
fi
python=.venv/bin/python
[ -x "$python" ] || python=python3
if ! "$python" -c 'import yaml' 2>/dev/null; then
  echo "error: PyYAML is not installed for $python; run 'make install' first" >&2
  exit 1
fi
exec "$python" scripts/compose.py "$@"
