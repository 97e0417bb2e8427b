package planner

import (
	"testing"

	"metacircular.net/mcp/registry"
	"metacircular.net/mcp/spec"
)

func TestHoldQuarantined(t *testing.T) {
	deployed := spec.Service{Name: "web", Node: "n1", Active: true, Components: []spec.Component{{Name: "web", Image: "r/web:v1"}}}
	next := deployed
	next.Components = []spec.Component{{Name: "web", Image: "r/web:v2"}}
	fresh := spec.Service{Name: "new", Node: "n1", Active: true, Components: []spec.Component{{Name: "new", Image: "r/new:v1"}}}
	other := spec.Service{Name: "other", Node: "n1", Active: true, Components: []spec.Component{{Name: "other", Image: "r/o:v1"}}}
	actual := registry.Snapshot{Node: "n1", Services: map[string]registry.Deployed{"web": {Spec: deployed, SpecHash: spec.Hash(deployed)}}}
	in := Input{Node: "n1", Desired: []spec.Service{next, fresh, other}, Actual: actual}
	q := []registry.Quarantine{
		{Service: "web", SpecHash: spec.Hash(next)},
		{Service: "new", SpecHash: spec.Hash(fresh)},
		{Service: "other", SpecHash: "sha256:an-older-definition"},
	}
	held := HoldQuarantined(&in, q)
	if len(held) != 2 || held[0] != "web" || held[1] != "new" {
		t.Fatalf("held = %v", held)
	}
	if len(in.Desired) != 2 || spec.Hash(in.Desired[0]) != spec.Hash(deployed) || in.Desired[1].Name != "other" {
		t.Fatalf("desired = %+v", in.Desired)
	}
	p := Compute(in)
	for _, s := range p.Steps {
		if s.Service == "web" || s.Service == "new" {
			t.Fatalf("plan touches a quarantined service: %+v", s)
		}
	}
}
