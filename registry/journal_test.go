package registry

import (
	"context"
	"encoding/json"
	"errors"
	"reflect"
	"testing"
	"time"
)

func fixedClock() func() time.Time {
	t0 := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	return func() time.Time { return t0 }
}

// A step begun and never finished is what JournalOpen returns after the
// process goes away and the file is opened again.
func TestJournalCrashRecovery(t *testing.T) {
	ctx := context.Background()
	r, path := openTemp(t, WithClock(fixedClock()))
	port := json.RawMessage(`{"port":12001}`)
	steps := []Entry{
		{PlanHash: "p1", StepID: "mcq/port/8443", Service: "mcq", Component: "mcq", Kind: "port", Action: "create", Data: port},
		{PlanHash: "p1", StepID: "mcq/container", Service: "mcq", Component: "mcq", Slot: SlotB, Kind: "container", Action: "create"},
		{PlanHash: "p1", StepID: "mcq/route", Service: "mcq", Component: "mcq", Kind: "route", Action: "create"},
	}
	var seqs []uint64
	for _, e := range steps {
		seq, err := r.JournalBegin(ctx, e)
		if err != nil {
			t.Fatal(err)
		}
		seqs = append(seqs, seq)
	}
	if err := r.JournalFinish(ctx, seqs[0], Outcome{Phase: PhaseDone}); err != nil {
		t.Fatal(err)
	}
	// The container step learnt its id before the "crash".
	err := r.Update(ctx, func(tx *Tx) error {
		return tx.JournalSetData(seqs[1], json.RawMessage(`{"container":"mcq.mcq.b"}`))
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := r.JournalFinish(ctx, seqs[2], Outcome{Phase: PhaseFailed, Err: "proxy unreachable"}); err != nil {
		t.Fatal(err)
	}
	if err := r.Close(); err != nil { // the crash: nothing else is written
		t.Fatal(err)
	}

	r2, err := Open(path, WithClock(fixedClock()))
	if err != nil {
		t.Fatal(err)
	}
	defer r2.Close()
	open, err := r2.JournalOpen(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want := steps[1]
	want.Seq = seqs[1]
	want.Phase = PhaseIntent
	want.Started = fixedClock()()
	want.Data = json.RawMessage(`{"container":"mcq.mcq.b"}`)
	if len(open) != 1 || !reflect.DeepEqual(open[0], want) {
		t.Fatalf("JournalOpen = %+v\nwant [%+v]", open, want)
	}

	all, err := r2.Journal(ctx)
	if err != nil {
		t.Fatal(err)
	}
	phases := map[uint64]Phase{}
	for _, e := range all {
		phases[e.Seq] = e.Phase
	}
	wantPhases := map[uint64]Phase{seqs[0]: PhaseDone, seqs[1]: PhaseIntent, seqs[2]: PhaseFailed}
	if !reflect.DeepEqual(phases, wantPhases) {
		t.Errorf("phases %v, want %v", phases, wantPhases)
	}
	if all[0].Data == nil || string(all[0].Data) != string(port) {
		t.Errorf("data of finished entry %s", all[0].Data)
	}
	if all[2].Error != "proxy unreachable" || all[2].Finished.IsZero() {
		t.Errorf("failed entry %+v", all[2])
	}

	// Recovery undoes the step; nothing is open any more.
	if err := r2.JournalFinish(ctx, seqs[1], Outcome{Phase: PhaseUndone}); err != nil {
		t.Fatal(err)
	}
	if open, _ := r2.JournalOpen(ctx); len(open) != 0 {
		t.Errorf("still open after undo: %+v", open)
	}
	// Sequence numbers keep growing across restarts.
	seq, err := r2.JournalBegin(ctx, Entry{StepID: "next"})
	if err != nil || seq <= seqs[2] {
		t.Errorf("seq after reopen %d (last %d), %v", seq, seqs[2], err)
	}
}

func TestJournalFinishErrors(t *testing.T) {
	ctx := context.Background()
	r, _ := openTemp(t)
	seq, err := r.JournalBegin(ctx, Entry{StepID: "s"})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		seq  uint64
		o    Outcome
		is   error
	}{
		{"intent is not an outcome", seq, Outcome{Phase: PhaseIntent}, nil},
		{"empty phase", seq, Outcome{}, nil},
		{"unknown seq", seq + 100, Outcome{Phase: PhaseDone}, ErrNotFound},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := r.JournalFinish(ctx, tc.seq, tc.o)
			if err == nil {
				t.Fatal("no error")
			}
			if tc.is != nil && !errors.Is(err, tc.is) {
				t.Errorf("err = %v, want %v", err, tc.is)
			}
		})
	}
}

// The journal is trimmed to the bound, oldest finished first; open entries
// are never trimmed.
func TestJournalBounded(t *testing.T) {
	ctx := context.Background()
	r, _ := openTemp(t, WithJournalKeep(3))
	first, err := r.JournalBegin(ctx, Entry{StepID: "stays open"})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 10 {
		seq, err := r.JournalBegin(ctx, Entry{StepID: "step", Slot: i % 2})
		if err != nil {
			t.Fatal(err)
		}
		if err := r.JournalFinish(ctx, seq, Outcome{Phase: PhaseDone}); err != nil {
			t.Fatal(err)
		}
	}
	all, err := r.Journal(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != 3 || all[0].Seq != first || all[0].Phase != PhaseIntent {
		t.Fatalf("journal kept %d entries (first %+v), want the open one + 2 finished", len(all), all[0])
	}
	if all[1].Seq != first+9 || all[2].Seq != first+10 {
		t.Errorf("kept seqs %d, %d; want the newest %d, %d", all[1].Seq, all[2].Seq, first+9, first+10)
	}

	if err := r.JournalClearFinished(ctx); err != nil {
		t.Fatal(err)
	}
	all, _ = r.Journal(ctx)
	if len(all) != 1 || all[0].Seq != first {
		t.Fatalf("after ClearFinished: %+v", all)
	}
	for range 2 { // idempotent
		if err := r.JournalClear(ctx, first); err != nil {
			t.Fatal(err)
		}
	}
	if all, _ := r.Journal(ctx); len(all) != 0 {
		t.Fatalf("after Clear: %+v", all)
	}
}
