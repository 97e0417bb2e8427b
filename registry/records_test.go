package registry

import (
	"context"
	"errors"
	"reflect"
	"testing"
	"time"
)

func TestQuarantine(t *testing.T) {
	ctx := context.Background()
	r, path := openTemp(t, WithClock(fixedClock()))
	recs := []Quarantine{
		{Service: "mcq", SpecHash: "h2", Reason: "crash loop", Failures: 5},
		{Service: "mcq", SpecHash: "h1", Reason: "image missing"},
		{Service: "mcq-web", SpecHash: "h9", Reason: "crash loop"},
	}
	for _, q := range recs {
		if err := r.PutQuarantine(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	if err := r.PutQuarantine(ctx, Quarantine{Service: "x"}); err == nil {
		t.Error("quarantine without a spec hash accepted")
	}
	_ = r.Close()

	// Quarantine survives a restart.
	r, err := Open(path, WithClock(fixedClock()))
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	err = r.View(ctx, func(tx *Tx) error {
		q, err := tx.Quarantined("mcq", "h2")
		if err != nil {
			return err
		}
		want := recs[0]
		want.Since = fixedClock()()
		if q != want {
			t.Errorf("Quarantined = %+v, want %+v", q, want)
		}
		if _, err := tx.Quarantined("mcq", "h3"); !errors.Is(err, ErrNotFound) {
			t.Errorf("unknown hash: %v", err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}

	list, err := r.QuarantineList(ctx)
	if err != nil || len(list) != 3 || list[0].SpecHash != "h1" || list[2].Service != "mcq-web" {
		t.Fatalf("list = %+v, %v", list, err)
	}
	if err := r.DeleteQuarantine(ctx, "mcq-web", "h9"); err != nil {
		t.Fatal(err)
	}
	err = r.Update(ctx, func(tx *Tx) error {
		n, err := tx.DeleteServiceQuarantine("mcq")
		if n != 2 {
			t.Errorf("lifted %d, want 2", n)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if list, _ := r.QuarantineList(ctx); len(list) != 0 {
		t.Errorf("left: %+v", list)
	}
}

func TestHistoryBounded(t *testing.T) {
	ctx := context.Background()
	r, _ := openTemp(t, WithHistoryLimit(5), WithClock(fixedClock()))
	for i := range 12 {
		h := HistoryRecord{
			Commit: "c", PlanHash: "p", Result: "ok", Duration: time.Duration(i) * time.Second,
			Services: []ServiceOutcome{{Service: "z", Result: "ok"}, {Service: "a", Result: "failed", Error: "boom"}},
		}
		if _, err := r.AppendHistory(ctx, h); err != nil {
			t.Fatal(err)
		}
	}
	hist, err := r.History(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(hist) != 5 {
		t.Fatalf("kept %d records, want 5", len(hist))
	}
	for i, h := range hist {
		if want := uint64(8 + i); h.Seq != want {
			t.Errorf("record %d seq %d, want %d", i, h.Seq, want)
		}
	}
	last := hist[4]
	if last.Duration != 11*time.Second || !last.Time.Equal(fixedClock()()) || last.Services[0].Service != "a" {
		t.Errorf("last record %+v", last)
	}
}

func TestEventsBoundedAndFollow(t *testing.T) {
	ctx := context.Background()
	r, _ := openTemp(t, WithEventLimit(3))
	kinds := []string{EventDeploy, EventFailure, EventDrift, EventRevert, EventQuarantine}
	for _, k := range kinds {
		if _, err := r.AppendEvent(ctx, Event{Kind: k, Service: "mcq", Message: k + " happened"}); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct {
		after uint64
		want  []string
	}{
		{0, []string{EventDrift, EventRevert, EventQuarantine}},
		{3, []string{EventRevert, EventQuarantine}},
		{5, nil},
	} {
		evs, err := r.Events(ctx, tc.after)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, e := range evs {
			if e.Time.IsZero() {
				t.Errorf("event %d has no time", e.Seq)
			}
			got = append(got, e.Kind)
		}
		if !reflect.DeepEqual(got, tc.want) {
			t.Errorf("Events(%d) = %v, want %v", tc.after, got, tc.want)
		}
	}
}

func TestStores(t *testing.T) {
	ctx := context.Background()
	r, _ := openTemp(t)
	type cert struct {
		Path   string    `json:"path"`
		Expiry time.Time `json:"expiry"`
	}
	c := cert{Path: "/srv/mc-proxy/certs/mcq.pem", Expiry: time.Date(2025, 6, 1, 0, 0, 0, 0, time.UTC)}
	err := r.Update(ctx, func(tx *Tx) error {
		if err := tx.Put(StoreCerts, "mcq", c); err != nil {
			return err
		}
		if err := tx.Put(StoreRecords, "mcq.svc/A/10.0.0.1", map[string]string{"id": "42"}); err != nil {
			return err
		}
		if err := tx.Put(Store("bogus"), "x", 1); err == nil {
			t.Error("unknown store accepted")
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	err = r.Update(ctx, func(tx *Tx) error {
		var got cert
		if err := tx.Get(StoreCerts, "mcq", &got); err != nil || got != c {
			t.Errorf("Get = %+v, %v", got, err)
		}
		if err := tx.Get(StoreRoutes, "mcq", &got); !errors.Is(err, ErrNotFound) {
			t.Errorf("Get missing: %v", err)
		}
		recs, err := tx.List(StoreRecords)
		if err != nil || len(recs) != 1 || string(recs["mcq.svc/A/10.0.0.1"]) != `{"id":"42"}` {
			t.Errorf("List = %v, %v", recs, err)
		}
		return tx.Delete(StoreCerts, "mcq")
	})
	if err != nil {
		t.Fatal(err)
	}
	_ = r.View(ctx, func(tx *Tx) error {
		if all, _ := tx.List(StoreCerts); len(all) != 0 {
			t.Errorf("certs after delete: %v", all)
		}
		return nil
	})
}
