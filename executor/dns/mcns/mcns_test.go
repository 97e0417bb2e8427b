package mcns_test

import (
	"context"
	"encoding/pem"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"metacircular.net/mcp/executor/dns"
	"metacircular.net/mcp/executor/dns/dnstest"
	"metacircular.net/mcp/executor/dns/mcns"
	"metacircular.net/mcp/executor/dns/mcns/mcnsstandin"
)

const zone = "svc.mcp.example.test"

func tokenFile(t *testing.T, token string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(p, []byte(token+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// standin serves a stand-in over TLS and returns it, its URL and a CA file
// that verifies it.
func standin(t *testing.T, token string) (*mcnsstandin.Server, string, string) {
	t.Helper()
	s := mcnsstandin.New(token, zone)
	srv := httptest.NewTLSServer(s)
	t.Cleanup(srv.Close)
	ca := filepath.Join(t.TempDir(), "ca.pem")
	cert := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})
	if err := os.WriteFile(ca, cert, 0o600); err != nil {
		t.Fatal(err)
	}
	return s, srv.URL, ca
}

// The contract suite against the stand-in, over TLS with a CA file.
func TestContractAgainstStandin(t *testing.T) {
	dnstest.Run(t, func(t *testing.T) (dns.Provider, string) {
		_, url, ca := standin(t, "s3cret")
		p, err := mcns.New(mcns.Config{URL: url, TokenFile: tokenFile(t, "s3cret"), CAFile: ca})
		if err != nil {
			t.Fatal(err)
		}
		return p, zone
	})
}

func TestWrongTokenIsRefusedAndNotQuoted(t *testing.T) {
	s, url, ca := standin(t, "right-token")
	p, err := mcns.New(mcns.Config{URL: url, TokenFile: tokenFile(t, "wrong-token"), CAFile: ca})
	if err != nil {
		t.Fatal(err)
	}
	err = p.Set(context.Background(), zone, "a."+zone, "A", []string{"192.0.2.1"}, 60)
	if !errors.Is(err, dns.ErrRefused) || !strings.Contains(err.Error(), "401") {
		t.Fatalf("Set with a wrong token: %v, want ErrRefused with the 401", err)
	}
	if strings.Contains(err.Error(), "wrong-token") || strings.Contains(err.Error(), "right-token") {
		t.Fatalf("error %q quotes a token", err)
	}
	if len(s.Records(zone)) != 0 {
		t.Fatalf("records written: %v", s.Records(zone))
	}
}

func TestTokenIsReadAtEveryUse(t *testing.T) {
	s, url, ca := standin(t, "one")
	tf := tokenFile(t, "one")
	p, err := mcns.New(mcns.Config{URL: url, TokenFile: tf, CAFile: ca})
	if err != nil {
		t.Fatal(err)
	}
	s.SetToken("two")
	if err := os.WriteFile(tf, []byte("two"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := p.Set(context.Background(), zone, "a."+zone, "A", []string{"192.0.2.1"}, 60); err != nil {
		t.Fatalf("Set after rotating the token: %v", err)
	}
}

func TestServerTroubleIsClassified(t *testing.T) {
	for _, tc := range []struct {
		status int
		want   error
	}{
		{http.StatusServiceUnavailable, dns.ErrUnreachable},
		{http.StatusForbidden, dns.ErrRefused},
		{http.StatusBadRequest, dns.ErrRefused},
		{http.StatusInternalServerError, nil},
	} {
		t.Run(http.StatusText(tc.status), func(t *testing.T) {
			s, url, ca := standin(t, "tok")
			p, err := mcns.New(mcns.Config{URL: url, TokenFile: tokenFile(t, "tok"), CAFile: ca})
			if err != nil {
				t.Fatal(err)
			}
			s.FailNext(1, tc.status)
			_, err = p.List(context.Background(), zone, "a."+zone)
			if err == nil || !strings.Contains(err.Error(), "injected failure") {
				t.Fatalf("List: %v, want the server's message", err)
			}
			if tc.want != nil && !errors.Is(err, tc.want) {
				t.Fatalf("List: %v, want %v", err, tc.want)
			}
			if tc.want == nil && (errors.Is(err, dns.ErrRefused) || errors.Is(err, dns.ErrUnreachable)) {
				t.Fatalf("List: %v classified, want neither refused nor unreachable", err)
			}
		})
	}
}

func TestUnknownZoneIsRefused(t *testing.T) {
	_, url, ca := standin(t, "tok")
	p, err := mcns.New(mcns.Config{URL: url, TokenFile: tokenFile(t, "tok"), CAFile: ca})
	if err != nil {
		t.Fatal(err)
	}
	err = p.Set(context.Background(), "other.test", "a.other.test", "A", []string{"192.0.2.1"}, 60)
	if !errors.Is(err, dns.ErrRefused) || !strings.Contains(err.Error(), "not served") {
		t.Fatalf("Set in a zone the server does not serve: %v", err)
	}
}

func TestServerDownIsUnreachableWithinTheTimeout(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	url := srv.URL
	srv.Close()
	p, err := mcns.New(mcns.Config{URL: url, TokenFile: tokenFile(t, "tok"), Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.List(context.Background(), zone, "a."+zone); !errors.Is(err, dns.ErrUnreachable) {
		t.Fatalf("List against a closed server: %v, want ErrUnreachable", err)
	}
}

func TestUntrustedCertificateFails(t *testing.T) {
	_, url, _ := standin(t, "tok")
	p, err := mcns.New(mcns.Config{URL: url, TokenFile: tokenFile(t, "tok")})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.List(context.Background(), zone, "a."+zone); err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Fatalf("List against a server the system roots do not trust: %v", err)
	}
}

// The wire format is the documented one: the stand-in rejects anything
// else, and relative names in answers are understood.
func TestListAcceptsRelativeNamesAndWrappedAnswers(t *testing.T) {
	for _, body := range []string{
		`[{"name":"a","type":"A","value":"192.0.2.1","ttl":60},{"name":"b","type":"A","value":"192.0.2.2","ttl":60}]`,
		`{"records":[{"name":"a.` + zone + `","type":"A","value":"192.0.2.1","ttl":60}]}`,
	} {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path != "/v1/zones/"+zone+"/records" || r.URL.Query().Get("name") != "a."+zone {
				http.Error(w, "bad request "+r.URL.String(), http.StatusBadRequest)
				return
			}
			_, _ = w.Write([]byte(body))
		}))
		p, err := mcns.New(mcns.Config{URL: srv.URL, TokenFile: tokenFile(t, "tok")})
		if err != nil {
			t.Fatal(err)
		}
		recs, err := p.List(context.Background(), zone, "a."+zone)
		srv.Close()
		if err != nil {
			t.Fatal(err)
		}
		if len(recs) != 1 || recs[0] != (dns.Record{Name: "a." + zone, Type: "A", Value: "192.0.2.1", TTL: 60}) {
			t.Fatalf("List = %v", recs)
		}
	}
}

func TestNewRejectsBadConfig(t *testing.T) {
	tf := tokenFile(t, "tok")
	empty := tokenFile(t, "")
	for _, tc := range []struct {
		name string
		cfg  mcns.Config
		want string
	}{
		{"no url", mcns.Config{TokenFile: tf}, "not an http(s) URL"},
		{"ftp", mcns.Config{URL: "ftp://x", TokenFile: tf}, "not an http(s) URL"},
		{"credentials", mcns.Config{URL: "https://u:p@x", TokenFile: tf}, "credentials"},
		{"no token file", mcns.Config{URL: "https://x"}, "token file is required"},
		{"empty token", mcns.Config{URL: "https://x", TokenFile: empty}, "one token"},
		{"missing ca", mcns.Config{URL: "https://x", TokenFile: tf, CAFile: "/nonexistent/ca.pem"}, "CA bundle"},
		{"not pem", mcns.Config{URL: "https://x", TokenFile: tf, CAFile: tf}, "no PEM"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := mcns.New(tc.cfg)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("New: %v, want %q", err, tc.want)
			}
		})
	}
}
