// Package api is the agent's local API: JSON over HTTP on a Unix socket.
// The agent serves it (NewServer, Listen) through the Backend interface it
// implements; the CLI's status, ps, logs, sync and plan --socket commands
// read it with a Client.
//
// The JSON shapes below are a stable contract: fields are only ever added,
// never renamed or repurposed, and the routes are versioned (/v1/...). Names
// are snake_case; times are RFC 3339; zero times and empty lists are left out.
//
// Routes:
//
//	GET  /v1/status                      Status
//	GET  /v1/status/{service}            Status holding only that service
//	GET  /v1/containers                  ContainerList
//	GET  /v1/snapshot                    SnapshotResponse
//	POST /v1/sync                        SyncResult (after the reconcile ran)
//	GET  /v1/logs/{service}/{component}  text/plain; ?n=N last lines, &follow=1
//	GET  /v1/events                      JSON lines of Event; ?after=SEQ, ?n=N last, &follow=1
//	GET  /v1/version                     Version
//
// Errors are {"error": "..."} with a matching HTTP status.
package api

import (
	"time"

	"metacircular.net/mcp/planner"
	"metacircular.net/mcp/registry"
	"metacircular.net/mcp/spec"
)

// Reconcile results.
const (
	ResultOK      = "ok"      // every service converged
	ResultFailed  = "failed"  // nothing could be applied (e.g. the repo is unreadable)
	ResultPartial = "partial" // some services failed, the others converged
	ResultSkipped = "skipped" // nothing changed since the last reconcile
)

// Service states.
const (
	StateRunning   = "running"   // deployed as desired and its containers run
	StateDeploying = "deploying" // a plan for it is being executed
	StateFailed    = "failed"    // its last apply failed (see Error)
	StateInvalid   = "invalid"   // its definition does not validate (see Diagnostics)
	StateStopped   = "stopped"   // deployed with active = false
	StateRemoved   = "removed"   // gone from the repo; being or already removed
	StateDegraded  = "degraded"  // deployed, but a container is not running
	// StateQuarantined: its definition failed repeatedly and is not retried
	// (see Status.Quarantine); the deployed version is kept.
	StateQuarantined = "quarantined"
	// StateWaiting: held back by `after` until the services it names are
	// healthy, or by the /srv hold until its data directory exists on the
	// node (see ServiceStatus.Waiting); the deployed version is kept.
	StateWaiting = "waiting"
)

// Component states.
const (
	ComponentRunning    = "running"
	ComponentStopped    = "stopped"    // the task exited (or was never started)
	ComponentRestarting = "restarting" // waiting out a restart backoff
	ComponentCrashLoop  = "crash-loop" // restarts gave up; reported, not hammered
	ComponentMissing    = "missing"    // the registry has it, the runtime does not
	ComponentUnknown    = "unknown"    // the runtime did not answer (see Status.RuntimeError)
)

// Status is the agent's view of its node: GET /v1/status.
type Status struct {
	// Node is the agent's node name.
	Node string `json:"node"`
	// AgentVersion is the mcp build running the agent.
	AgentVersion string `json:"agent_version"`
	// AppliedCommit is the desired-state commit last applied in full.
	AppliedCommit string `json:"applied_commit,omitempty"`
	// Branch is the branch of the desired-state repo the agent follows.
	Branch string `json:"branch,omitempty"`
	// LastReconcile is the most recent reconcile (zero when none ran yet).
	LastReconcile Reconcile `json:"last_reconcile,omitzero"`
	// RuntimeError is set when the container runtime could not be asked
	// (containerd down or restarting): services and ports still come from
	// the node's registry, and component states are "unknown".
	RuntimeError string `json:"runtime_error,omitempty"`
	// Services are sorted by name.
	Services []ServiceStatus `json:"services"`
	// Quarantine lists the (service, definition) pairs not retried, and why.
	Quarantine []registry.Quarantine `json:"quarantine,omitempty"`
}

// Service returns the named service's status, or false.
func (s Status) Service(name string) (ServiceStatus, bool) {
	for _, svc := range s.Services {
		if svc.Name == name {
			return svc, true
		}
	}
	return ServiceStatus{}, false
}

