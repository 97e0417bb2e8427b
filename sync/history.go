package gitsync

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/object"
)

// maxHistoryFile caps how much of one file version FileVersions reads; the
// spec loader refuses larger files anyway.
const maxHistoryFile = 1 << 20

// FileVersions calls fn with the content of path at head and in every
// commit reachable from it that holds the file, once per distinct content,
// newest first (the order git log walks), until fn returns false. Commits
// whose tree lacks the file are skipped. It reads only the cache, never the
// remote, and stops when ctx is done: a long history takes a while, and
// the callers (the /srv hold, docs/multinode.md) ask only when a service
// is about to be deployed on a node for the first time.
func (s *Source) FileVersions(ctx context.Context, head Hash, path string, fn func(commit Hash, data []byte) bool) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, err := object.GetCommit(s.repo.Storer, head)
	if errors.Is(err, plumbing.ErrObjectNotFound) {
		return fmt.Errorf("read commit %s: %w", head, ErrNotCached)
	}
	if err != nil {
		return fmt.Errorf("read commit %s: %w", head, err)
	}
	iter := object.NewCommitPreorderIter(c, nil, nil)
	defer iter.Close()
	seen := map[plumbing.Hash]bool{}
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		c, err := iter.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("walk history of %s: %w", short(head), err)
		}
		tree, err := c.Tree()
		if err != nil {
			return fmt.Errorf("read tree of %s: %w", short(c.Hash), err)
		}
		entry, err := tree.FindEntry(path)
		if err != nil || !entry.Mode.IsFile() || seen[entry.Hash] {
			// Absent here (not yet created, or removed for a while), or
			// a version already handed out.
			continue
		}
		seen[entry.Hash] = true
		blob, err := object.GetBlob(s.repo.Storer, entry.Hash)
		if err != nil {
			return fmt.Errorf("read %s at %s: %w", path, short(c.Hash), err)
		}
		r, err := blob.Reader()
		if err != nil {
			return fmt.Errorf("read %s at %s: %w", path, short(c.Hash), err)
		}
		data, err := io.ReadAll(io.LimitReader(r, maxHistoryFile))
		r.Close()
		if err != nil {
			return fmt.Errorf("read %s at %s: %w", path, short(c.Hash), err)
		}
		if !fn(c.Hash, data) {
			return nil
		}
	}
}
