// Package certs is mcp's certificate core: the Issuer interface the
// executor consumes (implemented by the embedded local CA in localca and
// by the ACME client in acme), the Bundle an issuer returns, the checks a
// bundle must pass before it is written, and the file layout consumers read.
//
// Layout (paths are on the host, under the executor's host root):
//
//	<proxy_cert_dir>/<hostname>.pem   L7: full chain, leaf first (the proxy)
//	<proxy_cert_dir>/<hostname>.key   L7: the leaf's private key, 0600
//	/srv/<service>/certs/cert.pem     L4: full chain, leaf first (the service)
//	/srv/<service>/certs/key.pem      L4: the private key, 0600
//	/srv/<service>/certs/ca.pem       L4: the trust anchor (root) of the chain
//
// The default proxy_cert_dir is /srv/mc-proxy/certs.
package certs

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"path/filepath"
	"time"
)

// DefaultProxyCertDir is where the proxy reads L7 certificates unless the
// agent configuration says otherwise.
const DefaultProxyCertDir = "/srv/mc-proxy/certs"

// maxSkew is how far ahead of the node's clock a certificate's NotBefore
// may be.
const maxSkew = 10 * time.Minute

// DefaultRenewBefore is how much validity must remain for a certificate to
// be reused: 30 days of the usual 90.
const DefaultRenewBefore = 30 * 24 * time.Hour

// Bundle is one issued certificate with everything its consumers need.
type Bundle struct {
	// ChainPEM is the leaf followed by the intermediates, PEM encoded: at
	// least two certificates for every issuer mcp ships.
	ChainPEM []byte
	// KeyPEM is the leaf's private key (PKCS#8 PEM). Never log it.
	KeyPEM []byte
	// CAPEM is the trust anchor (root) the chain leads to, when the issuer
	// knows it; the local CA always does, an ACME CA may not.
	CAPEM []byte
	// NotAfter is the leaf's expiry.
	NotAfter time.Time
}

// Issuer obtains a certificate for one hostname. Implementations are safe
// for concurrent use and put the CA's own error text in what they return.
type Issuer interface {
	Issue(ctx context.Context, hostname string) (Bundle, error)
}

// Leaf parses the bundle's first certificate.
func (b Bundle) Leaf() (*x509.Certificate, error) {
	certs, err := ParseChain(b.ChainPEM)
	if err != nil {
		return nil, err
	}
	return certs[0], nil
}

// Fingerprint is the hex SHA-256 of the leaf's DER, the identity mcp
// records for a certificate it wrote.
func (b Bundle) Fingerprint() (string, error) {
	leaf, err := b.Leaf()
	if err != nil {
		return "", err
	}
	return Fingerprint(leaf.Raw), nil
}

// Fingerprint returns the hex SHA-256 of a DER certificate.
func Fingerprint(der []byte) string {
	sum := sha256.Sum256(der)
	return hex.EncodeToString(sum[:])
}

// ParseChain decodes every CERTIFICATE block of a PEM chain, in order.
func ParseChain(chainPEM []byte) ([]*x509.Certificate, error) {
	var out []*x509.Certificate
	rest := chainPEM
	for {
		var blk *pem.Block
		blk, rest = pem.Decode(rest)
		if blk == nil {
			break
		}
		if blk.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(blk.Bytes)
		if err != nil {
			return nil, fmt.Errorf("parse certificate %d of chain: %w", len(out)+1, err)
		}
		out = append(out, c)
	}
	if len(out) == 0 {
		return nil, errors.New("chain holds no certificate")
	}
	return out, nil
}

