// Package acme obtains certificates from an ACME (RFC 8555) CA such as
// Metacrypt: account registration with External Account Binding, one order
// per hostname, DNS-01 challenges through an executor/dns Provider and
// HTTP-01 challenges through a handler the agent serves, finalisation with
// CreateCertFromOrder (CreateOrderCert breaks on CAs that send no Location
// header when finalising).
//
// Errors carry the CA's problem document (type and detail) so an operator
// reads the CA's own words in the failed step.
package acme

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	xacme "golang.org/x/crypto/acme"

	"metacircular.net/mcp/executor/certs"
	"metacircular.net/mcp/executor/dns"
)

// Challenge types a zone can ask for.
const (
	ChallengeDNS01  = "dns-01"
	ChallengeHTTP01 = "http-01"
)

// Zone says how hostnames in one DNS zone prove control.
type Zone struct {
	// Zone is the zone's apex, e.g. "example.org".
	Zone string
	// Challenge is ChallengeDNS01 or ChallengeHTTP01.
	Challenge string
	// DNS changes the zone's records; required for DNS-01.
	DNS dns.Provider
	// Nameserver, when set ("host:port"), is queried directly after the
	// TXT record is written until it answers with the new value: the CA
	// asks the authoritative servers, so that is the propagation that
	// counts. Empty: the provider's own read-back (List) is trusted.
	Nameserver string
}

// Config is what the agent configuration gives the client.
type Config struct {
	// DirectoryURL is the CA's ACME directory.
	DirectoryURL string
	// EABKeyID and EABHMACFile are the External Account Binding the CA
	// handed out; the file holds the HMAC key, base64url encoded (as CAs
	// publish it). The key is read when the account is registered and
	// never logged. Empty EABKeyID: register without EAB.
	EABKeyID    string
	EABHMACFile string
	// CAFile is a PEM bundle to trust for the CA's HTTPS endpoint, in
	// addition to nothing else; empty means the system roots.
	CAFile string
	// Contact is the account's contact URIs ("mailto:ops@example.org"); a
	// bare address gets "mailto:".
	Contact []string
	// StateDir keeps the account key (one per directory URL, 0600).
	StateDir string
	// Zones choose the challenge per hostname: the longest zone that
	// contains the hostname wins.
	Zones []Zone
	// HTTP01, when set, serves HTTP-01 answers: the agent mounts it on a
	// port the CA reaches (directly, or through the proxy). Hostnames in
	// no zone use HTTP-01 when it is set.
	HTTP01 *HTTP01
	// PropagationTimeout bounds the wait for a TXT record to be visible
	// (default 2 minutes); Timeout bounds one whole issuance (default 10
	// minutes).
	PropagationTimeout time.Duration
	Timeout            time.Duration
	// TXTTTL is the TTL of challenge records (default 60 seconds).
	TXTTTL int
}

// ErrManualDNS is returned for a hostname in no zone mcp manages when no
// HTTP-01 listener is configured: someone must prove control by hand.
var ErrManualDNS = errors.New("needs manual DNS")

// Client is an ACME issuer. It is safe for concurrent use; issuances are
// serialised because a CA account is one sequence of nonces anyway.
type Client struct {
	cfg  Config
	log  *slog.Logger
	http *http.Client

	mu     sync.Mutex
	client *xacme.Client // registered, nil until the first issuance
}

var _ certs.Issuer = (*Client)(nil)

// Option configures a Client.
type Option func(*Client)

// WithLogger sets the logger. Secrets never reach it.
func WithLogger(l *slog.Logger) Option {
	return func(c *Client) {
		if l != nil {
			c.log = l
		}
	}
}

