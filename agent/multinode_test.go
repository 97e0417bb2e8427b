package agent

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"metacircular.net/mcp/api"
	"metacircular.net/mcp/executor/dns/rfc2136"
	"metacircular.net/mcp/internal/testenv"
	"metacircular.net/mcp/statusnote"
)

// clusterNode is one of the simulated nodes of TestMultiNodeMove: a
// running agent (in-process Daemon, with its API socket) with its own
// state dir, host root and containerd namespace, following the repository
// the whole cluster shares, and a network namespace whose address is the
// node's address in mcp.toml.
type clusterNode struct {
	*testNode
	name   string
	net    *testenv.NetNS
	client *api.Client
}

// The front port each node's namespace listens on: what a client that
// resolved a service's name reaches at the node's address.
const frontPort = 8080

// newClusterNode configures node name on the shared repo; the agent is
// started by start.
func newClusterNode(t *testing.T, name string, repo *testenv.Repo, reg string, ns *testenv.NetNS, extra string) *clusterNode {
	t.Helper()
	address, cns := testenv.Containerd(t)
	n := &testNode{t: t, repo: repo, registry: reg, address: address, namespace: cns, dir: t.TempDir()}
	sock := filepath.Join(n.dir, "mcp.sock")
	text := fmt.Sprintf(`node = %q
state_dir = %q
host_root = %q

[git]
url = %q
poll_interval = "1s"

[containerd]
address = %q
namespace = %q
stop_grace = "2s"

[api]
socket = %q

[[registries]]
host = %q
plain_http = true
`, name, filepath.Join(n.dir, "state"), filepath.Join(n.dir, "host"), repo.Bare, address, cns, sock, reg) + extra
	cfg, err := ParseConfig(strings.NewReader(text), name+".toml")
	if err != nil {
		t.Fatalf("%s: agent config: %v", name, err)
	}
	n.cfg = cfg
	return &clusterNode{testNode: n, name: name, net: ns, client: api.NewClient(sock)}
}

// start runs the node's agent until the test ends (stopped first among
// the cleanups that follow, so its containers are still there to be
// cleaned with its namespace).
func (c *clusterNode) start(t *testing.T) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	log := slog.New(slog.NewTextHandler(io.MultiWriter(testWriter(t), &c.logs), &slog.HandlerOptions{Level: slog.LevelInfo}))
	done := make(chan error, 1)
	go func() {
		_, err := Daemon(ctx, c.cfg, log, false)
		done <- err
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil && !errors.Is(err, context.Canceled) {
				t.Errorf("%s: agent: %v", c.name, err)
			}
		case <-time.After(time.Minute):
			t.Errorf("%s: agent did not stop within a minute", c.name)
		}
	})
	waitUntil(t, c.name+"'s API", time.Minute, func() (bool, string) {
		_, err := c.client.Status(ctx)
		return err == nil, fmt.Sprint(err)
	})
}

func (c *clusterNode) status(t *testing.T) api.Status {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	st, err := c.client.Status(ctx)
	if err != nil {
		t.Fatalf("%s: status: %v", c.name, err)
	}
	return st
}

// services is "name=state" for every service the node's API lists.
func (c *clusterNode) services(t *testing.T) []string {
	t.Helper()
	var out []string
	for _, s := range c.status(t).Services {
		out = append(out, s.Name+"="+s.State)
	}
	return out
}

func (c *clusterNode) service(t *testing.T, name string) (api.ServiceStatus, bool) {
	t.Helper()
	for _, s := range c.status(t).Services {
		if s.Name == name {
			return s, true
		}
	}
	return api.ServiceStatus{}, false
}

func (c *clusterNode) dataDir(service string) string {
	return filepath.Join(c.cfg.HostRoot, "srv", service)
}

