package agent

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"metacircular.net/mcp/api"
	"metacircular.net/mcp/executor"
	"metacircular.net/mcp/internal/testenv"
	"metacircular.net/mcp/planner"
	"metacircular.net/mcp/spec"
	"metacircular.net/mcp/statusnote"
)

// secretService is a one-component definition whose env references the
// given secrets (variable → secret name).
func secretService(name, image string, env ...string) string {
	return fmt.Sprintf(`name = %q
node = "n1"

[[components]]
name = %q
image = %q
env = [%s]

[[components.routes]]
port = 443
mode = "l7"
`, name, name, image, `"`+strings.Join(env, `", "`)+`"`)
}

// getEnv asks the hello container for one of its variables.
func getEnv(t *testing.T, port int, name string) string {
	t.Helper()
	get(t, port) // waits until it listens
	resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/env/%s", port, name))
	if err != nil {
		t.Fatalf("GET /env/%s: %v", name, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /env/%s: %s %s", name, resp.Status, b)
	}
	// hello answers the value and a newline of its own.
	return strings.TrimSuffix(string(b), "\n")
}

// A secret reaches the container; a changed secret file restarts it with
// the new value after a plan that showed the digest change; a missing
// secret fails only the service that references it, and a secret removed
// under a running service leaves it running untouched; and neither value
// appears in the agent's log, the plans (text and JSON, the agent's and
// a laptop's from the status note), the status, the note, the registry or
// the container labels.
func TestSecretsEndToEnd(t *testing.T) {
	secrets := filepath.Join(t.TempDir(), "secrets")
	if err := os.Mkdir(secrets, 0o700); err != nil {
		t.Fatal(err)
	}
	// Distinctive values, so a leak anywhere is found by a substring search.
	value1 := "s3cr3t-one-" + testenv.RandomID(8)
	value2 := "s3cr3t-two-" + testenv.RandomID(8)
	writeSecret(t, secrets, "db-password", value1+"\n")

	agentKey := testenv.NewSSHSigner(t, "mcp-agent@n1")
	n := newTestNode(t, withConfig(fmt.Sprintf("\n[secrets]\ndir = %q\n\n[status]\nnotes = true\nsigning_key_file = %q\n", secrets, agentKey.KeyFile)))
	img := testenv.TestImage(t, n.registry, testenv.UniqueRepo("web"), "v1")
	c1 := n.repo.Commit(map[string]string{
		"mcp.toml":           n.platform(),
		"services/web.toml":  secretService("web", img, "DB_PASSWORD=secret:db-password", "PLAIN=visible", "LIT=secret::literal"),
		"services/lost.toml": secretService("lost", img, "TOKEN=secret:api-token"),
	}, "c1")
	n.repo.Push()

	// 1. Deploy: web gets the value, lost fails alone, naming the secret
	// and the directory.
	out1 := n.once()
	wantResult(t, out1, ResultPartial)
	port := n.port("web", "web", "default")
	if got := getEnv(t, port, "DB_PASSWORD"); got != value1 {
		t.Fatalf("DB_PASSWORD in the container = %q, want the secret's value (trailing newline dropped)", got)
	}
	if got := getEnv(t, port, "LIT"); got != "secret:literal" {
		t.Fatalf("LIT = %q, want the escaped literal", got)
	}
	if len(out1.Invalid) != 1 || out1.Invalid[0].Name != "lost" {
		t.Fatalf("invalid = %+v, want lost only", out1.Invalid)
	}
	wantMsg := "services/lost.toml: components[0].env[0]: TOKEN: secret api-token not found in " + secrets + " on this node"
	if got := out1.Invalid[0].Diagnostics.Error(); got != wantMsg {
		t.Fatalf("lost: %q\nwant %q", got, wantMsg)
	}
	if _, ok := n.containers()["lost.lost.a"]; ok {
		t.Fatal("lost was started without its secret")
	}
	hash1 := n.containers()["web.web.a"].Labels[executor.LabelRuntimeHash]

	// 2. The operator's laptop plans from the status note: the agent's
	// hash, the same error, no value.
	laptop := filepath.Join(t.TempDir(), "laptop")
	testenv.Git(t, filepath.Dir(laptop), "clone", "--quiet", n.repo.Bare, laptop)
	laptopJSON, code := mcpCLI(t, "plan", "--repo", laptop, "--node", "n1", "--from-git", "--json")
	if code != 1 { // 1: a service has errors
		t.Fatalf("mcp plan --from-git exit %d, want 1\n%s", code, laptopJSON)
	}
	laptopText, _ := mcpCLI(t, "plan", "--repo", laptop, "--node", "n1", "--from-git")
	if !strings.Contains(laptopText, "secret api-token not found in "+secrets) {
		t.Fatalf("the laptop's plan does not name the missing secret:\n%s", laptopText)
	}
	var lp struct{ Hash string }
	if err := json.Unmarshal([]byte(laptopJSON), &lp); err != nil {
		t.Fatal(err)
	}
	out2 := n.once()
	wantResult(t, out2, ResultPartial)
	if lp.Hash != out2.PlanHash {
		t.Fatalf("laptop plan hash %s, agent's %s", lp.Hash, out2.PlanHash)
	}
	if out2.Plan == nil || !out2.Plan.IsNoOp() {
		t.Fatalf("an unchanged secret replans: %+v", out2.Plan)
	}

	// 3. The secret changes on the node: the plan shows a digest change
	// (no value), the container restarts with the new value.
	writeSecret(t, secrets, "db-password", value2)
	out3 := n.once()
	wantResult(t, out3, ResultPartial)
	step, ok := out3.Plan.Step("web/web/container/a")
	if !ok || step.Action != planner.ActionUpdate || len(step.Changes) != 1 || step.Changes[0].Field != "env.DB_PASSWORD" ||
		!strings.HasPrefix(step.Changes[0].Old, "secret db-password "+spec.DigestPrefix) ||
		!strings.HasPrefix(step.Changes[0].New, "secret db-password "+spec.DigestPrefix) || step.Changes[0].Old == step.Changes[0].New {
		t.Fatalf("container step %+v (ok %v), want an env.DB_PASSWORD digest change", step, ok)
	}
	if out3.PlanHash == out2.PlanHash {
		t.Fatal("the plan hash did not change with the secret")
	}
	if got := getEnv(t, n.port("web", "web", "default"), "DB_PASSWORD"); got != value2 {
		t.Fatalf("after the change DB_PASSWORD = %q, want the new value", got)
	}
	if h := n.containers()["web.web.a"].Labels[executor.LabelRuntimeHash]; h == hash1 {
		t.Fatal("the runtime hash did not change with the secret")
	}

	// 4. The file is removed: web is invalid on the node and left as
	// deployed; its running container matches the registry, so the
	// converge pass leaves it alone without needing the value.
	pid := n.containers()["web.web.a"].PID
	if err := os.Remove(filepath.Join(secrets, "db-password")); err != nil {
		t.Fatal(err)
	}
	out4 := n.once()
	wantResult(t, out4, ResultPartial)
	if len(out4.Invalid) != 2 || !strings.Contains(out4.Invalid[1].Diagnostics.Error(), "DB_PASSWORD: secret db-password not found in "+secrets) {
		t.Fatalf("invalid after removing the file: %+v", out4.Invalid)
	}
	if got := n.containers()["web.web.a"].PID; got != pid || len(out4.Repairs) != 0 || strings.Contains(n.logs.String(), "msg=converge") {
		t.Fatalf("web was touched or converge failed (pid %d → %d, repairs %+v)", pid, got, out4.Repairs)
	}
	if got := getEnv(t, n.port("web", "web", "default"), "DB_PASSWORD"); got != value2 {
		t.Fatalf("the deployed web lost its value: %q", got)
	}

	// 5. Nowhere else.
	var texts []string
	for _, out := range []Outcome{out1, out2, out3, out4} {
		var b bytes.Buffer
		if err := planner.Render(&b, out.Plan); err != nil {
			t.Fatal(err)
		}
		js, _ := json.Marshal(out.Plan)
		texts = append(texts, b.String(), string(js), out.Err)
	}
	a := New(n.cfg, Deps{Registry: mustOpen(t, n), Runtime: n.driver()})
	a.keepLast(out3)
	st, err := a.Status(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	stJSON, _ := json.Marshal(st)
	if lost, _ := st.Service("lost"); lost.State != api.StateInvalid || !strings.Contains(string(stJSON), "secret api-token not found") {
		t.Fatalf("status of lost: %+v", lost)
	}
	snap, err := a.Snapshot(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	snapJSON, _ := json.Marshal(snap)
	if snap.Secrets == nil || snap.Secrets.Dir != secrets || snap.Secrets.Digests["db-password"] != "" {
		t.Fatalf("snapshot secrets: %+v", snap.Secrets)
	}
	closeRegistry(t, a)
	regJSON, _ := json.Marshal(n.snapshot())
	note := testenv.Git(t, n.repo.Bare, "notes", "--ref=mcp/n1", "show", c1.String())
	if rec, err := statusnote.Parse([]byte(note)); err != nil || rec.Planner == nil || rec.Planner.Secrets == nil {
		t.Fatalf("note: %v %+v", err, rec)
	}
	var labels []string
	for _, c := range n.containers() {
		for k, v := range c.Labels {
			labels = append(labels, k+"="+v)
		}
	}
	texts = append(texts, string(stJSON), string(snapJSON), string(regJSON), note, strings.Join(labels, "\n"),
		laptopJSON, laptopText, n.logs.String())
	if !strings.Contains(n.logs.String(), "reconciled") {
		t.Fatal("the agent's log was not captured")
	}
	for i, s := range texts {
		for _, v := range []string{value1, value2} {
			if strings.Contains(s, v) {
				t.Errorf("output %d holds a secret value:\n%s", i, s)
			}
		}
	}
}
