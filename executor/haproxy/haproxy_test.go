package haproxy_test

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"metacircular.net/mcp/executor"
	"metacircular.net/mcp/executor/haproxy"
	"metacircular.net/mcp/executor/routertest"
	"metacircular.net/mcp/internal/testenv"
	"metacircular.net/mcp/spec"
)

// start runs a private haproxy from the driver's own base configuration.
func start(t *testing.T, listeners int) (*haproxy.Driver, *testenv.HAProxyDaemon) {
	t.Helper()
	var d *haproxy.Driver
	h := testenv.HAProxy(t, listeners, func(h *testenv.HAProxyDaemon) (string, error) {
		cfg := haproxy.Config{Dir: h.Dir, AdminSocket: h.AdminSocket, MasterSocket: h.MasterSocket}
		for _, p := range h.Ports {
			cfg.Listeners = append(cfg.Listeners, executor.Listener{Address: "127.0.0.1", Port: p})
		}
		var err error
		if d, err = haproxy.New(cfg); err != nil {
			return "", err
		}
		if _, err := d.Setup(context.Background()); err != nil {
			return "", err
		}
		return cfg.ConfigPath(), nil
	})
	return d, h
}

func listener(port int) string { return "127.0.0.1:" + strconv.Itoa(port) }

func TestContract(t *testing.T) {
	routertest.Run(t, func(t *testing.T) routertest.Env {
		d, h := start(t, 2)
		return routertest.Env{
			Router:     d,
			Listeners:  []string{listener(h.Ports[0]), listener(h.Ports[1])},
			Undeclared: "127.0.0.1:1",
			CertDir:    t.TempDir(),
		}
	})
}

// backends starts a plain HTTP server and a TLS server with its own
// certificate, both answering with their name.
func backends(t *testing.T, l4Host string) (plain string, tlsAddr string, l4Chain routertest.Chain) {
	t.Helper()
	serve := func(ln net.Listener, name string) {
		srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			fmt.Fprintf(w, "%s host=%s", name, r.Host)
		}), ReadHeaderTimeout: 5 * time.Second}
		go func() { _ = srv.Serve(ln) }()
		t.Cleanup(func() { srv.Close() })
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	serve(ln, "plain")
	l4Chain = routertest.WriteChain(t, t.TempDir(), l4Host)
	pair, err := tls.LoadX509KeyPair(l4Chain.CertFile, l4Chain.KeyFile)
	if err != nil {
		t.Fatal(err)
	}
	tln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{pair}})
	if err != nil {
		t.Fatal(err)
	}
	serve(tln, "tls")
	return ln.Addr().String(), tln.Addr().String(), l4Chain
}

// get requests https://host:port/ through 127.0.0.1, like
// curl --resolve host:port:127.0.0.1, and returns the body and the
// certificates the server presented.
func get(t *testing.T, port int, host string, roots *routertest.Chain) (string, []byte, int, error) {
	t.Helper()
	cfg := &tls.Config{ServerName: host}
	if roots != nil {
		cfg.RootCAs = roots.Roots
	}
	tr := &http.Transport{
		TLSClientConfig: cfg,
		DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, network, listener(port))
		},
		DisableKeepAlives: true,
	}
	defer tr.CloseIdleConnections()
	c := &http.Client{Transport: tr, Timeout: 20 * time.Second}
	resp, err := c.Get("https://" + net.JoinHostPort(host, strconv.Itoa(port)) + "/")
	if err != nil {
		return "", nil, 0, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return "", nil, 0, err
	}
	peers := resp.TLS.PeerCertificates
	return string(b), peers[0].Raw, len(peers), nil
}

