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
// image, create the container; with the demo agent's proxy and
// certificates on, also issue the certificate before the container and
// register the route after its health wait.
func TestRepoFilesPlan(t *testing.T) {
	const reg = "127.0.0.1:5080"
	repo, err := spec.LoadDir(writeRepo(t, RepoFiles(reg, 8443)))
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

	if r := svc.Components[0].Routes; len(r) != 1 || r[0].Port != 8443 || r[0].Hostname != Hostname() {
		t.Errorf("routes %+v, want one on listener 8443 for %s", r, Hostname())
	}
	for _, tc := range []struct {
		features planner.Features
		want     string
	}{
		{planner.Features{}, "port:create image:create container:create"},
		{planner.Features{Routes: true, Certs: true, Health: true},
			"port:create image:create cert:create container:create health:wait route:create"},
	} {
		p := planner.Compute(planner.Input{
			Domain:   repo.Platform.Domain,
			Node:     Node,
			Desired:  desired,
			Actual:   registry.Snapshot{Node: Node},
			Features: tc.features,
		})
		if len(p.Errors) > 0 || p.Refused != "" {
			t.Fatalf("plan errors %v, refused %q", p.Errors, p.Refused)
		}
		var got []string
		for _, s := range p.Steps {
			got = append(got, string(s.Kind)+":"+string(s.Action))
		}
		if strings.Join(got, " ") != tc.want {
			t.Errorf("features %+v: plan steps %v, want %s", tc.features, got, tc.want)
		}
	}
}

// The route's port must be one of mcp.toml's listeners: another port is
// a validation error, so the listener the demo picks is wired through.
func TestRepoFilesListener(t *testing.T) {
	files := RepoFiles("127.0.0.1:5080", 8444)
	name := "services/" + Service + ".toml"
	files[name] = strings.Replace(files[name], "port = 8444", "port = 9443", 1)
	repo, err := spec.LoadDir(writeRepo(t, files))
	if err != nil {
		t.Fatal(err)
	}
	if _, invalid := repo.ForNode(Node); len(invalid) != 1 {
		t.Fatalf("a route on port 9443 with listeners = [8444]: %d invalid services, want 1", len(invalid))
	}
}

// The README's edit, sed 's/v1/v2/', turns the service into v2 and
// changes nothing else.
func TestRepoFilesV2Edit(t *testing.T) {
	const reg = "127.0.0.1:5080"
	files := RepoFiles(reg, 8443)
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
		ProxyPort:  8443,
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

	// haproxy as the demo starts it: the agent must render the same
	// haproxy.cfg (so it has nothing to reload) and put the certificate
	// under the state dir.
	hc := haproxyConfig(s)
	px := cfg.Proxy
	if px.Driver != agent.ProxyHAProxy || px.ConfigDir != hc.Dir || px.AdminSocket != hc.AdminSocket ||
		px.MasterSocket != hc.MasterSocket || px.CertDir != s.ProxyCertDir() || px.BackendHost != "127.0.0.1" {
		t.Errorf("proxy %+v does not match the haproxy the demo starts (%+v, certs in %s)", px, hc, s.ProxyCertDir())
	}
	if len(px.Listeners) != 1 || px.Listeners[0] != hc.Listeners[0] {
		t.Errorf("proxy listeners %+v, want %+v", px.Listeners, hc.Listeners)
	}
	if !cfg.CertsOn() || cfg.Certs.Issuer != agent.IssuerLocal || cfg.LocalCADir()+"/root.pem" != s.CARoot() {
		t.Errorf("certs %+v (CA in %s), want the local issuer with its root at %s", cfg.Certs, cfg.LocalCADir(), s.CARoot())
	}

	next := NextSteps(s, 12345)
	for _, want := range []string{"cd " + s.WorkDir, "sed -i 's/v1/v2/' services/hello.toml", "git push",
		s.MCP + " status --socket " + s.Socket(), "curl http://127.0.0.1:12345/", "demo.sh down",
		"The URL to open: https://hello.svc.mcp.demo.internal:8443/",
		"curl --cacert /var/lib/mcp-demo/agent/ca/root.pem --resolve hello.svc.mcp.demo.internal:8443:127.0.0.1 https://hello.svc.mcp.demo.internal:8443/"} {
		if !strings.Contains(next, want) {
			t.Errorf("next steps lack %q:\n%s", want, next)
		}
	}
	// Blue-green moves the container to the other port of its pair: only
	// the proxy URL stays.
	if strings.Contains(next, "same port") {
		t.Errorf("next steps promise the same port:\n%s", next)
	}
}
