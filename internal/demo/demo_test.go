package demo

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"metacircular.net/mcp/agent"
	"metacircular.net/mcp/planner"
	"metacircular.net/mcp/registry"
	"metacircular.net/mcp/spec"
)

func writeRepo(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, content := range files {
		path := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// The generated repo is valid, places hello on the demo node with the
// derived image, and a fresh node plans exactly: lease a port, pull the
// image, create the container.
func TestRepoFilesPlan(t *testing.T) {
	const reg = "127.0.0.1:5080"
	repo, err := spec.LoadDir(writeRepo(t, RepoFiles(reg)))
	if err != nil {
		t.Fatal(err)
	}
	if len(repo.Diagnostics) > 0 {
		t.Fatalf("diagnostics: %v", repo.Diagnostics)
	}
	desired, invalid := repo.ForNode(Node)
	if len(desired) != 1 || len(invalid) != 0 {
		t.Fatalf("ForNode(%s) = %d valid, %d invalid; want 1, 0", Node, len(desired), len(invalid))
	}
	svc := desired[0]
	if svc.Name != Service || len(svc.Components) != 1 {
		t.Fatalf("service %s with %d components, want %s with 1", svc.Name, len(svc.Components), Service)
	}
	if got, want := svc.Components[0].Image, reg+"/demo/hello:v1"; got != want {
		t.Errorf("image %q, want %q (where Up pushes it)", got, want)
	}

	p := planner.Compute(planner.Input{
		Domain:  repo.Platform.Domain,
		Node:    Node,
		Desired: desired,
		Actual:  registry.Snapshot{Node: Node},
	})
	if len(p.Errors) > 0 || p.Refused != "" {
		t.Fatalf("plan errors %v, refused %q", p.Errors, p.Refused)
	}
	var got []string
	for _, s := range p.Steps {
		got = append(got, string(s.Kind)+":"+string(s.Action))
	}
	want := "port:create image:create container:create"
	if strings.Join(got, " ") != want {
		t.Errorf("plan steps %v, want %s", got, want)
	}
}

// The README's edit, sed 's/v1/v2/', turns the service into v2 and
// changes nothing else.
func TestRepoFilesV2Edit(t *testing.T) {
	const reg = "127.0.0.1:5080"
	files := RepoFiles(reg)
	name := "services/" + Service + ".toml"
	before := files[name]
	after := strings.ReplaceAll(before, "v1", "v2")
	if strings.Count(before, "v1") != 1 {
		t.Fatalf("%s mentions v1 %d times; the sed in the next steps must change only the version:\n%s", name, strings.Count(before, "v1"), before)
	}
	files[name] = after
	repo, err := spec.LoadDir(writeRepo(t, files))
	if err != nil {
		t.Fatal(err)
	}
	desired, _ := repo.ForNode(Node)
	if len(desired) != 1 || desired[0].Components[0].Image != reg+"/demo/hello:v2" {
		t.Fatalf("after the edit: %+v, want image %s/demo/hello:v2", desired, reg)
	}
}

func TestAgentConfigText(t *testing.T) {
	s := Settings{
		StateDir:   "/var/lib/mcp-demo",
		WorkDir:    "/var/lib/mcp-demo/work",
		Containerd: "/var/lib/mcp-demo/containerd.sock",
		Namespace:  Namespace,
		Registry:   "127.0.0.1:5080",
		MCP:        "/opt/mcp/bin/mcp",
	}
	cfg, err := agent.ParseConfig(strings.NewReader(AgentConfigText(s)), "agent.toml")
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Node != Node || cfg.StateDir != s.AgentDir() || cfg.Git.URL != s.RepoDir() ||
		cfg.Git.Branch != Branch || cfg.Containerd.Address != s.Containerd ||
		cfg.Containerd.Namespace != Namespace || cfg.API.Socket != s.Socket() {
		t.Errorf("config %+v does not match the settings %+v", cfg, s)
	}
	if cfg.Git.PollInterval.Duration != 5*time.Second {
		t.Errorf("poll interval %v, want 5s", cfg.Git.PollInterval)
	}
	if len(cfg.Registries) != 1 || cfg.Registries[0].Host != s.Registry || !cfg.Registries[0].PlainHTTP {
		t.Errorf("registries %+v, want plain HTTP for %s only", cfg.Registries, s.Registry)
	}

	next := NextSteps(s, 12345)
	for _, want := range []string{"cd " + s.WorkDir, "sed -i 's/v1/v2/' services/hello.toml", "git push",
		s.MCP + " status --socket " + s.Socket(), "curl http://127.0.0.1:12345/", "demo.sh down"} {
		if !strings.Contains(next, want) {
			t.Errorf("next steps lack %q:\n%s", want, next)
		}
	}
}
