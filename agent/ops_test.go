package agent

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"metacircular.net/mcp/api"
	"metacircular.net/mcp/internal/testenv"
	"metacircular.net/mcp/registry"
)

// opsNode is a test node whose agent runs as the daemon (not --once), with
// metrics and the status page on loopback, so one agent's metrics add up
// across reconciles the way Prometheus would see them.
type opsNode struct {
	*testNode
	client              *api.Client
	metricsURL, pageURL string
}

func startOpsNode(t *testing.T) *opsNode {
	t.Helper()
	metricsAddr, pageAddr := freeAddr(t), freeAddr(t)
	n := newTestNode(t, withPollInterval("1h"), withConfig(fmt.Sprintf(`
[metrics]
listen = %q

[status_page]
listen = %q
refresh = "0s"
events = 50
`, metricsAddr, pageAddr)))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, err := Daemon(ctx, n.cfg, testLogger(t), false)
		done <- err
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("agent: %v", err)
			}
		case <-time.After(time.Minute):
			t.Error("agent did not stop within a minute")
		}
	})
	o := &opsNode{testNode: n, client: api.NewClient(n.cfg.API.Socket),
		metricsURL: "http://" + metricsAddr + "/metrics", pageURL: "http://" + pageAddr + "/"}
	deadline := time.Now().Add(time.Minute)
	for {
		if _, err := o.client.Status(ctx); err == nil {
			break
		} else if time.Now().After(deadline) {
			t.Fatalf("the agent's API did not answer within a minute: %v", err)
		}
		select {
		case err := <-done:
			t.Fatalf("agent stopped at start: %v", err)
		case <-time.After(50 * time.Millisecond):
		}
	}
	return o
}

func (o *opsNode) sync(want string) api.SyncResult {
	o.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	res, err := o.client.Sync(ctx)
	if err != nil {
		o.t.Fatalf("sync: %v", err)
	}
	if res.Reconcile.Result != want {
		o.t.Fatalf("reconcile result = %q (%s), want %q", res.Reconcile.Result, res.Reconcile.Error, want)
	}
	return res
}

// events reads the whole history through the API, as `mcp events` does.
func (o *opsNode) events() []api.Event {
	o.t.Helper()
	return allEvents(o.t, o.client)
}

// allEvents is every event c's agent keeps, oldest first.
func allEvents(t *testing.T, c *api.Client) []api.Event {
	t.Helper()
	s, err := c.Events(context.Background(), api.EventOptions{Last: -1})
	if err != nil {
		t.Fatalf("events: %v", err)
	}
	defer s.Close()
	var out []api.Event
	for {
		e, err := s.Next()
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, e)
	}
}

// scrape fetches /metrics as Prometheus would.
func (o *opsNode) scrape() scraped {
	o.t.Helper()
	resp, err := http.Get(o.metricsURL)
	if err != nil {
		o.t.Fatalf("scrape: %v", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		o.t.Fatalf("scrape: %s", resp.Status)
	}
	var s scraped
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		if line := sc.Text(); line != "" && !strings.HasPrefix(line, "#") {
			s = append(s, line)
		}
	}
	return s
}

// scraped is the sample lines of one scrape in the text format.
type scraped []string

// sum adds up the samples of name whose labels include every k="v" given.
func (s scraped) sum(name string, labels ...string) float64 {
	var total float64
	for _, line := range s {
		series, value, ok := strings.Cut(line, " ")
		if !ok {
			continue
		}
		metric, rest, _ := strings.Cut(series, "{")
		if metric != name {
			continue
		}
		match := true
		for i := 0; i+1 < len(labels); i += 2 {
			if !strings.Contains(rest, labels[i]+`="`+labels[i+1]+`"`) {
				match = false
			}
		}
		if !match {
			continue
		}
		v, err := strconv.ParseFloat(strings.Fields(value)[0], 64)
		if err == nil {
			total += v
		}
	}
	return total
}

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

func kinds(evs []api.Event, service string) []string {
	var out []string
	for _, e := range evs {
		if e.Service == service {
			out = append(out, e.Kind)
		}
	}
	return out
}

