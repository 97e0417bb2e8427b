# mcp — GitOps pull-based deployer.
GO        ?= go
VERSION   ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS   := -s -w -X metacircular.net/mcp/internal/version.Version=$(VERSION)
BIN       := bin/mcp
GOLANGCI  ?= golangci-lint

.PHONY: all build test test-short vet lint fmt bench bench-micro fuzz clean proto

all: vet lint test build

build:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN) ./cmd/mcp

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
	@command -v $(GOLANGCI) >/dev/null 2>&1 || { echo "golangci-lint not installed: go install github.com/golangci/golangci-lint/v2/cmd/golangci-lint@latest"; exit 1; }
	$(GOLANGCI) run ./...

fmt:
	gofmt -w $$(git ls-files '*.go')

# Benchmarks (see BENCHMARKS.md): bench runs them all, the end-to-end ones
# against a private containerd and registry (root; scripts/bench starts and
# stops them), and saves the raw output under bench/results/. bench-micro
# runs only the pure Go ones (spec, planner, sync), no root needed.
bench:
	scripts/bench

bench-micro:
	scripts/bench micro

# Long fuzzing, one target at a time (CI runs only the seed corpora).
FUZZTIME ?= 60s
fuzz:
	$(GO) test -run '^$$' -fuzz '^FuzzLoad$$' -fuzztime $(FUZZTIME) ./spec

clean:
	rm -rf bin

# Regenerate the mc-proxy adapter's gRPC code (committed). Needs protoc
# (Debian protobuf-compiler) and, in GOPATH/bin, protoc-gen-go v1.36.12 and
# protoc-gen-go-grpc v1.6.2 (go install ...@version; never in go.mod).
proto:
	PATH="$$($(GO) env GOPATH)/bin:$$PATH" protoc --go_out=. --go_opt=paths=source_relative \
		--go-grpc_out=. --go-grpc_opt=paths=source_relative executor/mcproxy/proto/mcproxy.proto
