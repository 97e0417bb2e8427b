package agent

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"metacircular.net/mcp/executor"
	"metacircular.net/mcp/planner"
	"metacircular.net/mcp/registry"
	"metacircular.net/mcp/spec"
	gitsync "metacircular.net/mcp/sync"
)

// Results of one reconcile.
const (
	ResultOK      = "ok"      // every service converged
	ResultPartial = "partial" // some services failed or are invalid; the rest converged
	ResultFailed  = "failed"  // nothing could be planned (remote, repo or registry trouble)
)

// Outcome is what one reconcile did.
type Outcome struct {
	Started, Finished time.Time
	Commit            string
	PlanHash          string
	Result            string
	// Err is why the reconcile failed or was partial, for humans.
	Err      string
	Plan     *planner.Plan
	Services []executor.ServiceResult
	Invalid  []spec.Invalid
	Repairs  []executor.Repair
	// Warnings are non-blocking diagnostics of the repo.
	Warnings spec.Diagnostics
}

// reconcile runs one pass of the loop: sync → spec → planner → executor →
// converge → registry. It never returns early without converging: a remote
// or repo failure still lets the node heal towards what it last applied.
//
// The result is named so that what the deferred function adds (the finish
// time, quarantine decisions) is part of what the caller receives.
func (a *Agent) reconcile(ctx context.Context) (out Outcome) {
	out = Outcome{Started: a.now()}
	defer func() {
		out.Finished = a.now()
		a.rs.applying.Store("")
		a.revertFailures(ctx, &out)     // rollout.go: unhealthy new versions
		a.quarantineFailures(ctx, &out) // quarantine.go
		a.record(ctx, &out)
		a.publishStatus(ctx, &out) // statusnotes.go
	}()

	rev, err := a.revision(ctx)
	var syncErr error
	if err != nil {
		cached := a.cachedRevision(ctx, err)
		if cached == nil {
			out.Result, out.Err = ResultFailed, err.Error()
			a.converge(ctx, &out)
			return out
		}
		// The remote is out of reach, not refusing: plan from the commit
		// already here, so a service that failed for another reason (an
		// image not pushed yet, a registry that was down) is retried.
		syncErr = fmt.Errorf("%w (working from the cached commit %s)", err, short(cached.Commit.String()))
		rev = cached
	}
	out.Commit = rev.Commit.String()
	a.rs.applying.Store(out.Commit) // a newer commit interrupts health waits (rollout.go)
	defer func() {
		if syncErr == nil {
			return
		}
		if out.Result == ResultOK {
			out.Result = ResultPartial
		}
		if out.Err == "" {
			out.Err = syncErr.Error()
		} else {
			out.Err = syncErr.Error() + "; " + out.Err
		}
	}()

	repo, err := spec.Load(rev.Tree)
	if err != nil {
		out.Result, out.Err = ResultFailed, fmt.Sprintf("read commit %s: %v", short(out.Commit), err)
		a.converge(ctx, &out)
		return out
	}
	in := planner.InputFor(repo, a.cfg.Node, registry.Snapshot{}, a.features, a.cfg.AllowRemoveAll)
	a.bindSecrets(ctx, &in) // secrets.go: digests of the node's secrets, before anything reads in
	out.Invalid = in.Invalid
	for _, d := range repo.Diagnostics {
		if d.Severity == spec.SeverityWarning {
			out.Warnings = append(out.Warnings, d)
		}
	}

	snap, err := a.reg.Snapshot(ctx)
	if err != nil {
		out.Result, out.Err = ResultFailed, fmt.Sprintf("read registry: %v", err)
		return out
	}
	in.Actual = snap
	a.holdQuarantined(ctx, &in) // quarantine.go
	p := planner.Compute(in)
	out.Plan, out.PlanHash = p, p.Hash

	res, err := a.exec.Apply(ctx, p, in.Desired, out.Commit)
	out.Services = res.Services
	a.converge(ctx, &out)

	switch {
	case err != nil:
		out.Result, out.Err = ResultFailed, err.Error()
	case p.Refused != "":
		out.Result, out.Err = ResultPartial, p.Refused
	case res.Failed() || len(in.Invalid) > 0 || !repo.PlatformValid:
		out.Result, out.Err = ResultPartial, partialReason(res, in.Invalid)
	default:
		out.Result = ResultOK
	}
	if w := waitingReason(&out); w != "" { // rollout.go: `after`
		switch out.Result {
		case ResultOK:
			out.Result, out.Err = ResultPartial, w
		case ResultPartial:
			out.Err += "; " + w
		}
	}
	a.markHeld(&out) // quarantine.go
	if out.Result != ResultFailed {
		if err := a.reg.SetAppliedCommit(ctx, out.Commit); err != nil {
			out.Result, out.Err = ResultFailed, fmt.Sprintf("record applied commit: %v", err)
		}
	}
	return out
}

// revision fetches the branch head when it moved and checks how the branch
// moved since the applied commit.
func (a *Agent) revision(ctx context.Context) (*gitsync.Revision, error) {
	fetchStart := time.Now()
	rev, err := a.src.Fetch(ctx)
	a.ops.metrics.ObserveFetch(time.Since(fetchStart), err)
	if err != nil {
		a.fetchFailures++
		if a.rev != nil && errors.Is(err, gitsync.ErrUnreachable) {
			a.log.Warn("remote unreachable; keeping the last fetched commit", "commit", a.rev.Commit.String(), "err", err)
		}
		return nil, fmt.Errorf("sync: %w", err)
	}
	a.fetchFailures = 0
	applied, err := a.reg.AppliedCommit(ctx)
	if err != nil {
		return nil, fmt.Errorf("read applied commit: %w", err)
	}
	if applied != "" && applied != rev.Commit.String() {
		prev, err := gitsync.ParseHash(applied)
		if err != nil {
			return nil, fmt.Errorf("registry's applied commit: %w", err)
		}
		move, err := a.src.Check(ctx, prev, rev.Commit)
		if err != nil {
			return nil, err
		}
		if move == gitsync.MoveDiverged || move == gitsync.MoveUnknown || move == gitsync.MoveBackwards {
			a.log.Warn("branch history changed", "movement", move.String(), "from", short(applied), "to", short(rev.Commit.String()))
		}
	}
	a.rev = rev
	return rev, nil
}

