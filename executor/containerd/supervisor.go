package containerd

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	// Registers the event types so that typeurl can decode TaskExit.
	apievents "github.com/containerd/containerd/api/events"
	"github.com/containerd/errdefs"
	"github.com/containerd/typeurl/v2"

	"metacircular.net/mcp/executor"
	"metacircular.net/mcp/spec"
)

// Supervision defaults. A task that keeps crashing is restarted after 1s,
// 2s, 4s, ... up to 5 minutes; a run of 10 minutes or more forgets the
// history. Five exits within 10 minutes is a crash loop: reported once (an
// EventCrashLooping) and still restarted only at the backoff's pace.
const (
	DefaultBackoffInitial  = time.Second
	DefaultBackoffMax      = 5 * time.Minute
	DefaultStableAfter     = 10 * time.Minute
	DefaultCrashLoopExits  = 5
	DefaultCrashLoopWindow = 10 * time.Minute
)

// EventType says what the Supervisor did.
type EventType string

const (
	// EventRestarted: a task exited and was started again.
	EventRestarted EventType = "restarted"
	// EventExited: a task exited and its policy says to leave it stopped.
	EventExited EventType = "exited"
	// EventCrashLooping: too many exits in the window; restarts go on at
	// the backoff's pace.
	EventCrashLooping EventType = "crash-looping"
	// EventRestartFailed: starting the task again failed; it is retried
	// with backoff.
	EventRestartFailed EventType = "restart-failed"
	// EventDisconnected / EventReconnected: the event stream from
	// containerd broke (daemon restart) / is back. Neither restarts
	// anything by itself.
	EventDisconnected EventType = "disconnected"
	EventReconnected  EventType = "reconnected"
)

// Event is one thing the Supervisor reports.
type Event struct {
	Type     EventType
	ID       string        // container; empty for connection events
	ExitCode uint32        // the exit that caused it
	Restarts int           // restarts since the last stable run
	Delay    time.Duration // backoff waited before this restart
	Time     time.Time
	Err      error
}

// SupervisorOption configures a Supervisor.
type SupervisorOption func(*Supervisor)

// WithEventHandler receives every Event. It is called from the
// Supervisor's goroutines and must not block.
func WithEventHandler(f func(Event)) SupervisorOption {
	return func(s *Supervisor) { s.onEvent = f }
}

// WithBackoff sets the first restart delay and its cap.
func WithBackoff(initial, max time.Duration) SupervisorOption {
	return func(s *Supervisor) { s.initial, s.max = initial, max }
}

// WithCrashLoop sets how many exits within window make a crash loop.
func WithCrashLoop(exits int, window time.Duration) SupervisorOption {
	return func(s *Supervisor) { s.loopExits, s.loopWindow = exits, window }
}

// WithSupervisorClock overrides the driver's clock for backoff timers.
func WithSupervisorClock(c Clock) SupervisorOption {
	return func(s *Supervisor) { s.clock = c }
}

// Supervisor restarts mcp's tasks when they exit, following each
// container's restart policy (LabelRestart):
//
//   - "no": never;
//   - "on-failure": when the exit code is not 0 (a container found with no
//     task at all, after a host reboot, has no exit code and is left for
//     the agent's reconcile to Start);
//   - "always" and "unless-stopped" (the default): always. mcp stops a
//     container only through Driver.Remove, whose exit is never restarted
//     under any policy, so the two behave the same.
//
// It follows containerd's /tasks/exit events. When the stream breaks
// (containerd restarting) it reconnects, subscribes again and then scans
// for tasks that exited meanwhile; a task that is still running is never
// restarted, so a daemon restart restarts no workload. The scan also runs
// when Run starts, which restarts tasks that died while the agent was down
// (a host reboot, for instance).
type Supervisor struct {
	d          *Driver
	clock      Clock
	onEvent    func(Event)
	initial    time.Duration
	max        time.Duration
	stable     time.Duration
	loopExits  int
	loopWindow time.Duration

	mu    sync.Mutex
	state map[string]*restartState
}