// A deploy, a failure and a drift repair each show up in the metrics, the
// event history (GET /v1/events) and the status page, the last checked in
// headless Chromium.
func TestOpsShowDeployFailureDriftRepair(t *testing.T) {
	o := startOpsNode(t)
	img := testenv.TestImage(t, o.registry, testenv.UniqueRepo("web"), "v1")

	// Deploy.
	o.push(map[string]string{"mcp.toml": o.platform(), "services/web.toml": service("web", img)}, "deploy web")
	res := o.sync(ResultOK)
	deployCommit := res.Reconcile.Commit

	// Failure: an image that does not exist, next to the running web.
	missing := o.registry + "/mcptest/" + testenv.RandomID(6) + ":v1"
	o.push(map[string]string{"services/nope.toml": service("nope", missing)}, "nope, with an image nobody pushed")
	o.sync(ResultPartial)
	// The same failure again is not a new event.
	o.sync(ResultPartial)

	// Drift: web's container disappears behind mcp's back; the next
	// reconcile's converge pass recreates it.
	ctx := context.Background()
	if err := o.driver().Remove(ctx, "web.web.a", time.Second); err != nil {
		t.Fatalf("remove web's container behind mcp's back: %v", err)
	}
	o.sync(ResultPartial) // nope still fails
	if c := o.containers()["web.web.a"]; c.PID == 0 {
		t.Fatalf("web's container was not recreated: %+v", c)
	}

	// Events.
	evs := o.events()
	web := strings.Join(kinds(evs, "web"), ",")
	if !strings.HasPrefix(web, registry.EventDeploy) || !strings.Contains(web, registry.EventDrift) {
		t.Errorf("web's events = %s, want a deploy then a drift repair", web)
	}
	if got := kinds(evs, "nope"); len(got) == 0 || got[0] != registry.EventFailure {
		t.Errorf("nope's events = %v, want a failure first", got)
	}
	failures := 0
	for _, e := range evs {
		if e.Service == "nope" && e.Kind == registry.EventFailure && e.Commit != "" {
			failures++
		}
		if e.Service == "web" && (e.Kind == registry.EventDeploy || e.Kind == registry.EventDrift) && e.Commit != deployCommit {
			t.Errorf("%s event commit = %q, want web's deployed commit %q", e.Kind, e.Commit, deployCommit)
		}
	}
	if failures != 1 {
		t.Errorf("nope's failure was recorded %d times over three failing reconciles, want once: %+v", failures, evs)
	}
	// ?after= skips what a follower has seen.
	s, err := o.client.Events(ctx, api.EventOptions{After: evs[len(evs)-1].Seq, Last: -1})
	if err != nil {
		t.Fatal(err)
	}
	if e, err := s.Next(); !errors.Is(err, io.EOF) {
		t.Errorf("events after the last one: %+v, %v; want none", e, err)
	}
	s.Close()

	// Metrics.
	m := o.scrape()
	checks := []struct {
		what string
		got  float64
		ok   func(float64) bool
	}{
		{"reconciles ok", m.sum("mcp_reconciles_total", "result", "ok"), func(v float64) bool { return v >= 1 }},
		// Three syncs while nope fails; the watcher may add reconciles of
		// its own after each push.
		{"reconciles partial", m.sum("mcp_reconciles_total", "result", "partial"), func(v float64) bool { return v >= 3 }},
		{"reconcile durations observed", m.sum("mcp_reconcile_duration_seconds_count"), func(v float64) bool { return v >= 4 }},
		{"container steps done", m.sum("mcp_plan_steps_total", "kind", "container", "result", "done"), func(v float64) bool { return v >= 1 }},
		{"image steps failed", m.sum("mcp_plan_steps_total", "kind", "image", "result", "failed"), func(v float64) bool { return v >= 1 }},
		{"fetches timed", m.sum("mcp_sync_fetch_duration_seconds_count"), func(v float64) bool { return v >= 4 }},
		// The daemon's first reconcile ran before the first push: the
		// branch did not exist yet.
		{"fetch failures", m.sum("mcp_sync_fetch_failures_total"), func(v float64) bool { return v >= 1 }},
		{"applied commit time", m.sum("mcp_applied_commit_timestamp_seconds"), func(v float64) bool { return v > 1e9 }},
		{"drift repairs of web's container", m.sum("mcp_drift_repairs_total", "service", "web", "resource", "container"), func(v float64) bool { return v == 1 }},
		{"services running", m.sum("mcp_services", "state", "running"), func(v float64) bool { return v == 1 }},
		{"services failed", m.sum("mcp_services", "state", "failed"), func(v float64) bool { return v == 1 }},
		{"deploy events", m.sum("mcp_events_total", "kind", "deploy"), func(v float64) bool { return v >= 1 }},
		{"failure events", m.sum("mcp_events_total", "kind", "failure"), func(v float64) bool { return v >= 1 }},
		{"drift events", m.sum("mcp_events_total", "kind", "drift"), func(v float64) bool { return v >= 1 }},
		{"loop idle", m.sum("mcp_agent_state", "state", "idle"), func(v float64) bool { return v == 1 }},
		{"build info", m.sum("mcp_build_info"), func(v float64) bool { return v == 1 }},
	}
	for _, c := range checks {
		if !c.ok(c.got) {
			t.Errorf("metrics: %s = %v", c.what, c.got)
		}
	}
	if t.Failed() {
		t.Logf("scrape:\n%s", strings.Join(m, "\n"))
	}

	// The status page, in a real browser.
	b := testenv.Chromium(t)
	dom := b.DOM(ctx, o.pageURL)
	for _, want := range []string{
		`<span id="node">n1</span>`, `id="service-web"`, `id="component-web-web"`, `id="service-nope"`,
		"failed", "running", "drift repaired: recreated a missing container", "web deployed", "nope failed: ",
		short(deployCommit),
	} {
		if !strings.Contains(dom, want) {
			t.Errorf("status page lacks %q", want)
		}
	}
	if t.Failed() {
		t.Logf("status page DOM:\n%s", dom)
	}
	shot := b.Screenshot(ctx, o.pageURL, 1280, 900)
	colours, nonWhite, err := testenv.PNGStats(shot)
	if err != nil {
		t.Fatal(err)
	}
	if dir := os.Getenv("MCP_TEST_SCREENSHOTS"); dir != "" {
		_ = os.WriteFile(filepath.Join(dir, t.Name()+".png"), shot, 0o644)
	}
	if colours < 20 || nonWhite < 0.05 {
		t.Errorf("status page screenshot looks blank: %d colours, %.1f%% non-white", colours, 100*nonWhite)
	}
}

