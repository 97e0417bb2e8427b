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

// BenchmarkHead is the no-change poll: list the remote branch head of a
// local bare repository. Compare with BenchmarkLsRemote.
func BenchmarkHead(b *testing.B) {
	r := benchRepo(b)
	src, err := gitsync.New(gitsync.Config{URL: r.Bare, CacheDir: filepath.Join(b.TempDir(), "cache")})
	if err != nil {
		b.Fatal(err)
	}
	want := r.Head()
	ctx := b.Context()
	for b.Loop() {
		h, err := src.Head(ctx)
		if err != nil || h != want {
			b.Fatalf("Head = %s, %v", h, err)
		}
	}
}

// BenchmarkLsRemote runs `git ls-remote <bare> refs/heads/main` on the
// same kind of repository: the baseline BenchmarkHead is measured against.
func BenchmarkLsRemote(b *testing.B) {
	r := benchRepo(b)
	// Build the isolated environment once, outside the timed loop.
	tmpl := testenv.GitCommand(b, r.Work, "ls-remote", r.Bare, "refs/heads/"+testenv.GitBranch)
	for b.Loop() {
		cmd := exec.Command(tmpl.Path, tmpl.Args[1:]...)
		cmd.Dir, cmd.Env = tmpl.Dir, tmpl.Env
		if out, err := cmd.Output(); err != nil || len(out) < 40 {
			b.Fatalf("git ls-remote: %v %q", err, out)
		}
	}
}

// BenchmarkFetchUnchanged is a Fetch when the cache already has the head:
// a ref listing, a commit read, and building the Revision.
func BenchmarkFetchUnchanged(b *testing.B) {
	r := benchRepo(b)
	src, err := gitsync.New(gitsync.Config{URL: r.Bare, CacheDir: filepath.Join(b.TempDir(), "cache")})
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
}
