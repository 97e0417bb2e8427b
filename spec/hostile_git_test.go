package spec

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"metacircular.net/mcp/internal/hostile"
	"metacircular.net/mcp/internal/testenv"
	gitsync "metacircular.net/mcp/sync"
)

// TestHostileGitTree loads every hostile case the way the agent does: from
// a commit's tree through the sync package's fs.FS, where links are tree
// entries rather than files of the host. The diagnostics must be exactly
// those of TestHostile (the same want.txt): mcp validate on a checkout and
// the agent on the commit agree on what is refused and why.
func TestHostileGitTree(t *testing.T) {
	if testing.Short() {
		t.Skip("commits every case to a Git repository")
	}
	for _, name := range hostileCases(t) {
		t.Run(name, func(t *testing.T) {
			r := testenv.GitRepo(t)
			if hostile.Materialise(t, hostileDir, name, r.Work) {
				t.Skip("a FIFO cannot be committed")
			}
			testenv.Git(t, r.Work, "add", "-A")
			testenv.Git(t, r.Work, "commit", "--quiet", "--no-verify", "-m", name)
			r.Push()
			src, err := gitsync.New(gitsync.Config{URL: r.Bare, CacheDir: filepath.Join(t.TempDir(), "cache")})
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
			defer cancel()
			rev, err := src.Fetch(ctx)
			if err != nil {
				t.Fatal(err)
			}
			repo, err := Load(rev.Tree)
			checkHostileInvariants(t, repo, err)
			got := loadResult(repo, err)
			want, err := os.ReadFile(filepath.Join(hostileDir, name, "want.txt"))
			if err != nil {
				t.Fatal(err)
			}
			if got != string(want) {
				t.Errorf("through the Git tree the diagnostics differ from want.txt\ngot:\n%s\nwant:\n%s", got, want)
			}
		})
	}
}
