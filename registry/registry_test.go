package registry

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"metacircular.net/mcp/spec"
)

func openTemp(t *testing.T, opts ...Option) (*Registry, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "state", "registry.db")
	r, err := Open(path, opts...)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { _ = r.Close() })
	return r, path
}

func TestOpenCreatesPrivateFile(t *testing.T) {
	r, path := openTemp(t)
	for p, want := range map[string]fs.FileMode{filepath.Dir(path): 0o700, path: 0o600} {
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if got := fi.Mode().Perm(); got != want {
			t.Errorf("%s: mode %o, want %o", filepath.Base(p), got, want)
		}
	}
	err := r.View(context.Background(), func(tx *Tx) error {
		v, err := tx.SchemaVersion()
		if v != currentVersion() {
			t.Errorf("schema version %d, want %d", v, currentVersion())
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
}

// bbolt's flock is per open file description, so a second Open in the same
// process conflicts just as another process would.
func TestOpenLockedFailsFast(t *testing.T) {
	_, path := openTemp(t)
	for _, tc := range []struct {
		name string
		opts []Option
	}{
		{"read-write", []Option{WithLockTimeout(100 * time.Millisecond)}},
		{"read-only", []Option{ReadOnly(), WithLockTimeout(100 * time.Millisecond)}},
		{"default timeout", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			start := time.Now()
			r, err := Open(path, tc.opts...)
			if err == nil {
				_ = r.Close()
				t.Fatal("second Open succeeded while the first holds the file")
			}
			if !errors.Is(err, ErrLocked) {
				t.Fatalf("err = %v, want ErrLocked", err)
			}
			if d := time.Since(start); d > 3*time.Second {
				t.Errorf("took %v to fail", d)
			}
			for _, want := range []string{path, "held by another process", "mcp plan --socket"} {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("message %q lacks %q", err, want)
				}
			}
		})
	}
}

// TestOpenLockedOtherProcess holds the file in a child process (this test
// binary re-run as a helper) and opens it here.
func TestOpenLockedOtherProcess(t *testing.T) {
	if os.Getenv("MCP_REGISTRY_HOLD") != "" {
		return // the helper runs in TestHelperHoldRegistry
	}
	path := filepath.Join(t.TempDir(), "registry.db")
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperHoldRegistry$")
	cmd.Env = append(os.Environ(), "MCP_REGISTRY_HOLD="+path)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = stdin.Close(); _ = cmd.Wait() }()
	buf := make([]byte, 5)
	if _, err := stdout.Read(buf); err != nil || string(buf) != "ready" {
		t.Fatalf("helper did not get ready: %q %v", buf, err)
	}
	_, err = Open(path, ReadOnly(), WithLockTimeout(100*time.Millisecond))
	if !errors.Is(err, ErrLocked) {
		t.Fatalf("err = %v, want ErrLocked", err)
	}
}

func TestHelperHoldRegistry(t *testing.T) {
	path := os.Getenv("MCP_REGISTRY_HOLD")
	if path == "" {
		t.Skip("helper for TestOpenLockedOtherProcess")
	}
	r, err := Open(path)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	fmt.Print("ready")
	_, _ = os.Stdin.Read(make([]byte, 1)) // until the parent closes stdin
	_ = r.Close()
}

func TestOpenReadOnlyMissing(t *testing.T) {
	path := filepath.Join(t.TempDir(), "none", "registry.db")
	_, err := Open(path, ReadOnly())
	if !errors.Is(err, ErrNotExist) || !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("err = %v, want ErrNotExist", err)
	}
	if _, err := os.Stat(filepath.Dir(path)); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("read-only open created %s", filepath.Dir(path))
	}
}

func TestReadOnlyRefusesWrites(t *testing.T) {
	r, path := openTemp(t)
	if err := r.SetNode(context.Background(), "rift"); err != nil {
		t.Fatal(err)
	}
	_ = r.Close()
	ro, err := Open(path, ReadOnly())
	if err != nil {
		t.Fatal(err)
	}
	defer ro.Close()
	if n, err := ro.Node(context.Background()); err != nil || n != "rift" {
		t.Fatalf("Node = %q, %v", n, err)
	}
	if err := ro.SetNode(context.Background(), "x"); !errors.Is(err, ErrReadOnly) {
		t.Fatalf("write on read-only: %v, want ErrReadOnly", err)
	}
	// Write methods called inside a View fail the same way.
	err = ro.View(context.Background(), func(tx *Tx) error {
		return tx.PutLease(Lease{Service: "s", Component: "c", Route: "r", Port: 10001})
	})
	if !errors.Is(err, ErrReadOnly) {
		t.Fatalf("PutLease in View: %v, want ErrReadOnly", err)
	}
}

