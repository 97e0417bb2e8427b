package acme

import (
	"context"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"metacircular.net/mcp/executor/certs"
	"metacircular.net/mcp/executor/dns"
	"metacircular.net/mcp/internal/testenv"
)

const testZone = "example.test"

func newClient(t *testing.T, p *testenv.PebbleCA, mutate func(*Config)) *Client {
	t.Helper()
	cfg := Config{
		DirectoryURL: p.DirectoryURL, EABKeyID: p.EABKeyID, EABHMACFile: p.EABHMACFile,
		CAFile: p.TLSCAFile, Contact: []string{"ops@example.test"}, StateDir: t.TempDir(),
		PropagationTimeout: 10 * time.Second, Timeout: time.Minute,
	}
	if mutate != nil {
		mutate(&cfg)
	}
	c, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// verify checks a bundle the way a client of the service will.
func verify(t *testing.T, b certs.Bundle, host string, roots []byte) {
	t.Helper()
	if err := b.Check(host, time.Now()); err != nil {
		t.Fatal(err)
	}
	chain, err := certs.ParseChain(b.ChainPEM)
	if err != nil {
		t.Fatal(err)
	}
	if len(chain) < 2 {
		t.Fatalf("chain has %d certificates", len(chain))
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(roots)
	inter := x509.NewCertPool()
	for _, c := range chain[1:] {
		inter.AddCert(c)
	}
	if _, err := chain[0].Verify(x509.VerifyOptions{DNSName: host, Roots: pool, Intermediates: inter}); err != nil {
		t.Fatalf("chain does not verify to pebble's root: %v", err)
	}
	if d := time.Until(b.NotAfter); d < 89*24*time.Hour || d > 91*24*time.Hour {
		t.Errorf("lifetime %s, want 90 days", d)
	}
}

func TestIssueDNS01(t *testing.T) {
	ns := startMemDNS(t)
	p := testenv.Pebble(t, testenv.PebbleConfig{Resolver: ns.addr})
	for _, nameserver := range []string{"", ns.addr} {
		name := "read-back"
		if nameserver != "" {
			name = "query nameserver"
		}
		t.Run(name, func(t *testing.T) {
			c := newClient(t, p, func(c *Config) {
				c.Zones = []Zone{{Zone: testZone, Challenge: ChallengeDNS01, DNS: ns, Nameserver: nameserver}}
			})
			host := "mcq.svc.mcp." + testZone
			b, err := c.Issue(context.Background(), host)
			if err != nil {
				t.Fatal(err)
			}
			verify(t, b, host, p.RootsPEM)
			if left := ns.txtNames(); len(left) != 0 {
				t.Errorf("challenge records left in the zone: %v", left)
			}
			// The account is reused: a second issuance registers nothing.
			keys, _ := filepath.Glob(filepath.Join(c.cfg.StateDir, "account-*.key"))
			if len(keys) != 1 {
				t.Fatalf("account keys %v", keys)
			}
			if fi, _ := os.Stat(keys[0]); fi.Mode().Perm() != 0o600 {
				t.Errorf("account key mode %o", fi.Mode().Perm())
			}
			if _, err := c.Issue(context.Background(), "other."+testZone); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestIssueHTTP01(t *testing.T) {
	ns := startMemDNS(t)
	h := NewHTTP01()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(h)
	srv.Listener.Close()
	srv.Listener = l
	srv.Start()
	defer srv.Close()
	port, _ := strconv.Atoi(strings.TrimPrefix(l.Addr().String(), "127.0.0.1:"))
	p := testenv.Pebble(t, testenv.PebbleConfig{Resolver: ns.addr, HTTPPort: port})
	const host = "www.public.test" // in no zone mcp manages
	if err := ns.Set(context.Background(), "public.test", host, "A", []string{"127.0.0.1"}, 60); err != nil {
		t.Fatal(err)
	}
	c := newClient(t, p, func(c *Config) {
		c.Zones = []Zone{{Zone: testZone, Challenge: ChallengeDNS01, DNS: ns}}
		c.HTTP01 = h
	})
	b, err := c.Issue(context.Background(), host)
	if err != nil {
		t.Fatal(err)
	}
	verify(t, b, host, p.RootsPEM)
	if n := h.Pending(); n != 0 {
		t.Errorf("%d HTTP-01 answers still served", n)
	}
	if ns.sets != 1 {
		t.Errorf("DNS written %d times for an HTTP-01 issuance (only the test's A record expected)", ns.sets)
	}
}

func TestIssueFailures(t *testing.T) {
	ns := startMemDNS(t)
	p := testenv.Pebble(t, testenv.PebbleConfig{Resolver: ns.addr})
	badHMAC := filepath.Join(t.TempDir(), "bad.hmac")
	if err := os.WriteFile(badHMAC, []byte(base64.RawURLEncoding.EncodeToString([]byte("not the key the CA gave out, 32b"))), 0o600); err != nil {
		t.Fatal(err)
	}
	refusing := &memDNS{records: map[string][]dns.Record{}, refuse: true}
	zone := func(pr dns.Provider) func(*Config) {
		return func(c *Config) { c.Zones = []Zone{{Zone: testZone, Challenge: ChallengeDNS01, DNS: pr}} }
	}
	tests := []struct {
		name   string
		host   string
		mutate func(*Config)
		want   []string
		is     error
	}{
		{"bad EAB key", "a." + testZone, func(c *Config) { zone(ns)(c); c.EABHMACFile = badHMAC },
			[]string{"register account with EAB key id mcp-test-kid", "urn:ietf:params:acme:error:"}, nil},
		{"unknown EAB key id", "a." + testZone, func(c *Config) { zone(ns)(c); c.EABKeyID = "nobody" },
			[]string{"EAB key id nobody", "urn:ietf:params:acme:error:"}, nil},
		{"no EAB", "a." + testZone, func(c *Config) { zone(ns)(c); c.EABKeyID = ""; c.EABHMACFile = "" },
			[]string{"register account at", "externalAccountRequired"}, nil},
		{"CA down", "a." + testZone, func(c *Config) { zone(ns)(c); c.DirectoryURL = "https://127.0.0.1:1/dir" },
			[]string{"directory https://127.0.0.1:1/dir", "connection refused"}, nil},
		{"wrong TLS trust", "a." + testZone, func(c *Config) { zone(ns)(c); c.CAFile = "" },
			[]string{"directory", "certificate"}, nil},
		{"DNS refuses", "a." + testZone, zone(refusing),
			[]string{"dns-01 for a.example.test: write TXT _acme-challenge.a.example.test in zone example.test", "refused"}, dns.ErrRefused},
		{"no zone, no HTTP-01", "www.public.test", zone(ns),
			[]string{"www.public.test is in no zone mcp manages (managed: example.test)", "needs manual DNS"}, ErrManualDNS},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newClient(t, p, tt.mutate)
			_, err := c.Issue(context.Background(), tt.host)
			if err == nil {
				t.Fatal("issued")
			}
			t.Logf("error: %v", err)
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q\ndoes not contain %q", err, w)
				}
			}
			if tt.is != nil && !errors.Is(err, tt.is) {
				t.Errorf("error %v is not %v", err, tt.is)
			}
			if s, _ := os.ReadFile(badHMAC); strings.Contains(err.Error(), strings.TrimSpace(string(s))) {
				t.Error("the error quotes the HMAC key")
			}
		})
	}
}

// TestChallengeRejected: the VA really looks. A provider that claims to
// have written the TXT record but did not (its read-back lies) gets the
// CA's own "no TXT record" problem in the error.
func TestChallengeRejected(t *testing.T) {
	ns := startMemDNS(t)
	p := testenv.Pebble(t, testenv.PebbleConfig{Resolver: ns.addr})
	c := newClient(t, p, func(c *Config) {
		c.Zones = []Zone{{Zone: testZone, Challenge: ChallengeDNS01, DNS: lyingDNS{ns, new([]string)}}}
	})
	_, err := c.Issue(context.Background(), "a."+testZone)
	if err == nil {
		t.Fatal("issued without a TXT record")
	}
	t.Logf("error: %v", err)
	for _, w := range []string{"dns-01 challenge for a.example.test failed", "the CA rejected the authorization", "urn:ietf:params:acme:error:unauthorized"} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error %q\ndoes not contain %q", err, w)
		}
	}
}

