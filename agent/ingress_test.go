package agent

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"metacircular.net/mcp/executor"
	"metacircular.net/mcp/executor/haproxy"
	"metacircular.net/mcp/executor/routertest"
	"metacircular.net/mcp/internal/testenv"
	"metacircular.net/mcp/registry"
)

// ingressNode is a test node whose agent drives a private haproxy with two
// loopback listeners.
type ingressNode struct {
	*testNode
	hap      *testenv.HAProxyDaemon
	hcfg     haproxy.Config
	l7, l4   int // listener ports
	hostRoot string
}

// opts go to newTestNode after the [proxy] table (e.g. a [[dns]] table).
func newIngressNode(t *testing.T, opts ...nodeOption) *ingressNode {
	t.Helper()
	var hcfg haproxy.Config
	h := testenv.HAProxy(t, 2, func(h *testenv.HAProxyDaemon) (string, error) {
		hcfg = haproxy.Config{Dir: h.Dir, AdminSocket: h.AdminSocket, MasterSocket: h.MasterSocket}
		for _, p := range h.Ports {
			hcfg.Listeners = append(hcfg.Listeners, executor.Listener{Address: "127.0.0.1", Port: p})
		}
		_, err := haproxy.WriteBase(hcfg)
		return hcfg.ConfigPath(), err
	})
	n := newTestNode(t, append([]nodeOption{withConfig(fmt.Sprintf(`
[proxy]
driver = "haproxy"
config_dir = %q
admin_socket = %q
master_socket = %q
listeners = [{ port = %d, address = "127.0.0.1" }, { port = %d, address = "127.0.0.1" }]
`, hcfg.Dir, hcfg.AdminSocket, hcfg.MasterSocket, h.Ports[0], h.Ports[1]))}, opts...)...)
	return &ingressNode{testNode: n, hap: h, hcfg: hcfg, l7: h.Ports[0], l4: h.Ports[1], hostRoot: n.cfg.HostRoot}
}

// platform declares the two listeners: a route on any other port is a
// validation error.
func (n *ingressNode) platform() string {
	return fmt.Sprintf(`domain = "test.internal"
registry = %q
listeners = [%d, %d]

[[nodes]]
name = "n1"
addresses = ["127.0.0.1"]
`, n.registry+"/mcptest", n.l7, n.l4)
}

// tlsService has an l7 route (plain HTTP behind haproxy's TLS) and an l4
// route (the container's own TLS, passed through), on the same hostname.
func (n *ingressNode) tlsService(name, image string) string {
	return fmt.Sprintf(`name = %q
node = "n1"

[[components]]
name = %q
image = %q
env = ["HELLO_TLS_CERT=/srv/%s/certs/cert.pem", "HELLO_TLS_KEY=/srv/%s/certs/key.pem", "HELLO_TLS_ON=PORT_PASS"]

[[components.routes]]
name = "web"
port = %d
mode = "l7"

[[components.routes]]
name = "pass"
port = %d
mode = "l4"
`, name, name, image, name, name, n.l7, n.l4)
}

func (n *ingressNode) l7Service(name, image string) string {
	return fmt.Sprintf(`name = %q
node = "n1"

[[components]]
name = %q
image = %q

[[components.routes]]
port = %d
mode = "l7"
`, name, name, image, n.l7)
}

// proxyCert puts an l7 certificate chain where the proxy reads it.
func (n *ingressNode) proxyCert(t *testing.T, host string) routertest.Chain {
	return routertest.WriteChain(t, filepath.Join(n.hostRoot, executor.DefaultCertDir), host)
}

// serviceCert puts the container's own certificate under /srv/<service>.
func (n *ingressNode) serviceCert(t *testing.T, service, host string) routertest.Chain {
	c := routertest.WriteChain(t, t.TempDir(), host)
	dir := filepath.Join(n.hostRoot, "srv", service, "certs")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for src, dst := range map[string]string{c.CertFile: "cert.pem", c.KeyFile: "key.pem"} {
		b, err := os.ReadFile(src)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, dst), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return c
}

// fileChain reads a chain file mcp wrote: its leaf's fingerprint, and the
// issuers in it as trust anchors.
func fileChain(t *testing.T, path string) routertest.Chain {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("the certificate mcp should have put there: %v", err)
	}
	c := routertest.Chain{CertFile: path, Roots: x509.NewCertPool()}
	for i := 0; ; i++ {
		var blk *pem.Block
		if blk, b = pem.Decode(b); blk == nil {
			break
		}
		if i == 0 {
			c.Leaf, c.Fingerprint = blk.Bytes, sha256.Sum256(blk.Bytes)
			continue
		}
		cert, err := x509.ParseCertificate(blk.Bytes)
		if err != nil {
			t.Fatal(err)
		}
		c.Roots.AddCert(cert)
	}
	if c.Leaf == nil {
		t.Fatalf("%s holds no certificate", path)
	}
	return c
}

// answer is one request through the proxy.
type answer struct {
	body   string
	status int
	leaf   [32]byte // SHA-256 of the certificate the client saw
	chain  int
}

