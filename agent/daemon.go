package agent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"metacircular.net/mcp/api"
	"metacircular.net/mcp/executor"
	"metacircular.net/mcp/executor/containerd"
	"metacircular.net/mcp/executor/ports"
	"metacircular.net/mcp/internal/logattr"
	"metacircular.net/mcp/registry"
	gitsync "metacircular.net/mcp/sync"
)

// DaemonOption changes how Daemon runs; none is needed in production.
type DaemonOption func(*daemonSettings)

type daemonSettings struct {
	afterStep  func(n int)
	supervisor []containerd.SupervisorOption
}

// WithSupervisorOptions adds options to the restart supervisor, e.g. an
// injected clock for tests of its backoff.
func WithSupervisorOptions(opts ...containerd.SupervisorOption) DaemonOption {
	return func(s *daemonSettings) { s.supervisor = append(s.supervisor, opts...) }
}

// WithAfterStep calls fn after every finished plan step with the number of
// steps finished so far in the reconcile (Deps.AfterStep). It exists for
// crash-injection tests (`mcp agent --crash-after-step`) and is never set
// otherwise.
func WithAfterStep(fn func(n int)) DaemonOption {
	return func(s *daemonSettings) { s.afterStep = fn }
}

// Daemon runs the agent on the real drivers named by cfg until ctx ends.
// With once set it reconciles a single time and returns the outcome;
// otherwise it also runs the restart supervisor and the local API. Either
// way the workloads keep running after it returns.
func Daemon(ctx context.Context, cfg *Config, log *slog.Logger, once bool, opts ...DaemonOption) (Outcome, error) {
	var set daemonSettings
	for _, o := range opts {
		o(&set)
	}
	reg, err := registry.Open(cfg.RegistryPath())
	if err != nil {
		return Outcome{}, err
	}
	defer reg.Close()
	if stored, err := reg.Node(ctx); err != nil {
		return Outcome{}, fmt.Errorf("read registry: %w", err)
	} else if stored != "" && stored != cfg.Node {
		return Outcome{}, fmt.Errorf("%s: node: the registry in %s belongs to node %q, not %q; use another state_dir or fix node",
			cfg.File, cfg.StateDir, stored, cfg.Node)
	}
	leaser, err := ports.New(reg, ports.WithRange(cfg.Ports.Lo, cfg.Ports.Hi))
	if err != nil {
		return Outcome{}, fmt.Errorf("%s: ports.range: %w", cfg.File, err)
	}
	regs := make(map[string]containerd.Registry, len(cfg.Registries))
	for _, r := range cfg.Registries {
		regs[r.Host] = containerd.Registry{Username: r.Username, PasswordFile: r.PasswordFile, PlainHTTP: r.PlainHTTP}
	}
	rt, err := containerd.New(ctx, containerd.Config{
		Address:    cfg.Containerd.Address,
		Namespace:  cfg.Containerd.Namespace,
		StateDir:   cfg.StateDir,
		Registries: regs,
	}, containerd.WithLogger(log))
	if err != nil {
		return Outcome{}, fmt.Errorf("connect to containerd at %s (%s: containerd.address): %w", cfg.Containerd.Address, cfg.File, err)
	}
	defer rt.Close()
	syncOpts, err := cfg.syncOptions(reg) // [trust]: verify before anything is applied
	if err != nil {
		return Outcome{}, err
	}
	src, err := gitsync.New(gitsync.Config{
		URL:              cfg.Git.URL,
		Branch:           cfg.Git.Branch,
		CacheDir:         cfg.GitCacheDir(),
		SSHKeyFile:       cfg.Git.SSHKeyFile,
		KnownHostsFile:   cfg.Git.KnownHostsFile,
		HTTPUsername:     cfg.Git.HTTPUsername,
		HTTPPasswordFile: cfg.Git.HTTPPasswordFile,
		AllowBackwards:   cfg.Git.AllowBackwards,
		Timeout:          cfg.Git.Timeout.Duration,
	}, append(syncOpts, gitsync.WithLogger(log))...)
	if err != nil {
		return Outcome{}, fmt.Errorf("%s: %w", cfg.File, err)
	}
	zones, err := cfg.DNSZones() // [[dns]] (config_dns.go): record steps and ACME DNS-01
	if err != nil {
		return Outcome{}, err
	}
	// [certs] and [acme] (config_certs.go); DNS-01 goes through the
	// [[dns]] drivers.
	certSetup, err := CertOptions(cfg, log, zones)
	if err != nil {
		return Outcome{}, err
	}
	routes, closeProxy, err := proxyRouter(ctx, cfg.Proxy) // [proxy]: routes through the node's proxy
	if err != nil {
		return Outcome{}, fmt.Errorf("%s: proxy: %w", cfg.File, err)
	}
	defer closeProxy()
	routes = append(routes, recordOptions(zones, src, cfg.Node)...) // records.go
	routes = append(routes, executor.WithHealth())                  // health waits in rollouts (docs/agent.md)
	a := New(cfg, Deps{Registry: reg, Source: src, Runtime: rt, Ports: leaser, Logger: log, AfterStep: set.afterStep, Executor: append(routes, certSetup.Options()...)})
	if err := a.enableNotes(src); err != nil { // [status] notes
		return Outcome{}, err
	}
	if once {
		return a.Once(ctx)
	}

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	errc := make(chan error, 4)
	// The API socket and the metrics and status page listeners are bound
	// before anything runs, so a taken address fails the start at once;
	// readiness (sd_notify) follows the first reconcile (ops_http.go).
	sock, err := api.CreateSocket(ctx, cfg.API.Socket, cfg.API.SocketMode(), cfg.API.Group)
	if err != nil {
		return Outcome{}, fmt.Errorf("%s: api.socket: %w", cfg.File, err)
	}
	serveOps, err := a.startOps(ctx, log)
	if err != nil {
		sock.Close()
		return Outcome{}, err
	}
	go func() { errc <- serveOps() }()
	if certSetup.HTTP01 != nil {
		serveACME, err := serveHTTP01(ctx, certSetup.Listen, certSetup.HTTP01)
		if err != nil {
			sock.Close()
			return Outcome{}, fmt.Errorf("%s: %w", cfg.File, err)
		}
		go func() { errc <- serveACME() }()
	}
	sup := containerd.NewSupervisor(rt, append([]containerd.SupervisorOption{containerd.WithEventHandler(a.supervisorEvent)}, set.supervisor...)...)
	go func() { errc <- ignoreCanceled(sup.Run(ctx)) }()
	go a.watchLoop(ctx) // health and drift between reconciles (watch.go)
	srv := api.NewServer(a, api.WithLogger(log))
	go func() {
		if err := srv.Serve(ctx, sock); err != nil {
			errc <- fmt.Errorf("%s: api.socket: %w", cfg.File, err)
			return
		}
		errc <- nil
	}()
	log.Info("agent started", "state_dir", cfg.StateDir, "repo", cfg.Git.URL, "branch", cfg.Git.Branch,
		"socket", cfg.API.Socket, "namespace", cfg.Containerd.Namespace)
	runErr := make(chan error, 1)
	go func() { runErr <- a.Run(ctx) }()
	select {
	case err := <-runErr:
		return a.Last(), err
	case err := <-errc:
		if err != nil {
			cancel()
			<-runErr //nolint:errcheck // the listener's failure is the one to report
			return a.Last(), err
		}
		return a.Last(), <-runErr
	}
}

