package gitsync_test

import (
	"context"
	"errors"
	"io/fs"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/object"

	"metacircular.net/mcp/internal/testenv"
	gitsync "metacircular.net/mcp/sync"
)

func testCtx(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func newSource(t *testing.T, cfg gitsync.Config, opts ...gitsync.Option) *gitsync.Source {
	t.Helper()
	if cfg.CacheDir == "" {
		cfg.CacheDir = filepath.Join(t.TempDir(), "cache")
	}
	s, err := gitsync.New(cfg, opts...)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return s
}

func readFile(t *testing.T, rev *gitsync.Revision, name string) string {
	t.Helper()
	b, err := fs.ReadFile(rev.Tree, name)
	if err != nil {
		t.Fatalf("read %s at %s: %v", name, rev.Commit, err)
	}
	return string(b)
}

func writeFile(t *testing.T, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "secret")
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestTransports clones, polls and fetches a new commit over every
// supported transport, against real git servers.
func TestTransports(t *testing.T) {
	tests := []struct {
		name  string
		setup func(t *testing.T, r *testenv.Repo) gitsync.Config
	}{
		{"path", func(t *testing.T, r *testenv.Repo) gitsync.Config {
			return gitsync.Config{URL: r.Bare}
		}},
		{"file", func(t *testing.T, r *testenv.Repo) gitsync.Config {
			return gitsync.Config{URL: r.URL()}
		}},
		{"work tree path", func(t *testing.T, r *testenv.Repo) gitsync.Config {
			return gitsync.Config{URL: r.Work}
		}},
		{"http", func(t *testing.T, r *testenv.Repo) gitsync.Config {
			return gitsync.Config{URL: testenv.GitHTTPServer(t, r.Bare)}
		}},
		{"http basic auth", func(t *testing.T, r *testenv.Repo) gitsync.Config {
			url := testenv.GitHTTPServer(t, r.Bare, testenv.WithGitBasicAuth("deploy", "s3cret"))
			return gitsync.Config{URL: url, HTTPUsername: "deploy", HTTPPasswordFile: writeFile(t, "s3cret\n")}
		}},
		{"ssh", func(t *testing.T, r *testenv.Repo) gitsync.Config {
			srv := testenv.GitSSHServer(t, r.Bare)
			return gitsync.Config{URL: srv.URL, SSHKeyFile: srv.KeyFile, KnownHostsFile: srv.KnownHostsFile}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := testCtx(t)
			r := testenv.GitRepo(t)
			c1 := r.Commit(map[string]string{"mcp.toml": "one", "services/a.toml": "a1"}, "first")
			r.Push()
			src := newSource(t, tt.setup(t, r))

			head, err := src.Head(ctx)
			if err != nil {
				t.Fatalf("Head: %v", err)
			}
			if head != c1 {
				t.Fatalf("Head = %s, want %s", head, c1)
			}
			rev, err := src.Fetch(ctx)
			if err != nil {
				t.Fatalf("Fetch: %v", err)
			}
			if rev.Commit != c1 || readFile(t, rev, "services/a.toml") != "a1" {
				t.Fatalf("first fetch: commit %s, want %s", rev.Commit, c1)
			}
			if rev.Message != "first\n" || !strings.Contains(rev.Author, "test@mcp.invalid") || rev.Time.IsZero() {
				t.Errorf("revision metadata: %q %q %v", rev.Message, rev.Author, rev.Time)
			}

			c2 := r.Commit(map[string]string{"services/a.toml": "a2"}, "second")
			r.Push()
			rev2, err := src.Fetch(ctx)
			if err != nil {
				t.Fatalf("second Fetch: %v", err)
			}
			if rev2.Commit != c2 || readFile(t, rev2, "services/a.toml") != "a2" {
				t.Fatalf("second fetch: commit %s, want %s", rev2.Commit, c2)
			}
			// The earlier revision still reads its own tree.
			if got := readFile(t, rev, "services/a.toml"); got != "a1" {
				t.Errorf("old revision reads %q after a new fetch", got)
			}
			if m, err := src.Check(ctx, c1, c2); err != nil || m != gitsync.MoveForward {
				t.Errorf("Check(c1, c2) = %v, %v; want forward", m, err)
			}
		})
	}
}

func TestHTTPWrongPassword(t *testing.T) {
	ctx := testCtx(t)
	r := testenv.GitRepo(t)
	r.Commit(map[string]string{"mcp.toml": ""}, "init")
	r.Push()
	url := testenv.GitHTTPServer(t, r.Bare, testenv.WithGitBasicAuth("deploy", "right"))
	pwFile := writeFile(t, "wrong-password-value")
	src := newSource(t, gitsync.Config{URL: url, HTTPUsername: "deploy", HTTPPasswordFile: pwFile})

	for name, op := range map[string]func() error{
		"head":  func() error { _, err := src.Head(ctx); return err },
		"fetch": func() error { _, err := src.Fetch(ctx); return err },
	} {
		err := op()
		t.Logf("%s: %v", name, err)
		if !errors.Is(err, gitsync.ErrAuth) {
			t.Fatalf("%s with a wrong password: %v; want ErrAuth", name, err)
		}
		if strings.Contains(err.Error(), "wrong-password-value") {
			t.Fatalf("%s error leaks the password: %v", name, err)
		}
		if !strings.Contains(err.Error(), url) {
			t.Errorf("%s error does not name the URL: %v", name, err)
		}
	}

	// The password file is read at each use: fixing it needs no restart.
	if err := os.WriteFile(pwFile, []byte("right\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := src.Fetch(ctx); err != nil {
		t.Fatalf("Fetch after fixing the password file: %v", err)
	}
}

func TestSSHRefusals(t *testing.T) {
	r := testenv.GitRepo(t)
	r.Commit(map[string]string{"mcp.toml": ""}, "init")
	r.Push()
	srv := testenv.GitSSHServer(t, r.Bare)

	tests := []struct {
		name       string
		key, hosts string
		want       error
	}{
		{"unknown host key", srv.KeyFile, testenv.WriteKnownHosts(t, srv.Addr, testenv.NewSSHPublicKey(t)), gitsync.ErrHostKey},
		{"host not in known_hosts", srv.KeyFile, testenv.WriteKnownHosts(t, "127.0.0.2:22", srv.HostKey), gitsync.ErrHostKey},
		{"client key not authorised", testenv.NewSSHKeyFile(t), srv.KnownHostsFile, gitsync.ErrAuth},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src := newSource(t, gitsync.Config{URL: srv.URL, SSHKeyFile: tt.key, KnownHostsFile: tt.hosts})
			_, err := src.Fetch(testCtx(t))
			t.Logf("Fetch: %v", err)
			if !errors.Is(err, tt.want) {
				t.Fatalf("Fetch: %v; want %v", err, tt.want)
			}
		})
	}
}

