package planner

import (
	"metacircular.net/mcp/registry"
	"metacircular.net/mcp/spec"
)

// Version is the planner's version; it is part of every plan hash, so a
// planner change that alters plans also changes their hashes.
//
// Version 2: blue-green updates (a new slot, health, route switch, old slot
// removed) and `after` ordering.
const Version = 2

// Kind is the type of resource a step acts on.
type Kind string

const (
	KindPort      Kind = "port"      // a host port lease for one route
	KindImage     Kind = "image"     // an image pulled and pinned by digest
	KindContainer Kind = "container" // a component's container
	KindHealth    Kind = "health"    // a wait until a component is healthy
	KindRoute     Kind = "route"     // a proxy route
	KindCert      Kind = "cert"      // a TLS certificate for one hostname
	KindRecord    Kind = "record"    // DNS records for one hostname
)

// Action is what happens to the resource.
type Action string

const (
	ActionCreate Action = "create"
	ActionUpdate Action = "update"
	ActionRemove Action = "remove"
	// ActionWait changes nothing: it holds the steps that depend on it until
	// a condition holds (a health wait). It is not counted as a change.
	ActionWait Action = "wait"
)

// Change is one field that differs between recorded and desired state.
type Change struct {
	Field string `json:"field"`
	Old   string `json:"old"`
	New   string `json:"new"`
	// Forces is true when this change forces the resource to be replaced
	// (e.g. a new image means a new container).
	Forces bool `json:"forces_replace,omitempty"`
}

// Step is one typed resource transition.
type Step struct {
	// ID is the step's stable address, unique in the plan, e.g.
	// "mcq/mcq/port/default/a" (the scheme is in the package doc).
	// Dependencies refer to it.
	ID        string `json:"id"`
	Service   string `json:"service"`
	Component string `json:"component,omitempty"`
	// Route is the route key (spec.Route.Key()) for port and route steps.
	Route string `json:"route,omitempty"`
	// Hostname is set for route, cert and record steps.
	Hostname string `json:"hostname,omitempty"`
	// Slot is "a" or "b" for port, container and health steps: the slot
	// (registry.SlotA/SlotB) the resource lives in.
	Slot string `json:"slot,omitempty"`
	// Port is the host port of a port step when it is already known: a
	// fixed legacy port, or a lease being released. A new lease's port is
	// picked at apply time and listed in Deferred instead.
	Port   int    `json:"port,omitempty"`
	Kind   Kind   `json:"kind"`
	Action Action `json:"action"`
	// Detail describes the resource for people: the image reference, the
	// route ("l7 mcq.svc.mcp.example.org:8443"), the container's name.
	Detail string `json:"detail,omitempty"`
	// Reason says why the step is in the plan ("new service", "image
	// changed", "service removed from the repo"...).
	Reason  string   `json:"reason"`
	Changes []Change `json:"changes,omitempty"`
	// Deferred lists values only known at apply time, shown as such and
	// kept out of the hash (e.g. "port: assigned at apply").
	Deferred []string `json:"deferred,omitempty"`
	// DependsOn are IDs of steps that must finish first.
	DependsOn []string `json:"depends_on,omitempty"`
}

// ServicePlan summarises what happens to one service that has steps.
type ServicePlan struct {
	Name string `json:"name"`
	// File is the definition's path (the recorded one for a removed service).
	File string `json:"file,omitempty"`
	Tier string `json:"tier,omitempty"`
	// Action is create for a new service, remove for one whose file is
	// gone, update otherwise (including active = false).
	Action Action `json:"action"`
	Reason string `json:"reason"`
}

// ServiceError is a service the planner could not plan because its
// definition is invalid; it is left exactly as deployed.
type ServiceError struct {
	Service     string           `json:"service"`
	File        string           `json:"file"`
	Diagnostics spec.Diagnostics `json:"diagnostics"`
	// Deployed is true when an older version stays running.
	Deployed bool `json:"deployed"`
}

// Plan is the outcome of planning: a value that can be printed, hashed and
// compared. Steps are in execution order (dependencies first).
type Plan struct {
	Version int    `json:"version"`
	Node    string `json:"node"`
	// Hash covers a canonical encoding of the planner version, the features,
	// the resolved desired specs and the recorded actual state.
	Hash string `json:"hash"`
	// Services lists the services that have steps, in plan order.
	Services []ServicePlan `json:"services,omitempty"`
	// Steps is never nil, so the JSON form always has an array.
	Steps  []Step         `json:"steps"`
	Errors []ServiceError `json:"errors,omitempty"`
	// Refused is set (and Steps holds no removals) when the plan would
	// remove every deployed service and that was not explicitly allowed.
	Refused string `json:"refused,omitempty"`
}

// IsNoOp reports whether the plan changes nothing.
func (p *Plan) IsNoOp() bool { return len(p.Steps) == 0 }

// Counts returns how many steps create, update and remove a resource
// (health waits change nothing and are not counted).
func (p *Plan) Counts() (create, update, remove int) {
	for i := range p.Steps {
		switch p.Steps[i].Action {
		case ActionCreate:
			create++
		case ActionUpdate:
			update++
		case ActionRemove:
			remove++
		}
	}
	return create, update, remove
}

// Step returns the step with the given ID.
func (p *Plan) Step(id string) (Step, bool) {
	for i := range p.Steps {
		if p.Steps[i].ID == id {
			return p.Steps[i], true
		}
	}
	return Step{}, false
}

// Features says which kinds of resources this node manages; a kind that is
// off never appears in a plan (a node without a proxy gets no route steps).
// Features are part of the plan hash.
type Features = registry.Features

// Input is everything the planner looks at.
type Input struct {
	Node string
	// Desired are the valid services placed on Node.
	Desired []spec.Service
	// Invalid are the services on Node whose definitions failed.
	Invalid []spec.Invalid
	// Actual is the node's recorded state.
	Actual   registry.Snapshot
	Features Features
	// Domain is the platform domain (spec.Platform.Domain). Route hostnames
	// under svc.mcp.<Domain> get DNS records when Features.Records is on;
	// other (public) hostnames live in zones mcp does not manage.
	Domain string
	// AllowRemoveAll lets a plan remove every deployed service at once.
	AllowRemoveAll bool
	// Elsewhere names the services the repository places on other nodes.
	// A service that left this node for another one was moved, not lost,
	// so it does not count towards the remove-all guard.
	Elsewhere []string
}
