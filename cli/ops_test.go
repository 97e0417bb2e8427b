package cli

import (
	"context"
	"encoding/json"
	"strings"
	"sync"
	"testing"
	"time"

	"metacircular.net/mcp/api"
)

// eventAgent is a fakeAgent with an event history (api.EventBackend).
type eventAgent struct {
	*fakeAgent
	emu    sync.Mutex
	events []api.Event
}

func (a *eventAgent) Events(_ context.Context, after uint64) ([]api.Event, error) {
	a.emu.Lock()
	defer a.emu.Unlock()
	var out []api.Event
	for _, e := range a.events {
		if e.Seq > after {
			out = append(out, e)
		}
	}
	return out, nil
}

func (a *eventAgent) add(e api.Event) {
	a.emu.Lock()
	defer a.emu.Unlock()
	a.events = append(a.events, e)
}

func newEventAgent(t *testing.T) *eventAgent {
	return &eventAgent{fakeAgent: newFakeAgent(t), events: []api.Event{
		{Seq: 1, Time: t0, Kind: "deploy", Service: "web", Component: "web", Commit: "0123456789abcdef0123", Message: "web deployed from 0123456789ab (3 steps)"},
		{Seq: 2, Time: t0.Add(time.Minute), Kind: "failure", Service: "mcq", Component: "mcq", Message: "mcq failed: pull: not found; its new work was undone"},
		{Seq: 3, Time: t0.Add(2 * time.Minute), Kind: "drift", Service: "web", Component: "web", Commit: "0123456789abcdef0123", Message: "drift repaired: recreated a missing container (web.web.a)"},
	}}
}

func TestEvents(t *testing.T) {
	t.Setenv("NO_COLOR", "")
	t.Setenv("CLICOLOR_FORCE", "")
	sock := serve(t, newEventAgent(t))
	tests := []struct {
		name     string
		args     []string
		want     []string
		dontWant []string
	}{
		{"all", nil, []string{"     1  2025-03-01 12:00:00 UTC  deploy", "web deployed", "mcq failed", "drift repaired", "0123456789ab"}, nil},
		{"last one", []string{"-n", "1"}, []string{"drift repaired"}, []string{"web deployed"}},
		{"after", []string{"--after", "2"}, []string{"drift repaired"}, []string{"mcq failed"}},
		{"one service", []string{"--service", "mcq"}, []string{"mcq failed"}, []string{"web deployed", "drift"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			code, out, errOut := run(context.Background(), append([]string{"events", "--socket", sock}, tc.args...)...)
			if code != ExitOK {
				t.Fatalf("exit %d: %s", code, errOut)
			}
			for _, w := range tc.want {
				if !strings.Contains(out, w) {
					t.Errorf("output lacks %q:\n%s", w, out)
				}
			}
			for _, w := range tc.dontWant {
				if strings.Contains(out, w) {
					t.Errorf("output has %q:\n%s", w, out)
				}
			}
			if strings.Contains(out, "\x1b[") {
				t.Errorf("colour on a pipe:\n%q", out)
			}
		})
	}
}

func TestEventsJSONLines(t *testing.T) {
	sock := serve(t, newEventAgent(t))
	code, out, errOut := run(context.Background(), "events", "--socket", sock, "--json")
	if code != ExitOK {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 3 {
		t.Fatalf("got %d lines, want one per event:\n%s", len(lines), out)
	}
	var e api.Event
	if err := json.Unmarshal([]byte(lines[2]), &e); err != nil {
		t.Fatal(err)
	}
	if e.Seq != 3 || e.Kind != "drift" || e.Commit != "0123456789abcdef0123" || e.Component != "web" {
		t.Errorf("last event = %+v", e)
	}
}

// -f prints the history, then events as they are recorded, until
// interrupted (which is a clean exit).
func TestEventsFollow(t *testing.T) {
	a := newEventAgent(t)
	sock := serve(t, a)
	ctx, cancel := context.WithCancel(context.Background())
	var out, errb syncBuffer
	done := make(chan int, 1)
	go func() {
		done <- Main(ctx, []string{"events", "--socket", sock, "-f"}, strings.NewReader(""), &out, &errb)
	}()
	waitForSubstring(t, &out, "drift repaired")
	a.add(api.Event{Seq: 4, Time: t0.Add(3 * time.Minute), Kind: "restart", Service: "web", Message: "web.web.a exited with code 1 and was restarted"})
	waitForSubstring(t, &out, "was restarted")
	cancel()
	if code := <-done; code != ExitOK {
		t.Fatalf("exit %d after interrupt: %s", code, errb.String())
	}
}

func TestEventsFromAgentWithoutHistory(t *testing.T) {
	sock := serve(t, newFakeAgent(t)) // a Backend without Events
	code, _, errOut := run(context.Background(), "events", "--socket", sock)
	if code != ExitError || !strings.Contains(errOut, "keeps no event history") {
		t.Errorf("exit %d, stderr %q", code, errOut)
	}
}

func TestVersion(t *testing.T) {
	tests := []struct {
		name      string
		agent     string
		args      []string
		want      []string
		wantWarn  bool
		noAgentOK bool
	}{
		// The fake agent's server is this build, so GET /v1/version
		// reports the CLI's own version: no skew.
		{"same build", "fake", nil, []string{"cli:    dev", "agent:  dev"}, false, false},
		{"no agent", "none", nil, []string{"cli:    dev", "agent:  unknown (no agent is listening"}, false, true},
		{"client only", "none", []string{"--client"}, []string{"cli:    dev"}, false, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			sock := "/nonexistent/mcp.sock"
			if tc.agent == "fake" {
				sock = serve(t, newFakeAgent(t))
			}
			code, out, errOut := run(context.Background(), append([]string{"version", "--socket", sock}, tc.args...)...)
			if code != ExitOK {
				t.Fatalf("exit %d: %s", code, errOut)
			}
			for _, w := range tc.want {
				if !strings.Contains(out, w) {
					t.Errorf("output lacks %q:\n%s", w, out)
				}
			}
			if got := strings.Contains(errOut, "warning"); got != tc.wantWarn {
				t.Errorf("warning = %v, want %v: %q", got, tc.wantWarn, errOut)
			}
		})
	}
}

