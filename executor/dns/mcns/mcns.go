// Package mcns is the DNS driver for MCNS, the platform's authoritative
// DNS server, through its REST API. api.go holds every assumption about
// that API; mcnsstandin is an in-process server implementing it, against
// which the driver passes the same contract suite (dnstest) as the
// rfc2136 driver does against bind9.
//
// How each Provider method maps onto the API:
//
//   - List: GET with ?name=, keeping the answer's records of that name.
//   - Set: List, then POST each missing value, PUT each value whose TTL
//     differs, and DELETE each value of that name and type not wanted,
//     additions first, so the name never resolves to nothing while it
//     changes. The API has no transaction: a failure part-way leaves a
//     mix, which the next Set (the executor's retry or converge pass)
//     completes.
//   - Delete: one DELETE per record.
//
// The bearer token is read from its file at every request, so it can be
// rotated without restarting the agent; it never appears in errors.
package mcns

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strings"
	"time"

	"metacircular.net/mcp/executor/dns"
)

// DefaultTimeout bounds one request.
const DefaultTimeout = 10 * time.Second

// Config says how to reach MCNS.
type Config struct {
	// URL is the API's base, e.g. "https://mcns.svc.mcp.example.org:8443".
	URL string
	// TokenFile holds the bearer token.
	TokenFile string
	// CAFile, when set, is the PEM bundle that verifies the server
	// (the platform CA); otherwise the system roots do.
	CAFile string
	// Timeout bounds each request; 0 means DefaultTimeout.
	Timeout time.Duration
}

// Provider is the MCNS driver.
type Provider struct {
	base      *url.URL
	tokenFile string
	hc        *http.Client
}

var _ dns.Provider = (*Provider)(nil)

// New checks the configuration and reads the token and CA bundle once, so
// a typo fails at start rather than at the first deploy.
func New(c Config) (*Provider, error) {
	u, err := url.Parse(c.URL)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return nil, fmt.Errorf("mcns: url %q is not an http(s) URL", c.URL)
	}
	if u.User != nil {
		return nil, fmt.Errorf("mcns: url must not carry credentials; the token goes in token_file")
	}
	u.Path = strings.TrimSuffix(u.Path, "/")
	if c.TokenFile == "" {
		return nil, errors.New("mcns: token file is required")
	}
	timeout := c.Timeout
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	if c.CAFile != "" {
		pem, err := os.ReadFile(c.CAFile)
		if err != nil {
			return nil, fmt.Errorf("mcns: read CA bundle: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("mcns: %s holds no PEM certificate", c.CAFile)
		}
		tr.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	}
	p := &Provider{base: u, tokenFile: c.TokenFile, hc: &http.Client{Transport: tr, Timeout: timeout}}
	if _, err := p.token(); err != nil {
		return nil, err
	}
	return p, nil
}

func (p *Provider) token() (string, error) {
	b, err := os.ReadFile(p.tokenFile)
	if err != nil {
		return "", fmt.Errorf("mcns: read token: %w", err)
	}
	t := strings.TrimSpace(string(b))
	if t == "" || strings.ContainsAny(t, "\r\n") {
		return "", fmt.Errorf("mcns: %s must hold one token on one line", p.tokenFile)
	}
	return t, nil
}

// List returns the records of name in zone.
func (p *Provider) List(ctx context.Context, zone, name string) ([]dns.Record, error) {
	zone, name = dns.Fqdn(zone), dns.Fqdn(name)
	if !dns.InZone(name, zone) {
		return nil, fmt.Errorf("mcns: list %s: not in zone %s", name, zone)
	}
	what := "list " + name
	body, err := p.do(ctx, http.MethodGet, zone, url.Values{nameParam: {name}}, nil, what)
	if err != nil {
		return nil, err
	}
	var recs []wireRecord
	if err := json.Unmarshal(body, &recs); err != nil {
		var wrapped struct {
			Records []wireRecord `json:"records"`
		}
		if err2 := json.Unmarshal(body, &wrapped); err2 != nil {
			return nil, fmt.Errorf("mcns %s: %s: decode the answer: %w", p.base.Host, what, err)
		}
		recs = wrapped.Records
	}
	var out []dns.Record
	for _, w := range recs {
		n := absolute(w.Name, zone)
		if n != name {
			continue
		}
		r := dns.Record{Name: n, Type: strings.ToUpper(w.Type), Value: w.Value, TTL: w.TTL}
		if v, err := dns.Normalize(r.Type, r.Value); err == nil {
			r.Value = v
		}
		out = append(out, r)
	}
	return out, nil
}

// absolute turns a name as the server spells it into a full one.
func absolute(name, zone string) string {
	name = dns.Fqdn(name)
	switch {
	case name == "@" || name == "":
		return zone
	case dns.InZone(name, zone):
		return name
	}
	return name + "." + zone
}