// through does what `curl --resolve host:port:127.0.0.1 https://host:port/`
// does: dial 127.0.0.1, SNI and Host are the hostname.
func through(ctx context.Context, port int, host string, roots *routertest.Chain) (answer, error) {
	tr := &http.Transport{
		TLSClientConfig: &tls.Config{ServerName: host, RootCAs: roots.Roots},
		DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, network, "127.0.0.1:"+strconv.Itoa(port))
		},
		DisableKeepAlives: true,
	}
	defer tr.CloseIdleConnections()
	ctx, cancel := context.WithTimeout(ctx, 40*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "https://"+net.JoinHostPort(host, strconv.Itoa(port))+"/", nil)
	resp, err := tr.RoundTrip(req)
	if err != nil {
		return answer{}, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return answer{}, err
	}
	a := answer{body: string(b), status: resp.StatusCode, chain: len(resp.TLS.PeerCertificates)}
	a.leaf = sha256.Sum256(resp.TLS.PeerCertificates[0].Raw)
	return a, nil
}

func mustThrough(t *testing.T, port int, host string, roots *routertest.Chain, wantBody string) answer {
	t.Helper()
	a, err := through(t.Context(), port, host, roots)
	if err != nil {
		t.Fatalf("https://%s:%d/ through haproxy: %v", host, port, err)
	}
	if a.status != http.StatusOK || !strings.Contains(a.body, wantBody) {
		t.Fatalf("https://%s:%d/ answered %d %q, want %q", host, port, a.status, a.body, wantBody)
	}
	return a
}

