package demo

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"metacircular.net/mcp/api"
	"metacircular.net/mcp/internal/ociimage"
)

// Printer writes the demo's progress lines, each with the time since the
// start, so a slow step is easy to spot.
type Printer struct {
	W     io.Writer
	start time.Time
}

// NewPrinter starts the clock.
func NewPrinter(w io.Writer) *Printer { return &Printer{W: w, start: time.Now()} }

// Step prints one progress line.
func (p *Printer) Step(format string, args ...any) {
	fmt.Fprintf(p.W, "[demo %5.1fs] %s\n", time.Since(p.start).Seconds(), fmt.Sprintf(format, args...))
}

// ErrRunning is returned by Up when the demo's agent already runs; Status
// then says where things are.
var ErrRunning = errors.New("the demo is already running")

// Up deploys the demo: images, repo, haproxy, agent configuration, agent,
// and a wait until the service answers through haproxy over TLS. It
// prints progress, the answers (direct and through the proxy), `mcp
// status`, the URL and the next steps. The state directory must not hold
// a running demo (ErrRunning); leftovers of a dead one are replaced.
// s.ProxyPort 0 picks a free port for haproxy's listener.
func Up(ctx context.Context, s Settings, p *Printer, timeout time.Duration) error {
	if err := s.check(); err != nil {
		return err
	}
	if pid, ok := agentRunning(s); ok {
		return fmt.Errorf("%w (agent pid %d, state in %s)", ErrRunning, pid, s.StateDir)
	}
	// A haproxy left by a dead demo holds the listener and the old routes.
	if err := stopHAProxy(ctx, s); err != nil {
		return err
	}
	// Old maps and certificates too: the new agent's registry would not
	// know their routes and would refuse to touch them as someone else's.
	for _, dir := range []string{s.RepoDir(), s.AgentDir(), s.WorkDir, s.HAProxyDir(), s.ProxyCertDir()} {
		if err := os.RemoveAll(dir); err != nil {
			return fmt.Errorf("demo: remove leftovers: %w", err)
		}
	}
	if s.ProxyPort == 0 {
		port, err := pickProxyPort()
		if err != nil {
			return err
		}
		s.ProxyPort = port
	}
	if err := os.MkdirAll(s.StateDir, 0o755); err != nil {
		return fmt.Errorf("demo: state dir: %w", err)
	}
	if err := s.save(); err != nil {
		return err
	}

	images, err := pushImages(ctx, s, p)
	if err != nil {
		return err
	}
	if err := createRepo(ctx, s); err != nil {
		return err
	}
	p.Step("desired-state repo %s, working clone %s (%s)", s.RepoDir(), s.WorkDir, Service+" "+images[0].tag)

	hpid, err := startHAProxy(ctx, s)
	if err != nil {
		return err
	}
	p.Step("started haproxy (pid %d, master-worker) listening on 127.0.0.1:%d, config %s, log %s", hpid, s.ProxyPort, haproxyConfig(s).ConfigPath(), s.HAProxyLog())

	if err := os.WriteFile(s.AgentConfig(), []byte(AgentConfigText(s)), 0o644); err != nil {
		return fmt.Errorf("demo: write agent config: %w", err)
	}
	if err := rememberSrvDir(s); err != nil {
		return err
	}
	pid, err := startAgent(s)
	if err != nil {
		return err
	}
	p.Step("started %s --config %s (pid %d, log %s)", s.MCP+" agent", s.AgentConfig(), pid, s.AgentLog())

	port, err := waitRunning(ctx, s, pid, "v1", timeout)
	if err != nil {
		return err
	}
	p.Step("%s is running on host port %d", Service, port)
	body, err := get(ctx, fmt.Sprintf("http://127.0.0.1:%d/", port), 30*time.Second)
	if err != nil {
		return fmt.Errorf("demo: %s runs but does not answer on port %d: %w", Service, port, err)
	}
	p.Step("curl http://127.0.0.1:%d/ → %s (the container directly)", port, strings.TrimSpace(body))
	// The route step follows the container step in the same reconcile;
	// a minute covers the certificate, the backend check and the
	// read-back.
	body, err = getTLS(ctx, s, time.Minute)
	if err != nil {
		return fmt.Errorf("demo: %s runs but does not answer through haproxy at %s: %w; last lines of %s:\n%s",
			Service, s.URL(), err, s.AgentLog(), tail(s.AgentLog(), 20))
	}
	p.Step("%s → %s (through haproxy, TLS checked against %s)", s.URL(), strings.TrimSpace(body), s.CARoot())
	fmt.Fprintln(p.W)
	if err := printStatus(ctx, s, p.W); err != nil {
		return err
	}
	fmt.Fprintln(p.W)
	fmt.Fprint(p.W, NextSteps(s, port))
	return nil
}

