package statusnote

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"time"

	"github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/go-git/go-git/v5/storage"

	gitsync "metacircular.net/mcp/sync"
)

// RefPrefix is where the notes refs of all nodes live.
const RefPrefix = "refs/notes/mcp/"

// Ref is a node's notes ref.
func Ref(node string) plumbing.ReferenceName { return plumbing.ReferenceName(RefPrefix + node) }

// Remote exchanges single refs with the desired-state remote;
// *gitsync.Source implements it with the agent's git credentials.
type Remote interface {
	FetchRef(ctx context.Context, st storage.Storer, name, into plumbing.ReferenceName) (plumbing.Hash, error)
	PushRef(ctx context.Context, st storage.Storer, name plumbing.ReferenceName, expect plumbing.Hash) error
}

var _ Remote = (*gitsync.Source)(nil)

// Commit message trailers that tell writers what a notes commit is.
const (
	trailerNode = "mcp-node: "
	trailerKind = "mcp-kind: "
	kindChange  = "change"
	kindLive    = "liveness"
)

// maxAttempts bounds the fetch-merge-push loop against a busy ref.
const maxAttempts = 8

// Writer publishes one node's records. Its methods are safe for concurrent
// use; writes run one at a time (go-git's storage is not safe for
// concurrent use).
type Writer struct {
	mu     sync.Mutex
	node   string
	remote Remote
	st     storage.Storer
	signer Signer
	now    func() time.Time
}

// NewWriter keeps its objects in a private bare repository at dir
// (created if missing): the agent's status.git, never the sync cache.
func NewWriter(node, dir string, remote Remote, signer Signer) (*Writer, error) {
	repo, err := git.PlainOpen(dir)
	if errors.Is(err, git.ErrRepositoryNotExists) {
		repo, err = git.PlainInit(dir, true)
	}
	if err != nil {
		return nil, fmt.Errorf("open status repository %s: %w", dir, err)
	}
	return &Writer{node: node, remote: remote, st: repo.Storer, signer: signer, now: time.Now}, nil
}

// Result says what Write did.
type Result struct {
	// Commit is the notes commit pushed (zero when nothing was written).
	Commit plumbing.Hash
	// Liveness: the record only refreshed the times of the one there.
	Liveness bool
	// Replaced: the new commit replaced the previous liveness commit.
	Replaced bool
	// Attempts is how many fetch-merge-push rounds it took.
	Attempts int
}

