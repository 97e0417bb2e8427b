package statusnote_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"metacircular.net/mcp/internal/testenv"
)

// gpgExportSecret writes the key's armored secret key (no passphrase) to a
// file, as an operator would for the agent.
func gpgExportSecret(t *testing.T, g *testenv.GPGSigner) string {
	t.Helper()
	cmd := exec.Command("gpg", "--batch", "--armor", "--export-secret-keys", g.Fingerprint)
	cmd.Env = append(os.Environ(), g.Env()...)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("gpg --export-secret-keys: %v", err)
	}
	p := filepath.Join(t.TempDir(), "agent.asc")
	if err := os.WriteFile(p, out, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}
