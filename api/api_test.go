package api

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"metacircular.net/mcp/planner"
	"metacircular.net/mcp/registry"
)

// testBackend is a small in-memory Backend: the interface is the API's own,
// so this is an implementation of it, not a stand-in for an outside system.
type testBackend struct {
	mu         sync.Mutex
	status     Status
	containers []Container
	snapshot   SnapshotResponse
	logDir     string
	err        error // returned by every method when set
	syncs      int
	// syncHook, when set, runs inside Sync (to block, or to observe ctx).
	syncHook func(ctx context.Context) error
}

func (b *testBackend) Status(ctx context.Context) (Status, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.status, b.err
}

func (b *testBackend) Containers(ctx context.Context) ([]Container, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.containers, b.err
}

func (b *testBackend) Snapshot(ctx context.Context) (SnapshotResponse, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.snapshot, b.err
}

func (b *testBackend) Sync(ctx context.Context) (SyncResult, error) {
	if b.syncHook != nil {
		if err := b.syncHook(ctx); err != nil {
			return SyncResult{}, err
		}
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.err != nil {
		return SyncResult{}, b.err
	}
	b.syncs++
	rec := b.status.LastReconcile
	rec.Steps = b.syncs
	return SyncResult{Reconcile: rec, Services: b.status.Services}, nil
}

func (b *testBackend) LogFile(service, component string) (string, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	svc, ok := b.status.Service(service)
	if !ok {
		return "", fmt.Errorf("service %q: %w", service, ErrNotFound)
	}
	for _, c := range svc.Components {
		if c.Name == component {
			return filepath.Join(b.logDir, service+"."+component+".log"), nil
		}
	}
	return "", fmt.Errorf("service %q has no component %q: %w", service, component, ErrNotFound)
}

func newTestBackend(t *testing.T) *testBackend {
	t.Helper()
	t0 := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	return &testBackend{
		logDir: t.TempDir(),
		status: Status{
			Node: "n1", AgentVersion: "test", AppliedCommit: "abc123", Branch: "main",
			LastReconcile: Reconcile{Started: t0, Finished: t0.Add(2 * time.Second), Commit: "abc123", PlanHash: "sha256:feed", Result: ResultOK, Steps: 3},
			Services: []ServiceStatus{
				{Name: "web", State: StateRunning, Commit: "abc123", SpecHash: "h1", Components: []ComponentStatus{
					{Name: "web", Version: "v1", Image: "reg.example/web:v1", State: ComponentRunning, Slot: "a", Ports: map[string]int{"default": 10000}, ContainerID: "web.web.a"},
					{Name: "worker", Version: "v1", Image: "reg.example/worker:v1", State: ComponentRunning, Slot: "a"},
				}},
				{Name: "broken", State: StateInvalid, Diagnostics: []string{"services/broken.toml: components[0].image: missing"}},
			},
		},
		containers: []Container{{ID: "web.web.a", Service: "web", Component: "web", Slot: "a", Version: "v1", Status: "running", PID: 42}},
		snapshot: SnapshotResponse{
			Snapshot: registry.Snapshot{Node: "n1", Leases: []registry.Lease{{Service: "web", Component: "web", Route: "default", Port: 10000}}},
			Features: planner.Features{Health: true},
		},
	}
}

// startServer serves b on a socket in a temporary directory until the test
// ends, and checks the socket is removed on shutdown.
func startServer(t *testing.T, b Backend, opts ...Option) (*Client, string) {
	t.Helper()
	sock := filepath.Join(t.TempDir(), "mcp.sock")
	ctx, cancel := context.WithCancel(context.Background())
	l, err := CreateSocket(ctx, sock, 0, "")
	if err != nil {
		t.Fatal(err)
	}
	srv := NewServer(b, append([]Option{WithFollowInterval(10 * time.Millisecond)}, opts...)...)
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, l) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
		if _, err := os.Lstat(sock); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("socket still there after shutdown: %v", err)
		}
	})
	return NewClient(sock), sock
}