// ParseKey decodes a PEM private key (PKCS#8, EC or PKCS#1).
func ParseKey(keyPEM []byte) (crypto.Signer, error) {
	blk, _ := pem.Decode(keyPEM)
	if blk == nil {
		return nil, errors.New("no PEM private key")
	}
	var (
		k   any
		err error
	)
	switch blk.Type {
	case "EC PRIVATE KEY":
		k, err = x509.ParseECPrivateKey(blk.Bytes)
	case "RSA PRIVATE KEY":
		k, err = x509.ParsePKCS1PrivateKey(blk.Bytes)
	default:
		k, err = x509.ParsePKCS8PrivateKey(blk.Bytes)
	}
	if err != nil {
		// The parser's message never contains key material.
		return nil, fmt.Errorf("parse private key: %w", err)
	}
	s, ok := k.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("private key of type %T cannot sign", k)
	}
	return s, nil
}

// MarshalKey encodes a private key as PKCS#8 PEM.
func MarshalKey(k crypto.Signer) ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		return nil, fmt.Errorf("marshal private key: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}

// Check verifies a bundle before anything is written: the chain parses and
// has at least two certificates, the leaf is valid for hostname at now, the
// key belongs to the leaf, each certificate is signed by the next, and the
// chain leads to CAPEM when it is set. A CA that returned something broken
// is caught here rather than by the proxy at handshake time.
func (b Bundle) Check(hostname string, now time.Time) error {
	chain, err := ParseChain(b.ChainPEM)
	if err != nil {
		return err
	}
	if len(chain) < 2 {
		return fmt.Errorf("chain has %d certificate, want the leaf and its intermediate", len(chain))
	}
	leaf := chain[0]
	if err := leaf.VerifyHostname(hostname); err != nil {
		return fmt.Errorf("leaf: %w", err)
	}
	// A NotBefore a little ahead of now is the CA's clock, not a bad
	// certificate: it becomes valid before any client notices.
	if now.Add(maxSkew).Before(leaf.NotBefore) || now.After(leaf.NotAfter) {
		return fmt.Errorf("leaf valid %s to %s, not at %s", leaf.NotBefore.UTC().Format(time.RFC3339),
			leaf.NotAfter.UTC().Format(time.RFC3339), now.UTC().Format(time.RFC3339))
	}
	key, err := ParseKey(b.KeyPEM)
	if err != nil {
		return err
	}
	if !publicKeysEqual(key.Public(), leaf.PublicKey) {
		return errors.New("private key does not belong to the leaf certificate")
	}
	for i := 0; i+1 < len(chain); i++ {
		if err := chain[i].CheckSignatureFrom(chain[i+1]); err != nil {
			return fmt.Errorf("certificate %d of chain is not signed by certificate %d: %w", i+1, i+2, err)
		}
	}
	if len(b.CAPEM) > 0 {
		roots := x509.NewCertPool()
		if !roots.AppendCertsFromPEM(b.CAPEM) {
			return errors.New("ca: no certificate")
		}
		inter := x509.NewCertPool()
		for _, c := range chain[1:] {
			inter.AddCert(c)
		}
		at := now
		if at.Before(leaf.NotBefore) {
			at = leaf.NotBefore // within maxSkew, see above
		}
		if _, err := leaf.Verify(x509.VerifyOptions{DNSName: hostname, Roots: roots, Intermediates: inter,
			CurrentTime: at, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}); err != nil {
			return fmt.Errorf("chain does not verify to the CA: %w", err)
		}
	}
	return nil
}

func publicKeysEqual(a, b crypto.PublicKey) bool {
	switch k := a.(type) {
	case *ecdsa.PublicKey:
		return k.Equal(b)
	case *rsa.PublicKey:
		return k.Equal(b)
	case ed25519.PublicKey:
		return k.Equal(b)
	}
	return false
}

// L7Paths returns the chain and key files the proxy reads for hostname.
func L7Paths(proxyCertDir, hostname string) (chain, key string) {
	base := filepath.Join(proxyCertDir, hostname)
	return base + ".pem", base + ".key"
}

// L4Paths returns the files an L4 service reads under /srv/<service>/certs.
func L4Paths(srvDir, service string) (chain, key, ca string) {
	d := filepath.Join(srvDir, service, "certs")
	return filepath.Join(d, "cert.pem"), filepath.Join(d, "key.pem"), filepath.Join(d, "ca.pem")
}
