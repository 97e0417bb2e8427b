package cli

import (
	"context"
	"encoding/json"
	"hash/fnv"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"metacircular.net/mcp/planner"
	"metacircular.net/mcp/registry"
	"metacircular.net/mcp/spec"
)

const examplesDir = "../examples"

// TestPlanExamples pins `mcp plan` over the examples repo: first against a
// node with nothing deployed, then against a registry holding older
// versions of some services and one service the repo no longer has. The
// text and JSON forms must carry the same plan and hash.
func TestPlanExamples(t *testing.T) {
	older := olderRegistry(t)
	tests := []struct {
		name     string
		registry string
		golden   string
	}{
		{"empty node", "", "plan-examples-empty"},
		{"missing registry file is an empty node", filepath.Join(t.TempDir(), "absent.db"), "plan-examples-empty"},
		{"older versions deployed", older, "plan-examples-older"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			args := []string{"plan", "--repo", examplesDir, "--node", "rift"}
			if tt.registry != "" {
				args = append(args, "--registry", tt.registry)
			}
			code, text, stderr := run(context.Background(), args...)
			if code != ExitChanges {
				t.Fatalf("exit %d, want %d (changes); stderr:\n%s", code, ExitChanges, stderr)
			}
			golden(t, tt.golden+".txt", text)

			code, js, stderr := run(context.Background(), append(args, "--json")...)
			if code != ExitChanges {
				t.Fatalf("--json: exit %d; stderr:\n%s", code, stderr)
			}
			golden(t, tt.golden+".json", js)
			var p planner.Plan
			if err := json.Unmarshal([]byte(js), &p); err != nil {
				t.Fatalf("--json output is not one JSON object: %v", err)
			}
			if p.Hash == "" || len(p.Steps) == 0 {
				t.Fatalf("JSON plan lacks hash or steps: hash %q, %d steps", p.Hash, len(p.Steps))
			}
			for i, st := range p.Steps {
				if st.Service == "" || st.Action == "" {
					t.Fatalf("step %d has no service or action: %+v", i, st)
				}
			}
			if !strings.Contains(text, p.Hash) {
				t.Fatalf("the text plan does not show the JSON plan's hash %s", p.Hash)
			}
			if n := strings.Count(text, "\n  + ") + strings.Count(text, "\n  ~ ") + strings.Count(text, "\n  - ") + strings.Count(text, "\n  = "); n != len(p.Steps) {
				t.Fatalf("the text plan shows %d steps, the JSON plan has %d", n, len(p.Steps))
			}
		})
	}
}

// TestPlanOlderShowsWhatChanged checks the parts of the older-versions plan
// an operator relies on, independent of the golden file's exact layout.
func TestPlanOlderShowsWhatChanged(t *testing.T) {
	code, js, stderr := run(context.Background(), "plan", "--repo", examplesDir, "--node", "rift", "--registry", olderRegistry(t), "--json")
	if code != ExitChanges {
		t.Fatalf("exit %d; stderr:\n%s", code, stderr)
	}
	var p planner.Plan
	if err := json.Unmarshal([]byte(js), &p); err != nil {
		t.Fatal(err)
	}
	actions := map[string]map[planner.Action]int{}
	for _, st := range p.Steps {
		if actions[st.Service] == nil {
			actions[st.Service] = map[planner.Action]int{}
		}
		actions[st.Service][st.Action]++
	}
	if a := actions["retired"]; a[planner.ActionRemove] == 0 || a[planner.ActionCreate] != 0 {
		t.Errorf("retired (gone from the repo) should only be removed: %v", a)
	}
	if a := actions["mcr"]; len(a) != 0 {
		t.Errorf("mcr is deployed as desired and should have no steps: %v", a)
	}
	if a := actions["mcns"]; a[planner.ActionCreate] == 0 || a[planner.ActionRemove] != 0 || a[planner.ActionUpdate] != 0 {
		t.Errorf("mcns is new and should only be created: %v", a)
	}
	imageChange := false
	for _, st := range p.Steps {
		if st.Service == "metacrypt" && st.Kind == planner.KindContainer && st.Action == planner.ActionUpdate {
			for _, c := range st.Changes {
				if strings.Contains(c.Old, "v0.9.0") && strings.Contains(c.New, "v1.0.0") && c.Forces {
					imageChange = true
				}
			}
		}
	}
	if !imageChange {
		t.Errorf("metacrypt's containers should be replaced with a v0.9.0 → v1.0.0 change: %s", js)
	}
}

func TestPlanRejectsUnknownNode(t *testing.T) {
	code, _, stderr := run(context.Background(), "plan", "--repo", examplesDir, "--node", "nowhere")
	if code != ExitError || !strings.Contains(stderr, `"nowhere" is not declared`) || !strings.Contains(stderr, "rift") {
		t.Fatalf("exit %d, stderr %q: want 1 and a message listing the declared nodes", code, stderr)
	}
}

