// Package dnstest is the behaviour every dns.Provider must have, as one
// test suite the drivers run against their real servers (rfc2136 against
// bind9, mcns against its stand-in): what the executor's record steps and
// ACME DNS-01 rely on is checked once, in one place, for every driver.
package dnstest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"metacircular.net/mcp/executor/dns"
)

// Run runs the suite. newProvider returns a provider and a zone it may
// change freely; it is called once per subtest, and every subtest uses
// names of its own, so a zone may be shared.
func Run(t *testing.T, newProvider func(t *testing.T) (dns.Provider, string)) {
	for _, tc := range []struct {
		name string
		fn   func(t *testing.T, p dns.Provider, zone, name string)
	}{
		{"ListAbsentNameIsEmpty", listAbsent},
		{"SetThenListReturnsEveryValue", setThenList},
		{"SetReplacesTheRRset", setReplaces},
		{"SetIsIdempotent", setIdempotent},
		{"SetLeavesOtherTypesAndNames", setLeavesOthers},
		{"SetChangesTTL", setChangesTTL},
		{"SetEmptyRemovesTheRRset", setEmpty},
		{"DeleteRemovesExactlyTheGivenRecords", deleteExact},
		{"DeleteAbsentIsNotAnError", deleteAbsent},
		{"TXTForDNS01", txt},
		{"CNAME", cname},
		{"NamesAreCaseAndDotInsensitive", normalisedNames},
		{"NameOutsideZoneIsRejected", outsideZone},
		{"BadValueIsRejected", badValue},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, zone := newProvider(t)
			tc.fn(t, p, dns.Fqdn(zone), uniqueName(zone))
		})
	}
}

// uniqueName is a fresh name in zone, so subtests never see each other.
func uniqueName(zone string) string {
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	return "t" + hex.EncodeToString(b) + "." + dns.Fqdn(zone)
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	t.Cleanup(cancel)
	return c
}

// values lists name's records of typ, sorted, as "value/ttl".
func values(t *testing.T, p dns.Provider, zone, name, typ string) []string {
	t.Helper()
	recs, err := p.List(ctx(t), zone, name)
	if err != nil {
		t.Fatalf("List(%s): %v", name, err)
	}
	var out []string
	for _, r := range recs {
		if r.Name != dns.Fqdn(name) {
			t.Errorf("List(%s) returned a record named %q (want the name without trailing dot, lower case)", name, r.Name)
		}
		if r.Type == typ {
			out = append(out, r.Value+"/"+strconv.Itoa(r.TTL))
		}
	}
	slices.Sort(out)
	return out
}

func set(t *testing.T, p dns.Provider, zone, name, typ string, ttl int, vs ...string) {
	t.Helper()
	if err := p.Set(ctx(t), zone, name, typ, vs, ttl); err != nil {
		t.Fatalf("Set(%s %s %v): %v", name, typ, vs, err)
	}
}

func want(t *testing.T, got []string, w ...string) {
	t.Helper()
	slices.Sort(w)
	if !slices.Equal(got, w) { // nil and empty compare equal
		t.Fatalf("records = %v, want %v", got, w)
	}
}

func listAbsent(t *testing.T, p dns.Provider, zone, name string) {
	recs, err := p.List(ctx(t), zone, name)
	if err != nil {
		t.Fatalf("List of a name that does not exist: %v", err)
	}
	if len(recs) != 0 {
		t.Fatalf("List of a name that does not exist = %v", recs)
	}
}

func setThenList(t *testing.T, p dns.Provider, zone, name string) {
	set(t, p, zone, name, "A", 300, "192.0.2.10", "192.0.2.11")
	want(t, values(t, p, zone, name, "A"), "192.0.2.10/300", "192.0.2.11/300")
	set(t, p, zone, name, "AAAA", 300, "2001:db8::1")
	want(t, values(t, p, zone, name, "AAAA"), "2001:db8::1/300")
}

func setReplaces(t *testing.T, p dns.Provider, zone, name string) {
	set(t, p, zone, name, "A", 300, "192.0.2.10", "192.0.2.11")
	set(t, p, zone, name, "A", 300, "192.0.2.11", "192.0.2.12")
	want(t, values(t, p, zone, name, "A"), "192.0.2.11/300", "192.0.2.12/300")
}

func setIdempotent(t *testing.T, p dns.Provider, zone, name string) {
	for range 2 {
		set(t, p, zone, name, "A", 300, "192.0.2.10")
	}
	want(t, values(t, p, zone, name, "A"), "192.0.2.10/300")
}

func setLeavesOthers(t *testing.T, p dns.Provider, zone, name string) {
	other := uniqueName(zone)
	set(t, p, zone, other, "A", 300, "192.0.2.99")
	set(t, p, zone, name, "AAAA", 300, "2001:db8::1")
	set(t, p, zone, name, "A", 300, "192.0.2.10")
	set(t, p, zone, name, "A", 300, "192.0.2.20")
	want(t, values(t, p, zone, name, "AAAA"), "2001:db8::1/300")
	want(t, values(t, p, zone, other, "A"), "192.0.2.99/300")
}

