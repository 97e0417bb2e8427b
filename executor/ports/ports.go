// Package ports hands out the host ports containers listen on.
//
// Containers run with host networking, so every route of every component
// needs a host port of its own. A port is leased per (service, component,
// route, slot) and recorded in the registry; leasing the same key again
// returns the same port, so ports survive redeploys and agent restarts and
// the proxy's routes never go stale (a lesson from an incident where every
// deploy moved the ports). Each route holds a stable pair, one per slot, that
// blue-green updates alternate between.
//
// # The range
//
// The default range is 10000-32767. Linux gives outgoing connections a local
// port from net.ipv4.ip_local_port_range, 32768-60999 by default; staying
// below it means a busy outgoing client can never occupy a leased port that
// a container is about to bind. Ports below 10000 are left to fixed,
// well-known services. A node that changes its ephemeral range should move
// this range with it (WithRange).
//
// # Checking that a port is free
//
// A port not leased in the registry may still be bound by something mcp
// does not manage. Before leasing, the allocator binds it briefly with TCP
// on 0.0.0.0 and on [::] (IPv6-only socket); either failing means "taken"
// and another port is tried. A host without IPv6 skips the second check.
// UDP is not checked: routes are TCP (the ingress proxy forwards TLS by
// SNI) and the spec has no UDP routes. The check cannot reserve the port
// until the container binds it; the window is short and a container that
// fails to bind is a failed step the executor undoes.
//
// Fixed legacy ports (a `ports = ["8443:8443"]` entry) are recorded as
// leases too, with route "fixed:<port>", so that a collision between two
// services is caught here rather than at bind time. They are not probed: the
// legacy container may already be holding its own port.
package ports

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"sort"
	"strconv"
	"sync"
	"syscall"

	"metacircular.net/mcp/executor"
	"metacircular.net/mcp/registry"
)

// Default range: below Linux's default ephemeral range (see package doc).
const (
	DefaultMin = 10000
	DefaultMax = 32767
	// DefaultProbes bounds how many host-busy ports one Lease tries before
	// giving up.
	DefaultProbes = 64
)

// ErrExhausted means no port in the range could be leased.
var ErrExhausted = errors.New("no free port")

// ErrInUse is what the default probe returns for a port something on the
// host already binds.
var ErrInUse = errors.New("port in use on the host")

// Allocator leases ports from a range, recording them in the registry.
// It is safe for concurrent use: each lease is chosen and stored in one
// registry write transaction, and bbolt serialises those.
type Allocator struct {
	reg    *registry.Registry
	min    int
	max    int
	probes int
	probe  func(ctx context.Context, port int) error

	mu   sync.Mutex // guards intn, which may not be safe for concurrent use
	intn func(n int) int
}

// Option configures an Allocator.
type Option func(*Allocator)

// WithRange sets the inclusive range ports are picked from.
func WithRange(lo, hi int) Option {
	return func(a *Allocator) { a.min, a.max = lo, hi }
}

// WithRand replaces the random source: intn returns a value in [0, n).
// Tests inject a seeded source to make picks reproducible.
func WithRand(intn func(n int) int) Option {
	return func(a *Allocator) { a.intn = intn }
}

// WithProbe replaces the host check. probe returns nil when the port is
// free to bind.
func WithProbe(probe func(ctx context.Context, port int) error) Option {
	return func(a *Allocator) { a.probe = probe }
}

// WithProbes bounds the ports one Lease probes before failing.
func WithProbes(n int) Option {
	return func(a *Allocator) { a.probes = n }
}

// New returns an allocator over reg.
func New(reg *registry.Registry, opts ...Option) (*Allocator, error) {
	a := &Allocator{
		reg:    reg,
		min:    DefaultMin,
		max:    DefaultMax,
		probes: DefaultProbes,
		probe:  ProbeTCP,
		intn:   rand.IntN,
	}
	for _, o := range opts {
		o(a)
	}
	if a.min < 1 || a.max > 65535 || a.min > a.max {
		return nil, fmt.Errorf("port range %d-%d: must be within 1-65535 with min <= max", a.min, a.max)
	}
	if a.probes < 1 {
		return nil, fmt.Errorf("port probes %d: must be at least 1", a.probes)
	}
	return a, nil
}

// Range returns the inclusive range ports are leased from.
func (a *Allocator) Range() (lo, hi int) { return a.min, a.max }

// Lease returns the port leased to (service, component, route, slot),
// leasing a new one if the key holds none.
func (a *Allocator) Lease(ctx context.Context, service, component, route string, slot int) (int, error) {
	var port int
	err := a.reg.Update(ctx, func(tx *registry.Tx) error {
		var err error
		port, err = a.lease(ctx, tx, service, component, route, slot)
		return err
	})
	if err != nil {
		return 0, err
	}
	return port, nil
}

// LeasePair leases both slots of a route at once (in one transaction), so
// a blue-green update always has its second port ready.
func (a *Allocator) LeasePair(ctx context.Context, service, component, route string) (slotA, slotB int, err error) {
	err = a.reg.Update(ctx, func(tx *registry.Tx) error {
		var err error
		if slotA, err = a.lease(ctx, tx, service, component, route, registry.SlotA); err != nil {
			return err
		}
		slotB, err = a.lease(ctx, tx, service, component, route, registry.SlotB)
		return err
	})
	if err != nil {
		return 0, 0, err
	}
	return slotA, slotB, nil
}

