package gitsync_test

import (
	"math/rand/v2"
	"testing"
	"time"

	gitsync "metacircular.net/mcp/sync"
)

func TestBackoffBounds(t *testing.T) {
	tests := []struct {
		name     string
		min, max time.Duration
	}{
		{"seconds to minutes", time.Second, 5 * time.Minute},
		{"min equals max", 3 * time.Second, 3 * time.Second},
		{"max below min is raised", 2 * time.Second, time.Second},
		{"huge max does not overflow", time.Second, 1<<63 - 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := gitsync.NewBackoff(tt.min, tt.max, rand.NewPCG(1, 2))
			hi := max(tt.max, tt.min)
			for n := range 200 {
				d := b.Next()
				// The n-th wait is within [min, min(max, min*2^(n+1))].
				ceil := tt.min
				for range n + 1 {
					if ceil >= hi/2 {
						ceil = hi
						break
					}
					ceil *= 2
				}
				ceil = min(ceil, hi)
				if d < tt.min || d > ceil {
					t.Fatalf("wait %d = %v, outside [%v, %v]", n, d, tt.min, ceil)
				}
			}
		})
	}
}

func TestBackoffJitterAndReset(t *testing.T) {
	b := gitsync.NewBackoff(time.Second, time.Minute, rand.NewPCG(7, 7))
	seen := map[time.Duration]bool{}
	for range 50 {
		d := b.Next()
		seen[d] = true
	}
	// At the cap, waits are spread over [1s, 1m], not all equal.
	if len(seen) < 40 {
		t.Errorf("only %d distinct waits in 50: jitter is missing", len(seen))
	}
	if b.Attempts() != 50 {
		t.Errorf("Attempts = %d, want 50", b.Attempts())
	}
	b.Reset()
	if d := b.Next(); d < time.Second || d > 2*time.Second {
		t.Errorf("first wait after Reset = %v, want within [1s, 2s]", d)
	}

	// The same seed gives the same sequence: tests and simulations can
	// reproduce a schedule.
	x := gitsync.NewBackoff(time.Second, time.Minute, rand.NewPCG(3, 4))
	y := gitsync.NewBackoff(time.Second, time.Minute, rand.NewPCG(3, 4))
	for i := range 20 {
		if a, b := x.Next(), y.Next(); a != b {
			t.Fatalf("wait %d differs with the same seed: %v vs %v", i, a, b)
		}
	}
}

func TestBackoffUnseeded(t *testing.T) {
	b := gitsync.NewBackoff(time.Millisecond, time.Second, nil)
	for range 100 {
		if d := b.Next(); d < time.Millisecond || d > time.Second {
			t.Fatalf("wait %v out of bounds", d)
		}
	}
}
