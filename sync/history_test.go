package gitsync_test

import (
	"errors"
	"slices"
	"testing"

	"metacircular.net/mcp/internal/testenv"
	gitsync "metacircular.net/mcp/sync"
)

// FileVersions walks the history newest first, hands out each distinct
// content once, skips commits without the file and stops when asked.
func TestFileVersions(t *testing.T) {
	ctx := testCtx(t)
	r := testenv.GitRepo(t)
	r.Commit(map[string]string{"mcp.toml": "", "services/web.toml": "v1"}, "add web")
	r.Commit(map[string]string{"mcp.toml": "# unrelated"}, "unrelated")
	r.Commit(map[string]string{"services/web.toml": "v2"}, "change web")
	r.Remove([]string{"services/web.toml"}, "remove web")
	r.Commit(map[string]string{"services/web.toml": "v1"}, "web back as it was")
	r.Push()
	src := newSource(t, gitsync.Config{URL: r.Bare})
	rev, err := src.Fetch(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	collect := func(_ gitsync.Hash, data []byte) bool { got = append(got, string(data)); return true }
	if err := src.FileVersions(ctx, rev.Commit, "services/web.toml", collect); err != nil {
		t.Fatal(err)
	}
	if want := []string{"v1", "v2"}; !slices.Equal(got, want) {
		t.Fatalf("versions = %q, want %q (newest first, each content once)", got, want)
	}

	got = nil
	first := func(_ gitsync.Hash, data []byte) bool { got = append(got, string(data)); return false }
	if err := src.FileVersions(ctx, rev.Commit, "services/web.toml", first); err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 {
		t.Fatalf("fn returned false but was called %d times", len(got))
	}

	got = nil
	if err := src.FileVersions(ctx, rev.Commit, "services/none.toml", collect); err != nil || len(got) != 0 {
		t.Fatalf("a file never in the history: %q, %v", got, err)
	}

	var missing gitsync.Hash
	missing[0] = 1
	if err := src.FileVersions(ctx, missing, "services/web.toml", collect); !errors.Is(err, gitsync.ErrNotCached) {
		t.Fatalf("an unknown commit: %v, want ErrNotCached", err)
	}
}
