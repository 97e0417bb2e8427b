package statusnote

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/hiddeco/sshsig"
	"golang.org/x/crypto/ssh"
)

// Signer signs a commit's encoded content and returns the armored
// signature for its gpgsig header (go-git's Signer contract).
type Signer interface {
	Sign(message io.Reader) ([]byte, error)
}

// LoadSigner reads the agent's signing key: an OpenSSH private key (the
// signature is git's SSH format, namespace "git") or an armored OpenPGP
// secret key. Neither may have a passphrase: the agent runs unattended.
// The key material is never logged or put in errors.
func LoadSigner(path string) (Signer, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("status.signing_key_file: %w", err)
	}
	if bytes.Contains(b, []byte("-----BEGIN PGP PRIVATE KEY BLOCK-----")) {
		el, err := openpgp.ReadArmoredKeyRing(bytes.NewReader(b))
		if err != nil {
			return nil, fmt.Errorf("status.signing_key_file: %s: not a readable OpenPGP key", path)
		}
		if len(el) == 0 || el[0].PrivateKey == nil {
			return nil, fmt.Errorf("status.signing_key_file: %s holds no OpenPGP secret key", path)
		}
		if el[0].PrivateKey.Encrypted {
			return nil, fmt.Errorf("status.signing_key_file: %s is protected by a passphrase; the agent needs a key without one", path)
		}
		return pgpSigner{el[0]}, nil
	}
	k, err := ssh.ParsePrivateKey(b)
	if err != nil {
		var missing *ssh.PassphraseMissingError
		if errors.As(err, &missing) {
			return nil, fmt.Errorf("status.signing_key_file: %s is protected by a passphrase; the agent needs a key without one", path)
		}
		return nil, fmt.Errorf("status.signing_key_file: %s is neither an OpenSSH private key nor an armored OpenPGP secret key", path)
	}
	return sshSigner{k}, nil
}

type sshSigner struct{ k ssh.Signer }

// Sign makes git's SSH commit signature: sshsig, namespace "git", SHA-512
// (what `git commit -S` with gpg.format=ssh writes).
func (s sshSigner) Sign(m io.Reader) ([]byte, error) {
	sig, err := sshsig.Sign(m, s.k, sshsig.HashSHA512, "git")
	if err != nil {
		return nil, fmt.Errorf("ssh sign: %w", err)
	}
	return sshsig.Armor(sig), nil
}

type pgpSigner struct{ e *openpgp.Entity }

func (s pgpSigner) Sign(m io.Reader) ([]byte, error) {
	var buf bytes.Buffer
	if err := openpgp.ArmoredDetachSign(&buf, s.e, m, nil); err != nil {
		return nil, fmt.Errorf("openpgp sign: %w", err)
	}
	return buf.Bytes(), nil
}
