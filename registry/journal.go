package registry

import (
	"context"
	"encoding/json"
	"fmt"
	"time"
)

// Phase is where a journaled step stands.
type Phase string

const (
	// PhaseIntent: the step is about to run (or was running at a crash).
	PhaseIntent Phase = "intent"
	// PhaseDone: the step completed.
	PhaseDone Phase = "done"
	// PhaseFailed: the step failed; Error says why.
	PhaseFailed Phase = "failed"
	// PhaseUndone: the step's effect was rolled back (after a failure of a
	// later step, or by crash recovery).
	PhaseUndone Phase = "undone"
)

// Finished reports whether p is a terminal phase.
func (p Phase) Finished() bool {
	return p == PhaseDone || p == PhaseFailed || p == PhaseUndone
}

// Entry is one journaled step. Its identity (service, component, slot) is
// the same one containers, leases and logs are keyed by, so recovery can
// find what a half-run step may have left behind.
type Entry struct {
	// Seq is assigned by JournalBegin; it orders entries.
	Seq uint64 `json:"seq"`
	// PlanHash and StepID name the plan step this entry runs.
	PlanHash string `json:"plan_hash"`
	StepID   string `json:"step_id"`

	Service   string `json:"service"`
	Component string `json:"component,omitempty"`
	Slot      int    `json:"slot"`
	// Kind is the resource kind (port, image, container, route, cert,
	// record...) and Action what is done to it (create, update, remove);
	// both as the planner names them.
	Kind   string `json:"kind"`
	Action string `json:"action"`

	Phase Phase `json:"phase"`
	// Data holds small facts the undo needs, decided while the step runs:
	// the port chosen, the container id, a proxy route id.
	Data json.RawMessage `json:"data,omitempty"`
	// Error is the failure message when Phase is failed.
	Error string `json:"error,omitempty"`

	Started  time.Time `json:"started"`
	Finished time.Time `json:"finished,omitzero"`
}

// Outcome ends a journal entry.
type Outcome struct {
	// Phase must be done, failed or undone.
	Phase Phase
	// Err is recorded when the step failed.
	Err string
	// Data, when non-nil, replaces the entry's Data (for example with the
	// id of what was created).
	Data json.RawMessage
}

// JournalBegin records e in phase intent and returns its sequence number.
// Commit it before acting: if the process dies after this, JournalOpen
// returns the entry on the next start.
func (t *Tx) JournalBegin(e Entry) (uint64, error) {
	if err := t.writable(); err != nil {
		return 0, fmt.Errorf("journal begin %s: %w", e.StepID, err)
	}
	b, err := t.bucket(bucketJournal)
	if err != nil {
		return 0, err
	}
	seq, err := b.NextSequence()
	if err != nil {
		return 0, fmt.Errorf("journal begin %s: %w", e.StepID, err)
	}
	e.Seq = seq
	e.Phase = PhaseIntent
	e.Error = ""
	e.Finished = time.Time{}
	if e.Started.IsZero() {
		e.Started = t.cfg.now()
	}
	if err := putJSON(b, seqKey(seq), e); err != nil {
		return 0, fmt.Errorf("journal begin %s: %w", e.StepID, err)
	}
	return seq, nil
}

// JournalEntry returns one entry; ErrNotFound if it was cleared or trimmed.
func (t *Tx) JournalEntry(seq uint64) (Entry, error) {
	var e Entry
	b, err := t.bucket(bucketJournal)
	if err != nil {
		return e, err
	}
	ok, err := getJSON(b, seqKey(seq), &e)
	if err != nil {
		return e, fmt.Errorf("journal entry %d: %w", seq, err)
	}
	if !ok {
		return e, fmt.Errorf("journal entry %d: %w", seq, ErrNotFound)
	}
	return e, nil
}

// JournalSetData replaces the Data of an entry in flight, for facts learnt
// half-way through a step that an undo would need.
func (t *Tx) JournalSetData(seq uint64, data json.RawMessage) error {
	if err := t.writable(); err != nil {
		return fmt.Errorf("journal data %d: %w", seq, err)
	}
	e, err := t.JournalEntry(seq)
	if err != nil {
		return err
	}
	e.Data = data
	b, err := t.bucket(bucketJournal)
	if err != nil {
		return err
	}
	return putJSON(b, seqKey(seq), e)
}

