package spec

import (
	"encoding/json"
	"fmt"
	"io/fs"
	"reflect"
	"strings"
	"testing"
	"testing/fstest"
)

const testPlatform = `domain = "example.org"
registry = "registry.example.org:8443"

[[nodes]]
name = "rift"
addresses = ["192.0.2.10"]
`

// repoFS builds a repository from mcp.toml and services by name.
func repoFS(platform string, services map[string]string) fstest.MapFS {
	fsys := fstest.MapFS{"mcp.toml": {Data: []byte(platform)}}
	for name, body := range services {
		fsys["services/"+name+".toml"] = &fstest.MapFile{Data: []byte(body)}
	}
	return fsys
}

func mustLoad(t *testing.T, fsys fs.FS) *Repo {
	t.Helper()
	repo, err := Load(fsys)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	return repo
}

// loadOne loads a repository holding one service and returns it, failing
// the test on any error.
func loadOne(t *testing.T, platform, name, body string) Service {
	t.Helper()
	repo := mustLoad(t, repoFS(platform, map[string]string{name: body}))
	if repo.Diagnostics.HasErrors() || len(repo.Services) != 1 {
		t.Fatalf("want one valid service, got %d; diagnostics:\n%v", len(repo.Services), repo.Diagnostics)
	}
	return repo.Services[0]
}

func TestExamples(t *testing.T) {
	repo, err := LoadDir("../examples")
	if err != nil {
		t.Fatal(err)
	}
	if len(repo.Diagnostics) > 0 {
		t.Fatalf("examples are not clean:\n%v", repo.Diagnostics)
	}
	var names []string
	for _, s := range repo.Services {
		names = append(names, s.Name)
	}
	want := "mc-proxy mcdoc mcns mcq mcr metacrypt"
	if got := strings.Join(names, " "); got != want {
		t.Errorf("services = %s, want %s", got, want)
	}
}

