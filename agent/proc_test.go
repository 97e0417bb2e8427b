package agent

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"metacircular.net/mcp/api"
)

// The mcp binary, built once per test binary: crash tests need a real
// process to kill, and `mcp status`/`mcp plan` are exercised as users run
// them (the cli package imports this one, so the tests here cannot call it
// in-process).
var mcpBin struct {
	once sync.Once
	dir  string
	path string
	err  error
}

// removeMCPBinary runs after all tests (see TestMain).
func removeMCPBinary() {
	if mcpBin.dir != "" {
		_ = os.RemoveAll(mcpBin.dir)
	}
}

// mcpBinary builds ./cmd/mcp from this module, once, and returns its path.
func mcpBinary(t *testing.T) string {
	t.Helper()
	mcpBin.once.Do(func() {
		root, err := moduleRoot()
		if err != nil {
			mcpBin.err = err
			return
		}
		goTool, err := exec.LookPath("go")
		if err != nil {
			// go test puts GOROOT/bin first on PATH; GOROOT is the fallback.
			goTool = filepath.Join(os.Getenv("GOROOT"), "bin", "go")
		}
		if mcpBin.dir, err = os.MkdirTemp("", "mcp-agent-test-bin-"); err != nil {
			mcpBin.err = err
			return
		}
		path := filepath.Join(mcpBin.dir, "mcp")
		cmd := exec.Command(goTool, "build", "-o", path, "./cmd/mcp")
		cmd.Dir = root
		if out, err := cmd.CombinedOutput(); err != nil {
			mcpBin.err = fmt.Errorf("go build ./cmd/mcp: %w\n%s", err, out)
			return
		}
		mcpBin.path = path
	})
	if mcpBin.err != nil {
		t.Fatalf("build mcp: %v", mcpBin.err)
	}
	return mcpBin.path
}

// moduleRoot is the nearest directory above the working directory (the
// package's, under go test) that holds go.mod.
func moduleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("no go.mod above the test's working directory")
		}
		dir = parent
	}
}

// procResult is how an mcp subprocess ended and what it wrote to stderr
// (the agent's log).
type procResult struct {
	state *os.ProcessState
	log   string
}

// killed reports whether the process died of SIGKILL.
func (r procResult) killed() bool {
	ws, ok := r.state.Sys().(syscall.WaitStatus)
	return ok && ws.Signaled() && ws.Signal() == syscall.SIGKILL
}

// lines counts the log lines containing s.
func (r procResult) lines(s string) int {
	n := 0
	for _, l := range strings.Split(r.log, "\n") {
		if strings.Contains(l, s) {
			n++
		}
	}
	return n
}

// mcpCommand prepares `mcp args...`. The process gets its own process
// group and dies with the test binary; the caller must wait for it.
func mcpCommand(t *testing.T, ctx context.Context, args ...string) *exec.Cmd {
	t.Helper()
	cmd := exec.CommandContext(ctx, mcpBinary(t), args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	cmd.WaitDelay = 10 * time.Second
	return cmd
}

// agentProcess runs `mcp agent --config <node's file> --once extra...` to
// its end (bounded) and returns how it ended. The log goes to the test log.
func (n *testNode) agentProcess(extra ...string) procResult {
	n.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	args := append([]string{"agent", "--config", n.cfgFile, "--once"}, extra...)
	cmd := mcpCommand(n.t, ctx, args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	err := cmd.Run()
	n.t.Logf("mcp %s:\n%s", strings.Join(args, " "), stderr.String())
	var exit *exec.ExitError
	if err != nil && !errors.As(err, &exit) {
		n.t.Fatalf("mcp %s: %v", strings.Join(args, " "), err)
	}
	if ctx.Err() != nil {
		n.t.Fatalf("mcp %s did not finish within the wait", strings.Join(args, " "))
	}
	return procResult{state: cmd.ProcessState, log: stderr.String()}
}

// recoverOnce runs `mcp agent --once` after a crash and requires a clean
// exit: every service converged.
func (n *testNode) recoverOnce() {
	n.t.Helper()
	r := n.agentProcess()
	if !r.state.Success() {
		n.t.Fatalf("mcp agent --once after the crash: %v, want exit 0 (every service converged)", r.state)
	}
}

// mcpCLI runs an mcp command (status, plan...) and returns its stdout and
// exit code.
func mcpCLI(t *testing.T, args ...string) (string, int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := mcpCommand(t, ctx, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	var exit *exec.ExitError
	if err != nil && !errors.As(err, &exit) {
		t.Fatalf("mcp %s: %v\n%s", strings.Join(args, " "), err, stderr.String())
	}
	if stderr.Len() > 0 {
		t.Logf("mcp %s (stderr):\n%s", strings.Join(args, " "), stderr.String())
	}
	return stdout.String(), cmd.ProcessState.ExitCode()
}

// startDaemon runs the agent in daemon mode in-process (supervisor, API,
// watcher, poll timer) until the test ends, and returns a client of its API
// once the socket answers. Its log also goes to n.logs.
func (n *testNode) startDaemon(opts ...DaemonOption) *api.Client {
	n.t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	log := slog.New(slog.NewTextHandler(io.MultiWriter(testWriter(n.t), &n.logs), &slog.HandlerOptions{Level: slog.LevelDebug}))
	go func() {
		_, err := Daemon(ctx, n.cfg, log, false, opts...)
		done <- err
	}()
	// Stopped before the test's namespace is cleaned (cleanups run last
	// registered first), so the supervisor does not fight the clean-up.
	n.t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				n.t.Errorf("agent daemon: %v", err)
			}
		case <-time.After(time.Minute):
			n.t.Errorf("agent daemon did not stop within a minute of its context ending")
		}
	})
	c := api.NewClient(n.cfg.API.Socket)
	waitFor(n.t, 30*time.Second, "the agent's API to answer", func() bool {
		select {
		case err := <-done:
			n.t.Fatalf("agent daemon exited: %v", err)
		default:
		}
		_, err := c.Status(context.Background())
		return err == nil
	})
	return c
}

