package spec

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"metacircular.net/mcp/internal/hostile"
)

// The hostile-input corpus: testdata/hostile/<category>-<case>/, one small
// repository per case, each holding a bad or malicious definition next to
// testdata/hostile/_base (mcp.toml and the valid service good). A case's
// own files override _base's. Inputs that cannot or should not be
// committed (links out of the repository, files over the size limit, deep
// nesting, names with invisible characters, FIFOs) are made by the case's
// setup.txt when the test materialises it (see internal/hostile).
//
// want.txt pins every diagnostic (file, key path, what is allowed), or
// "load error: ..." when the repository as a whole is refused; run
//
//	go test ./spec -run TestHostile -update
//
// to rewrite them. The same corpus is loaded through the Git tree FS the
// agent uses (hostile_git_test.go) and deployed next to a running service
// by the agent's end-to-end test.

// HostileDir is the corpus, relative to this package.
const hostileDir = "../testdata/hostile"

// hostileCategories are the categories of issue 8; every one must hold at
// least five cases.
var hostileCategories = []string{
	"syntax", "types", "huge", "nesting", "unicode", "traversal", "hostname",
	"hijack", "ports", "privileged", "env", "duplicate", "symlink",
}

// hostileCases lists the case directories, sorted.
func hostileCases(t testing.TB) []string { return hostile.Cases(t, hostileDir) }

// materialise builds case name in a fresh directory and reports whether
// it needs a real directory (a FIFO cannot be committed to Git).
func materialise(t testing.TB, name string) (dir string, dirOnly bool) {
	t.Helper()
	dir = t.TempDir()
	return dir, hostile.Materialise(t, hostileDir, name, dir)
}

// loadResult renders what Load made of a repository, for want.txt.
func loadResult(repo *Repo, err error) string {
	if err != nil {
		return "load error: " + err.Error() + "\n"
	}
	return repo.Diagnostics.Error() + "\n"
}

// checkHostileInvariants holds for every case whatever its messages: the
// input is refused, every diagnostic names a file, good survives, and no
// service other than good is accepted from a case that was refused.
func checkHostileInvariants(t *testing.T, repo *Repo, err error) {
	t.Helper()
	if err != nil {
		return // the repository as a whole was refused: nothing changes
	}
	if !repo.Diagnostics.HasErrors() {
		t.Errorf("no error reported")
	}
	for _, d := range repo.Diagnostics {
		if d.File == "" || d.Message == "" {
			t.Errorf("diagnostic without file or message: %#v", d)
		}
	}
	goodKept := false
	for _, s := range repo.Services {
		goodKept = goodKept || s.Name == "good"
	}
	for _, inv := range repo.Invalid {
		// Invalid is "left as deployed"; good may land there only when
		// nothing could be resolved (mcp.toml) or listed (services/).
		if inv.Name == "good" {
			goodKept = !repo.PlatformValid || slices.ContainsFunc(repo.Diagnostics, func(d Diagnostic) bool { return d.File == ServicesDir })
		}
	}
	if !goodKept {
		t.Errorf("the valid service good was lost or refused: services %v, invalid %v", repo.Services, repo.Invalid)
	}
	for _, s := range repo.Services {
		for _, d := range repo.Diagnostics {
			if d.File == s.File && d.Severity == SeverityError {
				t.Errorf("service %s accepted despite %v", s.Name, d)
			}
		}
	}
}

// TestHostile loads every hostile case from a directory (as mcp validate
// does) and pins its diagnostics.
func TestHostile(t *testing.T) {
	cases := hostileCases(t)
	perCategory := map[string]int{}
	for _, name := range cases {
		cat, _, _ := strings.Cut(name, "-")
		if !slices.Contains(hostileCategories, cat) {
			t.Errorf("case %s: category %q is not one of %v", name, cat, hostileCategories)
		}
		perCategory[cat]++
	}
	for _, cat := range hostileCategories {
		if perCategory[cat] < 5 {
			t.Errorf("category %s has %d cases, want at least 5", cat, perCategory[cat])
		}
	}
	for _, name := range cases {
		t.Run(name, func(t *testing.T) {
			dir, _ := materialise(t, name)
			repo, err := LoadDir(dir)
			checkHostileInvariants(t, repo, err)
			got := loadResult(repo, err)
			golden := filepath.Join(hostileDir, name, "want.txt")
			if *update {
				if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run go test ./spec -run TestHostile -update)", err)
			}
			if got != string(want) {
				t.Errorf("diagnostics differ from %s\ngot:\n%s\nwant:\n%s", golden, got, want)
			}
			again, err2 := LoadDir(dir)
			if loadResult(again, err2) != got {
				t.Errorf("a second load gives other diagnostics:\n%s", loadResult(again, err2))
			}
		})
	}
}
