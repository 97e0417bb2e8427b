package planner

import (
	"cmp"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"metacircular.net/mcp/registry"
	"metacircular.net/mcp/spec"
)

// Compute computes the plan that takes the node from in.Actual to in.Desired.
// It is pure: it reads nothing but in, never modifies it, and returns the
// same plan (byte for byte once encoded) for the same inputs, whatever the
// order of the slices in in.
func Compute(in Input) *Plan {
	p := &planner{
		in:     &in,
		leases: make(map[string]registry.Lease, len(in.Actual.Leases)),
		bySvc:  map[string][]registry.Lease{},
	}
	for _, l := range in.Actual.Leases {
		k := l.Key()
		// Keys are unique in the registry; should two ever share a key,
		// keep the lowest port so the choice does not depend on order.
		if old, ok := p.leases[k]; ok && old.Port <= l.Port {
			continue
		}
		p.leases[k] = l
	}
	for _, k := range sortedKeys(p.leases) {
		l := p.leases[k]
		p.bySvc[l.Service] = append(p.bySvc[l.Service], l)
	}

	specHashes := make([]string, len(in.Desired))
	for i := range in.Desired {
		specHashes[i] = spec.Hash(in.Desired[i])
	}
	out := &Plan{Version: Version, Node: in.Node, Hash: hashInput(&in, specHashes), Steps: []Step{}}
	desired, hashes := p.desired(specHashes)
	invalid := p.invalid(desired)
	for _, inv := range invalid {
		_, deployed := in.Actual.Services[inv.Name]
		out.Errors = append(out.Errors, ServiceError{
			Service: inv.Name, File: inv.File, Diagnostics: inv.Diagnostics, Deployed: deployed,
		})
	}

	svcs := p.services(desired, hashes, invalid)
	for _, s := range svcs {
		p.diffService(s)
	}
	p.crossServiceEdges()
	p.afterEdges(svcs) // rollout.go

	if refused := p.guard(desired, invalid); refused != "" {
		out.Refused = refused
		p.dropRemovals()
	}
	out.Steps = p.order()

	has := make(map[string]bool, len(svcs))
	for i := range out.Steps {
		has[out.Steps[i].Service] = true
	}
	for _, s := range svcs {
		if has[s.name] {
			out.Services = append(out.Services, s.summary())
		}
	}
	return out
}

// planner holds the state of one Plan call.
type planner struct {
	in     *Input
	leases map[string]registry.Lease   // by Lease.Key()
	bySvc  map[string][]registry.Lease // per service, sorted by key
	nodes  []*node
	// wantCert and wantRecord count the desired services that use each
	// hostname: a hostname one service gives up while another keeps it is
	// not removed (certificates and records are per hostname, not per
	// service).
	wantCert, wantRecord map[string]int
}

// node is a step under construction, with what the planner needs to link
// and order it.
type node struct {
	Step
	svc  int // the service's position in the service order
	rank int // tie-break inside the service (see rankOf)
	deps []*node
	pos  int // index in planner.nodes, then in the output (order)
	// Hostnames whose certificate this step's resource reads: needsCert
	// after the step (create/update), usedCert before it (update/remove).
	needsCert, usedCert []string
	// Route steps: the hostname served after / before the step, and the
	// proxy identity ("hostname:listener") taken / given up.
	serves, served     string
	acquires, releases string
	// switchOut marks the removal of the old slot's container in a
	// blue-green update: it waits for the new slot to serve (rollout.go).
	switchOut bool
	// switchIn marks a route step of a blue-green update: it moves the
	// backend to the new slot once the service's new containers are healthy.
	switchIn bool
}

// svcPlan is one service being planned.
type svcPlan struct {
	name string
	idx  int
	spec *spec.Service // desired, or nil when the file is gone
	dep  *registry.Deployed
	want *model
	have *model
	hash string // spec.Hash of the desired definition
	kind svcKind
	// hf are the features the service was applied with: which of its
	// routes, certificates and records exist.
	hf Features
	// bg is set when the service's update runs blue-green: its running
	// components move to the other slot (rollout.go); bgSlot is where new
	// components of such an update go.
	bg     bool
	bgSlot int
}

type svcKind int

const (
	svcChanged svcKind = iota
	svcNew
	svcRemoved
	svcOrphan // not deployed and not desired, but holds leases
)

// Reasons shared by many steps.
const (
	reasonNew        = "new service"
	reasonRemoved    = "service file removed"
	reasonOrphan     = "lease held for a service that is not deployed"
	reasonDeactivate = "active = false: stopped; port leases kept so its ports stay stable"
	reasonActivate   = "active = true: started again"
	reasonNewComp    = "new component"
	reasonGoneComp   = "component removed from the definition"
)