// JournalFinish moves an entry to a terminal phase and trims old finished
// entries. Finishing an entry that is already gone (cleared by recovery) is
// ErrNotFound, so a caller can tell a double finish from a lost entry.
func (t *Tx) JournalFinish(seq uint64, o Outcome) error {
	if !o.Phase.Finished() {
		return fmt.Errorf("journal finish %d: phase %q is not done, failed or undone", seq, o.Phase)
	}
	if err := t.writable(); err != nil {
		return fmt.Errorf("journal finish %d: %w", seq, err)
	}
	e, err := t.JournalEntry(seq)
	if err != nil {
		return fmt.Errorf("journal finish: %w", err)
	}
	e.Phase = o.Phase
	e.Error = o.Err
	if o.Data != nil {
		e.Data = o.Data
	}
	e.Finished = t.cfg.now()
	b, err := t.bucket(bucketJournal)
	if err != nil {
		return err
	}
	if err := putJSON(b, seqKey(seq), e); err != nil {
		return fmt.Errorf("journal finish %d: %w", seq, err)
	}
	return t.trimJournal(t.cfg.journalKeep)
}

// trimJournal deletes finished entries, oldest first, until at most keep
// entries remain. Entries in intent are never deleted: they are the
// crash-recovery record. Counting keys needs no decoding, and only the
// oldest entries are decoded, so a finish stays cheap on a long plan.
func (t *Tx) trimJournal(keep int) error {
	b, err := t.bucket(bucketJournal)
	if err != nil {
		return err
	}
	n := 0
	c := b.Cursor()
	for k, _ := c.First(); k != nil; k, _ = c.Next() {
		n++
	}
	var drop [][]byte
	for k, v := c.First(); k != nil && n-len(drop) > keep; k, v = c.Next() {
		var e Entry
		if err := json.Unmarshal(v, &e); err != nil {
			return fmt.Errorf("decode journal entry %d: %w", keySeq(k), err)
		}
		if e.Phase.Finished() {
			drop = append(drop, append([]byte(nil), k...))
		}
	}
	for _, k := range drop {
		if err := b.Delete(k); err != nil {
			return err
		}
	}
	return nil
}

// Journal returns every entry kept, oldest first.
func (t *Tx) Journal() ([]Entry, error) {
	return t.journal(func(Entry) bool { return true })
}

// JournalOpen returns the entries begun and never finished, oldest first:
// after a restart, the steps that were in flight at the crash.
func (t *Tx) JournalOpen() ([]Entry, error) {
	return t.journal(func(e Entry) bool { return e.Phase == PhaseIntent })
}

func (t *Tx) journal(keep func(Entry) bool) ([]Entry, error) {
	b, err := t.bucket(bucketJournal)
	if err != nil {
		return nil, err
	}
	var out []Entry
	err = b.ForEach(func(k, v []byte) error {
		var e Entry
		if err := json.Unmarshal(v, &e); err != nil {
			return fmt.Errorf("decode journal entry %d: %w", keySeq(k), err)
		}
		if keep(e) {
			out = append(out, e)
		}
		return nil
	})
	return out, err
}

// JournalClear removes one entry, whatever its phase: recovery calls it
// once it has dealt with an entry it does not want to keep. Absent is not
// an error.
func (t *Tx) JournalClear(seq uint64) error {
	if err := t.writable(); err != nil {
		return fmt.Errorf("journal clear %d: %w", seq, err)
	}
	b, err := t.bucket(bucketJournal)
	if err != nil {
		return err
	}
	return b.Delete(seqKey(seq))
}

// JournalClearFinished removes every finished entry, keeping those in
// intent.
func (t *Tx) JournalClearFinished() error {
	if err := t.writable(); err != nil {
		return fmt.Errorf("journal clear finished: %w", err)
	}
	return t.trimJournal(0)
}

// --- one-transaction wrappers -------------------------------------------

// JournalBegin records a step's intent in its own transaction.
func (r *Registry) JournalBegin(ctx context.Context, e Entry) (uint64, error) {
	var seq uint64
	err := r.Update(ctx, func(tx *Tx) error {
		var err error
		seq, err = tx.JournalBegin(e)
		return err
	})
	return seq, err
}

// JournalFinish records a step's outcome.
func (r *Registry) JournalFinish(ctx context.Context, seq uint64, o Outcome) error {
	return r.Update(ctx, func(tx *Tx) error { return tx.JournalFinish(seq, o) })
}

// JournalOpen returns the entries in flight (begun, not finished).
func (r *Registry) JournalOpen(ctx context.Context) ([]Entry, error) {
	return viewValue(ctx, r, func(tx *Tx) ([]Entry, error) { return tx.JournalOpen() })
}

// Journal returns every entry kept, oldest first.
func (r *Registry) Journal(ctx context.Context) ([]Entry, error) {
	return viewValue(ctx, r, func(tx *Tx) ([]Entry, error) { return tx.Journal() })
}

// JournalClear removes one entry.
func (r *Registry) JournalClear(ctx context.Context, seq uint64) error {
	return r.Update(ctx, func(tx *Tx) error { return tx.JournalClear(seq) })
}

// JournalClearFinished removes every finished entry.
func (r *Registry) JournalClearFinished(ctx context.Context) error {
	return r.Update(ctx, func(tx *Tx) error { return tx.JournalClearFinished() })
}
