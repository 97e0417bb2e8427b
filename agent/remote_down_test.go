package agent

import (
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"

	"metacircular.net/mcp/internal/testenv"
)

// When the Git remote is down the node keeps converging on the commit it
// already has: a service that failed for another reason (its image was not
// pushed yet) is retried from the cached commit and deployed, and the
// outcome says the remote could not be reached.
func TestRemoteDownRetriesFromTheCachedCommit(t *testing.T) {
	n := newTestNode(t)
	remote := httptest.NewServer(testenv.GitHTTPHandler(t, n.repo.Bare))
	defer remote.Close()
	n.cfg.Git.URL = remote.URL + "/" + filepath.Base(n.repo.Bare)

	web := testenv.TestImage(t, n.registry, testenv.UniqueRepo("web"), "v1")
	lateRepo := testenv.UniqueRepo("late")
	lateRef := n.registry + "/" + lateRepo + ":v1" // not pushed yet
	n.push(map[string]string{
		"mcp.toml":           n.platform(),
		"services/web.toml":  service("web", web),
		"services/late.toml": service("late", lateRef),
	}, "web, and late whose image is not pushed yet")
	out := n.once()
	wantResult(t, out, ResultPartial)
	if _, ok := n.containers()["late.late.a"]; ok {
		t.Fatal("late runs although its image does not exist")
	}

	remote.Close() // the Git server goes away
	testenv.TestImage(t, n.registry, lateRepo, "v1")

	out = n.once()
	if out.Result != ResultPartial || !strings.Contains(out.Err, "cached commit") {
		t.Fatalf("reconcile with the remote down: result %q, error %q; want partial, naming the cached commit", out.Result, out.Err)
	}
	if body := get(t, n.port("late", "late", "default")); !strings.Contains(body, "version=v1") {
		t.Fatalf("late answered %q after the retry from the cached commit", body)
	}
	if cs := n.containers(); cs["web.web.a"].PID == 0 {
		t.Fatalf("web stopped while the remote was down: %+v", cs)
	}
}
