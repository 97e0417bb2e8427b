package cli

import (
	"strings"
	"testing"
	"time"

	"metacircular.net/mcp/api"
)

func TestRenderCerts(t *testing.T) {
	now := time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)
	services := []api.ServiceStatus{
		{Name: "web", Certs: []api.CertStatus{
			{Hostname: "web.svc.mcp.example.org", Issuer: "acme", NotAfter: now.Add(60 * 24 * time.Hour),
				Files: []string{"/srv/mc-proxy/certs/web.svc.mcp.example.org.pem"}},
			{Hostname: "soon.example.org", Issuer: "local", NotAfter: now.Add(5 * time.Hour),
				RenewAt: now.Add(-29 * 24 * time.Hour), Files: []string{"/srv/mc-proxy/certs/soon.example.org.pem"}},
		}},
		{Name: "old", Certs: []api.CertStatus{
			{Hostname: "old.svc.mcp.example.org", NotAfter: now.Add(-time.Hour), Foreign: []string{"/srv/old/certs/cert.pem"}},
		}},
		{Name: "plain"},
	}
	var b strings.Builder
	if err := renderCerts(&b, services, now); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	for _, want := range []string{
		"SERVICE", "HOSTNAME", "EXPIRES",
		"web.svc.mcp.example.org", "2027-01-26 (in 60d)", "/srv/mc-proxy/certs/web.svc.mcp.example.org.pem",
		"soon.example.org", "(in 5h), renewal due",
		"old.svc.mcp.example.org", "(expired)", "not mcp's, left alone: /srv/old/certs/cert.pem",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("certificates table lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "plain") {
		t.Errorf("a service without certificates is listed:\n%s", out)
	}

	b.Reset()
	if err := renderCerts(&b, []api.ServiceStatus{{Name: "plain"}}, now); err != nil || b.Len() != 0 {
		t.Errorf("no certificates anywhere should print nothing, got %q (%v)", b.String(), err)
	}
}

func TestRenewalLines(t *testing.T) {
	now := time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)
	st := api.Status{Services: []api.ServiceStatus{
		{Name: "web", Certs: []api.CertStatus{
			{Hostname: "due.example.org", NotAfter: now.Add(20 * 24 * time.Hour), RenewAt: now.Add(-10 * 24 * time.Hour), Files: []string{"a.pem"}},
			{Hostname: "fresh.example.org", NotAfter: now.Add(80 * 24 * time.Hour), RenewAt: now.Add(50 * 24 * time.Hour), Files: []string{"b.pem"}},
			// Files mcp does not own are never renewed by it.
			{Hostname: "foreign.example.org", NotAfter: now.Add(time.Hour), RenewAt: now.Add(-time.Hour), Foreign: []string{"c.pem"}},
		}},
	}}
	got := renewalLines(st, now)
	if len(got) != 1 || !strings.Contains(got[0], "renew cert due.example.org") || !strings.Contains(got[0], "2026-11-17") {
		t.Fatalf("renewal lines = %q, want only due.example.org with the date its window opened", got)
	}
}
