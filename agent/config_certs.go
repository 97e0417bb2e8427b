package agent

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"metacircular.net/mcp/executor/certs"
	"metacircular.net/mcp/executor/certs/acme"
	"metacircular.net/mcp/executor/dns"
)

// Issuers the [certs] table accepts.
const (
	IssuerLocal = "local" // the embedded CA in <state_dir>/ca (default)
	IssuerACME  = "acme"  // an ACME CA such as Metacrypt ([acme] table)
)

// Limits of the [certs] and [acme] tables.
const (
	MinRenewBefore            = time.Hour
	MaxRenewBefore            = 80 * 24 * time.Hour
	DefaultPropagationTimeout = 2 * time.Minute
)

// CertsConfig is the [certs] table: who issues certificates and where the
// proxy reads them (executor/certs describes the file layout).
type CertsConfig struct {
	// Enabled is set by a [certs] table; certificates are also managed,
	// from the default issuer, whenever a [proxy] driver is configured
	// (its L7 routes need them). See Config.CertsOn.
	Enabled bool
	// Issuer is IssuerLocal ("" means the same) or IssuerACME.
	Issuer string
	// RenewBefore is the renewal window; zero means 30 days.
	RenewBefore Duration
	// ProxyCertDir is where L7 certificates go; "" means
	// /srv/mc-proxy/certs.
	ProxyCertDir string
	// ProxyCertOwner is "uid:gid" of the proxy's user, owner of the L7
	// files; "" leaves them to the agent's user.
	ProxyCertOwner string
}

// ACMEConfig is the [acme] table, read when certs.issuer = "acme".
type ACMEConfig struct {
	DirectoryURL string
	EABKeyID     string
	// EABHMACFile holds the HMAC key (base64url, as the CA hands it out);
	// it is read when the account registers and never logged.
	EABHMACFile string
	// CAFile is a PEM bundle to trust for the CA's HTTPS endpoint.
	CAFile  string
	Contact []string
	// HTTP01Listen, when set, serves HTTP-01 answers on that address
	// (e.g. ":80"): hostnames in no [[acme.zones]] entry use HTTP-01.
	HTTP01Listen       string
	PropagationTimeout Duration
	Zones              []ACMEZone
}

// ACMEZone is one [[acme.zones]] entry: how names in a zone prove control.
type ACMEZone struct {
	Zone string
	// Challenge is "dns-01" (through the DNS driver that serves the zone)
	// or "http-01".
	Challenge string
	// Nameserver (host:port), when set, is asked directly until the
	// challenge TXT record is visible; otherwise the DNS driver's
	// read-back is trusted.
	Nameserver string
}

// RenewWindow is RenewBefore, certs.DefaultRenewBefore unless set.
func (c CertsConfig) RenewWindow() time.Duration {
	if c.RenewBefore.Duration == 0 {
		return certs.DefaultRenewBefore
	}
	return c.RenewBefore.Duration
}

// CertDir is ProxyCertDir, certs.DefaultProxyCertDir unless set.
func (c CertsConfig) CertDir() string {
	if c.ProxyCertDir == "" {
		return certs.DefaultProxyCertDir
	}
	return c.ProxyCertDir
}

// Owner returns ProxyCertOwner as numbers; -1, -1 when unset.
func (c CertsConfig) Owner() (uid, gid int) {
	if c.ProxyCertOwner == "" {
		return -1, -1
	}
	uid, gid, _ = parseOwner(c.ProxyCertOwner)
	return uid, gid
}

func parseOwner(s string) (int, int, bool) {
	us, gs, ok := strings.Cut(s, ":")
	uid, err1 := strconv.Atoi(us)
	gid, err2 := strconv.Atoi(gs)
	if !ok || err1 != nil || err2 != nil || uid < 0 || gid < 0 {
		return 0, 0, false
	}
	return uid, gid, true
}

// CertsOn reports whether the agent manages certificates: a [certs] table,
// certs.issuer = "acme", or a proxy whose L7 routes need them. Off, no cert
// steps are planned, as before certificates existed.
func (c *Config) CertsOn() bool {
	return c.Certs.Enabled || c.Certs.Issuer != "" || c.Proxy.Driver != ""
}

// LocalCADir is where the embedded CA keeps its root and intermediate.
func (c *Config) LocalCADir() string { return c.StateDir + "/ca" }

// CertStateDir keeps the current certificate of every hostname.
func (c *Config) CertStateDir() string { return c.StateDir + "/certs" }

// ACMEStateDir keeps the ACME account keys.
func (c *Config) ACMEStateDir() string { return c.StateDir + "/acme" }

