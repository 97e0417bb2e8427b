package localca

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"os"
	"path/filepath"
	"testing"
	"time"

	"metacircular.net/mcp/executor/certs"
)

func TestIssueChainVerifies(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "ca")
	ca := New(dir)
	now := time.Now()
	for _, host := range []string{"mcq.svc.mcp.example.org", "www.example.com"} {
		b, err := ca.Issue(context.Background(), host)
		if err != nil {
			t.Fatal(err)
		}
		if err := b.Check(host, now); err != nil {
			t.Fatalf("%s: %v", host, err)
		}
		chain, err := certs.ParseChain(b.ChainPEM)
		if err != nil {
			t.Fatal(err)
		}
		if len(chain) != 2 {
			t.Fatalf("chain has %d certificates, want leaf + intermediate", len(chain))
		}
		if chain[1].Subject.CommonName != "mcp local CA intermediate" || !chain[1].IsCA {
			t.Errorf("second certificate %q is not the intermediate", chain[1].Subject)
		}
		if got := b.NotAfter.Sub(now); got < LeafValidity-time.Minute || got > LeafValidity+time.Minute {
			t.Errorf("leaf lifetime %s, want 90 days", got)
		}
		// What a TLS client does with the files.
		pair, err := tls.X509KeyPair(b.ChainPEM, b.KeyPEM)
		if err != nil {
			t.Fatal(err)
		}
		if len(pair.Certificate) != 2 {
			t.Errorf("tls pair has %d certificates", len(pair.Certificate))
		}
		roots := x509.NewCertPool()
		roots.AppendCertsFromPEM(b.CAPEM)
		inter := x509.NewCertPool()
		inter.AddCert(chain[1])
		if _, err := chain[0].Verify(x509.VerifyOptions{DNSName: host, Roots: roots, Intermediates: inter}); err != nil {
			t.Errorf("verify against root: %v", err)
		}
		if chain[0].Issuer.CommonName == chain[0].Subject.CommonName {
			t.Error("leaf is self-signed")
		}
	}
	for _, f := range []string{RootKeyFile, IntermediateKeyFile} {
		fi, err := os.Stat(filepath.Join(dir, f))
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != 0o600 {
			t.Errorf("%s mode %o, want 0600", f, fi.Mode().Perm())
		}
	}
	fi, err := os.Stat(dir)
	if err != nil || fi.Mode().Perm() != 0o700 {
		t.Errorf("ca dir: %v %v", fi.Mode(), err)
	}
}

func TestPersistsAcrossRestarts(t *testing.T) {
	dir := t.TempDir()
	r1, err := New(dir).RootPEM()
	if err != nil {
		t.Fatal(err)
	}
	inter1, _ := os.ReadFile(filepath.Join(dir, IntermediateCertFile))
	ca := New(dir)
	r2, err := ca.RootPEM()
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(r1, r2) {
		t.Fatal("a second CA over the same directory made a new root")
	}
	b, err := ca.Issue(context.Background(), "a.example.org")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(b.ChainPEM, inter1) {
		t.Error("chain does not carry the stored intermediate")
	}
}

func TestIntermediateRotatedBeforeItExpires(t *testing.T) {
	dir := t.TempDir()
	start := time.Now()
	now := start
	ca := New(dir, WithClock(func() time.Time { return now }))
	root1, err := ca.RootPEM()
	if err != nil {
		t.Fatal(err)
	}
	// Less than a leaf lifetime before the intermediate expires, a fresh
	// intermediate is made from the same root.
	now = start.Add(IntermediateValidity - LeafValidity/2)
	b, err := ca.Issue(context.Background(), "a.example.org")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(root1, b.CAPEM) {
		t.Error("root changed")
	}
	if err := b.Check("a.example.org", now); err != nil {
		t.Fatal(err)
	}
	if b.NotAfter.Sub(now) < LeafValidity-time.Minute {
		t.Errorf("leaf cut short to %s by an old intermediate", b.NotAfter.Sub(now))
	}
}

func TestRejects(t *testing.T) {
	ca := New(t.TempDir())
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := ca.Issue(ctx, "a.example.org"); err == nil {
		t.Error("issued with a cancelled context")
	}
	if _, err := ca.Issue(context.Background(), ""); err == nil {
		t.Error("issued for an empty hostname")
	}
}