func TestClientServerRoundTrip(t *testing.T) {
	b := newTestBackend(t)
	c, _ := startServer(t, b)
	ctx := context.Background()

	st, err := c.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(st, b.status) {
		t.Errorf("Status = %+v\nwant %+v", st, b.status)
	}

	one, err := c.ServiceStatus(ctx, "broken")
	if err != nil {
		t.Fatal(err)
	}
	if one.Node != "n1" || len(one.Services) != 1 || one.Services[0].Name != "broken" || len(one.Services[0].Diagnostics) != 1 {
		t.Errorf("ServiceStatus(broken) = %+v", one)
	}
	_, err = c.ServiceStatus(ctx, "nope")
	if !errors.Is(err, ErrNotFound) || !strings.Contains(err.Error(), `service "nope" is not known on node n1`) {
		t.Errorf("ServiceStatus(nope) = %v, want ErrNotFound naming the service", err)
	}

	cs, err := c.Containers(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(cs, b.containers) {
		t.Errorf("Containers = %+v", cs)
	}

	snap, err := c.Snapshot(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(snap, b.snapshot) {
		t.Errorf("Snapshot = %+v\nwant %+v", snap, b.snapshot)
	}

	res, err := c.Sync(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if res.Reconcile.Result != ResultOK || res.Reconcile.Steps != 1 || len(res.Services) != 2 {
		t.Errorf("Sync = %+v", res)
	}
}

func TestEmptyListsAreArrays(t *testing.T) {
	// Clients in other languages should get [] rather than null.
	b := &testBackend{status: Status{Node: "n1"}}
	_, sock := startServer(t, b)
	for _, path := range []string{"/v1/status", "/v1/containers"} {
		resp := rawRequest(t, sock, http.MethodGet, path, "")
		if resp.code != 200 || strings.Contains(resp.body, "null") {
			t.Errorf("%s = %d %s, want lists as []", path, resp.code, resp.body)
		}
	}
}

func TestSyncHonoursRequestContext(t *testing.T) {
	b := newTestBackend(t)
	cancelled := make(chan struct{})
	b.syncHook = func(ctx context.Context) error {
		<-ctx.Done()
		close(cancelled)
		return ctx.Err()
	}
	c, _ := startServer(t, b)
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	_, err := c.Sync(ctx)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Sync = %v, want the deadline", err)
	}
	select {
	case <-cancelled:
	case <-time.After(5 * time.Second):
		t.Fatal("the backend's Sync never saw the client go away")
	}
}

type rawResponse struct {
	code   int
	header http.Header
	body   string
}

// rawRequest sends a request as any HTTP client would, bypassing Client.
func rawRequest(t *testing.T, sock, method, target, body string) rawResponse {
	t.Helper()
	hc := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "unix", sock)
	}}, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	req, err := http.NewRequest(method, "http://mcp"+target, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return rawResponse{code: resp.StatusCode, header: resp.Header, body: string(b)}
}

func TestErrorResponses(t *testing.T) {
	b := newTestBackend(t)
	_, sock := startServer(t, b)
	tests := []struct {
		name, method, target, body string
		code                       int
		msg                        string
	}{
		{"unknown path", "GET", "/v2/status", "", 404, "no such endpoint: GET /v2/status"},
		{"root", "GET", "/", "", 404, "no such endpoint"},
		{"wrong method", "POST", "/v1/status", "", 405, "method POST is not allowed on /v1/status"},
		{"sync needs POST", "GET", "/v1/sync", "", 405, "not allowed"},
		{"bad service name", "GET", "/v1/status/a%2Fb", "", 400, `"a/b" is not a valid service name`},
		{"logs bad n", "GET", "/v1/logs/web/web?n=x", "", 400, `n: "x" is not a number of lines`},
		{"logs negative n", "GET", "/v1/logs/web/web?n=-3", "", 400, `n: "-3"`},
		{"logs bad follow", "GET", "/v1/logs/web/web?follow=yes", "", 400, `follow: "yes" is not a boolean`},
		{"logs unknown param", "GET", "/v1/logs/web/web?tail=3", "", 400, `unknown query parameter "tail"`},
		{"logs repeated param", "GET", "/v1/logs/web/web?n=1&n=2", "", 400, `"n" is given 2 times`},
		{"logs dot-dot", "GET", "/v1/logs/web/..", "", 404, ""}, // cleaned by the mux first
		{"logs escaped dot-dot", "GET", "/v1/logs/web/%2E%2E", "", 400, `".." is not a valid component name`},
		{"logs unknown service", "GET", "/v1/logs/nope/web", "", 404, `service "nope": not found`},
		{"logs unknown component", "GET", "/v1/logs/web/db", "", 404, `service "web" has no component "db"`},
		{"logs no file yet", "GET", "/v1/logs/web/worker", "", 404, "web/worker has no log file yet"},
		{"sync body too large", "POST", "/v1/sync", strings.Repeat("x", maxRequestBody+1), 413, "request body is larger than"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp := rawRequest(t, sock, tt.method, tt.target, tt.body)
			if resp.code == http.StatusMovedPermanently {
				return // path cleaning by the mux, not an API error
			}
			if resp.code != tt.code {
				t.Fatalf("status %d, want %d (body %s)", resp.code, tt.code, resp.body)
			}
			var eb errorBody
			if err := json.Unmarshal([]byte(resp.body), &eb); err != nil {
				t.Fatalf("error body is not JSON: %q", resp.body)
			}
			if !strings.Contains(eb.Error, tt.msg) {
				t.Errorf("error %q, want it to contain %q", eb.Error, tt.msg)
			}
			if ct := resp.header.Get("Content-Type"); ct != "application/json" {
				t.Errorf("Content-Type %q", ct)
			}
		})
	}
}

