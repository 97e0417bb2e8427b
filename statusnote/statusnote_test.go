package statusnote_test

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-git/go-git/v5/plumbing"

	"metacircular.net/mcp/api"
	"metacircular.net/mcp/internal/testenv"
	"metacircular.net/mcp/statusnote"
	gitsync "metacircular.net/mcp/sync"
)

func TestMain(m *testing.M) { testenv.Main(m) }

type fixture struct {
	t     *testing.T
	repo  *testenv.Repo
	key   *testenv.SSHSigner
	clock time.Time
}

func newFixture(t *testing.T) *fixture {
	return &fixture{t: t, repo: testenv.GitRepo(t), key: testenv.NewSSHSigner(t, "mcp-agent@n1"), clock: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}
}

func (f *fixture) writer(node string) *statusnote.Writer {
	f.t.Helper()
	src, err := gitsync.New(gitsync.Config{URL: f.repo.Bare, CacheDir: filepath.Join(f.t.TempDir(), "cache")})
	if err != nil {
		f.t.Fatal(err)
	}
	signer, err := statusnote.LoadSigner(f.key.KeyFile)
	if err != nil {
		f.t.Fatal(err)
	}
	w, err := statusnote.NewWriter(node, filepath.Join(f.t.TempDir(), "status.git"), src, signer)
	if err != nil {
		f.t.Fatal(err)
	}
	return w
}

func (f *fixture) record(commit plumbing.Hash, result string) *statusnote.Record {
	f.clock = f.clock.Add(time.Minute)
	return &statusnote.Record{
		Time:     f.clock,
		PlanHash: "sha256:abc",
		Status: api.Status{
			AgentVersion:  "test",
			AppliedCommit: commit.String(),
			LastReconcile: api.Reconcile{Started: f.clock, Finished: f.clock, Commit: commit.String(), Result: result},
			Services:      []api.ServiceStatus{{Name: "web", State: api.StateRunning}},
		},
	}
}

func (f *fixture) git(args ...string) string {
	f.t.Helper()
	return testenv.Git(f.t, f.repo.Bare, args...)
}

func write(t *testing.T, w *statusnote.Writer, r *statusnote.Record) statusnote.Result {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	res, err := w.Write(ctx, r)
	if err != nil {
		t.Fatalf("Write: %v", err)
	}
	return res
}

// The note is on the remote, plain git shows it, and git verify-commit
// accepts the notes commit with the agent's key trusted (and refuses it
// without).
func TestNoteReadableAndVerifiableByGit(t *testing.T) {
	f := newFixture(t)
	c1 := f.repo.Commit(map[string]string{"mcp.toml": "x"}, "c1")
	f.repo.Push()
	write(t, f.writer("n1"), f.record(c1, "ok"))

	shown := f.git("notes", "--ref=mcp/n1", "show", c1.String())
	r, err := statusnote.Parse([]byte(shown))
	if err != nil {
		t.Fatalf("git notes show printed %q: %v", shown, err)
	}
	if r.SchemaVersion != statusnote.SchemaVersion || r.Node != "n1" || r.AppliedCommit != c1.String() || r.PlanHash != "sha256:abc" {
		t.Fatalf("record = %+v", r)
	}
	for _, field := range []string{`"schema_version": 1`, `"node": "n1"`, `"applied_commit"`, `"last_reconcile"`, `"services"`} {
		if !strings.Contains(shown, field) {
			t.Errorf("note lacks %s:\n%s", field, shown)
		}
	}

	signers := testenv.WriteAllowedSigners(t, f.key)
	cmd := testenv.GitCommand(t, f.repo.Bare, "-c", "gpg.ssh.allowedSignersFile="+signers, "verify-commit", "-v", "refs/notes/mcp/n1")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("git verify-commit refused the notes commit: %v\n%s", err, out)
	}
	other := testenv.WriteAllowedSigners(t, testenv.NewSSHSigner(t, "someone@else"))
	cmd = testenv.GitCommand(t, f.repo.Bare, "-c", "gpg.ssh.allowedSignersFile="+other, "verify-commit", "refs/notes/mcp/n1")
	if out, err := cmd.CombinedOutput(); err == nil {
		t.Fatalf("git verify-commit accepted the notes commit with the agent's key untrusted:\n%s", out)
	}
}

