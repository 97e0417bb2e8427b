package ports

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"metacircular.net/mcp/registry"
)

func openReg(t *testing.T) (*registry.Registry, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "registry.db")
	reg, err := registry.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = reg.Close() })
	return reg, path
}

func newAlloc(t *testing.T, reg *registry.Registry, opts ...Option) *Allocator {
	t.Helper()
	a, err := New(reg, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func seeded(seed uint64) Option {
	r := rand.New(rand.NewPCG(seed, seed))
	return WithRand(r.IntN)
}

func freeProbe(context.Context, int) error { return nil }

func TestNewValidatesRange(t *testing.T) {
	reg, _ := openReg(t)
	for _, tc := range []struct {
		name string
		opts []Option
		ok   bool
	}{
		{"defaults", nil, true},
		{"one port", []Option{WithRange(20000, 20000)}, true},
		{"inverted", []Option{WithRange(20001, 20000)}, false},
		{"zero", []Option{WithRange(0, 100)}, false},
		{"too high", []Option{WithRange(60000, 70000)}, false},
		{"no probes", []Option{WithProbes(0)}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := New(reg, tc.opts...)
			if (err == nil) != tc.ok {
				t.Errorf("New: %v, want ok=%v", err, tc.ok)
			}
		})
	}
	a := newAlloc(t, reg)
	if lo, hi := a.Range(); lo != 10000 || hi != 32767 {
		t.Errorf("default range %d-%d", lo, hi)
	}
}

func TestNthFree(t *testing.T) {
	for _, tc := range []struct {
		taken []int
		k     int
		want  int
	}{
		{nil, 0, 100},
		{nil, 5, 105},
		{[]int{100}, 0, 101},
		{[]int{100, 101, 103}, 0, 102},
		{[]int{100, 101, 103}, 1, 104},
		{[]int{102}, 1, 101},
		{[]int{102}, 2, 103},
	} {
		if got := nthFree(100, tc.taken, tc.k); got != tc.want {
			t.Errorf("nthFree(100, %v, %d) = %d, want %d", tc.taken, tc.k, got, tc.want)
		}
	}
}

// A port bound on the host is never handed out: with a range of two ports,
// one held by a real listener, every lease gets the other one.
func TestLeaseSkipsBoundPort(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	busy := ln.Addr().(*net.TCPAddr).Port
	lo, hi := busy, busy+1
	if hi > 65535 {
		lo, hi = busy-1, busy
	}
	other := lo
	if other == busy {
		other = hi
	}
	if err := ProbeTCP(context.Background(), busy); !errors.Is(err, ErrInUse) {
		t.Fatalf("ProbeTCP(bound port %d) = %v, want ErrInUse", busy, err)
	}
	if err := ProbeTCP(context.Background(), other); err != nil {
		t.Skipf("neighbour port %d is busy on this host: %v", other, err)
	}

	for seed := range uint64(8) {
		reg, _ := openReg(t)
		a := newAlloc(t, reg, WithRange(lo, hi), seeded(seed))
		got, err := a.Lease(context.Background(), "mcq", "mcq", "8443", registry.SlotA)
		if err != nil {
			t.Fatal(err)
		}
		if got != other {
			t.Fatalf("seed %d: leased %d; the bound port is %d", seed, got, busy)
		}
		// With the only free port taken, the next key gets a clear error.
		_, err = a.Lease(context.Background(), "mcq", "mcq", "8443", registry.SlotB)
		if !errors.Is(err, ErrExhausted) || !strings.Contains(err.Error(), "busy on the host") {
			t.Fatalf("second lease: %v", err)
		}
	}
}

// Ports are stable: the same key gets the same port, also after the
// registry is closed and opened again (an agent restart).
func TestLeaseStableAcrossReopen(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "registry.db")
	keys := []struct {
		svc, comp, route string
		slot             int
	}{
		{"mcq", "mcq", "8443", registry.SlotA},
		{"mcq", "mcq", "8443", registry.SlotB},
		{"metacrypt", "api", "rest", registry.SlotA},
		{"metacrypt", "web", "8443", registry.SlotA},
	}
	first := map[string]int{}
	for round := range 3 {
		reg, err := registry.Open(path)
		if err != nil {
			t.Fatal(err)
		}
		a := newAlloc(t, reg, WithProbe(freeProbe), seeded(uint64(round)))
		for _, k := range keys {
			p, err := a.Lease(ctx, k.svc, k.comp, k.route, k.slot)
			if err != nil {
				t.Fatal(err)
			}
			key := registry.LeaseKey(k.svc, k.comp, k.route, k.slot)
			if round == 0 {
				first[key] = p
			} else if first[key] != p {
				t.Errorf("round %d: %s got %d, first %d", round, key, p, first[key])
			}
		}
		if err := reg.Close(); err != nil {
			t.Fatal(err)
		}
	}
}