func (s Settings) check() error {
	var errs []error
	for name, v := range map[string]string{"state dir": s.StateDir, "work dir": s.WorkDir, "containerd socket": s.Containerd, "mcp binary": s.MCP} {
		if !filepath.IsAbs(v) {
			errs = append(errs, fmt.Errorf("%s %q is not an absolute path", name, v))
		}
	}
	if s.Registry == "" || s.Namespace == "" {
		errs = append(errs, errors.New("registry and namespace are required"))
	}
	if len(s.Socket()) > 107 {
		errs = append(errs, fmt.Errorf("state dir %s is too long for a Unix socket path", s.StateDir))
	}
	if len(errs) > 0 {
		return fmt.Errorf("demo: %w", errors.Join(errs...))
	}
	return nil
}

func (s Settings) save() error {
	b, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return fmt.Errorf("demo: %w", err)
	}
	if err := os.WriteFile(s.file(), append(b, '\n'), 0o644); err != nil {
		return fmt.Errorf("demo: save settings: %w", err)
	}
	return nil
}

// Load reads the settings Up saved in stateDir.
func Load(stateDir string) (Settings, error) {
	s := Settings{StateDir: stateDir}
	b, err := os.ReadFile(s.file())
	if err != nil {
		return Settings{}, fmt.Errorf("demo: %w", err)
	}
	if err := json.Unmarshal(b, &s); err != nil {
		return Settings{}, fmt.Errorf("demo: %s: %w", s.file(), err)
	}
	return s, nil
}

type pushed struct {
	tag, ref, digest string
}

// pushImages builds hello once and pushes it as v1 and v2. The two differ
// only in $VERSION (what the server answers), which is enough to give them
// different digests, so the agent sees a real image change.
func pushImages(ctx context.Context, s Settings, p *Printer) ([]pushed, error) {
	bin, err := ociimage.BuildGo(ctx, helloPkg)
	if err != nil {
		return nil, fmt.Errorf("demo: %w", err)
	}
	layer, err := ociimage.BinaryLayer("hello", bin)
	if err != nil {
		return nil, fmt.Errorf("demo: %w", err)
	}
	var out []pushed
	for _, tag := range []string{"v1", "v2"} {
		img, err := ociimage.Push(ctx, ociimage.Target{
			Registry: s.Registry, Repo: RepoPath + "/" + Service, Tag: tag, PlainHTTP: true,
		}, layer, HelloConfig(tag))
		if err != nil {
			return nil, fmt.Errorf("demo: %w", err)
		}
		p.Step("pushed %s (%s)", img.Ref, short(img.Digest))
		out = append(out, pushed{tag: tag, ref: img.Ref, digest: img.Digest})
	}
	return out, nil
}

// HelloConfig is the image config of hello version v.
func HelloConfig(v string) ociimage.Config {
	return ociimage.Config{
		Entrypoint: []string{"/hello"},
		Env:        []string{"PATH=/", "VERSION=" + v},
		StopSignal: "SIGTERM",
		Labels:     map[string]string{ocispec.AnnotationVersion: v},
	}
}

