package api

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// nameRecorder is a Backend that serves one log file for any valid name and
// records the names it was asked for.
type nameRecorder struct {
	testBackend
	path  string
	mu    sync.Mutex
	asked [][2]string
}

func (b *nameRecorder) LogFile(service, component string) (string, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.asked = append(b.asked, [2]string{service, component})
	return b.path, nil
}

// FuzzLogsRequest throws arbitrary paths and queries at the handler: it must
// never panic, answer only with the statuses the API documents, and never
// hand the backend a name that could leave the log directory.
func FuzzLogsRequest(f *testing.F) {
	for _, seed := range []string{
		"/v1/logs/web/web",
		"/v1/logs/web/web?n=10",
		"/v1/logs/web/web?n=0&follow=1",
		"/v1/logs/web/%2E%2E?n=1",
		"/v1/logs/a%2Fb/c",
		"/v1/logs/web/web?n=-1&follow=maybe",
		"/v1/status/%00",
	} {
		f.Add(seed)
	}
	path := filepath.Join(f.TempDir(), "log")
	if err := os.WriteFile(path, []byte("a\nb\nc\n"), 0o600); err != nil {
		f.Fatal(err)
	}
	b := &nameRecorder{path: path}
	srv := NewServer(b)
	// Already cancelled: a follow request returns right after its tail.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()

	f.Fuzz(func(t *testing.T, target string) {
		if !strings.HasPrefix(target, "/") {
			target = "/" + target
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://mcp"+target, nil)
		if err != nil {
			return // not a URL a client could send
		}
		b.mu.Lock()
		b.asked = nil
		b.mu.Unlock()
		rec := httptest.NewRecorder()
		srv.ServeHTTP(rec, req)
		switch rec.Code {
		case 200, 301, 307, 308, 400, 404, 405, 503:
		default:
			t.Fatalf("GET %q: status %d (%s)", target, rec.Code, rec.Body)
		}
		b.mu.Lock()
		defer b.mu.Unlock()
		for _, names := range b.asked {
			for _, n := range names {
				if !ValidName(n) || strings.ContainsAny(n, "/\x00") || n == ".." {
					t.Fatalf("GET %q: backend asked for log of %q", target, names)
				}
			}
		}
		if rec.Code == 200 && strings.HasPrefix(req.URL.Path, "/v1/logs/") && !strings.HasSuffix("a\nb\nc\n", rec.Body.String()) {
			t.Fatalf("GET %q: body %q is not a tail of the log", target, rec.Body)
		}
	})
}
