package api

import (
	"context"
	"errors"
	"testing"
	"time"

	"metacircular.net/mcp/registry"
)

// operatorBackend is a testBackend that also keeps history and quarantine.
type operatorBackend struct {
	*testBackend
	lifted map[string]int
}

func (o *operatorBackend) History(context.Context) ([]registry.HistoryRecord, error) {
	return []registry.HistoryRecord{{Seq: 1, Time: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC), Commit: "c1", Result: "partial",
		Services: []registry.ServiceOutcome{{Service: "web", Result: "failed", Error: "pull: not found", SpecHash: "sha256:x"}}}}, nil
}

func (o *operatorBackend) Retry(_ context.Context, service string) (int, error) {
	return o.lifted[service], nil
}

func TestOperatorRoutes(t *testing.T) {
	ctx := context.Background()
	c, _ := startServer(t, &operatorBackend{testBackend: newTestBackend(t), lifted: map[string]int{"web": 1}})
	h, err := c.History(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(h.Records) != 1 || h.Records[0].Services[0].SpecHash != "sha256:x" {
		t.Fatalf("history = %+v", h)
	}
	for _, tc := range []struct {
		service string
		lifted  int
	}{{"web", 1}, {"other", 0}} {
		res, err := c.Retry(ctx, tc.service)
		if err != nil || res.Lifted != tc.lifted || res.Service != tc.service {
			t.Fatalf("Retry(%s) = %+v, %v", tc.service, res, err)
		}
	}
	if _, err := c.Retry(ctx, "../x"); err == nil {
		t.Fatal("an invalid service name was accepted")
	}

	// A backend without history answers 404, which the client maps to
	// ErrNotFound.
	plain, _ := startServer(t, newTestBackend(t))
	if _, err := plain.History(ctx); !errors.Is(err, ErrNotFound) {
		t.Fatalf("History on a plain backend: %v, want ErrNotFound", err)
	}
}
