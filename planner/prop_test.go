package planner

import (
	"bytes"
	"encoding/json"
	"math/rand/v2"
	"strings"
	"testing"

	"metacircular.net/mcp/registry"
	"metacircular.net/mcp/spec"
)

// gen builds random but well-formed inputs: names, route keys and images
// come from small pools so that desired and actual states overlap a lot
// (updates, moves between services, shared hostnames), which is where a
// planner goes wrong.
type gen struct{ r *rand.Rand }

var (
	genServices = []string{"alpha", "beta", "gamma", "delta", "eps", "zeta", "eta", "theta"}
	genComps    = []string{"api", "web", "worker"}
	genRoutes   = []string{"", "rest", "grpc", "admin"}
	genTags     = []string{"v1.0.0", "v1.1.0", "v2.0.0"}
	genHosts    = []string{"www.example.org", "shared.svc.mcp.example.org"}
)

func (g gen) pick(ss []string) string { return ss[g.r.IntN(len(ss))] }

func (g gen) service(name string) spec.Service {
	s := service(name, spec.TierWorker)
	if g.r.IntN(3) == 0 {
		s.Tier = spec.TierCore
	}
	s.Active = g.r.IntN(5) != 0
	for _, i := range g.r.Perm(len(genComps))[:1+g.r.IntN(len(genComps))] {
		cn := genComps[i]
		c := comp(name, cn, name+"-"+cn, g.pick(genTags))
		if g.r.IntN(2) == 0 {
			c.Env = []spec.EnvVar{{Name: "MODE", Value: g.pick([]string{"prod", "dev"})}}
		}
		if g.r.IntN(3) == 0 {
			c.Cmd = []string{"serve", g.pick([]string{"--fast", "--slow"})}
		}
		if g.r.IntN(4) == 0 {
			c.User = "1000:1000"
		}
		if g.r.IntN(5) == 0 {
			c.FixedPorts = []int{53 + g.r.IntN(2)}
		}
		keys := g.r.Perm(len(genRoutes))[:g.r.IntN(len(genRoutes))]
		for _, k := range keys {
			host := svcHost(name)
			if g.r.IntN(4) == 0 {
				host = g.pick(genHosts)
			}
			mode := spec.ModeL4
			if g.r.IntN(2) == 0 {
				mode = spec.ModeL7
			}
			c.Routes = append(c.Routes, route(genRoutes[k], []int{443, 8443, 9443}[g.r.IntN(3)], mode, host, len(keys) == 1))
		}
		s.Components = append(s.Components, c)
	}
	return s
}

// services returns a random subset of the service pool.
func (g gen) services() []spec.Service {
	var out []spec.Service
	for _, name := range genServices {
		if g.r.IntN(3) != 0 {
			out = append(out, g.service(name))
		}
	}
	return out
}

// input is a random desired state planned against the state left by
// applying another random desired state, with some damage: leases lost,
// stray leases, components moved to slot B.
func (g gen) input() Input {
	in := Input{Node: testNode, Domain: testDomain, AllowRemoveAll: true,
		Features: Features{Routes: g.r.IntN(4) != 0, Certs: g.r.IntN(4) != 0, Records: g.r.IntN(4) != 0, Health: g.r.IntN(2) == 0}}
	prev := Input{Node: testNode, Domain: testDomain, Desired: g.services(), Features: in.Features, AllowRemoveAll: true,
		Actual: registry.Snapshot{Node: testNode}}
	in.Actual = apply(prev, Compute(prev))
	var leases []registry.Lease
	for _, l := range in.Actual.Leases {
		if g.r.IntN(10) != 0 {
			leases = append(leases, l)
		}
	}
	if g.r.IntN(4) == 0 {
		leases = append(leases, registry.Lease{Service: "ghost", Component: "ghost", Route: "default", Port: 9999})
	}
	in.Actual.Leases = leases
	for name, d := range in.Actual.Services {
		if g.r.IntN(6) == 0 && len(d.Spec.Components) > 0 {
			c := d.Spec.Components[0].Name
			cs := d.Components[c]
			cs.ActiveSlot = registry.SlotB
			d.Components[c] = cs
			in.Actual.Services[name] = d
		}
	}
	in.Desired = g.services()
	for _, name := range genServices {
		if g.r.IntN(10) == 0 {
			in.Invalid = append(in.Invalid, spec.Invalid{Name: name, File: "services/" + name + ".toml",
				Diagnostics: spec.Diagnostics{{File: "services/" + name + ".toml", Message: "broken"}}})
		}
	}
	return in
}

