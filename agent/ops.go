package agent

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	gosync "sync"
	"time"

	"metacircular.net/mcp/api"
	"metacircular.net/mcp/executor/containerd"
	"metacircular.net/mcp/internal/logattr"
	"metacircular.net/mcp/metrics"
	"metacircular.net/mcp/planner"
	"metacircular.net/mcp/registry"
)

// Event kinds the agent records besides the registry's (deploy, failure,
// drift, revert, quarantine). Kinds are plain strings: later features add
// theirs next to these.
const (
	EventRemove    = "remove"     // a service was removed from the node
	EventRestart   = "restart"    // the restart policy restarted a container
	EventCrashLoop = "crash-loop" // a container keeps exiting; restarts are backed off
	EventInvalid   = "invalid"    // a definition does not validate; the deployed version stays
)

// opsState is what the agent keeps for operators: its metrics, which
// failures were already reported as events (a service failing on every
// poll is one event, not one per poll), and the first-reconcile signal the
// service manager's readiness waits for.
type opsState struct {
	metrics *metrics.Metrics

	firstOnce gosync.Once
	firstDone chan struct{}

	mu          gosync.Mutex
	lastFailure string            // reconcile-level error last reported
	invalid     map[string]string // service → diagnostics last reported
}

func newOps(m *metrics.Metrics) *opsState {
	return &opsState{metrics: m, firstDone: make(chan struct{}), invalid: map[string]string{}}
}

// Metrics returns the agent's metrics, for the HTTP listener and for other
// parts of mcp that report into them.
func (a *Agent) Metrics() *metrics.Metrics { return a.ops.metrics }

// FirstReconcile is closed once the first reconcile after start finished,
// whatever its result: from then on status, events and the page describe
// the node rather than an agent still starting.
func (a *Agent) FirstReconcile() <-chan struct{} { return a.ops.firstDone }

// RecordEvent appends an event to the node's history, counts it and logs
// it with the service's attributes. Later features (rollout reverts, trust
// quarantines) call it for their own kinds. A failure to store the event is
// logged, never returned: the event history must not stop the loop.
func (a *Agent) RecordEvent(ctx context.Context, e registry.Event) {
	ctx = context.WithoutCancel(ctx)
	if _, err := a.reg.AppendEvent(ctx, e); err != nil {
		a.log.Error("record event", logattr.With(logattr.Service(e.Service, e.Component, e.Commit, e.PlanHash),
			"kind", e.Kind, "err", err)...)
		return
	}
	a.ops.metrics.EventRecorded(e.Kind)
	level := slog.LevelInfo
	switch e.Kind {
	case registry.EventFailure, registry.EventRevert, registry.EventQuarantine, EventCrashLoop, EventInvalid, registry.EventDrift:
		level = slog.LevelWarn
	}
	a.log.Log(ctx, level, "event: "+e.Message, logattr.With(logattr.Service(e.Service, e.Component, short(e.Commit), e.PlanHash),
		"kind", e.Kind)...)
}

// Events returns the node's events after seq (api.EventBackend).
func (a *Agent) Events(ctx context.Context, after uint64) ([]api.Event, error) {
	evs, err := a.reg.Events(ctx, after)
	if err != nil {
		return nil, fmt.Errorf("read events: %w", err)
	}
	return evs, nil
}

