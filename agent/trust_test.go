package agent

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"metacircular.net/mcp/api"
	"metacircular.net/mcp/internal/testenv"
	"metacircular.net/mcp/statusnote"
)

func writeTestFile(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// With the policy on, a commit signed by a trusted key (SSH or OpenPGP) is
// applied; an unsigned one and one signed by an untrusted key are refused,
// the node keeps running what it has, and the outcome names the commit and
// the signer.
func TestTrustPolicyAppliesOnlyTrustedCommits(t *testing.T) {
	alice := testenv.NewSSHSigner(t, "alice@example.net")
	mallory := testenv.NewSSHSigner(t, "mallory@example.net")
	bob := testenv.NewGPGSigner(t, "bob@example.net")
	eve := testenv.NewGPGSigner(t, "eve@example.net")
	n := newTestNode(t, withConfig(fmt.Sprintf("\n[trust]\npolicy = \"head\"\nallowed_signers_file = %q\nkeyring_file = %q\n",
		testenv.WriteAllowedSigners(t, alice), writeTestFile(t, "keyring.asc", bob.PublicKey))))
	img := testenv.TestImage(t, n.registry, testenv.UniqueRepo("web"), "v1")

	first := n.repo.CommitSigned(map[string]string{"mcp.toml": n.platform(), "services/web.toml": service("web", img)}, "web", alice.GitArgs())
	n.repo.Push()
	wantResult(t, n.once(), ResultOK)
	if got := n.appliedCommit(); got != first.String() {
		t.Fatalf("applied %s, want the signed %s", got, first)
	}
	pid := n.containers()["web.web.a"].PID

	applied := first.String()
	for _, tc := range []struct {
		name   string
		commit func() string
		want   []string // nil: applied
	}{
		{"unsigned", func() string {
			return n.repo.Commit(map[string]string{"README": "unsigned"}, "unsigned").String()
		}, []string{"unsigned"}},
		{"untrusted ssh", func() string {
			return n.repo.CommitSigned(map[string]string{"README": "mallory"}, "mallory", mallory.GitArgs()).String()
		}, []string{"signed by SHA256:", "not in allowed_signers"}},
		{"trusted openpgp", func() string {
			return n.repo.CommitSigned(map[string]string{"README": "bob"}, "bob", bob.GitArgs(), bob.Env()...).String()
		}, nil},
		{"untrusted openpgp", func() string {
			return n.repo.CommitSigned(map[string]string{"README": "eve"}, "eve", eve.GitArgs(), eve.Env()...).String()
		}, []string{"OpenPGP key " + eve.Fingerprint, "not in the keyring"}},
		{"trusted ssh again", func() string {
			return n.repo.CommitSigned(map[string]string{"README": "alice"}, "alice", alice.GitArgs()).String()
		}, nil},
	} {
		c := tc.commit()
		n.repo.Push()
		out := n.once()
		if tc.want == nil {
			wantResult(t, out, ResultOK)
			if got := n.appliedCommit(); got != c {
				t.Fatalf("%s: applied %s, want %s", tc.name, got, c)
			}
			applied = c
			continue
		}
		wantResult(t, out, ResultFailed)
		for _, w := range append(tc.want, c[:12]) {
			if !strings.Contains(out.Err, w) {
				t.Errorf("%s: outcome %q does not say %q", tc.name, out.Err, w)
			}
		}
		if got := n.appliedCommit(); got != applied {
			t.Fatalf("%s: applied commit moved to %s", tc.name, got)
		}
		if p := n.containers()["web.web.a"].PID; p != pid {
			t.Fatalf("%s: web was restarted (pid %d → %d)", tc.name, pid, p)
		}
	}
}

// After a reconcile the node's signed status note is on the remote, git
// shows and verifies it; an operator's `mcp plan --from-git` on a laptop
// checkout of the next commit prints the hash the agent then computes.
func TestStatusNotesAndPlanFromGit(t *testing.T) {
	agentKey := testenv.NewSSHSigner(t, "mcp-agent@n1")
	n := newTestNode(t, withConfig(fmt.Sprintf("\n[status]\nnotes = true\nsigning_key_file = %q\n", agentKey.KeyFile)))
	repoName := testenv.UniqueRepo("web")
	v1 := testenv.TestImage(t, n.registry, repoName, "v1")
	v2 := testenv.TestImage(t, n.registry, repoName, "v2")

	c1 := n.repo.Commit(map[string]string{"mcp.toml": n.platform(), "services/web.toml": service("web", v1)}, "c1")
	n.repo.Push()
	out1 := n.once()
	wantResult(t, out1, ResultOK)

	shown := testenv.Git(t, n.repo.Bare, "notes", "--ref=mcp/n1", "show", c1.String())
	rec, err := statusnote.Parse([]byte(shown))
	if err != nil {
		t.Fatalf("git notes show: %v\n%s", err, shown)
	}
	if rec.Node != "n1" || rec.AppliedCommit != c1.String() || rec.PlanHash != out1.PlanHash || rec.Planner == nil {
		t.Fatalf("record: node %q commit %q plan %q planner %v", rec.Node, rec.AppliedCommit, rec.PlanHash, rec.Planner != nil)
	}
	if web, ok := rec.Service("web"); !ok || web.State != "running" || len(web.Components) != 1 || len(web.Components[0].Ports) == 0 {
		t.Fatalf("web in the note: %+v", web)
	}
	signers := testenv.WriteAllowedSigners(t, agentKey)
	cmd := testenv.GitCommand(t, n.repo.Bare, "-c", "gpg.ssh.allowedSignersFile="+signers, "verify-commit", "refs/notes/mcp/n1")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("git verify-commit refs/notes/mcp/n1: %v\n%s", err, b)
	}

	// C2 is pushed; the operator plans it from a laptop clone.
	n.repo.Commit(map[string]string{"services/web.toml": service("web", v2)}, "c2")
	n.repo.Push()
	laptop := filepath.Join(t.TempDir(), "laptop")
	testenv.Git(t, filepath.Dir(laptop), "clone", "--quiet", n.repo.Bare, laptop)
	stdout, code := mcpCLI(t, "plan", "--repo", laptop, "--node", "n1", "--from-git", "--json")
	if code != 2 {
		t.Fatalf("mcp plan --from-git exit %d, want 2 (changes)\n%s", code, stdout)
	}
	var plan struct{ Hash string }
	if err := json.Unmarshal([]byte(stdout), &plan); err != nil {
		t.Fatalf("plan --json: %v\n%s", err, stdout)
	}
	out2 := n.once()
	wantResult(t, out2, ResultOK)
	if plan.Hash == "" || plan.Hash != out2.PlanHash {
		t.Fatalf("laptop plan hash %s, agent's %s", plan.Hash, out2.PlanHash)
	}

	// mcp status --repo reads every node's latest note, with its age.
	st, code := mcpCLI(t, "status", "--repo", laptop)
	if code != 0 || !strings.Contains(st, "status note:") || !strings.Contains(st, " ago ") || !strings.Contains(st, "web") {
		t.Fatalf("mcp status --repo (exit %d):\n%s", code, st)
	}
}

