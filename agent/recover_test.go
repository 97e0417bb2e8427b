package agent

import (
	"context"
	"encoding/json"
	"strings"
	"syscall"
	"testing"
	"time"

	"metacircular.net/mcp/api"
	"metacircular.net/mcp/executor"
	"metacircular.net/mcp/internal/testenv"
)

// containerd restarts (an upgrade, a crash) under a running agent: the
// workloads keep running (their shims outlive the daemon), the agent's
// client reconnects on its own, and the next reconcile neither restarts
// nor recreates anything. While containerd is down, one workload crashes:
// its exit happens with nobody listening, so restarting it proves the
// agent's supervisor reconnected and caught up. Meanwhile `mcp status`
// still tells what is deployed.
func TestContainerdRestartUnderRunningAgent(t *testing.T) {
	d := testenv.StartContainerd(t)
	n := newTestNode(t, withContainerd(d.Address), withPollInterval("1h"))
	img := testenv.TestImage(t, n.registry, testenv.UniqueRepo("restart/web"), "v1")
	n.push(map[string]string{
		"mcp.toml":            n.platform(),
		"services/web.toml":   webService(img, img),
		"services/crash.toml": service("crash", img),
	}, "web and crash")
	c := n.startDaemon()
	ctx := t.Context()

	wantSync(t, syncNow(t, c), api.ResultOK)
	before := n.containers()
	if len(before) != 3 {
		t.Fatalf("containers before the restart: %v, want web's two and crash's", before)
	}
	// The registry is the running agent's (bbolt locks it): ask the API.
	ports := statusPorts(t, c, "web")

	d.Stop()
	// While containerd is down, `mcp status` still answers from the
	// registry: what is deployed, on which ports; containers unknown.
	out, code := mcpCLI(t, "status", "--socket", n.cfg.API.Socket, "--json")
	var down api.Status
	if err := json.Unmarshal([]byte(out), &down); code != 0 || err != nil {
		t.Fatalf("mcp status with containerd down: exit %d (%v):\n%s", code, err, out)
	}
	if !strings.Contains(down.RuntimeError, "containerd") {
		t.Errorf("status with containerd down says runtime_error %q, want it to name containerd", down.RuntimeError)
	}
	if ws, _ := down.Service("web"); len(ws.Components) != 2 || ws.Components[0].State != api.ComponentUnknown ||
		ws.Components[0].Ports["rest"] != ports["api/rest"] {
		t.Errorf("web in the status with containerd down = %+v, want its two components, state unknown, with their ports", ws)
	}
	victim := before["crash.crash.a"].PID
	if err := syscall.Kill(int(victim), syscall.SIGKILL); err != nil {
		t.Fatalf("kill crash's process %d: %v", victim, err)
	}
	if err := d.Start(ctx); err != nil {
		t.Fatalf("start containerd again: %v", err)
	}
	waitFor(t, time.Minute, "crash (killed while containerd was down) to be restarted by the agent", func() bool {
		c := n.containers()["crash.crash.a"]
		return c.Status == executor.StatusRunning && c.PID != victim
	})

	wantSync(t, syncNow(t, c), api.ResultOK)
	after := n.containers()
	for _, id := range []string{"web.api.a", "web.web.a"} {
		a, ok := after[id]
		switch {
		case !ok:
			t.Errorf("%s is gone after the containerd restart", id)
		case a.PID != before[id].PID:
			t.Errorf("%s was restarted across the containerd restart (pid %d → %d)", id, before[id].PID, a.PID)
		}
	}
	if len(after) != len(before) {
		t.Errorf("containers after the restart: %v, want the same %d as before", after, len(before))
	}
	for key, p := range ports {
		if body := get(t, p); !strings.Contains(body, "version=v1") {
			t.Errorf("%s (port %d) answered %q after the containerd restart", key, p, body)
		}
	}
	st, err := c.Status(ctx)
	if err != nil {
		t.Fatalf("status: %v", err)
	}
	wantRestarts := map[string]int{"web": 0, "crash": 1}
	for name, restarts := range wantRestarts {
		s, ok := st.Service(name)
		if !ok || s.State != api.StateRunning {
			t.Errorf("status of %s after the containerd restart = %+v, want running", name, s)
			continue
		}
		for _, comp := range s.Components {
			if comp.Restarts != restarts {
				t.Errorf("status counts %d restarts of %s/%s, want %d", comp.Restarts, name, comp.Name, restarts)
			}
		}
	}
}

