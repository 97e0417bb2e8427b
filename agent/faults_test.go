package agent

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"metacircular.net/mcp/api"
	"metacircular.net/mcp/executor/routertest"
	"metacircular.net/mcp/internal/testenv"
	"metacircular.net/mcp/planner"
	"metacircular.net/mcp/spec"
)

// midPlanFault is an external component failing while the agent applies
// a plan: inject runs synchronously right after step `after` of web's
// create plan (through the executor's after-step hook), so the step that
// follows meets the fault; clear repairs it.
type midPlanFault struct {
	name string
	// after names the last step that still succeeds.
	after string
	// containerd: the node gets a private containerd (d in setup), which
	// the fault may stop. setup runs once the node exists and returns
	// inject and clear.
	containerd bool
	// acme: the node's certificates come from pebble (ACME, DNS-01 through
	// the node's bind9) behind ca, which the fault may take down.
	acme  bool
	setup func(t *testing.T, n *fullNode, d *testenv.ContainerdDaemon) (inject, clear func())
	// setupCA replaces setup for acme faults.
	setupCA func(t *testing.T, ca *switchedTCP) (inject, clear func())
	// wantErr are words of web's error: the component and what it said.
	wantErr []string
	// viaProxy: keep is checked through haproxy while the fault lasts
	// (false when the fault is haproxy itself: keep's port is asked).
	viaProxy bool
}

func midPlanFaults() []midPlanFault {
	return []midPlanFault{
		{
			name:       "containerd down",
			after:      "web/cert/" + webHost,
			containerd: true,
			setup: func(t *testing.T, n *fullNode, d *testenv.ContainerdDaemon) (func(), func()) {
				return d.Stop, func() {
					if err := d.Start(t.Context()); err != nil {
						t.Fatalf("start containerd again: %v", err)
					}
				}
			},
			wantErr:  []string{"containerd"},
			viaProxy: true,
		},
		{
			name:  "ACME CA down",
			after: "web/web/image",
			acme:  true,
			setupCA: func(t *testing.T, ca *switchedTCP) (func(), func()) {
				return ca.down, ca.up
			},
			wantErr:  []string{"cert", "acme"},
			viaProxy: true,
		},
		{
			name:  "haproxy down",
			after: "web/web/health/a",
			setup: func(t *testing.T, n *fullNode, _ *testenv.ContainerdDaemon) (func(), func()) {
				return n.hap.Stop, func() {
					if err := n.hap.Start(t.Context()); err != nil {
						t.Fatalf("start haproxy again: %v", err)
					}
				}
			},
			wantErr: []string{"route", "haproxy"},
		},
		{
			name:  "haproxy erroring",
			after: "web/web/health/a",
			setup: func(t *testing.T, n *fullNode, _ *testenv.ContainerdDaemon) (func(), func()) {
				var fake net.Listener
				return func() {
						// haproxy's runtime API answers, but every command
						// fails (what a haproxy with a broken map or a full
						// table does).
						n.hap.Stop()
						_ = os.Remove(n.hcfg.AdminSocket)
						var err error
						if fake, err = net.Listen("unix", n.hcfg.AdminSocket); err != nil {
							t.Fatalf("fake runtime API: %v", err)
						}
						go serveErrors(fake)
					}, func() {
						fake.Close()
						_ = os.Remove(n.hcfg.AdminSocket)
						if err := n.hap.Start(t.Context()); err != nil {
							t.Fatalf("start haproxy again: %v", err)
						}
					}
			},
			wantErr: []string{"route", "haproxy"},
		},
		{
			name:  "bind9 down",
			after: "web/web/route/default",
			setup: func(t *testing.T, n *fullNode, _ *testenv.ContainerdDaemon) (func(), func()) {
				return n.named.Stop, func() {
					if err := n.named.Start(t.Context()); err != nil {
						t.Fatalf("start named again: %v", err)
					}
				}
			},
			wantErr:  []string{"record", "dns"},
			viaProxy: true,
		},
		{
			name:  "wrong TSIG key",
			after: "web/web/route/default",
			setup: func(t *testing.T, n *fullNode, _ *testenv.ContainerdDaemon) (func(), func()) {
				good, err := os.ReadFile(n.secret)
				if err != nil {
					t.Fatal(err)
				}
				wrong := n.named.WrongKeyFile(t)
				return func() { copyFile(t, wrong, n.secret) }, func() {
					if err := os.WriteFile(n.secret, good, 0o600); err != nil {
						t.Fatal(err)
					}
				}
			},
			wantErr:  []string{"record", "BADSIG"},
			viaProxy: true,
		},
	}
}