// shuffled is in with every order-free slice permuted.
func (g gen) shuffled(in Input) Input {
	out := in
	out.Desired = append([]spec.Service(nil), in.Desired...)
	out.Invalid = append([]spec.Invalid(nil), in.Invalid...)
	out.Actual.Leases = append([]registry.Lease(nil), in.Actual.Leases...)
	g.r.Shuffle(len(out.Desired), func(i, j int) { out.Desired[i], out.Desired[j] = out.Desired[j], out.Desired[i] })
	g.r.Shuffle(len(out.Invalid), func(i, j int) { out.Invalid[i], out.Invalid[j] = out.Invalid[j], out.Invalid[i] })
	g.r.Shuffle(len(out.Actual.Leases), func(i, j int) {
		out.Actual.Leases[i], out.Actual.Leases[j] = out.Actual.Leases[j], out.Actual.Leases[i]
	})
	// A map built in another insertion order iterates differently.
	m := make(map[string]registry.Deployed, len(in.Actual.Services))
	for _, i := range g.r.Perm(len(genServices)) {
		if d, ok := in.Actual.Services[genServices[i]]; ok {
			m[genServices[i]] = d
		}
	}
	out.Actual.Services = m
	return out
}

func encode(t *testing.T, p *Plan) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := WriteJSON(&b, p); err != nil {
		t.Fatal(err)
	}
	if err := Render(&b, p, WithDependencies()); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// propRuns is the number of random inputs per property; -short runs fewer.
func propRuns() int {
	if testing.Short() {
		return 100
	}
	return 400
}

// Every DependsOn names a step of the plan that comes earlier, IDs are
// unique, and a refused plan removes nothing.
func TestPropDependenciesPrecede(t *testing.T) {
	g := gen{rand.New(rand.NewPCG(1, 2))}
	for run := range propRuns() {
		in := g.input()
		in.AllowRemoveAll = g.r.IntN(2) == 0
		p := Compute(in)
		if _, _, r := p.Counts(); p.Refused != "" && r > 0 {
			t.Fatalf("run %d: refused plan removes %d resources", run, r)
		}
		pos := map[string]int{}
		for i, s := range p.Steps {
			if _, dup := pos[s.ID]; dup {
				t.Fatalf("run %d: duplicate step ID %s", run, s.ID)
			}
			pos[s.ID] = i
			if s.Service == "" || s.Action == "" || s.Reason == "" {
				t.Fatalf("run %d: step %s lacks service, action or reason: %+v", run, s.ID, s)
			}
			for _, d := range s.DependsOn {
				j, ok := pos[d]
				if !ok {
					t.Fatalf("run %d: %s depends on %s, which is not earlier in the plan\n%s", run, s.ID, d, encode(t, p))
				}
				if j >= i {
					t.Fatalf("run %d: %s depends on later step %s", run, s.ID, d)
				}
			}
		}
	}
}

// Applying a plan and planning again yields nothing to do.
func TestPropApplyConverges(t *testing.T) {
	g := gen{rand.New(rand.NewPCG(3, 4))}
	for run := range propRuns() {
		in := g.input()
		p := Compute(in)
		next := in
		next.Actual = apply(in, p)
		if p2 := Compute(next); !p2.IsNoOp() {
			var b bytes.Buffer
			_ = Render(&b, p)
			b.WriteString("\n--- after apply:\n")
			_ = Render(&b, p2)
			t.Fatalf("run %d: replanning after apply is not empty:\n%s", run, b.String())
		}
	}
}

