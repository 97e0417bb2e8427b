package trust

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/go-git/go-git/v5/plumbing/storer"

	gitsync "metacircular.net/mcp/sync"
)

// Policy says which commits must be signed.
type Policy string

// The policies (see the package doc).
const (
	PolicyOff  Policy = "off"
	PolicyHead Policy = "head"
	PolicyAll  Policy = "all"
)

// Policies lists the valid policy names, for configuration messages.
var Policies = []Policy{PolicyOff, PolicyHead, PolicyAll}

// Kinds of refusal, for errors.Is.
var (
	ErrUnsigned     = errors.New("unsigned")
	ErrUntrusted    = errors.New("signer not trusted")
	ErrBadSignature = errors.New("bad signature")
)

// Refusal is a commit that may not be applied.
type Refusal struct {
	Commit plumbing.Hash
	// Signer is what the signature names: an SSH key fingerprint and type,
	// or an OpenPGP key id; empty for an unsigned commit.
	Signer string
	// Kind is ErrUnsigned, ErrUntrusted or ErrBadSignature.
	Kind error
	// Detail completes the message ("not in allowed_signers").
	Detail string
}

func (r *Refusal) Error() string {
	msg := "commit " + r.Commit.String()[:12] + ": "
	switch {
	case errors.Is(r.Kind, ErrUnsigned):
		msg += "unsigned"
		if r.Detail != "" {
			msg += " (" + r.Detail + ")"
		}
		return msg
	case errors.Is(r.Kind, ErrUntrusted):
		return msg + "signed by " + r.Signer + ", " + r.Detail
	}
	if r.Signer != "" {
		return msg + "bad signature by " + r.Signer + ": " + r.Detail
	}
	return msg + "bad signature: " + r.Detail
}

func (r *Refusal) Unwrap() error { return r.Kind }

// Config is the [trust] table of the agent configuration.
type Config struct {
	Policy Policy
	// AllowedSignersFile trusts SSH keys (git's gpg.ssh.allowedSignersFile
	// format).
	AllowedSignersFile string
	// KeyringFile trusts OpenPGP keys (armored or binary).
	KeyringFile string
}

// Verifier is a gitsync.Verifier enforcing a Config.
type Verifier struct {
	cfg     Config
	applied func(context.Context) (string, error)
}

var _ gitsync.Verifier = (*Verifier)(nil)

// New returns the verifier for cfg, or nil for the off policy (so the
// caller installs none). applied returns the commit the node applied last
// ("" when none); the all policy needs it to know where to stop.
func New(cfg Config, applied func(context.Context) (string, error)) (*Verifier, error) {
	switch cfg.Policy {
	case "", PolicyOff:
		return nil, nil
	case PolicyHead, PolicyAll:
	default:
		return nil, fmt.Errorf("trust policy %q is not one of off, head, all", cfg.Policy)
	}
	if cfg.AllowedSignersFile == "" && cfg.KeyringFile == "" {
		return nil, fmt.Errorf("trust policy %q needs allowed_signers_file or keyring_file (or both)", cfg.Policy)
	}
	if applied == nil {
		applied = func(context.Context) (string, error) { return "", nil }
	}
	return &Verifier{cfg: cfg, applied: applied}, nil
}

// Verify checks c (the branch head) and, with the all policy, the commits
// since the applied one.
func (v *Verifier) Verify(ctx context.Context, c *object.Commit) error {
	keys, err := v.loadKeys()
	if err != nil {
		return err
	}
	commits := []*object.Commit{c}
	if v.cfg.Policy == PolicyAll {
		applied, err := v.applied(ctx)
		if err != nil {
			return fmt.Errorf("read the applied commit: %w", err)
		}
		if applied != "" && applied != c.Hash.String() {
			if commits, err = since(ctx, c, plumbing.NewHash(applied)); err != nil {
				return err
			}
		}
	}
	for _, cc := range commits {
		if err := keys.verify(cc); err != nil {
			return err
		}
	}
	return nil
}

// keySet is what the trust files held at one verification.
type keySet struct {
	signers *AllowedSigners
	keyring *Keyring
}