// waitFor polls cond every 50ms until it holds, failing the test with what
// was awaited after timeout (a failure guard, not a timing assertion).
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// agentProc is an `mcp agent` subprocess whose log lines are watched as
// they come.
type agentProc struct {
	t    *testing.T
	args []string
	cmd  *exec.Cmd
	done chan struct{} // closed once the process was waited for
	err  error         // Wait's, once done is closed

	mu  sync.Mutex
	log strings.Builder
}

// startAgent starts `mcp agent --config <node's file> extra...`; onLine,
// when set, sees every log line (on the reading goroutine, in order). The
// process is killed and reaped when the test ends, if it still runs.
func (n *testNode) startAgent(onLine func(p *agentProc, line string), extra ...string) *agentProc {
	n.t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	p := &agentProc{t: n.t, args: append([]string{"agent", "--config", n.cfgFile}, extra...), done: make(chan struct{})}
	p.cmd = mcpCommand(n.t, ctx, p.args...)
	stderr, err := p.cmd.StderrPipe()
	if err != nil {
		n.t.Fatal(err)
	}
	if err := p.cmd.Start(); err != nil {
		cancel()
		n.t.Fatalf("start mcp %s: %v", strings.Join(p.args, " "), err)
	}
	// The pipe is drained to its end before Wait, as os/exec requires.
	go func() {
		sc := bufio.NewScanner(stderr)
		sc.Buffer(nil, 1<<20)
		for sc.Scan() {
			line := sc.Text()
			p.mu.Lock()
			p.log.WriteString(line + "\n")
			p.mu.Unlock()
			if onLine != nil {
				onLine(p, line)
			}
		}
		_, _ = io.Copy(io.Discard, stderr)
		p.err = p.cmd.Wait()
		close(p.done)
	}()
	n.t.Cleanup(func() {
		cancel() // kills the process if it still runs
		<-p.done
		n.t.Logf("mcp %s:\n%s", strings.Join(p.args, " "), p.output())
	})
	return p
}

// signal sends sig to the agent process (not its group).
func (p *agentProc) signal(sig syscall.Signal) {
	_ = syscall.Kill(p.cmd.Process.Pid, sig)
}

// wait waits (bounded) for the process to end and returns how it ended.
func (p *agentProc) wait(timeout time.Duration) procResult {
	p.t.Helper()
	select {
	case <-p.done:
	case <-time.After(timeout):
		p.t.Fatalf("mcp %s did not end within %s", strings.Join(p.args, " "), timeout)
	}
	var exit *exec.ExitError
	if p.err != nil && !errors.As(p.err, &exit) {
		p.t.Fatalf("mcp %s: %v", strings.Join(p.args, " "), p.err)
	}
	return procResult{state: p.cmd.ProcessState, log: p.output()}
}

func (p *agentProc) output() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.log.String()
}
