// Package bench holds mcp's end-to-end benchmarks: each runs mcp against
// the real containerd, registry and Git, and measures the raw limit (the
// raw containerd client, `git ls-remote`) in the same run, so the result
// is a ratio that survives a noisy machine. They are benchmarks only:
// `go test ./...` runs none of them, and -short skips them all.
//
// Run them with `make bench` (scripts/bench), which starts the services,
// picks -count and -benchtime, and saves the raw output. BENCHMARKS.md
// records the results.
package bench

import (
	"testing"

	"metacircular.net/mcp/internal/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }
