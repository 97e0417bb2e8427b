package testenv

import (
	"bufio"
	"bytes"
	"context"
	_ "embed"
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
	"github.com/containerd/containerd/v2/core/content"
	"github.com/containerd/containerd/v2/core/images"
	"github.com/containerd/containerd/v2/core/leases"
	"github.com/containerd/containerd/v2/core/snapshots"
	"github.com/containerd/containerd/v2/pkg/namespaces"
	"github.com/containerd/errdefs"
)

// runcWrapper is put first on a private containerd's PATH so runc keeps its
// state under the daemon's own directory (see the script for why).
//
//go:embed runc-root.sh
var runcWrapper []byte

// ContainerdDaemon is a containerd this package started, with everything
// (config, sockets, root, state, runc root, log) under Dir.
type ContainerdDaemon struct {
	Dir      string // removed by Close
	Address  string // gRPC socket
	Root     string // images, content, snapshots, metadata
	State    string // shim and task state
	RuncRoot string // where runc keeps container state (instead of /run/containerd/runc)
	LogFile  string // the daemon's stdout and stderr

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{} // closed when cmd has exited
}

// Containerd returns the address of the containerd to use and a fresh
// namespace for this test. When the test ends, everything in the namespace
// (containers, tasks, images, content, snapshots, leases) and the namespace
// itself are deleted; a failure to do so fails the test, since it means a
// leak.
func Containerd(t testing.TB) (address, namespace string) {
	t.Helper()
	address = containerdAddress(t)
	namespace = "mcptest-" + RandomID(6)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		c, err := client.New(address)
		if err != nil {
			t.Errorf("testenv: cleaning namespace %s: %v", namespace, err)
			return
		}
		defer c.Close()
		if err := CleanNamespace(ctx, c, namespace); err != nil {
			t.Errorf("testenv: %v", err)
		}
	})
	return address, namespace
}

