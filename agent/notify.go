package agent

import (
	"fmt"
	"net"
	"os"
	"strings"
)

// sdNotify sends a state line ("READY=1", "STOPPING=1", "STATUS=...") to
// the service manager named by $NOTIFY_SOCKET, systemd's Type=notify
// protocol: one datagram on a Unix socket, '@' meaning the abstract
// namespace. Without the variable (not started by systemd, or not
// Type=notify) it does nothing. Written here rather than pulled in as a
// module: the protocol is these few lines.
func sdNotify(state string) error {
	addr := os.Getenv("NOTIFY_SOCKET")
	if addr == "" {
		return nil
	}
	if !strings.HasPrefix(addr, "/") && !strings.HasPrefix(addr, "@") {
		return fmt.Errorf("NOTIFY_SOCKET %q is neither a path nor an abstract socket", addr)
	}
	name := addr
	if strings.HasPrefix(addr, "@") {
		name = "\x00" + addr[1:]
	}
	conn, err := net.DialUnix("unixgram", nil, &net.UnixAddr{Name: name, Net: "unixgram"})
	if err != nil {
		return fmt.Errorf("notify service manager on %s: %w", addr, err)
	}
	defer conn.Close()
	if _, err := conn.Write([]byte(state)); err != nil {
		return fmt.Errorf("notify service manager on %s: %w", addr, err)
	}
	return nil
}