// certTables parses [certs] and [acme]. Defaults stay zero values.
func (p *parser) certTables(raw map[string]any, c *Config) {
	if t := p.table(raw, "certs"); t != nil {
		const pre = "certs"
		c.Certs.Enabled = true
		p.known(t, pre, "issuer", "renew_before", "proxy_cert_dir", "proxy_cert_owner")
		if p.str(t, pre, "issuer", &c.Certs.Issuer) && c.Certs.Issuer != IssuerLocal && c.Certs.Issuer != IssuerACME {
			p.errorf("certs.issuer", "%q is not one of local, acme", c.Certs.Issuer)
		}
		p.duration(t, pre, "renew_before", &c.Certs.RenewBefore, MinRenewBefore, MaxRenewBefore)
		p.str(t, pre, "proxy_cert_dir", &c.Certs.ProxyCertDir)
		c.Certs.ProxyCertDir = p.absPath("certs.proxy_cert_dir", c.Certs.ProxyCertDir)
		if p.str(t, pre, "proxy_cert_owner", &c.Certs.ProxyCertOwner) {
			if _, _, ok := parseOwner(c.Certs.ProxyCertOwner); !ok {
				p.errorf("certs.proxy_cert_owner", "%q is not uid:gid (numbers, e.g. \"0:108\")", c.Certs.ProxyCertOwner)
			}
		}
	}
	t := p.table(raw, "acme")
	if t == nil {
		if c.Certs.Issuer == IssuerACME {
			p.errorf("acme", "is required when certs.issuer = \"acme\" (at least directory_url)")
		}
		return
	}
	const pre = "acme"
	a := &c.ACME
	p.known(t, pre, "directory_url", "eab_key_id", "eab_hmac_file", "ca_file", "contact", "http01_listen", "propagation_timeout", "zones")
	if p.str(t, pre, "directory_url", &a.DirectoryURL) && !strings.HasPrefix(a.DirectoryURL, "https://") {
		p.errorf("acme.directory_url", "%q is not an https:// URL (ACME runs over HTTPS)", a.DirectoryURL)
	}
	if c.Certs.Issuer == IssuerACME && a.DirectoryURL == "" {
		p.errorf("acme.directory_url", "is required when certs.issuer = \"acme\"")
	}
	p.str(t, pre, "eab_key_id", &a.EABKeyID)
	p.str(t, pre, "eab_hmac_file", &a.EABHMACFile)
	a.EABHMACFile = p.absPath("acme.eab_hmac_file", a.EABHMACFile)
	if (a.EABKeyID == "") != (a.EABHMACFile == "") {
		p.errorf("acme.eab_key_id", "eab_key_id and eab_hmac_file go together (the CA hands out both)")
	}
	p.str(t, pre, "ca_file", &a.CAFile)
	a.CAFile = p.absPath("acme.ca_file", a.CAFile)
	switch v := t["contact"].(type) {
	case nil:
	case string:
		a.Contact = []string{v}
	case []any:
		for i, e := range v {
			s, ok := e.(string)
			if !ok {
				p.errorf(fmt.Sprintf("acme.contact[%d]", i), "must be a string, not %s", typeName(e))
				continue
			}
			a.Contact = append(a.Contact, s)
		}
	default:
		p.errorf("acme.contact", "must be a string or a list of strings, not %s", typeName(v))
	}
	if p.str(t, pre, "http01_listen", &a.HTTP01Listen) {
		p.listenAddr("acme.http01_listen", a.HTTP01Listen)
	}
	p.duration(t, pre, "propagation_timeout", &a.PropagationTimeout, time.Second, time.Hour)
	for i, z := range p.tableArray("acme.zones", t["zones"]) {
		p.acmeZone(fmt.Sprintf("acme.zones[%d]", i), z, a)
	}
	for i, z := range a.Zones {
		if z.Challenge == acme.ChallengeHTTP01 && a.HTTP01Listen == "" {
			p.errorf(fmt.Sprintf("acme.zones[%d].challenge", i), "http-01 needs acme.http01_listen (the address the CA's requests reach)")
		}
	}
}

func (p *parser) acmeZone(pre string, t map[string]any, a *ACMEConfig) {
	p.known(t, pre, "zone", "challenge", "nameserver")
	var z ACMEZone
	if !p.str(t, pre, "zone", &z.Zone) || z.Zone == "" {
		p.errorf(pre+".zone", "is required (the zone's apex, e.g. \"svc.mcp.example.org\")")
	}
	z.Zone = dns.Fqdn(z.Zone)
	for _, o := range a.Zones {
		if o.Zone == z.Zone && z.Zone != "" {
			p.errorf(pre+".zone", "%q is listed twice", z.Zone)
		}
	}
	z.Challenge = acme.ChallengeDNS01
	if p.str(t, pre, "challenge", &z.Challenge) && z.Challenge != acme.ChallengeDNS01 && z.Challenge != acme.ChallengeHTTP01 {
		p.errorf(pre+".challenge", "%q is not one of dns-01, http-01", z.Challenge)
	}
	if p.str(t, pre, "nameserver", &z.Nameserver) && z.Nameserver != "" {
		p.listenAddr(pre+".nameserver", z.Nameserver)
	}
	a.Zones = append(a.Zones, z)
}
