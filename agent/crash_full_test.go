package agent

import (
	"fmt"
	"maps"
	"os"
	"slices"
	"testing"

	"metacircular.net/mcp/executor"
	"metacircular.net/mcp/executor/containerd"
	"metacircular.net/mcp/internal/testenv"
	"metacircular.net/mcp/registry"
)

// fullPhase is one change of the crash walk on a fullNode. The phases run
// in a cycle (create, update, removal, create...), each starting from the
// state the one before converged to, so one node serves the whole walk.
type fullPhase struct {
	name   string
	change func(n *fullNode)
	// want is the converged state after the change; version is what web
	// answers through haproxy ("" when web is gone).
	want    nodeState
	version string
}

func fullPhases(n *fullNode, apiV1, webV1, apiV2, webV2 string) []fullPhase {
	keepCerts := []string{
		"host/srv/mc-proxy/certs/keep.svc.mcp.test.internal.key",
		"host/srv/mc-proxy/certs/keep.svc.mcp.test.internal.pem",
		"state/certs/keep.svc.mcp.test.internal/ca.pem",
		"state/certs/keep.svc.mcp.test.internal/chain.pem",
		"state/certs/keep.svc.mcp.test.internal/key.pem",
	}
	// web's l4 files under /srv/web stay after a removal (nothing under
	// /srv/<service> is ever deleted, docs/certs.md), so they are expected
	// in every phase once web was first deployed.
	srvCerts := []string{"host/srv/web/certs/ca.pem", "host/srv/web/certs/cert.pem", "host/srv/web/certs/key.pem"}
	webCerts := []string{
		"host/srv/mc-proxy/certs/web.svc.mcp.test.internal.key",
		"host/srv/mc-proxy/certs/web.svc.mcp.test.internal.pem",
		"state/certs/web.svc.mcp.test.internal/ca.pem",
		"state/certs/web.svc.mcp.test.internal/chain.pem",
		"state/certs/web.svc.mcp.test.internal/key.pem",
	}
	l7, l4 := fmt.Sprint(n.l7), fmt.Sprint(n.l4)
	keepOnly := nodeState{
		Containers: []string{"keep.keep.a"},
		Leases:     []string{"keep/keep/default/a"},
		Services:   []string{"keep"},
		Routes:     []string{l7 + "/l7/" + keepHost},
		Records:    []string{keepHost + " A 127.0.0.1"},
		CertFiles:  sorted(keepCerts, srvCerts),
	}
	withWeb := func(slot string, leases ...string) nodeState {
		return nodeState{
			Containers: []string{"keep.keep.a", "web.api." + slot, "web.web." + slot},
			Leases:     sorted([]string{"keep/keep/default/a"}, leases),
			Services:   []string{"keep", "web"},
			Routes:     sorted([]string{l7 + "/l7/" + keepHost, l7 + "/l7/" + webHost, l4 + "/l4/" + webHost}),
			Records:    sorted([]string{keepHost + " A 127.0.0.1", webHost + " A 127.0.0.1"}),
			CertFiles:  sorted(keepCerts, srvCerts, webCerts),
		}
	}
	return []fullPhase{
		{
			name: "create",
			change: func(n *fullNode) {
				n.push(map[string]string{"services/web.toml": n.routedService(apiV1, webV1)}, "add web")
			},
			want:    withWeb("a", "web/api/pass/a", "web/web/default/a"),
			version: "v1",
		},
		{
			// Blue-green: slot b is started, waited for, the routes move to
			// it, slot a goes; each route keeps its pair of leases.
			name: "update",
			change: func(n *fullNode) {
				n.push(map[string]string{"services/web.toml": n.routedService(apiV2, webV2)}, "web v2")
			},
			want: withWeb("b", "web/api/pass/a", "web/api/pass/b",
				"web/web/default/a", "web/web/default/b"),
			version: "v2",
		},
		{
			name:   "remove",
			change: func(n *fullNode) { n.remove([]string{"services/web.toml"}, "remove web") },
			want:   keepOnly,
		},
	}
}

