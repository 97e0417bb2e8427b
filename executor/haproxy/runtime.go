package haproxy

import (
	"context"
	"fmt"
	"io"
	"net"
	"strings"
	"time"
)

// cli speaks haproxy's runtime API in its one-command-per-connection
// mode: write the command, read until haproxy closes.
type cli struct {
	socket string
}

// maxResponse bounds what one command may return; a few hundred routes
// fit many times over.
const maxResponse = 16 << 20

// cmd runs one command. payload, when set, is sent as the command's
// "<<" payload (certificates, crt-list lines).
func (c cli) cmd(ctx context.Context, command, payload string) (string, error) {
	var d net.Dialer
	conn, err := d.DialContext(ctx, "unix", c.socket)
	if err != nil {
		return "", fmt.Errorf("haproxy runtime API at %s: %w", c.socket, err)
	}
	defer func() { _ = conn.Close() }() // the answer was read in full, or the error says why
	// The socket has no notion of our context: tie it to the deadline and
	// to cancellation.
	if dl, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(dl)
	} else {
		_ = conn.SetDeadline(time.Now().Add(30 * time.Second))
	}
	stop := context.AfterFunc(ctx, func() { _ = conn.SetDeadline(time.Now()) })
	defer stop()
	msg := command + "\n"
	if payload != "" {
		// A payload ends at the first empty line.
		msg = command + " <<\n" + strings.TrimRight(payload, "\n") + "\n\n"
	}
	if _, err := io.WriteString(conn, msg); err != nil {
		return "", fmt.Errorf("haproxy runtime API %q: %w", firstWords(command), err)
	}
	out, err := io.ReadAll(io.LimitReader(conn, maxResponse))
	if err != nil {
		return "", fmt.Errorf("haproxy runtime API %q: %w", firstWords(command), err)
	}
	return strings.TrimSpace(string(out)), nil
}

// expect runs a command whose success is signalled by ok appearing in the
// answer ("" means an empty answer).
func (c cli) expect(ctx context.Context, command, payload, ok string) (string, error) {
	out, err := c.cmd(ctx, command, payload)
	if err != nil {
		return out, err
	}
	if (ok == "" && out != "") || (ok != "" && !strings.Contains(out, ok)) {
		return out, fmt.Errorf("haproxy refused %q: %s", firstWords(command), oneLine(out))
	}
	return out, nil
}

func firstWords(cmd string) string {
	f := strings.Fields(cmd)
	if len(f) > 4 {
		f = f[:4]
	}
	return strings.Join(f, " ")
}

func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}
