package gitsync

import (
	"bytes"
	"errors"
	"io"
	"io/fs"
	"path"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/filemode"
	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/go-git/go-git/v5/plumbing/storer"
)

// ErrSymlink is returned when opening or reading a symlink in a tree: the
// FS shows links (Stat, Lstat, ReadLink, ReadDir) but never follows them,
// because a link could point outside the repository.
var ErrSymlink = errors.New("is a symlink (not followed)")

// ErrSubmodule is returned when opening a submodule: its commit lives in
// another repository, which is not fetched.
var ErrSubmodule = errors.New("is a submodule (not fetched)")

// treeFS is a read-only fs.FS over a Git tree. It implements fs.StatFS,
// fs.ReadDirFS, fs.ReadFileFS and fs.ReadLinkFS.
//
// What each entry looks like:
//   - directory: fs.ModeDir|0o755
//   - regular file: 0o644, executable: 0o755
//   - symlink: fs.ModeSymlink|0o777; Stat does not follow it (it answers
//     like Lstat), Open and ReadFile fail with ErrSymlink, ReadLink gives
//     the target
//   - submodule (gitlink): fs.ModeIrregular, so loaders that accept only
//     regular files refuse it visibly instead of skipping it; Open fails
//     with ErrSubmodule
//
// Git records no file times; every entry's ModTime is the commit time, so
// the FS is deterministic. FileInfo.Sys() is the entry's object Hash.
//
// File contents are read whole on Open: desired-state files are small, and
// this keeps the storage lock short.
type treeFS struct {
	s    storer.EncodedObjectStorer
	root *object.Tree
	when time.Time
	mu   *sync.Mutex // the Source's lock over its storage
}

var (
	_ fs.StatFS     = (*treeFS)(nil)
	_ fs.ReadDirFS  = (*treeFS)(nil)
	_ fs.ReadFileFS = (*treeFS)(nil)
	_ fs.ReadLinkFS = (*treeFS)(nil)
)

func newTreeFS(s storer.EncodedObjectStorer, root *object.Tree, when time.Time, mu *sync.Mutex) *treeFS {
	return &treeFS{s: s, root: root, when: when, mu: mu}
}

// lookup finds name's entry. The root has a synthetic directory entry.
func (t *treeFS) lookup(op, name string) (object.TreeEntry, error) {
	if !fs.ValidPath(name) {
		return object.TreeEntry{}, &fs.PathError{Op: op, Path: name, Err: fs.ErrInvalid}
	}
	if name == "." {
		return object.TreeEntry{Name: ".", Mode: filemode.Dir, Hash: t.root.Hash}, nil
	}
	dir := t.root
	parts := strings.Split(name, "/")
	for i, p := range parts {
		e, ok := findEntry(dir, p)
		if !ok {
			return object.TreeEntry{}, &fs.PathError{Op: op, Path: name, Err: fs.ErrNotExist}
		}
		if i == len(parts)-1 {
			return e, nil
		}
		if e.Mode != filemode.Dir {
			// A path through a file, link or submodule does not exist;
			// in particular a link is not followed to a directory.
			return object.TreeEntry{}, &fs.PathError{Op: op, Path: name, Err: fs.ErrNotExist}
		}
		sub, err := object.GetTree(t.s, e.Hash)
		if err != nil {
			return object.TreeEntry{}, &fs.PathError{Op: op, Path: name, Err: err}
		}
		dir = sub
	}
	panic("unreachable")
}

func findEntry(t *object.Tree, name string) (object.TreeEntry, bool) {
	for _, e := range t.Entries {
		if e.Name == name {
			return e, true
		}
	}
	return object.TreeEntry{}, false
}

// info builds the FileInfo of an entry; name is its base name.
func (t *treeFS) info(e object.TreeEntry, name string) (*fileInfo, error) {
	fi := &fileInfo{name: name, hash: e.Hash, modTime: t.when}
	switch e.Mode {
	case filemode.Dir:
		fi.mode = fs.ModeDir | 0o755
		return fi, nil
	case filemode.Submodule:
		fi.mode = fs.ModeIrregular
		return fi, nil
	case filemode.Symlink:
		fi.mode = fs.ModeSymlink | 0o777
	case filemode.Executable:
		fi.mode = 0o755
	default:
		fi.mode = 0o644
	}
	size, err := t.s.EncodedObjectSize(e.Hash)
	if err != nil {
		return nil, err
	}
	fi.size = size
	return fi, nil
}

func (t *treeFS) Stat(name string) (fs.FileInfo, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	e, err := t.lookup("stat", name)
	if err != nil {
		return nil, err
	}
	fi, err := t.info(e, path.Base(name))
	if err != nil {
		return nil, &fs.PathError{Op: "stat", Path: name, Err: err}
	}
	return fi, nil
}

// Lstat is Stat: nothing in this FS follows links.
func (t *treeFS) Lstat(name string) (fs.FileInfo, error) {
	fi, err := t.Stat(name)
	var pe *fs.PathError
	if errors.As(err, &pe) {
		pe.Op = "lstat"
	}
	return fi, err
}

func (t *treeFS) ReadLink(name string) (string, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	e, err := t.lookup("readlink", name)
	if err != nil {
		return "", err
	}
	if e.Mode != filemode.Symlink {
		return "", &fs.PathError{Op: "readlink", Path: name, Err: fs.ErrInvalid}
	}
	b, err := t.readBlob(e.Hash)
	if err != nil {
		return "", &fs.PathError{Op: "readlink", Path: name, Err: err}
	}
	return string(b), nil
}

