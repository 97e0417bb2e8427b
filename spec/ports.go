package spec

import (
	"net/netip"
	"strconv"
	"strings"
)

// parseLegacyPort reads one entry of the legacy `ports` list:
// "[ip:]host:container" or "container", with an optional "/tcp" or "/udp".
// Containers use host networking, so only an entry whose host and
// container ports are equal still means something: the service binds that
// port on the node itself. Any other mapping was the old way to put a
// service behind the proxy, and is now a route.
//
// It returns the port and its protocol ("tcp" when not given).
func parseLegacyPort(r *report, at, s string) (int, string, bool) {
	spec, proto := s, "tcp"
	if i := strings.LastIndexByte(spec, '/'); i >= 0 {
		switch spec[i+1:] {
		case "tcp", "udp":
			spec, proto = spec[:i], spec[i+1:]
		default:
			r.errorf(at, "%s: unknown protocol %s; allowed: tcp, udp", quoteShort(s), quoteShort(spec[i+1:]))
			return 0, "", false
		}
	}
	if strings.Contains(spec, "-") {
		r.errorf(at, "%s: port ranges are not supported; list each port", quoteShort(s))
		return 0, "", false
	}
	var ip, host, cont string
	if strings.HasPrefix(spec, "[") {
		end := strings.Index(spec, "]:")
		if end < 0 {
			r.errorf(at, "%s is not [ip:]host:container or a single port", quoteShort(s))
			return 0, "", false
		}
		ip, spec = spec[1:end], spec[end+2:]
		parts := strings.Split(spec, ":")
		if len(parts) != 2 {
			r.errorf(at, "%s is not [ip:]host:container or a single port", quoteShort(s))
			return 0, "", false
		}
		host, cont = parts[0], parts[1]
	} else {
		parts := strings.Split(spec, ":")
		switch len(parts) {
		case 1:
			host, cont = parts[0], parts[0]
		case 2:
			host, cont = parts[0], parts[1]
		case 3:
			ip, host, cont = parts[0], parts[1], parts[2]
		default:
			r.errorf(at, "%s is not [ip:]host:container or a single port", quoteShort(s))
			return 0, "", false
		}
	}
	if ip != "" {
		if _, err := netip.ParseAddr(ip); err != nil {
			r.errorf(at, "%s: %s is not an IP address", quoteShort(s), quoteShort(ip))
			return 0, "", false
		}
	}
	hp, ok1 := legacyPortNumber(r, at, s, host)
	// "53" is host and container port at once: a bad one is reported once.
	cp, ok2 := hp, ok1
	if cont != host {
		cp, ok2 = legacyPortNumber(r, at, s, cont)
	}
	if !ok1 || !ok2 {
		return 0, "", false
	}
	if hp != cp {
		r.errorf(at, "%q maps host port %d to container port %d, but containers now use host networking and the agent assigns host ports: "+
			"replace it with a route ([[components.routes]] with port = %d and mode = \"l4\" or \"l7\") and have the service listen on $PORT",
			s, hp, cp, cp)
		return 0, "", false
	}
	return hp, proto, true
}

func legacyPortNumber(r *report, at, entry, s string) (int, bool) {
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 || n > 65535 {
		r.errorf(at, "%s: %s is not a port in 1-65535", quoteShort(entry), quoteShort(s))
		return 0, false
	}
	return n, true
}
