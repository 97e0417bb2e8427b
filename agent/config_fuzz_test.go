package agent

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// FuzzParseConfig feeds arbitrary files to the configuration parser. It
// must never panic; a refusal is ConfigErrors whose every entry names the
// file and says something, capped; an accepted file holds only values the
// rest of the agent relies on; and the same bytes give the same answer.
func FuzzParseConfig(f *testing.F) {
	f.Add(base)
	for _, pattern := range []string{"testdata/config/*.toml", "testdata/hostile/*.toml", "../examples/agent.toml"} {
		files, _ := filepath.Glob(pattern)
		for _, file := range files {
			if b, err := os.ReadFile(file); err == nil {
				f.Add(string(b))
			}
		}
	}
	f.Fuzz(func(t *testing.T, src string) {
		start := time.Now()
		cfg, err := ParseConfig(strings.NewReader(src), "agent.toml")
		// Bounded input must be handled in bounded time: a stall here
		// is a node that never starts (so the fuzzer keeps the input).
		if d := time.Since(start); d > 5*time.Second {
			t.Fatalf("ParseConfig took %v for %d bytes", d, len(src))
		}
		_, err2 := ParseConfig(strings.NewReader(src), "agent.toml")
		if (err == nil) != (err2 == nil) || (err != nil && err.Error() != err2.Error()) {
			t.Fatalf("two parses differ:\n%v\n---\n%v", err, err2)
		}
		if err != nil {
			var errs ConfigErrors
			if !errors.As(err, &errs) || len(errs) == 0 {
				t.Fatalf("refused without ConfigErrors: %v", err)
			}
			if len(errs) > MaxConfigErrors+1 {
				t.Fatalf("%d errors, over the cap", len(errs))
			}
			for _, e := range errs {
				if e.File != "agent.toml" || e.Message == "" {
					t.Fatalf("error without file or message: %#v", e)
				}
			}
			return
		}
		switch {
		case !dnsLabel.MatchString(cfg.Node):
			t.Fatalf("accepted node %q", cfg.Node)
		case !filepath.IsAbs(cfg.StateDir) || pathTrick(cfg.StateDir) != "":
			t.Fatalf("accepted state_dir %q", cfg.StateDir)
		case !filepath.IsAbs(cfg.HostRoot) || pathTrick(cfg.HostRoot) != "":
			t.Fatalf("accepted host_root %q", cfg.HostRoot)
		case cfg.Ports.Lo < MinPort || cfg.Ports.Hi > MaxPort || cfg.Ports.Lo >= cfg.Ports.Hi:
			t.Fatalf("accepted ports.range %s", cfg.Ports)
		case cfg.Git.URL == "" || strings.HasPrefix(cfg.Git.URL, "-"):
			t.Fatalf("accepted git.url %q", cfg.Git.URL)
		case len(cfg.API.Socket) > 107:
			t.Fatalf("accepted a socket path of %d bytes", len(cfg.API.Socket))
		case cfg.Logs.Keep < 1 || cfg.Logs.Keep > MaxLogKeep || cfg.Logs.MaxBytes < MinLogMaxBytes:
			t.Fatalf("accepted logs %+v", cfg.Logs)
		}
		for _, r := range cfg.Registries {
			if checkRegistryHost(r.Host) != "" {
				t.Fatalf("accepted registry host %q", r.Host)
			}
		}
	})
}
