# The two commands of the README's quick start, and the developer loop around them.
.PHONY: demo test unit lint binaries crd docs deploy clean

PY := .venv/bin/python

demo:            ## the whole user story on a local control plane
	@hack/demo.sh $(ARGS)

test:            ## install what the suite needs and run all of it (what CI runs)
	@hack/test.sh

unit: .venv/.ok  ## the fast loop: unit tests only
	$(PY) -m pytest tests/unit -q

lint: .venv/.ok
	.venv/bin/ruff check operator tests benchmarks hack
	.venv/bin/mypy

binaries: .venv/.ok  ## build (or reuse) kube-apiserver, etcd, kube-controller-manager, kubectl, helm
	$(PY) -m readiness.envtest build

crd: .venv/.ok   ## regenerate crds/ from the pydantic model
	$(PY) -m readiness.crd --write

docs: .venv/.ok  ## regenerate docs/checks/ from the catalog
	$(PY) -m readiness.docs --write

.venv/.ok: pyproject.toml requirements.lock
	@hack/venv.sh
	@touch $@

-include hack/kind.mk
