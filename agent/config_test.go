package agent

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"metacircular.net/mcp/executor"
)

var updateConfig = flag.Bool("update-config", false, "rewrite agent/testdata/config/*.golden")

// base is a valid configuration that each case below changes one thing in.
const base = `
node = "n1"
state_dir = "/var/lib/mcp"
[git]
url = "/srv/git/desired.git"
`

func parse(t *testing.T, src string) (*Config, error) {
	t.Helper()
	return ParseConfig(strings.NewReader(src), "agent.toml")
}

func TestParseConfigDefaults(t *testing.T) {
	cfg, err := parse(t, base)
	if err != nil {
		t.Fatal(err)
	}
	want := &Config{
		File:     "agent.toml",
		Node:     "n1",
		StateDir: "/var/lib/mcp",
		HostRoot: "/",
		Git:      GitConfig{URL: "/srv/git/desired.git", Branch: "main", PollInterval: Duration{30 * time.Second}},
		Containerd: ContainerdConfig{
			Address:   "/run/containerd/containerd.sock",
			Namespace: "mcp",
			StopGrace: Duration{10 * time.Second},
		},
		API:   APIConfig{Socket: "/run/mcp/mcp.sock"},
		Ports: PortRange{Lo: 10000, Hi: 32767},
		Log:   LogConfig{Format: "text", Level: "info"},
		Logs:  LogsConfig{MaxBytes: 10 << 20, Keep: 3},
		// The feature tables' own tests check their defaults.
		StatusPage: defaultStatusPage(),
		Proxy:      ProxyConfig{BackendHost: executor.DefaultBackendHost, CertDir: executor.DefaultCertDir},
	}
	if !reflect.DeepEqual(cfg, want) {
		t.Errorf("defaults:\n got %+v\nwant %+v", cfg, want)
	}
	if got := cfg.API.SocketMode(); got != 0o600 {
		t.Errorf("SocketMode without group = %04o", got)
	}
}

func TestParseConfigFull(t *testing.T) {
	f, err := os.Open("testdata/config/full.toml")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	cfg, err := ParseConfig(f, "full.toml")
	if err != nil {
		t.Fatal(err)
	}
	want := &Config{
		File:           "full.toml",
		Node:           "rift",
		StateDir:       "/var/lib/mcp", // cleaned
		HostRoot:       "/",
		AllowRemoveAll: true,
		Git: GitConfig{
			URL: "https://git.example.net/ops/desired.git", Branch: "production", PollInterval: Duration{2 * time.Minute},
			HTTPUsername: "deploy", HTTPPasswordFile: "/etc/mcp/git-password", AllowBackwards: true,
		},
		Containerd: ContainerdConfig{Address: "/run/mcp-containerd/containerd.sock", Namespace: "mcp-prod", StopGrace: Duration{30 * time.Second}},
		API:        APIConfig{Socket: "/run/mcp/agent.sock", Group: "mcp"},
		Ports:      PortRange{Lo: 20000, Hi: 29999},
		Registries: []Registry{
			{Host: "mcr.example.net:8443", Username: "puller", PasswordFile: "/etc/mcp/registry-password"},
			{Host: "127.0.0.1:5000", PlainHTTP: true},
		},
		Log:  LogConfig{Format: "json", Level: "debug"},
		Logs: LogsConfig{MaxBytes: 1 << 20, Keep: 5},
		// [metrics] and [status_page] are covered by config_ops_test.go.
		StatusPage: defaultStatusPage(),
		Proxy:      ProxyConfig{BackendHost: executor.DefaultBackendHost, CertDir: executor.DefaultCertDir},
	}
	if !reflect.DeepEqual(cfg, want) {
		t.Errorf("full:\n got %+v\nwant %+v", cfg, want)
	}
	if cfg.API.SocketMode() != 0o660 {
		t.Errorf("SocketMode with group = %04o", cfg.API.SocketMode())
	}
	if r, ok := cfg.RegistryFor("MCR.example.net:8443"); !ok || r.Username != "puller" {
		t.Errorf("RegistryFor = %+v, %v", r, ok)
	}
	if _, ok := cfg.RegistryFor("docker.io"); ok {
		t.Error("RegistryFor(unlisted host) found something")
	}
	if cfg.Log.SlogLevel().String() != "DEBUG" {
		t.Errorf("SlogLevel = %v", cfg.Log.SlogLevel())
	}
}

