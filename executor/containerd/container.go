package containerd

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/containerd/containerd/api/services/tasks/v1"
	"github.com/containerd/containerd/api/types/runc/options"
	tasktypes "github.com/containerd/containerd/api/types/task"
	"github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/core/containers"
	"github.com/containerd/containerd/v2/pkg/cio"
	"github.com/containerd/containerd/v2/pkg/oci"
	"github.com/containerd/containerd/v2/plugins"
	"github.com/containerd/errdefs"
	"github.com/containerd/errdefs/pkg/errgrpc"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"metacircular.net/mcp/executor"
)

const (
	// defaultGrace is the SIGTERM grace when the caller gives none.
	defaultGrace = 10 * time.Second
	// killWait bounds the wait for a task after SIGKILL.
	killWait = 10 * time.Second
)

// Start creates the container (if absent) and starts its task (if not
// running). The container shares the host's network namespace, /etc/hosts
// and /etc/resolv.conf; it runs the image pinned by s.Digest.
//
// Cmd follows Docker's semantics: a non-empty s.Cmd replaces the image's
// CMD and keeps its ENTRYPOINT (args = ENTRYPOINT + s.Cmd). s.Env is
// applied over the image's environment (same key: s.Env wins).
//
// If the container exists with another runtime hash, Start fails with an
// error wrapping executor.ErrRuntimeHashMismatch and changes nothing.
func (d *Driver) Start(ctx context.Context, s executor.ContainerSpec) error {
	if err := validateSpec(s); err != nil {
		return fmt.Errorf("start container %s: %w", s.ID, err)
	}
	unlock := d.lock(s.ID)
	defer unlock()
	ctx = d.nsCtx(ctx)
	// A deliberate Start ends any earlier deliberate stop.
	d.setStopping(s.ID, false)

	hash := executor.RuntimeHash(s)
	c, err := d.client.LoadContainer(ctx, s.ID)
	switch {
	case errdefs.IsNotFound(err):
		c, err = d.create(ctx, s, hash)
		if err != nil {
			return fmt.Errorf("start container %s: %w", s.ID, err)
		}
	case err != nil:
		return fmt.Errorf("start container %s: load: %w", s.ID, err)
	default:
		labels, err := c.Labels(ctx)
		if err != nil {
			return fmt.Errorf("start container %s: labels: %w", s.ID, err)
		}
		if got := labels[executor.LabelRuntimeHash]; got != hash {
			return fmt.Errorf("start container %s: %w (has %q, spec gives %q)",
				s.ID, executor.ErrRuntimeHashMismatch, got, hash)
		}
	}
	if _, err := d.ensureTask(ctx, c, s.LogPath); err != nil {
		return fmt.Errorf("start container %s: %w", s.ID, err)
	}
	return nil
}

func validateSpec(s executor.ContainerSpec) error {
	switch {
	case s.ID == "":
		return errors.New("empty container id")
	case s.Image == "":
		return errors.New("empty image")
	case s.LogPath == "" || !filepath.IsAbs(s.LogPath):
		return fmt.Errorf("log path %q is not absolute", s.LogPath)
	}
	for _, v := range s.Volumes {
		if !filepath.IsAbs(v.Host) || !filepath.IsAbs(v.Container) {
			return fmt.Errorf("volume %s: paths must be absolute", v)
		}
	}
	return nil
}

