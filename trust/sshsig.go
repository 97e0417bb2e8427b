package trust

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/hiddeco/sshsig"
	"golang.org/x/crypto/ssh"
)

const sshSigArmorStart = "-----BEGIN SSH SIGNATURE-----"

// sshNamespace is the namespace git signs commits and tags in.
const sshNamespace = "git"

// AllowedSigner is one line of an allowed_signers file.
type AllowedSigner struct {
	Principals []string
	Key        ssh.PublicKey
	// Namespaces, when set, are the only namespaces the key may sign in.
	Namespaces []string
	// ValidAfter and ValidBefore bound the signing time (zero: open).
	ValidAfter, ValidBefore time.Time
	Line                    int
}

// AllowedSigners is a parsed allowed_signers file.
type AllowedSigners struct {
	File    string
	Signers []AllowedSigner
}

// LoadAllowedSigners reads and parses an allowed_signers file.
func LoadAllowedSigners(path string) (*AllowedSigners, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("trust.allowed_signers_file: %w", err)
	}
	as, err := ParseAllowedSigners(b)
	if err != nil {
		return nil, fmt.Errorf("trust.allowed_signers_file: %s: %w", path, err)
	}
	as.File = path
	return as, nil
}

// ParseAllowedSigners parses the ssh-keygen ALLOWED SIGNERS format. A line
// that cannot be parsed is an error naming it: silently skipping a
// mistyped key would make a trusted operator's pushes fail for no visible
// reason.
func ParseAllowedSigners(b []byte) (*AllowedSigners, error) {
	as := &AllowedSigners{}
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	n := 0
	for sc.Scan() {
		n++
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		principals, rest, err := cutPrincipals(line)
		if err != nil {
			return nil, fmt.Errorf("line %d: %w", n, err)
		}
		key, _, options, _, err := ssh.ParseAuthorizedKey([]byte(rest))
		if err != nil {
			return nil, fmt.Errorf("line %d: %w", n, err)
		}
		s := AllowedSigner{Principals: strings.Split(principals, ","), Key: key, Line: n}
		skip := false
		for _, o := range options {
			name, val, _ := strings.Cut(o, "=")
			val = strings.Trim(val, `"`)
			switch strings.ToLower(name) {
			case "cert-authority":
				skip = true // certificates are not supported
			case "namespaces":
				s.Namespaces = strings.Split(val, ",")
			case "valid-after":
				if s.ValidAfter, err = parseSSHTime(val); err != nil {
					return nil, fmt.Errorf("line %d: valid-after: %w", n, err)
				}
			case "valid-before":
				if s.ValidBefore, err = parseSSHTime(val); err != nil {
					return nil, fmt.Errorf("line %d: valid-before: %w", n, err)
				}
			default:
				return nil, fmt.Errorf("line %d: unknown option %q", n, name)
			}
		}
		if !skip {
			as.Signers = append(as.Signers, s)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	return as, nil
}

// cutPrincipals splits the first field (possibly quoted) from the rest.
func cutPrincipals(line string) (string, string, error) {
	if strings.HasPrefix(line, `"`) {
		end := strings.Index(line[1:], `"`)
		if end < 0 {
			return "", "", errors.New("unterminated quoted principals")
		}
		return line[1 : end+1], strings.TrimSpace(line[end+2:]), nil
	}
	i := strings.IndexAny(line, " \t")
	if i < 0 {
		return "", "", errors.New("no key after the principals")
	}
	return line[:i], strings.TrimSpace(line[i:]), nil
}

// parseSSHTime reads ssh-keygen's YYYYMMDD[HHMM[SS]][Z] (local time unless
// Z).
func parseSSHTime(s string) (time.Time, error) {
	loc := time.Local
	if strings.HasSuffix(s, "Z") || strings.HasSuffix(s, "z") {
		s, loc = s[:len(s)-1], time.UTC
	}
	layouts := map[int]string{8: "20060102", 12: "200601021504", 14: "20060102150405"}
	layout, ok := layouts[len(s)]
	if !ok {
		return time.Time{}, fmt.Errorf("%q is not YYYYMMDD[HHMM[SS]][Z]", s)
	}
	return time.ParseInLocation(layout, s, loc)
}

// allows reports whether the line trusts key for namespace ns at time t.
func (s *AllowedSigner) allows(key ssh.PublicKey, ns string, t time.Time) (bool, string) {
	if !bytes.Equal(s.Key.Marshal(), key.Marshal()) {
		return false, ""
	}
	if len(s.Namespaces) > 0 && !contains(s.Namespaces, ns) {
		return false, fmt.Sprintf("listed in allowed_signers line %d, but not for namespace %q", s.Line, ns)
	}
	if !s.ValidAfter.IsZero() && t.Before(s.ValidAfter) {
		return false, fmt.Sprintf("listed in allowed_signers line %d, but only valid after %s", s.Line, s.ValidAfter.Format(time.RFC3339))
	}
	if !s.ValidBefore.IsZero() && !t.Before(s.ValidBefore) {
		return false, fmt.Sprintf("listed in allowed_signers line %d, but only valid before %s", s.Line, s.ValidBefore.Format(time.RFC3339))
	}
	return true, ""
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// describeKey is how a key is named in messages: its SHA256 fingerprint
// and type, as ssh-keygen prints them.
func describeKey(k ssh.PublicKey) string {
	return ssh.FingerprintSHA256(k) + " (" + k.Type() + ")"
}

func sshSignerOf(armored string) string {
	sig, err := sshsig.Unarmor([]byte(armored))
	if err != nil {
		return "an unreadable SSH signature"
	}
	return describeKey(sig.PublicKey)
}

// verifyCommit checks an SSH-signed commit against the file.
func (as *AllowedSigners) verifyCommit(c *object.Commit) error {
	sig, err := sshsig.Unarmor([]byte(c.PGPSignature))
	if err != nil {
		return &Refusal{Commit: c.Hash, Kind: ErrBadSignature, Detail: "unreadable SSH signature: " + err.Error()}
	}
	who := describeKey(sig.PublicKey)
	if sig.Namespace != sshNamespace {
		return &Refusal{Commit: c.Hash, Kind: ErrBadSignature, Signer: who, Detail: fmt.Sprintf("signed for namespace %q, not %q", sig.Namespace, sshNamespace)}
	}
	detail := "not in allowed_signers"
	trusted := false
	for i := range as.Signers {
		ok, why := as.Signers[i].allows(sig.PublicKey, sshNamespace, c.Committer.When)
		if ok {
			trusted = true
			break
		}
		if why != "" {
			detail = why
		}
	}
	if !trusted {
		return &Refusal{Commit: c.Hash, Kind: ErrUntrusted, Signer: who, Detail: detail}
	}
	msg, err := payload(c)
	if err != nil {
		return err
	}
	if err := sshsig.Verify(msg, sig, sig.PublicKey, sig.HashAlgorithm, sshNamespace); err != nil {
		return &Refusal{Commit: c.Hash, Kind: ErrBadSignature, Signer: who, Detail: err.Error()}
	}
	return nil
}
