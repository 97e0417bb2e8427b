package agent

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"metacircular.net/mcp/api"
	"metacircular.net/mcp/internal/testenv"
)

// The disk under the state dir fills up (the state dir is a small tmpfs,
// filled by the test) while a change waits in the repo. The workloads keep
// running, the reconciles report the full disk, the agent keeps trying at
// every poll, and once space is freed the change is applied.
func TestFaultFullDisk(t *testing.T) {
	if os.Geteuid() != 0 {
		testenv.Missing(t, "a tmpfs state dir needs root (mount -t tmpfs); run the tests as root, or run .ci/run")
	}
	n := newTestNode(t, withPollInterval("1s"))
	state := n.cfg.StateDir
	if err := os.MkdirAll(state, 0o700); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=48m,mode=0700", "tmpfs", state).CombinedOutput(); err != nil {
		testenv.Missing(t, "mount a tmpfs for the state dir: %v: %s", err, out)
	}
	// Lazily: the containers' shims keep their log files (under the state
	// dir) open until the namespace is cleaned, after this.
	t.Cleanup(func() {
		if out, err := exec.Command("umount", "-l", state).CombinedOutput(); err != nil {
			t.Errorf("unmount the state dir's tmpfs: %v: %s", err, out)
		}
	})
	img := testenv.TestImage(t, n.registry, testenv.UniqueRepo("fulldisk"), "v1")
	n.push(map[string]string{"mcp.toml": n.platform(), "services/keep.toml": service("keep", img)}, "keep")
	c := n.startDaemon()
	waitFor(t, time.Minute, "keep deployed", func() bool {
		st, err := c.Status(t.Context())
		return err == nil && st.AppliedCommit == n.repo.Head().String() && st.LastReconcile.Result == api.ResultOK
	})
	keepPID := n.containers()["keep.keep.a"].PID
	keepPort := statusPorts(t, c, "keep")["keep/default"]

	filler := filepath.Join(state, "filler")
	fill(t, filler)
	n.push(map[string]string{"services/web.toml": service("web", img)}, "web")
	before := strings.Count(n.logs.String(), "msg=reconciled")
	res := syncNow(t, c)
	t.Logf("reconcile with the state dir full: %s: %s", res.Reconcile.Result, res.Reconcile.Error)
	if res.Reconcile.Result == api.ResultOK || !strings.Contains(res.Reconcile.Error, "no space left on device") ||
		!strings.Contains(res.Reconcile.Error, state) || strings.Contains(res.Reconcile.Error, "unreachable") {
		t.Fatalf("reconcile with the state dir full = %s %q, want it to fail saying the disk under the state dir is full (not blaming the remote)", res.Reconcile.Result, res.Reconcile.Error)
	}
	waitFor(t, time.Minute, "two more reconciles while the disk is full", func() bool {
		return strings.Count(n.logs.String(), "msg=reconciled")-before >= 3
	})
	if st, err := c.Status(t.Context()); err != nil || st.AppliedCommit == n.repo.Head().String() {
		t.Fatalf("status with the disk full: %+v, %v; want the new commit not applied", st.LastReconcile, err)
	}
	if got := n.containers()["keep.keep.a"].PID; got != keepPID {
		t.Errorf("keep was restarted while the disk was full (pid %d → %d)", keepPID, got)
	}
	if body := get(t, keepPort); !strings.Contains(body, "version=v1") {
		t.Errorf("keep answered %q while the disk was full", body)
	}

	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 2*time.Minute, "the change applied once space was freed", func() bool {
		st, err := c.Status(t.Context())
		return err == nil && st.AppliedCommit == n.repo.Head().String() && st.LastReconcile.Result == api.ResultOK
	})
	if body := get(t, statusPorts(t, c, "web")["web/default"]); !strings.Contains(body, "version=v1") {
		t.Errorf("web answered %q after space was freed", body)
	}
	if got := n.containers()["keep.keep.a"].PID; got != keepPID {
		t.Errorf("keep was restarted (pid %d → %d)", keepPID, got)
	}
}

// fill writes path until the file system is full.
func fill(t *testing.T, path string) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	buf := make([]byte, 1<<20)
	for {
		if _, err := f.Write(buf); err != nil {
			if !errors.Is(err, syscall.ENOSPC) {
				t.Fatalf("fill %s: %v", path, err)
			}
			return
		}
	}
}
