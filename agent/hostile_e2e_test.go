package agent

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"metacircular.net/mcp/api"
	"metacircular.net/mcp/internal/hostile"
	"metacircular.net/mcp/internal/testenv"
	"metacircular.net/mcp/spec"
)

// The hostile-input corpus, end to end: a node runs the valid service
// good; every case of testdata/hostile is then pushed next to it, one
// commit each, and reconciled. For every case good's container keeps
// running untouched (same PID, same recorded spec and leases), nothing
// else is deployed, each of the case's diagnostics (want.txt, the same
// messages mcp validate gives) reaches the reconcile's outcome, and the
// status says the hostile service is invalid.
func TestHostileCorpusLeavesGoodRunning(t *testing.T) {
	const corpus = "../testdata/hostile"
	n := newTestNode(t)
	// The corpus's mcp.toml declares the nodes rift and lake.
	n.cfg.Node = "rift"
	img := testenv.TestImage(t, n.registry, testenv.UniqueRepo("good"), "v1")
	base, err := os.ReadFile(filepath.Join(corpus, "_base", "mcp.toml"))
	if err != nil {
		t.Fatal(err)
	}
	// good as in the corpus, with an image the test registry holds.
	good := strings.Replace(service("good", img), `node = "n1"`, `node = "rift"`, 1)
	n.push(map[string]string{"mcp.toml": strings.ReplaceAll(string(base), corpusRegistry, localRegistry), "services/good.toml": good}, "good")
	wantResult(t, n.once(), ResultOK)
	before := n.snapshot()
	goodPID := n.containers()["good.good.a"].PID
	if goodPID == 0 {
		t.Fatalf("good is not running: %+v", n.containers())
	}

	var last Outcome
	var lastInvalid string
	for _, name := range hostile.Cases(t, corpus) {
		t.Run(name, func(t *testing.T) {
			parent := n.t
			n.t = t
			defer func() { n.t = parent }()
			replaceTree(t, n.repo, func(dir string) bool {
				dirOnly := hostile.Materialise(t, corpus, name, dir)
				keepPullsLocal(t, dir)
				if _, err := os.Lstat(filepath.Join(dir, "services", "good.toml")); err == nil {
					// Same definition as deployed: only the case differs.
					if err := os.WriteFile(filepath.Join(dir, "services", "good.toml"), []byte(good), 0o644); err != nil {
						t.Fatal(err)
					}
				}
				return dirOnly
			}, name)
			out := n.once()
			if out.Result == ResultOK {
				t.Fatalf("reconcile of %s succeeded: %+v", name, out)
			}
			// Every diagnostic the corpus pins reaches the outcome.
			var got strings.Builder
			got.WriteString(out.Err + "\n")
			for _, inv := range out.Invalid {
				got.WriteString(inv.Diagnostics.Error() + "\n")
			}
			want, err := os.ReadFile(filepath.Join(corpus, name, "want.txt"))
			if err != nil {
				t.Fatal(err)
			}
			for _, line := range strings.Split(strings.TrimSpace(string(want)), "\n") {
				line = strings.TrimPrefix(line, "load error: ")
				line = strings.ReplaceAll(line, corpusRegistry, localRegistry)
				if !strings.Contains(got.String(), line) {
					t.Errorf("the outcome does not carry %q\noutcome:\n%s", line, got.String())
				}
			}
			// Nothing changed: good runs as before, nothing else runs,
			// the registry records what it did.
			cs := n.containers()
			if len(cs) != 1 || cs["good.good.a"].PID != goodPID {
				t.Fatalf("containers after %s: %+v (good's pid was %d)", name, cs, goodPID)
			}
			after := n.snapshot()
			if len(after.Services) != 1 || after.Services["good"].SpecHash != before.Services["good"].SpecHash {
				t.Fatalf("registry after %s: %+v", name, after.Services)
			}
			if len(after.Leases) != len(before.Leases) {
				t.Fatalf("leases after %s: %+v, before %+v", name, after.Leases, before.Leases)
			}
			if open := n.journalOpen(); len(open) != 0 {
				t.Fatalf("journal entries left in flight after %s: %+v", name, open)
			}
			last = out
			lastInvalid = ""
			for _, inv := range out.Invalid {
				if inv.Name != "good" {
					lastInvalid = inv.Name
				}
			}
		})
	}

	// The status an operator reads says why (for the last case).
	if lastInvalid == "" {
		return
	}
	a := New(n.cfg, Deps{Registry: mustOpen(t, n), Runtime: n.driver(), Source: nil})
	a.keepLast(last)
	st, err := a.Status(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	svc, ok := st.Service(lastInvalid)
	if !ok || svc.State != api.StateInvalid || len(svc.Diagnostics) == 0 {
		t.Fatalf("status of %s = %+v, want invalid with its diagnostics", lastInvalid, svc)
	}
	if g, _ := st.Service("good"); g.State != api.StateRunning {
		t.Fatalf("good's status = %+v, want running", g)
	}
}

// replaceTree makes the work tree exactly what fill writes (keeping .git),
// commits and pushes it. fill reports whether the tree cannot be
// committed (a FIFO); the case is then skipped.
func replaceTree(t *testing.T, r *testenv.Repo, fill func(dir string) bool, msg string) {
	t.Helper()
	ents, err := os.ReadDir(r.Work)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		if e.Name() != ".git" {
			if err := os.RemoveAll(filepath.Join(r.Work, e.Name())); err != nil {
				t.Fatal(err)
			}
		}
	}
	if fill(r.Work) {
		t.Skip("holds a FIFO, which Git cannot commit")
	}
	testenv.Git(t, r.Work, "add", "-A")
	testenv.Git(t, r.Work, "commit", "--quiet", "--allow-empty", "--no-verify", "-m", msg)
	r.Push()
}

// The corpus's image registry, and the loopback address the end-to-end
// test puts in its place: a valid service next to a hostile one is
// deployed, and its pull must fail on this machine (connection refused)
// instead of looking the corpus's host up in the outside world's DNS.
const (
	corpusRegistry = "registry.example.org"
	localRegistry  = "127.0.0.1:9"
)

// keepPullsLocal rewrites the registry host in the case's regular files;
// links, special files and files too big to load are left as the case
// made them.
func keepPullsLocal(t *testing.T, dir string) {
	t.Helper()
	err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() || strings.Contains(p, string(filepath.Separator)+".git"+string(filepath.Separator)) {
			return err
		}
		if fi, err := d.Info(); err != nil || fi.Size() > spec.MaxFileSize {
			return err // too big to be accepted: never deploys, and its size is the case
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		if nb := strings.ReplaceAll(string(b), corpusRegistry, localRegistry); nb != string(b) {
			return os.WriteFile(p, []byte(nb), 0o644)
		}
		return nil
	})
	if err != nil {
		t.Fatalf("rewrite the corpus's registry: %v", err)
	}
}
