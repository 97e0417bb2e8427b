// Package rfc2136 is the DNS driver for standard authoritative servers
// (BIND, Knot, PowerDNS): changes are RFC 2136 dynamic updates, signed
// with TSIG (RFC 8945), and reads are ordinary queries to the same server.
//
// How each Provider method maps onto the protocol:
//
//   - List sends one query per type mcp manages (A, AAAA, CNAME, TXT) for
//     the name, to the configured server, over TCP, signed with the key.
//     A zone transfer (AXFR) would give every type at once but servers
//     usually refuse it to update keys, and ANY is answered minimally by
//     many servers (RFC 8482), so the driver asks type by type; records of
//     other types are not listed. NXDOMAIN and an empty answer both mean
//     "no records".
//   - Set is one UPDATE message for the zone: delete the RRset (name,
//     type), then add each value. RFC 2136 applies an UPDATE atomically
//     and in order, so the RRset goes from its old content to exactly the
//     new one with no moment in between visible to resolvers.
//   - Delete is one UPDATE removing exactly the given resource records
//     (class NONE): values not named, other types and other names stay.
//
// Everything goes over TCP: updates and answers with many TXT records do
// not fit the 512 bytes of plain UDP, and TCP never loses a datagram.
// Every exchange is bounded by Config.Timeout (and the context).
//
// The TSIG secret is read from a file at every use, so it can be rotated
// without restarting the agent; it never appears in errors or logs.
package rfc2136

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"slices"
	"strings"
	"time"

	mdns "github.com/miekg/dns"

	"metacircular.net/mcp/executor/dns"
)

// DefaultTimeout bounds one exchange with the server.
const DefaultTimeout = 5 * time.Second

// Algorithms are the TSIG algorithms accepted in Config.Algorithm.
var Algorithms = []string{"hmac-sha256", "hmac-sha224", "hmac-sha384", "hmac-sha512", "hmac-sha1"}

// Config says how to reach one server.
type Config struct {
	// Server is host:port, or host (port 53).
	Server string
	// KeyName is the TSIG key's name as the server knows it.
	KeyName string
	// Algorithm is one of Algorithms; "" means hmac-sha256.
	Algorithm string
	// SecretFile holds the base64 secret, alone or as a BIND key
	// statement (what tsig-keygen prints).
	SecretFile string
	// Timeout bounds each exchange; 0 means DefaultTimeout.
	Timeout time.Duration
}

// Provider is the RFC 2136 driver.
type Provider struct {
	server  string
	keyName string // canonical: lower case, trailing dot
	alg     string // miekg's form: "hmac-sha256."
	file    string
	timeout time.Duration
}

var _ dns.Provider = (*Provider)(nil)

// New checks the configuration and reads the secret once, so a typo fails
// at start rather than at the first deploy.
func New(c Config) (*Provider, error) {
	if c.Server == "" {
		return nil, errors.New("rfc2136: server is required")
	}
	server := c.Server
	if _, _, err := net.SplitHostPort(server); err != nil {
		server = net.JoinHostPort(strings.Trim(server, "[]"), "53")
	}
	if c.KeyName == "" {
		return nil, errors.New("rfc2136: TSIG key name is required")
	}
	alg := c.Algorithm
	if alg == "" {
		alg = "hmac-sha256"
	}
	alg = strings.TrimSuffix(strings.ToLower(alg), ".")
	if !slices.Contains(Algorithms, alg) {
		return nil, fmt.Errorf("rfc2136: TSIG algorithm %q is not one of %s", c.Algorithm, strings.Join(Algorithms, ", "))
	}
	if c.SecretFile == "" {
		return nil, errors.New("rfc2136: TSIG secret file is required")
	}
	p := &Provider{
		server:  server,
		keyName: mdns.CanonicalName(c.KeyName),
		alg:     alg + ".",
		file:    c.SecretFile,
		timeout: c.Timeout,
	}
	if p.timeout <= 0 {
		p.timeout = DefaultTimeout
	}
	if _, err := p.secret(); err != nil {
		return nil, err
	}
	return p, nil
}

// Server is the address updates go to (host:port).
func (p *Provider) Server() string { return p.server }

// secret reads the key file. It accepts the bare base64 secret or a BIND
// key statement, whose `secret "...";` is taken.
func (p *Provider) secret() (string, error) {
	b, err := os.ReadFile(p.file)
	if err != nil {
		return "", fmt.Errorf("rfc2136: read TSIG secret for key %s: %w", dns.Fqdn(p.keyName), err)
	}
	s := strings.TrimSpace(string(b))
	if i := strings.Index(s, "secret"); i >= 0 && strings.Contains(s, "{") {
		rest := s[i+len("secret"):]
		open := strings.IndexByte(rest, '"')
		if open < 0 {
			return "", fmt.Errorf("rfc2136: %s: no quoted secret in the key statement", p.file)
		}
		end := strings.IndexByte(rest[open+1:], '"')
		if end < 0 {
			return "", fmt.Errorf("rfc2136: %s: unterminated secret in the key statement", p.file)
		}
		s = rest[open+1 : open+1+end]
	}
	if s == "" {
		return "", fmt.Errorf("rfc2136: %s is empty (want the base64 TSIG secret)", p.file)
	}
	if _, err := base64.StdEncoding.DecodeString(s); err != nil {
		// The error would quote part of the secret: say only where.
		return "", fmt.Errorf("rfc2136: %s does not hold a base64 TSIG secret", p.file)
	}
	return s, nil
}

