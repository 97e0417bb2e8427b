package agent

import (
	"context"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"metacircular.net/mcp/executor"
	"metacircular.net/mcp/executor/certs"
	"metacircular.net/mcp/executor/dns"
	"metacircular.net/mcp/executor/dns/rfc2136"
	"metacircular.net/mcp/executor/haproxy"
	"metacircular.net/mcp/internal/testenv"
	"metacircular.net/mcp/planner"
	"metacircular.net/mcp/spec"
)

// fullNode is a node with everything a routed service can touch: a real
// haproxy (two listeners, l7 and l4), a real bind9 serving svc.mcp.<domain>
// (records over RFC 2136 with TSIG), and the local CA (the default issuer
// once a proxy is configured). The crash walk and the fault suite share it.
type fullNode struct {
	*ingressNode
	named *testenv.Bind9Daemon
	// secret is the TSIG secret file the agent reads: tests of a wrong key
	// overwrite it, and put the good one back with restoreKey.
	secret string
	admin  dns.Provider
}

func newFullNode(t *testing.T, opts ...nodeOption) *fullNode {
	t.Helper()
	return newFullNodeWith(t, nil, opts...)
}

// newFullNodeWith is newFullNode with more configuration that needs the
// node's bind9 (an ACME CA validating through it, say).
func newFullNodeWith(t *testing.T, more func(named *testenv.Bind9Daemon) []nodeOption, opts ...nodeOption) *fullNode {
	t.Helper()
	named := testenv.StartBind9(t, svcZone)
	if more != nil {
		opts = append(opts, more(named)...)
	}
	good, err := os.ReadFile(named.KeyFile)
	if err != nil {
		t.Fatal(err)
	}
	secret := filepath.Join(t.TempDir(), "tsig.key")
	if err := os.WriteFile(secret, good, 0o600); err != nil {
		t.Fatal(err)
	}
	admin, err := rfc2136.New(rfc2136.Config{Server: named.Addr, KeyName: named.KeyName, SecretFile: named.KeyFile})
	if err != nil {
		t.Fatal(err)
	}
	dnsCfg := withConfig(fmt.Sprintf(`
[[dns]]
zone = %q
driver = "rfc2136"
server = %q
tsig_key_name = %q
tsig_secret_file = %q
ttl = 60
timeout = "2s"
`, svcZone, named.Addr, named.KeyName, secret))
	n := newIngressNode(t, append([]nodeOption{dnsCfg}, opts...)...)
	return &fullNode{ingressNode: n, named: named, secret: secret, admin: admin}
}

// features are what the agent of a fullNode plans with.
var fullFeatures = planner.Features{Routes: true, Certs: true, Records: true, Health: true}

// planFull is what the node's agent will do next (the plan `mcp plan
// --socket` shows), from the pushed work tree and the registry.
func (n *fullNode) planFull() *planner.Plan {
	n.t.Helper()
	repo, err := spec.LoadDir(n.repo.Work)
	if err != nil {
		n.t.Fatalf("load repo: %v", err)
	}
	return planner.Compute(planner.InputFor(repo, n.cfg.Node, n.snapshot(), fullFeatures, n.cfg.AllowRemoveAll))
}

// routedService is web for a fullNode: two components, api behind the l4
// listener (TLS passed through to the container, which serves mcp's
// certificate from /srv/web/certs) and web behind the l7 listener (TLS
// terminated by haproxy with mcp's certificate). Both routes use web's
// hostname, so the service has one certificate and one DNS name.
func (n *fullNode) routedService(apiImage, webImage string) string {
	return fmt.Sprintf(`name = "web"
node = "n1"

[[components]]
name = "api"
image = %q
env = ["HELLO_TLS_CERT=/srv/web/certs/cert.pem", "HELLO_TLS_KEY=/srv/web/certs/key.pem"]

[[components.routes]]
name = "pass"
port = %d
mode = "l4"

[[components]]
name = "web"
image = %q

[[components.routes]]
port = %d
mode = "l7"
`, apiImage, n.l4, webImage, n.l7)
}

const (
	webHost  = "web." + svcZone
	keepHost = "keep." + svcZone
)

// nodeState is what a user can observe of a fullNode, in a form two
// nodes (or the same node at two times) can be compared by: names and
// shapes, not the port numbers picked at apply time.
type nodeState struct {
	Containers []string // running containers
	Leases     []string // lease keys
	Services   []string // recorded services
	Routes     []string // haproxy routes: listener port/mode/hostname
	Records    []string // records in bind9 under svc.mcp.test.internal
	CertFiles  []string // certificate files under the host root and the state dir
	Open       int      // journal entries in flight
}

