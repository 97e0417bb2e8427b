package statusnote

import (
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/filemode"
	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/go-git/go-git/v5/plumbing/storer"
)

// fanoutAbove is the number of notes beyond which the tree is written with
// one level of fan-out ("ab/cdef..."), as git does for large notes trees.
// A variable only so tests can lower it.
var fanoutAbove = 256

// notesTree is the content of a notes commit: notes by annotated object,
// and whatever else the tree held (kept as is).
type notesTree struct {
	notes map[plumbing.Hash]plumbing.Hash // annotated object → blob
	other []object.TreeEntry              // non-note entries at the top
}

// readNotes reads the notes tree of a notes commit (zero: empty), in any
// fan-out.
func readNotes(s storer.EncodedObjectStorer, commit plumbing.Hash) (*notesTree, error) {
	nt := &notesTree{notes: map[plumbing.Hash]plumbing.Hash{}}
	if commit.IsZero() {
		return nt, nil
	}
	c, err := object.GetCommit(s, commit)
	if err != nil {
		return nil, fmt.Errorf("read notes commit %s: %w", commit, err)
	}
	t, err := object.GetTree(s, c.TreeHash)
	if err != nil {
		return nil, fmt.Errorf("read notes tree %s: %w", c.TreeHash, err)
	}
	if err := nt.walk(s, t, "", true); err != nil {
		return nil, err
	}
	return nt, nil
}

func (nt *notesTree) walk(s storer.EncodedObjectStorer, t *object.Tree, prefix string, top bool) error {
	for _, e := range t.Entries {
		name := prefix + e.Name
		switch {
		case e.Mode == filemode.Dir && isHex(e.Name) && len(name) < 40:
			sub, err := object.GetTree(s, e.Hash)
			if err != nil {
				return fmt.Errorf("read notes subtree %s: %w", name, err)
			}
			if err := nt.walk(s, sub, name, false); err != nil {
				return err
			}
		case e.Mode.IsFile() && len(name) == 40 && isHex(e.Name):
			nt.notes[plumbing.NewHash(name)] = e.Hash
		case top:
			nt.other = append(nt.other, e)
		}
	}
	return nil
}

func isHex(s string) bool {
	for _, c := range s {
		if !strings.ContainsRune("0123456789abcdef", c) {
			return false
		}
	}
	return s != ""
}

// write stores the tree objects and returns the top tree's hash.
func (nt *notesTree) write(s storer.EncodedObjectStorer) (plumbing.Hash, error) {
	keys := make([]string, 0, len(nt.notes))
	for k := range nt.notes {
		keys = append(keys, k.String())
	}
	sort.Strings(keys)
	var top []object.TreeEntry
	if len(keys) <= fanoutAbove {
		for _, k := range keys {
			top = append(top, object.TreeEntry{Name: k, Mode: filemode.Regular, Hash: nt.notes[plumbing.NewHash(k)]})
		}
	} else {
		for i := 0; i < len(keys); {
			dir := keys[i][:2]
			var sub []object.TreeEntry
			for ; i < len(keys) && keys[i][:2] == dir; i++ {
				sub = append(sub, object.TreeEntry{Name: keys[i][2:], Mode: filemode.Regular, Hash: nt.notes[plumbing.NewHash(keys[i])]})
			}
			h, err := storeTree(s, sub)
			if err != nil {
				return plumbing.ZeroHash, err
			}
			top = append(top, object.TreeEntry{Name: dir, Mode: filemode.Dir, Hash: h})
		}
	}
	top = append(top, nt.other...)
	return storeTree(s, top)
}

// storeTree writes a tree with its entries in git's order (a directory
// sorts as if its name ended in "/").
func storeTree(s storer.EncodedObjectStorer, entries []object.TreeEntry) (plumbing.Hash, error) {
	key := func(e object.TreeEntry) string {
		if e.Mode == filemode.Dir {
			return e.Name + "/"
		}
		return e.Name
	}
	sort.Slice(entries, func(i, j int) bool { return key(entries[i]) < key(entries[j]) })
	t := &object.Tree{Entries: entries}
	o := s.NewEncodedObject()
	if err := t.Encode(o); err != nil {
		return plumbing.ZeroHash, fmt.Errorf("encode notes tree: %w", err)
	}
	return s.SetEncodedObject(o)
}

// storeBlob writes b as a blob.
func storeBlob(s storer.EncodedObjectStorer, b []byte) (plumbing.Hash, error) {
	o := s.NewEncodedObject()
	o.SetType(plumbing.BlobObject)
	o.SetSize(int64(len(b)))
	w, err := o.Writer()
	if err != nil {
		return plumbing.ZeroHash, err
	}
	if _, err := w.Write(b); err != nil {
		return plumbing.ZeroHash, err
	}
	if err := w.Close(); err != nil {
		return plumbing.ZeroHash, err
	}
	return s.SetEncodedObject(o)
}

// readBlob reads a note's content.
func readBlob(s storer.EncodedObjectStorer, h plumbing.Hash) ([]byte, error) {
	b, err := object.GetBlob(s, h)
	if err != nil {
		return nil, fmt.Errorf("read note %s: %w", h, err)
	}
	r, err := b.Reader()
	if err != nil {
		return nil, err
	}
	defer r.Close()
	const maxNote = 16 << 20
	data, err := io.ReadAll(io.LimitReader(r, maxNote+1))
	if err != nil {
		return nil, err
	}
	if len(data) > maxNote {
		return nil, errors.New("note larger than 16 MiB")
	}
	return data, nil
}