// An OpenPGP agent key signs too, and git verify-commit with that key in
// the keyring accepts the notes commit.
func TestNoteSignedWithOpenPGP(t *testing.T) {
	f := newFixture(t)
	g := testenv.NewGPGSigner(t, "mcp-agent@n1")
	secret := gpgExportSecret(t, g)
	c1 := f.repo.Commit(map[string]string{"mcp.toml": "x"}, "c1")
	f.repo.Push()
	src, _ := gitsync.New(gitsync.Config{URL: f.repo.Bare, CacheDir: filepath.Join(t.TempDir(), "cache")})
	signer, err := statusnote.LoadSigner(secret)
	if err != nil {
		t.Fatal(err)
	}
	w, err := statusnote.NewWriter("n1", filepath.Join(t.TempDir(), "status.git"), src, signer)
	if err != nil {
		t.Fatal(err)
	}
	write(t, w, f.record(c1, "ok"))
	cmd := testenv.GitCommand(t, f.repo.Bare, "verify-commit", "refs/notes/mcp/n1")
	cmd.Env = append(cmd.Env, g.Env()...)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("git verify-commit: %v\n%s", err, out)
	}
}

// Two writers on the same ref at the same time (an agent restarted
// mid-push, or two processes), plus an operator's own git notes push:
// every note ends up on the remote. Another node's ref is never touched.
func TestConcurrentWritersLoseNothing(t *testing.T) {
	f := newFixture(t)
	var commits []plumbing.Hash
	for i := range 6 {
		commits = append(commits, f.repo.Commit(map[string]string{"mcp.toml": fmt.Sprint(i)}, fmt.Sprint("c", i)))
	}
	f.repo.Push()
	write(t, f.writer("n2"), f.record(commits[5], "ok"))
	n2Before := strings.TrimSpace(f.git("rev-parse", "refs/notes/mcp/n2"))

	w1, w2 := f.writer("n1"), f.writer("n1")
	recs := make([]*statusnote.Record, 4)
	for i := range recs {
		recs[i] = f.record(commits[i], "ok")
	}
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for i, w := range []*statusnote.Writer{w1, w2, w1, w2} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			if _, err := w.Write(ctx, recs[i]); err != nil {
				errs <- err
			}
		}()
	}
	// The operator annotates commit 4 with plain git meanwhile.
	wg.Add(1)
	go func() {
		defer wg.Done()
		clone := t.TempDir()
		testenv.Git(t, clone, "clone", "--quiet", f.repo.Bare, "op")
		op := filepath.Join(clone, "op")
		for attempt := 0; ; attempt++ {
			// The operator's ref may not exist on the remote yet.
			_ = testenv.GitCommand(t, op, "fetch", "--quiet", "origin", "+refs/notes/mcp/n1:refs/notes/mcp/n1").Run()
			testenv.Git(t, op, "notes", "--ref=mcp/n1", "add", "-f", "-m", "checked by the operator", commits[4].String())
			if err := testenv.GitCommand(t, op, "push", "--quiet", "origin", "refs/notes/mcp/n1").Run(); err == nil {
				return
			}
			if attempt > 20 {
				errs <- fmt.Errorf("operator push kept failing")
				return
			}
		}
	}()
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	for i := range 4 {
		out := f.git("notes", "--ref=mcp/n1", "show", commits[i].String())
		if !strings.Contains(out, commits[i].String()) {
			t.Errorf("note on c%d lost: %q", i, out)
		}
	}
	if out := f.git("notes", "--ref=mcp/n1", "show", commits[4].String()); !strings.Contains(out, "checked by the operator") {
		t.Errorf("operator's note lost: %q", out)
	}
	if after := strings.TrimSpace(f.git("rev-parse", "refs/notes/mcp/n2")); after != n2Before {
		t.Errorf("n1's writers moved n2's ref %s → %s", n2Before, after)
	}
	if out := f.git("notes", "--ref=mcp/n2", "list"); strings.Count(strings.TrimSpace(out), "\n") != 0 {
		t.Errorf("n2's ref holds more than its own note: %q", out)
	}
}

