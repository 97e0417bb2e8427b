package executor

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"metacircular.net/mcp/internal/logattr"
	"metacircular.net/mcp/planner"
	"metacircular.net/mcp/registry"
	"metacircular.net/mcp/spec"
)

// serviceRun applies the steps of one service and remembers what it did,
// so a failure can undo exactly its own new work.
type serviceRun struct {
	e        *Executor
	planHash string
	commit   string
	desired  *spec.Service     // nil when the service is being removed
	deployed registry.Deployed // zero when the service is new
	digests  map[string]string // component → digest pulled in this run
	started  map[string]string // component → runtime hash started in this run
	// target is the slot each component is deployed to in this run (its
	// active slot, or the other one in a blue-green update; rollout.go).
	target  map[string]int
	undoers []func(ctx context.Context) error
}

func (r *serviceRun) step(ctx context.Context, st planner.Step) error {
	seq, err := r.e.journal.Begin(ctx, r.planHash, st)
	if err != nil {
		return fmt.Errorf("journal intent: %w", err)
	}
	r.e.log.Info("step", logattr.With(logattr.Service(st.Service, st.Component, r.commit, r.planHash),
		"step", st.ID, "action", string(st.Action))...)
	runErr := r.run(ctx, st)
	outcome, msg := OutcomeDone, ""
	if runErr != nil {
		outcome, msg = OutcomeFailed, runErr.Error()
	}
	// The outcome is recorded even when ctx was cancelled mid-step, so the
	// journal does not claim the step is still in flight.
	if err := r.e.journal.Finish(context.WithoutCancel(ctx), seq, outcome, msg); err != nil && runErr == nil {
		return fmt.Errorf("journal outcome: %w", err)
	}
	return runErr
}

func (r *serviceRun) run(ctx context.Context, st planner.Step) error {
	switch st.Kind {
	case planner.KindPort:
		return r.port(ctx, st)
	case planner.KindImage:
		if st.Action == planner.ActionRemove {
			return nil // images are pruned by the retention policy, not by plans
		}
		comp, err := r.component(st.Component)
		if err != nil {
			return err
		}
		digest, err := r.e.rt.EnsureImage(ctx, comp.Image)
		if err != nil {
			return err
		}
		r.digests[comp.Name] = digest
		return nil
	case planner.KindContainer:
		if st.Action == planner.ActionRemove {
			if r.switchingOut(st) { // the old slot of a blue-green update
				return r.drainAndRemove(ctx, st)
			}
			return r.removeContainers(ctx, st.Component)
		}
		r.setTarget(st)
		return r.startContainer(ctx, st.Component)
	default:
		k, ok := r.e.kinds[st.Kind]
		if !ok {
			return fmt.Errorf("%s: %w", st.Kind, ErrUnsupported)
		}
		return k.run(ctx, r, st)
	}
}

// port leases or releases one host port. Fixed legacy ports have a route
// key "fixed:<port>".
func (r *serviceRun) port(ctx context.Context, st planner.Step) error {
	slot := stepSlot(st, r.slot(st.Component))
	if p, ok := strings.CutPrefix(st.Route, "fixed:"); ok {
		n, err := strconv.Atoi(p)
		if err != nil {
			return fmt.Errorf("fixed port %q: %w", p, err)
		}
		if st.Action == planner.ActionRemove {
			return r.e.ports.Release(ctx, st.Service, st.Component, st.Route, registry.SlotA)
		}
		if err := r.e.ports.Fixed(ctx, st.Service, st.Component, n); err != nil {
			return err
		}
		if r.deployed.Spec.Name == "" {
			r.undoers = append(r.undoers, func(ctx context.Context) error {
				return r.e.ports.Release(ctx, st.Service, st.Component, st.Route, registry.SlotA)
			})
		}
		return nil
	}
	if st.Action == planner.ActionRemove {
		// Both slots of the pair go: the route no longer exists.
		for _, s := range []int{registry.SlotA, registry.SlotB} {
			if err := r.e.ports.Release(ctx, st.Service, st.Component, st.Route, s); err != nil {
				return err
			}
		}
		return nil
	}
	if st.Action == planner.ActionCreate {
		r.undoers = append(r.undoers, func(ctx context.Context) error {
			return r.e.ports.Release(ctx, st.Service, st.Component, st.Route, slot)
		})
	}
	_, err := r.e.ports.Lease(ctx, st.Service, st.Component, st.Route, slot)
	return err
}

// slot is the slot the run deploys the component to: the active one (a
// plain update keeps it), or the other one once a blue-green update started
// its container there.
func (r *serviceRun) slot(component string) int {
	if t, ok := r.target[component]; ok {
		return t
	}
	if cs, ok := r.deployed.Components[component]; ok {
		return cs.ActiveSlot
	}
	return registry.SlotA
}

func (r *serviceRun) component(name string) (spec.Component, error) {
	if r.desired != nil {
		for _, c := range r.desired.Components {
			if c.Name == name {
				return c, nil
			}
		}
	}
	return spec.Component{}, fmt.Errorf("component %q is not in the desired definition", name)
}

