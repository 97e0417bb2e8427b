package agent

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"metacircular.net/mcp/api"
	"metacircular.net/mcp/internal/testenv"
)

// Images come from a registry that requires basic auth (htpasswd). With the
// right password in the configured file the service deploys; with a wrong
// one the new service fails with an error naming the registry, the user
// and the 401, in the reconcile's outcome and in `mcp status`, and nothing
// else is disturbed; once the file is fixed (it is read again on every
// 401, no restart) the next reconcile deploys it.
func TestRegistryCredentials(t *testing.T) {
	const user, password = "mcp", "secret"
	reg := testenv.RegistryWithAuth(t, user, password)
	other := testenv.TestImage(t, reg, testenv.UniqueRepo("auth/other"), "v1", testenv.WithCredentials(user, password))
	web := testenv.TestImage(t, reg, testenv.UniqueRepo("auth/web"), "v2", testenv.WithCredentials(user, password))
	pwFile := filepath.Join(t.TempDir(), "registry-password")
	writePassword := func(p string) {
		t.Helper()
		if err := os.WriteFile(pwFile, []byte(p+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	writePassword(password)
	n := newTestNode(t, withRegistry(reg), withPollInterval("1h"), withConfig(fmt.Sprintf(`
[[registries]]
host = %q
username = %q
password_file = %q
plain_http = true
`, reg, user, pwFile)))

	// The right password: deployed.
	n.push(map[string]string{"mcp.toml": n.platform(), "services/other.toml": service("other", other)}, "other")
	wantResult(t, n.once(), ResultOK)
	otherPort := n.port("other", "other", "default")
	get(t, otherPort)
	otherPID := n.containers()["other.other.a"].PID

	// A wrong password: web fails, clearly; other is untouched.
	writePassword("not-the-password")
	n.push(map[string]string{"services/web.toml": service("web", web)}, "web")
	out := n.once()
	wantResult(t, out, ResultPartial)
	var webErr string
	for _, s := range out.Services {
		if s.Service == "web" && s.Err != nil {
			webErr = s.Err.Error()
		}
		if s.Service != "web" && s.Err != nil {
			t.Errorf("%s failed too: %v", s.Service, s.Err)
		}
	}
	wantAuthError(t, "the reconcile's outcome for web", webErr, reg, user)
	if _, ok := n.containers()["web.web.a"]; ok {
		t.Error("web's container exists although its image could not be pulled")
	}
	for _, l := range n.snapshot().Leases {
		if l.Service == "web" {
			t.Errorf("web's failed deploy left lease %s (port %d)", l.Key(), l.Port)
		}
	}
	if pid := n.containers()["other.other.a"].PID; pid != otherPID {
		t.Errorf("other was restarted by web's failed pull (pid %d → %d)", otherPID, pid)
	}
	get(t, otherPort)

	// What the operator reads: the daemon's first reconcile fails the same
	// way, and `mcp status` says why.
	c := n.startDaemon()
	waitFor(t, 3*time.Minute, "the daemon's first reconcile", func() bool {
		st, err := c.Status(t.Context())
		return err == nil && st.LastReconcile.Result != ""
	})
	st, err := c.Status(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if st.LastReconcile.Result != api.ResultPartial {
		t.Errorf("last reconcile = %+v, want partial", st.LastReconcile)
	}
	ws, _ := st.Service("web")
	if ws.State != api.StateFailed {
		t.Errorf("web's status = %+v, want failed", ws)
	}
	wantAuthError(t, "web's status error", ws.Error, reg, user)
	if o, _ := st.Service("other"); o.State != api.StateRunning {
		t.Errorf("other's status = %+v, want running", o)
	}

	// The file fixed: the next reconcile pulls and deploys web.
	writePassword(password)
	res := syncNow(t, c)
	wantSync(t, res, api.ResultOK)
	ports := statusPorts(t, c, "web")
	if body := get(t, ports["web/default"]); !strings.Contains(body, "version=v2") {
		t.Errorf("web answered %q, want version=v2", body)
	}
	if pid := n.containers()["other.other.a"].PID; pid != otherPID {
		t.Errorf("other was restarted (pid %d → %d)", otherPID, pid)
	}
}

// wantAuthError checks that an error message tells the operator what to
// fix: which registry refused, for which user, and that it was a 401.
func wantAuthError(t *testing.T, what, msg, host, user string) {
	t.Helper()
	for _, want := range []string{host, "user " + user, "401"} {
		if !strings.Contains(msg, want) {
			t.Errorf("%s = %q: does not say %q", what, msg, want)
		}
	}
	if strings.Contains(msg, "secret") || strings.Contains(msg, "not-the-password") {
		t.Errorf("%s = %q: shows the password", what, msg)
	}
}
