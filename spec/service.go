package spec

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
)

// parsed is one service file after its own checks, before the checks that
// look across files.
type parsed struct {
	file string
	base string // file name without .toml: the service's identity
	name string // the `name` key, when it could be read
	node string // the `node` key, when it could be read
	svc  Service
	rep  *report
	// routePaths and fixedPaths locate resolved values in the file, for
	// diagnostics raised by the cross-file checks.
	routePaths map[[2]int]string
	fixedPaths map[[2]int]string
	// badVersion is set when the service-wide version is present but
	// invalid, so components do not each complain that it is missing.
	badVersion bool
}

// platformOK tells parseService whether the platform can be trusted; when
// it cannot, checks that need it (node, hostnames, registry, listeners)
// are skipped and the service is reported invalid anyway.
func parseService(file, base string, data []byte, p *Platform, platformOK bool) *parsed {
	ps := &parsed{file: file, base: base, rep: &report{file: file, service: base}, routePaths: map[[2]int]string{}, fixedPaths: map[[2]int]string{}}
	r := ps.rep
	root, ok := decode(r, data)
	if !ok {
		return ps
	}
	s := &ps.svc
	s.File = file
	s.Active = true

	if name, ok := root.str("name"); ok {
		ps.name = name
		if checkLabel(r, "name", "service name", name) && name != base {
			r.errorf("name", "%q does not match the file name %s: a service named %q lives in services/%s.toml", name, file, name, name)
		}
		s.Name = name
	} else if _, present := root.m["name"]; !present {
		r.errorf("name", "missing: every service needs a name, equal to its file name (%q)", base)
	}
	if node, ok := root.str("node"); ok {
		ps.node = node
		if checkLabel(r, "node", "node name", node) && platformOK {
			if _, known := p.Node(node); !known {
				r.errorf("node", "unknown node %q; nodes declared in mcp.toml: %s", node, p.nodeNames())
			}
		}
		s.Node = node
	} else if _, present := root.m["node"]; !present {
		r.errorf("node", "missing: every service names the node it runs on (declared in mcp.toml: %s)", p.nodeNames())
	}
	if a, ok := root.boolean("active"); ok {
		s.Active = a
	}
	if v, ok := root.str("path"); ok {
		s.Path = v
	}
	if v, ok := root.str("version"); ok {
		if prob := versionProblem(v); prob != "" {
			r.errorf("version", "%s: %s", quoteShort(v), prob)
			ps.badVersion = true
		} else {
			s.Version = v
		}
	} else if _, present := root.m["version"]; present {
		ps.badVersion = true
	}
	s.Tier = p.Defaults.Tier
	if v, ok := root.str("tier"); ok && checkOneOf(r, "tier", "tier", v, tiers) {
		s.Tier = v
	}
	ps.parseRollout(root) // rollout.go: strategy, after
	ps.parseData(root)    // data.go: [data] may_start_empty
	if b, ok := root.sub("build"); ok {
		if imgs, ok := b.sub("images"); ok {
			for k := range imgs.m {
				if v, ok := imgs.str(k); ok {
					if s.Build == nil {
						s.Build = map[string]string{}
					}
					s.Build[k] = v
				}
			}
			imgs.done()
		}
		b.done()
	}
	if snap, ok := root.sub("snapshot"); ok {
		// Kept for the snapshot tooling, which owns its schema.
		s.Snapshot = snap.m
	}
	cts, ok := root.tables("components")
	if !ok {
		if _, present := root.m["components"]; !present {
			r.errorf("components", "missing: a service has one or more [[components]]")
		}
	} else if len(cts) == 0 {
		r.errorf("components", "empty: a service has one or more [[components]]")
	}
	names := map[string]string{}
	for ci, ct := range cts {
		c := ps.parseComponent(ci, ct, p, platformOK)
		if c.Name != "" {
			if prev, dup := names[c.Name]; dup {
				r.errorf(ct.at("name"), "component %q is already declared at %s; component names are unique in a service", c.Name, prev)
			}
			names[c.Name] = ct.path
		}
		s.Components = append(s.Components, c)
	}
	root.done()
	ps.checkClaims()
	ps.checkStrategy()
	s.Version = serviceVersion(s)
	return ps
}

// serviceVersion is the tag shown for the whole service: the one all
// components run when they agree, so an explicit-image file and its
// convention twin resolve the same; otherwise the declared one.
func serviceVersion(s *Service) string {
	if len(s.Components) == 0 {
		return s.Version
	}
	v := s.Components[0].Version
	for _, c := range s.Components[1:] {
		if c.Version != v {
			return s.Version
		}
	}
	return v
}

