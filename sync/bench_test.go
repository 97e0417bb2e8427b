package gitsync_test

import (
	"fmt"
	"os/exec"
	"path/filepath"
	"testing"

	"metacircular.net/mcp/internal/testenv"
	gitsync "metacircular.net/mcp/sync"
)

// benchRepo is a local bare repository shaped like a desired-state repo:
// 50 service files over 20 commits.
func benchRepo(b *testing.B) *testenv.Repo {
	b.Helper()
	r := testenv.GitRepo(b)
	for c := range 20 {
		files := map[string]string{"mcp.toml": fmt.Sprintf("revision = %d\n", c)}
		for s := range 50 {
			files[fmt.Sprintf("services/svc%02d.toml", s)] = fmt.Sprintf("name = \"svc%02d\"\nversion = \"%d\"\n", s, c)
		}
		r.Commit(files, fmt.Sprintf("c%d", c))
	}
	r.Push()
	return r
}

// benchURLs are the ways the same repository is reached.
func benchURLs(b *testing.B, r *testenv.Repo) []struct{ name, url string } {
	return []struct{ name, url string }{
		{"path", r.Bare},
		{"http", testenv.GitHTTPServer(b, r.Bare)},
	}
}

// BenchmarkHead is the no-change poll: the remote branch head, for a local
// bare repository (read directly) and the same repository behind git
// http-backend. Compare with BenchmarkLsRemote.
func BenchmarkHead(b *testing.B) {
	r := benchRepo(b)
	want := r.Head()
	for _, u := range benchURLs(b, r) {
		b.Run(u.name, func(b *testing.B) {
			src, err := gitsync.New(gitsync.Config{URL: u.url, CacheDir: filepath.Join(b.TempDir(), "cache")})
			if err != nil {
				b.Fatal(err)
			}
			ctx := b.Context()
			for b.Loop() {
				h, err := src.Head(ctx)
				if err != nil || h != want {
					b.Fatalf("Head = %s, %v", h, err)
				}
			}
		})
	}
}

// BenchmarkLsRemote runs `git ls-remote <url> refs/heads/main` against the
// same repository and servers: the baseline for BenchmarkHead.
func BenchmarkLsRemote(b *testing.B) {
	r := benchRepo(b)
	for _, u := range benchURLs(b, r) {
		b.Run(u.name, func(b *testing.B) {
			// Build the isolated environment once, outside the timed loop.
			tmpl := testenv.GitCommand(b, r.Work, "ls-remote", u.url, "refs/heads/"+testenv.GitBranch)
			for b.Loop() {
				cmd := exec.Command(tmpl.Path, tmpl.Args[1:]...)
				cmd.Dir, cmd.Env = tmpl.Dir, tmpl.Env
				if out, err := cmd.Output(); err != nil || len(out) < 40 {
					b.Fatalf("git ls-remote: %v %q", err, out)
				}
			}
		})
	}
}

// BenchmarkFetchUnchanged is a Fetch when the cache already has the head:
// a ref listing, a commit read, and building the Revision.
func BenchmarkFetchUnchanged(b *testing.B) {
	r := benchRepo(b)
	for _, u := range benchURLs(b, r) {
		b.Run(u.name, func(b *testing.B) {
			src, err := gitsync.New(gitsync.Config{URL: u.url, CacheDir: filepath.Join(b.TempDir(), "cache")})
			if err != nil {
				b.Fatal(err)
			}
			ctx := b.Context()
			if _, err := src.Fetch(ctx); err != nil {
				b.Fatal(err)
			}
			for b.Loop() {
				if _, err := src.Fetch(ctx); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
