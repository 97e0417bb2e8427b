package gitsync

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"os"
	"strconv"
	"sync"
	"time"

	"github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/config"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/go-git/go-git/v5/plumbing/transport"
	githttp "github.com/go-git/go-git/v5/plumbing/transport/http"
	gitssh "github.com/go-git/go-git/v5/plumbing/transport/ssh"
	"github.com/go-git/go-git/v5/storage/memory"
	"golang.org/x/crypto/ssh"
)

// Hash is a commit id. It is go-git's type, so Verifiers and callers that
// use go-git need no conversion; store it as Hash.String().
type Hash = plumbing.Hash

// ParseHash reads a full hex commit id, as stored by the registry.
func ParseHash(s string) (Hash, error) {
	if !plumbing.IsHash(s) {
		return Hash{}, fmt.Errorf("parse commit id %q: not a full hex object id", s)
	}
	return plumbing.NewHash(s), nil
}

// Revision is one fetched (and, with a Verifier, verified) commit.
type Revision struct {
	Commit Hash
	// Tree is the commit's tree, read from Git objects (see TreeFS).
	Tree fs.FS
	// Time is the committer time: when the commit was made, which is what
	// "how old is the deployed state" means.
	Time time.Time
	// Author is "Name <email>".
	Author  string
	Message string
}

// Verifier decides whether a fetched commit may be used. It is called
// before Fetch or Revision returns the commit, so a refused commit's tree
// never reaches the spec loader. The error is returned wrapped in
// *VerifyError. The commit can walk its own parents (c.Parents()), so a
// policy that checks every commit since the applied one needs nothing
// more; Verify runs under the Source's lock and must not call the Source.
type Verifier interface {
	Verify(ctx context.Context, c *object.Commit) error
}

// VerifierFunc adapts a function to Verifier.
type VerifierFunc func(ctx context.Context, c *object.Commit) error

// Verify calls f.
func (f VerifierFunc) Verify(ctx context.Context, c *object.Commit) error { return f(ctx, c) }

// Source follows one branch of one repository. Its methods are safe for
// concurrent use.
type Source struct {
	cfg      Config
	ep       *transport.Endpoint
	scheme   scheme
	url      string // redacted, for messages
	verifier Verifier
	log      *slog.Logger

	// mu serialises all access to repo: go-git's filesystem storage is not
	// safe for concurrent use (shared pack file handles and caches), and
	// Revision trees read from it lazily.
	mu   sync.Mutex
	repo *git.Repository
}

