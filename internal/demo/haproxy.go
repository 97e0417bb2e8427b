package demo

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"

	"metacircular.net/mcp/executor"
	"metacircular.net/mcp/executor/haproxy"
)

// haproxyConfig is what the agent's [proxy] table says (AgentConfigText),
// as the haproxy driver sees it: Up renders the base configuration from
// it before the agent starts, so the agent's own Setup finds haproxy.cfg
// unchanged and has nothing to reload.
func haproxyConfig(s Settings) haproxy.Config {
	return haproxy.Config{
		Dir:          s.HAProxyDir(),
		AdminSocket:  s.HAProxyAdmin(),
		MasterSocket: s.HAProxyMaster(),
		Listeners:    []executor.Listener{{Address: "127.0.0.1", Port: s.ProxyPort}},
	}
}

// pickProxyPort returns the first port of ProxyPortFirst-ProxyPortLast on
// which nothing listens on 127.0.0.1, checked by binding it.
func pickProxyPort() (int, error) {
	for port := ProxyPortFirst; port <= ProxyPortLast; port++ {
		if portFree(port) {
			return port, nil
		}
	}
	return 0, fmt.Errorf("demo: no free port for haproxy's listener in 127.0.0.1:%d-%d (set one with --proxy-port)", ProxyPortFirst, ProxyPortLast)
}

func portFree(port int) bool {
	ln, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
	if err != nil {
		return false
	}
	_ = ln.Close()
	return true
}

// startHAProxy writes the base configuration and starts haproxy in
// master-worker mode (-W, master CLI on -S) in its own session, so it
// outlives this process like the agent; its PID goes to the pid file. It
// waits, at most 15 seconds, until the runtime API answers.
func startHAProxy(ctx context.Context, s Settings) (int, error) {
	if !portFree(s.ProxyPort) {
		return 0, fmt.Errorf("demo: port 127.0.0.1:%d, haproxy's listener, is taken (choose another with --proxy-port)", s.ProxyPort)
	}
	cfg := haproxyConfig(s)
	if _, err := haproxy.WriteBase(cfg); err != nil {
		return 0, fmt.Errorf("demo: haproxy config: %w", err)
	}
	// Sockets of a haproxy that died without cleaning up would make the
	// wait below talk to nothing and haproxy's bind fail.
	for _, sock := range []string{cfg.AdminSocket, cfg.MasterSocket} {
		if err := os.Remove(sock); err != nil && !errors.Is(err, os.ErrNotExist) {
			return 0, fmt.Errorf("demo: %w", err)
		}
	}
	logf, err := os.OpenFile(s.HAProxyLog(), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return 0, fmt.Errorf("demo: haproxy log: %w", err)
	}
	defer logf.Close()
	cmd := exec.Command("haproxy", "-W", "-S", cfg.MasterSocket+",mode,600", "-f", cfg.ConfigPath())
	cmd.Stdout, cmd.Stderr = logf, logf
	// Its own session, hence its own process group: the master and its
	// workers can be signalled together (stopHAProxy).
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return 0, fmt.Errorf("demo: start haproxy: %w", err)
	}
	pid := cmd.Process.Pid
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	if err := os.WriteFile(s.HAProxyPID(), []byte(strconv.Itoa(pid)+"\n"), 0o644); err != nil {
		_ = syscall.Kill(-pid, syscall.SIGKILL)
		return 0, fmt.Errorf("demo: %w", err)
	}

	deadline := time.Now().Add(15 * time.Second)
	for {
		if _, err := adminCommand(ctx, cfg.AdminSocket, "show info"); err == nil {
			return pid, nil
		}
		select {
		case <-exited:
			return 0, fmt.Errorf("demo: haproxy exited during start-up; last lines of %s:\n%s", s.HAProxyLog(), tail(s.HAProxyLog(), 20))
		case <-ctx.Done():
			_ = stopHAProxy(context.Background(), s)
			return 0, ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			_ = stopHAProxy(context.Background(), s)
			return 0, fmt.Errorf("demo: haproxy did not answer on %s within 15s; last lines of %s:\n%s", cfg.AdminSocket, s.HAProxyLog(), tail(s.HAProxyLog(), 20))
		}
	}
}

// stopHAProxy stops the demo's haproxy by its recorded PID (only when that
// process is still the one started under the state dir): SIGTERM to the
// master, which stops its workers; then SIGKILL to the process group, so a
// worker that outlived a killed master does not keep the listener.
func stopHAProxy(ctx context.Context, s Settings) error {
	pid, ok := recordedPID(s.HAProxyPID(), s.StateDir)
	if !ok {
		return nil
	}
	err := stopPID(ctx, pid, 10*time.Second)
	_ = syscall.Kill(-pid, syscall.SIGKILL)
	_ = os.Remove(s.HAProxyPID())
	return err
}

// adminCommand runs one command on haproxy's runtime API.
func adminCommand(ctx context.Context, socket, command string) (string, error) {
	var d net.Dialer
	c, err := d.DialContext(ctx, "unix", socket)
	if err != nil {
		return "", err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.WriteString(c, command+"\n"); err != nil {
		return "", err
	}
	b, err := io.ReadAll(c)
	return string(b), err
}

// getTLS does what the printed curl command does: it dials haproxy's
// listener on 127.0.0.1, asks for the hello hostname (SNI and Host), and
// trusts only the agent's local CA root. It retries until a 200 or the
// timeout: the root appears with the first certificate, and the route is
// registered a moment after the container runs.
func getTLS(ctx context.Context, s Settings, timeout time.Duration) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var lastErr error
	for {
		body, err := getTLSOnce(ctx, s)
		if err == nil {
			return body, nil
		}
		lastErr = err
		select {
		case <-ctx.Done():
			return "", lastErr
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// getTLSOnce is one request through the proxy, without retries.
func getTLSOnce(ctx context.Context, s Settings) (string, error) {
	pem, err := os.ReadFile(s.CARoot())
	if err != nil {
		return "", fmt.Errorf("the local CA's root: %w", err)
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(pem) {
		return "", fmt.Errorf("%s holds no certificate", s.CARoot())
	}
	listener := net.JoinHostPort("127.0.0.1", strconv.Itoa(s.ProxyPort))
	tr := &http.Transport{
		TLSClientConfig: &tls.Config{ServerName: Hostname(), RootCAs: roots, MinVersion: tls.VersionTLS12},
		DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, network, listener)
		},
		// One connection per request: each request checks the route as
		// it is now, not a connection opened before a switch.
		DisableKeepAlives: true,
	}
	defer tr.CloseIdleConnections()
	hc := &http.Client{Transport: tr, Timeout: 5 * time.Second}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.URL(), nil)
	if err != nil {
		return "", err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if err != nil {
		return "", fmt.Errorf("GET %s: %w", s.URL(), err)
	}
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("GET %s: %s: %s", s.URL(), resp.Status, strings.TrimSpace(string(b)))
	}
	return string(b), nil
}
