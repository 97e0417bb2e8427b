package registry

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"
)

// Errors callers match with errors.Is.
var (
	// ErrLocked means another process (normally the running agent) holds the
	// file. The message is written for the person who typed the command.
	ErrLocked = errors.New(`held by another process (is the agent running? use "mcp plan --socket" to ask it instead)`)
	// ErrNotExist is returned by a read-only Open of a missing file; callers
	// treat it as "nothing deployed". It also matches fs.ErrNotExist.
	ErrNotExist = fmt.Errorf("registry does not exist: %w", fs.ErrNotExist)
	// ErrNewerSchema means the file was written by a newer mcp.
	ErrNewerSchema = errors.New("schema is newer than this mcp understands")
	// ErrReadOnly is returned by any write to a registry opened read-only.
	ErrReadOnly = errors.New("registry is open read-only")
	// ErrNotFound is returned when a keyed record is missing.
	ErrNotFound = errors.New("not found")
)

// Defaults for the bounded buckets and the lock wait.
const (
	DefaultLockTimeout  = time.Second
	DefaultHistoryLimit = 100
	DefaultEventLimit   = 1000
	DefaultJournalKeep  = 256
)

// Registry is an open registry file. It is safe for concurrent use: bbolt
// allows many readers and serialises writers within the process.
type Registry struct {
	db       *bolt.DB
	path     string // the file the caller named (not a private copy)
	readOnly bool
	cleanup  func() error // removes a migrated private copy, if any
	cfg      config
}

type config struct {
	readOnly     bool
	lockTimeout  time.Duration
	historyLimit int
	eventLimit   int
	journalKeep  int
	now          func() time.Time
}

// Option configures Open.
type Option func(*config)

// ReadOnly opens the file without ever writing to it and with a shared lock,
// for `mcp plan --registry FILE`. A missing file is ErrNotExist.
func ReadOnly() Option { return func(c *config) { c.readOnly = true } }

// WithLockTimeout bounds how long Open waits for the file lock before
// failing with ErrLocked. Zero or negative keeps the default: bbolt would
// otherwise wait forever, which is exactly the hang this avoids.
func WithLockTimeout(d time.Duration) Option {
	return func(c *config) {
		if d > 0 {
			c.lockTimeout = d
		}
	}
}

// WithHistoryLimit keeps the last n reconcile records (n >= 1).
func WithHistoryLimit(n int) Option {
	return func(c *config) {
		if n > 0 {
			c.historyLimit = n
		}
	}
}

// WithEventLimit keeps the last n events (n >= 1).
func WithEventLimit(n int) Option {
	return func(c *config) {
		if n > 0 {
			c.eventLimit = n
		}
	}
}

// WithJournalKeep bounds the journal to n entries (n >= 0) by trimming the
// oldest finished ones; entries in intent are kept whatever the bound.
func WithJournalKeep(n int) Option {
	return func(c *config) {
		if n >= 0 {
			c.journalKeep = n
		}
	}
}

// WithClock replaces time.Now for the times the registry stamps itself
// (journal, events, quarantine), so tests can pin them.
func WithClock(now func() time.Time) Option {
	return func(c *config) {
		if now != nil {
			c.now = now
		}
	}
}

// Open opens (and, unless read-only, creates and migrates) the registry at
// path. The directory is created 0700 and the file 0600: the registry holds
// everything needed to rebuild the node's workloads.
func Open(path string, opts ...Option) (*Registry, error) {
	cfg := config{
		lockTimeout:  DefaultLockTimeout,
		historyLimit: DefaultHistoryLimit,
		eventLimit:   DefaultEventLimit,
		journalKeep:  DefaultJournalKeep,
		now:          time.Now,
	}
	for _, o := range opts {
		o(&cfg)
	}
	if cfg.readOnly {
		return openReadOnly(path, cfg)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("open registry %s: %w", path, err)
	}
	db, err := openBolt(path, &bolt.Options{Timeout: cfg.lockTimeout})
	if err != nil {
		return nil, err
	}
	if err := migrate(db); err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("open registry %s: %w", path, err)
	}
	return &Registry{db: db, path: path, cfg: cfg}, nil
}

