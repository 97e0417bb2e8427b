package executor

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"time"

	"metacircular.net/mcp/internal/logattr"
	"metacircular.net/mcp/planner"
	"metacircular.net/mcp/registry"
	"metacircular.net/mcp/spec"
)

// Store is what the executor needs from the node's registry.
type Store interface {
	Snapshot(ctx context.Context) (registry.Snapshot, error)
	PutDeployed(ctx context.Context, d registry.Deployed) error
	DeleteDeployed(ctx context.Context, name string) error
}

// Journal records each step's intent before it runs and its outcome after,
// so a crash leaves a trace of what was in flight.
type Journal interface {
	// Begin records that step is about to run for the plan with hash.
	Begin(ctx context.Context, planHash string, step planner.Step) (uint64, error)
	// Finish records the outcome of a begun step ("done", "failed",
	// "undone" or "interrupted") with an optional error message.
	Finish(ctx context.Context, seq uint64, outcome, message string) error
	// InFlight returns the steps begun and never finished.
	InFlight(ctx context.Context) ([]InFlight, error)
}

// InFlight is a journaled step that was running when the agent stopped.
type InFlight struct {
	Seq      uint64
	PlanHash string
	StepID   string
	Service  string
	Started  time.Time
}

// Journal outcomes.
const (
	OutcomeDone        = "done"
	OutcomeFailed      = "failed"
	OutcomeUndone      = "undone"
	OutcomeInterrupted = "interrupted"
)

// Ports hands out host ports. Every method is idempotent: leasing a key
// that already holds a port returns that port.
type Ports interface {
	Lease(ctx context.Context, service, component, route string, slot int) (int, error)
	Fixed(ctx context.Context, service, component string, port int) error
	Release(ctx context.Context, service, component, route string, slot int) error
}

// Executor runs plans. It is safe for one reconcile at a time.
type Executor struct {
	store   Store
	journal Journal
	ports   Ports
	rt      Runtime
	logDir  string
	// hostRoot prefixes the host side of every volume ("/" in
	// production); simulated nodes sharing one machine each get their own.
	hostRoot string
	grace    time.Duration
	// drain is how long a blue-green update's old slot keeps running after
	// the switch (rollout.go).
	drain time.Duration
	// gate backs off the converge pass's repairs of a resource that keeps
	// breaking (flap.go).
	gate *repairGate
	log  *slog.Logger
	now  func() time.Time
	// afterStep is called after every finished step with the number of
	// steps finished so far in this Apply; crash-injection tests use it.
	afterStep func(n int)
	// kinds runs the step kinds beyond ports, images and containers
	// (routes, certificates, records, health waits); each is installed by
	// the option of the file that implements it.
	kinds map[planner.Kind]kindRunner
	// secrets reads node-local secret values (secrets.go); nil: none.
	secrets SecretSource
	// dataOrigin turns the /srv hold on (datahold.go); nil: off.
	dataOrigin DataOrigin
}

// kindRunner runs the steps of one resource kind for one service.
type kindRunner interface {
	run(ctx context.Context, r *serviceRun, st planner.Step) error
}

// Features says which kinds of resources this executor can manage; the
// planner plans only those.
func (e *Executor) Features() planner.Features {
	_, routes := e.kinds[planner.KindRoute]
	_, certs := e.kinds[planner.KindCert]
	_, records := e.kinds[planner.KindRecord]
	_, health := e.kinds[planner.KindHealth]
	return planner.Features{Routes: routes, Certs: certs, Records: records, Health: health}
}

// Option configures an Executor.
type Option func(*Executor)

// WithLogger sets the logger.
func WithLogger(l *slog.Logger) Option { return func(e *Executor) { e.log = l } }

// WithStopGrace sets how long a container gets between SIGTERM and SIGKILL.
func WithStopGrace(d time.Duration) Option { return func(e *Executor) { e.grace = d } }

// WithHostRoot resolves the host side of volumes under dir instead of "/".
func WithHostRoot(dir string) Option { return func(e *Executor) { e.hostRoot = dir } }

// WithClock replaces time.Now.
func WithClock(now func() time.Time) Option { return func(e *Executor) { e.now = now } }

// WithAfterStep installs a hook called after each finished step.
func WithAfterStep(fn func(n int)) Option { return func(e *Executor) { e.afterStep = fn } }

// New builds an executor. logDir holds the per-component log files.
func New(store Store, journal Journal, ports Ports, rt Runtime, logDir string, opts ...Option) *Executor {
	e := &Executor{
		store: store, journal: journal, ports: ports, rt: rt, logDir: logDir,
		grace: 10 * time.Second,
		drain: DefaultDrain,
		gate:  defaultGate(),
		log:   slog.New(slog.DiscardHandler),
		now:   time.Now,
		kinds: map[planner.Kind]kindRunner{},
	}
	for _, o := range opts {
		o(e)
	}
	return e
}

// Result is the outcome of applying a plan.
type Result struct {
	PlanHash string
	Services []ServiceResult
}

