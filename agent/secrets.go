package agent

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"syscall"

	"metacircular.net/mcp/executor"
	"metacircular.net/mcp/planner"
	"metacircular.net/mcp/spec"
)

// Limits of the secrets directory.
const (
	// MaxSecretSize bounds one secret: Linux refuses a single environment
	// string over 128 KiB, and a secret is meant to be a password or a
	// token, not a file.
	MaxSecretSize = 64 << 10
	// MaxSecrets bounds how many files of the directory are read per
	// reconcile.
	MaxSecrets = 1000
	// secretKeyFile, in the state dir, holds the node's digest key.
	secretKeyFile = "secrets.key"
	secretKeySize = 32
	// digestContext separates these digests from any other use of the key
	// and names their format.
	digestContext = "mcp-secret-v1"
)

// SecretKeyPath is the file holding the key of the node's secret digests.
func (c *Config) SecretKeyPath() string { return filepath.Join(c.StateDir, secretKeyFile) }

// secretStore reads the node's secrets directory: one file per secret,
// named by the secret, owned by the agent's user and readable by nobody
// else, at most MaxSecretSize bytes; one trailing newline is not part of
// the value (so `echo pw > file` works).
//
// A value is identified by a keyed digest, HMAC-SHA256 under a random key
// created in the state dir on first use and never leaving the node, over
// the secret's name and value. The digests travel (plans, status notes,
// the registry, container labels through the runtime hash); the key and
// the values do not, so a published digest does not let anyone test
// guesses of a weak secret, and two secrets holding the same value do not
// show it.
//
// It is safe for concurrent use: the loop reads it while the API serves
// snapshots.
type secretStore struct {
	dir     string // "" when [secrets] dir is not set
	keyPath string

	mu  sync.Mutex
	key []byte
	// warned are the problems last logged (secret → message, "" for the
	// directory), so each is logged once.
	warned map[string]string
}

func newSecretStore(cfg *Config) *secretStore {
	return &secretStore{dir: cfg.Secrets.Dir, keyPath: cfg.SecretKeyPath()}
}

var _ executor.SecretSource = (*secretStore)(nil)

// scan digests every secret of the directory (not only the referenced
// ones: a plan computed elsewhere from the status note of an older commit
// must find the secrets a newer commit starts using). Secrets that cannot
// be used are listed with why. No value is kept.
func (s *secretStore) scan(ctx context.Context) (*spec.NodeSecrets, error) {
	ns := &spec.NodeSecrets{Dir: s.dir}
	if s.dir == "" {
		return ns, nil
	}
	entries, err := os.ReadDir(s.dir)
	if err != nil {
		return ns, fmt.Errorf("read secrets dir: %w", err)
	}
	ns.Digests = map[string]string{}
	n := 0
	for _, e := range entries {
		if err := ctx.Err(); err != nil {
			return ns, err
		}
		name := e.Name()
		// Other files (dotfiles, editor backups, names a reference cannot
		// spell) are not secrets.
		if !spec.ValidSecretName(name) {
			continue
		}
		if n++; n > MaxSecrets {
			return ns, fmt.Errorf("secrets dir %s holds more than %d secrets; the rest are not read", s.dir, MaxSecrets)
		}
		_, digest, err := s.Secret(ctx, name)
		if err != nil {
			if ns.Errors == nil {
				ns.Errors = map[string]string{}
			}
			ns.Errors[name] = err.Error()
			continue
		}
		ns.Digests[name] = digest
	}
	return ns, nil
}

// Secret reads one secret and returns its value and keyed digest. Errors
// say what is wrong with the file, never what it holds.
func (s *secretStore) Secret(ctx context.Context, name string) (string, string, error) {
	if s.dir == "" {
		return "", "", errors.New("no secrets directory ([secrets] dir)")
	}
	if !spec.ValidSecretName(name) {
		return "", "", fmt.Errorf("%q is not a valid secret name", name)
	}
	val, err := readSecretFile(filepath.Join(s.dir, name))
	if err != nil {
		return "", "", err
	}
	key, err := s.digestKey()
	if err != nil {
		return "", "", err
	}
	return string(val), secretDigest(key, name, val), nil
}

