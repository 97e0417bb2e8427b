package bench

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"testing"
	"time"

	"github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/pkg/namespaces"

	"metacircular.net/mcp/agent"
	"metacircular.net/mcp/api"
	"metacircular.net/mcp/internal/testenv"
)

// BenchmarkRestartReconcile restarts the real agent binary (SIGTERM, then
// `mcp agent` again) on a node with N running services (hello containers,
// one image; N is MCP_BENCH_SERVICES, default 50), MCP_BENCH_RESTARTS
// times (default 5), and measures the time from starting the process to
// the end of its first reconcile (the agent's own finish time, read from
// its status afterwards). The raw limit, alternating with it, is what any
// deployer must do at the very least to know where it stands: connect to
// containerd with the raw client, list the namespace's containers and its
// tasks.
//
// No container may restart: after every restart the benchmark lists the
// tasks with the raw client and fails if any container is gone or has
// another PID than before the first restart (a correctness check, not a
// timing). It also fails if the first reconcile executed a step. restarts
// (always 0 when the benchmark passes) is reported with the times:
// mcp_ms, reconcile_ms (the first reconcile's own duration), raw_ms and
// ratio (mcp_ms / raw_ms), medians over the restarts. Run it with
// -benchtime=1x.
func BenchmarkRestartReconcile(b *testing.B) {
	skipShort(b)
	address, _ := testenv.Containerd(b)
	registry := testenv.Registry(b)
	img := testenv.TestImage(b, registry, testenv.UniqueRepo("bench/restart"), "v1")
	bin := buildMCP(b)
	count := envInt(b, "MCP_BENCH_SERVICES", 50)
	restarts := max(envInt(b, "MCP_BENCH_RESTARTS", 5), 1)
	c, err := client.New(address)
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()

	n := newNode(b, address, registry, "")
	defer func() {
		if err := n.clean(); err != nil {
			b.Error(err)
		}
	}()
	n.repo.Commit(n.services(count, img), fmt.Sprintf("%d services", count))
	n.repo.Push()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()
	p := n.startAgent(bin)
	n.waitApplied(ctx, count, p.exited)
	before, err := taskPIDs(ctx, c, n.namespace)
	if err != nil {
		b.Fatal(err)
	}
	if len(before) != count {
		b.Fatalf("%d running tasks before the restart, want %d", len(before), count)
	}

	var mcp, rec, raw []time.Duration
	changed := 0
	for b.Loop() {
		for range restarts {
			p.stop()
			var d, r time.Duration
			p, d, r = restartAgent(b, ctx, n, bin)
			mcp, rec = append(mcp, d), append(rec, r)
			raw = append(raw, rawListing(b, ctx, address, n.namespace, count))

			after, err := taskPIDs(ctx, c, n.namespace)
			if err != nil {
				b.Fatal(err)
			}
			for id, pid := range before {
				if after[id] != pid {
					changed++
					b.Errorf("container %s: PID %d before the agent restart, %d after (0: not running)", id, pid, after[id])
				}
			}
			if extra := len(after) - len(before); extra != 0 {
				b.Errorf("%d running tasks after the restart, %d before: %v", len(after), len(before), slices.Sorted(maps.Keys(after)))
			}
			if b.Failed() {
				b.FailNow()
			}
		}
	}
	b.StopTimer()
	p.stop()
	b.Logf("mcp (start to first reconcile): %v", mcp)
	b.Logf("first reconcile alone: %v", rec)
	b.Logf("raw (connect, list containers and tasks): %v", raw)
	m, r := median(mcp), median(raw)
	b.ReportMetric(ms(m), "mcp_ms")
	b.ReportMetric(ms(median(rec)), "reconcile_ms")
	b.ReportMetric(ms(r), "raw_ms")
	b.ReportMetric(float64(m)/float64(r), "ratio")
	b.ReportMetric(float64(changed), "restarts")
	b.ReportMetric(float64(len(mcp)), "runs")
	b.ReportMetric(0, "ns/op")
}

// restartAgent starts the agent and waits for its first reconcile; it
// returns the process, the time from start to the end of that reconcile,
// and the reconcile's own duration.
func restartAgent(b *testing.B, ctx context.Context, n *node, bin string) (*agentProc, time.Duration, time.Duration) {
	b.Helper()
	c := api.NewClient(n.socket())
	t0 := time.Now()
	p := n.startAgent(bin)
	for {
		// Status answers once the socket is bound, before the first
		// reconcile; LastReconcile stays zero until that one finishes.
		st, err := c.Status(ctx)
		// (A reconcile started before t0 would be the old process's.)
		if lr := st.LastReconcile; err == nil && !lr.Finished.IsZero() && !lr.Started.Before(t0) {
			if lr.Result != agent.ResultOK || lr.Steps != 0 {
				b.Fatalf("first reconcile after the restart: %+v (want ok, no steps)\n%s", lr, n.logTail())
			}
			return p, lr.Finished.Sub(t0), lr.Finished.Sub(lr.Started)
		}
		select {
		case <-ctx.Done():
			b.Fatalf("no reconcile after the restart: %v\n%s", ctx.Err(), n.logTail())
		case <-p.exited:
			b.Fatalf("agent exited after the restart\n%s", n.logTail())
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// rawListing is the raw limit of a restart: a new raw containerd client
// lists the namespace's containers and tasks.
func rawListing(b *testing.B, ctx context.Context, address, ns string, want int) time.Duration {
	b.Helper()
	t0 := time.Now()
	c, err := client.New(address)
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	cs, err := c.ContainerService().List(namespaces.WithNamespace(ctx, ns))
	if err != nil {
		b.Fatal(err)
	}
	pids, err := taskPIDs(ctx, c, ns)
	d := time.Since(t0)
	if err != nil {
		b.Fatal(err)
	}
	if len(cs) != want || len(pids) != want {
		b.Fatalf("raw listing: %d containers, %d running tasks, want %d", len(cs), len(pids), want)
	}
	return d
}
