package agent

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"metacircular.net/mcp/api"
	"metacircular.net/mcp/internal/testenv"
	"metacircular.net/mcp/planner"
)

// `mcp status` and `mcp plan --socket`, as an operator runs them against a
// running agent: status shows the service running with its version and
// port; the plan previewed from the work tree before a push has the hash
// of the plan the agent then executes for that commit, and after it the
// (empty) plan has the hash of the agent's next reconcile.
func TestStatusAndPlanThroughTheAPI(t *testing.T) {
	n := newTestNode(t, withPollInterval("1h"))
	repoName := testenv.UniqueRepo("status/web")
	v1 := testenv.TestImage(t, n.registry, repoName, "v1")
	v2 := testenv.TestImage(t, n.registry, repoName, "v2")
	n.push(map[string]string{"mcp.toml": n.platform(), "services/web.toml": service("web", v1)}, "web v1")
	c := n.startDaemon()
	sock := n.cfg.API.Socket
	waitApplied(t, c, n.repo.Head().String())

	out, code := mcpCLI(t, "status", "--socket", sock, "--json")
	if code != 0 {
		t.Fatalf("mcp status --json exited %d:\n%s", code, out)
	}
	var st api.Status
	if err := json.Unmarshal([]byte(out), &st); err != nil {
		t.Fatalf("mcp status --json printed no status: %v\n%s", err, out)
	}
	web, ok := st.Service("web")
	if !ok || web.State != api.StateRunning || len(web.Components) != 1 {
		t.Fatalf("web in mcp status = %+v, want running with one component", web)
	}
	comp := web.Components[0]
	port := comp.Ports["default"]
	if comp.Version != "v1" || port == 0 {
		t.Fatalf("web's component in mcp status = %+v, want version v1 and a port", comp)
	}
	if body := get(t, port); !strings.Contains(body, "version=v1") {
		t.Fatalf("the port mcp status shows (%d) answered %q, want version=v1", port, body)
	}
	// The table an operator reads says the same.
	table, code := mcpCLI(t, "status", "--socket", sock)
	for _, want := range []string{"web", "running", "v1", strconv.Itoa(port)} {
		if code != 0 || !strings.Contains(table, want) {
			t.Fatalf("mcp status (exit %d) does not show %q:\n%s", code, want, table)
		}
	}

	// Preview v2 from the work tree, then push it: the agent (woken by the
	// watcher) executes a plan with the previewed hash.
	if err := os.WriteFile(filepath.Join(n.repo.Work, "services", "web.toml"), []byte(service("web", v2)), 0o644); err != nil {
		t.Fatal(err)
	}
	preview := planHash(t, sock, n.repo.Work, 2)
	n.push(map[string]string{"services/web.toml": service("web", v2)}, "web v2")
	last := waitApplied(t, c, n.repo.Head().String())
	if last.PlanHash != preview {
		t.Errorf("the agent executed plan %s for the commit, mcp plan --socket previewed %s", last.PlanHash, preview)
	}
	if last.Steps == 0 {
		t.Errorf("the agent's reconcile of v2 ran no steps: %+v", last)
	}

	// Nothing left to do: the same (no-op) plan on both sides.
	res := syncNow(t, c)
	wantSync(t, res, api.ResultOK)
	if got := planHash(t, sock, n.repo.Work, 0); got != res.Reconcile.PlanHash {
		t.Errorf("mcp plan --socket hash %s, the agent's last reconcile %s", got, res.Reconcile.PlanHash)
	}
}

// A push to a local repository is deployed without any request and long
// before the poll timer (1h) fires: the watcher woke the agent.
func TestWatcherDeploysAPushWithoutPolling(t *testing.T) {
	n := newTestNode(t, withPollInterval("1h"))
	img := testenv.TestImage(t, n.registry, testenv.UniqueRepo("watch/web"), "v1")
	n.push(map[string]string{"mcp.toml": n.platform()}, "platform only")
	c := n.startDaemon()
	waitApplied(t, c, n.repo.Head().String())

	n.push(map[string]string{"services/web.toml": service("web", img)}, "web")
	waitApplied(t, c, n.repo.Head().String())
	st, err := c.Status(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	web, ok := st.Service("web")
	if !ok || web.State != api.StateRunning {
		t.Fatalf("web after the push = %+v, want running", web)
	}
	if body := get(t, web.Components[0].Ports["default"]); !strings.Contains(body, "version=v1") {
		t.Fatalf("web answered %q, want version=v1", body)
	}
}

// waitApplied waits (bounded; a failure guard) until the agent's last
// reconcile finished on commit with the commit applied, and returns it.
func waitApplied(t *testing.T, c *api.Client, commit string) api.Reconcile {
	t.Helper()
	var last api.Status
	waitFor(t, 2*time.Minute, "the agent to apply commit "+commit, func() bool {
		st, err := c.Status(t.Context())
		if err != nil {
			return false
		}
		last = st
		return st.AppliedCommit == commit && st.LastReconcile.Commit == commit
	})
	if r := last.LastReconcile; r.Result != api.ResultOK {
		t.Fatalf("the reconcile of %s: %+v, want ok", commit, r)
	}
	return last.LastReconcile
}

// planHash runs `mcp plan --socket --json` on a work tree and returns the
// plan's hash, checking the exit code (0: nothing to do, 2: changes).
func planHash(t *testing.T, sock, work string, wantCode int) string {
	t.Helper()
	out, code := mcpCLI(t, "plan", "--socket", sock, "--repo", work, "--node", "n1", "--json")
	if code != wantCode {
		t.Fatalf("mcp plan --socket exited %d, want %d:\n%s", code, wantCode, out)
	}
	var p planner.Plan
	if err := json.Unmarshal([]byte(out), &p); err != nil || p.Hash == "" {
		t.Fatalf("mcp plan --json printed no plan (%v):\n%s", err, out)
	}
	return p.Hash
}