// Set makes the records of (name, typ) exactly values.
func (p *Provider) Set(ctx context.Context, zone, name, typ string, values []string, ttl int) error {
	zone, name, typ = dns.Fqdn(zone), dns.Fqdn(name), strings.ToUpper(typ)
	what := fmt.Sprintf("set %s %s in %s", name, typ, zone)
	if !dns.InZone(name, zone) {
		return fmt.Errorf("mcns: %s: the name is not in the zone", what)
	}
	want := map[string]bool{}
	for _, v := range values {
		n, err := dns.Normalize(typ, v)
		if err != nil {
			return fmt.Errorf("mcns: %s: %w", what, err)
		}
		want[n] = true
	}
	have, err := p.List(ctx, zone, name)
	if err != nil {
		return err
	}
	held := map[string]int{} // value → ttl
	for _, r := range have {
		if r.Type == typ {
			held[r.Value] = r.TTL
		}
	}
	for _, v := range sortedKeys(want) {
		rec := wireRecord{Name: name, Type: typ, Value: v, TTL: ttl}
		t, ok := held[v]
		switch {
		case !ok:
			err = p.send(ctx, http.MethodPost, zone, rec, what, http.StatusConflict)
		case t != ttl:
			err = p.send(ctx, http.MethodPut, zone, rec, what)
		}
		if err != nil {
			return err
		}
	}
	for _, v := range sortedKeys(held) {
		if !want[v] {
			if err := p.send(ctx, http.MethodDelete, zone, wireRecord{Name: name, Type: typ, Value: v, TTL: held[v]}, what, http.StatusNotFound); err != nil {
				return err
			}
		}
	}
	return nil
}

// Delete removes exactly the given records.
func (p *Provider) Delete(ctx context.Context, zone string, records ...dns.Record) error {
	zone = dns.Fqdn(zone)
	for _, r := range records {
		name, typ := dns.Fqdn(r.Name), strings.ToUpper(r.Type)
		what := fmt.Sprintf("delete %s %s %s in %s", name, typ, r.Value, zone)
		if !dns.InZone(name, zone) {
			return fmt.Errorf("mcns: %s: the name is not in the zone", what)
		}
		v, err := dns.Normalize(typ, r.Value)
		if err != nil {
			return fmt.Errorf("mcns: %s: %w", what, err)
		}
		if err := p.send(ctx, http.MethodDelete, zone, wireRecord{Name: name, Type: typ, Value: v, TTL: r.TTL}, what, http.StatusNotFound); err != nil {
			return err
		}
	}
	return nil
}

func (p *Provider) send(ctx context.Context, method, zone string, rec wireRecord, what string, fine ...int) error {
	b, err := json.Marshal(rec)
	if err != nil {
		return err
	}
	_, err = p.do(ctx, method, zone, nil, b, what, fine...)
	return err
}

// do sends one request; statuses in fine count as success.
func (p *Provider) do(ctx context.Context, method, zone string, q url.Values, body []byte, what string, fine ...int) ([]byte, error) {
	tok, err := p.token()
	if err != nil {
		return nil, err
	}
	u := *p.base
	u.Path = p.base.Path + recordsPathPrefix + url.PathEscape(zone) + recordsPathSuffix
	u.RawQuery = q.Encode()
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, u.String(), rd)
	if err != nil {
		return nil, fmt.Errorf("mcns: %s: %w", what, err)
	}
	req.Header.Set("Authorization", "Bearer "+tok)
	req.Header.Set("Accept", "application/json")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := p.hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("mcns %s: %s %s: %w: %w", p.base.Host, method, what, err, dns.ErrUnreachable)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	if err != nil {
		return nil, fmt.Errorf("mcns %s: %s %s: read the answer: %w: %w", p.base.Host, method, what, err, dns.ErrUnreachable)
	}
	if resp.StatusCode/100 == 2 || slices.Contains(fine, resp.StatusCode) {
		return data, nil
	}
	msg := serverMessage(data)
	var kind error
	switch resp.StatusCode {
	case http.StatusUnauthorized, http.StatusForbidden:
		kind = dns.ErrRefused
		msg += " (the token in " + p.tokenFile + " is not accepted for this zone)"
	case http.StatusBadRequest, http.StatusNotFound, http.StatusConflict, http.StatusUnprocessableEntity:
		kind = dns.ErrRefused
	case http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout:
		kind = dns.ErrUnreachable
	default:
		return nil, fmt.Errorf("mcns %s: %s %s: %s%s", p.base.Host, method, what, resp.Status, msg)
	}
	return nil, fmt.Errorf("mcns %s: %s %s: %s%s: %w", p.base.Host, method, what, resp.Status, msg, kind)
}

// serverMessage quotes the server's explanation, short.
func serverMessage(b []byte) string {
	var e errorBody
	s := strings.TrimSpace(string(b))
	if json.Unmarshal(b, &e) == nil && e.Error != "" {
		s = e.Error
	}
	if len(s) > 200 {
		s = s[:200] + "…"
	}
	if s == "" {
		return ""
	}
	return ": " + s
}

func sortedKeys[V any](m map[string]V) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	return ks
}
