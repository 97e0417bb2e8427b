package bench

import (
	"context"
	"fmt"
	"os/exec"
	"testing"
	"time"

	"metacircular.net/mcp/internal/testenv"
)

// BenchmarkAgentIdle runs the real binary (go build ./cmd/mcp) as `mcp
// agent` at the default poll interval (30s) with 0 and with N small
// services deployed (hello containers, one image; N is
// MCP_BENCH_IDLE_SERVICES, default 100), waits until everything runs and
// the agent has been idle for MCP_BENCH_IDLE seconds (default 10), and
// reports:
//
//   - rss_MiB, peak_MiB: the agent's VmRSS and VmHWM from /proc (an
//     absolute number: there is no raw counterpart);
//   - cpu_s_per_h: the agent's CPU time (utime+stime from
//     /proc/<pid>/stat) over an idle window of MCP_BENCH_IDLE_WINDOW
//     seconds (default 120, i.e. 4 polls), scaled to an hour;
//   - ctrd_cpu_s_per_h: the same for the containerd daemon and its shims
//     over the same window, when /proc shows which they are (the agent's
//     listings make them work too; their own idle cost is included);
//   - lsremote_cpu_s_per_h: the raw limit, the CPU of one `git ls-remote`
//     per poll interval for an hour, measured in the same run (median of
//     10 calls, user+system of the child process); ratio is
//     cpu_s_per_h / lsremote_cpu_s_per_h.
//
// A window of k poll intervals holds exactly k polls wherever it starts,
// so the scaling is exact for the polls; the agent's per-second watch
// (drift and health) is counted as it runs. Run it with -benchtime=1x.
func BenchmarkAgentIdle(b *testing.B) {
	skipShort(b)
	address, _ := testenv.Containerd(b)
	registry := testenv.Registry(b)
	img := testenv.TestImage(b, registry, testenv.UniqueRepo("bench/rss"), "v1")
	bin := buildMCP(b)
	idle := time.Duration(envInt(b, "MCP_BENCH_IDLE", 10)) * time.Second
	window := time.Duration(envInt(b, "MCP_BENCH_IDLE_WINDOW", 120)) * time.Second
	for _, count := range []int{0, envInt(b, "MCP_BENCH_IDLE_SERVICES", 100)} {
		b.Run(fmt.Sprintf("services=%d", count), func(b *testing.B) {
			var m idleMeasure
			for b.Loop() {
				m = agentIdle(b, bin, address, registry, img, count, idle, window)
			}
			b.ReportMetric(float64(m.rss)/1024, "rss_MiB")
			b.ReportMetric(float64(m.hwm)/1024, "peak_MiB")
			perHour := float64(time.Hour) / float64(m.window)
			b.ReportMetric(m.agentCPU.Seconds()*perHour, "cpu_s_per_h")
			if m.ctrdFound {
				b.ReportMetric(m.ctrdCPU.Seconds()*perHour, "ctrd_cpu_s_per_h")
			}
			lsPerHour := m.lsCPU.Seconds() * float64(time.Hour/pollInterval)
			b.ReportMetric(lsPerHour, "lsremote_cpu_s_per_h")
			if lsPerHour > 0 {
				b.ReportMetric(m.agentCPU.Seconds()*perHour/lsPerHour, "ratio")
			}
			b.ReportMetric(0, "ns/op")
		})
	}
}

// pollInterval is the agent's default poll interval, which the benchmark
// nodes set explicitly (node.go).
const pollInterval = 30 * time.Second

type idleMeasure struct {
	rss, hwm  int // KiB
	window    time.Duration
	agentCPU  time.Duration
	ctrdCPU   time.Duration
	ctrdFound bool
	lsCPU     time.Duration // one git ls-remote
}

// agentIdle deploys count services with the mcp binary, waits for idle,
// reads the agent's memory, then measures CPU over window.
func agentIdle(b *testing.B, bin, address, registry, img string, count int, idle, window time.Duration) idleMeasure {
	b.Helper()
	n := newNode(b, address, registry, "")
	defer func() {
		if err := n.clean(); err != nil {
			b.Error(err)
		}
	}()
	n.repo.Commit(n.services(count, img), fmt.Sprintf("%d services", count))
	n.repo.Push()
	p := n.startAgent(bin)
	defer p.stop()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	t0 := time.Now()
	st := n.waitApplied(ctx, count, p.exited)
	b.Logf("%d services running after %v (last reconcile %v)", count, time.Since(t0).Round(time.Millisecond),
		st.LastReconcile.Finished.Sub(st.LastReconcile.Started).Round(time.Millisecond))
	select {
	case <-time.After(idle):
	case <-p.exited:
		b.Fatalf("agent exited\n%s", n.logTail())
	}
	m := idleMeasure{rss: procStatus(b, p.pid(), "VmRSS"), hwm: procStatus(b, p.pid(), "VmHWM")}

	daemon, shims := containerdPIDs(address)
	ctrdPIDs := shims
	if daemon != 0 {
		ctrdPIDs = append(ctrdPIDs, daemon)
	}
	m.ctrdFound = daemon != 0
	a0, ok := procCPU(p.pid())
	if !ok {
		b.Fatalf("agent gone\n%s", n.logTail())
	}
	c0 := cpuOf(ctrdPIDs)
	w0 := time.Now()
	select {
	case <-time.After(window):
	case <-p.exited:
		b.Fatalf("agent exited\n%s", n.logTail())
	}
	a1, ok := procCPU(p.pid())
	if !ok {
		b.Fatalf("agent gone\n%s", n.logTail())
	}
	c1 := cpuOf(ctrdPIDs)
	m.window = time.Since(w0)
	m.agentCPU, m.ctrdCPU = a1-a0, c1-c0
	b.Logf("%d services: agent %v CPU, containerd (pid %d) and %d shims %v CPU in %v",
		count, m.agentCPU, daemon, len(shims), m.ctrdCPU, m.window.Round(time.Millisecond))
	m.lsCPU = lsRemoteCPU(b, n, 10)
	return m
}

// lsRemoteCPU is the median CPU time (user+system) of `git ls-remote` on
// the node's repository over runs calls.
func lsRemoteCPU(b *testing.B, n *node, runs int) time.Duration {
	b.Helper()
	tmpl := testenv.GitCommand(b, n.repo.Work, "ls-remote", n.repo.Bare, "refs/heads/"+testenv.GitBranch)
	var ds []time.Duration
	for range runs {
		cmd := exec.Command(tmpl.Path, tmpl.Args[1:]...)
		cmd.Dir, cmd.Env = tmpl.Dir, tmpl.Env
		if out, err := cmd.Output(); err != nil || len(out) < 40 {
			b.Fatalf("git ls-remote: %v %q", err, out)
		}
		ds = append(ds, cmd.ProcessState.UserTime()+cmd.ProcessState.SystemTime())
	}
	return median(ds)
}