func (v *Verifier) loadKeys() (*keySet, error) {
	var ks keySet
	var err error
	if v.cfg.AllowedSignersFile != "" {
		if ks.signers, err = LoadAllowedSigners(v.cfg.AllowedSignersFile); err != nil {
			return nil, err
		}
	}
	if v.cfg.KeyringFile != "" {
		if ks.keyring, err = LoadKeyring(v.cfg.KeyringFile); err != nil {
			return nil, err
		}
	}
	return &ks, nil
}

// Verify checks one commit's signature against the trusted keys, whatever
// its format.
func (ks *keySet) verify(c *object.Commit) error {
	sig := c.PGPSignature
	switch {
	case sig == "":
		return &Refusal{Commit: c.Hash, Kind: ErrUnsigned}
	case strings.HasPrefix(sig, sshSigArmorStart):
		if ks.signers == nil {
			return &Refusal{Commit: c.Hash, Kind: ErrUntrusted, Signer: sshSignerOf(sig), Detail: "and no allowed_signers_file is configured"}
		}
		return ks.signers.verifyCommit(c)
	case strings.HasPrefix(sig, "-----BEGIN PGP SIGNATURE-----"):
		if ks.keyring == nil {
			return &Refusal{Commit: c.Hash, Kind: ErrUntrusted, Signer: pgpSignerOf(sig), Detail: "and no keyring_file is configured"}
		}
		return ks.keyring.verifyCommit(c)
	}
	return &Refusal{Commit: c.Hash, Kind: ErrBadSignature, Detail: "signature format not supported (only SSH and OpenPGP)"}
}

// payload is what a commit signature covers: the commit without its
// signature header.
func payload(c *object.Commit) (io.Reader, error) {
	o := &plumbing.MemoryObject{}
	if err := c.EncodeWithoutSignature(o); err != nil {
		return nil, fmt.Errorf("encode commit %s: %w", c.Hash, err)
	}
	return o.Reader()
}

// maxWalk bounds the history walks of the all policy: desired-state
// repositories are small, and an unbounded walk on a huge foreign history
// would stall the agent.
const maxWalk = 100_000

// since returns the commits reachable from head and not from applied,
// head first. The applied commit is found by walking from head (the
// Verifier sees commits, not the store); when it is not an ancestor (a
// rewritten branch), every commit reachable from head is returned.
func since(ctx context.Context, head *object.Commit, applied plumbing.Hash) ([]*object.Commit, error) {
	var ac *object.Commit
	err := walk(ctx, head, nil, func(c *object.Commit) bool {
		if c.Hash == applied {
			ac = c
		}
		return ac == nil
	})
	if err != nil {
		return nil, err
	}
	stop := map[plumbing.Hash]bool{}
	if ac != nil {
		// Everything the applied commit reaches was checked before (or
		// predates the node), including older history merged in later.
		if err := walk(ctx, ac, nil, func(c *object.Commit) bool { stop[c.Hash] = true; return true }); err != nil {
			return nil, err
		}
	}
	var out []*object.Commit
	err = walk(ctx, head, stop, func(c *object.Commit) bool { out = append(out, c); return true })
	return out, err
}

// walk visits from and its ancestors breadth first, skipping stop, until
// visit returns false.
func walk(ctx context.Context, from *object.Commit, stop map[plumbing.Hash]bool, visit func(*object.Commit) bool) error {
	seen := map[plumbing.Hash]bool{}
	queue := []*object.Commit{from}
	for len(queue) > 0 {
		if err := ctx.Err(); err != nil {
			return err
		}
		c := queue[0]
		queue = queue[1:]
		if seen[c.Hash] || stop[c.Hash] {
			continue
		}
		seen[c.Hash] = true
		if len(seen) > maxWalk {
			return fmt.Errorf("more than %d commits to check since the applied one", maxWalk)
		}
		if !visit(c) {
			return nil
		}
		err := c.Parents().ForEach(func(p *object.Commit) error {
			queue = append(queue, p)
			return nil
		})
		if err != nil && !errors.Is(err, storer.ErrStop) {
			return fmt.Errorf("read parents of %s: %w", c.Hash, err)
		}
	}
	return nil
}
