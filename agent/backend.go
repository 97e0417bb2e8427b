package agent

import (
	"context"
	"fmt"
	"maps"
	"os"
	"slices"
	"strings"

	"metacircular.net/mcp/api"
	"metacircular.net/mcp/executor"
	"metacircular.net/mcp/internal/version"
	"metacircular.net/mcp/registry"
	"metacircular.net/mcp/spec"
)

var _ api.Backend = (*Agent)(nil)

// Status composes the node's status from the registry (what is deployed),
// the runtime (what runs) and the last reconcile (what failed).
func (a *Agent) Status(ctx context.Context) (api.Status, error) {
	snap, err := a.reg.Snapshot(ctx)
	if err != nil {
		return api.Status{}, fmt.Errorf("read registry: %w", err)
	}
	applied, err := a.reg.AppliedCommit(ctx)
	if err != nil {
		return api.Status{}, fmt.Errorf("read registry: %w", err)
	}
	// Status is most wanted while something is wrong: when containerd
	// does not answer (restarting, down), the registry's view is still
	// shown, with the containers' states unknown, rather than no status.
	var runtimeErr string
	list, err := a.rt.List(ctx)
	if err != nil {
		runtimeErr = fmt.Sprintf("containerd did not answer, container states are unknown: %v", err)
		list = nil
	}
	running := make(map[string]executor.Container, len(list))
	for _, c := range list {
		running[c.ID] = c
	}
	a.mu.Lock()
	last, lastInvalid := a.last, a.invalid
	failures := maps.Clone(a.failures)
	restarts := maps.Clone(a.restarts)
	a.mu.Unlock()

	st := api.Status{
		Node:          a.cfg.Node,
		AgentVersion:  version.Version,
		AppliedCommit: applied,
		Branch:        a.cfg.Git.Branch,
		LastReconcile: reconcileOf(last),
		RuntimeError:  runtimeErr,
	}
	invalid := map[string]spec.Invalid{}
	for _, inv := range lastInvalid {
		invalid[inv.Name] = inv
	}
	names := map[string]bool{}
	for n := range snap.Services {
		names[n] = true
	}
	for n := range invalid {
		names[n] = true
	}
	for n := range failures {
		names[n] = true
	}
	// A service held back before its first deploy here (after, the /srv
	// hold) is in no other list, and status must say why it is not there.
	a.rs.mu.Lock()
	for n := range a.rs.waiting {
		names[n] = true
	}
	a.rs.mu.Unlock()
	for _, name := range slices.Sorted(maps.Keys(names)) {
		st.Services = append(st.Services, serviceStatus(name, snap, running, runtimeErr == "", restarts, invalid, failures))
	}
	a.routeStatus(ctx, st.Services)
	a.certStatus(ctx, st.Services) // certs.go
	a.recordStatus(ctx, st.Services)
	a.rolloutStatus(st.Services) // watch.go: health, drift, `after` waits
	a.addQuarantine(ctx, &st)
	return st, nil
}

// routeStatus adds each service's proxy routes and whether the proxy
// confirmed them (read back). A proxy that does not answer marks them
// unconfirmed; status is still served.
func (a *Agent) routeStatus(ctx context.Context, services []api.ServiceStatus) {
	routes, err := a.exec.Routes(ctx)
	if err != nil {
		a.log.Warn("status: routes", "err", err)
		return
	}
	for _, r := range routes {
		for i := range services {
			if services[i].Name != r.Service {
				continue
			}
			services[i].Routes = append(services[i].Routes, api.RouteStatus{
				Component: r.Component, Route: r.Key, Listener: r.Route.Listener, Hostname: r.Route.Hostname,
				Mode: r.Route.Mode, Backend: r.Route.Backend, Confirmed: r.Confirmed, Problem: r.Problem,
			})
		}
	}
}

// serviceStatus composes one service's status; known is false when the
// runtime did not answer, so running holds nothing.
func serviceStatus(name string, snap registry.Snapshot, running map[string]executor.Container, known bool,
	restarts map[string]restartInfo, invalid map[string]spec.Invalid, failures map[string]string) api.ServiceStatus {
	ss := api.ServiceStatus{Name: name}
	d, deployed := snap.Services[name]
	if deployed {
		ss.Commit, ss.SpecHash = d.Commit, d.SpecHash
		ss.State = api.StateRunning
		if !d.Spec.Active {
			ss.State = api.StateStopped
		}
		for _, comp := range d.Spec.Components {
			cs := componentStatus(name, comp, d, snap.Leases, running, known, restarts)
			// Unknown is not evidence of trouble: the service keeps the
			// state its registry record gives it.
			if d.Spec.Active && cs.State != api.ComponentRunning && cs.State != api.ComponentUnknown && ss.State == api.StateRunning {
				ss.State = api.StateDegraded
			}
			ss.Components = append(ss.Components, cs)
		}
	}
	if msg, ok := failures[name]; ok {
		ss.State, ss.Error = api.StateFailed, msg
		if deployed {
			ss.Error += " (the previously deployed version is kept)"
		}
	}
	if inv, ok := invalid[name]; ok {
		ss.State = api.StateInvalid
		for _, dg := range inv.Diagnostics {
			ss.Diagnostics = append(ss.Diagnostics, dg.Error())
		}
		ss.Error = "definition " + inv.File + " is invalid"
		if deployed {
			ss.Error += "; the deployed version keeps running"
		}
	}
	return ss
}

