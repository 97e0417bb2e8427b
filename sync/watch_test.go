package gitsync_test

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"metacircular.net/mcp/internal/testenv"
	gitsync "metacircular.net/mcp/sync"
)

// failAfter only guards against a hang; nothing here measures speed.
const failAfter = 20 * time.Second

func waitSignal(t *testing.T, ch <-chan struct{}, what string) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(failAfter):
		t.Fatalf("no watch signal after %s", what)
	}
}

// drain empties a pending signal so the next wait sees a new one.
func drain(ch <-chan struct{}) {
	select {
	case <-ch:
	default:
	}
}

func TestWatchLocal(t *testing.T) {
	tests := []struct {
		name   string
		branch string
		url    func(r *testenv.Repo) string
	}{
		{"bare path", "", func(r *testenv.Repo) string { return r.Bare }},
		{"file url", "", func(r *testenv.Repo) string { return r.URL() }},
		{"nested branch not yet created", "team/prod", func(r *testenv.Repo) string { return r.Bare }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := testenv.GitRepo(t)
			r.Commit(map[string]string{"mcp.toml": "1"}, "c1")
			r.Push()
			src := newSource(t, gitsync.Config{URL: tt.url(r), Branch: tt.branch})
			ctx, cancel := context.WithCancel(t.Context())
			defer cancel()
			ch := src.Watch(ctx)

			branch := src.Config().Branch
			push := func() {
				testenv.Git(t, r.Work, "push", "--quiet", "origin", "HEAD:refs/heads/"+branch)
			}
			r.Commit(map[string]string{"mcp.toml": "2"}, "c2")
			push()
			waitSignal(t, ch, "a push")

			// A ref moved into packed-refs and then updated again.
			testenv.Git(t, r.Bare, "pack-refs", "--all")
			drain(ch)
			r.Commit(map[string]string{"mcp.toml": "3"}, "c3")
			push()
			waitSignal(t, ch, "a push after pack-refs")

			// Force-push backwards fires too (the ref changed).
			drain(ch)
			testenv.Git(t, r.Work, "push", "--quiet", "--force", "origin", "HEAD~1:refs/heads/"+branch)
			waitSignal(t, ch, "a force-push")
		})
	}
}

func TestWatchRemoteNeverFires(t *testing.T) {
	r := testenv.GitRepo(t)
	r.Commit(map[string]string{"mcp.toml": "1"}, "c1")
	r.Push()
	src := newSource(t, gitsync.Config{URL: testenv.GitHTTPServer(t, r.Bare)})
	ch := src.Watch(t.Context())
	r.Commit(map[string]string{"mcp.toml": "2"}, "c2")
	r.Push()
	select {
	case <-ch:
		t.Fatal("watch fired for a remote URL")
	case <-time.After(200 * time.Millisecond):
	}
}

func TestWatchWorkTree(t *testing.T) {
	// A non-bare repository: refs live under .git.
	r := testenv.GitRepo(t)
	r.Commit(map[string]string{"mcp.toml": "1"}, "c1")
	src := newSource(t, gitsync.Config{URL: r.Work})
	ch := src.Watch(t.Context())
	r.Commit(map[string]string{"mcp.toml": "2"}, "c2")
	waitSignal(t, ch, "a commit in the work tree "+filepath.Base(r.Work))
}