// Failed reports whether any service failed.
func (r Result) Failed() bool {
	for _, s := range r.Services {
		if s.Err != nil {
			return true
		}
	}
	return false
}

// ServiceResult is the outcome for one service.
type ServiceResult struct {
	Service string
	// Steps are the IDs of the steps that finished.
	Steps []string
	// Err is the failure that stopped the service's plan; its work was
	// undone and the service is left as it was deployed before.
	Err error
	// FailedStep is the ID of the step that failed.
	FailedStep string
	// Waiting says which services of its `after` list are not ready
	// ("db (not deployed)"), or that its data directory is not on this
	// node yet (WaitingForData); none of its steps ran and it is left as
	// deployed. It is not a failure.
	Waiting string
}

// StepError says which step failed and why.
type StepError struct {
	Step planner.Step
	Err  error
}

func (e *StepError) Error() string {
	return fmt.Sprintf("%s %s %s: %v", e.Step.Action, e.Step.Kind, e.Step.ID, e.Err)
}

func (e *StepError) Unwrap() error { return e.Err }

// ErrUnsupported is returned for a step kind this node has no driver for.
var ErrUnsupported = errors.New("no driver for this kind of step on this node")

// Apply runs the plan. Services are applied one after another in plan
// order; a failed step stops only its own service, whose new work is undone.
// desired holds the resolved specs the plan was computed from.
func (e *Executor) Apply(ctx context.Context, p *planner.Plan, desired []spec.Service, commit string) (Result, error) {
	res := Result{PlanHash: p.Hash}
	snap, err := e.store.Snapshot(ctx)
	if err != nil {
		return res, fmt.Errorf("read registry: %w", err)
	}
	want := make(map[string]spec.Service, len(desired))
	for _, s := range desired {
		want[s.Name] = s
	}
	finished := 0
	done := map[string]ServiceResult{} // for the `after` gate (rollout.go)
	for _, group := range groupByService(p.Steps) {
		if err := ctx.Err(); err != nil {
			return res, err
		}
		svc := group[0].Service
		run := &serviceRun{
			e: e, planHash: p.Hash, commit: commit,
			deployed: snap.Services[svc],
			digests:  map[string]string{},
		}
		if s, ok := want[svc]; ok {
			run.desired = &s
		}
		sr := ServiceResult{Service: svc}
		// The /srv hold (datahold.go): asked before any step runs, so a
		// held or failed check leaves nothing to undo.
		if sr.Waiting, sr.Err = e.holdForData(ctx, run, group); sr.Waiting != "" || sr.Err != nil {
			e.log.Warn("service held by the /srv hold (or its check failed); left as it is", logattr.With(logattr.Service(svc, "", commit, p.Hash),
				"waiting_for", sr.Waiting, "err", sr.Err)...)
			done[svc] = sr
			res.Services = append(res.Services, sr)
			continue
		}
		if sr.Waiting = e.waitingFor(ctx, run.desired, snap, done); sr.Waiting != "" {
			e.log.Warn("service waits for the services it is after; left as deployed",
				logattr.With(logattr.Service(svc, "", commit, p.Hash), "waiting_for", sr.Waiting)...)
			done[svc] = sr
			res.Services = append(res.Services, sr)
			continue
		}
		for _, st := range group {
			if err := run.step(ctx, st); err != nil {
				sr.Err = &StepError{Step: st, Err: err}
				sr.FailedStep = st.ID
				e.log.Error("step failed; undoing the service's new work",
					logattr.With(logattr.Service(svc, st.Component, commit, p.Hash), "step", st.ID, "err", err)...)
				run.undo(context.WithoutCancel(ctx))
				break
			}
			sr.Steps = append(sr.Steps, st.ID)
			finished++
			if e.afterStep != nil {
				e.afterStep(finished)
			}
		}
		if sr.Err == nil {
			if err := run.record(ctx); err != nil {
				sr.Err = fmt.Errorf("record %s in registry: %w", svc, err)
			}
		}
		done[svc] = sr
		res.Services = append(res.Services, sr)
	}
	return res, nil
}

// groupByService splits steps into consecutive runs of one service. The
// planner emits each service's steps together, in service order.
func groupByService(steps []planner.Step) [][]planner.Step {
	var groups [][]planner.Step
	for i, st := range steps {
		if i == 0 || steps[i-1].Service != st.Service {
			groups = append(groups, nil)
		}
		groups[len(groups)-1] = append(groups[len(groups)-1], st)
	}
	return groups
}

// ContainerID names a component's container in one slot.
func ContainerID(service, component string, slot int) string {
	return service + "." + component + "." + slotName(slot)
}

func slotName(slot int) string {
	if slot == registry.SlotB {
		return "b"
	}
	return "a"
}

// LogPath is where a component's container output goes.
func (e *Executor) LogPath(service, component string, slot int) string {
	return filepath.Join(e.logDir, service, component+"."+slotName(slot)+".log")
}