// ContainerdClient is Containerd plus a client whose default namespace is
// the test's, and a context carrying that namespace (cancelled when the
// test ends). The client is closed when the test ends.
func ContainerdClient(t testing.TB) (*client.Client, context.Context) {
	t.Helper()
	address, ns := Containerd(t)
	c, err := client.New(address, client.WithDefaultNamespace(ns))
	if err != nil {
		t.Fatalf("testenv: containerd client for %s: %v", address, err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c, namespaces.WithNamespace(t.Context(), ns)
}

// StartContainerd starts a containerd for this test alone, for tests that
// stop, kill, restart or wipe it. It is torn down (containers included)
// when the test ends.
func StartContainerd(t testing.TB) *ContainerdDaemon {
	t.Helper()
	if reason := containerdMissing(); reason != "" {
		Missing(t, "testenv: %s; %s", reason, hint)
	}
	d, err := newContainerd(t.Context())
	if err != nil {
		t.Fatalf("testenv: %v", err)
	}
	t.Cleanup(func() {
		if err := d.Close(); err != nil {
			t.Errorf("testenv: %v", err)
		}
	})
	return d
}

var shared struct {
	mu       sync.Mutex
	ctrd     *ContainerdDaemon
	ctrdErr  error
	registry *RegistryDaemon
	regErr   error
}

func containerdAddress(t testing.TB) string {
	t.Helper()
	if a := os.Getenv(EnvContainerd); a != "" {
		if _, err := os.Stat(a); err != nil {
			t.Fatalf("testenv: %s=%s: %v", EnvContainerd, a, err)
		}
		return a
	}
	if reason := containerdMissing(); reason != "" {
		Missing(t, "testenv: %s is not set and %s; %s", EnvContainerd, reason, hint)
	}
	shared.mu.Lock()
	defer shared.mu.Unlock()
	if shared.ctrd == nil && shared.ctrdErr == nil {
		if !onExit(t, stopSharedContainerd) {
			return ""
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		shared.ctrd, shared.ctrdErr = newContainerd(ctx)
	}
	if shared.ctrdErr != nil {
		t.Fatalf("testenv: %v", shared.ctrdErr)
	}
	return shared.ctrd.Address
}

func stopSharedContainerd() {
	shared.mu.Lock()
	defer shared.mu.Unlock()
	if shared.ctrd != nil {
		if err := shared.ctrd.Close(); err != nil {
			fmt.Fprintf(os.Stderr, "testenv: %v\n", err)
		}
		shared.ctrd = nil
	}
}

// containerdMissing says why this process cannot start a containerd, or "".
func containerdMissing() string {
	if !isRoot() {
		return "containerd needs root and the tests do not run as root"
	}
	var missing []string
	for _, b := range []string{"containerd", "containerd-shim-runc-v2", "runc"} {
		if _, err := exec.LookPath(b); err != nil {
			missing = append(missing, b)
		}
	}
	if len(missing) > 0 {
		return "not found on PATH: " + strings.Join(missing, ", ")
	}
	return ""
}

const (
	ctrdDirPrefix = "mcptest-ctrd-"
	ownerFile     = "owner.pid" // PID of the test binary that owns the dir
	daemonPIDFile = "daemon.pid"
)

func newContainerd(ctx context.Context) (*ContainerdDaemon, error) {
	sweepStale(ctrdDirPrefix)
	// A short path under the temp dir: socket paths must stay under 108
	// bytes, which t.TempDir's long names can exceed.
	dir, err := os.MkdirTemp("", ctrdDirPrefix)
	if err != nil {
		return nil, fmt.Errorf("containerd state dir: %w", err)
	}
	d := &ContainerdDaemon{
		Dir:      dir,
		Address:  filepath.Join(dir, "containerd.sock"),
		Root:     filepath.Join(dir, "root"),
		State:    filepath.Join(dir, "state"),
		RuncRoot: filepath.Join(dir, "runc"),
		LogFile:  filepath.Join(dir, "containerd.log"),
	}
	if err := d.setup(); err != nil {
		_ = os.RemoveAll(dir)
		return nil, err
	}
	if err := d.Start(ctx); err != nil {
		_ = d.Close()
		return nil, err
	}
	return d, nil
}

func (d *ContainerdDaemon) setup() error {
	for _, p := range []string{d.Root, d.State, d.RuncRoot, filepath.Join(d.Dir, "opt"), filepath.Join(d.Dir, "bin")} {
		if err := os.MkdirAll(p, 0o700); err != nil {
			return err
		}
	}
	if err := os.WriteFile(filepath.Join(d.Dir, ownerFile), []byte(strconv.Itoa(os.Getpid())), 0o600); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(d.Dir, "bin", "runc"), runcWrapper, 0o755); err != nil {
		return err
	}
	config := fmt.Sprintf(`# Private containerd for mcp's tests: own root, state, sockets and runc root.
version = 2
root = %q
state = %q
disabled_plugins = [
  "io.containerd.grpc.v1.cri",
  "io.containerd.snapshotter.v1.aufs",
  "io.containerd.snapshotter.v1.btrfs",
  "io.containerd.snapshotter.v1.devmapper",
  "io.containerd.snapshotter.v1.zfs",
]

[grpc]
  address = %q

[ttrpc]
  address = %q

# "isolated": a namespace never reuses blobs another namespace pulled, so
# each test (and each benchmark) pulls from a cold cache.
[plugins."io.containerd.metadata.v1.bolt"]
  content_sharing_policy = "isolated"

[plugins."io.containerd.internal.v1.opt"]
  path = %q
`, d.Root, d.State, d.Address, d.Address+".ttrpc", filepath.Join(d.Dir, "opt"))
	return os.WriteFile(d.configPath(), []byte(config), 0o600)
}

func (d *ContainerdDaemon) configPath() string { return filepath.Join(d.Dir, "containerd.toml") }

// Start starts the daemon (again, after Stop or Kill) on the same paths and
// waits until it answers. Tasks that were running keep running: their shims
// outlive the daemon, and it reconnects to them.
func (d *ContainerdDaemon) Start(ctx context.Context) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.cmd != nil {
		return fmt.Errorf("containerd at %s is already running (pid %d)", d.Address, d.cmd.Process.Pid)
	}
	runc, err := exec.LookPath("runc")
	if err != nil {
		return fmt.Errorf("runc: %w", err)
	}
	bin, err := exec.LookPath("containerd")
	if err != nil {
		return fmt.Errorf("containerd: %w", err)
	}
	// A socket left by a killed daemon would make the readiness check
	// below talk to nothing; containerd would replace it anyway.
	_ = os.Remove(d.Address)
	_ = os.Remove(d.Address + ".ttrpc")

	logf, err := os.OpenFile(d.LogFile, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	defer logf.Close()
	cmd := exec.Command(bin, "--config", d.configPath(), "--log-level", "warn")
	cmd.Env = append(os.Environ(),
		"PATH="+filepath.Join(d.Dir, "bin")+string(os.PathListSeparator)+os.Getenv("PATH"),
		"MCP_RUNC_ROOT="+d.RuncRoot,
		"MCP_RUNC_BINARY="+runc,
	)
	cmd.Stdout, cmd.Stderr = logf, logf
	// Own process group: a ^C to the test run reaches the test binary,
	// which then stops the daemon in order. Pdeathsig is the backstop if the
	// test binary dies without cleaning up.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start containerd: %w", err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	d.cmd, d.done = cmd, done
	_ = os.WriteFile(filepath.Join(d.Dir, daemonPIDFile), []byte(strconv.Itoa(cmd.Process.Pid)), 0o600)

	if err := waitContainerd(ctx, d.Address, done); err != nil {
		d.stopLocked(syscall.SIGKILL, 0)
		return fmt.Errorf("%w\n%s", err, tail(d.LogFile, 20))
	}
	return nil
}

func waitContainerd(ctx context.Context, address string, exited <-chan struct{}) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	var last error
	for {
		select {
		case <-exited:
			return fmt.Errorf("containerd at %s exited during start-up", address)
		default:
		}
		if _, err := os.Stat(address); err == nil {
			last = pingContainerd(ctx, address)
			if last == nil {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("containerd at %s did not answer within 30s: %w", address, last)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func pingContainerd(ctx context.Context, address string) error {
	c, err := client.New(address)
	if err != nil {
		return err
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	_, err = c.Version(ctx)
	return err
}

// Stop stops the daemon with SIGTERM (SIGKILL after 10s), like a service
// restart: running tasks and their shims stay up.
func (d *ContainerdDaemon) Stop() {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.stopLocked(syscall.SIGTERM, 10*time.Second)
}

// Kill kills the daemon with SIGKILL, like a crash. Tasks stay up.
func (d *ContainerdDaemon) Kill() {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.stopLocked(syscall.SIGKILL, 0)
}

// Restart is Stop then Start.
func (d *ContainerdDaemon) Restart(ctx context.Context) error {
	d.Stop()
	return d.Start(ctx)
}

// Running reports whether the daemon process is up.
func (d *ContainerdDaemon) Running() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.cmd != nil
}

func (d *ContainerdDaemon) stopLocked(sig syscall.Signal, grace time.Duration) {
	if d.cmd == nil {
		return
	}
	stopProcess(d.cmd, d.done, sig, grace)
	d.cmd, d.done = nil, nil
}

// WipeRoot deletes the daemon's root (images, content, snapshots and
// metadata: everything containerd knows) while it is stopped, to test
// recovery from a lost node state.
func (d *ContainerdDaemon) WipeRoot() error {
	if d.Running() {
		return fmt.Errorf("containerd at %s is running: Stop it before WipeRoot", d.Address)
	}
	unmountUnder(d.Root)
	if err := os.RemoveAll(d.Root); err != nil {
		return err
	}
	return os.MkdirAll(d.Root, 0o700)
}

// Close kills every container the daemon ran, its shims and the daemon,
// unmounts what is left and removes Dir.
func (d *ContainerdDaemon) Close() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	forceDeleteContainers(d.RuncRoot)
	killShims(d.Address)
	d.stopLocked(syscall.SIGTERM, 10*time.Second)
	unmountUnder(d.Dir)
	if err := os.RemoveAll(d.Dir); err != nil {
		return fmt.Errorf("remove containerd dir: %w", err)
	}
	return nil
}

// forceDeleteContainers kills and deletes, through runc itself, every
// container under runcRoot/<namespace>/. Killing the shims alone would
// leave the containers' processes running.
func forceDeleteContainers(runcRoot string) {
	runc, err := exec.LookPath("runc")
	if err != nil {
		return
	}
	nsDirs, _ := os.ReadDir(runcRoot)
	for _, ns := range nsDirs {
		root := filepath.Join(runcRoot, ns.Name())
		out, err := exec.Command(runc, "--root", root, "list", "-q").Output()
		if err != nil {
			continue
		}
		for _, id := range strings.Fields(string(out)) {
			_ = exec.Command(runc, "--root", root, "delete", "--force", id).Run()
		}
	}
}

// killShims kills the containerd shims serving the daemon at address. They
// are found by PID, from their command line, which names that address.
func killShims(address string) {
	procs, _ := filepath.Glob("/proc/[0-9]*")
	for _, p := range procs {
		exe, err := os.Readlink(filepath.Join(p, "exe"))
		if err != nil || !strings.HasPrefix(filepath.Base(exe), "containerd-shim") {
			continue
		}
		cmdline, err := os.ReadFile(filepath.Join(p, "cmdline"))
		if err != nil {
			continue
		}
		args := strings.Split(string(cmdline), "\x00")
		for i := 0; i+1 < len(args); i++ {
			if args[i] == "-address" && args[i+1] == address {
				if pid, err := strconv.Atoi(filepath.Base(p)); err == nil {
					_ = syscall.Kill(pid, syscall.SIGKILL)
				}
				break
			}
		}
	}
}

// unmountUnder unmounts every mount point below dir, deepest first.
func unmountUnder(dir string) {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return
	}
	defer f.Close()
	prefix := filepath.Clean(dir) + "/"
	var points []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 5 {
			continue
		}
		mp := unescapeMount(fields[4])
		if strings.HasPrefix(mp, prefix) {
			points = append(points, mp)
		}
	}
	for i := len(points) - 1; i >= 0; i-- {
		if err := syscall.Unmount(points[i], 0); err != nil {
			_ = syscall.Unmount(points[i], syscall.MNT_DETACH)
		}
	}
}

// unescapeMount undoes mountinfo's octal escapes (\040 for a space, ...).
func unescapeMount(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			if n, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(n))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// sweepStale tears down the dirs (and daemons) of earlier test binaries
// that died without cleaning up, found by an owner PID that is gone.
func sweepStale(prefix string) {
	dirs, _ := filepath.Glob(filepath.Join(os.TempDir(), prefix+"*"))
	for _, dir := range dirs {
		b, err := os.ReadFile(filepath.Join(dir, ownerFile))
		if err != nil {
			continue
		}
		owner, err := strconv.Atoi(strings.TrimSpace(string(b)))
		if err != nil || owner <= 0 || syscall.Kill(owner, 0) != syscall.ESRCH {
			continue
		}
		forceDeleteContainers(filepath.Join(dir, "runc"))
		killShims(filepath.Join(dir, "containerd.sock"))
		killRecorded(dir)
		unmountUnder(dir)
		_ = os.RemoveAll(dir)
	}
}

// killRecorded kills the daemon whose PID dir records, if that PID is still
// a process whose command line names dir (PIDs are reused).
func killRecorded(dir string) {
	b, err := os.ReadFile(filepath.Join(dir, daemonPIDFile))
	if err != nil {
		return
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 0 {
		return
	}
	cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil || !bytes.Contains(cmdline, []byte(dir+"/")) {
		return
	}
	_ = syscall.Kill(pid, syscall.SIGKILL)
}

// tail returns the last n lines of a log file, for error messages.
func tail(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return path + ":\n" + strings.Join(lines, "\n")
}

// CleanNamespace deletes everything in namespace ns (tasks, containers,
// images, leases, snapshots, content) and then the namespace. It works on
// any namespace; tests use it for their own.
func CleanNamespace(ctx context.Context, c *client.Client, ns string) error {
	ctx = namespaces.WithNamespace(ctx, ns)
	var errs []error
	note := func(what string, err error) {
		if err != nil && !errdefs.IsNotFound(err) {
			errs = append(errs, fmt.Errorf("%s: %w", what, err))
		}
	}

	ctrs, err := c.Containers(ctx)
	note("list containers", err)
	for _, ctr := range ctrs {
		note("delete container "+ctr.ID(), deleteContainer(ctx, ctr))
	}

	imgs, err := c.ImageService().List(ctx)
	note("list images", err)
	for _, img := range imgs {
		note("delete image "+img.Name, c.ImageService().Delete(ctx, img.Name, images.SynchronousDelete()))
	}

	ls, err := c.LeasesService().List(ctx)
	note("list leases", err)
	for _, l := range ls {
		note("delete lease "+l.ID, c.LeasesService().Delete(ctx, l, leases.SynchronousDelete))
	}

	note("snapshots", removeSnapshots(ctx, c))

	var blobs []content.Info
	note("list content", c.ContentStore().Walk(ctx, func(info content.Info) error {
		blobs = append(blobs, info)
		return nil
	}))
	for _, b := range blobs {
		note("delete content "+b.Digest.String(), c.ContentStore().Delete(ctx, b.Digest))
	}

	// The namespace can only go once it is empty; the metadata GC may lag
	// behind the deletes above, so give it a few tries.
	var nsErr error
	for i := 0; ; i++ {
		nsErr = c.NamespaceService().Delete(ctx, ns)
		if nsErr == nil || errdefs.IsNotFound(nsErr) {
			nsErr = nil
			break
		}
		if i == 20 || ctx.Err() != nil {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	note("delete namespace", nsErr)
	if len(errs) > 0 {
		return fmt.Errorf("cleaning containerd namespace %s: %w", ns, errors.Join(errs...))
	}
	return nil
}

func deleteContainer(ctx context.Context, ctr client.Container) error {
	task, err := ctr.Task(ctx, nil)
	if err == nil {
		// WithProcessKill kills the task and waits for it before deleting.
		if _, err := task.Delete(ctx, client.WithProcessKill); err != nil && !errdefs.IsNotFound(err) {
			return fmt.Errorf("delete task: %w", err)
		}
	} else if !errdefs.IsNotFound(err) {
		return fmt.Errorf("load task: %w", err)
	}
	return ctr.Delete(ctx, client.WithSnapshotCleanup)
}

// removeSnapshots removes every snapshot of every snapshotter in the
// namespace. Parents cannot go before their children, so it repeats until
// nothing is left or nothing more can be removed.
func removeSnapshots(ctx context.Context, c *client.Client) error {
	resp, err := c.IntrospectionService().Plugins(ctx, "type==io.containerd.snapshotter.v1")
	if err != nil {
		return err
	}
	var errs []error
	for _, p := range resp.Plugins {
		if p.InitErr != nil {
			continue
		}
		sn := c.SnapshotService(p.ID)
		for {
			var keys []string
			if err := sn.Walk(ctx, func(_ context.Context, info snapshots.Info) error {
				keys = append(keys, info.Name)
				return nil
			}); err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", p.ID, err))
				break
			}
			if len(keys) == 0 {
				break
			}
			removed := 0
			var last error
			for _, k := range keys {
				if err := sn.Remove(ctx, k); err == nil || errdefs.IsNotFound(err) {
					removed++
				} else {
					last = err
				}
			}
			if removed == 0 {
				errs = append(errs, fmt.Errorf("%s: %d snapshots left: %w", p.ID, len(keys), last))
				break
			}
		}
	}
	return errors.Join(errs...)
}
