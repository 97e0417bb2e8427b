package agent

import (
	"context"
	"fmt"
	"path/filepath"
	"time"

	"metacircular.net/mcp/api"
	"metacircular.net/mcp/statusnote"
)

// notePublishTimeout bounds one note write (fetch, merge, push, retries):
// a slow remote must not hold the loop for long.
const notePublishTimeout = time.Minute

// notePublisher writes the status notes ([status] notes = true).
type notePublisher struct {
	w        *statusnote.Writer
	interval time.Duration
	last     time.Time // last successful write
}

// StatusDir is the private repository the status notes are built in:
// <state_dir>/status.git.
func (c *Config) StatusDir() string { return filepath.Join(c.StateDir, "status.git") }

// enableNotes sets up the status notes when the configuration asks for
// them, pushing through remote with the agent's git credentials.
func (a *Agent) enableNotes(remote statusnote.Remote) error {
	if !a.cfg.Status.Notes {
		return nil
	}
	signer, err := statusnote.LoadSigner(a.cfg.Status.SigningKeyFile)
	if err != nil {
		return fmt.Errorf("%s: %w", a.cfg.File, err)
	}
	w, err := statusnote.NewWriter(a.cfg.Node, a.cfg.StatusDir(), remote, signer)
	if err != nil {
		return fmt.Errorf("%s: status: %w", a.cfg.File, err)
	}
	a.ts.notes = &notePublisher{w: w, interval: a.cfg.Status.StatusInterval()}
	return nil
}

// publishStatus writes a note after a reconcile that changed something or
// failed, and otherwise when the liveness interval has passed. A failed
// write is logged and tried again after the next reconcile; the node's
// work never depends on it.
func (a *Agent) publishStatus(ctx context.Context, out *Outcome) {
	np := a.ts.notes
	if np == nil {
		return
	}
	changed := out.Result != ResultOK || len(out.Repairs) > 0 || (out.Plan != nil && !out.Plan.IsNoOp())
	if !changed && !np.last.IsZero() && a.now().Sub(np.last) < np.interval {
		return
	}
	rec, err := a.statusRecord(ctx, out)
	if err != nil {
		a.log.Warn("status note: compose record", "err", err)
		return
	}
	if rec == nil {
		a.log.Debug("status note: no applied commit to attach it to yet")
		return
	}
	wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), notePublishTimeout)
	defer cancel()
	res, err := np.w.Write(wctx, rec)
	if err != nil {
		a.log.Warn("status note not written; retrying after the next reconcile", "err", err)
		return
	}
	np.last = a.now()
	a.log.Info("status note written", "ref", statusnote.Ref(a.cfg.Node).String(), "commit", short(rec.AppliedCommit),
		"notes_commit", short(res.Commit.String()), "liveness", res.Liveness, "attempts", res.Attempts)
}

// statusRecord is the note's content: the local status, the plan hash and
// what the planner is given. nil when nothing was ever applied (a note
// needs a commit to be attached to).
func (a *Agent) statusRecord(ctx context.Context, out *Outcome) (*statusnote.Record, error) {
	st, err := a.Status(ctx)
	if err != nil {
		return nil, err
	}
	if st.AppliedCommit == "" {
		return nil, nil
	}
	snap, err := a.Snapshot(ctx)
	if err != nil {
		return nil, err
	}
	return &statusnote.Record{
		Time:     a.now().UTC(),
		PlanHash: out.PlanHash,
		Status:   st,
		Planner:  &snap,
	}, nil
}

// addQuarantine puts the quarantine list into a status and marks the
// services concerned.
func (a *Agent) addQuarantine(ctx context.Context, st *api.Status) {
	st.Quarantine = a.quarantineList(ctx)
	for _, q := range st.Quarantine {
		for i := range st.Services {
			if st.Services[i].Name == q.Service {
				st.Services[i].State = api.StateQuarantined
				st.Services[i].Error = "quarantined since " + q.Since.UTC().Format(time.RFC3339) + ": " + q.Reason +
					" (the deployed version is kept; push a change or run mcp retry " + q.Service + ")"
			}
		}
	}
}
