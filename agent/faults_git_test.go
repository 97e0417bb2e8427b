package agent

import (
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"metacircular.net/mcp/api"
	"metacircular.net/mcp/internal/testenv"
)

// gitFaultMode is what the faulty Git remote does.
type gitFaultMode int32

const (
	remoteOK      gitFaultMode = iota
	remoteDown                 // nothing listens: connection refused
	remoteSlow                 // accepts, then never answers (until the client gives up)
	remoteCorrupt              // serves the ref list, but flips bytes in the upload-pack answer
)

// gitRemote is a Git smart-HTTP server over a bare repository with a
// switchable fault. Down really closes the listener (connections are
// refused) and Up listens again on the same address, so the agent's URL
// never changes.
type gitRemote struct {
	t     *testing.T
	addr  string
	h     http.Handler
	mode  atomic.Int32
	packs atomic.Int32 // upload-pack requests answered (corrupted or not)

	mu  sync.Mutex
	srv *http.Server
}

func startGitRemote(t *testing.T, bare string) *gitRemote {
	t.Helper()
	r := &gitRemote{t: t, h: testenv.GitHTTPHandler(t, bare)}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r.addr = ln.Addr().String()
	r.serve(ln)
	t.Cleanup(func() { r.stop() })
	return r
}

func (r *gitRemote) url(bare string) string { return "http://" + r.addr + "/" + filepath.Base(bare) }

func (r *gitRemote) serve(ln net.Listener) {
	srv := &http.Server{Handler: http.HandlerFunc(r.serveHTTP)}
	r.mu.Lock()
	r.srv = srv
	r.mu.Unlock()
	go func() { _ = srv.Serve(ln) }()
}

// stop closes the listener and every open connection (stalled requests
// end with them).
func (r *gitRemote) stop() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.srv != nil {
		_ = r.srv.Close()
		r.srv = nil
	}
}

func (r *gitRemote) set(m gitFaultMode) {
	r.t.Helper()
	prev := gitFaultMode(r.mode.Swap(int32(m)))
	switch {
	case m == remoteDown && prev != remoteDown:
		r.stop()
	case m != remoteDown && prev == remoteDown:
		ln, err := net.Listen("tcp", r.addr)
		if err != nil {
			r.t.Fatalf("listen again on %s: %v", r.addr, err)
		}
		r.serve(ln)
	}
}

func (r *gitRemote) serveHTTP(w http.ResponseWriter, req *http.Request) {
	switch gitFaultMode(r.mode.Load()) {
	case remoteSlow:
		// Stalls beyond any reasonable fetch timeout: until the client
		// hangs up or the server closes.
		<-req.Context().Done()
		return
	case remoteCorrupt:
		if strings.HasSuffix(req.URL.Path, "/git-upload-pack") {
			r.packs.Add(1)
			r.h.ServeHTTP(&flipWriter{ResponseWriter: w}, req)
			return
		}
	}
	if strings.HasSuffix(req.URL.Path, "/git-upload-pack") {
		r.packs.Add(1)
	}
	r.h.ServeHTTP(w, req)
}

// flipWriter flips bytes of a response body past its first 64 bytes (the
// pkt-line preamble): the pack arrives with a broken body and checksum.
type flipWriter struct {
	http.ResponseWriter
	n int
}

func (f *flipWriter) Write(p []byte) (int, error) {
	b := make([]byte, len(p))
	copy(b, p)
	for i := range b {
		if off := f.n + i; off > 64 && off%7 == 0 {
			b[i] ^= 0x5a
		}
	}
	f.n += len(p)
	return f.ResponseWriter.Write(b)
}

