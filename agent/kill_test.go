package agent

import (
	"bufio"
	"context"
	"fmt"
	"strings"
	"syscall"
	"testing"
	"time"
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
					open := cr.killDuringStep(j)
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

// killDuringStep runs `mcp agent --once` and SIGKILLs it as soon as its
// log says step j began. It returns the number of journal entries the
// kill left in flight.
func (cr *crashRun) killDuringStep(j int) int {
	t, n := cr.t, cr.n
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := mcpCommand(t, ctx, "agent", "--config", n.cfgFile, "--once")
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	waited := make(chan error, 1)
	var log strings.Builder
	// The pipe is drained to its end before Wait, as os/exec requires.
	go func() {
		sc := bufio.NewScanner(stderr)
		began := 0
		for sc.Scan() {
			line := sc.Text()
			log.WriteString(line + "\n")
			if strings.Contains(line, "msg=step ") {
				if began++; began == j {
					_ = syscall.Kill(cmd.Process.Pid, syscall.SIGKILL)
				}
			}
		}
		waited <- cmd.Wait()
	}()
	var werr error
	select {
	case werr = <-waited:
	case <-ctx.Done():
		t.Fatal("the agent neither finished nor was killed within the wait")
	}
	t.Logf("mcp agent --once (killed at step %d):\n%s", j, log.String())
	ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus)
	if !ok || !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
		t.Fatalf("the agent ended with %v before step %d began, want it killed during the step", werr, j)
	}
	open := n.journalOpen()
	t.Logf("journal entries in flight after the kill: %d %+v", len(open), open)
	return len(open)
}
