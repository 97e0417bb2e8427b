package trust

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/armor"
	pgperrors "github.com/ProtonMail/go-crypto/openpgp/errors"
	"github.com/ProtonMail/go-crypto/openpgp/packet"
	"github.com/go-git/go-git/v5/plumbing/object"
)

// Keyring is a set of trusted OpenPGP keys.
type Keyring struct {
	File     string
	Entities openpgp.EntityList
}

// LoadKeyring reads an armored or binary OpenPGP keyring.
func LoadKeyring(path string) (*Keyring, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("trust.keyring_file: %w", err)
	}
	var el openpgp.EntityList
	if bytes.Contains(b, []byte("-----BEGIN PGP")) {
		el, err = openpgp.ReadArmoredKeyRing(bytes.NewReader(b))
	} else {
		el, err = openpgp.ReadKeyRing(bytes.NewReader(b))
	}
	if err != nil {
		return nil, fmt.Errorf("trust.keyring_file: %s: %w", path, err)
	}
	return &Keyring{File: path, Entities: el}, nil
}

// pgpSignerOf names the key an armored signature says it was made by.
func pgpSignerOf(armored string) string {
	blk, err := armor.Decode(strings.NewReader(armored))
	if err != nil {
		return "an unreadable OpenPGP signature"
	}
	p, err := packet.Read(blk.Body)
	if err != nil {
		return "an unreadable OpenPGP signature"
	}
	sig, ok := p.(*packet.Signature)
	if !ok {
		return "an unreadable OpenPGP signature"
	}
	switch {
	case len(sig.IssuerFingerprint) > 0:
		return fmt.Sprintf("OpenPGP key %X", sig.IssuerFingerprint)
	case sig.IssuerKeyId != nil:
		return fmt.Sprintf("OpenPGP key %016X", *sig.IssuerKeyId)
	}
	return "an OpenPGP key with no issuer"
}

// verifyCommit checks an OpenPGP-signed commit against the keyring.
func (k *Keyring) verifyCommit(c *object.Commit) error {
	who := pgpSignerOf(c.PGPSignature)
	msg, err := payload(c)
	if err != nil {
		return err
	}
	_, err = openpgp.CheckArmoredDetachedSignature(k.Entities, msg, strings.NewReader(c.PGPSignature), nil)
	switch {
	case err == nil:
		return nil
	case errors.Is(err, pgperrors.ErrUnknownIssuer):
		return &Refusal{Commit: c.Hash, Kind: ErrUntrusted, Signer: who, Detail: "not in the keyring"}
	}
	return &Refusal{Commit: c.Hash, Kind: ErrBadSignature, Signer: who, Detail: err.Error()}
}
