package api

import (
	"context"
	"errors"
)

// Backend is what the API serves; the agent implements it. Methods are
// called concurrently, from the request's goroutine, with the request's
// context: a client that goes away cancels it.
type Backend interface {
	// Status reports the node and every service on it.
	Status(ctx context.Context) (Status, error)
	// Containers lists the containers mcp manages, sorted by ID.
	Containers(ctx context.Context) ([]Container, error)
	// Snapshot returns the recorded state and the features the agent plans
	// with.
	Snapshot(ctx context.Context) (SnapshotResponse, error)
	// Sync runs a reconcile now (or joins the one in progress) and returns
	// its outcome once it finished. It returns early with ctx's error when
	// ctx is done; the reconcile itself may go on.
	Sync(ctx context.Context) (SyncResult, error)
	// LogFile returns the path of the component's current log file. A
	// service or component the agent does not know is an error wrapping
	// ErrNotFound. The names have been checked by ValidName.
	LogFile(service, component string) (string, error)
}

// Errors a Backend wraps to choose the HTTP status; the Client maps the
// status back, so errors.Is works on both sides of the socket.
var (
	// ErrNotFound: the service, component or log file does not exist (404).
	ErrNotFound = errors.New("not found")
	// ErrUnavailable: the agent cannot answer now, e.g. it is shutting
	// down (503).
	ErrUnavailable = errors.New("agent unavailable")
)

// ValidName reports whether s can be a service or component name in a
// request path. It is deliberately looser than the spec's naming rules (the
// backend answers 404 for names it does not know) but never lets through
// anything that could escape a directory: no separators, no "." or "..".
func ValidName(s string) bool {
	if s == "" || len(s) > 128 || s == "." || s == ".." {
		return false
	}
	for _, c := range []byte(s) {
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case c == '-', c == '_', c == '.':
		default:
			return false
		}
	}
	return true
}
