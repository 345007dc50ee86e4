#!/usr/bin/env bash
# The README's test command: installs what the suite needs, then runs all of it.
# On a fresh machine the first run builds the control-plane and node binaries from the Go module proxy and
# the images with buildah (minutes); later runs reuse them from ${XDG_CACHE_HOME:-~/.cache}/readiness-operator.
set -euo pipefail
cd "$(dirname "$0")/.."
export PYTHONUNBUFFERED=1

step() { printf '\n==> %s\n' "$*" >&2; }

step "python environment"
hack/venv.sh

step "control-plane binaries (built once, then cached)"
.venv/bin/python -m readiness.envtest build

step "node packages: containerd, runc, CNI plugins, buildah (Debian, installed once)"
hack/install-node-packages.sh

step "images: python base, operator (from ./Dockerfile), pause, test workload (built once per content)"
.venv/bin/python -m readiness.envtest.images

step "prometheus and promtool"
hack/install-prometheus.sh

step "lint: ruff and mypy"
.venv/bin/ruff check operator tests benchmarks hack
.venv/bin/mypy

step "generated files are up to date"
.venv/bin/python -m readiness.crd --check
.venv/bin/python -m readiness.docs --check

step "tests"
.venv/bin/python -m pytest -q -p no:cacheprovider "$@"
