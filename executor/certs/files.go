package certs

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// File is one file of a certificate set.
type File struct {
	Path string
	Data []byte
	Mode os.FileMode
	// UID and GID own the file; -1 leaves the owner to the process.
	UID, GID int
}

// WriteSet writes files so that no consumer ever reads a half-written one
// and a failure leaves the previous files as they were: every file is first
// written to a temporary name in its own directory (synced, chmod and chown
// applied), and only when all are staged are they renamed over the targets.
// A rename that fails puts back the files already replaced. Directories
// that are missing are created 0755 (owned like the files).
func WriteSet(files []File) (err error) {
	type staged struct {
		f      File
		tmp    string
		backup string // hard link to the previous file, "" when there was none
	}
	var st []staged
	defer func() {
		for _, s := range st {
			if s.tmp != "" {
				os.Remove(s.tmp)
			}
			if s.backup != "" {
				os.Remove(s.backup)
			}
		}
	}()
	for _, f := range files {
		tmp, err := stage(f)
		if err != nil {
			return err
		}
		st = append(st, staged{f: f, tmp: tmp})
	}
	// Keep the old contents reachable until every rename succeeded.
	for i := range st {
		b := st[i].tmp + ".old"
		if err := os.Link(st[i].f.Path, b); err == nil {
			st[i].backup = b
		} else if !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("keep previous %s: %w", st[i].f.Path, err)
		}
	}
	for i := range st {
		if err := os.Rename(st[i].tmp, st[i].f.Path); err != nil {
			// Put the files already replaced back as they were; a failure
			// there is reported with the original one, never dropped.
			errs := []error{fmt.Errorf("replace %s: %w", st[i].f.Path, err)}
			for j := i - 1; j >= 0; j-- {
				if st[j].backup != "" {
					if rerr := os.Rename(st[j].backup, st[j].f.Path); rerr != nil {
						errs = append(errs, fmt.Errorf("restore %s: %w", st[j].f.Path, rerr))
					}
					st[j].backup = ""
				} else if rerr := os.Remove(st[j].f.Path); rerr != nil && !errors.Is(rerr, os.ErrNotExist) {
					errs = append(errs, fmt.Errorf("remove half-written %s: %w", st[j].f.Path, rerr))
				}
			}
			return errors.Join(errs...)
		}
		st[i].tmp = ""
	}
	dirs := map[string]bool{}
	for _, s := range st {
		dirs[filepath.Dir(s.f.Path)] = true
	}
	for d := range dirs {
		syncDir(d)
	}
	return nil
}

// stage writes f to a temporary file next to its target and returns its name.
func stage(f File) (string, error) {
	dir := filepath.Dir(f.Path)
	if err := mkdirOwned(dir, f.UID, f.GID); err != nil {
		return "", err
	}
	t, err := os.CreateTemp(dir, "."+filepath.Base(f.Path)+".mcp-*")
	if err != nil {
		return "", fmt.Errorf("write %s: %w", f.Path, err)
	}
	name := t.Name()
	fail := func(err error) (string, error) {
		t.Close()
		os.Remove(name)
		return "", fmt.Errorf("write %s: %w", f.Path, err)
	}
	// chmod before the data goes in, so a key is never readable by others.
	if err := t.Chmod(f.Mode); err != nil {
		return fail(err)
	}
	if f.UID >= 0 || f.GID >= 0 {
		if err := t.Chown(f.UID, f.GID); err != nil {
			return fail(err)
		}
	}
	if _, err := t.Write(f.Data); err != nil {
		return fail(err)
	}
	if err := t.Sync(); err != nil {
		return fail(err)
	}
	if err := t.Close(); err != nil {
		os.Remove(name)
		return "", fmt.Errorf("write %s: %w", f.Path, err)
	}
	return name, nil
}

// mkdirOwned creates dir and its missing parents; the directories it
// creates get uid:gid so the reader can traverse them.
func mkdirOwned(dir string, uid, gid int) error {
	if _, err := os.Stat(dir); err == nil {
		return nil
	}
	var missing []string
	for d := dir; ; d = filepath.Dir(d) {
		if _, err := os.Stat(d); err == nil {
			break
		}
		missing = append(missing, d)
		if d == filepath.Dir(d) {
			break
		}
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("create %s: %w", dir, err)
	}
	if uid >= 0 || gid >= 0 {
		for _, d := range missing {
			if err := os.Chown(d, uid, gid); err != nil {
				return fmt.Errorf("chown %s: %w", d, err)
			}
		}
	}
	return nil
}

func syncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync() // best effort: the data files themselves were synced
		d.Close()
	}
}
