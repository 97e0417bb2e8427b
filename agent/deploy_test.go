package agent

import (
	"context"
	"strings"
	"testing"

	"metacircular.net/mcp/api"
	"metacircular.net/mcp/internal/testenv"
)

// A pushed definition is deployed and answers on its leased port; a new
// version replaces it on the same port; removing the file removes the
// container, the lease and the registry entry, and the other service is
// never restarted.
func TestDeployUpdateRemove(t *testing.T) {
	n := newTestNode(t)
	repoName := testenv.UniqueRepo("web")
	v1 := testenv.TestImage(t, n.registry, repoName, "v1")
	v2 := testenv.TestImage(t, n.registry, repoName, "v2")

	n.push(map[string]string{
		"mcp.toml":           n.platform(),
		"services/web.toml":  service("web", v1),
		"services/keep.toml": service("keep", v1),
	}, "deploy web and keep")
	out := n.once()
	wantResult(t, out, ResultOK)
	if out.Finished.IsZero() || out.Finished.Before(out.Started) {
		t.Errorf("reconcile outcome times: started %v, finished %v", out.Started, out.Finished)
	}

	port := n.port("web", "web", "default")
	if body := get(t, port); !strings.Contains(body, "version=v1") {
		t.Fatalf("web answered %q, want version=v1", body)
	}
	keepPID := n.containers()["keep.keep.a"].PID
	if keepPID == 0 {
		t.Fatalf("keep is not running: %+v", n.containers())
	}

	n.push(map[string]string{"services/web.toml": service("web", v2)}, "web v2")
	wantResult(t, n.once(), ResultOK)
	if got := n.port("web", "web", "default"); got != port {
		t.Fatalf("port moved from %d to %d on update", port, got)
	}
	if body := get(t, port); !strings.Contains(body, "version=v2") {
		t.Fatalf("web answered %q after the update, want version=v2", body)
	}
	if pid := n.containers()["keep.keep.a"].PID; pid != keepPID {
		t.Fatalf("keep was restarted by web's update (pid %d → %d)", keepPID, pid)
	}

	n.remove([]string{"services/web.toml"}, "remove web")
	wantResult(t, n.once(), ResultOK)
	cs := n.containers()
	if _, ok := cs["web.web.a"]; ok {
		t.Fatalf("web's container still exists after removal: %+v", cs)
	}
	snap := n.snapshot()
	if _, ok := snap.Services["web"]; ok {
		t.Fatal("web is still in the registry after removal")
	}
	for _, l := range snap.Leases {
		if l.Service == "web" {
			t.Fatalf("web's lease %s (port %d) was not released", l.Key(), l.Port)
		}
	}
	if pid := cs["keep.keep.a"].PID; pid != keepPID {
		t.Fatalf("keep was restarted by web's removal (pid %d → %d)", keepPID, pid)
	}
	if open := n.journalOpen(); len(open) != 0 {
		t.Fatalf("journal entries left in flight: %+v", open)
	}
}

// A broken definition pushed next to a working one is reported with its
// validation message; the working one is deployed, and a broken update of
// a deployed service leaves the deployed version running untouched.
func TestBrokenDefinitionLeavesOthersDeployed(t *testing.T) {
	n := newTestNode(t)
	img := testenv.TestImage(t, n.registry, testenv.UniqueRepo("web"), "v1")

	n.push(map[string]string{
		"mcp.toml":          n.platform(),
		"services/web.toml": service("web", img),
	}, "web")
	wantResult(t, n.once(), ResultOK)
	webPID := n.containers()["web.web.a"].PID

	broken := strings.Replace(service("web", img), "mode = \"l7\"", "mode = \"l7\"\nvolume = \"/srv/web:/data\"", 1)
	n.push(map[string]string{
		"services/web.toml":  broken,
		"services/good.toml": service("good", img),
	}, "a typo in web, a new good service")
	out := n.once()
	wantResult(t, out, ResultPartial)
	if len(out.Invalid) != 1 || out.Invalid[0].Name != "web" {
		t.Fatalf("invalid services = %+v, want only web", out.Invalid)
	}
	msg := out.Invalid[0].Diagnostics.Error()
	if !strings.Contains(msg, "services/web.toml") || !strings.Contains(msg, "volume") {
		t.Fatalf("diagnostic %q does not name the file and the key", msg)
	}
	cs := n.containers()
	if cs["good.good.a"].PID == 0 {
		t.Fatalf("good was not deployed next to the broken web: %+v", cs)
	}
	if cs["web.web.a"].PID != webPID {
		t.Fatalf("web was touched although its new definition is invalid (pid %d → %d)", webPID, cs["web.web.a"].PID)
	}
	if body := get(t, n.port("web", "web", "default")); !strings.Contains(body, "version=v1") {
		t.Fatalf("web answered %q, want the deployed v1", body)
	}

	// The status the operator reads says why.
	a := New(n.cfg, Deps{Registry: mustOpen(t, n), Runtime: n.driver(), Source: nil})
	a.keepLast(out)
	st, err := a.Status(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	web, _ := st.Service("web")
	if web.State != api.StateInvalid || len(web.Diagnostics) == 0 || !strings.Contains(web.Error, "keeps running") {
		t.Fatalf("web status = %+v, want invalid with diagnostics and the deployed version kept", web)
	}
	good, _ := st.Service("good")
	if good.State != api.StateRunning {
		t.Fatalf("good status = %+v, want running", good)
	}
}