func TestConventions(t *testing.T) {
	tests := []struct {
		name     string
		platform string
		body     string
		check    func(t *testing.T, s Service)
	}{
		{
			name: "images from registry and version",
			body: `name = "svc"
node = "rift"
version = "v1.0.0"
[[components]]
name = "api"
[[components]]
name = "web"
[[components]]
name = "worker"
version = "v1.0.1"
`,
			check: func(t *testing.T, s Service) {
				want := []string{
					"registry.example.org:8443/svc:v1.0.0",
					"registry.example.org:8443/svc-web:v1.0.0",
					"registry.example.org:8443/svc-worker:v1.0.1",
				}
				for i, c := range s.Components {
					if c.Image != want[i] {
						t.Errorf("components[%d].Image = %s, want %s", i, c.Image, want[i])
					}
				}
				if s.Components[2].Version != "v1.0.1" || s.Version != "v1.0.0" {
					t.Errorf("versions: service %s, worker %s", s.Version, s.Components[2].Version)
				}
			},
		},
		{
			name: "explicit image keeps its tag or digest as version",
			body: `name = "svc"
node = "rift"
[[components]]
name = "a"
image = "other.example:5000/team/a:2024.01_rc-1"
[[components]]
name = "b"
image = "b@sha256:` + strings.Repeat("ab", 32) + `"
`,
			check: func(t *testing.T, s Service) {
				if v := s.Components[0].Version; v != "2024.01_rc-1" {
					t.Errorf("a version = %s", v)
				}
				if v := s.Components[1].Version; v != "sha256:"+strings.Repeat("ab", 32) {
					t.Errorf("b version = %s", v)
				}
				if s.Version != "" {
					t.Errorf("service version = %q, want empty when components differ", s.Version)
				}
			},
		},
		{
			name: "route env vars and default hostname",
			body: `name = "svc"
node = "rift"
version = "v1"
[[components]]
name = "api"
[[components.routes]]
name = "rest"
port = 8443
mode = "l4"
[[components.routes]]
name = "grpc-web"
port = 9443
mode = "l4"
[[components]]
name = "web"
[[components.routes]]
port = 443
mode = "l7"
[[components]]
name = "admin"
[[components.routes]]
name = "admin"
port = 8444
mode = "l7"
[[components]]
name = "mixed"
[[components.routes]]
port = 8445
mode = "l4"
[[components.routes]]
name = "metrics"
port = 8446
mode = "l4"
`,
			check: func(t *testing.T, s Service) {
				got := map[string][]string{}
				for _, c := range s.Components {
					for _, r := range c.Routes {
						got[c.Name+"/"+r.Key()] = r.EnvVars
						if r.Hostname != "svc.svc.mcp.example.org" {
							t.Errorf("%s/%s hostname = %s", c.Name, r.Key(), r.Hostname)
						}
					}
				}
				want := map[string][]string{
					"api/rest":      {"PORT_REST"},
					"api/grpc-web":  {"PORT_GRPC_WEB"},
					"web/default":   {"PORT"},
					"admin/admin":   {"PORT", "PORT_ADMIN"},
					"mixed/default": {"PORT"},
					"mixed/metrics": {"PORT_METRICS"},
				}
				if !reflect.DeepEqual(got, want) {
					t.Errorf("env vars = %v, want %v", got, want)
				}
			},
		},
		{
			name: "default volume first, declared volumes added, same path replaces",
			body: `name = "svc"
node = "rift"
version = "v1"
[[components]]
name = "a"
[[components]]
name = "b"
volumes = ["/srv/svc/certs:/certs:ro", "/srv/svc/:/srv/svc:ro"]
`,
			check: func(t *testing.T, s Service) {
				if got := fmt.Sprint(s.Components[0].Volumes); got != "[/srv/svc:/srv/svc]" {
					t.Errorf("a volumes = %s", got)
				}
				if got := fmt.Sprint(s.Components[1].Volumes); got != "[/srv/svc:/srv/svc:ro /srv/svc/certs:/certs:ro]" {
					t.Errorf("b volumes = %s", got)
				}
			},
		},
		{
			name: "built-in defaults",
			body: `name = "svc"
node = "rift"
version = "v1"
[[components]]
name = "a"
`,
			check: func(t *testing.T, s Service) {
				c := s.Components[0]
				if c.User != "0:0" || c.Restart != "unless-stopped" || s.Tier != "worker" || !s.Active {
					t.Errorf("user %s restart %s tier %s active %v", c.User, c.Restart, s.Tier, s.Active)
				}
			},
		},
		{
			name:     "platform defaults and overrides",
			platform: testPlatform + "[defaults]\nuser = \"1000:1000\"\nrestart = \"always\"\ntier = \"core\"\n",
			body: `name = "svc"
node = "rift"
version = "v1"
active = false
[[components]]
name = "a"
[[components]]
name = "b"
user = "mcp"
restart = "on-failure"
`,
			check: func(t *testing.T, s Service) {
				a, b := s.Components[0], s.Components[1]
				if a.User != "1000:1000" || a.Restart != "always" || s.Tier != "core" || s.Active {
					t.Errorf("a: user %s restart %s tier %s active %v", a.User, a.Restart, s.Tier, s.Active)
				}
				if b.User != "mcp" || b.Restart != "on-failure" {
					t.Errorf("b: user %s restart %s", b.User, b.Restart)
				}
			},
		},
		{
			name: "legacy fixed ports",
			body: `name = "svc"
node = "rift"
version = "v1"
[[components]]
name = "a"
ports = ["443:443", "127.0.0.1:8443:8443", "53/udp", "53:53/tcp", "[::1]:9443:9443"]
`,
			check: func(t *testing.T, s Service) {
				if got := fmt.Sprint(s.Components[0].FixedPorts); got != "[443 8443 53 9443]" {
					t.Errorf("fixed ports = %s", got)
				}
			},
		},
		{
			name: "env, cmd and kept build fields",
			body: `name = "svc"
node = "rift"
version = "v1"
path = "../svc"
[build.images]
svc = "Dockerfile"
[snapshot]
keep = 3
[[components]]
name = "a"
env = ["A=1", "B=x=y", "C="]
cmd = ["server", "--config", "/srv/svc/svc.toml"]
`,
			check: func(t *testing.T, s Service) {
				c := s.Components[0]
				want := []EnvVar{{Name: "A", Value: "1"}, {Name: "B", Value: "x=y"}, {Name: "C", Value: ""}}
				if !reflect.DeepEqual(c.Env, want) {
					t.Errorf("env = %v", c.Env)
				}
				if len(c.Cmd) != 3 || s.Path != "../svc" || s.Build["svc"] != "Dockerfile" || s.Snapshot["keep"] != int64(3) {
					t.Errorf("cmd %v path %s build %v snapshot %v", c.Cmd, s.Path, s.Build, s.Snapshot)
				}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			platform := tt.platform
			if platform == "" {
				platform = testPlatform
			}
			tt.check(t, loadOne(t, platform, "svc", tt.body))
		})
	}
}

