package planner

import (
	"bytes"
	"slices"
	"strings"
	"testing"

	"metacircular.net/mcp/registry"
	"metacircular.net/mcp/spec"
)

// summary lists a plan's steps as "<symbol> <id>" in order.
func summary(p *Plan) []string {
	out := make([]string, len(p.Steps))
	for i, s := range p.Steps {
		out[i] = symbols[s.Action] + " " + s.ID
	}
	return out
}

func plan(desired []spec.Service, actual registry.Snapshot, mod ...func(*Input)) *Plan {
	in := Input{Node: testNode, Domain: testDomain, Desired: desired, Actual: actual, Features: allFeatures}
	for _, m := range mod {
		m(&in)
	}
	return Compute(in)
}

func with(s spec.Service, f func(*spec.Service)) spec.Service {
	f(&s)
	return s
}

func TestCompute(t *testing.T) {
	noFeatures := func(in *Input) { in.Features = Features{} }
	// replace declares strategy = "replace" on every desired service:
	// updates happen in place, in the active slot.
	replace := func(in *Input) {
		for i := range in.Desired {
			in.Desired[i].Strategy = spec.StrategyReplace
		}
	}
	noRoutes := func(in *Input) { in.Features.Routes = false }
	lostLease := applied(mcq("v0.3.2"))
	lostLease.Leases = nil
	slotB := applied(mcq("v0.3.1"))
	{
		d := slotB.Services["mcq"]
		d.Components["mcq"] = registry.ComponentState{ActiveSlot: registry.SlotB}
		slotB.Services["mcq"] = d
		slotB.Leases = append(slotB.Leases, registry.Lease{Service: "mcq", Component: "mcq", Route: "default", Slot: registry.SlotB, Port: 10100})
	}
	orphan := applied(mcr("v1.0.1"))
	orphan.Leases = append(orphan.Leases, registry.Lease{Service: "ghost", Component: "ghost", Route: "default", Port: 10500})

	cases := []struct {
		name    string
		plan    *Plan
		want    []string // the whole plan, in order
		reasons map[string]string
	}{
		{
			name:    "new service, features off: leases, image, container only",
			plan:    plan([]spec.Service{mcq("v0.3.2")}, registry.Snapshot{}, noFeatures),
			want:    []string{"+ mcq/mcq/port/default/a", "+ mcq/mcq/image", "+ mcq/mcq/container/a"},
			reasons: map[string]string{"mcq/mcq/container/a": "new service"},
		},
		{
			name: "replace: image pulled, container replaced, health waited, route untouched",
			plan: plan([]spec.Service{mcq("v0.3.2")}, applied(mcq("v0.3.1")), replace),
			want: []string{"~ mcq/mcq/image", "~ mcq/mcq/container/a", "= mcq/mcq/health/a"},
			reasons: map[string]string{
				"mcq/mcq/image":       "image v0.3.1 → v0.3.2",
				"mcq/mcq/container/a": "image v0.3.1 → v0.3.2 forces replacement",
			},
		},
		{
			name: "replace, env change: container only",
			plan: plan([]spec.Service{with(mcq("v0.3.2"), func(s *spec.Service) {
				s.Components[0].Env = []spec.EnvVar{{Name: "LOG", Value: "debug"}}
			})}, applied(mcq("v0.3.2")), replace),
			want:    []string{"~ mcq/mcq/container/a", "= mcq/mcq/health/a"},
			reasons: map[string]string{"mcq/mcq/container/a": "env changed: forces replacement"},
		},
		{
			name: "listener change: route only",
			plan: plan([]spec.Service{with(mcq("v0.3.2"), func(s *spec.Service) {
				s.Components[0].Routes[0].Port = 9443
			})}, applied(mcq("v0.3.2"))),
			want:    []string{"~ mcq/mcq/route/default"},
			reasons: map[string]string{"mcq/mcq/route/default": "listener 8443 → 9443"},
		},
		{
			name: "hostname change: new certificate and record first, old ones after the route moved",
			plan: plan([]spec.Service{with(mcq("v0.3.2"), func(s *spec.Service) {
				s.Components[0].Routes[0].Hostname = "queue.svc.mcp.example.org"
			})}, applied(mcq("v0.3.2"))),
			want: []string{
				"- mcq/record/mcq.svc.mcp.example.org",
				"+ mcq/cert/queue.svc.mcp.example.org",
				"~ mcq/mcq/route/default",
				"- mcq/cert/mcq.svc.mcp.example.org",
				"+ mcq/record/queue.svc.mcp.example.org",
			},
		},
		{
			name: "replace, route removed: route first, container replaced without its port, then the lease released",
			plan: plan([]spec.Service{mcq("v0.3.2")}, applied(newerMcq()), replace),
			want: []string{
				"- mcq/mcq/route/admin",
				"~ mcq/cert/mcq.svc.mcp.example.org",
				"~ mcq/mcq/container/a",
				"- mcq/mcq/port/admin/a",
				"= mcq/mcq/health/a",
			},
			reasons: map[string]string{"mcq/mcq/port/admin/a": `route "admin" removed from the definition`},
		},
		{
			name: "service removed: reverse dependency order",
			plan: plan([]spec.Service{mcr("v1.0.1")}, applied(mcr("v1.0.1"), mcq("v0.3.2"))),
			want: []string{
				"- mcq/record/mcq.svc.mcp.example.org",
				"- mcq/mcq/route/default",
				"- mcq/mcq/container/a",
				"- mcq/cert/mcq.svc.mcp.example.org",
				"- mcq/mcq/image",
				"- mcq/mcq/port/default/a",
			},
			reasons: map[string]string{"mcq/mcq/image": "service file removed"},
		},
		{
			name: "active = false keeps leases and image",
			plan: plan([]spec.Service{with(mcq("v0.3.2"), func(s *spec.Service) { s.Active = false })}, applied(mcq("v0.3.2"))),
			want: []string{
				"- mcq/record/mcq.svc.mcp.example.org",
				"- mcq/mcq/route/default",
				"- mcq/mcq/container/a",
				"- mcq/cert/mcq.svc.mcp.example.org",
			},
			reasons: map[string]string{"mcq/mcq/container/a": reasonDeactivate},
		},
		{
			name:    "replace, lost lease: leased again, container gets the new port",
			plan:    plan([]spec.Service{mcq("v0.3.2")}, lostLease, replace),
			want:    []string{"+ mcq/mcq/port/default/a", "~ mcq/mcq/container/a", "= mcq/mcq/health/a"},
			reasons: map[string]string{"mcq/mcq/port/default/a": "port lease missing from the registry"},
		},
		{
			name: "replace, active slot b: IDs follow the slot, the a lease of the pair is kept",
			plan: plan([]spec.Service{mcq("v0.3.2")}, slotB, replace),
			want: []string{"~ mcq/mcq/image", "~ mcq/mcq/container/b", "= mcq/mcq/health/b"},
		},
		{
			name: "blue-green (the default when routed): new slot, healthy, routes switched, old slot removed",
			plan: plan([]spec.Service{mcq("v0.3.2")}, applied(mcq("v0.3.1"))),
			want: []string{
				"+ mcq/mcq/port/default/b",
				"~ mcq/mcq/image",
				"+ mcq/mcq/container/b",
				"= mcq/mcq/health/b",
				"~ mcq/mcq/route/default",
				"- mcq/mcq/container/a",
			},
			reasons: map[string]string{
				"mcq/mcq/port/default/b": "blue-green: the new version's port, next to the running one",
				"mcq/mcq/container/b":    "blue-green: image v0.3.1 → v0.3.2; the new version starts in slot b next to slot a",
				"mcq/mcq/route/default":  "blue-green: traffic moves from slot a to slot b",
				"mcq/mcq/container/a":    "blue-green: slot a stops once the service serves from slot b (drained first)",
			},
		},
		{
			name: "blue-green from slot b goes back to a, whose lease of the pair was kept",
			plan: plan([]spec.Service{mcq("v0.3.2")}, slotB),
			want: []string{"~ mcq/mcq/image", "+ mcq/mcq/container/a", "= mcq/mcq/health/a", "~ mcq/mcq/route/default", "- mcq/mcq/container/b"},
		},
		{
			name: "blue-green, route listener and image change together: one route step does both",
			plan: plan([]spec.Service{with(mcq("v0.3.2"), func(s *spec.Service) {
				s.Components[0].Routes[0].Port = 9443
			})}, applied(mcq("v0.3.1"))),
			want: []string{
				"+ mcq/mcq/port/default/b",
				"~ mcq/mcq/image",
				"+ mcq/mcq/container/b",
				"= mcq/mcq/health/b",
				"~ mcq/mcq/route/default",
				"- mcq/mcq/container/a",
			},
			reasons: map[string]string{"mcq/mcq/route/default": "listener 8443 → 9443, blue-green: traffic moves from slot a to slot b"},
		},
		{
			name: "blue-green without a proxy on the node: replace, ports stay",
			plan: plan([]spec.Service{mcq("v0.3.2")}, appliedWith(Features{Health: true}, mcq("v0.3.1")), noRoutes,
				func(in *Input) { in.Features.Certs, in.Features.Records = false, false }),
			want: []string{"~ mcq/mcq/image", "~ mcq/mcq/container/a", "= mcq/mcq/health/a"},
		},
		{
			name: "a listener change alone moves nothing",
			plan: plan([]spec.Service{with(mcq("v0.3.2"), func(s *spec.Service) {
				s.Components[0].Routes[0].Port = 9443
			})}, applied(mcq("v0.3.2"))),
			want: []string{"~ mcq/mcq/route/default"},
		},
		{
			name: "after: a new service waits for the health of the services it names",
			plan: plan([]spec.Service{with(mcq("v1"), func(s *spec.Service) { s.After = []string{"mcr"}; s.Tier = spec.TierCore }),
				mcr("v1")}, registry.Snapshot{}, noFeatures, func(in *Input) { in.Features.Health = true }),
			want: []string{
				"+ mcr/mcr/port/default/a", "+ mcr/mcr/image", "+ mcr/mcr/container/a", "= mcr/mcr/health/a",
				"+ mcq/mcq/port/default/a", "+ mcq/mcq/image", "+ mcq/mcq/container/a", "= mcq/mcq/health/a",
			},
		},
		{
			name:    "stray lease of an unknown service is released",
			plan:    plan([]spec.Service{mcr("v1.0.1")}, orphan),
			want:    []string{"- ghost/ghost/port/default/a"},
			reasons: map[string]string{"ghost/ghost/port/default/a": reasonOrphan},
		},
		{
			name: "fixed port added",
			plan: plan([]spec.Service{with(mcns("v1.1.0"), func(s *spec.Service) {
				s.Components[0].FixedPorts = []int{53, 853}
			})}, appliedWith(Features{}, mcns("v1.1.0")), noFeatures),
			want: []string{"+ mcns/mcns/port/fixed:853/a"},
		},
		{
			name: "tiers: core services before workers",
			plan: plan([]spec.Service{mcq("v1"), mcr("v1")}, registry.Snapshot{}, noFeatures),
			want: []string{
				"+ mcr/mcr/port/default/a", "+ mcr/mcr/image", "+ mcr/mcr/container/a",
				"+ mcq/mcq/port/default/a", "+ mcq/mcq/image", "+ mcq/mcq/container/a",
			},
		},
		{
			name: "hostname shared with another service: its record and certificate stay",
			plan: plan([]spec.Service{with(mcr("v1.0.1"), func(s *spec.Service) {
				s.Components[0].Routes[0].Hostname = svcHost("mcq")
			})}, applied(mcr("v1.0.1"), mcq("v0.3.2")), func(in *Input) { in.AllowRemoveAll = true }),
			// mcq goes away first (removed services lead), without its
			// record and certificate; mcr takes the route over after mcq's
			// is gone.
			want: []string{
				"- mcq/mcq/route/default",
				"- mcq/mcq/container/a",
				"- mcq/mcq/image",
				"- mcq/mcq/port/default/a",
				"- mcr/record/mcr.svc.mcp.example.org",
				"- mcr/cert/mcr.svc.mcp.example.org",
				"+ mcr/cert/mcq.svc.mcp.example.org",
				"~ mcr/mcr/route/default",
				"+ mcr/record/mcq.svc.mcp.example.org",
			},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := summary(tc.plan)
			if !slices.Equal(got, tc.want) {
				t.Errorf("steps:\n  %s\nwant:\n  %s", strings.Join(got, "\n  "), strings.Join(tc.want, "\n  "))
			}
			for id, want := range tc.reasons {
				s, ok := tc.plan.Step(id)
				if !ok || s.Reason != want {
					t.Errorf("%s: reason %q, want %q", id, s.Reason, want)
				}
			}
		})
	}
}

