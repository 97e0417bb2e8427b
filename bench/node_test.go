package bench

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/containerd/containerd/v2/client"

	"metacircular.net/mcp/agent"
	"metacircular.net/mcp/api"
	"metacircular.net/mcp/internal/testenv"
)

// skipShort skips an end-to-end benchmark under -short.
func skipShort(b *testing.B) {
	b.Helper()
	if testing.Short() {
		b.Skip("end-to-end benchmark against real containerd, registry and git: skipped under -short")
	}
}

// envInt reads a positive integer setting from the environment.
func envInt(b *testing.B, name string, def int) int {
	b.Helper()
	s := os.Getenv(name)
	if s == "" {
		return def
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 0 {
		b.Fatalf("%s=%q: want a non-negative integer", name, s)
	}
	return n
}

// node is one simulated node: an agent configuration over its own
// containerd namespace, Git repository, state dir and API socket.
type node struct {
	b         *testing.B
	dir       string
	repo      *testenv.Repo
	registry  string
	address   string
	namespace string
	config    string // agent.toml's text
}

// newNode prepares a node in a fresh containerd namespace (so, with the
// daemon's isolated content sharing, every pull is cold). ports is the
// [ports] range ("" for the default). The namespace is cleaned by clean,
// or when the benchmark ends.
func newNode(b *testing.B, address, registry, ports string) *node {
	b.Helper()
	n := &node{
		b: b, dir: b.TempDir(), repo: testenv.GitRepo(b), registry: registry,
		address: address, namespace: "mcpbench-" + testenv.RandomID(6),
	}
	n.config = fmt.Sprintf(`node = "n1"
state_dir = %q
host_root = %q

[git]
url = %q
poll_interval = "30s"

[containerd]
address = %q
namespace = %q
stop_grace = "2s"

[api]
socket = %q

[log]
level = "warn"

[[registries]]
host = %q
plain_http = true
`, filepath.Join(n.dir, "state"), filepath.Join(n.dir, "host"), n.repo.Bare, address, n.namespace,
		n.socket(), registry)
	if ports != "" {
		n.config += fmt.Sprintf("\n[ports]\nrange = %q\n", ports)
	}
	b.Cleanup(func() { _ = n.clean() })
	return n
}

func (n *node) socket() string { return filepath.Join(n.dir, "mcp.sock") }

// platform is the repo's mcp.toml for the single node.
func (n *node) platform() string {
	return `domain = "bench.internal"
registry = "` + n.registry + `/mcpbench"

[[nodes]]
name = "n1"
addresses = ["127.0.0.1"]
`
}

// service is a one-component definition with one L7 route, as the agent
// tests use.
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

// services returns mcp.toml plus count services running image.
func (n *node) services(count int, image string) map[string]string {
	files := map[string]string{"mcp.toml": n.platform()}
	for i := range count {
		name := fmt.Sprintf("svc%03d", i)
		files["services/"+name+".toml"] = service(name, image)
	}
	return files
}

// agentConfig parses the node's configuration.
func (n *node) agentConfig() *agent.Config {
	n.b.Helper()
	cfg, err := agent.ParseConfig(strings.NewReader(n.config), "agent.toml")
	if err != nil {
		n.b.Fatalf("agent config: %v", err)
	}
	return cfg
}

// writeConfig writes agent.toml for the mcp binary and returns its path.
func (n *node) writeConfig() string {
	n.b.Helper()
	p := filepath.Join(n.dir, "agent.toml")
	if err := os.WriteFile(p, []byte(n.config), 0o600); err != nil {
		n.b.Fatal(err)
	}
	return p
}

// startDaemon runs the agent in daemon mode (watcher, poll timer, API) in
// this process, logging warnings to a file. stop cancels it and waits.
func (n *node) startDaemon() (stop func()) {
	n.b.Helper()
	logf, err := os.Create(filepath.Join(n.dir, "agent.log"))
	if err != nil {
		n.b.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(logf, &slog.HandlerOptions{Level: slog.LevelWarn}))
	cfg := n.agentConfig()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, err := agent.Daemon(ctx, cfg, log, false)
		done <- err
	}()
	return func() {
		cancel()
		if err := <-done; err != nil {
			n.b.Errorf("agent: %v", err)
		}
		logf.Close()
	}
}

