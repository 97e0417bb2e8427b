package containerd

import (
	"context"
	"fmt"
	"sync"
	"syscall"
	"testing"
	"time"

	"metacircular.net/mcp/executor"
	"metacircular.net/mcp/internal/testenv"
)

// eventLog collects a Supervisor's events for assertions.
type eventLog struct {
	mu     sync.Mutex
	events []Event
	ch     chan Event
}

func newEventLog() *eventLog { return &eventLog{ch: make(chan Event, 1000)} }

func (l *eventLog) handle(e Event) {
	l.mu.Lock()
	l.events = append(l.events, e)
	l.mu.Unlock()
	select {
	case l.ch <- e:
	default:
	}
}

func (l *eventLog) count(typ EventType, id string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, e := range l.events {
		if e.Type == typ && e.ID == id {
			n++
		}
	}
	return n
}

// wait returns the next event of typ for id.
func (l *eventLog) wait(t *testing.T, typ EventType, id string, timeout time.Duration) Event {
	t.Helper()
	deadline := time.After(timeout)
	for {
		select {
		case e := <-l.ch:
			t.Logf("event %s %s exit=%d restarts=%d delay=%s err=%v", e.Type, e.ID, e.ExitCode, e.Restarts, e.Delay, e.Err)
			if e.Type == typ && e.ID == id {
				return e
			}
		case <-deadline:
			t.Fatalf("no %s event for %q within %s", typ, id, timeout)
			return Event{}
		}
	}
}

