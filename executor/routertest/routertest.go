// Package routertest is the one behaviour suite every executor.Router
// driver passes: the real haproxy and the mc-proxy adapter against its
// stand-in run the same cases.
package routertest

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"math/big"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"metacircular.net/mcp/executor"
	"metacircular.net/mcp/spec"
)

// Env is one router under test.
type Env struct {
	Router executor.Router
	// Listeners are two or more listener addresses the router accepts,
	// as Route.Listener spells them.
	Listeners []string
	// Undeclared is a listener the router must refuse ("" to skip).
	Undeclared string
	// CertDir is where the suite writes certificate chains.
	CertDir string
}

// Run runs the suite; newEnv gives each case a fresh, empty router.
func Run(t *testing.T, newEnv func(t *testing.T) Env) {
	cases := []struct {
		name string
		fn   func(t *testing.T, e Env)
	}{
		{"upsert is idempotent and reads back as written", upsertIdempotent},
		{"upsert replaces the backend", upsertReplaces},
		{"l7 with its chain, then switched to l4", l7ThenL4},
		{"remove deletes one route and nothing else", removeOnlyOne},
		{"remove of an absent route is not an error", removeAbsent},
		{"same hostname on two listeners are two routes", twoListeners},
		{"unknown mode is refused and nothing is written", unknownMode},
		{"undeclared listener is refused", undeclaredListener},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e := newEnv(t)
			if len(e.Listeners) < 2 {
				t.Fatal("routertest: the env needs two listeners")
			}
			c.fn(t, e)
		})
	}
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	t.Cleanup(cancel)
	return c
}

func l4(listener, host, backend string) executor.Route {
	return executor.Route{Listener: listener, Hostname: host, Backend: backend, Mode: spec.ModeL4}
}

func l7(t *testing.T, e Env, listener, host, backend string) executor.Route {
	c := WriteChain(t, e.CertDir, host)
	return executor.Route{Listener: listener, Hostname: host, Backend: backend, Mode: spec.ModeL7, CertFile: c.CertFile, KeyFile: c.KeyFile}
}

func list(t *testing.T, e Env) []executor.Route {
	t.Helper()
	rs, err := e.Router.List(ctx(t))
	if err != nil {
		t.Fatalf("List: %v", err)
	}
	slices.SortFunc(rs, func(a, b executor.Route) int { return strings.Compare(a.ID(), b.ID()) })
	return rs
}

func upsert(t *testing.T, e Env, r executor.Route) {
	t.Helper()
	if err := e.Router.Upsert(ctx(t), r); err != nil {
		t.Fatalf("Upsert %s: %v", r, err)
	}
}

func want(t *testing.T, e Env, rs ...executor.Route) {
	t.Helper()
	slices.SortFunc(rs, func(a, b executor.Route) int { return strings.Compare(a.ID(), b.ID()) })
	got := list(t, e)
	if !slices.Equal(got, rs) {
		t.Fatalf("List:\n got %v\nwant %v", got, rs)
	}
}

func upsertIdempotent(t *testing.T, e Env) {
	want(t, e)
	r := l4(e.Listeners[0], "a.example.test", "127.0.0.1:20001")
	upsert(t, e, r)
	upsert(t, e, r)
	want(t, e, r)
}

func upsertReplaces(t *testing.T, e Env) {
	r := l4(e.Listeners[0], "a.example.test", "127.0.0.1:20001")
	upsert(t, e, r)
	r.Backend = "127.0.0.1:20002"
	upsert(t, e, r)
	want(t, e, r)
}

func l7ThenL4(t *testing.T, e Env) {
	r := l7(t, e, e.Listeners[0], "web.example.test", "127.0.0.1:20003")
	upsert(t, e, r)
	want(t, e, r)
	r2 := l4(e.Listeners[0], "web.example.test", "127.0.0.1:20004")
	upsert(t, e, r2)
	want(t, e, r2)
	upsert(t, e, r)
	want(t, e, r)
}