func TestBranchAndRepoNotFound(t *testing.T) {
	ctx := testCtx(t)
	r := testenv.GitRepo(t)

	// An empty repository has no branch yet.
	src := newSource(t, gitsync.Config{URL: r.Bare})
	if _, err := src.Head(ctx); !errors.Is(err, gitsync.ErrBranchNotFound) {
		t.Fatalf("Head on an empty repo: %v; want ErrBranchNotFound", err)
	}

	r.Commit(map[string]string{"mcp.toml": ""}, "init")
	r.Push()
	other := newSource(t, gitsync.Config{URL: r.Bare, Branch: "prod"})
	_, err := other.Fetch(ctx)
	t.Logf("missing branch: %v", err)
	if !errors.Is(err, gitsync.ErrBranchNotFound) {
		t.Fatalf("Fetch of a missing branch: %v; want ErrBranchNotFound", err)
	}

	gone := testenv.GitRepo(t)
	goneSrc := newSource(t, gitsync.Config{URL: gone.Bare})
	if err := os.RemoveAll(gone.Bare); err != nil {
		t.Fatal(err)
	}
	if _, err := goneSrc.Head(ctx); !errors.Is(err, gitsync.ErrRepositoryNotFound) {
		t.Fatalf("Head of a local repo that was removed: %v; want ErrRepositoryNotFound", err)
	}

	url := testenv.GitHTTPServer(t, r.Bare)
	missing := newSource(t, gitsync.Config{URL: url + "-nope"})
	_, err = missing.Head(ctx)
	t.Logf("missing repo: %v", err)
	if !errors.Is(err, gitsync.ErrRepositoryNotFound) {
		t.Fatalf("Head of a missing http repo: %v; want ErrRepositoryNotFound", err)
	}
}