func TestContainerChanges(t *testing.T) {
	old := mcq("v0.3.1")
	nw := with(mcq("v0.3.2"), func(s *spec.Service) {
		c := &s.Components[0]
		c.Cmd = nil
		c.User = "1000:1000"
		c.Restart = spec.RestartAlways
		c.Volumes = append(c.Volumes, spec.Volume{Host: "/srv/mcq/certs", Container: "/certs", ReadOnly: true})
		c.Env = []spec.EnvVar{{Name: "LOG", Value: "debug"}}
	})
	nw.Strategy = spec.StrategyReplace
	p := plan([]spec.Service{nw}, applied(old))
	s, _ := p.Step("mcq/mcq/container/a")
	var fields []string
	for _, c := range s.Changes {
		if !c.Forces {
			t.Errorf("%s does not force replacement", c.Field)
		}
		fields = append(fields, c.Field)
	}
	want := []string{"image", "cmd", "env.LOG", "volumes", "user", "restart"}
	if !slices.Equal(fields, want) {
		t.Errorf("fields %v, want %v", fields, want)
	}
	if got := s.Changes[2]; got.Old != none || got.New != `"debug"` {
		t.Errorf("env.LOG: %q → %q", got.Old, got.New)
	}
}

func TestInvalidServiceLeftAsDeployed(t *testing.T) {
	inv := []spec.Invalid{{Name: "mcq", File: "services/mcq.toml", Diagnostics: brokenDiagnostics("mcq")}}
	p := plan([]spec.Service{mcr("v1.0.2")}, applied(mcq("v0.3.1"), mcr("v1.0.1")),
		func(in *Input) { in.Invalid = inv })
	for _, s := range p.Steps {
		if s.Service == "mcq" {
			t.Errorf("step for the invalid service: %s", s.ID)
		}
	}
	if _, ok := p.Step("mcr/mcr/container/a"); !ok {
		t.Error("the valid service was not planned")
	}
	if len(p.Errors) != 1 || !p.Errors[0].Deployed || p.Errors[0].Service != "mcq" {
		t.Errorf("errors: %+v", p.Errors)
	}
	// Only invalid services left: nothing is removed, and that is not the
	// remove-all case either.
	p = plan(nil, applied(mcq("v0.3.1")), func(in *Input) { in.Invalid = inv })
	if !p.IsNoOp() || p.Refused != "" {
		t.Errorf("steps %v, refused %q", summary(p), p.Refused)
	}
}