// containerd loses everything (root wiped: containers, images, snapshots)
// while the image registry is down too: the next reconcile brings every
// service back on its own ports from mcp's registry, its image archives and
// the repo alone.
func TestRebuildFromOwnStateAfterContainerdLostEverything(t *testing.T) {
	d := testenv.StartContainerd(t)
	r := testenv.StartRegistry(t)
	n := newTestNode(t, withContainerd(d.Address), withRegistry(r.Addr))
	imgWeb := testenv.TestImage(t, r.Addr, testenv.UniqueRepo("rebuild/web"), "v1")
	imgOne := testenv.TestImage(t, r.Addr, testenv.UniqueRepo("rebuild/one"), "v3")
	n.push(map[string]string{
		"mcp.toml":          n.platform(),
		"services/web.toml": webService(imgWeb, imgWeb),
		"services/one.toml": service("one", imgOne),
	}, "web and one")
	wantResult(t, n.once(), ResultOK)
	want := map[int]string{} // port → version it answers with
	for _, svc := range []string{"web", "one"} {
		for _, p := range servicePorts(n.snapshot(), svc) {
			want[p] = "version=v1"
			if svc == "one" {
				want[p] = "version=v3"
			}
		}
	}
	if len(want) != 3 {
		t.Fatalf("leased ports %v, want three", want)
	}

	r.Stop()
	d.Stop()
	if err := d.WipeRoot(); err != nil {
		t.Fatalf("wipe containerd's root: %v", err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	if err := d.Start(ctx); err != nil {
		t.Fatalf("start containerd: %v", err)
	}
	if cs := n.containers(); len(cs) != 0 {
		t.Fatalf("containerd still knows containers after the wipe: %v", cs)
	}

	out := n.once()
	wantResult(t, out, ResultOK)
	if len(out.Repairs) != 3 {
		t.Errorf("repairs = %+v, want the three containers recreated", out.Repairs)
	}
	for p, v := range want {
		if body := get(t, p); !strings.Contains(body, v) {
			t.Errorf("port %d answered %q after the rebuild, want %s", p, body, v)
		}
	}
	if cs := n.containers(); len(cs) != 3 {
		t.Errorf("containers after the rebuild: %v, want three", cs)
	}
	if open := n.journalOpen(); len(open) != 0 {
		t.Errorf("journal entries left in flight: %+v", open)
	}
}

// syncNow asks the agent to reconcile now, through its API.
func syncNow(t *testing.T, c *api.Client) api.SyncResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()
	res, err := c.Sync(ctx)
	if err != nil {
		t.Fatalf("sync: %v", err)
	}
	return res
}

func wantSync(t *testing.T, res api.SyncResult, want string) {
	t.Helper()
	if res.Reconcile.Result != want {
		t.Fatalf("reconcile result = %q (%s), want %q", res.Reconcile.Result, res.Reconcile.Error, want)
	}
}

// statusPorts maps "component/route" to the host port `mcp status` shows
// for a service.
func statusPorts(t *testing.T, c *api.Client, service string) map[string]int {
	t.Helper()
	st, err := c.Status(t.Context())
	if err != nil {
		t.Fatalf("status: %v", err)
	}
	s, ok := st.Service(service)
	if !ok {
		t.Fatalf("status has no service %s: %+v", service, st.Services)
	}
	out := map[string]int{}
	for _, comp := range s.Components {
		for route, p := range comp.Ports {
			out[comp.Name+"/"+route] = p
		}
	}
	return out
}