func sorted(lists ...[]string) []string {
	out := slices.Concat(lists...)
	slices.Sort(out)
	return out
}

// The crash walk over a service with everything: two components, an l7
// and an l4 route through a real haproxy, a certificate from the local CA
// and a DNS record in a real bind9. For every k, the agent is killed
// (SIGKILL through --crash-after-step) right after step k of the create,
// then of the update (blue-green: slot b, health waits, route switch, old
// slot removed), then of the removal plan, and each time started again
// (`mcp agent --once`). After each recovery the node must be exactly what
// a run without a crash leaves: the same containers, leases, haproxy
// routes, records and certificate files, no journal entry in flight, the
// routes answering with the right version through haproxy, and no healthy
// container restarted (keep, outside the change, keeps its PID through the
// whole walk).
//
// One node serves the walk: each phase starts from what the phase before
// converged to (create → update → removal → create...), which is exactly
// the state a fresh node would be brought to, at a fraction of the cost.
// -short walks k = 1, the middle step and the last one.
func TestCrashWalkRoutedService(t *testing.T) {
	walkRoutedService(t, "injection", func(cr *crashRun, k int) { cr.crashAfter(k) })
}

// The long version (make crash-walk-long, MCP_TEST_LONG=1): the same walk,
// but the agent is killed from outside (SIGKILL) as soon as its log says
// step k began, so the kill lands inside the step (a lease being written,
// a certificate being issued, a route or record being set).
func TestKillWalkRoutedService(t *testing.T) {
	if os.Getenv("MCP_TEST_LONG") != "1" {
		t.Skip("long: make crash-walk-long (MCP_TEST_LONG=1)")
	}
	walkRoutedService(t, "kill", func(cr *crashRun, k int) { cr.killDuringStep(k, "--once") })
}

// walkRoutedService runs the walk, interrupting the agent at each point
// with interrupt.
func walkRoutedService(t *testing.T, what string, interrupt func(cr *crashRun, k int)) {
	n := newFullNode(t)
	keepImg := testenv.TestImage(t, n.registry, testenv.UniqueRepo("crashwalk/keep"), "v1")
	api, web := testenv.UniqueRepo("crashwalk/api"), testenv.UniqueRepo("crashwalk/web")
	apiV1, webV1 := testenv.TestImage(t, n.registry, api, "v1"), testenv.TestImage(t, n.registry, web, "v1")
	apiV2, webV2 := testenv.TestImage(t, n.registry, api, "v2"), testenv.TestImage(t, n.registry, web, "v2")
	n.push(map[string]string{"mcp.toml": n.platform(), "services/keep.toml": n.l7Service("keep", keepImg)}, "keep")
	wantResult(t, n.once(), ResultOK)
	rt := n.driver()
	keepPID := listContainers(t, rt)["keep.keep.a"].PID
	if keepPID == 0 {
		t.Fatal("keep is not running before the walk")
	}

	phases := fullPhases(n, apiV1, webV1, apiV2, webV2)
	steps := make([]int, len(phases)) // each plan's length, from the first cycle
	plans := make([]string, len(phases))
	covered := make([]int, len(phases))
	maxSteps := 1
	for k := 1; k <= maxSteps; k++ {
		if testing.Short() && k > 1 && !slices.ContainsFunc(steps, func(s int) bool { return shortWalk(k, s) }) {
			continue // a whole cycle without an injection point
		}
		for i, ph := range phases {
			ph.change(n)
			p := n.planFull()
			if steps[i] == 0 {
				steps[i], plans[i] = len(p.Steps), stepIDs(p)
				maxSteps = max(maxSteps, steps[i])
				t.Logf("the %s plan (%d steps): %s", ph.name, steps[i], plans[i])
			} else if got := stepIDs(p); got != plans[i] {
				t.Fatalf("k=%d: the %s plan differs from the first cycle's:\n%s\nwant\n%s", k, ph.name, got, plans[i])
			}
			name := fmt.Sprintf("k=%d/%s", k, ph.name)
			if k > steps[i] || (testing.Short() && !shortWalk(k, steps[i])) {
				// No injection point here: the change is applied plainly,
				// to bring the node to the next phase's starting point.
				wantResult(t, n.once(), ResultOK)
				n.checkConverged(t, name, ph, rt, nil, keepPID)
				continue
			}
			cr := &crashRun{t: t, n: n.testNode}
			interrupt(cr, k)
			afterCrash := listContainers(t, rt)
			n.recoverOnce()
			n.checkConverged(t, name, ph, rt, afterCrash, keepPID)
			covered[i]++
			if t.Failed() {
				t.FailNow() // the next phases would start from a broken state
			}
		}
	}
	total := 0
	for i, ph := range phases {
		t.Logf("%s plan: %d of %d %s points covered", ph.name, covered[i], steps[i], what)
		total += covered[i]
	}
	t.Logf("%s points covered: %d", what, total)
}

