// Package demo is the README's quick start: it turns a machine with a
// containerd and a plain-HTTP registry (demo.sh starts private ones) into a
// running mcp node that deploys a real container from a local Git repo and
// serves it over TLS through haproxy.
//
// Up builds the hello workload into two image versions, creates a bare
// desired-state repo and a working clone the user edits, starts a private
// haproxy (master-worker, its files and sockets under the state directory),
// writes an agent configuration that drives it with certificates from the
// agent's local CA, starts `mcp agent` in the background and waits until
// the service answers through haproxy over TLS. Down stops the agent,
// removes what it ran, stops haproxy and deletes the demo's state.
// Everything lives under one state directory, so a demo never touches a
// real mcp installation on the same machine.
package demo

import (
	"fmt"
	"path/filepath"
	"strconv"
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

// ProxyPortFirst-ProxyPortLast is where Up looks for a free port for
// haproxy's listener when none is given: 443 may well belong to a web
// server on the machine, 8443 rarely does.
const (
	ProxyPortFirst = 8443
	ProxyPortLast  = 8462
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
	// ProxyPort is haproxy's one listener, on 127.0.0.1, and the port of
	// the hello route; 0 makes Up pick the first free port of
	// ProxyPortFirst-ProxyPortLast.
	ProxyPort int `json:"proxy_port"`
}

// Paths under the state directory.
func (s Settings) RepoDir() string     { return filepath.Join(s.StateDir, "repo.git") }
func (s Settings) AgentDir() string    { return filepath.Join(s.StateDir, "agent") }
func (s Settings) Socket() string      { return filepath.Join(s.StateDir, "mcp.sock") }
func (s Settings) AgentConfig() string { return filepath.Join(s.StateDir, "agent.toml") }
func (s Settings) AgentLog() string    { return filepath.Join(s.StateDir, "agent.log") }
func (s Settings) AgentPID() string    { return filepath.Join(s.StateDir, "agent.pid") }
func (s Settings) file() string        { return filepath.Join(s.StateDir, "demo.json") }

// haproxy's files: its directory is the agent's proxy.config_dir (the
// generated haproxy.cfg, maps, crt-list), with both sockets inside; its
// pid file sits next to containerd's and the registry's, so demo.sh's
// teardown stops it by PID like them.
func (s Settings) HAProxyDir() string    { return filepath.Join(s.StateDir, "haproxy") }
func (s Settings) HAProxyAdmin() string  { return filepath.Join(s.HAProxyDir(), "admin.sock") }
func (s Settings) HAProxyMaster() string { return filepath.Join(s.HAProxyDir(), "master.sock") }
func (s Settings) HAProxyPID() string    { return filepath.Join(s.StateDir, "haproxy.pid") }
func (s Settings) HAProxyLog() string    { return filepath.Join(s.StateDir, "haproxy.log") }

// ProxyCertDir is where the agent puts the l7 certificate haproxy serves
// (proxy.cert_dir): under the state dir rather than the default
// /srv/mc-proxy/certs, so the demo writes nothing outside it.
func (s Settings) ProxyCertDir() string { return filepath.Join(s.StateDir, "proxy-certs") }

// CARoot is the local CA's trust anchor, created by the agent on the
// first certificate it issues ([certs] issuer = "local").
func (s Settings) CARoot() string { return filepath.Join(s.AgentDir(), "ca", "root.pem") }

// Hostname is the hello route's hostname, the convention
// <service>.svc.mcp.<domain> (spec.Platform.ServiceHostname).
func Hostname() string { return Service + ".svc.mcp." + Domain }

// URL is the address to open: the hello route through haproxy.
func (s Settings) URL() string {
	return "https://" + Hostname() + ":" + strconv.Itoa(s.ProxyPort) + "/"
}

// CurlCommand works on the machine as it is: it trusts the local CA for
// this one request and resolves the hostname to the loopback listener,
// with no change to /etc/hosts or the system's trust store.
func (s Settings) CurlCommand() string {
	return fmt.Sprintf("curl --cacert %s --resolve %s:%d:127.0.0.1 %s", s.CARoot(), Hostname(), s.ProxyPort, s.URL())
}

// RepoFiles is the content of the demo's desired-state repository, by
// path: the platform file and one service in the convention form (its
// image derived from the registry, the service name and the version),
// routed through the proxy listener on port.
func RepoFiles(registry string, port int) map[string]string {
	return map[string]string{
		"mcp.toml": fmt.Sprintf(`# The demo platform: one node, this machine.
domain = %q
registry = %q
# The proxy's listener ports: a route on any other port is invalid.
listeners = [%d]

[[nodes]]
name = %q
addresses = ["127.0.0.1"]
`, Domain, registry+"/"+RepoPath, port, Node),
		"services/" + Service + ".toml": fmt.Sprintf(`# The demo service. Its image is derived: <registry>/%[1]s:<version>.
# Change the version to v2, commit and push: the agent starts the new
# version next to the old one, switches the route once it answers, then
# stops the old one. The URL stays the same:
#   https://%[3]s:%[4]d/
name = %[1]q
node = %[2]q
version = "v1"

[[components]]
name = %[1]q

# Served by haproxy on its listener port %[4]d for the hostname
# %[3]s. l7: haproxy terminates TLS with the
# certificate mcp issued from its local CA and forwards plain HTTP to the
# host port the agent leases (passed to the container as $PORT).
[[components.routes]]
port = %[4]d
mode = "l7"
`, Service, Node, Hostname(), port),
	}
}

// AgentConfigText is the agent configuration the demo runs with: the
// demo's own state, socket and containerd namespace, a short poll (the
// agent also watches the bare repo, so a push is seen at once), plain
// HTTP for the local registry only, the demo's haproxy as the proxy and
// the local CA as the certificate issuer.
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

# The demo's private haproxy (master-worker; demo.sh stops it by PID). The
# agent writes haproxy.cfg into config_dir at start and changes routes over
# the admin socket; the master socket lets it reload when haproxy.cfg
# changes.
[proxy]
driver = "haproxy"
listeners = [{ port = %d, address = "127.0.0.1" }]
backend_host = "127.0.0.1"
cert_dir = %q
config_dir = %q
admin_socket = %q
master_socket = %q

# Certificates from the agent's embedded CA in <state_dir>/ca; root.pem
# there is what a client trusts.
[certs]
issuer = "local"
`, Node, s.AgentDir(), s.RepoDir(), Branch, Poll, s.Containerd, s.Namespace, s.Socket(), s.Registry,
		s.ProxyPort, s.ProxyCertDir(), s.HAProxyDir(), s.HAProxyAdmin(), s.HAProxyMaster())
	return b.String()
}

// NextSteps is what Up prints at the end: the URL to open, how to change
// the version and watch the redeploy through the proxy, and how to stop.
// port is the host port the container answers on directly (0 when
// unknown).
func NextSteps(s Settings, port int) string {
	direct := "http://127.0.0.1:<port>/"
	if port != 0 {
		direct = fmt.Sprintf("http://127.0.0.1:%d/", port)
	}
	// The API socket and the agent's state (the CA root) are root's; a
	// user who ran the demo through sudo owns the clone but still needs
	// sudo for these.
	mcp, curl := s.MCP, s.CurlCommand()
	if s.Owner != "" {
		mcp = "sudo " + mcp
		curl = "sudo " + curl
	}
	var b strings.Builder
	fmt.Fprintf(&b, `The URL to open: %s
(haproxy, TLS, a certificate from mcp's local CA). On this machine, as is:

  %s

In a browser: point %s at 127.0.0.1 in /etc/hosts and
trust %s (how: docs/demo.md).

Deploy v2: edit the definition, commit and push; the agent sees the push at
once, starts v2 next to v1 (on the other port of its pair), switches the
route to it once it answers, then stops v1. The URL stays the same.

  cd %s
  sed -i 's/v1/v2/' services/%s.toml
  git commit -qam "hello v2" && git push -q

Watch it:

  %s status --socket %s
  %s
  curl %s    # the container directly; its port moves with each deploy

More: %s logs %s --socket %s
      ./demo.sh status; the agent's log is %s

Stop everything and remove the demo: sudo ./demo.sh down
`, s.URL(), curl, Hostname(), s.CARoot(), s.WorkDir, Service, mcp, s.Socket(), curl, direct, mcp, Service, s.Socket(), s.AgentLog())
	return b.String()
}