func (s *svcPlan) deactivating() bool {
	return s.kind == svcChanged && s.spec != nil && !s.spec.Active && s.dep.Spec.Active
}

func (s *svcPlan) activating() bool {
	return s.kind == svcChanged && s.spec != nil && s.spec.Active && !s.dep.Spec.Active
}

// newReason is the reason of a create: the service-wide one when the whole
// service is new or started again, else the specific one.
func (s *svcPlan) newReason(specific string) string {
	switch {
	case s.kind == svcNew:
		return reasonNew
	case s.activating():
		return reasonActivate
	}
	return specific
}

// goneReason is the reason of a remove.
func (s *svcPlan) goneReason(specific string) string {
	switch {
	case s.kind == svcRemoved:
		return reasonRemoved
	case s.kind == svcOrphan:
		return reasonOrphan
	case s.deactivating():
		return reasonDeactivate
	}
	return specific
}

func (s *svcPlan) summary() ServicePlan {
	sp := ServicePlan{Name: s.name}
	src := s.spec
	if src == nil && s.dep != nil {
		src = &s.dep.Spec
	}
	if src != nil {
		sp.File, sp.Tier = src.File, src.Tier
	}
	switch {
	case s.kind == svcNew:
		sp.Action, sp.Reason = ActionCreate, reasonNew
	case s.kind == svcRemoved:
		sp.Action, sp.Reason = ActionRemove, reasonRemoved
	case s.kind == svcOrphan:
		sp.Action, sp.Reason = ActionRemove, reasonOrphan
	case s.deactivating():
		sp.Action, sp.Reason = ActionUpdate, reasonDeactivate
	case s.activating():
		sp.Action, sp.Reason = ActionUpdate, reasonActivate
	case s.hash != s.dep.SpecHash:
		sp.Action, sp.Reason = ActionUpdate, "definition changed"
	default:
		sp.Action, sp.Reason = ActionUpdate, "recorded state incomplete"
	}
	return sp
}

// desired returns the valid desired services by name. Names are unique in a
// valid repo; should two services share one, the one with the lowest spec
// hash wins so the result does not depend on input order.
func (p *planner) desired(specHashes []string) (map[string]*spec.Service, map[string]string) {
	d := make(map[string]*spec.Service, len(p.in.Desired))
	h := make(map[string]string, len(p.in.Desired))
	for i := range p.in.Desired {
		s, sh := &p.in.Desired[i], specHashes[i]
		if old, ok := h[s.Name]; ok && old <= sh {
			continue
		}
		d[s.Name], h[s.Name] = s, sh
	}
	return d, h
}

// invalid returns the invalid services sorted by name then file. A name
// that is both valid and invalid (two files claiming it) is treated as
// invalid: leaving it as deployed is the safe reading.
func (p *planner) invalid(desired map[string]*spec.Service) []spec.Invalid {
	inv := slices.Clone(p.in.Invalid)
	slices.SortFunc(inv, func(a, b spec.Invalid) int {
		return cmp.Or(cmp.Compare(a.Name, b.Name), cmp.Compare(a.File, b.File))
	})
	for _, i := range inv {
		delete(desired, i.Name)
	}
	return inv
}

// services lists every service that may get steps, in plan order, and
// builds both models of each.
func (p *planner) services(desired map[string]*spec.Service, hashes map[string]string, invalid []spec.Invalid) []*svcPlan {
	skip := make(map[string]bool, len(invalid))
	for _, i := range invalid {
		skip[i.Name] = true
	}
	f, dom := p.in.Features, p.in.Domain
	var svcs []*svcPlan
	seen := map[string]bool{}
	add := func(s *svcPlan) {
		seen[s.name] = true
		svcs = append(svcs, s)
	}
	for name, s := range desired {
		sp := &svcPlan{name: name, spec: s, hash: hashes[name], want: newModel(s, f, dom), kind: svcNew, have: emptyModel}
		if d, ok := p.in.Actual.Services[name]; ok {
			sp.dep, sp.kind, sp.hf = &d, svcChanged, d.Features
			if d.SpecHash == sp.hash && d.Features == f {
				// Same definition and features: the same model. The agent
				// plans every poll, and then nearly every service is
				// unchanged.
				sp.have = sp.want
			} else {
				sp.have = newModel(&d.Spec, d.Features, dom)
			}
		}
		add(sp)
	}
	for name, d := range p.in.Actual.Services {
		if seen[name] || skip[name] {
			continue
		}
		add(&svcPlan{name: name, dep: &d, kind: svcRemoved, want: emptyModel, have: newModel(&d.Spec, d.Features, dom), hf: d.Features})
	}
	for name := range p.bySvc {
		if seen[name] || skip[name] {
			continue
		}
		add(&svcPlan{name: name, kind: svcOrphan, want: emptyModel, have: emptyModel})
	}

	p.wantCert, p.wantRecord = map[string]int{}, map[string]int{}
	for _, s := range svcs {
		for h := range s.want.certs {
			p.wantCert[h]++
		}
		for h := range s.want.records {
			p.wantRecord[h]++
		}
	}

	slices.SortFunc(svcs, compareServices)
	svcs = orderAfter(svcs) // rollout.go: a service after the ones it waits for
	for i, s := range svcs {
		s.idx = i
	}
	return svcs
}

