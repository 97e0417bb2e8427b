package planner

import (
	"slices"
	"strings"

	"metacircular.net/mcp/registry"
	"metacircular.net/mcp/spec"
)

// Rollouts: blue-green updates and `after` ordering.
//
// A blue-green update (spec.Service.UpdateStrategy, on a node that manages
// routes) moves every running component of the service to its other slot:
//
//	port/<route>/b    create   the second port of each route's pair, if missing
//	image             update   as for any update
//	container/b       create   the new version, next to the old one
//	health/b          wait     until it is healthy
//	route/<route>     update   the proxy's backend moves from slot a to b
//	container/a       remove   the old version, once every route of the
//	                           service serves from b (the executor drains it
//	                           first)
//
// The whole service moves, even a component whose container did not change,
// because components reach each other ($PEER_*) in one slot. The registry's
// ActiveSlot moves only when all the service's steps succeeded; a failure
// before the switch removes container/b and leaves slot a serving untouched.

// otherSlot is the slot a blue-green update moves to.
func otherSlot(slot int) int {
	if slot == registry.SlotB {
		return registry.SlotA
	}
	return registry.SlotB
}

// blueGreen decides whether s's update runs blue-green, and which slot
// components new in this update start in. It does when the service stays
// active, its strategy is blue-green, the node has a proxy to switch (else
// nothing would move the traffic, and replace keeps the ports stable), and
// a running component's container changes.
func (p *planner) blueGreen(s *svcPlan) (bool, int) {
	if s.kind != svcChanged || s.spec == nil || !s.spec.Active || !s.dep.Spec.Active || !p.in.Features.Routes {
		return false, 0
	}
	if s.spec.UpdateStrategy() != spec.StrategyBlueGreen {
		return false, 0
	}
	moving, first := false, -1
	for _, name := range s.want.names {
		w, h := s.want.comps[name], s.have.comps[name]
		if h == nil || !h.running || !w.running {
			continue
		}
		slot := s.slot(name)
		if first < 0 {
			first = slot
		}
		if len(p.containerChanges(s.name, slot, slot, w, h)) > 0 {
			moving = true
		}
	}
	if !moving {
		return false, 0
	}
	return true, otherSlot(first)
}

// leaseSlots are the slots whose leases component name needs in this plan:
// the active one, plus the target of a blue-green move. A component new in
// a blue-green update lives in the target slot only.
func (p *planner) leaseSlots(s *svcPlan, name string) []int {
	slot := s.slot(name)
	if !s.bg {
		return []int{slot}
	}
	if w := s.want.comps[name]; w == nil || !w.running {
		return []int{slot}
	}
	if h := s.have.comps[name]; h == nil || !h.running {
		return []int{s.bgSlot}
	}
	return []int{slot, otherSlot(slot)}
}

// targetSlot is where a running component of a blue-green update goes.
func (s *svcPlan) targetSlot(name string) int {
	if h := s.have.comps[name]; h == nil || !h.running {
		return s.bgSlot
	}
	return otherSlot(s.slot(name))
}

// moveComponent plans the container, health wait and routes of a running
// component of a blue-green update; it returns false for a component that
// stops or goes away, which the ordinary path plans.
func (p *planner) moveComponent(s *svcPlan, name string, w, h *compModel) bool {
	if w == nil || !w.running {
		return false
	}
	f := p.in.Features
	from, to := s.slot(name), s.targetSlot(name)
	hRun := h != nil && h.running
	newName := runtimeName(s.name, name, to)
	reason := s.newReason(reasonNewComp)
	var ch []Change
	if hRun {
		ch = p.containerChanges(s.name, from, to, w, h)
		for i := range ch {
			ch[i].Forces = false // a new container next to the old one, not a replacement in place
		}
		reason = "blue-green: the service moves to slot " + slotName(to) + " (peers stay in one slot); " +
			runtimeName(s.name, name, from) + " keeps serving until then"
		if len(ch) > 0 {
			reason = "blue-green: " + changeSummary(h.comp, w.comp, ch) + "; the new version starts in slot " +
				slotName(to) + " next to slot " + slotName(from)
		}
	}
	p.add(s, &node{Step: Step{ID: containerID(s.name, name, to), Component: name, Slot: slotName(to), Kind: KindContainer,
		Action: ActionCreate, Reason: reason, Detail: newName, Changes: ch}, needsCert: w.l4Hosts(f)})
	if f.Health {
		p.add(s, &node{Step: Step{ID: healthID(s.name, name, to), Component: name, Slot: slotName(to), Kind: KindHealth,
			Action: ActionWait, Reason: "wait until " + newName + " is healthy, before traffic moves to it"}})
	}
	var hKeys []string
	if hRun && s.hf.Routes {
		hKeys = h.keys
	}
	for _, k := range unionSorted(w.keys, hKeys) {
		var wr, hr *spec.Route
		if r, ok := w.route(k); ok {
			wr = &r
		}
		if hKeys != nil {
			if r, ok := h.route(k); ok {
				hr = &r
			}
		}
		p.diffRoute(s, name, to, k, wr, hr, h == nil, false)
	}
	if hRun {
		p.add(s, &node{Step: Step{ID: containerID(s.name, name, from), Component: name, Slot: slotName(from),
			Kind: KindContainer, Action: ActionRemove,
			Reason: "blue-green: slot " + slotName(from) + " stops once the service serves from slot " + slotName(to) + " (drained first)",
			Detail: runtimeName(s.name, name, from)}, usedCert: h.l4Hosts(s.hf), switchOut: true})
	}
	return true
}