type restartState struct {
	restarts  int         // since the last stable run
	exits     []time.Time // within the crash-loop window
	lastStart time.Time
	pending   bool // a restart is scheduled
	looping   bool // EventCrashLooping sent for this loop
}

// NewSupervisor returns a Supervisor for d's containers; Run starts it.
func NewSupervisor(d *Driver, opts ...SupervisorOption) *Supervisor {
	s := &Supervisor{
		d:          d,
		clock:      d.clock,
		initial:    DefaultBackoffInitial,
		max:        DefaultBackoffMax,
		stable:     DefaultStableAfter,
		loopExits:  DefaultCrashLoopExits,
		loopWindow: DefaultCrashLoopWindow,
		state:      map[string]*restartState{},
	}
	for _, o := range opts {
		o(s)
	}
	if s.onEvent == nil {
		s.onEvent = func(e Event) {
			d.log.Info("supervisor", "event", e.Type, "id", e.ID, "exit_code", e.ExitCode,
				"restarts", e.Restarts, "delay", e.Delay, "error", e.Err)
		}
	}
	return s
}

// Run supervises until ctx ends; it returns ctx's error.
func (s *Supervisor) Run(ctx context.Context) error {
	ctx = s.d.nsCtx(ctx)
	retry := 500 * time.Millisecond
	broken := false
	for {
		err := s.watch(ctx, func() {
			if broken {
				broken = false
				s.emit(Event{Type: EventReconnected})
			}
			retry = 500 * time.Millisecond
		})
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if !broken {
			broken = true
			s.emit(Event{Type: EventDisconnected, Err: err})
		}
		s.d.log.Warn("containerd event stream lost, reconnecting", "error", err, "retry_in", retry)
		if !s.sleep(ctx, retry) {
			return ctx.Err()
		}
		retry = min(retry*2, 5*time.Second)
	}
}