func (a *Allocator) lease(ctx context.Context, tx *registry.Tx, service, component, route string, slot int) (int, error) {
	key := registry.LeaseKey(service, component, route, slot)
	if slot != registry.SlotA && slot != registry.SlotB {
		return 0, fmt.Errorf("lease %s: slot %d is not %d or %d", key, slot, registry.SlotA, registry.SlotB)
	}
	l, err := tx.Lease(key)
	if err == nil {
		return l.Port, nil
	}
	if !errors.Is(err, registry.ErrNotFound) {
		return 0, fmt.Errorf("lease %s: %w", key, err)
	}

	// taken holds the range's ports that cannot be used: leased ones (from
	// the registry's port index) plus those the probe found busy. Kept
	// sorted so the k-th free port can be found without building the whole
	// free list.
	taken, err := tx.LeasedPorts(a.min, a.max)
	if err != nil {
		return 0, fmt.Errorf("lease %s: %w", key, err)
	}
	size := a.max - a.min + 1
	var lastErr error
	for probed := 0; probed < a.probes; probed++ {
		if err := ctx.Err(); err != nil {
			return 0, fmt.Errorf("lease %s: %w", key, err)
		}
		free := size - len(taken)
		if free == 0 {
			break
		}
		port := nthFree(a.min, taken, a.randN(free))
		if err := a.probe(ctx, port); err != nil {
			lastErr = err
			taken = insertSorted(taken, port)
			continue
		}
		l := registry.Lease{Service: service, Component: component, Route: route, Slot: slot, Port: port}
		if err := tx.PutLease(l); err != nil {
			return 0, fmt.Errorf("lease %s: %w", key, err)
		}
		return port, nil
	}
	switch {
	case len(taken) == size && lastErr == nil:
		return 0, fmt.Errorf("lease %s: %w in %d-%d: all %d ports are leased", key, ErrExhausted, a.min, a.max, size)
	case len(taken) == size:
		return 0, fmt.Errorf("lease %s: %w in %d-%d: all %d ports are leased or busy on the host (last: %w)",
			key, ErrExhausted, a.min, a.max, size, lastErr)
	default:
		return 0, fmt.Errorf("lease %s: %w in %d-%d: the %d ports tried were all busy on the host (last: %w)",
			key, ErrExhausted, a.min, a.max, a.probes, lastErr)
	}
}

func (a *Allocator) randN(n int) int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.intn(n)
}

// nthFree returns the k-th (0-based) port at or above lo that is not in
// taken (sorted ascending, all >= lo).
func nthFree(lo int, taken []int, k int) int {
	p := lo + k
	for _, t := range taken {
		if t > p {
			break
		}
		p++ // each taken port at or below the candidate pushes it up by one
	}
	return p
}

func insertSorted(s []int, v int) []int {
	i := sort.SearchInts(s, v)
	if i < len(s) && s[i] == v {
		return s
	}
	s = append(s, 0)
	copy(s[i+1:], s[i:])
	s[i] = v
	return s
}

// Release frees one lease. Releasing a key that holds nothing is not an
// error, so a release can be retried after a crash.
func (a *Allocator) Release(ctx context.Context, service, component, route string, slot int) error {
	if err := a.reg.DeleteLease(ctx, registry.LeaseKey(service, component, route, slot)); err != nil {
		return fmt.Errorf("release: %w", err)
	}
	return nil
}

// ReleaseService frees every lease of a service, fixed ones included.
func (a *Allocator) ReleaseService(ctx context.Context, service string) error {
	return a.reg.Update(ctx, func(tx *registry.Tx) error {
		if _, err := tx.DeleteServiceLeases(service); err != nil {
			return fmt.Errorf("release service %s: %w", service, err)
		}
		return nil
	})
}

// FixedRoute is the route key a fixed legacy port is leased under.
func FixedRoute(port int) string { return "fixed:" + strconv.Itoa(port) }

// Fixed records a fixed legacy host port for a component. It is idempotent
// for the same holder and refuses, naming the holder, a port that any other
// lease holds (another service's fixed port, or a port the allocator handed
// out earlier).
func (a *Allocator) Fixed(ctx context.Context, service, component string, port int) error {
	l := registry.Lease{
		Service: service, Component: component, Route: FixedRoute(port),
		Slot: registry.SlotA, Port: port, Fixed: true,
	}
	err := a.reg.PutLease(ctx, l)
	var taken *registry.PortTakenError
	if errors.As(err, &taken) {
		return fmt.Errorf("fixed port %d for %s/%s: %w", port, service, component, taken)
	}
	if err != nil {
		return fmt.Errorf("fixed port %d for %s/%s: %w", port, service, component, err)
	}
	return nil
}

// ProbeTCP reports whether port can be bound with TCP on every address
// family the host has: nil when free, an error wrapping ErrInUse when
// something holds it.
func ProbeTCP(_ context.Context, port int) error {
	addr := ":" + strconv.Itoa(port)
	ln, err := net.Listen("tcp4", "0.0.0.0"+addr)
	if err != nil {
		return fmt.Errorf("port %d: tcp4: %w: %w", port, ErrInUse, err)
	}
	_ = ln.Close()
	// "tcp6" makes Go set IPV6_V6ONLY, so this checks the IPv6 space alone
	// and does not trip over the IPv4 socket just closed.
	ln, err = net.Listen("tcp6", "[::]"+addr)
	if err != nil {
		if noIPv6(err) {
			return nil
		}
		return fmt.Errorf("port %d: tcp6: %w: %w", port, ErrInUse, err)
	}
	_ = ln.Close()
	return nil
}

// noIPv6 reports whether err means the host has no usable IPv6 stack (the
// module not loaded, or disabled by sysctl), as opposed to the port being
// busy.
func noIPv6(err error) bool {
	return errors.Is(err, syscall.EAFNOSUPPORT) ||
		errors.Is(err, syscall.EPROTONOSUPPORT) ||
		errors.Is(err, syscall.EADDRNOTAVAIL)
}

// The executor leases ports through its own small interface.
var _ executor.Ports = (*Allocator)(nil)
