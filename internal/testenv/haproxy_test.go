package testenv

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// TestHAProxy starts a private haproxy, talks to its runtime API, restarts
// it and stops it, leaving its ports free.
func TestHAProxy(t *testing.T) {
	h := HAProxy(t, 1, func(h *HAProxyDaemon) (string, error) {
		path := filepath.Join(h.Dir, "haproxy.cfg")
		cfg := fmt.Sprintf(`global
    stats socket %s mode 600 level admin
defaults
    timeout connect 1s
    timeout client 1s
    timeout server 1s
frontend in
    mode tcp
    bind 127.0.0.1:%d
`, h.AdminSocket, h.Ports[0])
		return path, os.WriteFile(path, []byte(cfg), 0o600)
	})
	ctx := context.Background()
	out, err := h.Command(ctx, "show info")
	if err != nil || !strings.Contains(out, "Name: HAProxy") {
		t.Fatalf("show info: %q %v", out, err)
	}
	addr := "127.0.0.1:" + strconv.Itoa(h.Ports[0])
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatalf("listener: %v", err)
	}
	c.Close()
	pid := h.PID()
	if err := h.Restart(ctx); err != nil {
		t.Fatal(err)
	}
	if h.PID() == pid || h.PID() == 0 {
		t.Fatalf("restart kept pid %d", pid)
	}
	h.Stop()
	if h.PID() != 0 {
		t.Fatal("stopped daemon has a pid")
	}
	if c, err := net.Dial("tcp", addr); err == nil {
		c.Close()
		t.Fatal("the listener still accepts after Stop")
	}
	h.Stop() // twice is fine
}