func ignoreCanceled(err error) error {
	if errors.Is(err, context.Canceled) {
		return nil
	}
	return err
}

// restartInfo is what the supervisor told about one container.
type restartInfo struct {
	Restarts  int
	CrashLoop bool
	LastExit  uint32
	LastError string
	When      time.Time
}

// supervisorEvent records restarts and crash loops for status. It must not
// block: it runs on the supervisor's goroutines.
func (a *Agent) supervisorEvent(e containerd.Event) {
	a.crashLoopQuarantine(e) // quarantine.go
	a.rs.supervised(e)       // drift shown in status (watch.go)
	if e.ID == "" {
		a.log.Warn("containerd event stream", "event", string(e.Type), "err", e.Err)
		return
	}
	a.observeSupervisor(e) // metrics and events (ops.go)
	a.mu.Lock()
	ri := a.restarts[e.ID]
	ri.When, ri.LastExit = e.Time, e.ExitCode
	switch e.Type {
	case containerd.EventRestarted:
		ri.Restarts++
	case containerd.EventCrashLooping:
		ri.CrashLoop = true
	case containerd.EventRestartFailed:
		if e.Err != nil {
			ri.LastError = e.Err.Error()
		}
	}
	a.restarts[e.ID] = ri
	a.mu.Unlock()
	service, component := splitContainerID(e.ID)
	a.log.Warn("container exited", logattr.With(logattr.Service(service, component, "", ""),
		"container", e.ID, "event", string(e.Type), "exit_code", e.ExitCode,
		"restarts", e.Restarts, "delay", e.Delay, "err", e.Err)...)
}