// New checks cfg and builds a client; nothing is contacted until Issue.
func New(cfg Config, opts ...Option) (*Client, error) {
	if cfg.DirectoryURL == "" {
		return nil, errors.New("acme: directory_url is required")
	}
	if cfg.StateDir == "" {
		return nil, errors.New("acme: a state directory for the account key is required")
	}
	if cfg.EABKeyID != "" && cfg.EABHMACFile == "" {
		return nil, errors.New("acme: eab_key_id is set but eab_hmac_file is not")
	}
	for _, z := range cfg.Zones {
		switch z.Challenge {
		case ChallengeDNS01:
			if z.DNS == nil {
				return nil, fmt.Errorf("acme: zone %s: dns-01 needs a DNS provider", z.Zone)
			}
		case ChallengeHTTP01:
			if cfg.HTTP01 == nil {
				return nil, fmt.Errorf("acme: zone %s: http-01 needs an HTTP-01 listener", z.Zone)
			}
		default:
			return nil, fmt.Errorf("acme: zone %s: challenge %q: want %q or %q", z.Zone, z.Challenge, ChallengeDNS01, ChallengeHTTP01)
		}
	}
	if cfg.PropagationTimeout <= 0 {
		cfg.PropagationTimeout = 2 * time.Minute
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 10 * time.Minute
	}
	if cfg.TXTTTL <= 0 {
		cfg.TXTTTL = 60
	}
	c := &Client{cfg: cfg, log: slog.New(slog.DiscardHandler)}
	for _, o := range opts {
		o(c)
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	if cfg.CAFile != "" {
		pemData, err := os.ReadFile(cfg.CAFile)
		if err != nil {
			return nil, fmt.Errorf("acme: ca_file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pemData) {
			return nil, fmt.Errorf("acme: ca_file %s holds no PEM certificate", cfg.CAFile)
		}
		tr.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	}
	c.http = &http.Client{Transport: tr, Timeout: time.Minute}
	return c, nil
}

// Issue obtains a certificate for hostname: order, prove control of each
// pending authorization, finalise with a fresh key, and return the chain
// the CA sent (leaf first).
func (c *Client) Issue(ctx context.Context, hostname string) (certs.Bundle, error) {
	hostname = dns.Fqdn(hostname)
	ctx, cancel := context.WithTimeout(ctx, c.cfg.Timeout)
	defer cancel()
	// A hostname nobody can prove control of fails before the CA is asked.
	if _, _, err := c.challengeFor(hostname); err != nil {
		return certs.Bundle{}, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	cl, err := c.account(ctx)
	if err != nil {
		return certs.Bundle{}, err
	}
	order, err := cl.AuthorizeOrder(ctx, xacme.DomainIDs(hostname))
	if err != nil {
		return certs.Bundle{}, fmt.Errorf("acme: new order for %s: %w", hostname, describe(err))
	}
	for _, u := range order.AuthzURLs {
		if err := c.authorize(ctx, cl, hostname, u); err != nil {
			return certs.Bundle{}, err
		}
	}
	order, err = cl.WaitOrder(ctx, order.URI)
	if err != nil {
		return certs.Bundle{}, fmt.Errorf("acme: order for %s: %w", hostname, describe(err))
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return certs.Bundle{}, fmt.Errorf("acme: generate key: %w", err)
	}
	csr, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{
		Subject: pkix.Name{CommonName: hostname}, DNSNames: []string{hostname},
	}, key)
	if err != nil {
		return certs.Bundle{}, fmt.Errorf("acme: csr: %w", err)
	}
	ders, _, err := cl.CreateCertFromOrder(ctx, order, csr, true)
	if err != nil {
		return certs.Bundle{}, fmt.Errorf("acme: finalize order for %s: %w", hostname, describe(err))
	}
	return bundle(ders, key)
}

// bundle turns the CA's DER chain into a Bundle. The CA's issuers (every
// certificate after the leaf) are also the CAPEM: an ACME CA does not hand
// out its root, and a service verifying peers of the same CA against its
// issuing chain is what the platform's L4 services do with ca.pem.
func bundle(ders [][]byte, key crypto.Signer) (certs.Bundle, error) {
	if len(ders) == 0 {
		return certs.Bundle{}, errors.New("acme: the CA returned no certificate")
	}
	leaf, err := x509.ParseCertificate(ders[0])
	if err != nil {
		return certs.Bundle{}, fmt.Errorf("acme: the CA returned an unreadable certificate: %w", err)
	}
	var chain, issuers bytes.Buffer
	for i, d := range ders {
		block := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: d})
		chain.Write(block)
		if i > 0 {
			issuers.Write(block)
		}
	}
	keyPEM, err := certs.MarshalKey(key)
	if err != nil {
		return certs.Bundle{}, err
	}
	return certs.Bundle{ChainPEM: chain.Bytes(), KeyPEM: keyPEM, CAPEM: issuers.Bytes(), NotAfter: leaf.NotAfter}, nil
}

