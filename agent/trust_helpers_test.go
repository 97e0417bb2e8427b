package agent

import (
	"context"
	"testing"

	"metacircular.net/mcp/registry"
)

// quarantined reads the registry's quarantine list.
func (n *testNode) quarantined() []registry.Quarantine {
	n.t.Helper()
	reg, err := registry.Open(n.cfg.RegistryPath(), registry.ReadOnly())
	if err != nil {
		n.t.Fatalf("open registry: %v", err)
	}
	defer reg.Close()
	q, err := reg.QuarantineList(context.Background())
	if err != nil {
		n.t.Fatal(err)
	}
	return q
}

// closeRegistry releases the registry an in-process Agent holds, so the
// next once() can open it.
func closeRegistry(t *testing.T, a *Agent) {
	t.Helper()
	if err := a.reg.Close(); err != nil {
		t.Fatal(err)
	}
}