// openReadOnly takes a shared lock. When the file's schema is older than
// this binary's, it migrates a private copy rather than the file itself, so
// reading never changes what the agent will find.
func openReadOnly(path string, cfg config) (*Registry, error) {
	db, err := openBolt(path, &bolt.Options{Timeout: cfg.lockTimeout, ReadOnly: true})
	if err != nil {
		return nil, err
	}
	var version int
	err = db.View(func(btx *bolt.Tx) error {
		var err error
		version, err = schemaVersion(btx)
		return err
	})
	if err == nil {
		err = checkNotNewer(version)
	}
	if err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("open registry %s: %w", path, err)
	}
	r := &Registry{db: db, path: path, readOnly: true, cfg: cfg}
	if version == currentVersion() {
		return r, nil
	}

	dir, err := os.MkdirTemp("", "mcp-registry-")
	if err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("open registry %s: copy for migration: %w", path, err)
	}
	copyPath := filepath.Join(dir, "registry.db")
	err = db.View(func(btx *bolt.Tx) error { return btx.CopyFile(copyPath, 0o600) })
	_ = db.Close()
	if err == nil {
		r.db, err = bolt.Open(copyPath, 0o600, &bolt.Options{Timeout: cfg.lockTimeout})
	}
	if err == nil {
		if err = migrate(r.db); err != nil {
			_ = r.db.Close()
		}
	}
	if err != nil {
		_ = os.RemoveAll(dir)
		return nil, fmt.Errorf("open registry %s: migrate private copy: %w", path, err)
	}
	r.cleanup = func() error { return os.RemoveAll(dir) }
	return r, nil
}

// openBolt maps bbolt's open failures onto the package's sentinels.
func openBolt(path string, o *bolt.Options) (*bolt.DB, error) {
	db, err := bolt.Open(path, 0o600, o)
	switch {
	case err == nil:
		return db, nil
	case errors.Is(err, berrors.ErrTimeout):
		return nil, fmt.Errorf("open registry %s: %w", path, ErrLocked)
	case o.ReadOnly && errors.Is(err, fs.ErrNotExist):
		return nil, fmt.Errorf("open registry %s: %w", path, ErrNotExist)
	default:
		return nil, fmt.Errorf("open registry %s: %w", path, err)
	}
}

// Path is the file the registry was opened from.
func (r *Registry) Path() string { return r.path }

// ReadOnly reports whether writes are refused.
func (r *Registry) ReadOnly() bool { return r.readOnly }

// Close releases the file lock.
func (r *Registry) Close() error {
	err := r.db.Close()
	if r.cleanup != nil {
		if cerr := r.cleanup(); err == nil {
			err = cerr
		}
	}
	if err != nil {
		return fmt.Errorf("close registry %s: %w", r.path, err)
	}
	return nil
}

// View runs fn in a read-only transaction.
func (r *Registry) View(ctx context.Context, fn func(tx *Tx) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return r.db.View(func(btx *bolt.Tx) error {
		return fn(&Tx{tx: btx, cfg: &r.cfg})
	})
}

// Update runs fn in one read-write transaction: everything fn changes is
// committed together or not at all (a lease and its journal entry, say).
func (r *Registry) Update(ctx context.Context, fn func(tx *Tx) error) error {
	if r.readOnly {
		return ErrReadOnly
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	return r.db.Update(func(btx *bolt.Tx) error {
		return fn(&Tx{tx: btx, cfg: &r.cfg})
	})
}

// viewValue reads one value in a read transaction: the shape of every
// single-value getter on Registry.
func viewValue[T any](ctx context.Context, r *Registry, read func(tx *Tx) (T, error)) (T, error) {
	var v T
	err := r.View(ctx, func(tx *Tx) error {
		var err error
		v, err = read(tx)
		return err
	})
	return v, err
}

// Snapshot reads the whole recorded state in one consistent transaction.
func (r *Registry) Snapshot(ctx context.Context) (Snapshot, error) {
	return viewValue(ctx, r, func(tx *Tx) (Snapshot, error) { return tx.Snapshot() })
}
