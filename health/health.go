// Package health runs the health checks of [components.health]: one probe
// (TCP connect, HTTP GET, gRPC health protocol), the wait a rollout does
// until a new container is healthy, and the threshold bookkeeping of the
// agent's continuous watch. Time comes from an injectable Clock so that the
// waits and thresholds are tested without sleeping.
package health

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"metacircular.net/mcp/spec"
)

// Clock is the time source of waits and trackers.
type Clock interface {
	Now() time.Time
	After(d time.Duration) <-chan time.Time
}

// RealClock is the wall clock.
type RealClock struct{}

func (RealClock) Now() time.Time                         { return time.Now() }
func (RealClock) After(d time.Duration) <-chan time.Time { return time.After(d) }

// Target is one check with the address it connects to.
type Target struct {
	Check spec.Health
	// Addr is "host:port", normally 127.0.0.1 and the leased port.
	Addr string
}

func (t Target) String() string { return t.Check.String() + " (" + t.Addr + ")" }

// Probe runs one check against t.Addr, bounded by the check's timeout (and
// ctx). It returns nil when the check passes, else why it failed, in words
// for status ("connection refused", "GET /healthz answered 503").
func Probe(ctx context.Context, t Target) error {
	timeout := t.Check.Timeout
	if timeout <= 0 {
		timeout = spec.DefaultHealthTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var err error
	switch t.Check.Type {
	case spec.HealthHTTP:
		err = probeHTTP(ctx, t)
	case spec.HealthGRPC:
		err = probeGRPC(ctx, t)
	default:
		err = probeTCP(ctx, t.Addr)
	}
	if err != nil && ctx.Err() != nil && errors.Is(context.Cause(ctx), context.DeadlineExceeded) {
		return fmt.Errorf("no answer within %s", timeout)
	}
	return err
}

func probeTCP(ctx context.Context, addr string) error {
	var d net.Dialer
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return shortNetErr(err)
	}
	return c.Close()
}

