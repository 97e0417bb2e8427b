package agent

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"

	"metacircular.net/mcp/executor"
	"metacircular.net/mcp/internal/testenv"
	"metacircular.net/mcp/planner"
	"metacircular.net/mcp/registry"
	"metacircular.net/mcp/spec"
)

// webService is a two-component service, each component with a route of
// its own, so a plan for it interleaves leases, pulls and containers of
// two components.
func webService(apiImage, webImage string) string {
	return fmt.Sprintf(`name = "web"
node = "n1"

[[components]]
name = "api"
image = %q

[[components.routes]]
name = "rest"
port = 8443
mode = "l4"

[[components]]
name = "web"
image = %q

[[components.routes]]
port = 443
mode = "l7"
`, apiImage, webImage)
}

// crashImages are the images of the crash scenarios, pushed once and
// shared by every injection point (each point pulls them cold into its own
// containerd namespace).
type crashImages struct {
	registry                    string
	keep                        string
	apiV1, webV1, apiV2, webV2  string
	keepDef, webV1Def, webV2Def string
}

func pushCrashImages(t *testing.T) crashImages {
	t.Helper()
	reg := testenv.Registry(t)
	api, web := testenv.UniqueRepo("crash/api"), testenv.UniqueRepo("crash/web")
	im := crashImages{
		registry: reg,
		keep:     testenv.TestImage(t, reg, testenv.UniqueRepo("crash/keep"), "v1"),
		apiV1:    testenv.TestImage(t, reg, api, "v1"),
		webV1:    testenv.TestImage(t, reg, web, "v1"),
		apiV2:    testenv.TestImage(t, reg, api, "v2"),
		webV2:    testenv.TestImage(t, reg, web, "v2"),
	}
	im.keepDef = service("keep", im.keep)
	im.webV1Def = webService(im.apiV1, im.webV1)
	im.webV2Def = webService(im.apiV2, im.webV2)
	return im
}

// crashScenario is one change whose plan is walked: the node is brought to
// before (in-process, no crash), then change is pushed, the agent is
// killed after step k and started again.
type crashScenario struct {
	name   string
	before map[string]string // files of the commit deployed first
	change func(n *testNode) // pushes the change
	// After recovery: the web version that must answer ("" when web is
	// gone), and whether web's ports must be the ones it had before.
	webVersion string
	samePorts  bool
}

func crashScenarios(im crashImages) []crashScenario {
	return []crashScenario{
		{
			name:       "create",
			before:     map[string]string{"services/keep.toml": im.keepDef},
			change:     func(n *testNode) { n.push(map[string]string{"services/web.toml": im.webV1Def}, "add web") },
			webVersion: "v1",
		},
		{
			name:       "update",
			before:     map[string]string{"services/keep.toml": im.keepDef, "services/web.toml": im.webV1Def},
			change:     func(n *testNode) { n.push(map[string]string{"services/web.toml": im.webV2Def}, "web v2") },
			webVersion: "v2",
			samePorts:  true,
		},
		{
			name:   "remove",
			before: map[string]string{"services/keep.toml": im.keepDef, "services/web.toml": im.webV1Def},
			change: func(n *testNode) { n.remove([]string{"services/web.toml"}, "remove web") },
		},
	}
}

// The agent is killed (SIGKILL, through --crash-after-step) after every
// single step of a create, an update and a removal plan in turn, each time
// on a fresh node, then started again. Every time it must converge: the
// service answers, no container, lease or journal entry is leaked or
// missing, and no container that was already healthy is restarted: not the
// unrelated service, and not one the crashed run had already brought to its
// final spec.
func TestCrashAfterEveryStepConverges(t *testing.T) {
	im := pushCrashImages(t)
	covered := 0
	for _, sc := range crashScenarios(im) {
		t.Run(sc.name, func(t *testing.T) {
			steps := -1
			for k := 1; steps < 0 || k <= steps; k++ {
				if testing.Short() && k > 1 && k < steps {
					continue // -short: the first and the last step only
				}
				t.Run(fmt.Sprintf("k=%d", k), func(t *testing.T) {
					p := crashAt(t, im, sc, k)
					if steps < 0 {
						steps = len(p.Steps)
						t.Logf("the %s plan: %s", sc.name, stepIDs(p))
					} else if len(p.Steps) != steps {
						t.Fatalf("the %s plan has %d steps on this node, %d on the first one: %s", sc.name, len(p.Steps), steps, stepIDs(p))
					}
				})
				if steps < 0 {
					t.Fatal("the first injection point could not count the plan's steps")
				}
				covered++
			}
			t.Logf("%s plan: %d steps", sc.name, steps)
		})
	}
	t.Logf("injection points covered: %d", covered)
}

