package agent

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"metacircular.net/mcp/internal/testenv"
)

// mcp keeps its own copy of the current and the previous image of every
// component (for rollback, and to rebuild with the registry down); older
// ones are removed, so the state dir does not grow with every release.
func TestImageRetentionKeepsCurrentAndPrevious(t *testing.T) {
	n := newTestNode(t)
	repoName := testenv.UniqueRepo("web")
	var imgs []testenv.Image
	for _, tag := range []string{"v1", "v2", "v3"} {
		imgs = append(imgs, testenv.BuildImage(t, n.registry, repoName, tag))
	}
	n.push(map[string]string{"mcp.toml": n.platform(), "services/web.toml": service("web", imgs[0].Ref)}, "v1")
	wantResult(t, n.once(), ResultOK)
	for _, img := range imgs[1:] {
		n.push(map[string]string{"services/web.toml": service("web", img.Ref)}, "next version")
		wantResult(t, n.once(), ResultOK)
	}

	archives := map[string]bool{}
	entries, err := os.ReadDir(filepath.Join(n.cfg.StateDir, "images"))
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		archives[strings.TrimSuffix(e.Name(), ".tar")] = true
	}
	hex := func(img testenv.Image) string { return strings.TrimPrefix(img.Digest, "sha256:") }
	if archives[hex(imgs[0])] {
		t.Errorf("v1's archive is still kept after v3 deployed: %v", archives)
	}
	for _, img := range imgs[1:] {
		if !archives[hex(img)] {
			t.Errorf("archive of %s (current or previous) is missing: %v", img.Ref, archives)
		}
	}
	st := n.snapshot().Services["web"].Components["web"]
	if st.ImageDigest != imgs[2].Digest || st.PreviousDigest != imgs[1].Digest {
		t.Errorf("registry records current %s previous %s, want %s and %s", st.ImageDigest, st.PreviousDigest, imgs[2].Digest, imgs[1].Digest)
	}
}
