package cli

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"metacircular.net/mcp/api"
)

func TestRenderRollout(t *testing.T) {
	at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	services := []api.ServiceStatus{
		{Name: "web", State: api.StateRunning, Components: []api.ComponentStatus{{Name: "web", State: api.ComponentRunning,
			Health: &api.HealthStatus{State: "healthy", Since: at, Checks: []string{"tcp on route default (127.0.0.1:10000)"}}}},
			Drift: []api.DriftStatus{
				{Time: at, Component: "web", Resource: "web.web.a", What: "container missing (deleted behind mcp's back)"},
				{Time: at.Add(time.Second), Component: "web", Resource: "web.web.a", What: "recreated a missing container", Repaired: true},
			}},
		{Name: "app", State: api.StateWaiting, Waiting: "web (not healthy: web: connection refused)"},
		{Name: "api", State: api.StateDegraded, Components: []api.ComponentStatus{{Name: "api", State: api.ComponentRunning,
			Health: &api.HealthStatus{State: "unhealthy", LastError: "GET /healthz answered 503, want 200"}}}},
	}
	var b bytes.Buffer
	if err := renderRollout(&b, services); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	for _, want := range []string{
		"SERVICE  COMPONENT  HEALTH     SINCE",
		"web      web        healthy    2026-01-02 03:04:05 UTC  tcp on route default (127.0.0.1:10000)",
		"api      api        unhealthy  -",
		"GET /healthz answered 503, want 200",
		"app waits for web (not healthy: web: connection refused)",
		"web      2026-01-02 03:04:05 UTC  web.web.a  container missing (deleted behind mcp's back)  no",
		"recreated a missing container                  repaired",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	lines := driftLines(api.Status{Services: services})
	want := []string{
		"web: web.web.a: container missing (deleted behind mcp's back)",
		"app: waits for web (not healthy: web: connection refused)",
		"api: api is unhealthy: GET /healthz answered 503, want 200",
	}
	if strings.Join(lines, "\n") != strings.Join(want, "\n") {
		t.Errorf("driftLines:\n%s\nwant:\n%s", strings.Join(lines, "\n"), strings.Join(want, "\n"))
	}
	var none bytes.Buffer
	if err := renderRollout(&none, []api.ServiceStatus{{Name: "x", State: api.StateRunning}}); err != nil || none.Len() != 0 {
		t.Errorf("nothing to show printed %q", none.String())
	}
}
