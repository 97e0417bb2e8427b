package executor

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"time"

	"metacircular.net/mcp/health"
	"metacircular.net/mcp/planner"
	"metacircular.net/mcp/registry"
	"metacircular.net/mcp/spec"
)

// Rollout errors, for the agent's auto-revert: the new version of a
// component did not become healthy in time, or its container exited while
// the rollout waited for it.
var (
	ErrNotHealthy = health.ErrNotHealthy
	ErrExited     = errors.New("exited before it became healthy")
	// ErrWaitInterrupted: the health wait was cut short on purpose (a new
	// commit arrived, see InterruptWaits); the service's new work is undone
	// like any failure, but the version is not to blame.
	ErrWaitInterrupted = errors.New("health wait interrupted")
)

// HealthOption configures the health runner.
type HealthOption func(*healthRunner)

// HealthClock replaces the wall clock of health waits (tests).
func HealthClock(c health.Clock) HealthOption { return func(h *healthRunner) { h.clock = c } }

// HealthHost is the address checks connect to: loopback, since containers
// share the host's network.
func HealthHost(host string) HealthOption { return func(h *healthRunner) { h.host = host } }

// HealthRetry overrides how soon a failing check is retried during a wait.
func HealthRetry(d time.Duration) HealthOption { return func(h *healthRunner) { h.retry = d } }

// WithHealth makes the executor run health waits (Features reports Health):
// after a container starts, the steps that depend on it (its routes, the
// removal of the old slot, services that are `after` it) wait until it
// passes its checks (spec.Component.HealthChecks) within its deadline.
func WithHealth(opts ...HealthOption) Option {
	return func(e *Executor) {
		h := &healthRunner{e: e, clock: health.RealClock{}, host: DefaultBackendHost}
		for _, o := range opts {
			o(h)
		}
		e.kinds[planner.KindHealth] = h
	}
}

type healthRunner struct {
	e     *Executor
	clock health.Clock
	host  string
	retry time.Duration
}

// HealthTargets resolves a component's checks to addresses: host and the
// port leased for the checked route in slot (port says which), or the fixed
// port.
func HealthTargets(comp spec.Component, host string, port func(route string) (int, error)) ([]health.Target, error) {
	checks := comp.HealthChecks()
	out := make([]health.Target, 0, len(checks))
	for _, c := range checks {
		p := c.FixedPort
		if c.Route != "" {
			var err error
			if p, err = port(c.Route); err != nil {
				return nil, fmt.Errorf("port of route %s: %w", c.Route, err)
			}
		}
		out = append(out, health.Target{Check: c, Addr: net.JoinHostPort(host, strconv.Itoa(p))})
	}
	return out, nil
}

// run waits until the component's container in the step's slot is healthy.
func (h *healthRunner) run(ctx context.Context, r *serviceRun, st planner.Step) error {
	comp, err := r.component(st.Component)
	if err != nil {
		return err
	}
	slot := stepSlot(st, r.slot(st.Component))
	svc := r.deployedName()
	targets, err := HealthTargets(comp, h.host, func(route string) (int, error) {
		return h.e.ports.Lease(ctx, svc, comp.Name, route, slot)
	})
	if err != nil {
		return err
	}
	id := ContainerID(svc, comp.Name, slot)
	return h.wait(ctx, id, targets, comp.HealthDeadline())
}

// wait is the wait itself, shared with the `after` check (after.go).
func (h *healthRunner) wait(ctx context.Context, id string, targets []health.Target, deadline time.Duration) error {
	wctx, stop := interruptible(ctx)
	defer stop()
	err := health.Wait(wctx, targets, deadline, health.WaitOptions{
		Clock: h.clock, Retry: h.retry,
		Alive: func(ctx context.Context) error { return h.alive(ctx, id) },
	})
	switch {
	case err == nil:
		return nil
	case ctx.Err() == nil && wctx.Err() != nil:
		return fmt.Errorf("%s: %w: %w", id, ErrWaitInterrupted, context.Cause(wctx))
	}
	return fmt.Errorf("%s: %w", id, err)
}

// alive fails when the container is gone or its task exited: waiting for
// its health any longer is pointless (a crash at start, a crash loop).
func (h *healthRunner) alive(ctx context.Context, id string) error {
	list, err := h.e.rt.List(ctx)
	if err != nil {
		return nil //nolint:nilerr // the runtime's trouble is not the container's: keep waiting
	}
	for _, c := range list {
		if c.ID != id {
			continue
		}
		if c.Status == StatusStopped {
			return fmt.Errorf("container %w (exit code %d)", ErrExited, c.ExitCode)
		}
		return nil
	}
	return fmt.Errorf("container %s is gone: %w", id, ErrExited)
}

// stepSlot is the slot a step names, or def when it names none.
func stepSlot(st planner.Step, def int) int {
	switch st.Slot {
	case "a":
		return registry.SlotA
	case "b":
		return registry.SlotB
	}
	return def
}

type interruptKey struct{}

// InterruptWaits returns a context for Apply whose health waits also end
// when stop is cancelled, with stop's cause: the agent cancels stop when a
// new commit arrives during a rollout. Only waits are interrupted: a step
// that changes something always runs to its end, so a service's undo knows
// exactly what it did.
func InterruptWaits(ctx, stop context.Context) context.Context {
	return context.WithValue(ctx, interruptKey{}, stop)
}

// interruptible derives the context of one wait from ctx and the stop
// context InterruptWaits attached, if any.
func interruptible(ctx context.Context) (context.Context, context.CancelFunc) {
	stop, _ := ctx.Value(interruptKey{}).(context.Context)
	if stop == nil {
		return context.WithCancel(ctx)
	}
	wctx, cancel := context.WithCancelCause(ctx)
	unhook := context.AfterFunc(stop, func() { cancel(context.Cause(stop)) })
	return wctx, func() { unhook(); cancel(nil) }
}
