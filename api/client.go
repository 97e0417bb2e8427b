package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/user"
	"strconv"
	"syscall"
)

// ErrNoAgent means nothing is serving on the socket: it does not exist, or
// it is left over from an agent that is gone.
var ErrNoAgent = errors.New("no agent is listening")

// Client talks to the agent over its Unix socket. It is safe for concurrent
// use.
type Client struct {
	socket string
	hc     *http.Client
}

// NewClient returns a client for the agent listening on socketPath. It does
// not connect until a request is made.
func NewClient(socketPath string) *Client {
	c := &Client{socket: socketPath}
	tr := &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			conn, err := d.DialContext(ctx, "unix", socketPath)
			if err != nil {
				return nil, connError(socketPath, err)
			}
			return conn, nil
		},
		DisableCompression: true, // local socket: nothing to gain
	}
	// No overall timeout: requests end with their context, and a followed
	// log or a sync waiting for a long reconcile may legitimately run long.
	c.hc = &http.Client{Transport: tr}
	return c
}

// Socket is the path the client connects to.
func (c *Client) Socket() string { return c.socket }

// Error is an error answer from the agent. It matches ErrNotFound (404) and
// ErrUnavailable (503) with errors.Is.
type Error struct {
	StatusCode int
	Message    string
}

func (e *Error) Error() string { return e.Message }

// Is maps the HTTP status back to the sentinel the backend used.
func (e *Error) Is(target error) bool {
	switch target {
	case ErrNotFound:
		return e.StatusCode == http.StatusNotFound
	case ErrUnavailable:
		return e.StatusCode == http.StatusServiceUnavailable
	}
	return false
}

// ConnError is a failure to reach the agent at all, worded for the person
// running the CLI.
type ConnError struct {
	Socket string
	Err    error // the dial error
	msg    string
}

func (e *ConnError) Error() string { return e.msg }

// Unwrap exposes the dial error, and ErrNoAgent when nobody is listening.
func (e *ConnError) Unwrap() []error {
	if errors.Is(e.Err, fs.ErrNotExist) || errors.Is(e.Err, syscall.ECONNREFUSED) {
		return []error{ErrNoAgent, e.Err}
	}
	return []error{e.Err}
}

func connError(socket string, err error) error {
	ce := &ConnError{Socket: socket, Err: err}
	switch {
	case errors.Is(err, fs.ErrNotExist), errors.Is(err, syscall.ECONNREFUSED):
		ce.msg = fmt.Sprintf("no agent is listening on %s: is `mcp agent` running? (check --socket)", socket)
	case errors.Is(err, fs.ErrPermission):
		ce.msg = permissionMessage(socket)
	default:
		ce.msg = fmt.Sprintf("connect to the agent on %s: %v", socket, err)
	}
	return ce
}

// permissionMessage explains who may use the socket, from its mode and
// group.
func permissionMessage(socket string) string {
	fi, err := os.Stat(socket)
	if err != nil {
		return fmt.Sprintf("permission denied on %s: run as root, or as a member of the group set by [api] group in the agent config", socket)
	}
	group := "?"
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		group = strconv.FormatUint(uint64(st.Gid), 10)
		if g, err := user.LookupGroupId(group); err == nil {
			group = g.Name
		}
	}
	if fi.Mode().Perm()&0o060 == 0o060 {
		return fmt.Sprintf("permission denied on %s (mode %04o, group %s): run as root or as a member of group %s", socket, fi.Mode().Perm(), group, group)
	}
	return fmt.Sprintf("permission denied on %s (mode %04o, group %s): run as root, or set [api] group in the agent config to share the socket with a group", socket, fi.Mode().Perm(), group)
}

// Status returns the node's status: GET /v1/status.
func (c *Client) Status(ctx context.Context) (Status, error) {
	var st Status
	err := c.getJSON(ctx, "/v1/status", &st)
	return st, err
}

