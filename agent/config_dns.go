package agent

import (
	"fmt"
	"net"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"metacircular.net/mcp/executor/dns"
	"metacircular.net/mcp/executor/dns/mcns"
	"metacircular.net/mcp/executor/dns/rfc2136"
)

// DNS drivers a [[dns]] entry can name.
const (
	DNSDriverRFC2136 = "rfc2136" // any server taking RFC 2136 updates signed with TSIG
	DNSDriverMCNS    = "mcns"    // the platform's MCNS, through its REST API
)

// Defaults and limits of [[dns]] entries.
const (
	DefaultDNSTTL = 300
	MinDNSTTL     = 1
	MaxDNSTTL     = 86400
	MinDNSTimeout = 100 * time.Millisecond
	MaxDNSTimeout = 5 * time.Minute
)

// DNSZone is one [[dns]] entry: a zone mcp manages records in and the
// server that takes its changes. Record steps write
// <service>.svc.mcp.<domain> into the zone that holds it (the longest
// match), and ACME DNS-01 writes its TXT records through the same entry.
type DNSZone struct {
	// Zone is the zone's apex, without the trailing dot.
	Zone string
	// Driver is DNSDriverRFC2136 or DNSDriverMCNS.
	Driver string
	// TTL of the records mcp writes (default DefaultDNSTTL).
	TTL int
	// Timeout bounds one exchange with the server (the driver's default
	// when zero: 5s for rfc2136, 10s for mcns).
	Timeout Duration

	// rfc2136: Server is host or host:port (port 53 by default);
	// TSIGSecretFile holds the base64 secret, alone or as the key
	// statement tsig-keygen prints. It is read at use and never logged.
	Server         string
	TSIGKeyName    string
	TSIGAlgorithm  string
	TSIGSecretFile string

	// mcns: URL is the API's base; TokenFile holds the bearer token (read
	// at use, never logged); CAFile, when set, verifies the server.
	URL       string
	TokenFile string
	CAFile    string
}

var dnsKeys = map[string][]string{
	DNSDriverRFC2136: {"server", "tsig_key_name", "tsig_algorithm", "tsig_secret_file"},
	DNSDriverMCNS:    {"url", "token_file", "ca_file"},
}

// dns parses the [[dns]] array of tables.
func (p *parser) dns(raw map[string]any) []DNSZone {
	tables := p.tableArray("dns", raw["dns"])
	var zones []DNSZone
	seen := map[string]int{}
	for i, t := range tables {
		pre := fmt.Sprintf("dns[%d]", i)
		p.known(t, pre, append([]string{"zone", "driver", "ttl", "timeout"}, slices.Concat(dnsKeys[DNSDriverRFC2136], dnsKeys[DNSDriverMCNS])...)...)
		z := DNSZone{TTL: DefaultDNSTTL}
		if !p.str(t, pre, "zone", &z.Zone) {
			if _, ok := t["zone"]; !ok {
				p.errorf(pre+".zone", "is required (the zone's apex, e.g. \"svc.mcp.example.org\")")
			}
		} else if problem := checkZoneName(z.Zone); problem != "" {
			p.errorf(pre+".zone", "%s", problem)
		} else {
			z.Zone = dns.Fqdn(z.Zone)
			if j, dup := seen[z.Zone]; dup {
				p.errorf(pre+".zone", "%q is already configured in dns[%d]", z.Zone, j)
			}
			seen[z.Zone] = i
		}
		var ttl int64
		if p.integer(t, pre, "ttl", &ttl) {
			if ttl < MinDNSTTL || ttl > MaxDNSTTL {
				p.errorf(pre+".ttl", "%d is outside %d-%d seconds", ttl, MinDNSTTL, MaxDNSTTL)
			} else {
				z.TTL = int(ttl)
			}
		}
		p.duration(t, pre, "timeout", &z.Timeout, MinDNSTimeout, MaxDNSTimeout)
		p.str(t, pre, "server", &z.Server)
		p.str(t, pre, "tsig_key_name", &z.TSIGKeyName)
		p.str(t, pre, "tsig_algorithm", &z.TSIGAlgorithm)
		p.str(t, pre, "tsig_secret_file", &z.TSIGSecretFile)
		p.str(t, pre, "url", &z.URL)
		p.str(t, pre, "token_file", &z.TokenFile)
		p.str(t, pre, "ca_file", &z.CAFile)
		z.TSIGSecretFile = p.absPath(pre+".tsig_secret_file", z.TSIGSecretFile)
		z.TokenFile = p.absPath(pre+".token_file", z.TokenFile)
		z.CAFile = p.absPath(pre+".ca_file", z.CAFile)

		_, hasDriver := t["driver"]
		switch {
		case !hasDriver:
			p.errorf(pre+".driver", "is required (%s or %s)", DNSDriverRFC2136, DNSDriverMCNS)
		case !p.str(t, pre, "driver", &z.Driver):
		case z.Driver != DNSDriverRFC2136 && z.Driver != DNSDriverMCNS:
			p.errorf(pre+".driver", "%q is not one of %s, %s", z.Driver, DNSDriverRFC2136, DNSDriverMCNS)
		default:
			p.dnsDriver(pre, t, &z)
		}
		zones = append(zones, z)
	}
	return zones
}