func TestBackendErrorsMapToStatus(t *testing.T) {
	tests := []struct {
		err  error
		code int
		is   error
	}{
		{fmt.Errorf("registry: %w", ErrNotFound), 404, ErrNotFound},
		{fmt.Errorf("shutting down: %w", ErrUnavailable), 503, ErrUnavailable},
		{errors.New("registry file is corrupt"), 500, nil},
	}
	for _, tt := range tests {
		b := newTestBackend(t)
		b.err = tt.err
		c, sock := startServer(t, b)
		_, err := c.Status(context.Background())
		var ae *Error
		if !errors.As(err, &ae) || ae.StatusCode != tt.code || ae.Message != tt.err.Error() {
			t.Errorf("Status with backend error %q = %#v, want status %d and the message", tt.err, err, tt.code)
		}
		if tt.is != nil && !errors.Is(err, tt.is) {
			t.Errorf("errors.Is(%v, %v) = false", err, tt.is)
		}
		if resp := rawRequest(t, sock, "POST", "/v1/sync", ""); resp.code != tt.code {
			t.Errorf("sync with backend error: %d, want %d", resp.code, tt.code)
		}
	}
}

func TestClientNoAgent(t *testing.T) {
	dir := t.TempDir()
	missing := filepath.Join(dir, "mcp.sock")
	_, err := NewClient(missing).Status(context.Background())
	want := "no agent is listening on " + missing + ": is `mcp agent` running? (check --socket)"
	if !errors.Is(err, ErrNoAgent) || err == nil || err.Error() != want {
		t.Errorf("missing socket: %v\nwant %s", err, want)
	}

	// A socket file left behind by a dead agent reads the same.
	stale := filepath.Join(dir, "stale.sock")
	makeStaleSocket(t, stale)
	_, err = NewClient(stale).Containers(context.Background())
	if !errors.Is(err, ErrNoAgent) || !strings.Contains(err.Error(), "no agent is listening on "+stale) {
		t.Errorf("stale socket: %v", err)
	}
}

func TestPermissionMessage(t *testing.T) {
	// Tests run as root, which the kernel never refuses, so the wording is
	// checked on real sockets with the modes the agent creates.
	dir := t.TempDir()
	gid := os.Getgid()
	tests := []struct {
		mode os.FileMode
		want string
	}{
		{0o600, "(mode 0600, group "},
		{0o660, "(mode 0660, group "},
	}
	for _, tt := range tests {
		sock := filepath.Join(dir, fmt.Sprintf("s%o", tt.mode))
		makeStaleSocket(t, sock)
		if err := os.Chmod(sock, tt.mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chown(sock, -1, gid); err != nil {
			t.Fatal(err)
		}
		err := connError(sock, &net.OpError{Op: "dial", Net: "unix", Err: os.NewSyscallError("connect", errEACCES)})
		if !errors.Is(err, os.ErrPermission) || !strings.HasPrefix(err.Error(), "permission denied on "+sock+" "+tt.want) {
			t.Errorf("mode %04o: %v", tt.mode, err)
		}
		if tt.mode == 0o600 && !strings.Contains(err.Error(), "set [api] group") {
			t.Errorf("mode 0600 should say how to share the socket: %v", err)
		}
		if tt.mode == 0o660 && !strings.Contains(err.Error(), "as a member of group") {
			t.Errorf("mode 0660 should name the group: %v", err)
		}
	}
}

// makeStaleSocket leaves a socket file nobody listens on, as a killed agent
// does.
func makeStaleSocket(t *testing.T, path string) {
	t.Helper()
	l, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	l.SetUnlinkOnClose(false)
	l.Close()
}

func TestCreateSocketMode(t *testing.T) {
	dir := t.TempDir()
	gid := os.Getgid()
	tests := []struct {
		name  string
		mode  os.FileMode
		group string
		want  os.FileMode
	}{
		{"default is root only", 0, "", 0o600},
		{"group shares it", 0, fmt.Sprint(gid), 0o660},
		{"explicit mode", 0o640, "", 0o640},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sock := filepath.Join(dir, "run", fmt.Sprintf("mcp%d.sock", i)) // parent created
			l, err := CreateSocket(context.Background(), sock, tt.mode, tt.group)
			if err != nil {
				t.Fatal(err)
			}
			fi, err := os.Lstat(sock)
			if err != nil {
				t.Fatal(err)
			}
			if fi.Mode().Type() != os.ModeSocket || fi.Mode().Perm() != tt.want {
				t.Errorf("mode %v, want socket %04o", fi.Mode(), tt.want)
			}
			if err := l.Close(); err != nil {
				t.Fatal(err)
			}
			if _, err := os.Lstat(sock); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("Close left the socket: %v", err)
			}
		})
	}
	entries, _ := os.ReadDir(filepath.Join(dir, "run"))
	if len(entries) != 0 {
		t.Errorf("left behind: %v", entries)
	}
	if _, err := CreateSocket(context.Background(), filepath.Join(dir, "x.sock"), 0, "no-such-group-mcp-test"); err == nil || !strings.Contains(err.Error(), `group "no-such-group-mcp-test"`) {
		t.Errorf("unknown group: %v", err)
	}
}

