package executor_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"metacircular.net/mcp/executor/certs"
	"metacircular.net/mcp/executor/certs/acme"
	"metacircular.net/mcp/executor/dns"
	"metacircular.net/mcp/executor/dns/rfc2136"
	"metacircular.net/mcp/internal/testenv"
	"metacircular.net/mcp/spec"
)

// TestCertsACMEDNS01Bind9 is the certificates issue's "done when": a
// service with an L7 route (and an L4 one) gets its certificates from
// pebble (EAB required, validation really performed) through DNS-01
// challenges served by a real bind9 updated over RFC 2136 with TSIG, at the
// documented paths, valid for the hostname, with the full chain. A wrong
// TSIG key, a bad EAB key and a CA that is down each fail with a clear
// error, leave nothing half-written, and the previous certificate keeps
// serving. Removing the service deletes its proxy certificate files and
// leaves the zone as it was.
func TestCertsACMEDNS01Bind9(t *testing.T) {
	const zone = "example.org"
	named := testenv.StartBind9(t, zone)
	provider := func(t *testing.T, secretFile string) dns.Provider {
		p, err := rfc2136.New(rfc2136.Config{Server: named.Addr, KeyName: named.KeyName, SecretFile: secretFile})
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	good := provider(t, named.KeyFile)
	wrongKey := filepath.Join(t.TempDir(), "wrong.secret")
	secret := make([]byte, 32)
	rand.Read(secret)
	if err := os.WriteFile(wrongKey, []byte(base64.StdEncoding.EncodeToString(secret)), 0o600); err != nil {
		t.Fatal(err)
	}
	badHMAC := filepath.Join(t.TempDir(), "bad.hmac")
	rand.Read(secret)
	if err := os.WriteFile(badHMAC, []byte(base64.RawURLEncoding.EncodeToString(secret)), 0o600); err != nil {
		t.Fatal(err)
	}

	ca := testenv.Pebble(t, testenv.PebbleConfig{Resolver: named.Addr})
	client := func(t *testing.T, p dns.Provider, mutate func(*acme.Config)) *acme.Client {
		cfg := acme.Config{
			DirectoryURL: ca.DirectoryURL, EABKeyID: ca.EABKeyID, EABHMACFile: ca.EABHMACFile, CAFile: ca.TLSCAFile,
			Contact: []string{"ops@example.org"}, StateDir: t.TempDir(),
			Zones:              []acme.Zone{{Zone: zone, Challenge: acme.ChallengeDNS01, DNS: p, Nameserver: named.Addr}},
			PropagationTimeout: 10 * time.Second, Timeout: time.Minute,
		}
		if mutate != nil {
			mutate(&cfg)
		}
		c, err := acme.New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	ctx := context.Background()
	// zoneState is every record mcp could have touched; the zone must be
	// back to it after each issuance.
	zoneState := func() string {
		var b strings.Builder
		for _, n := range []string{zone, "ns." + zone, "_acme-challenge." + l7Host, "_acme-challenge." + l4Host} {
			rs, err := good.List(ctx, zone, n)
			if err != nil {
				t.Fatal(err)
			}
			for _, r := range rs {
				b.WriteString(r.Name + " " + r.Type + " " + r.Value + "\n")
			}
		}
		return b.String()
	}
	zoneBefore := zoneState()
	if !strings.Contains(zoneBefore, "ns."+zone+" A 127.0.0.1") {
		t.Fatalf("zone does not hold its own records: %q", zoneBefore)
	}

	env := newCertEnv(t, client(t, good, nil))
	if res := env.apply(service()); res.Failed() {
		t.Fatalf("deploy: %+v", res.Services)
	}
	l7c, l7k := certs.L7Paths(certs.DefaultProxyCertDir, l7Host)
	l4c, l4k, l4ca := certs.L4Paths("/srv", "web")
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(ca.RootsPEM)
	for _, f := range []struct{ host, chain, key string }{{l7Host, l7c, l7k}, {l4Host, l4c, l4k}} {
		chain, err := certs.ParseChain(env.read(f.chain))
		if err != nil {
			t.Fatal(err)
		}
		if len(chain) < 2 {
			t.Fatalf("%s: chain of %d certificates", f.chain, len(chain))
		}
		inter := x509.NewCertPool()
		for _, c := range chain[1:] {
			inter.AddCert(c)
		}
		if _, err := chain[0].Verify(x509.VerifyOptions{DNSName: f.host, Roots: roots, Intermediates: inter}); err != nil {
			t.Fatalf("%s does not verify for %s against pebble's root: %v", f.chain, f.host, err)
		}
		b := certs.Bundle{ChainPEM: env.read(f.chain), KeyPEM: env.read(f.key)}
		if err := b.Check(f.host, time.Now()); err != nil {
			t.Fatal(err)
		}
	}
	if len(env.read(l4ca)) == 0 {
		t.Error("ca.pem is empty")
	}
	if got := zoneState(); got != zoneBefore {
		t.Fatalf("zone changed by issuance:\nbefore:\n%s\nafter:\n%s", zoneBefore, got)
	}

	// The failures, each as a renewal inside the window (the previous
	// certificate must keep serving) and the TSIG one also as a first
	// issuance for a new service (its step fails, nothing is written).
	snapshot := func() map[string][]byte {
		m := map[string][]byte{}
		_ = filepath.WalkDir(env.root, func(p string, d os.DirEntry, err error) error {
			if err == nil && !d.IsDir() {
				m[p], _ = os.ReadFile(p)
			}
			return nil
		})
		return m
	}
	inside := env.now.Add(70 * 24 * time.Hour)
	tests := []struct {
		name   string
		issuer *acme.Client
		want   []string
	}{
		{"wrong TSIG key", client(t, provider(t, wrongKey), nil),
			[]string{"write TXT _acme-challenge.", "in zone example.org", dns.ErrRefused.Error(), named.Addr}},
		{"bad EAB key", client(t, good, func(c *acme.Config) { c.EABHMACFile = badHMAC }),
			[]string{"register account with EAB key id " + ca.EABKeyID, "urn:ietf:params:acme:error:unauthorized"}},
		{"CA down", client(t, good, func(c *acme.Config) { c.DirectoryURL = "https://127.0.0.1:1/dir" }),
			[]string{"directory https://127.0.0.1:1/dir", "connection refused"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := snapshot()
			env.issuer.Issuer = tt.issuer
			out, err := env.exec.RenewCerts(ctx, inside)
			if err != nil {
				t.Fatal(err)
			}
			if len(out) != 2 {
				t.Fatalf("renewals %+v", out)
			}
			for _, r := range out {
				if r.Err == nil {
					t.Fatalf("%s renewed", r.Hostname)
				}
				t.Logf("%s: %v", r.Hostname, r.Err)
				for _, w := range tt.want {
					if !strings.Contains(r.Err.Error(), w) {
						t.Errorf("error %q\ndoes not contain %q", r.Err, w)
					}
				}
			}
			after := snapshot()
			if len(after) != len(before) {
				t.Errorf("files before %d, after %d", len(before), len(after))
			}
			for p, b := range before {
				if !bytes.Equal(after[p], b) {
					t.Errorf("%s changed by a failed renewal", p)
				}
			}
			if got := zoneState(); got != zoneBefore {
				t.Errorf("zone changed:\n%s", got)
			}
		})
	}

	t.Run("wrong TSIG key, new service", func(t *testing.T) {
		env.issuer.Issuer = tests[0].issuer
		svc := spec.Service{Name: "api", Node: "n1", Active: true, Components: []spec.Component{{
			Name: "api", Image: "registry.example/api:v1", Version: "v1", User: "0:0", Restart: "unless-stopped",
			Routes: []spec.Route{{Port: 443, Mode: spec.ModeL7, Hostname: "api.svc.mcp.example.org", EnvVars: []string{"PORT"}}},
		}}}
		res := env.apply(service(), svc)
		var failed bool
		for _, s := range res.Services {
			if s.Service == "api" && s.Err != nil {
				failed = true
				t.Logf("%s: %v", s.FailedStep, s.Err)
				if !strings.Contains(s.Err.Error(), dns.ErrRefused.Error()) || s.FailedStep != "api/cert/api.svc.mcp.example.org" {
					t.Errorf("failure %v at %s", s.Err, s.FailedStep)
				}
			}
		}
		if !failed {
			t.Fatal("api deployed with a wrong TSIG key")
		}
		apiChain, apiKey := certs.L7Paths(certs.DefaultProxyCertDir, "api.svc.mcp.example.org")
		for _, p := range []string{apiChain, apiKey} {
			if _, err := os.Stat(env.path(p)); err == nil {
				t.Errorf("%s written", p)
			}
		}
	})

	// Renewal with the CA back: new certificates, consumers re-pointed.
	env.issuer.Issuer = client(t, good, nil)
	old := leafFP(t, env.read(l7c))
	out, err := env.exec.RenewCerts(ctx, inside)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range out {
		if r.Err != nil {
			t.Fatalf("%s: %v", r.Hostname, r.Err)
		}
	}
	if leafFP(t, env.read(l7c)) == old {
		t.Fatal("not renewed")
	}

	// Removal: proxy files go, /srv/web stays, the zone is as it was.
	if res := env.apply(); res.Failed() {
		t.Fatalf("%+v", res.Services)
	}
	for _, p := range []string{l7c, l7k} {
		if _, err := os.Stat(env.path(p)); err == nil {
			t.Errorf("%s still there", p)
		}
	}
	if _, err := os.Stat(env.path(l4c)); err != nil {
		t.Errorf("%s deleted: %v", l4c, err)
	}
	if got := zoneState(); got != zoneBefore {
		t.Errorf("zone changed:\n%s", got)
	}
}
