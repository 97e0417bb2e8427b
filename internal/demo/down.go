package demo

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/core/images"
	"github.com/containerd/containerd/v2/pkg/namespaces"
	"github.com/containerd/errdefs"
)

// DownOptions change what Down removes.
type DownOptions struct {
	// RemoveWork removes the working clone too when it lies outside the
	// state directory (inside, it goes with the directory).
	RemoveWork bool
	// KeepState leaves the state directory and the daemons demo.sh
	// recorded in it (containerd, registry) for the caller: demo.sh's
	// teardown, which also knows about shims, runc state and mounts. The
	// agent and haproxy, which Up started, are stopped either way.
	KeepState bool
}

// Down stops the demo agent (SIGTERM by PID, then SIGKILL after a grace
// period), removes every container and image in the demo's containerd
// namespace, stops haproxy by PID, removes /srv/<service> when the demo
// created it and it is empty, stops the other daemons recorded in
// <state>/*.pid by PID, and deletes the state directory. It goes on past errors so as much as
// possible is cleaned, and returns them all.
func Down(ctx context.Context, s Settings, p *Printer, o DownOptions) error {
	var errs []error
	if pid, ok := agentRunning(s); ok {
		p.Step("stopping the agent (pid %d)", pid)
		if err := stopPID(ctx, pid, 15*time.Second); err != nil {
			errs = append(errs, err)
		}
	}
	// The agent leaves its containers running when it stops (by design:
	// an agent restart never disturbs workloads), so remove them here.
	if s.Containerd != "" && s.Namespace != "" {
		if _, err := os.Stat(s.Containerd); err == nil {
			n, err := cleanNamespace(ctx, s.Containerd, s.Namespace)
			if err != nil {
				errs = append(errs, err)
			}
			p.Step("removed %d container(s) from containerd namespace %s", n, s.Namespace)
		}
	}
	// After the containers: the proxy has nothing left to route to.
	if pid, ok := recordedPID(s.HAProxyPID(), s.StateDir); ok {
		p.Step("stopping haproxy (pid %d)", pid)
		if err := stopHAProxy(ctx, s); err != nil {
			errs = append(errs, err)
		}
	}
	if _, err := os.Stat(s.srvMarker()); err == nil {
		// Only if empty: the demo's hello writes nothing there.
		if err := os.Remove(srvDir()); err != nil && !errors.Is(err, os.ErrNotExist) {
			p.Step("left %s: %v", srvDir(), err)
		}
	}
	if o.RemoveWork && s.WorkDir != "" {
		if err := os.RemoveAll(s.WorkDir); err != nil {
			errs = append(errs, fmt.Errorf("demo: %w", err))
		}
	}
	if o.KeepState {
		return errors.Join(errs...)
	}
	pidFiles, _ := filepath.Glob(filepath.Join(s.StateDir, "*.pid"))
	for _, f := range pidFiles {
		pid, ok := recordedPID(f, s.StateDir)
		if !ok {
			continue
		}
		p.Step("stopping %s (pid %d)", strings.TrimSuffix(filepath.Base(f), ".pid"), pid)
		if err := stopPID(ctx, pid, 15*time.Second); err != nil {
			errs = append(errs, err)
		}
	}
	if err := os.RemoveAll(s.StateDir); err != nil {
		errs = append(errs, fmt.Errorf("demo: %w", err))
	}
	return errors.Join(errs...)
}

// recordedPID reads a pid file and returns the PID when that process is
// alive and its command line still names dir: the process started under
// it, not another one that got the PID since.
func recordedPID(file, dir string) (int, bool) {
	b, err := os.ReadFile(file)
	if err != nil {
		return 0, false
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 0 {
		return 0, false
	}
	cmdline, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "cmdline"))
	if err != nil || !bytes.Contains(cmdline, []byte(dir+"/")) || isZombie(pid) {
		return 0, false
	}
	return pid, true
}

