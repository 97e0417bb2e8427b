package mcproxy_test

import (
	"testing"

	"metacircular.net/mcp/executor/mcproxy"
	"metacircular.net/mcp/executor/mcproxy/mcproxystandin"
	"metacircular.net/mcp/executor/routertest"
)

// TestContract runs the router suite against the adapter talking to the
// stand-in over a real Unix socket and gRPC.
func TestContract(t *testing.T) {
	routertest.Run(t, func(t *testing.T) routertest.Env {
		listeners := []string{":443", ":8443"}
		s, err := mcproxystandin.Start(t.TempDir(), listeners...)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(s.Stop)
		c, err := mcproxy.New(s.Socket, mcproxy.WithListeners(listeners...))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return routertest.Env{Router: c, Listeners: listeners, Undeclared: ":9443", CertDir: t.TempDir()}
	})
}
