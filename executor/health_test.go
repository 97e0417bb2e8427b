package executor

import (
	"context"
	"errors"
	"testing"
	"time"

	"metacircular.net/mcp/spec"
)

func TestHealthTargets(t *testing.T) {
	ports := map[string]int{"default": 10001, "admin": 10002}
	lookup := func(route string) (int, error) {
		p, ok := ports[route]
		if !ok {
			return 0, errors.New("no lease")
		}
		return p, nil
	}
	tests := []struct {
		name string
		comp spec.Component
		want []string
	}{
		{"default: every route", spec.Component{Routes: []spec.Route{{}, {Name: "admin"}}},
			[]string{"tcp on route default (127.0.0.1:10001)", "tcp on route admin (127.0.0.1:10002)"}},
		{"fixed port", spec.Component{FixedPorts: []int{53}}, []string{"tcp on fixed port 53 (127.0.0.1:53)"}},
		{"declared http on a named route", spec.Component{Routes: []spec.Route{{}, {Name: "admin"}},
			Health: &spec.Health{Type: spec.HealthHTTP, Route: "admin", Path: "/healthz", ExpectStatus: 204}},
			[]string{"http on route admin GET /healthz → 204 (127.0.0.1:10002)"}},
		{"no ports: no check", spec.Component{}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ts, err := HealthTargets(tt.comp, "127.0.0.1", lookup)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, x := range ts {
				got = append(got, x.String())
			}
			if len(got) != len(tt.want) {
				t.Fatalf("targets %q, want %q", got, tt.want)
			}
			for i := range got {
				if got[i] != tt.want[i] {
					t.Fatalf("target %d: %q, want %q", i, got[i], tt.want[i])
				}
			}
		})
	}
	if _, err := HealthTargets(spec.Component{Routes: []spec.Route{{Name: "gone"}}}, "127.0.0.1", lookup); err == nil {
		t.Fatal("a route without a lease gave a target")
	}
}

// Only waits see the stop context that InterruptWaits attaches; its cause
// is what they report.
func TestInterruptWaits(t *testing.T) {
	stop, cancel := context.WithCancelCause(context.Background())
	ctx := InterruptWaits(context.Background(), stop)
	wctx, done := interruptible(ctx)
	defer done()
	newer := errors.New("a newer commit arrived")
	cancel(newer)
	select {
	case <-wctx.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("the wait's context did not end with the stop context")
	}
	if !errors.Is(context.Cause(wctx), newer) {
		t.Fatalf("cause %v", context.Cause(wctx))
	}
	if ctx.Err() != nil {
		t.Fatal("the Apply context itself was cancelled: steps that change something must not be cut short")
	}
	plain, done2 := interruptible(context.Background())
	defer done2()
	if plain.Err() != nil {
		t.Fatal("a wait without a stop context ended")
	}
}
