package agent

import (
	"fmt"
	"os"
	"slices"
	"time"

	"metacircular.net/mcp/trust"
)

// Defaults and limits of the [trust], [status], [secrets] and
// [quarantine] tables.
const (
	DefaultStatusInterval = 5 * time.Minute
	MinStatusInterval     = 10 * time.Second
	// DefaultQuarantineAfter is how many failed reconciles in a row of the
	// same (service, spec hash) quarantine it.
	DefaultQuarantineAfter = 3
	MaxQuarantineAfter     = 100
	// DefaultImageDeadline is how long a missing image or an unreachable
	// image registry counts as temporary: failures before it has passed
	// since the first one are retried without quarantining.
	DefaultImageDeadline = 10 * time.Minute
)

// TrustConfig is the [trust] table: which commits may be applied.
type TrustConfig struct {
	// Policy is "off" (or empty: the default), "head" or "all" (see
	// package trust).
	Policy             trust.Policy
	AllowedSignersFile string
	KeyringFile        string
}

// StatusConfig is the [status] table: the status notes the agent writes to
// refs/notes/mcp/<node> in the desired-state repository.
type StatusConfig struct {
	// Notes turns the notes on (off by default: it needs a push
	// credential and a signing key).
	Notes bool
	// Interval is the longest time between two notes when nothing
	// changed (liveness).
	Interval Duration
	// SigningKeyFile signs the notes commits: an OpenSSH private key, or
	// an armored OpenPGP secret key, without passphrase.
	SigningKeyFile string
}

// SecretsConfig is the [secrets] table: node-local secret values that
// definitions reference as "secret:NAME".
type SecretsConfig struct {
	// Dir holds one file per secret, named NAME; it and its files must
	// not be readable by group or others.
	Dir string
}

// QuarantineConfig is the [quarantine] table.
type QuarantineConfig struct {
	// After is the number of failures in a row that quarantines a
	// (service, spec hash).
	After int
	// ImageDeadline is how long a missing image counts as temporary.
	ImageDeadline Duration
}

// StatusInterval is the liveness interval, DefaultStatusInterval unless set.
func (s StatusConfig) StatusInterval() time.Duration {
	if s.Interval.Duration == 0 {
		return DefaultStatusInterval
	}
	return s.Interval.Duration
}

// Failures is After, DefaultQuarantineAfter unless set.
func (q QuarantineConfig) Failures() int {
	if q.After == 0 {
		return DefaultQuarantineAfter
	}
	return q.After
}

// Deadline is ImageDeadline, DefaultImageDeadline unless set.
func (q QuarantineConfig) Deadline() time.Duration {
	if q.ImageDeadline.Duration == 0 {
		return DefaultImageDeadline
	}
	return q.ImageDeadline.Duration
}

// trustTables parses [trust], [status], [secrets] and [quarantine] into c.
// It is called from config with the whole decoded file.
func (p *parser) trustTables(raw map[string]any, c *Config) {
	// Defaults stay zero values in the struct (resolved by the methods
	// below), so a file that leaves these tables out parses to the same
	// Config as before they existed.
	if t := p.table(raw, "trust"); t != nil {
		const pre = "trust"
		p.known(t, pre, "policy", "allowed_signers_file", "keyring_file")
		var pol string
		if p.str(t, pre, "policy", &pol) {
			if !slices.Contains(trust.Policies, trust.Policy(pol)) {
				p.errorf("trust.policy", "%q is not one of off, head, all", pol)
			}
			c.Trust.Policy = trust.Policy(pol)
		}
		p.str(t, pre, "allowed_signers_file", &c.Trust.AllowedSignersFile)
		p.str(t, pre, "keyring_file", &c.Trust.KeyringFile)
		c.Trust.AllowedSignersFile = p.absPath("trust.allowed_signers_file", c.Trust.AllowedSignersFile)
		c.Trust.KeyringFile = p.absPath("trust.keyring_file", c.Trust.KeyringFile)
		if c.Trust.Policy != "" && c.Trust.Policy != trust.PolicyOff && c.Trust.AllowedSignersFile == "" && c.Trust.KeyringFile == "" {
			p.errorf("trust.policy", "%q needs trust.allowed_signers_file (SSH keys) or trust.keyring_file (OpenPGP keys)", c.Trust.Policy)
		}
	}
	if t := p.table(raw, "status"); t != nil {
		const pre = "status"
		p.known(t, pre, "notes", "interval", "signing_key_file")
		p.boolean(t, pre, "notes", &c.Status.Notes)
		p.duration(t, pre, "interval", &c.Status.Interval, MinStatusInterval, 0)
		p.str(t, pre, "signing_key_file", &c.Status.SigningKeyFile)
		c.Status.SigningKeyFile = p.absPath("status.signing_key_file", c.Status.SigningKeyFile)
		if c.Status.Notes && c.Status.SigningKeyFile == "" {
			p.errorf("status.signing_key_file", "is required when status.notes is on (the notes commits are signed with the agent's own key)")
		}
	}
	if t := p.table(raw, "secrets"); t != nil {
		const pre = "secrets"
		p.known(t, pre, "dir")
		p.str(t, pre, "dir", &c.Secrets.Dir)
		c.Secrets.Dir = p.absPath("secrets.dir", c.Secrets.Dir)
	}
	if t := p.table(raw, "quarantine"); t != nil {
		const pre = "quarantine"
		p.known(t, pre, "after", "image_deadline")
		var n int64
		if p.integer(t, pre, "after", &n) {
			if n < 1 || n > MaxQuarantineAfter {
				p.errorf("quarantine.after", "%d is outside 1-%d", n, MaxQuarantineAfter)
			} else {
				c.Quarantine.After = int(n)
			}
		}
		p.duration(t, pre, "image_deadline", &c.Quarantine.ImageDeadline, time.Second, 0)
	}
}

// checkTrustHost checks the files the trust, status and secrets tables
// name, at start.
func (c *Config) checkTrustHost() ConfigErrors {
	var errs ConfigErrors
	add := func(key, format string, args ...any) {
		errs = append(errs, &FieldError{File: c.File, Key: key, Message: fmt.Sprintf(format, args...)})
	}
	for _, f := range []struct{ key, path string }{
		{"trust.allowed_signers_file", c.Trust.AllowedSignersFile},
		{"trust.keyring_file", c.Trust.KeyringFile},
		{"status.signing_key_file", c.Status.SigningKeyFile},
	} {
		if msg := fileProblem(f.path); msg != "" {
			add(f.key, "%s", msg)
		}
	}
	if d := c.Secrets.Dir; d != "" {
		fi, err := os.Stat(d)
		switch {
		case err != nil:
			add("secrets.dir", "%v", err)
		case !fi.IsDir():
			add("secrets.dir", "%s is not a directory", d)
		case fi.Mode().Perm()&0o077 != 0:
			add("secrets.dir", "%s has mode %04o; it must not be accessible by group or others (chmod 700)", d, fi.Mode().Perm())
		}
	}
	return errs
}