// Write attaches rec to the commit it names (rec.AppliedCommit) in the
// node's notes ref on the remote. See the package doc for the merge and
// liveness rules.
func (w *Writer) Write(ctx context.Context, rec *Record) (Result, error) {
	if !plumbing.IsHash(rec.AppliedCommit) {
		return Result{}, fmt.Errorf("write status note: %q is not a commit id", rec.AppliedCommit)
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	obj := plumbing.NewHash(rec.AppliedCommit)
	rec.SchemaVersion = SchemaVersion
	rec.Node = w.node
	data, err := rec.Marshal()
	if err != nil {
		return Result{}, err
	}
	ref := Ref(w.node)
	track := plumbing.ReferenceName("refs/mcp-remote/" + strings.TrimPrefix(ref.String(), "refs/"))
	var res Result
	for res.Attempts < maxAttempts {
		res.Attempts++
		tip, err := w.remote.FetchRef(ctx, w.st, ref, track)
		if err != nil {
			return res, fmt.Errorf("write status note: %w", err)
		}
		commit, live, replaced, skip, err := w.build(tip, obj, rec, data)
		if err != nil {
			return res, fmt.Errorf("write status note: %w", err)
		}
		if skip {
			return res, nil // a newer record is already there
		}
		if err := w.st.SetReference(plumbing.NewHashReference(ref, commit)); err != nil {
			return res, fmt.Errorf("write status note: set %s: %w", ref, err)
		}
		err = w.remote.PushRef(ctx, w.st, ref, tip)
		if errors.Is(err, gitsync.ErrStale) {
			// Someone else pushed: start over from their value after a
			// short random pause, so two writers do not collide again.
			select {
			case <-ctx.Done():
				return res, ctx.Err()
			case <-time.After(time.Duration(rand.Int64N(int64(50*time.Millisecond) * int64(res.Attempts)))):
			}
			continue
		}
		if err != nil {
			return res, fmt.Errorf("write status note: %w", err)
		}
		res.Commit, res.Liveness, res.Replaced = commit, live, replaced
		return res, nil
	}
	return res, fmt.Errorf("write status note: %s kept moving; gave up after %d attempts", ref, maxAttempts)
}

// build makes the notes commit adding data for obj on top of tip.
func (w *Writer) build(tip, obj plumbing.Hash, rec *Record, data []byte) (commit plumbing.Hash, live, replaced, skip bool, err error) {
	nt, err := readNotes(w.st, tip)
	if err != nil {
		return plumbing.ZeroHash, false, false, false, err
	}
	var parents []plumbing.Hash
	if !tip.IsZero() {
		parents = []plumbing.Hash{tip}
	}
	if old, ok := nt.notes[obj]; ok {
		if b, err := readBlob(w.st, old); err == nil {
			if prev, err := Parse(b); err == nil {
				if prev.Time.After(rec.Time) {
					return plumbing.ZeroHash, false, false, true, nil
				}
				live = prev.fingerprint() == rec.fingerprint()
			}
		}
	}
	if live {
		tc, err := object.GetCommit(w.st, tip)
		if err != nil {
			return plumbing.ZeroHash, false, false, false, fmt.Errorf("read %s: %w", tip, err)
		}
		if strings.Contains(tc.Message, "\n"+trailerNode+w.node+"\n") && strings.Contains(tc.Message, "\n"+trailerKind+kindLive+"\n") {
			parents, replaced = tc.ParentHashes, true
		}
	}
	blob, err := storeBlob(w.st, data)
	if err != nil {
		return plumbing.ZeroHash, false, false, false, err
	}
	nt.notes[obj] = blob
	tree, err := nt.write(w.st)
	if err != nil {
		return plumbing.ZeroHash, false, false, false, err
	}
	kind := kindChange
	if live {
		kind = kindLive
	}
	when := w.now()
	sig := object.Signature{Name: "mcp agent " + w.node, Email: "mcp-agent@" + w.node, When: when}
	c := &object.Commit{
		Author:       sig,
		Committer:    sig,
		TreeHash:     tree,
		ParentHashes: parents,
		Message: fmt.Sprintf("mcp status of %s for %s: %s\n\n%s%s\n%s%s\n",
			w.node, short(obj.String()), resultOf(rec), trailerNode, w.node, trailerKind, kind),
	}
	if w.signer != nil {
		payload := &plumbing.MemoryObject{}
		if err := c.EncodeWithoutSignature(payload); err != nil {
			return plumbing.ZeroHash, false, false, false, err
		}
		r, err := payload.Reader()
		if err != nil {
			return plumbing.ZeroHash, false, false, false, err
		}
		sig, err := w.signer.Sign(r)
		if err != nil {
			return plumbing.ZeroHash, false, false, false, err
		}
		c.PGPSignature = string(sig)
	}
	o := w.st.NewEncodedObject()
	if err := c.Encode(o); err != nil {
		return plumbing.ZeroHash, false, false, false, fmt.Errorf("encode notes commit: %w", err)
	}
	h, err := w.st.SetEncodedObject(o)
	return h, live, replaced, false, err
}

func resultOf(r *Record) string {
	if r.LastReconcile.Result == "" {
		return "no reconcile yet"
	}
	return r.LastReconcile.Result
}

func short(s string) string {
	if len(s) > 12 {
		return s[:12]
	}
	return s
}