// readSecretFile opens without following a symbolic link (the directory's
// owner decides what is a secret, not a link's target) and checks the
// file it got, not the path, so the check and the read see one file.
func readSecretFile(path string) ([]byte, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NOFOLLOW|syscall.O_NONBLOCK, 0)
	if err != nil {
		if errors.Is(err, syscall.ELOOP) {
			return nil, errors.New("is a symbolic link; secrets must be regular files")
		}
		if errors.Is(err, fs.ErrNotExist) {
			return nil, errors.New("not found")
		}
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("is not a regular file (%s)", fi.Mode().Type())
	}
	if perm := fi.Mode().Perm(); perm&0o077 != 0 {
		return nil, fmt.Errorf("has mode %04o: readable or writable by group or others; chmod 600 it", perm)
	}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok && int(st.Uid) != os.Geteuid() {
		return nil, fmt.Errorf("is owned by uid %d, not by the agent's user (uid %d)", st.Uid, os.Geteuid())
	}
	if fi.Size() > MaxSecretSize {
		return nil, fmt.Errorf("is %d bytes, over the limit of %d", fi.Size(), MaxSecretSize)
	}
	val, err := io.ReadAll(io.LimitReader(f, MaxSecretSize+1))
	if err != nil {
		return nil, err
	}
	if len(val) > MaxSecretSize {
		return nil, fmt.Errorf("is over the limit of %d bytes", MaxSecretSize)
	}
	val = bytes.TrimSuffix(val, []byte("\n"))
	if bytes.IndexByte(val, 0) >= 0 {
		// The environment is NUL-terminated strings: the value would be cut.
		return nil, errors.New("holds a NUL byte, which an environment variable cannot carry")
	}
	return val, nil
}

// secretDigest is HMAC-SHA256(key, context NUL name NUL value).
func secretDigest(key []byte, name string, val []byte) string {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(digestContext))
	m.Write([]byte{0})
	m.Write([]byte(name))
	m.Write([]byte{0})
	m.Write(val)
	return spec.DigestPrefix + hex.EncodeToString(m.Sum(nil))
}

// digestKey loads the node's key, creating it on first use. Losing it
// (a new state dir) changes every digest, so every container with a
// secret is restarted once; nothing else depends on it.
func (s *secretStore) digestKey() ([]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.key != nil {
		return s.key, nil
	}
	key, err := os.ReadFile(s.keyPath)
	if errors.Is(err, fs.ErrNotExist) {
		key, err = createSecretKey(s.keyPath)
	}
	if err != nil {
		return nil, fmt.Errorf("secret digest key: %w", err)
	}
	if len(key) != secretKeySize {
		return nil, fmt.Errorf("secret digest key %s: %d bytes, want %d (remove it to make a new one)", s.keyPath, len(key), secretKeySize)
	}
	s.key = key
	return key, nil
}

func createSecretKey(path string) ([]byte, error) {
	key := make([]byte, secretKeySize)
	if _, err := rand.Read(key); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, err
	}
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return nil, err
	}
	_, werr := f.Write(key)
	serr := f.Sync()
	if err := errors.Join(werr, serr, f.Close()); err != nil {
		return nil, err
	}
	// A link, not a rename: if another process created the key meanwhile,
	// its key wins and this one is discarded.
	err = os.Link(tmp, path)
	_ = os.Remove(tmp)
	if errors.Is(err, fs.ErrExist) {
		return os.ReadFile(path)
	}
	return key, err
}

// bindSecrets is called with the planner input before planning: it binds
// the digests of the node's secrets (planner.BindSecrets), so a changed
// value is a change the plan shows and a missing secret fails only the
// services that reference it.
func (a *Agent) bindSecrets(ctx context.Context, in *planner.Input) {
	planner.BindSecrets(in, a.nodeSecrets(ctx))
}

// nodeSecrets scans the secrets directory; a directory that cannot be read
// is logged and counts as empty, so the services that need a secret fail
// with a message naming it and the others go on. A problem is logged when
// it first appears, not at every poll.
func (a *Agent) nodeSecrets(ctx context.Context) *spec.NodeSecrets {
	ns, err := a.secrets.scan(ctx)
	msgs := map[string]string{}
	if err != nil {
		msgs[""] = err.Error()
	}
	for name, e := range ns.Errors {
		msgs[name] = e
	}
	s := a.secrets
	s.mu.Lock()
	for _, name := range slices.Sorted(maps.Keys(msgs)) {
		if s.warned[name] == msgs[name] {
			continue
		}
		if name == "" {
			a.log.Warn("secrets", "dir", s.dir, "err", msgs[name])
		} else {
			a.log.Warn("secret cannot be used", "secret", name, "dir", s.dir, "err", msgs[name])
		}
	}
	s.warned = msgs
	s.mu.Unlock()
	return ns
}
