package executor

import (
	"context"
	"fmt"
	"strings"
	"time"

	"metacircular.net/mcp/health"
	"metacircular.net/mcp/planner"
	"metacircular.net/mcp/registry"
	"metacircular.net/mcp/spec"
)

// DefaultDrain is how long the old slot of a blue-green update keeps
// running after the proxy routes moved away from it, before it is stopped:
// requests already sent to it finish (the proxy sends new ones to the new
// slot at once, and stopping is itself graceful: SIGTERM, then SIGKILL after
// the stop grace).
const DefaultDrain = 2 * time.Second

// WithDrain sets the blue-green drain time.
func WithDrain(d time.Duration) Option { return func(e *Executor) { e.drain = d } }

// setTarget records the slot a container step deploys a component to; from
// then on the run's other steps for the component (routes, health, the
// recorded ActiveSlot) use it.
func (r *serviceRun) setTarget(st planner.Step) {
	if r.target == nil {
		r.target = map[string]int{}
	}
	r.target[st.Component] = stepSlot(st, r.slot(st.Component))
}

// switchingOut reports whether a container removal is the old slot of a
// blue-green update (the run deployed the component to another slot).
func (r *serviceRun) switchingOut(st planner.Step) bool {
	t, ok := r.target[st.Component]
	return ok && st.Slot != "" && stepSlot(st, t) != t
}

// drainAndRemove stops the old slot's container after the drain time. Only
// that slot: the new one serves.
func (r *serviceRun) drainAndRemove(ctx context.Context, st planner.Step) error {
	if d := r.e.drain; d > 0 {
		t := time.NewTimer(d)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return context.Cause(ctx)
		}
	}
	id := ContainerID(r.deployedName(), st.Component, stepSlot(st, registry.SlotA))
	return r.e.rt.Remove(ctx, id, r.e.grace)
}

// waitingFor is the `after` gate, asked before a service's steps run: it
// returns what the service waits for ("" when nothing), and the service is
// then left exactly as deployed. A dependency is ready when its steps in
// this Apply all succeeded (their health waits passed), or, when it had
// none, when it is deployed, active and passes its health checks now (one
// round of checks: an unhealthy dependency is not waited for here, the
// next reconcile asks again).
func (e *Executor) waitingFor(ctx context.Context, svc *spec.Service, snap registry.Snapshot, done map[string]ServiceResult) string {
	if svc == nil || len(svc.After) == 0 {
		return ""
	}
	var why []string
	for _, dep := range svc.After {
		if w := e.depProblem(ctx, dep, snap, done); w != "" {
			why = append(why, dep+" ("+w+")")
		}
	}
	return strings.Join(why, ", ")
}

func (e *Executor) depProblem(ctx context.Context, dep string, snap registry.Snapshot, done map[string]ServiceResult) string {
	if r, ok := done[dep]; ok {
		switch {
		case r.Err != nil:
			return "its update failed"
		case r.Waiting != "":
			return "itself waiting for " + r.Waiting
		}
		return "" // applied in this run: its health waits passed
	}
	d, ok := snap.Services[dep]
	switch {
	case !ok:
		return "not deployed"
	case !d.Spec.Active:
		return "stopped: active = false"
	}
	k, ok := e.kinds[planner.KindHealth]
	if !ok {
		return "" // this node does not check health: deployed is ready
	}
	h := k.(*healthRunner)
	leases := map[string]int{}
	for _, l := range snap.Leases {
		leases[l.Key()] = l.Port
	}
	for _, comp := range d.Spec.Components {
		slot := d.Components[comp.Name].ActiveSlot
		targets, err := HealthTargets(comp, h.host, func(route string) (int, error) {
			p, ok := leases[registry.LeaseKey(dep, comp.Name, route, slot)]
			if !ok {
				return 0, fmt.Errorf("no lease")
			}
			return p, nil
		})
		if err != nil {
			return "not healthy: " + err.Error()
		}
		// A zero deadline: one round of checks, no waiting.
		err = health.Wait(ctx, targets, 0, health.WaitOptions{Clock: h.clock,
			Alive: func(ctx context.Context) error { return h.alive(ctx, ContainerID(dep, comp.Name, slot)) }})
		if err != nil {
			return "not healthy: " + comp.Name + ": " + err.Error()
		}
	}
	return ""
}
