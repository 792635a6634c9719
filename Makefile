# authgate. Two commands on a fresh machine with Go: `make run`, `make test`.
# Tools (OPA, hey, benchstat, the collector builder) are pinned in
# internal/tools/go.mod and built through the Go module proxy into bin/.

SHELL := /bin/bash
GO    ?= go
BIN   := $(CURDIR)/bin
TOOLS := $(GO) build -C internal/tools -o

.PHONY: all build run test test-deps test-go test-rego fuzz bench load soak lint clean policy-push otelcol

all: build

$(BIN)/opa: internal/tools/go.mod
	$(TOOLS) $(BIN)/opa github.com/open-policy-agent/opa
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

## test: Go unit and end-to-end tests (race detector on), Rego tests, brief fuzzing.
test: test-deps test-rego test-go fuzz

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
fuzz:
	$(GO) test -run='^$$' -fuzz='^FuzzBearerToken$$' -fuzztime=$(FUZZTIME) ./internal/gateway/
	$(GO) test -run='^$$' -fuzz='^FuzzCleanPath$$' -fuzztime=$(FUZZTIME) ./internal/gateway/
	$(GO) test -run='^$$' -fuzz='^FuzzVerifyPath$$' -fuzztime=$(FUZZTIME) ./internal/gateway/
	$(GO) test -run='^$$' -fuzz='^FuzzParse$$' -fuzztime=$(FUZZTIME) ./pkg/introspect/
	$(GO) test -run='^$$' -fuzz='^FuzzParseResult$$' -fuzztime=$(FUZZTIME) ./pkg/opa/
	$(GO) test -run='^$$' -fuzz='^FuzzVerify$$' -fuzztime=$(FUZZTIME) ./internal/jwtauth/
	$(GO) test -run='^$$' -fuzz='^FuzzNormalizeHTU$$' -fuzztime=$(FUZZTIME) ./internal/dpop/
	$(GO) test -run='^$$' -fuzz='^FuzzParse$$' -fuzztime=$(FUZZTIME) ./internal/certbind/

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