func probeHTTP(ctx context.Context, t Target) error {
	url := "http://" + t.Addr + t.Check.Path
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	req.Header.Set("User-Agent", "mcp-health")
	// A fresh connection per check, redirects not followed: the answer is
	// the component's own, not a cached connection's or another URL's.
	client := &http.Client{
		Transport:     &http.Transport{DisableKeepAlives: true, Proxy: nil},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	resp, err := client.Do(req)
	if err != nil {
		var ue interface{ Unwrap() error }
		if errors.As(err, &ue) {
			return shortNetErr(ue.Unwrap())
		}
		return err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode != t.Check.ExpectStatus {
		return fmt.Errorf("GET %s answered %d, want %d", t.Check.Path, resp.StatusCode, t.Check.ExpectStatus)
	}
	return nil
}

func probeGRPC(ctx context.Context, t Target) error {
	conn, err := grpc.NewClient("passthrough:///"+t.Addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return err
	}
	defer conn.Close()
	resp, err := healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{Service: t.Check.Service})
	if err != nil {
		return fmt.Errorf("grpc.health.v1.Health/Check: %w", err)
	}
	if s := resp.GetStatus(); s != healthpb.HealthCheckResponse_SERVING {
		return fmt.Errorf("grpc.health.v1.Health/Check answered %s", s)
	}
	return nil
}

// shortNetErr keeps the useful end of a dial error: "connection refused"
// rather than "dial tcp 127.0.0.1:1234: connect: connection refused".
func shortNetErr(err error) error {
	s := err.Error()
	if i := strings.LastIndex(s, ": "); i >= 0 && strings.HasPrefix(s, "dial ") {
		return errors.New(s[i+2:])
	}
	return err
}

// Retry is how soon a failing check is tried again while a rollout waits:
// far shorter than the interval, so a container that starts listening is
// seen at once.
const Retry = 250 * time.Millisecond

// WaitOptions configure Wait.
type WaitOptions struct {
	Clock Clock
	// Retry overrides Retry (tests).
	Retry time.Duration
	// Alive is asked before each round; an error (the container exited)
	// ends the wait at once with that error.
	Alive func(ctx context.Context) error
	// Probe overrides Probe (tests).
	Probe func(ctx context.Context, t Target) error
}

// ErrNotHealthy is wrapped by Wait's error when the deadline passed.
var ErrNotHealthy = errors.New("not healthy")

// Wait returns once every target passed healthy_threshold consecutive
// checks, or an error: the deadline passed (wrapping ErrNotHealthy, with
// each failing target's last error), Alive failed, or ctx ended (wrapping
// ctx's cause, so a wait cancelled by a new commit says so).
func Wait(ctx context.Context, targets []Target, deadline time.Duration, o WaitOptions) error {
	if o.Clock == nil {
		o.Clock = RealClock{}
	}
	if o.Retry <= 0 {
		o.Retry = Retry
	}
	if o.Probe == nil {
		o.Probe = Probe
	}
	start := o.Clock.Now()
	end := start.Add(deadline)
	streak := make([]int, len(targets))
	last := make([]error, len(targets))
	for {
		if o.Alive != nil {
			if err := o.Alive(ctx); err != nil {
				return err
			}
		}
		next := time.Duration(-1)
		for i, t := range targets {
			need := max(t.Check.HealthyThreshold, 1)
			if streak[i] >= need {
				continue
			}
			if err := o.Probe(ctx, t); err != nil {
				streak[i], last[i] = 0, err
			} else {
				streak[i], last[i] = streak[i]+1, nil
			}
			if ctx.Err() != nil {
				return fmt.Errorf("health wait stopped: %w", context.Cause(ctx))
			}
			if streak[i] >= need {
				continue
			}
			d := o.Retry
			if streak[i] > 0 {
				d = max(t.Check.Interval, o.Retry)
			}
			if next < 0 || d < next {
				next = d
			}
		}
		if next < 0 {
			return nil // every target reached its threshold
		}
		now := o.Clock.Now()
		if !now.Before(end) {
			var why []string
			for i, t := range targets {
				if streak[i] < max(t.Check.HealthyThreshold, 1) {
					msg := fmt.Sprintf("%d of %d checks passed", streak[i], t.Check.HealthyThreshold)
					if last[i] != nil {
						msg = last[i].Error()
					}
					why = append(why, t.Check.String()+": "+msg)
				}
			}
			return fmt.Errorf("%w within %s: %s", ErrNotHealthy, deadline, strings.Join(why, "; "))
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("health wait stopped: %w", context.Cause(ctx))
		case <-o.Clock.After(min(next, end.Sub(now))):
		}
	}
}

// States of a watched component.
const (
	StateUnknown   = "unknown"   // not checked yet
	StateStarting  = "starting"  // failing, but within its start period
	StateHealthy   = "healthy"   // healthy_threshold consecutive passes
	StateUnhealthy = "unhealthy" // unhealthy_threshold consecutive failures
)

// Tracker applies the thresholds to the results of one check over time,
// for the agent's continuous watch. It is not safe for concurrent use.
type Tracker struct {
	Check spec.Health
	// Started is when the container (re)started: failures within the
	// start period do not count.
	Started time.Time

	state     string
	pass      int
	fail      int
	lastErr   error
	lastCheck time.Time
	since     time.Time
}

// NewTracker starts a tracker for check on a container started at started.
// A component that passed its rollout wait starts healthy.
func NewTracker(check spec.Health, started time.Time, healthy bool) *Tracker {
	t := &Tracker{Check: check, Started: started, state: StateUnknown, since: started}
	if healthy {
		t.state = StateHealthy
	}
	return t
}

// Observe records one result at now and returns the state after it.
func (t *Tracker) Observe(now time.Time, err error) string {
	t.lastCheck, t.lastErr = now, err
	prev := t.state
	if err == nil {
		t.pass, t.fail = t.pass+1, 0
		if t.pass >= max(t.Check.HealthyThreshold, 1) {
			t.state = StateHealthy
		}
	} else {
		t.pass = 0
		if now.Sub(t.Started) < t.Check.StartPeriod {
			if t.state == StateUnknown {
				t.state = StateStarting
			}
		} else {
			t.fail++
			if t.fail >= max(t.Check.UnhealthyThreshold, 1) {
				t.state = StateUnhealthy
			}
		}
	}
	if t.state != prev {
		t.since = now
	}
	return t.state
}

// Due reports whether the next check is due at now.
func (t *Tracker) Due(now time.Time) bool {
	return t.lastCheck.IsZero() || now.Sub(t.lastCheck) >= t.Check.Interval
}

// Result is a tracker's view, for status.
type Result struct {
	State     string
	Since     time.Time
	LastCheck time.Time
	LastError string
	// Failures counts the consecutive failures that counted.
	Failures int
}

// Result returns the tracker's current view.
func (t *Tracker) Result() Result {
	r := Result{State: t.state, Since: t.since, LastCheck: t.lastCheck, Failures: t.fail}
	if t.lastErr != nil {
		r.LastError = t.lastErr.Error()
	}
	return r
}
