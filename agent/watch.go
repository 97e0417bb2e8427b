package agent

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"metacircular.net/mcp/api"
	"metacircular.net/mcp/executor"
	"metacircular.net/mcp/executor/containerd"
	"metacircular.net/mcp/health"
	"metacircular.net/mcp/registry"
)

// The continuous watch: between reconciles, the agent checks the health of
// every running component at its interval and looks for drift (a container
// missing, changed behind mcp's back or stopped; a route missing from the
// proxy). Drift that the converge pass repairs makes the loop reconcile at
// once instead of at the next poll; what the restart supervisor repairs
// (a stopped task) is left to it. Everything seen is kept for status:
// health per component, and the recent drift per service with whether it
// was repaired.

// watchTick is how often the watch looks. Checks run at their own
// interval; a tick only decides which are due.
const watchTick = time.Second

// routeCheckEvery is how many ticks pass between two reads of the proxy's
// routes (one runtime API round trip per listener).
const routeCheckEvery = 5

// maxDrift is how many drift entries status keeps per service.
const maxDrift = 10

// watched is the health of one running container.
type watched struct {
	service, component string
	key                string // container ID, spec hash and slot: a new container starts over
	targets            []health.Target
	trackers           []*health.Tracker
	probing            bool
}

// driftAt is one drift seen on a service.
type driftAt struct {
	api.DriftStatus
}

// watchLoop runs the watch until ctx ends.
func (a *Agent) watchLoop(ctx context.Context) {
	t := time.NewTicker(watchTick)
	defer t.Stop()
	for n := 0; ; n++ {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		a.watchOnce(ctx, n%routeCheckEvery == 0)
	}
}

// recordLister is a runtime that can list its containers without their
// tasks and tell one task's state (containerd.Driver). The watch then asks
// no shim at all while everything is healthy: a container missing or
// changed shows in its record, a task that exits is the restart
// supervisor's (it follows the exit events), and only a failed health
// probe needs to know whether the task still runs.
type recordLister interface {
	ListRecords(ctx context.Context) ([]executor.Container, error)
	Running(ctx context.Context, id string) (bool, error)
}

// watchOnce is one look: containers, due health checks, and (routes) the
// proxy's routes.
func (a *Agent) watchOnce(ctx context.Context, routes bool) {
	snap, err := a.reg.Snapshot(ctx)
	if err != nil {
		return
	}
	list := a.rt.List
	rl, byRecord := a.rt.(recordLister)
	if byRecord {
		list = rl.ListRecords
	}
	cs, err := list(ctx)
	if err != nil {
		return // containerd restarting: nothing can be said
	}
	running := make(map[string]executor.Container, len(cs))
	for _, c := range cs {
		running[c.ID] = c
	}
	now := a.now()
	leases := map[string]int{}
	for _, l := range snap.Leases {
		leases[l.Key()] = l.Port
	}
	expected := map[string]bool{}
	drift := false
	var probes []func()
	for _, name := range slices.Sorted(maps.Keys(snap.Services)) {
		d := snap.Services[name]
		if !d.Spec.Active {
			continue
		}
		for _, comp := range d.Spec.Components {
			st, ok := d.Components[comp.Name]
			if !ok || st.ImageDigest == "" {
				continue
			}
			id := executor.ContainerID(name, comp.Name, st.ActiveSlot)
			expected[id] = true
			c, ok := running[id]
			switch {
			case !ok:
				a.rs.seeDrift(name, comp.Name, id, "container missing (deleted behind mcp's back)", false, now)
				drift = true
				continue
			case st.RuntimeHash != "" && c.Labels[executor.LabelRuntimeHash] != st.RuntimeHash:
				a.rs.seeDrift(name, comp.Name, id, "container changed behind mcp's back (runtime hash differs from the registry)", false, now)
				drift = true
				continue
			case c.Status != executor.StatusRunning && c.Status != executor.StatusUnknown:
				continue // the restart supervisor's business; it reports
			}
			// A failed probe of a container whose task state the listing
			// did not give counts only if the task still runs.
			var stillRuns func(context.Context) bool
			if c.Status == executor.StatusUnknown && byRecord {
				stillRuns = func(ctx context.Context) bool {
					ok, err := rl.Running(ctx, id)
					return err == nil && ok
				}
			}
			w := a.rs.watch(name, comp.Name, id+"|"+d.SpecHash, now, func() []health.Target {
				ts, err := executor.HealthTargets(comp, executor.DefaultBackendHost, func(route string) (int, error) {
					p, ok := leases[registry.LeaseKey(name, comp.Name, route, st.ActiveSlot)]
					if !ok {
						return 0, fmt.Errorf("no lease")
					}
					return p, nil
				})
				if err != nil {
					return nil
				}
				return ts
			})
			if p := a.rs.due(w, now, stillRuns); p != nil {
				probes = append(probes, p(ctx, a.now))
			}
		}
	}
	a.rs.forget(expected)
	var wg sync.WaitGroup
	for _, p := range probes {
		wg.Add(1)
		go func() { defer wg.Done(); p() }()
	}
	if routes {
		if rs, err := a.exec.Routes(ctx); err == nil {
			for _, r := range rs {
				if !r.Confirmed && r.Problem != "" {
					a.rs.seeDrift(r.Service, r.Component, "route "+r.Route.ID(), "route "+r.Problem, false, now)
					drift = true
				}
			}
		}
	}
	wg.Wait()
	if drift {
		a.rs.nudge()
	}
}

