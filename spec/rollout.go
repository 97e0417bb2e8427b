package spec

import (
	"fmt"
	"slices"
	"strings"
	"time"
)

// This file holds what a definition says about rolling a service out:
// health checks ([components.health]), the update strategy and the
// ordering between services (after). Every field is left out of the
// resolved JSON when the file does not set it, so adding these keys to mcp
// changed the spec hash of no existing definition (and so redeployed
// nothing).

// Health check types.
const (
	HealthTCP  = "tcp"  // a TCP connection is accepted
	HealthHTTP = "http" // GET path answers expect_status
	HealthGRPC = "grpc" // grpc.health.v1.Health/Check answers SERVING
)

// Health check defaults and limits (docs/definitions.md).
const (
	DefaultHealthInterval     = 10 * time.Second
	DefaultHealthTimeout      = 2 * time.Second
	DefaultHealthyThreshold   = 1
	DefaultUnhealthyThreshold = 3
	DefaultHealthPath         = "/"
	DefaultExpectStatus       = 200
	minHealthInterval         = 100 * time.Millisecond
	maxHealthDuration         = time.Hour
	maxHealthThreshold        = 100
)

var healthTypes = []string{HealthTCP, HealthHTTP, HealthGRPC}

// Health is one component's health check, fully resolved.
type Health struct {
	Type string `json:"type"`
	// Route is the key (Route.Key()) of the route whose leased port is
	// checked; empty when the component has no routes and FixedPort is
	// checked instead.
	Route string `json:"route,omitempty"`
	// FixedPort is the component's first fixed port, checked when it has
	// no routes.
	FixedPort int `json:"fixed_port,omitempty"`
	// Path and ExpectStatus are for http checks.
	Path         string `json:"path,omitempty"`
	ExpectStatus int    `json:"expect_status,omitempty"`
	// Service is the name a grpc check asks about ("" is the server as a
	// whole, per the grpc.health.v1 protocol).
	Service            string        `json:"service,omitempty"`
	Interval           time.Duration `json:"interval"`
	Timeout            time.Duration `json:"timeout"`
	StartPeriod        time.Duration `json:"start_period,omitempty"`
	HealthyThreshold   int           `json:"healthy_threshold"`
	UnhealthyThreshold int           `json:"unhealthy_threshold"`
}

// Deadline is how long a new version gets to become healthy during a
// rollout: its start period, then time for healthy_threshold passing
// checks and for unhealthy_threshold failing ones. With the defaults (a
// TCP check every 10s) that is 40 seconds.
func (h Health) Deadline() time.Duration {
	return h.StartPeriod + time.Duration(h.HealthyThreshold+h.UnhealthyThreshold)*h.Interval
}

// Target says what the check connects to, for messages: "route web" or
// "fixed port 53".
func (h Health) Target() string {
	if h.Route != "" {
		return "route " + h.Route
	}
	return fmt.Sprintf("fixed port %d", h.FixedPort)
}

func (h Health) String() string {
	s := h.Type + " on " + h.Target()
	switch h.Type {
	case HealthHTTP:
		s += fmt.Sprintf(" GET %s → %d", h.Path, h.ExpectStatus)
	case HealthGRPC:
		if h.Service != "" {
			s += " service " + quoteShort(h.Service)
		}
	}
	return s
}

// defaultHealth is the check every component without [components.health]
// gets for each of its routes: a TCP connect.
func defaultHealth() Health {
	return Health{Type: HealthTCP, Interval: DefaultHealthInterval, Timeout: DefaultHealthTimeout,
		HealthyThreshold: DefaultHealthyThreshold, UnhealthyThreshold: DefaultUnhealthyThreshold}
}

// HealthChecks returns the checks that decide whether the component is
// healthy: the declared one, or by default a TCP check on each route's
// port, or on the first fixed port of a component without routes. A
// component with neither has no check: it counts as healthy while its
// container runs.
func (c Component) HealthChecks() []Health {
	if c.Health != nil {
		return []Health{*c.Health}
	}
	if len(c.Routes) > 0 {
		out := make([]Health, len(c.Routes))
		for i, r := range c.Routes {
			out[i] = defaultHealth()
			out[i].Route = r.Key()
		}
		return out
	}
	if len(c.FixedPorts) > 0 {
		h := defaultHealth()
		h.FixedPort = c.FixedPorts[0]
		return []Health{h}
	}
	return nil
}

// HealthDeadline is the longest Deadline of the component's checks (the
// checks run together), or the default check's for a component with none.
func (c Component) HealthDeadline() time.Duration {
	d := defaultHealth().Deadline()
	if hs := c.HealthChecks(); len(hs) > 0 {
		d = 0
		for _, h := range hs {
			d = max(d, h.Deadline())
		}
	}
	return d
}

// Update strategies.
const (
	// StrategyBlueGreen starts the new version in the other slot, waits
	// until it is healthy, switches the proxy routes to it, drains and
	// stops the old one.
	StrategyBlueGreen = "blue-green"
	// StrategyReplace stops the old version, then starts the new one.
	StrategyReplace = "replace"
)

var strategies = []string{StrategyBlueGreen, StrategyReplace}

