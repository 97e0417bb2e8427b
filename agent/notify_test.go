package agent

import (
	"net"
	"path/filepath"
	"testing"
	"time"
)

func TestSDNotify(t *testing.T) {
	tests := []struct {
		name     string
		abstract bool
	}{
		{"path", false},
		{"abstract", true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			name := filepath.Join(t.TempDir(), "notify.sock")
			env := name
			if tc.abstract {
				env = "@mcp-test-notify-" + filepath.Base(filepath.Dir(name))
				name = "\x00" + env[1:]
			}
			conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: name, Net: "unixgram"})
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			t.Setenv("NOTIFY_SOCKET", env)
			if err := sdNotify("READY=1\nSTATUS=ok"); err != nil {
				t.Fatal(err)
			}
			buf := make([]byte, 256)
			_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
			n, err := conn.Read(buf)
			if err != nil {
				t.Fatal(err)
			}
			if got := string(buf[:n]); got != "READY=1\nSTATUS=ok" {
				t.Errorf("datagram = %q", got)
			}
		})
	}
}

func TestSDNotifyWithoutManager(t *testing.T) {
	t.Setenv("NOTIFY_SOCKET", "")
	if err := sdNotify("READY=1"); err != nil {
		t.Errorf("without NOTIFY_SOCKET: %v, want nothing done", err)
	}
	t.Setenv("NOTIFY_SOCKET", "relative/path")
	if err := sdNotify("READY=1"); err == nil {
		t.Error("a relative NOTIFY_SOCKET was accepted")
	}
}
