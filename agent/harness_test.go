package agent

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"metacircular.net/mcp/executor"
	"metacircular.net/mcp/executor/containerd"
	"metacircular.net/mcp/internal/testenv"
	"metacircular.net/mcp/registry"
)

// testNode is one simulated node: a real containerd namespace, a real
// registry, a real Git repository and the agent's own state dir.
type testNode struct {
	t         *testing.T
	cfg       *Config
	cfgFile   string // the same configuration, for `mcp agent --config`
	repo      *testenv.Repo
	registry  string
	address   string
	namespace string
	dir       string
	// logs collects every line the agent logs in once(), for tests that
	// check what is (and is not) logged.
	logs lockedBuffer
}

// lockedBuffer is a bytes.Buffer safe for the agent's goroutines.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

type nodeOption func(*nodeSettings)

type nodeSettings struct {
	address  string
	registry string
	poll     string // git.poll_interval
	extra    string // appended to the agent config
}

func withContainerd(address string) nodeOption {
	return func(s *nodeSettings) { s.address = address }
}

func withRegistry(hostport string) nodeOption {
	return func(s *nodeSettings) { s.registry = hostport }
}

// withPollInterval sets git.poll_interval (default "1s"), e.g. "1h" for a
// daemon whose reconciles must come only from the watcher or a request.
func withPollInterval(d string) nodeOption {
	return func(s *nodeSettings) { s.poll = d }
}

func withConfig(toml string) nodeOption {
	return func(s *nodeSettings) { s.extra += toml }
}

