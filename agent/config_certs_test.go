package agent

import (
	"slices"
	"strings"
	"testing"
	"time"

	"metacircular.net/mcp/executor/certs"
)

func TestParseCertsConfig(t *testing.T) {
	tests := []struct {
		name  string
		extra string
		check func(t *testing.T, c *Config)
	}{
		{"defaults", "", func(t *testing.T, c *Config) {
			if c.Certs.Issuer != "" || c.Certs.RenewWindow() != certs.DefaultRenewBefore || c.Certs.CertDir() != certs.DefaultProxyCertDir {
				t.Errorf("certs = %+v", c.Certs)
			}
			if uid, gid := c.Certs.Owner(); uid != -1 || gid != -1 {
				t.Errorf("owner %d:%d", uid, gid)
			}
		}},
		{"every key", `
[certs]
issuer = "acme"
renew_before = "480h"
proxy_cert_dir = "/etc/haproxy/certs/"
proxy_cert_owner = "0:108"
[acme]
directory_url = "https://metacrypt.example.org/acme/directory"
eab_key_id = "kid-1"
eab_hmac_file = "/etc/mcp/eab.hmac"
ca_file = "/etc/mcp/metacrypt.pem"
contact = ["mailto:ops@example.org", "admin@example.org"]
http01_listen = ":80"
propagation_timeout = "5m"
[[acme.zones]]
zone = "svc.mcp.example.org."
nameserver = "10.0.0.1:53"
[[acme.zones]]
zone = "example.com"
challenge = "http-01"
`, func(t *testing.T, c *Config) {
			if c.Certs.Issuer != IssuerACME || c.Certs.RenewWindow() != 20*24*time.Hour || c.Certs.CertDir() != "/etc/haproxy/certs" {
				t.Errorf("certs = %+v", c.Certs)
			}
			if uid, gid := c.Certs.Owner(); uid != 0 || gid != 108 {
				t.Errorf("owner %d:%d", uid, gid)
			}
			a := c.ACME
			if a.DirectoryURL != "https://metacrypt.example.org/acme/directory" || a.EABKeyID != "kid-1" || a.EABHMACFile != "/etc/mcp/eab.hmac" ||
				a.CAFile != "/etc/mcp/metacrypt.pem" || a.HTTP01Listen != ":80" || a.PropagationTimeout.Duration != 5*time.Minute {
				t.Errorf("acme = %+v", a)
			}
			if !slices.Equal(a.Contact, []string{"mailto:ops@example.org", "admin@example.org"}) {
				t.Errorf("contact = %v", a.Contact)
			}
			want := []ACMEZone{{Zone: "svc.mcp.example.org", Challenge: "dns-01", Nameserver: "10.0.0.1:53"}, {Zone: "example.com", Challenge: "http-01"}}
			if !slices.Equal(a.Zones, want) {
				t.Errorf("zones = %+v", a.Zones)
			}
		}},
		{"contact as a string", "[acme]\ncontact = \"ops@example.org\"\n", func(t *testing.T, c *Config) {
			if !slices.Equal(c.ACME.Contact, []string{"ops@example.org"}) {
				t.Errorf("contact = %v", c.ACME.Contact)
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

func TestParseCertsConfigErrors(t *testing.T) {
	tests := []struct{ extra, want string }{
		{"[certs]\nissuer = \"vault\"\n", `agent.toml: certs.issuer: "vault" is not one of local, acme`},
		{"[certs]\nissuer = \"acme\"\n", "acme: is required when certs.issuer = \"acme\""},
		{"[certs]\nissuer = \"acme\"\n[acme]\ncontact = \"a@b\"\n", "acme.directory_url: is required"},
		{"[certs]\nrenew_before = \"10m\"\n", "certs.renew_before: 10m is outside 1h0m0s-1920h0m0s"},
		{"[certs]\nproxy_cert_dir = \"certs\"\n", `certs.proxy_cert_dir: "certs" is not an absolute path`},
		{"[certs]\nproxy_cert_owner = \"haproxy\"\n", `certs.proxy_cert_owner: "haproxy" is not uid:gid`},
		{"[certs]\nkey = 1\n", "certs.key: unknown key"},
		{"[acme]\ndirectory_url = \"http://ca/dir\"\n", "acme.directory_url: \"http://ca/dir\" is not an https:// URL"},
		{"[acme]\neab_key_id = \"k\"\n", "eab_key_id and eab_hmac_file go together"},
		{"[acme]\neab_hmac_file = \"hmac\"\n", `acme.eab_hmac_file: "hmac" is not an absolute path`},
		{"[acme]\ncontact = 3\n", "acme.contact: must be a string or a list of strings"},
		{"[acme]\nhttp01_listen = \"80\"\n", "acme.http01_listen: \"80\" is not host:port"},
		{"[[acme.zones]]\nchallenge = \"dns-01\"\n", "acme.zones[0].zone: is required"},
		{"[[acme.zones]]\nzone = \"a.org\"\nchallenge = \"tls-alpn-01\"\n", `acme.zones[0].challenge: "tls-alpn-01" is not one of dns-01, http-01`},
		{"[[acme.zones]]\nzone = \"a.org\"\nchallenge = \"http-01\"\n", "acme.zones[0].challenge: http-01 needs acme.http01_listen"},
		{"[[acme.zones]]\nzone = \"a.org\"\n[[acme.zones]]\nzone = \"A.org.\"\n", `acme.zones[1].zone: "a.org" is listed twice`},
		{"[[acme.zones]]\nzone = \"a.org\"\nweight = 1\n", "acme.zones[0].weight: unknown key"},
	}
	for _, tc := range tests {
		t.Run(tc.want, func(t *testing.T) {
			_, err := parse(t, base+tc.extra)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want %q", err, tc.want)
			}
		})
	}
}

func TestCertOptions(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name    string
		cfg     Config
		on      bool
		wantErr string
	}{
		{"off without [certs] or [proxy]", Config{}, false, ""},
		{"local by default with a proxy", Config{Proxy: ProxyConfig{Driver: ProxyHAProxy, CertDir: "/srv/mc-proxy/certs"}}, true, ""},
		{"local", Config{Certs: CertsConfig{Enabled: true}}, true, ""},
		{"acme", Config{Certs: CertsConfig{Enabled: true, Issuer: IssuerACME}, ACME: ACMEConfig{DirectoryURL: "https://ca.example/dir"}}, true, ""},
		{"acme dns-01 zone without a DNS driver", Config{Certs: CertsConfig{Enabled: true, Issuer: IssuerACME},
			ACME: ACMEConfig{DirectoryURL: "https://ca.example/dir", Zones: []ACMEZone{{Zone: "example.org", Challenge: "dns-01"}}}},
			false, "acme.zones[0]: zone example.org uses dns-01 but no [[dns]] entry serves it"},
		{"cert dirs disagree", Config{Certs: CertsConfig{Enabled: true, ProxyCertDir: "/a"}, Proxy: ProxyConfig{Driver: ProxyHAProxy, CertDir: "/b"}},
			false, "certs.proxy_cert_dir /a differs from proxy.cert_dir /b"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.cfg.File, tt.cfg.StateDir, tt.cfg.Node = "agent.toml", dir, "n1"
			s, err := CertOptions(&tt.cfg, nil, nil)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := len(s.Options()) == 1; got != tt.on {
				t.Errorf("certificates on = %v, want %v", got, tt.on)
			}
		})
	}
}
