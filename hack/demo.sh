#!/usr/bin/env bash
# The README's demo: a one-node cluster, the operator installed by Helm, the example policies and workloads,
# and what a user sees. Everything it needs is installed by the project's own scripts.
set -euo pipefail
cd "$(dirname "$0")/.."
hack/venv.sh
.venv/bin/python -m readiness.envtest build
.venv/bin/python -m readiness.envtest crds
hack/install-node-packages.sh
exec .venv/bin/python hack/demo.py "$@"
