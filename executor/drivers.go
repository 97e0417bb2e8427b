// Package executor runs a plan against the node through small driver
// interfaces it owns; each driver package asserts that it satisfies them.
package executor

import (
	"context"
	"time"

	"metacircular.net/mcp/spec"
)

// Labels mcp puts on every container it creates. Adoption after a restart
// and drift detection read them back.
const (
	LabelManaged     = "net.metacircular.mcp.managed" // "true"
	LabelService     = "net.metacircular.mcp.service"
	LabelComponent   = "net.metacircular.mcp.component"
	LabelSlot        = "net.metacircular.mcp.slot" // "a" or "b"
	LabelVersion     = "net.metacircular.mcp.version"
	LabelRuntimeHash = "net.metacircular.mcp.runtime-hash"
	LabelCommit      = "net.metacircular.mcp.commit"
)

// ContainerSpec is everything needed to (re)create one container. It is
// built entirely from the registry and the resolved spec, so a node whose
// runtime lost everything can be rebuilt from mcp's own state.
type ContainerSpec struct {
	// ID is the container's name in the runtime: "<service>.<component>.<slot>".
	ID        string
	Service   string
	Component string
	Slot      int
	// Image is the reference from the definition; Digest pins it.
	Image  string
	Digest string
	// Env is the complete environment, KEY=VALUE, including the leased
	// ports ($PORT, $PORT_<NAME>, $PEER_<COMPONENT>_<ROUTE>).
	Env []string
	// Secrets maps each variable of Env that holds a secret to the
	// secret's name and keyed digest; RuntimeHash covers those instead of
	// the values, so no label is derived from a secret value.
	Secrets map[string]string
	Cmd     []string // empty: the image's own entrypoint and cmd
	User    string   // "uid:gid"
	Volumes []spec.Volume
	Restart string
	// Labels include the Label* keys above.
	Labels map[string]string
	// LogPath is the file the task's stdout and stderr are written to.
	LogPath string
	// StopGrace is how long SIGTERM has before SIGKILL.
	StopGrace time.Duration
}

// ContainerStatus is what the runtime reports about one container.
type ContainerStatus string

const (
	StatusRunning ContainerStatus = "running"
	StatusStopped ContainerStatus = "stopped" // task exited or no task
	StatusCreated ContainerStatus = "created" // task created, not started
	StatusUnknown ContainerStatus = "unknown"
)

// Container is one container the runtime knows about.
type Container struct {
	ID       string
	Labels   map[string]string
	Image    string
	Status   ContainerStatus
	ExitCode uint32 // meaningful when Status is StatusStopped
	PID      uint32 // meaningful when Status is StatusRunning
}

// Runtime runs containers. Every method is idempotent: calling it again
// after a crash, with the same arguments, converges on the same result.
type Runtime interface {
	// EnsureImage makes ref available locally (pulling it when missing, or
	// restoring mcp's own copy when the registry is unreachable) and
	// returns its manifest digest.
	EnsureImage(ctx context.Context, ref string) (digest string, err error)
	// Start creates the container described by spec (if it does not exist)
	// and starts its task (if it is not running). An existing container
	// whose runtime-hash label differs from spec's is an error: the caller
	// removes it first.
	Start(ctx context.Context, spec ContainerSpec) error
	// Remove stops the container's task (SIGTERM, then SIGKILL after
	// grace) and deletes task, container and snapshot. Removing a
	// container that does not exist is not an error.
	Remove(ctx context.Context, id string, grace time.Duration) error
	// List returns the containers mcp manages (LabelManaged) in its own
	// namespace, sorted by ID.
	List(ctx context.Context) ([]Container, error)
}
