# tokensync Makefile. Targets follow the kubebuilder conventions; `make help` lists them.

IMG ?= ghcr.io/tokensync/tokensync:latest
# Kubernetes version of the envtest control plane (kube-apiserver, etcd, kubectl).
ENVTEST_K8S_VERSION ?= 1.37.2

# Tool binaries live in ./bin, pinned.
LOCALBIN ?= $(shell pwd)/bin
CONTROLLER_GEN ?= $(LOCALBIN)/controller-gen
KUSTOMIZE ?= $(LOCALBIN)/kustomize
CONTROLLER_TOOLS_VERSION ?= v0.23.0
KUSTOMIZE_VERSION ?= v5.7.1
CRD_REF_DOCS_VERSION ?= v0.3.0
# The Helm chart's checks (make verify-helm). Each binary's name carries its
# version, so that changing a version here installs that version.
HELM_VERSION ?= v3.22.0
KUBECONFORM_VERSION ?= v0.8.0
HELM_DOCS_VERSION ?= v1.14.2
HELM ?= $(LOCALBIN)/helm-$(HELM_VERSION)
KUBECONFORM ?= $(LOCALBIN)/kubeconform-$(KUBECONFORM_VERSION)
HELM_DOCS ?= $(LOCALBIN)/helm-docs-$(HELM_DOCS_VERSION)

GO ?= go
CONTAINER_TOOL ?= docker
SHELL = /usr/bin/env bash -o pipefail
.SHELLFLAGS = -ec

.PHONY: all
all: build

##@ General

.PHONY: help
help: ## Display this help.
	@awk 'BEGIN {FS = ":.*##"; printf "\nUsage:\n  make \033[36m<target>\033[0m\n"} /^[a-zA-Z_0-9-]+:.*?##/ { printf "  \033[36m%-18s\033[0m %s\n", $$1, $$2 } /^##@/ { printf "\n\033[1m%s\033[0m\n", substr($$0, 5) } ' $(MAKEFILE_LIST)

##@ Development

.PHONY: manifests
manifests: controller-gen ## Generate the CRD and RBAC manifests from the Go markers.
	$(CONTROLLER_GEN) rbac:roleName=manager-role crd paths="./..." output:crd:artifacts:config=config/crd/bases
	@hack/sync-chart.sh

.PHONY: generate
generate: controller-gen ## Generate DeepCopy methods.
	$(CONTROLLER_GEN) object:headerFile="hack/boilerplate.go.txt" paths="./..."

.PHONY: fmt
fmt: ## Run go fmt.
	$(GO) fmt ./...

.PHONY: vet
vet: ## Run go vet.
	$(GO) vet ./...
	$(GO) vet -tags e2e ./test/...
	$(GO) vet -tags cluster ./test/cluster/...

.PHONY: verify-generated
verify-generated: manifests generate ## Fail if generated files are out of date.
	@git diff --exit-code -- api config/crd config/rbac charts/tokensync/crds charts/tokensync/files || { echo "generated files are stale: run 'make manifests generate' and commit"; exit 1; }
	@CRD_REF_DOCS_VERSION=$(CRD_REF_DOCS_VERSION) LOCALBIN=$(LOCALBIN) GO=$(GO) hack/gen-api-docs.sh --check

.PHONY: api-docs
api-docs: ## Generate docs/api-reference.md from the Go types (crd-ref-docs).
	CRD_REF_DOCS_VERSION=$(CRD_REF_DOCS_VERSION) LOCALBIN=$(LOCALBIN) GO=$(GO) hack/gen-api-docs.sh

.PHONY: verify-monitoring
verify-monitoring: kustomize ## Check config/monitoring: kustomize build, metric names against the code, promtool rule check and alert unit tests.
	$(KUSTOMIZE) build config/monitoring >/dev/null
	hack/install-promtool.sh >/dev/null
	TOKENSYNC_REQUIRE_PROMTOOL=1 $(GO) test -count=1 ./test/monitoring/...

.PHONY: verify-helm
verify-helm: helm kubeconform helm-docs kustomize ## Check the Helm chart: lint, CRD and RBAC copied from config/, kubeconform and a server-side dry run against envtest, docs/helm.md from values.yaml (helm-docs), render vs config/, every manager flag a value, bad values refused.
	KUBEBUILDER_ASSETS="$$(ENVTEST_K8S_VERSION=$(ENVTEST_K8S_VERSION) hack/install-envtest.sh $(LOCALBIN))" \
		HELM=$(HELM) KUBECONFORM=$(KUBECONFORM) HELM_DOCS=$(HELM_DOCS) KUSTOMIZE=$(KUSTOMIZE) GO=$(GO) hack/verify-helm.sh