// compareServices is the service order. Services that go away come first,
// in reverse order (workers before core, z before a), so that what they
// release (route identities, hostnames) is free before others claim it;
// then the rest, core before worker, then by name.
//
// Hook: `after` ordering (issue 7) adds edges from a service's first steps
// to the health steps of the services it waits for; the topological sort in
// order() already honours any edge, so only the edges need adding.
func compareServices(a, b *svcPlan) int {
	ag, bg := a.spec == nil, b.spec == nil
	if ag != bg {
		if ag {
			return -1
		}
		return 1
	}
	c := cmp.Or(cmp.Compare(tierRank(a.tier()), tierRank(b.tier())), cmp.Compare(a.name, b.name))
	if ag {
		return -c
	}
	return c
}

func (s *svcPlan) tier() string {
	switch {
	case s.spec != nil:
		return s.spec.Tier
	case s.dep != nil:
		return s.dep.Spec.Tier
	}
	return ""
}

func tierRank(t string) int {
	if t == spec.TierCore {
		return 0
	}
	return 1
}

// slot is the slot a component's container and leases live in: the one the
// registry says is active, or A for a component never deployed.
func (s *svcPlan) slot(comp string) int {
	if s.dep != nil {
		if cs, ok := s.dep.Components[comp]; ok && cs.ActiveSlot == registry.SlotB {
			return registry.SlotB
		}
	}
	return registry.SlotA
}

func slotName(slot int) string {
	if slot == registry.SlotB {
		return slotNameB
	}
	return slotNameA
}

// Step IDs (see the package doc).
func portID(svc, comp, route string, slot int) string {
	return svc + "/" + comp + "/port/" + route + "/" + slotName(slot)
}
func imageID(svc, comp string) string { return svc + "/" + comp + "/image" }
func containerID(svc, comp string, slot int) string {
	return svc + "/" + comp + "/container/" + slotName(slot)
}
func healthID(svc, comp string, slot int) string {
	return svc + "/" + comp + "/health/" + slotName(slot)
}
func routeID(svc, comp, route string) string { return svc + "/" + comp + "/route/" + route }
func certID(svc, host string) string         { return svc + "/cert/" + host }
func recordID(svc, host string) string       { return svc + "/record/" + host }

// runtimeName is the container's name in the runtime (executor.ContainerSpec.ID).
func runtimeName(svc, comp string, slot int) string {
	return svc + "." + comp + "." + slotName(slot)
}

// rankOf orders the steps of one service when dependencies leave a choice:
// removals first, in reverse dependency order (a record before its route, a
// route before its container, a container before its image and ports), then
// creates and updates, dependencies first.
func rankOf(k Kind, a Action) int {
	if a == ActionRemove {
		switch k {
		case KindRecord:
			return 0
		case KindRoute:
			return 1
		case KindContainer:
			return 2
		case KindCert:
			return 3
		case KindImage:
			return 4
		default: // KindPort
			return 5
		}
	}
	switch k {
	case KindPort:
		return 10
	case KindImage:
		return 11
	case KindCert:
		return 12
	case KindContainer:
		return 13
	case KindHealth:
		return 14
	case KindRoute:
		return 15
	default: // KindRecord
		return 16
	}
}

func (p *planner) add(s *svcPlan, n *node) *node {
	n.Service = s.name
	n.svc = s.idx
	n.rank = rankOf(n.Kind, n.Action)
	p.nodes = append(p.nodes, n)
	return n
}

