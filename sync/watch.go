package gitsync

import (
	"context"
	"path/filepath"
	"strings"

	"github.com/fsnotify/fsnotify"
)

// Watch returns a channel that receives a value soon after the followed
// branch's ref changes, when the repository is a local path (a plain path
// or file://). Signals are coalesced: the channel holds at most one, and a
// burst of ref updates (a push of several refs, a pack-refs) yields one or
// two. A signal means "poll now", not "the head moved": the caller still
// runs Head/Fetch, which is what makes spurious signals harmless.
//
// Git updates a ref by writing "<ref>.lock" and renaming it over the ref,
// and rewrites packed-refs the same way, so the watch is on directories
// (the git dir for packed-refs and each directory from refs/heads down to
// the ref), filtered by name; watching the ref file itself would lose the
// watch at the first rename.
//
// For remote URLs, or when the watcher cannot be set up (reported to the
// logger), the channel never fires and the poll timer is the only trigger.
// The channel is never closed; the watch stops when ctx is done.
func (s *Source) Watch(ctx context.Context) <-chan struct{} {
	ch := make(chan struct{}, 1)
	if s.scheme != schemeFile {
		return ch
	}
	w, err := fsnotify.NewWatcher()
	if err != nil {
		s.log.Warn("git watch disabled; relying on polling", "url", s.url, "err", err)
		return ch
	}
	gitDir := localGitDir(s.ep.Path)
	headsDir := filepath.Join(gitDir, "refs", "heads")
	refFile := filepath.Join(headsDir, filepath.FromSlash(s.cfg.Branch))
	packed := filepath.Join(gitDir, "packed-refs")

	// dirs are the directories to watch: the git dir, refs/heads, and for
	// a branch like "team/prod" every directory down to the ref's.
	dirs := []string{gitDir, headsDir}
	for d := filepath.Dir(refFile); d != headsDir && strings.HasPrefix(d, headsDir); d = filepath.Dir(d) {
		dirs = append(dirs, d)
	}
	wanted := make(map[string]bool, len(dirs))
	for _, d := range dirs {
		wanted[d] = true
		// A nested branch's directory may not exist yet; it is added when
		// created (below).
		if err := w.Add(d); err != nil && d != filepath.Dir(refFile) {
			s.log.Debug("git watch: cannot watch directory yet", "dir", d, "err", err)
		}
	}

	signal := func() {
		select {
		case ch <- struct{}{}:
		default: // one pending signal is enough
		}
	}
	go func() {
		defer w.Close()
		for {
			select {
			case <-ctx.Done():
				return
			case ev, ok := <-w.Events:
				if !ok {
					return
				}
				switch {
				case ev.Name == refFile || ev.Name == packed:
					signal()
				case ev.Has(fsnotify.Create) && wanted[ev.Name]:
					// A directory on the way to the ref appeared; watch it
					// and poll in case the ref was written before the watch.
					if err := w.Add(ev.Name); err != nil {
						s.log.Warn("git watch: cannot watch directory", "dir", ev.Name, "err", err)
					}
					signal()
				}
			case err, ok := <-w.Errors:
				if !ok {
					return
				}
				// An overflow loses events; a signal makes the caller poll.
				s.log.Warn("git watch error", "url", s.url, "err", err)
				signal()
			}
		}
	}()
	return ch
}
