package testenv

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestGitServersWithGitCLI checks the test servers with the real git
// client, not only with go-git: clone over http-backend and ssh, and push
// over ssh (receive-pack), which status-note tests rely on.
func TestGitServersWithGitCLI(t *testing.T) {
	r := GitRepo(t)
	c1 := r.Commit(map[string]string{"mcp.toml": "x"}, "c1")
	r.Push()
	if r.Head() != c1 {
		t.Fatalf("Head = %s, want %s", r.Head(), c1)
	}

	t.Run("http", func(t *testing.T) {
		url := GitHTTPServer(t, r.Bare, WithGitBasicAuth("u", "p"))
		authed := strings.Replace(url, "http://", "http://u:p@", 1)
		dst := filepath.Join(t.TempDir(), "clone")
		Git(t, t.TempDir(), "clone", "--quiet", authed, dst)
		if got := strings.TrimSpace(Git(t, dst, "rev-parse", "HEAD")); got != c1.String() {
			t.Fatalf("cloned HEAD %s, want %s", got, c1)
		}
		cmd := GitCommand(t, t.TempDir(), "ls-remote", url)
		if err := cmd.Run(); err == nil {
			t.Fatal("ls-remote without credentials succeeded")
		}
	})

	t.Run("ssh", func(t *testing.T) {
		if _, err := exec.LookPath("ssh"); err != nil {
			t.Skip("no ssh client installed; go-git covers the server in the sync tests")
		}
		srv := GitSSHServer(t, r.Bare)
		sshCmd := "ssh -F /dev/null -o BatchMode=yes -o IdentitiesOnly=yes -i " + srv.KeyFile +
			" -o UserKnownHostsFile=" + srv.KnownHostsFile + " -o StrictHostKeyChecking=yes"
		dst := filepath.Join(t.TempDir(), "clone")
		clone := GitCommand(t, t.TempDir(), "clone", "--quiet", srv.URL, dst)
		clone.Env = append(clone.Env, "GIT_SSH_COMMAND="+sshCmd)
		if out, err := clone.CombinedOutput(); err != nil {
			t.Fatalf("clone over ssh: %v\n%s", err, out)
		}
		if err := os.WriteFile(filepath.Join(dst, "new.toml"), []byte("n"), 0o644); err != nil {
			t.Fatal(err)
		}
		Git(t, dst, "add", "new.toml")
		Git(t, dst, "commit", "--quiet", "-m", "over ssh")
		push := GitCommand(t, dst, "push", "--quiet", "origin", GitBranch)
		push.Env = append(push.Env, "GIT_SSH_COMMAND="+sshCmd)
		if out, err := push.CombinedOutput(); err != nil {
			t.Fatalf("push over ssh: %v\n%s", err, out)
		}
		if got := strings.TrimSpace(Git(t, dst, "rev-parse", "HEAD")); r.Head().String() != got {
			t.Fatalf("bare head %s after ssh push, want %s", r.Head(), got)
		}
	})
}
