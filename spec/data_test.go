package spec

import (
	"strings"
	"testing"
)

func TestDataMayStartEmpty(t *testing.T) {
	base := "name = \"svc\"\nnode = \"rift\"\nversion = \"v1\"\n[[components]]\nname = \"a\"\n"
	plain := loadOne(t, testPlatform, "svc", base)
	if plain.MayStartEmpty {
		t.Fatal("may_start_empty is on without [data]")
	}
	on := loadOne(t, testPlatform, "svc", strings.Replace(base, "[[components]]", "[data]\nmay_start_empty = true\n\n[[components]]", 1))
	if !on.MayStartEmpty {
		t.Fatal("[data] may_start_empty = true did not resolve")
	}
	off := loadOne(t, testPlatform, "svc", strings.Replace(base, "[[components]]", "[data]\nmay_start_empty = false\n\n[[components]]", 1))
	// Spelling the default out changes nothing, and a definition without
	// [data] keeps the hash it had before the key existed.
	if Hash(off) != Hash(plain) {
		t.Fatal("may_start_empty = false changed the spec hash")
	}
	if Hash(on) == Hash(plain) {
		t.Fatal("may_start_empty = true did not change the spec hash")
	}
	if got := DataDir("svc"); got != "/srv/svc" {
		t.Fatalf("DataDir = %q", got)
	}
}

func TestDataBroken(t *testing.T) {
	base := "name = \"svc\"\nnode = \"rift\"\nversion = \"v1\"\n%s\n[[components]]\nname = \"a\"\n"
	tests := []struct{ data, want string }{
		{"[data]\nmay_start_empty = \"yes\"", `services/svc.toml: data.may_start_empty: must be true or false, not a string`},
		{"[data]\nmay_start_emtpy = true", `services/svc.toml: data.may_start_emtpy: unknown key (did you mean may_start_empty?); allowed here: may_start_empty`}, //nolint:misspell // the typo is the case
		{"data = true", `services/svc.toml: data: must be a table, not a boolean`},
	}
	for _, tt := range tests {
		repo := mustLoad(t, repoFS(testPlatform, map[string]string{"svc": strings.Replace(base, "%s", tt.data, 1)}))
		if len(repo.Services) != 0 || !strings.Contains(repo.Diagnostics.Error(), tt.want) {
			t.Errorf("%q: services %d, diagnostics:\n%v\nwant %s", tt.data, len(repo.Services), repo.Diagnostics, tt.want)
		}
	}
}