// front serves the node's address: a connection to <address>:frontPort
// is handed to the service's port on this node, as the node's API tells
// it at that moment, and closed when the service does not run here. It
// stands in for the node's ingress, so that what DNS answers can be
// followed to what serves.
func (c *clusterNode) front(t *testing.T, service string) {
	t.Helper()
	ln, err := c.net.Listen(netip.AddrPortFrom(c.net.Addr, frontPort).String())
	if err != nil {
		t.Fatalf("%s: listen in %s: %v", c.name, c.net.Name, err)
	}
	var wg sync.WaitGroup
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	wg.Go(func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Go(func() {
				defer conn.Close()
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				defer cancel()
				st, err := c.client.ServiceStatus(ctx, service)
				if err != nil || len(st.Services) == 0 || st.Services[0].State != api.StateRunning {
					return
				}
				var port int
				for _, p := range st.Services[0].Components[0].Ports {
					port = p
				}
				back, err := (&net.Dialer{}).DialContext(ctx, "tcp", fmt.Sprintf("127.0.0.1:%d", port))
				if err != nil {
					return
				}
				defer back.Close()
				go func() { _, _ = io.Copy(back, conn); _ = back.(*net.TCPConn).CloseWrite() }()
				_, _ = io.Copy(conn, back)
			})
		}
	})
}

// waitUntil polls cond until it holds or the time is up; detail says what
// was last seen.
func waitUntil(t *testing.T, what string, within time.Duration, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		ok, detail := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %s (last seen: %s)", what, within, detail)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func nodeService(name, node, image, extra string) string {
	return fmt.Sprintf(`name = %q
node = %q
%s
[[components]]
name = %q
image = %q

[[components.routes]]
port = 443
mode = "l7"
`, name, node, extra, name, image)
}

