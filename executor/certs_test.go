package executor_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"metacircular.net/mcp/executor"
	"metacircular.net/mcp/executor/certs"
	"metacircular.net/mcp/executor/certs/localca"
	"metacircular.net/mcp/planner"
	"metacircular.net/mcp/registry"
	"metacircular.net/mcp/spec"
)

// fakeRuntime is an in-memory container runtime: the cert tests are about
// files and consumers, not containers (the agent tests run containerd).
type fakeRuntime struct {
	mu      sync.Mutex
	running map[string]executor.ContainerSpec
	starts  []string
	removes []string
}

func (f *fakeRuntime) EnsureImage(ctx context.Context, ref string) (string, error) {
	return "sha256:" + strings.Repeat("a", 64), nil
}

func (f *fakeRuntime) Start(ctx context.Context, s executor.ContainerSpec) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.running[s.ID] = s
	f.starts = append(f.starts, s.ID)
	return nil
}

func (f *fakeRuntime) Remove(ctx context.Context, id string, grace time.Duration) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.running[id]; ok {
		f.removes = append(f.removes, id)
	}
	delete(f.running, id)
	return nil
}

func (f *fakeRuntime) List(ctx context.Context) ([]executor.Container, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []executor.Container
	for id, s := range f.running {
		out = append(out, executor.Container{ID: id, Labels: s.Labels, Status: executor.StatusRunning})
	}
	return out, nil
}

type fakePorts struct{ next int }

func (p *fakePorts) Lease(ctx context.Context, service, component, route string, slot int) (int, error) {
	p.next++
	return 20000 + p.next, nil
}
func (p *fakePorts) Fixed(ctx context.Context, service, component string, port int) error { return nil }
func (p *fakePorts) Release(ctx context.Context, service, component, route string, slot int) error {
	return nil
}

// countingIssuer wraps an issuer, counts requests and can be made to fail
// like a CA that refuses.
type countingIssuer struct {
	certs.Issuer
	mu    sync.Mutex
	calls int
	fail  error
}

func (c *countingIssuer) Issue(ctx context.Context, host string) (certs.Bundle, error) {
	c.mu.Lock()
	c.calls++
	fail := c.fail
	c.mu.Unlock()
	if fail != nil {
		return certs.Bundle{}, fail
	}
	return c.Issuer.Issue(ctx, host)
}

type certEnv struct {
	t       *testing.T
	root    string // host root
	reg     *registry.Registry
	rt      *fakeRuntime
	exec    *executor.Executor
	issuer  *countingIssuer
	now     time.Time
	reloads []string
}