func componentStatus(service string, comp spec.Component, d registry.Deployed, leases []registry.Lease,
	running map[string]executor.Container, known bool, restarts map[string]restartInfo) api.ComponentStatus {
	st := d.Components[comp.Name]
	id := executor.ContainerID(service, comp.Name, st.ActiveSlot)
	cs := api.ComponentStatus{
		Name:    comp.Name,
		Version: comp.Version,
		Image:   comp.Image,
		Digest:  st.ImageDigest,
		Slot:    slotLetter(st.ActiveSlot),
		Ports:   map[string]int{},
	}
	for _, l := range leases {
		if l.Service == service && l.Component == comp.Name && (l.Slot == st.ActiveSlot || l.Fixed) {
			cs.Ports[l.Route] = l.Port
		}
	}
	if len(cs.Ports) == 0 {
		cs.Ports = nil
	}
	ri := restarts[id]
	cs.Restarts = ri.Restarts
	cs.LastError = ri.LastError
	c, ok := running[id]
	switch {
	case !d.Spec.Active:
		cs.State = api.ComponentStopped
	case !known:
		cs.State = api.ComponentUnknown
	case !ok:
		cs.State = api.ComponentMissing
	case ri.CrashLoop && c.Status != executor.StatusRunning:
		cs.State, cs.ContainerID = api.ComponentCrashLoop, c.ID
		cs.LastError = fmt.Sprintf("crash-looping (last exit code %d); restarts are backed off", ri.LastExit)
	case c.Status == executor.StatusRunning:
		cs.State, cs.ContainerID = api.ComponentRunning, c.ID
	default:
		cs.State, cs.ContainerID = api.ComponentStopped, c.ID
		if c.Status == executor.StatusStopped {
			cs.LastError = fmt.Sprintf("exited with code %d", c.ExitCode)
		}
	}
	return cs
}

func slotLetter(slot int) string {
	if slot == registry.SlotB {
		return "b"
	}
	return "a"
}

func reconcileOf(o Outcome) api.Reconcile {
	return api.Reconcile{
		Started:  o.Started,
		Finished: o.Finished,
		Commit:   o.Commit,
		PlanHash: o.PlanHash,
		Result:   o.Result,
		Error:    o.Err,
		Steps:    stepCount(o.Plan),
	}
}

// Containers lists what mcp runs.
func (a *Agent) Containers(ctx context.Context) ([]api.Container, error) {
	list, err := a.rt.List(ctx)
	if err != nil {
		return nil, fmt.Errorf("list containers: %w", err)
	}
	out := make([]api.Container, 0, len(list))
	for _, c := range list {
		out = append(out, api.Container{
			ID:        c.ID,
			Service:   c.Labels[executor.LabelService],
			Component: c.Labels[executor.LabelComponent],
			Slot:      c.Labels[executor.LabelSlot],
			Version:   c.Labels[executor.LabelVersion],
			Image:     c.Image,
			Status:    string(c.Status),
			PID:       int(c.PID),
		})
	}
	return out, nil
}

// Snapshot returns exactly what the planner is given, so `mcp plan
// --socket` computes the agent's plan and hash.
func (a *Agent) Snapshot(ctx context.Context) (api.SnapshotResponse, error) {
	snap, err := a.reg.Snapshot(ctx)
	if err != nil {
		return api.SnapshotResponse{}, fmt.Errorf("read registry: %w", err)
	}
	// Digests only (secrets.go): what the planner binds, never a value.
	secrets, _ := a.secrets.scan(ctx)
	return api.SnapshotResponse{Snapshot: snap, Features: a.features, AllowRemoveAll: a.cfg.AllowRemoveAll, Quarantine: a.quarantineList(ctx), Secrets: secrets}, nil
}

// Sync runs a reconcile now through the loop.
func (a *Agent) Sync(ctx context.Context) (api.SyncResult, error) {
	out, err := a.ReconcileNow(ctx)
	if err != nil {
		return api.SyncResult{}, err
	}
	st, err := a.Status(ctx)
	if err != nil {
		return api.SyncResult{}, err
	}
	return api.SyncResult{Reconcile: reconcileOf(out), Services: st.Services}, nil
}

// LogFile is the active slot's log of a deployed component.
func (a *Agent) LogFile(service, component string) (string, error) {
	snap, err := a.reg.Snapshot(context.Background())
	if err != nil {
		return "", fmt.Errorf("read registry: %w", err)
	}
	d, ok := snap.Services[service]
	if !ok {
		return "", fmt.Errorf("service %q is not deployed on %s: %w", service, a.cfg.Node, api.ErrNotFound)
	}
	known := make([]string, 0, len(d.Spec.Components))
	for _, c := range d.Spec.Components {
		known = append(known, c.Name)
		if c.Name == component {
			path := a.exec.LogPath(service, component, d.Components[component].ActiveSlot)
			if _, err := os.Stat(path); err != nil {
				return "", fmt.Errorf("no log yet for %s/%s: %w", service, component, api.ErrNotFound)
			}
			return path, nil
		}
	}
	return "", fmt.Errorf("service %q has no component %q (it has: %s): %w", service, component, strings.Join(known, ", "), api.ErrNotFound)
}
