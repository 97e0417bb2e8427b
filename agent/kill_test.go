package agent

import (
	"fmt"
	"strings"
	"syscall"
	"testing"
	"time"

	"metacircular.net/mcp/api"
)

// A real kill -9 from outside, while a step is in flight: the agent's log
// says step j began (its journal entry is written before the line), and the
// test sends SIGKILL at once, so the kill lands inside step j (a lease
// being written, an image being pulled, a container being created). That
// is done for every step of the create, update and removal plans; each time the
// agent, started again, closes the open entry and converges with nothing
// leaked and nothing healthy restarted.
func TestKillDuringStepConverges(t *testing.T) {
	im := pushCrashImages(t)
	inFlight := 0
	for _, sc := range crashScenarios(im) {
		t.Run(sc.name, func(t *testing.T) {
			steps := -1
			for j := 1; steps < 0 || j <= steps; j++ {
				if testing.Short() && j > 1 && j < steps {
					continue
				}
				t.Run(fmt.Sprintf("step=%d", j), func(t *testing.T) {
					cr := prepareCrash(t, im, sc)
					steps = len(cr.plan.Steps)
					open := cr.killDuringStep(j, "--once")
					if open > 0 {
						inFlight++
					}
					cr.recoverAndCheck()
				})
				if steps < 0 {
					t.Fatal("the first kill point could not count the plan's steps")
				}
			}
		})
	}
	// Kills that landed after the step had already finished still test
	// recovery, but not of an in-flight step; most must have hit one.
	t.Logf("kills that left a step in flight: %d", inFlight)
	if inFlight == 0 {
		t.Error("no kill left a journal entry in flight: the test did not exercise an interrupted step")
	}
}

// killDuringStep runs `mcp agent extra...` and SIGKILLs it as soon as its
// log says step j began. It returns the number of journal entries the kill
// left in flight.
func (cr *crashRun) killDuringStep(j int, extra ...string) int {
	t, n := cr.t, cr.n
	t.Helper()
	began := 0
	p := n.startAgent(func(p *agentProc, line string) {
		if strings.Contains(line, "msg=step ") {
			if began++; began == j {
				p.signal(syscall.SIGKILL)
			}
		}
	}, extra...)
	if r := p.wait(3 * time.Minute); !r.killed() {
		t.Fatalf("the agent ended with %v before step %d began, want it killed during the step", r.state, j)
	}
	open := n.journalOpen()
	t.Logf("journal entries in flight after the kill: %d %+v", len(open), open)
	return len(open)
}

// The agent as a service manager runs it: a daemon, killed with SIGKILL
// while it replaces a container, and started again as a daemon (restart
// supervisor and reconcile loop racing over the half-replaced component).
// It converges as --once does, restarts nothing healthy, and SIGTERM then
// stops it with exit 0, leaving every workload running.
func TestDaemonKilledMidDeployRecovers(t *testing.T) {
	im := pushCrashImages(t)
	cr := prepareCrash(t, im, crashScenarios(im)[1])
	cr.killDuringStep(3) // web/api's container replacement
	cr.checkAfter(func() {
		p := cr.n.startAgent(nil)
		c := api.NewClient(cr.n.cfg.API.Socket)
		waitFor(t, time.Minute, "the restarted agent's API", func() bool {
			_, err := c.Status(t.Context())
			return err == nil
		})
		waitApplied(t, c, cr.n.repo.Head().String())
		p.signal(syscall.SIGTERM)
		if r := p.wait(time.Minute); !r.state.Success() {
			t.Fatalf("the agent ended with %v on SIGTERM, want exit 0", r.state)
		}
	})
}
