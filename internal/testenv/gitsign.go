package testenv

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/go-git/go-git/v5/plumbing"
)

// SSHSigner is an ed25519 key made by the real ssh-keygen, for signing
// commits with `git -c gpg.format=ssh`.
type SSHSigner struct {
	// KeyFile is the private key (no passphrase); KeyFile+".pub" the public.
	KeyFile string
	// PublicKey is the public key line ("ssh-ed25519 AAAA... comment").
	PublicKey string
	// Email is the principal the key is listed under.
	Email string
}

// NewSSHSigner generates a key pair with ssh-keygen; the test is skipped
// (or failed under MCP_TEST_REQUIRE) when ssh-keygen is missing.
func NewSSHSigner(t testing.TB, email string) *SSHSigner {
	t.Helper()
	if _, err := exec.LookPath("ssh-keygen"); err != nil {
		Missing(t, "ssh-keygen is not installed (Debian package openssh-client)")
	}
	key := filepath.Join(t.TempDir(), "id_ed25519")
	out, err := exec.Command("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", email, "-f", key).CombinedOutput()
	if err != nil {
		t.Fatalf("ssh-keygen: %v\n%s", err, out)
	}
	pub, err := os.ReadFile(key + ".pub")
	if err != nil {
		t.Fatal(err)
	}
	return &SSHSigner{KeyFile: key, PublicKey: strings.TrimSpace(string(pub)), Email: email}
}

// AllowedSignersLine is the key's line in git's allowed_signers format.
func (s *SSHSigner) AllowedSignersLine() string {
	return s.Email + " " + s.PublicKey
}

// GitArgs are the git options that make `commit -S` sign with this key.
func (s *SSHSigner) GitArgs() []string {
	return []string{"-c", "gpg.format=ssh", "-c", "user.signingkey=" + s.KeyFile}
}

// WriteAllowedSigners writes an allowed_signers file trusting the given
// signers and returns its path.
func WriteAllowedSigners(t testing.TB, signers ...*SSHSigner) string {
	t.Helper()
	var b strings.Builder
	for _, s := range signers {
		b.WriteString(s.AllowedSignersLine() + "\n")
	}
	p := filepath.Join(t.TempDir(), "allowed_signers")
	if err := os.WriteFile(p, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// GPGSigner is an OpenPGP key made by the real gpg in a private GNUPGHOME.
type GPGSigner struct {
	Home        string
	Fingerprint string
	// PublicKey is the armored public key (a keyring of one key).
	PublicKey string
}

// NewGPGSigner generates an ed25519 signing key with `gpg --batch
// --gen-key`; its agent is stopped when the test ends.
func NewGPGSigner(t testing.TB, email string) *GPGSigner {
	t.Helper()
	if _, err := exec.LookPath("gpg"); err != nil {
		Missing(t, "gpg is not installed (Debian package gnupg)")
	}
	// gpg-agent's socket lives in GNUPGHOME: keep the path short.
	home, err := os.MkdirTemp("", "mcpgpg")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(home, 0o700); err != nil {
		t.Fatal(err)
	}
	g := &GPGSigner{Home: home}
	t.Cleanup(func() {
		cmd := exec.Command("gpgconf", "--kill", "all")
		cmd.Env = g.env()
		_ = cmd.Run()
		os.RemoveAll(home)
	})
	params := "Key-Type: eddsa\nKey-Curve: ed25519\nKey-Usage: sign\nName-Real: mcp test\nName-Email: " + email +
		"\nExpire-Date: 0\n%no-protection\n%commit\n"
	g.run(t, bytes.NewBufferString(params), "--batch", "--gen-key")
	for _, line := range strings.Split(g.run(t, nil, "--batch", "--with-colons", "--list-secret-keys", email), "\n") {
		if f := strings.Split(line, ":"); len(f) > 9 && f[0] == "fpr" {
			g.Fingerprint = f[9]
			break
		}
	}
	if g.Fingerprint == "" {
		t.Fatal("gpg: no fingerprint for the generated key")
	}
	g.PublicKey = g.run(t, nil, "--batch", "--armor", "--export", g.Fingerprint)
	return g
}

func (g *GPGSigner) env() []string { return append(os.Environ(), "GNUPGHOME="+g.Home) }

func (g *GPGSigner) run(t testing.TB, stdin *bytes.Buffer, args ...string) string {
	t.Helper()
	cmd := exec.Command("gpg", args...)
	cmd.Env = g.env()
	if stdin != nil {
		cmd.Stdin = stdin
	}
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		t.Fatalf("gpg %s: %v\n%s", strings.Join(args, " "), err, errb.String())
	}
	return out.String()
}

// GitArgs are the git options that make `commit -S` sign with this key.
func (g *GPGSigner) GitArgs() []string {
	return []string{"-c", "gpg.format=openpgp", "-c", "gpg.program=gpg", "-c", "user.signingkey=" + g.Fingerprint}
}

// Env is what git needs in its environment to find the key.
func (g *GPGSigner) Env() []string { return []string{"GNUPGHOME=" + g.Home} }

// CommitSigned writes files and commits them with `git commit -S` using
// the signing options in sign (SSHSigner.GitArgs or GPGSigner.GitArgs) and
// the extra environment env. It does not push.
func (r *Repo) CommitSigned(files map[string]string, msg string, sign []string, env ...string) plumbing.Hash {
	r.t.Helper()
	for _, name := range sortedKeys(files) {
		p := filepath.Join(r.Work, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			r.t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(files[name]), 0o644); err != nil {
			r.t.Fatal(err)
		}
		Git(r.t, r.Work, "add", "--", name)
	}
	args := append(append([]string{}, sign...), "commit", "--quiet", "--allow-empty", "--no-verify", "-S", "-m", msg)
	cmd := GitCommand(r.t, r.Work, args...)
	cmd.Env = append(cmd.Env, env...)
	if out, err := cmd.CombinedOutput(); err != nil {
		r.t.Fatalf("git commit -S: %v\n%s", err, out)
	}
	return r.Rev("HEAD")
}
