# signet's Makefile. A fresh clone needs two commands:
#   make playground   the main job: a local cluster and registry with signet in front
#   make test         every test, building the tools the tests need first
SHELL := /usr/bin/env bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := build

GO      ?= go
BIN     := $(CURDIR)/bin
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo devel)
COMMIT  ?= $(shell git rev-parse HEAD 2>/dev/null || echo unknown)
LDFLAGS := -X github.com/signet-dev/signet/internal/version.version=$(VERSION) \
           -X github.com/signet-dev/signet/internal/version.commit=$(COMMIT)

# Third-party binaries the tests run, each built from a pinned Go module under
# tools/. A binary is rebuilt only when it is missing or its module's pins change.
TOOLS := $(BIN)/kube-apiserver $(BIN)/etcd $(BIN)/kubectl $(BIN)/registry $(BIN)/cosign $(BIN)/controller-gen \
         $(BIN)/golangci-lint $(BIN)/helm $(BIN)/promtool $(BIN)/redis-server
TOOLBUILD = cd tools/$(1) && CGO_ENABLED=0 $(GO) build -trimpath -ldflags="-s $(2)" -o $(BIN)/$(notdir $@)
# Kubernetes reads its own version from link-time stamps; the pin is in tools/kube/go.mod.
KUBE_VERSION := $(shell awk '$$1=="k8s.io/kubernetes"{print $$2; exit}' tools/kube/go.mod)
KUBE_LDFLAGS := $(foreach p,k8s.io/component-base/version k8s.io/client-go/pkg/version,\
  -X $(p).gitVersion=$(KUBE_VERSION) -X $(p).gitMajor=1 -X $(p).gitMinor=$(word 2,$(subst ., ,$(KUBE_VERSION))) -X $(p).gitTreeState=clean)
# helm reports its version, and the Kubernetes version it renders and lints for, from
# link-time stamps (as helm's own Makefile sets them); the pins are in tools/helm/go.mod.
HELM_VERSION := $(shell awk '$$1=="helm.sh/helm/v3"{print $$2; exit}' tools/helm/go.mod)
HELM_KUBE_MINOR := $(word 2,$(subst ., ,$(shell awk '$$1=="k8s.io/client-go"{print $$2; exit}' tools/helm/go.mod)))
HELM_LDFLAGS := -X helm.sh/helm/v3/internal/version.version=$(HELM_VERSION) \
  $(foreach p,helm.sh/helm/v3/pkg/lint/rules helm.sh/helm/v3/pkg/chartutil,-X $(p).k8sVersionMajor=1 -X $(p).k8sVersionMinor=$(HELM_KUBE_MINOR))

.PHONY: build
build: ## build bin/signet and bin/signet-server (signet serve and node-agent run it)
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags "$(LDFLAGS)" -o $(BIN)/ ./cmd/signet ./cmd/signet-server

# The container image the deploy manifests and the Helm chart run (docs/architecture.md):
#   make image IMAGE=registry.example.org/signet:v0.1.0 [PLATFORMS=linux/amd64,linux/arm64]
#   make image IMAGE_LAYOUT=out/oci
IMAGE ?=
IMAGE_LAYOUT ?=
PLATFORMS ?= linux/$(shell $(GO) env GOARCH)
.PHONY: image
image: ## build the container image (no container runtime needed) and push it to IMAGE, or write it to the OCI layout IMAGE_LAYOUT; prints its digest
	@if [[ -z "$(IMAGE)$(IMAGE_LAYOUT)" ]]; then echo "set IMAGE=registry/repository:tag (to push) or IMAGE_LAYOUT=dir"; exit 2; fi
	$(GO) run ./hack/image --platforms $(PLATFORMS) --ldflags "$(LDFLAGS)" --version $(VERSION) --revision $(COMMIT) \
	  $(if $(IMAGE),--push $(IMAGE),--oci-layout $(IMAGE_LAYOUT))

.PHONY: tools
tools: $(TOOLS) ## build the third-party binaries the tests use into bin/

$(BIN)/kube-apiserver: tools/kube/go.mod tools/kube/go.sum tools/kube/cmd/kube-apiserver/main.go
	$(call TOOLBUILD,kube,$(KUBE_LDFLAGS)) ./cmd/kube-apiserver
$(BIN)/etcd: tools/kube/go.mod tools/kube/go.sum tools/kube/cmd/etcd/main.go
	$(call TOOLBUILD,kube) ./cmd/etcd
$(BIN)/kubectl: tools/kube/go.mod tools/kube/go.sum tools/kube/cmd/kubectl/main.go
	$(call TOOLBUILD,kube,$(KUBE_LDFLAGS)) ./cmd/kubectl