// watch returns the watched entry of a container, starting it over when
// the container is a new one (key changed).
func (rs *rolloutState) watch(service, component, key string, now time.Time, targets func() []health.Target) *watched {
	id, _, _ := strings.Cut(key, "|")
	rs.mu.Lock()
	defer rs.mu.Unlock()
	w := rs.health[id]
	if w != nil && w.key == key {
		return w
	}
	ts := targets()
	w = &watched{service: service, component: component, key: key, targets: ts}
	for _, t := range ts {
		w.trackers = append(w.trackers, health.NewTracker(t.Check, now, false))
	}
	rs.health[id] = w
	return w
}

// due returns the probe of w's due checks, or nil; a probe already running
// is not started twice. When a check fails and stillRuns (non-nil) says
// the container's task no longer runs, the results are dropped: a stopped
// task is the restart supervisor's business, as in a listing with tasks.
func (rs *rolloutState) due(w *watched, now time.Time, stillRuns func(context.Context) bool) func(ctx context.Context, clock func() time.Time) func() {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	if w.probing {
		return nil
	}
	var idx []int
	for i, t := range w.trackers {
		if t.Due(now) {
			idx = append(idx, i)
		}
	}
	if len(idx) == 0 {
		return nil
	}
	w.probing = true
	return func(ctx context.Context, clock func() time.Time) func() {
		return func() {
			results := make([]error, len(idx))
			failed := false
			for j, i := range idx {
				results[j] = health.Probe(ctx, w.targets[i])
				failed = failed || results[j] != nil
			}
			keep := !failed || stillRuns == nil || stillRuns(ctx)
			at := clock()
			rs.mu.Lock()
			defer rs.mu.Unlock()
			w.probing = false
			if !keep {
				return
			}
			for j, i := range idx {
				prev := w.trackers[i].Result().State
				state := w.trackers[i].Observe(at, results[j])
				if state == health.StateUnhealthy && prev != health.StateUnhealthy {
					rs.addDrift(w.service, w.component, w.targets[i].String(), "unhealthy: "+w.trackers[i].Result().LastError, false, at)
				}
			}
		}
	}
}

// forget drops the health of containers no longer expected.
func (rs *rolloutState) forget(expected map[string]bool) {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	for id := range rs.health {
		if !expected[id] {
			delete(rs.health, id)
		}
	}
}

// seeDrift records drift the watch saw, once per (resource, what) until it
// is repaired.
func (rs *rolloutState) seeDrift(service, component, resource, what string, repaired bool, at time.Time) {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	rs.addDrift(service, component, resource, what, repaired, at)
}

