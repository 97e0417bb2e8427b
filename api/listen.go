package api

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"syscall"
	"time"
)

// DefaultSocket is where the agent listens unless configured otherwise.
const DefaultSocket = "/run/mcp/mcp.sock"

// ErrInUse is returned by CreateSocket when another process (another agent)
// is serving on the socket path.
var ErrInUse = errors.New("socket in use")

// SocketMode is the socket's permission bits: 0600 (root only) unless a
// group is configured, then 0660 (root and that group).
func SocketMode(group string) os.FileMode {
	if group != "" {
		return 0o660
	}
	return 0o600
}

// Listen creates the socket (see CreateSocket) and serves s on it until ctx
// is done; the socket is removed on the way out.
func (s *Server) Listen(ctx context.Context, socketPath string, mode os.FileMode, group string) error {
	l, err := CreateSocket(ctx, socketPath, mode, group)
	if err != nil {
		return err
	}
	return s.Serve(ctx, l)
}

// Serve serves s on l until ctx is done, then shuts down: requests in flight
// (a followed log, a sync waiting for its reconcile) see their context end,
// and l is closed, which removes a socket made by CreateSocket.
func (s *Server) Serve(ctx context.Context, l net.Listener) error {
	srv := &http.Server{
		Handler:           s,
		ReadHeaderTimeout: 10 * time.Second,
		// Request contexts derive from ctx so that shutting the agent down
		// ends long requests instead of waiting on them.
		BaseContext: func(net.Listener) context.Context { return ctx },
		ErrorLog:    slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(l) }()
	select {
	case err := <-errc:
		l.Close()
		return fmt.Errorf("serve api on %s: %w", l.Addr(), err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		_ = srv.Close() // the graceful shutdown timed out: cut what is left
	}
	if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("serve the api: %w", err)
	}
	return nil
}

// CreateSocket creates a Unix socket at path with the given mode (0: the
// SocketMode default) and, when group is set, owned by that group (a name or
// a numeric id). A socket left behind by a dead agent is replaced; one that
// a live process answers on is refused with ErrInUse; a path that is not a
// socket is never touched. The parent directory is created if missing.
//
// The socket is bound inside a private temporary directory, given its mode
// and group there, and only then renamed into place, so it is never
// reachable with the wrong permissions. Closing the listener removes it.
func CreateSocket(ctx context.Context, path string, mode os.FileMode, group string) (net.Listener, error) {
	if mode == 0 {
		mode = SocketMode(group)
	}
	gid := -1
	if group != "" {
		var err error
		if gid, err = lookupGroup(group); err != nil {
			return nil, fmt.Errorf("api socket group: %w", err)
		}
	}
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("create api socket directory: %w", err)
	}
	if err := removeStale(ctx, path); err != nil {
		return nil, err
	}
	tmpDir, err := os.MkdirTemp(dir, ".mcp-sock-")
	if err != nil {
		return nil, fmt.Errorf("create api socket: %w", err)
	}
	defer os.RemoveAll(tmpDir)
	tmp := filepath.Join(tmpDir, "s")
	l, err := net.ListenUnix("unix", &net.UnixAddr{Name: tmp, Net: "unix"})
	if err != nil {
		return nil, fmt.Errorf("create api socket: %w", err)
	}
	l.SetUnlinkOnClose(false) // it is unlinked by its final name, below
	fail := func(err error) (net.Listener, error) {
		l.Close()
		return nil, err
	}
	if err := os.Chmod(tmp, mode); err != nil {
		return fail(fmt.Errorf("set api socket mode: %w", err))
	}
	if gid >= 0 {
		if err := os.Chown(tmp, -1, gid); err != nil {
			return fail(fmt.Errorf("set api socket group %s: %w", group, err))
		}
	}
	if err := os.Rename(tmp, path); err != nil {
		return fail(fmt.Errorf("create api socket: %w", err))
	}
	fi, err := os.Lstat(path)
	if err != nil {
		return fail(fmt.Errorf("create api socket: %w", err))
	}
	return &socketListener{UnixListener: l, path: path, fi: fi}, nil
}

// removeStale removes a socket nobody answers on. It refuses to remove
// anything else.
func removeStale(ctx context.Context, path string) error {
	fi, err := os.Lstat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("check api socket: %w", err)
	}
	if fi.Mode().Type() != fs.ModeSocket {
		return fmt.Errorf("%s exists and is not a socket: refusing to replace it", path)
	}
	d := net.Dialer{Timeout: 2 * time.Second}
	conn, err := d.DialContext(ctx, "unix", path)
	if err == nil {
		conn.Close()
		return fmt.Errorf("another process (another mcp agent?) is listening on %s: %w", path, ErrInUse)
	}
	if !errors.Is(err, syscall.ECONNREFUSED) {
		return fmt.Errorf("check api socket %s: %w", path, err)
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("remove stale api socket: %w", err)
	}
	return nil
}

func lookupGroup(group string) (int, error) {
	if id, err := strconv.Atoi(group); err == nil && id >= 0 {
		return id, nil
	}
	g, err := user.LookupGroup(group)
	if err != nil {
		return -1, fmt.Errorf("group %q: %w", group, err)
	}
	id, err := strconv.Atoi(g.Gid)
	if err != nil {
		return -1, fmt.Errorf("group %q has non-numeric id %q", group, g.Gid)
	}
	return id, nil
}

// socketListener removes its socket on Close, unless the path has been
// taken over by another socket since (then it is not ours to remove).
type socketListener struct {
	*net.UnixListener
	path string
	fi   os.FileInfo
}

func (l *socketListener) Close() error {
	err := l.UnixListener.Close()
	if fi, serr := os.Lstat(l.path); serr == nil && os.SameFile(fi, l.fi) {
		if rerr := os.Remove(l.path); rerr != nil && err == nil {
			err = rerr
		}
	}
	return err
}