// crashAt runs one injection point and returns the plan it walks.
func crashAt(t *testing.T, im crashImages, sc crashScenario, k int) *planner.Plan {
	cr := prepareCrash(t, im, sc)
	if k > len(cr.plan.Steps) {
		t.Fatalf("k=%d but the %s plan has %d steps", k, sc.name, len(cr.plan.Steps))
	}
	cr.crashAfter(k)
	cr.recoverAndCheck()
	return cr.plan
}

// crashRun is one node brought to a scenario's starting point, with the
// change pushed and not yet applied.
type crashRun struct {
	t           *testing.T
	n           *testNode
	sc          crashScenario
	plan        *planner.Plan
	keepPID     uint32
	portsBefore map[string]int
}

func prepareCrash(t *testing.T, im crashImages, sc crashScenario) *crashRun {
	t.Helper()
	n := newTestNode(t, withRegistry(im.registry))
	before := maps.Clone(sc.before)
	before["mcp.toml"] = n.platform()
	n.push(before, "before")
	wantResult(t, n.once(), ResultOK)
	cr := &crashRun{t: t, n: n, sc: sc, keepPID: n.containers()["keep.keep.a"].PID, portsBefore: servicePorts(n.snapshot(), "web")}
	if cr.keepPID == 0 {
		t.Fatal("keep is not running before the change")
	}
	sc.change(n)
	cr.plan = n.plan()
	return cr
}

// recoverAndCheck starts the agent again after a crash and checks what a
// user would notice: the change is complete, nothing leaked or went
// missing, and nothing healthy was restarted.
func (cr *crashRun) recoverAndCheck() {
	cr.t.Helper()
	cr.checkAfter(cr.n.recoverOnce)
}

// checkAfter is recoverAndCheck with another way to start the agent again.
func (cr *crashRun) checkAfter(recover func()) {
	t, n, sc := cr.t, cr.n, cr.sc
	t.Helper()
	afterCrash := n.containers()

	recover()

	want := []string{"keep.keep.a"}
	if sc.webVersion != "" {
		want = append(want, "web.api.a", "web.web.a")
	}
	after := n.containers()
	if got := slices.Sorted(maps.Keys(after)); !slices.Equal(got, want) {
		t.Fatalf("containers after recovery = %v, want exactly %v", got, want)
	}
	for id, c := range after {
		if c.Status != executor.StatusRunning {
			t.Errorf("%s is %s after recovery, want running", id, c.Status)
		}
		// A container the crashed run had already brought to its final
		// spec was healthy: recovery must not have restarted it.
		if old, ok := afterCrash[id]; ok && old.Status == executor.StatusRunning &&
			old.Labels[executor.LabelRuntimeHash] == c.Labels[executor.LabelRuntimeHash] && old.PID != c.PID {
			t.Errorf("%s was restarted by recovery (pid %d → %d) although it already ran its final spec", id, old.PID, c.PID)
		}
	}
	if pid := after["keep.keep.a"].PID; pid != cr.keepPID {
		t.Errorf("keep, not part of the change, was restarted (pid %d → %d)", cr.keepPID, pid)
	}

	snap := n.snapshot()
	wantSvcs := []string{"keep"}
	wantLeases := []string{registry.LeaseKey("keep", "keep", "default", registry.SlotA)}
	if sc.webVersion != "" {
		wantSvcs = append(wantSvcs, "web")
		wantLeases = append(wantLeases,
			registry.LeaseKey("web", "api", "rest", registry.SlotA),
			registry.LeaseKey("web", "web", "default", registry.SlotA))
	}
	if got := slices.Sorted(maps.Keys(snap.Services)); !slices.Equal(got, wantSvcs) {
		t.Errorf("registry services = %v, want %v", got, wantSvcs)
	}
	var gotLeases []string
	byPort := map[int]string{}
	for _, l := range snap.Leases {
		gotLeases = append(gotLeases, l.Key())
		if other, dup := byPort[l.Port]; dup {
			t.Errorf("port %d is leased twice: %s and %s", l.Port, other, l.Key())
		}
		byPort[l.Port] = l.Key()
	}
	slices.Sort(gotLeases)
	slices.Sort(wantLeases)
	if !slices.Equal(gotLeases, wantLeases) {
		t.Errorf("leases after recovery = %v, want exactly %v", gotLeases, wantLeases)
	}
	if open := n.journalOpen(); len(open) != 0 {
		t.Errorf("journal entries left in flight: %+v", open)
	}
	if got, head := n.appliedCommit(), n.repo.Head().String(); got != head {
		t.Errorf("applied commit after recovery = %q, want the pushed head %s", got, head)
	}
	if sc.webVersion != "" {
		ports := servicePorts(snap, "web")
		if sc.samePorts && !maps.Equal(ports, cr.portsBefore) {
			t.Errorf("web's ports moved from %v to %v", cr.portsBefore, ports)
		}
		for key, p := range ports {
			if body := get(t, p); !strings.Contains(body, "version="+sc.webVersion) {
				t.Errorf("%s (port %d) answered %q, want version=%s", key, p, body, sc.webVersion)
			}
		}
	}
}