// diffService adds the steps of one service, then links them.
func (p *planner) diffService(s *svcPlan) {
	first := len(p.nodes)
	s.bg, s.bgSlot = p.blueGreen(s) // rollout.go
	for _, name := range unionSorted(s.want.names, s.have.names) {
		p.diffComponent(s, name)
	}
	p.diffLeases(s)
	if s.want != s.have {
		p.diffCerts(s)
		p.diffRecords(s)
	}
	linkService(p.nodes[first:])
}

func (p *planner) diffComponent(s *svcPlan, name string) {
	w, h := s.want.comps[name], s.have.comps[name]
	slot := s.slot(name)
	f := p.in.Features

	// The image: pulled and pinned while the component exists, whether it
	// runs or not, so `active = true` is a start and not a pull.
	switch {
	case w != nil && h == nil:
		p.add(s, &node{Step: Step{ID: imageID(s.name, name), Component: name, Kind: KindImage, Action: ActionCreate,
			Reason: s.newReason(reasonNewComp), Detail: w.comp.Image, Deferred: []string{"digest: resolved at pull"}}})
	case w == nil && h != nil:
		p.add(s, &node{Step: Step{ID: imageID(s.name, name), Component: name, Kind: KindImage, Action: ActionRemove,
			Reason: s.goneReason(reasonGoneComp), Detail: h.comp.Image}})
	case w != nil && w.comp.Image != h.comp.Image:
		p.add(s, &node{Step: Step{ID: imageID(s.name, name), Component: name, Kind: KindImage, Action: ActionUpdate,
			Reason:   versionChange(h.comp, w.comp),
			Changes:  []Change{{Field: "image", Old: quote(h.comp.Image), New: quote(w.comp.Image)}},
			Deferred: []string{"digest: resolved at pull"}}})
	}

	if s.bg && p.moveComponent(s, name, w, h) { // rollout.go
		return
	}

	// The container, and a health wait after it starts.
	wRun, hRun := w != nil && w.running, h != nil && h.running
	var cid, rname string
	if wRun || hRun {
		cid, rname = containerID(s.name, name, slot), runtimeName(s.name, name, slot)
	}
	started := false
	switch {
	case wRun && !hRun:
		p.add(s, &node{Step: Step{ID: cid, Component: name, Slot: slotName(slot), Kind: KindContainer, Action: ActionCreate,
			Reason: s.newReason(reasonNewComp), Detail: rname}, needsCert: w.l4Hosts(f)})
		started = true
	case !wRun && hRun:
		p.add(s, &node{Step: Step{ID: cid, Component: name, Slot: slotName(slot), Kind: KindContainer, Action: ActionRemove,
			Reason: s.goneReason(reasonGoneComp), Detail: rname}, usedCert: h.l4Hosts(s.hf)})
	case wRun && hRun:
		if ch := p.containerChanges(s.name, slot, slot, w, h); len(ch) > 0 {
			p.add(s, &node{Step: Step{ID: cid, Component: name, Slot: slotName(slot), Kind: KindContainer, Action: ActionUpdate,
				Reason: containerReason(h.comp, w.comp, ch), Detail: rname, Changes: ch},
				needsCert: w.l4Hosts(f), usedCert: h.l4Hosts(s.hf)})
			started = true
		}
	}
	if started && f.Health {
		p.add(s, &node{Step: Step{ID: healthID(s.name, name, slot), Component: name, Slot: slotName(slot), Kind: KindHealth,
			Action: ActionWait, Reason: "wait until " + rname + " is healthy"}})
	}

	// Routes exist on the recorded side only if the agent managed routes
	// when it applied the service.
	wRoutes, hRoutes := wRun && f.Routes, hRun && s.hf.Routes
	if !wRoutes && !hRoutes {
		return
	}
	var wKeys, hKeys []string
	if wRoutes {
		wKeys = w.keys
	}
	if hRoutes {
		hKeys = h.keys
	}
	if w == h {
		return // same definition: same routes
	}
	for _, k := range unionSorted(wKeys, hKeys) {
		var wr, hr *spec.Route
		if wRoutes {
			if r, ok := w.route(k); ok {
				wr = &r
			}
		}
		if hRoutes {
			if r, ok := h.route(k); ok {
				hr = &r
			}
		}
		p.diffRoute(s, name, slot, k, wr, hr, h == nil, w == nil)
	}
}

