package executor

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"metacircular.net/mcp/planner"
	"metacircular.net/mcp/registry"
	"metacircular.net/mcp/spec"
)

// fakeRouter is an in-memory proxy; alter plays one that silently
// changes what it stores.
type fakeRouter struct {
	mu     sync.Mutex
	routes map[string]Route
	alter  func(*Route)
	writes int
}

func (f *fakeRouter) Upsert(_ context.Context, r Route) error {
	if err := r.Validate(); err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.writes++
	if f.alter != nil {
		f.alter(&r)
	}
	f.routes[r.ID()] = r
	return nil
}

func (f *fakeRouter) Remove(_ context.Context, listener, hostname string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.writes++
	delete(f.routes, RouteID(listener, hostname))
	return nil
}

func (f *fakeRouter) List(context.Context) ([]Route, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make([]Route, 0, len(f.routes))
	for _, r := range f.routes {
		out = append(out, r)
	}
	return out, nil
}

// fixedPorts leases one port for every route.
type fixedPorts struct{ port int }

func (p fixedPorts) Lease(context.Context, string, string, string, int) (int, error) {
	return p.port, nil
}
func (p fixedPorts) Fixed(context.Context, string, string, int) error           { return nil }
func (p fixedPorts) Release(context.Context, string, string, string, int) error { return nil }

type routeEnv struct {
	e        *Executor
	reg      *registry.Registry
	router   *fakeRouter
	port     int // a port that accepts connections
	hostRoot string
}

func newRouteEnv(t *testing.T, opts ...RouteOption) *routeEnv {
	t.Helper()
	reg, err := registry.Open(filepath.Join(t.TempDir(), "registry.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { reg.Close() })
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	env := &routeEnv{reg: reg, router: &fakeRouter{routes: map[string]Route{}}, port: ln.Addr().(*net.TCPAddr).Port, hostRoot: t.TempDir()}
	opts = append([]RouteOption{RouteListeners(Listener{Port: 443}, Listener{Port: 8443}), RouteBackendWait(300 * time.Millisecond)}, opts...)
	env.e = New(reg, RegistryJournal{Reg: reg}, fixedPorts{env.port}, nil, t.TempDir(),
		WithHostRoot(env.hostRoot), WithRouter(env.router, opts...))
	return env
}

func svcWith(routes ...spec.Route) spec.Service {
	return spec.Service{Name: "web", Node: "n1", Active: true, Components: []spec.Component{{Name: "web", Image: "r/web:v1", Routes: routes}}}
}

func (env *routeEnv) step(t *testing.T, s spec.Service, deployed registry.Deployed, action planner.Action, key string) error {
	t.Helper()
	r := &serviceRun{e: env.e, desired: &s, deployed: deployed, digests: map[string]string{}}
	if action == planner.ActionRemove {
		r.desired = nil
	}
	return env.e.kinds[planner.KindRoute].run(t.Context(), r, planner.Step{Service: "web", Component: "web", Route: key, Kind: planner.KindRoute, Action: action})
}

func (env *routeEnv) records(t *testing.T) map[string]RouteRecord {
	t.Helper()
	recs, err := env.e.kinds[planner.KindRoute].(*routeRunner).records(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	return recs
}

// writeChain writes <dir>/<host>.pem and .key; leafOnly leaves the CA out.
func writeChain(t *testing.T, dir, host string, leafOnly bool) {
	t.Helper()
	key := func() *ecdsa.PrivateKey {
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	caKey, leafKey := key(), key()
	ca := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "ca"}, IsCA: true, BasicConstraintsValid: true,
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), KeyUsage: x509.KeyUsageCertSign}
	caDER, err := x509.CreateCertificate(rand.Reader, ca, ca, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ = x509.ParseCertificate(caDER)
	leaf := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: host}, DNSNames: []string{host},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	leafDER, err := x509.CreateCertificate(rand.Reader, leaf, ca, &leafKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, _ := x509.MarshalPKCS8PrivateKey(leafKey)
	chain := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: leafDER})
	if !leafOnly {
		chain = append(chain, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER})...)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, host+".pem"), chain, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, host+".key"), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		t.Fatal(err)
	}
}

func l7Route() spec.Route {
	return spec.Route{Port: 443, Mode: spec.ModeL7, Hostname: "web.svc.mcp.example.test"}
}

