package bench

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/pkg/namespaces"

	"metacircular.net/mcp/internal/testenv"
)

// BenchmarkPushToServing is the time from the end of `git push` (to a
// local bare repository) to the first HTTP 200 of every deployed
// container, with the agent running as a daemon (its watcher sees the
// push at once), against the raw containerd client doing the same pull,
// create and start (testenv.RawRun) up to the same 200s. Two sizes:
// services=1, and services=N (MCP_BENCH_MANY, default 20): one push adding
// N services against raw doing N pull+create+start one after the other,
// which is how mcp applies a plan (service by service, executor.Apply).
// Every service has its own image (its own repository and tag, so its own
// config and digest, the same hello layer), for both sides.
//
// Both start cold: every run uses a fresh containerd namespace (the daemon
// shares no content across namespaces) and freshly pushed image
// repositories. Both sides poll the same number of ports (2N: mcp leases
// from a range of 2N; raw uses the first N of its 2N ports), one poller
// per port. The runs alternate, mcp then raw, so both see the same noise;
// MCP_BENCH_RUNS pairs per size (default 5; MCP_BENCH_RUNS_MANY for the N
// size, default 5) after one untimed warm-up pair, and the medians are
// reported; first_ms is the median time to the first service serving.
//
// Issue 3's target is ratio < 1.5 (mcp adds under 50% on top of raw
// containerd); it is reported, not asserted.
func BenchmarkPushToServing(b *testing.B) {
	skipShort(b)
	address, _ := testenv.Containerd(b)
	registry := testenv.Registry(b)
	c, err := client.New(address)
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	many := max(envInt(b, "MCP_BENCH_MANY", 20), 1)
	sizes := []struct{ count, runs int }{
		{1, max(envInt(b, "MCP_BENCH_RUNS", 5), 1)},
		{many, max(envInt(b, "MCP_BENCH_RUNS_MANY", 5), 1)},
	}
	for _, size := range sizes {
		b.Run(fmt.Sprintf("services=%d", size.count), func(b *testing.B) {
			// Warm what is not under test (the hello binary build, the
			// registry's first request, the go-git and containerd client
			// code paths) with one untimed pair.
			pushToServing(b, address, registry, size.count)
			rawToServing(b, c, registry, size.count)

			var mcp, raw []serving
			for b.Loop() {
				for range size.runs {
					mcp = append(mcp, pushToServing(b, address, registry, size.count))
					raw = append(raw, rawToServing(b, c, registry, size.count))
				}
			}
			b.StopTimer()
			report(b, mcp, raw)
		})
	}
}

// serving is one run: the time to the first and to the last service
// answering 200.
type serving struct{ first, all time.Duration }

func report(b *testing.B, mcp, raw []serving) {
	b.Helper()
	all := func(ss []serving) (a, f []time.Duration) {
		for _, s := range ss {
			a, f = append(a, s.all), append(f, s.first)
		}
		return a, f
	}
	mAll, mFirst := all(mcp)
	rAll, rFirst := all(raw)
	b.Logf("mcp runs: %v", mAll)
	b.Logf("raw runs: %v", rAll)
	m, r := median(mAll), median(rAll)
	b.ReportMetric(ms(m), "mcp_ms")
	b.ReportMetric(ms(r), "raw_ms")
	b.ReportMetric(float64(m)/float64(r), "ratio")
	b.ReportMetric(ms(median(mFirst)), "mcp_first_ms")
	b.ReportMetric(ms(median(rFirst)), "raw_first_ms")
	b.ReportMetric(float64(len(mcp)), "runs")
	// ns/op is the whole loop (setup included): not a result.
	b.ReportMetric(0, "ns/op")
}

// images pushes count fresh images (own repository and tag each) and
// returns their references and versions.
func images(b *testing.B, registry, prefix string, count int) (refs, versions []string) {
	b.Helper()
	for range count {
		tag := prefix + testenv.RandomID(4)
		refs = append(refs, testenv.TestImage(b, registry, testenv.UniqueRepo("bench/"+prefix), tag))
		versions = append(versions, tag)
	}
	return refs, versions
}