func (rs *rolloutState) addDrift(service, component, resource, what string, repaired bool, at time.Time) {
	list := rs.drift[service]
	for i := len(list) - 1; i >= 0; i-- {
		if list[i].Resource == resource {
			if list[i].What == what && list[i].Repaired == repaired && !repaired {
				return // still the same, already shown
			}
			break
		}
	}
	list = append(list, driftAt{api.DriftStatus{Time: at, Component: component, Resource: resource, What: what, Repaired: repaired}})
	if len(list) > maxDrift {
		list = list[len(list)-maxDrift:]
	}
	rs.drift[service] = list
}

// repaired records what the converge pass repaired (a reconcile's
// repairs), closing the drift the watch saw on the same resource.
func (rs *rolloutState) repaired(repairs []executor.Repair, at time.Time) {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	for _, r := range repairs {
		rs.addDrift(r.Service, r.Component, r.Resource, r.What, true, at)
	}
}

// supervised records what the restart supervisor did, as drift: a task
// that exited and was restarted is drift repaired; a crash loop is drift
// backed off.
func (rs *rolloutState) supervised(e containerd.Event) {
	service, component := splitContainerID(e.ID)
	switch e.Type {
	case containerd.EventRestarted:
		rs.seeDrift(service, component, e.ID, fmt.Sprintf("container exited (code %d): restarted by its restart policy", e.ExitCode), true, e.Time)
	case containerd.EventCrashLooping:
		rs.seeDrift(service, component, e.ID, fmt.Sprintf("crash-looping (exit code %d): restarts backed off, next in %s", e.ExitCode, e.Delay), false, e.Time)
	case containerd.EventExited:
		rs.seeDrift(service, component, e.ID, fmt.Sprintf("container exited (code %d); its restart policy leaves it stopped", e.ExitCode), false, e.Time)
	}
}

// componentHealth is the health of a component's container for status
// (nil when it is not watched).
func (rs *rolloutState) componentHealth(id string) *api.HealthStatus {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	w := rs.health[id]
	if w == nil || len(w.trackers) == 0 {
		return nil
	}
	hs := &api.HealthStatus{State: health.StateHealthy}
	rank := map[string]int{health.StateHealthy: 0, health.StateUnknown: 1, health.StateStarting: 2, health.StateUnhealthy: 3}
	for i, t := range w.trackers {
		r := t.Result()
		hs.Checks = append(hs.Checks, w.targets[i].String())
		if rank[r.State] >= rank[hs.State] {
			if rank[r.State] > rank[hs.State] || hs.Since.IsZero() {
				hs.Since = r.Since
			}
			hs.State = r.State
		}
		if r.LastCheck.After(hs.LastCheck) {
			hs.LastCheck = r.LastCheck
		}
		if r.LastError != "" {
			hs.LastError = r.LastError
		}
	}
	return hs
}

// serviceDrift returns the recent drift of a service, oldest first.
func (rs *rolloutState) serviceDrift(service string) []api.DriftStatus {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	var out []api.DriftStatus
	for _, d := range rs.drift[service] {
		out = append(out, d.DriftStatus)
	}
	return out
}

// rolloutStatus adds health, drift and `after` waits to each service of a
// status.
func (a *Agent) rolloutStatus(services []api.ServiceStatus) {
	a.rs.mu.Lock()
	waiting := maps.Clone(a.rs.waiting)
	a.rs.mu.Unlock()
	for i := range services {
		s := &services[i]
		s.Drift = a.rs.serviceDrift(s.Name)
		if w := waiting[s.Name]; w != "" {
			s.Waiting = w
			if s.State == api.StateRunning || s.State == "" {
				s.State = api.StateWaiting
			}
		}
		for j := range s.Components {
			c := &s.Components[j]
			if c.ContainerID == "" {
				continue
			}
			c.Health = a.rs.componentHealth(c.ContainerID)
			if c.Health != nil && c.Health.State == health.StateUnhealthy && s.State == api.StateRunning {
				s.State = api.StateDegraded
			}
		}
	}
}