.PHONY: helm-docs-gen
helm-docs-gen: helm-docs ## Regenerate the values table of docs/helm.md from charts/tokensync/values.yaml (helm-docs).
	HELM_DOCS=$(HELM_DOCS) hack/helm-docs.sh

.PHONY: envtest
envtest: ## Install the envtest control plane (built from the Go module proxy when downloads fail). Prints KUBEBUILDER_ASSETS.
	@hack/install-envtest.sh $(LOCALBIN)

.PHONY: test
test: manifests generate fmt vet ## Run unit and envtest integration tests.
	KUBEBUILDER_ASSETS="$$(ENVTEST_K8S_VERSION=$(ENVTEST_K8S_VERSION) hack/install-envtest.sh $(LOCALBIN))" \
		$(GO) test ./... -race -count=1 -coverprofile cover.out

.PHONY: test-e2e
test-e2e: build ## Run the end-to-end suite: the manager binary against envtest, Django OAuth Toolkit and zitadel/oidc (token exchange).
	hack/install-oauth-server.sh
	KUBEBUILDER_ASSETS="$$(ENVTEST_K8S_VERSION=$(ENVTEST_K8S_VERSION) hack/install-envtest.sh $(LOCALBIN))" \
	ZITADEL_HARNESS="$$(hack/install-zitadel-harness.sh $(LOCALBIN))" \
	TOKENSYNC_MANAGER_BIN=$(LOCALBIN)/manager \
		$(GO) test -tags e2e ./test/dot/ ./test/e2e/ -count=1 -v -timeout 20m

.PHONY: test-cluster
test-cluster: manifests kustomize helm ## Run tokensync from its image on a real single-node cluster (root; no Docker engine): kustomize and Helm installs, pods mounting its Secrets, rollouts, garbage collection.
	ENVTEST_K8S_VERSION=$(ENVTEST_K8S_VERSION) LOCALBIN=$(LOCALBIN) KUSTOMIZE=$(KUSTOMIZE) HELM=$(HELM) hack/cluster/test.sh

# Flags of the scale benchmark (go run ./test/bench -help lists them), e.g.
# BENCH_ARGS="-n 1000 -manager-args=--concurrent-reconciles=8".
BENCH_ARGS ?=
.PHONY: bench
bench: build ## Run the scale benchmark (N=1,000 and 5,000 by default; about 20 minutes on 2 cores): one table, exit 1 when a target is missed. Not part of make test.
	KUBEBUILDER_ASSETS="$$(ENVTEST_K8S_VERSION=$(ENVTEST_K8S_VERSION) hack/install-envtest.sh $(LOCALBIN))" \
		$(GO) run ./test/bench -manager $(LOCALBIN)/manager $(BENCH_ARGS)

.PHONY: bench-smoke
bench-smoke: BENCH_ARGS = -smoke
bench-smoke: bench ## Run the benchmark at N=50 with 500 unrelated Secrets, enforcing the count targets (CI; about a minute).

FUZZTIME ?= 30s
# Sequences the model test runs in make fuzz (make test runs 6).
MODEL_CHECKS ?= 200
.PHONY: fuzz
fuzz: ## Fuzz token response parsing and JWT expiry reading (FUZZTIME each, default 30s), and run the model test longer (MODEL_CHECKS sequences).
	$(GO) test ./internal/oauth/ -run '^$$' -fuzz '^FuzzTokenResponse$$' -fuzztime $(FUZZTIME)
	$(GO) test ./internal/oauth/ -run '^$$' -fuzz '^FuzzJWTExpiry$$' -fuzztime $(FUZZTIME)
	KUBEBUILDER_ASSETS="$$(ENVTEST_K8S_VERSION=$(ENVTEST_K8S_VERSION) hack/install-envtest.sh $(LOCALBIN))" \
		TOKENSYNC_MODEL_CHECKS=$(MODEL_CHECKS) $(GO) test ./internal/controller/token/ -run '^TestModel$$' -count=1 -rapid.steps=60 -timeout 60m

.PHONY: demo
demo: build ## Start a throwaway control plane and token endpoint, run the manager, and watch a token rotate.
	KUBEBUILDER_ASSETS="$$(ENVTEST_K8S_VERSION=$(ENVTEST_K8S_VERSION) hack/install-envtest.sh $(LOCALBIN))" \
		$(GO) run ./hack/demo --manager $(LOCALBIN)/manager