// Reconcile is the outcome of one pass of the agent's loop.
type Reconcile struct {
	Started  time.Time `json:"started,omitzero"`
	Finished time.Time `json:"finished,omitzero"`
	// Commit is the desired-state commit the reconcile worked from.
	Commit string `json:"commit,omitempty"`
	// PlanHash is the hash of the plan it executed; `mcp plan --socket`
	// prints the same hash for the same inputs.
	PlanHash string `json:"plan_hash,omitempty"`
	// Result is one of the Result* constants.
	Result string `json:"result,omitempty"`
	// Error says why the reconcile failed or was partial.
	Error string `json:"error,omitempty"`
	// Steps is the number of plan steps executed.
	Steps int `json:"steps"`
}

// ServiceStatus is one service on the node.
type ServiceStatus struct {
	Name string `json:"name"`
	// State is one of the State* constants.
	State string `json:"state"`
	// Commit is the desired-state commit the deployed version came from.
	Commit string `json:"commit,omitempty"`
	// SpecHash is the hash of the deployed definition.
	SpecHash string `json:"spec_hash,omitempty"`
	// Error is the last apply error, if any.
	Error string `json:"error,omitempty"`
	// Diagnostics are the validation messages of an invalid definition,
	// rendered as "file: key: message".
	Diagnostics []string `json:"diagnostics,omitempty"`
	// Components are in definition order.
	Components []ComponentStatus `json:"components,omitempty"`
	// Routes are the service's proxy routes on this node, when the agent
	// manages routes, sorted by listener and hostname.
	Routes []RouteStatus `json:"routes,omitempty"`
	// Records are the DNS records mcp wrote for the service's hostnames,
	// when the agent manages records: one entry per name and type.
	Records []RecordStatus `json:"records,omitempty"`
	// Certs are the certificates of the service's route hostnames, when
	// the agent manages certificates, sorted by hostname.
	Certs []CertStatus `json:"certs,omitempty"`
	// Waiting names the `after` dependencies the service waits for and
	// why ("db (not deployed)"), or the data directory it waits for
	// ("/srv/db to exist on this node (...)"), when it was held back.
	Waiting string `json:"waiting,omitempty"`
	// Drift is what the agent recently found different from what it
	// deployed (container stopped, deleted or changed, route missing,
	// component unhealthy), oldest first, and whether it was repaired.
	Drift []DriftStatus `json:"drift,omitempty"`
}

// DriftStatus is one difference between the node and what mcp deployed.
type DriftStatus struct {
	Time      time.Time `json:"time"`
	Component string    `json:"component,omitempty"`
	// Resource is the container ID, "route <listener>/<hostname>", or the
	// health check.
	Resource string `json:"resource"`
	What     string `json:"what"`
	// Repaired is true once mcp restored it (converge pass or restart
	// policy); false while it is only seen (or backed off).
	Repaired bool `json:"repaired"`
}

// HealthStatus is a running component's health from the agent's
// continuous checks.
type HealthStatus struct {
	// State is "healthy", "unhealthy", "starting" or "unknown" (not
	// checked yet); with several checks, the worst.
	State     string    `json:"state"`
	Since     time.Time `json:"since,omitzero"`
	LastCheck time.Time `json:"last_check,omitzero"`
	LastError string    `json:"last_error,omitempty"`
	// Checks describe the checks ("tcp on route default (127.0.0.1:10000)").
	Checks []string `json:"checks,omitempty"`
}

// CertStatus is the certificate of one hostname as mcp keeps it.
type CertStatus struct {
	Hostname string `json:"hostname"`
	// Issuer is "local" (the agent's embedded CA) or "acme".
	Issuer   string    `json:"issuer,omitempty"`
	NotAfter time.Time `json:"not_after"`
	// RenewAt is when the agent renews it: NotAfter less the renewal
	// window. A renewal falls due at apply time, so plans show it without
	// it entering their hash.
	RenewAt time.Time `json:"renew_at,omitzero"`
	// Fingerprint is the hex SHA-256 of the leaf.
	Fingerprint string `json:"fingerprint,omitempty"`
	// Files are the files this service's consumers read (host paths).
	Files []string `json:"files,omitempty"`
	// Foreign lists files mcp found in place and leaves alone: the
	// consumer uses them, not mcp's certificate, and mcp does not renew
	// them.
	Foreign []string `json:"foreign,omitempty"`
}

