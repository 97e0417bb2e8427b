package api

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"time"
)

// serveLog writes the tail of the log file at path and, when following,
// whatever is appended to it until the client goes away.
func (s *Server) serveLog(w http.ResponseWriter, r *http.Request, req logsRequest, path string) {
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		if !req.follow {
			writeError(w, http.StatusNotFound, fmt.Sprintf("%s/%s has no log file yet", req.service, req.component))
			return
		}
		// Following a component that has not written anything yet is
		// normal right after a deploy: wait for the file to appear.
		f = nil
	} else if err != nil {
		s.fail(w, r, "open log file", fmt.Errorf("open log of %s/%s: %w", req.service, req.component, err))
		return
	}
	if f != nil {
		defer func() { f.Close() }()
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(http.StatusOK)
	rc := http.NewResponseController(w)

	var offset int64
	if f != nil {
		start, err := tailOffset(f, req.lines)
		if err != nil {
			s.log.Warn("api: tail log", "path", path, "err", err)
			return
		}
		n, err := io.Copy(w, io.NewSectionReader(f, start, 1<<62))
		offset = start + n
		if err != nil {
			return // the client left, or the file could not be read
		}
	}
	if !req.follow {
		return
	}
	// Headers (and the tail) go out now: a client following a quiet log
	// must not wait for the first new line to learn the request worked.
	if err := rc.Flush(); err != nil {
		return
	}
	fl := &follower{path: path, f: f, offset: offset}
	defer func() { fl.close() }()
	err = fl.run(r.Context(), s.followInterval, func(p []byte) error {
		if _, err := w.Write(p); err != nil {
			return err
		}
		return rc.Flush()
	})
	if err != nil && !errors.Is(err, context.Canceled) {
		s.log.Debug("api: follow log ended", "path", path, "err", err)
	}
}

// tailOffset returns where the last n lines of f begin (n < 0: the whole
// file, 0: its end). A final line without a newline counts as a line.
func tailOffset(f *os.File, n int) (int64, error) {
	fi, err := f.Stat()
	if err != nil {
		return 0, fmt.Errorf("stat log file: %w", err)
	}
	size := fi.Size()
	if n < 0 {
		return 0, nil
	}
	if n == 0 || size == 0 {
		return size, nil
	}
	const chunk = 32 << 10
	buf := make([]byte, chunk)
	end := size
	// The newline that ends the last line is not a separator between lines.
	if _, err := f.ReadAt(buf[:1], size-1); err != nil {
		return 0, fmt.Errorf("read log file: %w", err)
	}
	if buf[0] == '\n' {
		end--
	}
	seen := 0
	for end > 0 {
		start := max(end-chunk, 0)
		b := buf[:end-start]
		if _, err := f.ReadAt(b, start); err != nil && !errors.Is(err, io.EOF) {
			return 0, fmt.Errorf("read log file: %w", err)
		}
		for i := len(b) - 1; i >= 0; i-- {
			if b[i] != '\n' {
				continue
			}
			seen++
			if seen == n {
				return start + int64(i) + 1, nil
			}
		}
		end = start
	}
	return 0, nil
}

// follower copies what is appended to a log file, surviving the ways log
// files get rotated: truncated in place (copytruncate: the file shrinks
// below what was already sent, so start again from its beginning) or
// renamed away and recreated (the path's inode changes: finish the old file,
// then open the new one from its beginning).
type follower struct {
	path   string
	f      *os.File // nil until the file exists
	offset int64
}

func (fl *follower) close() {
	if fl.f != nil {
		fl.f.Close()
	}
}

func (fl *follower) run(ctx context.Context, interval time.Duration, emit func([]byte) error) error {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		if err := fl.poll(emit); err != nil {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
}

// poll sends whatever is new since the last call.
func (fl *follower) poll(emit func([]byte) error) error {
	if fl.f == nil {
		f, err := os.Open(fl.path)
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("open log file: %w", err)
		}
		fl.f, fl.offset = f, 0
	}
	cur, err := fl.f.Stat()
	if err != nil {
		return fmt.Errorf("stat log file: %w", err)
	}
	if cur.Size() < fl.offset {
		fl.offset = 0 // truncated in place
	}
	if err := fl.drain(emit); err != nil {
		return err
	}
	onDisk, err := os.Stat(fl.path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil // mid-rotation: renamed away, not recreated yet
	}
	if err != nil {
		return fmt.Errorf("stat log file: %w", err)
	}
	if os.SameFile(cur, onDisk) {
		return nil
	}
	// Replaced. Lines may have reached the old file between the drain
	// above and the rename: drain it once more, then go on with the new one.
	if err := fl.drain(emit); err != nil {
		return err
	}
	f, err := os.Open(fl.path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		return fmt.Errorf("open log file: %w", err)
	}
	fl.f.Close()
	fl.f, fl.offset = f, 0
	return fl.drain(emit)
}

// drain sends the file from the offset to its current end.
func (fl *follower) drain(emit func([]byte) error) error {
	buf := make([]byte, 32<<10)
	for {
		n, err := fl.f.ReadAt(buf, fl.offset)
		if n > 0 {
			// Bytes go out as they are: a line still being written is
			// completed by the next poll.
			fl.offset += int64(n)
			if werr := emit(buf[:n]); werr != nil {
				return werr
			}
		}
		if errors.Is(err, io.EOF) || (err == nil && n == 0) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("read log file: %w", err)
		}
	}
}
