package registry

import (
	"time"

	"metacircular.net/mcp/spec"
)

// Slots: every component has two slots so two versions can run side by side
// during a blue-green update. A plain update keeps using the active slot.
const (
	SlotA = 0
	SlotB = 1
)

// Snapshot is the recorded actual state of one node: what the agent has
// applied, as the planner sees it. It is a plain value (no handles), so the
// planner stays pure and a snapshot can be serialised into a status note.
type Snapshot struct {
	Node string `json:"node"`
	// Services are the services as last applied, keyed by name.
	Services map[string]Deployed `json:"services"`
	// Leases are the host ports held, sorted by Key().
	Leases []Lease `json:"leases"`
}

// Deployed is a service as the agent last applied it.
type Deployed struct {
	// Spec is the fully resolved definition that was applied.
	Spec spec.Service `json:"spec"`
	// SpecHash is spec.Hash(Spec) at the time it was applied.
	SpecHash string `json:"spec_hash"`
	// Commit is the desired-state commit it came from.
	Commit string `json:"commit"`
	// AppliedAt is when the apply finished. Not part of any plan hash.
	AppliedAt time.Time `json:"applied_at"`
	// Components holds runtime facts per component name.
	Components map[string]ComponentState `json:"components,omitempty"`
	// Features are the kinds of resources the agent managed when it
	// applied the service: the planner knows from them which routes,
	// certificates and records exist, so turning a feature on later plans
	// them for services already deployed.
	Features Features `json:"features"`
	// Previous is the definition this one replaced (nil for a first
	// deploy): what a version that crash-loops after its rollout is
	// reverted to. Not part of any plan hash.
	Previous *Version `json:"previous,omitempty"`
}

// Version is a definition as it was once applied.
type Version struct {
	Spec     spec.Service `json:"spec"`
	SpecHash string       `json:"spec_hash"`
	Commit   string       `json:"commit"`
}

// Features says which kinds of resources an agent manages beyond ports and
// containers. The planner plans only those (planner.Features is this type).
type Features struct {
	Routes  bool `json:"routes"`
	Certs   bool `json:"certs"`
	Records bool `json:"records"`
	Health  bool `json:"health"`
}

// ComponentState is what the agent recorded about one running component.
type ComponentState struct {
	// ActiveSlot is the slot currently serving (SlotA or SlotB).
	ActiveSlot int `json:"active_slot"`
	// ImageDigest pins the image that was started ("sha256:...").
	ImageDigest string `json:"image_digest,omitempty"`
	// PreviousDigest is the image that ran before, kept for recovery.
	PreviousDigest string `json:"previous_digest,omitempty"`
	// RuntimeHash is the hash stored in the container's labels.
	RuntimeHash string `json:"runtime_hash,omitempty"`
}

// Lease is one host port held for one route of one component in one slot.
// Fixed legacy ports are leases too (Route "fixed:<port>", Fixed true), so
// that collisions between services are visible in one place.
type Lease struct {
	Service   string `json:"service"`
	Component string `json:"component"`
	Route     string `json:"route"` // spec.Route.Key()
	Slot      int    `json:"slot"`
	Port      int    `json:"port"`
	Fixed     bool   `json:"fixed,omitempty"`
}

// Key is the lease's identity: service/component/route/slot.
func (l Lease) Key() string {
	return LeaseKey(l.Service, l.Component, l.Route, l.Slot)
}

// LeaseKey builds the identity of a lease.
func LeaseKey(service, component, route string, slot int) string {
	s := "a"
	if slot == SlotB {
		s = "b"
	}
	return service + "/" + component + "/" + route + "/" + s
}
