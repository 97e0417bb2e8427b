package statusnote

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sort"
	"strings"

	"github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/config"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/go-git/go-git/v5/plumbing/storer"
	"github.com/go-git/go-git/v5/storage/memory"
)

// Note is one node's record as found in Git.
type Note struct {
	Node string
	// Object is the desired-state commit the note is attached to.
	Object plumbing.Hash
	// NotesCommit is the tip of the node's notes ref.
	NotesCommit plumbing.Hash
	Record      *Record
}

// Notes are the notes refs of every node, read from one repository.
type Notes struct {
	st   storer.EncodedObjectStorer
	tips map[string]plumbing.Hash // node → notes commit
}

// Nodes lists the nodes that have a notes ref, sorted.
func (n *Notes) Nodes() []string {
	out := make([]string, 0, len(n.tips))
	for k := range n.tips {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// Latest returns the node's newest record (by its time) among all the
// notes in its ref. Notes that are not mcp records (an operator's
// annotation) are skipped.
func (n *Notes) Latest(node string) (*Note, error) {
	tip, ok := n.tips[node]
	if !ok {
		return nil, fmt.Errorf("node %q has no status notes (%s%s not found; nodes with notes: %s)", node, RefPrefix, node, strings.Join(orNone(n.Nodes()), ", "))
	}
	nt, err := readNotes(n.st, tip)
	if err != nil {
		return nil, err
	}
	var best *Note
	for obj, blob := range nt.notes {
		b, err := readBlob(n.st, blob)
		if err != nil {
			return nil, err
		}
		r, err := Parse(b)
		if err != nil || r.Node != node {
			continue
		}
		if best == nil || r.Time.After(best.Record.Time) {
			best = &Note{Node: node, Object: obj, NotesCommit: tip, Record: r}
		}
	}
	if best == nil {
		return nil, fmt.Errorf("node %q: %s%s holds no mcp status record", node, RefPrefix, node)
	}
	return best, nil
}

// For returns the node's record attached to the commit obj.
func (n *Notes) For(node string, obj plumbing.Hash) (*Record, error) {
	tip, ok := n.tips[node]
	if !ok {
		return nil, fmt.Errorf("node %q has no status notes", node)
	}
	nt, err := readNotes(n.st, tip)
	if err != nil {
		return nil, err
	}
	blob, ok := nt.notes[obj]
	if !ok {
		return nil, fmt.Errorf("node %q has no note on %s", node, obj)
	}
	b, err := readBlob(n.st, blob)
	if err != nil {
		return nil, err
	}
	return Parse(b)
}

func orNone(s []string) []string {
	if len(s) == 0 {
		return []string{"none"}
	}
	return s
}

// ReadRepo reads the notes refs present in a repository's storage.
func ReadRepo(repo *git.Repository) (*Notes, error) {
	n := &Notes{st: repo.Storer, tips: map[string]plumbing.Hash{}}
	refs, err := repo.References()
	if err != nil {
		return nil, fmt.Errorf("list refs: %w", err)
	}
	err = refs.ForEach(func(r *plumbing.Reference) error {
		name := r.Name().String()
		if !strings.HasPrefix(name, RefPrefix) || r.Type() != plumbing.HashReference {
			return nil
		}
		node := strings.TrimPrefix(name, RefPrefix)
		if _, err := object.GetCommit(repo.Storer, r.Hash()); err == nil && !strings.Contains(node, "/") {
			n.tips[node] = r.Hash()
		}
		return nil
	})
	return n, err
}

// Open reads the current notes of every node from a repository named by
// a URL or a local directory. A local clone's notes are fetched from its
// origin remote (the notes a checkout holds are usually stale or absent);
// a local repository without origin (a bare "remote") is read directly.
// Fetched objects stay in memory; the directory is never written.
func Open(ctx context.Context, urlOrDir string) (*Notes, error) {
	url := urlOrDir
	if fi, err := os.Stat(urlOrDir); err == nil && fi.IsDir() {
		repo, err := git.PlainOpen(urlOrDir) // a bare repository or the top of a work tree
		if errors.Is(err, git.ErrRepositoryNotExists) {
			repo, err = git.PlainOpenWithOptions(urlOrDir, &git.PlainOpenOptions{DetectDotGit: true})
		}
		if err != nil {
			return nil, fmt.Errorf("open %s: %w", urlOrDir, err)
		}
		rem, err := repo.Remote("origin")
		if errors.Is(err, git.ErrRemoteNotFound) || (err == nil && len(rem.Config().URLs) == 0) {
			return ReadRepo(repo)
		}
		if err != nil {
			return nil, fmt.Errorf("open %s: %w", urlOrDir, err)
		}
		url = rem.Config().URLs[0]
	}
	mem, err := git.Init(memory.NewStorage(), nil)
	if err != nil {
		return nil, err
	}
	rem, err := mem.CreateRemote(&config.RemoteConfig{Name: "origin", URLs: []string{url}})
	if err != nil {
		return nil, fmt.Errorf("remote %s: %w", url, err)
	}
	spec := config.RefSpec("+" + RefPrefix + "*:" + RefPrefix + "*")
	err = rem.FetchContext(ctx, &git.FetchOptions{RefSpecs: []config.RefSpec{spec}, Tags: git.NoTags, Force: true})
	switch {
	case err == nil, errors.Is(err, git.NoErrAlreadyUpToDate):
	case errors.Is(err, git.NoMatchingRefSpecError{}), strings.Contains(err.Error(), "couldn't find remote ref"), strings.Contains(err.Error(), "remote repository is empty"):
		// No node has written yet.
	default:
		return nil, fmt.Errorf("fetch status notes from %s: %w", url, err)
	}
	return ReadRepo(mem)
}
