// Package localca is mcp's embedded certificate authority: the default
// issuer for the demo and for nodes without a CA of their own. It keeps a
// root and an intermediate in a directory of the agent's state dir,
// created on first use, and issues 90-day leaf certificates per hostname
// signed by the intermediate, so every chain it hands out is leaf +
// intermediate with the root as trust anchor (as with a public CA).
//
// Files in the directory:
//
//	root.pem          the trust anchor; give it to clients (curl --cacert)
//	root.key          0600
//	intermediate.pem  signs the leaves
//	intermediate.key  0600
package localca

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"sync"
	"time"

	"metacircular.net/mcp/executor/certs"
)

// Lifetimes. The root outlives the intermediate so an intermediate can be
// rotated without touching every client's trust store.
const (
	LeafValidity         = 90 * 24 * time.Hour
	IntermediateValidity = 5 * 365 * 24 * time.Hour
	RootValidity         = 20 * 365 * 24 * time.Hour
	// backdate absorbs clock skew between the node and its clients.
	backdate = time.Hour
)

// File names inside the CA directory.
const (
	RootCertFile         = "root.pem"
	RootKeyFile          = "root.key"
	IntermediateCertFile = "intermediate.pem"
	IntermediateKeyFile  = "intermediate.key"
)

// CA is the embedded CA. It is safe for concurrent use.
type CA struct {
	dir  string
	name string
	now  func() time.Time

	mu        sync.Mutex
	loaded    bool
	rootPEM   []byte
	root      *x509.Certificate
	interPEM  []byte
	inter     *x509.Certificate
	interKey  crypto.Signer
	leafValid time.Duration
}

var _ certs.Issuer = (*CA)(nil)

// Option configures a CA.
type Option func(*CA)

// WithClock replaces time.Now (tests issue certificates "in the past").
func WithClock(now func() time.Time) Option { return func(c *CA) { c.now = now } }

// WithName sets the CA's common name prefix (default "mcp local CA"); the
// agent passes its node name so two nodes' CAs can be told apart.
func WithName(name string) Option { return func(c *CA) { c.name = name } }

// WithLeafValidity overrides the 90-day leaf lifetime.
func WithLeafValidity(d time.Duration) Option { return func(c *CA) { c.leafValid = d } }

// New returns the CA kept in dir. Nothing is read or created until the
// first Issue or Root, so an agent that never needs a certificate never
// makes a CA.
func New(dir string, opts ...Option) *CA {
	c := &CA{dir: dir, name: "mcp local CA", now: time.Now, leafValid: LeafValidity}
	for _, o := range opts {
		o(c)
	}
	return c
}

// Dir returns the directory the CA lives in.
func (c *CA) Dir() string { return c.dir }

// RootPEM returns the trust anchor, creating the CA if needed.
func (c *CA) RootPEM() ([]byte, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := c.load(); err != nil {
		return nil, err
	}
	return c.rootPEM, nil
}

// Issue returns a fresh key and certificate for hostname with the full
// chain (leaf, intermediate) and the root as CAPEM.
func (c *CA) Issue(ctx context.Context, hostname string) (certs.Bundle, error) {
	if err := ctx.Err(); err != nil {
		return certs.Bundle{}, err
	}
	hostname = normalise(hostname)
	if hostname == "" {
		return certs.Bundle{}, errors.New("local ca: empty hostname")
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := c.load(); err != nil {
		return certs.Bundle{}, err
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return certs.Bundle{}, fmt.Errorf("local ca: generate key: %w", err)
	}
	now := c.now()
	notAfter := now.Add(c.leafValid)
	// A leaf never outlives its issuer: clients would reject the chain.
	if notAfter.After(c.inter.NotAfter) {
		notAfter = c.inter.NotAfter
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial(),
		Subject:               pkix.Name{CommonName: hostname},
		DNSNames:              []string{hostname},
		NotBefore:             now.Add(-backdate),
		NotAfter:              notAfter,
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, c.inter, &key.PublicKey, c.interKey)
	if err != nil {
		return certs.Bundle{}, fmt.Errorf("local ca: sign %s: %w", hostname, err)
	}
	keyPEM, err := certs.MarshalKey(key)
	if err != nil {
		return certs.Bundle{}, err
	}
	chain := append(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), c.interPEM...)
	return certs.Bundle{ChainPEM: chain, KeyPEM: keyPEM, CAPEM: c.rootPEM, NotAfter: notAfter}, nil
}

