package trust_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/object"

	"metacircular.net/mcp/internal/testenv"
	gitsync "metacircular.net/mcp/sync"
	"metacircular.net/mcp/trust"
)

func TestMain(m *testing.M) { testenv.Main(m) }

func commitOf(t *testing.T, dir string, h plumbing.Hash) *object.Commit {
	t.Helper()
	repo, err := git.PlainOpen(dir)
	if err != nil {
		t.Fatal(err)
	}
	c, err := repo.CommitObject(h)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// Commits signed by the real git CLI with SSH and OpenPGP keys: a trusted
// signer passes, an unsigned commit and an untrusted signer are refused
// with the commit and the signer named.
func TestVerifyRealSignatures(t *testing.T) {
	ctx := t.Context()
	repo := testenv.GitRepo(t)
	alice := testenv.NewSSHSigner(t, "alice@example.net")
	mallory := testenv.NewSSHSigner(t, "mallory@example.net")
	pgpGood := testenv.NewGPGSigner(t, "bob@example.net")
	pgpBad := testenv.NewGPGSigner(t, "eve@example.net")

	signers := testenv.WriteAllowedSigners(t, alice)
	keyring := writeFile(t, "keyring.asc", pgpGood.PublicKey)

	cSSH := repo.CommitSigned(map[string]string{"a": "1"}, "ssh signed", alice.GitArgs())
	cSSHBad := repo.CommitSigned(map[string]string{"a": "2"}, "ssh untrusted", mallory.GitArgs())
	cPGP := repo.CommitSigned(map[string]string{"a": "3"}, "pgp signed", pgpGood.GitArgs(), pgpGood.Env()...)
	cPGPBad := repo.CommitSigned(map[string]string{"a": "4"}, "pgp untrusted", pgpBad.GitArgs(), pgpBad.Env()...)
	cUnsigned := repo.Commit(map[string]string{"a": "5"}, "unsigned")

	v, err := trust.New(trust.Config{Policy: trust.PolicyHead, AllowedSignersFile: signers, KeyringFile: keyring}, nil)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		commit plumbing.Hash
		kind   error // nil: accepted
		want   []string
	}{
		{"ssh trusted", cSSH, nil, nil},
		{"ssh untrusted", cSSHBad, trust.ErrUntrusted, []string{cSSHBad.String()[:12], "signed by SHA256:", "(ssh-ed25519)", "not in allowed_signers"}},
		{"openpgp trusted", cPGP, nil, nil},
		{"openpgp untrusted", cPGPBad, trust.ErrUntrusted, []string{cPGPBad.String()[:12], "OpenPGP key " + pgpBad.Fingerprint, "not in the keyring"}},
		{"unsigned", cUnsigned, trust.ErrUnsigned, []string{cUnsigned.String()[:12] + ": unsigned"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := v.Verify(ctx, commitOf(t, repo.Work, tt.commit))
			if tt.kind == nil {
				if err != nil {
					t.Fatalf("Verify: %v, want accepted", err)
				}
				return
			}
			if !errors.Is(err, tt.kind) {
				t.Fatalf("Verify = %v, want %v", err, tt.kind)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("message %q does not contain %q", err, w)
				}
			}
		})
	}

	// The untrusted SSH message names mallory's fingerprint exactly as
	// ssh-keygen prints it.
	fp := strings.Fields(run(t, "ssh-keygen", "-lf", mallory.KeyFile+".pub"))[1]
	if err := v.Verify(ctx, commitOf(t, repo.Work, cSSHBad)); !strings.Contains(err.Error(), fp) {
		t.Fatalf("message %q does not name fingerprint %s", err, fp)
	}

	// A tampered commit (same signature, different content) is a bad
	// signature, not a trusted one.
	c := commitOf(t, repo.Work, cSSH)
	c.Message = "tampered\n"
	if err := v.Verify(ctx, c); !errors.Is(err, trust.ErrBadSignature) {
		t.Fatalf("tampered commit: %v, want a bad signature", err)
	}
}

func run(t *testing.T, name string, args ...string) string {
	t.Helper()
	out, err := testenvCommand(name, args...)
	if err != nil {
		t.Fatalf("%s: %v\n%s", name, err, out)
	}
	return out
}

// The all policy checks every commit since the applied one: an unsigned
// commit under a signed head is refused; once applied, only later commits
// count.
func TestPolicyAll(t *testing.T) {
	ctx := t.Context()
	repo := testenv.GitRepo(t)
	alice := testenv.NewSSHSigner(t, "alice@example.net")
	signers := testenv.WriteAllowedSigners(t, alice)

	base := repo.Commit(map[string]string{"a": "0"}, "unsigned history from before the policy")
	applied := base.String()
	v, err := trust.New(trust.Config{Policy: trust.PolicyAll, AllowedSignersFile: signers},
		func(context.Context) (string, error) { return applied, nil })
	if err != nil {
		t.Fatal(err)
	}
	hidden := repo.Commit(map[string]string{"a": "1"}, "unsigned, hidden under a signed head")
	head := repo.CommitSigned(map[string]string{"a": "2"}, "signed head", alice.GitArgs())

	err = v.Verify(ctx, commitOf(t, repo.Work, head))
	if !errors.Is(err, trust.ErrUnsigned) || !strings.Contains(err.Error(), hidden.String()[:12]) {
		t.Fatalf("Verify = %v, want the hidden unsigned commit %s refused", err, hidden.String()[:12])
	}
	headPolicy, _ := trust.New(trust.Config{Policy: trust.PolicyHead, AllowedSignersFile: signers}, nil)
	if err := headPolicy.Verify(ctx, commitOf(t, repo.Work, head)); err != nil {
		t.Fatalf("head policy: %v, want the signed head accepted", err)
	}

	// Once everything up to hidden is applied, the signed head alone is new.
	applied = hidden.String()
	if err := v.Verify(ctx, commitOf(t, repo.Work, head)); err != nil {
		t.Fatalf("Verify after applying the unsigned commit: %v", err)
	}
	// Nothing applied yet: only the head is checked.
	applied = ""
	if err := v.Verify(ctx, commitOf(t, repo.Work, head)); err != nil {
		t.Fatalf("Verify with nothing applied: %v", err)
	}
}

