package planner

import (
	"slices"
	"strconv"
	"strings"

	"metacircular.net/mcp/registry"
	"metacircular.net/mcp/spec"
)

// model is the set of resources one service definition asks for on this
// node, under the node's features. The planner builds one model from the
// desired definition and one from the recorded definition and compares the
// two. Because both sides come from the same function, a definition that
// has been applied always compares equal to itself, which is what makes a
// replan after a successful apply empty.
//
// The registry snapshot records the applied definition, not the routes,
// certificates or records themselves, so what exists of those is derived
// from the recorded definition here (see the package doc).
type model struct {
	svc   *spec.Service // nil for "nothing" (a service that is gone)
	comps map[string]*compModel
	names []string // component names, sorted
	// certs maps each hostname that needs a certificate to who reads it.
	certs map[string]certUse
	// records are the hostnames that get DNS records.
	records map[string]bool
}

// compModel is one component of a model.
type compModel struct {
	comp *spec.Component
	// running is true when the component should have a container: the
	// service is active. An inactive service keeps its image and leases.
	running bool
	// routes are sorted by key; a component has a handful, so a slice
	// searched linearly beats a map.
	routes []spec.Route
	keys   []string // route keys, in the same order
	fixed  []int    // fixed host ports, sorted, unique
}

// route returns the route with key k.
func (c *compModel) route(k string) (spec.Route, bool) {
	for i, key := range c.keys {
		if key == k {
			return c.routes[i], true
		}
	}
	return spec.Route{}, false
}

// certUse says which consumers read a hostname's certificate.
type certUse uint8

const (
	// useProxy: an L7 route; the proxy terminates TLS with the certificate.
	useProxy certUse = 1 << iota
	// useService: an L4 route; TLS passes through and the service itself
	// terminates it with the certificate mcp put under /srv/<service>/certs.
	useService
)

func (u certUse) String() string {
	switch u {
	case useProxy:
		return "proxy (l7)"
	case useService:
		return "service (l4)"
	case useProxy | useService:
		return "proxy (l7) and service (l4)"
	}
	return "nothing"
}

var emptyModel = &model{comps: map[string]*compModel{}}

// newModel derives the resources of s (nil: none). Duplicate component names
// or route keys are rejected by spec validation; if one slips through, the
// first one wins so that step IDs stay unique.
func newModel(s *spec.Service, f Features, domain string) *model {
	if s == nil {
		return emptyModel
	}
	m := &model{svc: s, comps: make(map[string]*compModel, len(s.Components))}
	zone := ""
	if domain != "" {
		zone = ".svc.mcp." + domain
	}
	for i := range s.Components {
		c := &s.Components[i]
		if _, dup := m.comps[c.Name]; dup {
			continue
		}
		cm := &compModel{comp: c, running: s.Active}
		if len(c.Routes) > 0 {
			cm.routes = slices.Clone(c.Routes)
			slices.SortStableFunc(cm.routes, func(a, b spec.Route) int { return strings.Compare(a.Key(), b.Key()) })
			cm.routes = slices.CompactFunc(cm.routes, func(a, b spec.Route) bool { return a.Key() == b.Key() })
			cm.keys = make([]string, len(cm.routes))
		}
		for i, r := range cm.routes {
			cm.keys[i] = r.Key()
			if !s.Active {
				continue
			}
			if f.Certs {
				u := useService
				if r.Mode == spec.ModeL7 {
					u = useProxy
				}
				if m.certs == nil {
					m.certs = map[string]certUse{}
				}
				m.certs[r.Hostname] |= u
			}
			if f.Records && zone != "" && strings.HasSuffix(r.Hostname, zone) {
				if m.records == nil {
					m.records = map[string]bool{}
				}
				m.records[r.Hostname] = true
			}
		}
		if len(c.FixedPorts) > 0 {
			cm.fixed = slices.Clone(c.FixedPorts)
			slices.Sort(cm.fixed)
			cm.fixed = slices.Compact(cm.fixed)
		}
		m.comps[c.Name] = cm
		m.names = append(m.names, c.Name)
	}
	slices.Sort(m.names)
	return m
}

// holds reports whether the lease is for a route or fixed port of the
// model, in either slot (each route keeps a stable pair).
func (m *model) holds(l registry.Lease) bool {
	c := m.comps[l.Component]
	if c == nil {
		return false
	}
	if p, ok := strings.CutPrefix(l.Route, fixedPrefix); ok {
		n, err := strconv.Atoi(p)
		return err == nil && slices.Contains(c.fixed, n)
	}
	_, ok := c.route(l.Route)
	return ok
}

// l4Hosts returns the hostnames of the component's L4 routes, sorted: the
// certificates its container reads.
func (c *compModel) l4Hosts(f Features) []string {
	if c == nil || !f.Certs || !c.running {
		return nil
	}
	var hs []string
	for _, r := range c.routes {
		if r.Mode != spec.ModeL7 {
			hs = append(hs, r.Hostname)
		}
	}
	slices.Sort(hs)
	return slices.Compact(hs)
}

// unionSorted merges two sorted string slices without duplicates.
func unionSorted(a, b []string) []string {
	out := make([]string, 0, max(len(a), len(b)))
	i, j := 0, 0
	for i < len(a) || j < len(b) {
		switch {
		case j == len(b) || (i < len(a) && a[i] < b[j]):
			out = append(out, a[i])
			i++
		case i == len(a) || b[j] < a[i]:
			out = append(out, b[j])
			j++
		default:
			out = append(out, a[i])
			i++
			j++
		}
	}
	return out
}

func sortedKeys[V any](m map[string]V) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	return ks
}

// Display forms used in Change values, so that the text and JSON forms
// agree and an absent value is never confused with an empty one.
const (
	none        = "(none)"
	afterApply  = "(known after apply)"
	fixedPrefix = "fixed:"
	slotNameA   = "a"
	slotNameB   = "b"
)

func quote(s string) string { return strconv.Quote(s) }

func quoteList(ss []string) string {
	if len(ss) == 0 {
		return "[]"
	}
	var b strings.Builder
	b.WriteByte('[')
	for i, s := range ss {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(strconv.Quote(s))
	}
	b.WriteByte(']')
	return b.String()
}

func volumeList(vs []spec.Volume) []string {
	out := make([]string, len(vs))
	for i, v := range vs {
		out[i] = v.String()
	}
	return out
}
