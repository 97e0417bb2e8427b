package gitsync_test

import (
	"context"
	"errors"
	"io"
	"io/fs"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"metacircular.net/mcp/internal/testenv"
	gitsync "metacircular.net/mcp/sync"
)

// FuzzTreeFSPath asks the tree FS about arbitrary names over a tree with
// files, directories, links (to a file, to a directory, out of the
// repository) and a submodule. Names come from the repository (and from
// code that joins them): the FS must refuse invalid names with
// fs.ErrInvalid, never follow a link (not even as a directory on the way),
// never open a submodule, and agree with itself between Stat, Open,
// ReadFile and ReadDir.
func FuzzTreeFSPath(f *testing.F) {
	r := testenv.GitRepo(f)
	r.Commit(map[string]string{
		"mcp.toml":          "domain = \"example\"\n",
		"services/a.toml":   "name = \"a\"\n",
		"services/x/d.toml": "deep\n",
	}, "files")
	r.Symlink("services/link.toml", "a.toml", "a link to a file")
	r.Symlink("services/dirlink", "x", "a link to a directory")
	r.Symlink("out", "../../../etc", "a link out")
	testenv.Git(f, r.Work, "update-index", "--add", "--cacheinfo", "160000,"+strings.Repeat("1", 40)+",services/sub.toml")
	testenv.Git(f, r.Work, "commit", "--quiet", "--no-verify", "-m", "a submodule")
	r.Push()
	src, err := gitsync.New(gitsync.Config{URL: r.Bare, CacheDir: filepath.Join(f.TempDir(), "cache")})
	if err != nil {
		f.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	rev, err := src.Fetch(ctx)
	if err != nil {
		f.Fatal(err)
	}
	tree := rev.Tree
	for _, s := range []string{".", "mcp.toml", "services", "services/a.toml", "services/link.toml", "services/dirlink/d.toml",
		"services/sub.toml", "out/passwd", "../etc/passwd", "/mcp.toml", "services//a.toml", "services/./a.toml", "services/", "", "services/x/d.toml\x00"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, name string) {
		fi, statErr := fs.Stat(tree, name)
		_, lstatErr := fs.Lstat(tree, name)
		file, openErr := tree.Open(name)
		data, readErr := fs.ReadFile(tree, name)
		_, dirErr := fs.ReadDir(tree, name)
		if !fs.ValidPath(name) {
			for _, err := range []error{statErr, lstatErr, openErr, readErr, dirErr} {
				if !errors.Is(err, fs.ErrInvalid) {
					t.Fatalf("%q is not a valid path, but an operation said %v", name, err)
				}
			}
			return
		}
		if (statErr == nil) != (lstatErr == nil) {
			t.Fatalf("%q: Stat %v, Lstat %v", name, statErr, lstatErr)
		}
		if statErr != nil {
			if openErr == nil || readErr == nil || dirErr == nil {
				t.Fatalf("%q does not stat (%v) but opens, reads or lists", name, statErr)
			}
			return
		}
		switch mode := fi.Mode(); {
		case mode&fs.ModeSymlink != 0:
			if !errors.Is(openErr, gitsync.ErrSymlink) || !errors.Is(readErr, gitsync.ErrSymlink) {
				t.Fatalf("link %q was followed: open %v, read %v", name, openErr, readErr)
			}
		case mode&fs.ModeIrregular != 0:
			if !errors.Is(openErr, gitsync.ErrSubmodule) {
				t.Fatalf("submodule %q opened: %v", name, openErr)
			}
		case mode.IsDir():
			if openErr != nil || dirErr != nil {
				t.Fatalf("directory %q: open %v, readdir %v", name, openErr, dirErr)
			}
			file.Close()
		default:
			if openErr != nil || readErr != nil {
				t.Fatalf("file %q: open %v, read %v", name, openErr, readErr)
			}
			b, err := io.ReadAll(file)
			file.Close()
			if err != nil || string(b) != string(data) || int64(len(b)) != fi.Size() {
				t.Fatalf("file %q: Open gives %d bytes, ReadFile %d, Stat says %d (%v)", name, len(b), len(data), fi.Size(), err)
			}
		}
		// No name reaches through a link: every directory on the way is a
		// real one.
		for dir := name; strings.Contains(dir, "/"); {
			dir = dir[:strings.LastIndex(dir, "/")]
			if di, err := fs.Lstat(tree, dir); err != nil || !di.IsDir() {
				t.Fatalf("%q resolved through %q, which is not a directory (%v)", name, dir, err)
			}
		}
	})
}