// The verifier installed in a gitsync.Source: a refused head never yields
// a Revision; the error is a *gitsync.VerifyError naming the commit.
func TestSourceRefusesUntrusted(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	repo := testenv.GitRepo(t)
	alice := testenv.NewSSHSigner(t, "alice@example.net")
	v, err := trust.New(trust.Config{Policy: trust.PolicyHead, AllowedSignersFile: testenv.WriteAllowedSigners(t, alice)}, nil)
	if err != nil {
		t.Fatal(err)
	}
	src, err := gitsync.New(gitsync.Config{URL: repo.Bare, CacheDir: filepath.Join(t.TempDir(), "cache")}, gitsync.WithVerifier(v))
	if err != nil {
		t.Fatal(err)
	}
	good := repo.CommitSigned(map[string]string{"mcp.toml": "x"}, "signed", alice.GitArgs())
	repo.Push()
	rev, err := src.Fetch(ctx)
	if err != nil || rev.Commit != good {
		t.Fatalf("Fetch = %v, %v; want %s", rev, err, good)
	}
	bad := repo.Commit(map[string]string{"mcp.toml": "y"}, "unsigned")
	repo.Push()
	rev, err = src.Fetch(ctx)
	var ve *gitsync.VerifyError
	if !errors.As(err, &ve) || ve.Commit != bad || !errors.Is(err, trust.ErrUnsigned) || rev != nil {
		t.Fatalf("Fetch = %v, %v; want a VerifyError for %s", rev, err, bad)
	}
}

func TestParseAllowedSigners(t *testing.T) {
	const key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGbtVQ0Pdj2qvVsGDKK8PBXwF5bZjPFMZ9SfxDpd4+bZ"
	tests := []struct {
		name, in string
		n        int
		err      string
		check    func(t *testing.T, as *trust.AllowedSigners)
	}{
		{name: "plain", in: "alice@example.net " + key + " comment\n", n: 1},
		{name: "comments and blanks", in: "# ops\n\nalice@example.net " + key + "\n", n: 1},
		{name: "options", in: `alice@example.net,bob@example.net namespaces="git,file",valid-after="20240101",valid-before="20300101Z" ` + key + "\n", n: 1,
			check: func(t *testing.T, as *trust.AllowedSigners) {
				s := as.Signers[0]
				if len(s.Principals) != 2 || len(s.Namespaces) != 2 || s.ValidAfter.Year() != 2024 || s.ValidBefore.Year() != 2030 {
					t.Fatalf("parsed %+v", s)
				}
			}},
		{name: "quoted principals", in: `"alice@example.net" ` + key + "\n", n: 1},
		{name: "cert authority skipped", in: "*@example.net cert-authority " + key + "\n", n: 0},
		{name: "bad key", in: "alice@example.net ssh-ed25519 notbase64\n", err: "line 1"},
		{name: "unknown option", in: "alice@example.net frobnicate " + key + "\n", err: "line 1"},
		{name: "bad time", in: `alice@example.net valid-after="2024" ` + key + "\n", err: "valid-after"},
		{name: "no key", in: "alice@example.net\n", err: "no key"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			as, err := trust.ParseAllowedSigners([]byte(tt.in))
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("err = %v, want %q", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(as.Signers) != tt.n {
				t.Fatalf("%d signers, want %d", len(as.Signers), tt.n)
			}
			if tt.check != nil {
				tt.check(t, as)
			}
		})
	}
}

// A key listed only for another namespace, or outside its validity, is
// not trusted for commits; the message says why.
func TestAllowedSignerRestrictions(t *testing.T) {
	ctx := t.Context()
	repo := testenv.GitRepo(t)
	alice := testenv.NewSSHSigner(t, "alice@example.net")
	c := repo.CommitSigned(map[string]string{"a": "1"}, "signed", alice.GitArgs())
	for _, tt := range []struct{ opts, want string }{
		{`namespaces="file"`, `not for namespace "git"`},
		{`valid-after="29990101"`, "only valid after"},
		{`valid-before="20000101"`, "only valid before"},
	} {
		f := writeFile(t, "allowed_signers", alice.Email+" "+tt.opts+" "+alice.PublicKey+"\n")
		v, _ := trust.New(trust.Config{Policy: trust.PolicyHead, AllowedSignersFile: f}, nil)
		err := v.Verify(ctx, commitOf(t, repo.Work, c))
		if !errors.Is(err, trust.ErrUntrusted) || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: %v, want untrusted with %q", tt.opts, err, tt.want)
		}
	}
}

func TestNewConfig(t *testing.T) {
	if v, err := trust.New(trust.Config{}, nil); v != nil || err != nil {
		t.Fatalf("off: %v, %v; want no verifier", v, err)
	}
	if _, err := trust.New(trust.Config{Policy: "some"}, nil); err == nil {
		t.Fatal("unknown policy accepted")
	}
	if _, err := trust.New(trust.Config{Policy: trust.PolicyHead}, nil); err == nil {
		t.Fatal("head policy without keys accepted")
	}
}