// types are the record types List asks for, in the order it asks.
var types = []uint16{mdns.TypeA, mdns.TypeAAAA, mdns.TypeCNAME, mdns.TypeTXT}

// List returns the A, AAAA, CNAME and TXT records of name.
func (p *Provider) List(ctx context.Context, zone, name string) ([]dns.Record, error) {
	if !dns.InZone(name, zone) {
		return nil, fmt.Errorf("rfc2136: list %s: not in zone %s", name, zone)
	}
	var out []dns.Record
	for _, t := range types {
		m := new(mdns.Msg)
		m.SetQuestion(mdns.Fqdn(dns.Fqdn(name)), t)
		m.RecursionDesired = false
		r, err := p.exchange(ctx, m)
		what := fmt.Sprintf("query %s %s", dns.Fqdn(name), mdns.TypeToString[t])
		if err != nil {
			return nil, p.wrap(what, err)
		}
		switch r.Rcode {
		case mdns.RcodeSuccess:
		case mdns.RcodeNameError:
			// NXDOMAIN is also the answer for a name whose CNAME points
			// at a name that does not exist; only without an answer for
			// the name itself does it mean no type can have records.
			if !answers(r, m.Question[0].Name) {
				return nil, nil
			}
		default:
			return nil, p.refused(what, r)
		}
		for _, rr := range r.Answer {
			if rr.Header().Rrtype != t || !strings.EqualFold(rr.Header().Name, m.Question[0].Name) {
				continue // e.g. the CNAME an A query led through
			}
			if rec, ok := fromRR(rr); ok {
				out = append(out, rec)
			}
		}
	}
	return out, nil
}

// answers reports whether r's answer section holds a record named name.
func answers(r *mdns.Msg, name string) bool {
	for _, rr := range r.Answer {
		if strings.EqualFold(rr.Header().Name, name) {
			return true
		}
	}
	return false
}

// Set replaces the RRset (name, typ) with values in one UPDATE.
func (p *Provider) Set(ctx context.Context, zone, name, typ string, values []string, ttl int) error {
	name, typ = dns.Fqdn(name), strings.ToUpper(typ)
	what := fmt.Sprintf("set %s %s in %s", name, typ, dns.Fqdn(zone))
	if !dns.InZone(name, zone) {
		return fmt.Errorf("rfc2136: %s: the name is not in the zone", what)
	}
	t, ok := mdns.StringToType[typ]
	if !ok || !slices.Contains(types, t) {
		return fmt.Errorf("rfc2136: %s: type %q is not one of A, AAAA, CNAME, TXT", what, typ)
	}
	var rrs []mdns.RR
	for _, v := range values {
		rr, err := toRR(name, typ, v, ttl)
		if err != nil {
			return fmt.Errorf("rfc2136: %s: %w", what, err)
		}
		rrs = append(rrs, rr)
	}
	m := new(mdns.Msg)
	m.SetUpdate(mdns.Fqdn(dns.Fqdn(zone)))
	m.RemoveRRset([]mdns.RR{&mdns.ANY{Hdr: mdns.RR_Header{Name: mdns.Fqdn(name), Rrtype: t, Class: mdns.ClassINET}}})
	if len(rrs) > 0 {
		m.Insert(rrs)
	}
	return p.update(ctx, what, m)
}

// Delete removes exactly the given records in one UPDATE.
func (p *Provider) Delete(ctx context.Context, zone string, records ...dns.Record) error {
	if len(records) == 0 {
		return nil
	}
	what := fmt.Sprintf("delete %d record(s) of %s in %s", len(records), dns.Fqdn(records[0].Name), dns.Fqdn(zone))
	var rrs []mdns.RR
	for _, r := range records {
		if !dns.InZone(r.Name, zone) {
			return fmt.Errorf("rfc2136: %s: %s is not in the zone", what, r.Name)
		}
		rr, err := toRR(dns.Fqdn(r.Name), strings.ToUpper(r.Type), r.Value, 0)
		if err != nil {
			return fmt.Errorf("rfc2136: %s: %w", what, err)
		}
		rrs = append(rrs, rr)
	}
	m := new(mdns.Msg)
	m.SetUpdate(mdns.Fqdn(dns.Fqdn(zone)))
	m.Remove(rrs)
	return p.update(ctx, what, m)
}

func (p *Provider) update(ctx context.Context, what string, m *mdns.Msg) error {
	r, err := p.exchange(ctx, m)
	if err != nil {
		return p.wrap(what, err)
	}
	if r.Rcode != mdns.RcodeSuccess {
		return p.refused(what, r)
	}
	return nil
}