// stopPID sends SIGTERM and waits for the process to go, then SIGKILL.
func stopPID(ctx context.Context, pid int, grace time.Duration) error {
	if err := syscall.Kill(pid, syscall.SIGTERM); err != nil {
		if errors.Is(err, syscall.ESRCH) {
			return nil //nolint:nilerr // already gone: stopped is what we wanted
		}
		return fmt.Errorf("demo: stop pid %d: %w", pid, err)
	}
	deadline := time.Now().Add(grace)
	for time.Now().Before(deadline) {
		if syscall.Kill(pid, 0) != nil || isZombie(pid) {
			return nil //nolint:nilerr // signal 0 failing means the process is gone
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
	_ = syscall.Kill(pid, syscall.SIGKILL)
	return fmt.Errorf("demo: pid %d did not stop within %s of SIGTERM; killed", pid, grace)
}

// isZombie reports whether pid has exited but is not reaped yet (when it
// is this process's own child, as in tests).
func isZombie(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	_, after, ok := strings.Cut(string(b), ") ")
	return ok && strings.HasPrefix(after, "Z")
}

// cleanNamespace removes every container (its task killed first) and every
// image in ns, then the namespace when nothing else is left in it. It
// returns the number of containers removed.
func cleanNamespace(ctx context.Context, address, ns string) (int, error) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	c, err := client.New(address)
	if err != nil {
		return 0, fmt.Errorf("demo: containerd at %s: %w", address, err)
	}
	defer c.Close()
	ctx = namespaces.WithNamespace(ctx, ns)

	var errs []error
	ctrs, err := c.Containers(ctx)
	if err != nil {
		return 0, fmt.Errorf("demo: list containers in %s: %w", ns, err)
	}
	n := 0
	for _, ctr := range ctrs {
		if err := deleteContainer(ctx, ctr); err != nil {
			errs = append(errs, fmt.Errorf("demo: remove container %s: %w", ctr.ID(), err))
			continue
		}
		n++
	}
	imgs, err := c.ImageService().List(ctx)
	if err != nil {
		errs = append(errs, fmt.Errorf("demo: list images in %s: %w", ns, err))
	}
	for _, img := range imgs {
		if err := c.ImageService().Delete(ctx, img.Name, images.SynchronousDelete()); err != nil && !errdefs.IsNotFound(err) {
			errs = append(errs, fmt.Errorf("demo: remove image %s: %w", img.Name, err))
		}
	}
	// Leases or snapshots may keep the namespace; it then stays, empty of
	// containers, which is harmless (demo.sh removes the whole daemon).
	_ = c.NamespaceService().Delete(ctx, ns)
	return n, errors.Join(errs...)
}

func deleteContainer(ctx context.Context, ctr client.Container) error {
	task, err := ctr.Task(ctx, nil)
	switch {
	case err == nil:
		// WithProcessKill kills the task and waits for it before deleting.
		if _, err := task.Delete(ctx, client.WithProcessKill); err != nil && !errdefs.IsNotFound(err) {
			return fmt.Errorf("delete task: %w", err)
		}
	case !errdefs.IsNotFound(err):
		return fmt.Errorf("load task: %w", err)
	}
	if err := ctr.Delete(ctx, client.WithSnapshotCleanup); err != nil && !errdefs.IsNotFound(err) {
		return err
	}
	return nil
}

// Status prints `mcp status` for a running demo and the next steps, or
// says that the demo is not running.
func Status(ctx context.Context, s Settings, p *Printer) error {
	pid, ok := agentRunning(s)
	if !ok {
		return fmt.Errorf("demo: the agent of %s is not running (log: %s)", s.StateDir, s.AgentLog())
	}
	p.Step("agent pid %d, config %s, log %s", pid, s.AgentConfig(), s.AgentLog())
	if err := printStatus(ctx, s, p.W); err != nil {
		return err
	}
	port := 0
	if st, err := apiStatusPort(ctx, s); err == nil {
		port = st
	}
	fmt.Fprintln(p.W)
	fmt.Fprint(p.W, NextSteps(s, port))
	return nil
}
