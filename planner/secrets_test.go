package planner

import (
	"bytes"
	"encoding/json"
	"slices"
	"strings"
	"testing"

	"metacircular.net/mcp/registry"
	"metacircular.net/mcp/spec"
)

// withSecret is mcq with DB_PASSWORD=secret:db-password (unbound).
func withSecret(version string) spec.Service {
	return with(mcq(version), func(s *spec.Service) {
		s.Components[0].Env = []spec.EnvVar{{Name: "LOG", Value: "info"}, {Name: "DB_PASSWORD", Secret: "db-password"}}
		// In place, so the diff is of container/a against itself (a
		// blue-green update would also show the new slot's ports).
		s.Strategy = spec.StrategyReplace
	})
}

func nodeSecrets(digests ...string) *spec.NodeSecrets {
	ns := &spec.NodeSecrets{Dir: "/etc/mcp/secrets", Digests: map[string]string{}}
	for i := 0; i+1 < len(digests); i += 2 {
		ns.Digests[digests[i]] = digests[i+1]
	}
	return ns
}

// boundInput is the agent's input: the repo's services with the node's
// digests bound, against actual.
func boundInput(actual registry.Snapshot, ns *spec.NodeSecrets, svcs ...spec.Service) Input {
	in := Input{Node: testNode, Domain: testDomain, Desired: svcs, Actual: actual, Features: allFeatures}
	BindSecrets(&in, ns)
	return in
}

func TestBindSecretsPlans(t *testing.T) {
	const (
		dA = spec.DigestPrefix + "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
		dB = spec.DigestPrefix + "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
	)
	empty := registry.Snapshot{Node: testNode}
	first := boundInput(empty, nodeSecrets("db-password", dA), withSecret("v1"))
	deployed := apply(first, Compute(first))
	noop := Compute(boundInput(deployed, nodeSecrets("db-password", dA), withSecret("v1")))
	if !noop.IsNoOp() {
		t.Fatalf("same digest replans: %v", summary(noop))
	}

	for _, tc := range []struct {
		name    string
		ns      *spec.NodeSecrets
		steps   []string // summary of the plan
		changes []Change // of the container step
		err     string   // the plan's error for mcq
	}{
		{
			name:  "changed value",
			ns:    nodeSecrets("db-password", dB),
			steps: []string{"~ mcq/mcq/container/a", "= mcq/mcq/health/a"},
			changes: []Change{{Field: "env.DB_PASSWORD", Forces: true,
				Old: "secret db-password " + spec.DigestPrefix + "aaaaaaaaaaaaaaaa…",
				New: "secret db-password " + spec.DigestPrefix + "bbbbbbbbbbbbbbbb…"}},
		},
		{
			name: "missing on the node",
			ns:   nodeSecrets("other", dA),
			err:  "services/mcq.toml: components[0].env[1]: DB_PASSWORD: secret db-password not found in /etc/mcp/secrets on this node",
		},
		{
			name: "unusable",
			ns:   &spec.NodeSecrets{Dir: "/etc/mcp/secrets", Errors: map[string]string{"db-password": "mode 0640: readable by group or others"}},
			err:  "services/mcq.toml: components[0].env[1]: DB_PASSWORD: secret db-password in /etc/mcp/secrets cannot be used: mode 0640: readable by group or others",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := boundInput(deployed, tc.ns, withSecret("v1"), mcr("v1.0.0"))
			p := Compute(in)
			same := Compute(boundInput(deployed, nodeSecrets("db-password", dA), withSecret("v1"), mcr("v1.0.0")))
			if p.Hash == same.Hash {
				t.Error("the plan hash did not change with the node's secrets")
			}
			if Hash(in) != p.Hash {
				t.Error("Hash(in) differs from the plan's hash")
			}
			var mcq []string
			for _, s := range summary(p) {
				if strings.Contains(s, " mcq/") {
					mcq = append(mcq, s)
				}
			}
			if !slices.Equal(mcq, tc.steps) {
				t.Errorf("mcq steps %v, want %v", mcq, tc.steps)
			}
			if _, ok := p.Step("mcr/mcr/container/a"); !ok {
				t.Error("the other service was not planned")
			}
			if tc.changes != nil {
				s, _ := p.Step("mcq/mcq/container/a")
				if !slices.Equal(s.Changes, tc.changes) {
					t.Errorf("changes %+v\nwant %+v", s.Changes, tc.changes)
				}
				if s.Reason != "env changed: forces replacement" {
					t.Errorf("reason %q", s.Reason)
				}
			}
			var errs []string
			for _, e := range p.Errors {
				errs = append(errs, e.Diagnostics.Error())
				if e.Service != "mcq" || !e.Deployed {
					t.Errorf("error %+v: want mcq, left as deployed", e)
				}
			}
			if got := strings.Join(errs, "\n"); got != tc.err {
				t.Errorf("errors %q, want %q", got, tc.err)
			}
			// The text and JSON forms show the digest prefix at most.
			var text bytes.Buffer
			if err := Render(&text, p); err != nil {
				t.Fatal(err)
			}
			js, _ := json.Marshal(p)
			for _, out := range []string{text.String(), string(js)} {
				if strings.Contains(out, dA) || strings.Contains(out, dB) {
					t.Errorf("a full digest is in the plan output:\n%s", out)
				}
			}
		})
	}
}

// Without the node's secrets (nil) nothing is bound: the reference shows
// as such, and the service is not made invalid.
func TestBindSecretsUnknown(t *testing.T) {
	in := boundInput(registry.Snapshot{Node: testNode}, nil, withSecret("v1"))
	if len(in.Invalid) != 0 || in.Desired[0].Components[0].Env[1].SecretDigest != "" {
		t.Fatalf("nil secrets changed the input: %+v", in)
	}
	old := withSecret("v0")
	old.Components[0].Env = old.Components[0].Env[:1]
	p := Compute(boundInput(applied(old), nil, withSecret("v0")))
	s, _ := p.Step("mcq/mcq/container/a")
	if len(s.Changes) != 1 || s.Changes[0].New != "secret db-password (digest unknown here)" || s.Changes[0].Old != none {
		t.Errorf("changes %+v", s.Changes)
	}
}
