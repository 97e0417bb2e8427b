package spec

import (
	"fmt"
	"net/netip"
	"strings"
)

// PlatformFile is the repo-wide configuration file at the repository root.
const PlatformFile = "mcp.toml"

// Platform defaults used when mcp.toml's [defaults] leaves a field out.
const (
	DefaultUser    = "0:0"
	DefaultRestart = RestartUnlessStopped
	DefaultTier    = TierWorker
)

var (
	restartPolicies = []string{RestartNo, RestartOnFailure, RestartAlways, RestartUnlessStopped}
	tiers           = []string{TierCore, TierWorker}
	modes           = []string{ModeL4, ModeL7}
)

// serviceRoot is the placeholder volume_roots entries are written with.
const serviceRoot = "/srv/{service}"

// parsePlatform checks mcp.toml. The returned Platform holds what could be
// read even when r has errors.
func parsePlatform(r *report, data []byte) Platform {
	p := Platform{Defaults: Defaults{User: DefaultUser, Restart: DefaultRestart, Tier: DefaultTier}}
	root, ok := decode(r, data)
	if !ok {
		return p
	}
	if d, ok := root.str("domain"); ok {
		if prob := dnsNameProblem(d); prob != "" {
			root.r.errorf("domain", "%s is not a DNS name: %s; write the platform domain, e.g. \"example.org\"", quoteShort(d), prob)
		} else {
			p.Domain = d
		}
	} else if _, present := root.m["domain"]; !present {
		r.errorf("domain", "missing: the platform domain is required (services are named <service>.svc.mcp.<domain>)")
	}
	if reg, ok := root.str("registry"); ok {
		if prob := registryProblem(reg); prob != "" {
			r.errorf("registry", "%s is not an image registry: %s; write host[:port][/path], e.g. \"registry.example.org:8443\"", quoteShort(reg), prob)
		} else {
			p.Registry = reg
		}
	}
	if d, ok := root.sub("defaults"); ok {
		if u, ok := d.str("user"); ok {
			if checkUser(r, d.at("user"), u) {
				p.Defaults.User = u
			}
		}
		if s, ok := d.str("restart"); ok {
			if checkOneOf(r, d.at("restart"), "restart policy", s, restartPolicies) {
				p.Defaults.Restart = s
			}
		}
		if s, ok := d.str("tier"); ok {
			if checkOneOf(r, d.at("tier"), "tier", s, tiers) {
				p.Defaults.Tier = s
			}
		}
		d.done()
	}
	p.Nodes = parseNodes(r, root)
	if hs, ok := root.strings("allowed_hostnames"); ok {
		seen := map[string]bool{}
		for i, h := range hs {
			path := indexPath("allowed_hostnames", i)
			name := strings.TrimPrefix(h, "*.")
			if prob := dnsNameProblem(name); prob != "" {
				r.errorf(path, "%s is not a hostname or *.suffix pattern: %s", quoteShort(h), prob)
				continue
			}
			if p.Domain != "" {
				// Names in the services' namespace belong to the services
				// by name; an entry there could only hand one service
				// another's name.
				ns := "svc.mcp." + p.Domain
				if under(name, ns) {
					r.errorf(path, "%s is inside %s, where every service has its own name (<service>.%s); allowed_hostnames lists public names outside it", quoteShort(h), ns, ns)
					continue
				}
			}
			if seen[h] {
				r.errorf(path, "%s is listed twice", quoteShort(h))
				continue
			}
			seen[h] = true
			p.AllowedHostnames = append(p.AllowedHostnames, h)
		}
	}
	if ls, ok := root.array("listeners"); ok {
		seen := map[int]bool{}
		for i, v := range ls {
			n, ok := checkPort(r, indexPath("listeners", i), v)
			if !ok {
				continue
			}
			if seen[n] {
				r.errorf(indexPath("listeners", i), "port %d is listed twice", n)
				continue
			}
			seen[n] = true
			p.Listeners = append(p.Listeners, n)
		}
	}
	if l, ok := root.sub("limits"); ok {
		if roots, ok := l.strings("volume_roots"); ok {
			for i, v := range roots {
				if checkVolumeRoot(r, indexPath(l.at("volume_roots"), i), v) {
					p.Limits.VolumeRoots = append(p.Limits.VolumeRoots, cleanPath(v))
				}
			}
		}
		l.done()
	}
	root.done()
	return p
}

