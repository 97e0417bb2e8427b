package dns

import "testing"

func TestNormalize(t *testing.T) {
	for _, tc := range []struct {
		typ, in, want string
		ok            bool
	}{
		{"A", "192.0.2.1", "192.0.2.1", true},
		{"a", "192.0.2.1", "192.0.2.1", true},
		{"A", "::ffff:192.0.2.1", "", false},
		{"A", "2001:db8::1", "", false},
		{"AAAA", "2001:DB8:0::1", "2001:db8::1", true},
		{"AAAA", "::ffff:192.0.2.1", "", false},
		{"AAAA", "fe80::1%eth0", "", false},
		{"AAAA", "192.0.2.1", "", false},
		{"CNAME", "Target.Example.org.", "target.example.org", true},
		{"CNAME", "", "", false},
		{"TXT", "token with spaces", "token with spaces", true},
		{"TXT", `quote"`, "", false},
		{"TXT", "tab\t", "", false},
		{"MX", "10 mail", "", false},
	} {
		got, err := Normalize(tc.typ, tc.in)
		if (err == nil) != tc.ok || got != tc.want {
			t.Errorf("Normalize(%s, %q) = %q, %v; want %q, ok=%v", tc.typ, tc.in, got, err, tc.want, tc.ok)
		}
	}
}

func TestLookupPicksTheLongestZone(t *testing.T) {
	zones := []Zone{{Name: "example.org", TTL: 1}, {Name: "svc.mcp.example.org", TTL: 2}, {Name: "other.org", TTL: 3}}
	for _, tc := range []struct {
		name string
		ttl  int
		ok   bool
	}{
		{"web.svc.mcp.example.org", 2, true},
		{"_acme-challenge.web.svc.mcp.Example.org.", 2, true},
		{"svc.mcp.example.org", 2, true},
		{"www.example.org", 1, true},
		{"mcp.example.org", 1, true},
		{"notexample.org", 0, false},
		{"example.net", 0, false},
	} {
		z, ok := Lookup(zones, tc.name)
		if ok != tc.ok || z.TTL != tc.ttl {
			t.Errorf("Lookup(%s) = %+v, %v; want ttl %d, %v", tc.name, z, ok, tc.ttl, tc.ok)
		}
	}
}

func TestEqual(t *testing.T) {
	if !Equal("AAAA", []string{"2001:DB8::1", "::1"}, []string{"::1", "2001:db8:0::1", "::1"}) {
		t.Error("same sets in other spellings differ")
	}
	if Equal("A", []string{"192.0.2.1"}, []string{"192.0.2.1", "192.0.2.2"}) {
		t.Error("different sets are equal")
	}
	if !Equal("A", nil, []string{}) {
		t.Error("empty sets differ")
	}
}