// load reads the CA from its directory, creating what is missing: a
// missing root creates both; a missing or expiring intermediate (less
// than a leaf's lifetime left) is re-issued from the root.
func (c *CA) load() error {
	if c.loaded && c.now().Add(c.leafValid).Before(c.inter.NotAfter) {
		return nil
	}
	if err := os.MkdirAll(c.dir, 0o700); err != nil {
		return fmt.Errorf("local ca: %w", err)
	}
	rootPEM, root, rootKey, err := c.readPair(RootCertFile, RootKeyFile)
	switch {
	case errors.Is(err, os.ErrNotExist):
		rootPEM, root, rootKey, err = c.create(RootCertFile, RootKeyFile, nil, nil)
		if err != nil {
			return err
		}
	case err != nil:
		return err
	}
	interPEM, inter, interKey, err := c.readPair(IntermediateCertFile, IntermediateKeyFile)
	stale := err == nil && (!c.now().Add(c.leafValid).Before(inter.NotAfter) || inter.CheckSignatureFrom(root) != nil)
	if errors.Is(err, os.ErrNotExist) || stale {
		interPEM, inter, interKey, err = c.create(IntermediateCertFile, IntermediateKeyFile, root, rootKey)
	}
	if err != nil {
		return err
	}
	c.rootPEM, c.root, c.interPEM, c.inter, c.interKey = rootPEM, root, interPEM, inter, interKey
	c.loaded = true
	return nil
}

func (c *CA) readPair(certFile, keyFile string) ([]byte, *x509.Certificate, crypto.Signer, error) {
	certPEM, err := os.ReadFile(filepath.Join(c.dir, certFile))
	if err != nil {
		return nil, nil, nil, fmt.Errorf("local ca: %w", err)
	}
	keyPEM, err := os.ReadFile(filepath.Join(c.dir, keyFile))
	if err != nil {
		return nil, nil, nil, fmt.Errorf("local ca: %w", err)
	}
	chain, err := certs.ParseChain(certPEM)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("local ca: %s: %w", certFile, err)
	}
	key, err := certs.ParseKey(keyPEM)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("local ca: %s: %w", keyFile, err)
	}
	return certPEM, chain[0], key, nil
}

// create makes a CA certificate: self-signed when parent is nil (the
// root), else an intermediate signed by parent. The key is written before
// the certificate, both atomically, so a crash never leaves a certificate
// whose key is missing.
func (c *CA) create(certFile, keyFile string, parent *x509.Certificate, parentKey crypto.Signer) ([]byte, *x509.Certificate, crypto.Signer, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("local ca: generate key: %w", err)
	}
	now := c.now()
	tmpl := &x509.Certificate{
		SerialNumber:          serial(),
		NotBefore:             now.Add(-backdate),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	signer := crypto.Signer(key)
	if parent == nil {
		tmpl.Subject = pkix.Name{CommonName: c.name + " root", Organization: []string{"mcp"}}
		tmpl.NotAfter = now.Add(RootValidity)
		tmpl.MaxPathLen = 1
		parent = tmpl
	} else {
		tmpl.Subject = pkix.Name{CommonName: c.name + " intermediate", Organization: []string{"mcp"}}
		tmpl.NotAfter = now.Add(IntermediateValidity)
		if tmpl.NotAfter.After(parent.NotAfter) {
			tmpl.NotAfter = parent.NotAfter
		}
		tmpl.MaxPathLenZero = true
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
		signer = parentKey
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, &key.PublicKey, signer)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("local ca: create %s: %w", certFile, err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("local ca: %w", err)
	}
	keyPEM, err := certs.MarshalKey(key)
	if err != nil {
		return nil, nil, nil, err
	}
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	if err := certs.WriteSet([]certs.File{{Path: filepath.Join(c.dir, keyFile), Data: keyPEM, Mode: 0o600, UID: -1, GID: -1}}); err != nil {
		return nil, nil, nil, fmt.Errorf("local ca: %w", err)
	}
	if err := certs.WriteSet([]certs.File{{Path: filepath.Join(c.dir, certFile), Data: certPEM, Mode: 0o644, UID: -1, GID: -1}}); err != nil {
		return nil, nil, nil, fmt.Errorf("local ca: %w", err)
	}
	return certPEM, cert, key, nil
}

func serial() *big.Int {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		panic(err) // crypto/rand never fails on Linux
	}
	return n.Add(n, big.NewInt(1))
}

func normalise(h string) string {
	for len(h) > 0 && h[len(h)-1] == '.' {
		h = h[:len(h)-1]
	}
	return h
}
