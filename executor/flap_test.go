package executor

import (
	"errors"
	"testing"
	"time"
)

// The converge pass's flap protection, on an injected clock: three
// repairs of one resource in the window go through, then the next waits
// 30s, then 60s, 120s, ... up to the cap; a quiet window starts over;
// other resources are not affected.
func TestRepairGate(t *testing.T) {
	g := &repairGate{burst: 3, window: 10 * time.Minute, initial: 30 * time.Second, max: 2 * time.Minute}
	t0 := time.Unix(1_000_000, 0)
	steps := []struct {
		at       time.Duration
		resource string
		allowed  bool
	}{
		{0, "web.web.a", true},
		{time.Second, "web.web.a", true},
		{2 * time.Second, "web.web.a", true}, // third: allowed, backoff 30s starts
		{3 * time.Second, "web.web.a", false},
		{3 * time.Second, "other.other.a", true}, // another resource: unaffected
		{31 * time.Second, "web.web.a", false},
		{32 * time.Second, "web.web.a", true}, // after 30s; next backoff 60s
		{91 * time.Second, "web.web.a", false},
		{92 * time.Second, "web.web.a", true}, // after 60s; next 120s
		{92*time.Second + 119*time.Second, "web.web.a", false},
		{92*time.Second + 120*time.Second, "web.web.a", true}, // capped at 2m from now on
		{92*time.Second + 240*time.Second, "web.web.a", true},
		// A whole quiet window: starts over with a fresh burst.
		{92*time.Second + 240*time.Second + 11*time.Minute, "web.web.a", true},
		{92*time.Second + 240*time.Second + 11*time.Minute + time.Second, "web.web.a", true},
	}
	for i, s := range steps {
		err := g.allow(s.resource, t0.Add(s.at))
		if (err == nil) != s.allowed {
			t.Fatalf("step %d (%s at +%s): allowed %v, want %v (%v)", i, s.resource, s.at, err == nil, s.allowed, err)
		}
		if err != nil && !errors.Is(err, ErrRepairBackedOff) {
			t.Fatalf("step %d: %v does not wrap ErrRepairBackedOff", i, err)
		}
	}
}