func newTestNode(t *testing.T, opts ...nodeOption) *testNode {
	t.Helper()
	var s nodeSettings
	for _, o := range opts {
		o(&s)
	}
	var address, ns string
	if s.address != "" {
		// A test-owned daemon: it is torn down with everything in it, and
		// the shared one need not even start.
		address, ns = s.address, "mcptest-"+testenv.RandomID(6)
	} else {
		address, ns = testenv.Containerd(t)
	}
	if s.poll == "" {
		s.poll = "1s"
	}
	if s.registry == "" {
		s.registry = testenv.Registry(t)
	}
	n := &testNode{t: t, repo: testenv.GitRepo(t), registry: s.registry, address: address, namespace: ns, dir: t.TempDir()}
	text := fmt.Sprintf(`node = "n1"
state_dir = %q
host_root = %q

[git]
url = %q
poll_interval = %q

[containerd]
address = %q
namespace = %q
stop_grace = "2s"

[api]
socket = %q
`, filepath.Join(n.dir, "state"), filepath.Join(n.dir, "host"), n.repo.Bare, s.poll, address, ns, filepath.Join(n.dir, "mcp.sock"))
	if !strings.Contains(s.extra, "[[registries]]") {
		text += fmt.Sprintf("\n[[registries]]\nhost = %q\nplain_http = true\n", s.registry)
	}
	text += s.extra
	cfg, err := ParseConfig(strings.NewReader(text), "agent.toml")
	if err != nil {
		t.Fatalf("agent config: %v", err)
	}
	n.cfg = cfg
	n.cfgFile = filepath.Join(n.dir, "agent.toml")
	if err := os.WriteFile(n.cfgFile, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return n
}

// platform is the repo's mcp.toml for the single test node.
func (n *testNode) platform() string {
	return `domain = "test.internal"
registry = "` + n.registry + `/mcptest"

[[nodes]]
name = "n1"
addresses = ["127.0.0.1"]
`
}

// service is a one-component definition with one L7 route.
func service(name, image string) string {
	return fmt.Sprintf(`name = %q
node = "n1"

[[components]]
name = %q
image = %q

[[components.routes]]
port = 443
mode = "l7"
`, name, name, image)
}

// push commits files (path → content) and pushes them.
func (n *testNode) push(files map[string]string, msg string) {
	n.t.Helper()
	n.repo.Commit(files, msg)
	n.repo.Push()
}

func (n *testNode) remove(paths []string, msg string) {
	n.t.Helper()
	n.repo.Remove(paths, msg)
	n.repo.Push()
}

func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(testWriter(t), &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// testLogs holds each running test's agent log.
var testLogs sync.Map // *testing.T → *failLog

// failLog collects the log of the agents a test runs and prints it once
// the test has ended, and only if it failed: a passing test stays quiet,
// and a failing one shows its own message first and the log after it
// (CI keeps only the head and the tail of a long output).
type failLog struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *failLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

// testWriter is t's agent log (one per test, shared by all its agents, so
// their lines stay in the order they happened).
func testWriter(t *testing.T) io.Writer {
	if l, ok := testLogs.Load(t); ok {
		return l.(*failLog)
	}
	l := &failLog{}
	testLogs.Store(t, l)
	t.Cleanup(func() {
		testLogs.Delete(t)
		if !t.Failed() {
			return
		}
		l.mu.Lock()
		defer l.mu.Unlock()
		t.Logf("agent log (the test failed):\n%s", strings.TrimRight(l.buf.String(), "\n"))
	})
	return l
}

// once runs `mcp agent --once` in-process.
func (n *testNode) once() Outcome {
	n.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	log := slog.New(slog.NewTextHandler(io.MultiWriter(testWriter(n.t), &n.logs), &slog.HandlerOptions{Level: slog.LevelDebug}))
	out, err := Daemon(ctx, n.cfg, log, true)
	if err != nil {
		n.t.Fatalf("agent --once: %v", err)
	}
	return out
}

// snapshot reads the registry the way `mcp plan --registry` does.
func (n *testNode) snapshot() registry.Snapshot {
	n.t.Helper()
	reg, err := registry.Open(n.cfg.RegistryPath(), registry.ReadOnly())
	if err != nil {
		n.t.Fatalf("open registry: %v", err)
	}
	defer reg.Close()
	snap, err := reg.Snapshot(context.Background())
	if err != nil {
		n.t.Fatalf("snapshot: %v", err)
	}
	return snap
}

// appliedCommit is the commit the registry says was applied last.
func (n *testNode) appliedCommit() string {
	n.t.Helper()
	reg, err := registry.Open(n.cfg.RegistryPath(), registry.ReadOnly())
	if err != nil {
		n.t.Fatalf("open registry: %v", err)
	}
	defer reg.Close()
	c, err := reg.AppliedCommit(context.Background())
	if err != nil {
		n.t.Fatalf("applied commit: %v", err)
	}
	return c
}

// journalOpen lists journal entries still in flight.
func (n *testNode) journalOpen() []registry.Entry {
	n.t.Helper()
	reg, err := registry.Open(n.cfg.RegistryPath(), registry.ReadOnly())
	if err != nil {
		n.t.Fatalf("open registry: %v", err)
	}
	defer reg.Close()
	open, err := reg.JournalOpen(context.Background())
	if err != nil {
		n.t.Fatalf("journal: %v", err)
	}
	return open
}

// port is the host port leased for a service's route in slot a.
func (n *testNode) port(service, component, route string) int {
	n.t.Helper()
	for _, l := range n.snapshot().Leases {
		if l.Service == service && l.Component == component && l.Route == route && l.Slot == registry.SlotA {
			return l.Port
		}
	}
	n.t.Fatalf("no lease for %s/%s/%s", service, component, route)
	return 0
}

// containers lists what runs in the node's namespace, through the real
// driver.
func (n *testNode) containers() map[string]executor.Container {
	n.t.Helper()
	d := n.driver()
	list, err := d.List(context.Background())
	if err != nil {
		n.t.Fatalf("list containers: %v", err)
	}
	out := map[string]executor.Container{}
	for _, c := range list {
		out[c.ID] = c
	}
	return out
}

func (n *testNode) driver() *containerd.Driver {
	n.t.Helper()
	d, err := containerd.New(context.Background(), containerd.Config{
		Address: n.cfg.Containerd.Address, Namespace: n.cfg.Containerd.Namespace, StateDir: n.cfg.StateDir,
	})
	if err != nil {
		n.t.Fatalf("containerd: %v", err)
	}
	n.t.Cleanup(func() { d.Close() })
	return d
}

// get fetches http://127.0.0.1:port/ and returns the body, waiting a
// bounded time for the container to listen.
func get(t *testing.T, port int) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	url := fmt.Sprintf("http://127.0.0.1:%d/", port)
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return string(b)
			}
		}
		select {
		case <-ctx.Done():
			t.Fatalf("GET %s: no 200 within the wait (last error: %v)", url, err)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func wantResult(t *testing.T, out Outcome, want string) {
	t.Helper()
	if out.Result != want {
		t.Fatalf("reconcile result = %q (%s), want %q", out.Result, out.Err, want)
	}
}

func mustOpen(t *testing.T, n *testNode) *registry.Registry {
	t.Helper()
	reg, err := registry.Open(n.cfg.RegistryPath())
	if err != nil {
		t.Fatalf("open registry: %v", err)
	}
	t.Cleanup(func() { reg.Close() })
	return reg
}
