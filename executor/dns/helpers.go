package dns

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"
)

// Normalize returns value in the form drivers write and List returns, so
// records compare by string: A and AAAA as canonical address literals
// (an IPv4-mapped address is not an AAAA value), CNAME as a name without
// the trailing dot, TXT as is. TXT values are limited to printable ASCII
// without '"' and '\', the characters wire and REST encodings escape
// differently; ACME challenge tokens are base64url and fit.
func Normalize(typ, value string) (string, error) {
	switch strings.ToUpper(typ) {
	case "A":
		a, err := netip.ParseAddr(value)
		if err != nil || !a.Is4() {
			return "", fmt.Errorf("value %q of an A record is not an IPv4 address", value)
		}
		return a.String(), nil
	case "AAAA":
		a, err := netip.ParseAddr(value)
		if err != nil || !a.Is6() || a.Is4In6() || a.Zone() != "" {
			return "", fmt.Errorf("AAAA value %q is not an IPv6 address", value)
		}
		return a.String(), nil
	case "CNAME":
		v := Fqdn(value)
		if v == "" || strings.ContainsAny(v, " \t\"\\") {
			return "", fmt.Errorf("CNAME value %q is not a host name", value)
		}
		return v, nil
	case "TXT":
		for _, c := range value {
			if c < ' ' || c > '~' || c == '"' || c == '\\' {
				return "", fmt.Errorf("TXT value %q: only printable ASCII without '\"' and '\\' is supported", value)
			}
		}
		return value, nil
	}
	return "", fmt.Errorf("type %q is not one of A, AAAA, CNAME, TXT", typ)
}

// Zone is one zone mcp manages and the provider that serves it.
type Zone struct {
	// Name is the zone's apex, normalised by Fqdn ("svc.mcp.example.org").
	Name     string
	Provider Provider
	// TTL is the TTL of the records mcp writes in this zone.
	TTL int
}

// Lookup returns the zone that name belongs to: the longest of zones that
// name is in, so a delegated child zone wins over its parent.
func Lookup(zones []Zone, name string) (Zone, bool) {
	best, found := Zone{}, false
	for _, z := range zones {
		if InZone(name, z.Name) && (!found || len(Fqdn(z.Name)) > len(Fqdn(best.Name))) {
			best, found = z, true
		}
	}
	return best, found
}

// Equal reports whether two sets of values (in any order, any spelling
// Normalize accepts) are the same set.
func Equal(typ string, a, b []string) bool {
	norm := func(vs []string) []string {
		out := make([]string, 0, len(vs))
		for _, v := range vs {
			if n, err := Normalize(typ, v); err == nil {
				v = n
			}
			out = append(out, v)
		}
		slices.Sort(out)
		return slices.Compact(out)
	}
	return slices.Equal(norm(a), norm(b))
}
