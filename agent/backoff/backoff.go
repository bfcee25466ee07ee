// Package backoff computes exponential delays with jitter, for restarting
// services and reconnecting to the controller without a thundering herd.
package backoff

import (
	"math/rand/v2"
	"time"
)

// Backoff yields growing delays: Min, then ×Factor each failure, capped at
// Max, each reduced by a random fraction up to Jitter (full jitter at 1).
// The zero value is not useful; fill the fields or use New.
type Backoff struct {
	Min, Max time.Duration
	Factor   float64
	Jitter   float64        // 0..1
	Rand     func() float64 // [0,1); nil means math/rand/v2

	n int
}

// New returns a Backoff from min to max doubling, with 50% jitter.
func New(min, max time.Duration) *Backoff {
	return &Backoff{Min: min, Max: max, Factor: 2, Jitter: 0.5}
}

// Next returns the delay before the next attempt and counts a failure.
func (b *Backoff) Next() time.Duration {
	d := float64(b.Min)
	for i := 0; i < b.n && d < float64(b.Max); i++ {
		d *= b.Factor
	}
	if d > float64(b.Max) {
		d = float64(b.Max)
	}
	b.n++
	r := rand.Float64
	if b.Rand != nil {
		r = b.Rand
	}
	return time.Duration(d * (1 - b.Jitter*r()))
}

// Reset starts again from Min, after a success.
func (b *Backoff) Reset() { b.n = 0 }
