// Package agent is the node daemon: it follows the desired-state
// repository and converges the node on it, one reconcile at a time, and
// serves what it knows on the local API.
package agent

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	gosync "sync"
	"time"

	"metacircular.net/mcp/executor"
	"metacircular.net/mcp/internal/version"
	"metacircular.net/mcp/metrics"
	"metacircular.net/mcp/planner"
	"metacircular.net/mcp/registry"
	"metacircular.net/mcp/spec"
	gitsync "metacircular.net/mcp/sync"
)

// Source is what the agent needs from the Git follower.
type Source interface {
	// Fetch returns the branch head's revision, fetching only if it moved.
	Fetch(ctx context.Context) (*gitsync.Revision, error)
	// Check tells how the branch moved from applied to next and refuses a
	// backwards move unless allowed.
	Check(ctx context.Context, applied, next gitsync.Hash) (gitsync.Movement, error)
	// Watch fires when a local repository's refs change.
	Watch(ctx context.Context) <-chan struct{}
	// Revision reads a commit already in the local cache, without the
	// network (and verified like a fetched one).
	Revision(ctx context.Context, h gitsync.Hash) (*gitsync.Revision, error)
}

// Runtime is the container runtime as the agent uses it: the executor's
// contract plus log rotation.
type Runtime interface {
	executor.Runtime
	RotateLogs(ctx context.Context, maxBytes int64, keep int) error
	// PruneImages removes the images and mcp's copies whose digest is not
	// in keep.
	PruneImages(ctx context.Context, keep []string) error
}

// Agent is one node's daemon.
type Agent struct {
	cfg      *Config
	reg      *registry.Registry
	src      Source
	rt       Runtime
	exec     *executor.Executor
	secrets  *secretStore // the node's secrets directory (secrets.go)
	log      *slog.Logger
	features planner.Features
	now      func() time.Time

	// requests carries "reconcile now" asks from the API; each gets the
	// outcome on its reply channel.
	requests chan chan Outcome

	// Owned by the loop goroutine.
	rev           *gitsync.Revision
	fetchFailures int

	mu       gosync.Mutex
	last     Outcome
	invalid  []spec.Invalid         // of the last planned reconcile (keepLast)
	failures map[string]string      // service → last error
	restarts map[string]restartInfo // container ID → supervisor's report
	started  time.Time

	// ops holds the metrics, event bookkeeping and readiness (ops.go).
	ops *opsState
	// ts follows trust, status notes and quarantine (quarantine.go).
	ts *trustState
	// rs follows rollouts, health and drift (rollout.go, watch.go).
	rs *rolloutState
}

// Deps are the agent's collaborators, built by the caller (cmd wiring or a
// test) so that each can be a real driver.
type Deps struct {
	Registry *registry.Registry
	Source   Source
	Runtime  Runtime
	Ports    executor.Ports
	Logger   *slog.Logger
	// AfterStep, when set, is called after each finished plan step
	// (crash-injection tests).
	AfterStep func(n int)
	// Executor holds extra executor options: the drivers for routes,
	// certificates, records and health checks this node has.
	Executor []executor.Option
	// Metrics receives the agent's metrics; nil: a private set (served
	// only when [metrics] listen is set). Drivers built before the agent
	// take it from here too.
	Metrics *metrics.Metrics
}

