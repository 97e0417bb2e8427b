package agent

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"metacircular.net/mcp/trust"
)

func TestParseTrustConfig(t *testing.T) {
	tests := []struct {
		name  string
		extra string
		check func(t *testing.T, c *Config)
	}{
		{"defaults", "", func(t *testing.T, c *Config) {
			if c.Trust.Policy != "" || c.Status.Notes || c.Secrets.Dir != "" {
				t.Errorf("tables not off by default: %+v %+v %+v", c.Trust, c.Status, c.Secrets)
			}
			if c.Status.StatusInterval() != DefaultStatusInterval || c.Quarantine.Failures() != DefaultQuarantineAfter || c.Quarantine.Deadline() != DefaultImageDeadline {
				t.Errorf("defaults: interval %s, after %d, deadline %s", c.Status.StatusInterval(), c.Quarantine.Failures(), c.Quarantine.Deadline())
			}
		}},
		{"every key", `
[trust]
policy = "all"
allowed_signers_file = "/etc/mcp/allowed_signers"
keyring_file = "/etc/mcp/trusted.asc"
[status]
notes = true
interval = "2m"
signing_key_file = "/etc/mcp/status_key"
[secrets]
dir = "/etc/mcp/secrets/"
[quarantine]
after = 5
image_deadline = "30m"
`, func(t *testing.T, c *Config) {
			want := TrustConfig{Policy: trust.PolicyAll, AllowedSignersFile: "/etc/mcp/allowed_signers", KeyringFile: "/etc/mcp/trusted.asc"}
			if c.Trust != want {
				t.Errorf("trust = %+v", c.Trust)
			}
			if !c.Status.Notes || c.Status.StatusInterval() != 2*time.Minute || c.Status.SigningKeyFile != "/etc/mcp/status_key" {
				t.Errorf("status = %+v", c.Status)
			}
			if c.Secrets.Dir != "/etc/mcp/secrets" {
				t.Errorf("secrets.dir = %q (want it cleaned)", c.Secrets.Dir)
			}
			if c.Quarantine.Failures() != 5 || c.Quarantine.Deadline() != 30*time.Minute {
				t.Errorf("quarantine = %+v", c.Quarantine)
			}
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := parse(t, base+tc.extra)
			if err != nil {
				t.Fatal(err)
			}
			tc.check(t, cfg)
		})
	}
}

func TestParseTrustConfigErrors(t *testing.T) {
	tests := []struct{ extra, want string }{
		{"[trust]\npolicy = \"strict\"\n", `agent.toml: trust.policy: "strict" is not one of off, head, all`},
		{"[trust]\npolicy = \"head\"\n", "trust.policy: \"head\" needs trust.allowed_signers_file"},
		{"[trust]\nallowed_signers_file = \"keys\"\n", `trust.allowed_signers_file: "keys" is not an absolute path`},
		{"[trust]\nsigners = \"/x\"\n", "trust.signers: unknown key"},
		{"[status]\nnotes = true\n", "status.signing_key_file: is required when status.notes is on"},
		{"[status]\ninterval = \"1s\"\n", "status.interval: 1s is shorter than the minimum 10s"},
		{"[status]\nnotes = \"yes\"\n", "status.notes: must be true or false"},
		{"[secrets]\ndir = \"secrets\"\n", `secrets.dir: "secrets" is not an absolute path`},
		{"[quarantine]\nafter = 0\n", "quarantine.after: 0 is outside 1-100"},
		{"[quarantine]\nimage_deadline = \"soon\"\n", `quarantine.image_deadline: "soon" is not a duration`},
		{"trust = 1\n", "trust: must be a table"},
	}
	for _, tc := range tests {
		t.Run(tc.want, func(t *testing.T) {
			src := base + tc.extra
			if strings.HasPrefix(tc.extra, "trust =") {
				src = "trust = 1\n" + base
			}
			_, err := parse(t, src)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want %q", err, tc.want)
			}
		})
	}
}

// The host check refuses a secrets dir others can read, and names missing
// key files.
func TestCheckTrustHost(t *testing.T) {
	dir := t.TempDir()
	open := filepath.Join(dir, "open")
	if err := os.Mkdir(open, 0o755); err != nil {
		t.Fatal(err)
	}
	c := &Config{File: "agent.toml", Secrets: SecretsConfig{Dir: open}, Trust: TrustConfig{Policy: trust.PolicyHead, AllowedSignersFile: filepath.Join(dir, "nope")}}
	errs := c.checkTrustHost()
	msg := errs.Error()
	for _, w := range []string{"secrets.dir: " + open + " has mode 0755", "trust.allowed_signers_file: " + filepath.Join(dir, "nope") + " does not exist"} {
		if !strings.Contains(msg, w) {
			t.Errorf("%q does not contain %q", msg, w)
		}
	}
	if err := os.Chmod(open, 0o700); err != nil {
		t.Fatal(err)
	}
	c.Trust = TrustConfig{}
	if errs := c.checkTrustHost(); len(errs) != 0 {
		t.Fatalf("0700 dir refused: %v", errs)
	}
}
