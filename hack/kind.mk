# kind targets, included by the Makefile (include hack/kind.mk). Needs docker, kind and helm.
#   make kind-up kind-deploy kind-e2e kind-down

KIND ?= kind
HELM ?= helm
DOCKER ?= docker
KIND_CLUSTER ?= readiness
KIND_NODE_IMAGE ?=
KIND_KUBECONFIG ?= $(CURDIR)/.kind/kubeconfig
KIND_IMAGE ?= readiness-operator:kind
KIND_NAMESPACE ?= readiness-system
CERT_MANAGER_VERSION ?= v1.19.1
PYTEST ?= $(CURDIR)/.venv/bin/pytest

.PHONY: kind-up kind-deploy kind-e2e kind-down

kind-up: ## create the kind cluster (kind-config.yaml) and install cert-manager
	mkdir -p $(dir $(KIND_KUBECONFIG))
	$(KIND) get clusters | grep -qx '$(KIND_CLUSTER)' || \
	  $(KIND) create cluster --name $(KIND_CLUSTER) --config kind-config.yaml \
	    --kubeconfig $(KIND_KUBECONFIG) $(if $(KIND_NODE_IMAGE),--image $(KIND_NODE_IMAGE)) --wait 120s
	$(KIND) export kubeconfig --name $(KIND_CLUSTER) --kubeconfig $(KIND_KUBECONFIG)
	KUBECONFIG=$(KIND_KUBECONFIG) kubectl apply -f \
	  https://github.com/cert-manager/cert-manager/releases/download/$(CERT_MANAGER_VERSION)/cert-manager.yaml
	KUBECONFIG=$(KIND_KUBECONFIG) kubectl -n cert-manager wait --for=condition=Available deployment --all --timeout=180s

kind-deploy: ## build the image, load it into kind, install the chart (CRDs applied first: helm never upgrades them)
	$(DOCKER) build -t $(KIND_IMAGE) .
	$(KIND) load docker-image $(KIND_IMAGE) --name $(KIND_CLUSTER)
	KUBECONFIG=$(KIND_KUBECONFIG) kubectl apply --server-side -f charts/readiness-operator/crds/
	KUBECONFIG=$(KIND_KUBECONFIG) $(HELM) upgrade --install readiness-operator charts/readiness-operator \
	  --namespace $(KIND_NAMESPACE) --create-namespace --wait --timeout 5m \
	  --set image.repository=$(firstword $(subst :, ,$(KIND_IMAGE))) \
	  --set image.tag=$(lastword $(subst :, ,$(KIND_IMAGE))) --set image.pullPolicy=Never

# The tests whose webhook listens on this machine's 127.0.0.1 skip on kind, with the reason in the report:
# kind's API server runs in a container and cannot reach it (docs/install.md, "kind").
kind-e2e: ## the same cluster test suite, against the kind cluster: only the kubeconfig differs
	$(DOCKER) pull busybox:1.36 && $(KIND) load docker-image busybox:1.36 --name $(KIND_CLUSTER)
	KUBECONFIG=$(KIND_KUBECONFIG) READINESS_USE_EXISTING_CLUSTER=1 NO_PROXY=127.0.0.1,localhost \
	  READINESS_E2E_OPERATOR_IMAGE=$(KIND_IMAGE) READINESS_E2E_WORKLOAD_IMAGE=busybox:1.36 \
	  $(PYTEST) -m cluster --use-existing-cluster tests/cluster tests/node --deselect tests/node/test_harness.py

kind-down: ## delete the kind cluster
	$(KIND) delete cluster --name $(KIND_CLUSTER)
	rm -f $(KIND_KUBECONFIG)