// TestMultiNodeMove runs three nodes on one machine: three agents with
// their own state dirs, host roots and containerd namespaces, each node's
// address a real address of a network namespace of its own, one
// repository, one DNS server (bind9). Each node deploys only its own
// services and publishes them under its own address. Moving db from n1 to
// n2 by editing node removes it from n1 at once; n2 holds it (state
// waiting, saying why) until /srv/db exists there, then deploys it, and
// db's A record follows from n1's address to n2's, where it serves. A
// service whose definition says [data] may_start_empty moves without a
// hold. Every node's status is in its API and in its signed notes ref.
func TestMultiNodeMove(t *testing.T) {
	if testing.Short() {
		t.Skip("real containerd, bind9, network namespaces")
	}
	begin := time.Now()
	mark := func(what string) { t.Logf("[%6.1fs] %s", time.Since(begin).Seconds(), what) }
	nss := testenv.NetNamespaces(t, 3)
	named := testenv.StartBind9(t, svcZone)
	reg := testenv.Registry(t)
	repo := testenv.GitRepo(t)
	img := testenv.TestImage(t, reg, testenv.UniqueRepo("multinode"), "v1")
	mark("namespaces, bind9, registry, image ready")

	var nodes []*clusterNode
	var platform strings.Builder
	fmt.Fprintf(&platform, "domain = \"test.internal\"\nregistry = %q\n", reg+"/mcptest")
	for i, ns := range nss {
		name := fmt.Sprintf("n%d", i+1)
		key := testenv.NewSSHSigner(t, "mcp-agent@"+name)
		extra := fmt.Sprintf(`
[[dns]]
zone = %q
driver = "rfc2136"
server = %q
tsig_key_name = %q
tsig_secret_file = %q
ttl = 5
timeout = "2s"

[status]
notes = true
signing_key_file = %q
`, svcZone, named.Addr, named.KeyName, named.KeyFile, key.KeyFile)
		nodes = append(nodes, newClusterNode(t, name, repo, reg, ns, extra))
		fmt.Fprintf(&platform, "\n[[nodes]]\nname = %q\naddresses = [%q]\n", name, ns.Addr.String())
	}
	n1, n2, n3 := nodes[0], nodes[1], nodes[2]

	admin, err := rfc2136.New(rfc2136.Config{Server: named.Addr, KeyName: named.KeyName, SecretFile: named.KeyFile})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	// aRecords is what bind9 answers for <service>.svc.mcp.test.internal.
	aRecords := func(service string) []string {
		recs, err := admin.List(ctx, svcZone, service+"."+svcZone)
		if err != nil {
			t.Fatalf("dns: %v", err)
		}
		var out []string
		for _, r := range recs {
			if r.Type == "A" {
				out = append(out, r.Value)
			}
		}
		sort.Strings(out)
		return out
	}
	addr := func(n *clusterNode) []string { return []string{n.net.Addr.String()} }
	// get fetches / at the address DNS gives for service, through that
	// node's front: the answer comes from wherever the name points.
	get := func(service string) (int, error) {
		as := aRecords(service)
		if len(as) != 1 {
			return 0, fmt.Errorf("%s resolves to %q", service, as)
		}
		reqCtx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		req, _ := http.NewRequestWithContext(reqCtx, http.MethodGet, fmt.Sprintf("http://%s:%d/", as[0], frontPort), nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return 0, err
		}
		resp.Body.Close()
		return resp.StatusCode, nil
	}

	// Five services: one resident on each node, db (data in /srv/db) on
	// n1 and cache (may start empty) on n3.
	files := map[string]string{
		"mcp.toml":            platform.String(),
		"services/alpha.toml": nodeService("alpha", "n1", img, ""),
		"services/beta.toml":  nodeService("beta", "n2", img, ""),
		"services/gamma.toml": nodeService("gamma", "n3", img, ""),
		"services/db.toml":    nodeService("db", "n1", img, ""),
		"services/cache.toml": nodeService("cache", "n3", img, "\n[data]\nmay_start_empty = true\n"),
	}
	repo.Commit(files, "three nodes, five services")
	repo.Push()
	for _, n := range nodes {
		n.start(t)
		n.front(t, "db")
	}
	mark("three agents started")

	// Each node deploys exactly its own services, a service new to the
	// platform starting empty (no hold), and publishes them at its own
	// address.
	own := map[*clusterNode][]string{
		n1: {"alpha=running", "db=running"},
		n2: {"beta=running"},
		n3: {"cache=running", "gamma=running"},
	}
	for n, want := range own {
		waitUntil(t, n.name+" runs its services", 2*time.Minute, func() (bool, string) {
			got := n.services(t)
			return slices.Equal(got, want), fmt.Sprint(got)
		})
	}
	for svc, n := range map[string]*clusterNode{"alpha": n1, "db": n1, "beta": n2, "gamma": n3, "cache": n3} {
		if got := aRecords(svc); !slices.Equal(got, addr(n)) {
			t.Fatalf("%s resolves to %q, want %s's address %q", svc, got, n.name, addr(n))
		}
	}
	if code, err := get("db"); err != nil || code != http.StatusOK {
		t.Fatalf("db through n1's address: %d, %v", code, err)
	}
	// The data the move is about.
	if err := os.WriteFile(filepath.Join(n1.dataDir("db"), "state"), []byte("rows\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	mark("initial deploy: every node runs its own, DNS has each node's address, db serves at n1's")

	// The move: db to n2, cache to n1 (it may start empty).
	repo.Commit(map[string]string{
		"services/db.toml":    nodeService("db", "n2", img, ""),
		"services/cache.toml": nodeService("cache", "n1", img, "\n[data]\nmay_start_empty = true\n"),
	}, "move db to n2 and cache to n1")
	repo.Push()
	moved := time.Now()

	// n1 stops db at once; n2 holds it and says why.
	waitUntil(t, "n1 removes db and runs cache", time.Minute, func() (bool, string) {
		got := n1.services(t)
		return slices.Equal(got, []string{"alpha=running", "cache=running"}), fmt.Sprint(got)
	})
	waitUntil(t, "n3 removes cache", time.Minute, func() (bool, string) {
		got := n3.services(t)
		return slices.Equal(got, []string{"gamma=running"}), fmt.Sprint(got)
	})
	waitUntil(t, "n2 holds db", time.Minute, func() (bool, string) {
		s, ok := n2.service(t, "db")
		return ok && s.State == api.StateWaiting, fmt.Sprintf("%+v", s)
	})
	mark(fmt.Sprintf("move pushed: n1 stopped db, n2 holds it (%.1fs after the push)", time.Since(moved).Seconds()))
	db, _ := n2.service(t, "db")
	for _, want := range []string{"/srv/db to exist on this node", "node n1", "may_start_empty"} {
		if !strings.Contains(db.Waiting, want) {
			t.Errorf("n2's status for db: waiting %q, want it to say %q", db.Waiting, want)
		}
	}
	for id := range n1.containers() {
		if strings.HasPrefix(id, "db.") {
			t.Errorf("n1 still has db's container %s", id)
		}
	}
	for id := range n2.containers() {
		if strings.HasPrefix(id, "db.") {
			t.Errorf("n2 started db's container %s before its data is there", id)
		}
	}
	if _, err := os.Stat(n2.dataDir("db")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("n2's /srv/db was created while db was held: %v", err)
	}
	// The reconcile that holds db is partial and says why; the hold is no
	// failure (never quarantined).
	if lr := n2.status(t).LastReconcile; !strings.Contains(lr.Error, "db waits for /srv/db") {
		t.Errorf("n2's last reconcile does not report the hold: %+v", lr)
	}
	if got := aRecords("db"); len(got) != 0 {
		t.Errorf("db still resolves to %q while no node runs it", got)
	}
	// cache followed without a hold, and its name with it.
	if got := aRecords("cache"); !slices.Equal(got, addr(n1)) {
		t.Errorf("cache resolves to %q after its move, want n1's %q", got, addr(n1))
	}
	// The old node keeps its copy: nothing ever deletes a data directory.
	if b, err := os.ReadFile(filepath.Join(n1.dataDir("db"), "state")); err != nil || string(b) != "rows\n" {
		t.Fatalf("n1's /srv/db after the move: %q, %v", b, err)
	}

	// A few more reconciles: still held, not quarantined.
	time.Sleep(3 * time.Second)
	if s, _ := n2.service(t, "db"); s.State != api.StateWaiting {
		t.Fatalf("db on n2 after more reconciles: %+v", s)
	}
	if q := n2.status(t).Quarantine; len(q) != 0 {
		t.Fatalf("the hold quarantined something: %+v", q)
	}

	// The operator moves the data (rsync/scp on real nodes).
	if err := os.MkdirAll(filepath.Dir(n2.dataDir("db")), 0o755); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("cp", "-a", n1.dataDir("db"), n2.dataDir("db")).CombinedOutput(); err != nil {
		t.Fatalf("copy the data: %v: %s", err, out)
	}
	copied := time.Now()
	waitUntil(t, "n2 runs db once its data is there", time.Minute, func() (bool, string) {
		got := n2.services(t)
		return slices.Equal(got, []string{"beta=running", "db=running"}), fmt.Sprint(got)
	})
	mark(fmt.Sprintf("data copied: n2 runs db (%.1fs after the copy)", time.Since(copied).Seconds()))
	waitUntil(t, "db's A record follows to n2", 30*time.Second, func() (bool, string) {
		got := aRecords("db")
		return slices.Equal(got, addr(n2)), fmt.Sprint(got)
	})
	if code, err := get("db"); err != nil || code != http.StatusOK {
		t.Fatalf("db through the address DNS now gives (n2's): %d, %v", code, err)
	}
	// n1's address no longer serves db.
	reqCtx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(reqCtx, http.MethodGet, fmt.Sprintf("http://%s:%d/", n1.net.Addr, frontPort), nil)
	if resp, err := http.DefaultClient.Do(req); err == nil {
		resp.Body.Close()
		t.Fatalf("n1's address still serves db: %s", resp.Status)
	}
	if b, err := os.ReadFile(filepath.Join(n2.dataDir("db"), "state")); err != nil || string(b) != "rows\n" {
		t.Fatalf("n2's /srv/db after the deploy: %q, %v (the deploy must not replace the moved data)", b, err)
	}
	mark(fmt.Sprintf("db's record points at n2 and serves there (%.1fs after the push)", time.Since(moved).Seconds()))

	// Every node's status: its API, and its signed note in the shared
	// repository, each under its own ref.
	want := map[string][]string{
		"n1": {"alpha=running", "cache=running"},
		"n2": {"beta=running", "db=running"},
		"n3": {"gamma=running"},
	}
	for _, n := range nodes {
		if st := n.status(t); st.Node != n.name {
			t.Errorf("%s's API says node %q", n.name, st.Node)
		}
	}
	waitUntil(t, "every node's latest status note", time.Minute, func() (bool, string) {
		notes, err := statusnote.Open(ctx, repo.Bare)
		if err != nil {
			return false, err.Error()
		}
		var seen []string
		for _, name := range []string{"n1", "n2", "n3"} {
			note, err := notes.Latest(name)
			if err != nil {
				return false, err.Error()
			}
			var got []string
			for _, s := range note.Record.Services {
				got = append(got, s.Name+"="+s.State)
			}
			seen = append(seen, name+": "+strings.Join(got, " "))
			if note.Record.Node != name || !slices.Equal(got, want[name]) {
				return false, strings.Join(seen, "; ")
			}
		}
		return true, ""
	})
	mark("every node's status note is in the repository")
}
