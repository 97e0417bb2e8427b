package planner

import (
	"slices"
	"testing"

	"metacircular.net/mcp/registry"
	"metacircular.net/mcp/spec"
)

func TestInputForSplitsNodes(t *testing.T) {
	repo, err := spec.LoadDir("../examples")
	if err != nil {
		t.Fatal(err)
	}
	in := InputFor(repo, "rift", registry.Snapshot{}, Features{}, false)
	if in.Domain != repo.Platform.Domain || in.Node != "rift" {
		t.Fatalf("domain %q node %q", in.Domain, in.Node)
	}
	for _, s := range in.Desired {
		if s.Node != "rift" {
			t.Errorf("%s (node %s) is desired on rift", s.Name, s.Node)
		}
		if slices.Contains(in.Elsewhere, s.Name) {
			t.Errorf("%s is both desired here and elsewhere", s.Name)
		}
	}
	if !slices.Contains(in.Elsewhere, "mcdoc") {
		t.Errorf("mcdoc lives on orion and should be listed elsewhere: %v", in.Elsewhere)
	}
}
