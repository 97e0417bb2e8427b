package statuspage

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"metacircular.net/mcp/api"
	"metacircular.net/mcp/internal/testenv"
)

var now = time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)

type fakeSource struct {
	st     api.Status
	evs    []api.Event
	stErr  error
	evsErr error
}

func (f *fakeSource) Status(context.Context) (api.Status, error) { return f.st, f.stErr }
func (f *fakeSource) Events(_ context.Context, after uint64) ([]api.Event, error) {
	var out []api.Event
	for _, e := range f.evs {
		if e.Seq > after {
			out = append(out, e)
		}
	}
	return out, f.evsErr
}

// sample is a node with a running, a failed and an invalid service and a
// history of a deploy, a failure and a drift repair.
func sample() *fakeSource {
	return &fakeSource{
		st: api.Status{
			Node: "rift", AgentVersion: "v1.2.3", AppliedCommit: "0123456789abcdef0123", Branch: "main",
			LastReconcile: api.Reconcile{Started: now.Add(-time.Minute), Finished: now.Add(-time.Minute + 1500*time.Millisecond),
				Commit: "0123456789abcdef0123", PlanHash: "sha256:aaaaaaaaaaaaaaaaaaaa", Result: api.ResultPartial,
				Error: "failed: broken", Steps: 3},
			Services: []api.ServiceStatus{
				{Name: "web", State: api.StateRunning, Commit: "0123456789abcdef0123", Components: []api.ComponentStatus{
					{Name: "api", Version: "v2", Image: "mcr.example/web:v2", State: api.ComponentRunning, Slot: "a",
						Ports: map[string]int{"default": 10001, "admin": 10003}, Restarts: 1},
				}},
				{Name: "broken", State: api.StateFailed, Error: "create container broken.app.a: image not found"},
				{Name: "typo", State: api.StateInvalid, Error: "definition services/typo.toml is invalid",
					Diagnostics: []string{"services/typo.toml: components[0].volume: unknown key"}},
			},
		},
		evs: []api.Event{
			{Seq: 1, Time: now.Add(-2 * time.Hour), Kind: "deploy", Service: "web", Commit: "0123456789abcdef0123", Message: "web deployed (3 steps)"},
			{Seq: 2, Time: now.Add(-time.Minute), Kind: "failure", Service: "broken", Message: "broken failed at broken/app/image: not found"},
			{Seq: 3, Time: now.Add(-10 * time.Second), Kind: "drift", Service: "web", Component: "api", Message: "drift repaired: recreated a missing container (web.api.a)"},
		},
	}
}

func get(t *testing.T, h http.Handler, path string) (int, http.Header, string) {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
	b, _ := io.ReadAll(rec.Body)
	return rec.Code, rec.Header(), string(b)
}

