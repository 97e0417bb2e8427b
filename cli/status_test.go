package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"metacircular.net/mcp/api"
	"metacircular.net/mcp/planner"
	"metacircular.net/mcp/registry"
	"metacircular.net/mcp/spec"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/")

// fakeAgent is an api.Backend holding fixed answers. The Backend interface
// is mcp's own, so this is one more implementation of it, not a stand-in
// for an outside system; it lets the commands run against a real server on
// a real socket.
type fakeAgent struct {
	mu         sync.Mutex
	status     api.Status
	containers []api.Container
	snapshot   api.SnapshotResponse
	sync       api.SyncResult
	logDir     string
}

func (a *fakeAgent) Status(context.Context) (api.Status, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.status, nil
}

func (a *fakeAgent) Containers(context.Context) ([]api.Container, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.containers, nil
}

func (a *fakeAgent) Snapshot(context.Context) (api.SnapshotResponse, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.snapshot, nil
}

func (a *fakeAgent) Sync(context.Context) (api.SyncResult, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.sync, nil
}

func (a *fakeAgent) LogFile(service, component string) (string, error) {
	svc, ok := a.status.Service(service)
	if !ok {
		return "", fmt.Errorf("service %q is not deployed on %s: %w", service, a.status.Node, api.ErrNotFound)
	}
	for _, c := range svc.Components {
		if c.Name == component {
			return filepath.Join(a.logDir, service+"."+component+".log"), nil
		}
	}
	return "", fmt.Errorf("service %q has no component %q: %w", service, component, api.ErrNotFound)
}

var t0 = time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)

func newFakeAgent(t *testing.T) *fakeAgent {
	services := []api.ServiceStatus{
		{Name: "broken", State: api.StateInvalid, Diagnostics: []string{
			"services/broken.toml: components[0].image: is required",
			"services/broken.toml: components[0].routes[0].port: 70000 is outside 1-65535",
		}},
		{Name: "mcq", State: api.StateFailed, Commit: "0123456789abcdef0123", SpecHash: "sha256:aa",
			Error: "pull reg.example.net:5000/mcq:v2: not found",
			Components: []api.ComponentStatus{
				{Name: "mcq", Version: "v1", State: api.ComponentRunning, Slot: "a", Ports: map[string]int{"default": 10002}, ContainerID: "mcq.mcq.a", Restarts: 0},
			}},
		{Name: "web", State: api.StateRunning, Commit: "0123456789abcdef0123", SpecHash: "sha256:bb",
			Components: []api.ComponentStatus{
				{Name: "web", Version: "v1.2.0", State: api.ComponentRunning, Slot: "a", Ports: map[string]int{"default": 10000, "admin": 10004}, ContainerID: "web.web.a", Restarts: 2, LastError: "exited with status 1"},
				{Name: "worker", Version: "v1.2.0", State: api.ComponentCrashLoop, Slot: "b", Ports: map[string]int{"fixed:9000": 9000}, ContainerID: "web.worker.b", Restarts: 5},
			}},
	}
	rec := api.Reconcile{Started: t0, Finished: t0.Add(2500 * time.Millisecond), Commit: "0123456789abcdef0123",
		PlanHash: "sha256:71ad4e97438b42b2a1f441051c07d25c420f8c4f6326490e91a0188574fde337",
		Result:   api.ResultPartial, Error: "1 service failed: mcq", Steps: 4}
	return &fakeAgent{
		logDir: t.TempDir(),
		status: api.Status{Node: "n1", AgentVersion: "v0.1.0", AppliedCommit: "0123456789abcdef0123", Branch: "main", LastReconcile: rec, Services: services},
		containers: []api.Container{
			{ID: "mcq.mcq.a", Service: "mcq", Component: "mcq", Slot: "a", Version: "v1", Image: "reg.example.net:5000/mcq:v1", Status: "running", PID: 4242},
			{ID: "web.web.a", Service: "web", Component: "web", Slot: "a", Version: "v1.2.0", Status: "running", PID: 4300},
			{ID: "web.worker.b", Service: "web", Component: "worker", Slot: "b", Version: "v1.2.0", Status: "stopped"},
		},
		sync: api.SyncResult{Reconcile: rec, Services: services},
	}
}

// serve runs the API for b on a socket in a temporary directory until the
// test ends.
func serve(t *testing.T, b api.Backend) string {
	t.Helper()
	sock := filepath.Join(t.TempDir(), "mcp.sock")
	ctx, cancel := context.WithCancel(context.Background())
	l, err := api.CreateSocket(ctx, sock, 0, "")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		done <- api.NewServer(b, api.WithFollowInterval(10*time.Millisecond)).Serve(ctx, l)
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	})
	return sock
}