func TestTraffic(t *testing.T) {
	d, h := start(t, 1)
	port := h.Ports[0]
	ctx := t.Context()
	plain, tlsAddr, l4Chain := backends(t, "pass.example.test")
	web := routertest.WriteChain(t, t.TempDir(), "web.example.test")
	routes := []executor.Route{
		{Listener: listener(port), Hostname: "web.example.test", Backend: plain, Mode: spec.ModeL7, CertFile: web.CertFile, KeyFile: web.KeyFile},
		{Listener: listener(port), Hostname: "pass.example.test", Backend: tlsAddr, Mode: spec.ModeL4},
	}
	for _, r := range routes {
		if err := d.Upsert(ctx, r); err != nil {
			t.Fatalf("Upsert %s: %v\n%s", r, err, h.Log())
		}
	}
	check := func(when string) {
		t.Helper()
		body, leaf, n, err := get(t, port, "web.example.test", &web)
		if err != nil {
			t.Fatalf("%s: l7: %v", when, err)
		}
		if !strings.HasPrefix(body, "plain host=web.example.test") || sha256.Sum256(leaf) != web.Fingerprint || n < 2 {
			t.Fatalf("%s: l7 answered %q with a chain of %d, leaf match %v", when, body, n, sha256.Sum256(leaf) == web.Fingerprint)
		}
		body, leaf, _, err = get(t, port, "pass.example.test", &l4Chain)
		if err != nil {
			t.Fatalf("%s: l4: %v", when, err)
		}
		if !strings.HasPrefix(body, "tls host=pass.example.test") || sha256.Sum256(leaf) != l4Chain.Fingerprint {
			t.Fatalf("%s: l4 answered %q, backend's own certificate: %v", when, body, sha256.Sum256(leaf) == l4Chain.Fingerprint)
		}
		if _, _, _, err := get(t, port, "nobody.example.test", nil); err == nil {
			t.Fatalf("%s: an unrouted hostname got an answer", when)
		}
	}
	check("after upsert")

	// TLS for one hostname does not reach another by its Host header.
	tr := &http.Transport{TLSClientConfig: &tls.Config{ServerName: "web.example.test", RootCAs: web.Roots},
		DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, network, listener(port))
		}}
	defer tr.CloseIdleConnections()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "https://web.example.test/", nil)
	req.Host = "other.example.test"
	if resp, err := tr.RoundTrip(req); err != nil || resp.StatusCode != http.StatusMisdirectedRequest {
		t.Fatalf("Host differing from SNI: %v %v, want 421", resp, err)
	} else {
		resp.Body.Close()
	}

	// The files a restarted haproxy loads are kept in step.
	if err := h.Restart(ctx); err != nil {
		t.Fatal(err)
	}
	check("after a restart")
	got, err := d.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0] != routes[1] || got[1] != routes[0] {
		t.Fatalf("after a restart List = %v", got)
	}

	// A certificate renewed on disk shows as a difference, and an upsert
	// makes haproxy serve it.
	web2 := routertest.WriteChain(t, filepath.Dir(web.CertFile), "web.example.test")
	got, _ = d.List(ctx)
	if !strings.Contains(got[1].CertFile, "stale") {
		t.Fatalf("renewed certificate not reported: %+v", got[1])
	}
	if err := d.Upsert(ctx, routes[0]); err != nil {
		t.Fatal(err)
	}
	if _, leaf, _, err := get(t, port, "web.example.test", &web2); err != nil || sha256.Sum256(leaf) != web2.Fingerprint {
		t.Fatalf("renewed certificate not served: %v", err)
	}

	// Removing one route leaves the other serving; the certificate goes.
	if err := d.Remove(ctx, listener(port), "web.example.test"); err != nil {
		t.Fatal(err)
	}
	if _, _, _, err := get(t, port, "web.example.test", &web2); err == nil {
		t.Fatal("removed l7 route still answers")
	}
	if _, _, _, err := get(t, port, "pass.example.test", &l4Chain); err != nil {
		t.Fatalf("l4 route broken by removing another: %v", err)
	}
	if _, err := os.Lstat(filepath.Join(h.Dir, haproxy.CertsDir, "web.example.test.crt")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("certificate link left behind: %v", err)
	}
	if out, _ := h.Command(ctx, "show ssl cert"); strings.Contains(out, "web.example.test") {
		t.Fatalf("certificate left in haproxy: %s", out)
	}
}

func TestBackendHostMustBeAnAddress(t *testing.T) {
	cfg := haproxy.Config{Dir: t.TempDir(), AdminSocket: "/nonexistent/admin.sock", Listeners: []executor.Listener{{Address: "127.0.0.1", Port: 8443}}}
	d, err := haproxy.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	err = d.Upsert(t.Context(), executor.Route{Listener: "127.0.0.1:8443", Hostname: "a.example.test", Backend: "node1.example:10000", Mode: spec.ModeL4})
	if !errors.Is(err, executor.ErrInvalidRoute) {
		t.Fatalf("backend by name: %v", err)
	}
}

func TestRenderIsValidForHAProxy(t *testing.T) {
	if _, err := os.Stat("/usr/sbin/haproxy"); err != nil {
		testenv.Missing(t, "haproxy is not installed")
	}
	dir := t.TempDir()
	cfg := haproxy.Config{Dir: dir, AdminSocket: filepath.Join(dir, "a.sock"),
		Listeners: []executor.Listener{{Port: 443}, {Address: "127.0.0.1", Port: 8443}}}
	if _, err := haproxy.WriteBase(cfg); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("haproxy", "-c", "-f", cfg.ConfigPath()).CombinedOutput()
	if err != nil {
		t.Fatalf("haproxy -c: %v\n%s", err, out)
	}
	if changed, err := haproxy.WriteBase(cfg); err != nil || changed {
		t.Fatalf("second WriteBase: changed=%v err=%v", changed, err)
	}
}

func TestMain(m *testing.M) { testenv.Main(m) }

// TestDocShowsTheBaseConfig keeps docs/ingress.md's copy of the base
// configuration the one Render produces.
func TestDocShowsTheBaseConfig(t *testing.T) {
	doc, err := os.ReadFile("../../docs/ingress.md")
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := haproxy.Render(haproxy.Config{Dir: "/etc/haproxy/mcp", AdminSocket: "/run/haproxy/mcp-admin.sock",
		Listeners: []executor.Listener{{Port: 443}}})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(doc), "```\n"+string(cfg)+"```\n") {
		t.Fatal("docs/ingress.md does not show the base configuration Render produces; paste the output of Render for one listener on 443")
	}
}
