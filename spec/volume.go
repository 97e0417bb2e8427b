package spec

import (
	"path"
	"strings"
)

// defaultVolume is the conventional data mount of a service.
func defaultVolume(service string) Volume {
	d := "/srv/" + service
	return Volume{Host: d, Container: d}
}

func cleanPath(p string) string { return path.Clean(p) }

// pathProblem says why p is not an absolute, '..'-free path, or "".
func pathProblem(p string) string {
	if !strings.HasPrefix(p, "/") {
		return "it is not absolute"
	}
	for _, e := range strings.Split(p, "/") {
		if e == ".." {
			return "it contains '..'"
		}
	}
	if strings.ContainsRune(p, 0) {
		return "it contains a NUL byte"
	}
	return ""
}

// checkVolumeRoot checks one [limits] volume_roots entry: it may narrow the
// default /srv/{service} but never point anywhere else.
func checkVolumeRoot(r *report, at, root string) bool {
	if prob := pathProblem(root); prob != "" {
		r.errorf(at, "%s: %s; a volume root is /srv/{service} or a path below it", quoteShort(root), prob)
		return false
	}
	if !inside(cleanPath(root), serviceRoot) {
		r.errorf(at, "%s would widen what volumes may mount: the repository can only narrow the default, so a volume root is /srv/{service} or a path below it", quoteShort(root))
		return false
	}
	return true
}

// volumeRoots are the host paths declared volumes of service may use.
func (p *Platform) volumeRoots(service string) []string {
	roots := p.Limits.VolumeRoots
	if len(roots) == 0 {
		roots = []string{serviceRoot}
	}
	out := make([]string, len(roots))
	for i, r := range roots {
		out[i] = strings.ReplaceAll(r, "{service}", service)
	}
	return out
}

func inside(p, root string) bool {
	return p == root || strings.HasPrefix(p, root+"/")
}

// parseVolume reads one "host:container[:ro|rw]" entry.
func parseVolume(r *report, at, service, s string, p *Platform) (Volume, bool) {
	parts := strings.Split(s, ":")
	if len(parts) < 2 || len(parts) > 3 {
		r.errorf(at, "%s is not host:container or host:container:ro", quoteShort(s))
		return Volume{}, false
	}
	v := Volume{Host: parts[0], Container: parts[1]}
	ok := true
	if len(parts) == 3 {
		switch parts[2] {
		case "ro":
			v.ReadOnly = true
		case "rw":
		default:
			r.errorf(at, "%s: unknown option %s; allowed: ro, rw", quoteShort(s), quoteShort(parts[2]))
			ok = false
		}
	}
	if prob := pathProblem(v.Host); prob != "" {
		r.errorf(at, "host path %s: %s; volumes mount paths inside /srv/%s", quoteShort(v.Host), prob, service)
		ok = false
	} else {
		v.Host = cleanPath(v.Host)
		roots := p.volumeRoots(service)
		in := false
		for _, root := range roots {
			in = in || inside(v.Host, root)
		}
		if !in {
			limited := ""
			if len(p.Limits.VolumeRoots) > 0 {
				limited = " (narrowed by [limits] volume_roots in mcp.toml)"
			}
			r.errorf(at, "host path %s is outside what this service may mount: %s%s", quoteShort(v.Host), strings.Join(roots, ", "), limited)
			ok = false
		}
	}
	if prob := pathProblem(v.Container); prob != "" {
		r.errorf(at, "container path %s: %s", quoteShort(v.Container), prob)
		ok = false
	} else {
		v.Container = cleanPath(v.Container)
		if over := shadowedMount(v.Container); over != "" {
			r.errorf(at, "container path %s would cover the container's %s; mount data elsewhere (e.g. /srv/%s or /data)", v.Container, over, service)
			ok = false
		}
	}
	return v, ok
}

// shadowedMount says what a bind mount on container path p would cover
// that the container needs from its runtime, or "". Over "/" the data
// directory would replace the image's whole file system; over /proc, /sys
// or /dev it would hide the kernel's interfaces (runc refuses some of
// these only when the container starts, so the service would fail late
// instead of being reported here).
func shadowedMount(p string) string {
	if p == "/" {
		return "root file system (the image)"
	}
	for _, k := range []string{"/proc", "/sys", "/dev"} {
		if inside(p, k) {
			return k + " (a kernel interface the runtime provides)"
		}
	}
	return ""
}

// resolveVolumes applies the convention: the service's data directory is
// always mounted, and declared volumes add to it. A declared volume on the
// same container path replaces the default in place (to make it read-only,
// say), so a file that spells the default out resolves the same as one
// that leaves it out.
func resolveVolumes(service string, declared []Volume) []Volume {
	def := defaultVolume(service)
	out := []Volume{def}
	for _, v := range declared {
		if v.Container == def.Container {
			out[0] = v
			continue
		}
		out = append(out, v)
	}
	return out
}