// changeSummary is containerReason without its "forces replacement": in a
// blue-green update nothing is replaced in place.
func changeSummary(old, new *spec.Component, ch []Change) string {
	if old.Image != new.Image {
		return versionChange(old, new)
	}
	var fields []string
	for _, c := range ch {
		f, _, _ := strings.Cut(c.Field, ".")
		if len(fields) == 0 || fields[len(fields)-1] != f {
			fields = append(fields, f)
		}
	}
	return strings.Join(fields, ", ") + " changed"
}

// switchDependsOn is dependsOn for the two blue-green steps that span the
// whole service: a route moving to the new slot waits for every new
// container of the service to be healthy (it may call its peers there),
// and the old slot's removal waits for every route to have moved.
func switchDependsOn(n, m *node) (bool, bool) {
	mLive := m.Action != ActionRemove
	switch {
	case n.switchOut:
		sameComp := n.Component != "" && n.Component == m.Component
		return (mLive && (m.Kind == KindRoute || m.Kind == KindHealth || m.Kind == KindContainer)) ||
			(sameComp && m.Kind == KindRoute && !mLive), true
	case n.switchIn && n.Action != ActionRemove:
		return mLive && (m.Kind == KindHealth || m.Kind == KindContainer), false
	}
	return false, false
}

// orderAfter reorders the services (already in compareServices order) so
// that each comes after the services its `after` names, keeping the order
// otherwise: among the services whose dependencies are placed, the first
// in the old order goes next. `after` wins over tier. Validation rejects
// cycles; should one reach the planner, the first waiting service is
// released so the result is still total and deterministic.
func orderAfter(svcs []*svcPlan) []*svcPlan {
	pos := make(map[string]int, len(svcs))
	hasAfter := false
	for i, s := range svcs {
		pos[s.name] = i
		hasAfter = hasAfter || (s.spec != nil && len(s.spec.After) > 0)
	}
	if !hasAfter {
		return svcs
	}
	waits := make([][]int, len(svcs))
	for i, s := range svcs {
		if s.spec == nil {
			continue
		}
		for _, d := range s.spec.After {
			if j, ok := pos[d]; ok && j != i && svcs[j].spec != nil {
				waits[i] = append(waits[i], j)
			}
		}
	}
	placed := make([]bool, len(svcs))
	out := make([]*svcPlan, 0, len(svcs))
	for len(out) < len(svcs) {
		pick := -1
		for i := range svcs {
			if placed[i] {
				continue
			}
			ready := true
			for _, j := range waits[i] {
				ready = ready && placed[j]
			}
			if ready {
				pick = i
				break
			}
		}
		if pick < 0 { // a cycle: release the first waiting service
			pick = slices.Index(placed, false)
		}
		placed[pick] = true
		out = append(out, svcs[pick])
	}
	return out
}

// afterEdges makes the steps that create or change something of a service
// wait for the health waits of the services its `after` names (for
// their new containers when the node does not wait for health). A
// dependency with no such step in the plan is already deployed as desired;
// the executor checks its health when it gets there.
func (p *planner) afterEdges(svcs []*svcPlan) {
	gates := map[string][]*node{}
	for _, n := range p.nodes {
		if n.Kind == KindHealth || (!p.in.Features.Health && n.Kind == KindContainer && n.Action != ActionRemove) {
			gates[n.Service] = append(gates[n.Service], n)
		}
	}
	for _, s := range svcs {
		if s.spec == nil || len(s.spec.After) == 0 {
			continue
		}
		var wait []*node
		for _, d := range s.spec.After {
			wait = append(wait, gates[d]...)
		}
		if len(wait) == 0 {
			continue
		}
		// The service's first steps (those that wait for nothing of their
		// own service) are enough: the rest already wait for them.
		for _, n := range p.nodes {
			if n.Service == s.name && n.Action != ActionRemove && len(n.deps) == 0 {
				n.deps = append(n.deps, wait...)
			}
		}
	}
}