// TestFaultMidPlan: containerd, haproxy (down, or answering errors) and
// bind9 (down, or refusing the TSIG key) fail while web's create plan
// runs. Each time the workloads keep running (keep keeps its PID and
// answers), the reconcile reports web's failure naming the component and
// what it said, the agent retries at its next reconciles (shown by the
// failed reconciles that follow without any request), and once the fault
// clears web is deployed and served through haproxy with its certificate
// and its DNS record.
func TestFaultMidPlan(t *testing.T) {
	for _, f := range midPlanFaults() {
		t.Run(f.name, func(t *testing.T) {
			opts := []nodeOption{withPollInterval("1s")}
			var d *testenv.ContainerdDaemon
			if f.containerd {
				d = testenv.StartContainerd(t)
				opts = append(opts, withContainerd(d.Address))
			}
			var ca *switchedTCP
			var more func(*testenv.Bind9Daemon) []nodeOption
			if f.acme {
				more = func(named *testenv.Bind9Daemon) []nodeOption {
					pebble := testenv.Pebble(t, testenv.PebbleConfig{Resolver: named.Addr})
					ca = startSwitchedTCP(t, strings.SplitN(pebble.DirectoryURL, "/", 4)[2])
					dir := strings.Replace(pebble.DirectoryURL, strings.SplitN(pebble.DirectoryURL, "/", 4)[2], ca.addr, 1)
					return []nodeOption{withConfig(fmt.Sprintf(`
[certs]
issuer = "acme"

[acme]
directory_url = %q
eab_key_id = %q
eab_hmac_file = %q
ca_file = %q
propagation_timeout = "20s"

[[acme.zones]]
zone = %q
challenge = "dns-01"
nameserver = %q
`, dir, pebble.EABKeyID, pebble.EABHMACFile, pebble.TLSCAFile, svcZone, named.Addr))}
				}
			}
			n := newFullNodeWith(t, more, opts...)
			var inject, clear func()
			if f.acme {
				inject, clear = f.setupCA(t, ca)
			} else {
				inject, clear = f.setup(t, n, d)
			}
			img := testenv.TestImage(t, n.registry, testenv.UniqueRepo("midplan/keep"), "v1")
			apiImg := testenv.TestImage(t, n.registry, testenv.UniqueRepo("midplan/api"), "v1")
			webImg := testenv.TestImage(t, n.registry, testenv.UniqueRepo("midplan/web"), "v1")
			n.push(map[string]string{"mcp.toml": n.platform(), "services/keep.toml": n.l7Service("keep", img)}, "keep")

			var armedAt atomic.Int64 // the step count to inject after; 0: disarmed
			c := n.startDaemon(WithAfterStep(func(k int) {
				if at := armedAt.Load(); at > 0 && int64(k) == at && armedAt.CompareAndSwap(at, 0) {
					t.Logf("injecting %s after step %d", f.name, k)
					inject()
				}
			}))
			waitFor(t, time.Minute, "keep deployed", func() bool {
				st, err := c.Status(t.Context())
				return err == nil && st.AppliedCommit == n.repo.Head().String() && st.LastReconcile.Result == api.ResultOK
			})
			keepPID := n.containers()["keep.keep.a"].PID
			keepPort := statusPorts(t, c, "keep")["keep/default"]
			keepChain := fileChain(t, n.l7Chain(keepHost))

			// The plan is read before the push: the agent polls every
			// second and could start on it (leasing ports) in between.
			n.repo.Commit(map[string]string{"services/web.toml": n.routedService(apiImg, webImg)}, "web")
			p := n.planFullVia(t, c)
			at := 0
			for i, st := range p.Steps {
				if st.ID == f.after {
					at = i + 1
				}
			}
			if at == 0 {
				t.Fatalf("web's create plan has no step %s: %s", f.after, stepIDs(p))
			}
			armedAt.Store(int64(at))
			n.repo.Push()
			failedBefore := strings.Count(n.logs.String(), "msg=reconciled") // any reconcile from here on
			res := syncNow(t, c)
			if armedAt.Load() != 0 {
				t.Fatalf("the fault was not injected: the reconcile did not run step %d (%s)", at, f.after)
			}
			if res.Reconcile.Result == api.ResultOK {
				t.Fatalf("reconcile with %s mid-plan: ok, want web failed", f.name)
			}
			webErr := ""
			for _, s := range res.Services {
				if s.Name == "web" {
					webErr = s.Error
				}
			}
			t.Logf("%s mid-plan: reconcile %s (%s); web: %s", f.name, res.Reconcile.Result, res.Reconcile.Error, webErr)
			for _, w := range f.wantErr {
				if !strings.Contains(strings.ToLower(webErr), strings.ToLower(w)) {
					t.Errorf("web's error with %s = %q, want it to say %q", f.name, webErr, w)
				}
			}

			// The agent tries again by itself: two more reconciles, both
			// still failing web, with no request made.
			waitFor(t, time.Minute, "two more reconciles while the fault lasts", func() bool {
				return strings.Count(n.logs.String(), "msg=reconciled")-failedBefore >= 3
			})
			st, err := c.Status(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			if st.LastReconcile.Result == api.ResultOK {
				t.Fatalf("a reconcile succeeded while %s lasted: %+v", f.name, st.LastReconcile)
			}
			n.workloadsKeepRunning(t, keepPID, keepPort, f.viaProxy, &keepChain)

			clear()
			waitFor(t, 2*time.Minute, "web deployed once the fault cleared", func() bool {
				st, err := c.Status(t.Context())
				if err != nil {
					return false
				}
				w, ok := st.Service("web")
				return ok && w.Error == "" && st.LastReconcile.Result == api.ResultOK && st.AppliedCommit == n.repo.Head().String()
			})
			n.serves(t, "v1")
			recs, err := n.admin.List(t.Context(), svcZone, webHost)
			if err != nil || len(recs) != 1 {
				t.Errorf("web's records after the fault cleared: %v %v", recs, err)
			}
			n.workloadsKeepRunning(t, keepPID, keepPort, true, &keepChain)
			if got := n.containers()["keep.keep.a"].PID; got != keepPID {
				t.Errorf("keep was restarted (pid %d → %d)", keepPID, got)
			}
		})
	}
}

// workloadsKeepRunning checks keep, which no plan touched: same PID, still
// answering (through haproxy when viaProxy).
func (n *fullNode) workloadsKeepRunning(t *testing.T, pid uint32, port int, viaProxy bool, chain *routertest.Chain) {
	t.Helper()
	// Asked of the kernel, not of containerd (which may be the fault).
	if err := syscall.Kill(int(pid), 0); err != nil {
		t.Errorf("keep's process %d is gone: %v", pid, err)
	}
	if viaProxy {
		mustThrough(t, n.l7, keepHost, chain, "version=v1")
		return
	}
	if body := get(t, port); !strings.Contains(body, "version=v1") {
		t.Errorf("keep answered %q", body)
	}
}

// serveErrors answers every runtime API command with an error.
func serveErrors(ln net.Listener) {
	for {
		conn, err := ln.Accept()
		if err != nil {
			return
		}
		go func() {
			defer conn.Close()
			r := bufio.NewReader(conn)
			if _, err := r.ReadString('\n'); err != nil {
				return
			}
			fmt.Fprint(conn, "Unknown command: the runtime API refuses everything (fault injected by the test)\n\n")
		}()
	}
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

// planFullVia is planFull while the agent runs (it holds the registry):
// the recorded state comes from its API.
func (n *fullNode) planFullVia(t *testing.T, c *api.Client) *planner.Plan {
	t.Helper()
	snap, err := c.Snapshot(t.Context())
	if err != nil {
		t.Fatalf("snapshot through the API: %v", err)
	}
	repo, err := spec.LoadDir(n.repo.Work)
	if err != nil {
		t.Fatalf("load repo: %v", err)
	}
	return planner.Compute(planner.InputFor(repo, n.cfg.Node, snap.Snapshot, snap.Features, n.cfg.AllowRemoveAll))
}

// switchedTCP forwards a loopback port to a server and can go down
// (the listener closes: connections are refused, open ones are cut) and
// come back on the same address: a server that is stopped and started.
type switchedTCP struct {
	t      *testing.T
	addr   string
	target string

	mu    sync.Mutex
	ln    net.Listener
	conns map[net.Conn]bool
}

func startSwitchedTCP(t *testing.T, target string) *switchedTCP {
	t.Helper()
	s := &switchedTCP{t: t, target: target, conns: map[net.Conn]bool{}}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s.addr = ln.Addr().String()
	s.serve(ln)
	t.Cleanup(s.down)
	return s
}

func (s *switchedTCP) serve(ln net.Listener) {
	s.mu.Lock()
	s.ln = ln
	s.mu.Unlock()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go s.forward(c)
		}
	}()
}

func (s *switchedTCP) forward(c net.Conn) {
	b, err := net.Dial("tcp", s.target)
	if err != nil {
		c.Close()
		return
	}
	s.mu.Lock()
	if s.ln == nil {
		s.mu.Unlock()
		c.Close()
		b.Close()
		return
	}
	s.conns[c], s.conns[b] = true, true
	s.mu.Unlock()
	done := make(chan struct{}, 2)
	go func() { _, _ = io.Copy(b, c); done <- struct{}{} }()
	go func() { _, _ = io.Copy(c, b); done <- struct{}{} }()
	<-done
	c.Close()
	b.Close()
	s.mu.Lock()
	delete(s.conns, c)
	delete(s.conns, b)
	s.mu.Unlock()
}

func (s *switchedTCP) down() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ln != nil {
		s.ln.Close()
		s.ln = nil
	}
	for c := range s.conns {
		c.Close()
	}
}

func (s *switchedTCP) up() {
	s.t.Helper()
	ln, err := net.Listen("tcp", s.addr)
	if err != nil {
		s.t.Fatalf("listen again on %s: %v", s.addr, err)
	}
	s.serve(ln)
}