func TestHashStable(t *testing.T) {
	explicit := `name = "mcq"
node = "rift"
active = true

[[components]]
name = "mcq"
image = "registry.example.org:8443/mcq:v0.3.2"
volumes = ["/srv/mcq:/srv/mcq"]
restart = "unless-stopped"
user = "0:0"
network = "mcpnet"

[[components.routes]]
port = 8443
mode = "l7"
hostname = "mcq.svc.mcp.example.org"
`
	convention := `# Same service, conventions spelled out nowhere.
version = "v0.3.2"
node = "rift"
name = "mcq"
[[components]]
  name = "mcq"
  [[components.routes]]
    mode = "l7"
    port = 8443
`
	a := loadOne(t, testPlatform, "mcq", explicit)
	b := loadOne(t, testPlatform, "mcq", convention)
	if Hash(a) != Hash(b) {
		ja, _ := json.Marshal(a)
		jb, _ := json.Marshal(b)
		t.Fatalf("hashes differ\n%s\n%s", ja, jb)
	}
	if h := Hash(a); !strings.HasPrefix(h, "sha256:") || Hash(a) != h {
		t.Errorf("hash %s is not stable", h)
	}
	bumped := loadOne(t, testPlatform, "mcq", strings.Replace(convention, "v0.3.2", "v0.3.3", 1))
	if Hash(bumped) == Hash(a) {
		t.Error("a new version kept the same hash")
	}
}

func TestNetworkIsAWarning(t *testing.T) {
	repo := mustLoad(t, repoFS(testPlatform, map[string]string{"svc": `name = "svc"
node = "rift"
version = "v1"
[[components]]
name = "a"
network = "mcpnet"
`}))
	if len(repo.Services) != 1 || repo.Diagnostics.HasErrors() {
		t.Fatalf("service rejected: %v", repo.Diagnostics)
	}
	want := `services/svc.toml: components[0].network: warning: network "mcpnet" is ignored: containers use host networking and listen on their assigned ports`
	if got := repo.Diagnostics.Error(); got != want {
		t.Errorf("got %s\nwant %s", got, want)
	}
}

const goodService = `name = "%s"
node = "rift"
version = "v1"
[[components]]
name = "a"
`

func TestInputLimits(t *testing.T) {
	deep := "name = \"bad\"\nx = " + strings.Repeat("[", MaxNesting+1) + strings.Repeat("]", MaxNesting+1) + "\n"
	tests := []struct {
		name  string
		edit  func(fstest.MapFS)
		want  string
		valid bool // whether the platform stays valid
	}{
		{
			name:  "file too large",
			edit:  func(m fstest.MapFS) { m["services/bad.toml"] = &fstest.MapFile{Data: make([]byte, MaxFileSize+1)} },
			want:  "services/bad.toml: is 262145 bytes, more than the limit of 262144",
			valid: true,
		},
		{
			name:  "nesting too deep",
			edit:  func(m fstest.MapFS) { m["services/bad.toml"] = &fstest.MapFile{Data: []byte(deep)} },
			want:  "services/bad.toml: keys, arrays and inline tables nest 17 deep, more than the limit of 16",
			valid: true,
		},
		{
			name: "service file is a symlink",
			edit: func(m fstest.MapFS) {
				m["services/bad.toml"] = &fstest.MapFile{Data: []byte("../secret.toml"), Mode: fs.ModeSymlink}
				m["secret.toml"] = &fstest.MapFile{Data: []byte(fmt.Sprintf(goodService, "bad"))}
			},
			want:  "services/bad.toml: is a symbolic link, which is refused: definitions must be regular files of the repository",
			valid: true,
		},
		{
			name:  "directory named like a definition",
			edit:  func(m fstest.MapFS) { m["services/bad.toml/x"] = &fstest.MapFile{} },
			want:  "services/bad.toml: is a directory; a service definition is a file",
			valid: true,
		},
		{
			name: "mcp.toml is a symlink",
			edit: func(m fstest.MapFS) {
				m["real.toml"] = m["mcp.toml"]
				m["mcp.toml"] = &fstest.MapFile{Data: []byte("real.toml"), Mode: fs.ModeSymlink}
			},
			want: "mcp.toml: is a symbolic link, which is refused: definitions must be regular files of the repository\n" +
				"services/good.toml: not resolved: mcp.toml has errors, and no service can be resolved without it (mcp.toml: is a symbolic link, which is refused: definitions must be regular files of the repository)",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fsys := repoFS(testPlatform, map[string]string{"good": fmt.Sprintf(goodService, "good")})
			fsys["services/README.md"] = &fstest.MapFile{Data: []byte("not a definition")}
			fsys["services/.good.toml.swp"] = &fstest.MapFile{Data: []byte{0}}
			tt.edit(fsys)
			repo := mustLoad(t, fsys)
			if got := repo.Diagnostics.Error(); got != tt.want {
				t.Errorf("diagnostics:\n%s\nwant:\n%s", got, tt.want)
			}
			if repo.PlatformValid != tt.valid {
				t.Errorf("PlatformValid = %v", repo.PlatformValid)
			}
			if tt.valid && (len(repo.Services) != 1 || repo.Services[0].Name != "good") {
				t.Errorf("good service lost: %+v", repo.Services)
			}
		})
	}
}