func setChangesTTL(t *testing.T, p dns.Provider, zone, name string) {
	set(t, p, zone, name, "A", 300, "192.0.2.10")
	set(t, p, zone, name, "A", 60, "192.0.2.10")
	want(t, values(t, p, zone, name, "A"), "192.0.2.10/60")
}

func setEmpty(t *testing.T, p dns.Provider, zone, name string) {
	set(t, p, zone, name, "A", 300, "192.0.2.10")
	set(t, p, zone, name, "AAAA", 300, "2001:db8::1")
	set(t, p, zone, name, "A", 300)
	want(t, values(t, p, zone, name, "A"))
	want(t, values(t, p, zone, name, "AAAA"), "2001:db8::1/300")
}

func deleteExact(t *testing.T, p dns.Provider, zone, name string) {
	other := uniqueName(zone)
	set(t, p, zone, name, "A", 300, "192.0.2.10", "192.0.2.11")
	set(t, p, zone, name, "AAAA", 300, "2001:db8::1")
	set(t, p, zone, other, "A", 300, "192.0.2.10")
	err := p.Delete(ctx(t), zone, dns.Record{Name: name, Type: "A", Value: "192.0.2.10", TTL: 300})
	if err != nil {
		t.Fatalf("Delete: %v", err)
	}
	want(t, values(t, p, zone, name, "A"), "192.0.2.11/300")
	want(t, values(t, p, zone, name, "AAAA"), "2001:db8::1/300")
	want(t, values(t, p, zone, other, "A"), "192.0.2.10/300")
	err = p.Delete(ctx(t), zone,
		dns.Record{Name: name, Type: "A", Value: "192.0.2.11", TTL: 300},
		dns.Record{Name: name, Type: "AAAA", Value: "2001:db8::1", TTL: 300})
	if err != nil {
		t.Fatalf("Delete of two records: %v", err)
	}
	want(t, values(t, p, zone, name, "A"))
	want(t, values(t, p, zone, name, "AAAA"))
}

func deleteAbsent(t *testing.T, p dns.Provider, zone, name string) {
	if err := p.Delete(ctx(t), zone, dns.Record{Name: name, Type: "A", Value: "192.0.2.10"}); err != nil {
		t.Fatalf("Delete of a record that does not exist: %v", err)
	}
	set(t, p, zone, name, "A", 300, "192.0.2.11")
	if err := p.Delete(ctx(t), zone, dns.Record{Name: name, Type: "A", Value: "192.0.2.10"}); err != nil {
		t.Fatalf("Delete of a value the name does not hold: %v", err)
	}
	want(t, values(t, p, zone, name, "A"), "192.0.2.11/300")
	if err := p.Delete(ctx(t), zone); err != nil {
		t.Fatalf("Delete of nothing: %v", err)
	}
}

func txt(t *testing.T, p dns.Provider, zone, name string) {
	// An ACME DNS-01 name: _acme-challenge.<host>, a base64url digest;
	// two at once when a renewal overlaps an issuance.
	name = "_acme-challenge." + name
	v1, v2 := "LoqXcYV8q5ONbJQxbmR7SCTNo3tiAXDfowyjxAjEuX0", "with spaces and-dashes_underscores"
	set(t, p, zone, name, "TXT", 60, v1, v2)
	want(t, values(t, p, zone, name, "TXT"), v1+"/60", v2+"/60")
	if err := p.Delete(ctx(t), zone, dns.Record{Name: name, Type: "TXT", Value: v1}); err != nil {
		t.Fatalf("Delete TXT: %v", err)
	}
	want(t, values(t, p, zone, name, "TXT"), v2+"/60")
}

func cname(t *testing.T, p dns.Provider, zone, name string) {
	target := uniqueName(zone)
	set(t, p, zone, name, "CNAME", 300, target+".")
	want(t, values(t, p, zone, name, "CNAME"), target+"/300")
}

func normalisedNames(t *testing.T, p dns.Provider, zone, name string) {
	set(t, p, strings.ToUpper(zone)+".", strings.ToUpper(name)+".", "a", 300, "192.0.2.10")
	want(t, values(t, p, zone, name, "A"), "192.0.2.10/300")
	want(t, values(t, p, zone+".", strings.ToUpper(name), "A"), "192.0.2.10/300")
}

func outsideZone(t *testing.T, p dns.Provider, zone, name string) {
	outside := "t.not-" + zone
	if err := p.Set(ctx(t), zone, outside, "A", []string{"192.0.2.10"}, 300); err == nil {
		t.Fatalf("Set of %s in zone %s succeeded", outside, zone)
	}
	if _, err := p.List(ctx(t), zone, outside); err == nil {
		t.Fatalf("List of %s in zone %s succeeded", outside, zone)
	}
}

func badValue(t *testing.T, p dns.Provider, zone, name string) {
	for _, tc := range []struct{ typ, v string }{
		{"A", "2001:db8::1"},
		{"A", "not-an-address"},
		{"AAAA", "192.0.2.1"},
		{"MX", "10 mail." + zone},
	} {
		if err := p.Set(ctx(t), zone, name, tc.typ, []string{tc.v}, 300); err == nil {
			t.Errorf("Set %s %q succeeded", tc.typ, tc.v)
		}
	}
	want(t, values(t, p, zone, name, "A"))
}