// UpdateStrategy is the strategy an update of s uses: the declared one,
// else blue-green when every component can run twice side by side behind
// the proxy (at least one route, no fixed port), else replace. Blue-green
// is the default because its failure mode is safe: a new version that
// never becomes healthy is removed while the old one keeps serving, and a
// routine update loses no request. A service that cannot run twice
// against one /srv/<service> (an exclusive lock on its database, say)
// declares strategy = "replace".
func (s *Service) UpdateStrategy() string {
	if s.Strategy != "" {
		return s.Strategy
	}
	routed := false
	for _, c := range s.Components {
		if len(c.FixedPorts) > 0 {
			return StrategyReplace
		}
		routed = routed || len(c.Routes) > 0
	}
	if !routed {
		return StrategyReplace
	}
	return StrategyBlueGreen
}

// integer reads an integer key.
func (t *table) integer(key string) (int64, bool) {
	v, ok := t.get(key)
	if !ok {
		return 0, false
	}
	n, ok := v.(int64)
	if !ok {
		t.r.errorf(t.at(key), "must be an integer, not %s", typeName(v))
		return 0, false
	}
	return n, true
}

// duration reads a Go duration string ("500ms", "10s", "1m30s") within
// [lo, hi].
func (t *table) duration(key string, lo, hi time.Duration) (time.Duration, bool) {
	v, ok := t.get(key)
	if !ok {
		return 0, false
	}
	s, ok := v.(string)
	if !ok {
		t.r.errorf(t.at(key), "must be a duration string such as \"10s\", not %s", typeName(v))
		return 0, false
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		t.r.errorf(t.at(key), "%s is not a duration: write e.g. \"500ms\", \"10s\" or \"1m30s\"", quoteShort(s))
		return 0, false
	}
	if d < lo || d > hi {
		t.r.errorf(t.at(key), "%s is outside %s-%s", s, fmtDuration(lo), fmtDuration(hi))
		return 0, false
	}
	return d, true
}

// fmtDuration writes round limits the way a person would: "1h", not
// "1h0m0s".
func fmtDuration(d time.Duration) string {
	switch {
	case d == 0:
		return "0s"
	case d%time.Hour == 0:
		return fmt.Sprintf("%dh", d/time.Hour)
	case d%time.Minute == 0:
		return fmt.Sprintf("%dm", d/time.Minute)
	}
	return d.String()
}

// parseHealth reads [components.health] of component c (its routes and
// fixed ports already parsed).
func parseHealth(r *report, ht *table, c *Component) *Health {
	h := defaultHealth()
	if v, ok := ht.str("type"); ok && checkOneOf(r, ht.at("type"), "health check type", v, healthTypes) {
		h.Type = v
	}
	var keys []string
	for _, rt := range c.Routes {
		keys = append(keys, rt.Key())
	}
	route, hasRoute := ht.str("route")
	switch {
	case hasRoute && len(keys) == 0:
		r.errorf(ht.at("route"), "the component has no routes; a component without routes is checked on its first fixed port")
	case hasRoute && !slices.Contains(keys, route):
		r.errorf(ht.at("route"), "unknown route %s; the component's routes: %s (\"default\" is the unnamed one)", quoteShort(route), strings.Join(keys, ", "))
	case hasRoute:
		h.Route = route
	case len(keys) > 0:
		h.Route = keys[0]
	case len(c.FixedPorts) > 0:
		h.FixedPort = c.FixedPorts[0]
	default:
		r.errorf(ht.path, "nothing to check: the component has no routes and no fixed ports (ports); remove [components.health], a component without ports counts as healthy while it runs")
	}
	path, hasPath := ht.str("path")
	if hasPath {
		switch {
		case h.Type != HealthHTTP:
			r.errorf(ht.at("path"), "only an http check has a path (type is %q)", h.Type)
		case !strings.HasPrefix(path, "/") || strings.ContainsAny(path, " \t\r\n"):
			r.errorf(ht.at("path"), "%s is not an absolute URL path: start with / and use no spaces, e.g. \"/healthz\"", quoteShort(path))
		default:
			h.Path = path
		}
	}
	status, hasStatus := ht.integer("expect_status")
	if hasStatus {
		switch {
		case h.Type != HealthHTTP:
			r.errorf(ht.at("expect_status"), "only an http check has an expected status (type is %q)", h.Type)
		case status < 100 || status > 599:
			r.errorf(ht.at("expect_status"), "%d is not an HTTP status (100-599)", status)
		default:
			h.ExpectStatus = int(status)
		}
	}
	if h.Type == HealthHTTP {
		if h.Path == "" {
			h.Path = DefaultHealthPath
		}
		if h.ExpectStatus == 0 {
			h.ExpectStatus = DefaultExpectStatus
		}
	}
	if svc, ok := ht.str("service"); ok {
		if h.Type != HealthGRPC {
			r.errorf(ht.at("service"), "only a grpc check names a service (type is %q)", h.Type)
		} else {
			h.Service = svc
		}
	}
	if d, ok := ht.duration("interval", minHealthInterval, maxHealthDuration); ok {
		h.Interval = d
	}
	timeout, hasTimeout := ht.duration("timeout", 10*time.Millisecond, maxHealthDuration)
	if hasTimeout {
		h.Timeout = timeout
	}
	if h.Timeout > h.Interval {
		at := ht.at("timeout")
		if !hasTimeout {
			at = ht.at("interval")
		}
		r.errorf(at, "the timeout (%s) is longer than the interval (%s): a check must end before the next one starts", h.Timeout, h.Interval)
	}
	if d, ok := ht.duration("start_period", 0, maxHealthDuration); ok {
		h.StartPeriod = d
	}
	for _, th := range []struct {
		key string
		dst *int
	}{{"healthy_threshold", &h.HealthyThreshold}, {"unhealthy_threshold", &h.UnhealthyThreshold}} {
		if n, ok := ht.integer(th.key); ok {
			if n < 1 || n > maxHealthThreshold {
				r.errorf(ht.at(th.key), "%d is outside 1-%d (consecutive checks)", n, maxHealthThreshold)
				continue
			}
			*th.dst = int(n)
		}
	}
	ht.done()
	return &h
}

