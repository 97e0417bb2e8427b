package gitsync_test

import (
	"errors"
	"io"
	"io/fs"
	"strings"
	"testing"
	"testing/fstest"

	"metacircular.net/mcp/internal/testenv"
	gitsync "metacircular.net/mcp/sync"
)

func TestTreeFS(t *testing.T) {
	ctx := testCtx(t)
	r := testenv.GitRepo(t)
	r.Commit(map[string]string{
		"mcp.toml":           "domain = \"example\"\n",
		"services/a.toml":    "name = \"a\"\n",
		"services/b.toml":    "name = \"b\"\n",
		"services/x/deep.md": "deep",
		"services.md":        "sorts between services/ and services.toml in git order",
	}, "files")
	r.Symlink("services/link.toml", "../../etc/passwd", "a link pointing outside")
	r.Push()
	src := newSource(t, gitsync.Config{URL: r.Bare})
	rev, err := src.Fetch(ctx)
	if err != nil {
		t.Fatal(err)
	}
	tree := rev.Tree

	if got := readFile(t, rev, "mcp.toml"); got != "domain = \"example\"\n" {
		t.Errorf("mcp.toml = %q", got)
	}

	ents, err := fs.ReadDir(tree, "services")
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	want := []string{"a.toml", "b.toml", "link.toml", "x"}
	if len(names) != len(want) {
		t.Fatalf("ReadDir(services) = %v, want %v", names, want)
	}
	for i := range want {
		if names[i] != want[i] {
			t.Fatalf("ReadDir(services) = %v, want %v", names, want)
		}
	}
	if ents[2].Type() != fs.ModeSymlink {
		t.Errorf("link.toml type = %v, want symlink", ents[2].Type())
	}
	if !ents[3].IsDir() {
		t.Errorf("x is not a directory")
	}

	// The link is visible as a link and never followed.
	tests := []struct {
		name string
		op   func() error
		want error
	}{
		{"stat", func() error {
			fi, err := fs.Stat(tree, "services/link.toml")
			if err == nil && fi.Mode()&fs.ModeSymlink == 0 {
				return errors.New("stat follows the link: mode " + fi.Mode().String())
			}
			return err
		}, nil},
		{"lstat", func() error {
			fi, err := fs.Lstat(tree, "services/link.toml")
			if err == nil && fi.Mode().Type() != fs.ModeSymlink {
				return errors.New("lstat mode " + fi.Mode().String())
			}
			return err
		}, nil},
		{"readlink", func() error {
			target, err := fs.ReadLink(tree, "services/link.toml")
			if err == nil && target != "../../etc/passwd" {
				return errors.New("readlink = " + target)
			}
			return err
		}, nil},
		{"open", func() error { _, err := tree.Open("services/link.toml"); return err }, gitsync.ErrSymlink},
		{"readfile", func() error { _, err := fs.ReadFile(tree, "services/link.toml"); return err }, gitsync.ErrSymlink},
		{"missing", func() error { _, err := tree.Open("services/none.toml"); return err }, fs.ErrNotExist},
		{"through a file", func() error { _, err := tree.Open("mcp.toml/x"); return err }, fs.ErrNotExist},
		{"invalid path", func() error { _, err := tree.Open("../mcp.toml"); return err }, fs.ErrInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.op()
			if tt.want == nil && err != nil || tt.want != nil && !errors.Is(err, tt.want) {
				t.Fatalf("got %v, want %v", err, tt.want)
			}
		})
	}

	// The whole FS passes the standard library's conformance checks,
	// except that opening the link fails, which is the point.
	if err := fstest.TestFS(tree, "mcp.toml", "services/a.toml", "services/x/deep.md", "services.md"); err != nil {
		for _, line := range strings.Split(err.Error(), "\n")[1:] {
			if !strings.HasPrefix(strings.TrimSpace(line), "services/link.toml: Open:") {
				t.Errorf("fstest: %s", line)
			}
		}
	}
	f, err := tree.Open("services/a.toml")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	b, _ := io.ReadAll(f)
	fi, _ := f.Stat()
	if string(b) != "name = \"a\"\n" || fi.Size() != int64(len(b)) || !fi.ModTime().Equal(rev.Time) {
		t.Errorf("open a.toml: %q size %d mtime %v", b, fi.Size(), fi.ModTime())
	}
}

func TestTreeFSModes(t *testing.T) {
	r := testenv.GitRepo(t)
	r.Commit(map[string]string{"run.sh": "#!/bin/sh\n", "plain.txt": "p"}, "files")
	testenv.Git(t, r.Work, "update-index", "--chmod=+x", "run.sh")
	// A submodule (gitlink) entry, without a .gitmodules: only the tree
	// entry matters here.
	testenv.Git(t, r.Work, "update-index", "--add", "--cacheinfo", "160000,"+strings.Repeat("1", 40)+",vendor/sub")
	testenv.Git(t, r.Work, "commit", "--quiet", "-m", "modes")
	r.Push()
	src := newSource(t, gitsync.Config{URL: r.Bare})
	rev, err := src.Fetch(testCtx(t))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		mode fs.FileMode
	}{
		{".", fs.ModeDir | 0o755},
		{"run.sh", 0o755},
		{"plain.txt", 0o644},
		{"vendor", fs.ModeDir | 0o755},
		{"vendor/sub", fs.ModeIrregular},
	}
	for _, tt := range tests {
		fi, err := fs.Stat(rev.Tree, tt.name)
		if err != nil || fi.Mode() != tt.mode {
			t.Errorf("Stat(%s) = %v, %v; want mode %v", tt.name, fi.Mode(), err, tt.mode)
		}
	}
	if _, err := rev.Tree.Open("vendor/sub"); !errors.Is(err, gitsync.ErrSubmodule) {
		t.Errorf("Open(submodule) = %v; want ErrSubmodule", err)
	}
}
