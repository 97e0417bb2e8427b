package gitsync

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"syscall"

	"github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/transport"
	githttp "github.com/go-git/go-git/v5/plumbing/transport/http"
	"golang.org/x/crypto/ssh/knownhosts"
)

// Kinds of remote failure. Every error returned by Head and Fetch that
// came from the remote wraps exactly one of them, so the agent can tell
// "retry later" (ErrUnreachable) from "someone must fix the config".
var (
	// ErrUnreachable: the remote could not be reached or answered with a
	// server error. Temporary; retry with Backoff.
	ErrUnreachable = errors.New("remote unreachable")
	// ErrAuth: the remote refused the credentials (or asked for some).
	ErrAuth = errors.New("authentication failed")
	// ErrHostKey: the ssh host key is unknown or does not match
	// known_hosts.
	ErrHostKey = errors.New("ssh host key not trusted")
	// ErrRepositoryNotFound: no repository at that URL. It is go-git's own
	// sentinel, so messages do not say it twice.
	ErrRepositoryNotFound = transport.ErrRepositoryNotFound
	// ErrBranchNotFound: the repository has no such branch (or no
	// branches at all).
	ErrBranchNotFound = errors.New("branch not found")
)

// BackwardsError reports a branch whose head is now a strict ancestor of
// the commit applied last: someone force-pushed an older commit. Applying
// it would silently roll back deployments, so it is refused unless the
// config sets allow_backwards.
type BackwardsError struct {
	From, To Hash
}

func (e *BackwardsError) Error() string {
	return fmt.Sprintf("branch moved backwards from %s to its ancestor %s (force-push to an older commit); set git.allow_backwards to apply it",
		short(e.From), short(e.To))
}

// VerifyError wraps a Verifier's refusal with the commit it concerned.
type VerifyError struct {
	Commit Hash
	Err    error
}

func (e *VerifyError) Error() string {
	return fmt.Sprintf("commit %s not verified: %v", short(e.Commit), e.Err)
}

func (e *VerifyError) Unwrap() error { return e.Err }

func short(h Hash) string { return h.String()[:12] }

// classify returns the kind sentinel for an error from go-git's transport.
// It returns nil for errors it cannot place (they are wrapped as they are).
func classify(err error) error {
	var keyErr *knownhosts.KeyError
	var revoked *knownhosts.RevokedError
	var netErr net.Error
	var httpErr *githttp.Err
	var unexpected *plumbing.UnexpectedError
	switch {
	case errors.Is(err, context.Canceled):
		return nil
	case errors.Is(err, syscall.ENOSPC), errors.Is(err, syscall.EDQUOT), errors.Is(err, syscall.EROFS):
		// Writing the fetched pack into the local cache failed: the remote
		// is fine, and calling it unreachable would send the operator to
		// the wrong machine.
		return nil
	case errors.As(err, &keyErr), errors.As(err, &revoked):
		return ErrHostKey
	case errors.Is(err, transport.ErrAuthenticationRequired),
		errors.Is(err, transport.ErrAuthorizationFailed),
		// x/crypto/ssh reports a refused key only as text.
		strings.Contains(err.Error(), "ssh: unable to authenticate"):
		return ErrAuth
	case errors.Is(err, transport.ErrRepositoryNotFound), errors.Is(err, git.ErrRepositoryNotExists):
		return ErrRepositoryNotFound
	case errors.Is(err, transport.ErrEmptyRemoteRepository),
		errors.Is(err, git.NoMatchingRefSpecError{}):
		return ErrBranchNotFound
	case errors.As(err, &netErr), errors.Is(err, syscall.ECONNREFUSED),
		errors.Is(err, syscall.ECONNRESET), errors.Is(err, context.DeadlineExceeded):
		return ErrUnreachable
	case errors.As(err, &unexpected) && errors.As(unexpected.Err, &httpErr):
		if httpErr.StatusCode() >= 500 {
			return ErrUnreachable
		}
	}
	return nil
}

// remoteError wraps err as "op url branch: kind: err".
func remoteError(op, url, branch string, err error) error {
	if kind := classify(err); kind != nil && !errors.Is(err, kind) {
		return fmt.Errorf("%s %s %s: %w: %w", op, url, branch, kind, err)
	}
	return fmt.Errorf("%s %s %s: %w", op, url, branch, err)
}