// syncBuffer is a bytes.Buffer safe to read while a command writes to it.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func run(ctx context.Context, args ...string) (code int, stdout, stderr string) {
	var out, errb syncBuffer
	code = Main(ctx, args, strings.NewReader(""), &out, &errb)
	return code, out.String(), errb.String()
}

// golden compares got with testdata/<name>, or rewrites it with -update.
func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./cli -update to create it)", err)
	}
	if got != string(want) {
		t.Errorf("output differs from %s (go test ./cli -update rewrites it)\n--- got\n%s--- want\n%s", path, got, want)
	}
}

func TestAgentReadCommands(t *testing.T) {
	a := newFakeAgent(t)
	sock := serve(t, a)
	tests := []struct {
		name   string
		args   []string
		code   int
		golden string
	}{
		{"status", []string{"status"}, 0, "status.golden"},
		{"status json", []string{"status", "--json"}, 0, "status.json.golden"},
		{"status one service", []string{"status", "web"}, 0, "status-web.golden"},
		{"status invalid service", []string{"status", "broken"}, 0, "status-broken.golden"},
		{"ps", []string{"ps"}, 0, "ps.golden"},
		{"ps json", []string{"ps", "--json"}, 0, "ps.json.golden"},
		{"sync partial fails", []string{"sync"}, 1, "sync-partial.golden"},
		{"sync json", []string{"sync", "--json"}, 1, "sync.json.golden"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, out, errOut := run(context.Background(), append(tt.args, "--socket", sock)...)
			if code != tt.code {
				t.Errorf("exit %d, want %d (stderr %q)", code, tt.code, errOut)
			}
			if errOut != "" {
				t.Errorf("stderr: %q", errOut)
			}
			golden(t, tt.golden, out)
		})
	}
}

func TestSyncOK(t *testing.T) {
	a := newFakeAgent(t)
	a.sync = api.SyncResult{Reconcile: api.Reconcile{Started: t0, Finished: t0.Add(time.Second), Commit: "abc", Result: api.ResultSkipped}}
	code, out, errOut := run(context.Background(), "sync", "--socket", serve(t, a))
	if code != 0 || errOut != "" {
		t.Errorf("exit %d, stderr %q", code, errOut)
	}
	golden(t, "sync-skipped.golden", out)
}

func TestStatusEmptyNode(t *testing.T) {
	a := &fakeAgent{status: api.Status{Node: "n1", AgentVersion: "dev"}}
	code, out, _ := run(context.Background(), "status", "--socket", serve(t, a))
	if code != 0 {
		t.Errorf("exit %d", code)
	}
	golden(t, "status-empty.golden", out)
	code, out, _ = run(context.Background(), "ps", "--socket", serve(t, a))
	if code != 0 || out != "no containers\n" {
		t.Errorf("ps on an empty node: exit %d, %q", code, out)
	}
}

func TestAgentCommandErrors(t *testing.T) {
	sock := serve(t, newFakeAgent(t))
	missing := filepath.Join(t.TempDir(), "mcp.sock")
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"unknown service", []string{"status", "nope", "--socket", sock}, "mcp: service \"nope\" is not known on node n1\n"},
		{"logs unknown service", []string{"logs", "nope", "--socket", sock}, "mcp: service \"nope\" is not known on node n1\n"},
		{"logs unknown component", []string{"logs", "web", "db", "--socket", sock}, "mcp: service \"web\" has no component \"db\": not found\n"},
		{"logs of an invalid service", []string{"logs", "broken", "--socket", sock}, "mcp: service \"broken\" has no components on node n1 (state invalid): nothing has logs\n"},
		{"logs not written yet", []string{"logs", "mcq", "--socket", sock}, "mcp: mcq/mcq has no log file yet\n"},
		{"no agent", []string{"status", "--socket", missing}, "mcp: no agent is listening on " + missing + ": is `mcp agent` running? (check --socket)\n"},
		{"no agent ps", []string{"ps", "--socket", missing}, "mcp: no agent is listening on " + missing + ": is `mcp agent` running? (check --socket)\n"},
		{"no agent sync", []string{"sync", "--socket", missing}, "mcp: no agent is listening on " + missing + ": is `mcp agent` running? (check --socket)\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, out, errOut := run(context.Background(), tt.args...)
			if code != ExitError || errOut != tt.want || out != "" {
				t.Errorf("exit %d, stdout %q, stderr %q\nwant exit 1, stderr %q", code, out, errOut, tt.want)
			}
		})
	}
}

func TestSocketFromEnvironment(t *testing.T) {
	sock := serve(t, newFakeAgent(t))
	t.Setenv(socketEnv, sock)
	code, out, errOut := run(context.Background(), "ps")
	if code != 0 || !strings.HasPrefix(out, "ID ") {
		t.Errorf("ps with $%s: exit %d, %q, %q", socketEnv, code, out, errOut)
	}
	// --socket wins over the environment.
	missing := filepath.Join(t.TempDir(), "other.sock")
	if code, _, errOut := run(context.Background(), "ps", "--socket", missing); code != 1 || !strings.Contains(errOut, missing) {
		t.Errorf("--socket did not override $%s: %d %q", socketEnv, code, errOut)
	}
}