// lyingDNS writes nothing but reads back whatever was asked for.
type lyingDNS struct {
	*memDNS
	last *[]string
}

func (l lyingDNS) Set(ctx context.Context, zone, name, typ string, values []string, ttl int) error {
	l.mu.Lock()
	l.sets++
	l.mu.Unlock()
	*l.last = values
	return nil
}

func (l lyingDNS) List(ctx context.Context, zone, name string) ([]dns.Record, error) {
	var out []dns.Record
	for _, v := range *l.last {
		out = append(out, dns.Record{Name: name, Type: "TXT", Value: v})
	}
	return out, nil
}

func TestHTTP01Handler(t *testing.T) {
	h := NewHTTP01()
	h.put("tok", "tok.thumb")
	tests := []struct {
		method, path string
		code         int
		body         string
	}{
		{"GET", HTTP01Prefix + "tok", 200, "tok.thumb"},
		{"HEAD", HTTP01Prefix + "tok", 200, ""},
		{"GET", HTTP01Prefix + "other", 404, ""},
		{"GET", HTTP01Prefix, 404, ""},
		{"GET", HTTP01Prefix + "tok/x", 404, ""},
		{"GET", "/tok", 404, ""},
		{"POST", HTTP01Prefix + "tok", 405, ""},
	}
	for _, tt := range tests {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(tt.method, tt.path, nil))
		if rec.Code != tt.code || (tt.body != "" && rec.Body.String() != tt.body) {
			t.Errorf("%s %s: %d %q, want %d %q", tt.method, tt.path, rec.Code, rec.Body, tt.code, tt.body)
		}
		if tt.code == 200 && rec.Header().Get("Content-Type") != "text/plain" {
			t.Errorf("content type %q", rec.Header().Get("Content-Type"))
		}
	}
	h.remove("tok")
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, HTTP01Prefix+"tok", nil))
	if rec.Code != 404 {
		t.Errorf("removed token still served: %d", rec.Code)
	}
}

