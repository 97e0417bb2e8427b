// Package spec turns a desired-state repository (mcp.toml plus
// services/*.toml) into fully resolved, validated service definitions.
//
// Everything here is pure: the package reads from an fs.FS handed to it and
// never touches the network, the clock or the process environment. Every
// problem is reported as a Diagnostic that names the file (relative to the
// repository root), the key path inside it and what is allowed, and all the
// problems of a file are collected rather than only the first.
package spec

import (
	"fmt"
	"strconv"
	"strings"
)

// Severity says whether a diagnostic blocks a service.
type Severity int

const (
	// SeverityError makes the file (and so its service) invalid.
	SeverityError Severity = iota
	// SeverityWarning is reported but does not block anything (for example
	// `network = "mcpnet"`, accepted for compatibility and ignored).
	SeverityWarning
)

func (s Severity) String() string {
	if s == SeverityWarning {
		return "warning"
	}
	return "error"
}

// Diagnostic is one problem found in one file.
type Diagnostic struct {
	File     string   `json:"file"`              // relative to the repo root, slash-separated
	Path     string   `json:"path,omitempty"`    // key path, e.g. components[0].routes[1].port
	Message  string   `json:"message"`           // what is wrong and what is allowed
	Severity Severity `json:"severity"`          // error or warning
	Service  string   `json:"service,omitempty"` // the service the file defines, when known
}

// Error renders the diagnostic the way the CLI prints it:
// "services/mcq.toml: components[0].routes[1].port: 70000 is outside 1-65535".
func (d Diagnostic) Error() string {
	var b strings.Builder
	b.WriteString(displayFile(d.File))
	if d.Path != "" {
		b.WriteString(": ")
		b.WriteString(d.Path)
	}
	b.WriteString(": ")
	if d.Severity == SeverityWarning {
		b.WriteString("warning: ")
	}
	b.WriteString(d.Message)
	return b.String()
}

// displayFile shows a file name as it is: one with anything but printable
// ASCII is quoted with escapes, so a look-alike ("services/wеb.toml" with a
// Cyrillic "е"), a composed and a decomposed spelling of one name, or a
// newline that would forge another diagnostic line are all told apart.
func displayFile(f string) string {
	for i := 0; i < len(f); i++ {
		if f[i] < 0x20 || f[i] >= 0x7f || f[i] == '"' {
			return strconv.QuoteToASCII(f)
		}
	}
	return f
}

// Diagnostics is a list of problems; as an error it prints one per line.
type Diagnostics []Diagnostic

func (ds Diagnostics) Error() string {
	lines := make([]string, len(ds))
	for i, d := range ds {
		lines[i] = d.Error()
	}
	return strings.Join(lines, "\n")
}

// HasErrors reports whether any diagnostic is an error (not a warning).
func (ds Diagnostics) HasErrors() bool {
	for _, d := range ds {
		if d.Severity == SeverityError {
			return true
		}
	}
	return false
}

// Platform is the repo-wide configuration from mcp.toml.
type Platform struct {
	// Domain is the platform domain; services get <service>.svc.mcp.<Domain>.
	Domain string `json:"domain"`
	// Registry is the image registry prefix used by the convention form,
	// e.g. "mcr.svc.mcp.metacircular.net:8443".
	Registry string `json:"registry"`
	// Defaults apply to every component that leaves the field out.
	Defaults Defaults `json:"defaults"`
	// Nodes are the machines services may be placed on.
	Nodes []Node `json:"nodes"`
	// AllowedHostnames are public hostnames (outside svc.mcp.<Domain>) that
	// routes may claim. Entries are exact names or "*.example.org" suffixes.
	AllowedHostnames []string `json:"allowed_hostnames,omitempty"`
	// Listeners are the proxy listener ports routes may use. Empty means any
	// port in 1-65535 is accepted (the ingress issue tightens this).
	Listeners []int `json:"listeners,omitempty"`
	// Limits narrow what service definitions may ask for; they can never
	// widen what the platform allows.
	Limits Limits `json:"limits"`
}

// Limits are the repo-wide narrowing of what definitions may declare.
type Limits struct {
	// VolumeRoots are the host paths declared volumes must lie in. Each is
	// "/srv/{service}" or a path below it; "{service}" stands for the
	// service's name. Empty means "/srv/{service}".
	VolumeRoots []string `json:"volume_roots,omitempty"`
}

// Defaults are the platform-wide defaults for components.
type Defaults struct {
	User    string `json:"user"`    // default "0:0"
	Restart string `json:"restart"` // default "unless-stopped"
	Tier    string `json:"tier"`    // default "worker"
}

// Node is one machine of the platform.
type Node struct {
	Name      string   `json:"name"`
	Addresses []string `json:"addresses"` // IPv4 or IPv6 literals
}