func (r *serviceRun) startContainer(ctx context.Context, component string) error {
	comp, err := r.component(component)
	if err != nil {
		return err
	}
	digest := r.digests[component]
	if digest == "" {
		// No image step ran (the image did not change): make sure it is
		// still there, e.g. after containerd lost its content store.
		if digest, err = r.e.rt.EnsureImage(ctx, comp.Image); err != nil {
			return err
		}
		r.digests[component] = digest
	}
	cs, err := r.e.containerSpec(ctx, *r.desired, comp, r.slot(component), digest, r.commit)
	if err != nil {
		return err
	}
	if err := r.e.ensureRunning(ctx, cs); err != nil {
		return err
	}
	if r.started == nil {
		r.started = map[string]string{}
	}
	r.started[component] = cs.Labels[LabelRuntimeHash]
	r.undoers = append(r.undoers, func(ctx context.Context) error {
		return r.e.rt.Remove(ctx, cs.ID, r.e.grace)
	})
	return nil
}

func (r *serviceRun) removeContainers(ctx context.Context, component string) error {
	for _, slot := range []int{registry.SlotA, registry.SlotB} {
		if err := r.e.rt.Remove(ctx, ContainerID(r.deployedName(), component, slot), r.e.grace); err != nil {
			return err
		}
	}
	return nil
}

func (r *serviceRun) deployedName() string {
	if r.desired != nil {
		return r.desired.Name
	}
	return r.deployed.Spec.Name
}

// undo reverses this run's new work, newest first. What it cannot undo is
// left for the converge pass, which rebuilds what the registry records.
func (r *serviceRun) undo(ctx context.Context) {
	for i := len(r.undoers) - 1; i >= 0; i-- {
		if err := r.undoers[i](ctx); err != nil {
			r.e.log.Warn("undo step failed; the converge pass will retry",
				logattr.With(logattr.Service(r.deployedName(), "", r.commit, r.planHash), "err", err)...)
		}
	}
}

// record writes the service's new state after all its steps succeeded.
func (r *serviceRun) record(ctx context.Context) error {
	if r.desired == nil {
		return r.e.store.DeleteDeployed(ctx, r.deployed.Spec.Name)
	}
	d := registry.Deployed{
		Spec:       *r.desired,
		SpecHash:   spec.Hash(*r.desired),
		Commit:     r.commit,
		AppliedAt:  r.e.now().UTC(),
		Components: map[string]registry.ComponentState{},
		Features:   r.e.Features(),
		Previous:   r.deployed.Previous,
	}
	// A new definition of a running service: the one it replaces is what
	// a crash loop after this rollout goes back to.
	if old := r.deployed; old.Spec.Name != "" && old.Spec.Active && old.SpecHash != d.SpecHash {
		d.Previous = &registry.Version{Spec: old.Spec, SpecHash: old.SpecHash, Commit: old.Commit}
	}
	if !r.desired.Active {
		return r.e.store.PutDeployed(ctx, d)
	}
	for _, c := range r.desired.Components {
		cs := r.deployed.Components[c.Name]
		if dg, ok := r.digests[c.Name]; ok && dg != cs.ImageDigest {
			if cs.ImageDigest != "" {
				cs.PreviousDigest = cs.ImageDigest
			}
			cs.ImageDigest = dg
		}
		if h, ok := r.started[c.Name]; ok {
			cs.RuntimeHash = h
		}
		if t, ok := r.target[c.Name]; ok {
			cs.ActiveSlot = t // moves only now, after every step succeeded
		}
		d.Components[c.Name] = cs
	}
	return r.e.store.PutDeployed(ctx, d)
}

// ensureRunning makes the container described by cs run, replacing one
// with the same ID but a different runtime hash. A container that already
// runs with the same hash is left alone: re-running a step after a crash
// never restarts a healthy container.
func (e *Executor) ensureRunning(ctx context.Context, cs ContainerSpec) error {
	list, err := e.rt.List(ctx)
	if err != nil {
		return fmt.Errorf("list containers: %w", err)
	}
	var existing *Container
	for i := range list {
		if list[i].ID == cs.ID {
			existing = &list[i]
			break
		}
	}
	if existing != nil && existing.Labels[LabelRuntimeHash] == cs.Labels[LabelRuntimeHash] && existing.Status == StatusRunning {
		return nil
	}
	// Checked before anything is stopped: a refused mount leaves the
	// running version alone.
	if err := checkVolumeLinks(e.hostRoot, cs.Service, cs.Volumes); err != nil {
		return err
	}
	if existing != nil && existing.Labels[LabelRuntimeHash] != cs.Labels[LabelRuntimeHash] {
		if err := e.rt.Remove(ctx, existing.ID, e.grace); err != nil {
			return fmt.Errorf("replace container %s: %w", existing.ID, err)
		}
	}
	return e.rt.Start(ctx, cs)
}
