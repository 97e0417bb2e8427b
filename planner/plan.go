// Package planner computes what the agent must do: a pure, deterministic
// function from the desired services of one node and the node's recorded
// state to a Plan. No clock, filesystem, network or logger is used here; the
// same inputs give a byte-identical plan and the same hash.
package planner

import (
	"metacircular.net/mcp/registry"
	"metacircular.net/mcp/spec"
)

// Version is the planner's version; it is part of every plan hash, so a
// planner change that alters plans also changes their hashes.
const Version = 1

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
	// "mcq/mcq/route/default/port". Dependencies refer to it.
	ID        string `json:"id"`
	Service   string `json:"service"`
	Component string `json:"component,omitempty"`
	// Route is the route key (spec.Route.Key()) for port and route steps.
	Route string `json:"route,omitempty"`
	// Hostname is set for route, cert and record steps.
	Hostname string `json:"hostname,omitempty"`
	Kind     Kind   `json:"kind"`
	Action   Action `json:"action"`
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
	Hash   string         `json:"hash"`
	Steps  []Step         `json:"steps"`
	Errors []ServiceError `json:"errors,omitempty"`
	// Refused is set (and Steps holds no removals) when the plan would
	// remove every deployed service and that was not explicitly allowed.
	Refused string `json:"refused,omitempty"`
}

// IsNoOp reports whether the plan changes nothing.
func (p *Plan) IsNoOp() bool { return len(p.Steps) == 0 }

// Features says which kinds of resources this node manages; a kind that is
// off never appears in a plan (a node without a proxy gets no route steps).
// Features are part of the plan hash.
type Features struct {
	Routes  bool `json:"routes"`
	Certs   bool `json:"certs"`
	Records bool `json:"records"`
	Health  bool `json:"health"`
}

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
	// AllowRemoveAll lets a plan remove every deployed service at once.
	AllowRemoveAll bool
}