// parseRollout reads the service-level rollout keys: strategy and after.
func (ps *parsed) parseRollout(root *table) {
	r, s := ps.rep, &ps.svc
	if v, ok := root.str("strategy"); ok && checkOneOf(r, "strategy", "strategy", v, strategies) {
		s.Strategy = v
	}
	if deps, ok := root.strings("after"); ok {
		seen := map[string]int{}
		for i, d := range deps {
			at := indexPath("after", i)
			if !checkLabel(r, at, "service name", d) {
				continue
			}
			if d == ps.base || (s.Name != "" && d == s.Name) {
				r.errorf(at, "a service cannot wait for itself")
				continue
			}
			if j, dup := seen[d]; dup {
				r.errorf(at, "%q is already listed at %s", d, indexPath("after", j))
				continue
			}
			seen[d] = i
			s.After = append(s.After, d)
		}
	}
}

// checkStrategy runs once the components are parsed: blue-green needs
// every component to be able to run twice at once.
func (ps *parsed) checkStrategy() {
	s := &ps.svc
	if s.Strategy != StrategyBlueGreen {
		return
	}
	for _, c := range s.Components {
		if len(c.FixedPorts) > 0 {
			ps.rep.errorf("strategy", "blue-green runs the old and the new version side by side, and component %s binds fixed port %d, which only one of them can hold: use strategy = \"replace\", or serve the port through a route", c.Name, c.FixedPorts[0])
			return
		}
	}
}

// checkAfter checks the `after` lists across files: each name must be a
// service of the repository placed on the same node, and the lists must
// not form a cycle. A cycle makes every service in it invalid, and the
// message names the whole cycle.
func checkAfter(all []*parsed) {
	byName := map[string]*parsed{}
	for _, ps := range all {
		byName[ps.base] = ps
	}
	var ok []*parsed
	for _, ps := range all {
		if len(ps.svc.After) == 0 || ps.rep.failed() {
			continue
		}
		good := true
		for i, d := range ps.svc.After {
			at := indexPath("after", i)
			dep := byName[d]
			switch {
			case dep == nil:
				ps.rep.errorf(at, "unknown service %q: no services/%s.toml in the repository", d, d)
				good = false
			case dep.node != "" && ps.svc.Node != "" && dep.node != ps.svc.Node:
				ps.rep.errorf(at, "service %s runs on node %s, not %s: after orders services on one node", d, dep.node, ps.svc.Node)
				good = false
			}
		}
		if good {
			ok = append(ok, ps)
		}
	}
	// Depth-first search over the services whose lists are otherwise
	// fine; each cycle is reported once, on every service in it.
	const (
		unseen = iota
		active
		finished
	)
	state := map[string]int{}
	var stack []string
	var visit func(name string)
	visit = func(name string) {
		state[name] = active
		stack = append(stack, name)
		if ps := byName[name]; ps != nil && !ps.rep.failed() {
			for _, d := range ps.svc.After {
				switch state[d] {
				case unseen:
					visit(d)
				case active:
					start := slices.Index(stack, d)
					cycle := append(slices.Clone(stack[start:]), d)
					msg := "cycle: " + strings.Join(cycle, " → ") + "; a service cannot wait, directly or not, for itself"
					for _, member := range stack[start:] {
						m := byName[member]
						at := "after"
						if j := slices.Index(m.svc.After, nextIn(cycle, member)); j >= 0 {
							at = indexPath("after", j)
						}
						m.rep.errorf(at, "%s", msg)
					}
				}
			}
		}
		stack = stack[:len(stack)-1]
		state[name] = finished
	}
	slices.SortFunc(ok, func(a, b *parsed) int { return strings.Compare(a.base, b.base) })
	for _, ps := range ok {
		if state[ps.base] == unseen {
			visit(ps.base)
		}
	}
}

// nextIn returns the element after name in cycle.
func nextIn(cycle []string, name string) string {
	for i := 0; i+1 < len(cycle); i++ {
		if cycle[i] == name {
			return cycle[i+1]
		}
	}
	return ""
}