func TestLogs(t *testing.T) {
	a := newFakeAgent(t)
	sock := serve(t, a)
	writeLog(t, filepath.Join(a.logDir, "web.web.log"), "one\ntwo\nthree\n")
	writeLog(t, filepath.Join(a.logDir, "web.worker.log"), "w1\nw2\n")
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"logs", "web"}, "one\ntwo\nthree\n"}, // the first component
		{[]string{"logs", "web", "-n", "2"}, "two\nthree\n"},
		{[]string{"logs", "web", "--lines=0"}, ""},
		{[]string{"logs", "web", "worker", "-n", "1"}, "w2\n"},
	}
	for _, tt := range tests {
		code, out, errOut := run(context.Background(), append(tt.args, "--socket", sock)...)
		if code != 0 || out != tt.want {
			t.Errorf("%v: exit %d, %q (stderr %q), want %q", tt.args, code, out, errOut, tt.want)
		}
	}
	if code, _, errOut := run(context.Background(), "logs", "web", "-n", "-5", "--socket", sock); code != 1 || !strings.Contains(errOut, "-n -5") {
		t.Errorf("-n -5: %d %q", code, errOut)
	}
}

func TestLogsFollowUntilInterrupted(t *testing.T) {
	a := newFakeAgent(t)
	sock := serve(t, a)
	path := filepath.Join(a.logDir, "web.web.log")
	writeLog(t, path, "old\nlast\n")

	ctx, cancel := context.WithCancel(context.Background())
	var out, errOut syncBuffer
	done := make(chan int, 1)
	go func() {
		done <- Main(ctx, []string{"logs", "web", "-f", "-n", "1", "--socket", sock}, strings.NewReader(""), &out, &errOut)
	}()
	waitFor(t, &out, "last\n")
	f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintln(f, "new line")
	f.Close()
	waitFor(t, &out, "last\nnew line\n")
	cancel() // Ctrl-C
	select {
	case code := <-done:
		if code != 0 || errOut.String() != "" {
			t.Errorf("interrupted follow: exit %d, stderr %q", code, errOut.String())
		}
	case <-time.After(10 * time.Second):
		t.Fatal("logs -f did not stop when interrupted")
	}
}

func waitFor(t *testing.T, b *syncBuffer, want string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for b.String() != want {
		if time.Now().After(deadline) {
			t.Fatalf("output %q, want %q", b.String(), want)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func writeLog(t *testing.T, path, s string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(s), 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestPlanFromAgent checks that `mcp plan --socket` plans with the agent's
// snapshot and features: its hash is the one the agent computes from the
// same inputs, and differs from a plan that ignored the features.
func TestPlanFromAgent(t *testing.T) {
	const repoDir = "testdata/planrepo"
	a := newFakeAgent(t)
	a.snapshot = api.SnapshotResponse{
		Snapshot: registry.Snapshot{Node: "n1", Services: map[string]registry.Deployed{}},
		Features: planner.Features{Health: true},
	}
	sock := serve(t, a)

	code, out, errOut := run(context.Background(), "plan", "--repo", repoDir, "--node", "n1", "--socket", sock, "--json")
	if code != ExitChanges {
		t.Fatalf("exit %d, stderr %q", code, errOut)
	}
	var got planner.Plan
	if err := json.Unmarshal([]byte(out), &got); err != nil {
		t.Fatal(err)
	}

	repo, err := spec.LoadDir(repoDir)
	if err != nil {
		t.Fatal(err)
	}
	in := planner.InputFor(repo, "n1", a.snapshot.Snapshot, a.snapshot.Features, false)
	if want := planner.Compute(in).Hash; got.Hash != want {
		t.Errorf("plan --socket hash %s, the agent's inputs give %s", got.Hash, want)
	}
	in.Features = planner.Features{}
	if planner.Compute(in).Hash == got.Hash {
		t.Error("the agent's features did not reach the plan")
	}

	code, _, errOut = run(context.Background(), "plan", "--repo", repoDir, "--node", "n2", "--socket", sock)
	if code != ExitError || !strings.Contains(errOut, `runs node "n1", not "n2"`) {
		t.Errorf("wrong node: exit %d, %q", code, errOut)
	}
	code, _, errOut = run(context.Background(), "plan", "--repo", repoDir, "--node", "n1", "--socket", sock, "--registry", "x.db")
	if code != ExitError || !strings.Contains(errOut, "give one") {
		t.Errorf("--socket with --registry: exit %d, %q", code, errOut)
	}
}