// The plan and its hash do not depend on the order of the inputs, and
// planning does not modify its input.
func TestPropDeterministic(t *testing.T) {
	g := gen{rand.New(rand.NewPCG(5, 6))}
	for run := range propRuns() / 2 {
		in := g.input()
		before, _ := json.Marshal(in)
		want := encode(t, Compute(in))
		if after, _ := json.Marshal(in); !bytes.Equal(before, after) {
			t.Fatalf("run %d: Compute modified its input", run)
		}
		for k := range 3 {
			if got := encode(t, Compute(g.shuffled(in))); !bytes.Equal(got, want) {
				t.Fatalf("run %d, permutation %d: plan differs:\n%s\n--- want:\n%s", run, k, got, want)
			}
		}
	}
}

// The hash changes with anything the plan depends on, and not with what is
// decided at apply time.
func TestHashCovers(t *testing.T) {
	base := Input{Node: testNode, Domain: testDomain, Desired: fixtures(), Features: allFeatures,
		Actual: applied(mcq("v0.3.1"), mcr("v1.0.1"))}
	h0 := Compute(base).Hash
	if !strings.HasPrefix(h0, "sha256:") || Hash(base) != h0 {
		t.Fatalf("Hash = %q, Compute(...).Hash = %q", Hash(base), h0)
	}
	changes := map[string]func(in *Input){
		"node":       func(in *Input) { in.Node = "other" },
		"domain":     func(in *Input) { in.Domain = "example.net" },
		"features":   func(in *Input) { in.Features.Health = false },
		"remove all": func(in *Input) { in.AllowRemoveAll = true },
		"desired":    func(in *Input) { in.Desired[0].Components[0].Cmd = nil },
		"invalid":    func(in *Input) { in.Invalid = []spec.Invalid{{Name: "x", File: "services/x.toml"}} },
		"spec hash": func(in *Input) {
			d := in.Actual.Services["mcq"]
			d.SpecHash = "sha256:0"
			in.Actual.Services["mcq"] = d
		},
		"slot":       func(in *Input) { setSlot(in, "mcq", "mcq", registry.SlotB) },
		"lease port": func(in *Input) { in.Actual.Leases[0].Port++ },
		"lease gone": func(in *Input) { in.Actual.Leases = in.Actual.Leases[1:] },
		"digest":     func(in *Input) { setDigest(in, "mcq", "mcq", "sha256:other") },
	}
	for name, change := range changes {
		in := clone(base)
		change(&in)
		if Compute(in).Hash == h0 {
			t.Errorf("%s: hash did not change", name)
		}
	}
	same := map[string]func(in *Input){
		"applied at": func(in *Input) {
			d := in.Actual.Services["mcq"]
			d.AppliedAt = d.AppliedAt.AddDate(1, 0, 0)
			in.Actual.Services["mcq"] = d
		},
		"commit":        func(in *Input) { d := in.Actual.Services["mcq"]; d.Commit = "other"; in.Actual.Services["mcq"] = d },
		"snapshot node": func(in *Input) { in.Actual.Node = "whatever" },
	}
	for name, change := range same {
		in := clone(base)
		change(&in)
		if Compute(in).Hash != h0 {
			t.Errorf("%s: hash changed", name)
		}
	}
}

func clone(in Input) Input {
	b, err := json.Marshal(in)
	if err != nil {
		panic(err)
	}
	var out Input
	if err := json.Unmarshal(b, &out); err != nil {
		panic(err)
	}
	return out
}

func setSlot(in *Input, svc, comp string, slot int) {
	d := in.Actual.Services[svc]
	cs := d.Components[comp]
	cs.ActiveSlot = slot
	d.Components[comp] = cs
	in.Actual.Services[svc] = d
}

func setDigest(in *Input, svc, comp, digest string) {
	d := in.Actual.Services[svc]
	cs := d.Components[comp]
	cs.ImageDigest = digest
	d.Components[comp] = cs
	in.Actual.Services[svc] = d
}