// create makes the container record and its rootfs snapshot.
func (d *Driver) create(ctx context.Context, s executor.ContainerSpec, hash string) (client.Container, error) {
	img, err := d.specImage(ctx, s)
	if err != nil {
		return nil, err
	}
	for _, v := range s.Volumes {
		// 0750: service data is not for every local user. MkdirAll leaves
		// existing directories (and their modes) alone; nothing here ever
		// deletes a host directory.
		if err := os.MkdirAll(v.Host, 0o750); err != nil {
			return nil, fmt.Errorf("create volume dir %s: %w", v.Host, err)
		}
	}
	// A crash between snapshot and container creation leaves a snapshot
	// named after the container; it belongs to no container, so drop it.
	if err := d.client.SnapshotService(d.snapshotter).Remove(ctx, s.ID); err != nil && !errdefs.IsNotFound(err) {
		return nil, fmt.Errorf("remove stale snapshot %s: %w", s.ID, err)
	}
	labels := map[string]string{}
	for k, v := range s.Labels {
		labels[k] = v
	}
	labels[executor.LabelManaged] = "true"
	labels[executor.LabelRuntimeHash] = hash
	labels[LabelRestart] = s.Restart
	labels[LabelLogPath] = s.LogPath

	opts := []client.NewContainerOpts{
		client.WithImage(img),
		client.WithSnapshotter(d.snapshotter),
		client.WithNewSnapshot(s.ID, img),
		client.WithImageStopSignal(img, "SIGTERM"),
		client.WithNewSpec(specOpts(img, s)...),
		client.WithContainerLabels(labels),
	}
	if d.runtimeRoot != "" {
		opts = append(opts, client.WithRuntime(plugins.RuntimeRuncV2, &options.Options{Root: d.runtimeRoot}))
	}
	c, err := d.client.NewContainer(ctx, s.ID, opts...)
	if err != nil {
		return nil, fmt.Errorf("create: %w", err)
	}
	d.log.Info("created container", "id", s.ID, "image", img.Name(), "runtime_hash", hash)
	return c, nil
}

// specImage finds the image a spec runs: by its digest name when the spec
// pins one (the tag may since point elsewhere), else by reference.
func (d *Driver) specImage(ctx context.Context, s executor.ContainerSpec) (client.Image, error) {
	name := s.Image
	if s.Digest != "" {
		repo := s.Image
		if i := strings.Index(repo, "@"); i >= 0 {
			repo = repo[:i]
		}
		// Strip a tag: the last ':' after the last '/' (a ':' before it is
		// a registry port).
		if i := strings.LastIndex(repo, ":"); i > strings.LastIndex(repo, "/") {
			repo = repo[:i]
		}
		name = repo + "@" + s.Digest
	}
	img, err := d.client.GetImage(ctx, name)
	if err != nil {
		return nil, fmt.Errorf("image %s (EnsureImage first): %w", name, err)
	}
	return img, nil
}

// specOpts builds the OCI spec of a container. Order matters: the image
// config first, then what the definition overrides.
func specOpts(img oci.Image, s executor.ContainerSpec) []oci.SpecOpts {
	opts := []oci.SpecOpts{
		oci.WithImageConfigArgs(img, s.Cmd),
		oci.WithHostNamespace(specs.NetworkNamespace),
		oci.WithHostHostsFile,
		oci.WithHostResolvconf,
	}
	if len(s.Env) > 0 {
		opts = append(opts, oci.WithEnv(s.Env))
	}
	if s.User != "" {
		opts = append(opts, oci.WithUser(s.User))
	}
	if len(s.Volumes) > 0 {
		opts = append(opts, oci.WithMounts(bindMounts(s)))
	}
	return opts
}

func bindMounts(s executor.ContainerSpec) []specs.Mount {
	var ms []specs.Mount
	for _, v := range executor.SortVolumes(s.Volumes) {
		mode := "rw"
		if v.ReadOnly {
			mode = "ro"
		}
		ms = append(ms, specs.Mount{
			Destination: v.Container,
			Type:        "bind",
			Source:      v.Host,
			Options:     []string{"rbind", mode},
		})
	}
	return ms
}

