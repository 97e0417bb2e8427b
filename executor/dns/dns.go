// Package dns is mcp's one small interface to authoritative DNS servers.
// Drivers live in subpackages: rfc2136 (dynamic updates signed with TSIG,
// for BIND, Knot, PowerDNS) and mcns (the platform's REST API). The
// executor's record steps and the ACME DNS-01 challenge both use it.
package dns

import (
	"context"
	"errors"
	"strings"
)

// Record is one resource record. Name is fully qualified without the
// trailing dot ("mcq.svc.mcp.example.org"); Type is upper case ("A",
// "AAAA", "CNAME", "TXT").
type Record struct {
	Name  string `json:"name"`
	Type  string `json:"type"`
	Value string `json:"value"`
	TTL   int    `json:"ttl"`
}

// Provider changes the records of the zones one server is authoritative
// for. Every method is idempotent.
type Provider interface {
	// List returns the records named name (every type) in zone.
	List(ctx context.Context, zone, name string) ([]Record, error)
	// Set makes the records of (name, typ) in zone exactly values, each
	// with ttl: missing values are added, others of that name and type are
	// removed.
	Set(ctx context.Context, zone, name, typ string, values []string, ttl int) error
	// Delete removes exactly the given records; records that do not exist
	// are not an error, and other records of the name are untouched.
	Delete(ctx context.Context, zone string, records ...Record) error
}

// ErrRefused is wrapped by drivers when the server refused a change
// (bad key, not authoritative, policy), as opposed to being unreachable.
var ErrRefused = errors.New("dns server refused the change")

// ErrUnreachable is wrapped by drivers when the server could not be reached.
var ErrUnreachable = errors.New("dns server unreachable")

// Fqdn normalises a name: lower case, no trailing dot.
func Fqdn(name string) string {
	return strings.TrimSuffix(strings.ToLower(name), ".")
}

// InZone reports whether name is zone or below it.
func InZone(name, zone string) bool {
	name, zone = Fqdn(name), Fqdn(zone)
	return name == zone || strings.HasSuffix(name, "."+zone)
}