func TestRemoveAllGuard(t *testing.T) {
	actual := applied(mcq("v0.3.2"), mcr("v1.0.1"))
	cases := []struct {
		name      string
		desired   []spec.Service
		elsewhere []string
		allow     bool
		refused   bool
		removes   int
	}{
		{"empty tree", nil, nil, false, true, 0},
		{"empty tree, allowed", nil, nil, true, false, 12},
		{"everything renamed: new services are created, nothing removed", []spec.Service{mcns("v1")}, nil, false, true, 0},
		{"one service kept", []spec.Service{mcr("v1.0.1")}, nil, false, false, 6},
		// The node's last services moved to other nodes: the tree is not
		// empty, they were moved, so they are removed here.
		{"every service moved to another node", nil, []string{"mcq", "mcr"}, false, false, 12},
		{"other nodes' services do not lift the guard", nil, []string{"mcns"}, false, true, 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := plan(tc.desired, actual, func(in *Input) { in.AllowRemoveAll, in.Elsewhere = tc.allow, tc.elsewhere })
			_, _, r := p.Counts()
			if (p.Refused != "") != tc.refused {
				t.Fatalf("refused = %q", p.Refused)
			}
			if tc.refused {
				if r != 0 || !strings.Contains(p.Refused, "--allow-remove-all") {
					t.Errorf("%d removals, refused %q", r, p.Refused)
				}
				return
			}
			if r != tc.removes {
				t.Errorf("%d removals, want %d", r, tc.removes)
			}
		})
	}
}

func TestRouteMovesBetweenServices(t *testing.T) {
	// mcq's route moves to a new service, qq: qq's route must wait for
	// mcq's removal, or the proxy would lose it.
	qq := with(mcq("v0.3.2"), func(s *spec.Service) { s.Name, s.File = "aaa", "services/aaa.toml" })
	p := plan([]spec.Service{qq, mcr("v1")}, applied(mcq("v0.3.2"), mcr("v1")))
	s, ok := p.Step("aaa/mcq/route/default")
	if !ok || !slices.Contains(s.DependsOn, "mcq/mcq/route/default") {
		t.Fatalf("route create depends on %v", s.DependsOn)
	}
}

func TestRender(t *testing.T) {
	var b bytes.Buffer
	if err := Render(&b, plan(fixtures(), applied(fixtures()...))); err != nil {
		t.Fatal(err)
	}
	if !strings.HasSuffix(b.String(), "\nNo changes. The node matches the desired state.\n") {
		t.Errorf("no-op plan:\n%s", b.String())
	}
	b.Reset()
	if err := WriteJSON(&b, plan(nil, registry.Snapshot{})); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(b.String(), `"steps": []`) {
		t.Errorf("empty plan JSON has no steps array:\n%s", b.String())
	}
}
