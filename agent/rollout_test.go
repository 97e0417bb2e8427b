package agent

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"metacircular.net/mcp/api"
	"metacircular.net/mcp/executor"
	"metacircular.net/mcp/executor/haproxy"
	"metacircular.net/mcp/executor/routertest"
	"metacircular.net/mcp/internal/testenv"
	"metacircular.net/mcp/registry"
)

// webService is an l7 service with an optional [components.health] body
// and top-level keys (strategy, after).
func (n *ingressNode) webService(name, image, top, health string) string {
	s := fmt.Sprintf("name = %q\nnode = \"n1\"\n%s\n[[components]]\nname = %q\nimage = %q\n\n[[components.routes]]\nport = %d\nmode = \"l7\"\n",
		name, top, name, image, n.l7)
	if health != "" {
		s += "\n[components.health]\n" + health
	}
	return s
}

// fastHTTPHealth is a check with a 2s rollout deadline: a bad version is
// found out quickly.
const fastHTTPHealth = `type = "http"
path = "/healthz"
interval = "500ms"
timeout = "400ms"
unhealthy_threshold = 3
`

// loadTally counts what the load clients saw.
type loadTally struct {
	ok, failed atomic.Int64
	mu         sync.Mutex
	versions   map[string]int64
	errors     []string
}

func (l *loadTally) seen(version string) int64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.versions[version]
}

// loadThrough runs clients against https://host:port/ through the proxy
// until the returned stop is called: half keep one connection alive, half
// open a fresh connection per request. Every request is counted. The load
// is bounded: loopback only, a 2 ms pause between a client's requests, at
// most 20000 requests per client and two minutes.
func loadThrough(t *testing.T, clients, port int, host string, roots *tls.Config) (tally *loadTally, stop func()) {
	tally = &loadTally{versions: map[string]int64{}}
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	var wg sync.WaitGroup
	for i := range clients {
		keepAlive := i%2 == 0
		tr := &http.Transport{
			TLSClientConfig: roots.Clone(),
			DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
				var d net.Dialer
				return d.DialContext(ctx, network, "127.0.0.1:"+strconv.Itoa(port))
			},
			DisableKeepAlives:   !keepAlive,
			MaxIdleConnsPerHost: 1,
		}
		client := &http.Client{Transport: tr, Timeout: 10 * time.Second}
		url := "https://" + net.JoinHostPort(host, strconv.Itoa(port)) + "/"
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer tr.CloseIdleConnections()
			for range 20000 {
				if ctx.Err() != nil {
					return
				}
				req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
				resp, err := client.Do(req)
				if err != nil {
					if ctx.Err() != nil {
						return // stopped: not a request the service failed
					}
					tally.failed.Add(1)
					tally.mu.Lock()
					tally.errors = append(tally.errors, err.Error())
					tally.mu.Unlock()
					continue
				}
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					tally.failed.Add(1)
					tally.mu.Lock()
					tally.errors = append(tally.errors, fmt.Sprintf("%d %s", resp.StatusCode, strings.TrimSpace(string(b))))
					tally.mu.Unlock()
					continue
				}
				tally.ok.Add(1)
				v := "?"
				if _, after, ok := strings.Cut(string(b), "version="); ok {
					v, _, _ = strings.Cut(after, " ")
				}
				tally.mu.Lock()
				tally.versions[v]++
				tally.mu.Unlock()
				time.Sleep(2 * time.Millisecond)
			}
		}()
	}
	return tally, func() { cancel(); wg.Wait() }
}

// mcpCert is the chain mcp's certificate steps put in the proxy's
// directory for host.
func (n *ingressNode) mcpCert(t *testing.T, host string) *routertest.Chain {
	c := fileChain(t, filepath.Join(n.hostRoot, executor.DefaultCertDir, host+".pem"))
	return &c
}

func clientTLS(host string, c *routertest.Chain) *tls.Config {
	return &tls.Config{ServerName: host, RootCAs: c.Roots}
}

