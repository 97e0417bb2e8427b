// Package statuspage serves the agent's read-only status page: one HTML
// page rendered on the server with html/template, no JavaScript, so it
// works in any browser (text ones included) and behind any proxy. It shows
// what the local API's status and event history hold; it never changes
// anything.
//
// The page renders a view built from api.Status (view.go). A field added to
// api.Status by a later feature shows up by adding it to the view and one
// cell to page.html.
package statuspage

import (
	"bytes"
	"context"
	"embed"
	"html/template"
	"log/slog"
	"net/http"
	"time"

	"metacircular.net/mcp/api"
)

// Source is what the page reads; the agent implements it.
type Source interface {
	Status(ctx context.Context) (api.Status, error)
	Events(ctx context.Context, after uint64) ([]api.Event, error)
}

// Options configure the page.
type Options struct {
	// Refresh is how often the page reloads itself (<meta http-equiv=
	// refresh>); 0: never.
	Refresh time.Duration
	// Events is how many recent events are listed.
	Events int
	// Now replaces time.Now (tests).
	Now    func() time.Time
	Logger *slog.Logger
}

//go:embed page.html
var files embed.FS

var pageTmpl = template.Must(template.New("page.html").Funcs(funcs).ParseFS(files, "page.html"))

// Handler serves the page at / (GET and HEAD); every other path is 404.
func Handler(src Source, opts Options) http.Handler {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		v := build(r.Context(), src, opts)
		// Rendered into a buffer first, so a template error becomes a 500
		// rather than half a page.
		var buf bytes.Buffer
		if err := pageTmpl.Execute(&buf, v); err != nil {
			opts.Logger.Error("status page: render", "err", err)
			http.Error(w, "status page: render failed; see the agent's log", http.StatusInternalServerError)
			return
		}
		h := w.Header()
		h.Set("Content-Type", "text/html; charset=utf-8")
		h.Set("Cache-Control", "no-store")
		h.Set("X-Content-Type-Options", "nosniff")
		// No scripts, no frames, nothing from elsewhere: the page only
		// needs its own inline style.
		h.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'")
		if v.Err != "" {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
		_, _ = w.Write(buf.Bytes())
	})
	return mux
}