func TestDerivedPaths(t *testing.T) {
	cfg, err := parse(t, strings.Replace(base, `"/var/lib/mcp"`, `"/srv/mcp/state/"`, 1))
	if err != nil {
		t.Fatal(err)
	}
	for got, want := range map[string]string{
		cfg.RegistryPath(): "/srv/mcp/state/registry.db",
		cfg.LogDir():       "/srv/mcp/state/logs",
		cfg.ImageDir():     "/srv/mcp/state/images",
		cfg.GitCacheDir():  "/srv/mcp/state/git",
	} {
		if got != want {
			t.Errorf("got %s, want %s", got, want)
		}
	}
}

// TestParseConfigRules checks every rule: each case is base plus or minus
// something, and the exact messages a user reads.
func TestParseConfigRules(t *testing.T) {
	long := "/run/" + strings.Repeat("x", 110) + ".sock"
	tests := []struct {
		name string
		src  string
		want []string // every error, in order; none: valid
	}{
		// top level
		{"node missing", strings.Replace(base, `node = "n1"`, "", 1), []string{`agent.toml: node: is required (this machine's name, as declared in the repo's mcp.toml)`}},
		{"node not a label", strings.Replace(base, `"n1"`, `"-n1"`, 1), []string{`agent.toml: node: "-n1" is not a DNS label (1-63 lowercase letters, digits and '-', not starting or ending with '-')`}},
		{"node uppercase", strings.Replace(base, `"n1"`, `"N1"`, 1), []string{`agent.toml: node: "N1" is not a DNS label (1-63 lowercase letters, digits and '-', not starting or ending with '-')`}},
		{"node too long", strings.Replace(base, `"n1"`, `"`+strings.Repeat("a", 64)+`"`, 1), []string{`agent.toml: node: "` + strings.Repeat("a", 64) + `" is not a DNS label (1-63 lowercase letters, digits and '-', not starting or ending with '-')`}},
		{"node 63 chars", strings.Replace(base, `"n1"`, `"`+strings.Repeat("a", 63)+`"`, 1), nil},
		{"node wrong type", strings.Replace(base, `"n1"`, `1`, 1), []string{`agent.toml: node: must be a string, not integer 1`}},
		{"state_dir missing", strings.Replace(base, `state_dir = "/var/lib/mcp"`, "", 1), []string{`agent.toml: state_dir: is required (an absolute path, e.g. "/var/lib/mcp")`}},
		{"state_dir empty", strings.Replace(base, `"/var/lib/mcp"`, `""`, 1), []string{`agent.toml: state_dir: must not be empty (an absolute path, e.g. "/var/lib/mcp")`}},
		{"state_dir relative", strings.Replace(base, `"/var/lib/mcp"`, `"mcp"`, 1), []string{`agent.toml: state_dir: "mcp" is not an absolute path`}},
		{"allow_remove_all", "allow_remove_all = true\n" + base, nil},
		{"allow_remove_all wrong type", "allow_remove_all = \"yes\"\n" + base, []string{`agent.toml: allow_remove_all: must be true or false, not string "yes"`}},
		{"unknown top-level key", "nodes = 3\n" + base, []string{`agent.toml: nodes: unknown key (known at the top level: ` + strings.Join(topLevelKeys, ", ") + `)`}},
		{"table given as value", "api = 3\n" + base, []string{`agent.toml: api: must be a table ([api]), not integer 3`}},
		{"syntax error", "node = \n", []string{`agent.toml: line 1: expected value but found '\n' instead`}},

		// [git]
		{"git missing", "node = \"n1\"\nstate_dir = \"/x\"\n", []string{`agent.toml: git.url: is required (the desired-state repository, in a [git] table)`}},
		{"git url missing", strings.Replace(base, `url = "/srv/git/desired.git"`, `branch = "main"`, 1), []string{`agent.toml: git.url: is required (the desired-state repository)`}},
		{"git url relative", strings.Replace(base, `"/srv/git/desired.git"`, `"desired.git"`, 1), []string{`agent.toml: git.url: "desired.git" is neither an absolute path nor a URL (file://, http(s)://, ssh:// or user@host:path)`}},
		{"git url file://", strings.Replace(base, `"/srv/git/desired.git"`, `"file:///srv/git/desired.git"`, 1), nil},
		{"git url scheme", strings.Replace(base, `"/srv/git/desired.git"`, `"git://host/repo"`, 1), []string{`agent.toml: git.url: scheme "git" is not supported (use a path, file://, http(s)://, ssh:// or user@host:path)`}},
		{"git url password", strings.Replace(base, `"/srv/git/desired.git"`, `"https://u:p@host/repo"`, 1), []string{`agent.toml: git.url: must not contain a password; put it in git.http_password_file`}},
		{"git https with auth", strings.Replace(base, `"/srv/git/desired.git"`, `"https://host/repo"`, 1) + "http_username = \"u\"\nhttp_password_file = \"/etc/mcp/pw\"\n", nil},
		{"git https username alone", strings.Replace(base, `"/srv/git/desired.git"`, `"https://host/repo"`, 1) + "http_username = \"u\"\n", []string{`agent.toml: git.http_password_file: is required when git.http_username is set`}},
		{"git https password alone", strings.Replace(base, `"/srv/git/desired.git"`, `"https://host/repo"`, 1) + "http_password_file = \"/etc/mcp/pw\"\n", []string{`agent.toml: git.http_username: is required when git.http_password_file is set`}},
		{"git ssh complete", strings.Replace(base, `"/srv/git/desired.git"`, `"git@git.example.net:ops/desired.git"`, 1) + "ssh_key_file = \"/etc/mcp/id\"\nknown_hosts_file = \"/etc/mcp/known_hosts\"\n", nil},
		{"git ssh:// needs key and known hosts", strings.Replace(base, `"/srv/git/desired.git"`, `"ssh://git@host/repo.git"`, 1), []string{
			`agent.toml: git.ssh_key_file: is required for ssh URLs`,
			`agent.toml: git.known_hosts_file: is required for ssh URLs (host keys are always checked)`,
		}},
		{"git ssh key with file url", base + "ssh_key_file = \"/etc/mcp/id\"\n", []string{`agent.toml: git.ssh_key_file: is only used with ssh URLs, and git.url is a file URL`}},
		{"git http auth with ssh url", strings.Replace(base, `"/srv/git/desired.git"`, `"git@host:repo"`, 1) + "ssh_key_file = \"/k\"\nknown_hosts_file = \"/kh\"\nhttp_username = \"u\"\n", []string{`agent.toml: git.http_username: is only used with http(s) URLs, and git.url is a ssh URL`}},
		{"git key path relative", strings.Replace(base, `"/srv/git/desired.git"`, `"git@host:repo"`, 1) + "ssh_key_file = \"id\"\nknown_hosts_file = \"/kh\"\n", []string{`agent.toml: git.ssh_key_file: "id" is not an absolute path`}},
		{"git branch", base + "branch = \"release/v2\"\n", nil},
		{"git branch refs/", base + "branch = \"refs/heads/main\"\n", []string{`agent.toml: git.branch: "refs/heads/main" is not a valid branch name (give the short name, e.g. "main")`}},
		{"git branch empty", base + "branch = \"\"\n", []string{`agent.toml: git.branch: "" is not a valid branch name (give the short name, e.g. "main")`}},
		{"git branch dotdot", base + "branch = \"a..b\"\n", []string{`agent.toml: git.branch: "a..b" is not a valid branch name (give the short name, e.g. "main")`}},
		{"poll_interval", base + "poll_interval = \"1s\"\n", nil},
		{"poll_interval not a duration", base + "poll_interval = \"5x\"\n", []string{`agent.toml: git.poll_interval: "5x" is not a duration (e.g. "30s", "2m")`}},
		{"poll_interval too short", base + "poll_interval = \"500ms\"\n", []string{`agent.toml: git.poll_interval: 500ms is shorter than the minimum 1s`}},
		{"poll_interval integer", base + "poll_interval = 30\n", []string{`agent.toml: git.poll_interval: must be a duration string (e.g. "30s", "2m"), not integer 30`}},
		{"allow_backwards", base + "allow_backwards = true\n", nil},
		{"git unknown key", base + "pol_interval = \"1m\"\n", []string{`agent.toml: git.pol_interval: unknown key (known in [git]: url, branch, poll_interval, ssh_key_file, known_hosts_file, http_username, http_password_file, allow_backwards, timeout)`}},

		// [containerd]
		{"containerd ok", base + "[containerd]\naddress = \"/run/c.sock\"\nnamespace = \"mcp.test\"\nstop_grace = \"1h\"\n", nil},
		{"containerd address relative", base + "[containerd]\naddress = \"c.sock\"\n", []string{`agent.toml: containerd.address: "c.sock" is not an absolute path`}},
		{"containerd address empty", base + "[containerd]\naddress = \"\"\n", []string{`agent.toml: containerd.address: must not be empty (containerd's socket, default "/run/containerd/containerd.sock")`}},
		{"namespace default", base + "[containerd]\nnamespace = \"default\"\n", []string{`agent.toml: containerd.namespace: "default" belongs to another container manager; mcp needs its own namespace (default "mcp")`}},
		{"namespace k8s.io", base + "[containerd]\nnamespace = \"k8s.io\"\n", []string{`agent.toml: containerd.namespace: "k8s.io" belongs to another container manager; mcp needs its own namespace (default "mcp")`}},
		{"namespace moby", base + "[containerd]\nnamespace = \"moby\"\n", []string{`agent.toml: containerd.namespace: "moby" belongs to another container manager; mcp needs its own namespace (default "mcp")`}},
		{"namespace invalid", base + "[containerd]\nnamespace = \"my ns\"\n", []string{`agent.toml: containerd.namespace: "my ns" is not a containerd namespace (letters and digits, separated by single '.', '_' or '-'; at most 76 characters)`}},
		{"stop_grace too long", base + "[containerd]\nstop_grace = \"2h\"\n", []string{`agent.toml: containerd.stop_grace: 2h is outside 1s-1h0m0s`}},
		{"stop_grace zero", base + "[containerd]\nstop_grace = \"0s\"\n", []string{`agent.toml: containerd.stop_grace: 0s is outside 1s-1h0m0s`}},
		{"containerd unknown key", base + "[containerd]\nsocket = \"/x\"\n", []string{`agent.toml: containerd.socket: unknown key (known in [containerd]: address, namespace, stop_grace)`}},

		// [api]
		{"api ok", base + "[api]\nsocket = \"/run/x/mcp.sock\"\ngroup = \"mcp\"\n", nil},
		{"api numeric group", base + "[api]\ngroup = \"1001\"\n", nil},
		{"api socket relative", base + "[api]\nsocket = \"mcp.sock\"\n", []string{`agent.toml: api.socket: "mcp.sock" is not an absolute path`}},
		{"api socket too long", base + "[api]\nsocket = \"" + long + "\"\n", []string{fmt.Sprintf(`agent.toml: api.socket: is %d bytes long; a Unix socket path holds at most 107`, len(long))}},
		{"api group invalid", base + "[api]\ngroup = \"m c p\"\n", []string{`agent.toml: api.group: "m c p" is not a group name or id`}},
		{"api unknown key", base + "[api]\nmode = \"0660\"\n", []string{`agent.toml: api.mode: unknown key (known in [api]: socket, group)`}},

		// [ports]
		{"ports ok", base + "[ports]\nrange = \"1024-65535\"\n", nil},
		{"ports not a range", base + "[ports]\nrange = \"10000\"\n", []string{`agent.toml: ports.range: "10000" is not a range like "10000-32767"`}},
		{"ports low too low", base + "[ports]\nrange = \"1000-2000\"\n", []string{`agent.toml: ports.range: "1000-2000": 1000 is outside 1024-65535`}},
		{"ports high too high", base + "[ports]\nrange = \"10000-70000\"\n", []string{`agent.toml: ports.range: "10000-70000": 70000 is outside 1024-65535`}},
		{"ports reversed", base + "[ports]\nrange = \"20000-10000\"\n", []string{`agent.toml: ports.range: "20000-10000": the first port must be below the last`}},
		{"ports single port", base + "[ports]\nrange = \"20000-20000\"\n", []string{`agent.toml: ports.range: "20000-20000": the first port must be below the last`}},
		{"ports empty", base + "[ports]\nrange = \"\"\n", []string{`agent.toml: ports.range: "" is not a range like "10000-32767"`}},
		{"ports unknown key", base + "[ports]\nmin = 1\n", []string{`agent.toml: ports.min: unknown key (known in [ports]: range)`}},

		// [[registries]]
		{"registries ok", base + "[[registries]]\nhost = \"reg.example:5000\"\nplain_http = true\n[[registries]]\nhost = \"mcr.example\"\nusername = \"u\"\npassword_file = \"/etc/mcp/pw\"\n", nil},
		{"registries empty array", "registries = []\n" + base, nil},
		{"registry host missing", base + "[[registries]]\nplain_http = true\n", []string{`agent.toml: registries[0].host: is required (the registry's host, or host:port, as in image references)`}},
		{"registry host with scheme", base + "[[registries]]\nhost = \"https://reg\"\n", []string{`agent.toml: registries[0].host: "https://reg" must be a host or host:port, without scheme or path`}},
		{"registry host with path", base + "[[registries]]\nhost = \"reg/ns\"\n", []string{`agent.toml: registries[0].host: "reg/ns" must be a host or host:port, without scheme or path`}},
		{"registry bad port", base + "[[registries]]\nhost = \"reg:99999\"\n", []string{`agent.toml: registries[0].host: "reg:99999": port "99999" is outside 1-65535`}},
		{"registry duplicate", base + "[[registries]]\nhost = \"reg:5000\"\n[[registries]]\nhost = \"REG:5000\"\n", []string{`agent.toml: registries[1].host: "REG:5000" is already configured in registries[0]`}},
		{"registry username alone", base + "[[registries]]\nhost = \"reg\"\nusername = \"u\"\n", []string{`agent.toml: registries[0].password_file: is required when username is set`}},
		{"registry password alone", base + "[[registries]]\nhost = \"reg\"\npassword_file = \"/pw\"\n", []string{`agent.toml: registries[0].username: is required when password_file is set`}},
		{"registry password relative", base + "[[registries]]\nhost = \"reg\"\nusername = \"u\"\npassword_file = \"pw\"\n", []string{`agent.toml: registries[0].password_file: "pw" is not an absolute path`}},
		{"registry plain_http wrong type", base + "[[registries]]\nhost = \"reg\"\nplain_http = 1\n", []string{`agent.toml: registries[0].plain_http: must be true or false, not integer 1`}},
		{"registry unknown key", base + "[[registries]]\nhost = \"reg\"\npassword = \"x\"\n", []string{`agent.toml: registries[0].password: unknown key (known in [registries[0]]: host, username, password_file, plain_http)`}},
		{"registries as a table", base + "[registries]\nhost = \"reg\"\n", []string{`agent.toml: registries: must be an array of tables ([[registries]]), not a table`}},

		// [log]
		{"log ok", base + "[log]\nformat = \"json\"\nlevel = \"warn\"\n", nil},
		{"log format", base + "[log]\nformat = \"logfmt\"\n", []string{`agent.toml: log.format: "logfmt" is not one of text, json`}},
		{"log level", base + "[log]\nlevel = \"trace\"\n", []string{`agent.toml: log.level: "trace" is not one of debug, info, warn, error`}},
		{"log unknown key", base + "[log]\nfile = \"/var/log/mcp\"\n", []string{`agent.toml: log.file: unknown key (known in [log]: format, level)`}},

		// [logs]
		{"logs ok", base + "[logs]\nmax_bytes = 65536\nkeep = 100\n", nil},
		{"logs max_bytes small", base + "[logs]\nmax_bytes = 100\n", []string{`agent.toml: logs.max_bytes: 100 is below the minimum 65536 (64 KiB)`}},
		{"logs max_bytes string", base + "[logs]\nmax_bytes = \"10MiB\"\n", []string{`agent.toml: logs.max_bytes: must be an integer, not string "10MiB"`}},
		{"logs keep zero", base + "[logs]\nkeep = 0\n", []string{`agent.toml: logs.keep: 0 is outside 1-100`}},
		{"logs keep large", base + "[logs]\nkeep = 101\n", []string{`agent.toml: logs.keep: 101 is outside 1-100`}},
		{"logs unknown key", base + "[logs]\nmax_files = 3\n", []string{`agent.toml: logs.max_files: unknown key (known in [logs]: max_bytes, keep)`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := parse(t, tt.src)
			if tt.want == nil {
				if err != nil {
					t.Fatalf("unexpected error:\n%v", err)
				}
				if cfg == nil {
					t.Fatal("nil config without an error")
				}
				return
			}
			var errs ConfigErrors
			if !errors.As(err, &errs) {
				t.Fatalf("error %v (%T), want ConfigErrors", err, err)
			}
			got := strings.Split(errs.Error(), "\n")
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("errors:\n got %q\nwant %q", got, tt.want)
			}
			var fe *FieldError
			if !errors.As(err, &fe) || fe.File != "agent.toml" {
				t.Errorf("errors.As(*FieldError) = %v", fe)
			}
		})
	}
}

