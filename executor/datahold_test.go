package executor

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"metacircular.net/mcp/planner"
	"metacircular.net/mcp/registry"
	"metacircular.net/mcp/spec"
)

// The /srv hold applies only to an active service, not deployed here, that
// starts a container, whose /srv/<service> is missing under the host root
// and whose definition named another node before.
func TestHoldForData(t *testing.T) {
	root := t.TempDir()
	if err := os.MkdirAll(filepath.Join(root, "srv", "present"), 0o750); err != nil {
		t.Fatal(err)
	}
	create := []planner.Step{
		{Kind: planner.KindPort, Action: planner.ActionCreate},
		{Kind: planner.KindContainer, Action: planner.ActionCreate},
	}
	removeOnly := []planner.Step{{Kind: planner.KindContainer, Action: planner.ActionRemove}}
	svc := func(name string, edit func(*spec.Service)) *spec.Service {
		s := &spec.Service{Name: name, Node: "n2", Active: true}
		if edit != nil {
			edit(s)
		}
		return s
	}
	elsewhere := func(_ context.Context, s spec.Service, commit string) (string, error) {
		if commit != "c1" {
			t.Errorf("asked about commit %q", commit)
		}
		return "n1", nil
	}
	never := func(context.Context, spec.Service, string) (string, error) { return "", nil }
	broken := func(context.Context, spec.Service, string) (string, error) {
		return "", errors.New("history unreadable")
	}
	tests := []struct {
		name     string
		origin   DataOrigin
		desired  *spec.Service
		deployed bool
		steps    []planner.Step
		want     string // "" no hold; "error" a failed check; else a substring of Waiting
	}{
		{"moved here, no data: held", elsewhere, svc("db", nil), false, create, "/srv/db to exist on this node (it ran on node n1 before"},
		{"the hold is off without the origin hook", nil, svc("db", nil), false, create, ""},
		{"data moved: deployed", elsewhere, svc("present", nil), false, create, ""},
		{"a service new to the platform starts empty", never, svc("db", nil), false, create, ""},
		{"may_start_empty", elsewhere, svc("db", func(s *spec.Service) { s.MayStartEmpty = true }), false, create, ""},
		{"already deployed here", elsewhere, svc("db", nil), true, create, ""},
		{"inactive: nothing starts", elsewhere, svc("db", func(s *spec.Service) { s.Active = false }), false, create, ""},
		{"no container step", elsewhere, svc("db", nil), false, removeOnly, ""},
		{"removal", elsewhere, nil, true, removeOnly, ""},
		{"history unreadable: a failure, not a start", broken, svc("db", nil), false, create, "error"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := &Executor{hostRoot: root, dataOrigin: tt.origin}
			r := &serviceRun{e: e, commit: "c1", desired: tt.desired}
			if tt.deployed {
				r.deployed = registry.Deployed{Spec: spec.Service{Name: "db"}}
			}
			got, err := e.holdForData(context.Background(), r, tt.steps)
			switch {
			case tt.want == "error":
				if err == nil || !strings.Contains(err.Error(), "history unreadable") {
					t.Fatalf("= %q, %v; want the origin's error", got, err)
				}
			case err != nil:
				t.Fatalf("unexpected error %v", err)
			case tt.want == "" && got != "":
				t.Fatalf("held: %q", got)
			case !strings.Contains(got, tt.want):
				t.Fatalf("waiting = %q, want it to contain %q", got, tt.want)
			}
		})
	}
	if got := WaitingForData("db", "n1"); !strings.Contains(got, "may_start_empty = true in services/db.toml") {
		t.Errorf("the message does not name the way out: %q", got)
	}
}