func TestPageRenders(t *testing.T) {
	tests := []struct {
		name     string
		src      *fakeSource
		opts     Options
		code     int
		want     []string
		dontWant []string
	}{
		{"node with services and events", sample(), Options{Refresh: 10 * time.Second, Events: 20}, http.StatusOK,
			[]string{`<meta http-equiv="refresh" content="10">`, "rift", "v1.2.3", "0123456789ab", "partial", "took 1.5s",
				"admin → 10003", "default → 10001", "mcr.example/web:v2", "image not found",
				"services/typo.toml: components[0].volume: unknown key", "drift repaired", "(10s ago)", "(2h ago)",
				`id="event-3"`, "1 failed", "1 running", "1 invalid"},
			[]string{"<script"}},
		{"events off, no refresh", sample(), Options{}, http.StatusOK,
			[]string{"no events recorded"}, []string{`http-equiv="refresh"`, "drift repaired"}},
		{"only the last events", sample(), Options{Events: 1}, http.StatusOK,
			[]string{"drift repaired"}, []string{"web deployed"}},
		{"empty node", &fakeSource{st: api.Status{Node: "n1"}}, Options{Events: 5}, http.StatusOK,
			[]string{"no services on this node", "none yet", "no events recorded"}, nil},
		{"status unreadable", &fakeSource{stErr: errors.New("read registry: boom")}, Options{Events: 5}, http.StatusServiceUnavailable,
			[]string{"could not report its status: read registry: boom"}, nil},
		{"events unreadable", &fakeSource{st: api.Status{Node: "n1"}, evsErr: errors.New("decode event 4")}, Options{Events: 5}, http.StatusOK,
			[]string{"event history could not be read: decode event 4"}, nil},
		{"markup in data is escaped", &fakeSource{st: api.Status{Node: "n1", Services: []api.ServiceStatus{
			{Name: "x", State: api.StateFailed, Error: "<script>alert(1)</script>"}}}}, Options{}, http.StatusOK,
			[]string{"&lt;script&gt;alert(1)&lt;/script&gt;"}, []string{"<script>"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.opts.Now = func() time.Time { return now }
			code, hdr, body := get(t, Handler(tc.src, tc.opts), "/")
			if code != tc.code {
				t.Errorf("status = %d, want %d", code, tc.code)
			}
			if ct := hdr.Get("Content-Type"); ct != "text/html; charset=utf-8" {
				t.Errorf("Content-Type = %q", ct)
			}
			if csp := hdr.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'none'") {
				t.Errorf("Content-Security-Policy = %q: scripts would be allowed", csp)
			}
			for _, w := range tc.want {
				if !strings.Contains(body, w) {
					t.Errorf("page lacks %q", w)
				}
			}
			for _, w := range tc.dontWant {
				if strings.Contains(body, w) {
					t.Errorf("page has %q", w)
				}
			}
			if t.Failed() {
				t.Log(body)
			}
		})
	}
}

func TestOtherPathsAreNotFound(t *testing.T) {
	h := Handler(sample(), Options{})
	for _, p := range []string{"/x", "/index.html", "/v1/status"} {
		if code, _, _ := get(t, h, p); code != http.StatusNotFound {
			t.Errorf("GET %s = %d, want 404", p, code)
		}
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/", nil))
	if rec.Code != http.StatusMethodNotAllowed {
		t.Errorf("POST / = %d, want 405: the page is read-only", rec.Code)
	}
}

// TestPageInHeadlessChromium serves the page on loopback and loads it in
// a real browser with JavaScript irrelevant (the page has none): the
// rendered DOM holds the node, the services with their state, ports and
// errors, and the events; the screenshot is a page, not a blank canvas.
func TestPageInHeadlessChromium(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a browser")
	}
	b := testenv.Chromium(t)
	srv := serve(t, Handler(sample(), Options{Events: 20, Now: func() time.Time { return now }}))
	ctx := context.Background()

	dom := b.DOM(ctx, srv)
	for _, want := range []string{
		`<span id="node">rift</span>`, "0123456789ab", `id="service-web"`, `id="component-web-api"`,
		"admin → 10003", "image not found", "components[0].volume: unknown key",
		`id="event-1"`, `id="event-2"`, `id="event-3"`, "web deployed", "drift repaired",
	} {
		if !strings.Contains(dom, want) {
			t.Errorf("rendered DOM lacks %q", want)
		}
	}
	if t.Failed() {
		t.Log(dom)
	}
	shot := b.Screenshot(ctx, srv, 1280, 900)
	checkScreenshot(t, shot)
}

// checkScreenshot fails on a blank or near-blank screenshot: a rendered
// page has text, coloured state badges and a dark header.
func checkScreenshot(t *testing.T, shot []byte) {
	t.Helper()
	colours, nonWhite, err := testenv.PNGStats(shot)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot: %d bytes, %d distinct colours, %.1f%% not white", len(shot), colours, 100*nonWhite)
	if dir := os.Getenv("MCP_TEST_SCREENSHOTS"); dir != "" {
		_ = os.WriteFile(filepath.Join(dir, t.Name()+".png"), shot, 0o644)
	}
	if colours < 20 || nonWhite < 0.05 {
		t.Errorf("screenshot looks blank: %d distinct colours, %.1f%% non-white pixels", colours, 100*nonWhite)
	}
}

// serve runs h on a loopback port for the test's duration.
func serve(t *testing.T, h http.Handler) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(l) }()
	t.Cleanup(func() { srv.Close() })
	return "http://" + l.Addr().String() + "/"
}
