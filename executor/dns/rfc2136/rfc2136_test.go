package rfc2136_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"metacircular.net/mcp/executor/dns"
	"metacircular.net/mcp/executor/dns/dnstest"
	"metacircular.net/mcp/executor/dns/rfc2136"
	"metacircular.net/mcp/internal/testenv"
)

// The contract suite against a real bind9, one private named per subtest.
func TestContractAgainstBind9(t *testing.T) {
	dnstest.Run(t, func(t *testing.T) (dns.Provider, string) {
		addr, zone, key, file := testenv.Bind9(t)
		p, err := rfc2136.New(rfc2136.Config{Server: addr, KeyName: key, SecretFile: file})
		if err != nil {
			t.Fatal(err)
		}
		return p, zone
	})
}

func TestWrongKeyIsRefusedNamingServerKeyAndRcode(t *testing.T) {
	d := testenv.StartBind9(t)
	zone := d.Zones[0]
	for _, tc := range []struct {
		name, key, file string
		want            []string
	}{
		{"wrong secret", d.KeyName, d.WrongKeyFile(t), []string{"NOTAUTH", "BADSIG"}},
		{"unknown key name", "no-such-key", d.KeyFile, []string{"NOTAUTH", "BADKEY"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := rfc2136.New(rfc2136.Config{Server: d.Addr, KeyName: tc.key, SecretFile: tc.file})
			if err != nil {
				t.Fatal(err)
			}
			err = p.Set(context.Background(), zone, "x."+zone, "A", []string{"192.0.2.1"}, 60)
			if !errors.Is(err, dns.ErrRefused) {
				t.Fatalf("Set with a wrong key: %v, want ErrRefused", err)
			}
			for _, w := range append(tc.want, d.Addr, tc.key) {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
			t.Log(err)
			secret, _ := os.ReadFile(tc.file)
			if strings.Contains(err.Error(), strings.TrimSpace(string(secret))) {
				t.Errorf("error %q contains the secret", err)
			}
		})
	}
	// Nothing was written.
	good, err := rfc2136.New(rfc2136.Config{Server: d.Addr, KeyName: d.KeyName, SecretFile: d.KeyFile})
	if err != nil {
		t.Fatal(err)
	}
	recs, err := good.List(context.Background(), zone, "x."+zone)
	if err != nil || len(recs) != 0 {
		t.Fatalf("after refused updates: %v, %v", recs, err)
	}
}

func TestZoneTheKeyMayNotUpdateIsRefused(t *testing.T) {
	d := testenv.StartBind9(t)
	p, err := rfc2136.New(rfc2136.Config{Server: d.Addr, KeyName: d.KeyName, SecretFile: d.KeyFile})
	if err != nil {
		t.Fatal(err)
	}
	err = p.Set(context.Background(), "other.internal", "x.other.internal", "A", []string{"192.0.2.1"}, 60)
	if !errors.Is(err, dns.ErrRefused) {
		t.Fatalf("Set in a zone the server does not serve: %v, want ErrRefused", err)
	}
	t.Log(err)
}

func TestServerDownIsUnreachableWithinTheTimeout(t *testing.T) {
	d := testenv.StartBind9(t)
	zone := d.Zones[0]
	d.Stop()
	p, err := rfc2136.New(rfc2136.Config{Server: d.Addr, KeyName: d.KeyName, SecretFile: d.KeyFile, Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	err = p.Set(context.Background(), zone, "x."+zone, "A", []string{"192.0.2.1"}, 60)
	if !errors.Is(err, dns.ErrUnreachable) || !strings.Contains(err.Error(), d.Addr) {
		t.Fatalf("Set against a stopped server: %v, want ErrUnreachable naming %s", err, d.Addr)
	}
	if _, err := p.List(context.Background(), zone, "x."+zone); !errors.Is(err, dns.ErrUnreachable) {
		t.Fatalf("List against a stopped server: %v, want ErrUnreachable", err)
	}
	if el := time.Since(start); el > 5*time.Second {
		t.Fatalf("took %v", el)
	}
}

// A server that accepts the connection and never answers: the timeout,
// not the caller, ends the wait.
func TestSilentServerTimesOut(t *testing.T) {
	dir := t.TempDir()
	secret := filepath.Join(dir, "s")
	if err := os.WriteFile(secret, []byte("c2VjcmV0c2VjcmV0c2VjcmV0"), 0o600); err != nil {
		t.Fatal(err)
	}
	ln := listenSilently(t)
	p, err := rfc2136.New(rfc2136.Config{Server: ln, KeyName: "k", SecretFile: secret, Timeout: 300 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	_, err = p.List(context.Background(), "z.internal", "x.z.internal")
	if !errors.Is(err, dns.ErrUnreachable) {
		t.Fatalf("List against a silent server: %v, want ErrUnreachable", err)
	}
	if el := time.Since(start); el > 3*time.Second {
		t.Fatalf("took %v, want about the 300ms timeout", el)
	}
}

func TestNewRejectsBadConfig(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good")
	bindStyle := filepath.Join(dir, "bind.key")
	bad := filepath.Join(dir, "bad")
	empty := filepath.Join(dir, "empty")
	for p, content := range map[string]string{
		good:      "c2VjcmV0c2VjcmV0c2VjcmV0\n",
		bindStyle: "key \"mcp\" {\n\talgorithm hmac-sha256;\n\tsecret \"c2VjcmV0c2VjcmV0c2VjcmV0\";\n};\n",
		bad:       "not base64 !!!",
		empty:     "\n",
	} {
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct {
		name    string
		cfg     rfc2136.Config
		wantErr string
	}{
		{"ok", rfc2136.Config{Server: "127.0.0.1", KeyName: "k", SecretFile: good}, ""},
		{"bind key statement", rfc2136.Config{Server: "ns1.example.org:5353", KeyName: "k", SecretFile: bindStyle, Algorithm: "HMAC-SHA512"}, ""},
		{"no server", rfc2136.Config{KeyName: "k", SecretFile: good}, "server is required"},
		{"no key", rfc2136.Config{Server: "127.0.0.1", SecretFile: good}, "key name is required"},
		{"bad algorithm", rfc2136.Config{Server: "127.0.0.1", KeyName: "k", SecretFile: good, Algorithm: "hmac-md5"}, "not one of"},
		{"missing file", rfc2136.Config{Server: "127.0.0.1", KeyName: "k", SecretFile: filepath.Join(dir, "nope")}, "no such file"},
		{"not base64", rfc2136.Config{Server: "127.0.0.1", KeyName: "k", SecretFile: bad}, "does not hold a base64"},
		{"empty", rfc2136.Config{Server: "127.0.0.1", KeyName: "k", SecretFile: empty}, "is empty"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := rfc2136.New(tc.cfg)
			switch {
			case tc.wantErr == "" && err != nil:
				t.Fatalf("New: %v", err)
			case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
				t.Fatalf("New: %v, want an error containing %q", err, tc.wantErr)
			}
			if err != nil && strings.Contains(err.Error(), "!!!") {
				t.Fatalf("error %q quotes the secret file", err)
			}
		})
	}
}