func (p *planner) diffRoute(s *svcPlan, comp string, slot int, key string, wr, hr *spec.Route, compNew, compGone bool) {
	// In a blue-green update every route of a moving component changes
	// backend, whatever else changes.
	moved := s.bg && wr != nil && slot != s.slot(comp)
	if wr != nil && hr != nil && wr.Port == hr.Port && wr.Mode == hr.Mode && wr.Hostname == hr.Hostname && !moved {
		return
	}
	id := routeID(s.name, comp, key)
	certs := p.in.Features.Certs
	switch {
	case wr != nil && hr == nil:
		reason := fmt.Sprintf("new route %q", key)
		if compNew {
			reason = reasonNewComp
		}
		n := p.add(s, &node{Step: Step{ID: id, Component: comp, Route: key, Hostname: wr.Hostname, Kind: KindRoute,
			Action: ActionCreate, Reason: s.newReason(reason), Detail: routeDetail(*wr, s.name, comp, slot)},
			serves: wr.Hostname, acquires: routeIdent(*wr)})
		if certs && wr.Mode == spec.ModeL7 {
			n.needsCert = []string{wr.Hostname}
		}
	case wr == nil && hr != nil:
		reason := fmt.Sprintf("route %q removed from the definition", key)
		if compGone {
			reason = reasonGoneComp
		}
		n := p.add(s, &node{Step: Step{ID: id, Component: comp, Route: key, Hostname: hr.Hostname, Kind: KindRoute,
			Action: ActionRemove, Reason: s.goneReason(reason), Detail: routeDetail(*hr, s.name, comp, slot)},
			served: hr.Hostname, releases: routeIdent(*hr)})
		if s.hf.Certs && hr.Mode == spec.ModeL7 {
			n.usedCert = []string{hr.Hostname}
		}
	default:
		var ch []Change
		var why []string
		field := "routes[" + key + "]."
		if hr.Port != wr.Port {
			ch = append(ch, Change{Field: field + "port", Old: strconv.Itoa(hr.Port), New: strconv.Itoa(wr.Port), Forces: true})
			why = append(why, fmt.Sprintf("listener %d → %d", hr.Port, wr.Port))
		}
		if hr.Mode != wr.Mode {
			ch = append(ch, Change{Field: field + "mode", Old: quote(hr.Mode), New: quote(wr.Mode)})
			why = append(why, fmt.Sprintf("mode %s → %s", hr.Mode, wr.Mode))
		}
		if hr.Hostname != wr.Hostname {
			ch = append(ch, Change{Field: field + "hostname", Old: quote(hr.Hostname), New: quote(wr.Hostname), Forces: true})
			why = append(why, fmt.Sprintf("hostname %s → %s", hr.Hostname, wr.Hostname))
		}
		if moved {
			from := runtimeName(s.name, comp, s.slot(comp))
			ch = append(ch, Change{Field: field + "backend", Old: from, New: runtimeName(s.name, comp, slot)})
			why = append(why, "blue-green: traffic moves from slot "+slotName(s.slot(comp))+" to slot "+slotName(slot))
		}
		if len(ch) == 0 {
			return
		}
		n := p.add(s, &node{Step: Step{ID: id, Component: comp, Route: key, Hostname: wr.Hostname, Kind: KindRoute,
			Action: ActionUpdate, Reason: strings.Join(why, ", "), Detail: routeDetail(*wr, s.name, comp, slot), Changes: ch},
			serves: wr.Hostname, served: hr.Hostname, switchIn: moved})
		if routeIdent(*hr) != routeIdent(*wr) {
			n.acquires, n.releases = routeIdent(*wr), routeIdent(*hr)
		}
		if certs && wr.Mode == spec.ModeL7 {
			n.needsCert = []string{wr.Hostname}
		}
		if certs && hr.Mode == spec.ModeL7 {
			n.usedCert = []string{hr.Hostname}
		}
	}
}

// routeIdent is what identifies a route in the proxy: a hostname on a
// listener. Two services never hold the same one (spec validation).
func routeIdent(r spec.Route) string {
	return strings.ToLower(r.Hostname) + ":" + strconv.Itoa(r.Port)
}

func routeDetail(r spec.Route, svc, comp string, slot int) string {
	return r.String() + " → " + runtimeName(svc, comp, slot)
}

// versionChange describes an image change by its tags when they differ,
// else by the full references.
func versionChange(old, new *spec.Component) string {
	if old.Version != "" && new.Version != "" && old.Version != new.Version {
		return "image " + old.Version + " → " + new.Version
	}
	return "image " + old.Image + " → " + new.Image
}

func containerReason(old, new *spec.Component, ch []Change) string {
	if old.Image != new.Image {
		return versionChange(old, new) + " forces replacement"
	}
	var fields []string
	for _, c := range ch {
		f, _, _ := strings.Cut(c.Field, ".")
		if len(fields) == 0 || fields[len(fields)-1] != f {
			fields = append(fields, f)
		}
	}
	return strings.Join(fields, ", ") + " changed: forces replacement"
}