// createRepo makes the bare repo the agent follows and the clone the user
// edits, with the first commit pushed. It uses the git command, since that
// is what the user goes on with; the clone gets a local identity so
// `git commit` works on a machine where none is configured.
func createRepo(ctx context.Context, s Settings) error {
	if err := git(ctx, "", "init", "-q", "--bare", "--initial-branch="+Branch, s.RepoDir()); err != nil {
		return err
	}
	if err := git(ctx, "", "init", "-q", "--initial-branch="+Branch, s.WorkDir); err != nil {
		return err
	}
	for _, args := range [][]string{
		{"config", "user.name", "mcp demo"},
		{"config", "user.email", "demo@mcp.invalid"},
		{"remote", "add", "origin", s.RepoDir()},
	} {
		if err := git(ctx, s.WorkDir, args...); err != nil {
			return err
		}
	}
	for name, content := range RepoFiles(s.Registry, s.ProxyPort) {
		path := filepath.Join(s.WorkDir, name)
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			return fmt.Errorf("demo: %w", err)
		}
		if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
			return fmt.Errorf("demo: %w", err)
		}
	}
	for _, args := range [][]string{
		{"add", "."},
		{"commit", "-q", "-m", "hello v1"},
		{"push", "-q", "-u", "origin", Branch},
	} {
		if err := git(ctx, s.WorkDir, args...); err != nil {
			return err
		}
	}
	if s.Owner != "" {
		uid, gid, err := parseOwner(s.Owner)
		if err != nil {
			return err
		}
		for _, dir := range []string{s.RepoDir(), s.WorkDir} {
			if err := chownTree(dir, uid, gid); err != nil {
				return err
			}
		}
	}
	return nil
}

func git(ctx context.Context, dir string, args ...string) error {
	cmd := exec.CommandContext(ctx, "git", args...)
	cmd.Dir = dir
	// Never wait on a credential prompt: the remote is a local path.
	cmd.Env = append(os.Environ(), "GIT_TERMINAL_PROMPT=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("demo: git %s: %w\n%s", strings.Join(args, " "), err, out)
	}
	return nil
}

func parseOwner(owner string) (uid, gid int, err error) {
	u, g, ok := strings.Cut(owner, ":")
	if ok {
		uid, err = strconv.Atoi(u)
		if err == nil {
			gid, err = strconv.Atoi(g)
		}
	}
	if !ok || err != nil {
		return 0, 0, fmt.Errorf("demo: owner %q is not uid:gid", owner)
	}
	return uid, gid, nil
}

func chownTree(root string, uid, gid int) error {
	err := filepath.Walk(root, func(path string, _ os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		return os.Lchown(path, uid, gid)
	})
	if err != nil {
		return fmt.Errorf("demo: chown %s: %w", root, err)
	}
	return nil
}

// srvMarker records that /srv/<service> did not exist before the demo, so
// Down removes the (empty) directory the agent creates for the service's
// default volume, and never one that was there before.
func (s Settings) srvMarker() string { return filepath.Join(s.StateDir, "srv-created") }

func srvDir() string { return filepath.Join("/srv", Service) }

func rememberSrvDir(s Settings) error {
	if _, err := os.Stat(srvDir()); err == nil {
		return nil
	}
	if err := os.WriteFile(s.srvMarker(), []byte(srvDir()+"\n"), 0o644); err != nil {
		return fmt.Errorf("demo: %w", err)
	}
	return nil
}

// startAgent runs `mcp agent` in its own session, so it outlives this
// process and a Ctrl-C in the user's terminal, with its output in the log
// file and its PID in the pid file.
func startAgent(s Settings) (int, error) {
	logf, err := os.OpenFile(s.AgentLog(), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return 0, fmt.Errorf("demo: agent log: %w", err)
	}
	defer logf.Close()
	cmd := exec.Command(s.MCP, "agent", "--config", s.AgentConfig())
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return 0, fmt.Errorf("demo: start %s agent: %w", s.MCP, err)
	}
	pid := cmd.Process.Pid
	if err := os.WriteFile(s.AgentPID(), []byte(strconv.Itoa(pid)+"\n"), 0o644); err != nil {
		_ = cmd.Process.Kill()
		return 0, fmt.Errorf("demo: %w", err)
	}
	// Reap it in the background should it exit while Up still waits; once
	// Up returns, the agent is re-parented and this goroutine is gone.
	go func() { _ = cmd.Wait() }()
	return pid, nil
}