func (ps *parsed) parseComponent(ci int, ct *table, p *Platform, platformOK bool) Component {
	r := ps.rep
	svc := &ps.svc
	c := Component{User: p.Defaults.User, Restart: p.Defaults.Restart}
	if name, ok := ct.str("name"); ok {
		checkLabel(r, ct.at("name"), "component name", name)
		c.Name = name
	} else if _, present := ct.m["name"]; !present {
		r.errorf(ct.at("name"), "missing: every component needs a name")
	}
	ps.resolveImage(ci, ct, &c, p, platformOK)
	if env, ok := ct.strings("env"); ok {
		c.Env = parseEnv(r, ct.at("env"), env)
	}
	if cmd, ok := ct.strings("cmd"); ok {
		for i, a := range cmd {
			argTooLong(r, indexPath(ct.at("cmd"), i), "the argument", a)
		}
		c.Cmd = cmd
	}
	var declared []Volume
	if vols, ok := ct.strings("volumes"); ok {
		seen := map[string]int{}
		for i, v := range vols {
			at := indexPath(ct.at("volumes"), i)
			vol, ok := parseVolume(r, at, svc.Name, v, p)
			if !ok {
				continue
			}
			if j, dup := seen[vol.Container]; dup {
				r.errorf(at, "container path %s is already mounted by %s", vol.Container, indexPath(ct.at("volumes"), j))
				continue
			}
			seen[vol.Container] = i
			declared = append(declared, vol)
		}
	}
	c.Volumes = resolveVolumes(svc.Name, declared)
	if u, ok := ct.str("user"); ok && checkUser(r, ct.at("user"), u) {
		c.User = u
	}
	if v, ok := ct.str("restart"); ok && checkOneOf(r, ct.at("restart"), "restart policy", v, restartPolicies) {
		c.Restart = v
	}
	if n, ok := ct.str("network"); ok {
		r.warnf(ct.at("network"), "network %s is ignored: containers use host networking and listen on their assigned ports", quoteShort(n))
	}
	if ports, ok := ct.strings("ports"); ok {
		seen := map[string]int{}
		for i, e := range ports {
			at := indexPath(ct.at("ports"), i)
			n, proto, ok := parseLegacyPort(r, at, e)
			if !ok {
				continue
			}
			k := strconv.Itoa(n) + "/" + proto
			if j, dup := seen[k]; dup {
				r.errorf(at, "port %s is already listed at %s", k, indexPath(ct.at("ports"), j))
				continue
			}
			seen[k] = i
			// The service binds the port itself, for whichever protocols
			// it speaks: "53/udp" and "53/tcp" are one fixed port.
			if containsInt(c.FixedPorts, n) {
				continue
			}
			ps.fixedPaths[[2]int{ci, len(c.FixedPorts)}] = at
			c.FixedPorts = append(c.FixedPorts, n)
		}
	}
	if rts, ok := ct.tables("routes"); ok {
		var paths []string
		names := map[string]string{}
		for _, rt := range rts {
			route := ps.parseRoute(rt, p, platformOK)
			if route.Name != "" {
				if prev, dup := names[route.Name]; dup {
					r.errorf(rt.at("name"), "route %q is already declared at %s; route names are unique in a component", route.Name, prev)
				}
				names[route.Name] = rt.path
			}
			ps.routePaths[[2]int{ci, len(c.Routes)}] = rt.path
			paths = append(paths, rt.path)
			c.Routes = append(c.Routes, route)
		}
		assignRouteEnv(r, c.Routes, paths)
	}
	if ht, ok := ct.sub("health"); ok {
		c.Health = parseHealth(r, ht, &c) // rollout.go
	}
	ct.done()
	return c
}

// resolveImage applies the explicit or the convention form of the image.
func (ps *parsed) resolveImage(ci int, ct *table, c *Component, p *Platform, platformOK bool) {
	r := ps.rep
	svc := &ps.svc
	version, hasVersion := ct.str("version")
	if hasVersion {
		if prob := versionProblem(version); prob != "" {
			r.errorf(ct.at("version"), "%s: %s", quoteShort(version), prob)
			return
		}
	}
	if img, ok := ct.str("image"); ok {
		if hasVersion {
			r.errorf(ct.at("version"), "set either image (a full reference with its tag) or version (the convention form), not both")
			return
		}
		tag, digest, prob := parseImage(img)
		if prob != "" {
			r.errorf(ct.at("image"), "%s is not a pinned image reference: %s", quoteShort(img), prob)
			return
		}
		c.Image = img
		c.Version = tag
		if tag == "" {
			c.Version = digest
		}
		if svc.Version != "" && c.Version != svc.Version {
			r.warnf(ct.at("image"), "the image tag %s differs from the service version %s; the image wins", c.Version, svc.Version)
		}
		return
	}
	if _, present := ct.m["image"]; present {
		return // wrong type, already reported
	}
	if !hasVersion {
		version = svc.Version
	}
	if version == "" {
		if _, bad := ct.m["version"]; !bad && !ps.badVersion {
			r.errorf(ct.at("image"), "missing: set image (e.g. \"registry.example.org/%s:v1.0.0\"), or a version (service-wide or on the component) to derive it from the registry in mcp.toml", svc.Name)
		}
		return
	}
	if !platformOK {
		return
	}
	if p.Registry == "" {
		r.errorf(ct.at("image"), "cannot derive the image: mcp.toml sets no registry; add registry to mcp.toml or set image")
		return
	}
	repo := svc.Name
	if ci > 0 {
		repo += "-" + c.Name
	}
	c.Image = p.Registry + "/" + repo + ":" + version
	c.Version = version
	if _, _, prob := parseImage(c.Image); prob != "" && svc.Name != "" && c.Name != "" {
		r.errorf(ct.at("image"), "the derived image %s is not valid: %s", quoteShort(c.Image), prob)
	}
}