// containerChanges lists every runtime-relevant difference. A container is
// immutable, so each one forces a replacement. Route listener, mode and
// hostname are proxy matters and do not touch the container; the host ports
// leased for its routes do, through the environment.
// hslot and wslot are the slots of the running and the new container (they
// differ in a blue-green update).
func (p *planner) containerChanges(svc string, hslot, wslot int, w, h *compModel) []Change {
	if w == h && hslot == wslot && p.leased(svc, wslot, w) {
		return nil // same definition, same ports
	}
	var ch []Change
	if h.comp.Image != w.comp.Image {
		ch = append(ch, Change{Field: "image", Old: quote(h.comp.Image), New: quote(w.comp.Image), Forces: true})
	}
	if !slices.Equal(h.comp.Cmd, w.comp.Cmd) {
		ch = append(ch, Change{Field: "cmd", Old: quoteList(h.comp.Cmd), New: quoteList(w.comp.Cmd), Forces: true})
	}
	he, we := p.env(svc, hslot, h, "(lease missing)"), p.env(svc, wslot, w, afterApply)
	for _, k := range unionSorted(sortedKeys(he), sortedKeys(we)) {
		o, ok1 := he[k]
		n, ok2 := we[k]
		if !ok1 {
			o = none
		}
		if !ok2 {
			n = none
		}
		if o != n {
			ch = append(ch, Change{Field: "env." + k, Old: o, New: n, Forces: true})
		}
	}
	if hv, wv := volumeList(h.comp.Volumes), volumeList(w.comp.Volumes); !slices.Equal(hv, wv) {
		ch = append(ch, Change{Field: "volumes", Old: quoteList(hv), New: quoteList(wv), Forces: true})
	}
	if h.comp.User != w.comp.User {
		ch = append(ch, Change{Field: "user", Old: quote(h.comp.User), New: quote(w.comp.User), Forces: true})
	}
	if h.comp.Restart != w.comp.Restart {
		ch = append(ch, Change{Field: "restart", Old: quote(h.comp.Restart), New: quote(w.comp.Restart), Forces: true})
	}
	return ch
}

// leased reports whether every route of c has its lease in slot.
func (p *planner) leased(svc string, slot int, c *compModel) bool {
	for _, k := range c.keys {
		if _, ok := p.leases[registry.LeaseKey(svc, c.comp.Name, k, slot)]; !ok {
			return false
		}
	}
	return true
}

// env is the container's environment in display form: declared variables
// quoted (secrets by name and digest, spec.EnvVar.Display), port variables as the leased host port (or missing, when no lease
// is recorded for the route).
func (p *planner) env(svc string, slot int, c *compModel, missing string) map[string]string {
	m := make(map[string]string, len(c.comp.Env)+len(c.keys))
	for _, e := range c.comp.Env {
		// A secret shows as its name and keyed digest, never a value.
		m[e.Name] = e.Display()
	}
	for i, k := range c.keys {
		v := missing
		if l, ok := p.leases[registry.LeaseKey(svc, c.comp.Name, k, slot)]; ok {
			v = strconv.Itoa(l.Port)
		}
		for _, n := range c.routes[i].EnvVars {
			m[n] = v
		}
	}
	return m
}

