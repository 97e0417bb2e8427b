package health

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	grpchealth "google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"metacircular.net/mcp/spec"
)

// autoClock is a clock whose After advances time at once: a Wait runs
// through its whole schedule instantly and deterministically.
type autoClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *autoClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *autoClock) After(d time.Duration) <-chan time.Time {
	c.mu.Lock()
	c.now = c.now.Add(d)
	ch := make(chan time.Time, 1)
	ch <- c.now
	c.mu.Unlock()
	return ch
}

func check(typ string) spec.Health {
	return spec.Health{Type: typ, Interval: time.Second, Timeout: time.Second, HealthyThreshold: 1, UnhealthyThreshold: 3,
		Path: "/healthz", ExpectStatus: 200}
}

func closedAddr(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

func TestProbe(t *testing.T) {
	httpSrv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/healthz":
			w.WriteHeader(http.StatusOK)
		case "/moved":
			http.Redirect(w, r, "/healthz", http.StatusFound)
		default:
			w.WriteHeader(http.StatusServiceUnavailable)
		}
	}))
	defer httpSrv.Close()
	httpAddr := strings.TrimPrefix(httpSrv.URL, "http://")

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	gs := grpc.NewServer()
	hs := grpchealth.NewServer()
	hs.SetServingStatus("", healthpb.HealthCheckResponse_SERVING)
	hs.SetServingStatus("mcq.v1.Queue", healthpb.HealthCheckResponse_NOT_SERVING)
	healthpb.RegisterHealthServer(gs, hs)
	go func() { _ = gs.Serve(ln) }() // ends with Stop
	defer gs.Stop()
	grpcAddr := ln.Addr().String()

	// Accepts the connection, never answers: the timeout must end it.
	silent, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()

	closed := closedAddr(t)
	with := func(h spec.Health, f func(*spec.Health)) spec.Health { f(&h); return h }
	tests := []struct {
		name    string
		target  Target
		wantErr string // "" passes
	}{
		{"tcp open", Target{check(spec.HealthTCP), httpAddr}, ""},
		{"tcp refused", Target{check(spec.HealthTCP), closed}, "connection refused"},
		{"http 200", Target{check(spec.HealthHTTP), httpAddr}, ""},
		{"http 503", Target{with(check(spec.HealthHTTP), func(h *spec.Health) { h.Path = "/down" }), httpAddr}, "GET /down answered 503, want 200"},
		{"http expecting 503", Target{with(check(spec.HealthHTTP), func(h *spec.Health) { h.Path, h.ExpectStatus = "/down", 503 }), httpAddr}, ""},
		{"http redirect not followed", Target{with(check(spec.HealthHTTP), func(h *spec.Health) { h.Path = "/moved" }), httpAddr}, "answered 302"},
		{"http refused", Target{check(spec.HealthHTTP), closed}, "connection refused"},
		{"http silent: timeout", Target{with(check(spec.HealthHTTP), func(h *spec.Health) { h.Timeout = 200 * time.Millisecond }), silent.Addr().String()}, "no answer within 200ms"},
		{"grpc serving", Target{check(spec.HealthGRPC), grpcAddr}, ""},
		{"grpc not serving", Target{with(check(spec.HealthGRPC), func(h *spec.Health) { h.Service = "mcq.v1.Queue" }), grpcAddr}, "answered NOT_SERVING"},
		{"grpc unknown service", Target{with(check(spec.HealthGRPC), func(h *spec.Health) { h.Service = "nope" }), grpcAddr}, "NotFound"},
		{"grpc on an http server", Target{check(spec.HealthGRPC), httpAddr}, "grpc.health.v1.Health/Check"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := Probe(t.Context(), tt.target)
			switch {
			case tt.wantErr == "" && err != nil:
				t.Fatalf("Probe: %v", err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Fatalf("Probe = %v, want an error containing %q", err, tt.wantErr)
			}
		})
	}
}

// scripted answers from a list of results per address, then the last one.
type scripted struct {
	mu    sync.Mutex
	res   map[string][]error
	calls map[string]int
}

func (s *scripted) probe(_ context.Context, t Target) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.calls == nil {
		s.calls = map[string]int{}
	}
	rs := s.res[t.Addr]
	i := min(s.calls[t.Addr], len(rs)-1)
	s.calls[t.Addr]++
	return rs[i]
}