func (ps *parsed) parseRoute(rt *table, p *Platform, platformOK bool) Route {
	r := ps.rep
	svc := &ps.svc
	var route Route
	if name, ok := rt.str("name"); ok {
		// Kept even when invalid, so that the name checks below still
		// see it (the file is rejected anyway).
		checkLabel(r, rt.at("name"), "route name", name)
		route.Name = name
	}
	if n, ok := rt.port("port"); ok {
		route.Port = n
		if platformOK && len(p.Listeners) > 0 && !containsInt(p.Listeners, n) {
			r.errorf(rt.at("port"), "port %d is not a proxy listener; listeners in mcp.toml: %s", n, fmtList(p.Listeners))
		}
	} else if _, present := rt.m["port"]; !present {
		r.errorf(rt.at("port"), "missing: the proxy listener port the route is served on, e.g. 443 or 8443")
	}
	if m, ok := rt.str("mode"); ok {
		if checkOneOf(r, rt.at("mode"), "mode", m, modes) {
			route.Mode = m
		}
	} else if _, present := rt.m["mode"]; !present {
		r.errorf(rt.at("mode"), "missing: l4 (TLS passed through to the service) or l7 (TLS terminated by the proxy)")
	}
	if pub, ok := rt.boolean("public"); ok {
		route.Public = pub
	}
	route.Hostname = p.ServiceHostname(svc.Name)
	if h, ok := rt.str("hostname"); ok {
		if prob := dnsNameProblem(h); prob != "" {
			r.errorf(rt.at("hostname"), "%s is not a hostname: %s", quoteShort(h), prob)
		} else {
			route.Hostname = h
			if platformOK {
				checkHostname(r, rt.at("hostname"), h, svc.Name, p)
			}
		}
	}
	rt.done()
	return route
}

// checkHostname allows a route the service's own name and the names below
// it, and public names mcp.toml allows. Another service's name under
// svc.mcp.<domain> is refused: DNS records and certificates follow the
// hostname, so it would take that service's traffic.
func checkHostname(r *report, at, h, service string, p *Platform) {
	own := p.ServiceHostname(service)
	platform := "svc.mcp." + p.Domain
	// The services' namespace is checked before allowed_hostnames: a
	// wide entry such as "*.example.org" admits public names, never
	// another service's.
	switch {
	case under(h, own):
	case under(h, platform):
		r.errorf(at, "%s is not this service's name: under %s a route may use %s or a name below it", h, platform, own)
	case p.hostnameAllowed(h):
	default:
		allowed := "none"
		if len(p.AllowedHostnames) > 0 {
			allowed = strings.Join(p.AllowedHostnames, ", ")
		}
		r.errorf(at, "%s is outside %s and not in allowed_hostnames of mcp.toml (%s)", h, platform, allowed)
	}
}

// checkClaims catches two routes of one service on the same hostname and
// listener port, and the same fixed port in two components.
func (ps *parsed) checkClaims() {
	routes := map[string]string{}
	fixed := map[int]string{}
	for ci, c := range ps.svc.Components {
		for ri, rt := range c.Routes {
			if rt.Port == 0 || rt.Hostname == "" {
				continue
			}
			k := fmt.Sprintf("%s:%d", rt.Hostname, rt.Port)
			at := ps.routePaths[[2]int{ci, ri}]
			if prev, dup := routes[k]; dup {
				ps.rep.errorf(at, "%s is already routed by %s; a hostname and listener port lead to one backend", k, prev)
				continue
			}
			routes[k] = at
		}
		for fi, n := range c.FixedPorts {
			at := ps.fixedPaths[[2]int{ci, fi}]
			if prev, dup := fixed[n]; dup {
				ps.rep.errorf(at, "port %d is already fixed by %s; a node has one port %d", n, prev, n)
				continue
			}
			fixed[n] = at
		}
	}
}

var (
	numericID = regexp.MustCompile(`^[0-9]+$`)
	userName  = regexp.MustCompile(`^[a-z_][a-z0-9_-]{0,31}$`)
)

// checkUser accepts "uid", "uid:gid", "name" and "name:group".
func checkUser(r *report, at, u string) bool {
	user, group, hasGroup := strings.Cut(u, ":")
	ok := userPart(user) && (!hasGroup || userPart(group))
	if !ok {
		r.errorf(at, "%s is not a user: write uid, uid:gid (numbers up to 4294967294) or a user name, optionally with :group", quoteShort(u))
	}
	return ok
}

func userPart(s string) bool {
	if numericID.MatchString(s) {
		n, err := strconv.ParseUint(s, 10, 32)
		return err == nil && n < 1<<32-1
	}
	return userName.MatchString(s)
}

func containsInt(ns []int, n int) bool {
	for _, x := range ns {
		if x == n {
			return true
		}
	}
	return false
}
