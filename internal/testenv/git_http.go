package testenv

import (
	"crypto/subtle"
	"io"
	"net"
	"net/http"
	"net/http/cgi"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// GitHTTPOption changes GitHTTPServer and GitHTTPHandler.
type GitHTTPOption func(*gitHTTPConfig)

type gitHTTPConfig struct {
	user, pass string
	wrap       []func(http.Handler) http.Handler
}

// WithGitBasicAuth requires HTTP basic auth with this user and password.
func WithGitBasicAuth(user, pass string) GitHTTPOption {
	return func(c *gitHTTPConfig) { c.user, c.pass = user, pass }
}

// WithGitMiddleware wraps the handler (outermost last), e.g. to count or log
// requests.
func WithGitMiddleware(mw func(http.Handler) http.Handler) GitHTTPOption {
	return func(c *gitHTTPConfig) { c.wrap = append(c.wrap, mw) }
}

// GitHTTPHandler serves the bare repository bareDir at /<base name of
// bareDir> through the real `git http-backend` (smart HTTP, fetch only).
func GitHTTPHandler(t testing.TB, bareDir string, opts ...GitHTTPOption) http.Handler {
	t.Helper()
	var c gitHTTPConfig
	for _, o := range opts {
		o(&c)
	}
	execPath := strings.TrimSpace(Git(t, bareDir, "--exec-path"))
	home := t.TempDir()
	var h http.Handler = &cgi.Handler{
		Path: filepath.Join(execPath, "git-http-backend"),
		Root: "/",
		Dir:  bareDir,
		Env: []string{
			"GIT_PROJECT_ROOT=" + filepath.Dir(bareDir),
			"GIT_HTTP_EXPORT_ALL=1",
			"HOME=" + home,
			"GIT_CONFIG_NOSYSTEM=1",
			"GIT_CONFIG_GLOBAL=" + os.DevNull,
		},
		InheritEnv: []string{"PATH"},
		// http-backend complains on stderr about every 404; the status is
		// what tests look at.
		Stderr: io.Discard,
	}
	if c.user != "" {
		next := h
		h = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			u, p, ok := r.BasicAuth()
			if !ok || subtle.ConstantTimeCompare([]byte(u), []byte(c.user)) != 1 ||
				subtle.ConstantTimeCompare([]byte(p), []byte(c.pass)) != 1 {
				w.Header().Set("WWW-Authenticate", `Basic realm="git"`)
				http.Error(w, "unauthorized", http.StatusUnauthorized)
				return
			}
			next.ServeHTTP(w, r)
		})
	}
	for _, mw := range c.wrap {
		h = mw(h)
	}
	return h
}

// GitHTTPServer serves bareDir over HTTP on 127.0.0.1 (see GitHTTPHandler)
// until the test ends, and returns the repository's URL.
func GitHTTPServer(t testing.TB, bareDir string, opts ...GitHTTPOption) string {
	t.Helper()
	srv := httptest.NewUnstartedServer(GitHTTPHandler(t, bareDir, opts...))
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv.Listener = l
	srv.Start()
	t.Cleanup(srv.Close)
	return srv.URL + "/" + filepath.Base(bareDir)
}