// runSupervisor runs s until the test ends.
func runSupervisor(t *testing.T, s *Supervisor) {
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() { _ = s.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
}

func kill(t *testing.T, d *Driver, id string, sig syscall.Signal) uint32 {
	t.Helper()
	task, err := loadTask(t, d, id)
	if err != nil {
		t.Fatalf("load task %s: %v", id, err)
	}
	pid := task.Pid()
	if err := task.Kill(d.nsCtx(t.Context()), sig); err != nil {
		t.Fatalf("kill %s: %v", id, err)
	}
	return pid
}

func TestSupervisorPolicies(t *testing.T) {
	reg := testenv.Registry(t)
	ref := testenv.TestImage(t, reg, testenv.UniqueRepo("ctrd/sup"), "v1")
	d := newDriver(t, plainHTTP(reg))
	ctx := t.Context()
	dg := ensure(t, d, ref)
	events := newEventLog()
	runSupervisor(t, NewSupervisor(d, WithEventHandler(events.handle), WithBackoff(10*time.Millisecond, time.Second)))

	// hello exits 0 on SIGTERM and 137 on SIGKILL.
	cases := []struct {
		policy  string
		sig     syscall.Signal
		restart bool
	}{
		{"no", syscall.SIGKILL, false},
		{"on-failure", syscall.SIGTERM, false},
		{"on-failure", syscall.SIGKILL, true},
		{"always", syscall.SIGTERM, true},
		{"always", syscall.SIGKILL, true},
		{"unless-stopped", syscall.SIGKILL, true},
	}
	for i, tc := range cases {
		t.Run(fmt.Sprintf("%s/%s", tc.policy, tc.sig), func(t *testing.T) {
			s, port := helloSpec(t, fmt.Sprintf("hello.c%d.0", i), ref, dg)
			s.Restart = tc.policy
			if err := d.Start(ctx, s); err != nil {
				t.Fatal(err)
			}
			httpGet(t, port, "/", 15*time.Second)
			old := kill(t, d, s.ID, tc.sig)
			if tc.restart {
				events.wait(t, EventRestarted, s.ID, 15*time.Second)
				c := container(t, d, s.ID)
				if c.Status != executor.StatusRunning || c.PID == old {
					t.Fatalf("after restart: %+v (old pid %d)", c, old)
				}
				httpGet(t, port, "/", 15*time.Second)
			} else {
				events.wait(t, EventExited, s.ID, 15*time.Second)
				time.Sleep(300 * time.Millisecond) // a wrong restart would come by now
				if c := container(t, d, s.ID); c.Status != executor.StatusStopped {
					t.Fatalf("%s restarted after %s: %+v", tc.policy, tc.sig, c)
				}
			}
		})
	}

	// Remove's own SIGTERM is never a crash, even under always.
	s, port := helloSpec(t, "hello.removed.0", ref, dg)
	s.Restart = "always"
	if err := d.Start(ctx, s); err != nil {
		t.Fatal(err)
	}
	httpGet(t, port, "/", 15*time.Second)
	if err := d.Remove(ctx, s.ID, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	time.Sleep(500 * time.Millisecond)
	if n := events.count(EventRestarted, s.ID) + events.count(EventRestartFailed, s.ID); n != 0 {
		t.Fatalf("Remove led to %d restart attempts", n)
	}
	if cs, _ := d.List(ctx); len(cs) != len(cases) {
		t.Fatalf("List after Remove: %d containers, want %d", len(cs), len(cases))
	}
}

// A task that exits at once is restarted after 1s, 2s, 4s, ... of the
// injected clock, never sooner, and reported as crash-looping at the
// fifth exit within the window.
func TestSupervisorCrashLoopBacksOff(t *testing.T) {
	reg := testenv.Registry(t)
	ref := testenv.TestImage(t, reg, testenv.UniqueRepo("ctrd/crash"), "v1", testenv.WithCrash())
	d := newDriver(t, plainHTTP(reg))
	ctx := t.Context()
	dg := ensure(t, d, ref)
	clock := newFakeClock()
	events := newEventLog()
	runSupervisor(t, NewSupervisor(d, WithEventHandler(events.handle), WithSupervisorClock(clock)))

	s, _ := helloSpec(t, "crash.crash.0", ref, dg)
	if err := d.Start(ctx, s); err != nil {
		t.Fatal(err)
	}
	want := []time.Duration{1 * time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second, 16 * time.Second, 32 * time.Second}
	for i, delay := range want {
		if got := clock.nextArmed(t, 15*time.Second); got != delay {
			t.Fatalf("restart %d: backoff %s, want %s", i+1, got, delay)
		}
		// Nothing happens until the clock says so.
		time.Sleep(200 * time.Millisecond)
		if n := events.count(EventRestarted, s.ID); n != i {
			t.Fatalf("restart %d came before its backoff elapsed (%d restarts)", i+1, n)
		}
		if i == DefaultCrashLoopExits-1 {
			e := events.wait(t, EventCrashLooping, s.ID, 5*time.Second)
			if e.ExitCode != 1 || e.Delay != delay {
				t.Fatalf("crash-loop event %+v", e)
			}
		} else if events.count(EventCrashLooping, s.ID) != 0 && i < DefaultCrashLoopExits-1 {
			t.Fatalf("crash loop reported after only %d exits", i+1)
		}
		clock.Advance(delay)
		events.wait(t, EventRestarted, s.ID, 15*time.Second)
	}
	if n := events.count(EventCrashLooping, s.ID); n != 1 {
		t.Fatalf("crash loop reported %d times, want once", n)
	}
}

// Restarting containerd under a running task restarts nothing: the task
// keeps its PID, the Supervisor reconnects and still works afterwards.
func TestContainerdRestartKeepsWorkload(t *testing.T) {
	daemon := testenv.StartContainerd(t) // this test restarts it: its own
	reg := testenv.Registry(t)
	ref := testenv.TestImage(t, reg, testenv.UniqueRepo("ctrd/daemon"), "v1")
	d := newDriverAt(t, daemon.Address, DefaultNamespace, plainHTTP(reg))
	ctx := t.Context()
	events := newEventLog()
	runSupervisor(t, NewSupervisor(d, WithEventHandler(events.handle), WithBackoff(10*time.Millisecond, time.Second)))

	s, port := helloSpec(t, "hello.hello.0", ref, ensure(t, d, ref))
	if err := d.Start(ctx, s); err != nil {
		t.Fatal(err)
	}
	httpGet(t, port, "/", 15*time.Second)
	before := container(t, d, s.ID)

	if err := daemon.Restart(ctx); err != nil {
		t.Fatalf("restart containerd: %v", err)
	}
	events.wait(t, EventReconnected, "", 30*time.Second)
	after := container(t, d, s.ID)
	if after.Status != executor.StatusRunning || after.PID != before.PID {
		t.Fatalf("workload changed across a containerd restart: %+v then %+v", before, after)
	}
	if err := d.Start(ctx, s); err != nil {
		t.Fatalf("Start after reconnect: %v", err)
	}
	if again := container(t, d, s.ID); again.PID != before.PID {
		t.Fatalf("Start after reconnect restarted the task: pid %d -> %d", before.PID, again.PID)
	}
	if n := events.count(EventRestarted, s.ID); n != 0 {
		t.Fatalf("%d restarts across a containerd restart", n)
	}
	httpGet(t, port, "/", 5*time.Second)

	// The re-subscribed stream still sees exits.
	kill(t, d, s.ID, syscall.SIGKILL)
	events.wait(t, EventRestarted, s.ID, 15*time.Second)
	httpGet(t, port, "/", 15*time.Second)
}

// Lesson 1 and 2 of the platform: containerd loses its whole root (images
// included) while the registry is down; mcp's own archive and the spec are
// enough to bring the service back on the same port.
func TestRebuildAfterContainerdLostEverything(t *testing.T) {
	daemon := testenv.StartContainerd(t) // this test wipes it: its own
	r := testenv.StartRegistry(t)
	ref := testenv.TestImage(t, r.Addr, testenv.UniqueRepo("ctrd/rebuild"), "v1")
	d := newDriverAt(t, daemon.Address, DefaultNamespace, plainHTTP(r.Addr))
	ctx := t.Context()

	dg := ensure(t, d, ref)
	s, port := helloSpec(t, "hello.hello.0", ref, dg)
	if err := d.Start(ctx, s); err != nil {
		t.Fatal(err)
	}
	httpGet(t, port, "/", 15*time.Second)

	r.Stop()
	daemon.Stop()
	if err := daemon.WipeRoot(); err != nil {
		t.Fatal(err)
	}
	if err := daemon.Start(ctx); err != nil {
		t.Fatal(err)
	}

	// What the agent's next reconcile does, from its registry alone.
	if got := ensure(t, d, ref); got != dg {
		t.Fatalf("restored digest %s, want %s", got, dg)
	}
	if err := d.Start(ctx, s); err != nil {
		t.Fatalf("Start after the wipe: %v", err)
	}
	waitFor(t, 15*time.Second, "the rebuilt container running", func() bool {
		return container(t, d, s.ID).Status == executor.StatusRunning
	})
	httpGet(t, port, "/", 15*time.Second)
}
