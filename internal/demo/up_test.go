package demo

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/pkg/namespaces"

	"metacircular.net/mcp/internal/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// buildMCP builds ./cmd/mcp into dir: the agent runs as its own process,
// as in the demo.
func buildMCP(t *testing.T, dir string) string {
	t.Helper()
	out, err := exec.CommandContext(t.Context(), "go", "list", "-m", "-f", "{{.Dir}}").Output()
	if err != nil {
		t.Fatalf("module root: %v", err)
	}
	bin := filepath.Join(dir, "mcp")
	cmd := exec.CommandContext(t.Context(), "go", "build", "-o", bin, "./cmd/mcp")
	cmd.Dir = strings.TrimSpace(string(out))
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build ./cmd/mcp: %v\n%s", err, b)
	}
	return bin
}

// The whole demo against testenv's containerd and registry: Up deploys v1
// and it answers; the README's edit, commit and push bring v2 on the same
// port; a second Up says the demo runs; Down leaves no agent, container or
// state behind.
func TestUpPushDown(t *testing.T) {
	if testing.Short() {
		t.Skip("starts an agent against containerd")
	}
	address, ns := testenv.Containerd(t)
	reg := testenv.Registry(t)
	tmp := t.TempDir()
	s := Settings{
		StateDir:   filepath.Join(tmp, "state"),
		WorkDir:    filepath.Join(tmp, "work"),
		Containerd: address,
		Namespace:  ns,
		Registry:   reg,
		MCP:        buildMCP(t, tmp),
	}
	var out bytes.Buffer
	p := NewPrinter(&out)
	t.Cleanup(func() {
		// A failed test must not leave its agent behind.
		if pid, ok := agentRunning(s); ok {
			_ = stopPID(context.Background(), pid, 10*time.Second)
		}
		if t.Failed() {
			t.Logf("demo output:\n%s\nagent log:\n%s", out.String(), tail(s.AgentLog(), 40))
		}
	})

	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()
	if err := Up(ctx, s, p, 2*time.Minute); err != nil {
		t.Fatalf("Up: %v", err)
	}
	port, err := apiStatusPort(ctx, s)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		fmt.Sprintf("hello version=v1 port=%d", port), // the answer
		"hello    hello      running  v1",             // mcp status
		"sed -i 's/v1/v2/' services/hello.toml",       // next steps
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("Up's output lacks %q", want)
		}
	}

	// The README's next steps, as the user runs them.
	edit := exec.CommandContext(ctx, "sed", "-i", "s/v1/v2/", "services/hello.toml")
	edit.Dir = s.WorkDir
	if b, err := edit.CombinedOutput(); err != nil {
		t.Fatalf("sed: %v\n%s", err, b)
	}
	pushed := time.Now()
	if err := git(ctx, s.WorkDir, "commit", "-qam", "hello v2"); err != nil {
		t.Fatal(err)
	}
	if err := git(ctx, s.WorkDir, "push", "-q"); err != nil {
		t.Fatal(err)
	}
	pid, _ := agentRunning(s)
	port2, err := waitRunning(ctx, s, pid, "v2", time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if port2 != port {
		t.Errorf("v2 runs on port %d, v1 ran on %d: want the same", port2, port)
	}
	body, err := get(ctx, fmt.Sprintf("http://127.0.0.1:%d/", port), 30*time.Second)
	if err != nil || !strings.Contains(body, "version=v2") {
		t.Fatalf("after the push: %q, %v", body, err)
	}
	t.Logf("push to v2 serving: %v", time.Since(pushed).Round(time.Millisecond))

	if err := Up(ctx, s, p, time.Minute); !errors.Is(err, ErrRunning) {
		t.Errorf("second Up: %v, want ErrRunning", err)
	}

	if err := Down(ctx, s, p, DownOptions{RemoveWork: true}); err != nil {
		t.Fatalf("Down: %v", err)
	}
	if _, err := os.Stat(s.StateDir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("state dir after Down: %v", err)
	}
	if _, err := os.Stat(s.WorkDir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("work dir after Down --remove-work: %v", err)
	}
	if pid != 0 && pidAlive(pid) {
		t.Errorf("agent pid %d still runs after Down", pid)
	}
	c, err := client.New(address)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctrs, err := c.Containers(namespaces.WithNamespace(ctx, ns))
	if err != nil {
		t.Fatal(err)
	}
	if len(ctrs) != 0 {
		t.Errorf("%d containers left in %s after Down", len(ctrs), ns)
	}
	if _, err := get(ctx, fmt.Sprintf("http://127.0.0.1:%d/", port), time.Second); err == nil {
		t.Errorf("port %d still answers after Down", port)
	}
}

func pidAlive(pid int) bool {
	_, err := os.Stat(fmt.Sprintf("/proc/%d", pid))
	return err == nil && !isZombie(pid)
}