// dnsDriver checks the keys of z's driver, and that the other driver's
// keys are absent (a leftover there is a mistake worth naming).
func (p *parser) dnsDriver(pre string, t map[string]any, z *DNSZone) {
	for driver, keys := range dnsKeys {
		if driver == z.Driver {
			continue
		}
		for _, k := range keys {
			if _, ok := t[k]; ok {
				p.errorf(pre+"."+k, "is only used with driver = %q, and this entry's driver is %q", driver, z.Driver)
			}
		}
	}
	switch z.Driver {
	case DNSDriverRFC2136:
		if z.Server == "" {
			p.errorf(pre+".server", "is required with driver = \"rfc2136\" (host or host:port of the primary server)")
		} else if problem := checkDNSServer(z.Server); problem != "" {
			p.errorf(pre+".server", "%s", problem)
		}
		if z.TSIGKeyName == "" {
			p.errorf(pre+".tsig_key_name", "is required with driver = \"rfc2136\" (the key's name as the server knows it)")
		} else if problem := checkZoneName(z.TSIGKeyName); problem != "" {
			p.errorf(pre+".tsig_key_name", "%s", strings.Replace(problem, "zone", "key", 1))
		}
		if z.TSIGAlgorithm != "" && !slices.Contains(rfc2136.Algorithms, strings.ToLower(z.TSIGAlgorithm)) {
			p.errorf(pre+".tsig_algorithm", "%q is not one of %s", z.TSIGAlgorithm, strings.Join(rfc2136.Algorithms, ", "))
		}
		if z.TSIGSecretFile == "" {
			p.errorf(pre+".tsig_secret_file", "is required with driver = \"rfc2136\" (a file holding the base64 secret)")
		}
	case DNSDriverMCNS:
		if z.URL == "" {
			p.errorf(pre+".url", "is required with driver = \"mcns\" (the API's base URL)")
		} else if u, err := url.Parse(z.URL); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			p.errorf(pre+".url", "%q is not an http(s) URL", z.URL)
		} else if u.User != nil {
			p.errorf(pre+".url", "must not contain credentials; the token goes in token_file")
		}
		if z.TokenFile == "" {
			p.errorf(pre+".token_file", "is required with driver = \"mcns\" (a file holding the bearer token)")
		}
	}
}

func checkZoneName(s string) string {
	n := dns.Fqdn(s)
	if n == "" {
		return "must not be empty"
	}
	for _, l := range strings.Split(n, ".") {
		if l == "" || len(l) > 63 || strings.ContainsAny(l, " \t/:@\\\"") {
			return fmt.Sprintf("%q is not a zone name (dot-separated labels of 1-63 characters)", s)
		}
	}
	return ""
}

func checkDNSServer(s string) string {
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		host, port = strings.Trim(s, "[]"), ""
	}
	if host == "" || strings.ContainsAny(host, "/ \t") {
		return fmt.Sprintf("%q is not host or host:port", s)
	}
	if port != "" {
		if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
			return fmt.Sprintf("%q: port %q is outside 1-65535", s, port)
		}
	}
	return ""
}

// DNSZones builds the driver of every [[dns]] entry. Each driver reads its
// secret once here, so a missing or malformed file fails the start; the
// files are read again at every use (rotation needs no restart).
func (c *Config) DNSZones() ([]dns.Zone, error) {
	var out []dns.Zone
	for i, z := range c.DNS {
		var (
			p   dns.Provider
			err error
		)
		switch z.Driver {
		case DNSDriverRFC2136:
			p, err = rfc2136.New(rfc2136.Config{Server: z.Server, KeyName: z.TSIGKeyName, Algorithm: z.TSIGAlgorithm,
				SecretFile: z.TSIGSecretFile, Timeout: z.Timeout.Duration})
		case DNSDriverMCNS:
			p, err = mcns.New(mcns.Config{URL: z.URL, TokenFile: z.TokenFile, CAFile: z.CAFile, Timeout: z.Timeout.Duration})
		default:
			err = fmt.Errorf("unknown driver %q", z.Driver)
		}
		if err != nil {
			return nil, fmt.Errorf("%s: dns[%d] (zone %s): %w", c.File, i, z.Zone, err)
		}
		out = append(out, dns.Zone{Name: z.Zone, Provider: p, TTL: z.TTL})
	}
	return out, nil
}
