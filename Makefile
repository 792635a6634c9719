# authgate. Two commands on a fresh machine with Go: `make run`, `make test`.
# Tools (OPA, hey, benchstat, the collector builder) are pinned in
# internal/tools/go.mod and built through the Go module proxy into bin/.

SHELL := /bin/bash
GO    ?= go
BIN   := $(CURDIR)/bin
TOOLS := $(GO) build -C internal/tools -o

.PHONY: all build run test test-deps test-go test-rego fuzz bench load soak lint clean policy-push otelcol \
	image opa-image test-deploy-deps test-chart test-image k8s-check

all: build

# Static (CGO_ENABLED=0) and -trimpath, as internal/opatest builds it: the
# same compiled packages then serve make opa-image, which only relinks.
$(BIN)/opa: internal/tools/go.mod
	CGO_ENABLED=0 $(TOOLS) $(BIN)/opa -trimpath github.com/open-policy-agent/opa
# Helm has a tools module of its own (internal/tools/helm): its Kubernetes
# dependencies would otherwise move OPA's. The -X flags are those of Helm's
# own Makefile: its version, and the Kubernetes version that helm template
# and lint assume (that of its k8s.io/client-go), not v1.20.
$(BIN)/helm: internal/tools/helm/go.mod
	v=$$($(GO) list -C internal/tools/helm -m -f '{{.Version}}' helm.sh/helm/v3) && \
	k=$$($(GO) list -C internal/tools/helm -m -f '{{.Version}}' k8s.io/client-go | cut -d. -f2) && \
	$(GO) build -C internal/tools/helm -o $(BIN)/helm -ldflags "-X helm.sh/helm/v3/internal/version.version=$$v \
	  -X helm.sh/helm/v3/pkg/lint/rules.k8sVersionMajor=1 -X helm.sh/helm/v3/pkg/lint/rules.k8sVersionMinor=$$k \
	  -X helm.sh/helm/v3/pkg/chartutil.k8sVersionMajor=1 -X helm.sh/helm/v3/pkg/chartutil.k8sVersionMinor=$$k" \
	  helm.sh/helm/v3/cmd/helm
$(BIN)/hey: internal/tools/go.mod
	$(TOOLS) $(BIN)/hey github.com/rakyll/hey
$(BIN)/benchstat: internal/tools/go.mod
	$(TOOLS) $(BIN)/benchstat golang.org/x/perf/cmd/benchstat
$(BIN)/ocb: internal/tools/go.mod
	$(TOOLS) $(BIN)/ocb go.opentelemetry.io/collector/cmd/builder

## otelcol: the OpenTelemetry Collector the tracing end-to-end test exports to,
## built by the collector builder from internal/tools/otelcol/builder.yaml
## (sources in bin/otelcol-build). Rebuilt only when the manifest or the
## builder changes. Measured on the 2-core machine: cold (empty Go caches)
## 174 CPU-s; with the module cache warm 114 CPU-s (185 s wall); warm
## (touch the manifest) 4 s; up to date: nothing done.
OTELCOL_MANIFEST := internal/tools/otelcol/builder.yaml
otelcol: $(BIN)/otelcol
$(BIN)/otelcol: $(OTELCOL_MANIFEST) $(BIN)/ocb
	$(BIN)/ocb --config $(OTELCOL_MANIFEST) >$(BIN)/otelcol-build.log 2>&1 || { cat $(BIN)/otelcol-build.log; exit 1; }
	mv -f $(BIN)/otelcol-build/otelcol $@

build:
	$(GO) build -o $(BIN)/authgate ./cmd/authgate
	$(GO) build -o $(BIN)/devidp ./cmd/devidp

## run: OPA + the local development authorization server + authgate, configured from .env.example.
run: build $(BIN)/opa
	@bash test/stack.sh run

## test: Go unit and end-to-end tests (race detector on), Rego tests, brief fuzzing,
## the Helm chart (test-chart) and the image and chart under podman (test-image).
test: test-deps test-deploy-deps test-rego test-go fuzz test-chart test-image

# test-deps: the end-to-end tests run real proxies in front of /verify
# (nginx, Caddy, HAProxy) and the fleet tests a real redis-server. Installed
# quietly with apt-get, in one go, when absent and we are root (CI machines
# start without them); otherwise those tests skip, or fail when CI=true.
# Each package's program has the package's name.
TEST_DEBS := nginx caddy haproxy redis-server
test-deps:
	@missing=""; for p in $(TEST_DEBS); do \
	  command -v $$p >/dev/null 2>&1 || [ -x /usr/sbin/$$p ] || [ -x /usr/bin/$$p ] || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "installing$$missing (apt-get) for the end-to-end tests"; \
	    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing; } >/dev/null 2>&1 \
	      || echo "apt-get install$$missing failed: the tests that need them will skip (or fail when CI=true)"; \
	  else \
	    echo "not installed:$$missing; the tests that need them will skip (or fail when CI=true)"; \
	  fi; \
	fi