// RouteStatus is one proxy route of a service.
type RouteStatus struct {
	Component string `json:"component"`
	// Route is the route's key in its component ("default" or its name).
	Route string `json:"route"`
	// Listener is the proxy's listener address ("127.0.0.1:443", ":443").
	Listener string `json:"listener"`
	Hostname string `json:"hostname"`
	Mode     string `json:"mode"`
	// Backend is the host:port the proxy sends the traffic to.
	Backend string `json:"backend,omitempty"`
	// Confirmed is true when the proxy, read back, holds exactly this route.
	Confirmed bool `json:"confirmed"`
	// Problem says why it is not confirmed.
	Problem string `json:"problem,omitempty"`
}

// ComponentStatus is one component (container) of a service.
type ComponentStatus struct {
	Name    string `json:"name"`
	Version string `json:"version,omitempty"`
	Image   string `json:"image,omitempty"`
	// Digest pins the image that runs ("sha256:...").
	Digest string `json:"digest,omitempty"`
	// State is one of the Component* constants.
	State string `json:"state"`
	// Slot is the active slot, "a" or "b".
	Slot string `json:"slot,omitempty"`
	// Ports maps each route key ("default", or the route's name; fixed
	// ports as "fixed:<port>") to the host port leased for it.
	Ports       map[string]int `json:"ports,omitempty"`
	ContainerID string         `json:"container_id,omitempty"`
	// Restarts counts the restarts done by the restart policy.
	Restarts  int    `json:"restarts"`
	LastError string `json:"last_error,omitempty"`
	// Health is the result of the continuous health checks, while the
	// container runs.
	Health *HealthStatus `json:"health,omitempty"`
}

// Container is one container in the runtime, as `mcp ps` lists it.
type Container struct {
	ID        string `json:"id"`
	Service   string `json:"service"`
	Component string `json:"component"`
	// Slot is "a" or "b".
	Slot    string `json:"slot"`
	Version string `json:"version,omitempty"`
	Image   string `json:"image,omitempty"`
	// Status is the runtime's word: "running", "stopped", "created", "unknown".
	Status string `json:"status"`
	// PID is the task's process id while it runs, else 0.
	PID int `json:"pid,omitempty"`
}

// ContainerList is the body of GET /v1/containers. An object rather than a
// bare array so fields can be added without breaking clients.
type ContainerList struct {
	// Containers are sorted by ID.
	Containers []Container `json:"containers"`
}

// SnapshotResponse is the body of GET /v1/snapshot: exactly the actual state
// and features the agent plans with, so `mcp plan --socket` computes the
// same plan and hash as the agent.
type SnapshotResponse struct {
	Snapshot registry.Snapshot `json:"snapshot"`
	Features planner.Features  `json:"features"`
	// AllowRemoveAll mirrors the agent's allow_remove_all setting, which
	// decides whether a plan removing every service is refused.
	AllowRemoveAll bool `json:"allow_remove_all,omitempty"`
	// Quarantine is held as deployed by the planner's input
	// (planner.HoldQuarantined), so the plan matches the agent's.
	Quarantine []registry.Quarantine `json:"quarantine,omitempty"`
	// Secrets are the node's secret digests (never values), bound into
	// the desired services by planner.BindSecrets as the agent does.
	// Absent from an older agent: references then stay unbound.
	Secrets *spec.NodeSecrets `json:"secrets,omitempty"`
}

// SyncResult is the body of POST /v1/sync: the reconcile it triggered and the
// services as they stand after it.
type SyncResult struct {
	Reconcile Reconcile       `json:"reconcile"`
	Services  []ServiceStatus `json:"services"`
}

// errorBody is the JSON shape of every error response.
type errorBody struct {
	Error string `json:"error"`
}

// RecordStatus is one DNS RRset mcp wrote for a service (A or AAAA, one
// value per address of the node), as recorded in the registry; the
// converge pass repairs the server when it differs.
type RecordStatus struct {
	Name   string   `json:"name"`
	Type   string   `json:"type"`
	Values []string `json:"values"`
	TTL    int      `json:"ttl,omitempty"`
	Zone   string   `json:"zone,omitempty"`
}
