package spec

import (
	"fmt"
	"regexp"
	"slices"
	"strings"
)

// SecretPrefix starts an env value that references a node-local secret:
// "DB_PASSWORD=secret:db-password". The whole value is the reference; a
// literal value that starts with "secret:" is written with the escape
// "secret::" ("X=secret::abc" sets X to "secret:abc").
const SecretPrefix = "secret:"

// secretNameRe is a secret's name: a file name in the node's secrets
// directory that is safe everywhere (no '/', no leading '.', no ':' so that
// "secret:<scheme>:..." stays free for other sources later), short enough to
// show in a plan line.
var secretNameRe = regexp.MustCompile(`^[a-z0-9][a-z0-9_.-]{0,62}$`)

// ValidSecretName reports whether name may name a secret. The agent uses it
// to decide which files of its secrets directory are secrets.
func ValidSecretName(name string) bool { return secretNameRe.MatchString(name) }

// parseEnvValue splits an env value into a literal value or a secret
// reference. problem is set when the value is a malformed reference.
func parseEnvValue(v string) (literal, secret, problem string) {
	rest, ok := strings.CutPrefix(v, SecretPrefix)
	if !ok {
		return v, "", ""
	}
	if esc, ok := strings.CutPrefix(rest, ":"); ok {
		return SecretPrefix + esc, "", ""
	}
	if scheme, _, ok := strings.Cut(rest, ":"); ok && secretNameRe.MatchString(scheme) {
		return "", "", fmt.Sprintf("%s: only node-local secrets (secret:NAME) are supported; "+
			"\"secret:<scheme>:...\" is reserved (a literal value starting with %q is written %q)",
			quoteShort(v), SecretPrefix, SecretPrefix+":")
	}
	if !secretNameRe.MatchString(rest) {
		return "", "", fmt.Sprintf("%s is not a valid secret name: lowercase letters, digits, '_', '.' and '-', "+
			"starting with a letter or digit, at most 63 characters (a literal value starting with %q is written %q)",
			quoteShort(rest), SecretPrefix, SecretPrefix+":")
	}
	return "", rest, ""
}

// DigestPrefix starts every secret digest: HMAC-SHA256 under a key only
// the node holds, so a published digest does not let anyone test guesses
// of the value.
const DigestPrefix = "hmac-sha256:"

// NodeSecrets is what a node knows about its secrets without giving any
// value away: the keyed digest of every usable secret and why the others
// are unusable. The agent builds it before planning; status notes and the
// agent's snapshot carry it, so a plan computed elsewhere binds the same
// digests and gets the same hash.
type NodeSecrets struct {
	// Dir is where the node reads its secrets ("" when it has none), for
	// messages only.
	Dir string `json:"dir,omitempty"`
	// Digests maps a secret's name to DigestPrefix + hex.
	Digests map[string]string `json:"digests,omitempty"`
	// Errors maps a secret's name to why it cannot be used (permissions,
	// size); never its content.
	Errors map[string]string `json:"errors,omitempty"`
}

// SecretNames returns the names of the secrets s references, sorted,
// without duplicates.
func SecretNames(s *Service) []string {
	var names []string
	for _, c := range s.Components {
		for _, e := range c.Env {
			if e.Secret != "" {
				names = append(names, e.Secret)
			}
		}
	}
	slices.Sort(names)
	return slices.Compact(names)
}

// BindSecrets returns s with every secret reference's digest set from ns,
// so that the definition (and spec.Hash, the plan and the runtime hash)
// changes when a secret's value does. A reference the node cannot satisfy
// is a diagnostic naming the secret, the directory and the variable; s is
// then returned unchanged. s itself is never modified.
func BindSecrets(s Service, ns *NodeSecrets) (Service, Diagnostics) {
	if len(SecretNames(&s)) == 0 {
		return s, nil
	}
	var diags Diagnostics
	comps := slices.Clone(s.Components)
	for ci := range comps {
		c := &comps[ci]
		if !slices.ContainsFunc(c.Env, func(e EnvVar) bool { return e.Secret != "" }) {
			continue
		}
		c.Env = slices.Clone(c.Env)
		for ei := range c.Env {
			e := &c.Env[ei]
			if e.Secret == "" {
				continue
			}
			d, msg := ns.digest(e.Secret)
			if msg != "" {
				diags = append(diags, Diagnostic{File: s.File, Service: s.Name, Severity: SeverityError,
					Path: fmt.Sprintf("components[%d].env[%d]", ci, ei), Message: e.Name + ": " + msg})
				continue
			}
			e.SecretDigest = d
		}
	}
	if len(diags) > 0 {
		return s, diags
	}
	s.Components = comps
	return s, nil
}

// digest returns the digest of name, or why there is none.
func (ns *NodeSecrets) digest(name string) (string, string) {
	switch {
	case ns == nil || ns.Dir == "":
		return "", fmt.Sprintf("secret %s: this node has no secrets directory (set [secrets] dir in the agent configuration)", name)
	case ns.Errors[name] != "":
		return "", fmt.Sprintf("secret %s in %s cannot be used: %s", name, ns.Dir, ns.Errors[name])
	case ns.Digests[name] == "":
		return "", fmt.Sprintf("secret %s not found in %s on this node", name, ns.Dir)
	}
	return ns.Digests[name], ""
}

// Display is how plans show a variable: a literal value quoted, a secret
// by its name and a prefix of its keyed digest, never its value.
func (e EnvVar) Display() string {
	if e.Secret == "" {
		return fmt.Sprintf("%q", e.Value)
	}
	d := e.SecretDigest
	if d == "" {
		return "secret " + e.Secret + " (digest unknown here)"
	}
	// 16 hex digits (64 bits) tell two values apart in any plan anyone
	// will read; the full digest is in the definition and the hashes.
	if len(d) > len(DigestPrefix)+16 {
		d = d[:len(DigestPrefix)+16] + "…"
	}
	return "secret " + e.Secret + " " + d
}
