package spec

import (
	"regexp"
	"sort"
	"strings"
)

var envNameRe = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// The agent owns these variables: PORT and PORT_<NAME> carry leased ports,
// PEER_* is kept for telling components each other's ports.
func reservedEnv(name string) bool {
	return name == "PORT" || strings.HasPrefix(name, "PORT_") || strings.HasPrefix(name, "PEER_")
}

// maxArgLen is Linux's MAX_ARG_STRLEN (32 pages of 4 KiB): execve
// refuses any single argument or KEY=VALUE string that long or longer,
// counting its terminating NUL, so a container carrying one could never
// start. Refusing it here names the entry instead of failing at deploy.
const maxArgLen = 32 * 4096

func argTooLong(r *report, at, what string, s string) bool {
	if len(s)+1 <= maxArgLen {
		return false
	}
	r.errorf(at, "%s is %d bytes; the kernel refuses any single argument or variable over %d bytes (MAX_ARG_STRLEN), so the container could not start", what, len(s), maxArgLen-1)
	return true
}

// parseEnv reads the `env` list of KEY=VALUE strings.
func parseEnv(r *report, at string, entries []string) []EnvVar {
	var out []EnvVar
	seen := map[string]int{}
	for i, e := range entries {
		p := indexPath(at, i)
		if argTooLong(r, p, "the entry", e) {
			continue
		}
		name, value, ok := strings.Cut(e, "=")
		if !ok {
			r.errorf(p, "%s is not KEY=VALUE", quoteShort(e))
			continue
		}
		if !envNameRe.MatchString(name) {
			r.errorf(p, "%s is not a valid variable name: letters, digits and '_', not starting with a digit", quoteShort(name))
			continue
		}
		if reservedEnv(name) {
			r.errorf(p, "%s is set by the agent (PORT, PORT_* and PEER_* carry assigned ports); choose another name", name)
			continue
		}
		if j, dup := seen[name]; dup {
			r.errorf(p, "%s is already set at %s; each variable is set once", name, indexPath(at, j))
			continue
		}
		seen[name] = i
		lit, secret, problem := parseEnvValue(value) // secret.go
		if problem != "" {
			r.errorf(p, "%s: %s", name, problem)
			continue
		}
		out = append(out, EnvVar{Name: name, Value: lit, Secret: secret})
	}
	return out
}

// routeEnvName is the variable a named route's port is passed in.
func routeEnvName(route string) string {
	return "PORT_" + strings.ToUpper(strings.ReplaceAll(route, "-", "_"))
}

// assignRouteEnv fills Route.EnvVars for one component: an unnamed route
// gets PORT, a named one PORT_<NAME>, and the only route of a component
// also gets PORT. routePaths are the key paths of the routes for errors.
func assignRouteEnv(r *report, routes []Route, routePaths []string) {
	owner := map[string]int{}
	for i := range routes {
		var vars []string
		if routes[i].Name == "" {
			vars = []string{"PORT"}
		} else {
			vars = []string{routeEnvName(routes[i].Name)}
		}
		if len(routes) == 1 && routes[i].Name != "" {
			vars = append(vars, "PORT")
		}
		sort.Strings(vars)
		routes[i].EnvVars = vars
		for _, v := range vars {
			if len(routes) == 1 {
				break
			}
			if j, dup := owner[v]; dup {
				if routes[i].Name != "" && routes[i].Name == routes[j].Name {
					continue // reported as a duplicate route name
				}
				if routes[i].Name == "" && routes[j].Name == "" {
					r.errorf(routePaths[i], "a second unnamed route: %s already gets $PORT; give each route of a multi-route component a name (it becomes $PORT_<NAME>)", routePaths[j])
				} else {
					r.errorf(routePaths[i], "route %s gets $%s like %s; route names must stay distinct once upper-cased with '-' as '_'", quoteShort(routes[i].Name), v, routePaths[j])
				}
				continue
			}
			owner[v] = i
		}
	}
}
