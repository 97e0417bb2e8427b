package agent

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"metacircular.net/mcp/api"
	"metacircular.net/mcp/executor"
	"metacircular.net/mcp/executor/containerd"
	"metacircular.net/mcp/planner"
	"metacircular.net/mcp/registry"
	"metacircular.net/mcp/spec"
)

// Service outcomes recorded in the history.
const (
	OutcomeOK          = "ok"
	OutcomeFailed      = "failed"
	OutcomeInvalid     = "invalid"
	OutcomeQuarantined = "quarantined"
)

// trustState is the agent's part that follows trust, status notes,
// quarantine and secrets. Its fields are owned by the loop goroutine.
type trustState struct {
	// desired maps each desired service to its spec hash in the current
	// reconcile (before quarantine holds), for the history and the
	// failure counts.
	desired map[string]string
	// held are the services the current reconcile left as deployed
	// because they are quarantined.
	held  []string
	notes *notePublisher
}

func newTrustState() *trustState { return &trustState{desired: map[string]string{}} }

// holdQuarantined is called with the planner input before planning: it
// lifts the quarantine of every service whose definition changed (a newer
// commit is a new attempt) and leaves the still-quarantined ones as
// deployed.
func (a *Agent) holdQuarantined(ctx context.Context, in *planner.Input) {
	ts := a.ts
	ts.desired = make(map[string]string, len(in.Desired))
	for _, s := range in.Desired {
		ts.desired[s.Name] = spec.Hash(s)
	}
	ts.held = nil
	list, err := a.reg.QuarantineList(ctx)
	if err != nil {
		a.log.Warn("read quarantine", "err", err)
		return
	}
	var keep []registry.Quarantine
	for _, q := range list {
		h, desired := ts.desired[q.Service]
		if desired && h == q.SpecHash {
			keep = append(keep, q)
			continue
		}
		if err := a.reg.DeleteQuarantine(ctx, q.Service, q.SpecHash); err != nil {
			a.log.Warn("lift quarantine", "service", q.Service, "err", err)
			continue
		}
		a.log.Info("quarantine lifted: the definition changed", "service", q.Service, "spec_hash", q.SpecHash)
	}
	a.ops.metrics.SetQuarantined(len(keep))
	ts.held = planner.HoldQuarantined(in, keep)
	for _, name := range ts.held {
		a.log.Warn("service quarantined; left as deployed (push a change to it or run mcp retry)", "service", name)
	}
}

// markHeld makes a reconcile that held quarantined services partial: the
// node does not run what the branch says.
func (a *Agent) markHeld(out *Outcome) {
	if len(a.ts.held) == 0 {
		return
	}
	msg := "quarantined (left as deployed): " + strings.Join(a.ts.held, ", ")
	switch out.Result {
	case ResultOK:
		out.Result, out.Err = ResultPartial, msg
	case ResultPartial:
		out.Err += "; " + msg
	}
}

// serviceOutcomes is the per-service part of the history record.
func (a *Agent) serviceOutcomes(out *Outcome) []registry.ServiceOutcome {
	var res []registry.ServiceOutcome
	seen := map[string]bool{}
	for _, s := range out.Services {
		o := registry.ServiceOutcome{Service: s.Service, Result: OutcomeOK, SpecHash: a.ts.desired[s.Service]}
		if s.Err != nil {
			o.Result, o.Error, o.FailedStep = OutcomeFailed, s.Err.Error(), s.FailedStep
		}
		res = append(res, o)
		seen[s.Service] = true
	}
	for _, inv := range out.Invalid {
		if !seen[inv.Name] {
			res = append(res, registry.ServiceOutcome{Service: inv.Name, Result: OutcomeInvalid, Error: inv.Diagnostics.Error()})
			seen[inv.Name] = true
		}
	}
	for _, name := range a.ts.held {
		if !seen[name] {
			res = append(res, registry.ServiceOutcome{Service: name, Result: OutcomeQuarantined, SpecHash: a.ts.desired[name]})
		}
	}
	slices.SortFunc(res, func(x, y registry.ServiceOutcome) int { return strings.Compare(x.Service, y.Service) })
	return res
}