// agentRunning reports the demo agent's PID when that process is alive and
// is still the agent of this state dir (PIDs get reused).
func agentRunning(s Settings) (int, bool) {
	return recordedPID(s.AgentPID(), s.StateDir)
}

// waitRunning polls the agent's API until the service runs version and has
// a port. It gives up when the agent exits, when the service failed, or at
// the timeout, with the last lines of the agent's log.
func waitRunning(ctx context.Context, s Settings, pid int, version string, timeout time.Duration) (int, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	c := api.NewClient(s.Socket())
	var last string // what the agent said last, for the timeout message
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	for {
		if _, ok := agentRunning(s); !ok {
			return 0, fmt.Errorf("demo: the agent (pid %d) exited; last lines of %s:\n%s", pid, s.AgentLog(), tail(s.AgentLog(), 20))
		}
		st, err := c.Status(ctx)
		if err == nil {
			svc, ok := st.Service(Service)
			switch {
			case !ok:
				last = fmt.Sprintf("service %s not in status yet (last reconcile: %s %s)", Service, st.LastReconcile.Result, st.LastReconcile.Error)
			case svc.State == api.StateRunning && len(svc.Components) > 0 &&
				svc.Components[0].Version == version && svc.Components[0].Ports["default"] != 0:
				return svc.Components[0].Ports["default"], nil
			default:
				last = fmt.Sprintf("service %s is %s %s", Service, svc.State, svc.Error)
			}
		} else {
			last = err.Error()
		}
		select {
		case <-ctx.Done():
			return 0, fmt.Errorf("demo: %s did not run %s within %s (%s); last lines of %s:\n%s",
				Service, version, timeout, last, s.AgentLog(), tail(s.AgentLog(), 20))
		case <-tick.C:
		}
	}
}

// get fetches url until it answers 200 or the timeout passes: the
// container may be a moment behind the status that says it runs.
func get(ctx context.Context, url string, timeout time.Duration) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	hc := &http.Client{Timeout: 5 * time.Second}
	var lastErr error
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return "", err
		}
		resp, err := hc.Do(req)
		if err == nil {
			b, rerr := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK && rerr == nil {
				return string(b), nil
			}
			err = fmt.Errorf("GET %s: %s", url, resp.Status)
		}
		lastErr = err
		select {
		case <-ctx.Done():
			return "", lastErr
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// printStatus runs `mcp status` against the demo agent, as the user would.
func printStatus(ctx context.Context, s Settings, w io.Writer) error {
	fmt.Fprintf(w, "$ %s status --socket %s\n", s.MCP, s.Socket())
	cmd := exec.CommandContext(ctx, s.MCP, "status", "--socket", s.Socket())
	cmd.Stdout, cmd.Stderr = w, w
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("demo: mcp status: %w", err)
	}
	return nil
}

// tail returns the last n lines of a file, for error messages.
func tail(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return "(" + err.Error() + ")"
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return "  " + strings.Join(lines, "\n  ")
}

func short(digest string) string {
	if len(digest) > 19 {
		return digest[:19]
	}
	return digest
}

// apiStatusPort returns the service's host port from the agent's status.
func apiStatusPort(ctx context.Context, s Settings) (int, error) {
	st, err := api.NewClient(s.Socket()).ServiceStatus(ctx, Service)
	if err != nil {
		return 0, err
	}
	svc, ok := st.Service(Service)
	if !ok || len(svc.Components) == 0 {
		return 0, fmt.Errorf("demo: %s not deployed", Service)
	}
	return svc.Components[0].Ports["default"], nil
}
