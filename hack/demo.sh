#!/usr/bin/env bash
# The README's demo: a local control plane, the operator, the example policies and workloads,
# and what a user sees. Everything it needs is installed by the project's own scripts.
set -euo pipefail
cd "$(dirname "$0")/.."
hack/venv.sh
.venv/bin/python -m readiness.envtest build
exec .venv/bin/python hack/demo.py "$@"
