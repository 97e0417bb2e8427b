package spec

import (
	"cmp"
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// checkAcross runs the checks that need every file: names, hostname and
// listener port pairs, and fixed ports per node. Only files valid on their
// own take part, since a broken file's values cannot be trusted. Both
// sides of a conflict are reported, each naming the other, and so both
// become invalid: neither is deployed or changed until one gives way.
func checkAcross(all []*parsed) {
	type claim struct {
		ps *parsed
		at string
	}
	var ok []*parsed
	for _, ps := range all {
		if !ps.rep.failed() {
			ok = append(ok, ps)
		}
	}
	conflict := func(a, b claim, what string) {
		a.ps.rep.errorf(a.at, "%s is also claimed by %s (service %s)", what, b.ps.file, b.ps.svc.Name)
		b.ps.rep.errorf(b.at, "%s is also claimed by %s (service %s)", what, a.ps.file, a.ps.svc.Name)
	}
	names := map[string]claim{}
	routes := map[string]claim{}
	fixed := map[string]claim{}
	for _, ps := range ok {
		s := &ps.svc
		if prev, dup := names[s.Name]; dup {
			conflict(prev, claim{ps, "name"}, fmt.Sprintf("the service name %q", s.Name))
		} else {
			names[s.Name] = claim{ps, "name"}
		}
		for ci, c := range s.Components {
			for ri, rt := range c.Routes {
				k := rt.Hostname + ":" + strconv.Itoa(rt.Port)
				cl := claim{ps, ps.routePaths[[2]int{ci, ri}]}
				if prev, dup := routes[k]; dup {
					conflict(prev, cl, "hostname and listener port "+k)
				} else {
					routes[k] = cl
				}
			}
			for fi, n := range c.FixedPorts {
				k := s.Node + "/" + strconv.Itoa(n)
				cl := claim{ps, ps.fixedPaths[[2]int{ci, fi}]}
				if prev, dup := fixed[k]; dup {
					conflict(prev, cl, fmt.Sprintf("fixed port %d on node %s", n, s.Node))
				} else {
					fixed[k] = cl
				}
			}
		}
	}
}

// finish sorts everything so the same input always gives the same Repo.
func finish(r *Repo) {
	slices.SortStableFunc(r.Services, func(a, b Service) int {
		return cmp.Or(cmp.Compare(a.Name, b.Name), cmp.Compare(a.File, b.File))
	})
	slices.SortStableFunc(r.Invalid, func(a, b Invalid) int {
		return cmp.Or(cmp.Compare(a.Name, b.Name), cmp.Compare(a.File, b.File))
	})
	sortDiagnostics(r.Diagnostics)
}

// sortDiagnostics orders by file, then key path (array indices compared as
// numbers, so components[2] comes before components[10]), then message.
func sortDiagnostics(ds Diagnostics) {
	slices.SortStableFunc(ds, func(a, b Diagnostic) int {
		return cmp.Or(
			cmp.Compare(a.File, b.File),
			comparePaths(a.Path, b.Path),
			cmp.Compare(a.Severity, b.Severity),
			cmp.Compare(a.Message, b.Message),
		)
	})
}

func comparePaths(a, b string) int {
	for a != "" && b != "" {
		ta, ra := nextToken(a)
		tb, rb := nextToken(b)
		if c := compareTokens(ta, tb); c != 0 {
			return c
		}
		a, b = ra, rb
	}
	return cmp.Compare(len(a), len(b))
}

// nextToken splits off a run of digits or a run of anything else.
func nextToken(s string) (string, string) {
	digit := s[0] >= '0' && s[0] <= '9'
	i := 1
	for i < len(s) && (s[i] >= '0' && s[i] <= '9') == digit {
		i++
	}
	return s[:i], s[i:]
}

func compareTokens(a, b string) int {
	if a[0] >= '0' && a[0] <= '9' && b[0] >= '0' && b[0] <= '9' {
		a, b = strings.TrimLeft(a, "0"), strings.TrimLeft(b, "0")
		if c := cmp.Compare(len(a), len(b)); c != 0 {
			return c
		}
	}
	return cmp.Compare(a, b)
}
