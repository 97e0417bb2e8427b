package bench

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"metacircular.net/mcp/api"
	"metacircular.net/mcp/internal/testenv"
	gitsync "metacircular.net/mcp/sync"
)

// BenchmarkPollHead is the cheapest part of a no-change poll,
// gitsync.Source.Head on a local bare repository holding a desired-state
// repo of 50 services, against `git ls-remote <bare> refs/heads/main` on
// the same repository, alternating one of each per iteration. ns/op is the
// pair; head_us, lsremote_us and ratio (head / ls-remote) are the result.
func BenchmarkPollHead(b *testing.B) {
	skipShort(b)
	r := testenv.GitRepo(b)
	n := &node{b: b, registry: "127.0.0.1:1"}
	r.Commit(n.services(50, "127.0.0.1:1/bench/none:v1"), "50 services")
	r.Push()
	src, err := gitsync.New(gitsync.Config{URL: r.Bare, CacheDir: filepath.Join(b.TempDir(), "cache")})
	if err != nil {
		b.Fatal(err)
	}
	ls := lsRemote(b, r)
	want := r.Head()
	ctx := b.Context()
	var head, raw time.Duration
	for b.Loop() {
		t0 := time.Now()
		h, err := src.Head(ctx)
		head += time.Since(t0)
		if err != nil || h != want {
			b.Fatalf("Head = %s, %v", h, err)
		}
		raw += ls()
	}
	b.ReportMetric(us(head)/float64(b.N), "head_us")
	b.ReportMetric(us(raw)/float64(b.N), "lsremote_us")
	b.ReportMetric(float64(head)/float64(raw), "ratio")
}

// BenchmarkPollReconcile is what a no-change poll really costs: a whole
// reconcile of the agent (daemon mode, real containerd, registry and git)
// with N services deployed and nothing to do, asked for through the API
// (POST /v1/sync, what `mcp sync` does), against `git ls-remote` on the
// same repository, alternating. reconcile_us is the agent's own duration
// of the reconcile (fetch check, spec load, plan, apply of an empty plan,
// converge against containerd, history record); sync_us is the API round
// trip around it, which is also ns/op (plus the service status it returns
// and the log rotation the loop does after each reconcile); ratio is
// reconcile / ls-remote, sync_ratio is sync / ls-remote.
func BenchmarkPollReconcile(b *testing.B) {
	skipShort(b)
	address, _ := testenv.Containerd(b)
	registry := testenv.Registry(b)
	img := testenv.TestImage(b, registry, testenv.UniqueRepo("bench/poll"), "v1")
	counts := []int{0, 10, envInt(b, "MCP_BENCH_SERVICES", 50)}
	if counts[2] <= 10 {
		counts = []int{0, counts[2]} // small runs (smoke) skip the middle size
	}
	for _, count := range counts {
		b.Run(fmt.Sprintf("services=%d", count), func(b *testing.B) {
			n := newNode(b, address, registry, "")
			n.repo.Commit(n.services(count, img), fmt.Sprintf("%d services", count))
			n.repo.Push()
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
			defer cancel()
			stop := n.startDaemon()
			defer stop()
			n.waitApplied(ctx, count, nil)
			c := api.NewClient(n.socket())
			ls := lsRemote(b, n.repo)
			var sync, rec, raw time.Duration
			for b.Loop() {
				t0 := time.Now()
				res, err := c.Sync(ctx)
				sync += time.Since(t0)
				b.StopTimer()
				if err != nil || res.Reconcile.Steps != 0 || res.Reconcile.Result != "ok" {
					b.Fatalf("sync: %v, %+v", err, res.Reconcile)
				}
				// The reconcile's own duration comes from the status
				// (last_reconcile), read outside the timing.
				st, err := c.Status(ctx)
				if err != nil || st.LastReconcile.Started.IsZero() || st.LastReconcile.Finished.IsZero() {
					b.Fatalf("status: %v, %+v", err, st.LastReconcile)
				}
				rec += st.LastReconcile.Finished.Sub(st.LastReconcile.Started)
				raw += ls()
				b.StartTimer()
			}
			b.ReportMetric(us(rec)/float64(b.N), "reconcile_us")
			b.ReportMetric(us(sync)/float64(b.N), "sync_us")
			b.ReportMetric(us(raw)/float64(b.N), "lsremote_us")
			b.ReportMetric(float64(rec)/float64(raw), "ratio")
			b.ReportMetric(float64(sync)/float64(raw), "sync_ratio")
		})
	}
}