func newCertEnv(t *testing.T, issuer certs.Issuer) *certEnv {
	t.Helper()
	dir := t.TempDir()
	reg, err := registry.Open(filepath.Join(dir, "registry.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { reg.Close() })
	env := &certEnv{t: t, root: filepath.Join(dir, "host"), reg: reg, rt: &fakeRuntime{running: map[string]executor.ContainerSpec{}},
		issuer: &countingIssuer{Issuer: issuer}, now: time.Now()}
	env.exec = executor.New(reg, executor.RegistryJournal{Reg: reg}, &fakePorts{}, env.rt, filepath.Join(dir, "logs"),
		executor.WithHostRoot(env.root),
		executor.WithClock(func() time.Time { return env.now }),
		executor.WithCerts(env.issuer, filepath.Join(dir, "state", "certs"),
			executor.CertIssuerName("test"),
			executor.CertOnRenew(func(ctx context.Context, host, chain, key string) error {
				env.reloads = append(env.reloads, host)
				return nil
			})))
	if !env.exec.Features().Certs {
		t.Fatal("Features().Certs is off with WithCerts")
	}
	return env
}

// apply plans and applies the desired services the way the agent does.
func (env *certEnv) apply(desired ...spec.Service) executor.Result {
	env.t.Helper()
	ctx := context.Background()
	snap, err := env.reg.Snapshot(ctx)
	if err != nil {
		env.t.Fatal(err)
	}
	p := planner.Compute(planner.Input{Node: "n1", Domain: "example.org", Desired: desired, Actual: snap,
		Features: env.exec.Features(), AllowRemoveAll: true})
	res, err := env.exec.Apply(ctx, p, desired, "c1")
	if err != nil {
		env.t.Fatal(err)
	}
	return res
}

func (env *certEnv) path(p string) string { return filepath.Join(env.root, p) }

func (env *certEnv) read(p string) []byte {
	env.t.Helper()
	b, err := os.ReadFile(env.path(p))
	if err != nil {
		env.t.Fatal(err)
	}
	return b
}

const (
	l7Host = "web.svc.mcp.example.org"
	l4Host = "db.svc.mcp.example.org"
)

func service() spec.Service {
	return spec.Service{Name: "web", Node: "n1", Active: true, Components: []spec.Component{
		{Name: "web", Image: "registry.example/web:v1", Version: "v1", User: "0:0", Restart: "unless-stopped",
			Routes: []spec.Route{{Port: 443, Mode: spec.ModeL7, Hostname: l7Host, EnvVars: []string{"PORT"}}}},
		{Name: "db", Image: "registry.example/db:v1", Version: "v1", User: "1234:2345", Restart: "unless-stopped",
			Routes: []spec.Route{{Port: 9443, Mode: spec.ModeL4, Hostname: l4Host, EnvVars: []string{"PORT"}}}},
	}}
}

func leafFP(t *testing.T, chain []byte) string {
	t.Helper()
	b := certs.Bundle{ChainPEM: chain}
	fp, err := b.Fingerprint()
	if err != nil {
		t.Fatal(err)
	}
	return fp
}

func TestCertsDeployWritesFiles(t *testing.T) {
	env := newCertEnv(t, localca.New(t.TempDir()))
	res := env.apply(service())
	if res.Failed() {
		t.Fatalf("%+v", res.Services)
	}
	l7c, l7k := certs.L7Paths(certs.DefaultProxyCertDir, l7Host)
	l4c, l4k, l4ca := certs.L4Paths("/srv", "web")
	tests := []struct {
		path     string
		mode     os.FileMode
		uid, gid uint32
		host     string // chain files: valid for this hostname
	}{
		{l7c, 0o644, 0, 0, l7Host},
		{l7k, 0o600, 0, 0, ""},
		{l4c, 0o644, 1234, 2345, l4Host},
		{l4k, 0o600, 1234, 2345, ""},
		{l4ca, 0o644, 1234, 2345, ""},
	}
	for _, tt := range tests {
		fi, err := os.Stat(env.path(tt.path))
		if err != nil {
			t.Fatal(err)
		}
		st := fi.Sys().(*syscall.Stat_t)
		if fi.Mode().Perm() != tt.mode || st.Uid != tt.uid || st.Gid != tt.gid {
			t.Errorf("%s: mode %o owner %d:%d, want %o %d:%d", tt.path, fi.Mode().Perm(), st.Uid, st.Gid, tt.mode, tt.uid, tt.gid)
		}
		if tt.host != "" {
			keyPath := strings.TrimSuffix(tt.path, ".pem") + ".key"
			if tt.path == l4c {
				keyPath = l4k
			}
			b := certs.Bundle{ChainPEM: env.read(tt.path), KeyPEM: env.read(keyPath)}
			if tt.path == l4c {
				b.CAPEM = env.read(l4ca)
			}
			if err := b.Check(tt.host, time.Now()); err != nil {
				t.Errorf("%s: %v", tt.path, err)
			}
		}
	}
	recs, err := env.exec.Certs(context.Background())
	if err != nil || len(recs) != 2 {
		t.Fatalf("records %+v %v", recs, err)
	}
	for _, r := range recs {
		if r.Fingerprint == "" || r.NotAfter.IsZero() || r.Issuer != "test" || len(r.Files) == 0 {
			t.Errorf("record %+v", r)
		}
		for _, f := range r.Files {
			if f.Foreign || f.SHA256 == "" {
				t.Errorf("file %+v", f)
			}
		}
	}
	if env.issuer.calls != 2 {
		t.Errorf("%d issuances, want 2", env.issuer.calls)
	}
	// A second apply of the same definition requests nothing.
	env.apply(service())
	if env.issuer.calls != 2 {
		t.Errorf("re-apply issued again (%d)", env.issuer.calls)
	}
}

func TestCertsRenewalWindow(t *testing.T) {
	env := newCertEnv(t, localca.New(t.TempDir()))
	if res := env.apply(service()); res.Failed() {
		t.Fatalf("%+v", res.Services)
	}
	l7c, _ := certs.L7Paths(certs.DefaultProxyCertDir, l7Host)
	l4c, _, _ := certs.L4Paths("/srv", "web")
	before7, before4 := env.read(l7c), env.read(l4c)
	start := env.now
	ctx := context.Background()

	// 60 days left of 90: outside the 30-day window, nothing is requested.
	out, err := env.exec.RenewCerts(ctx, start.Add(30*24*time.Hour))
	if err != nil || len(out) != 0 || env.issuer.calls != 2 {
		t.Fatalf("outside the window: %+v %v, %d issuances", out, err, env.issuer.calls)
	}
	if !bytes.Equal(before7, env.read(l7c)) {
		t.Fatal("files changed outside the window")
	}

	// A CA that refuses inside the window: the previous certificate keeps
	// serving and the error says why.
	inside := start.Add(65 * 24 * time.Hour)
	env.issuer.fail = errors.New("acme: 403 urn:ietf:params:acme:error:unauthorized: account revoked")
	out, err = env.exec.RenewCerts(ctx, inside)
	if err != nil || len(out) != 2 {
		t.Fatalf("%+v %v", out, err)
	}
	for _, r := range out {
		if r.Err == nil || !strings.Contains(r.Err.Error(), "account revoked") {
			t.Errorf("%s: err %v", r.Hostname, r.Err)
		}
	}
	if !bytes.Equal(before7, env.read(l7c)) || !bytes.Equal(before4, env.read(l4c)) {
		t.Fatal("a failed renewal changed the files")
	}
	env.issuer.fail = nil

	// Inside the window: replaced and re-pointed.
	env.rt.starts, env.rt.removes, env.reloads = nil, nil, nil
	out, err = env.exec.RenewCerts(ctx, inside)
	if err != nil || len(out) != 2 {
		t.Fatalf("%+v %v", out, err)
	}
	for _, r := range out {
		if r.Err != nil {
			t.Fatal(r.Err)
		}
	}
	if leafFP(t, env.read(l7c)) == leafFP(t, before7) || leafFP(t, env.read(l4c)) == leafFP(t, before4) {
		t.Fatal("files not replaced")
	}
	if !slices.Equal(env.reloads, []string{l7Host}) {
		t.Errorf("proxy reloads %v, want [%s]", env.reloads, l7Host)
	}
	if !slices.Equal(env.rt.removes, []string{"web.db.a"}) || !slices.Equal(env.rt.starts, []string{"web.db.a"}) {
		t.Errorf("restarts: removed %v started %v, want the L4 component web.db.a only", env.rt.removes, env.rt.starts)
	}
	recs, _ := env.exec.Certs(ctx)
	for _, r := range recs {
		if r.Fingerprint != leafFP(t, env.read(map[string]string{l7Host: l7c, l4Host: l4c}[r.Hostname])) {
			t.Errorf("%s: record fingerprint is not the file's", r.Hostname)
		}
	}
}

func TestCertsFailedIssuanceFailsStep(t *testing.T) {
	env := newCertEnv(t, localca.New(t.TempDir()))
	env.issuer.fail = errors.New("acme: register account: 403 urn:ietf:params:acme:error:unauthorized: bad EAB")
	res := env.apply(service())
	if !res.Failed() {
		t.Fatal("deployed without a certificate")
	}
	err := res.Services[0].Err
	if !strings.Contains(err.Error(), "bad EAB") || !strings.Contains(res.Services[0].FailedStep, "/cert/") {
		t.Errorf("failure %q at %s", err, res.Services[0].FailedStep)
	}
	// Nothing half-written: no certificate file anywhere under the host root.
	_ = filepath.WalkDir(env.root, func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			t.Errorf("left behind: %s", p)
		}
		return nil
	})
	if recs, _ := env.exec.Certs(context.Background()); len(recs) != 0 {
		t.Errorf("records %+v", recs)
	}
}