// quarantineFailures runs before the reconcile is recorded: a service that
// failed with the same definition in this and the previous reconciles
// (quarantine.after in a row) is quarantined. A failed image pull (missing
// image, registry down) counts only once the first failure of the streak
// is older than quarantine.image_deadline: an image pushed a bit after
// its definition is the normal order of things.
func (a *Agent) quarantineFailures(ctx context.Context, out *Outcome) {
	var failed []executor.ServiceResult
	for _, s := range out.Services {
		if s.Err != nil && a.ts.desired[s.Service] != "" {
			failed = append(failed, s)
		}
	}
	if len(failed) == 0 {
		return
	}
	hist, err := a.reg.History(ctx)
	if err != nil {
		a.log.Warn("read history for quarantine", "err", err)
		return
	}
	after := a.cfg.Quarantine.Failures()
	for _, s := range failed {
		hash := a.ts.desired[s.Service]
		n, first := 1, out.Started
		for i := len(hist) - 1; i >= 0 && n < after; i-- {
			o, ok := outcomeOf(hist[i], s.Service)
			if !ok {
				continue // not planned in that reconcile (remote down, say)
			}
			if o.Result != OutcomeFailed || o.SpecHash != hash {
				break
			}
			n, first = n+1, hist[i].Time
		}
		if n < after {
			continue
		}
		var se *executor.StepError
		var kind planner.Kind
		if errors.As(s.Err, &se) {
			kind = se.Step.Kind
		}
		if outsideTheDefinition(kind) && out.Started.Sub(first) < a.cfg.Quarantine.Deadline() {
			continue
		}
		reason := fmt.Sprintf("failed %d times in a row: %v", n, s.Err)
		switch {
		case kind == planner.KindImage:
			reason = fmt.Sprintf("image still unavailable %s after the first failure: %v", out.Started.Sub(first).Round(time.Second), s.Err)
		case outsideTheDefinition(kind):
			reason = fmt.Sprintf("%s step still failing %s after the first failure: %v", kind, out.Started.Sub(first).Round(time.Second), s.Err)
		}
		a.quarantine(ctx, registry.Quarantine{Service: s.Service, SpecHash: hash, Reason: reason, Commit: out.Commit, Failures: n})
	}
}

// outsideTheDefinition reports whether a failed step of this kind is most
// likely the fault of a component outside the service's definition: the
// image registry (a pull), the proxy (a route), the CA (a certificate) or
// the DNS server (a record). Such failures are temporary for
// quarantine.image_deadline: quarantining the definition after three quick
// reconciles would leave the service undeployed after the component came
// back, until someone pushed or ran mcp retry, though nothing was wrong
// with it.
func outsideTheDefinition(k planner.Kind) bool {
	switch k {
	case planner.KindImage, planner.KindRoute, planner.KindCert, planner.KindRecord:
		return true
	}
	return false
}

func outcomeOf(h registry.HistoryRecord, service string) (registry.ServiceOutcome, bool) {
	for _, o := range h.Services {
		if o.Service == service {
			return o, true
		}
	}
	return registry.ServiceOutcome{}, false
}

func (a *Agent) quarantine(ctx context.Context, q registry.Quarantine) {
	if err := a.reg.PutQuarantine(context.WithoutCancel(ctx), q); err != nil {
		a.log.Error("record quarantine", "service", q.Service, "err", err)
		return
	}
	a.log.Warn("service quarantined", "service", q.Service, "spec_hash", q.SpecHash, "reason", q.Reason)
	a.RecordEvent(ctx, registry.Event{Kind: registry.EventQuarantine, Service: q.Service, Commit: q.Commit, Message: q.Reason})
	a.quarantineMetrics(ctx, q.Reason)
}