// Liveness rewrites rather than grows: repeated identical records add at
// most one commit, a change adds one.
func TestLivenessDoesNotGrow(t *testing.T) {
	f := newFixture(t)
	c1 := f.repo.Commit(map[string]string{"mcp.toml": "x"}, "c1")
	f.repo.Push()
	w := f.writer("n1")
	count := func() string { return strings.TrimSpace(f.git("rev-list", "--count", "refs/notes/mcp/n1")) }

	if res := write(t, w, f.record(c1, "ok")); res.Liveness {
		t.Fatalf("first write is liveness: %+v", res)
	}
	if res := write(t, w, f.record(c1, "ok")); !res.Liveness || res.Replaced {
		t.Fatalf("second identical write: %+v, want liveness on top", res)
	}
	for range 5 {
		if res := write(t, w, f.record(c1, "ok")); !res.Liveness || !res.Replaced {
			t.Fatalf("repeated liveness: %+v, want the liveness commit replaced", res)
		}
	}
	if n := count(); n != "2" {
		t.Fatalf("notes history has %s commits after 7 writes, want 2", n)
	}
	last := f.record(c1, "partial")
	if res := write(t, w, last); res.Liveness {
		t.Fatalf("a changed result counted as liveness: %+v", res)
	}
	if n := count(); n != "3" {
		t.Fatalf("notes history has %s commits, want 3", n)
	}
	// The latest record is readable with its time.
	notes, err := statusnote.Open(t.Context(), f.repo.Bare)
	if err != nil {
		t.Fatal(err)
	}
	n, err := notes.Latest("n1")
	if err != nil {
		t.Fatal(err)
	}
	if !n.Record.Time.Equal(last.Time) || n.Record.LastReconcile.Result != "partial" || n.Object != c1 {
		t.Fatalf("latest = %+v", n.Record)
	}
	// An older record never replaces a newer one.
	old := f.record(c1, "failed")
	old.Time = last.Time.Add(-time.Hour)
	if res := write(t, w, old); !res.Commit.IsZero() {
		t.Fatalf("an older record was written: %+v", res)
	}
}

// Many notes are written with fan-out; git reads them, and so does Open,
// from a laptop clone (fetching from origin) and from the URL.
func TestFanoutAndFlatReading(t *testing.T) {
	f := newFixture(t)
	c := f.repo.Commit(map[string]string{"mcp.toml": "x"}, "c")
	f.repo.Push()
	// A flat tree written by git itself, with an mcp record in it.
	rec := f.record(c, "ok")
	rec.Node = "n3"
	rec.SchemaVersion = 1
	data, _ := rec.Marshal()
	clone := filepath.Join(t.TempDir(), "laptop")
	testenv.Git(t, filepath.Dir(clone), "clone", "--quiet", f.repo.Bare, clone)
	testenv.Git(t, clone, "notes", "--ref=mcp/n3", "add", "-m", string(data), c.String())
	testenv.Git(t, clone, "push", "--quiet", "origin", "refs/notes/mcp/n3")

	// More notes than the fan-out threshold (lowered for the test).
	defer statusnote.SetFanoutAbove(8)()
	w := f.writer("n1")
	ctx := t.Context()
	var last *statusnote.Record
	for i := range 12 {
		r := f.record(plumbing.NewHash(fmt.Sprintf("%040x", i+1)), "ok")
		r.AppliedCommit = fmt.Sprintf("%040x", i+1)
		if _, err := w.Write(ctx, r); err != nil {
			t.Fatal(err)
		}
		last = r
	}
	if tree := f.git("ls-tree", "refs/notes/mcp/n1"); !strings.Contains(tree, "\ttree") && !strings.Contains(tree, " tree ") {
		t.Fatalf("12 notes written without fan-out:\n%.300s", tree)
	}
	if out := f.git("notes", "--ref=mcp/n1", "show", last.AppliedCommit); !strings.Contains(out, last.AppliedCommit) {
		t.Fatalf("git cannot read the fan-out note: %q", out)
	}
	for _, from := range []string{clone, f.repo.Bare, f.repo.URL()} {
		notes, err := statusnote.Open(ctx, from)
		if err != nil {
			t.Fatalf("Open %s: %v", from, err)
		}
		if got := strings.Join(notes.Nodes(), ","); got != "n1,n3" {
			t.Fatalf("Open %s: nodes %s", from, got)
		}
		n, err := notes.Latest("n1")
		if err != nil || n.Record.AppliedCommit != last.AppliedCommit {
			t.Fatalf("Open %s: latest n1 = %+v, %v", from, n, err)
		}
		n3, err := notes.Latest("n3")
		if err != nil || n3.Object != c {
			t.Fatalf("Open %s: latest n3 = %+v, %v", from, n3, err)
		}
	}
}
