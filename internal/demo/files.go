// Package demo is the README's quick start: it turns a machine with a
// containerd and a plain-HTTP registry (demo.sh starts private ones) into a
// running mcp node that deploys a real container from a local Git repo.
//
// Up builds the hello workload into two image versions, creates a bare
// desired-state repo and a working clone the user edits, writes an agent
// configuration, starts `mcp agent` in the background and waits until the
// service answers. Down stops the agent, removes what it ran and deletes the
// demo's state. Everything lives under one state directory, so a demo never
// touches a real mcp installation on the same machine.
package demo

import (
	"fmt"
	"path/filepath"
	"strings"
)

// Fixed names of the demo. The service is called hello because the
// convention derives its image, <registry>/<service>:<version>, and the
// images are pushed as <registry>/hello:v1 and :v2.
const (
	Node      = "demo"
	Service   = "hello"
	Domain    = "demo.internal"
	RepoPath  = "demo"     // the registry path the images live under
	Namespace = "mcp-demo" // containerd namespace, mcp's own for the demo
	Branch    = "main"     // the branch the agent follows
	Poll      = "5s"       // the agent also watches the bare repo's refs
	helloPkg  = "metacircular.net/mcp/internal/hello"
)

// Settings say where the demo lives and what it uses. They are saved in
// the state directory by Up, so Down and Status need only the directory.
type Settings struct {
	StateDir   string `json:"state_dir"`  // absolute; removed by Down
	WorkDir    string `json:"work_dir"`   // the clone the user edits
	Containerd string `json:"containerd"` // containerd's socket
	Namespace  string `json:"namespace"`  // containerd namespace for the workloads
	Registry   string `json:"registry"`   // host:port of a plain-HTTP registry
	MCP        string `json:"mcp"`        // the mcp binary the agent runs from
	// Owner, "uid:gid", gets the repo and the clone, so a user who ran the
	// demo through sudo can edit, commit and push without sudo.
	Owner string `json:"owner,omitempty"`
}

// Paths under the state directory.
func (s Settings) RepoDir() string     { return filepath.Join(s.StateDir, "repo.git") }
func (s Settings) AgentDir() string    { return filepath.Join(s.StateDir, "agent") }
func (s Settings) Socket() string      { return filepath.Join(s.StateDir, "mcp.sock") }
func (s Settings) AgentConfig() string { return filepath.Join(s.StateDir, "agent.toml") }
func (s Settings) AgentLog() string    { return filepath.Join(s.StateDir, "agent.log") }
func (s Settings) AgentPID() string    { return filepath.Join(s.StateDir, "agent.pid") }
func (s Settings) file() string        { return filepath.Join(s.StateDir, "demo.json") }

// registryPrefix is what mcp.toml's registry is set to.
func (s Settings) registryPrefix() string { return s.Registry + "/" + RepoPath }

// RepoFiles is the content of the demo's desired-state repository, by
// path: the platform file and one service in the convention form (its
// image derived from the registry, the service name and the version).
func RepoFiles(registry string) map[string]string {
	return map[string]string{
		"mcp.toml": fmt.Sprintf(`# The demo platform: one node, this machine.
domain = %q
registry = %q

[[nodes]]
name = %q
addresses = ["127.0.0.1"]
`, Domain, registry+"/"+RepoPath, Node),
		"services/" + Service + ".toml": fmt.Sprintf(`# The demo service. Its image is derived: <registry>/%[1]s:<version>.
# Change the version to v2, commit and push: the agent replaces the
# container, on the same host port.
name = %[1]q
node = %[2]q
version = "v1"

[[components]]
name = %[1]q

# 443 is the listener of the (future) proxy; the agent leases a host port
# behind it and passes it to the container as $PORT.
[[components.routes]]
port = 443
mode = "l7"
`, Service, Node),
	}
}

// AgentConfigText is the agent configuration the demo runs with: the
// demo's own state, socket and containerd namespace, a short poll (the
// agent also watches the bare repo, so a push is seen at once), and plain
// HTTP for the local registry only.
func AgentConfigText(s Settings) string {
	var b strings.Builder
	fmt.Fprintf(&b, `# Written by the mcp demo (demo.sh); removed by `+"`demo.sh down`"+`.
node = %q
state_dir = %q

[git]
url = %q
branch = %q
poll_interval = %q

[containerd]
address = %q
namespace = %q
stop_grace = "5s"

[api]
socket = %q

[[registries]]
host = %q
plain_http = true
`, Node, s.AgentDir(), s.RepoDir(), Branch, Poll, s.Containerd, s.Namespace, s.Socket(), s.Registry)
	return b.String()
}

// NextSteps is what Up prints at the end: how to change the version and
// watch the redeploy, and how to stop. port is the host port the service
// answers on (0 when unknown).
func NextSteps(s Settings, port int) string {
	url := "http://127.0.0.1:<port>/"
	if port != 0 {
		url = fmt.Sprintf("http://127.0.0.1:%d/", port)
	}
	// The API socket is root's; a user who ran the demo through sudo owns
	// the clone but still needs sudo for the agent's commands.
	mcp := s.MCP
	if s.Owner != "" {
		mcp = "sudo " + mcp
	}
	var b strings.Builder
	fmt.Fprintf(&b, `Deploy v2: edit the definition, commit and push; the agent sees the push
at once and replaces the container, on the same port.

  cd %s
  sed -i 's/v1/v2/' services/%s.toml
  git commit -qam "hello v2" && git push -q

Watch it:

  %s status --socket %s
  curl %s

More: %s logs %s --socket %s
      ./demo.sh status; the agent's log is %s

Stop everything and remove the demo: sudo ./demo.sh down
`, s.WorkDir, Service, mcp, s.Socket(), url, mcp, Service, s.Socket(), s.AgentLog())
	return b.String()
}