// TestOpsShowRevert: a failed update is reverted to the previous version,
// and the events, the metrics and the status page say so.
func TestOpsShowRevert(t *testing.T) {
	o := startOpsNode(t)
	repo := testenv.UniqueRepo("web")
	v1 := testenv.TestImage(t, o.registry, repo, "v1")
	v2 := testenv.TestImage(t, o.registry, repo, "v2", testenv.WithNoListen())
	// A short health deadline so the bad version is given up quickly.
	health := "\n[components.health]\ninterval = \"200ms\"\ntimeout = \"200ms\"\nstart_period = \"1s\"\nunhealthy_threshold = 2\n"

	o.push(map[string]string{"mcp.toml": o.platform(), "services/web.toml": service("web", v1) + health}, "web v1")
	o.sync(ResultOK)
	o.push(map[string]string{"services/web.toml": service("web", v2) + health}, "web v2, which never listens")
	o.sync(ResultPartial)

	st, err := o.client.Status(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	svc, _ := st.Service("web")
	if len(svc.Components) != 1 || svc.Components[0].Version != "v1" {
		t.Fatalf("after the revert web is %+v, want v1 deployed", svc)
	}
	if body := get(t, svc.Components[0].Ports["default"]); !strings.Contains(body, "version=v1") {
		t.Fatalf("after the revert web answered %q, want v1 back", body)
	}
	evs := kinds(o.events(), "web")
	if !slices.Contains(evs, registry.EventRevert) {
		t.Errorf("web's events = %v, want a revert", evs)
	}
	m := o.scrape()
	if got := m.sum("mcp_events_total", "kind", registry.EventRevert); got != 1 {
		t.Errorf("mcp_events_total{kind=revert} = %v, want 1", got)
	}
	if got := m.sum("mcp_quarantined"); got < 1 {
		t.Errorf("mcp_quarantined = %v, want the reverted commit quarantined", got)
	}
	dom := testenv.Chromium(t).DOM(context.Background(), o.pageURL)
	if !strings.Contains(dom, "revert") {
		t.Errorf("the status page does not show the revert:\n%s", dom)
	}
}
