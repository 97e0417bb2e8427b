package spec

import (
	"testing"
	"testing/fstest"
	"time"
)

// FuzzLoad feeds arbitrary mcp.toml and service files through Load. Besides
// not panicking, a load must account for every service file exactly once
// (valid or invalid), never accept a file it reported an error for, and
// give the same diagnostics twice.
func FuzzLoad(f *testing.F) {
	f.Add([]byte(testPlatform), []byte("name = \"a\"\nnode = \"rift\"\nversion = \"v1\"\n[[components]]\nname = \"a\"\n"), []byte(""))
	addCorpusSeeds(f) // fuzz_seeds_test.go: the broken and hostile corpora
	f.Fuzz(func(t *testing.T, platform, a, b []byte) {
		fsys := fstest.MapFS{
			"mcp.toml":        {Data: platform},
			"services/a.toml": {Data: a},
			"services/b.toml": {Data: b},
		}
		start := time.Now()
		repo, err := Load(fsys)
		if err != nil {
			t.Fatalf("Load returned an I/O error for in-memory input: %v", err)
		}
		// Bounded input must be handled in bounded time: a stall here
		// stalls every reconcile (so the fuzzer keeps the input).
		if d := time.Since(start); d > 5*time.Second {
			t.Fatalf("Load took %v for %d+%d+%d bytes", d, len(platform), len(a), len(b))
		}
		seen := map[string]int{}
		for _, s := range repo.Services {
			seen[s.File]++
			_ = Hash(s)
			for _, d := range repo.Diagnostics {
				if d.File == s.File && d.Severity == SeverityError {
					t.Fatalf("%s accepted despite %v", s.File, d)
				}
			}
		}
		for _, i := range repo.Invalid {
			seen[i.File]++
			if !i.Diagnostics.HasErrors() {
				t.Fatalf("%s invalid without an error", i.File)
			}
		}
		for _, file := range []string{"services/a.toml", "services/b.toml"} {
			if seen[file] != 1 {
				t.Fatalf("%s listed %d times", file, seen[file])
			}
		}
		for _, d := range repo.Diagnostics {
			if d.File == "" || d.Message == "" {
				t.Fatalf("diagnostic without file or message: %#v", d)
			}
			if d.Error() == "" || len(d.Message) > 64<<10 {
				t.Fatalf("diagnostic message of %d bytes: one bad value must not blow up the output", len(d.Message))
			}
		}
		for _, s := range repo.Services {
			// An accepted service holds nothing that displays as
			// something else, and its volumes stay in its data dir.
			for _, c := range s.Components {
				for _, v := range c.Volumes {
					if !inside(v.Host, "/srv/"+s.Name) {
						t.Fatalf("%s: accepted volume %s outside /srv/%s", s.File, v, s.Name)
					}
				}
				for _, e := range c.Env {
					if textProblem(e.Name+"="+e.Value) != "" {
						t.Fatalf("%s: accepted env %q", s.File, e.Name)
					}
				}
			}
		}
		again, _ := Load(fsys)
		if again.Diagnostics.Error() != repo.Diagnostics.Error() {
			t.Fatalf("diagnostics differ between two loads:\n%v\n---\n%v", repo.Diagnostics, again.Diagnostics)
		}
	})
}