// account returns a client registered with the CA, registering the
// account key (created on first use) with EAB when needed.
func (c *Client) account(ctx context.Context) (*xacme.Client, error) {
	if c.client != nil {
		return c.client, nil
	}
	key, err := c.accountKey()
	if err != nil {
		return nil, err
	}
	cl := &xacme.Client{Key: key, DirectoryURL: c.cfg.DirectoryURL, HTTPClient: c.http, UserAgent: "mcp"}
	if _, err := cl.Discover(ctx); err != nil {
		return nil, fmt.Errorf("acme: directory %s: %w", c.cfg.DirectoryURL, describe(err))
	}
	acct := &xacme.Account{Contact: contacts(c.cfg.Contact)}
	if c.cfg.EABKeyID != "" {
		hmac, err := readHMAC(c.cfg.EABHMACFile)
		if err != nil {
			return nil, err
		}
		acct.ExternalAccountBinding = &xacme.ExternalAccountBinding{KID: c.cfg.EABKeyID, Key: hmac}
	}
	_, err = cl.Register(ctx, acct, xacme.AcceptTOS)
	switch {
	case errors.Is(err, xacme.ErrAccountAlreadyExists):
		// The key is known to the CA: Register has set the account URL.
	case err != nil:
		what := "register account"
		if c.cfg.EABKeyID != "" {
			what += " with EAB key id " + c.cfg.EABKeyID
		}
		return nil, fmt.Errorf("acme: %s at %s: %w", what, c.cfg.DirectoryURL, describe(err))
	default:
		c.log.Info("registered ACME account", "directory", c.cfg.DirectoryURL, "eab_key_id", c.cfg.EABKeyID)
	}
	c.client = cl
	return cl, nil
}

// accountKey loads or creates the account key. One key per directory URL,
// so pointing the agent at another CA starts a fresh account rather than
// confusing two.
func (c *Client) accountKey() (crypto.Signer, error) {
	sum := sha256.Sum256([]byte(c.cfg.DirectoryURL))
	path := filepath.Join(c.cfg.StateDir, "account-"+hex.EncodeToString(sum[:6])+".key")
	if data, err := os.ReadFile(path); err == nil {
		k, err := certs.ParseKey(data)
		if err != nil {
			return nil, fmt.Errorf("acme: account key %s: %w", path, err)
		}
		return k, nil
	} else if !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("acme: account key: %w", err)
	}
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("acme: generate account key: %w", err)
	}
	data, err := certs.MarshalKey(k)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(c.cfg.StateDir, 0o700); err != nil {
		return nil, fmt.Errorf("acme: %w", err)
	}
	if err := certs.WriteSet([]certs.File{{Path: path, Data: data, Mode: 0o600, UID: -1, GID: -1}}); err != nil {
		return nil, fmt.Errorf("acme: account key: %w", err)
	}
	return k, nil
}

// readHMAC reads the EAB HMAC key. CAs hand it out base64url without
// padding; padded and standard alphabets are accepted too. Errors never
// quote the file's content.
func readHMAC(path string) ([]byte, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("acme: eab_hmac_file: %w", err)
	}
	s := strings.TrimSpace(string(data))
	if s == "" {
		return nil, fmt.Errorf("acme: eab_hmac_file %s is empty", path)
	}
	for _, enc := range []*base64.Encoding{base64.RawURLEncoding, base64.URLEncoding, base64.RawStdEncoding, base64.StdEncoding} {
		if k, err := enc.DecodeString(s); err == nil && len(k) > 0 {
			return k, nil
		}
	}
	return nil, fmt.Errorf("acme: eab_hmac_file %s does not hold a base64url key", path)
}

