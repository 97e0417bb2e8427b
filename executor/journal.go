package executor

import (
	"context"

	"metacircular.net/mcp/planner"
	"metacircular.net/mcp/registry"
)

// RegistryJournal keeps the executor's journal in the node's registry.
type RegistryJournal struct{ Reg *registry.Registry }

var _ Journal = RegistryJournal{}

// Begin records the step's intent.
func (j RegistryJournal) Begin(ctx context.Context, planHash string, st planner.Step) (uint64, error) {
	return j.Reg.JournalBegin(ctx, registry.Entry{
		PlanHash:  planHash,
		StepID:    st.ID,
		Service:   st.Service,
		Component: st.Component,
		Kind:      string(st.Kind),
		Action:    string(st.Action),
	})
}

// Finish records the step's outcome.
func (j RegistryJournal) Finish(ctx context.Context, seq uint64, outcome, message string) error {
	phase := registry.PhaseDone
	switch outcome {
	case OutcomeFailed:
		phase = registry.PhaseFailed
	case OutcomeUndone, OutcomeInterrupted:
		// An interrupted step is closed as undone: recovery re-plans it
		// from the registry instead of trusting its half-done effect.
		phase = registry.PhaseUndone
	}
	return j.Reg.JournalFinish(ctx, seq, registry.Outcome{Phase: phase, Err: message})
}

// InFlight lists the steps begun and never finished.
func (j RegistryJournal) InFlight(ctx context.Context) ([]InFlight, error) {
	open, err := j.Reg.JournalOpen(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]InFlight, len(open))
	for i, e := range open {
		out[i] = InFlight{Seq: e.Seq, PlanHash: e.PlanHash, StepID: e.StepID, Service: e.Service, Started: e.Started}
	}
	return out, nil
}