// Node returns the node with the given name, or false.
func (p *Platform) Node(name string) (Node, bool) {
	for _, n := range p.Nodes {
		if n.Name == name {
			return n, true
		}
	}
	return Node{}, false
}

// ServiceHostname is the conventional hostname of a service.
func (p *Platform) ServiceHostname(service string) string {
	return service + ".svc.mcp." + p.Domain
}

// Restart policies.
const (
	RestartNo            = "no"
	RestartOnFailure     = "on-failure"
	RestartAlways        = "always"
	RestartUnlessStopped = "unless-stopped"
)

// Route modes.
const (
	ModeL4 = "l4" // TLS passed through untouched to the backend
	ModeL7 = "l7" // TLS terminated by the proxy
)

// Tiers order services on one node: core converges before worker.
const (
	TierCore   = "core"
	TierWorker = "worker"
)

// Service is one fully resolved service definition: every convention and
// platform default has been applied, so consumers never look at mcp.toml.
type Service struct {
	Name    string `json:"name"`
	Node    string `json:"node"`
	Active  bool   `json:"active"`
	Version string `json:"version,omitempty"` // service-wide tag (convention form)
	Tier    string `json:"tier"`
	// File is the definition's path relative to the repo root.
	File string `json:"file"`

	Components []Component `json:"components"`

	// Strategy is the declared update strategy ("" when the file does not
	// set one; UpdateStrategy resolves the default).
	Strategy string `json:"strategy,omitempty"`
	// After names the services on the same node this one waits for: it is
	// deployed only once they are healthy.
	After []string `json:"after,omitempty"`

	// MayStartEmpty ([data] may_start_empty) lets a node that has no
	// /srv/<service> start the service empty instead of waiting for its
	// data to be moved there (data.go).
	MayStartEmpty bool `json:"may_start_empty,omitempty"`

	// Kept for builds and snapshots; the agent ignores them.
	Path     string            `json:"path,omitempty"`
	Build    map[string]string `json:"build_images,omitempty"`
	Snapshot map[string]any    `json:"snapshot,omitempty"`
}

// Component is one container of a service.
type Component struct {
	Name string `json:"name"`
	// Image is the full reference including its tag, e.g.
	// "mcr.example:8443/metacrypt-web:v1.0.0".
	Image string `json:"image"`
	// Version is the image tag, shown in status.
	Version string   `json:"version"`
	Env     []EnvVar `json:"env,omitempty"` // as declared, names unique
	Cmd     []string `json:"cmd,omitempty"`
	Volumes []Volume `json:"volumes,omitempty"`
	User    string   `json:"user"`
	Restart string   `json:"restart"`
	Routes  []Route  `json:"routes,omitempty"`
	// FixedPorts are legacy `ports` entries whose host and container ports
	// are equal: honoured as fixed host ports, never leased.
	FixedPorts []int `json:"fixed_ports,omitempty"`
	// Health is the declared [components.health] check, nil when the file
	// declares none (HealthChecks gives the default).
	Health *Health `json:"health,omitempty"`
}

// EnvVar is one KEY=VALUE pair from the definition.
type EnvVar struct {
	Name  string `json:"name"`
	Value string `json:"value"`
	// Secret is set (and Value empty) for "KEY=secret:NAME": the value is
	// the node-local secret NAME, read only when the container is built
	// (secret.go). SecretDigest is its keyed digest, set by BindSecrets on
	// the node; both are omitted when empty so that the hash of a
	// definition without secrets is what it always was.
	Secret       string `json:"secret,omitempty"`
	SecretDigest string `json:"secret_digest,omitempty"`
}

// Volume is a bind mount.
type Volume struct {
	Host      string `json:"host"`
	Container string `json:"container"`
	ReadOnly  bool   `json:"read_only,omitempty"`
}

func (v Volume) String() string {
	s := v.Host + ":" + v.Container
	if v.ReadOnly {
		s += ":ro"
	}
	return s
}

// Route is one proxy route of a component. The host port behind it is leased
// by the agent at apply time and is not part of the definition.
type Route struct {
	// Name is "" for an unnamed route.
	Name string `json:"name,omitempty"`
	// Port is the proxy's listener port (443, 8443, 9443...).
	Port     int    `json:"port"`
	Mode     string `json:"mode"`
	Hostname string `json:"hostname"`
	Public   bool   `json:"public,omitempty"`
	// EnvVars are the environment variables that carry the leased host port
	// into the container: "PORT" for an unnamed route, "PORT_<NAME>" for a
	// named one, plus "PORT" when the component has exactly one route.
	EnvVars []string `json:"env_vars"`
}

// Key identifies the route inside its component ("" is shown as "default").
func (r Route) Key() string {
	if r.Name == "" {
		return "default"
	}
	return r.Name
}

// String renders "l7 mcq.svc.mcp.example:8443".
func (r Route) String() string {
	return fmt.Sprintf("%s %s:%d", r.Mode, r.Hostname, r.Port)
}