// ensureTask makes the container's task run, reusing a running or created
// one and replacing a stopped one. It reports whether a task was started.
func (d *Driver) ensureTask(ctx context.Context, c client.Container, logPath string) (bool, error) {
	task, err := c.Task(ctx, nil)
	switch {
	case errdefs.IsNotFound(err):
	case err != nil:
		return false, fmt.Errorf("load task: %w", err)
	default:
		st, err := task.Status(ctx)
		if err != nil {
			return false, fmt.Errorf("task status: %w", err)
		}
		switch st.Status {
		case client.Running, client.Paused, client.Pausing:
			return false, nil
		case client.Created:
			if err := task.Start(ctx); err != nil {
				return false, fmt.Errorf("start created task: %w", err)
			}
			return true, nil
		}
		// Stopped (or unknown): the old task must go before a new one.
		if _, err := task.Delete(ctx, client.WithProcessKill); err != nil && !errdefs.IsNotFound(err) {
			return false, fmt.Errorf("delete stopped task: %w", err)
		}
	}
	if err := os.MkdirAll(filepath.Dir(logPath), 0o750); err != nil {
		return false, fmt.Errorf("create log dir: %w", err)
	}
	// The shim opens the log file itself (O_APPEND) and copies the task's
	// output into it: no pipe to the agent that could fill up.
	task, err = c.NewTask(ctx, cio.LogFile(logPath))
	if err != nil {
		return false, fmt.Errorf("create task: %w", err)
	}
	if err := task.Start(ctx); err != nil {
		if _, derr := task.Delete(ctx, client.WithProcessKill); derr != nil && !errdefs.IsNotFound(derr) {
			d.log.Warn("delete task that failed to start", "id", c.ID(), "error", derr)
		}
		return false, fmt.Errorf("start task: %w", err)
	}
	d.log.Info("started task", "id", c.ID(), "pid", task.Pid())
	return true, nil
}

// Remove stops the task (SIGTERM, SIGKILL after grace; grace <= 0 means
// 10s) and deletes task, container and snapshot. Host volume directories
// are never touched. A missing container is success.
func (d *Driver) Remove(ctx context.Context, id string, grace time.Duration) error {
	if grace <= 0 {
		grace = defaultGrace
	}
	unlock := d.lock(id)
	defer unlock()
	ctx = d.nsCtx(ctx)
	// The Supervisor must not take the exit we cause for a crash. The mark
	// stays if removal fails half-way, until the container is gone or
	// started again.
	d.setStopping(id, true)

	c, err := d.client.LoadContainer(ctx, id)
	if errdefs.IsNotFound(err) {
		d.setStopping(id, false)
		return nil
	}
	if err != nil {
		return fmt.Errorf("remove container %s: load: %w", id, err)
	}
	task, err := c.Task(ctx, nil)
	switch {
	case errdefs.IsNotFound(err):
	case err != nil:
		return fmt.Errorf("remove container %s: load task: %w", id, err)
	default:
		if err := d.stopTask(ctx, task, grace); err != nil {
			return fmt.Errorf("remove container %s: %w", id, err)
		}
		if _, err := task.Delete(ctx, client.WithProcessKill); err != nil && !errdefs.IsNotFound(err) {
			return fmt.Errorf("remove container %s: delete task: %w", id, err)
		}
	}
	if err := c.Delete(ctx, client.WithSnapshotCleanup); err != nil && !errdefs.IsNotFound(err) {
		return fmt.Errorf("remove container %s: delete: %w", id, err)
	}
	d.setStopping(id, false)
	d.log.Info("removed container", "id", id)
	return nil
}

// stopTask sends SIGTERM, waits up to grace, then SIGKILLs every process
// of the task and waits for it to exit.
func (d *Driver) stopTask(ctx context.Context, task client.Task, grace time.Duration) error {
	st, err := task.Status(ctx)
	if errdefs.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("task status: %w", err)
	}
	if st.Status == client.Stopped {
		return nil
	}
	// Wait before Kill, or the exit could be missed.
	exited, err := task.Wait(ctx)
	if err != nil {
		return fmt.Errorf("wait task: %w", err)
	}
	if st.Status == client.Running {
		if err := task.Kill(ctx, syscall.SIGTERM); err != nil && !errdefs.IsNotFound(err) {
			return fmt.Errorf("SIGTERM task: %w", err)
		}
		t := d.clock.NewTimer(grace)
		select {
		case <-exited:
			t.Stop()
			return nil
		case <-t.C():
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		}
		d.log.Info("task ignored SIGTERM, killing", "id", task.ID(), "grace", grace)
	}
	if err := task.Kill(ctx, syscall.SIGKILL, client.WithKillAll); err != nil && !errdefs.IsNotFound(err) {
		return fmt.Errorf("SIGKILL task: %w", err)
	}
	t := d.clock.NewTimer(killWait)
	defer t.Stop()
	select {
	case <-exited:
		return nil
	case <-t.C():
		return errors.New("task still running after SIGKILL")
	case <-ctx.Done():
		return ctx.Err()
	}
}

