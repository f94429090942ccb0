# Sluice. `make run` builds and starts the gateway on the dev default;
# `make test` runs every test (lint, unit, integration, end-to-end) with -race,
# the allocation tests without it, and govulncheck.

GO        ?= go
VERSION   ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
COMMIT    ?= $(shell git rev-parse HEAD 2>/dev/null)
LDFLAGS   := -X main.version=$(VERSION) -X main.commit=$(COMMIT)
GOBIN     := $(shell $(GO) env GOPATH)/bin
STATICCHECK ?= $(GOBIN)/staticcheck
FUZZTIME  ?= 10s
SOAK_DURATION ?= 5m
# Go plugins need cgo, and the host and its plugins must be built alike.
export CGO_ENABLED = 1

.PHONY: all build plugins run test test-race unit e2e alloc vuln fuzz-short bench soak lint fmt tidy-check clean

all: build plugins

build:
	$(GO) build -ldflags '$(LDFLAGS)' -o bin/sluice ./cmd/sluice

plugins:
	@mkdir -p bin/plugins bin/functions
	@for d in plugins/examples/*/; do \
	  n=$$(basename $$d); \
	  if [ -f $$d/plugin.go ]; then \
	    echo "$(GO) build -buildmode=plugin -o bin/plugins/$$n.so ./$$d"; \
	    $(GO) build -buildmode=plugin -o bin/plugins/$$n.so ./$$d || exit 1; \
	  elif [ -f $$d/main.go ]; then \
	    echo "$(GO) build -o bin/functions/$$n ./$$d"; \
	    $(GO) build -o bin/functions/$$n ./$$d || exit 1; \
	  fi; \
	done

run: build plugins
	bin/sluice serve -c configs/sluice.yaml

# Every test, with the race detector, in random order; then the allocation
# tests, which the race detector's own allocations make it skip; then
# govulncheck.
test: lint
	$(GO) test -race -shuffle=on -timeout 15m ./...
	$(MAKE) alloc
	$(MAKE) vuln

# The allocation tests (TestXxxAlloc…), without -race.
alloc:
	$(GO) test -run Alloc -count=1 ./...

# govulncheck: a reached vulnerability in a required module fails; one in the
# standard library of the installed Go is reported (VULN_STRICT_STDLIB=1
# fails on it too).
vuln:
	GO=$(GO) .ci/vulncheck

# Every fuzz target for FUZZTIME after its seed corpus.
fuzz-short:
	GO=$(GO) FUZZTIME=$(FUZZTIME) .ci/fuzz-short

test-race: test

# Unit and integration tests only (no end-to-end with the real binary).
unit:
	$(GO) test -race -shuffle=on -short ./...

e2e:
	$(GO) test -race -count=1 -run 'E2E' -v ./cmd/sluice/...

bench: build plugins
	bin/sluice bench suite

# SOAK_DURATION of mixed HTTP and Kafka load with worker crashes and reloads;
# not part of `make test`.
soak: build plugins
	bin/sluice bench soak -duration $(SOAK_DURATION)

lint: tidy-check
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	@test -x $(STATICCHECK) || $(GO) install honnef.co/go/tools/cmd/staticcheck@v0.8.2
	$(STATICCHECK) ./...

# go mod tidy must not change go.mod/go.sum; the originals wait in a
# private temp directory, restored when it did, removed either way.
tidy-check:
	@tmp=$$(mktemp -d); trap 'rm -rf "$$tmp"' EXIT; \
	cp go.mod go.sum "$$tmp"/; \
	$(GO) mod tidy; \
	if ! git diff --quiet -- go.mod go.sum; then \
	  echo "go mod tidy changes go.mod/go.sum:"; git --no-pager diff -- go.mod go.sum; \
	  cp "$$tmp"/go.mod "$$tmp"/go.sum .; exit 1; fi

fmt:
	gofmt -w $$(git ls-files '*.go')

clean:
	rm -rf bin
