package cli

import (
	"fmt"
	"io"
	"time"
)

// progress shows a one-line "still waiting" indicator on a terminal while
// a long call runs (a sync waiting for a reconcile that pulls images), so
// the command does not look hung. On anything but a terminal it prints
// nothing: scripts and logs get only the result.
type progress struct {
	w    io.Writer
	done chan struct{}
	quit chan struct{}
}

// startProgress begins redrawing "<what>... 3s" every interval on w when w
// is a terminal; stop clears the line.
func startProgress(w io.Writer, what string, interval time.Duration) *progress {
	p := &progress{w: w, done: make(chan struct{}), quit: make(chan struct{})}
	if !isTerminal(w) {
		close(p.done)
		return p
	}
	start := time.Now()
	go func() {
		defer close(p.done)
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			select {
			case <-p.quit:
				fmt.Fprint(w, "\r\x1b[K") // clear the line for the result
				return
			case <-t.C:
				fmt.Fprintf(w, "\r\x1b[K%s... %s", what, time.Since(start).Round(time.Second))
			}
		}
	}()
	return p
}

// stop ends the indicator and waits until its line is cleared.
func (p *progress) stop() {
	select {
	case <-p.done:
		return
	default:
	}
	close(p.quit)
	<-p.done
}