// List returns mcp's containers (LabelManaged) in mcp's namespace with
// their task's state, sorted by ID. A container without a task is stopped.
func (d *Driver) List(ctx context.Context) ([]executor.Container, error) {
	ctx = d.nsCtx(ctx)
	// The containers first: one started after the task listing below would
	// show as stopped, and the converge pass would act on that.
	infos, err := d.records(ctx)
	if err != nil {
		return nil, err
	}
	// One task listing for the namespace instead of a task lookup and a
	// status call per container: each of those is a round trip to the
	// container's shim, and the agent lists on every reconcile.
	resp, err := d.client.TaskService().List(ctx, &tasks.ListTasksRequest{})
	if err != nil {
		return nil, fmt.Errorf("list tasks: %w", err)
	}
	procs := make(map[string]*tasktypes.Process, len(resp.Tasks))
	for _, p := range resp.Tasks {
		procs[p.ID] = p
	}
	out := make([]executor.Container, 0, len(infos))
	for _, info := range infos {
		out = append(out, containerStatus(info, procs[info.ID]))
	}
	return out, nil
}

// ListRecords is List without the tasks: each container's record (ID,
// labels, image) with Status StatusUnknown. It reads containerd's metadata
// store only, where List makes containerd ask every task's shim for its
// state; the agent's per-second watch, which only needs to see containers
// missing or changed, calls it instead (3,600 listings an hour).
func (d *Driver) ListRecords(ctx context.Context) ([]executor.Container, error) {
	infos, err := d.records(d.nsCtx(ctx))
	if err != nil {
		return nil, err
	}
	out := make([]executor.Container, 0, len(infos))
	for _, info := range infos {
		c := containerStatus(info, nil)
		c.Status = executor.StatusUnknown // not asked, not stopped
		out = append(out, c)
	}
	return out, nil
}

// Running reports whether container id's task runs: one round trip to its
// shim. A container without a task, or none at all, does not run.
func (d *Driver) Running(ctx context.Context, id string) (bool, error) {
	resp, err := d.client.TaskService().Get(d.nsCtx(ctx), &tasks.GetRequest{ContainerID: id})
	err = errgrpc.ToNative(err) // the raw task service answers in gRPC codes
	if errdefs.IsNotFound(err) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("task state of %s: %w", id, err)
	}
	return taskRuns(resp.GetProcess().GetStatus()), nil
}

// taskRuns says whether a task in state st counts as running (a paused
// task still holds its process and its ports).
func taskRuns(st tasktypes.Status) bool {
	return st == tasktypes.Status_RUNNING || st == tasktypes.Status_PAUSING || st == tasktypes.Status_PAUSED
}

// records is the records of mcp's containers in ctx's namespace, sorted
// by ID.
func (d *Driver) records(ctx context.Context) ([]containers.Container, error) {
	cs, err := d.client.Containers(ctx, fmt.Sprintf("labels.%q==true", executor.LabelManaged))
	if err != nil {
		return nil, fmt.Errorf("list containers: %w", err)
	}
	out := make([]containers.Container, 0, len(cs))
	for _, c := range cs {
		info, err := c.Info(ctx, client.WithoutRefreshedMetadata)
		if errdefs.IsNotFound(err) {
			continue // removed since the listing
		}
		if err != nil {
			return nil, fmt.Errorf("list containers: %s: %w", c.ID(), err)
		}
		out = append(out, info)
	}
	slices.SortFunc(out, func(a, b containers.Container) int { return strings.Compare(a.ID, b.ID) })
	return out, nil
}

// containerStatus combines a container's record with its task's state (nil
// when it has no task).
func containerStatus(info containers.Container, p *tasktypes.Process) executor.Container {
	ec := executor.Container{ID: info.ID, Labels: info.Labels, Image: info.Image, Status: executor.StatusStopped}
	if p == nil {
		return ec
	}
	switch {
	case taskRuns(p.Status):
		ec.Status = executor.StatusRunning
		ec.PID = p.Pid
	case p.Status == tasktypes.Status_STOPPED:
		ec.ExitCode = p.ExitStatus
	case p.Status == tasktypes.Status_CREATED:
		ec.Status = executor.StatusCreated
	default:
		ec.Status = executor.StatusUnknown
	}
	return ec
}
