package gitsync

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/config"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/transport"
	"github.com/go-git/go-git/v5/storage"
)

// This file lets another part of the agent (the status notes) exchange
// single refs with the desired-state remote using the Source's URL and
// credentials. The refs and objects live in the caller's own repository
// (st), never in the Source's cache, so nothing here touches what the
// loop reads and the Source's lock is not taken.

// ErrStale: the remote ref was not at the value the push expected
// (someone else pushed first). Fetch, merge and push again.
var ErrStale = errors.New("remote ref moved (stale)")

// FetchRef fetches the remote ref name into st as ref into, forced, and
// returns its value; the zero Hash (and no error) when the remote has no
// such ref.
func (s *Source) FetchRef(ctx context.Context, st storage.Storer, name, into plumbing.ReferenceName) (Hash, error) {
	h, err := s.fetchRef(ctx, st, name, into)
	if err != nil {
		return Hash{}, remoteError("fetch", s.url, name.String(), err)
	}
	return h, nil
}

func (s *Source) fetchRef(ctx context.Context, st storage.Storer, name, into plumbing.ReferenceName) (Hash, error) {
	auth, err := s.auth(ctx)
	if err != nil {
		return Hash{}, err
	}
	rem := git.NewRemote(st, &config.RemoteConfig{Name: "origin", URLs: []string{s.cfg.URL}})
	lopts := &git.ListOptions{Auth: auth}
	if s.scheme == schemeSSH {
		var done func()
		lopts.ProxyOptions, done = withCtxDial(ctx)
		defer done()
	}
	refs, err := rem.ListContext(ctx, lopts)
	if errors.Is(err, transport.ErrEmptyRemoteRepository) {
		return Hash{}, nil
	}
	if err != nil {
		return Hash{}, withCtxErr(ctx, err)
	}
	found := false
	for _, r := range refs {
		if r.Name() == name {
			found = true
		}
	}
	if !found {
		_ = st.RemoveReference(into)
		return Hash{}, nil
	}
	spec := config.RefSpec("+" + name.String() + ":" + into.String())
	opts := &git.FetchOptions{RefSpecs: []config.RefSpec{spec}, Auth: auth, Tags: git.NoTags, Force: true}
	if s.scheme == schemeSSH {
		var done func()
		opts.ProxyOptions, done = withCtxDial(ctx)
		defer done()
	}
	if err := rem.FetchContext(ctx, opts); err != nil && !errors.Is(err, git.NoErrAlreadyUpToDate) {
		return Hash{}, withCtxErr(ctx, err)
	}
	ref, err := st.Reference(into)
	if err != nil {
		return Hash{}, fmt.Errorf("read fetched %s: %w", into, err)
	}
	return ref.Hash(), nil
}

// PushRef sets the remote ref name to the value of the same ref in st,
// replacing exactly expect: the zero Hash means the ref must not exist
// yet. Any other remote value fails with ErrStale, and the remote is left
// as it was (git's receive-pack compares and sets under its ref lock), so
// concurrent writers never overwrite each other. A replacement need not
// be a fast-forward.
func (s *Source) PushRef(ctx context.Context, st storage.Storer, name plumbing.ReferenceName, expect Hash) error {
	if err := s.pushRef(ctx, st, name, expect); err != nil {
		if errors.Is(err, ErrStale) {
			return fmt.Errorf("push %s %s: %w", s.url, name, err)
		}
		return remoteError("push", s.url, name.String(), err)
	}
	return nil
}

func (s *Source) pushRef(ctx context.Context, st storage.Storer, name plumbing.ReferenceName, expect Hash) error {
	auth, err := s.auth(ctx)
	if err != nil {
		return err
	}
	rem := git.NewRemote(st, &config.RemoteConfig{Name: "origin", URLs: []string{s.cfg.URL}})
	opts := &git.PushOptions{RemoteName: "origin", Auth: auth}
	if expect.IsZero() {
		// Creation: go-git refuses when the remote already has the ref
		// and its value is not in st; receive-pack refuses when the ref
		// appeared since the advertisement.
		opts.RefSpecs = []config.RefSpec{config.RefSpec(name.String() + ":" + name.String())}
	} else {
		// go-git compares the advertised value with the lease, which it
		// reads from the remote-tracking ref
		// refs/remotes/origin/<name>; set it to expect.
		lease := plumbing.ReferenceName("refs/remotes/origin/" + name.String())
		if err := st.SetReference(plumbing.NewHashReference(lease, expect)); err != nil {
			return fmt.Errorf("record lease: %w", err)
		}
		opts.RefSpecs = []config.RefSpec{config.RefSpec("+" + name.String() + ":" + name.String())}
		opts.ForceWithLease = &git.ForceWithLease{RefName: name, Hash: expect}
	}
	if s.scheme == schemeSSH {
		var done func()
		opts.ProxyOptions, done = withCtxDial(ctx)
		defer done()
	}
	err = rem.PushContext(ctx, opts)
	switch {
	case err == nil, errors.Is(err, git.NoErrAlreadyUpToDate):
		return nil
	case errors.Is(err, git.ErrForceNeeded), isStale(err):
		return fmt.Errorf("%w: %w", ErrStale, err)
	}
	return withCtxErr(ctx, err)
}

// isStale recognises the refusals that mean "someone else moved the ref":
// go-git's lease and fast-forward checks and receive-pack's lock
// compare report them only as text.
func isStale(err error) bool {
	msg := err.Error()
	for _, s := range []string{"non-fast-forward", "stale info", "failed to lock", "cannot lock ref", "failed to update ref", "fetch first", "already exists"} {
		if strings.Contains(msg, s) {
			return true
		}
	}
	return false
}