func TestVersionSkewJSON(t *testing.T) {
	// An agent answering an older build through its status only (an agent
	// from before GET /v1/version is simulated by the JSON shape).
	info := versionInfo{CLI: api.Version{Version: "v2"}, Agent: &api.Version{Version: "v1"}}
	info.Skew = info.Agent.Version != info.CLI.Version
	b, _ := json.Marshal(info)
	if !strings.Contains(string(b), `"skew":true`) || !strings.Contains(string(b), `"agent":{"version":"v1"`) {
		t.Errorf("json = %s", b)
	}
	sock := serve(t, newFakeAgent(t))
	code, out, _ := run(context.Background(), "version", "--socket", sock, "--json")
	if code != ExitOK {
		t.Fatalf("exit %d", code)
	}
	var got versionInfo
	if err := json.Unmarshal([]byte(out), &got); err != nil {
		t.Fatal(err)
	}
	if got.Agent == nil || got.Agent.API != "v1" || got.Skew {
		t.Errorf("version --json = %+v", got)
	}
}

func TestCompletion(t *testing.T) {
	for _, shell := range []string{"bash", "zsh", "fish"} {
		t.Run(shell, func(t *testing.T) {
			code, out, errOut := run(context.Background(), "completion", shell)
			if code != ExitOK || !strings.Contains(out, "mcp") || len(out) < 500 {
				t.Errorf("exit %d, %d bytes, stderr %q", code, len(out), errOut)
			}
		})
	}
}

func TestColour(t *testing.T) {
	sock := serve(t, newFakeAgent(t))
	tests := []struct {
		name, noColor, force string
		want                 bool
	}{
		{"pipe", "", "", false},
		{"forced", "", "1", true},
		{"NO_COLOR wins", "1", "1", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv("NO_COLOR", tc.noColor)
			t.Setenv("CLICOLOR_FORCE", tc.force)
			code, out, errOut := run(context.Background(), "status", "--socket", sock)
			if code != ExitOK {
				t.Fatalf("exit %d: %s", code, errOut)
			}
			green := "\x1b[32mrunning\x1b[0m"
			if got := strings.Contains(out, green); got != tc.want {
				t.Errorf("coloured state = %v, want %v:\n%q", got, tc.want, out)
			}
			if tc.want {
				// Colour must not break the table: the column after STATE
				// starts at the same visible offset on every row.
				checkAligned(t, out, "COMMIT")
			}
		})
	}
}

// checkAligned checks that, with escapes stripped, the header's column
// starts where the rows' do.
func checkAligned(t *testing.T, out, column string) {
	t.Helper()
	lines := strings.Split(stripEscapes(out), "\n")
	at := -1
	for i, l := range lines {
		if idx := strings.Index(l, column); idx >= 0 && strings.HasPrefix(l, "SERVICE") {
			at = idx
			for _, row := range lines[i+1:] {
				if row == "" {
					break
				}
				if len(row) > at && row[at-1] != ' ' {
					t.Errorf("row not aligned with %s at %d: %q", column, at, row)
				}
			}
			break
		}
	}
	if at < 0 {
		t.Fatalf("no header with %s:\n%s", column, out)
	}
}

func stripEscapes(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == 0x1b {
			for i < len(s) && s[i] != 'm' {
				i++
			}
			continue
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

func TestPlanSymbolsColoured(t *testing.T) {
	p := palette{on: true}
	got := string(p.plan([]byte("Plan\n  + port      web/web/port/default/a: new service\n  - image     x: gone\n")))
	if !strings.Contains(got, "  \x1b[32m+\x1b[0m port") || !strings.Contains(got, "  \x1b[31m-\x1b[0m image") {
		t.Errorf("plan = %q", got)
	}
	if got := string(palette{}.plan([]byte("  + port\n"))); got != "  + port\n" {
		t.Errorf("plain plan = %q", got)
	}
}

func TestValidateJSON(t *testing.T) {
	code, out, errOut := run(context.Background(), "validate", "--json", "../examples")
	if code != ExitOK {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	var res validateResult
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		t.Fatalf("%v:\n%s", err, out)
	}
	if !res.Valid || len(res.Services) == 0 || res.Nodes == 0 {
		t.Errorf("validate --json = %+v", res)
	}
}

func waitForSubstring(t *testing.T, b *syncBuffer, want string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !strings.Contains(b.String(), want) {
		if time.Now().After(deadline) {
			t.Fatalf("output %q lacks %q", b.String(), want)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
