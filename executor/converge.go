package executor

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"

	"metacircular.net/mcp/internal/logattr"
	"metacircular.net/mcp/registry"
	"metacircular.net/mcp/spec"
)

// Repair is one thing the converge pass fixed.
type Repair struct {
	Service   string `json:"service"`
	Component string `json:"component,omitempty"`
	Resource  string `json:"resource"` // container ID or lease key
	What      string `json:"what"`
}

// Converge makes the runtime match what the registry records, after a plan
// ran or when the agent starts:
//   - a recorded component whose container is missing (containerd lost it,
//     or a crash interrupted its creation) is recreated from the registry
//     and the spec alone, its image restored from mcp's own copy if needed;
//   - one whose runtime hash differs (changed behind mcp's back) is replaced;
//   - a stopped task is left to the restart supervisor, which applies the
//     restart policy with backoff and reports crash loops;
//   - a container labelled as mcp's that no recorded service claims (left
//     by a crash mid-deploy, or by a removed service) is removed;
//   - a port lease that no recorded service claims is released.
//
// A matching, running container is never touched.
func (e *Executor) Converge(ctx context.Context) ([]Repair, error) {
	snap, err := e.store.Snapshot(ctx)
	if err != nil {
		return nil, fmt.Errorf("read registry: %w", err)
	}
	list, err := e.rt.List(ctx)
	if err != nil {
		return nil, fmt.Errorf("list containers: %w", err)
	}
	have := make(map[string]Container, len(list))
	for _, c := range list {
		have[c.ID] = c
	}
	var repairs []Repair
	var errs []error
	expected := map[string]bool{}
	for _, name := range slices.Sorted(maps.Keys(snap.Services)) {
		d := snap.Services[name]
		if !d.Spec.Active {
			continue
		}
		for _, comp := range d.Spec.Components {
			st, ok := d.Components[comp.Name]
			if !ok || st.ImageDigest == "" {
				continue // never started: nothing to converge to
			}
			id := ContainerID(name, comp.Name, st.ActiveSlot)
			expected[id] = true
			r, err := e.convergeComponent(ctx, d, comp, st, have[id])
			if err != nil {
				errs = append(errs, fmt.Errorf("converge %s: %w", id, err))
				continue
			}
			if r != "" {
				repairs = append(repairs, Repair{Service: name, Component: comp.Name, Resource: id, What: r})
			}
		}
	}
	for _, c := range list {
		if expected[c.ID] {
			continue
		}
		if err := e.rt.Remove(ctx, c.ID, e.grace); err != nil {
			errs = append(errs, fmt.Errorf("remove orphan container %s: %w", c.ID, err))
			continue
		}
		repairs = append(repairs, Repair{Service: c.Labels[LabelService], Component: c.Labels[LabelComponent],
			Resource: c.ID, What: "removed a container mcp owns that no deployed service claims"})
	}
	claimed := claimedLeases(snap)
	for _, l := range snap.Leases {
		if claimed[l.Key()] {
			continue
		}
		if err := e.ports.Release(ctx, l.Service, l.Component, l.Route, l.Slot); err != nil {
			errs = append(errs, fmt.Errorf("release orphan lease %s: %w", l.Key(), err))
			continue
		}
		repairs = append(repairs, Repair{Service: l.Service, Component: l.Component, Resource: l.Key(),
			What: "released port " + strconv.Itoa(l.Port) + " that no deployed service claims"})
	}
	repairs, errs = e.convergeRoutes(ctx, snap, repairs, errs)
	repairs, errs = e.convergeRecords(ctx, snap, repairs, errs) // DNS drift: records.go
	for _, r := range repairs {
		// A repair restores what the registry records: its commit is the
		// deployed service's, and no plan is involved.
		e.log.Warn("repaired drift", logattr.With(logattr.Service(r.Service, r.Component, snap.Services[r.Service].Commit, ""),
			"resource", r.Resource, "what", r.What)...)
	}
	return repairs, errors.Join(errs...)
}

func (e *Executor) convergeComponent(ctx context.Context, d registry.Deployed, comp spec.Component, st registry.ComponentState, c Container) (string, error) {
	cs, err := e.containerSpec(ctx, d.Spec, comp, st.ActiveSlot, st.ImageDigest, d.Commit)
	if err != nil && !isSecretError(err) {
		return "", err
	}
	var what string
	switch {
	case c.ID == "":
		what = "recreated a missing container"
	case c.Labels[LabelRuntimeHash] != cs.Labels[LabelRuntimeHash]:
		what = "replaced a container whose runtime spec differs from the registry"
	default:
		// Matches the registry; a secret changed or removed since then
		// (err) does not matter until the container must be rebuilt.
		return "", nil
	}
	if err != nil {
		return "", err // rebuilding needs the secret's recorded value
	}
	if err := e.gate.allow(cs.ID, e.now()); err != nil { // flap.go
		return "", err
	}
	if c.ID == "" {
		// The image may be gone too (containerd's root wiped): restore it.
		if _, err := e.rt.EnsureImage(ctx, comp.Image); err != nil {
			return "", err
		}
	}
	if err := e.ensureRunning(ctx, cs); err != nil {
		return "", err
	}
	return what, nil
}

// claimedLeases is the set of lease keys the recorded services hold: both
// slots of every route, and every fixed port.
func claimedLeases(snap registry.Snapshot) map[string]bool {
	claimed := map[string]bool{}
	for name, d := range snap.Services {
		for _, comp := range d.Spec.Components {
			for _, rt := range comp.Routes {
				for _, slot := range []int{registry.SlotA, registry.SlotB} {
					claimed[registry.LeaseKey(name, comp.Name, rt.Key(), slot)] = true
				}
			}
			for _, p := range comp.FixedPorts {
				claimed[registry.LeaseKey(name, comp.Name, "fixed:"+strconv.Itoa(p), registry.SlotA)] = true
			}
		}
	}
	return claimed
}

// Recover closes the journal entries of steps that were in flight when the
// agent stopped. Nothing is undone blindly here: every step is idempotent,
// so the next reconcile re-plans from the registry and rolls forward, and
// the converge pass that follows removes what no recorded service claims.
func (e *Executor) Recover(ctx context.Context) ([]InFlight, error) {
	open, err := e.journal.InFlight(ctx)
	if err != nil {
		return nil, fmt.Errorf("read journal: %w", err)
	}
	for _, f := range open {
		e.log.Warn("step was in flight when the agent stopped; the next reconcile finishes or undoes it",
			logattr.With(logattr.Service(f.Service, "", "", f.PlanHash), "step", f.StepID, "started", f.Started)...)
		if err := e.journal.Finish(ctx, f.Seq, OutcomeInterrupted, "agent stopped during the step"); err != nil {
			return open, fmt.Errorf("close journal entry %d: %w", f.Seq, err)
		}
	}
	return open, nil
}