// exchange signs m and sends it over TCP. A response whose own signature
// does not verify is still returned when the server put an error in it:
// servers answer a bad key unsigned, and that rcode is the useful part.
func (p *Provider) exchange(ctx context.Context, m *mdns.Msg) (*mdns.Msg, error) {
	secret, err := p.secret()
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, p.timeout)
	defer cancel()
	c := &mdns.Client{
		Net:        "tcp",
		Timeout:    p.timeout,
		TsigSecret: map[string]string{p.keyName: secret},
	}
	m.SetTsig(p.keyName, p.alg, 300, time.Now().Unix())
	r, _, err := c.ExchangeContext(ctx, m, p.server)
	if r != nil && r.Rcode != mdns.RcodeSuccess {
		return r, nil
	}
	if err != nil {
		return nil, err
	}
	return r, nil
}

// wrap classifies a failed exchange: a failed TSIG check of the answer is
// a refusal (the server does not share our key), anything else on the
// way is "unreachable".
func (p *Provider) wrap(what string, err error) error {
	switch {
	case errors.Is(err, mdns.ErrSig), errors.Is(err, mdns.ErrAuth), errors.Is(err, mdns.ErrTime), errors.Is(err, mdns.ErrKeyAlg):
		return fmt.Errorf("rfc2136 server %s: %s with TSIG key %s: the answer failed TSIG verification (%w): %w",
			p.server, what, dns.Fqdn(p.keyName), err, dns.ErrRefused)
	case strings.HasPrefix(err.Error(), "rfc2136:"):
		return err // reading the secret
	}
	return fmt.Errorf("rfc2136 server %s: %s: %w: %w", p.server, what, err, dns.ErrUnreachable)
}

// refused builds the error for an answer with an error rcode, naming the
// server, the key and both the rcode and the TSIG error (BADSIG, BADKEY,
// BADTIME), which is where a wrong key shows.
func (p *Provider) refused(what string, r *mdns.Msg) error {
	rcode := mdns.RcodeToString[r.Rcode]
	if rcode == "" {
		rcode = fmt.Sprintf("rcode %d", r.Rcode)
	}
	hint := ""
	if t := r.IsTsig(); t != nil && t.Error != mdns.RcodeSuccess {
		te := mdns.RcodeToString[int(t.Error)]
		if t.Error == mdns.RcodeBadSig {
			te = "BADSIG" // shares its number with BADVERS in the table
		}
		rcode += ", TSIG error " + te
		hint = " (the server does not accept this key: check the key name, algorithm and secret)"
	} else if r.Rcode == mdns.RcodeNotAuth || r.Rcode == mdns.RcodeRefused {
		hint = " (the key is not allowed to update this zone, or the server is not authoritative for it)"
	}
	return fmt.Errorf("rfc2136 server %s: %s with TSIG key %s: %s%s: %w", p.server, what, dns.Fqdn(p.keyName), rcode, hint, dns.ErrRefused)
}

// toRR builds the resource record for one value of (name, typ).
func toRR(name, typ, value string, ttl int) (mdns.RR, error) {
	v, err := dns.Normalize(typ, value)
	if err != nil {
		return nil, err
	}
	t := mdns.StringToType[typ]
	hdr := mdns.RR_Header{Name: mdns.Fqdn(name), Rrtype: t, Class: mdns.ClassINET, Ttl: uint32(max(ttl, 0))}
	switch typ {
	case "A":
		return &mdns.A{Hdr: hdr, A: net.IP(netip.MustParseAddr(v).AsSlice())}, nil
	case "AAAA":
		return &mdns.AAAA{Hdr: hdr, AAAA: net.IP(netip.MustParseAddr(v).AsSlice())}, nil
	case "CNAME":
		return &mdns.CNAME{Hdr: hdr, Target: mdns.Fqdn(v)}, nil
	case "TXT":
		return &mdns.TXT{Hdr: hdr, Txt: splitTXT(v)}, nil
	}
	return nil, fmt.Errorf("type %q is not one of A, AAAA, CNAME, TXT", typ)
}

// splitTXT cuts a value into the 255-byte character-strings TXT holds;
// fromRR joins them back.
func splitTXT(v string) []string {
	if v == "" {
		return []string{""}
	}
	var out []string
	for len(v) > 255 {
		out = append(out, v[:255])
		v = v[255:]
	}
	return append(out, v)
}

func fromRR(rr mdns.RR) (dns.Record, bool) {
	h := rr.Header()
	rec := dns.Record{Name: dns.Fqdn(h.Name), TTL: int(h.Ttl)}
	switch rr := rr.(type) {
	case *mdns.A:
		rec.Type, rec.Value = "A", rr.A.String()
	case *mdns.AAAA:
		rec.Type, rec.Value = "AAAA", rr.AAAA.String()
	case *mdns.CNAME:
		rec.Type, rec.Value = "CNAME", dns.Fqdn(rr.Target)
	case *mdns.TXT:
		rec.Type, rec.Value = "TXT", strings.Join(rr.Txt, "")
	default:
		return dns.Record{}, false
	}
	return rec, true
}