// New assembles an agent from its configuration and collaborators.
func New(cfg *Config, d Deps) *Agent {
	log := d.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	log = log.With("node", cfg.Node)
	opts := []executor.Option{
		executor.WithLogger(log),
		executor.WithStopGrace(cfg.Containerd.StopGrace.Duration),
		executor.WithHostRoot(cfg.HostRoot),
	}
	if d.AfterStep != nil {
		opts = append(opts, executor.WithAfterStep(d.AfterStep))
	}
	secrets := newSecretStore(cfg)
	opts = append(opts, executor.WithSecrets(secrets))
	opts = append(opts, dataHoldOptions(d.Source, cfg.Node)...) // datahold.go: the /srv hold
	opts = append(opts, d.Executor...)
	exec := executor.New(d.Registry, executor.RegistryJournal{Reg: d.Registry}, d.Ports, d.Runtime, cfg.LogDir(), opts...)
	if d.Metrics == nil {
		d.Metrics = metrics.New(version.Version)
	}
	a := &Agent{
		cfg:      cfg,
		reg:      d.Registry,
		src:      d.Source,
		rt:       d.Runtime,
		exec:     exec,
		secrets:  secrets,
		features: exec.Features(),
		log:      log,
		now:      time.Now,
		requests: make(chan chan Outcome),
		failures: map[string]string{},
		restarts: map[string]restartInfo{},
		ops:      newOps(d.Metrics),
		ts:       newTrustState(),
		rs:       newRolloutState(),
	}
	d.Metrics.OnScrape(a.refreshServiceGauge)
	return a
}

// Once recovers from any interrupted run and reconciles once.
func (a *Agent) Once(ctx context.Context) (Outcome, error) {
	if err := a.start(ctx); err != nil {
		return Outcome{}, err
	}
	return a.reconcile(ctx), nil
}

func (a *Agent) start(ctx context.Context) error {
	a.started = a.now()
	if err := a.reg.SetNode(ctx, a.cfg.Node); err != nil {
		return fmt.Errorf("record node name: %w", err)
	}
	if _, err := a.exec.Recover(ctx); err != nil {
		return fmt.Errorf("recover journal: %w", err)
	}
	return nil
}

// Run reconciles on every trigger (watcher, poll timer, API request) until
// ctx is cancelled. Workloads keep running when it returns.
func (a *Agent) Run(ctx context.Context) error {
	if err := a.start(ctx); err != nil {
		return err
	}
	watch := a.src.Watch(ctx)
	backoff := gitsync.NewBackoff(time.Second, 5*time.Minute, rand.New(rand.NewPCG(uint64(a.now().UnixNano()), 0)))
	var reply []chan Outcome
	timer := time.NewTimer(0) // the first reconcile runs at once
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			a.log.Info("agent stopping; workloads keep running")
			return nil
		case <-watch:
		case <-timer.C:
		case r := <-a.requests:
			reply = append(reply, r)
		case <-a.rs.kick: // drift seen between polls (watch.go)
		}
		a.setLoopState(metrics.StateReconciling, 0)
		// A newer commit cuts the reconcile's health waits short
		// (rollout.go), and the next reconcile follows at once.
		out, interrupted := a.reconcileWatching(ctx, watch)
		for _, r := range reply {
			r <- out
		}
		reply = reply[:0]
		if err := a.rt.RotateLogs(ctx, a.cfg.Logs.MaxBytes, a.cfg.Logs.Keep); err != nil {
			a.log.Warn("rotate logs", "err", err)
		}
		next := a.cfg.Git.PollInterval.Duration
		// A failing remote is retried sooner than the poll interval at
		// first and then less and less often; workloads are untouched.
		if a.fetchFailures > 0 {
			next = backoff.Next()
			a.log.Info("retrying after backoff", "in", next.Round(time.Millisecond))
			a.setLoopState(metrics.StateBackoff, next)
		} else {
			backoff.Reset()
			a.setLoopState(metrics.StateIdle, 0)
		}
		if interrupted {
			next = 0
		}
		if !timer.Stop() {
			select {
			case <-timer.C:
			default:
			}
		}
		timer.Reset(next)
	}
}

// ReconcileNow asks the loop to reconcile now and waits for the outcome.
func (a *Agent) ReconcileNow(ctx context.Context) (Outcome, error) {
	reply := make(chan Outcome, 1)
	a.ops.metrics.AddWaiting(1)
	defer a.ops.metrics.AddWaiting(-1)
	select {
	case a.requests <- reply:
	case <-ctx.Done():
		return Outcome{}, ctx.Err()
	}
	select {
	case out := <-reply:
		return out, nil
	case <-ctx.Done():
		return Outcome{}, ctx.Err()
	}
}

// Last returns the last reconcile's outcome.
func (a *Agent) Last() Outcome {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.last
}