func TestRouteCreateRegistersRecordsAndVerifies(t *testing.T) {
	env := newRouteEnv(t)
	writeChain(t, filepath.Join(env.hostRoot, DefaultCertDir), "web.svc.mcp.example.test", false)
	if env.e.Features().Routes != true {
		t.Fatal("Features().Routes is false with a router")
	}
	if err := env.step(t, svcWith(l7Route()), registry.Deployed{}, planner.ActionCreate, "default"); err != nil {
		t.Fatal(err)
	}
	list, _ := env.router.List(t.Context())
	if len(list) != 1 || list[0].Listener != ":443" || list[0].Mode != spec.ModeL7 ||
		list[0].CertFile != filepath.Join(env.hostRoot, DefaultCertDir, "web.svc.mcp.example.test.pem") {
		t.Fatalf("proxy holds %+v", list)
	}
	if recs := env.records(t); len(recs) != 1 || recs[list[0].ID()].Service != "web" {
		t.Fatalf("records %+v", recs)
	}
	// Idempotent: the same step again writes nothing.
	writes := env.router.writes
	if err := env.step(t, svcWith(l7Route()), registry.Deployed{}, planner.ActionCreate, "default"); err != nil || env.router.writes != writes {
		t.Fatalf("second run: %v, %d writes", err, env.router.writes-writes)
	}
}

func TestRouteRefusals(t *testing.T) {
	cases := map[string]struct {
		route   spec.Route
		prepare func(t *testing.T, env *routeEnv)
		want    error
		text    string
	}{
		"proxy turned l7 into l4": {l7Route(), func(t *testing.T, env *routeEnv) {
			writeChain(t, filepath.Join(env.hostRoot, DefaultCertDir), "web.svc.mcp.example.test", false)
			env.router.alter = func(r *Route) { r.Mode, r.CertFile, r.KeyFile = spec.ModeL4, "", "" }
		}, ErrRouteAltered, `mode "l7" became "l4"`},
		"leaf-only certificate": {l7Route(), func(t *testing.T, env *routeEnv) {
			writeChain(t, filepath.Join(env.hostRoot, DefaultCertDir), "web.svc.mcp.example.test", true)
		}, ErrCertificate, "only the leaf"},
		"no certificate": {l7Route(), func(*testing.T, *routeEnv) {}, ErrCertificate, "no such file"},
		"undeclared listener": {spec.Route{Port: 9443, Mode: spec.ModeL4, Hostname: "web.svc.mcp.example.test"},
			func(*testing.T, *routeEnv) {}, ErrListener, "listens on 443, 8443"},
		"foreign route": {spec.Route{Port: 443, Mode: spec.ModeL4, Hostname: "web.svc.mcp.example.test"}, func(t *testing.T, env *routeEnv) {
			env.router.routes[RouteID(":443", "web.svc.mcp.example.test")] = Route{Listener: ":443", Hostname: "web.svc.mcp.example.test", Backend: "10.0.0.9:1", Mode: spec.ModeL4}
		}, ErrForeignRoute, "someone else"},
		"backend not listening": {spec.Route{Port: 443, Mode: spec.ModeL4, Hostname: "web.svc.mcp.example.test"}, func(t *testing.T, env *routeEnv) {
			env.e.ports = fixedPorts{1} // nothing listens on port 1
		}, ErrBackendDown, "did not accept a TCP connection within 300ms"},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			env := newRouteEnv(t)
			c.prepare(t, env)
			before, _ := env.router.List(t.Context())
			err := env.step(t, svcWith(c.route), registry.Deployed{}, planner.ActionCreate, "default")
			if !errors.Is(err, c.want) || !strings.Contains(err.Error(), c.text) {
				t.Fatalf("err = %v, want %v containing %q", err, c.want, c.text)
			}
			if errors.Is(c.want, ErrRouteAltered) {
				return // written, then found altered: the record keeps it owned for the converge pass
			}
			after, _ := env.router.List(t.Context())
			if !slices.Equal(before, after) {
				t.Fatalf("the proxy was changed: %v → %v", before, after)
			}
		})
	}
}

func TestRouteUpdateMovesAndRemoveDeletesOnlyOwn(t *testing.T) {
	env := newRouteEnv(t)
	old := spec.Route{Port: 443, Mode: spec.ModeL4, Hostname: "web.svc.mcp.example.test"}
	if err := env.step(t, svcWith(old), registry.Deployed{}, planner.ActionCreate, "default"); err != nil {
		t.Fatal(err)
	}
	deployed := registry.Deployed{Spec: svcWith(old)}
	moved := old
	moved.Port = 8443
	if err := env.step(t, svcWith(moved), deployed, planner.ActionUpdate, "default"); err != nil {
		t.Fatal(err)
	}
	list, _ := env.router.List(t.Context())
	if len(list) != 1 || list[0].Listener != ":8443" {
		t.Fatalf("after moving the listener the proxy holds %+v", list)
	}
	foreign := Route{Listener: ":443", Hostname: "other.example.test", Backend: "10.0.0.9:1", Mode: spec.ModeL4}
	env.router.routes[foreign.ID()] = foreign
	if err := env.step(t, spec.Service{}, registry.Deployed{Spec: svcWith(moved)}, planner.ActionRemove, "default"); err != nil {
		t.Fatal(err)
	}
	list, _ = env.router.List(t.Context())
	if len(list) != 1 || list[0] != foreign || len(env.records(t)) != 0 {
		t.Fatalf("after removal: proxy %+v, records %+v", list, env.records(t))
	}
}