func (t *treeFS) readBlob(h plumbing.Hash) ([]byte, error) {
	b, err := object.GetBlob(t.s, h)
	if err != nil {
		return nil, err
	}
	r, err := b.Reader()
	if err != nil {
		return nil, err
	}
	defer r.Close()
	return io.ReadAll(r)
}

func (t *treeFS) ReadFile(name string) ([]byte, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	e, err := t.lookup("readfile", name)
	if err != nil {
		return nil, err
	}
	switch e.Mode {
	case filemode.Regular, filemode.Executable, filemode.Deprecated:
	case filemode.Dir:
		return nil, &fs.PathError{Op: "readfile", Path: name, Err: errors.New("is a directory")}
	case filemode.Symlink:
		return nil, &fs.PathError{Op: "readfile", Path: name, Err: ErrSymlink}
	case filemode.Submodule:
		return nil, &fs.PathError{Op: "readfile", Path: name, Err: ErrSubmodule}
	default:
		return nil, &fs.PathError{Op: "readfile", Path: name, Err: fs.ErrInvalid}
	}
	b, err := t.readBlob(e.Hash)
	if err != nil {
		return nil, &fs.PathError{Op: "readfile", Path: name, Err: err}
	}
	return b, nil
}

func (t *treeFS) ReadDir(name string) ([]fs.DirEntry, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.readDir("readdir", name)
}

// readDir lists a directory sorted by name (Git sorts directories as if
// their names ended in "/", fs.ReadDir wants plain name order).
func (t *treeFS) readDir(op, name string) ([]fs.DirEntry, error) {
	e, err := t.lookup(op, name)
	if err != nil {
		return nil, err
	}
	if e.Mode != filemode.Dir {
		return nil, &fs.PathError{Op: op, Path: name, Err: errors.New("not a directory")}
	}
	tree := t.root
	if name != "." {
		if tree, err = object.GetTree(t.s, e.Hash); err != nil {
			return nil, &fs.PathError{Op: op, Path: name, Err: err}
		}
	}
	out := make([]fs.DirEntry, 0, len(tree.Entries))
	for _, c := range tree.Entries {
		fi, err := t.info(c, c.Name)
		if err != nil {
			return nil, &fs.PathError{Op: op, Path: path.Join(name, c.Name), Err: err}
		}
		out = append(out, fs.FileInfoToDirEntry(fi))
	}
	slices.SortFunc(out, func(a, b fs.DirEntry) int { return strings.Compare(a.Name(), b.Name()) })
	return out, nil
}

func (t *treeFS) Open(name string) (fs.File, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	e, err := t.lookup("open", name)
	if err != nil {
		return nil, err
	}
	fi, err := t.info(e, path.Base(name))
	if err != nil {
		return nil, &fs.PathError{Op: "open", Path: name, Err: err}
	}
	switch e.Mode {
	case filemode.Dir:
		ents, err := t.readDir("open", name)
		if err != nil {
			return nil, err
		}
		return &dirFile{fi: fi, ents: ents}, nil
	case filemode.Symlink:
		return nil, &fs.PathError{Op: "open", Path: name, Err: ErrSymlink}
	case filemode.Submodule:
		return nil, &fs.PathError{Op: "open", Path: name, Err: ErrSubmodule}
	}
	b, err := t.readBlob(e.Hash)
	if err != nil {
		return nil, &fs.PathError{Op: "open", Path: name, Err: err}
	}
	return &blobFile{fi: fi, r: bytes.NewReader(b)}, nil
}

type fileInfo struct {
	name    string
	size    int64
	mode    fs.FileMode
	modTime time.Time
	hash    plumbing.Hash
}

func (fi *fileInfo) Name() string       { return fi.name }
func (fi *fileInfo) Size() int64        { return fi.size }
func (fi *fileInfo) Mode() fs.FileMode  { return fi.mode }
func (fi *fileInfo) ModTime() time.Time { return fi.modTime }
func (fi *fileInfo) IsDir() bool        { return fi.mode.IsDir() }
func (fi *fileInfo) Sys() any           { return fi.hash }

// blobFile is an open regular file. It also implements io.Seeker and
// io.ReaderAt, which fstest.TestFS exercises and http.FileServer uses.
type blobFile struct {
	fi *fileInfo
	r  *bytes.Reader
}

func (f *blobFile) Stat() (fs.FileInfo, error)                { return f.fi, nil }
func (f *blobFile) Read(p []byte) (int, error)                { return f.r.Read(p) }
func (f *blobFile) ReadAt(p []byte, off int64) (int, error)   { return f.r.ReadAt(p, off) }
func (f *blobFile) Seek(off int64, whence int) (int64, error) { return f.r.Seek(off, whence) }
func (f *blobFile) Close() error                              { return nil }

// dirFile is an open directory; its listing is taken at Open.
type dirFile struct {
	fi   *fileInfo
	ents []fs.DirEntry
	off  int
}

func (d *dirFile) Stat() (fs.FileInfo, error) { return d.fi, nil }
func (d *dirFile) Read([]byte) (int, error) {
	return 0, &fs.PathError{Op: "read", Path: d.fi.name, Err: errors.New("is a directory")}
}
func (d *dirFile) Close() error { return nil }

func (d *dirFile) ReadDir(n int) ([]fs.DirEntry, error) {
	rest := d.ents[d.off:]
	if n <= 0 {
		d.off = len(d.ents)
		return rest, nil
	}
	if len(rest) == 0 {
		return nil, io.EOF
	}
	n = min(n, len(rest))
	d.off += n
	return rest[:n], nil
}