// cachedRevision is the commit to work from when fetching failed because
// the remote could not be reached: the last one fetched, or after a restart
// the applied one from the local cache. A remote that answered with a
// refusal (a backwards move, a commit that failed verification) gets nil:
// the agent then only keeps what runs.
func (a *Agent) cachedRevision(ctx context.Context, fetchErr error) *gitsync.Revision {
	if !errors.Is(fetchErr, gitsync.ErrUnreachable) {
		return nil
	}
	if a.rev != nil {
		return a.rev
	}
	applied, err := a.reg.AppliedCommit(ctx)
	if err != nil || applied == "" {
		return nil
	}
	h, err := gitsync.ParseHash(applied)
	if err != nil {
		return nil
	}
	rev, err := a.src.Revision(ctx, h)
	if err != nil {
		a.log.Warn("remote unreachable and the applied commit is not readable from the cache", "commit", short(applied), "err", err)
		return nil
	}
	a.rev = rev
	return rev
}

func (a *Agent) converge(ctx context.Context, out *Outcome) {
	defer a.pruneImages(ctx)
	repairs, err := a.exec.Converge(ctx)
	out.Repairs = repairs
	a.renewCerts(ctx) // certs.go: renewal runs every pass, not only on deploy
	if err != nil {
		a.log.Error("converge", "err", err)
		if out.Err == "" {
			out.Err = err.Error()
		}
		if out.Result == "" || out.Result == ResultOK {
			out.Result = ResultPartial
		}
	}
}

// pruneImages applies the image retention policy: the current and the
// previous image of every recorded component are kept (in containerd and as
// mcp's own archives, for rollback and for rebuilding without the
// registry); anything else goes.
func (a *Agent) pruneImages(ctx context.Context) {
	snap, err := a.reg.Snapshot(ctx)
	if err != nil {
		a.log.Warn("prune images: read registry", "err", err)
		return
	}
	var keep []string
	for _, d := range snap.Services {
		for _, c := range d.Components {
			for _, dg := range []string{c.ImageDigest, c.PreviousDigest} {
				if dg != "" {
					keep = append(keep, dg)
				}
			}
		}
	}
	if err := a.rt.PruneImages(ctx, keep); err != nil {
		a.log.Warn("prune images", "err", err)
	}
}

func partialReason(res executor.Result, invalid []spec.Invalid) string {
	var failed []string
	for _, s := range res.Services {
		if s.Err != nil {
			failed = append(failed, s.Service)
		}
	}
	var parts []string
	if len(failed) > 0 {
		parts = append(parts, "failed: "+strings.Join(failed, ", "))
	}
	if len(invalid) > 0 {
		names := make([]string, len(invalid))
		for i, inv := range invalid {
			names[i] = inv.Name
		}
		parts = append(parts, "invalid (left as deployed): "+strings.Join(names, ", "))
	}
	return strings.Join(parts, "; ")
}

// keepLast keeps out as the last outcome, for status; the caller holds
// a.mu. A reconcile that failed before it could plan (a refused commit,
// the registry unreadable) says nothing new about invalid or held
// services: status keeps what the last planned one knew of them.
func (a *Agent) keepLast(out Outcome) {
	a.last = out
	if out.Plan != nil {
		a.invalid = out.Invalid
		a.rs.setWaiting(out.Services)
	}
}

// record keeps the outcome for status and appends it to the history.
func (a *Agent) record(ctx context.Context, out *Outcome) {
	a.observe(ctx, out)                      // metrics and events (ops.go), before failures moves on
	a.rs.repaired(out.Repairs, out.Finished) // drift shown in status (watch.go)
	a.mu.Lock()
	a.keepLast(*out)
	for _, s := range out.Services {
		if s.Err != nil {
			a.failures[s.Service] = s.Err.Error()
		} else {
			delete(a.failures, s.Service)
		}
	}
	a.mu.Unlock()
	_, err := a.reg.AppendHistory(context.WithoutCancel(ctx), registry.HistoryRecord{
		Commit:   out.Commit,
		PlanHash: out.PlanHash,
		Result:   out.Result,
		Error:    out.Err,
		Time:     out.Started,
		Duration: out.Finished.Sub(out.Started),
		Services: a.serviceOutcomes(out),
	})
	if err != nil {
		a.log.Error("append history", "err", err)
	}
	level := a.log.Info
	if out.Result != ResultOK {
		level = a.log.Warn
	}
	level("reconciled", "commit", short(out.Commit), "plan", out.PlanHash, "result", out.Result,
		"steps", stepCount(out.Plan), "repairs", len(out.Repairs), "err", out.Err,
		"duration", out.Finished.Sub(out.Started).Round(time.Millisecond))
}

func stepCount(p *planner.Plan) int {
	if p == nil {
		return 0
	}
	return len(p.Steps)
}

func short(commit string) string {
	if len(commit) > 12 {
		return commit[:12]
	}
	return commit
}