// watch subscribes to exits, scans for missed ones, then handles events
// until the stream fails. connected is called once both worked.
func (s *Supervisor) watch(ctx context.Context, connected func()) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	// One filter, so its conditions are ANDed: exits in mcp's namespace.
	filter := fmt.Sprintf(`topic=="/tasks/exit",namespace==%q`, s.d.ns)
	ch, errs := s.d.client.Subscribe(ctx, filter)
	// Subscribe before scanning, so that no exit falls between the two.
	if err := s.scan(ctx); err != nil {
		return err
	}
	connected()
	for {
		select {
		case env := <-ch:
			if env == nil || env.Event == nil {
				continue
			}
			v, err := typeurl.UnmarshalAny(env.Event)
			if err != nil {
				s.d.log.Warn("undecodable containerd event", "topic", env.Topic, "error", err)
				continue
			}
			te, ok := v.(*apievents.TaskExit)
			// Exits of exec'd processes carry their own ID: not the task.
			if !ok || te.ID != te.ContainerID {
				continue
			}
			s.exited(ctx, te.ContainerID, te.ExitStatus, true)
		case err := <-errs:
			if err == nil {
				err = errors.New("event stream closed")
			}
			return err
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// scan treats every stopped container as an exit the stream did not show.
func (s *Supervisor) scan(ctx context.Context) error {
	cs, err := s.d.List(ctx)
	if err != nil {
		return err
	}
	for _, c := range cs {
		if c.Status == executor.StatusStopped {
			s.exited(ctx, c.ID, c.ExitCode, false)
		}
	}
	return nil
}

// exited applies the restart policy to one exit and schedules a restart.
func (s *Supervisor) exited(ctx context.Context, id string, code uint32, live bool) {
	if s.d.isStopping(id) {
		return
	}
	labels, err := s.containerLabels(ctx, id)
	if err != nil {
		if errdefs.IsNotFound(err) {
			s.forget(id)
		} else {
			s.d.log.Warn("supervisor: read container", "id", id, "error", err)
		}
		return
	}
	if !shouldRestart(labels[LabelRestart], code) {
		if live {
			s.emit(Event{Type: EventExited, ID: id, ExitCode: code})
		}
		return
	}
	s.schedule(ctx, id, code)
}

func shouldRestart(policy string, code uint32) bool {
	switch policy {
	case spec.RestartNo:
		return false
	case spec.RestartOnFailure:
		return code != 0
	default: // always, unless-stopped, and "" (the platform default)
		return true
	}
}

// schedule arms the backoff timer for one restart of id.
func (s *Supervisor) schedule(ctx context.Context, id string, code uint32) {
	now := s.clock.Now()
	s.mu.Lock()
	st := s.state[id]
	if st == nil {
		st = &restartState{}
		s.state[id] = st
	}
	if st.pending {
		s.mu.Unlock()
		return
	}
	if !st.lastStart.IsZero() && now.Sub(st.lastStart) >= s.stable {
		st.restarts, st.looping = 0, false
	}
	st.exits = append(st.exits, now)
	for len(st.exits) > 0 && now.Sub(st.exits[0]) > s.loopWindow {
		st.exits = st.exits[1:]
	}
	loopStarted := len(st.exits) >= s.loopExits && !st.looping
	if loopStarted {
		st.looping = true
	}
	delay := s.backoff(st.restarts)
	st.restarts++
	st.pending = true
	restarts := st.restarts
	s.mu.Unlock()

	if loopStarted {
		s.emit(Event{Type: EventCrashLooping, ID: id, ExitCode: code, Restarts: restarts, Delay: delay})
	}
	go s.restartAfter(ctx, id, code, delay, restarts)
}

func (s *Supervisor) backoff(restarts int) time.Duration {
	d := s.initial
	for range restarts {
		d *= 2
		if d >= s.max {
			return s.max
		}
	}
	return d
}

func (s *Supervisor) restartAfter(ctx context.Context, id string, code uint32, delay time.Duration, restarts int) {
	ok := s.sleep(ctx, delay)
	s.mu.Lock()
	st := s.state[id]
	st.pending = false
	s.mu.Unlock()
	if !ok {
		return
	}
	started, err := s.restart(ctx, id)
	if err != nil {
		s.emit(Event{Type: EventRestartFailed, ID: id, ExitCode: code, Restarts: restarts, Delay: delay, Err: err})
		if ctx.Err() == nil {
			s.schedule(ctx, id, code)
		}
		return
	}
	if started {
		s.mu.Lock()
		st.lastStart = s.clock.Now()
		s.mu.Unlock()
		s.emit(Event{Type: EventRestarted, ID: id, ExitCode: code, Restarts: restarts, Delay: delay})
	}
}

// restart starts a new task for id unless it is being removed, is gone,
// or already runs again (a daemon restart, or a Start that came first).
func (s *Supervisor) restart(ctx context.Context, id string) (bool, error) {
	unlock := s.d.lock(id)
	defer unlock()
	if s.d.isStopping(id) {
		return false, nil
	}
	c, err := s.d.client.LoadContainer(ctx, id)
	if errdefs.IsNotFound(err) {
		s.forget(id)
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("restart %s: load: %w", id, err)
	}
	labels, err := c.Labels(ctx)
	if err != nil {
		return false, fmt.Errorf("restart %s: labels: %w", id, err)
	}
	logPath := labels[LabelLogPath]
	if logPath == "" {
		return false, fmt.Errorf("restart %s: no %s label", id, LabelLogPath)
	}
	started, err := s.d.ensureTask(ctx, c, logPath)
	if err != nil {
		return false, fmt.Errorf("restart %s: %w", id, err)
	}
	return started, nil
}

// forget drops the restart history of a container that is gone.
func (s *Supervisor) forget(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if st := s.state[id]; st != nil && !st.pending {
		delete(s.state, id)
	}
}

func (s *Supervisor) containerLabels(ctx context.Context, id string) (map[string]string, error) {
	c, err := s.d.client.LoadContainer(ctx, id)
	if err != nil {
		return nil, err
	}
	return c.Labels(ctx)
}

func (s *Supervisor) sleep(ctx context.Context, d time.Duration) bool {
	t := s.clock.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C():
		return true
	case <-ctx.Done():
		return false
	}
}

func (s *Supervisor) emit(e Event) {
	if e.Time.IsZero() {
		e.Time = s.clock.Now()
	}
	s.onEvent(e)
}