func TestLeasePair(t *testing.T) {
	ctx := context.Background()
	reg, _ := openReg(t)
	a := newAlloc(t, reg, WithProbe(freeProbe), WithRange(20000, 20001), seeded(1))
	pa, pb, err := a.LeasePair(ctx, "mcq", "mcq", "8443")
	if err != nil {
		t.Fatal(err)
	}
	if pa == pb {
		t.Fatalf("pair shares port %d", pa)
	}
	// Idempotent, and consistent with Lease by slot.
	pa2, pb2, err := a.LeasePair(ctx, "mcq", "mcq", "8443")
	if err != nil || pa2 != pa || pb2 != pb {
		t.Fatalf("second LeasePair = %d, %d, %v; want %d, %d", pa2, pb2, err, pa, pb)
	}
	if p, _ := a.Lease(ctx, "mcq", "mcq", "8443", registry.SlotB); p != pb {
		t.Errorf("Lease slot b = %d, want %d", p, pb)
	}
	// The range is full now: a second pair fails and leaves nothing behind
	// (both slots are leased in one transaction).
	if _, _, err := a.LeasePair(ctx, "site", "web", "443"); !errors.Is(err, ErrExhausted) {
		t.Fatalf("LeasePair on a full range: %v", err)
	}
	leases, _ := reg.Leases(ctx)
	if len(leases) != 2 {
		t.Errorf("leases after failed pair: %+v", leases)
	}
	if _, err := a.Lease(ctx, "mcq", "mcq", "8443", 2); err == nil {
		t.Error("slot 2 accepted")
	}
}

func TestExhaustionMessage(t *testing.T) {
	ctx := context.Background()
	reg, _ := openReg(t)
	a := newAlloc(t, reg, WithProbe(freeProbe), WithRange(30000, 30002))
	for i := range 3 {
		if _, err := a.Lease(ctx, "s", "c", fmt.Sprint(i), registry.SlotA); err != nil {
			t.Fatal(err)
		}
	}
	_, err := a.Lease(ctx, "s", "c", "3", registry.SlotA)
	if !errors.Is(err, ErrExhausted) {
		t.Fatalf("err = %v, want ErrExhausted", err)
	}
	for _, want := range []string{"s/c/3/a", "30000-30002", "all 3 ports are leased"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("message %q lacks %q", err, want)
		}
	}

	// A host where every probe fails: bounded attempts, then a clear error.
	reg2, _ := openReg(t)
	calls := 0
	busy := func(_ context.Context, p int) error { calls++; return fmt.Errorf("port %d: %w", p, ErrInUse) }
	b := newAlloc(t, reg2, WithProbe(busy), WithProbes(5))
	_, err = b.Lease(ctx, "s", "c", "r", registry.SlotA)
	if !errors.Is(err, ErrExhausted) || calls != 5 || !strings.Contains(err.Error(), "10000-32767") {
		t.Fatalf("err = %v after %d probes", err, calls)
	}
}

func TestReleaseAndReuse(t *testing.T) {
	ctx := context.Background()
	reg, _ := openReg(t)
	a := newAlloc(t, reg, WithProbe(freeProbe), WithRange(20000, 20000))
	p, err := a.Lease(ctx, "old", "c", "r", registry.SlotA)
	if err != nil {
		t.Fatal(err)
	}
	for range 2 { // idempotent
		if err := a.Release(ctx, "old", "c", "r", registry.SlotA); err != nil {
			t.Fatal(err)
		}
	}
	q, err := a.Lease(ctx, "new", "c", "r", registry.SlotA)
	if err != nil || q != p {
		t.Fatalf("after release: %d, %v; want %d", q, err, p)
	}

	b := newAlloc(t, reg, WithProbe(freeProbe))
	if _, _, err := b.LeasePair(ctx, "new", "d", "r"); err != nil {
		t.Fatal(err)
	}
	if err := b.Fixed(ctx, "new", "d", 8443); err != nil {
		t.Fatal(err)
	}
	if err := b.ReleaseService(ctx, "new"); err != nil {
		t.Fatal(err)
	}
	if leases, _ := reg.Leases(ctx); len(leases) != 0 {
		t.Errorf("leases after ReleaseService: %+v", leases)
	}
}

