package containerd

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
)

// RotateLogs rotates the log file of every mcp container whose file is at
// least maxBytes long, keeping keep older copies (<path>.1 newest ...
// <path>.<keep> oldest; keep 0 just empties the file).
//
// The shim holds each file open, so rotation is copy-then-truncate: the
// file is copied to <path>.1 and truncated in place. The shim opened it
// with O_APPEND, so its next write lands at the new end instead of leaving
// a hole. Lines written between the last copy and the truncate (a window
// of microseconds) are lost; renaming the file instead would lose nothing
// but the shim would keep writing to the renamed file until the task
// restarts, which is worse.
func (d *Driver) RotateLogs(ctx context.Context, maxBytes int64, keep int) error {
	cs, err := d.List(ctx)
	if err != nil {
		return fmt.Errorf("rotate logs: %w", err)
	}
	var errs []error
	for _, c := range cs {
		p := c.Labels[LabelLogPath]
		if p == "" {
			continue
		}
		rotated, err := RotateLog(p, maxBytes, keep)
		if err != nil {
			errs = append(errs, fmt.Errorf("rotate log of %s: %w", c.ID, err))
			continue
		}
		if rotated {
			d.log.Info("rotated log", "id", c.ID, "path", p)
		}
	}
	return errors.Join(errs...)
}

// RotateLog rotates one file as RotateLogs describes. It reports whether
// the file was rotated; a missing file is not an error.
func RotateLog(path string, maxBytes int64, keep int) (bool, error) {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if os.IsNotExist(err) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return false, err
	}
	if fi.Size() < maxBytes {
		return false, nil
	}
	if keep > 0 {
		if err := os.Remove(numbered(path, keep)); err != nil && !os.IsNotExist(err) {
			return false, err
		}
		for i := keep - 1; i >= 1; i-- {
			if err := os.Rename(numbered(path, i), numbered(path, i+1)); err != nil && !os.IsNotExist(err) {
				return false, err
			}
		}
		if err := copyAll(f, numbered(path, 1), fi.Mode().Perm()); err != nil {
			return false, err
		}
	}
	if err := f.Truncate(0); err != nil {
		return false, err
	}
	return true, nil
}

func numbered(path string, i int) string { return path + "." + strconv.Itoa(i) }

// copyAll copies src from its start to a new file dst, then once more
// whatever was appended meanwhile, to keep the loss window short.
func copyAll(src *os.File, dst string, perm os.FileMode) error {
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, perm)
	if err != nil {
		return err
	}
	if _, err := src.Seek(0, io.SeekStart); err != nil {
		out.Close()
		return err
	}
	// io.Copy reads to EOF; a second pass picks up the tail written while
	// the first ran.
	for range 2 {
		if _, err := io.Copy(out, src); err != nil {
			out.Close()
			return err
		}
	}
	return out.Close()
}
