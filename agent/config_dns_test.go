package agent

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"metacircular.net/mcp/executor/dns/mcns"
	"metacircular.net/mcp/executor/dns/rfc2136"
)

const dnsBase = `node = "n1"
state_dir = "/var/lib/mcp"
[git]
url = "/srv/git/desired.git"
`

func TestDNSConfig(t *testing.T) {
	for _, tc := range []struct {
		name  string
		table string
		want  []DNSZone // compared when wantErrs is empty
		errs  []string  // each must appear in the error
	}{
		{name: "absent", table: "", want: nil},
		{name: "rfc2136 with defaults", table: `
[[dns]]
zone = "svc.mcp.Example.org."
driver = "rfc2136"
server = "10.0.0.53"
tsig_key_name = "mcp-agent"
tsig_secret_file = "/etc/mcp/tsig.key"
`, want: []DNSZone{{Zone: "svc.mcp.example.org", Driver: "rfc2136", TTL: DefaultDNSTTL, Server: "10.0.0.53",
			TSIGKeyName: "mcp-agent", TSIGSecretFile: "/etc/mcp/tsig.key"}}},
		{name: "both drivers", table: `
[[dns]]
zone = "svc.mcp.example.org"
driver = "mcns"
url = "https://mcns.svc.mcp.example.org:8443"
token_file = "/etc/mcp/mcns.token"
ca_file = "/etc/mcp/ca.pem"
ttl = 60
timeout = "3s"

[[dns]]
zone = "example.org"
driver = "rfc2136"
server = "[2001:db8::53]:5353"
tsig_key_name = "mcp"
tsig_algorithm = "hmac-sha512"
tsig_secret_file = "/etc/mcp/tsig.key"
`, want: []DNSZone{
			{Zone: "svc.mcp.example.org", Driver: "mcns", TTL: 60, Timeout: Duration{3 * time.Second},
				URL: "https://mcns.svc.mcp.example.org:8443", TokenFile: "/etc/mcp/mcns.token", CAFile: "/etc/mcp/ca.pem"},
			{Zone: "example.org", Driver: "rfc2136", TTL: DefaultDNSTTL, Server: "[2001:db8::53]:5353",
				TSIGKeyName: "mcp", TSIGAlgorithm: "hmac-sha512", TSIGSecretFile: "/etc/mcp/tsig.key"},
		}},
		{name: "not an array", table: "[dns]\nzone = \"x\"\n", errs: []string{"dns: must be an array of tables"}},
		{name: "missing everything", table: "[[dns]]\n", errs: []string{
			"dns[0].zone: is required", "dns[0].driver: is required (rfc2136 or mcns)"}},
		{name: "unknown driver", table: "[[dns]]\nzone = \"z.org\"\ndriver = \"route53\"\n", errs: []string{
			`dns[0].driver: "route53" is not one of rfc2136, mcns`}},
		{name: "rfc2136 needs its keys", table: "[[dns]]\nzone = \"z.org\"\ndriver = \"rfc2136\"\n", errs: []string{
			"dns[0].server: is required", "dns[0].tsig_key_name: is required", "dns[0].tsig_secret_file: is required"}},
		{name: "mcns needs its keys", table: "[[dns]]\nzone = \"z.org\"\ndriver = \"mcns\"\n", errs: []string{
			"dns[0].url: is required", "dns[0].token_file: is required"}},
		{name: "the other driver's keys", table: `
[[dns]]
zone = "z.org"
driver = "mcns"
url = "https://mcns"
token_file = "/t"
server = "10.0.0.53"
`, errs: []string{`dns[0].server: is only used with driver = "rfc2136", and this entry's driver is "mcns"`}},
		{name: "bad values", table: `
[[dns]]
zone = "bad zone"
driver = "rfc2136"
server = "ns:99999"
tsig_key_name = "k"
tsig_algorithm = "hmac-md5"
tsig_secret_file = "relative/key"
ttl = 0
timeout = "1ms"
bogus = 1
`, errs: []string{
			`dns[0].zone: "bad zone" is not a zone name`,
			`dns[0].server: "ns:99999": port "99999" is outside 1-65535`,
			`dns[0].tsig_algorithm: "hmac-md5" is not one of hmac-sha256`,
			`dns[0].tsig_secret_file: "relative/key" is not an absolute path`,
			"dns[0].ttl: 0 is outside 1-86400 seconds",
			"dns[0].timeout: 1ms is outside",
			"dns[0].bogus: unknown key",
		}},
		{name: "bad url", table: "[[dns]]\nzone = \"z.org\"\ndriver = \"mcns\"\nurl = \"https://u:p@mcns\"\ntoken_file = \"/t\"\n", errs: []string{
			"dns[0].url: must not contain credentials"}},
		{name: "duplicate zone", table: `
[[dns]]
zone = "z.org"
driver = "mcns"
url = "https://mcns"
token_file = "/t"
[[dns]]
zone = "Z.org."
driver = "mcns"
url = "https://mcns"
token_file = "/t"
`, errs: []string{`dns[1].zone: "z.org" is already configured in dns[0]`}},
		{name: "wrong types", table: "[[dns]]\nzone = 1\ndriver = true\nttl = \"60\"\n", errs: []string{
			"dns[0].zone: must be a string, not integer 1", "dns[0].driver: must be a string", "dns[0].ttl: must be an integer"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := ParseConfig(strings.NewReader(dnsBase+tc.table), "agent.toml")
			if len(tc.errs) > 0 {
				if err == nil {
					t.Fatalf("parsed: %+v", cfg.DNS)
				}
				var ce ConfigErrors
				if !errors.As(err, &ce) {
					t.Fatalf("error %T, want ConfigErrors", err)
				}
				for _, w := range tc.errs {
					if !strings.Contains(err.Error(), "agent.toml: "+w) {
						t.Errorf("error\n%s\ndoes not contain %q", err, w)
					}
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(cfg.DNS) != len(tc.want) {
				t.Fatalf("DNS = %+v, want %+v", cfg.DNS, tc.want)
			}
			for i := range tc.want {
				if cfg.DNS[i] != tc.want[i] {
					t.Errorf("dns[%d] = %+v, want %+v", i, cfg.DNS[i], tc.want[i])
				}
			}
		})
	}
}

func TestDNSZonesBuildsDrivers(t *testing.T) {
	dir := t.TempDir()
	secret := filepath.Join(dir, "tsig.key")
	token := filepath.Join(dir, "token")
	for p, s := range map[string]string{secret: "c2VjcmV0c2VjcmV0c2VjcmV0\n", token: "tok\n"} {
		if err := os.WriteFile(p, []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	cfg := &Config{File: "agent.toml", DNS: []DNSZone{
		{Zone: "svc.mcp.example.org", Driver: DNSDriverMCNS, TTL: 60, URL: "https://mcns.example.org", TokenFile: token},
		{Zone: "example.org", Driver: DNSDriverRFC2136, TTL: 300, Server: "127.0.0.1:5353", TSIGKeyName: "k", TSIGSecretFile: secret},
	}}
	zones, err := cfg.DNSZones()
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := zones[0].Provider.(*mcns.Provider); !ok || zones[0].TTL != 60 || zones[0].Name != "svc.mcp.example.org" {
		t.Fatalf("zone 0 = %+v", zones[0])
	}
	if p, ok := zones[1].Provider.(*rfc2136.Provider); !ok || p.Server() != "127.0.0.1:5353" {
		t.Fatalf("zone 1 = %+v", zones[1])
	}
	cfg.DNS[1].TSIGSecretFile = filepath.Join(dir, "missing")
	if _, err := cfg.DNSZones(); err == nil || !strings.Contains(err.Error(), "agent.toml: dns[1] (zone example.org)") {
		t.Fatalf("a missing secret file: %v", err)
	}
}
