package demo

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
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

// The whole demo against testenv's containerd and registry, with the
// haproxy Up starts itself: Up deploys v1 and it answers directly and
// through haproxy over TLS (checked against the local CA's root); the
// README's edit, commit and push bring v2 behind the same URL, on the
// other port of the slot pair, while a client requesting through the
// proxy sees no failed request; a second Up says the demo runs; Down
// leaves no agent, haproxy, listener, container or state behind.
func TestUpPushDown(t *testing.T) {
	if testing.Short() {
		t.Skip("starts an agent against containerd, and haproxy")
	}
	if _, err := exec.LookPath("haproxy"); err != nil {
		testenv.Missing(t, "haproxy is not installed (Debian package haproxy); run .ci/run")
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
		// Not the demo's 8443: a demo may run on this machine.
		ProxyPort: testenv.FreePort(t),
	}
	var out bytes.Buffer
	p := NewPrinter(&out)
	t.Cleanup(func() {
		// A failed test must not leave its agent or haproxy behind.
		if pid, ok := agentRunning(s); ok {
			_ = stopPID(context.Background(), pid, 10*time.Second)
		}
		_ = stopHAProxy(context.Background(), s)
		// Backstop: the pid files live in the state dir, which Down
		// removes; anything still running from this test's directory goes.
		killUnder(t, tmp)
		if t.Failed() {
			t.Logf("demo output:\n%s\nagent log:\n%s\nhaproxy log:\n%s", out.String(), tail(s.AgentLog(), 40), tail(s.HAProxyLog(), 20))
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
	hostname := "hello.svc.mcp.demo.internal"
	for _, want := range []string{
		fmt.Sprintf("hello version=v1 port=%d (the container directly)", port),                      // the answer
		fmt.Sprintf("https://%s:%d/ → hello version=v1 port=%d", hostname, s.ProxyPort, port),       // through haproxy
		"hello    hello      running  v1",                                                           // mcp status: the component,
		fmt.Sprintf("127.0.0.1:%d  %s  l7    127.0.0.1:%d  confirmed", s.ProxyPort, hostname, port), // the route,
		hostname + "  local", // the certificate
		fmt.Sprintf("curl --cacert %s --resolve %s:%d:127.0.0.1 https://%s:%d/", s.CARoot(), hostname, s.ProxyPort, hostname, s.ProxyPort),
		"sed -i 's/v1/v2/' services/hello.toml", // next steps
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("Up's output lacks %q", want)
		}
	}
	// The printed command works as printed.
	curl := exec.CommandContext(ctx, "sh", "-c", s.CurlCommand()+" -fsS")
	if b, err := curl.CombinedOutput(); err != nil || !strings.Contains(string(b), "hello version=v1") {
		t.Errorf("%s: %v: %s", s.CurlCommand(), err, b)
	}

	// A client requesting through the proxy for the whole redeploy: one
	// failed request is a failure of the demo's promise.
	var (
		mu               sync.Mutex
		ok, failed, seen int
		failures         []string
	)
	pollCtx, stopPoll := context.WithCancel(ctx)
	polled := make(chan struct{})
	go func() {
		defer close(polled)
		for pollCtx.Err() == nil {
			body, err := getTLSOnce(pollCtx, s)
			if pollCtx.Err() != nil {
				return
			}
			mu.Lock()
			switch {
			case err != nil:
				failed++
				failures = append(failures, err.Error())
			case strings.Contains(body, "version=v2"):
				seen++
				ok++
			default:
				ok++
			}
			mu.Unlock()
			time.Sleep(20 * time.Millisecond)
		}
	}()

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
	// Blue-green: v2 starts on the other port of the pair.
	if port2 == port {
		t.Errorf("v2 runs on port %d like v1: want the other slot's port", port2)
	}
	body, err := get(ctx, fmt.Sprintf("http://127.0.0.1:%d/", port2), 30*time.Second)
	if err != nil || !strings.Contains(body, "version=v2") {
		t.Fatalf("after the push, directly: %q, %v", body, err)
	}
	body, err = getTLS(ctx, s, 30*time.Second)
	if err != nil || !strings.Contains(body, "version=v2") {
		t.Fatalf("after the push, through haproxy: %q, %v", body, err)
	}
	t.Logf("push to v2 serving through haproxy: %v", time.Since(pushed).Round(time.Millisecond))
	// A few more requests on v2, then stop the client.
	time.Sleep(500 * time.Millisecond)
	stopPoll()
	<-polled
	mu.Lock()
	t.Logf("requests through haproxy during the redeploy: %d ok (%d answered v2), %d failed", ok, seen, failed)
	if failed > 0 {
		t.Errorf("%d requests through haproxy failed during the redeploy, first: %s", failed, failures[0])
	}
	if seen == 0 {
		t.Errorf("the client never saw v2 through haproxy")
	}
	mu.Unlock()

	if err := Up(ctx, s, p, time.Minute); !errors.Is(err, ErrRunning) {
		t.Errorf("second Up: %v, want ErrRunning", err)
	}

	hpid, _ := recordedPID(s.HAProxyPID(), s.StateDir)
	if hpid == 0 {
		t.Errorf("no haproxy recorded in %s before Down", s.HAProxyPID())
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
	if hpid != 0 && pidAlive(hpid) {
		t.Errorf("haproxy pid %d still runs after Down", hpid)
	}
	if !portFree(s.ProxyPort) {
		t.Errorf("haproxy's listener 127.0.0.1:%d is still taken after Down", s.ProxyPort)
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

// killUnder SIGKILLs every process whose command line names a path under
// dir (the test's own agent and haproxy), after giving them a few seconds
// to finish exiting, and says so: a leftover is a bug in the code under
// test, reported without leaving the process behind.
func killUnder(t *testing.T, dir string) {
	t.Helper()
	var left []int
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		left = processesUnder(dir)
		if len(left) == 0 || time.Now().After(deadline) {
			break
		}
	}
	for _, pid := range left {
		cmdline, _ := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "cmdline"))
		t.Errorf("process %d (%s) outlived the demo's teardown; killed", pid, bytes.ReplaceAll(cmdline, []byte{0}, []byte{' '}))
		_ = syscall.Kill(pid, syscall.SIGKILL)
	}
}

// processesUnder lists the live processes whose command line names a path
// under dir.
func processesUnder(dir string) []int {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	var pids []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == os.Getpid() {
			continue
		}
		cmdline, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil || !bytes.Contains(cmdline, []byte(dir+"/")) || isZombie(pid) {
			continue
		}
		pids = append(pids, pid)
	}
	return pids
}
