// Package containerd runs mcp's containers in containerd, implementing
// executor.Runtime.
//
// Everything happens in one containerd namespace that belongs to mcp
// (default "mcp"); other namespaces are never read or written. Containers
// use the host's network namespace: each one listens on the host port the
// agent leased for it.
//
// The driver keeps its own copy of every image it pulls, as an OCI archive
// under <StateDir>/images/<digest-hex>.tar, so that a node whose containerd
// lost everything can rebuild with the registry and DNS down.
//
// Task output is written by containerd's shim straight to the spec's log
// file (not through the agent), so a chatty container never blocks while
// the agent is down. RotateLogs rotates those files by size.
//
// Adoption. After an agent restart, List returns every container mcp
// created in the namespace, with its labels. The agent should, per
// container: leave it alone when its LabelRuntimeHash equals
// executor.RuntimeHash of the spec it wants and the status is running;
// call Start when the hash matches but the task is stopped (Start reuses
// the container); Remove then Start when the hash differs; Remove a
// container whose (service, component, slot) the registry does not know.
// Tasks survive both agent and containerd restarts, so adoption never
// needs to restart a healthy workload.
package containerd

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/defaults"
	"github.com/containerd/containerd/v2/pkg/identifiers"
	"github.com/containerd/containerd/v2/pkg/namespaces"

	"metacircular.net/mcp/executor"
)

var _ executor.Runtime = (*Driver)(nil)

// Labels the driver adds next to executor's. They let a restarted agent
// (and the Supervisor) restart a task without the spec at hand.
const (
	LabelRestart = "net.metacircular.mcp.restart"  // restart policy
	LabelLogPath = "net.metacircular.mcp.log-path" // file the shim writes to
)

// DefaultNamespace is the containerd namespace mcp uses unless configured.
const DefaultNamespace = "mcp"

// Config says which containerd to use and how to reach image registries.
type Config struct {
	// Address is containerd's gRPC socket.
	Address string
	// Namespace is mcp's own containerd namespace (default "mcp").
	Namespace string
	// StateDir holds mcp's image archives (images/) and nothing else of the
	// driver's; log files live wherever the specs' LogPath says.
	StateDir string
	// Snapshotter is the containerd snapshotter (default: containerd's
	// default, overlayfs).
	Snapshotter string
	// RuntimeRoot, when set, is runc's state directory for mcp's tasks.
	// Two containerd daemons on one host must not share one (runc's
	// default is per namespace under /run/containerd/runc).
	RuntimeRoot string
	// Registries holds per-host settings, keyed by the host (and port) as
	// written in image references, e.g. "mcr.example.net:8443".
	Registries map[string]Registry
}

// Registry is how to talk to one image registry.
type Registry struct {
	Username string
	// PasswordFile is read each time the registry asks for credentials (a
	// 401), so a rotated password is picked up without a restart.
	PasswordFile string
	// PlainHTTP allows http:// for this host. Hosts not listed always use
	// https.
	PlainHTTP bool
}

// Option changes how a Driver is built.
type Option func(*Driver)

// WithLogger sets the logger (default slog.Default()).
func WithLogger(l *slog.Logger) Option { return func(d *Driver) { d.log = l } }

// WithClock sets the clock used for stop grace periods (default: real time).
func WithClock(c Clock) Option { return func(d *Driver) { d.clock = c } }

// Driver runs containers in containerd. It is safe for concurrent use;
// operations on one container ID are serialised.
type Driver struct {
	client      *client.Client
	ns          string
	stateDir    string
	snapshotter string
	runtimeRoot string
	registries  map[string]Registry
	log         *slog.Logger
	clock       Clock

	mu    sync.Mutex
	locks map[string]*idLock
	// stopping holds the IDs mcp is removing: their exits are not crashes.
	stopping map[string]bool
}

type idLock struct {
	mu   sync.Mutex
	refs int
}

// New connects to containerd. It does not wait for containerd to be up:
// the gRPC connection is established (and re-established after a daemon
// restart) on demand, so the agent can start before containerd does.
func New(ctx context.Context, cfg Config, opts ...Option) (*Driver, error) {
	if cfg.Address == "" {
		return nil, errors.New("containerd driver: address is empty")
	}
	if cfg.StateDir == "" {
		return nil, errors.New("containerd driver: state dir is empty")
	}
	if cfg.Namespace == "" {
		cfg.Namespace = DefaultNamespace
	}
	if err := identifiers.Validate(cfg.Namespace); err != nil {
		return nil, fmt.Errorf("containerd driver: namespace %q: %w", cfg.Namespace, err)
	}
	d := &Driver{
		ns:          cfg.Namespace,
		stateDir:    cfg.StateDir,
		snapshotter: cfg.Snapshotter,
		runtimeRoot: cfg.RuntimeRoot,
		registries:  cfg.Registries,
		log:         slog.Default(),
		clock:       realClock{},
		locks:       map[string]*idLock{},
		stopping:    map[string]bool{},
	}
	if d.snapshotter == "" {
		d.snapshotter = defaults.DefaultSnapshotter
	}
	for _, o := range opts {
		o(d)
	}
	if err := os.MkdirAll(d.imagesDir(), 0o750); err != nil {
		return nil, fmt.Errorf("containerd driver: create image dir: %w", err)
	}
	c, err := client.New(cfg.Address,
		client.WithDefaultNamespace(cfg.Namespace),
		client.WithTimeout(5*time.Second))
	if err != nil {
		return nil, fmt.Errorf("containerd driver: connect to %s: %w", cfg.Address, err)
	}
	d.client = c
	return d, nil
}

// Close closes the connection to containerd. Containers keep running.
func (d *Driver) Close() error { return d.client.Close() }

// Client is the underlying containerd client, whose default namespace is
// mcp's. It is there for inspection (tests, debugging tools); everything
// mcp does goes through the Driver's methods.
func (d *Driver) Client() *client.Client { return d.client }

// Namespace is mcp's containerd namespace.
func (d *Driver) Namespace() string { return d.ns }

// Ping checks that containerd answers.
func (d *Driver) Ping(ctx context.Context) error {
	if _, err := d.client.Version(d.nsCtx(ctx)); err != nil {
		return fmt.Errorf("containerd version: %w", err)
	}
	return nil
}

// nsCtx pins every call to mcp's namespace, whatever the caller's context
// carries: the driver never touches another namespace.
func (d *Driver) nsCtx(ctx context.Context) context.Context {
	return namespaces.WithNamespace(ctx, d.ns)
}

func (d *Driver) imagesDir() string { return filepath.Join(d.stateDir, "images") }

// lock serialises operations on one container ID (Start, Remove and the
// Supervisor's restarts).
func (d *Driver) lock(id string) (unlock func()) {
	d.mu.Lock()
	l := d.locks[id]
	if l == nil {
		l = &idLock{}
		d.locks[id] = l
	}
	l.refs++
	d.mu.Unlock()
	l.mu.Lock()
	return func() {
		l.mu.Unlock()
		d.mu.Lock()
		l.refs--
		if l.refs == 0 {
			delete(d.locks, id)
		}
		d.mu.Unlock()
	}
}

func (d *Driver) setStopping(id string, v bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if v {
		d.stopping[id] = true
	} else {
		delete(d.stopping, id)
	}
}

func (d *Driver) isStopping(id string) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.stopping[id]
}
