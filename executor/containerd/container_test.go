package containerd

import (
	"errors"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"metacircular.net/mcp/executor"
	"metacircular.net/mcp/internal/testenv"
	"metacircular.net/mcp/spec"
)

func TestStartServesRemoveCleans(t *testing.T) {
	reg := testenv.Registry(t)
	ref := testenv.TestImage(t, reg, testenv.UniqueRepo("ctrd/run"), "v1")
	d := newDriver(t, plainHTTP(reg))
	ctx := t.Context()

	dg := ensure(t, d, ref)
	s, port := helloSpec(t, "hello.hello.0", ref, dg)
	if err := d.Start(ctx, s); err != nil {
		t.Fatalf("Start: %v", err)
	}
	if body := httpGet(t, port, "/", 15*time.Second); !strings.Contains(body, "version=v1") {
		t.Fatalf("GET / = %q, want version=v1", body)
	}

	c := container(t, d, s.ID)
	if c.Status != executor.StatusRunning || c.PID == 0 {
		t.Fatalf("List: %+v, want running with a pid", c)
	}
	if c.Labels[executor.LabelManaged] != "true" || c.Labels[executor.LabelRuntimeHash] != executor.RuntimeHash(s) ||
		c.Labels[executor.LabelService] != "hello" {
		t.Fatalf("labels: %v", c.Labels)
	}
	if !strings.Contains(c.Image, "@"+dg) {
		t.Fatalf("image %q is not pinned to %s", c.Image, dg)
	}

	// Idempotent: the same spec again restarts nothing.
	if err := d.Start(ctx, s); err != nil {
		t.Fatalf("second Start: %v", err)
	}
	if again := container(t, d, s.ID); again.PID != c.PID || again.Status != executor.StatusRunning {
		t.Fatalf("second Start changed the task: %+v then %+v", c, again)
	}

	// Another runtime spec under the same ID is refused, untouched.
	changed := s
	changed.Env = append(slices.Clone(s.Env), "EXTRA=1")
	if err := d.Start(ctx, changed); !errors.Is(err, executor.ErrRuntimeHashMismatch) {
		t.Fatalf("Start with another spec: %v, want ErrRuntimeHashMismatch", err)
	}
	if again := container(t, d, s.ID); again.PID != c.PID {
		t.Fatalf("refused Start touched the task: pid %d -> %d", c.PID, again.PID)
	}

	// The log is written by the shim.
	waitFor(t, 5*time.Second, "log lines", func() bool {
		b, _ := os.ReadFile(s.LogPath)
		return strings.Contains(string(b), "listening on")
	})

	if err := d.Remove(ctx, s.ID, 5*time.Second); err != nil {
		t.Fatalf("Remove: %v", err)
	}
	if err := d.Remove(ctx, s.ID, 5*time.Second); err != nil {
		t.Fatalf("second Remove: %v", err)
	}
	cs, err := d.List(ctx)
	if err != nil || len(cs) != 0 {
		t.Fatalf("List after Remove: %v, %v", cs, err)
	}
	if _, err := d.Client().SnapshotService(d.snapshotter).Stat(d.nsCtx(ctx), s.ID); err == nil {
		t.Fatal("snapshot left behind")
	}
	// hello stops cleanly on SIGTERM: the log says so.
	if log := readFile(t, s.LogPath); !strings.Contains(log, "stopping") {
		t.Fatalf("log does not show a SIGTERM stop:\n%s", log)
	}
}

func TestStartAppliesEnvCmdUserVolumes(t *testing.T) {
	reg := testenv.Registry(t)
	ref := testenv.TestImage(t, reg, testenv.UniqueRepo("ctrd/spec"), "v1", testenv.WithEnv("FROM_IMAGE=image", "OVERRIDE=image"))
	d := newDriver(t, plainHTTP(reg))
	ctx := t.Context()
	dg := ensure(t, d, ref)

	data := filepath.Join(t.TempDir(), "srv", "hello")
	s, port := helloSpec(t, "hello.hello.0", ref, dg)
	s.Env = append(s.Env, "OVERRIDE=spec", "FROM_SPEC=spec")
	s.Cmd = []string{"serve", "--flag"}
	s.User = "1000:1001"
	s.Volumes = []spec.Volume{
		{Host: data + "/ro", Container: "/srv/hello/ro", ReadOnly: true},
		{Host: data, Container: "/srv/hello"},
	}
	if err := d.Start(ctx, s); err != nil {
		t.Fatalf("Start: %v", err)
	}
	for name, want := range map[string]string{"FROM_IMAGE": "image", "OVERRIDE": "spec", "FROM_SPEC": "spec"} {
		if got := httpGet(t, port, "/env/"+name, 15*time.Second); strings.TrimSpace(got) != want {
			t.Errorf("$%s = %q, want %q", name, got, want)
		}
	}

	c, err := d.Client().LoadContainer(d.nsCtx(ctx), s.ID)
	if err != nil {
		t.Fatal(err)
	}
	oci, err := c.Spec(d.nsCtx(ctx))
	if err != nil {
		t.Fatal(err)
	}
	// Docker semantics: cmd replaces CMD, ENTRYPOINT stays.
	if want := []string{"/hello", "serve", "--flag"}; !slices.Equal(oci.Process.Args, want) {
		t.Errorf("args %q, want %q", oci.Process.Args, want)
	}
	if u := oci.Process.User; u.UID != 1000 || u.GID != 1001 {
		t.Errorf("user %d:%d, want 1000:1001", u.UID, u.GID)
	}
	for _, ns := range oci.Linux.Namespaces {
		if ns.Type == "network" {
			t.Errorf("container has its own network namespace %+v; want the host's", ns)
		}
	}
	var binds []string
	for _, m := range oci.Mounts {
		if m.Type == "bind" && strings.HasPrefix(m.Destination, "/srv/") {
			binds = append(binds, m.Source+":"+m.Destination+":"+strings.Join(m.Options, ","))
		}
	}
	want := []string{data + ":/srv/hello:rbind,rw", data + "/ro:/srv/hello/ro:rbind,ro"}
	if !slices.Equal(binds, want) {
		t.Errorf("bind mounts %q, want %q (parent first)", binds, want)
	}
	for _, p := range []string{data, data + "/ro"} {
		fi, err := os.Stat(p)
		if err != nil || fi.Mode().Perm() != 0o750 {
			t.Errorf("volume dir %s: %v %v, want created 0750", p, fi.Mode(), err)
		}
	}

	if err := d.Remove(ctx, s.ID, time.Second); err != nil {
		t.Fatalf("Remove: %v", err)
	}
	if _, err := os.Stat(data); err != nil {
		t.Fatalf("Remove touched the volume dir: %v", err)
	}
}