// observe turns a finished reconcile into metrics and events. It runs in
// record, before the failure map is updated, so it can tell a new failure
// from one already reported.
func (a *Agent) observe(ctx context.Context, out *Outcome) {
	m := a.ops.metrics
	m.ObserveReconcile(out.Result, out.Finished.Sub(out.Started), out.Finished)
	if out.Result != ResultFailed && a.rev != nil && a.rev.Commit.String() == out.Commit {
		m.SetAppliedCommitTime(a.rev.Time)
	}
	a.observeSteps(out)

	a.mu.Lock()
	known := make(map[string]string, len(a.failures))
	for k, v := range a.failures {
		known[k] = v
	}
	a.mu.Unlock()

	var evs []registry.Event
	for _, s := range out.Services {
		comp, removal := serviceShape(out.Plan, s.Service)
		ev := registry.Event{Service: s.Service, Component: comp, Commit: out.Commit, PlanHash: out.PlanHash}
		switch {
		case s.Err != nil:
			if known[s.Service] == s.Err.Error() {
				continue // the same failure as last time: already in the history
			}
			ev.Kind = registry.EventFailure
			ev.Message = fmt.Sprintf("%s failed: %v; its new work was undone", s.Service, s.Err)
		case len(s.Steps) == 0:
			continue
		case removal:
			ev.Kind = EventRemove
			ev.Message = fmt.Sprintf("%s removed (%d step%s)", s.Service, len(s.Steps), plural(len(s.Steps)))
		default:
			ev.Kind = registry.EventDeploy
			ev.Message = fmt.Sprintf("%s deployed%s from %s (%d step%s)", s.Service, versionsOf(out.Plan, s.Service), short(out.Commit),
				len(s.Steps), plural(len(s.Steps)))
		}
		evs = append(evs, ev)
	}

	a.ops.mu.Lock()
	seen := map[string]bool{}
	for _, inv := range out.Invalid {
		seen[inv.Name] = true
		msg := inv.Diagnostics.Error()
		if a.ops.invalid[inv.Name] == msg {
			continue
		}
		a.ops.invalid[inv.Name] = msg
		evs = append(evs, registry.Event{Kind: EventInvalid, Service: inv.Name, Commit: out.Commit,
			Message: fmt.Sprintf("definition %s is invalid; the deployed version is kept: %s", inv.File, msg)})
	}
	for name := range a.ops.invalid {
		if !seen[name] {
			delete(a.ops.invalid, name) // fixed: a new breakage is news again
		}
	}
	refused := out.Plan != nil && out.Plan.Refused != ""
	switch {
	case out.Result == ResultFailed || refused:
		if out.Err != a.ops.lastFailure {
			a.ops.lastFailure = out.Err
			evs = append(evs, registry.Event{Kind: registry.EventFailure, Commit: out.Commit, PlanHash: out.PlanHash,
				Message: "reconcile " + out.Result + ": " + out.Err})
		}
	default:
		a.ops.lastFailure = ""
	}
	a.ops.mu.Unlock()

	if len(out.Repairs) > 0 {
		// A repair restores the version the registry records, which may
		// come from an older commit than the one just reconciled.
		deployed := map[string]string{}
		if snap, err := a.reg.Snapshot(ctx); err == nil {
			for name, d := range snap.Services {
				deployed[name] = d.Commit
			}
		}
		for _, r := range out.Repairs {
			m.DriftRepaired(r.Service, metrics.ResourceKind(r.Resource))
			evs = append(evs, registry.Event{Kind: registry.EventDrift, Service: r.Service, Component: r.Component,
				Commit: deployed[r.Service], Message: fmt.Sprintf("drift repaired: %s (%s)", r.What, r.Resource)})
		}
	}
	for _, e := range evs {
		e.Time = out.Finished
		a.RecordEvent(ctx, e)
	}
	a.ops.firstOnce.Do(func() { close(a.ops.firstDone) })
}

// observeSteps counts every step of the plan by what became of it.
func (a *Agent) observeSteps(out *Outcome) {
	if out.Plan == nil {
		return
	}
	type outcome struct {
		done   map[string]bool
		failed string
	}
	byService := map[string]outcome{}
	for _, s := range out.Services {
		o := outcome{done: map[string]bool{}, failed: s.FailedStep}
		for _, id := range s.Steps {
			o.done[id] = true
		}
		byService[s.Service] = o
	}
	for _, st := range out.Plan.Steps {
		o := byService[st.Service]
		result := metrics.StepSkipped
		switch {
		case o.done[st.ID]:
			result = metrics.StepDone
		case o.failed == st.ID:
			result = metrics.StepFailed
		}
		a.ops.metrics.ObserveStep(string(st.Kind), string(st.Action), result)
	}
}