func TestTooManyFiles(t *testing.T) {
	fsys := repoFS(testPlatform, nil)
	for i := 0; i <= MaxServiceFiles; i++ {
		name := fmt.Sprintf("s%d", i)
		fsys["services/"+name+".toml"] = &fstest.MapFile{Data: []byte(fmt.Sprintf(goodService, name))}
	}
	repo := mustLoad(t, fsys)
	if len(repo.Services) != 0 || len(repo.Invalid) != MaxServiceFiles+1 {
		t.Fatalf("services %d, invalid %d", len(repo.Services), len(repo.Invalid))
	}
	want := "services: holds 10001 service files, more than the limit of 10000; no definition was read"
	if got := repo.Diagnostics.Error(); got != want {
		t.Errorf("got %s", got)
	}
}

func TestInvalidKeepsIdentity(t *testing.T) {
	repo := mustLoad(t, repoFS(testPlatform, map[string]string{
		"mcq":    "name = \"mcx\"\nnode = \"rift\"\n",
		"broken": "name = \n",
	}))
	got := fmt.Sprintf("%s/%s %s/%s", repo.Invalid[0].Name, repo.Invalid[0].Node, repo.Invalid[1].Name, repo.Invalid[1].Node)
	if got != "broken/ mcq/rift" {
		t.Errorf("invalid = %s", got)
	}
}

func TestLoadIsDeterministic(t *testing.T) {
	var first []byte
	for i := 0; i < 5; i++ {
		repo, err := LoadDir("../testdata/broken/bad-hostnames")
		if err != nil {
			t.Fatal(err)
		}
		b, err := json.Marshal(repo)
		if err != nil {
			t.Fatal(err)
		}
		if i == 0 {
			first = b
		} else if string(b) != string(first) {
			t.Fatalf("load %d differs", i)
		}
	}
}

func TestDiagnosticOrder(t *testing.T) {
	ds := Diagnostics{
		{File: "b", Path: "components[10].name"},
		{File: "b", Path: "components[2].name"},
		{File: "a", Path: "x"},
		{File: "b", Path: ""},
	}
	sortDiagnostics(ds)
	var got []string
	for _, d := range ds {
		got = append(got, d.File+":"+d.Path)
	}
	if want := "a:x b: b:components[2].name b:components[10].name"; strings.Join(got, " ") != want {
		t.Errorf("order %v", got)
	}
}

func TestSuggest(t *testing.T) {
	known := []string{"cmd", "env", "image", "name", "volumes", "routes"}
	for k, want := range map[string]string{"volume": "volumes", "Image": "image", "rotues": "routes", "x": "", "totally": ""} {
		if got := suggest(k, known); got != want {
			t.Errorf("suggest(%q) = %q, want %q", k, got, want)
		}
	}
}

func TestDiagnosticsCappedPerFile(t *testing.T) {
	body := "name = \"bad\"\nnode = \"rift\"\nversion = \"v1\"\n[[components]]\nname = \"a\"\nenv = [" + strings.Repeat("\"PORT=1\",", 500) + "]\n"
	repo := mustLoad(t, repoFS(testPlatform, map[string]string{"bad": body}))
	if n := len(repo.Diagnostics); n != MaxFileDiagnostics+1 {
		t.Fatalf("%d diagnostics", n)
	}
	// The count has no key path, so it sorts first in its file.
	if first := repo.Diagnostics[0]; first.Error() != "services/bad.toml: 400 more problems not shown; the first 100 follow" {
		t.Errorf("first = %s", first.Error())
	}
}