func TestCertsForeignFilesLeftAlone(t *testing.T) {
	env := newCertEnv(t, localca.New(t.TempDir()))
	l4c, l4k, _ := certs.L4Paths("/srv", "web")
	if err := os.MkdirAll(filepath.Dir(env.path(l4c)), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(env.path(l4c), []byte("the operator's own certificate"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(env.path(l4k), []byte("the operator's own key"), 0o600); err != nil {
		t.Fatal(err)
	}
	if res := env.apply(service()); res.Failed() {
		t.Fatalf("%+v", res.Services)
	}
	if got := string(env.read(l4c)); got != "the operator's own certificate" {
		t.Fatalf("foreign certificate overwritten: %q", got)
	}
	recs, _ := env.exec.Certs(context.Background())
	for _, r := range recs {
		for _, f := range r.Files {
			if (r.Hostname == l4Host) != f.Foreign {
				t.Errorf("%s %s foreign=%v", r.Hostname, f.Path, f.Foreign)
			}
		}
	}
	// Renewal leaves it alone too.
	if _, err := env.exec.RenewCerts(context.Background(), env.now.Add(80*24*time.Hour)); err != nil {
		t.Fatal(err)
	}
	if got := string(env.read(l4c)); got != "the operator's own certificate" {
		t.Fatalf("foreign certificate overwritten by renewal: %q", got)
	}
}

func TestCertsRemoval(t *testing.T) {
	env := newCertEnv(t, localca.New(t.TempDir()))
	if res := env.apply(service()); res.Failed() {
		t.Fatalf("%+v", res.Services)
	}
	// A file of someone else's next to mcp's stays.
	other := filepath.Join(certs.DefaultProxyCertDir, "other.example.org.pem")
	if err := os.WriteFile(env.path(other), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	if res := env.apply(); res.Failed() {
		t.Fatalf("%+v", res.Services)
	}
	l7c, l7k := certs.L7Paths(certs.DefaultProxyCertDir, l7Host)
	for _, p := range []string{l7c, l7k} {
		if _, err := os.Stat(env.path(p)); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s still there after removal (%v)", p, err)
		}
	}
	l4c, l4k, l4ca := certs.L4Paths("/srv", "web")
	for _, p := range []string{l4c, l4k, l4ca, other} {
		if _, err := os.Stat(env.path(p)); err != nil {
			t.Errorf("%s deleted: %v", p, err)
		}
	}
	if recs, _ := env.exec.Certs(context.Background()); len(recs) != 0 {
		t.Errorf("records left: %+v", recs)
	}
}

// fakeRouter records upserts; RenewCerts re-registers the l7 routes of a
// renewed hostname through it.
type fakeRouter struct{ upserts []executor.Route }

func (f *fakeRouter) Upsert(ctx context.Context, r executor.Route) error {
	f.upserts = append(f.upserts, r)
	return nil
}
func (f *fakeRouter) Remove(ctx context.Context, listener, hostname string) error { return nil }
func (f *fakeRouter) List(ctx context.Context) ([]executor.Route, error)          { return nil, nil }

func TestCertsRenewalReregistersRoutes(t *testing.T) {
	env := newCertEnv(t, localca.New(t.TempDir()))
	router := &fakeRouter{}
	// Deployed without routes (no proxy to wait for here); the route mcp
	// owns is then recorded as a route step would, and the router added.
	svc := service()
	svc.Components = svc.Components[:1] // the l7 component only
	if res := env.apply(svc); res.Failed() {
		t.Fatalf("%+v", res.Services)
	}
	chain, key := certs.L7Paths(certs.DefaultProxyCertDir, l7Host)
	route := executor.Route{Listener: ":443", Hostname: l7Host, Backend: "127.0.0.1:20001", Mode: spec.ModeL7,
		CertFile: env.path(chain), KeyFile: env.path(key)}
	err := env.reg.Update(context.Background(), func(tx *registry.Tx) error {
		return tx.Put(registry.StoreRoutes, route.ID(), executor.RouteRecord{Route: route, Service: "web", Component: "web", Key: "default"})
	})
	if err != nil {
		t.Fatal(err)
	}
	executor.WithRouter(router)(env.exec)
	out, err := env.exec.RenewCerts(context.Background(), env.now.Add(75*24*time.Hour))
	if err != nil || len(out) != 1 || out[0].Err != nil {
		t.Fatalf("%+v %v", out, err)
	}
	if len(router.upserts) != 1 || router.upserts[0] != route {
		t.Fatalf("upserts %+v, want the l7 route re-registered", router.upserts)
	}
	if !slices.Contains(out[0].Repointed, "proxy") {
		t.Errorf("repointed %v", out[0].Repointed)
	}
}
