package certs_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"metacircular.net/mcp/executor/certs"
	"metacircular.net/mcp/executor/certs/localca"
)

func TestCheck(t *testing.T) {
	ca := localca.New(t.TempDir())
	good, err := ca.Issue(context.Background(), "a.example.org")
	if err != nil {
		t.Fatal(err)
	}
	other, err := ca.Issue(context.Background(), "b.example.org")
	if err != nil {
		t.Fatal(err)
	}
	foreign, err := localca.New(t.TempDir()).Issue(context.Background(), "a.example.org")
	if err != nil {
		t.Fatal(err)
	}
	leafOnly := good
	leafOnly.ChainPEM = good.ChainPEM[:strings.Index(string(good.ChainPEM), "-----END CERTIFICATE-----")+len("-----END CERTIFICATE-----\n")]
	wrongKey := good
	wrongKey.KeyPEM = other.KeyPEM
	wrongCA := good
	wrongCA.CAPEM = foreign.CAPEM
	now := time.Now()
	tests := []struct {
		name string
		b    certs.Bundle
		host string
		now  time.Time
		want string // substring of the error, "" for none
	}{
		{"good", good, "a.example.org", now, ""},
		{"other host", good, "b.example.org", now, "leaf"},
		{"expired", good, "a.example.org", now.Add(91 * 24 * time.Hour), "not at"},
		{"leaf only", leafOnly, "a.example.org", now, "chain has 1"},
		{"wrong key", wrongKey, "a.example.org", now, "does not belong"},
		{"wrong ca", wrongCA, "a.example.org", now, "does not verify"},
		{"empty", certs.Bundle{}, "a.example.org", now, "no certificate"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.b.Check(tt.host, tt.now)
			if tt.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want it to contain %q", err, tt.want)
			}
		})
	}
}

func TestWriteSet(t *testing.T) {
	dir := t.TempDir()
	a, b := filepath.Join(dir, "d", "x.pem"), filepath.Join(dir, "d", "x.key")
	if err := certs.WriteSet([]certs.File{
		{Path: a, Data: []byte("chain1"), Mode: 0o644, UID: -1, GID: -1},
		{Path: b, Data: []byte("key1"), Mode: 0o600, UID: -1, GID: -1},
	}); err != nil {
		t.Fatal(err)
	}
	if fi, _ := os.Stat(b); fi.Mode().Perm() != 0o600 {
		t.Errorf("key mode %o", fi.Mode().Perm())
	}
	// A set whose second file cannot be staged changes nothing.
	err := certs.WriteSet([]certs.File{
		{Path: a, Data: []byte("chain2"), Mode: 0o644, UID: -1, GID: -1},
		{Path: filepath.Join(a, "not-a-dir", "k"), Data: []byte("key2"), Mode: 0o600, UID: -1, GID: -1},
	})
	if err == nil {
		t.Fatal("no error")
	}
	if got, _ := os.ReadFile(a); string(got) != "chain1" {
		t.Errorf("first file now %q after a failed set", got)
	}
	ents, _ := os.ReadDir(filepath.Join(dir, "d"))
	if len(ents) != 2 {
		var names []string
		for _, e := range ents {
			names = append(names, e.Name())
		}
		t.Errorf("leftover files: %v", names)
	}
	if err := certs.WriteSet([]certs.File{{Path: a, Data: []byte("chain3"), Mode: 0o644, UID: -1, GID: -1}}); err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(a); string(got) != "chain3" {
		t.Errorf("got %q", got)
	}
}