func TestContextCancelled(t *testing.T) {
	r, _ := openTemp(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := r.Snapshot(ctx); !errors.Is(err, context.Canceled) {
		t.Errorf("Snapshot: %v", err)
	}
	if err := r.PutLease(ctx, Lease{Service: "s", Component: "c", Route: "r", Port: 10001}); !errors.Is(err, context.Canceled) {
		t.Errorf("PutLease: %v", err)
	}
}

// writeRaw builds a file by hand, as an older mcp would have left it.
func writeRaw(t *testing.T, path string, fn func(tx *bolt.Tx) error) {
	t.Helper()
	db, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Update(fn); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
}

// writeV1 lays out schema version 1 with the given leases.
func writeV1(leases ...Lease) func(tx *bolt.Tx) error {
	return func(tx *bolt.Tx) error {
		if err := migrateCreateBuckets(tx); err != nil {
			return err
		}
		if err := tx.Bucket(bucketMeta).Put(keySchemaVersion, []byte("1")); err != nil {
			return err
		}
		for _, l := range leases {
			raw, _ := json.Marshal(l)
			if err := tx.Bucket(bucketLeases).Put([]byte(l.Key()), raw); err != nil {
				return err
			}
		}
		return nil
	}
}

func TestMigrations(t *testing.T) {
	l1 := Lease{Service: "mcq", Component: "mcq", Route: "8443", Slot: SlotA, Port: 12001}
	l2 := Lease{Service: "mcq", Component: "mcq", Route: "8443", Slot: SlotB, Port: 12002}
	clash := Lease{Service: "other", Component: "web", Route: "443", Slot: SlotA, Port: 12001}
	tests := []struct {
		name    string
		build   func(tx *bolt.Tx) error // nil: no file at all
		wantErr string
		leases  []Lease
	}{
		{name: "no file"},
		{name: "v0 empty bolt file", build: func(*bolt.Tx) error { return nil }},
		{name: "v1 with leases", build: writeV1(l1, l2), leases: []Lease{l1, l2}},
		{name: "v1 with two leases on one port", build: writeV1(l1, clash), wantErr: "both hold port 12001"},
		{name: "bad version", build: func(tx *bolt.Tx) error {
			b, _ := tx.CreateBucket(bucketMeta)
			return b.Put(keySchemaVersion, []byte("two"))
		}, wantErr: "not a version number"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "registry.db")
			if tc.build != nil {
				writeRaw(t, path, tc.build)
			}
			r, err := Open(path)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			ctx := context.Background()
			err = r.View(ctx, func(tx *Tx) error {
				if v, _ := tx.SchemaVersion(); v != currentVersion() {
					t.Errorf("schema %d, want %d", v, currentVersion())
				}
				for _, l := range tc.leases {
					got, err := tx.LeaseByPort(l.Port)
					if err != nil || got != l {
						t.Errorf("LeaseByPort(%d) = %+v, %v; want %+v", l.Port, got, err, l)
					}
				}
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			// The index is live: a migrated port cannot be leased again.
			for _, l := range tc.leases {
				other := Lease{Service: "x", Component: "x", Route: "x", Port: l.Port}
				if err := r.PutLease(ctx, other); !errors.Is(err, ErrPortTaken) {
					t.Errorf("PutLease on migrated port %d: %v", l.Port, err)
				}
			}
		})
	}
}

// A newer mcp reading an older agent's file read-only migrates a private
// copy and leaves the file as it was.
func TestReadOnlyOlderSchemaLeavesFileAlone(t *testing.T) {
	path := filepath.Join(t.TempDir(), "registry.db")
	l := Lease{Service: "mcq", Component: "mcq", Route: "8443", Port: 12001}
	writeRaw(t, path, writeV1(l))

	r, err := Open(path, ReadOnly())
	if err != nil {
		t.Fatal(err)
	}
	snap, err := r.Snapshot(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(snap.Leases, []Lease{l}) {
		t.Errorf("leases %+v", snap.Leases)
	}
	if err := r.SetNode(context.Background(), "x"); !errors.Is(err, ErrReadOnly) {
		t.Errorf("write: %v, want ErrReadOnly", err)
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}

	db, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	_ = db.View(func(tx *bolt.Tx) error {
		if v, _ := schemaVersion(tx); v != 1 {
			t.Errorf("file schema became %d; read-only open must not migrate it", v)
		}
		return nil
	})
}

func TestNewerSchemaRefused(t *testing.T) {
	path := filepath.Join(t.TempDir(), "registry.db")
	newer := currentVersion() + 1
	writeRaw(t, path, func(tx *bolt.Tx) error {
		b, err := tx.CreateBucket(bucketMeta)
		if err != nil {
			return err
		}
		return b.Put(keySchemaVersion, fmt.Appendf(nil, "%d", newer))
	})
	for _, opts := range [][]Option{nil, {ReadOnly()}} {
		_, err := Open(path, opts...)
		if !errors.Is(err, ErrNewerSchema) {
			t.Fatalf("err = %v, want ErrNewerSchema", err)
		}
		if want := fmt.Sprintf("schema version %d", newer); !strings.Contains(err.Error(), want) {
			t.Errorf("message %q lacks %q", err, want)
		}
	}
}

func TestSnapshotRoundTrip(t *testing.T) {
	r, path := openTemp(t)
	ctx := context.Background()
	applied := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	deployed := []Deployed{
		{
			Spec: spec.Service{
				Name: "mcq", Node: "rift", Active: true, Tier: "worker", File: "services/mcq.toml",
				Components: []spec.Component{{Name: "mcq", Image: "reg/mcq:v0.3.2"}},
			},
			SpecHash: "h1", Commit: "c1", AppliedAt: applied,
			Components: map[string]ComponentState{"mcq": {ActiveSlot: SlotB, ImageDigest: "sha256:aa", PreviousDigest: "sha256:bb"}},
		},
		{Spec: spec.Service{Name: "site", Node: "rift"}, SpecHash: "h2", Commit: "c1", AppliedAt: applied},
	}
	leases := []Lease{
		{Service: "site", Component: "web", Route: "443", Slot: SlotA, Port: 20000},
		{Service: "mcq", Component: "mcq", Route: "8443", Slot: SlotB, Port: 12002},
		{Service: "mcq", Component: "mcq", Route: "8443", Slot: SlotA, Port: 12001},
		{Service: "mcq", Component: "mcq", Route: "fixed:18443", Slot: SlotA, Port: 18443, Fixed: true},
	}
	for _, d := range deployed {
		if err := r.PutDeployed(ctx, d); err != nil {
			t.Fatal(err)
		}
	}
	for _, l := range leases {
		if err := r.PutLease(ctx, l); err != nil {
			t.Fatal(err)
		}
	}
	if err := r.SetNode(ctx, "rift"); err != nil {
		t.Fatal(err)
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}

	r2, err := Open(path, ReadOnly())
	if err != nil {
		t.Fatal(err)
	}
	defer r2.Close()
	got, err := r2.Snapshot(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want := Snapshot{
		Node:     "rift",
		Services: map[string]Deployed{"mcq": deployed[0], "site": deployed[1]},
		Leases:   []Lease{leases[2], leases[1], leases[3], leases[0]}, // by Key()
	}
	if !reflect.DeepEqual(got, want) {
		gj, _ := json.MarshalIndent(got, "", " ")
		wj, _ := json.MarshalIndent(want, "", " ")
		t.Errorf("snapshot:\n%s\nwant:\n%s", gj, wj)
	}
}

func TestLeases(t *testing.T) {
	r, _ := openTemp(t)
	ctx := context.Background()
	a := Lease{Service: "mcq", Component: "mcq", Route: "8443", Slot: SlotA, Port: 12001}
	b := Lease{Service: "mcq", Component: "mcq", Route: "8443", Slot: SlotB, Port: 12002}
	other := Lease{Service: "site", Component: "web", Route: "443", Slot: SlotA, Port: 12001}
	for _, l := range []Lease{a, b} {
		if err := r.PutLease(ctx, l); err != nil {
			t.Fatal(err)
		}
	}

	// Another key on a held port names the holder.
	err := r.PutLease(ctx, other)
	var taken *PortTakenError
	if !errors.As(err, &taken) || !errors.Is(err, ErrPortTaken) || taken.Holder != a {
		t.Fatalf("err = %v, want PortTakenError held by %v", err, a)
	}
	if !strings.Contains(err.Error(), `port 12001 is held by service "mcq"`) {
		t.Errorf("message %q", err)
	}
	// Re-putting the same lease is fine.
	if err := r.PutLease(ctx, a); err != nil {
		t.Fatalf("idempotent put: %v", err)
	}
	// Moving a lease frees its old port.
	moved := a
	moved.Port = 12003
	if err := r.PutLease(ctx, moved); err != nil {
		t.Fatal(err)
	}
	if err := r.PutLease(ctx, other); err != nil {
		t.Fatalf("old port should be free after move: %v", err)
	}
	for _, tc := range []struct {
		port int
		want string
	}{{0, "outside"}, {65536, "outside"}} {
		bad := a
		bad.Port = tc.port
		if err := r.PutLease(ctx, bad); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("port %d: %v", tc.port, err)
		}
	}

	// Delete is idempotent and frees the port.
	for range 2 {
		if err := r.DeleteLease(ctx, other.Key()); err != nil {
			t.Fatal(err)
		}
	}
	err = r.View(ctx, func(tx *Tx) error {
		if _, err := tx.LeaseByPort(12001); !errors.Is(err, ErrNotFound) {
			t.Errorf("port 12001 still indexed: %v", err)
		}
		ports, err := tx.LeasedPorts(12000, 12002)
		if !reflect.DeepEqual(ports, []int{12002}) {
			t.Errorf("LeasedPorts = %v", ports)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}

	// DeleteServiceLeases takes only that service's leases ("mcq" and not
	// a service whose name merely starts with it).
	if err := r.PutLease(ctx, Lease{Service: "mcq-x", Component: "c", Route: "r", Port: 15000}); err != nil {
		t.Fatal(err)
	}
	err = r.Update(ctx, func(tx *Tx) error {
		n, err := tx.DeleteServiceLeases("mcq")
		if n != 2 {
			t.Errorf("deleted %d leases, want 2", n)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	left, err := r.Leases(ctx)
	if err != nil || len(left) != 1 || left[0].Service != "mcq-x" {
		t.Errorf("leases left: %+v %v", left, err)
	}
}

// Update is all or nothing: a lease and its journal entry written in one
// failed transaction leave no trace.
func TestUpdateAtomic(t *testing.T) {
	r, _ := openTemp(t)
	ctx := context.Background()
	boom := errors.New("boom")
	err := r.Update(ctx, func(tx *Tx) error {
		if _, err := tx.JournalBegin(Entry{StepID: "s1", Service: "mcq", Kind: "port", Action: "create"}); err != nil {
			return err
		}
		if err := tx.PutLease(Lease{Service: "mcq", Component: "mcq", Route: "r", Port: 12001}); err != nil {
			return err
		}
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("err = %v", err)
	}
	snap, _ := r.Snapshot(ctx)
	j, _ := r.Journal(ctx)
	if len(snap.Leases) != 0 || len(j) != 0 {
		t.Errorf("rolled-back transaction left leases %v journal %v", snap.Leases, j)
	}
}

func TestServicesDelete(t *testing.T) {
	r, _ := openTemp(t)
	ctx := context.Background()
	if err := r.PutDeployed(ctx, Deployed{}); err == nil {
		t.Error("PutDeployed without a name succeeded")
	}
	if err := r.PutDeployed(ctx, Deployed{Spec: spec.Service{Name: "a"}}); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if err := r.DeleteDeployed(ctx, "a"); err != nil {
			t.Fatal(err)
		}
	}
	err := r.View(ctx, func(tx *Tx) error {
		_, err := tx.Deployed("a")
		if !errors.Is(err, ErrNotFound) {
			t.Errorf("Deployed after delete: %v", err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestMeta(t *testing.T) {
	r, path := openTemp(t)
	ctx := context.Background()
	if c, err := r.AppliedCommit(ctx); err != nil || c != "" {
		t.Fatalf("fresh AppliedCommit = %q, %v", c, err)
	}
	if err := r.SetAppliedCommit(ctx, "abc123"); err != nil {
		t.Fatal(err)
	}
	_ = r.Close()
	r2, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer r2.Close()
	if c, err := r2.AppliedCommit(ctx); err != nil || c != "abc123" {
		t.Fatalf("AppliedCommit after reopen = %q, %v", c, err)
	}
}
