package testenv

import (
	"os"
	"strings"
	"testing"
	"time"

	mdns "github.com/miekg/dns"
)

func TestBind9AnswersAndAcceptsSignedUpdates(t *testing.T) {
	start := time.Now()
	d := StartBind9(t, Bind9Zone, "svc.mcp.test.internal")
	t.Logf("named answered after %v", time.Since(start))

	secret := readSecret(t, d.KeyFile)
	c := &mdns.Client{Net: "tcp", Timeout: 2 * time.Second, TsigSecret: map[string]string{mdns.Fqdn(d.KeyName): secret}}
	for _, tc := range []struct {
		name, zone string
		secret     string
		wantRcode  int
	}{
		{"right key", "svc.mcp.test.internal.", secret, mdns.RcodeSuccess},
		{"wrong key", Bind9Zone + ".", "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=", mdns.RcodeNotAuth},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c.TsigSecret[mdns.Fqdn(d.KeyName)] = tc.secret
			m := new(mdns.Msg)
			m.SetUpdate(tc.zone)
			rr, err := mdns.NewRR("x." + tc.zone + " 60 IN A 192.0.2.1")
			if err != nil {
				t.Fatal(err)
			}
			m.Insert([]mdns.RR{rr})
			m.SetTsig(mdns.Fqdn(d.KeyName), mdns.HmacSHA256, 300, time.Now().Unix())
			r, _, err := c.Exchange(m, d.Addr)
			if r == nil {
				t.Fatalf("update: %v", err)
			}
			if r.Rcode != tc.wantRcode {
				t.Fatalf("update rcode = %s, want %s", mdns.RcodeToString[r.Rcode], mdns.RcodeToString[tc.wantRcode])
			}
		})
	}
}

func readSecret(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(b))
}