func TestConvergeRoutes(t *testing.T) {
	env := newRouteEnv(t)
	ctx := t.Context()
	rt := spec.Route{Port: 443, Mode: spec.ModeL4, Hostname: "web.svc.mcp.example.test"}
	d := registry.Deployed{Spec: svcWith(rt), Features: registry.Features{Routes: true},
		Components: map[string]registry.ComponentState{"web": {ActiveSlot: registry.SlotA, ImageDigest: "sha256:aa"}}}
	if err := env.reg.PutDeployed(ctx, d); err != nil {
		t.Fatal(err)
	}
	if err := env.reg.PutLease(ctx, registry.Lease{Service: "web", Component: "web", Route: "default", Slot: registry.SlotA, Port: env.port}); err != nil {
		t.Fatal(err)
	}
	// An orphan mcp owns, and a route it does not own.
	rr := env.e.kinds[planner.KindRoute].(*routeRunner)
	orphan := Route{Listener: ":8443", Hostname: "gone.example.test", Backend: "127.0.0.1:1", Mode: spec.ModeL4}
	env.router.routes[orphan.ID()] = orphan
	if err := rr.putRecord(ctx, RouteRecord{Route: orphan, Service: "gone", Component: "gone", Key: "default"}); err != nil {
		t.Fatal(err)
	}
	foreign := Route{Listener: ":443", Hostname: "other.example.test", Backend: "10.0.0.9:1", Mode: spec.ModeL4}
	env.router.routes[foreign.ID()] = foreign

	snap, err := env.reg.Snapshot(ctx)
	if err != nil {
		t.Fatal(err)
	}
	repairs, errs := env.e.convergeRoutes(ctx, snap, nil, nil)
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	if len(repairs) != 2 || !strings.Contains(repairs[0].What, "restored") || !strings.Contains(repairs[1].What, "removed a route mcp owns") {
		t.Fatalf("repairs %+v", repairs)
	}
	list, _ := env.router.List(ctx)
	slices.SortFunc(list, func(a, b Route) int { return strings.Compare(a.ID(), b.ID()) })
	if len(list) != 2 || list[0] != foreign || list[1].Hostname != "web.svc.mcp.example.test" {
		t.Fatalf("proxy after converge: %+v", list)
	}
	// Converged: nothing more to do, and status confirms the route.
	if repairs, errs := env.e.convergeRoutes(ctx, snap, nil, nil); len(repairs)+len(errs) != 0 {
		t.Fatalf("second pass: %+v %v", repairs, errs)
	}
	states, err := env.e.Routes(ctx)
	if err != nil || len(states) != 1 || !states[0].Confirmed {
		t.Fatalf("Routes: %+v %v", states, err)
	}
}

// A later step's failure puts the previous backend back at once (a
// blue-green switch undone), and a listener move is undone too.
func TestRouteUndoRestoresPreviousRoute(t *testing.T) {
	env := newRouteEnv(t)
	rt := spec.Route{Port: 443, Mode: spec.ModeL4, Hostname: "web.svc.mcp.example.test"}
	if err := env.step(t, svcWith(rt), registry.Deployed{}, planner.ActionCreate, "default"); err != nil {
		t.Fatal(err)
	}
	before, _ := env.router.List(t.Context())

	// Another backend port (the other slot), then undo.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	env.e.ports = fixedPorts{ln.Addr().(*net.TCPAddr).Port}
	s := svcWith(rt)
	r := &serviceRun{e: env.e, desired: &s, deployed: registry.Deployed{Spec: svcWith(rt)}, digests: map[string]string{}}
	st := planner.Step{Service: "web", Component: "web", Route: "default", Kind: planner.KindRoute, Action: planner.ActionUpdate}
	if err := env.e.kinds[planner.KindRoute].run(t.Context(), r, st); err != nil {
		t.Fatal(err)
	}
	if now, _ := env.router.List(t.Context()); now[0].Backend == before[0].Backend {
		t.Fatal("the backend did not move")
	}
	r.undo(t.Context())
	if after, _ := env.router.List(t.Context()); !slices.Equal(after, before) {
		t.Fatalf("after undo the proxy holds %v, want %v", after, before)
	}

	// A listener move, undone: the old route is back, the new one gone.
	moved := rt
	moved.Port = 8443
	s = svcWith(moved)
	r = &serviceRun{e: env.e, desired: &s, deployed: registry.Deployed{Spec: svcWith(rt)}, digests: map[string]string{}}
	if err := env.e.kinds[planner.KindRoute].run(t.Context(), r, st); err != nil {
		t.Fatal(err)
	}
	r.undo(t.Context())
	if after, _ := env.router.List(t.Context()); !slices.Equal(after, before) {
		t.Fatalf("after undoing the move the proxy holds %v, want %v", after, before)
	}
	if recs := env.records(t); len(recs) != 1 {
		t.Fatalf("records after undo: %+v", recs)
	}
}
