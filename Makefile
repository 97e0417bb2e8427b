# mcp — GitOps pull-based deployer.
GO        ?= go
VERSION   ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
# Reproducible: -trimpath drops local paths, -buildid= the per-build id;
# the same source and VERSION give a byte-identical binary (make reproducible).
LDFLAGS   := -s -w -buildid= -X metacircular.net/mcp/internal/version.Version=$(VERSION)
BIN       := bin/mcp
# golangci-lint: the one on PATH, else the pinned version installed into
# GOPATH/bin on first use.
GOLANGCI_VERSION := v2.15.0
GOLANGCI  ?= $(or $(shell command -v golangci-lint 2>/dev/null),$(shell $(GO) env GOPATH)/bin/golangci-lint)

# make install: DESTDIR for staging (packages), PREFIX for the binary.
PREFIX    ?= /usr/local
DESTDIR   ?=
UNITDIR   ?= /etc/systemd/system
CONFDIR   ?= /etc/mcp

.PHONY: install reproducible
.PHONY: crash-walk-long
.PHONY: all build test test-short vet lint fmt bench bench-micro bench-e2e bench-smoke fuzz clean proto

all: vet lint test build

build:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN) ./cmd/mcp

# Installs the binary, the systemd unit and, only if none exists yet, the
# example agent config (an existing /etc/mcp/agent.toml is never touched).
# The unit's ExecStart names /usr/local/bin/mcp; with another PREFIX it is
# rewritten to match.
install: build
	install -D -m 0755 $(BIN) $(DESTDIR)$(PREFIX)/bin/mcp
	install -d $(DESTDIR)$(UNITDIR)
	sed 's|/usr/local/bin/mcp|$(PREFIX)/bin/mcp|' examples/mcp-agent.service >$(DESTDIR)$(UNITDIR)/mcp-agent.service
	chmod 0644 $(DESTDIR)$(UNITDIR)/mcp-agent.service
	install -d -m 0755 $(DESTDIR)$(CONFDIR)
	@if [ -e $(DESTDIR)$(CONFDIR)/agent.toml ]; then \
		echo "keeping the existing $(DESTDIR)$(CONFDIR)/agent.toml"; \
	else \
		install -m 0600 examples/agent.toml $(DESTDIR)$(CONFDIR)/agent.toml; \
		echo "installed $(DESTDIR)$(CONFDIR)/agent.toml: set node and git.url before starting the agent"; \
	fi

# Builds twice, the second time with an empty build cache of its own (the
# shared cache is left alone), and compares the binaries byte for byte.
reproducible:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o bin/mcp.repro1 ./cmd/mcp
	cache=$$(mktemp -d) && CGO_ENABLED=0 GOCACHE=$$cache $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o bin/mcp.repro2 ./cmd/mcp; \
		rc=$$?; rm -rf $$cache; exit $$rc
	cmp bin/mcp.repro1 bin/mcp.repro2 && echo "reproducible: $$(sha256sum <bin/mcp.repro1 | cut -c1-64)"
	rm -f bin/mcp.repro1 bin/mcp.repro2

# The full suite: unit tests plus the real-component tests (containerd,
# registry, git). Needs root and the services .ci/run starts.
test:
	$(GO) test -count=1 -timeout 40m ./...

# Only what runs without root or external services.
test-short:
	$(GO) test -count=1 -short ./...

vet:
	$(GO) vet ./...

lint:
	@test -x $(GOLANGCI) || { echo "installing golangci-lint $(GOLANGCI_VERSION)"; $(GO) install github.com/golangci/golangci-lint/v2/cmd/golangci-lint@$(GOLANGCI_VERSION); }
	$(GOLANGCI) run ./...

fmt:
	gofmt -w $$(git ls-files '*.go')

# Benchmarks (see BENCHMARKS.md): bench runs them all, the end-to-end ones
# against a private containerd and registry (root; scripts/bench starts and
# stops them), and saves the raw output under bench/results/. bench-micro
# runs only the pure Go ones (spec, planner, sync), no root needed;
# bench-e2e only the end-to-end ones (package bench). bench-smoke runs
# every benchmark once with tiny sizes (CI, via .ci/run): it keeps them
# building and running and measures nothing.
bench:
	scripts/bench

bench-micro:
	scripts/bench micro

bench-e2e:
	scripts/bench e2e

bench-smoke:
	scripts/bench smoke

# Long fuzzing: every fuzzer for FUZZTIME, one after the other (go test
# fuzzes one target at a time; CI runs only the seed corpora). A failure
# stops the run and leaves its input under the package's testdata/fuzz/.
FUZZTIME ?= 60s
FUZZERS  := spec:FuzzLoad agent:FuzzParseConfig statusnote:FuzzReadNote statusnote:FuzzNotesTree \
	api:FuzzAPIRequest api:FuzzLogsRequest sync:FuzzTreeFSPath
fuzz:
	@for f in $(FUZZERS); do pkg=$${f%%:*}; name=$${f##*:}; \
		echo "== $$name (./$$pkg, $(FUZZTIME))"; \
		$(GO) test -run '^$$' -fuzz "^$$name\$$" -fuzztime $(FUZZTIME) ./$$pkg || exit 1; \
	done

# The long crash walk (docs/testing.md): the routed service's create,
# update and removal plans walked twice, the agent killed after each step
# (as in CI) and then killed from outside inside each step. Root and the
# services .ci/run starts.
crash-walk-long:
	MCP_TEST_LONG=1 $(GO) test -count=1 -timeout 60m -run '^Test(Crash|Kill)WalkRoutedService$$' -v ./agent

clean:
	rm -rf bin

# Regenerate the mc-proxy adapter's gRPC code (committed). Needs protoc
# (Debian protobuf-compiler) and, in GOPATH/bin, protoc-gen-go v1.36.12 and
# protoc-gen-go-grpc v1.6.2 (go install ...@version; never in go.mod).
proto:
	PATH="$$($(GO) env GOPATH)/bin:$$PATH" protoc --go_out=. --go_opt=paths=source_relative \
		--go-grpc_out=. --go-grpc_opt=paths=source_relative executor/mcproxy/proto/mcproxy.proto
