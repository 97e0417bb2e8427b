package metrics

import (
	"context"
	"errors"
	"io"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func scrape(t *testing.T, m *Metrics) string {
	t.Helper()
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	b, _ := io.ReadAll(rec.Body)
	return string(b)
}

func TestMetricsExposed(t *testing.T) {
	m := New("v1.2.3")
	at := time.Unix(1_800_000_000, 0)
	m.ObserveReconcile("ok", 1500*time.Millisecond, at)
	m.ObserveStep("container", "create", StepDone)
	m.ObserveStep("image", "create", StepFailed)
	m.ObserveFetch(10*time.Millisecond, nil)
	m.ObserveFetch(10*time.Millisecond, errors.New("unreachable"))
	m.SetAppliedCommitTime(at)
	m.ContainerRestarted("web", "api")
	m.SetCertificateExpiry("web", "web.example.org", at.Add(90*24*time.Hour))
	m.DriftRepaired("web", ResourceKind("web.api.a"))
	m.DriftRepaired("web", ResourceKind("web/api/default/a"))
	m.CommitQuarantined("untrusted", 1)
	m.EventRecorded("deploy")
	m.SetState(StateBackoff)
	m.SetBackoff(4 * time.Second)
	scrapes := 0
	m.OnScrape(func(context.Context) {
		scrapes++
		m.SetServices(map[string]int{"running": 2}, []string{"running", "failed"})
	})
	body := scrape(t, m)
	for _, want := range []string{
		`mcp_reconciles_total{result="ok"} 1`,
		`mcp_reconciles_total{result="failed"} 0`,
		`mcp_reconcile_duration_seconds_count{result="ok"} 1`,
		`mcp_plan_steps_total{action="create",kind="container",result="done"} 1`,
		`mcp_plan_steps_total{action="create",kind="image",result="failed"} 1`,
		`mcp_sync_fetch_duration_seconds_count 2`,
		`mcp_sync_fetch_failures_total 1`,
		`mcp_applied_commit_timestamp_seconds 1.8e+09`,
		`mcp_last_reconcile_timestamp_seconds{result="ok"} 1.8e+09`,
		`mcp_services{state="running"} 2`,
		`mcp_services{state="failed"} 0`,
		`mcp_container_restarts_total{component="api",service="web"} 1`,
		`mcp_certificate_expiry_timestamp_seconds{name="web.example.org",service="web"} 1.807776e+09`,
		`mcp_drift_repairs_total{resource="container",service="web"} 1`,
		`mcp_drift_repairs_total{resource="lease",service="web"} 1`,
		`mcp_quarantined_commits_total{reason="untrusted"} 1`,
		`mcp_quarantined 1`,
		`mcp_events_total{kind="deploy"} 1`,
		`mcp_agent_state{state="backoff"} 1`,
		`mcp_agent_state{state="idle"} 0`,
		`mcp_sync_backoff_seconds 4`,
		`mcp_build_info{goversion="go`,
		`go_goroutines`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("scrape lacks %q", want)
		}
	}
	if scrapes != 1 {
		t.Errorf("OnScrape hooks ran %d times for one scrape", scrapes)
	}
	m.DeleteCertificate("web", "web.example.org")
	if strings.Contains(scrape(t, m), "mcp_certificate_expiry_timestamp_seconds{") {
		t.Error("a deleted certificate is still exposed")
	}
	if t.Failed() {
		t.Log(body)
	}
}

// Two agents in one process (tests, simulated nodes) never share or
// collide on metrics.
func TestPrivateRegistries(t *testing.T) {
	a, b := New("a"), New("b")
	a.EventRecorded("deploy")
	if strings.Contains(scrape(t, b), `mcp_events_total{kind="deploy"}`) {
		t.Error("b sees a's event")
	}
}

// A nil *Metrics is a valid, silent sink.
func TestNilMetrics(t *testing.T) {
	var m *Metrics
	m.ObserveReconcile("ok", time.Second, time.Now())
	m.ObserveStep("port", "create", StepDone)
	m.SetCertificateExpiry("web", "x", time.Now())
	m.CommitQuarantined("x", 1)
	m.OnScrape(func(context.Context) {})
	m.Refresh(context.Background())
	if err := m.Register(nil); err != nil {
		t.Error(err)
	}
}
