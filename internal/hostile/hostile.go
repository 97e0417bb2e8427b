// Package hostile materialises the hostile-input corpus (testdata/hostile):
// one small repository per case, made of the corpus's _base, the case's
// own files, and what its setup.txt generates (links out of the
// repository, files over the size limit, deep nesting, names with
// invisible characters, FIFOs), which are not committed. The spec tests
// load the cases; the agent's end-to-end test deploys them.
//
// setup.txt holds one directive per line; a word may be a Go-quoted
// string:
//
//	symlink PATH TARGET        a symbolic link
//	rename PATH NEWPATH        move a file (to a name written with escapes)
//	write PATH CONTENT         write a file
//	append PATH TEXT           append to a file
//	pad PATH SIZE              append comment lines up to SIZE bytes
//	repeat PATH N TEXT         append TEXT N times
//	files DIR N CONTENT        N files DIR/sNNNNN.toml holding CONTENT
//	remove PATH                remove a file or directory of _base
//	fifo PATH                  a named pipe (the case is then directory-only)
package hostile

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

// Cases lists the case directories of corpus, sorted (_base and other
// names starting with "_" are not cases).
func Cases(t testing.TB, corpus string) []string {
	t.Helper()
	ents, err := os.ReadDir(corpus)
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

// Materialise builds case name of corpus in dir (which may hold a .git):
// _base, the case's files, then its setup.txt. It reports whether the case
// needs a real directory (a FIFO cannot be committed to Git).
func Materialise(t testing.TB, corpus, name, dir string) (dirOnly bool) {
	t.Helper()
	for _, src := range []string{filepath.Join(corpus, "_base"), filepath.Join(corpus, name)} {
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
	setup, err := os.ReadFile(filepath.Join(corpus, name, "setup.txt"))
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

// applySetup runs one setup directive in dir (the package doc lists them).
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
