package spec

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

// The hostile-input corpus: testdata/hostile/<category>-<case>/, one small
// repository per case, each holding a bad or malicious definition next to
// testdata/hostile/_base (mcp.toml and the valid service good). A case's
// own files override _base's. Inputs that cannot or should not be
// committed (links out of the repository, files over the size limit, deep
// nesting, names with invisible characters, FIFOs) are made by the case's
// setup.txt when the test materialises it (see applySetup).
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
func hostileCases(t testing.TB) []string {
	t.Helper()
	ents, err := os.ReadDir(hostileDir)
	if err != nil {
		t.Fatal(err)
	}
	var cases []string
	for _, e := range ents {
		if e.IsDir() && !strings.HasPrefix(e.Name(), "_") {
			cases = append(cases, e.Name())
		}
	}
	return cases
}

// materialise builds case name in a fresh directory: _base, the case's
// files, then its setup. It returns the directory and whether the case
// needs a real directory (a FIFO cannot be committed to Git).
func materialise(t testing.TB, name string) (dir string, dirOnly bool) {
	t.Helper()
	dir = t.TempDir()
	return dir, materialiseInto(t, name, dir)
}

// materialiseInto builds case name in dir (which may hold a .git).
func materialiseInto(t testing.TB, name, dir string) (dirOnly bool) {
	t.Helper()
	for _, src := range []string{filepath.Join(hostileDir, "_base"), filepath.Join(hostileDir, name)} {
		err := filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			rel, _ := filepath.Rel(src, p)
			if rel == "want.txt" || rel == "setup.txt" || rel == "README" {
				return nil
			}
			if d.IsDir() {
				return os.MkdirAll(filepath.Join(dir, rel), 0o755)
			}
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			return os.WriteFile(filepath.Join(dir, rel), b, 0o644)
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	setup, err := os.ReadFile(filepath.Join(hostileDir, name, "setup.txt"))
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	for i, line := range strings.Split(string(setup), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		args, err := splitSetup(line)
		if err == nil {
			dirOnly, err = applySetup(dir, args, dirOnly)
		}
		if err != nil {
			t.Fatalf("%s/setup.txt:%d: %v", name, i+1, err)
		}
	}
	return dirOnly
}

// splitSetup splits a setup line into words; a word may be a Go-quoted
// string, so names with invisible or non-ASCII characters stay readable.
func splitSetup(line string) ([]string, error) {
	var out []string
	for line = strings.TrimSpace(line); line != ""; line = strings.TrimSpace(line) {
		if line[0] == '"' {
			q, err := strconv.QuotedPrefix(line)
			if err != nil {
				return nil, err
			}
			s, _ := strconv.Unquote(q)
			out = append(out, s)
			line = line[len(q):]
			continue
		}
		w, rest, _ := strings.Cut(line, " ")
		out = append(out, w)
		line = rest
	}
	return out, nil
}

// applySetup runs one setup directive in dir:
//
//	symlink PATH TARGET        a symbolic link
//	rename PATH NEWPATH        move a file (to a name written with escapes)
//	write PATH CONTENT         write a file (CONTENT Go-quoted)
//	append PATH TEXT           append to a file
//	pad PATH SIZE              append comment lines up to SIZE bytes
//	repeat PATH N TEXT         append TEXT N times
//	files DIR N CONTENT        N files DIR/sNNNNN.toml holding CONTENT
//	remove PATH                remove a file or directory of _base
//	fifo PATH                  a named pipe (the case is then directory-only)
func applySetup(dir string, a []string, dirOnly bool) (bool, error) {
	if len(a) < 2 {
		return dirOnly, fmt.Errorf("%q: too few words", a)
	}
	p := filepath.Join(dir, filepath.FromSlash(a[1]))
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return dirOnly, err
	}
	need := func(n int) error {
		if len(a) != n {
			return fmt.Errorf("%s takes %d words, not %d", a[0], n-1, len(a)-1)
		}
		return nil
	}
	appendTo := func(s string) error {
		f, err := os.OpenFile(p, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
		if err != nil {
			return err
		}
		if _, err := f.WriteString(s); err != nil {
			f.Close()
			return err
		}
		return f.Close()
	}
	switch a[0] {
	case "symlink":
		if err := need(3); err != nil {
			return dirOnly, err
		}
		return dirOnly, os.Symlink(a[2], p)
	case "rename":
		if err := need(3); err != nil {
			return dirOnly, err
		}
		return dirOnly, os.Rename(p, filepath.Join(dir, filepath.FromSlash(a[2])))
	case "write":
		if err := need(3); err != nil {
			return dirOnly, err
		}
		return dirOnly, os.WriteFile(p, []byte(a[2]), 0o644)
	case "append":
		if err := need(3); err != nil {
			return dirOnly, err
		}
		return dirOnly, appendTo(a[2])
	case "pad":
		if err := need(3); err != nil {
			return dirOnly, err
		}
		size, err := strconv.Atoi(a[2])
		if err != nil {
			return dirOnly, err
		}
		fi, err := os.Stat(p)
		if err != nil {
			return dirOnly, err
		}
		var b strings.Builder
		line := "# " + strings.Repeat("padding ", 9) + "\n"
		for n := int(fi.Size()); n < size; n += len(line) {
			b.WriteString(line)
		}
		return dirOnly, appendTo(b.String())
	case "repeat":
		if err := need(4); err != nil {
			return dirOnly, err
		}
		n, err := strconv.Atoi(a[2])
		if err != nil {
			return dirOnly, err
		}
		return dirOnly, appendTo(strings.Repeat(a[3], n))
	case "files":
		if err := need(4); err != nil {
			return dirOnly, err
		}
		n, err := strconv.Atoi(a[2])
		if err != nil {
			return dirOnly, err
		}
		if err := os.MkdirAll(p, 0o755); err != nil {
			return dirOnly, err
		}
		for i := range n {
			if err := os.WriteFile(filepath.Join(p, fmt.Sprintf("s%05d.toml", i)), []byte(a[3]), 0o644); err != nil {
				return dirOnly, err
			}
		}
		return dirOnly, nil
	case "remove":
		if err := need(2); err != nil {
			return dirOnly, err
		}
		return dirOnly, os.RemoveAll(p)
	case "fifo":
		if err := need(2); err != nil {
			return dirOnly, err
		}
		return true, syscall.Mkfifo(p, 0o644)
	}
	return dirOnly, fmt.Errorf("unknown directive %q", a[0])
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