$(BIN)/registry: tools/registry/go.mod tools/registry/go.sum
	$(call TOOLBUILD,registry) github.com/distribution/distribution/v3/cmd/registry
$(BIN)/cosign: tools/cosign/go.mod tools/cosign/go.sum
	$(call TOOLBUILD,cosign) github.com/sigstore/cosign/v3/cmd/cosign
$(BIN)/controller-gen: tools/controller-gen/go.mod tools/controller-gen/go.sum
	$(call TOOLBUILD,controller-gen) sigs.k8s.io/controller-tools/cmd/controller-gen
$(BIN)/golangci-lint: tools/golangci-lint/go.mod tools/golangci-lint/go.sum
	$(call TOOLBUILD,golangci-lint) github.com/golangci/golangci-lint/v2/cmd/golangci-lint
$(BIN)/helm: tools/helm/go.mod tools/helm/go.sum
	$(call TOOLBUILD,helm,$(HELM_LDFLAGS)) helm.sh/helm/v3/cmd/helm

# promtool checks the chart's PrometheusRule (test/monitoring). It is not built: it
# is extracted from Debian's prometheus package (apt-get download, from this
# machine's package sources; nothing is installed system-wide), only when missing.
$(BIN)/promtool:
	@mkdir -p $(CURDIR)/.cache
	tmp=$$(mktemp -d $(CURDIR)/.cache/prometheus.XXXXXX) && trap 'rm -rf "$$tmp"' EXIT && \
	  (cd "$$tmp" && apt-get download prometheus) && \
	  dpkg-deb -x "$$tmp"/prometheus_*.deb "$$tmp/root" && \
	  install -D -m 0755 "$$tmp/root/usr/bin/promtool" $@

