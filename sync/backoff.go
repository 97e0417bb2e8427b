package gitsync

import (
	"math/rand/v2"
	"sync"
	"time"
)

// Backoff spaces out retries after failures: exponential growth with full
// jitter. The n-th consecutive wait (from 0) is drawn uniformly from
// [Min, min(Max, Min·2^(n+1))], so many agents behind one remote that came
// back do not retry in step, yet none retries sooner than Min (a remote
// that is down is not hammered). Reset after a success.
//
// The zero value is not usable; use NewBackoff. Safe for concurrent use.
type Backoff struct {
	min, max time.Duration

	mu      sync.Mutex
	rnd     *rand.Rand // nil: the global source
	attempt int
}

// NewBackoff returns a Backoff between min and max. src makes the jitter
// reproducible in tests; nil uses the runtime's random source.
func NewBackoff(min, max time.Duration, src rand.Source) *Backoff {
	if min <= 0 {
		min = time.Second
	}
	if max < min {
		max = min
	}
	b := &Backoff{min: min, max: max}
	if src != nil {
		b.rnd = rand.New(src)
	}
	return b
}

// Next returns how long to wait before the next attempt and counts the
// attempt.
func (b *Backoff) Next() time.Duration {
	b.mu.Lock()
	defer b.mu.Unlock()
	// Double min attempt+1 times, stopping at the cap (which also keeps
	// the doubling from overflowing).
	ceil := b.min
	for i := 0; i <= b.attempt && ceil < b.max; i++ {
		if ceil > b.max/2 {
			ceil = b.max
			break
		}
		ceil *= 2
	}
	ceil = min(ceil, b.max)
	b.attempt++
	span := int64(ceil - b.min)
	if span <= 0 {
		return b.min
	}
	var j int64
	if b.rnd != nil {
		j = b.rnd.Int64N(span + 1)
	} else {
		j = rand.Int64N(span + 1)
	}
	return b.min + time.Duration(j)
}

// Attempts returns how many waits were handed out since the last Reset.
func (b *Backoff) Attempts() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.attempt
}

// Reset starts over after a success.
func (b *Backoff) Reset() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.attempt = 0
}
