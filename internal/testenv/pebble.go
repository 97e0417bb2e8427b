package testenv

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/pem"
	"log"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/letsencrypt/pebble/v2/ca"
	"github.com/letsencrypt/pebble/v2/db"
	"github.com/letsencrypt/pebble/v2/va"
	"github.com/letsencrypt/pebble/v2/wfe"
)

// PebbleConfig says how the in-process ACME CA behaves.
type PebbleConfig struct {
	// Resolver is the DNS server (host:port, queried over TCP) the
	// validation authority asks for _acme-challenge TXT records and for the
	// addresses of HTTP-01 hostnames: the test's bind9.
	Resolver string
	// HTTPPort is the port the VA connects to for HTTP-01 (default 5002,
	// pebble's own default).
	HTTPPort int
	// ValidityDays is the leaf lifetime (default 90).
	ValidityDays int
}

// PebbleCA is a running pebble: the real ACME server of Let's Encrypt's
// test suite, run in-process from its own packages (ca, db, va, wfe), with
// External Account Binding required and every challenge really validated
// (never its always-valid mode).
type PebbleCA struct {
	// DirectoryURL is the ACME directory over HTTPS.
	DirectoryURL string
	// TLSCAFile holds the certificate of the HTTPS endpoint: what mcp's
	// acme.ca_file points at.
	TLSCAFile string
	// EABKeyID and EABHMACFile are a registered external account binding;
	// the file holds the key base64url encoded.
	EABKeyID    string
	EABHMACFile string
	// Roots are the roots pebble issues under, PEM.
	RootsPEM []byte

	srv *httptest.Server
	db  *db.MemoryStore
}

// Close stops the HTTPS endpoint: the CA is then "down" (connections are
// refused), which tests of outages use.
func (p *PebbleCA) Close() { p.srv.Close() }

// Pebble starts an in-process pebble for this test and stops it when the
// test ends. It sets pebble's environment knobs for the test (no nonce
// rejection, no random validation sleeps), so tests that use it cannot
// run in parallel.
func Pebble(t testing.TB, cfg PebbleConfig) *PebbleCA {
	t.Helper()
	if cfg.HTTPPort == 0 {
		cfg.HTTPPort = 5002
	}
	if cfg.ValidityDays == 0 {
		cfg.ValidityDays = 90
	}
	// Determinism and speed; validation itself stays real.
	t.Setenv("PEBBLE_WFE_NONCEREJECT", "0")
	t.Setenv("PEBBLE_VA_NOSLEEP", "1")
	t.Setenv("PEBBLE_VA_ALWAYS_VALID", "")
	t.Setenv("PEBBLE_AUTHZREUSE", "0")

	w := &tbWriter{t: t}
	// pebble's validation goroutines may log after the test ends, when
	// t.Log would panic: the writer goes quiet first.
	t.Cleanup(w.stop)
	logger := log.New(w, "pebble ", 0)
	store := db.NewMemoryStore()
	profiles := map[string]ca.Profile{"default": {Description: "mcp tests", ValidityPeriod: uint64(cfg.ValidityDays) * 86400}}
	authority := ca.New(logger, store, "", "ecdsa", 0, 1, profiles)
	validator := va.New(logger, cfg.HTTPPort, 0, false, cfg.Resolver, store)
	front := wfe.New(logger, store, validator, authority, []string{"pebble.letsencrypt.org"}, false, true, 0, 0)

	dir := t.TempDir()
	p := &PebbleCA{db: store, EABKeyID: "mcp-test-kid", EABHMACFile: filepath.Join(dir, "eab.hmac")}
	hmac := make([]byte, 32)
	rand.Read(hmac)
	enc := base64.RawURLEncoding.EncodeToString(hmac)
	if err := store.AddExternalAccountKeyByID(p.EABKeyID, enc); err != nil {
		t.Fatalf("testenv: pebble eab: %v", err)
	}
	if err := os.WriteFile(p.EABHMACFile, []byte(enc+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	p.srv = httptest.NewUnstartedServer(front.Handler())
	p.srv.Config.ErrorLog = log.New(w, "pebble http ", 0)
	p.srv.StartTLS()
	t.Cleanup(p.srv.Close)
	p.DirectoryURL = p.srv.URL + wfe.DirectoryPath
	p.TLSCAFile = filepath.Join(dir, "pebble-tls.pem")
	tlsPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: p.srv.Certificate().Raw})
	if err := os.WriteFile(p.TLSCAFile, tlsPEM, 0o644); err != nil {
		t.Fatal(err)
	}
	for i := range authority.GetNumberOfRootCerts() {
		p.RootsPEM = append(p.RootsPEM, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: authority.GetRootCert(i).DER})...)
	}
	return p
}

// AddEAB registers another external account key (base64url) under kid.
func (p *PebbleCA) AddEAB(t testing.TB, kid, hmacB64 string) {
	t.Helper()
	if err := p.db.AddExternalAccountKeyByID(kid, hmacB64); err != nil {
		t.Fatal(err)
	}
}

// tbWriter sends a library's log lines to the test log, so they show only
// for failed or verbose tests.
type tbWriter struct {
	t    testing.TB
	mu   sync.Mutex
	done bool
}

func (w *tbWriter) Write(b []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.done {
		w.t.Log(strings.TrimRight(string(b), "\n"))
	}
	return len(b), nil
}

func (w *tbWriter) stop() {
	w.mu.Lock()
	w.done = true
	w.mu.Unlock()
}
