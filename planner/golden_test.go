package planner

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"testing"

	"metacircular.net/mcp/registry"
	"metacircular.net/mcp/spec"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/")

// golden compares got with testdata/<name>, or rewrites it with -update.
func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./planner -run Golden -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from the golden file (run with -update if the change is intended)\n--- got:\n%s", path, got)
	}
}

func without(svcs []spec.Service, name string) []spec.Service {
	var out []spec.Service
	for _, s := range svcs {
		if s.Name != name {
			out = append(out, s)
		}
	}
	return out
}

// olderState is a node running older versions of some services: metacrypt
// at v1.2.0 (whose web UI also had another API address), mcq before it got
// its admin route, mcr and mcns as desired, and mcat, since removed from
// the repo. site has never been deployed.
func olderState() registry.Snapshot { return olderStateWith(allFeatures) }

// olderStateWith is olderState as recorded by an agent managing features f.
func olderStateWith(f Features) registry.Snapshot {
	old := metacrypt("v1.2.0")
	old.Components[1].Env[0].Value = "https://metacrypt.svc.mcp.example.org:9443"
	oldMcq := mcq("v0.3.1")
	oldMcq.Components[0].Cmd = []string{"server"}
	oldMcq.Components[0].Routes[0].Port = 443
	mcat := service("mcat", spec.TierWorker, comp("mcat", "mcat", "mcat", "v0.9.0",
		route("", 8443, spec.ModeL7, svcHost("mcat"), true)))
	return appliedWith(f, old, oldMcq, mcr("v1.0.1"), mcns("v1.1.0"), mcat)
}

// newerMcq adds a named admin route next to the existing one.
func newerMcq() spec.Service {
	s := mcq("v0.3.2")
	c := &s.Components[0]
	c.Routes = []spec.Route{
		route("", 8443, spec.ModeL7, svcHost("mcq"), false),
		route("admin", 9443, spec.ModeL4, svcHost("mcq"), false),
	}
	return s
}

func brokenDiagnostics(name string) spec.Diagnostics {
	f := "services/" + name + ".toml"
	return spec.Diagnostics{
		{File: f, Path: "components[0].image", Message: `"mcr.svc.mcp.example.org:8443/` + name + `:latest" uses the :latest tag; pin a version`, Service: name},
		{File: f, Path: "components[0].routes[0].port", Message: "70000 is outside 1-65535", Service: name},
	}
}

func TestGolden(t *testing.T) {
	inactiveMcq := mcq("v0.3.2")
	inactiveMcq.Active = false
	updated := append(without(fixtures(), "mcq"), newerMcq())

	cases := []struct {
		name string
		in   Input
		json bool
	}{
		{"create_all", Input{Desired: fixtures(), Features: allFeatures}, true},
		{"create_features_off", Input{Desired: fixtures()}, false},
		{"update", Input{Desired: updated, Actual: olderState(), Features: allFeatures}, true},
		{"update_features_off", Input{Desired: updated, Actual: olderStateWith(Features{})}, false},
		// A node that starts managing routes, certificates and records
		// creates them for services deployed before, unchanged ones too.
		{"features_turned_on", Input{Desired: updated, Actual: olderStateWith(Features{}), Features: allFeatures}, false},
		{"invalid", Input{
			Desired: without(updated, "mcq"),
			Invalid: []spec.Invalid{
				{Name: "mcq", File: "services/mcq.toml", Node: testNode, Diagnostics: brokenDiagnostics("mcq")},
				{Name: "newsvc", File: "services/newsvc.toml", Diagnostics: brokenDiagnostics("newsvc")},
			},
			Actual: olderState(), Features: allFeatures,
		}, true},
		{"remove_all_refused", Input{Actual: applied(fixtures()...), Features: allFeatures}, true},
		{"remove_all_allowed", Input{Actual: applied(fixtures()...), Features: allFeatures, AllowRemoveAll: true}, false},
		{"inactive", Input{
			Desired: append(without(fixtures(), "mcq"), inactiveMcq),
			Actual:  applied(fixtures()...), Features: allFeatures,
		}, false},
		{"reactivate", Input{
			Desired: fixtures(),
			Actual:  applied(append(without(fixtures(), "mcq"), inactiveMcq)...), Features: allFeatures,
		}, false},
		{"noop", Input{Desired: fixtures(), Actual: applied(fixtures()...), Features: allFeatures}, true},
		// strategy = "replace" everywhere: every update in place, in the
		// active slot (the behaviour before blue-green).
		{"update_replace", Input{Desired: withStrategy(updated, spec.StrategyReplace), Actual: olderState(), Features: allFeatures}, false},
		// A fresh node with three dependent services: mcr (core) waits
		// for nothing, mcq after mcr, site after mcq and mcr.
		{"after", Input{Desired: []spec.Service{
			withAfter(site("v2.0.0"), "mcq", "mcr"), withAfter(mcq("v0.3.2"), "mcr"), mcr("v1.0.1"),
		}, Features: allFeatures}, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tc.in.Node, tc.in.Domain = testNode, testDomain
			tc.in.Actual.Node = testNode
			p := Compute(tc.in)
			var text bytes.Buffer
			if err := Render(&text, p, WithDependencies()); err != nil {
				t.Fatal(err)
			}
			golden(t, tc.name+".golden", text.Bytes())
			if tc.json {
				var js bytes.Buffer
				if err := WriteJSON(&js, p); err != nil {
					t.Fatal(err)
				}
				golden(t, tc.name+".json.golden", js.Bytes())
			}
		})
	}
}

func withStrategy(svcs []spec.Service, strategy string) []spec.Service {
	out := make([]spec.Service, len(svcs))
	for i, s := range svcs {
		s.Strategy = strategy
		out[i] = s
	}
	return out
}

func withAfter(s spec.Service, deps ...string) spec.Service {
	s.After = deps
	return s
}