func TestWait(t *testing.T) {
	refused := errors.New("connection refused")
	thresh := func(n int) spec.Health { h := check(spec.HealthTCP); h.HealthyThreshold = n; return h }
	tests := []struct {
		name     string
		targets  []Target
		script   map[string][]error
		deadline time.Duration
		alive    func(context.Context) error
		wantErr  string
		// wantElapsed is the clock time the wait took.
		wantElapsed time.Duration
	}{
		{"healthy at once", []Target{{thresh(1), "a"}}, map[string][]error{"a": {nil}}, 10 * time.Second, nil, "", 0},
		{"refused, then listening: retried every 250ms", []Target{{thresh(1), "a"}},
			map[string][]error{"a": {refused, refused, refused, nil}}, 10 * time.Second, nil, "", 750 * time.Millisecond},
		{"threshold 3: passes spaced by the interval", []Target{{thresh(3), "a"}},
			map[string][]error{"a": {nil}}, 10 * time.Second, nil, "", 2 * time.Second},
		{"a failure resets the streak", []Target{{thresh(2), "a"}},
			map[string][]error{"a": {nil, refused, nil, nil}}, 10 * time.Second, nil, "", 2250 * time.Millisecond},
		{"every target must pass", []Target{{thresh(1), "a"}, {thresh(1), "b"}},
			map[string][]error{"a": {nil}, "b": {refused, nil}}, 10 * time.Second, nil, "", 250 * time.Millisecond},
		{"never healthy: deadline, with the last error", []Target{{thresh(1), "a"}},
			map[string][]error{"a": {refused}}, 2 * time.Second, nil, "not healthy within 2s: tcp on fixed port 0: connection refused", 2 * time.Second},
		{"container exited: at once", []Target{{thresh(1), "a"}},
			map[string][]error{"a": {refused}}, 10 * time.Second,
			func(context.Context) error { return errors.New("container exited with code 1") }, "container exited with code 1", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clock := &autoClock{now: time.Unix(1000, 0)}
			s := &scripted{res: tt.script}
			err := Wait(t.Context(), tt.targets, tt.deadline, WaitOptions{Clock: clock, Alive: tt.alive, Probe: s.probe})
			switch {
			case tt.wantErr == "" && err != nil:
				t.Fatalf("Wait: %v", err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Fatalf("Wait = %v, want an error containing %q", err, tt.wantErr)
			}
			if got := clock.Now().Sub(time.Unix(1000, 0)); got != tt.wantElapsed {
				t.Fatalf("the wait took %s of clock time, want %s", got, tt.wantElapsed)
			}
		})
	}
}

// A cancelled context (a new commit arrived) ends the wait at once and
// says why.
func TestWaitCancelled(t *testing.T) {
	newCommit := errors.New("a new commit arrived")
	ctx, cancel := context.WithCancelCause(t.Context())
	done := make(chan error, 1)
	go func() {
		done <- Wait(ctx, []Target{{check(spec.HealthTCP), closedAddr(t)}}, time.Hour, WaitOptions{})
	}()
	time.Sleep(300 * time.Millisecond)
	cancel(newCommit)
	select {
	case err := <-done:
		if !errors.Is(err, newCommit) {
			t.Fatalf("Wait = %v, want the cancellation cause", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Wait did not return after its context was cancelled")
	}
}

func TestTracker(t *testing.T) {
	h := check(spec.HealthTCP)
	h.HealthyThreshold, h.UnhealthyThreshold, h.StartPeriod = 2, 3, 5*time.Second
	t0 := time.Unix(1000, 0)
	tr := NewTracker(h, t0, false)
	bad := errors.New("connection refused")
	steps := []struct {
		at   time.Duration
		err  error
		want string
	}{
		{1 * time.Second, bad, StateStarting}, // within the start period: not counted
		{4 * time.Second, bad, StateStarting},
		{6 * time.Second, bad, StateStarting}, // counted: 1 of 3
		{7 * time.Second, nil, StateStarting}, // 1 of 2 passes
		{8 * time.Second, nil, StateHealthy},
		{9 * time.Second, bad, StateHealthy},
		{10 * time.Second, bad, StateHealthy},
		{11 * time.Second, bad, StateUnhealthy},
		{12 * time.Second, nil, StateUnhealthy},
		{13 * time.Second, nil, StateHealthy},
	}
	for _, s := range steps {
		if got := tr.Observe(t0.Add(s.at), s.err); got != s.want {
			t.Fatalf("at %s (err %v): state %s, want %s", s.at, s.err, got, s.want)
		}
	}
	r := tr.Result()
	if r.Since != t0.Add(13*time.Second) || r.LastError != "" {
		t.Fatalf("result %+v", r)
	}
	if tr.Due(t0.Add(13500*time.Millisecond)) || !tr.Due(t0.Add(14*time.Second)) {
		t.Fatal("Due does not follow the interval")
	}
}