// plan computes what the agent will do next on this node, from the pushed
// work tree and the registry: what `mcp plan --registry` prints.
func (n *testNode) plan() *planner.Plan {
	n.t.Helper()
	repo, err := spec.LoadDir(n.repo.Work)
	if err != nil {
		n.t.Fatalf("load repo: %v", err)
	}
	return planner.Compute(planner.InputFor(repo, n.cfg.Node, n.snapshot(), planner.Features{}, n.cfg.AllowRemoveAll))
}

// servicePorts maps a service's lease keys to their ports.
func servicePorts(snap registry.Snapshot, service string) map[string]int {
	out := map[string]int{}
	for _, l := range snap.Leases {
		if l.Service == service {
			out[l.Key()] = l.Port
		}
	}
	return out
}

func stepIDs(p *planner.Plan) string {
	ids := make([]string, len(p.Steps))
	for i, st := range p.Steps {
		ids[i] = st.ID
	}
	return strings.Join(ids, ", ")
}

// The repo moves on while the agent is down after a crash: recovery plans
// from the registry against the new commit, and the converge pass takes
// back what the crashed run had half done. A half-applied update that is
// reverted ends on the old version everywhere (the component the crash had
// not reached yet is not restarted); a half-created service that is
// deleted leaves no container and no lease behind.
func TestCrashThenRepoMovesOnConverges(t *testing.T) {
	im := pushCrashImages(t)
	scs := crashScenarios(im)
	t.Run("update reverted", func(t *testing.T) {
		cr := prepareCrash(t, im, scs[1])
		// web/api's container is replaced (step 3), web/web's not yet.
		cr.crashAfter(3)
		cr.n.push(map[string]string{"services/web.toml": im.webV1Def}, "revert web to v1")
		cr.sc.webVersion = "v1"
		cr.recoverAndCheck()
	})
	t.Run("create deleted", func(t *testing.T) {
		cr := prepareCrash(t, im, scs[0])
		// Both leases, both images and web/api's container (step 5).
		cr.crashAfter(5)
		cr.n.remove([]string{"services/web.toml"}, "web was a mistake")
		cr.sc.webVersion = ""
		cr.recoverAndCheck()
	})
}

// crashAfter runs `mcp agent --once --crash-after-step k` and checks the
// injection killed it right after step k.
func (cr *crashRun) crashAfter(k int) {
	t := cr.t
	t.Helper()
	crash := cr.n.agentProcess("--crash-after-step", fmt.Sprint(k))
	if !crash.killed() {
		t.Fatalf("the agent was not killed by the injection after step %d: %v", k, crash.state)
	}
	// The kill landed between step k and step k+1: k steps began.
	if got := crash.lines("msg=step "); got != k {
		t.Fatalf("the crashed agent began %d steps, want %d", got, k)
	}
}
