package testenv

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"
)

// RegistryDaemon is a docker-registry (the CNCF Distribution registry as
// Debian packages it) this package started on 127.0.0.1, plain HTTP, with
// its config, storage and log under Dir.
//
// Distribution 2.8 accepts htpasswd basic auth over plain HTTP (it only
// warns), so authenticated registries need no TLS here.
type RegistryDaemon struct {
	Dir      string // removed by Close
	Addr     string // host:port
	User     string // "" when the registry has no auth
	Password string
	LogFile  string

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{}
}

// RegistryOption configures StartRegistry.
type RegistryOption func(*RegistryDaemon)

// WithBasicAuth makes the registry require HTTP basic auth (htpasswd) with
// this one user.
func WithBasicAuth(user, password string) RegistryOption {
	return func(r *RegistryDaemon) { r.User, r.Password = user, password }
}

// Registry returns the host:port of a plain-HTTP registry without auth to
// push test images to: MCP_TEST_REGISTRY, or a private one shared by the
// package's tests (see the package doc). Tests sharing it should use
// repository names of their own (UniqueRepo).
func Registry(t testing.TB) string {
	t.Helper()
	if a := os.Getenv(EnvRegistry); a != "" {
		return a
	}
	if reason := registryMissing(); reason != "" {
		Missing(t, "testenv: %s is not set and %s; %s", EnvRegistry, reason, hint)
	}
	shared.mu.Lock()
	defer shared.mu.Unlock()
	if shared.registry == nil && shared.regErr == nil {
		if !onExit(t, stopSharedRegistry) {
			return ""
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		shared.registry, shared.regErr = newRegistry(ctx, nil)
	}
	if shared.regErr != nil {
		t.Fatalf("testenv: %v", shared.regErr)
	}
	return shared.registry.Addr
}

func stopSharedRegistry() {
	shared.mu.Lock()
	defer shared.mu.Unlock()
	if shared.registry != nil {
		if err := shared.registry.Close(); err != nil {
			fmt.Fprintf(os.Stderr, "testenv: %v\n", err)
		}
		shared.registry = nil
	}
}

// RegistryWithAuth starts a registry for this test alone that requires
// basic auth as user/password, and returns its host:port.
func RegistryWithAuth(t testing.TB, user, password string) string {
	t.Helper()
	return StartRegistry(t, WithBasicAuth(user, password)).Addr
}

// StartRegistry starts a registry for this test alone (to stop and start it,
// or to give it auth). It is removed when the test ends.
func StartRegistry(t testing.TB, opts ...RegistryOption) *RegistryDaemon {
	t.Helper()
	if reason := registryMissing(); reason != "" {
		Missing(t, "testenv: %s; %s", reason, hint)
	}
	r, err := newRegistry(t.Context(), opts)
	if err != nil {
		t.Fatalf("testenv: %v", err)
	}
	t.Cleanup(func() {
		if err := r.Close(); err != nil {
			t.Errorf("testenv: %v", err)
		}
	})
	return r
}

// UniqueRepo returns a repository name no other test uses, under prefix.
func UniqueRepo(prefix string) string {
	return strings.Trim(prefix, "/") + "/" + RandomID(4)
}

func registryBinary() (string, error) {
	if p, err := exec.LookPath("docker-registry"); err == nil {
		return p, nil
	}
	const debian = "/usr/bin/docker-registry"
	if _, err := os.Stat(debian); err != nil {
		return "", err
	}
	return debian, nil
}

func registryMissing() string {
	if _, err := registryBinary(); err != nil {
		return "docker-registry is not installed (Debian package docker-registry)"
	}
	return ""
}

const regDirPrefix = "mcptest-reg-"

func newRegistry(ctx context.Context, opts []RegistryOption) (*RegistryDaemon, error) {
	sweepStale(regDirPrefix)
	dir, err := os.MkdirTemp("", regDirPrefix)
	if err != nil {
		return nil, fmt.Errorf("registry dir: %w", err)
	}
	r := &RegistryDaemon{Dir: dir, LogFile: filepath.Join(dir, "registry.log")}
	for _, o := range opts {
		o(r)
	}
	if err := os.WriteFile(filepath.Join(dir, ownerFile), []byte(strconv.Itoa(os.Getpid())), 0o600); err != nil {
		return nil, err
	}
	if r.User != "" {
		// The registry checks the bcrypt hash on every request: the
		// minimum cost keeps pulls fast, and these are throwaway secrets.
		hash, err := bcrypt.GenerateFromPassword([]byte(r.Password), bcrypt.MinCost)
		if err != nil {
			_ = os.RemoveAll(dir)
			return nil, fmt.Errorf("htpasswd: %w", err)
		}
		if err := os.WriteFile(filepath.Join(dir, "htpasswd"), []byte(r.User+":"+string(hash)+"\n"), 0o600); err != nil {
			_ = os.RemoveAll(dir)
			return nil, err
		}
	}
	// The port is picked free, then taken by the registry: another process
	// can win the race in between, so try a few.
	var lastErr error
	for range 5 {
		port, err := freePort()
		if err != nil {
			lastErr = err
			continue
		}
		r.Addr = net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
		if lastErr = r.Start(ctx); lastErr == nil {
			return r, nil
		}
	}
	_ = r.Close()
	return nil, lastErr
}

func (r *RegistryDaemon) writeConfig() error {
	auth := ""
	if r.User != "" {
		auth = fmt.Sprintf("auth:\n  htpasswd:\n    realm: mcp-test\n    path: %q\n", filepath.Join(r.Dir, "htpasswd"))
	}
	config := fmt.Sprintf(`version: 0.1
log:
  level: warn
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: %q
  delete:
    enabled: true
http:
  addr: %q
  secret: %q
%s`, filepath.Join(r.Dir, "data"), r.Addr, RandomID(16), auth)
	return os.WriteFile(filepath.Join(r.Dir, "config.yml"), []byte(config), 0o600)
}

// Start starts the registry (again, after Stop) on the same address and
// storage, and waits until it answers.
func (r *RegistryDaemon) Start(ctx context.Context) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.cmd != nil {
		return fmt.Errorf("registry at %s is already running", r.Addr)
	}
	bin, err := registryBinary()
	if err != nil {
		return fmt.Errorf("docker-registry: %w", err)
	}
	if err := r.writeConfig(); err != nil {
		return err
	}
	logf, err := os.OpenFile(r.LogFile, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	defer logf.Close()
	cmd := exec.Command(bin, "serve", filepath.Join(r.Dir, "config.yml"))
	// REGISTRY_* variables override the config file: keep the caller's out.
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "REGISTRY_") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start docker-registry: %w", err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	r.cmd, r.done = cmd, done
	_ = os.WriteFile(filepath.Join(r.Dir, daemonPIDFile), []byte(strconv.Itoa(cmd.Process.Pid)), 0o600)

	if err := waitRegistry(ctx, r.Addr, done); err != nil {
		r.stopLocked()
		return fmt.Errorf("%w\n%s", err, tail(r.LogFile, 10))
	}
	return nil
}

func waitRegistry(ctx context.Context, addr string, exited <-chan struct{}) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	hc := &http.Client{Timeout: 2 * time.Second}
	for {
		select {
		case <-exited:
			return fmt.Errorf("docker-registry on %s exited during start-up", addr)
		default:
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/v2/", nil)
		if err != nil {
			return err
		}
		if resp, err := hc.Do(req); err == nil {
			resp.Body.Close()
			// 401 is an answer too: the registry is up and wants auth.
			if resp.StatusCode == http.StatusOK || resp.StatusCode == http.StatusUnauthorized {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("docker-registry on %s did not answer within 30s", addr)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// Stop stops the registry (its storage stays, for a later Start).
func (r *RegistryDaemon) Stop() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.stopLocked()
}

func (r *RegistryDaemon) stopLocked() {
	if r.cmd == nil {
		return
	}
	stopProcess(r.cmd, r.done, syscall.SIGTERM, 5*time.Second)
	r.cmd, r.done = nil, nil
}

// Close stops the registry and removes Dir.
func (r *RegistryDaemon) Close() error {
	r.Stop()
	if err := os.RemoveAll(r.Dir); err != nil {
		return fmt.Errorf("remove registry dir: %w", err)
	}
	return nil
}