func TestNewRejects(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
		want string
	}{
		{"no directory", Config{StateDir: "x"}, "directory_url"},
		{"no state", Config{DirectoryURL: "https://ca/dir"}, "state directory"},
		{"eab without file", Config{DirectoryURL: "https://ca/dir", StateDir: "x", EABKeyID: "k"}, "eab_hmac_file"},
		{"dns-01 without provider", Config{DirectoryURL: "https://ca/dir", StateDir: "x", Zones: []Zone{{Zone: "a", Challenge: ChallengeDNS01}}}, "DNS provider"},
		{"http-01 without listener", Config{DirectoryURL: "https://ca/dir", StateDir: "x", Zones: []Zone{{Zone: "a", Challenge: ChallengeHTTP01}}}, "HTTP-01 listener"},
		{"unknown challenge", Config{DirectoryURL: "https://ca/dir", StateDir: "x", Zones: []Zone{{Zone: "a", Challenge: "tls-alpn-01"}}}, "tls-alpn-01"},
		{"ca file missing", Config{DirectoryURL: "https://ca/dir", StateDir: "x", CAFile: "/nonexistent"}, "ca_file"},
	}
	for _, tt := range tests {
		if _, err := New(tt.cfg); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: err = %v, want %q", tt.name, err, tt.want)
		}
	}
}