func contacts(in []string) []string {
	var out []string
	for _, s := range in {
		s = strings.TrimSpace(s)
		if s == "" {
			continue
		}
		if !strings.Contains(s, ":") {
			s = "mailto:" + s
		}
		out = append(out, s)
	}
	return out
}

// authorize completes one authorization of the order.
func (c *Client) authorize(ctx context.Context, cl *xacme.Client, hostname, url string) error {
	az, err := cl.GetAuthorization(ctx, url)
	if err != nil {
		return fmt.Errorf("acme: authorization for %s: %w", hostname, describe(err))
	}
	if az.Status == xacme.StatusValid {
		return nil // the CA remembers an earlier proof
	}
	if az.Status != xacme.StatusPending {
		return fmt.Errorf("acme: authorization for %s is %s", hostname, az.Status)
	}
	name := dns.Fqdn(az.Identifier.Value)
	typ, zone, err := c.challengeFor(name)
	if err != nil {
		return err
	}
	var chal *xacme.Challenge
	var offered []string
	for _, ch := range az.Challenges {
		offered = append(offered, ch.Type)
		if ch.Type == typ {
			chal = ch
		}
	}
	if chal == nil {
		return fmt.Errorf("acme: the CA offers %s no %s challenge (offered: %s)", name, typ, strings.Join(offered, ", "))
	}
	cleanup, err := c.present(ctx, cl, name, zone, chal)
	// Challenge records and answers go whatever happened, on a context
	// that outlives a cancelled issuance.
	defer func() {
		if cleanup == nil {
			return
		}
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
		if err := cleanup(cctx); err != nil {
			c.log.Warn("could not remove ACME challenge", "hostname", name, "challenge", typ, "err", err)
		}
	}()
	if err != nil {
		return err
	}
	if _, err := cl.Accept(ctx, chal); err != nil {
		return fmt.Errorf("acme: accept %s challenge for %s: %w", typ, name, describe(err))
	}
	if _, err := cl.WaitAuthorization(ctx, az.URI); err != nil {
		return fmt.Errorf("acme: %s challenge for %s failed: %w", typ, name, describe(err))
	}
	return nil
}

// challengeFor picks the challenge for a hostname from the zones.
func (c *Client) challengeFor(name string) (string, *Zone, error) {
	var best *Zone
	for i := range c.cfg.Zones {
		z := &c.cfg.Zones[i]
		if dns.InZone(name, z.Zone) && (best == nil || len(dns.Fqdn(z.Zone)) > len(dns.Fqdn(best.Zone))) {
			best = z
		}
	}
	if best != nil {
		return best.Challenge, best, nil
	}
	if c.cfg.HTTP01 != nil {
		return ChallengeHTTP01, nil, nil
	}
	zones := make([]string, 0, len(c.cfg.Zones))
	for _, z := range c.cfg.Zones {
		zones = append(zones, z.Zone)
	}
	slices.Sort(zones)
	managed := "none"
	if len(zones) > 0 {
		managed = strings.Join(zones, ", ")
	}
	return "", nil, fmt.Errorf("acme: %s is in no zone mcp manages (managed: %s) and no HTTP-01 listener is configured; it %w: add its zone to the agent's DNS configuration, set acme.http01_listen, or issue the certificate by hand",
		name, managed, ErrManualDNS)
}

