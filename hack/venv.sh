#!/usr/bin/env bash
# Creates or refreshes .venv with the locked dependencies. Idempotent and quick when nothing changed.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  echo "==> creating .venv" >&2
  "$PY" -m venv .venv
fi
stamp=.venv/.installed-$(cat pyproject.toml requirements.lock | sha256sum | cut -c1-16)
if [ ! -f "$stamp" ]; then
  echo "==> installing locked dependencies into .venv" >&2
  .venv/bin/pip install -q -c requirements.lock -e '.[test]'
  rm -f .venv/.installed-*
  touch "$stamp"
fi