// ServiceStatus returns the node's status holding only the named service:
// GET /v1/status/{service}. An unknown service matches ErrNotFound.
func (c *Client) ServiceStatus(ctx context.Context, service string) (Status, error) {
	var st Status
	err := c.getJSON(ctx, "/v1/status/"+url.PathEscape(service), &st)
	return st, err
}

// Containers lists the containers mcp manages: GET /v1/containers.
func (c *Client) Containers(ctx context.Context) ([]Container, error) {
	var cl ContainerList
	err := c.getJSON(ctx, "/v1/containers", &cl)
	return cl.Containers, err
}

// Snapshot returns what the agent plans with: GET /v1/snapshot.
func (c *Client) Snapshot(ctx context.Context) (SnapshotResponse, error) {
	var s SnapshotResponse
	err := c.getJSON(ctx, "/v1/snapshot", &s)
	return s, err
}

// Sync asks for a reconcile now and waits for its outcome: POST /v1/sync.
func (c *Client) Sync(ctx context.Context) (SyncResult, error) {
	var res SyncResult
	resp, err := c.do(ctx, http.MethodPost, "/v1/sync")
	if err != nil {
		return res, err
	}
	defer resp.Body.Close()
	return res, decode(resp, "/v1/sync", &res)
}

// LogOptions select what Logs returns.
type LogOptions struct {
	// Lines is how many of the last lines to send; negative: all of them.
	Lines int
	// Follow keeps the stream open, sending lines as they are written,
	// until ctx is done.
	Follow bool
}

// Logs opens a component's log: GET /v1/logs/{service}/{component}. The
// caller closes the stream; with Follow it ends when ctx is done.
func (c *Client) Logs(ctx context.Context, service, component string, opts LogOptions) (io.ReadCloser, error) {
	q := url.Values{}
	if opts.Lines >= 0 {
		q.Set("n", strconv.Itoa(opts.Lines))
	}
	if opts.Follow {
		q.Set("follow", "1")
	}
	path := "/v1/logs/" + url.PathEscape(service) + "/" + url.PathEscape(component)
	if len(q) > 0 {
		path += "?" + q.Encode()
	}
	resp, err := c.do(ctx, http.MethodGet, path)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		defer resp.Body.Close()
		return nil, errorFrom(resp)
	}
	return resp.Body, nil
}

func (c *Client) getJSON(ctx context.Context, path string, v any) error {
	resp, err := c.do(ctx, http.MethodGet, path)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	return decode(resp, path, v)
}

func (c *Client) do(ctx context.Context, method, path string) (*http.Response, error) {
	// The host is a placeholder: the transport always dials the socket.
	req, err := http.NewRequestWithContext(ctx, method, "http://mcp-agent"+path, nil)
	if err != nil {
		return nil, fmt.Errorf("build request %s %s: %w", method, path, err)
	}
	req.Header.Set("Accept", "application/json")
	resp, err := c.hc.Do(req)
	if err != nil {
		var ce *ConnError
		if errors.As(err, &ce) {
			return nil, ce
		}
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return nil, fmt.Errorf("ask the agent on %s (%s %s): %w", c.socket, method, path, err)
	}
	return resp, nil
}

func decode(resp *http.Response, path string, v any) error {
	if resp.StatusCode != http.StatusOK {
		return errorFrom(resp)
	}
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		return fmt.Errorf("read the agent's answer to %s: %w", path, err)
	}
	return nil
}

// errorFrom turns an error answer into an *Error, keeping the agent's
// message when it sent one.
func errorFrom(resp *http.Response) error {
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	var eb errorBody
	if json.Unmarshal(body, &eb) == nil && eb.Error != "" {
		return &Error{StatusCode: resp.StatusCode, Message: eb.Error}
	}
	return &Error{StatusCode: resp.StatusCode, Message: fmt.Sprintf("agent answered %s", resp.Status)}
}