// shortWalk is the -short subset of a plan's injection points.
func shortWalk(k, steps int) bool { return k == 1 || k == (steps+1)/2 || k == steps }

// checkConverged compares the node with the phase's converged state and
// checks what a user would notice (see TestCrashWalkRoutedService).
// afterCrash is what ran right after the crash (nil without one).
func (n *fullNode) checkConverged(t *testing.T, name string, ph fullPhase, rt *containerd.Driver, afterCrash map[string]executor.Container, keepPID uint32) {
	t.Helper()
	if got := n.observe(); got.String() != ph.want.String() {
		t.Errorf("%s: the node after recovery:\n%s\nwant what a run without a crash leaves:\n%s", name, got, ph.want)
	}
	after := listContainers(t, rt)
	if pid := after["keep.keep.a"].PID; pid != keepPID {
		t.Errorf("%s: keep, outside the change, was restarted (pid %d → %d)", name, keepPID, pid)
	}
	for id, c := range after {
		// A container the crashed run had already brought to its final
		// spec was healthy: recovery must not have restarted it.
		if old, ok := afterCrash[id]; ok && old.Status == executor.StatusRunning &&
			old.Labels[executor.LabelRuntimeHash] == c.Labels[executor.LabelRuntimeHash] && old.PID != c.PID {
			t.Errorf("%s: %s was restarted by recovery (pid %d → %d) although it already ran its final spec", name, id, old.PID, c.PID)
		}
	}
	if got, head := n.appliedCommit(), n.repo.Head().String(); got != head {
		t.Errorf("%s: applied commit %q, want the pushed head %s", name, got, head)
	}
	if ph.version != "" {
		n.serves(t, ph.version)
	} else {
		keep := fileChain(t, n.l7Chain(keepHost))
		mustThrough(t, n.l7, keepHost, &keep, "version=v1")
		if a, err := through(t.Context(), n.l7, webHost, &keep); err == nil && a.status == 200 {
			t.Errorf("%s: web still answers through haproxy after its removal: %q", name, a.body)
		}
	}
	snap := n.snapshot()
	if d, ok := snap.Services["web"]; ok {
		slot := registry.SlotA
		if ph.name == "update" {
			slot = registry.SlotB
		}
		for c, st := range d.Components {
			if st.ActiveSlot != slot {
				t.Errorf("%s: web/%s active slot %d, want %d", name, c, st.ActiveSlot, slot)
			}
		}
	}
}

// listContainers lists the node's containers through one driver (the
// walk reads them many times; n.containers opens a client per call).
func listContainers(t *testing.T, d *containerd.Driver) map[string]executor.Container {
	t.Helper()
	list, err := d.List(t.Context())
	if err != nil {
		t.Fatalf("list containers: %v", err)
	}
	return maps.Collect(func(yield func(string, executor.Container) bool) {
		for _, c := range list {
			if !yield(c.ID, c) {
				return
			}
		}
	})
}
