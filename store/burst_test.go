package store

import (
	"fmt"
	"path/filepath"
	"testing"
	"time"
)

// An ended burst is logged at once, not a window later: with a window of
// an hour, the burst's events reach the log (and a crash image replays
// them) only because EndBurst let them go. Events appended while a burst
// is under way are not held back past it either, whoever appended them.
func TestBurstIsLoggedAtItsEnd(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "mcptrail.db")
	s := openStore(t, path, signed(Options{Durability: DurabilityBatch, BatchWindow: time.Hour}))
	s.mu.Lock()
	s.applyAfter = time.Hour // nothing reaches the file unless a reader asks
	s.mu.Unlock()
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
	crashed := crashImageOf(t, path, 0)
	c := openStore(t, crashed, signed(Options{}))
	if c.Last() != n+2 {
		t.Fatalf("after replay Last = %d, want %d", c.Last(), n+2)
	}
	if p, err := c.Query(Query{Tool: "tool2"}); err != nil || len(p.Events) != n/3 {
		t.Fatalf("replayed events by tool: %d, %v; want %d", len(p.Events), err, n/3)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
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