// waitApplied waits until the agent on the node's socket has applied the
// repo's head with every service running, and returns its status.
func (n *node) waitApplied(ctx context.Context, services int, exited <-chan struct{}) api.Status {
	n.b.Helper()
	head := n.repo.Head().String()
	c := api.NewClient(n.socket())
	var last string
	for {
		st, err := c.Status(ctx)
		if err == nil {
			running := 0
			for _, s := range st.Services {
				if s.State == api.StateRunning {
					running++
				}
			}
			if st.AppliedCommit == head && st.LastReconcile.Result == agent.ResultOK && running == services {
				return st
			}
			last = fmt.Sprintf("applied %.12s (want %.12s), last reconcile %s %s, %d/%d running",
				st.AppliedCommit, head, st.LastReconcile.Result, st.LastReconcile.Error, running, services)
		} else {
			last = err.Error()
		}
		select {
		case <-ctx.Done():
			n.b.Fatalf("agent did not apply %.12s with %d services running: %s\n%s", head, services, last, n.logTail())
		case <-exited:
			n.b.Fatalf("agent exited before applying %.12s: %s\n%s", head, last, n.logTail())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func (n *node) logTail() string {
	b, _ := os.ReadFile(filepath.Join(n.dir, "agent.log"))
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) > 20 {
		lines = lines[len(lines)-20:]
	}
	return strings.Join(lines, "\n")
}

// clean removes everything in the node's namespace (containers included).
func (n *node) clean() error {
	return cleanNamespace(n.address, n.namespace)
}

func cleanNamespace(address, ns string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c, err := client.New(address)
	if err != nil {
		return err
	}
	defer c.Close()
	return testenv.CleanNamespace(ctx, c, ns)
}

// lsRemote returns a function running `git ls-remote <bare>
// refs/heads/main`, the raw limit of a no-change poll; the isolated git
// environment is built once, outside any timing.
func lsRemote(b *testing.B, r *testenv.Repo) func() time.Duration {
	b.Helper()
	tmpl := testenv.GitCommand(b, r.Work, "ls-remote", r.Bare, "refs/heads/"+testenv.GitBranch)
	return func() time.Duration {
		cmd := exec.Command(tmpl.Path, tmpl.Args[1:]...)
		cmd.Dir, cmd.Env = tmpl.Dir, tmpl.Env
		t0 := time.Now()
		out, err := cmd.Output()
		d := time.Since(t0)
		if err != nil || len(out) < 40 {
			b.Fatalf("git ls-remote: %v %q", err, out)
		}
		return d
	}
}

// portRange returns count consecutive ports that were free when checked,
// as [lo, hi]. They are drawn from mcp's default lease range (10000 to
// 32767), below Linux's ephemeral range: a port in the ephemeral range can
// be taken at any moment by an outgoing connection (the benchmark's own
// pollers make hundreds), and a container that cannot bind never serves.
func portRange(b *testing.B, count int) (lo, hi int) {
	b.Helper()
next:
	for range 100 {
		p := 10000 + rand.IntN(32767-10000-count)
		for q := p; q < p+count; q++ {
			ln, err := net.Listen("tcp", ":"+strconv.Itoa(q))
			if err != nil {
				continue next
			}
			ln.Close()
		}
		return p, p + count - 1
	}
	b.Fatalf("no %d consecutive free ports", count)
	return 0, 0
}

// median of ds; ds is sorted in place.
func median(ds []time.Duration) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	slices.Sort(ds)
	m := len(ds) / 2
	if len(ds)%2 == 1 {
		return ds[m]
	}
	return (ds[m-1] + ds[m]) / 2
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
func us(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) }