// The plan of a node whose desired state equals its registry is empty and
// exits 0.
func TestPlanNoChanges(t *testing.T) {
	repo, err := spec.LoadDir(examplesDir)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "registry.db")
	reg, err := registry.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	desired, _ := repo.ForNode("orion")
	for _, s := range desired {
		deploy(t, reg, s)
	}
	reg.Close()
	code, out, stderr := run(context.Background(), "plan", "--repo", examplesDir, "--node", "orion", "--registry", path)
	if code != ExitOK {
		t.Fatalf("exit %d, want 0; stdout:\n%s\nstderr:\n%s", code, out, stderr)
	}
	if !strings.Contains(out, "No changes") {
		t.Fatalf("a no-op plan should say so:\n%s", out)
	}
}

func TestValidate(t *testing.T) {
	tests := []struct {
		dir      string
		code     int
		stdout   string
		stderrRe string
	}{
		{examplesDir, ExitOK, "ok: ", ""},
		{"../testdata/broken/unknown-key", ExitError, "", `services/\S+\.toml: .*unknown key`},
		{"../testdata/broken/bad-ports", ExitError, "", `outside 1-65535`},
		{"../testdata/broken/platform-missing", ExitError, "", `mcp\.toml`},
	}
	for _, tt := range tests {
		t.Run(filepath.Base(tt.dir), func(t *testing.T) {
			code, out, stderr := run(context.Background(), "validate", tt.dir)
			if code != tt.code {
				t.Fatalf("exit %d, want %d; stderr:\n%s", code, tt.code, stderr)
			}
			if !strings.Contains(out, tt.stdout) {
				t.Errorf("stdout %q lacks %q", out, tt.stdout)
			}
			if tt.stderrRe != "" && !regexp.MustCompile(tt.stderrRe).MatchString(stderr) {
				t.Errorf("stderr does not match %q:\n%s", tt.stderrRe, stderr)
			}
		})
	}
}

// olderRegistry writes a registry for node rift as an agent would have left
// it one release ago: metacrypt at v0.9.0, mcq with another command, mcr
// exactly as desired, and "retired", a service since deleted from the repo.
func olderRegistry(t *testing.T) string {
	t.Helper()
	repo, err := spec.LoadDir(examplesDir)
	if err != nil {
		t.Fatal(err)
	}
	if repo.Diagnostics.HasErrors() {
		t.Fatalf("examples do not validate: %v", repo.Diagnostics)
	}
	path := filepath.Join(t.TempDir(), "registry.db")
	reg, err := registry.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer reg.Close()
	desired, _ := repo.ForNode("rift")
	byName := map[string]spec.Service{}
	for _, s := range desired {
		byName[s.Name] = s
	}

	metacrypt := clone(t, byName["metacrypt"])
	metacrypt.Version = "v0.9.0"
	for i := range metacrypt.Components {
		c := &metacrypt.Components[i]
		c.Image = strings.Replace(c.Image, ":v1.0.0", ":v0.9.0", 1)
		c.Version = "v0.9.0"
	}
	deploy(t, reg, metacrypt)

	mcq := clone(t, byName["mcq"])
	mcq.Components[0].Cmd = []string{"server"}
	deploy(t, reg, mcq)

	deploy(t, reg, byName["mcr"])

	retired := clone(t, byName["mcq"])
	retired.Name, retired.File = "retired", "services/retired.toml"
	retired.Components[0].Routes[0].Hostname = "retired.svc.mcp.metacircular.net"
	deploy(t, reg, retired)
	return path
}

// deploy records s as applied, with a fixed port per route, the way the
// executor records a finished service.
func deploy(t *testing.T, reg *registry.Registry, s spec.Service) {
	t.Helper()
	ctx := context.Background()
	d := registry.Deployed{
		Spec: s, SpecHash: spec.Hash(s), Commit: "0123456789abcdef0123456789abcdef01234567",
		AppliedAt:  time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC),
		Components: map[string]registry.ComponentState{},
	}
	for _, c := range s.Components {
		d.Components[c.Name] = registry.ComponentState{ImageDigest: "sha256:" + strings.Repeat("ab", 32)}
		for _, r := range c.Routes {
			if err := reg.PutLease(ctx, registry.Lease{Service: s.Name, Component: c.Name, Route: r.Key(), Port: portFor(s.Name, c.Name, r.Key())}); err != nil {
				t.Fatal(err)
			}
		}
		for _, p := range c.FixedPorts {
			if err := reg.PutLease(ctx, registry.Lease{Service: s.Name, Component: c.Name, Route: "fixed:" + itoa(p), Port: p, Fixed: true}); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := reg.PutDeployed(ctx, d); err != nil {
		t.Fatal(err)
	}
}

// portFor derives a port from the lease's identity, so the golden files do
// not depend on which tests ran before.
func portFor(service, component, route string) int {
	h := fnv.New32a()
	h.Write([]byte(service + "/" + component + "/" + route))
	return 20000 + int(h.Sum32()%10000)
}

func itoa(n int) string { b, _ := json.Marshal(n); return string(b) }

func clone(t *testing.T, s spec.Service) spec.Service {
	t.Helper()
	b, err := json.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	var c spec.Service
	if err := json.Unmarshal(b, &c); err != nil {
		t.Fatal(err)
	}
	return c
}