func TestCreateSocketStaleAndLive(t *testing.T) {
	b := newTestBackend(t)
	dir := t.TempDir()

	// A stale socket is replaced and the new one works.
	stale := filepath.Join(dir, "stale.sock")
	makeStaleSocket(t, stale)
	l, err := CreateSocket(context.Background(), stale, 0, "")
	if err != nil {
		t.Fatalf("stale socket not replaced: %v", err)
	}
	l.Close()

	// A live one is refused and left alone.
	c, live := startServer(t, b)
	if _, err := CreateSocket(context.Background(), live, 0, ""); !errors.Is(err, ErrInUse) {
		t.Errorf("live socket: %v, want ErrInUse", err)
	}
	if _, err := c.Status(context.Background()); err != nil {
		t.Errorf("the running server was disturbed: %v", err)
	}

	// Something that is not a socket is never removed.
	file := filepath.Join(dir, "file")
	if err := os.WriteFile(file, []byte("keep"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := CreateSocket(context.Background(), file, 0, ""); err == nil || !strings.Contains(err.Error(), "is not a socket") {
		t.Errorf("regular file: %v", err)
	}
	if got, _ := os.ReadFile(file); string(got) != "keep" {
		t.Error("the regular file was touched")
	}
}

func TestTailOffset(t *testing.T) {
	long := strings.Repeat("x", 40<<10) // longer than one read chunk
	var many strings.Builder
	for i := range 5000 {
		fmt.Fprintf(&many, "line %d\n", i)
	}
	tests := []struct {
		name    string
		content string
		n       int
		want    string
	}{
		{"empty", "", 3, ""},
		{"all", "a\nb\nc\n", -1, "a\nb\nc\n"},
		{"none", "a\nb\nc\n", 0, ""},
		{"last two", "a\nb\nc\n", 2, "b\nc\n"},
		{"more than there are", "a\nb\n", 10, "a\nb\n"},
		{"exactly all", "a\nb\n", 2, "a\nb\n"},
		{"partial last line counts", "a\nb\nc", 2, "b\nc"},
		{"blank lines count", "a\n\n\n", 2, "\n\n"},
		{"one line no newline", "abc", 1, "abc"},
		{"long line across chunks", "first\n" + long + "\nlast\n", 2, long + "\nlast\n"},
		{"many lines", many.String(), 3, "line 4997\nline 4998\nline 4999\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "log")
			if err := os.WriteFile(path, []byte(tt.content), 0o600); err != nil {
				t.Fatal(err)
			}
			f, err := os.Open(path)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			off, err := tailOffset(f, tt.n)
			if err != nil {
				t.Fatal(err)
			}
			if got := tt.content[off:]; got != tt.want {
				t.Errorf("tail %d = %q, want %q", tt.n, shorten(got), shorten(tt.want))
			}
		})
	}
}

func shorten(s string) string {
	if len(s) > 80 {
		return s[:40] + "..." + s[len(s)-40:]
	}
	return s
}

func TestLogsTailOverTheSocket(t *testing.T) {
	b := newTestBackend(t)
	c, _ := startServer(t, b)
	writeFile(t, filepath.Join(b.logDir, "web.web.log"), "one\ntwo\nthree\n")
	tests := []struct {
		lines int
		want  string
	}{
		{-1, "one\ntwo\nthree\n"},
		{2, "two\nthree\n"},
		{0, ""},
	}
	for _, tt := range tests {
		rc, err := c.Logs(context.Background(), "web", "web", LogOptions{Lines: tt.lines})
		if err != nil {
			t.Fatal(err)
		}
		got, err := io.ReadAll(rc)
		rc.Close()
		if err != nil {
			t.Fatal(err)
		}
		if string(got) != tt.want {
			t.Errorf("Logs n=%d = %q, want %q", tt.lines, got, tt.want)
		}
	}
	_, err := c.Logs(context.Background(), "web", "worker", LogOptions{Lines: -1})
	if !errors.Is(err, ErrNotFound) {
		t.Errorf("log not written yet: %v, want ErrNotFound", err)
	}
}

func writeFile(t *testing.T, path, s string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(s), 0o600); err != nil {
		t.Fatal(err)
	}
}