// diffLeases compares the recorded leases with the ones the desired
// definition needs. Leases are recorded explicitly, so they are compared
// directly: a lease lost from the registry is leased again. Every route of
// a defined component keeps its leases, in both slots, even while the
// service is inactive: ports stay stable.
func (p *planner) diffLeases(s *svcPlan) {
	for _, name := range s.want.names {
		c := s.want.comps[name]
		h := s.have.comps[name]
		for i, k := range c.keys {
			for _, slot := range p.leaseSlots(s, name) { // rollout.go
				p.diffLease(s, name, k, slot, c.routes[i], h)
			}
		}
		for _, fp := range c.fixed {
			route := fixedPrefix + strconv.Itoa(fp)
			if _, ok := p.leases[registry.LeaseKey(s.name, name, route, registry.SlotA)]; ok {
				continue
			}
			reason := "port lease missing from the registry"
			switch {
			case h == nil:
				reason = reasonNewComp
			case !slices.Contains(h.fixed, fp):
				reason = fmt.Sprintf("new fixed port %d", fp)
			}
			p.add(s, &node{Step: Step{ID: portID(s.name, name, route, registry.SlotA), Component: name, Route: route,
				Slot: slotNameA, Port: fp, Kind: KindPort, Action: ActionCreate, Reason: s.newReason(reason),
				Detail: "fixed host port " + strconv.Itoa(fp)}})
		}
	}
	for _, l := range p.bySvc[s.name] {
		if s.want.holds(l) {
			continue
		}
		reason := fmt.Sprintf("route %q removed from the definition", l.Route)
		detail := "route " + l.Route
		if strings.HasPrefix(l.Route, fixedPrefix) {
			reason = "fixed port " + strings.TrimPrefix(l.Route, fixedPrefix) + " removed from the definition"
			detail = "fixed host port " + strconv.Itoa(l.Port)
		} else if h := s.have.comps[l.Component]; h != nil {
			if r, ok := h.route(l.Route); ok {
				detail += " (" + r.String() + ")"
			}
		}
		if s.want.comps[l.Component] == nil && s.have.comps[l.Component] != nil {
			reason = reasonGoneComp
		}
		p.add(s, &node{Step: Step{ID: portID(s.name, l.Component, l.Route, l.Slot), Component: l.Component, Route: l.Route,
			Slot: slotName(l.Slot), Port: l.Port, Kind: KindPort, Action: ActionRemove, Reason: s.goneReason(reason),
			Detail: detail}})
	}
}

// diffLease plans the lease of one route in one slot when the registry
// lacks it.
func (p *planner) diffLease(s *svcPlan, name, k string, slot int, r spec.Route, h *compModel) {
	if _, ok := p.leases[registry.LeaseKey(s.name, name, k, slot)]; ok {
		return
	}
	reason := "port lease missing from the registry"
	if h == nil {
		reason = reasonNewComp
	} else if _, ok := h.route(k); !ok {
		reason = fmt.Sprintf("new route %q", k)
	} else if s.bg && slot != s.slot(name) {
		reason = "blue-green: the new version's port, next to the running one"
	}
	p.add(s, &node{Step: Step{ID: portID(s.name, name, k, slot), Component: name, Route: k, Slot: slotName(slot),
		Kind: KindPort, Action: ActionCreate, Reason: s.newReason(reason),
		Detail: "route " + k + " (" + r.String() + ")", Deferred: []string{"port: assigned at apply"}}})
}

// diffCerts compares the hostnames that need a certificate. One certificate
// per hostname (the CA's policy, no wildcards); its consumers are the proxy
// for L7 routes and the service itself for L4 routes.
func (p *planner) diffCerts(s *svcPlan) {
	for _, host := range unionSorted(sortedKeys(s.want.certs), sortedKeys(s.have.certs)) {
		w, h := s.want.certs[host], s.have.certs[host]
		id := certID(s.name, host)
		switch {
		case h == 0:
			p.add(s, &node{Step: Step{ID: id, Hostname: host, Kind: KindCert, Action: ActionCreate,
				Reason: s.newReason("hostname " + host + " newly routed"), Detail: "for " + w.String(),
				Deferred: []string{"expiry: set when issued"}}})
		case w == 0:
			if p.wantCert[host] > 0 {
				continue // another service keeps using this hostname's certificate
			}
			p.add(s, &node{Step: Step{ID: id, Hostname: host, Kind: KindCert, Action: ActionRemove,
				Reason: s.goneReason("no route uses " + host + " any more"), Detail: "for " + h.String()}})
		case w != h:
			p.add(s, &node{Step: Step{ID: id, Hostname: host, Kind: KindCert, Action: ActionUpdate,
				Reason: "certificate now read by " + w.String(), Detail: "for " + w.String(),
				Changes: []Change{{Field: "consumers", Old: h.String(), New: w.String()}}}})
		}
	}
}

// diffRecords compares the hostnames that get DNS records (the node's
// addresses, A/AAAA, for hostnames in svc.mcp.<domain>).
func (p *planner) diffRecords(s *svcPlan) {
	for _, host := range unionSorted(sortedKeys(s.want.records), sortedKeys(s.have.records)) {
		w, h := s.want.records[host], s.have.records[host]
		switch {
		case w && !h:
			p.add(s, &node{Step: Step{ID: recordID(s.name, host), Hostname: host, Kind: KindRecord, Action: ActionCreate,
				Reason: s.newReason("hostname " + host + " newly routed"), Detail: "A/AAAA → addresses of node " + p.in.Node}})
		case h && !w:
			if p.wantRecord[host] > 0 {
				continue // another service on this node still serves the hostname
			}
			p.add(s, &node{Step: Step{ID: recordID(s.name, host), Hostname: host, Kind: KindRecord, Action: ActionRemove,
				Reason: s.goneReason("no route uses " + host + " any more"), Detail: "A/AAAA → addresses of node " + p.in.Node}})
		}
	}
}

