package agent

import (
	"context"
	"net"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"metacircular.net/mcp/api"
	"metacircular.net/mcp/executor/containerd"
	"metacircular.net/mcp/internal/testenv"
)

// supClock is an injected clock for the restart supervisor: its timers
// fire only when the test advances time, and every armed delay is
// reported.
type supClock struct {
	mu     sync.Mutex
	now    time.Time
	timers []*supTimer
	armed  chan time.Duration
}

type supTimer struct {
	c       chan time.Time
	at      time.Time
	stopped bool
	clock   *supClock
}

func (t *supTimer) C() <-chan time.Time { return t.c }
func (t *supTimer) Stop() bool {
	t.clock.mu.Lock()
	defer t.clock.mu.Unlock()
	was := !t.stopped
	t.stopped = true
	return was
}

func (c *supClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *supClock) NewTimer(d time.Duration) containerd.Timer {
	c.mu.Lock()
	t := &supTimer{c: make(chan time.Time, 1), at: c.now.Add(d), clock: c}
	c.timers = append(c.timers, t)
	c.mu.Unlock()
	c.armed <- d
	return t
}

func (c *supClock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
	var keep []*supTimer
	for _, t := range c.timers {
		switch {
		case t.stopped:
		case !t.at.After(c.now):
			t.c <- c.now
		default:
			keep = append(keep, t)
		}
	}
	c.timers = keep
}

// TestCrashLoopBackedOff: a deployed component that starts crashing (its
// port is taken, so every start exits 1) is restarted only at the
// documented pace (1s, 2s, 4s, 8s, ... of the injected clock, never
// sooner), reported as crash-looping at the fifth exit (status: component
// crash-loop, drift, quarantine) and not restarted in a tight loop by the
// converge pass either.
func TestCrashLoopBackedOff(t *testing.T) {
	n := newTestNode(t)
	v1 := testenv.TestImage(t, n.registry, testenv.UniqueRepo("crashloop"), "v1")
	n.push(map[string]string{"mcp.toml": n.platform(), "services/web.toml": service("web", v1)}, "web v1")
	clock := &supClock{now: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), armed: make(chan time.Duration, 100)}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, err := Daemon(ctx, n.cfg, testLogger(t), false, WithSupervisorOptions(containerd.WithSupervisorClock(clock)))
		done <- err
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("daemon: %v", err)
			}
		case <-time.After(time.Minute):
			t.Error("daemon did not stop")
		}
	})
	c := api.NewClient(n.cfg.API.Socket)
	component := func() api.ComponentStatus {
		st, err := c.Status(context.Background())
		if err != nil {
			return api.ComponentStatus{}
		}
		svc, _ := st.Service("web")
		if len(svc.Components) == 0 {
			return api.ComponentStatus{}
		}
		return svc.Components[0]
	}
	waitFor(t, 60*time.Second, "web running", func() bool { return component().State == api.ComponentRunning })
	port := component().Ports["default"]

	// Kill it and take its port: every restart now exits at once.
	ct := n.containers()["web.web.a"]
	if err := syscall.Kill(int(ct.PID), syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	var ln net.Listener
	waitFor(t, 10*time.Second, "the port to be free", func() bool {
		var err error
		ln, err = net.Listen("tcp", "0.0.0.0:"+strconv.Itoa(port))
		return err == nil
	})
	defer ln.Close()

	restarts := func() int { return component().Restarts }
	want := []time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second, 16 * time.Second}
	for i, d := range want {
		var got time.Duration
		select {
		case got = <-clock.armed:
		case <-time.After(30 * time.Second):
			t.Fatalf("restart %d: no backoff armed", i+1)
		}
		if got != d {
			t.Fatalf("restart %d: backoff %s, want %s", i+1, got, d)
		}
		// Nothing is restarted before the clock says so, whatever the
		// agent's reconciles (every second here) do meanwhile.
		time.Sleep(1500 * time.Millisecond)
		if r := restarts(); r != i {
			t.Fatalf("before backoff %d elapsed: %d restarts, want %d", i+1, r, i)
		}
		if i == len(want)-1 {
			break // the fifth exit: crash loop reported; not advanced further
		}
		clock.advance(d)
		waitFor(t, 30*time.Second, "the restart", func() bool { return restarts() == i+1 })
	}
	waitFor(t, 30*time.Second, "crash-loop in status", func() bool { return component().State == api.ComponentCrashLoop })
	st, err := c.Status(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	svc, _ := st.Service("web")
	looping := false
	for _, d := range svc.Drift {
		looping = looping || (strings.Contains(d.What, "crash-looping") && !d.Repaired)
	}
	if !looping {
		t.Fatalf("no crash-loop drift in status: %+v", svc.Drift)
	}
	if len(st.Quarantine) != 1 || !strings.Contains(st.Quarantine[0].Reason, "crash-looping") {
		t.Fatalf("quarantine %+v", st.Quarantine)
	}
	if r := restarts(); r != 4 {
		t.Fatalf("%d restarts for 4 elapsed backoffs", r)
	}
	t.Logf("restarts: %d over %s of injected time; component %s: %s", restarts(), time.Duration(15)*time.Second, component().State, component().LastError)
}