func TestFixed(t *testing.T) {
	ctx := context.Background()
	reg, _ := openReg(t)
	a := newAlloc(t, reg, WithProbe(freeProbe), WithRange(18443, 18443))
	if err := a.Fixed(ctx, "mcq", "mcq", 8443); err != nil {
		t.Fatal(err)
	}
	if err := a.Fixed(ctx, "mcq", "mcq", 8443); err != nil {
		t.Fatalf("idempotent Fixed: %v", err)
	}
	leases, _ := reg.Leases(ctx)
	want := registry.Lease{Service: "mcq", Component: "mcq", Route: "fixed:8443", Port: 8443, Fixed: true}
	if len(leases) != 1 || leases[0] != want {
		t.Fatalf("leases %+v, want [%+v]", leases, want)
	}

	// Another service claiming the same fixed port is refused by name.
	err := a.Fixed(ctx, "mcr", "mcr", 8443)
	if !errors.Is(err, registry.ErrPortTaken) || !strings.Contains(err.Error(), `held by service "mcq"`) {
		t.Fatalf("err = %v", err)
	}
	// A fixed port inside the range is never handed out dynamically...
	if err := a.Fixed(ctx, "legacy", "web", 18443); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Lease(ctx, "x", "y", "z", registry.SlotA); !errors.Is(err, ErrExhausted) {
		t.Fatalf("Lease over a fixed port: %v", err)
	}
	// ...and a dynamically leased port cannot become someone's fixed port.
	if err := a.Release(ctx, "legacy", "web", FixedRoute(18443), registry.SlotA); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Lease(ctx, "x", "y", "z", registry.SlotA); err != nil {
		t.Fatal(err)
	}
	if err := a.Fixed(ctx, "legacy", "web", 18443); !errors.Is(err, registry.ErrPortTaken) ||
		!strings.Contains(err.Error(), `"x"`) {
		t.Fatalf("Fixed over a leased port: %v", err)
	}
}

// Concurrent Lease calls never hand out one port twice, and all the ports
// they return are the ones recorded.
func TestConcurrentLeases(t *testing.T) {
	ctx := context.Background()
	reg, _ := openReg(t)
	const n = 64
	// A range just big enough makes collisions certain if locking were wrong.
	a := newAlloc(t, reg, WithProbe(freeProbe), WithRange(20000, 20000+n-1))
	ports := make([]int, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ports[i], errs[i] = a.Lease(ctx, fmt.Sprintf("svc%d", i), "c", "r", registry.SlotA)
		}()
	}
	wg.Wait()
	seen := map[int]int{}
	for i, p := range ports {
		if errs[i] != nil {
			t.Fatalf("lease %d: %v", i, errs[i])
		}
		if j, dup := seen[p]; dup {
			t.Fatalf("port %d handed to svc%d and svc%d", p, j, i)
		}
		seen[p] = i
	}
	leases, _ := reg.Leases(ctx)
	if len(leases) != n {
		t.Errorf("%d leases recorded, want %d", len(leases), n)
	}
}

func TestProbeTCPFree(t *testing.T) {
	// Find a port the kernel says is free, release it, and probe it.
	ln, err := net.Listen("tcp4", "0.0.0.0:0")
	if err != nil {
		t.Fatal(err)
	}
	p := ln.Addr().(*net.TCPAddr).Port
	_ = ln.Close()
	if err := ProbeTCP(context.Background(), p); err != nil {
		t.Errorf("ProbeTCP(%d) = %v", p, err)
	}
	// Held on IPv6 only: still busy (skipped on hosts without IPv6).
	ln6, err := net.Listen("tcp6", "[::]:0")
	if err != nil {
		t.Logf("no IPv6 here: %v", err)
		return
	}
	defer ln6.Close()
	p6 := ln6.Addr().(*net.TCPAddr).Port
	if err := ProbeTCP(context.Background(), p6); !errors.Is(err, ErrInUse) {
		t.Errorf("ProbeTCP(port %d held on [::]) = %v, want ErrInUse", p6, err)
	}
}