// present publishes the answer to chal and returns how to withdraw it.
func (c *Client) present(ctx context.Context, cl *xacme.Client, name string, zone *Zone, chal *xacme.Challenge) (func(context.Context) error, error) {
	switch chal.Type {
	case ChallengeHTTP01:
		body, err := cl.HTTP01ChallengeResponse(chal.Token)
		if err != nil {
			return nil, fmt.Errorf("acme: http-01 answer for %s: %w", name, err)
		}
		c.cfg.HTTP01.put(chal.Token, body)
		return func(context.Context) error { c.cfg.HTTP01.remove(chal.Token); return nil }, nil
	case ChallengeDNS01:
		value, err := cl.DNS01ChallengeRecord(chal.Token)
		if err != nil {
			return nil, fmt.Errorf("acme: dns-01 answer for %s: %w", name, err)
		}
		rec := dns.Record{Name: "_acme-challenge." + name, Type: "TXT", Value: value, TTL: c.cfg.TXTTTL}
		zn := dns.Fqdn(zone.Zone)
		// Set (not add) the name's TXT values: a record left over from an
		// earlier, interrupted attempt would only confuse the CA.
		if err := zone.DNS.Set(ctx, zn, rec.Name, rec.Type, []string{value}, rec.TTL); err != nil {
			return nil, fmt.Errorf("acme: dns-01 for %s: write TXT %s in zone %s: %w", name, rec.Name, zn, err)
		}
		cleanup := func(ctx context.Context) error { return zone.DNS.Delete(ctx, zn, rec) }
		if err := c.waitTXT(ctx, zone, rec); err != nil {
			return cleanup, err
		}
		return cleanup, nil
	}
	return nil, fmt.Errorf("acme: unsupported challenge %s", chal.Type)
}

// waitTXT waits until the record is visible where the CA will look.
func (c *Client) waitTXT(ctx context.Context, zone *Zone, rec dns.Record) error {
	ctx, cancel := context.WithTimeout(ctx, c.cfg.PropagationTimeout)
	defer cancel()
	where := "the DNS provider"
	if zone.Nameserver != "" {
		where = zone.Nameserver
	}
	var last error
	for delay := 100 * time.Millisecond; ; delay = min(2*delay, 5*time.Second) {
		var (
			vals []string
			err  error
		)
		if zone.Nameserver != "" {
			vals, err = lookupTXT(ctx, zone.Nameserver, rec.Name)
		} else {
			var rs []dns.Record
			rs, err = zone.DNS.List(ctx, dns.Fqdn(zone.Zone), rec.Name)
			for _, r := range rs {
				if strings.EqualFold(r.Type, "TXT") {
					vals = append(vals, r.Value)
				}
			}
		}
		if err == nil && slices.Contains(vals, rec.Value) {
			return nil
		}
		last = err
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			msg := fmt.Sprintf("acme: TXT %s not visible at %s after %s", rec.Name, where, c.cfg.PropagationTimeout)
			if last != nil {
				return fmt.Errorf("%s: %w", msg, last)
			}
			return errors.New(msg)
		case <-t.C:
		}
	}
}

// describe keeps the CA's problem document readable: x/crypto's errors
// already carry type and detail; an invalid authorization gets its
// challenge errors spelled out, an invalid order its problem.
func describe(err error) error {
	var ae *xacme.AuthorizationError
	if errors.As(err, &ae) {
		parts := make([]string, 0, len(ae.Errors))
		for _, e := range ae.Errors {
			parts = append(parts, problem(e))
		}
		return fmt.Errorf("the CA rejected the authorization: %s", strings.Join(parts, "; "))
	}
	var oe *xacme.OrderError
	if errors.As(err, &oe) {
		if oe.Problem != nil {
			return fmt.Errorf("the CA marked the order %s: %s", oe.Status, problem(oe.Problem))
		}
		return fmt.Errorf("the CA marked the order %s", oe.Status)
	}
	// *xacme.Error prints "<status> <problem type>: <detail>" already.
	return err
}

func problem(err error) string {
	var pe *xacme.Error
	if errors.As(err, &pe) {
		s := pe.ProblemType
		if pe.Detail != "" {
			s += ": " + pe.Detail
		}
		if pe.StatusCode != 0 {
			s = fmt.Sprintf("%s (HTTP %d)", s, pe.StatusCode)
		}
		for _, sp := range pe.Subproblems {
			s += "; " + sp.String()
		}
		return s
	}
	return err.Error()
}