# redis-server backs the tests of the optional shared result cache (test/sharedcache).
# Like promtool it is extracted from Debian's packages, not installed system-wide:
# redis-tools holds the binary (redis-server is a link to redis-check-rdb), which
# needs libjemalloc2 and liblzf1; they go to bin/redis-libs and bin/redis-server is
# a wrapper that points the loader there.
$(BIN)/redis-server:
	@mkdir -p $(CURDIR)/.cache
	tmp=$$(mktemp -d $(CURDIR)/.cache/redis.XXXXXX) && trap 'rm -rf "$$tmp"' EXIT && \
	  (cd "$$tmp" && apt-get download redis-tools libjemalloc2 liblzf1) && \
	  for deb in "$$tmp"/*.deb; do dpkg-deb -x "$$deb" "$$tmp/root"; done && \
	  rm -rf $(BIN)/redis-libs && mkdir -p $(BIN)/redis-libs && \
	  cp -L "$$tmp"/root/usr/lib/*/libjemalloc.so.2 "$$tmp"/root/usr/lib/*/liblzf.so.1 $(BIN)/redis-libs/ && \
	  install -m 0755 "$$tmp/root/usr/bin/redis-check-rdb" $(BIN)/redis-libs/redis-server && \
	  printf '#!/bin/sh\n# Debian redis-server with its libraries beside it (Makefile: $$(BIN)/redis-server).\nd=$$(dirname "$$(readlink -f "$$0")")/redis-libs\nLD_LIBRARY_PATH="$$d$${LD_LIBRARY_PATH:+:$$LD_LIBRARY_PATH}" exec "$$d/redis-server" "$$@"\n' >$@.tmp && \
	  chmod 0755 $@.tmp && mv $@.tmp $@

.PHONY: generate
generate: $(BIN)/controller-gen ## regenerate deepcopy code and CRD manifests from api/
	@if compgen -G 'api/*/*.go' >/dev/null; then \
	  $(BIN)/controller-gen object paths=./api/... && \
	  $(BIN)/controller-gen crd:allowDangerousTypes=false paths=./api/... output:crd:artifacts:config=deploy/crds; \
	fi
	@# The Helm chart installs the same CRDs from its crds/ folder.
	rm -f deploy/helm/signet/crds/*.yaml && cp deploy/crds/*.yaml deploy/helm/signet/crds/

.PHONY: verify-generated
verify-generated: generate ## fail if generated code is not what the generators produce
	@if [[ -n "$$(git status --porcelain -- api deploy/crds deploy/helm/signet/crds)" ]]; then \
	  git status --porcelain -- api deploy/crds deploy/helm/signet/crds; git diff --stat -- api deploy/crds deploy/helm/signet/crds; \
	  echo "generated code is stale: run 'make generate' and commit the result"; exit 1; \
	fi

.PHONY: fmt-check
fmt-check: ## fail if gofmt would change a file
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [[ -n "$$out" ]]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

.PHONY: vet
vet:
	$(GO) vet ./...

# Linters and their settings are in .golangci.yml.
.PHONY: lint
lint: $(BIN)/golangci-lint ## run golangci-lint (.golangci.yml) over every package
	$(BIN)/golangci-lint run --allow-parallel-runners --timeout 10m ./...

# Fuzz targets run briefly on every `make test`; run longer with FUZZTIME=5m or
# FUZZTIME=1000000x. The default is a count of executions, not a duration: at the
# end of a duration, Go's fuzz coordinator can fail a target that found nothing
# ("context deadline exceeded", go.dev/issue/75804, not fixed in Go 1.26).
FUZZTIME ?= 10000x
FUZZ_TARGETS ?= ./internal/reference:FuzzParse ./internal/verify:FuzzEvidence ./internal/verify:FuzzSimpleSigning ./internal/convert:FuzzPolicyJSON ./internal/workload:FuzzDecodeObject ./internal/admission:FuzzValidate ./internal/policy:FuzzCompile ./internal/convert:FuzzKyvernoCondition ./internal/policy:FuzzGlobMatch ./internal/policy:FuzzHostSpellings

.PHONY: fuzz
fuzz:
	@for t in $(FUZZ_TARGETS); do pkg=$${t%%:*}; fn=$${t##*:}; \
	  echo "fuzz $$pkg $$fn ($(FUZZTIME))"; \
	  $(GO) test -run='^$$' -fuzz="^$$fn\$$" -fuzztime=$(FUZZTIME) $$pkg || exit 1; done

.PHONY: test
test: tools fmt-check vet lint verify-generated ## run every test (unit, real-component end to end, fuzz smoke)
	SIGNET_BIN_DIR=$(BIN) $(GO) test -count=1 -timeout 40m -skip '^(TestLoadUnderRace|TestSoak)$$' ./...
	@# The load test: 2,000 admissions through signet serve, with the race detector.
	SIGNET_BIN_DIR=$(BIN) $(GO) test -race -count=1 -timeout 5m -run '^TestLoadUnderRace$$' ./bench
	@# The soak: a mixed load (admissions, policy and TrustRoot changes, key rotation, registry
	@# faults) through the real components, with the race detector; left out of the run above.
	SIGNET_BIN_DIR=$(BIN) SIGNET_SOAK_DURATION=2m $(GO) test -race -count=1 -timeout 10m -run '^TestSoak$$' ./test/soak
	@# test/crio is a module of its own (containers-image's dependencies stay out of signet's).
	cd test/crio && SIGNET_BIN_DIR=$(BIN) $(GO) test -count=1 -timeout 10m -tags containers_image_openpgp,exclude_graphdriver_btrfs ./...
	@# test/crio-v5.26: the same export loaded by containers-image v5.26 (CRI-O 1.28), the default --min-runtime.
	cd test/crio-v5.26 && SIGNET_BIN_DIR=$(BIN) $(GO) test -count=1 -timeout 10m -tags containers_image_openpgp,exclude_graphdriver_btrfs ./...
	$(MAKE) fuzz

# The soak alone, longer: make soak [SOAK_DURATION=1h] [SIGNET_SOAK_RESULTS=file for its JSON summary].
SOAK_DURATION ?= 15m
SOAK_TIMEOUT  ?= 2h
.PHONY: soak
soak: tools ## run the soak (test/soak) under -race for SOAK_DURATION (default 15m): zero wrong decisions, goroutines and heap flat
	SIGNET_BIN_DIR=$(BIN) SIGNET_SOAK_DURATION=$(SOAK_DURATION) $(GO) test -race -count=1 -timeout $(SOAK_TIMEOUT) -run '^TestSoak$$' -v ./test/soak

.PHONY: bench
bench: tools ## run the benchmarks and record them in bench/results/ (latest.json, a dated copy), bench/README.md and bench/latency.png
	SIGNET_BIN_DIR=$(BIN) $(GO) test -count=1 -timeout 30m -run '^TestSuite$$' ./bench -v -args -record $(CURDIR)/bench/results

.PHONY: playground
playground: tools ## start a real API server, a registry with sample images and signet as the webhook; run seed 001's checks; keep running until Ctrl-C
	SIGNET_BIN_DIR=$(BIN) $(GO) run ./test/playground/main $(PLAYGROUND_FLAGS)

.PHONY: clean
clean:
	rm -rf $(BIN)

.PHONY: help
help:
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-18s %s\n", $$1, $$2}'

.PHONY: update-trusted-root
update-trusted-root: ## refresh internal/trust/embedded from npm @sigstore/tuf (TRUSTED_ROOT_VERSION=x.y.z, default latest)
	hack/update-trusted-root.sh $(TRUSTED_ROOT_VERSION)
