package executor_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"metacircular.net/mcp/executor"
	"metacircular.net/mcp/executor/dns"
	"metacircular.net/mcp/executor/dns/mcns"
	"metacircular.net/mcp/executor/dns/mcns/mcnsstandin"
	"metacircular.net/mcp/executor/dns/rfc2136"
	"metacircular.net/mcp/internal/testenv"
	"metacircular.net/mcp/planner"
	"metacircular.net/mcp/registry"
	"metacircular.net/mcp/spec"
)

const recZone = "svc.mcp.example.org"

// recEnv is an executor with record steps against a real bind9, a real
// registry and an in-memory runtime.
type recEnv struct {
	t     *testing.T
	reg   *registry.Registry
	named *testenv.Bind9Daemon
	admin dns.Provider // the right key, for looking and for meddling
	exec  *executor.Executor
	mu    sync.Mutex
	addrs []string
}

func newRecEnv(t *testing.T) *recEnv {
	t.Helper()
	named := testenv.StartBind9(t, recZone)
	reg, err := registry.Open(filepath.Join(t.TempDir(), "registry.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { reg.Close() })
	env := &recEnv{t: t, reg: reg, named: named, addrs: []string{"192.0.2.1", "2001:db8::1"}}
	env.admin = env.provider(named.KeyFile)
	env.exec = env.executor(env.admin)
	return env
}

func (env *recEnv) provider(secretFile string) dns.Provider {
	env.t.Helper()
	p, err := rfc2136.New(rfc2136.Config{Server: env.named.Addr, KeyName: env.named.KeyName, SecretFile: secretFile})
	if err != nil {
		env.t.Fatal(err)
	}
	return p
}

func (env *recEnv) executor(p dns.Provider) *executor.Executor {
	addrs := func(_ context.Context, commit string) ([]string, error) {
		if commit != "c1" {
			return nil, fmt.Errorf("addresses asked for commit %q", commit)
		}
		env.mu.Lock()
		defer env.mu.Unlock()
		return slices.Clone(env.addrs), nil
	}
	e := executor.New(env.reg, executor.RegistryJournal{Reg: env.reg}, &stablePorts{},
		&fakeRuntime{running: map[string]executor.ContainerSpec{}}, filepath.Join(env.t.TempDir(), "logs"),
		executor.WithRecords([]dns.Zone{{Name: recZone, Provider: p, TTL: 120}}, addrs))
	if !e.Features().Records {
		env.t.Fatal("Features().Records is off with WithRecords")
	}
	return e
}

func (env *recEnv) apply(e *executor.Executor, desired ...spec.Service) executor.Result {
	env.t.Helper()
	ctx := context.Background()
	snap, err := env.reg.Snapshot(ctx)
	if err != nil {
		env.t.Fatal(err)
	}
	p := planner.Compute(planner.Input{Node: "n1", Domain: "example.org", Desired: desired, Actual: snap,
		Features: e.Features(), AllowRemoveAll: true})
	res, err := e.Apply(ctx, p, desired, "c1")
	if err != nil {
		env.t.Fatal(err)
	}
	return res
}

// zone is every record of the names the tests use, as "name type value".
func (env *recEnv) zone(names ...string) []string {
	env.t.Helper()
	var out []string
	for _, n := range append([]string{"ns." + recZone, "keep." + recZone}, names...) {
		recs, err := env.admin.List(context.Background(), recZone, n)
		if err != nil {
			env.t.Fatal(err)
		}
		for _, r := range recs {
			out = append(out, r.Name+" "+r.Type+" "+r.Value)
		}
	}
	slices.Sort(out)
	return out
}

func wantRecords(t *testing.T, got []string, want ...string) {
	t.Helper()
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Fatalf("zone holds\n  %s\nwant\n  %s", strings.Join(got, "\n  "), strings.Join(want, "\n  "))
	}
}

func failed(t *testing.T, res executor.Result) error {
	t.Helper()
	for _, s := range res.Services {
		if s.Err != nil {
			return s.Err
		}
	}
	return nil
}

var (
	webHost = l7Host // web.svc.mcp.example.org
	dbHost  = l4Host // db.svc.mcp.example.org
	base    = []string{"ns." + recZone + " A 127.0.0.1", "keep." + recZone + " A 192.0.2.200"}
)

func TestRecordsCreateAndRemoveExactly(t *testing.T) {
	env := newRecEnv(t)
	ctx := context.Background()
	// Someone else's record in the zone, and one at a name mcp will use.
	if err := env.admin.Set(ctx, recZone, "keep."+recZone, "A", []string{"192.0.2.200"}, 60); err != nil {
		t.Fatal(err)
	}
	if err := env.admin.Set(ctx, recZone, webHost, "TXT", []string{"someone-elses"}, 60); err != nil {
		t.Fatal(err)
	}
	res := env.apply(env.exec, service())
	if err := failed(t, res); err != nil {
		t.Fatalf("deploy: %v", err)
	}
	wantRecords(t, env.zone(webHost, dbHost), append(slices.Clone(base),
		webHost+" A 192.0.2.1", webHost+" AAAA 2001:db8::1", webHost+" TXT someone-elses",
		dbHost+" A 192.0.2.1", dbHost+" AAAA 2001:db8::1")...)
	sets, err := env.exec.Records(ctx)
	if err != nil || len(sets) != 2 || sets[0].Hostname != dbHost || sets[1].Services[0] != "web" || len(sets[1].Records) != 2 {
		t.Fatalf("recorded sets = %+v, %v", sets, err)
	}
	// Applying again plans no record step (the fake leaser records no
	// leases, so ports and containers are planned again).
	res = env.apply(env.exec, service())
	if failed(t, res) != nil || len(res.Services) != 1 || slices.ContainsFunc(res.Services[0].Steps, func(id string) bool { return strings.Contains(id, "/record/") }) {
		t.Fatalf("second apply: %+v", res)
	}

	res = env.apply(env.exec)
	if err := failed(t, res); err != nil {
		t.Fatalf("removal: %v", err)
	}
	wantRecords(t, env.zone(webHost, dbHost), append(slices.Clone(base), webHost+" TXT someone-elses")...)
	if sets, _ := env.exec.Records(ctx); len(sets) != 0 {
		t.Fatalf("record sets left after removal: %+v", sets)
	}
}

func TestRecordsDriftIsRepairedByConverge(t *testing.T) {
	env := newRecEnv(t)
	ctx := context.Background()
	if err := failed(t, env.apply(env.exec, service())); err != nil {
		t.Fatal(err)
	}
	// Deleted behind mcp's back, and an address changed in mcp.toml.
	if err := env.admin.Delete(ctx, recZone, dns.Record{Name: webHost, Type: "A", Value: "192.0.2.1"}); err != nil {
		t.Fatal(err)
	}
	repairs, err := converge(env.exec)
	if err != nil {
		t.Fatalf("converge: %v", err)
	}
	if len(repairs) != 1 || repairs[0].Resource != "dns:"+webHost {
		t.Fatalf("repairs = %+v", repairs)
	}
	wantRecords(t, env.zone(webHost), append(slices.Clone(base)[:1], webHost+" A 192.0.2.1", webHost+" AAAA 2001:db8::1")...)

	env.mu.Lock()
	env.addrs = []string{"192.0.2.7"}
	env.mu.Unlock()
	repairs, err = converge(env.exec)
	if err != nil || len(repairs) != 2 || !strings.Contains(repairs[0].What, "addresses or the zone's TTL changed") {
		t.Fatalf("converge after an address change: %+v, %v", repairs, err)
	}
	wantRecords(t, env.zone(webHost, dbHost), base[0], webHost+" A 192.0.2.7", dbHost+" A 192.0.2.7")
	// Nothing to do now.
	if repairs, err := converge(env.exec); err != nil || len(repairs) != 0 {
		t.Fatalf("converge with nothing to repair: %+v, %v", repairs, err)
	}
}

// Records deleted again and again behind mcp's back (another tool
// fighting over the zone) are restored the first few times, then backed
// off: the converge pass reports it instead of rewriting them every pass.
func TestRecordsRepairBackedOffWhenDeletedAgainAndAgain(t *testing.T) {
	env := newRecEnv(t)
	ctx := context.Background()
	if err := failed(t, env.apply(env.exec, service())); err != nil {
		t.Fatal(err)
	}
	deleteA := func() {
		t.Helper()
		if err := env.admin.Delete(ctx, recZone, dns.Record{Name: webHost, Type: "A", Value: "192.0.2.1"}); err != nil {
			t.Fatal(err)
		}
	}
	for i := range executor.DefaultRepairBurst {
		deleteA()
		if repairs, err := converge(env.exec); err != nil || len(repairs) != 1 {
			t.Fatalf("repair %d: %+v, %v", i+1, repairs, err)
		}
	}
	deleteA()
	repairs, err := converge(env.exec)
	if !errors.Is(err, executor.ErrRepairBackedOff) || !strings.Contains(err.Error(), "dns:"+webHost) || len(repairs) != 0 {
		t.Fatalf("repair %d: %+v, %v; want it backed off", executor.DefaultRepairBurst+1, repairs, err)
	}
	for _, r := range env.zone(webHost) {
		if strings.Contains(r, webHost+" A ") {
			t.Fatalf("the backed-off record was rewritten: %q", r)
		}
	}
}

func TestRecordsOrphanSetIsDeletedByConverge(t *testing.T) {
	env := newRecEnv(t)
	ctx := context.Background()
	if err := failed(t, env.apply(env.exec, service())); err != nil {
		t.Fatal(err)
	}
	// The registry loses the service (as after a crash between the record
	// write and the registry update of a new service).
	if err := env.reg.DeleteDeployed(ctx, "web"); err != nil {
		t.Fatal(err)
	}
	repairs, err := converge(env.exec)
	if err != nil || len(repairs) != 2 {
		t.Fatalf("converge: %+v, %v", repairs, err)
	}
	wantRecords(t, env.zone(webHost, dbHost), base[0])
}

func TestRecordsWrongKeyFailsTheStepAndKeepsThePreviousState(t *testing.T) {
	env := newRecEnv(t)
	ctx := context.Background()
	web := service()
	web.Components = web.Components[:1]
	if err := failed(t, env.apply(env.exec, web)); err != nil {
		t.Fatal(err)
	}
	before := env.zone(webHost, dbHost)

	bad := env.executor(env.provider(env.named.WrongKeyFile(t)))
	// The update adds the db component and its hostname: its record step
	// is refused.
	res := env.apply(bad, service())
	err := failed(t, res)
	if !errors.Is(err, dns.ErrRefused) || !strings.Contains(err.Error(), "BADSIG") || !strings.Contains(err.Error(), env.named.KeyName) ||
		!strings.Contains(err.Error(), dbHost) {
		t.Fatalf("apply with a wrong key: %v, want ErrRefused naming the host, key and BADSIG", err)
	}
	if res.Services[0].FailedStep != "web/record/"+dbHost {
		t.Fatalf("failed step = %q", res.Services[0].FailedStep)
	}
	wantRecords(t, env.zone(webHost, dbHost), before...)
	snap, _ := env.reg.Snapshot(ctx)
	if len(snap.Services["web"].Spec.Components) != 1 {
		t.Fatalf("the registry moved to the failed definition")
	}
	// Converge with the wrong key reports, and changes nothing.
	if _, err := converge(bad); !errors.Is(err, dns.ErrRefused) {
		t.Fatalf("converge with the wrong key: %v, want ErrRefused", err)
	}
	wantRecords(t, env.zone(webHost, dbHost), before...)
	// The undo could not reach the server with that key either, so the
	// set it meant to write stays recorded until a pass with a working key
	// has made sure none of it is there.
	if _, err := converge(env.exec); err != nil {
		t.Fatal(err)
	}
	sets, _ := env.exec.Records(ctx)
	if len(sets) != 1 || sets[0].Hostname != webHost {
		t.Fatalf("recorded sets after the failure: %+v", sets)
	}
	wantRecords(t, env.zone(webHost, dbHost), before...)
}

// converge runs the converge pass and keeps only its DNS repairs (the
// in-memory runtime has its own opinions about containers).
func converge(e *executor.Executor) ([]executor.Repair, error) {
	repairs, err := e.Converge(context.Background())
	return slices.DeleteFunc(repairs, func(r executor.Repair) bool { return !strings.HasPrefix(r.Resource, "dns:") }), err
}

// stablePorts leases the same port for the same key, as the real leaser.
type stablePorts struct {
	mu    sync.Mutex
	ports map[string]int
}

func (p *stablePorts) Lease(ctx context.Context, service, component, route string, slot int) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ports == nil {
		p.ports = map[string]int{}
	}
	k := registry.LeaseKey(service, component, route, slot)
	if _, ok := p.ports[k]; !ok {
		p.ports[k] = 20000 + len(p.ports)
	}
	return p.ports[k], nil
}
func (p *stablePorts) Fixed(ctx context.Context, service, component string, port int) error {
	return nil
}
func (p *stablePorts) Release(ctx context.Context, service, component, route string, slot int) error {
	return nil
}