// TestBlueGreenUnderLoad: a blue-green update of an HTTP service through a
// real haproxy loses no request while four clients (two on kept-alive
// connections, two opening a connection per request) load it for the whole
// update; both versions are seen serving; the service ends in slot b with
// the old container gone.
func TestBlueGreenUnderLoad(t *testing.T) {
	n := newIngressNode(t)
	repo := testenv.UniqueRepo("bluegreen")
	v1 := testenv.TestImage(t, n.registry, repo, "v1")
	v2 := testenv.TestImage(t, n.registry, repo, "v2", testenv.WithStartDelay(time.Second))
	host := "web.svc.mcp.test.internal"
	n.push(map[string]string{"mcp.toml": n.platform(), "services/web.toml": n.webService("web", v1, "", fastHTTPHealth)}, "web v1")
	wantResult(t, n.once(), ResultOK)
	roots := n.mcpCert(t, host)

	tally, stop := loadThrough(t, 4, n.l7, host, clientTLS(host, roots))
	waitFor(t, 10*time.Second, "the load to reach v1", func() bool { return tally.seen("v1") > 20 })
	n.push(map[string]string{"services/web.toml": n.webService("web", v2, "", fastHTTPHealth)}, "web v2")
	out := n.once()
	waitFor(t, 10*time.Second, "v2 to serve under load", func() bool { return tally.seen("v2") > 20 })
	stop()
	wantResult(t, out, ResultOK)
	t.Logf("requests through haproxy during the blue-green update: %d ok (v1 %d, v2 %d), %d failed",
		tally.ok.Load(), tally.seen("v1"), tally.seen("v2"), tally.failed.Load())
	if f := tally.failed.Load(); f != 0 {
		t.Fatalf("%d requests failed during the blue-green update: %v", f, tally.errors)
	}

	// The plan moved the service: new slot, health, route, old slot gone.
	var ids []string
	for _, st := range out.Plan.Steps {
		ids = append(ids, st.ID)
	}
	if got := strings.Join(ids, " "); !strings.Contains(got, "web/web/container/b web/web/health/b web/web/route/default web/web/container/a") {
		t.Fatalf("plan steps %s, want the blue-green sequence", got)
	}
	if slot := n.snapshot().Services["web"].Components["web"].ActiveSlot; slot != registry.SlotB {
		t.Fatalf("active slot %d after the update, want b", slot)
	}
	cs := n.containers()
	if _, ok := cs["web.web.a"]; ok {
		t.Fatal("the old slot's container still exists after the update")
	}
	if c := cs["web.web.b"]; c.Status != executor.StatusRunning {
		t.Fatalf("web.web.b: %+v", c)
	}
	// A second update goes back to slot a, also without loss.
	tally, stop = loadThrough(t, 4, n.l7, host, clientTLS(host, roots))
	n.push(map[string]string{"services/web.toml": n.webService("web", v1, "", fastHTTPHealth)}, "web back to v1")
	wantResult(t, n.once(), ResultOK)
	waitFor(t, 10*time.Second, "v1 to serve again", func() bool { return tally.seen("v1") > 20 })
	stop()
	t.Logf("requests during the update back to slot a: %d ok, %d failed", tally.ok.Load(), tally.failed.Load())
	if f := tally.failed.Load(); f != 0 {
		t.Fatalf("%d requests failed on the way back: %v", f, tally.errors)
	}
	if slot := n.snapshot().Services["web"].Components["web"].ActiveSlot; slot != registry.SlotA {
		t.Fatalf("active slot %d, want a", slot)
	}
}