func removeOnlyOne(t *testing.T, e Env) {
	a := l4(e.Listeners[0], "a.example.test", "127.0.0.1:20001")
	b := l7(t, e, e.Listeners[0], "b.example.test", "127.0.0.1:20002")
	c := l7(t, e, e.Listeners[1], "c.example.test", "127.0.0.1:20003")
	for _, r := range []executor.Route{a, b, c} {
		upsert(t, e, r)
	}
	if err := e.Router.Remove(ctx(t), b.Listener, b.Hostname); err != nil {
		t.Fatalf("Remove: %v", err)
	}
	want(t, e, a, c)
}

func removeAbsent(t *testing.T, e Env) {
	if err := e.Router.Remove(ctx(t), e.Listeners[0], "nothing.example.test"); err != nil {
		t.Fatalf("Remove of an absent route: %v", err)
	}
	want(t, e)
}

func twoListeners(t *testing.T, e Env) {
	a := l7(t, e, e.Listeners[0], "web.example.test", "127.0.0.1:20001")
	b := l4(e.Listeners[1], "web.example.test", "127.0.0.1:20002")
	upsert(t, e, a)
	upsert(t, e, b)
	want(t, e, a, b)
	if err := e.Router.Remove(ctx(t), a.Listener, a.Hostname); err != nil {
		t.Fatal(err)
	}
	want(t, e, b)
}

func unknownMode(t *testing.T, e Env) {
	r := l4(e.Listeners[0], "a.example.test", "127.0.0.1:20001")
	r.Mode = "l5"
	if err := e.Router.Upsert(ctx(t), r); !errors.Is(err, executor.ErrInvalidRoute) {
		t.Fatalf("Upsert with mode l5: %v, want ErrInvalidRoute", err)
	}
	want(t, e)
}

func undeclaredListener(t *testing.T, e Env) {
	if e.Undeclared == "" {
		t.Skip("the router declares no listeners")
	}
	r := l4(e.Undeclared, "a.example.test", "127.0.0.1:20001")
	if err := e.Router.Upsert(ctx(t), r); !errors.Is(err, executor.ErrListener) {
		t.Fatalf("Upsert on an undeclared listener: %v, want ErrListener", err)
	}
	want(t, e)
}

// Chain is a certificate chain written for a hostname.
type Chain struct {
	// CertFile holds the leaf then the CA (PEM); KeyFile the leaf's key.
	CertFile, KeyFile string
	// Leaf is the leaf's DER; Fingerprint its SHA-256.
	Leaf        []byte
	Fingerprint [32]byte
	// Roots trusts the CA.
	Roots *x509.CertPool
}

// WriteChain makes a CA and a leaf for hostname and writes them as
// <dir>/<hostname>.pem (leaf and CA) and <dir>/<hostname>.key, the layout
// the proxy's certificate directory uses.
func WriteChain(t testing.TB, dir, hostname string) Chain {
	t.Helper()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	caTmpl := &x509.Certificate{
		SerialNumber: serial(t), Subject: pkix.Name{CommonName: "mcp test CA " + hostname},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	leafTmpl := &x509.Certificate{
		SerialNumber: serial(t), Subject: pkix.Name{CommonName: hostname}, DNSNames: []string{hostname},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	leafDER, err := x509.CreateCertificate(rand.Reader, leafTmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	c := Chain{
		CertFile: filepath.Join(dir, hostname+".pem"), KeyFile: filepath.Join(dir, hostname+".key"),
		Leaf: leafDER, Fingerprint: sha256.Sum256(leafDER), Roots: x509.NewCertPool(),
	}
	c.Roots.AddCert(ca)
	chain := append(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: leafDER}),
		pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER})...)
	if err := os.WriteFile(c.CertFile, chain, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(c.KeyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		t.Fatal(err)
	}
	return c
}

func serial(t testing.TB) *big.Int {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 62))
	if err != nil {
		t.Fatal(err)
	}
	return n
}