// quarantineMetrics counts a new quarantine (reason given) and sets the
// gauge of what is quarantined now; reason "" only refreshes the gauge,
// after a quarantine was lifted.
func (a *Agent) quarantineMetrics(ctx context.Context, reason string) {
	list, err := a.reg.QuarantineList(context.WithoutCancel(ctx))
	if err != nil {
		a.log.Warn("count quarantined services", "err", err)
		return
	}
	if reason == "" {
		a.ops.metrics.SetQuarantined(len(list))
		return
	}
	a.ops.metrics.CommitQuarantined(quarantineKind(reason), len(list))
}

// quarantineKind is the metric label for why a service was quarantined:
// a bounded set, never the free-form reason.
func quarantineKind(reason string) string {
	switch {
	case strings.HasPrefix(reason, "rolled back"):
		return "revert"
	case strings.Contains(reason, "crash"):
		return "crash-loop"
	case strings.Contains(reason, "image"):
		return "image-missing"
	default:
		return "repeated-failure"
	}
}

// crashLoopQuarantine quarantines the deployed definition of a service
// whose container the supervisor reports as crash-looping: the supervisor
// already backs its restarts off, and the quarantine makes it visible in
// status and notes and keeps the agent from redeploying that definition.
// When the definition replaced an earlier one (registry.Deployed.Previous),
// the quarantine names that one as RevertTo and a reconcile is asked for
// at once: the planner goes back to the version that ran before the crash
// loop began (planner.HoldQuarantined), as a normal update with its health
// wait. It runs on its own goroutine (the supervisor's handler must not
// block).
func (a *Agent) crashLoopQuarantine(e containerd.Event) {
	if e.Type != containerd.EventCrashLooping || e.ID == "" {
		return
	}
	service, _, _ := strings.Cut(e.ID, ".")
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		snap, err := a.reg.Snapshot(ctx)
		if err != nil {
			a.log.Warn("crash loop quarantine: read registry", "err", err)
			return
		}
		d, ok := snap.Services[service]
		if !ok {
			return
		}
		q := registry.Quarantine{Service: service, SpecHash: d.SpecHash, Commit: d.Commit,
			Reason: fmt.Sprintf("container %s is crash-looping (last exit code %d)", e.ID, e.ExitCode)}
		if p := d.Previous; p != nil && p.SpecHash != d.SpecHash {
			q.RevertTo = p.SpecHash
			q.Reason = fmt.Sprintf("rolled back: container %s is crash-looping (last exit code %d) after its rollout; "+
				"the previous version (commit %s) is redeployed", e.ID, e.ExitCode, short(p.Commit))
			a.log.Warn("rollout reverted", "service", service, "spec_hash", d.SpecHash, "reason", q.Reason)
			a.RecordEvent(ctx, registry.Event{Kind: registry.EventRevert, Service: service, Commit: d.Commit, Message: q.Reason})
		}
		a.quarantine(ctx, q)
		if q.RevertTo != "" {
			a.rs.nudge()
		}
	}()
}

// Retry lifts every quarantine of a service (POST /v1/retry, `mcp retry`)
// and returns how many definitions were lifted; the next reconcile tries
// the service again.
func (a *Agent) Retry(ctx context.Context, service string) (int, error) {
	var n int
	err := a.reg.Update(ctx, func(tx *registry.Tx) error {
		var err error
		n, err = tx.DeleteServiceQuarantine(service)
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("lift quarantine of %s: %w", service, err)
	}
	if n > 0 {
		a.log.Info("quarantine lifted by mcp retry", "service", service)
		a.quarantineMetrics(ctx, "")
	}
	return n, nil
}

// quarantineList is the registry's list for status (nil on error, which
// is logged: status must still answer).
func (a *Agent) quarantineList(ctx context.Context) []registry.Quarantine {
	list, err := a.reg.QuarantineList(ctx)
	if err != nil {
		a.log.Warn("read quarantine", "err", err)
	}
	return list
}

// History returns the kept reconciles (GET /v1/history).
func (a *Agent) History(ctx context.Context) ([]registry.HistoryRecord, error) {
	return a.reg.History(ctx)
}

var _ api.Operator = (*Agent)(nil)
