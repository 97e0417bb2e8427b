package testenv

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// HAProxyDaemon is a private haproxy (Debian's haproxy package) in
// master-worker mode: its own directory, runtime API socket, master socket
// and listeners on free loopback ports. It is stopped by PID at the end of
// the test.
type HAProxyDaemon struct {
	// Dir holds its configuration, maps, certificates and log. It is kept
	// short: Unix socket paths inside it must fit in 107 bytes.
	Dir string
	// AdminSocket is the runtime API; MasterSocket the master CLI (-S).
	AdminSocket  string
	MasterSocket string
	// Ports are the listener ports, on 127.0.0.1.
	Ports []int
	// ConfigPath is the file haproxy is started with (-f).
	ConfigPath string

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{}
}

// HAProxy starts a private haproxy with the given number of listener
// ports. write is called once, before the first start, to write the
// configuration; it returns the file's path. The daemon is stopped and its
// directory removed when the test ends.
func HAProxy(t testing.TB, listeners int, write func(h *HAProxyDaemon) (configPath string, err error)) *HAProxyDaemon {
	t.Helper()
	if _, err := exec.LookPath("haproxy"); err != nil {
		Missing(t, "haproxy is not installed (Debian package haproxy); run .ci/run")
	}
	dir, err := os.MkdirTemp("", "mcp-hap-")
	if err != nil {
		t.Fatalf("testenv: haproxy dir: %v", err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	h := &HAProxyDaemon{
		Dir:          dir,
		AdminSocket:  filepath.Join(dir, "admin.sock"),
		MasterSocket: filepath.Join(dir, "master.sock"),
	}
	for range listeners {
		h.Ports = append(h.Ports, FreePort(t))
	}
	if h.ConfigPath, err = write(h); err != nil {
		t.Fatalf("testenv: write haproxy config: %v", err)
	}
	t.Cleanup(h.Stop)
	if err := h.Start(t.Context()); err != nil {
		t.Fatalf("testenv: %v", err)
	}
	return h
}

// Start runs haproxy and waits until its runtime API answers.
func (h *HAProxyDaemon) Start(ctx context.Context) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.cmd != nil {
		return errors.New("haproxy already running")
	}
	logf, err := os.OpenFile(filepath.Join(h.Dir, "haproxy.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	defer func() { _ = logf.Close() }() // haproxy holds its own descriptor
	// Not CommandContext: the daemon outlives the context that started
	// it and is stopped by PID.
	cmd := exec.Command("haproxy", "-W", "-S", h.MasterSocket+",mode,600", "-f", h.ConfigPath)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start haproxy: %w", err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	h.cmd, h.done = cmd, done
	deadline := time.Now().Add(15 * time.Second)
	for {
		if _, err := h.command(ctx, "show info"); err == nil {
			return nil
		}
		select {
		case <-done:
			h.cmd = nil
			return fmt.Errorf("haproxy exited at start:\n%s", tail(filepath.Join(h.Dir, "haproxy.log"), 20))
		case <-ctx.Done():
			h.stopLocked()
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			h.stopLocked()
			return fmt.Errorf("haproxy did not answer on %s within 15s:\n%s", h.AdminSocket, tail(filepath.Join(h.Dir, "haproxy.log"), 20))
		}
	}
}

// Stop stops haproxy (SIGTERM to the master, then SIGKILL to its process
// group after 5s). Stopping a stopped daemon does nothing.
func (h *HAProxyDaemon) Stop() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.stopLocked()
}

func (h *HAProxyDaemon) stopLocked() {
	if h.cmd == nil {
		return
	}
	pid := h.cmd.Process.Pid
	_ = syscall.Kill(pid, syscall.SIGTERM)
	select {
	case <-h.done:
	case <-time.After(5 * time.Second):
		_ = syscall.Kill(-pid, syscall.SIGKILL) // its own group: master and workers
		<-h.done
	}
	// A worker that outlived its master would keep the ports: kill the
	// group and wait until it is gone (signals are asynchronous), so that
	// a stopped haproxy really holds nothing.
	_ = syscall.Kill(-pid, syscall.SIGKILL)
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if err := syscall.Kill(-pid, 0); errors.Is(err, syscall.ESRCH) {
			break
		}
	}
	h.cmd = nil
	_ = os.Remove(h.AdminSocket)
	_ = os.Remove(h.MasterSocket)
}

// Restart stops haproxy and starts it again from its files: what a crash
// or a host reboot does to the routes held only in its memory.
func (h *HAProxyDaemon) Restart(ctx context.Context) error {
	h.Stop()
	return h.Start(ctx)
}

// PID is the master's process id, 0 when stopped.
func (h *HAProxyDaemon) PID() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.cmd == nil {
		return 0
	}
	return h.cmd.Process.Pid
}

// Command runs one runtime API command, as an operator would with socat,
// and returns the answer.
func (h *HAProxyDaemon) Command(ctx context.Context, command string) (string, error) {
	return h.command(ctx, command)
}

func (h *HAProxyDaemon) command(ctx context.Context, command string) (string, error) {
	var d net.Dialer
	c, err := d.DialContext(ctx, "unix", h.AdminSocket)
	if err != nil {
		return "", err
	}
	defer func() { _ = c.Close() }()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(c, command+"\n"); err != nil {
		return "", err
	}
	out, err := io.ReadAll(c)
	return strings.TrimSpace(string(out)), err
}

// Log returns the end of haproxy's log, for failure messages.
func (h *HAProxyDaemon) Log() string { return tail(filepath.Join(h.Dir, "haproxy.log"), 40) }