func (s nodeState) String() string {
	return fmt.Sprintf("containers %v\nleases %v\nservices %v\nroutes %v\nrecords %v\ncert files %v\njournal in flight %d",
		s.Containers, s.Leases, s.Services, s.Routes, s.Records, s.CertFiles, s.Open)
}

func (n *fullNode) router() *haproxy.Driver {
	n.t.Helper()
	d, err := haproxy.New(n.hcfg)
	if err != nil {
		n.t.Fatal(err)
	}
	return d
}

// observe reads the node's state from the runtime, the registry, haproxy,
// bind9 and the file system, and checks the invariants that hold at any
// converged point: every route's backend is a port leased to its
// component's active slot, no port is leased twice.
func (n *fullNode) observe() nodeState {
	t := n.t
	t.Helper()
	var s nodeState
	for id, c := range n.containers() {
		if c.Status != executor.StatusRunning {
			t.Errorf("container %s is %s, want running", id, c.Status)
		}
		s.Containers = append(s.Containers, id)
	}
	snap := n.snapshot()
	leased := map[string]int{} // "service/component/route/slot" → port
	byPort := map[int]string{}
	for _, l := range snap.Leases {
		s.Leases = append(s.Leases, l.Key())
		leased[l.Key()] = l.Port
		if other, dup := byPort[l.Port]; dup {
			t.Errorf("port %d is leased twice: %s and %s", l.Port, other, l.Key())
		}
		byPort[l.Port] = l.Key()
	}
	s.Services = slices.Sorted(maps.Keys(snap.Services))
	routes, err := n.router().List(context.Background())
	if err != nil {
		t.Fatalf("list haproxy's routes: %v", err)
	}
	for _, r := range routes {
		_, port, _ := strings.Cut(r.Listener, ":")
		s.Routes = append(s.Routes, port+"/"+r.Mode+"/"+r.Hostname)
		_, bport, _ := strings.Cut(r.Backend, ":")
		owner := ""
		for key, p := range leased {
			if fmt.Sprint(p) == bport {
				owner = key
			}
		}
		if owner == "" {
			t.Errorf("haproxy route %s → %s points at a port no lease holds (leases %v)", r.ID(), r.Backend, leased)
		}
	}
	for _, host := range []string{webHost, keepHost} {
		recs, err := n.admin.List(context.Background(), svcZone, host)
		if err != nil {
			t.Fatalf("list records of %s: %v", host, err)
		}
		for _, r := range recs {
			s.Records = append(s.Records, r.Name+" "+r.Type+" "+r.Value)
		}
	}
	for _, root := range []string{n.hostRoot, filepath.Join(n.cfg.StateDir, "certs")} {
		_ = filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return nil //nolint:nilerr // an unreadable entry is simply not listed
			}
			rel, _ := filepath.Rel(n.dir, p)
			if strings.HasSuffix(p, ".pem") || strings.HasSuffix(p, ".key") {
				s.CertFiles = append(s.CertFiles, rel)
			}
			return nil
		})
	}
	s.Open = len(n.journalOpen())
	for _, l := range [][]string{s.Containers, s.Leases, s.Routes, s.Records, s.CertFiles} {
		slices.Sort(l)
	}
	return s
}

// l4Chain is the chain mcp wrote for web's l4 route: the roots a client of
// the passed-through TLS trusts.
func (n *fullNode) l7Chain(host string) string {
	p, _ := certs.L7Paths(filepath.Join(n.hostRoot, executor.DefaultCertDir), host)
	return p
}

func (n *fullNode) l4Chain(service string) string {
	p, _, _ := certs.L4Paths(filepath.Join(n.hostRoot, "srv"), service)
	return p
}

// serves checks what a client sees through haproxy: web's l7 and l4
// routes answer with version, keep's l7 route with v1.
func (n *fullNode) serves(t *testing.T, version string) {
	t.Helper()
	l7 := fileChain(t, n.l7Chain(webHost))
	mustThrough(t, n.l7, webHost, &l7, "version="+version)
	l4 := fileChain(t, n.l4Chain("web"))
	mustThrough(t, n.l4, webHost, &l4, "version="+version)
	keep := fileChain(t, n.l7Chain(keepHost))
	mustThrough(t, n.l7, keepHost, &keep, "version=v1")
}