// countingHandler records the requests a git HTTP server saw.
type countingHandler struct {
	mu   sync.Mutex
	reqs []string
}

func (c *countingHandler) wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c.mu.Lock()
		c.reqs = append(c.reqs, r.Method+" "+r.URL.Path)
		c.mu.Unlock()
		next.ServeHTTP(w, r)
	})
}

func (c *countingHandler) take() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := c.reqs
	c.reqs = nil
	return out
}

// countObjects counts the files under the cache's objects directory
// (loose objects and packs).
func countObjects(t *testing.T, dir string) int {
	t.Helper()
	n := 0
	err := filepath.WalkDir(filepath.Join(dir, "objects"), func(_ string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			n++
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// TestPollIsCheap checks that Head, and Fetch when nothing moved, only list
// refs: no upload-pack request, no new object in the cache.
func TestPollIsCheap(t *testing.T) {
	ctx := testCtx(t)
	r := testenv.GitRepo(t)
	r.Commit(map[string]string{"mcp.toml": "x"}, "init")
	r.Push()
	var counter countingHandler
	url := testenv.GitHTTPServer(t, r.Bare, testenv.WithGitMiddleware(counter.wrap))
	cache := filepath.Join(t.TempDir(), "cache")
	src := newSource(t, gitsync.Config{URL: url, CacheDir: cache})

	if _, err := src.Fetch(ctx); err != nil {
		t.Fatal(err)
	}
	if reqs := counter.take(); !containsPrefix(reqs, "POST ") {
		t.Fatalf("first fetch made no upload-pack request: %v", reqs)
	}
	objects := countObjects(t, cache)

	if _, err := src.Head(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := src.Fetch(ctx); err != nil {
		t.Fatal(err)
	}
	reqs := counter.take()
	for _, req := range reqs {
		if req != "GET /remote.git/info/refs" {
			t.Errorf("unchanged poll made request %q; want only ref listings", req)
		}
	}
	if len(reqs) != 2 {
		t.Errorf("unchanged Head+Fetch made %d requests, want 2: %v", len(reqs), reqs)
	}
	if n := countObjects(t, cache); n != objects {
		t.Errorf("cache objects went from %d to %d without a change", objects, n)
	}

	// An agent restart reopens the same cache: nothing is downloaded again.
	again := newSource(t, gitsync.Config{URL: url, CacheDir: cache})
	if _, err := again.Fetch(ctx); err != nil {
		t.Fatal(err)
	}
	if reqs := counter.take(); containsPrefix(reqs, "POST ") {
		t.Errorf("fetch after reopening the cache downloaded again: %v", reqs)
	}

	r.Commit(map[string]string{"mcp.toml": "y"}, "change")
	r.Push()
	if _, err := src.Fetch(ctx); err != nil {
		t.Fatal(err)
	}
	if reqs := counter.take(); !containsPrefix(reqs, "POST ") {
		t.Fatalf("fetch after a change made no upload-pack request: %v", reqs)
	}
}

func containsPrefix(ss []string, prefix string) bool {
	for _, s := range ss {
		if strings.HasPrefix(s, prefix) {
			return true
		}
	}
	return false
}

func TestMovement(t *testing.T) {
	ctx := testCtx(t)
	r := testenv.GitRepo(t)
	c1 := r.Commit(map[string]string{"mcp.toml": "1"}, "c1")
	c2 := r.Commit(map[string]string{"mcp.toml": "2"}, "c2")
	c3 := r.Commit(map[string]string{"mcp.toml": "3"}, "c3")
	r.Push()

	strict := newSource(t, gitsync.Config{URL: r.Bare})
	lenient := newSource(t, gitsync.Config{URL: r.Bare, AllowBackwards: true})
	fetch := func(s *gitsync.Source) plumbing.Hash {
		t.Helper()
		rev, err := s.Fetch(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return rev.Commit
	}
	if got := fetch(strict); got != c3 {
		t.Fatalf("fetched %s, want c3", got)
	}
	fetch(lenient)

	// Force-push back to c1: a strict ancestor of the applied c3.
	r.ForcePush(c1)
	if got := fetch(strict); got != c1 {
		t.Fatalf("after force-push fetched %s, want c1", got)
	}
	fetch(lenient)
	m, err := strict.Check(ctx, c3, c1)
	var back *gitsync.BackwardsError
	if !errors.As(err, &back) || back.From != c3 || back.To != c1 || m != gitsync.MoveBackwards {
		t.Fatalf("Check(c3, c1) = %v, %v; want *BackwardsError{c3, c1}", m, err)
	}
	if !strings.Contains(err.Error(), "allow_backwards") {
		t.Errorf("backwards error does not say how to allow it: %v", err)
	}
	if m, err := lenient.Check(ctx, c3, c1); err != nil || m != gitsync.MoveBackwards {
		t.Fatalf("with AllowBackwards: Check(c3, c1) = %v, %v; want backwards, nil", m, err)
	}

	// A new commit on top of c1 diverges from c3 (history rewritten).
	c4 := r.Commit(map[string]string{"mcp.toml": "4"}, "c4")
	r.Push()
	fetch(strict)

	unknown := plumbing.NewHash(strings.Repeat("ab", 20))
	tests := []struct {
		name       string
		prev, next plumbing.Hash
		want       gitsync.Movement
	}{
		{"initial", plumbing.ZeroHash, c1, gitsync.MoveInitial},
		{"none", c2, c2, gitsync.MoveNone},
		{"forward one", c1, c2, gitsync.MoveForward},
		{"forward two", c1, c3, gitsync.MoveForward},
		{"forward after rewrite", c1, c4, gitsync.MoveForward},
		{"diverged", c3, c4, gitsync.MoveDiverged},
		{"diverged other way", c4, c2, gitsync.MoveDiverged},
		{"previous not in cache", unknown, c4, gitsync.MoveUnknown},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := strict.Check(ctx, tt.prev, tt.next)
			if err != nil || m != tt.want {
				t.Fatalf("Check = %v, %v; want %v", m, err, tt.want)
			}
		})
	}
}

func TestVerifierRunsBeforeRevision(t *testing.T) {
	ctx := testCtx(t)
	r := testenv.GitRepo(t)
	good := r.Commit(map[string]string{"mcp.toml": "good"}, "good")
	r.Push()
	var seen []plumbing.Hash
	refuse := errors.New("not signed")
	v := gitsync.VerifierFunc(func(_ context.Context, c *object.Commit) error {
		seen = append(seen, c.Hash)
		if c.Message == "bad\n" {
			return refuse
		}
		return nil
	})
	src := newSource(t, gitsync.Config{URL: r.Bare}, gitsync.WithVerifier(v))
	if rev, err := src.Fetch(ctx); err != nil || rev.Commit != good {
		t.Fatalf("Fetch good: %v, %v", rev, err)
	}
	bad := r.Commit(map[string]string{"mcp.toml": "bad"}, "bad")
	r.Push()
	rev, err := src.Fetch(ctx)
	var ve *gitsync.VerifyError
	if rev != nil || !errors.As(err, &ve) || ve.Commit != bad || !errors.Is(err, refuse) {
		t.Fatalf("Fetch bad = %v, %v; want no revision and a *VerifyError for the commit", rev, err)
	}
	// Unchanged remote: still verified, still refused.
	if _, err := src.Fetch(ctx); !errors.Is(err, refuse) {
		t.Fatalf("second Fetch of the bad head: %v; want refused again", err)
	}
	if len(seen) != 3 {
		t.Errorf("verifier saw %d commits, want 3", len(seen))
	}
}

// TestRemoteDownThenBack stops the HTTP server, expects ErrUnreachable,
// then serves again on the same address and expects success.
func TestRemoteDownThenBack(t *testing.T) {
	ctx := testCtx(t)
	r := testenv.GitRepo(t)
	c1 := r.Commit(map[string]string{"mcp.toml": "1"}, "c1")
	r.Push()
	handler := testenv.GitHTTPHandler(t, r.Bare)

	serve := func(addr string) (*http.Server, string) {
		t.Helper()
		l, err := net.Listen("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		srv := &http.Server{Handler: handler}
		go func() { _ = srv.Serve(l) }() // ends with Close
		t.Cleanup(func() { srv.Close() })
		return srv, l.Addr().String()
	}
	srv, addr := serve("127.0.0.1:0")
	src := newSource(t, gitsync.Config{URL: "http://" + addr + "/remote.git"})
	if _, err := src.Fetch(ctx); err != nil {
		t.Fatal(err)
	}

	srv.Close()
	c2 := r.Commit(map[string]string{"mcp.toml": "2"}, "c2")
	r.Push()
	_, err := src.Head(ctx)
	t.Logf("Head with the server down: %v", err)
	if !errors.Is(err, gitsync.ErrUnreachable) {
		t.Fatalf("Head with the server down: %v; want ErrUnreachable", err)
	}
	if _, err := src.Fetch(ctx); !errors.Is(err, gitsync.ErrUnreachable) {
		t.Fatalf("Fetch with the server down: %v; want ErrUnreachable", err)
	}
	// The cache still has what was fetched before.
	if local, err := src.Local(); err != nil || local != c1 {
		t.Fatalf("Local with the server down = %s, %v; want c1", local, err)
	}

	serve(addr)
	rev, err := src.Fetch(ctx)
	if err != nil || rev.Commit != c2 {
		t.Fatalf("Fetch after the server came back = %v, %v; want c2", rev, err)
	}
}

// hungServer listens on a loopback port, accepts every connection and
// never answers; the connections are closed when the test ends.
func hungServer(t *testing.T) net.Listener {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	var mu sync.Mutex
	var conns []net.Conn
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c) // held open, never answered
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	})
	return l
}

// TestHungRemote points at a server that accepts connections and never
// answers: the caller's deadline must end the poll with ErrUnreachable.
func TestHungRemote(t *testing.T) {
	l := hungServer(t)

	r := testenv.GitRepo(t)
	srv := testenv.GitSSHServer(t, r.Bare) // for a valid key and known_hosts
	tests := []struct {
		name string
		cfg  gitsync.Config
	}{
		{"http", gitsync.Config{URL: "http://" + l.Addr().String() + "/remote.git"}},
		{"ssh", gitsync.Config{URL: "ssh://git@" + l.Addr().String() + "/remote.git", SSHKeyFile: srv.KeyFile,
			KnownHostsFile: testenv.WriteKnownHosts(t, l.Addr().String(), srv.HostKey)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src := newSource(t, tt.cfg)
			ctx, cancel := context.WithTimeout(t.Context(), 500*time.Millisecond)
			defer cancel()
			done := make(chan error, 1)
			go func() { _, err := src.Head(ctx); done <- err }()
			select {
			case err := <-done:
				t.Logf("Head: %v", err)
				if !errors.Is(err, gitsync.ErrUnreachable) {
					t.Fatalf("Head against a hung server: %v; want ErrUnreachable", err)
				}
			case <-time.After(failAfter):
				t.Fatal("Head did not return after its deadline")
			}
		})
	}
}

func TestSSHServerDown(t *testing.T) {
	r := testenv.GitRepo(t)
	r.Commit(map[string]string{"mcp.toml": ""}, "init")
	r.Push()
	srv := testenv.GitSSHServer(t, r.Bare)
	src := newSource(t, gitsync.Config{URL: srv.URL, SSHKeyFile: srv.KeyFile, KnownHostsFile: srv.KnownHostsFile})
	if _, err := src.Fetch(testCtx(t)); err != nil {
		t.Fatal(err)
	}
	srv.Close()
	_, err := src.Fetch(testCtx(t))
	t.Logf("Fetch: %v", err)
	if !errors.Is(err, gitsync.ErrUnreachable) {
		t.Fatalf("Fetch with the ssh server down: %v; want ErrUnreachable", err)
	}
}

// TestConcurrentUse fetches while older revisions are being read, for the
// race detector.
func TestConcurrentUse(t *testing.T) {
	ctx := testCtx(t)
	r := testenv.GitRepo(t)
	r.Commit(map[string]string{"mcp.toml": "0"}, "c0")
	r.Push()
	src := newSource(t, gitsync.Config{URL: r.Bare})
	first, err := src.Fetch(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for range 4 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				if b, err := fs.ReadFile(first.Tree, "mcp.toml"); err != nil || string(b) != "0" {
					t.Errorf("read old revision: %q, %v", b, err)
					return
				}
				if _, err := src.Head(ctx); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	for i := range 5 {
		r.Commit(map[string]string{"mcp.toml": string(rune('1' + i))}, "next")
		r.Push()
		if _, err := src.Fetch(ctx); err != nil {
			t.Error(err)
		}
	}
	close(stop)
	wg.Wait()
}

// TestRevisionOffline reads a cached commit with the remote gone, as an
// agent starting during an outage does.
func TestRevisionOffline(t *testing.T) {
	ctx := testCtx(t)
	r := testenv.GitRepo(t)
	c1 := r.Commit(map[string]string{"mcp.toml": "1"}, "c1")
	r.Commit(map[string]string{"mcp.toml": "2"}, "c2")
	r.Push()
	cache := filepath.Join(t.TempDir(), "cache")
	if _, err := newSource(t, gitsync.Config{URL: r.Bare, CacheDir: cache}).Fetch(ctx); err != nil {
		t.Fatal(err)
	}
	if err := os.RemoveAll(r.Bare); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(r.Bare, 0o755); err != nil { // New wants the path to exist
		t.Fatal(err)
	}
	refuse := errors.New("refused")
	src := newSource(t, gitsync.Config{URL: r.Bare, CacheDir: cache}, gitsync.WithVerifier(gitsync.VerifierFunc(
		func(_ context.Context, c *object.Commit) error {
			if c.Hash != c1 {
				return refuse
			}
			return nil
		})))
	rev, err := src.Revision(ctx, c1)
	if err != nil || readFile(t, rev, "mcp.toml") != "1" {
		t.Fatalf("Revision(c1) offline: %v", err)
	}
	if _, err := src.Revision(ctx, r.Rev("HEAD")); !errors.Is(err, refuse) {
		t.Fatalf("Revision(c2) = %v; want the verifier's refusal", err)
	}
	if _, err := src.Revision(ctx, plumbing.NewHash(strings.Repeat("cd", 20))); !errors.Is(err, gitsync.ErrNotCached) {
		t.Fatalf("Revision(unknown) = %v; want ErrNotCached", err)
	}
	if _, err := src.Fetch(ctx); !errors.Is(err, gitsync.ErrRepositoryNotFound) {
		t.Fatalf("Fetch with the repo gone = %v; want ErrRepositoryNotFound", err)
	}
}

// TestFetchTimeout: a caller without a deadline (the agent's loop) is not
// held forever by a remote that accepts connections and never answers:
// Config.Timeout ends the fetch with ErrUnreachable.
func TestFetchTimeout(t *testing.T) {
	l := hungServer(t)
	src := newSource(t, gitsync.Config{URL: "http://" + l.Addr().String() + "/remote.git", Timeout: 300 * time.Millisecond})
	done := make(chan error, 1)
	go func() { _, err := src.Fetch(context.Background()); done <- err }()
	select {
	case err := <-done:
		t.Logf("Fetch: %v", err)
		if !errors.Is(err, gitsync.ErrUnreachable) {
			t.Fatalf("Fetch against a stalled server: %v; want ErrUnreachable", err)
		}
	case <-time.After(failAfter):
		t.Fatal("Fetch did not return after its timeout")
	}
}
