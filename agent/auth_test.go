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
// right password in the configured file services deploy; with a wrong one
// a new service and a new version fail with an error naming the registry,
// the user and the 401, in the reconcile's outcome and in `mcp status`;
// the deployed version keeps running and nothing else is disturbed; once
// the file is fixed (it is read again on every 401, no restart) the next
// reconcile deploys both.
func TestRegistryCredentials(t *testing.T) {
	const user, password = "mcp", "secret"
	reg := testenv.RegistryWithAuth(t, user, password)
	other := testenv.TestImage(t, reg, testenv.UniqueRepo("auth/other"), "v1", testenv.WithCredentials(user, password))
	web := testenv.TestImage(t, reg, testenv.UniqueRepo("auth/web"), "v2", testenv.WithCredentials(user, password))
	updRepo := testenv.UniqueRepo("auth/upd")
	updV1 := testenv.TestImage(t, reg, updRepo, "v1", testenv.WithCredentials(user, password))
	updV2 := testenv.TestImage(t, reg, updRepo, "v2", testenv.WithCredentials(user, password))
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
	n.push(map[string]string{
		"mcp.toml":            n.platform(),
		"services/other.toml": service("other", other),
		"services/upd.toml":   service("upd", updV1),
	}, "other and upd")
	wantResult(t, n.once(), ResultOK)
	otherPort, updPort := n.port("other", "other", "default"), n.port("upd", "upd", "default")
	get(t, otherPort)
	otherPID, updPID := n.containers()["other.other.a"].PID, n.containers()["upd.upd.a"].PID

	// A wrong password: the new web and upd's new version fail, clearly;
	// upd keeps running its deployed version and other is untouched.
	writePassword("not-the-password")
	n.push(map[string]string{"services/web.toml": service("web", web), "services/upd.toml": service("upd", updV2)}, "web, upd v2")
	out := n.once()
	wantResult(t, out, ResultPartial)
	errs := map[string]string{}
	for _, s := range out.Services {
		if s.Err != nil {
			errs[s.Service] = s.Err.Error()
		}
	}
	wantAuthError(t, "the reconcile's outcome for web", errs["web"], reg, user)
	wantAuthError(t, "the reconcile's outcome for upd", errs["upd"], reg, user)
	if len(errs) != 2 {
		t.Errorf("failed services: %v, want web and upd only", errs)
	}
	if pid := n.containers()["upd.upd.a"].PID; pid != updPID {
		t.Errorf("upd's deployed version was restarted by its failed update (pid %d → %d)", updPID, pid)
	}
	if body := get(t, updPort); !strings.Contains(body, "version=v1") {
		t.Errorf("upd answered %q after its failed update, want the deployed v1", body)
	}
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
	us, _ := st.Service("upd")
	if us.State != api.StateFailed || !strings.Contains(us.Error, "previously deployed version is kept") {
		t.Errorf("upd's status = %+v, want failed, saying the deployed version is kept", us)
	}
	wantAuthError(t, "upd's status error", us.Error, reg, user)
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
	if body := get(t, updPort); !strings.Contains(body, "version=v2") {
		t.Errorf("upd answered %q on its port after the fix, want version=v2", body)
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
