package api

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// FuzzAPIRequest sends arbitrary methods, targets (path and query) and
// bodies to the server over an in-memory backend. Whatever arrives, the
// server must not panic, must answer only with statuses the API
// documents, must explain every refusal as a JSON error, and must never
// hand the backend a name that could leave the log directory.
func FuzzAPIRequest(f *testing.F) {
	for _, s := range []struct {
		method, target string
		body           []byte
	}{
		{"GET", "/v1/status", nil},
		{"GET", "/v1/status/web", nil},
		{"GET", "/v1/status/..%2f..%2fetc", nil},
		{"GET", "/v1/containers", nil},
		{"GET", "/v1/snapshot", nil},
		{"POST", "/v1/sync", []byte("{}")},
		{"POST", "/v1/sync", bytes.Repeat([]byte("x"), maxRequestBody+1)},
		{"GET", "/v1/logs/web/web?n=2", nil},
		{"GET", "/v1/logs/web/web?n=99999999999999999999", nil},
		{"GET", "/v1/logs/web/%2e%2e?follow=1", nil},
		{"GET", "/v1/events?after=18446744073709551616", nil},
		{"GET", "/v1/events?n=1&n=2", nil},
		{"GET", "/v1/history", nil},
		{"POST", "/v1/retry/web", nil},
		{"POST", "/v1/retry/%00", nil},
		{"DELETE", "/v1/status", nil},
		{"GET", "//v1/../v1/status", nil},
		{"PROPFIND", "/v1/version", nil},
		{"GET", "/v1/status?\u202e=1", nil},
	} {
		f.Add(s.method, s.target, s.body)
	}
	dir := f.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "log"), []byte("a\nb\nc\n"), 0o600); err != nil {
		f.Fatal(err)
	}
	t0 := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	b := &nameRecorder{path: filepath.Join(dir, "log"), testBackend: testBackend{
		logDir: dir,
		status: Status{Node: "n1", LastReconcile: Reconcile{Started: t0, Finished: t0, Result: ResultOK},
			Services: []ServiceStatus{{Name: "web", State: StateRunning, Components: []ComponentStatus{{Name: "web", State: ComponentRunning}}}}},
	}}
	srv := NewServer(b, WithFollowInterval(time.Millisecond))
	// Already cancelled: a follow request returns right after its tail.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()

	f.Fuzz(func(t *testing.T, method, target string, body []byte) {
		if !strings.HasPrefix(target, "/") {
			target = "/" + target
		}
		req, err := http.NewRequestWithContext(ctx, method, "http://mcp"+target, bytes.NewReader(body))
		if err != nil {
			return // not a request a client could send
		}
		b.mu.Lock()
		b.asked = nil
		b.mu.Unlock()
		rec := httptest.NewRecorder()
		srv.ServeHTTP(rec, req)
		switch rec.Code {
		case 200, 301, 307, 308, 400, 404, 405, 413, 503:
		default:
			t.Fatalf("%s %q: status %d (%s)", method, target, rec.Code, rec.Body)
		}
		if rec.Code >= 400 && method != http.MethodHead {
			var e errorBody
			if err := json.Unmarshal(rec.Body.Bytes(), &e); err != nil || e.Error == "" {
				t.Fatalf("%s %q: %d without a JSON error: %q", method, target, rec.Code, rec.Body)
			}
			if ct := rec.Header().Get("Content-Type"); ct != "application/json" {
				t.Fatalf("%s %q: error with Content-Type %q", method, target, ct)
			}
		}
		b.mu.Lock()
		defer b.mu.Unlock()
		for _, names := range b.asked {
			for _, n := range names {
				if !ValidName(n) || strings.ContainsAny(n, "/\x00") || n == ".." {
					t.Fatalf("%s %q: backend asked for log of %q", method, target, names)
				}
			}
		}
	})
}
