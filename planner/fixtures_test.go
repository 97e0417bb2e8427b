package planner

import (
	"strings"

	"metacircular.net/mcp/registry"
	"metacircular.net/mcp/spec"
)

// The fixtures are resolved services as spec would produce them for a
// platform with domain example.org and registry mcr.svc.mcp.example.org:8443,
// built directly so the planner tests do not depend on the parser.

const (
	testDomain = "example.org"
	testReg    = "mcr.svc.mcp.example.org:8443"
	testNode   = "rift"
)

var allFeatures = Features{Routes: true, Certs: true, Records: true, Health: true}

func svcHost(name string) string { return name + ".svc.mcp." + testDomain }

// route builds a route the way spec resolves it, env vars included.
func route(name string, port int, mode, host string, single bool) spec.Route {
	r := spec.Route{Name: name, Port: port, Mode: mode, Hostname: host}
	if name == "" {
		r.EnvVars = []string{"PORT"}
	} else {
		r.EnvVars = []string{"PORT_" + strings.ToUpper(name)}
		if single {
			r.EnvVars = append(r.EnvVars, "PORT")
		}
	}
	return r
}

func comp(svc, name, image, version string, routes ...spec.Route) spec.Component {
	return spec.Component{
		Name:    name,
		Image:   testReg + "/" + image + ":" + version,
		Version: version,
		Volumes: []spec.Volume{{Host: "/srv/" + svc, Container: "/srv/" + svc}},
		User:    "0:0",
		Restart: spec.RestartUnlessStopped,
		Routes:  routes,
	}
}

func service(name, tier string, comps ...spec.Component) spec.Service {
	return spec.Service{
		Name: name, Node: testNode, Active: true, Tier: tier,
		File: "services/" + name + ".toml", Components: comps,
	}
}

// metacrypt: the CA. api serves REST and gRPC with TLS passed through (L4),
// web is the browser UI behind the proxy (L7).
func metacrypt(version string) spec.Service {
	h := svcHost("metacrypt")
	api := comp("metacrypt", "api", "metacrypt", version,
		route("rest", 8443, spec.ModeL4, h, false),
		route("grpc", 9443, spec.ModeL4, h, false))
	api.Cmd = []string{"server", "--config", "/srv/metacrypt/metacrypt.toml"}
	web := comp("metacrypt", "web", "metacrypt-web", version, route("", 443, spec.ModeL7, h, true))
	web.Env = []spec.EnvVar{{Name: "METACRYPT_API", Value: "https://" + h + ":8443"}}
	s := service("metacrypt", spec.TierCore, api, web)
	s.Version = version
	return s
}

func mcq(version string) spec.Service {
	c := comp("mcq", "mcq", "mcq", version, route("", 8443, spec.ModeL7, svcHost("mcq"), true))
	c.Cmd = []string{"server", "--config", "/srv/mcq/mcq.toml"}
	return service("mcq", spec.TierWorker, c)
}

func mcr(version string) spec.Service {
	c := comp("mcr", "mcr", "mcr", version, route("", 8443, spec.ModeL4, svcHost("mcr"), true))
	return service("mcr", spec.TierCore, c)
}

// mcns keeps a legacy fixed port (DNS on 53) next to its REST route.
func mcns(version string) spec.Service {
	c := comp("mcns", "mcns", "mcns", version, route("", 8443, spec.ModeL4, svcHost("mcns"), true))
	c.FixedPorts = []int{53}
	return service("mcns", spec.TierCore, c)
}

// site is a public web site on its own hostname.
func site(version string) spec.Service {
	r := route("", 443, spec.ModeL7, "www.example.org", true)
	r.Public = true
	return service("site", spec.TierWorker, comp("site", "site", "site", version, r))
}

func fixtures() []spec.Service {
	return []spec.Service{metacrypt("v1.3.0"), mcq("v0.3.2"), mcr("v1.0.1"), mcns("v1.1.0"), site("v2.0.0")}
}

// applied is the snapshot an executor records after deploying svcs on an
// empty node: ports are numbered from 10000 in service/component/route
// order, so fixtures get the same ports every time.
func applied(svcs ...spec.Service) registry.Snapshot {
	return appliedWith(allFeatures, svcs...)
}

// appliedWith is applied by an agent that manages the features f.
func appliedWith(f Features, svcs ...spec.Service) registry.Snapshot {
	in := Input{Node: testNode, Desired: svcs, Features: f, Domain: testDomain,
		Actual: registry.Snapshot{Node: testNode}}
	return apply(in, Compute(in))
}

// apply models the executor: it returns the snapshot recorded once every
// step of p has succeeded. Leases follow the port steps (a new lease gets
// the lowest port above every lease held); every desired service is
// recorded with its definition; a removed service disappears (unless the
// removal was refused); invalid services stay as they were.
func apply(in Input, p *Plan) registry.Snapshot {
	out := registry.Snapshot{Node: in.Actual.Node, Services: map[string]registry.Deployed{}}
	leases := map[string]registry.Lease{}
	next := 10000
	for _, l := range in.Actual.Leases {
		leases[l.Key()] = l
		next = max(next, l.Port+1)
	}
	for _, s := range p.Steps {
		if s.Kind != KindPort {
			continue
		}
		slot := registry.SlotA
		if s.Slot == "b" {
			slot = registry.SlotB
		}
		k := registry.LeaseKey(s.Service, s.Component, s.Route, slot)
		switch s.Action {
		case ActionCreate:
			l := registry.Lease{Service: s.Service, Component: s.Component, Route: s.Route, Slot: slot, Port: s.Port}
			if strings.HasPrefix(s.Route, "fixed:") {
				l.Fixed = true
			} else {
				l.Port = next
				next++
			}
			leases[k] = l
		case ActionRemove:
			delete(leases, k)
		}
	}
	for _, k := range sortedKeys(leases) {
		out.Leases = append(out.Leases, leases[k])
	}

	invalid := map[string]bool{}
	for _, i := range in.Invalid {
		invalid[i.Name] = true
	}
	for name, d := range in.Actual.Services {
		out.Services[name] = d
	}
	for _, s := range in.Desired {
		if invalid[s.Name] {
			continue
		}
		d := registry.Deployed{Spec: s, SpecHash: spec.Hash(s), Commit: "c0ffee", Components: map[string]registry.ComponentState{}, Features: in.Features}
		old := in.Actual.Services[s.Name]
		for _, c := range s.Components {
			cs := old.Components[c.Name]
			cs.ImageDigest = "sha256:" + c.Version
			// A container started in another slot (blue-green) makes
			// that slot the active one.
			for _, st := range p.Steps {
				if st.Service == s.Name && st.Component == c.Name && st.Kind == KindContainer && st.Action != ActionRemove {
					cs.ActiveSlot = registry.SlotA
					if st.Slot == "b" {
						cs.ActiveSlot = registry.SlotB
					}
				}
			}
			d.Components[c.Name] = cs
		}
		out.Services[s.Name] = d
	}
	if p.Refused == "" {
		desired := map[string]bool{}
		for _, s := range in.Desired {
			desired[s.Name] = true
		}
		for name := range in.Actual.Services {
			if !desired[name] && !invalid[name] {
				delete(out.Services, name)
			}
		}
	}
	return out
}