// New validates cfg and opens (or creates) the cache under cfg.CacheDir.
// It does not contact the remote, so an agent starts while the remote is
// down.
func New(cfg Config, opts ...Option) (*Source, error) {
	ep, sch, err := cfg.validate()
	if err != nil {
		return nil, err
	}
	s := &Source{cfg: cfg, ep: ep, scheme: sch, url: redactURL(cfg.URL)}
	for _, o := range opts {
		o(s)
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if err := os.MkdirAll(cfg.CacheDir, 0o700); err != nil {
		return nil, &ConfigError{"cache_dir", err.Error()}
	}
	repo, err := git.PlainOpen(cfg.CacheDir)
	if errors.Is(err, git.ErrRepositoryNotExists) {
		// Initialise only an empty directory: a cache_dir pointed at a
		// directory holding other things must not get a repository
		// written into it.
		if ents, rerr := os.ReadDir(cfg.CacheDir); rerr == nil && len(ents) > 0 {
			return nil, &ConfigError{"cache_dir", fmt.Sprintf("%s is neither empty nor a git repository; give mcp a directory of its own", cfg.CacheDir)}
		}
		repo, err = git.PlainInit(cfg.CacheDir, true)
	}
	if err != nil {
		return nil, &ConfigError{"cache_dir", fmt.Sprintf("open cache %s: %v", cfg.CacheDir, err)}
	}
	s.repo = repo
	return s, nil
}

// Config returns the configuration in use (with defaults filled in).
func (s *Source) Config() Config { return s.cfg }

// trackingRef is where the cache keeps what was last downloaded.
func (s *Source) trackingRef() plumbing.ReferenceName {
	return plumbing.NewRemoteReferenceName("origin", s.cfg.Branch)
}

// auth builds credentials for one operation. Files are read each time so
// that rotated passwords, keys and known_hosts take effect without a
// restart.
func (s *Source) auth(ctx context.Context) (transport.AuthMethod, error) {
	switch s.scheme {
	case schemeHTTP:
		if s.cfg.HTTPUsername == "" {
			return nil, nil
		}
		pw, err := readPasswordFile(s.cfg.HTTPPasswordFile)
		if err != nil {
			return nil, fmt.Errorf("git.http_password_file: %w", err)
		}
		return &githttp.BasicAuth{Username: s.cfg.HTTPUsername, Password: pw}, nil
	case schemeSSH:
		user := s.ep.User
		if user == "" {
			user = "git"
		}
		keys, err := gitssh.NewPublicKeysFromFile(user, s.cfg.SSHKeyFile, "")
		if err != nil {
			return nil, fmt.Errorf("git.ssh_key_file: %w", err)
		}
		db, err := gitssh.NewKnownHostsDb(s.cfg.KnownHostsFile)
		if err != nil {
			return nil, fmt.Errorf("git.known_hosts_file: %w", err)
		}
		port := s.ep.Port
		if port <= 0 {
			port = 22
		}
		keys.HostKeyCallback = db.HostKeyCallback()
		// Offer only the algorithms known_hosts has for this host, so the
		// server presents the key we can check.
		keys.HostKeyAlgorithms = db.HostKeyAlgorithms(net.JoinHostPort(s.ep.Host, strconv.Itoa(port)))
		timeout := 30 * time.Second
		if dl, ok := ctx.Deadline(); ok {
			if timeout = time.Until(dl); timeout <= 0 {
				return nil, context.DeadlineExceeded
			}
		}
		return &sshAuth{PublicKeys: keys, timeout: timeout}, nil
	}
	return nil, nil
}

// sshAuth bounds the ssh dial, which go-git does not tie to the context.
type sshAuth struct {
	*gitssh.PublicKeys
	timeout time.Duration
}

func (a *sshAuth) ClientConfig() (*ssh.ClientConfig, error) {
	c, err := a.PublicKeys.ClientConfig()
	if err != nil {
		return nil, err
	}
	c.Timeout = a.timeout
	return c, nil
}

// Head returns the remote branch head without downloading any object (the
// equivalent of git ls-remote): the cheap poll. ctx bounds it; give it a
// deadline, since a remote can accept a connection and never answer.
func (s *Source) Head(ctx context.Context) (Hash, error) {
	h, err := s.head(ctx)
	if err != nil {
		return Hash{}, remoteError("ls-remote", s.url, s.cfg.Branch, err)
	}
	return h, nil
}

func (s *Source) head(ctx context.Context) (Hash, error) {
	if s.scheme == schemeFile {
		return s.headLocal(ctx)
	}
	auth, err := s.auth(ctx)
	if err != nil {
		return Hash{}, err
	}
	opts := &git.ListOptions{Auth: auth}
	if s.scheme == schemeSSH {
		var done func()
		opts.ProxyOptions, done = withCtxDial(ctx)
		defer done()
	}
	rem := git.NewRemote(memory.NewStorage(), &config.RemoteConfig{Name: "origin", URLs: []string{s.cfg.URL}})
	refs, err := rem.ListContext(ctx, opts)
	if err != nil {
		return Hash{}, withCtxErr(ctx, err)
	}
	want := plumbing.NewBranchReferenceName(s.cfg.Branch)
	for _, r := range refs {
		if r.Name() == want && r.Type() == plumbing.HashReference {
			return r.Hash(), nil
		}
	}
	return Hash{}, ErrBranchNotFound
}

// headLocal reads the branch ref of a local repository directly. go-git's
// file transport would run git-upload-pack in a new process for every
// poll; reading the ref (loose or packed) gives the same answer, since git
// replaces refs atomically by rename.
func (s *Source) headLocal(ctx context.Context) (Hash, error) {
	if err := ctx.Err(); err != nil {
		return Hash{}, err
	}
	repo, err := git.PlainOpen(s.ep.Path)
	if err != nil {
		return Hash{}, err
	}
	ref, err := repo.Reference(plumbing.NewBranchReferenceName(s.cfg.Branch), true)
	if errors.Is(err, plumbing.ErrReferenceNotFound) {
		return Hash{}, ErrBranchNotFound
	}
	if err != nil {
		return Hash{}, err
	}
	return ref.Hash(), nil
}

// withCtxErr makes an error caused by the context ending say so (a closed
// connection is how an ssh operation is interrupted).
func withCtxErr(ctx context.Context, err error) error {
	if ce := ctx.Err(); ce != nil && !errors.Is(err, ce) {
		return fmt.Errorf("%w: %w", ce, err)
	}
	return err
}

// Local returns the head last downloaded into the cache, or the zero Hash
// when nothing was.
func (s *Source) Local() (Hash, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.local()
}

func (s *Source) local() (Hash, error) {
	ref, err := s.repo.Reference(s.trackingRef(), false)
	if errors.Is(err, plumbing.ErrReferenceNotFound) {
		return Hash{}, nil
	}
	if err != nil {
		return Hash{}, fmt.Errorf("read cache ref %s: %w", s.trackingRef(), err)
	}
	return ref.Hash(), nil
}

// Fetch brings the cache up to the remote branch head and returns that
// commit. When the remote head is already in the cache nothing but the
// ref list is transferred. With a Verifier, the commit is verified before
// it is returned.
func (s *Source) Fetch(ctx context.Context) (*Revision, error) {
	// Without a bound a stalled remote would hold the caller (the agent's
	// loop) forever: neither go-git's HTTP client nor the caller's context
	// has a deadline.
	timeout := s.cfg.Timeout
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	remote, err := s.head(ctx)
	if err != nil {
		return nil, remoteError("fetch", s.url, s.cfg.Branch, err)
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	local, err := s.local()
	if err != nil {
		return nil, err
	}
	head := local
	if remote != local || !s.hasCommit(local) {
		if head, err = s.fetch(ctx); err != nil {
			return nil, remoteError("fetch", s.url, s.cfg.Branch, err)
		}
	}

	rev, err := s.revision(ctx, head)
	if err != nil {
		var ve *VerifyError
		if errors.As(err, &ve) {
			return nil, err
		}
		return nil, fmt.Errorf("fetch %s %s: %w", s.url, s.cfg.Branch, err)
	}
	return rev, nil
}

// Revision returns a commit already in the cache, verified like Fetch
// does, without contacting the remote: an agent that starts while the
// remote is down can still read the tree of the commit it applied last.
// A commit that is not cached is an error wrapping ErrNotCached.
func (s *Source) Revision(ctx context.Context, h Hash) (*Revision, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.revision(ctx, h)
}

// ErrNotCached: the commit asked for has not been fetched.
var ErrNotCached = errors.New("commit not in the cache")

// revision verifies h and builds its Revision. Callers hold s.mu.
func (s *Source) revision(ctx context.Context, h Hash) (*Revision, error) {
	c, err := object.GetCommit(s.repo.Storer, h)
	if errors.Is(err, plumbing.ErrObjectNotFound) {
		return nil, fmt.Errorf("read commit %s: %w", h, ErrNotCached)
	}
	if err != nil {
		return nil, fmt.Errorf("read commit %s: %w", h, err)
	}
	if s.verifier != nil {
		if err := s.verifier.Verify(ctx, c); err != nil {
			return nil, &VerifyError{Commit: h, Err: err}
		}
	}
	tree, err := c.Tree()
	if err != nil {
		return nil, fmt.Errorf("read tree of %s: %w", h, err)
	}
	return &Revision{
		Commit:  h,
		Tree:    newTreeFS(s.repo.Storer, tree, c.Committer.When, &s.mu),
		Time:    c.Committer.When,
		Author:  c.Author.String(),
		Message: c.Message,
	}, nil
}

func (s *Source) hasCommit(h Hash) bool {
	if h.IsZero() {
		return false
	}
	_, err := object.GetCommit(s.repo.Storer, h)
	return err == nil
}

// fetch downloads the branch into the tracking ref and returns its head.
// Callers hold s.mu.
func (s *Source) fetch(ctx context.Context) (Hash, error) {
	auth, err := s.auth(ctx)
	if err != nil {
		return Hash{}, err
	}
	spec := config.RefSpec(fmt.Sprintf("+%s:%s", plumbing.NewBranchReferenceName(s.cfg.Branch), s.trackingRef()))
	rem := git.NewRemote(s.repo.Storer, &config.RemoteConfig{Name: "origin", URLs: []string{s.cfg.URL}, Fetch: []config.RefSpec{spec}})
	opts := &git.FetchOptions{
		RefSpecs: []config.RefSpec{spec},
		Auth:     auth,
		// Tags are not part of the desired state; following them would
		// download unrelated history.
		Tags:  git.NoTags,
		Force: true,
	}
	if s.scheme == schemeSSH {
		var done func()
		opts.ProxyOptions, done = withCtxDial(ctx)
		defer done()
	}
	err = rem.FetchContext(ctx, opts)
	if err != nil && !errors.Is(err, git.NoErrAlreadyUpToDate) {
		return Hash{}, withCtxErr(ctx, err)
	}
	// The branch may have moved again since Head; use what was fetched.
	h, err := s.local()
	if err != nil {
		return Hash{}, err
	}
	if h.IsZero() {
		return Hash{}, ErrBranchNotFound
	}
	return h, nil
}

// Movement is how the branch moved relative to the commit applied last.
type Movement int

const (
	// MoveNone: the head is the applied commit.
	MoveNone Movement = iota
	// MoveInitial: nothing was applied before.
	MoveInitial
	// MoveForward: the head descends from the applied commit.
	MoveForward
	// MoveBackwards: the head is a strict ancestor of the applied commit.
	MoveBackwards
	// MoveDiverged: history was rewritten; neither descends from the
	// other. Allowed (a rebase or amended commit is ordinary), but worth
	// reporting.
	MoveDiverged
	// MoveUnknown: the applied commit is not in the cache (the cache was
	// wiped, or the agent was pointed at another repository), so ancestry
	// cannot be checked. Allowed and reported.
	MoveUnknown
)

var movementNames = [...]string{"none", "initial", "forward", "backwards", "diverged", "unknown"}

func (m Movement) String() string {
	if int(m) < len(movementNames) {
		return movementNames[m]
	}
	return "Movement(" + strconv.Itoa(int(m)) + ")"
}

// Check tells how the branch moved from prev (the commit applied last;
// zero when none) to next (a fetched head). A backwards move returns
// *BackwardsError unless the config allows it; then it returns
// MoveBackwards and no error.
func (s *Source) Check(ctx context.Context, prev, next Hash) (Movement, error) {
	switch {
	case prev.IsZero():
		return MoveInitial, nil
	case prev == next:
		return MoveNone, nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	nc, err := object.GetCommit(s.repo.Storer, next)
	if err != nil {
		return 0, fmt.Errorf("check %s..%s: read commit %s: %w", short(prev), short(next), next, err)
	}
	pc, err := object.GetCommit(s.repo.Storer, prev)
	if errors.Is(err, plumbing.ErrObjectNotFound) {
		return MoveUnknown, nil
	}
	if err != nil {
		return 0, fmt.Errorf("check %s..%s: read commit %s: %w", short(prev), short(next), prev, err)
	}
	if ok, err := isAncestor(ctx, pc, nc); err != nil {
		return 0, fmt.Errorf("check %s..%s: %w", short(prev), short(next), err)
	} else if ok {
		return MoveForward, nil
	}
	if ok, err := isAncestor(ctx, nc, pc); err != nil {
		return 0, fmt.Errorf("check %s..%s: %w", short(prev), short(next), err)
	} else if ok {
		if s.cfg.AllowBackwards {
			return MoveBackwards, nil
		}
		return MoveBackwards, &BackwardsError{From: prev, To: next}
	}
	return MoveDiverged, nil
}

// isAncestor reports whether anc is reachable from desc, walking desc's
// history and stopping when ctx is done (large histories take a while).
func isAncestor(ctx context.Context, anc, desc *object.Commit) (bool, error) {
	iter := object.NewCommitPreorderIter(desc, nil, nil)
	defer iter.Close()
	for {
		if err := ctx.Err(); err != nil {
			return false, err
		}
		c, err := iter.Next()
		if errors.Is(err, io.EOF) {
			return false, nil
		}
		if err != nil {
			return false, err
		}
		if c.Hash == anc.Hash {
			return true, nil
		}
	}
}
