#!/usr/bin/env bash
# A Python venv with fastavro, an Avro implementation independent of ours, for the
# todo-events interoperability test. Idempotent: does nothing when it is already
# there. Prints the venv's python on stdout; progress goes to stderr.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
VENV=${TODO_AVRO_VENV:-${TODO_LOCAL_DIR:-$ROOT/.local}/venv}
FASTAVRO_VERSION=1.13.1
PY=$VENV/bin/python

say() { printf '==> %s\n' "$*" >&2; }

ready() { "$PY" -c "import fastavro, sys; sys.exit(fastavro.__version__ != '$FASTAVRO_VERSION')" 2>/dev/null; }

mkdir -p "$(dirname "$VENV")"
# Two test runs at once must not build the venv over each other.
exec 9>"$VENV.lock"
flock 9

if ! ready; then
  if ! python3 -c 'import venv, ensurepip' 2>/dev/null; then
    say "apt-get install python3-venv"
    DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends python3 python3-venv >&2
  fi
  say "python3 -m venv $VENV"
  python3 -m venv --clear "$VENV"
  say "pip install fastavro==$FASTAVRO_VERSION into $VENV"
  "$PY" -m pip install -q --disable-pip-version-check "fastavro==$FASTAVRO_VERSION" >&2
  ready || { echo "error: fastavro $FASTAVRO_VERSION is not importable from $PY" >&2; exit 1; }
fi
echo "$PY"
