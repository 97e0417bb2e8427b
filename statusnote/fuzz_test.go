package statusnote

import (
	"strings"
	"testing"
	"time"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/filemode"
	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/go-git/go-git/v5/storage/memory"

	"metacircular.net/mcp/api"
)

// Notes are written by other nodes and read by every node and by the
// CLI: their content is hostile input.

// FuzzReadNote parses arbitrary note blobs. Parse must not panic, accept
// only records with a schema version, and an accepted record must survive
// its own Marshal unchanged (so a node re-publishing what it read does not
// drift).
func FuzzReadNote(f *testing.F) {
	good := &Record{SchemaVersion: 1, Time: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC), PlanHash: "sha256:abc",
		Status: api.Status{Node: "n1", AppliedCommit: strings.Repeat("a", 40), Services: []api.ServiceStatus{{Name: "web", State: api.StateRunning}}}}
	b, err := good.Marshal()
	if err != nil {
		f.Fatal(err)
	}
	for _, s := range []string{string(b), `{"schema_version": 2, "node": "n1", "future": {"x": [1, 2]}}`, `{"schema_version": 0}`, `[]`, `{"schema_version": 1, "time": "9999-12-31T23:59:59Z"}`, `{"schema_version": 1e308}`, `{"schema_version":1,"services":[{"name":"\u202ebew"}]}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := Parse(data)
		if err != nil {
			return
		}
		if r.SchemaVersion < 1 {
			t.Fatalf("accepted schema_version %d", r.SchemaVersion)
		}
		out, err := r.Marshal()
		if err != nil {
			return // e.g. a time JSON cannot write (year > 9999): never re-published
		}
		again, err := Parse(out)
		if err != nil {
			t.Fatalf("a marshalled record does not parse: %v\n%s", err, out)
		}
		if again.fingerprint() != r.fingerprint() || !again.Time.Equal(r.Time) {
			t.Fatalf("round trip changed the record:\n%s", out)
		}
	})
}

// FuzzNotesTree reads a notes ref whose tree is built from arbitrary
// entries (names, modes, a subtree given as raw tree bytes) and whose
// blobs are arbitrary. Reading must not panic, only 40-hex paths become
// notes, and Latest and For answer with a record or an error.
//
// entries is one entry per line: a mode letter (f file, x executable,
// d the subtree, l link, s submodule) and the name.
func FuzzNotesTree(f *testing.F) {
	f.Add("f"+strings.Repeat("ab", 20), []byte(`{"schema_version":1,"node":"n1"}`), []byte{})
	f.Add("dab\nf0123", []byte(`{"schema_version":1,"node":"n1"}`), []byte("100644 "+strings.Repeat("c", 38)+"\x00"+strings.Repeat("\x01", 20)))
	f.Add("d..\nd/\nl"+strings.Repeat("0", 40)+"\ns"+strings.Repeat("1", 40), []byte("x"), []byte("garbage"))
	f.Fuzz(func(t *testing.T, entries string, blob, rawTree []byte) {
		st := memory.NewStorage()
		blobHash, err := storeBlob(st, blob)
		if err != nil {
			t.Fatal(err)
		}
		raw := st.NewEncodedObject()
		raw.SetType(plumbing.TreeObject)
		w, _ := raw.Writer()
		_, _ = w.Write(rawTree)
		_ = w.Close()
		rawHash, err := st.SetEncodedObject(raw)
		if err != nil {
			t.Fatal(err)
		}
		var tes []object.TreeEntry
		seen := map[string]bool{}
		for _, line := range strings.Split(entries, "\n") {
			if len(line) < 2 || seen[line[1:]] {
				continue
			}
			name := line[1:]
			seen[name] = true
			e := object.TreeEntry{Name: name, Hash: blobHash}
			switch line[0] {
			case 'x':
				e.Mode = filemode.Executable
			case 'd':
				e.Mode, e.Hash = filemode.Dir, rawHash
			case 'l':
				e.Mode = filemode.Symlink
			case 's':
				e.Mode = filemode.Submodule
			default:
				e.Mode = filemode.Regular
			}
			tes = append(tes, e)
		}
		treeHash, err := storeTree(st, tes)
		if err != nil {
			return // go-git refuses to encode it: no such tree can be read either
		}
		c := &object.Commit{TreeHash: treeHash, Message: "notes", Author: object.Signature{When: time.Unix(0, 0)}, Committer: object.Signature{When: time.Unix(0, 0)}}
		co := st.NewEncodedObject()
		if err := c.Encode(co); err != nil {
			t.Fatal(err)
		}
		commit, err := st.SetEncodedObject(co)
		if err != nil {
			t.Fatal(err)
		}
		nt, err := readNotes(st, commit)
		if err == nil {
			for obj := range nt.notes {
				if obj.IsZero() && !strings.Contains(entries, strings.Repeat("0", 40)) {
					t.Fatalf("a note on the zero hash from entries %q", entries)
				}
			}
		}
		n := &Notes{st: st, tips: map[string]plumbing.Hash{"n1": commit}}
		if rec, err := n.Latest("n1"); err == nil && rec.Record.Node != "n1" {
			t.Fatalf("Latest(n1) returned a record of %q", rec.Record.Node)
		}
		for obj := range nt.notesOrNone() {
			if r, err := n.For("n1", obj); err == nil && r.SchemaVersion < 1 {
				t.Fatalf("For accepted schema_version %d", r.SchemaVersion)
			}
		}
	})
}

// notesOrNone ranges over the notes of a tree that may not have been read.
func (nt *notesTree) notesOrNone() map[plumbing.Hash]plumbing.Hash {
	if nt == nil {
		return nil
	}
	return nt.notes
}