// TestRollbackUnhealthy: a new version whose health check never passes is
// rolled back by itself: under blue-green the old version serves every
// request throughout, the (service, definition) is quarantined and
// reported (status, events), the next reconcile leaves it alone, and the
// next good commit deploys.
func TestRollbackUnhealthy(t *testing.T) {
	n := newIngressNode(t)
	repo := testenv.UniqueRepo("rollback")
	v1 := testenv.TestImage(t, n.registry, repo, "v1")
	bad := testenv.TestImage(t, n.registry, repo, "v2", testenv.WithUnhealthy())
	v3 := testenv.TestImage(t, n.registry, repo, "v3")
	host := "web.svc.mcp.test.internal"
	n.push(map[string]string{"mcp.toml": n.platform(), "services/web.toml": n.webService("web", v1, "", fastHTTPHealth)}, "web v1")
	wantResult(t, n.once(), ResultOK)
	roots := n.mcpCert(t, host)

	tally, stop := loadThrough(t, 4, n.l7, host, clientTLS(host, roots))
	n.push(map[string]string{"services/web.toml": n.webService("web", bad, "", fastHTTPHealth)}, "web v2, whose /healthz fails")
	out := n.once()
	time.Sleep(300 * time.Millisecond)
	stop()
	t.Logf("requests during the failed rollout: %d ok (v1 %d, v2 %d), %d failed",
		tally.ok.Load(), tally.seen("v1"), tally.seen("v2"), tally.failed.Load())
	wantResult(t, out, ResultPartial)
	if tally.failed.Load() != 0 || tally.seen("v2") != 0 || tally.seen("v1") == 0 {
		t.Fatalf("the old version did not serve throughout: %d failed, v2 seen %d times: %v", tally.failed.Load(), tally.seen("v2"), tally.errors)
	}
	if len(out.Services) != 1 || out.Services[0].FailedStep != "web/web/health/b" {
		t.Fatalf("outcome %+v, want web failed at its health wait", out.Services)
	}
	q := n.quarantined()
	if len(q) != 1 || q[0].Service != "web" || !strings.Contains(q[0].Reason, "rolled back") ||
		!strings.Contains(q[0].Reason, "GET /healthz answered 503") || !strings.Contains(q[0].Reason, "never stopped (blue-green)") {
		t.Fatalf("quarantine %+v", q)
	}
	if c := n.containers(); c["web.web.b"].ID != "" || c["web.web.a"].Status != executor.StatusRunning {
		t.Fatalf("after the rollback: %v", c)
	}
	if d := n.snapshot().Services["web"]; d.Components["web"].ActiveSlot != registry.SlotA || d.Spec.Components[0].Image != v1 {
		t.Fatalf("the registry moved: %+v", d)
	}
	// The quarantined commit is not retried: the next reconcile leaves
	// web as deployed, and status says why.
	again := n.once()
	if stepCount(again.Plan) != 0 || !strings.Contains(again.Err, "quarantined") {
		t.Fatalf("second reconcile: %d steps, %q", stepCount(again.Plan), again.Err)
	}
	reg, err := registry.Open(n.cfg.RegistryPath(), registry.ReadOnly())
	if err != nil {
		t.Fatal(err)
	}
	evs, err := reg.Events(t.Context(), 0)
	reg.Close()
	if err != nil {
		t.Fatal(err)
	}
	reverts := 0
	for _, e := range evs {
		if e.Kind == registry.EventRevert && e.Service == "web" {
			reverts++
		}
	}
	if reverts != 1 {
		t.Fatalf("%d revert events, want 1", reverts)
	}
	c := n.startDaemon()
	st, err := c.Status(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	svc, _ := st.Service("web")
	if svc.State != api.StateQuarantined || !strings.Contains(svc.Error, "rolled back") {
		t.Fatalf("status of web: %s %q", svc.State, svc.Error)
	}

	// The next commit that changes the service is tried normally.
	n.push(map[string]string{"services/web.toml": n.webService("web", v3, "", fastHTTPHealth)}, "web v3")
	res, err := c.Sync(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if res.Reconcile.Result != api.ResultOK {
		t.Fatalf("v3: %+v", res.Reconcile)
	}
	mustThrough(t, n.l7, host, roots, "version=v3")
	if st, err := c.Status(t.Context()); err != nil || len(st.Quarantine) != 0 {
		t.Fatalf("quarantine not lifted by the new commit: %+v %v", st.Quarantine, err)
	}
}

// Under replace (no proxy on the node), a new version that exits at start
// is removed and the previous one restarted from the registry, on the same
// port; the definition is quarantined.
func TestRollbackReplace(t *testing.T) {
	n := newTestNode(t)
	repo := testenv.UniqueRepo("rollback-replace")
	v1 := testenv.TestImage(t, n.registry, repo, "v1")
	crash := testenv.TestImage(t, n.registry, repo, "v2", testenv.WithCrash())
	n.push(map[string]string{"mcp.toml": n.platform(), "services/web.toml": service("web", v1)}, "web v1")
	wantResult(t, n.once(), ResultOK)
	port := n.port("web", "web", "default")
	if !strings.Contains(get(t, port), "version=v1") {
		t.Fatal("v1 does not serve")
	}
	n.push(map[string]string{"services/web.toml": service("web", crash)}, "web v2 crashes at start")
	out := n.once()
	wantResult(t, out, ResultPartial)
	if !strings.Contains(out.Services[0].Err.Error(), "exited before it became healthy") {
		t.Fatalf("failure %v, want the exit seen by the health wait", out.Services[0].Err)
	}
	if !repaired(out, "web.web.a") {
		t.Fatalf("the previous version was not restarted by the converge pass: %+v", out.Repairs)
	}
	if got := get(t, port); !strings.Contains(got, "version=v1") {
		t.Fatalf("after the revert the port answers %q, want v1", got)
	}
	if q := n.quarantined(); len(q) != 1 || !strings.Contains(q[0].Reason, "restarted from the registry (replace)") {
		t.Fatalf("quarantine %+v", q)
	}
}

// TestAfterOrdering: on a fresh node three services, each after the next
// (app after api after db), are deployed in dependency order, each only
// once the one before is healthy; when the first cannot be deployed, the
// others wait and status says for what; once it is fixed, all converge.
func TestAfterOrdering(t *testing.T) {
	n := newTestNode(t)
	repo := testenv.UniqueRepo("after")
	good := testenv.TestImage(t, n.registry, repo, "v1", testenv.WithStartDelay(500*time.Millisecond))
	svc := func(name, image string, after ...string) string {
		s := service(name, image)
		if len(after) > 0 {
			s = strings.Replace(s, "node = \"n1\"\n", "node = \"n1\"\nafter = [\""+strings.Join(after, "\", \"")+"\"]\n", 1)
		}
		return s
	}
	// Names chosen so that plain name order would be the wrong order.
	files := map[string]string{
		"mcp.toml":           n.platform(),
		"services/app.toml":  svc("app", good, "api"),
		"services/api.toml":  svc("api", good, "db"),
		"services/db.toml":   svc("db", n.registry+"/mcptest/never-pushed:v1"),
		"services/zzz.toml":  svc("zzz", good),
		"services/base.toml": svc("base", good),
	}
	n.push(files, "db cannot be pulled; api and app wait for it")
	out := n.once()
	wantResult(t, out, ResultPartial)
	waits := map[string]string{}
	for _, s := range out.Services {
		waits[s.Service] = s.Waiting
	}
	if !strings.Contains(waits["api"], "db (its update failed)") || !strings.Contains(waits["app"], "api (itself waiting for db") {
		t.Fatalf("waits %v", waits)
	}
	if !strings.Contains(out.Err, "api waits for db") {
		t.Fatalf("reconcile reason %q", out.Err)
	}
	if _, ok := n.snapshot().Services["app"]; ok {
		t.Fatal("app was deployed although api waits")
	}
	if _, ok := n.snapshot().Services["zzz"]; !ok {
		t.Fatal("a service without after was held back")
	}

	files["services/db.toml"] = svc("db", good)
	n.push(map[string]string{"services/db.toml": files["services/db.toml"]}, "db fixed")
	out = n.once()
	wantResult(t, out, ResultOK)
	// Each service's first step starts only after the health wait of the
	// one it is after finished: the plan orders them, and the executor
	// runs them in that order.
	var order []string
	for _, s := range out.Services {
		order = append(order, s.Service)
	}
	if got := strings.Join(order, " "); got != "db api app" {
		t.Fatalf("services applied in the order %q, want db api app", got)
	}
	pos := map[string]int{}
	for i, st := range out.Plan.Steps {
		pos[st.ID] = i
	}
	for _, pair := range [][2]string{{"db/db/health/a", "api/api/port/default/a"}, {"api/api/health/a", "app/app/port/default/a"}} {
		if pos[pair[0]] >= pos[pair[1]] {
			t.Fatalf("%s does not come before %s in the plan", pair[0], pair[1])
		}
	}
	for _, name := range []string{"db", "api", "app"} {
		if !strings.Contains(get(t, n.port(name, name, "default")), "version=v1") {
			t.Fatalf("%s does not serve", name)
		}
	}
}

// TestDriftRepaired: on a running daemon, a container killed by hand is
// restarted, one deleted by hand is recreated, a route removed from the
// proxy by hand is restored, and each shows up in status as repaired drift.
func TestDriftRepaired(t *testing.T) {
	n := newIngressNode(t)
	repo := testenv.UniqueRepo("drift")
	v1 := testenv.TestImage(t, n.registry, repo, "v1")
	host := "web.svc.mcp.test.internal"
	n.push(map[string]string{"mcp.toml": n.platform(), "services/web.toml": n.webService("web", v1, "", "")}, "web v1")
	c := n.startDaemon()
	waitFor(t, 60*time.Second, "web to be deployed", func() bool {
		st, err := c.Status(t.Context())
		svc, _ := st.Service("web")
		return err == nil && svc.State == api.StateRunning
	})
	roots := n.mcpCert(t, host)
	status := func() api.ServiceStatus {
		st, err := c.Status(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		svc, _ := st.Service("web")
		return svc
	}
	driftSeen := func(what string) bool {
		for _, d := range status().Drift {
			if d.Repaired && strings.Contains(d.What, what) {
				return true
			}
		}
		return false
	}
	healthy := func() bool {
		svc := status()
		return svc.State == api.StateRunning && len(svc.Components) == 1 && svc.Components[0].Health != nil &&
			svc.Components[0].Health.State == "healthy"
	}
	waitFor(t, 30*time.Second, "web healthy in status", healthy)

	t.Run("killed by hand: restarted", func(t *testing.T) {
		ct := n.containers()["web.web.a"]
		if err := syscall.Kill(int(ct.PID), syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		waitFor(t, 30*time.Second, "the restart to show as repaired drift", func() bool { return driftSeen("restarted by its restart policy") })
		waitFor(t, 30*time.Second, "web healthy again", healthy)
		mustThrough(t, n.l7, host, roots, "version=v1")
	})
	t.Run("deleted by hand: recreated", func(t *testing.T) {
		if err := n.driver().Remove(t.Context(), "web.web.a", time.Second); err != nil {
			t.Fatal(err)
		}
		waitFor(t, 30*time.Second, "the recreation to show as repaired drift", func() bool { return driftSeen("recreated a missing container") })
		waitFor(t, 30*time.Second, "web healthy again", healthy)
		mustThrough(t, n.l7, host, roots, "version=v1")
	})
	t.Run("route removed by hand: restored", func(t *testing.T) {
		out, err := n.hap.Command(t.Context(), fmt.Sprintf("del map %s %s", filepath.Join(n.hcfg.Dir, "l7-"+strconv.Itoa(n.l7)+".map"), host))
		if err != nil || out != "" {
			t.Fatalf("del map: %q %v", out, err)
		}
		waitFor(t, 30*time.Second, "the route to show as repaired drift", func() bool { return driftSeen("restored a route missing from the proxy") })
		mustThrough(t, n.l7, host, roots, "version=v1")
	})
	for _, d := range status().Drift {
		t.Logf("drift in status: %s %s: %s (repaired %v)", d.Time.Format(time.TimeOnly), d.Resource, d.What, d.Repaired)
	}
}

// TestNewCommitInterruptsHealthWait: while a rollout waits for a new
// version that never becomes healthy (a long deadline), a newer commit
// cuts the wait short: the waiting version is undone without being
// quarantined, and the newer commit deploys at once, not after the
// deadline.
func TestNewCommitInterruptsHealthWait(t *testing.T) {
	n := newIngressNode(t)
	repo := testenv.UniqueRepo("interrupt")
	v1 := testenv.TestImage(t, n.registry, repo, "v1")
	stuck := testenv.TestImage(t, n.registry, repo, "v2", testenv.WithNoListen())
	v3 := testenv.TestImage(t, n.registry, repo, "v3")
	host := "web.svc.mcp.test.internal"
	// A 2-minute start period: without the interruption, v3 would wait
	// for v2's deadline.
	slow := "start_period = \"2m\"\ninterval = \"1s\"\ntimeout = \"500ms\"\n"
	n.push(map[string]string{"mcp.toml": n.platform(), "services/web.toml": n.webService("web", v1, "", slow)}, "web v1")
	c := n.startDaemon()
	waitFor(t, 60*time.Second, "v1 deployed", func() bool {
		st, err := c.Status(t.Context())
		svc, _ := st.Service("web")
		return err == nil && svc.State == api.StateRunning
	})
	roots := n.mcpCert(t, host)
	tally, stop := loadThrough(t, 4, n.l7, host, clientTLS(host, roots))
	defer stop()

	n.push(map[string]string{"services/web.toml": n.webService("web", stuck, "", slow)}, "web v2, which never listens")
	waitFor(t, 30*time.Second, "the rollout of v2 to wait for its health", func() bool {
		_, ok := n.containers()["web.web.b"]
		return ok
	})
	start := time.Now()
	n.push(map[string]string{"services/web.toml": n.webService("web", v3, "", slow)}, "web v3")
	waitFor(t, 60*time.Second, "v3 to serve", func() bool { return tally.seen("v3") > 10 })
	took := time.Since(start)
	stop()
	t.Logf("v3 served %s after its push; requests meanwhile: %d ok (v1 %d, v3 %d), %d failed",
		took.Round(time.Millisecond), tally.ok.Load(), tally.seen("v1"), tally.seen("v3"), tally.failed.Load())
	if took > 45*time.Second {
		t.Fatalf("v3 took %s: the health wait of v2 was not interrupted", took)
	}
	if tally.failed.Load() != 0 || tally.seen("v2") != 0 {
		t.Fatalf("%d failed, v2 seen %d times: %v", tally.failed.Load(), tally.seen("v2"), tally.errors)
	}
	// The reconcile of v3 finishes (drain, old slot removed, recorded).
	var st api.Status
	waitFor(t, 30*time.Second, "web running v3 in status", func() bool {
		var err error
		st, err = c.Status(t.Context())
		svc, _ := st.Service("web")
		return err == nil && svc.State == api.StateRunning && svc.Components[0].Version == "v3"
	})
	if len(st.Quarantine) != 0 {
		t.Fatalf("an interrupted rollout was quarantined: %+v", st.Quarantine)
	}
}

// TestInactiveAndRemoved: active = false stops a service and removes its
// routes but keeps its data, leases and definition; removing its file
// undeploys it, and /srv/<service> is still kept.
func TestInactiveAndRemoved(t *testing.T) {
	n := newIngressNode(t)
	repo := testenv.UniqueRepo("inactive")
	v1 := testenv.TestImage(t, n.registry, repo, "v1")
	host := "web.svc.mcp.test.internal"
	n.push(map[string]string{"mcp.toml": n.platform(), "services/web.toml": n.webService("web", v1, "", "")}, "web v1")
	wantResult(t, n.once(), ResultOK)
	roots := n.mcpCert(t, host)
	mustThrough(t, n.l7, host, roots, "version=v1")
	data := filepath.Join(n.hostRoot, "srv", "web", "data.db")
	if err := os.WriteFile(data, []byte("precious"), 0o600); err != nil {
		t.Fatal(err)
	}
	routes := func() int {
		d, err := haproxy.New(n.hcfg)
		if err != nil {
			t.Fatal(err)
		}
		rs, err := d.List(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		return len(rs)
	}
	leases := len(n.snapshot().Leases)

	n.push(map[string]string{"services/web.toml": "active = false\n" + n.webService("web", v1, "", "")}, "web inactive")
	wantResult(t, n.once(), ResultOK)
	if _, ok := n.containers()["web.web.a"]; ok {
		t.Fatal("the container of an inactive service still exists")
	}
	if r := routes(); r != 0 {
		t.Fatalf("%d routes left for an inactive service", r)
	}
	snap := n.snapshot()
	if d, ok := snap.Services["web"]; !ok || d.Spec.Active || len(snap.Leases) != leases {
		t.Fatalf("inactive: deployed %v, leases %d (want %d kept)", ok, len(snap.Leases), leases)
	}
	if b, err := os.ReadFile(data); err != nil || string(b) != "precious" {
		t.Fatalf("data of an inactive service: %q %v", b, err)
	}

	n.push(map[string]string{"services/web.toml": n.webService("web", v1, "", "")}, "web active again")
	wantResult(t, n.once(), ResultOK)
	mustThrough(t, n.l7, host, roots, "version=v1")

	n.remove([]string{"services/web.toml"}, "web removed")
	out := n.once()
	if out.Plan == nil || out.Plan.Refused == "" {
		// The only service: removing it is refused unless allowed.
		t.Fatalf("removing the last service was not refused: %+v", out.Plan)
	}
	// Once another service is deployed, web's removal goes ahead (the
	// guard refuses a tree that replaces everything only once).
	n.push(map[string]string{"services/other.toml": n.webService("other", v1, "", "")}, "another service")
	n.once()
	wantResult(t, n.once(), ResultOK)
	if _, ok := n.snapshot().Services["web"]; ok {
		t.Fatal("web is still deployed after its file was removed")
	}
	if b, err := os.ReadFile(data); err != nil || string(b) != "precious" {
		t.Fatalf("data of a removed service: %q %v", b, err)
	}
}

// TestWatchLeavesStoppedTaskToSupervisor: the watch lists containers
// without their tasks (no shim is asked while all is well), so a health
// check of a container whose task has stopped fails; the watch then asks
// that one task, sees it stopped, and drops the result: a stopped task is
// the restart supervisor's to report ("its restart policy leaves it
// stopped"), not an unhealthy container.
func TestWatchLeavesStoppedTaskToSupervisor(t *testing.T) {
	n := newTestNode(t)
	img := testenv.TestImage(t, n.registry, testenv.UniqueRepo("stopped"), "v1")
	def := strings.Replace(service("web", img), "image = ", "restart = \"no\"\nimage = ", 1) +
		"\n[components.health]\ninterval = \"1s\"\ntimeout = \"500ms\"\nunhealthy_threshold = 1\n"
	n.push(map[string]string{"mcp.toml": n.platform(), "services/web.toml": def}, "web, restart no, 1s checks")
	c := n.startDaemon()
	web := func() api.ServiceStatus {
		st, err := c.Status(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		s, _ := st.Service("web")
		return s
	}
	waitFor(t, time.Minute, "web running and healthy", func() bool {
		s := web()
		return s.State == api.StateRunning && len(s.Components) == 1 && s.Components[0].Health != nil &&
			s.Components[0].Health.State == "healthy"
	})

	if err := syscall.Kill(int(n.containers()["web.web.a"].PID), syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	stoppedSeen := func() bool {
		for _, d := range web().Drift {
			if strings.Contains(d.What, "its restart policy leaves it stopped") {
				return true
			}
		}
		return false
	}
	waitFor(t, 30*time.Second, "the supervisor to report the stopped task", stoppedSeen)
	// A probe in the few milliseconds between the kill and the exit may
	// still count (the task ran); from here on none may. Several watch
	// ticks, each with a check due: the health record must not move.
	lastCheck := func(s api.ServiceStatus) time.Time {
		if len(s.Components) == 0 || s.Components[0].Health == nil {
			return time.Time{}
		}
		return s.Components[0].Health.LastCheck
	}
	before := lastCheck(web())
	time.Sleep(4 * time.Second)
	s := web()
	if after := lastCheck(s); !after.Equal(before) {
		t.Errorf("the watch kept checking the stopped container: last check %s, then %s (%+v)",
			before.Format(time.StampMilli), after.Format(time.StampMilli), s.Components[0].Health)
	}
	unhealthy := 0
	for _, d := range s.Drift {
		if strings.HasPrefix(d.What, "unhealthy") {
			unhealthy++
		}
	}
	if unhealthy > 1 {
		t.Errorf("the watch reported the stopped container unhealthy %d times: %+v", unhealthy, s.Drift)
	}
	if s.State != api.StateDegraded {
		t.Errorf("web with its task stopped: state %q, want %q", s.State, api.StateDegraded)
	}
}