// A definition that keeps failing (its image was never pushed, past the
// image deadline) is quarantined (and stays so across
// agent restarts: every once() is a new agent), its deployed version keeps
// running, and a commit that fixes it lifts the quarantine.
func TestFailingCommitQuarantinedUntilFixed(t *testing.T) {
	n := newTestNode(t, withConfig("\n[quarantine]\nafter = 2\nimage_deadline = \"1s\"\n"))
	repoName := testenv.UniqueRepo("web")
	v1 := testenv.TestImage(t, n.registry, repoName, "v1")
	v2 := testenv.TestImage(t, n.registry, repoName, "v2")
	n.push(map[string]string{"mcp.toml": n.platform(), "services/web.toml": service("web", v1)}, "v1")
	wantResult(t, n.once(), ResultOK)
	port := n.port("web", "web", "default")
	pid := n.containers()["web.web.a"].PID

	missing := n.registry + "/mcptest/" + repoName + ":never-pushed"
	n.push(map[string]string{"services/web.toml": service("web", missing)}, "v2 whose image is missing")
	wantResult(t, n.once(), ResultPartial)
	if q := n.quarantined(); len(q) != 0 {
		t.Fatalf("quarantined after one failure: %+v", q)
	}
	time.Sleep(1100 * time.Millisecond) // past the image deadline
	wantResult(t, n.once(), ResultPartial)
	q := n.quarantined()
	if len(q) != 1 || q[0].Service != "web" || !strings.Contains(q[0].Reason, "image still unavailable") {
		t.Fatalf("quarantine = %+v, want web after 2 failures", q)
	}
	// A new agent (restart) keeps it: no attempt, the deployed v1 runs on.
	out := n.once()
	wantResult(t, out, ResultPartial)
	if !strings.Contains(out.Err, "quarantined") {
		t.Fatalf("outcome %q does not say quarantined", out.Err)
	}
	if out.Plan == nil || !out.Plan.IsNoOp() {
		t.Fatalf("a quarantined service was planned: %+v", out.Plan)
	}
	if got := n.containers()["web.web.a"].PID; got != pid {
		t.Fatalf("web v1 was touched (pid %d → %d)", pid, got)
	}
	if body := get(t, port); !strings.Contains(body, "version=v1") {
		t.Fatalf("web answered %q, want the deployed v1", body)
	}
	a := New(n.cfg, Deps{Registry: mustOpen(t, n), Runtime: n.driver()})
	st, err := a.Status(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if web, _ := st.Service("web"); web.State != "quarantined" || !strings.Contains(web.Error, "image still unavailable") || len(st.Quarantine) != 1 {
		t.Fatalf("status: web %+v, quarantine %+v", web, st.Quarantine)
	}
	closeRegistry(t, a)

	n.push(map[string]string{"services/web.toml": service("web", v2)}, "fixed v2")
	wantResult(t, n.once(), ResultOK)
	if q := n.quarantined(); len(q) != 0 {
		t.Fatalf("quarantine not lifted by the fix: %+v", q)
	}
	if body := get(t, n.port("web", "web", "default")); !strings.Contains(body, "version=v2") {
		t.Fatalf("web answered %q, want v2", body)
	}
}

// TestRefusedCommitKeepsStatus: a reconcile that fails before it can plan
// (here: an unsigned commit under policy "head") says nothing new about
// the services, so status keeps what the last planned reconcile knew: a
// service held by `after` is still listed as waiting, and an invalid
// definition as invalid, instead of both vanishing from `mcp status`.
func TestRefusedCommitKeepsStatus(t *testing.T) {
	alice := testenv.NewSSHSigner(t, "alice@example.net")
	n := newTestNode(t, withConfig(fmt.Sprintf("\n[trust]\npolicy = \"head\"\nallowed_signers_file = %q\n",
		testenv.WriteAllowedSigners(t, alice))))
	img := testenv.TestImage(t, n.registry, testenv.UniqueRepo("held"), "v1")
	app := strings.Replace(service("app", img), "node = \"n1\"\n", "node = \"n1\"\nafter = [\"db\"]\n", 1)
	n.repo.CommitSigned(map[string]string{
		"mcp.toml":          n.platform(),
		"services/web.toml": service("web", img),
		"services/db.toml":  service("db", n.registry+"/mcptest/never-pushed:v1"),
		"services/app.toml": app,
		"services/bad.toml": "name = \"bad\"\nnode = \"n1\"\nrestart = \"sometimes\"\n",
	}, "web, db that cannot be pulled, app after db, an invalid definition", alice.GitArgs())
	n.repo.Push()
	c := n.startDaemon()

	states := func() (map[string]string, api.Reconcile) {
		st, err := c.Status(t.Context())
		if err != nil {
			t.Fatalf("status: %v", err)
		}
		m := map[string]string{}
		for _, s := range st.Services {
			m[s.Name] = s.State
		}
		return m, st.LastReconcile
	}
	want := map[string]string{"web": api.StateRunning, "db": api.StateFailed, "app": api.StateWaiting, "bad": api.StateInvalid}
	waitFor(t, time.Minute, "web running, db failed, app waiting, bad invalid", func() bool {
		got, _ := states()
		return maps.Equal(got, want)
	})

	n.repo.Commit(map[string]string{"README": "unsigned"}, "unsigned")
	n.repo.Push()
	waitFor(t, time.Minute, "the unsigned commit to be refused", func() bool {
		_, lr := states()
		return lr.Result == ResultFailed && strings.Contains(lr.Error, "unsigned")
	})
	if got, lr := states(); !maps.Equal(got, want) {
		t.Fatalf("after the refused commit (%s) status lists %v, want %v", lr.Error, got, want)
	}
}
