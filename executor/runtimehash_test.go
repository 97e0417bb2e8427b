package executor

import (
	"strings"
	"testing"

	"metacircular.net/mcp/spec"
)

func baseSpec() ContainerSpec {
	return ContainerSpec{
		ID: "mcq.mcq.0", Service: "mcq", Component: "mcq", Slot: 0,
		Image:   "reg.example:5000/mcq:v1",
		Digest:  "sha256:aaaa",
		Env:     []string{"PORT=10000", "A=1"},
		Cmd:     []string{"server"},
		User:    "0:0",
		Volumes: []spec.Volume{{Host: "/srv/mcq", Container: "/srv/mcq"}, {Host: "/srv/mcq/x", Container: "/x", ReadOnly: true}},
		Restart: "unless-stopped",
		Labels:  map[string]string{LabelVersion: "v1"},
		LogPath: "/var/lib/mcp/logs/mcq.log",
	}
}

func TestRuntimeHashIgnoresWhatTheRuntimeDoesNotSee(t *testing.T) {
	want := RuntimeHash(baseSpec())
	for name, mut := range map[string]func(*ContainerSpec){
		"labels":      func(s *ContainerSpec) { s.Labels = map[string]string{LabelCommit: "abc"} },
		"log path":    func(s *ContainerSpec) { s.LogPath = "/elsewhere.log" },
		"grace":       func(s *ContainerSpec) { s.StopGrace = 42 },
		"image tag":   func(s *ContainerSpec) { s.Image = "reg.example:5000/mcq:v1-again" },
		"env order":   func(s *ContainerSpec) { s.Env = []string{"A=1", "PORT=10000"} },
		"env repeat":  func(s *ContainerSpec) { s.Env = []string{"A=0", "PORT=10000", "A=1"} },
		"volume sort": func(s *ContainerSpec) { s.Volumes[0], s.Volumes[1] = s.Volumes[1], s.Volumes[0] },
		"id and slot": func(s *ContainerSpec) { s.ID, s.Slot = "mcq.mcq.1", 1 },
	} {
		s := baseSpec()
		mut(&s)
		if got := RuntimeHash(s); got != want {
			t.Errorf("%s changed the hash: %s != %s", name, got, want)
		}
	}
}

func TestRuntimeHashSeesRuntimeFields(t *testing.T) {
	base := RuntimeHash(baseSpec())
	for name, mut := range map[string]func(*ContainerSpec){
		"digest":  func(s *ContainerSpec) { s.Digest = "sha256:bbbb" },
		"env":     func(s *ContainerSpec) { s.Env = []string{"PORT=10001", "A=1"} },
		"cmd":     func(s *ContainerSpec) { s.Cmd = []string{"server", "-v"} },
		"no cmd":  func(s *ContainerSpec) { s.Cmd = nil },
		"user":    func(s *ContainerSpec) { s.User = "1000:1000" },
		"ro":      func(s *ContainerSpec) { s.Volumes[0].ReadOnly = true },
		"volume":  func(s *ContainerSpec) { s.Volumes = s.Volumes[:1] },
		"restart": func(s *ContainerSpec) { s.Restart = "always" },
	} {
		s := baseSpec()
		mut(&s)
		if got := RuntimeHash(s); got == base {
			t.Errorf("%s did not change the hash", name)
		}
	}
}

// The encoding is a promise to running containers: if this value changes,
// every container restarts on upgrade. Change it only with a new
// runtimeHashVersion, on purpose.
func TestRuntimeHashIsStable(t *testing.T) {
	got := RuntimeHash(baseSpec())
	const want = "rt1:"
	if !strings.HasPrefix(got, want) || len(got) != len(want)+64 {
		t.Fatalf("RuntimeHash = %q, want rt1:<64 hex>", got)
	}
	if golden := goldenRuntimeHash; got != golden {
		t.Fatalf("RuntimeHash(baseSpec()) = %s, was %s: the canonical encoding changed", got, golden)
	}
}

const goldenRuntimeHash = "rt1:d5ef40b517e998f46f614136503c257a376601ea62d065d664717fc8df7d715c"

func TestRuntimeHashWithoutDigestUsesImage(t *testing.T) {
	a, b := baseSpec(), baseSpec()
	a.Digest, b.Digest = "", ""
	b.Image = "reg.example:5000/mcq:v2"
	if RuntimeHash(a) == RuntimeHash(b) {
		t.Fatal("without a digest, the image reference must count")
	}
}