// The Git remote goes down, stalls, or serves a corrupted pack while a
// change waits in it. Each time the workloads keep running (same PID, still
// answering), the reconcile reports the remote's fault, the agent retries
// on its own with backoff (poll_interval is an hour here: every retry
// comes from sync's backoff), and once the remote is healthy again a
// retry deploys the change and the node converges.
func TestFaultGitRemote(t *testing.T) {
	for _, tc := range []struct {
		name string
		mode gitFaultMode
		// wantErr are words of the reconcile's error: what failed and where.
		wantErr []string
	}{
		{"down", remoteDown, []string{"fetch http://", "remote unreachable", "cached commit"}},
		{"slow", remoteSlow, []string{"fetch http://", "remote unreachable", "cached commit"}},
		{"corrupt pack", remoteCorrupt, []string{"fetch http://"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			n := newTestNode(t, withPollInterval("1h"), withConfig("\n"))
			remote := startGitRemote(t, n.repo.Bare)
			n.cfg.Git.URL = remote.url(n.repo.Bare)
			n.cfg.Git.Timeout.Duration = 3 * time.Second // the fetch timeout the slow remote outlasts
			img := testenv.TestImage(t, n.registry, testenv.UniqueRepo("gitfault"), "v1")
			n.push(map[string]string{"mcp.toml": n.platform(), "services/keep.toml": service("keep", img)}, "keep")
			c := n.startDaemon()
			wantSync(t, syncNow(t, c), api.ResultOK)
			keepPID := n.containers()["keep.keep.a"].PID
			keepPort := statusPorts(t, c, "keep")["keep/default"]

			remote.set(tc.mode)
			n.push(map[string]string{"services/web.toml": service("web", img)}, "web")
			retriesBefore := strings.Count(n.logs.String(), `msg="retrying after backoff"`)
			res := syncNow(t, c)
			if res.Reconcile.Result == api.ResultOK {
				t.Fatalf("reconcile with the remote %s: ok, want it to report the fault", tc.name)
			}
			for _, w := range tc.wantErr {
				if !strings.Contains(res.Reconcile.Error, w) {
					t.Errorf("reconcile error with the remote %s = %q, want it to say %q", tc.name, res.Reconcile.Error, w)
				}
			}
			st, err := c.Status(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			if st.LastReconcile.Error != res.Reconcile.Error {
				t.Errorf("status shows the last reconcile error %q, want %q", st.LastReconcile.Error, res.Reconcile.Error)
			}
			if _, ok := st.Service("web"); ok {
				t.Errorf("web is in the status although its commit could not be fetched")
			}
			// Retries come from the backoff alone (no poll, no request).
			waitFor(t, time.Minute, "two retries after backoff while the remote is faulty", func() bool {
				return strings.Count(n.logs.String(), `msg="retrying after backoff"`)-retriesBefore >= 2
			})
			if st, _ := c.Status(t.Context()); st.AppliedCommit == n.repo.Head().String() {
				t.Fatalf("the commit was applied while the remote was %s", tc.name)
			}
			if pid := n.containers()["keep.keep.a"].PID; pid != keepPID {
				t.Errorf("keep was restarted while the remote was %s (pid %d → %d)", tc.name, keepPID, pid)
			}
			if body := get(t, keepPort); !strings.Contains(body, "version=v1") {
				t.Errorf("keep answered %q while the remote was %s", body, tc.name)
			}

			remote.set(remoteOK)
			waitFor(t, 90*time.Second, "a backoff retry to apply the new commit once the remote is healthy", func() bool {
				st, err := c.Status(t.Context())
				return err == nil && st.AppliedCommit == n.repo.Head().String() && st.LastReconcile.Result == api.ResultOK
			})
			if body := get(t, statusPorts(t, c, "web")["web/default"]); !strings.Contains(body, "version=v1") {
				t.Errorf("web answered %q after the remote came back", body)
			}
			if pid := n.containers()["keep.keep.a"].PID; pid != keepPID {
				t.Errorf("keep was restarted (pid %d → %d)", keepPID, pid)
			}
			t.Logf("remote %s: %d retries after backoff logged; reported: %s", tc.name,
				strings.Count(n.logs.String(), `msg="retrying after backoff"`)-retriesBefore, res.Reconcile.Error)
		})
	}
}