func parseNodes(r *report, root *table) []Node {
	nts, ok := root.tables("nodes")
	if !ok {
		if _, present := root.m["nodes"]; !present {
			r.errorf("nodes", "missing: declare at least one [[nodes]] with a name and addresses")
		}
		return nil
	}
	if len(nts) == 0 {
		r.errorf("nodes", "empty: declare at least one [[nodes]] with a name and addresses")
	}
	var nodes []Node
	seen := map[string]string{}
	for _, nt := range nts {
		var n Node
		name, ok := nt.str("name")
		switch {
		case !ok:
			if _, present := nt.m["name"]; !present {
				r.errorf(nt.at("name"), "missing: every node needs a name")
			}
		case checkLabel(r, nt.at("name"), "node name", name):
			if prev, dup := seen[name]; dup {
				r.errorf(nt.at("name"), "node %q is already declared at %s; node names are unique", name, prev)
			} else {
				seen[name] = nt.path
				n.Name = name
			}
		}
		addrs, ok := nt.strings("addresses")
		if !ok {
			if _, present := nt.m["addresses"]; !present {
				r.errorf(nt.at("addresses"), "missing: list one or more IP addresses of the node")
			}
		} else if len(addrs) == 0 {
			r.errorf(nt.at("addresses"), "empty: list one or more IP addresses of the node")
		}
		seenAddr := map[netip.Addr]bool{}
		for i, a := range addrs {
			path := indexPath(nt.at("addresses"), i)
			ip, err := netip.ParseAddr(a)
			if err != nil || ip.Zone() != "" {
				r.errorf(path, "%s is not an IP address; write an IPv4 or IPv6 literal such as \"192.0.2.10\" or \"2001:db8::10\"", quoteShort(a))
				continue
			}
			if seenAddr[ip] {
				r.errorf(path, "address %s is listed twice", a)
				continue
			}
			seenAddr[ip] = true
			n.Addresses = append(n.Addresses, ip.String())
		}
		nt.done()
		if n.Name != "" {
			nodes = append(nodes, n)
		}
	}
	return nodes
}

func checkOneOf(r *report, path, what, s string, allowed []string) bool {
	for _, a := range allowed {
		if s == a {
			return true
		}
	}
	r.errorf(path, "unknown %s %s; allowed: %s", what, quoteShort(s), strings.Join(allowed, ", "))
	return false
}

// hostnameAllowed reports whether an allowed_hostnames entry admits name.
func (p *Platform) hostnameAllowed(name string) bool {
	for _, a := range p.AllowedHostnames {
		if suffix, ok := strings.CutPrefix(a, "*."); ok {
			if strings.HasSuffix(name, "."+suffix) {
				return true
			}
		} else if name == a {
			return true
		}
	}
	return false
}

func (p *Platform) nodeNames() string {
	names := make([]string, len(p.Nodes))
	for i, n := range p.Nodes {
		names[i] = n.Name
	}
	if len(names) == 0 {
		return "none"
	}
	return strings.Join(names, ", ")
}

// registryProblem says why reg is not a registry prefix, or "".
func registryProblem(reg string) string {
	if strings.Contains(reg, "://") {
		return "it has a URL scheme"
	}
	if strings.HasSuffix(reg, "/") {
		return "it ends with '/'"
	}
	if _, _, prob := parseImage(reg + "/x:v1"); prob != "" {
		return prob
	}
	return ""
}

func fmtList(ns []int) string {
	s := make([]string, len(ns))
	for i, n := range ns {
		s[i] = fmt.Sprint(n)
	}
	return strings.Join(s, ", ")
}