func appendFile(t *testing.T, path, s string) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteString(s); err != nil {
		t.Fatal(err)
	}
}

// lineReader reads a followed stream line by line, failing the test if a
// line does not arrive in time.
type lineReader struct {
	t     *testing.T
	lines chan string
}

func newLineReader(t *testing.T, r io.Reader) *lineReader {
	lr := &lineReader{t: t, lines: make(chan string, 100)}
	go func() {
		sc := bufio.NewScanner(r)
		for sc.Scan() {
			lr.lines <- sc.Text()
		}
		close(lr.lines)
	}()
	return lr
}

func (lr *lineReader) expect(want ...string) {
	lr.t.Helper()
	for _, w := range want {
		select {
		case got, ok := <-lr.lines:
			if !ok {
				lr.t.Fatalf("stream ended, want %q", w)
			}
			if got != w {
				lr.t.Fatalf("line %q, want %q", got, w)
			}
		case <-time.After(5 * time.Second):
			lr.t.Fatalf("timed out waiting for %q", w)
		}
	}
}

func (lr *lineReader) expectEnd() {
	lr.t.Helper()
	select {
	case got, ok := <-lr.lines:
		if ok {
			lr.t.Fatalf("unexpected line %q", got)
		}
	case <-time.After(5 * time.Second):
		lr.t.Fatal("stream did not end")
	}
}

func TestLogsFollow(t *testing.T) {
	b := newTestBackend(t)
	c, _ := startServer(t, b)
	path := filepath.Join(b.logDir, "web.web.log")
	writeFile(t, path, "old 1\nold 2\nold 3\n")

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	rc, err := c.Logs(ctx, "web", "web", LogOptions{Lines: 1, Follow: true})
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	lr := newLineReader(t, rc)
	lr.expect("old 3")

	appendFile(t, path, "new 1\nnew 2\n")
	lr.expect("new 1", "new 2")

	// Truncated in place (copytruncate): start again from the top.
	writeFile(t, path, "")
	time.Sleep(50 * time.Millisecond) // let a poll see the shrink
	appendFile(t, path, "after truncate\n")
	lr.expect("after truncate")

	// Renamed away and recreated: lines written to the old file just
	// before the switch are not lost, then the new file is followed.
	appendFile(t, path, "last of old\n")
	if err := os.Rename(path, path+".1"); err != nil {
		t.Fatal(err)
	}
	writeFile(t, path, "first of new\n")
	lr.expect("last of old", "first of new")
	appendFile(t, path, "more\n")
	lr.expect("more")

	cancel()
	lr.expectEnd()
}

func TestLogsFollowWaitsForTheFile(t *testing.T) {
	b := newTestBackend(t)
	c, _ := startServer(t, b)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	rc, err := c.Logs(ctx, "web", "worker", LogOptions{Lines: 10, Follow: true})
	if err != nil {
		t.Fatalf("follow before the first write: %v", err)
	}
	defer rc.Close()
	lr := newLineReader(t, rc)
	appendFile(t, filepath.Join(b.logDir, "web.worker.log"), "hello\n")
	lr.expect("hello")
}

func TestShutdownEndsFollowers(t *testing.T) {
	b := newTestBackend(t)
	writeFile(t, filepath.Join(b.logDir, "web.web.log"), "x\n")
	sock := filepath.Join(t.TempDir(), "mcp.sock")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	l, err := CreateSocket(ctx, sock, 0, "")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- NewServer(b).Serve(ctx, l) }()

	rc, err := NewClient(sock).Logs(context.Background(), "web", "web", LogOptions{Lines: -1, Follow: true})
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	lr := newLineReader(t, rc)
	lr.expect("x")
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Serve did not return while a log was being followed")
	}
	lr.expectEnd()
	if _, err := os.Lstat(sock); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("socket left behind: %v", err)
	}
}