##@ Build

.PHONY: build
build: manifests generate fmt vet ## Build the manager binary.
	CGO_ENABLED=0 $(GO) build -trimpath -o $(LOCALBIN)/manager ./cmd

.PHONY: run
run: manifests generate fmt vet ## Run the manager against the cluster in ~/.kube/config.
	$(GO) run ./cmd

.PHONY: docker-build
docker-build: ## Build the container image (needs a Docker engine).
	$(CONTAINER_TOOL) build -t $(IMG) .

.PHONY: verify-dockerfile
verify-dockerfile: ## Check the image recipe without a Docker engine: Go version, base image, non-root user, build context, static binary (builds the image too when an engine exists).
	CONTAINER_TOOL=$(CONTAINER_TOOL) hack/verify-dockerfile.sh

.PHONY: docker-push
docker-push: ## Push the container image.
	$(CONTAINER_TOOL) push $(IMG)

.PHONY: build-installer
build-installer: manifests generate kustomize ## Write dist/install.yaml with the CRD and deployment.
	mkdir -p dist
	cd config/manager && $(KUSTOMIZE) edit set image controller=$(IMG)
	$(KUSTOMIZE) build config/default > dist/install.yaml

##@ Deployment

ifndef ignore-not-found
  ignore-not-found = false
endif

.PHONY: install
install: manifests kustomize ## Install the CRD into the cluster in ~/.kube/config.
	$(KUSTOMIZE) build config/crd | kubectl apply --server-side -f -

.PHONY: uninstall
uninstall: manifests kustomize ## Remove the CRD from the cluster.
	$(KUSTOMIZE) build config/crd | kubectl delete --ignore-not-found=$(ignore-not-found) -f -

.PHONY: deploy
deploy: manifests kustomize ## Deploy the manager to the cluster in ~/.kube/config.
	cd config/manager && $(KUSTOMIZE) edit set image controller=$(IMG)
	$(KUSTOMIZE) build config/default | kubectl apply --server-side -f -

.PHONY: undeploy
undeploy: kustomize ## Remove the manager from the cluster.
	$(KUSTOMIZE) build config/default | kubectl delete --ignore-not-found=$(ignore-not-found) -f -

##@ Tools

$(LOCALBIN):
	mkdir -p $(LOCALBIN)

.PHONY: controller-gen
controller-gen: $(CONTROLLER_GEN) ## Install controller-gen.
$(CONTROLLER_GEN): | $(LOCALBIN)
	GOBIN=$(LOCALBIN) $(GO) install sigs.k8s.io/controller-tools/cmd/controller-gen@$(CONTROLLER_TOOLS_VERSION)

.PHONY: kustomize
kustomize: $(KUSTOMIZE) ## Install kustomize.
$(KUSTOMIZE): | $(LOCALBIN)
	GOBIN=$(LOCALBIN) $(GO) install sigs.k8s.io/kustomize/kustomize/v5@$(KUSTOMIZE_VERSION)

# go-install-versioned installs Go package $(2) at version $(3) as the
# binary $(1) (whose name ends in -$(3)).
define go-install-versioned
	@tmp=$$(mktemp -d) && trap 'rm -rf "$$tmp"' EXIT && \
		echo "installing $(2)@$(3) as $(1)" && \
		GOBIN=$$tmp CGO_ENABLED=0 $(GO) install $(4) $(2)@$(3) && \
		mv "$$tmp/$$(basename $(2))" $(1)
endef

.PHONY: helm
helm: $(HELM) ## Install helm.
$(HELM): | $(LOCALBIN)
	$(call go-install-versioned,$(HELM),helm.sh/helm/v3/cmd/helm,$(HELM_VERSION),-ldflags "-X helm.sh/helm/v3/internal/version.version=$(HELM_VERSION) -X helm.sh/helm/v3/internal/version.gitTreeState=clean")

.PHONY: kubeconform
kubeconform: $(KUBECONFORM) ## Install kubeconform.
$(KUBECONFORM): | $(LOCALBIN)
	$(call go-install-versioned,$(KUBECONFORM),github.com/yannh/kubeconform/cmd/kubeconform,$(KUBECONFORM_VERSION))

.PHONY: helm-docs
helm-docs: $(HELM_DOCS) ## Install helm-docs.
$(HELM_DOCS): | $(LOCALBIN)
	$(call go-install-versioned,$(HELM_DOCS),github.com/norwoodj/helm-docs/cmd/helm-docs,$(HELM_DOCS_VERSION))