// lossy drops the last value of every Set, like a server that silently
// ignores part of an update.
type lossy struct{ dns.Provider }

func (l lossy) Set(ctx context.Context, zone, name, typ string, values []string, ttl int) error {
	if len(values) > 1 {
		values = values[:len(values)-1]
	}
	return l.Provider.Set(ctx, zone, name, typ, values, ttl)
}

func TestRecordsReadBackMismatchFailsAndUndoes(t *testing.T) {
	env := newRecEnv(t)
	env.addrs = []string{"192.0.2.1", "192.0.2.2"}
	e := env.executor(lossy{env.admin})
	err := failed(t, env.apply(e, service()))
	if !errors.Is(err, executor.ErrRecordAltered) {
		t.Fatalf("apply through a lossy server: %v, want ErrRecordAltered", err)
	}
	wantRecords(t, env.zone(webHost, dbHost), base[0])
	if sets, _ := e.Records(context.Background()); len(sets) != 0 {
		t.Fatalf("record sets left: %+v", sets)
	}
}

func TestRecordsHostnameOutsideEveryZoneFails(t *testing.T) {
	reg, err := registry.Open(filepath.Join(t.TempDir(), "registry.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer reg.Close()
	e := executor.New(reg, executor.RegistryJournal{Reg: reg}, &stablePorts{},
		&fakeRuntime{running: map[string]executor.ContainerSpec{}}, t.TempDir(),
		executor.WithRecords([]dns.Zone{{Name: "other.example.org", Provider: lossy{}, TTL: 60}},
			func(context.Context, string) ([]string, error) { return []string{"192.0.2.1"}, nil }))
	desired := []spec.Service{service()}
	p := planner.Compute(planner.Input{Node: "n1", Domain: "example.org", Desired: desired, Features: e.Features()})
	res, err := e.Apply(context.Background(), p, desired, "c1")
	if err != nil {
		t.Fatal(err)
	}
	if err := failed(t, res); !errors.Is(err, executor.ErrNoZone) {
		t.Fatalf("apply: %v, want ErrNoZone", err)
	}
}

// The same record steps through the MCNS driver, against its stand-in.
func TestRecordsThroughMCNSStandin(t *testing.T) {
	reg, err := registry.Open(filepath.Join(t.TempDir(), "registry.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer reg.Close()
	s := mcnsstandin.New("tok", recZone)
	srv := httptestServer(t, s)
	p, err := mcns.New(mcns.Config{URL: srv, TokenFile: writeFile(t, "tok")})
	if err != nil {
		t.Fatal(err)
	}
	e := executor.New(reg, executor.RegistryJournal{Reg: reg}, &stablePorts{},
		&fakeRuntime{running: map[string]executor.ContainerSpec{}}, t.TempDir(),
		executor.WithRecords([]dns.Zone{{Name: recZone, Provider: p, TTL: 60}},
			func(context.Context, string) ([]string, error) { return []string{"192.0.2.1", "10.0.0.1"}, nil }))
	apply := func(desired ...spec.Service) {
		t.Helper()
		snap, _ := reg.Snapshot(context.Background())
		pl := planner.Compute(planner.Input{Node: "n1", Domain: "example.org", Desired: desired, Actual: snap, Features: e.Features(), AllowRemoveAll: true})
		res, err := e.Apply(context.Background(), pl, desired, "c1")
		if err != nil || res.Failed() {
			t.Fatalf("apply: %v %+v", err, res)
		}
	}
	apply(service())
	if got := len(s.Records(recZone)); got != 4 {
		t.Fatalf("stand-in holds %d records, want 4: %+v", got, s.Records(recZone))
	}
	s.Remove(recZone, dns.Record{Name: webHost, Type: "A", Value: "10.0.0.1"})
	if repairs, err := converge(e); err != nil || len(repairs) != 1 {
		t.Fatalf("converge: %+v, %v", repairs, err)
	}
	if got := len(s.Records(recZone)); got != 4 {
		t.Fatalf("after converge the stand-in holds %d records, want 4", got)
	}
	apply()
	if got := s.Records(recZone); len(got) != 0 {
		t.Fatalf("after removal the stand-in holds %+v", got)
	}
}