test-rego: $(BIN)/opa
	$(BIN)/opa fmt --fail -l opa-policies
	$(BIN)/opa check --strict opa-policies
	$(BIN)/opa test opa-policies -v

test-go: $(BIN)/opa $(BIN)/otelcol
	$(GO) vet ./...
	@unformatted=$$(gofmt -l cmd internal pkg test); if [ -n "$$unformatted" ]; then echo "gofmt needed: $$unformatted"; exit 1; fi
	OPA_BIN=$(BIN)/opa OTELCOL_BIN=$(BIN)/otelcol $(GO) test -race -count=1 ./...

# A count, not a duration: Go 1.26's fuzz coordinator can fail a target with
# "context deadline exceeded" when a duration ends mid-execution on a loaded
# machine (go.dev/issue/75804, fixed in Go 1.27). About 2-5 s per target here.
FUZZTIME ?= 30000x
# fuzz runs every Fuzz target in cmd/, internal/ and pkg/, found by name
# rather than listed, so a new or moved target cannot be left out.
fuzz:
	@set -e; for f in $$(grep -rl --include='*_test.go' '^func Fuzz' cmd internal pkg | sort); do \
	  for t in $$(sed -n 's/^func \(Fuzz[A-Za-z0-9_]*\)(.*/\1/p' $$f); do \
	    echo "$(GO) test -run='^$$' -fuzz='^$$t\$$' -fuzztime=$(FUZZTIME) ./$$(dirname $$f)/"; \
	    $(GO) test -run='^$$' -fuzz="^$$t\$$" -fuzztime=$(FUZZTIME) ./$$(dirname $$f)/; \
	  done; \
	done

## policy-push: deploy opa-policies/ (tests excluded) to a running OPA with PUT /v1/policies/{id}.
OPA_URL ?= http://127.0.0.1:8181
policy-push:
	OPA_URL=$(OPA_URL) $(GO) run ./test/policypush -dir opa-policies

## load: the hey load scenarios and baselines (test/load); starts the local stack when it is not running.
load: build $(BIN)/opa $(BIN)/hey
	$(GO) build -o $(BIN)/minihop ./test/load/minihop
	$(GO) build -o $(BIN)/bare ./test/load/bare
	$(GO) run ./test/load -bin $(BIN)

## bench: hot-path benchmarks (benchstat-friendly: make bench > new.txt; bin/benchstat old.txt new.txt).
BENCHCOUNT ?= 6
bench: $(BIN)/opa $(BIN)/benchstat
	OPA_BIN=$(BIN)/opa $(GO) test -run='^$$' -bench=. -benchmem -count=$(BENCHCOUNT) ./internal/... ./pkg/...

## soak: authgate under steady mixed load for SOAK_DURATION (default 2m) on loopback;
## fails on any unexpected status or when goroutines or heap do not return to baseline.
SOAK_DURATION ?= 2m
soak: $(BIN)/opa
	SOAK_DURATION=$(SOAK_DURATION) OPA_BIN=$(BIN)/opa $(GO) test -count=1 -v -timeout 60m -run '^TestSoak$$' ./test/soak/

clean:
	rm -rf $(BIN)

## image: authgate's container image, tagged $(IMAGE) (default authgate:dev): the static
## binary (CGO_ENABLED=0, -trimpath) built here and a CA bundle, FROM scratch, user 65532,
## built by whichever of podman, buildah or docker is installed (ENGINE= to choose).
IMAGE     ?= authgate:dev
OPA_IMAGE ?= authgate-opa:dev
ENGINE    ?= $(firstword $(foreach e,podman buildah docker,$(shell command -v $(e) 2>/dev/null)))
VERSION   ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
REVISION  ?= $(shell git rev-parse HEAD 2>/dev/null || echo unknown)
# podman on this project's machines: runc, cgroupfs, explicit ulimits (see the file).
export CONTAINERS_CONF ?= $(CURDIR)/test/k8s/containers.conf

image:
	@test -n "$(ENGINE)" || { echo "make image: needs podman, buildah or docker"; exit 1; }
	@mkdir -p $(BIN)/image
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags='-s -w' -o $(BIN)/image/authgate ./cmd/authgate
	cp /etc/ssl/certs/ca-certificates.crt $(BIN)/image/ca-certificates.crt
	$(ENGINE) build -f Dockerfile -t $(IMAGE) \
	  --build-arg VERSION=$(VERSION) --build-arg REVISION=$(REVISION) .

## opa-image: the pinned OPA, static, FROM scratch, tagged $(OPA_IMAGE): the chart's OPA
## sidecar for make test-chart-run (production uses upstream's openpolicyagent/opa).
opa-image: $(BIN)/opa
	@test -n "$(ENGINE)" || { echo "make opa-image: needs podman, buildah or docker"; exit 1; }
	@mkdir -p $(BIN)/opa-image
	CGO_ENABLED=0 $(TOOLS) $(BIN)/opa-image/opa -trimpath -ldflags='-s -w' github.com/open-policy-agent/opa
	$(ENGINE) build -f deploy/opa/Dockerfile -t $(OPA_IMAGE) \
	  --build-arg VERSION=$$($(GO) list -C internal/tools -m -f '{{.Version}}' github.com/open-policy-agent/opa) .

