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

// A version quarantined with RevertTo (it crash-looped after its rollout)
// plans the way back to the version it replaced, and once that one is
// deployed (its Previous is now the bad one) leaves the service as it is.
func TestHoldQuarantinedRevertsToPrevious(t *testing.T) {
	v1 := spec.Service{Name: "web", Node: "n1", Active: true, Components: []spec.Component{{Name: "web", Image: "r/web:v1"}}}
	v2 := v1
	v2.Components = []spec.Component{{Name: "web", Image: "r/web:v2"}}
	h1, h2 := spec.Hash(v1), spec.Hash(v2)
	version := func(s spec.Service) *registry.Version {
		return &registry.Version{Spec: s, SpecHash: spec.Hash(s), Commit: "c"}
	}
	for _, tc := range []struct {
		name     string
		deployed registry.Deployed
		q        registry.Quarantine
		want     string // the spec hash planned for web
	}{
		{"v2 crash-loops: back to v1",
			registry.Deployed{Spec: v2, SpecHash: h2, Previous: version(v1)},
			registry.Quarantine{Service: "web", SpecHash: h2, RevertTo: h1}, h1},
		{"v1 is back: left as it is",
			registry.Deployed{Spec: v1, SpecHash: h1, Previous: version(v2)},
			registry.Quarantine{Service: "web", SpecHash: h2, RevertTo: h1}, h1},
		{"no revert asked: kept as deployed",
			registry.Deployed{Spec: v2, SpecHash: h2, Previous: version(v1)},
			registry.Quarantine{Service: "web", SpecHash: h2}, h2},
		{"the previous is not the one named: kept as deployed",
			registry.Deployed{Spec: v2, SpecHash: h2, Previous: version(v2)},
			registry.Quarantine{Service: "web", SpecHash: h2, RevertTo: h1}, h2},
		{"nothing before it: kept as deployed",
			registry.Deployed{Spec: v2, SpecHash: h2},
			registry.Quarantine{Service: "web", SpecHash: h2, RevertTo: h1}, h2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := Input{Node: "n1", Desired: []spec.Service{v2},
				Actual: registry.Snapshot{Node: "n1", Services: map[string]registry.Deployed{"web": tc.deployed}}}
			if held := HoldQuarantined(&in, []registry.Quarantine{tc.q}); len(held) != 1 {
				t.Fatalf("held %v", held)
			}
			if len(in.Desired) != 1 || spec.Hash(in.Desired[0]) != tc.want {
				t.Fatalf("desired %+v, want the version %s", in.Desired, tc.want)
			}
			p := Compute(in)
			if changes := len(p.Steps) > 0; changes != (tc.want != tc.deployed.SpecHash) {
				t.Fatalf("plan has %d steps; want steps only when going back", len(p.Steps))
			}
		})
	}
}