// serviceShape returns the service's first component named in the plan
// (for the event's component field) and whether every step removes.
func serviceShape(p *planner.Plan, service string) (component string, removal bool) {
	if p == nil {
		return "", false
	}
	removal = true
	found := false
	for _, st := range p.Steps {
		if st.Service != service {
			continue
		}
		found = true
		if component == "" {
			component = st.Component
		}
		if st.Action != planner.ActionRemove {
			removal = false
		}
	}
	return component, found && removal
}

// versionsOf names the images a service's container steps start, as
// " (web=registry/web:v2)", so a deploy event says what was deployed.
func versionsOf(p *planner.Plan, service string) string {
	if p == nil {
		return ""
	}
	var parts []string
	for _, st := range p.Steps {
		if st.Service == service && st.Kind == planner.KindImage && st.Action != planner.ActionRemove && st.Detail != "" {
			parts = append(parts, st.Component+"="+st.Detail)
		}
	}
	if len(parts) == 0 {
		return ""
	}
	return " (" + strings.Join(parts, ", ") + ")"
}

// observeSupervisor turns the restart supervisor's reports into metrics and
// events. It runs on the supervisor's goroutines and must not block, so
// the registry write happens on a goroutine of its own.
func (a *Agent) observeSupervisor(e containerd.Event) {
	service, component := splitContainerID(e.ID)
	var ev registry.Event
	switch e.Type {
	case containerd.EventRestarted:
		a.ops.metrics.ContainerRestarted(service, component)
		ev = registry.Event{Kind: EventRestart, Message: fmt.Sprintf("%s exited with code %d and was restarted (restart %d, after %s)",
			e.ID, e.ExitCode, e.Restarts, e.Delay.Round(time.Millisecond))}
	case containerd.EventCrashLooping:
		ev = registry.Event{Kind: EventCrashLoop, Message: fmt.Sprintf("%s keeps exiting (last code %d); restarts are backed off", e.ID, e.ExitCode)}
	case containerd.EventRestartFailed:
		ev = registry.Event{Kind: registry.EventFailure, Message: fmt.Sprintf("%s could not be restarted: %v", e.ID, e.Err)}
	default:
		return
	}
	ev.Service, ev.Component, ev.Time = service, component, e.Time
	go func() {
		ctx := context.Background()
		// The commit the running version came from, for the event and its
		// log line.
		if snap, err := a.reg.Snapshot(ctx); err == nil {
			ev.Commit = snap.Services[service].Commit
		}
		a.RecordEvent(ctx, ev)
	}()
}

// splitContainerID reverses executor.ContainerID: "<service>.<component>.<slot>".
func splitContainerID(id string) (service, component string) {
	rest, _, ok := cutLast(id, ".")
	if !ok {
		return id, ""
	}
	service, component, _ = cutLast(rest, ".")
	if component == "" {
		return rest, ""
	}
	return service, component
}

func cutLast(s, sep string) (before, after string, found bool) {
	i := strings.LastIndex(s, sep)
	if i < 0 {
		return s, "", false
	}
	return s[:i], s[i+len(sep):], true
}

// setLoopState reports what the loop is doing.
func (a *Agent) setLoopState(state string, backoff time.Duration) {
	a.ops.metrics.SetState(state)
	a.ops.metrics.SetBackoff(backoff)
}

// refreshServiceGauge recomputes services by state when /metrics is
// scraped, so a node nobody scrapes pays nothing for it.
func (a *Agent) refreshServiceGauge(ctx context.Context) {
	st, err := a.Status(ctx)
	if err != nil {
		a.log.Warn("metrics: read status", "err", err)
		return
	}
	counts := map[string]int{}
	for _, s := range st.Services {
		counts[s.State]++
	}
	a.ops.metrics.SetServices(counts, []string{api.StateRunning, api.StateDegraded, api.StateFailed, api.StateInvalid, api.StateStopped})
}

func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}