# test-deploy-deps: the image and chart tests run podman (with runc, and
# catatonit for kube play's pause image); buildah is the other builder
# make image accepts. Installed like test-deps: with apt-get, when absent
# and we are root; otherwise make test-image skips, or fails when CI=true.
test-deploy-deps:
	@if ! command -v podman >/dev/null 2>&1 || ! command -v catatonit >/dev/null 2>&1 || ! command -v runc >/dev/null 2>&1; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "installing podman, buildah, runc, catatonit (apt-get) for the image and chart tests"; \
	    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends podman buildah runc catatonit; } >/dev/null 2>&1 \
	      || echo "podman install failed: make test-image will skip (or fail when CI=true)"; \
	  else \
	    echo "podman not installed: make test-image will skip (or fail when CI=true)"; \
	  fi; \
	fi

## test-chart: deploy/helm/authgate: helm lint --strict; helm template of the defaults and
## of ci/*-values.yaml decoded strictly against the Kubernetes API types; values the
## schema or the templates must refuse (test/k8s, a module of its own). No containers.
test-chart: $(BIN)/helm
	cd test/k8s && $(GO) vet ./... && HELM=$(BIN)/helm $(GO) test -count=1 -skip 'Image|KubePlay' .

## test-image: make image and make opa-image with podman, then (test/k8s) the image's
## contents, the image run read-only answering the seed scenario and exiting 0 on SIGTERM,
## and the chart's Deployment run under podman kube play answering it too.
test-image: $(BIN)/helm $(BIN)/opa
	@if ! command -v podman >/dev/null 2>&1; then \
	  if [ "$$CI" = true ]; then echo "make test-image: podman is not installed, and CI=true"; exit 1; fi; \
	  echo "make test-image: podman is not installed: skipping"; exit 0; \
	fi; \
	$(MAKE) --no-print-directory ENGINE=podman image opa-image && \
	cd test/k8s && IMAGE=$(IMAGE) OPA_IMAGE=$(OPA_IMAGE) HELM=$(BIN)/helm OPA_BIN=$(BIN)/opa \
	  $(GO) test -count=1 -v -run 'Image|KubePlay' .

# kube-apiserver for make k8s-check: k8s.io/kubernetes through the Go module
# proxy (internal/tools/kubernetes), with the version -ldflags of
# Kubernetes' hack/lib/version.sh so that it reports v1.37.x, not v0.0.0.
# About 9 CPU-minutes the first time (some five minutes on an idle two-core machine).
$(BIN)/kube-apiserver: internal/tools/kubernetes/go.mod
	v=$$($(GO) list -C internal/tools/kubernetes -m -f '{{.Version}}' k8s.io/kubernetes) && \
	minor=$$(echo $$v | cut -d. -f2) && flags="" && \
	for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do \
	  flags="$$flags -X $$pkg.gitVersion=$$v -X $$pkg.gitMajor=1 -X $$pkg.gitMinor=$$minor -X $$pkg.gitTreeState=clean"; \
	done && \
	$(GO) build -C internal/tools/kubernetes -o $(BIN)/kube-apiserver -ldflags "-s -w$$flags" k8s.io/kubernetes/cmd/kube-apiserver

## k8s-check: the rendered chart (defaults, ci/*-values.yaml) applied to a real kube-apiserver
## (on etcd, both on loopback) with a server-side dry run and strict field validation, the
## ServiceMonitor CRD of the prometheus-operator module created first. Not in make test:
## building kube-apiserver takes about 9 CPU-minutes the first time; then about 7 s.
PROMETHEUS_OPERATOR ?= github.com/prometheus-operator/prometheus-operator@v0.85.0
k8s-check: $(BIN)/kube-apiserver $(BIN)/helm
	@if ! command -v etcd >/dev/null 2>&1; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "installing etcd-server (apt-get)"; \
	    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends etcd-server; } >/dev/null 2>&1; \
	  fi; \
	  command -v etcd >/dev/null 2>&1 || { echo "make k8s-check: etcd is not installed (apt-get install etcd-server)"; exit 1; }; \
	fi
	dir=$$($(GO) mod download -json $(PROMETHEUS_OPERATOR) | sed -n 's/^.*"Dir": "\(.*\)",*$$/\1/p') && \
	cd test/k8s && KUBE_APISERVER=$(BIN)/kube-apiserver HELM=$(BIN)/helm ETCD=$$(command -v etcd) \
	  SERVICEMONITOR_CRD=$$dir/example/prometheus-operator-crd/monitoring.coreos.com_servicemonitors.yaml \
	  $(GO) test -count=1 -v -run APIServer ./apiserver
