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
	c := n.startDaemon(WithSupervisorOptions(containerd.WithSupervisorClock(clock)))
	component := func() api.ComponentStatus { return webComponent(c) }
	waitFor(t, 60*time.Second, "web running", func() bool { return component().State == api.ComponentRunning })
	ln := n.breakRestarts(t, "web.web.a", component().Ports["default"])
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

// webComponent is the first component of service web in c's status (zero
// when there is none yet).
func webComponent(c *api.Client) api.ComponentStatus {
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

// breakRestarts kills container id and takes its port, so that every
// restart of it exits at once; the caller closes the listener.
func (n *testNode) breakRestarts(t *testing.T, id string, port int) net.Listener {
	t.Helper()
	if err := syscall.Kill(int(n.containers()[id].PID), syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	var ln net.Listener
	waitFor(t, 10*time.Second, "the port to be free", func() bool {
		var err error
		ln, err = net.Listen("tcp", "0.0.0.0:"+strconv.Itoa(port))
		return err == nil
	})
	return ln
}

// TestCrashLoopAfterRolloutReverts: behind haproxy (blue-green, the
// default for a routed service), v2 passes its rollout and then starts
// crash-looping (killed, its port taken). At the crash loop the agent goes
// back to v1, the version v2 replaced, as a normal blue-green update: v1
// starts in the other slot, the route switches back, v2's container goes.
// v2 is quarantined with a "rolled back" reason and the revert is an
// event. The next commit that changes the service deploys normally.
func TestCrashLoopAfterRolloutReverts(t *testing.T) {
	n := newIngressNode(t)
	repo := testenv.UniqueRepo("crashrevert")
	v1 := testenv.TestImage(t, n.registry, repo, "v1")
	v2 := testenv.TestImage(t, n.registry, repo, "v2")
	host := "web.svc.mcp.test.internal"
	n.push(map[string]string{"mcp.toml": n.platform(), "services/web.toml": n.webService("web", v1, "", fastHTTPHealth)}, "web v1")
	clock := &supClock{now: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), armed: make(chan time.Duration, 100)}
	c := n.startDaemon(WithSupervisorOptions(containerd.WithSupervisorClock(clock)))
	runs := func(image string) func() bool {
		return func() bool {
			comp := webComponent(c)
			return comp.State == api.ComponentRunning && comp.Image == image
		}
	}
	waitFor(t, time.Minute, "v1 running", runs(v1))
	roots := n.mcpCert(t, host)
	n.push(map[string]string{"services/web.toml": n.webService("web", v2, "", fastHTTPHealth)}, "web v2")
	waitFor(t, time.Minute, "v2 running", runs(v2))
	mustThrough(t, n.l7, host, roots, "version=v2")
	v2ID := webComponent(c).ContainerID
	ln := n.breakRestarts(t, v2ID, webComponent(c).Ports["default"])
	defer ln.Close()
	for _, d := range []time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second, 16 * time.Second} {
		select {
		case got := <-clock.armed:
			if got != d {
				t.Fatalf("backoff %s, want %s", got, d)
			}
		case <-time.After(30 * time.Second):
			t.Fatalf("no backoff of %s armed", d)
		}
		if d == 16*time.Second {
			break // the fifth exit: the crash loop is reported
		}
		clock.advance(d)
	}
	waitFor(t, time.Minute, "v1 running again", runs(v1))
	if id := webComponent(c).ContainerID; id == v2ID {
		t.Fatalf("v1 runs in v2's slot (%s): want the other slot, as a blue-green update", id)
	}
	mustThrough(t, n.l7, host, roots, "version=v1")
	waitFor(t, 30*time.Second, "v2's container removed", func() bool {
		_, ok := n.containers()[v2ID]
		return !ok
	})
	st, err := c.Status(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if len(st.Quarantine) != 1 || !strings.HasPrefix(st.Quarantine[0].Reason, "rolled back: container "+v2ID+" is crash-looping") {
		t.Fatalf("quarantine %+v, want v2 rolled back for its crash loop", st.Quarantine)
	}
	reverted := false
	for _, e := range allEvents(t, c) {
		reverted = reverted || (e.Kind == "revert" && strings.Contains(e.Message, "crash-looping"))
	}
	if !reverted {
		t.Error("no revert event for the crash loop")
	}
	// Still v1 a few reconciles later: the revert is not undone.
	time.Sleep(3 * time.Second)
	if !runs(v1)() {
		t.Fatalf("web after more reconciles: %+v", webComponent(c))
	}

	// The next change to the service is tried normally.
	ln.Close()
	n.push(map[string]string{"services/web.toml": n.webService("web", v2, "", strings.Replace(fastHTTPHealth, "unhealthy_threshold = 3", "unhealthy_threshold = 4", 1))}, "web v2 again, changed")
	waitFor(t, time.Minute, "the changed v2 running", runs(v2))
	mustThrough(t, n.l7, host, roots, "version=v2")
	waitFor(t, 30*time.Second, "the quarantine lifted", func() bool {
		st, err := c.Status(t.Context())
		return err == nil && len(st.Quarantine) == 0
	})
}
