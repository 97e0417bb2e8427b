package acme

import (
	"context"
	"errors"
	"net"
	"slices"
	"strings"
	"sync"
	"testing"

	mdns "github.com/miekg/dns"

	"metacircular.net/mcp/executor/dns"
)

// memDNS is a tiny authoritative DNS server for the flow tests that do not
// need bind9: it answers TXT and A queries over TCP from an in-memory
// table that it also exposes as a dns.Provider. The Done-when tests use
// real bind9 with the rfc2136 driver instead (issue_bind9_test.go).
type memDNS struct {
	mu      sync.Mutex
	records map[string][]dns.Record // fqdn → records
	addr    string
	refuse  bool // Set fails as a server refusing the key would
	sets    int
	deletes int
}

var _ dns.Provider = (*memDNS)(nil)

func startMemDNS(t *testing.T) *memDNS {
	t.Helper()
	m := &memDNS{records: map[string][]dns.Record{}}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	m.addr = l.Addr().String()
	srv := &mdns.Server{Listener: l, Handler: mdns.HandlerFunc(m.serve)}
	go func() { _ = srv.ActivateAndServe() }() // ends with Shutdown
	t.Cleanup(func() { _ = srv.Shutdown() })
	return m
}

func (m *memDNS) serve(w mdns.ResponseWriter, req *mdns.Msg) {
	resp := new(mdns.Msg)
	resp.SetReply(req)
	resp.Authoritative = true
	if len(req.Question) == 1 {
		q := req.Question[0]
		m.mu.Lock()
		for _, r := range m.records[dns.Fqdn(q.Name)] {
			hdr := mdns.RR_Header{Name: q.Name, Class: mdns.ClassINET, Ttl: uint32(r.TTL)}
			switch {
			case q.Qtype == mdns.TypeTXT && r.Type == "TXT":
				hdr.Rrtype = mdns.TypeTXT
				resp.Answer = append(resp.Answer, &mdns.TXT{Hdr: hdr, Txt: []string{r.Value}})
			case q.Qtype == mdns.TypeA && r.Type == "A":
				hdr.Rrtype = mdns.TypeA
				resp.Answer = append(resp.Answer, &mdns.A{Hdr: hdr, A: net.ParseIP(r.Value)})
			}
		}
		m.mu.Unlock()
	}
	_ = w.WriteMsg(resp) // a lost answer is retried by the resolver
}

func (m *memDNS) List(_ context.Context, zone, name string) ([]dns.Record, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return slices.Clone(m.records[dns.Fqdn(name)]), nil
}

func (m *memDNS) Set(_ context.Context, zone, name, typ string, values []string, ttl int) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.refuse {
		return errors.Join(dns.ErrRefused, errors.New("NOTAUTH: TSIG key not accepted"))
	}
	m.sets++
	name = dns.Fqdn(name)
	rs := slices.DeleteFunc(m.records[name], func(r dns.Record) bool { return r.Type == typ })
	for _, v := range values {
		rs = append(rs, dns.Record{Name: name, Type: typ, Value: v, TTL: ttl})
	}
	m.records[name] = rs
	return nil
}

func (m *memDNS) Delete(_ context.Context, zone string, records ...dns.Record) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.deletes++
	for _, d := range records {
		name := dns.Fqdn(d.Name)
		m.records[name] = slices.DeleteFunc(m.records[name], func(r dns.Record) bool {
			return r.Type == d.Type && r.Value == d.Value
		})
		if len(m.records[name]) == 0 {
			delete(m.records, name)
		}
	}
	return nil
}

// txtNames returns the names holding TXT records.
func (m *memDNS) txtNames() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []string
	for n, rs := range m.records {
		for _, r := range rs {
			if r.Type == "TXT" && strings.HasPrefix(n, "_acme-challenge.") {
				out = append(out, n)
			}
		}
	}
	return out
}
