#!/usr/bin/env bash
# The README's test command: installs what the suite needs, then runs all of it.
# On a fresh machine the first run builds the control-plane and node binaries from the Go module proxy (and
# fetches the pinned upstream CRDs from there) and the images with buildah (minutes); later runs reuse them
# from ${XDG_CACHE_HOME:-~/.cache}/readiness-operator.
set -euo pipefail
cd "$(dirname "$0")/.."
export PYTHONUNBUFFERED=1

step() { printf '\n==> %s\n' "$*" >&2; }

step "python environment"
hack/venv.sh

step "control-plane binaries (built once, then cached)"
.venv/bin/python -m readiness.envtest build

step "upstream CRDs: PrometheusRule, ServiceMonitor, PolicyReport, Rollout (pinned Go modules, cached)"
.venv/bin/python -m readiness.envtest crds

step "Debian packages: containerd, runc, CNI plugins, buildah; zsh and fish for the completion tests (installed once)"
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

if [ "$#" -gt 0 ]; then  # a chosen subset: one pytest, as given
  step "tests: $*"
  exec .venv/bin/python -m pytest -q -p no:cacheprovider "$@"
fi

# The whole suite in two pytest processes at once: the node suite (tests/node, minutes spent waiting on
# pods, rollouts and grace periods) beside everything else, which saves about its length on two cores.
# The node suite's output is kept in a file and printed when it ends, so the two never interleave.
step "tests: the node suite in the background, everything else here"
node_log=$(mktemp "${TMPDIR:-/tmp}/readiness-node-suite.XXXXXX")
pytest_job() {
  # A script's background job starts with SIGINT ignored, and Python would keep it so: restore it, so that
  # an interrupt stops each suite through its fixtures' teardown (and the node with them).
  .venv/bin/python -c 'import os, signal, sys; signal.signal(signal.SIGINT, signal.SIG_DFL); os.execv(sys.argv[1], sys.argv[1:])' \
    .venv/bin/python -m pytest -q -p no:cacheprovider "$@" &
}
pytest_job tests/node >"$node_log" 2>&1
node_pid=$!
pytest_job --ignore=tests/node
rest_pid=$!
stop() { kill -INT "$node_pid" "$rest_pid" 2>/dev/null; wait; cat "$node_log"; rm -f "$node_log"; exit 130; }
trap stop INT TERM
rest=0 node=0
wait "$rest_pid" || rest=$?
wait "$node_pid" || node=$?
trap - INT TERM
step "tests: the node suite (tests/node)"
cat "$node_log"
rm -f "$node_log"
if [ "$rest" -ne 0 ] || [ "$node" -ne 0 ]; then
  printf '\ntests failed: the node suite exited %s, everything else %s\n' "$node" "$rest" >&2
  exit 1
fi
