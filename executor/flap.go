package executor

import (
	"errors"
	"fmt"
	"sync"
	"time"
)

// Flap protection for the converge pass. A resource that keeps breaking
// (a container deleted again and again, a route someone keeps removing) is
// repaired at once the first few times; after RepairBurst repairs within
// RepairWindow it is backed off: the next repair waits RepairBackoff, then
// twice that, up to RepairBackoffMax, and the converge pass reports it
// instead of fighting in a tight loop. A resource that stayed repaired for
// a whole window starts over. (A task that keeps exiting is the restart
// supervisor's: it has its own backoff and crash-loop report.)
const (
	DefaultRepairBurst      = 3
	DefaultRepairWindow     = 10 * time.Minute
	DefaultRepairBackoff    = 30 * time.Second
	DefaultRepairBackoffMax = 10 * time.Minute
)

// ErrRepairBackedOff is wrapped by the converge pass's error for a
// resource whose repair is backed off.
var ErrRepairBackedOff = errors.New("repair backed off: it keeps breaking")

// WithRepairBackoff sets the converge pass's flap protection: burst repairs
// of one resource within window before backing off, starting at backoff
// and doubling up to max. The executor's clock (WithClock) times it.
func WithRepairBackoff(burst int, window, backoff, max time.Duration) Option {
	return func(e *Executor) {
		e.gate = &repairGate{burst: burst, window: window, initial: backoff, max: max}
	}
}

type repairGate struct {
	burst                int
	window, initial, max time.Duration

	mu    sync.Mutex
	state map[string]*flapState
}

type flapState struct {
	repairs []time.Time // within the window
	next    time.Duration
	until   time.Time // no repair before
}

func defaultGate() *repairGate {
	return &repairGate{burst: DefaultRepairBurst, window: DefaultRepairWindow, initial: DefaultRepairBackoff, max: DefaultRepairBackoffMax}
}

// allow says whether resource may be repaired at now; if so the repair is
// counted. Otherwise the error says until when it is backed off.
func (g *repairGate) allow(resource string, now time.Time) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.state == nil {
		g.state = map[string]*flapState{}
	}
	st := g.state[resource]
	if st == nil {
		st = &flapState{}
		g.state[resource] = st
	}
	if now.Before(st.until) {
		return fmt.Errorf("%s: %w (repaired %d times within %s); next attempt at %s",
			resource, ErrRepairBackedOff, len(st.repairs), g.window, st.until.UTC().Format(time.RFC3339))
	}
	kept := st.repairs[:0]
	for _, t := range st.repairs {
		if now.Sub(t) < g.window {
			kept = append(kept, t)
		}
	}
	st.repairs = append(kept, now)
	if len(st.repairs) == 1 {
		st.next = 0 // quiet for a whole window: start over
	}
	if len(st.repairs) >= g.burst {
		if st.next == 0 {
			st.next = g.initial
		} else {
			st.next = min(st.next*2, g.max)
		}
		st.until = now.Add(st.next)
	}
	return nil
}
