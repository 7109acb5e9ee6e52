package store

import (
	"fmt"
	"testing"
	"time"
)

// An ended burst is logged at once, not a window later: with a window of
// an hour, the burst's events reach the log (and a crash image replays
// them) only because EndBurst let them go. Events appended while a burst
// is under way are not held back past it either, whoever appended them.
func TestBurstIsLoggedAtItsEnd(t *testing.T) {
	s, path := openLogOnly(t, time.Hour)
	const n = 12
	s.BeginBurst()
	for i := range n {
		mustAppend(t, s, call("s1", fmt.Sprintf("tool%d", i%3)))
	}
	s.EndBurst()
	waitLogged(t, s, n)
	// Bursts overlap (two wraps' segments): each EndBurst lets go what is
	// queued then, the other's events included.
	s.BeginBurst()
	s.BeginBurst()
	mustAppend(t, s, call("s1", "nested"))
	s.EndBurst()
	mustAppend(t, s, call("s1", "outer"))
	s.EndBurst()
	waitLogged(t, s, n+2)
	replaysFromLog(t, path, n+2, "tool2", n/3)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
}

// waitLogged waits until the log holds up to seq, for at most 10 s (in
// TestBurstIsLoggedAtItsEnd the window is longer: only a burst's end can
// have logged it).
func waitLogged(t *testing.T, s *Store, seq uint64) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(time.Millisecond) {
		s.mu.Lock()
		logged := s.walSeq
		s.mu.Unlock()
		if logged == seq {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("after 10 s the log holds up to seq %d, want %d", logged, seq)
		}
	}
}