// pushToServing runs one cold deploy of count services through the agent
// and returns the times from the end of the push to the first and the
// last service answering 200.
func pushToServing(b *testing.B, address, registry string, count int) serving {
	b.Helper()
	// The agent leases from 2 ports per service; every port is polled.
	lo, hi := portRange(b, 2*count)
	n := newNode(b, address, registry, fmt.Sprintf("%d-%d", lo, hi))
	defer func() {
		if err := n.clean(); err != nil {
			b.Error(err)
		}
	}()
	refs, versions := images(b, registry, "p", count)
	n.repo.Commit(n.services(0, ""), "platform")
	n.repo.Push()

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	stop := n.startDaemon()
	defer stop()
	n.waitApplied(ctx, 0, nil)

	files := map[string]string{}
	for i, ref := range refs {
		name := fmt.Sprintf("web%03d", i)
		files["services/"+name+".toml"] = service(name, ref)
	}
	n.repo.Commit(files, fmt.Sprintf("deploy %d services", count))
	n.repo.Push()
	t0 := time.Now()
	first, all, err := allServing(ctx, versions, seq(lo, hi))
	if err != nil {
		b.Fatalf("mcp: %v\n%s", err, n.logTail())
	}
	return serving{first.Sub(t0), all.Sub(t0)}
}

// rawToServing runs count cold pull+create+start with the raw containerd
// client, one after the other, and returns the times to the first and the
// last 200.
func rawToServing(b *testing.B, c *client.Client, registry string, count int) serving {
	b.Helper()
	ns := "mcpbench-raw-" + testenv.RandomID(6)
	defer func() {
		if err := testenv.CleanNamespace(context.Background(), c, ns); err != nil {
			b.Error(err)
		}
	}()
	refs, versions := images(b, registry, "r", count)
	lo, hi := portRange(b, 2*count)
	ctx, cancel := context.WithTimeout(namespaces.WithNamespace(context.Background(), ns), 5*time.Minute)
	defer cancel()

	type result struct {
		first, all time.Time
		err        error
	}
	done := make(chan result, 1)
	t0 := time.Now()
	go func() {
		var r result
		r.first, r.all, r.err = allServing(ctx, versions, seq(lo, hi))
		done <- r
	}()
	var stops []func(context.Context) error
	defer func() {
		for _, stop := range stops {
			if err := stop(context.WithoutCancel(ctx)); err != nil {
				b.Error(err)
			}
		}
	}()
	for i, ref := range refs {
		stop, err := testenv.RawRun(ctx, c, ref, lo+i)
		if err != nil {
			cancel()
			<-done
			b.Fatalf("raw: %v", err)
		}
		stops = append(stops, stop)
	}
	r := <-done
	if r.err != nil {
		b.Fatalf("raw: %v", r.err)
	}
	return serving{r.first.Sub(t0), r.all.Sub(t0)}
}

// seq returns lo..hi.
func seq(lo, hi int) []int {
	var ps []int
	for p := lo; p <= hi; p++ {
		ps = append(ps, p)
	}
	return ps
}

// allServing polls every port, one poller each, until every version in
// versions has answered 200 ("hello version=<v> ...") on one of them, and
// returns when the first and the last did.
func allServing(ctx context.Context, versions []string, ports []int) (first, all time.Time, err error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	type seen struct {
		version string
		at      time.Time
	}
	ch := make(chan seen, len(ports))
	for _, p := range ports {
		go func() {
			body, err := testenv.WaitHTTP(ctx, fmt.Sprintf("http://127.0.0.1:%d/", p), "version=")
			if err == nil {
				ch <- seen{versionOf(body), time.Now()}
			}
		}()
	}
	want := make(map[string]bool, len(versions))
	for _, v := range versions {
		want[v] = true
	}
	for len(want) > 0 {
		select {
		case s := <-ch:
			if !want[s.version] {
				return first, all, fmt.Errorf("unexpected answer %q", s.version)
			}
			delete(want, s.version)
			if first.IsZero() {
				first = s.at
			}
			all = s.at
		case <-ctx.Done():
			return first, all, fmt.Errorf("%d of %d services not serving: %w", len(want), len(versions), ctx.Err())
		}
	}
	return first, all, nil
}

// versionOf reads v from hello's "hello version=<v> port=<p>".
func versionOf(body string) string {
	for f := range strings.FieldsSeq(body) {
		if v, ok := strings.CutPrefix(f, "version="); ok {
			return v
		}
	}
	return ""
}