func TestStartRestartsStoppedTask(t *testing.T) {
	reg := testenv.Registry(t)
	ref := testenv.TestImage(t, reg, testenv.UniqueRepo("ctrd/stopped"), "v1")
	d := newDriver(t, plainHTTP(reg))
	ctx := t.Context()
	s, port := helloSpec(t, "hello.hello.0", ref, ensure(t, d, ref))
	if err := d.Start(ctx, s); err != nil {
		t.Fatalf("Start: %v", err)
	}
	httpGet(t, port, "/", 15*time.Second)
	before := container(t, d, s.ID)

	task, err := loadTask(t, d, s.ID)
	if err != nil {
		t.Fatal(err)
	}
	exited, err := task.Wait(d.nsCtx(ctx))
	if err != nil {
		t.Fatal(err)
	}
	if err := task.Kill(d.nsCtx(ctx), 9); err != nil {
		t.Fatal(err)
	}
	<-exited
	if c := container(t, d, s.ID); c.Status != executor.StatusStopped || c.ExitCode != 137 {
		t.Fatalf("after SIGKILL: %+v, want stopped with 137", c)
	}

	if err := d.Start(ctx, s); err != nil {
		t.Fatalf("Start of a stopped container: %v", err)
	}
	after := container(t, d, s.ID)
	if after.Status != executor.StatusRunning || after.PID == before.PID {
		t.Fatalf("not restarted: %+v (was pid %d)", after, before.PID)
	}
	httpGet(t, port, "/", 15*time.Second)
}

func TestStartWithoutImageFails(t *testing.T) {
	d := newDriver(t, nil)
	s, _ := helloSpec(t, "hello.hello.0", "127.0.0.1:1/none:v1", "sha256:"+strings.Repeat("0", 64))
	err := d.Start(t.Context(), s)
	if err == nil || !strings.Contains(err.Error(), "EnsureImage first") {
		t.Fatalf("Start without the image: %v", err)
	}
	if cs, _ := d.List(t.Context()); len(cs) != 0 {
		t.Fatalf("a failed Start left %v", cs)
	}
}

// TestListRecordsAndRunning: the watch's cheap listing gives the same
// containers, labels and images as List without any task state, and
// Running tells one task's state: true while it runs, false once it was
// killed (no supervisor here to restart it), false for no container.
func TestListRecordsAndRunning(t *testing.T) {
	reg := testenv.Registry(t)
	ref := testenv.TestImage(t, reg, testenv.UniqueRepo("ctrd/records"), "v1")
	d := newDriver(t, plainHTTP(reg))
	ctx := t.Context()
	s, _ := helloSpec(t, "hello.hello.a", ref, ensure(t, d, ref))
	if err := d.Start(ctx, s); err != nil {
		t.Fatalf("Start: %v", err)
	}
	full := container(t, d, s.ID)
	recs, err := d.ListRecords(ctx)
	if err != nil || len(recs) != 1 {
		t.Fatalf("ListRecords: %+v, %v", recs, err)
	}
	r := recs[0]
	if r.ID != full.ID || r.Image != full.Image || !maps.Equal(r.Labels, full.Labels) {
		t.Fatalf("ListRecords %+v does not match List %+v", r, full)
	}
	if r.Status != executor.StatusUnknown || r.PID != 0 {
		t.Fatalf("ListRecords claims a task state: %+v", r)
	}
	if ok, err := d.Running(ctx, s.ID); err != nil || !ok {
		t.Fatalf("Running while it runs: %v, %v", ok, err)
	}

	c, err := d.Client().LoadContainer(d.nsCtx(ctx), s.ID)
	if err != nil {
		t.Fatal(err)
	}
	task, err := c.Task(d.nsCtx(ctx), nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := task.Kill(d.nsCtx(ctx), syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "Running to say the killed task stopped", func() bool {
		ok, err := d.Running(ctx, s.ID)
		return err == nil && !ok
	})
	if ok, err := d.Running(ctx, "no.such.container"); err != nil || ok {
		t.Fatalf("Running for no container: %v, %v", ok, err)
	}

	if err := d.Remove(ctx, s.ID, 5*time.Second); err != nil {
		t.Fatalf("Remove: %v", err)
	}
	if recs, err := d.ListRecords(ctx); err != nil || len(recs) != 0 {
		t.Fatalf("ListRecords after Remove: %+v, %v", recs, err)
	}
}