// TestParseConfigCollectsAll reads a file full of mistakes and compares
// every message with a golden file.
func TestParseConfigCollectsAll(t *testing.T) {
	f, err := os.Open("testdata/config/errors.toml")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	_, err = ParseConfig(f, "errors.toml")
	if err == nil {
		t.Fatal("no error")
	}
	got := err.Error() + "\n"
	golden := "testdata/config/errors.golden"
	if *updateConfig {
		if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if got != string(want) {
		t.Errorf("errors differ from %s (run with -update-config):\n got:\n%s\nwant:\n%s", golden, got, want)
	}
}

func TestLoadConfig(t *testing.T) {
	dir := t.TempDir()
	pw := filepath.Join(dir, "git-password")
	if err := os.WriteFile(pw, []byte("s3cret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	write := func(name, src string) string {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, []byte(src), 0o600); err != nil {
			t.Fatal(err)
		}
		return path
	}
	https := strings.Replace(base, `"/srv/git/desired.git"`, `"https://host/repo"`, 1)

	good := write("good.toml", https+fmt.Sprintf("http_username = \"u\"\nhttp_password_file = %q\n[api]\ngroup = \"%d\"\n", pw, os.Getgid()))
	cfg, err := LoadConfig(good)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.File != good || cfg.Git.HTTPPasswordFile != pw {
		t.Errorf("LoadConfig = %+v", cfg)
	}

	missing := filepath.Join(dir, "nope")
	bad := write("bad.toml", https+fmt.Sprintf(
		"http_username = \"u\"\nhttp_password_file = %q\n[api]\ngroup = \"no-such-group-mcp-test\"\n[[registries]]\nhost = \"reg\"\nusername = \"u\"\npassword_file = %q\n",
		missing, dir))
	_, err = LoadConfig(bad)
	want := []string{
		bad + ": git.http_password_file: " + missing + " does not exist",
		bad + ": registries[0].password_file: " + dir + " is not a regular file",
		bad + `: api.group: group "no-such-group-mcp-test" does not exist on this host`,
	}
	if err == nil || !reflect.DeepEqual(strings.Split(err.Error(), "\n"), want) {
		t.Errorf("LoadConfig(bad) =\n%v\nwant\n%s", err, strings.Join(want, "\n"))
	}

	if _, err := LoadConfig(filepath.Join(dir, "absent.toml")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("absent file: %v", err)
	}
}

// TestConfigFilesParse keeps the shipped examples valid.
func TestConfigFilesParse(t *testing.T) {
	for _, path := range []string{"testdata/config/minimal.toml", "testdata/config/full.toml", "../examples/agent.toml"} {
		f, err := os.Open(path)
		if errors.Is(err, os.ErrNotExist) && strings.HasPrefix(path, "..") {
			t.Logf("%s not present", path)
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		_, err = ParseConfig(f, filepath.Base(path))
		f.Close()
		if err != nil {
			t.Errorf("%s:\n%v", path, err)
		}
	}
}