// TestIngressHAProxy: an l7 and an l4 route reach the container through a
// real haproxy; a redeploy under load fails no request; a route deleted by
// hand or lost by a haproxy restart is repaired by the next reconcile;
// status shows the routes confirmed; removing a service removes its routes
// and leaves the others serving.
func TestIngressHAProxy(t *testing.T) {
	n := newIngressNode(t)
	repo := testenv.UniqueRepo("ingress")
	v1 := testenv.TestImage(t, n.registry, repo, "v1")
	v2 := testenv.TestImage(t, n.registry, repo, "v2")
	host := "demo.svc.mcp.test.internal"
	otherHost := "other.svc.mcp.test.internal"
	l7Cert := n.proxyCert(t, host)
	ownCert := n.serviceCert(t, "demo", host)
	// other's certificate is not placed by the test: mcp's certificate
	// steps (the local CA by default) put it there.

	n.push(map[string]string{
		"mcp.toml":            n.platform(),
		"services/demo.toml":  n.tlsService("demo", v1),
		"services/other.toml": n.l7Service("other", v1),
	}, "demo with an l7 and an l4 route, other with an l7 route")
	wantResult(t, n.once(), ResultOK)

	a := mustThrough(t, n.l7, host, &l7Cert, "version=v1")
	if a.leaf != l7Cert.Fingerprint || a.chain < 2 {
		t.Fatalf("l7: served leaf matches mcp's certificate: %v, chain of %d", a.leaf == l7Cert.Fingerprint, a.chain)
	}
	a = mustThrough(t, n.l4, host, &ownCert, "version=v1")
	if a.leaf != ownCert.Fingerprint {
		t.Fatal("l4: the certificate seen is not the container's own (TLS was not passed through untouched)")
	}
	otherCert := fileChain(t, filepath.Join(n.hostRoot, executor.DefaultCertDir, otherHost+".pem"))
	a = mustThrough(t, n.l7, otherHost, &otherCert, "version=v1")
	if a.leaf != otherCert.Fingerprint || a.chain < 2 {
		t.Fatalf("l7 (mcp's own certificate): served leaf matches the file: %v, chain of %d", a.leaf == otherCert.Fingerprint, a.chain)
	}

	t.Run("redeploy drops no request", func(t *testing.T) {
		l7, l4 := n.underLoad(t, host, &l7Cert, &ownCert, func() {
			n.push(map[string]string{"services/demo.toml": n.tlsService("demo", v2)}, "demo v2")
			wantResult(t, n.once(), ResultOK)
		})
		t.Logf("requests through haproxy during the redeploy: l7 %d ok, %d failed; l4 %d ok, %d failed", l7.ok, l7.failed, l4.ok, l4.failed)
		// Routed services update blue-green: the new container starts on
		// the other slot's port, the routes move to it, then the old one
		// stops. Neither route may lose a request.
		for _, c := range []struct {
			name string
			n    loadCount
		}{{"l7", l7}, {"l4", l4}} {
			if c.n.failed != 0 || c.n.ok == 0 || !c.n.sawV2 {
				t.Fatalf("%s under a redeploy: %d ok, %d failed, saw v2: %v", c.name, c.n.ok, c.n.failed, c.n.sawV2)
			}
		}
		if st := n.snapshot().Services["demo"].Components["demo"]; st.ActiveSlot != registry.SlotB {
			t.Fatalf("demo did not move to slot b: %+v", st)
		}
	})

	t.Run("route deleted by hand is restored", func(t *testing.T) {
		out, err := n.hap.Command(t.Context(), fmt.Sprintf("del map %s %s", filepath.Join(n.hcfg.Dir, "l7-"+strconv.Itoa(n.l7)+".map"), host))
		if err != nil || out != "" {
			t.Fatalf("del map: %q %v", out, err)
		}
		if a, err := through(t.Context(), n.l7, host, &l7Cert); err == nil && a.status == http.StatusOK {
			t.Fatal("the route still answers after it was deleted by hand")
		}
		out2 := n.once()
		wantResult(t, out2, ResultOK)
		if !repaired(out2, "route 127.0.0.1:"+strconv.Itoa(n.l7)+"/"+host) {
			t.Fatalf("no repair reported: %+v", out2.Repairs)
		}
		mustThrough(t, n.l7, host, &l7Cert, "version=v2")
	})

	t.Run("haproxy restarted from an empty state is repaired", func(t *testing.T) {
		// A plain restart loads the files mcp keeps in step.
		if err := n.hap.Restart(t.Context()); err != nil {
			t.Fatal(err)
		}
		mustThrough(t, n.l4, host, &ownCert, "version=v2")
		// One started from the bare base config (maps lost) is refilled by
		// the next reconcile.
		n.hap.Stop()
		for _, p := range []int{n.l7, n.l4} {
			for _, m := range []string{"l4", "l7"} {
				if err := os.WriteFile(filepath.Join(n.hcfg.Dir, m+"-"+strconv.Itoa(p)+".map"), nil, 0o600); err != nil {
					t.Fatal(err)
				}
			}
		}
		if err := n.hap.Start(t.Context()); err != nil {
			t.Fatal(err)
		}
		if _, err := through(t.Context(), n.l4, host, &ownCert); err == nil {
			t.Fatal("routes still served after the maps were emptied")
		}
		wantResult(t, n.once(), ResultOK)
		mustThrough(t, n.l7, host, &l7Cert, "version=v2")
		mustThrough(t, n.l4, host, &ownCert, "version=v2")
		mustThrough(t, n.l7, otherHost, &otherCert, "version=v1")
	})

	t.Run("status shows the routes confirmed; removal leaves other routes", func(t *testing.T) {
		c := n.startDaemon()
		st, err := c.Status(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		svc, _ := st.Service("demo")
		if len(svc.Routes) != 2 {
			t.Fatalf("demo routes in status: %+v", svc.Routes)
		}
		for _, r := range svc.Routes {
			if !r.Confirmed || r.Backend == "" || r.Hostname != host {
				t.Fatalf("route not confirmed: %+v", r)
			}
		}
		n.remove([]string{"services/demo.toml"}, "remove demo")
		if _, err := c.Sync(t.Context()); err != nil {
			t.Fatal(err)
		}
		if a, err := through(t.Context(), n.l7, host, &l7Cert); err == nil && a.status == http.StatusOK {
			t.Fatal("demo's l7 route still answers after the service was removed")
		}
		mustThrough(t, n.l7, otherHost, &otherCert, "version=v1")
		d, err := haproxy.New(n.hcfg)
		if err != nil {
			t.Fatal(err)
		}
		routes, err := d.List(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		if len(routes) != 1 || routes[0].Hostname != otherHost {
			t.Fatalf("haproxy holds %v after removing demo, want only other's route", routes)
		}
	})
}

func repaired(out Outcome, resource string) bool {
	for _, r := range out.Repairs {
		if r.Resource == resource {
			return true
		}
	}
	return false
}

// loadCount is what one client saw through one route.
type loadCount struct {
	ok, failed int
	sawV2      bool
}

// underLoad keeps one client requesting through each route (l7 and l4)
// while change runs, then until both saw version v2, and counts every
// request. The load is bounded: sequential requests on loopback, at most
// 2000 per route and 60 seconds.
func (n *ingressNode) underLoad(t *testing.T, host string, l7Roots, l4Roots *routertest.Chain, change func()) (l7, l4 loadCount) {
	var counts [2]loadCount
	var v2 [2]atomic.Bool
	stop := make(chan struct{})
	var wg sync.WaitGroup
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	for i, target := range []struct {
		name  string
		port  int
		roots *routertest.Chain
	}{{"l7", n.l7, l7Roots}, {"l4", n.l4, l4Roots}} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := &counts[i]
			for range 2000 {
				select {
				case <-stop:
					return
				case <-ctx.Done():
					return
				default:
				}
				a, err := through(ctx, target.port, host, target.roots)
				switch {
				case err != nil:
					c.failed++
					t.Logf("%s request through :%d failed: %v", target.name, target.port, err)
				case a.status != http.StatusOK:
					c.failed++
					t.Logf("%s request through :%d answered %d %q", target.name, target.port, a.status, a.body)
				default:
					c.ok++
					if strings.Contains(a.body, "version=v2") {
						c.sawV2 = true
						v2[i].Store(true)
					}
				}
				time.Sleep(5 * time.Millisecond)
			}
		}()
	}
	change()
	deadline := time.Now().Add(20 * time.Second)
	for (!v2[0].Load() || !v2[1].Load()) && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	time.Sleep(200 * time.Millisecond) // a few requests on the new version too
	close(stop)
	wg.Wait()
	return counts[0], counts[1]
}
