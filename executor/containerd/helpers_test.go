package containerd

import (
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"metacircular.net/mcp/executor"
	"metacircular.net/mcp/internal/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// newDriver returns a driver on the test's containerd namespace (fresh,
// cleaned up by testenv) with a state dir of its own.
func newDriver(t *testing.T, regs map[string]Registry, opts ...Option) *Driver {
	t.Helper()
	addr, ns := testenv.Containerd(t)
	return newDriverAt(t, addr, ns, regs, opts...)
}

func newDriverAt(t *testing.T, addr, ns string, regs map[string]Registry, opts ...Option) *Driver {
	t.Helper()
	opts = append([]Option{WithLogger(testLogger(t))}, opts...)
	d, err := New(t.Context(), Config{
		Address:    addr,
		Namespace:  ns,
		StateDir:   t.TempDir(),
		Registries: regs,
	}, opts...)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { _ = d.Close() })
	return d
}

// plainHTTP is the registry config for testenv's plain-HTTP registry.
func plainHTTP(host string) map[string]Registry {
	return map[string]Registry{host: {PlainHTTP: true}}
}

// testLogger sends the driver's logs to the test log.
func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Helper()
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// helloSpec is a container spec for the hello image on a fresh port.
func helloSpec(t *testing.T, id, image, digest string) (executor.ContainerSpec, int) {
	t.Helper()
	port := testenv.FreePort(t)
	return executor.ContainerSpec{
		ID:        id,
		Service:   "hello",
		Component: "hello",
		Image:     image,
		Digest:    digest,
		Env:       []string{"PORT=" + strconv.Itoa(port)},
		Restart:   "always",
		Labels: map[string]string{
			executor.LabelService:   "hello",
			executor.LabelComponent: "hello",
			executor.LabelVersion:   "v1",
		},
		LogPath:   filepath.Join(t.TempDir(), "logs", id+".log"),
		StopGrace: 5 * time.Second,
	}, port
}

// httpGet polls http://127.0.0.1:port/path until it answers 200 or
// timeout passes, and returns the body.
func httpGet(t *testing.T, port int, path string, timeout time.Duration) string {
	t.Helper()
	url := fmt.Sprintf("http://127.0.0.1:%d%s", port, path)
	deadline := time.Now().Add(timeout)
	var last error
	for time.Now().Before(deadline) {
		resp, err := http.Get(url)
		if err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return string(b)
			}
			last = fmt.Errorf("status %s: %s", resp.Status, b)
		} else {
			last = err
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("GET %s: no 200 within %s: %v", url, timeout, last)
	return ""
}

// ensure pulls ref through d and fails the test on error.
func ensure(t *testing.T, d *Driver, ref string) string {
	t.Helper()
	dg, err := d.EnsureImage(t.Context(), ref)
	if err != nil {
		t.Fatalf("EnsureImage(%s): %v", ref, err)
	}
	return dg
}

// container returns the one container id from d.List.
func container(t *testing.T, d *Driver, id string) executor.Container {
	t.Helper()
	cs, err := d.List(t.Context())
	if err != nil {
		t.Fatalf("List: %v", err)
	}
	for _, c := range cs {
		if c.ID == id {
			return c
		}
	}
	t.Fatalf("container %s not in List: %+v", id, cs)
	return executor.Container{}
}

// waitFor polls cond until it holds or timeout passes.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func readFile(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatalf("read %s: %v", p, err)
	}
	return string(b)
}

// fakeClock is a Clock whose time moves only by Advance. Every timer it
// arms is reported on armed, so tests can see each backoff delay.
type fakeClock struct {
	mu     sync.Mutex
	now    time.Time
	timers []*fakeTimer
	armed  chan time.Duration
}

func newFakeClock() *fakeClock {
	return &fakeClock{now: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), armed: make(chan time.Duration, 100)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) NewTimer(d time.Duration) Timer {
	c.mu.Lock()
	t := &fakeTimer{c: make(chan time.Time, 1), at: c.now.Add(d), clock: c}
	c.timers = append(c.timers, t)
	c.mu.Unlock()
	c.armed <- d
	return t
}

// Advance moves time and fires the timers that fall due.
func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
	var keep []*fakeTimer
	for _, t := range c.timers {
		if t.stopped {
			continue
		}
		if !t.at.After(c.now) {
			t.c <- c.now
			continue
		}
		keep = append(keep, t)
	}
	c.timers = keep
}

// nextArmed waits (in real time) for the next timer to be armed.
func (c *fakeClock) nextArmed(t *testing.T, timeout time.Duration) time.Duration {
	t.Helper()
	select {
	case d := <-c.armed:
		return d
	case <-time.After(timeout):
		t.Fatalf("no timer armed within %s", timeout)
		return 0
	}
}

type fakeTimer struct {
	c       chan time.Time
	at      time.Time
	stopped bool
	clock   *fakeClock
}

func (t *fakeTimer) C() <-chan time.Time { return t.c }

func (t *fakeTimer) Stop() bool {
	t.clock.mu.Lock()
	defer t.clock.mu.Unlock()
	was := !t.stopped
	t.stopped = true
	return was
}