// linkService adds the dependencies between the steps of one service. A
// service has tens of steps, so pairwise is cheap and keeps each rule on
// one line.
func linkService(ns []*node) {
	for _, n := range ns {
		for _, m := range ns {
			if n != m && dependsOn(n, m) {
				n.deps = append(n.deps, m)
			}
		}
	}
}

// dependsOn says whether step n must wait for step m of the same service.
func dependsOn(n, m *node) bool {
	sameComp := n.Component != "" && n.Component == m.Component
	live := n.Action != ActionRemove // create, update or wait
	mLive := m.Action != ActionRemove
	if d, only := switchDependsOn(n, m); d || only { // rollout.go
		return d
	}
	switch n.Kind {
	case KindContainer:
		if live {
			return sameComp && ((m.Kind == KindPort && m.Action == ActionCreate) ||
				(m.Kind == KindImage && mLive) ||
				(m.Kind == KindRoute && !mLive)) ||
				(m.Kind == KindCert && mLive && slices.Contains(n.needsCert, m.Hostname))
		}
		return sameComp && m.Kind == KindRoute && !mLive
	case KindHealth:
		return sameComp && m.Kind == KindContainer && mLive && m.Slot == n.Slot
	case KindRoute:
		if live {
			return sameComp && mLive && (m.Kind == KindContainer || m.Kind == KindHealth) ||
				(m.Kind == KindCert && mLive && slices.Contains(n.needsCert, m.Hostname))
		}
		return m.Kind == KindRecord && !mLive && m.Hostname == n.served
	case KindRecord:
		return live && m.Kind == KindRoute && mLive && m.serves == n.Hostname
	case KindCert:
		return !live && (m.Kind == KindRoute || m.Kind == KindContainer) && m.Action != ActionCreate &&
			slices.Contains(m.usedCert, n.Hostname)
	case KindImage:
		return !live && sameComp && m.Kind == KindContainer && !mLive
	case KindPort:
		return !live && sameComp && m.Action != ActionCreate &&
			(m.Kind == KindContainer || (m.Kind == KindRoute && m.Route == n.Route))
	}
	return false
}

// crossServiceEdges makes a step that takes a proxy identity (hostname on a
// listener) wait for the steps of other services that give it up, so a
// route moving between services is never removed after it was added.
func (p *planner) crossServiceEdges() {
	releases := map[string][]*node{}
	for _, n := range p.nodes {
		if n.releases != "" {
			releases[n.releases] = append(releases[n.releases], n)
		}
	}
	if len(releases) == 0 {
		return
	}
	for _, n := range p.nodes {
		for _, r := range releases[n.acquires] {
			if r != n {
				n.deps = append(n.deps, r)
			}
		}
	}
}

// guard refuses a plan that would remove every deployed service; an invalid
// service is left as deployed and so does not count as removed.
func (p *planner) guard(desired map[string]*spec.Service, invalid []spec.Invalid) string {
	if p.in.AllowRemoveAll || len(p.in.Actual.Services) == 0 {
		return ""
	}
	keep := make(map[string]bool, len(invalid)+len(p.in.Elsewhere))
	for _, i := range invalid {
		keep[i.Name] = true
	}
	for _, name := range p.in.Elsewhere {
		keep[name] = true // moved to another node, not lost
	}
	for name := range p.in.Actual.Services {
		if desired[name] != nil || keep[name] {
			return ""
		}
	}
	names := sortedKeys(p.in.Actual.Services)
	list := strings.Join(names, ", ")
	if len(names) > 5 {
		list = strings.Join(names[:5], ", ") + fmt.Sprintf(" and %d more", len(names)-5)
	}
	return fmt.Sprintf("the plan would remove every deployed service at once (%d: %s): the desired state "+
		"places none of them on node %q any more, which usually means an empty or wrong checkout; "+
		"no removal is planned. To remove them all, allow it explicitly (--allow-remove-all)",
		len(names), list, p.in.Node)
}

// dropRemovals takes every remove step out of the plan; links to them
// disappear in order().
func (p *planner) dropRemovals() {
	kept := p.nodes[:0]
	for _, n := range p.nodes {
		if n.Action != ActionRemove {
			kept = append(kept, n)
		} else {
			n.pos = -1
		}
	}
	clear(p.nodes[len(kept):])
	p.nodes = kept
}
