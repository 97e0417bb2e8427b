package acme

import (
	"io"
	"net/http"
	"strings"
	"sync"
)

// HTTP01Prefix is the path the CA fetches HTTP-01 answers from.
const HTTP01Prefix = "/.well-known/acme-challenge/"

// HTTP01 serves the answers to pending HTTP-01 challenges. The agent mounts
// it on a port the CA reaches: its own listener (acme.http01_listen), or
// behind the proxy's port 80 route. It answers only tokens of challenges in
// flight and 404s everything else, so exposing it reveals nothing.
type HTTP01 struct {
	mu      sync.RWMutex
	answers map[string]string // token → key authorization
}

// NewHTTP01 returns an empty HTTP-01 responder.
func NewHTTP01() *HTTP01 { return &HTTP01{answers: map[string]string{}} }

func (h *HTTP01) put(token, keyAuth string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.answers[token] = keyAuth
}

func (h *HTTP01) remove(token string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	delete(h.answers, token)
}

// Pending reports how many challenges are being answered (tests, status).
func (h *HTTP01) Pending() int {
	h.mu.RLock()
	defer h.mu.RUnlock()
	return len(h.answers)
}

// ServeHTTP answers GET/HEAD <HTTP01Prefix><token> with the key
// authorization as text/plain (RFC 8555 section 8.3).
func (h *HTTP01) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	token, ok := strings.CutPrefix(r.URL.Path, HTTP01Prefix)
	if !ok || token == "" || strings.Contains(token, "/") {
		http.NotFound(w, r)
		return
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	h.mu.RLock()
	answer, ok := h.answers[token]
	h.mu.RUnlock()
	if !ok {
		http.NotFound(w, r)
		return
	}
	w.Header().Set("Content-Type", "text/plain")
	_, _ = io.WriteString(w, answer) // the CA retries a failed validation request
}
