package ingest

import "time"

// The gateway's rate limits (refusals, adopted session ids) are token
// buckets. Their clock is the caller's, so tests can move time.

// bucket is a token bucket: burst tokens, one more every `every`.
type bucket struct {
	tokens float64
	last   time.Time
	primed bool
}

func (b *bucket) take(now time.Time, burst int, every time.Duration) bool {
	if !b.primed {
		b.tokens, b.last, b.primed = float64(burst), now, true
	}
	if d := now.Sub(b.last); d > 0 {
		b.tokens = min(float64(burst), b.tokens+float64(d)/float64(every))
		b.last = now
	}
	if b.tokens < 1 {
		return false
	}
	b.tokens--
	return true
}

// full reports whether the bucket would be full now: its state is then no
// different from a new one's.
func (b *bucket) full(now time.Time, burst int, every time.Duration) bool {
	return b.tokens+float64(now.Sub(b.last))/float64(every) >= float64(burst)
}
