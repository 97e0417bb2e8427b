package agent

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"metacircular.net/mcp/executor"
	"metacircular.net/mcp/registry"
	gitsync "metacircular.net/mcp/sync"
)

// rolloutState is the agent's part that follows rollouts: the commit being
// applied (so a newer one can interrupt a health wait), the nudges that
// make the loop converge between polls, and the health and drift shown in
// status (watch.go). Fields are safe for concurrent use.
type rolloutState struct {
	applying atomic.Value // string: the commit of the reconcile in flight
	// kick asks the loop for a reconcile (its converge pass) now: the
	// watcher saw drift. Buffered 1: asks pile up into one.
	kick chan struct{}

	mu     sync.Mutex
	health map[string]*watched  // container ID → checks (watch.go)
	drift  map[string][]driftAt // service → recent drift, newest last
	// waiting is each service's `after` wait of the last reconcile.
	waiting map[string]string
}

func newRolloutState() *rolloutState {
	rs := &rolloutState{kick: make(chan struct{}, 1), health: map[string]*watched{}, drift: map[string][]driftAt{}, waiting: map[string]string{}}
	rs.applying.Store("")
	return rs
}

// nudge asks the loop for a reconcile without blocking.
func (rs *rolloutState) nudge() {
	select {
	case rs.kick <- struct{}{}:
	default:
	}
}

// revertFailures runs after Apply, before the reconcile is recorded. A
// service whose new version did not become healthy within its deadline, or
// whose new container exited while the rollout waited for it, has been
// reverted already by the executor's undo (blue-green: the new slot is
// removed, the old one never stopped serving; replace: the new container is
// removed and the converge pass restarts the recorded version from the
// registry's spec and digest). Here the (service, definition) is
// quarantined at once, so the next reconciles leave the deployed version
// alone until a commit changes the service, and the revert is reported
// (event, status, status note). A wait cut short by a newer commit is not
// the version's fault and is not quarantined.
func (a *Agent) revertFailures(ctx context.Context, out *Outcome) {
	deployed := map[string]registry.Deployed{}
	if snap, err := a.reg.Snapshot(ctx); err == nil {
		deployed = snap.Services
	}
	for _, s := range out.Services {
		if s.Err == nil {
			continue
		}
		hash := a.ts.desired[s.Service]
		if errors.Is(s.Err, executor.ErrWaitInterrupted) {
			a.log.Info("rollout interrupted by a newer commit; the deployed version is kept and the newer commit is planned next",
				"service", s.Service, "err", s.Err)
			continue
		}
		if hash == "" || !errors.Is(s.Err, executor.ErrNotHealthy) && !errors.Is(s.Err, executor.ErrExited) {
			continue
		}
		// The failed wait's slot says how the update ran: in another slot
		// than the active one it was blue-green, and the old slot never
		// stopped; in the active slot the old container was replaced.
		how := "the previous version was restarted from the registry (replace)"
		d, wasDeployed := deployed[s.Service]
		var se *executor.StepError
		switch {
		case !wasDeployed:
			how = "the service was new: nothing is left running"
		case errors.As(s.Err, &se) && se.Step.Slot != "" && se.Step.Slot != slotLetter(d.Components[se.Step.Component].ActiveSlot):
			how = "the previous version keeps serving: it was never stopped (blue-green)"
		}
		reason := fmt.Sprintf("rolled back: the new version was not healthy: %v; %s", s.Err, how)
		a.log.Warn("rollout reverted", "service", s.Service, "spec_hash", hash, "reason", reason)
		a.RecordEvent(ctx, registry.Event{Kind: registry.EventRevert, Service: s.Service,
			Commit: out.Commit, PlanHash: out.PlanHash, Message: reason})
		a.quarantine(ctx, registry.Quarantine{Service: s.Service, SpecHash: hash, Commit: out.Commit, Failures: 1, Reason: reason})
	}
}

// setWaiting replaces the waits status shows (`after`, the /srv hold) by
// those of a planned reconcile's services.
func (rs *rolloutState) setWaiting(services []executor.ServiceResult) {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	clear(rs.waiting)
	for _, s := range services {
		if s.Waiting != "" {
			rs.waiting[s.Service] = s.Waiting
		}
	}
}

// waitingReason lists the services left waiting for their `after`
// dependencies, for a partial reconcile's reason ("" when none).
func waitingReason(out *Outcome) string {
	var w []string
	for _, s := range out.Services {
		if s.Waiting != "" {
			w = append(w, s.Service+" waits for "+s.Waiting)
		}
	}
	return strings.Join(w, "; ")
}

// header is what the agent asks its Source for the branch head without
// fetching (ls-remote); the git follower has it.
type header interface {
	Head(ctx context.Context) (gitsync.Hash, error)
}

// newCommitCheck is how often a reconcile in flight asks whether the branch
// moved, so that a rollout waiting for health is cut short by a newer
// commit (at most every poll interval, at least every 2 seconds).
const newCommitCheck = 2 * time.Second

// reconcileWatching runs one reconcile while watching for a newer commit:
// the watcher firing (a local repository) or the branch head moving makes
// every health wait of the reconcile end at once (the services waiting are
// undone like a failure and not quarantined), and interrupted tells the
// loop to reconcile again at once, from the newer commit.
func (a *Agent) reconcileWatching(ctx context.Context, watch <-chan struct{}) (out Outcome, interrupted bool) {
	stop, cancelStop := context.WithCancelCause(ctx)
	wctx, done := context.WithCancel(ctx)
	var hit atomic.Bool
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		a.watchNewCommit(wctx, watch, func(cause error) {
			hit.Store(true)
			cancelStop(cause)
		})
	}()
	out = a.reconcile(executor.InterruptWaits(ctx, stop))
	done()
	<-finished
	cancelStop(nil)
	return out, hit.Load()
}

// watchNewCommit calls interrupt once the branch head differs from the
// commit being applied, checking on every watcher event and every
// newCommitCheck, until ctx ends.
func (a *Agent) watchNewCommit(ctx context.Context, watch <-chan struct{}, interrupt func(error)) {
	h, ok := a.src.(header)
	every := min(max(a.cfg.Git.PollInterval.Duration, time.Second), newCommitCheck)
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-watch:
		case <-t.C:
		}
		applying, _ := a.rs.applying.Load().(string)
		if applying == "" || !ok {
			continue
		}
		cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		head, err := h.Head(cctx)
		cancel()
		if err != nil || head.String() == applying {
			continue
		}
		interrupt(fmt.Errorf("a newer commit %s arrived while %s was being applied", short(head.String()), short(applying)))
		return
	}
}
