package store

import (
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

// retentionStore has 100 events a minute apart, the newest a minute ago,
// in 10 sessions of 10 consecutive events, checkpoints every 10.
func retentionStore(t *testing.T, opts Options) (*Store, time.Time) {
	t.Helper()
	now := time.Now()
	s := openStore(t, filepath.Join(t.TempDir(), "mcptrail.db"), signed(opts))
	for i := 1; i <= 100; i++ {
		ev := call(fmt.Sprintf("s%d", (i-1)/10), "x")
		ev.Time = now.Add(-time.Duration(101-i) * time.Minute)
		mustAppend(t, s, ev)
	}
	return s, now
}

func TestRetentionMaxAge(t *testing.T) {
	s, now := retentionStore(t, Options{CheckpointEvery: 10, Retention: RetentionPolicy{MaxAge: time.Hour, Interval: time.Hour}})
	// Events 1-40 are older than an hour; 40 is a checkpoint.
	res, err := s.Retention().Prune(now)
	if err != nil || res.From != 1 || res.To != 40 || res.Sessions != 4 || res.Reason != "max_age" {
		t.Fatalf("Prune = %+v, %v", res, err)
	}
	if _, err := s.Get(40); err == nil {
		t.Fatal("event 40 is still there")
	}
	p, err := s.Query(Query{Limit: 1})
	if err != nil || len(p.Events) != 1 || p.Events[0].Seq != 41 {
		t.Fatalf("oldest event after pruning: %+v, %v", p.Events, err)
	}
	if p, _ := s.Query(Query{Session: "s2"}); len(p.Events) != 0 {
		t.Fatalf("pruned events still indexed: %+v", p.Events)
	}
	if list, _ := s.Sessions(SessionQuery{}); len(list) != 6 {
		t.Fatalf("%d sessions after pruning 4 of 10", len(list))
	}
	r, err := s.VerifyWith(VerifyOptions{Keys: []string{testVKey}})
	if err != nil || !r.OK || r.From != 41 || r.Events != 60 {
		t.Fatalf("Verify after pruning = %+v, %v", r, err)
	}
	if res, _ := s.Retention().Prune(now); res.To != 0 {
		t.Fatalf("second Prune pruned again: %+v", res)
	}

	// Reopen, append, verify; then the anchor tampered with.
	path := s.Path()
	s.Close()
	s = openStore(t, path, signed(Options{CheckpointEvery: 10}))
	if seq := mustAppend(t, s, call("s9", "x")); seq != 101 {
		t.Fatalf("append after pruning: seq %d", seq)
	}
	s.Close()
	if r, err := VerifyFile(path, VerifyOptions{Keys: []string{testVKey}}); err != nil || !r.OK || r.Events != 61 {
		t.Fatalf("Verify after reopening = %+v, %v", r, err)
	}
	for name, fn := range map[string]func(tx *bolt.Tx) error{
		"anchor forgotten":    func(tx *bolt.Tx) error { return tx.Bucket(bMeta).Delete(kPruned) },
		"anchor checkpoint":   func(tx *bolt.Tx) error { return tx.Bucket(bCheckpoints).Delete(u64(40)) },
		"anchor moved back":   func(tx *bolt.Tx) error { return tx.Bucket(bMeta).Put(kPruned, u64(30)) },
		"more events removed": func(tx *bolt.Tx) error { return tx.Bucket(bEvents).Delete(u64(41)) },
	} {
		bad := filepath.Join(t.TempDir(), "bad.db")
		copyFile(t, path, bad)
		withBolt(t, bad, fn)
		r, err := VerifyFile(bad, VerifyOptions{Keys: []string{testVKey}})
		if err != nil || r.OK || r.Problem != ProblemDeleted {
			t.Errorf("%s: Verify = %+v, %v", name, r, err)
		}
	}
}

func TestRetentionFloors(t *testing.T) {
	s, now := retentionStore(t, Options{CheckpointEvery: 10, Retention: RetentionPolicy{MaxAge: time.Hour, Interval: time.Hour}})
	if err := s.Retention().SetFloor("siem/splunk", 25); err != nil {
		t.Fatal(err)
	}
	if err := s.Cursors().Set("siem/elastic", 33); err != nil {
		t.Fatal(err)
	}
	res, err := s.Retention().Prune(now)
	if err != nil || res.To != 20 {
		t.Fatalf("Prune with floors 25 and 33 = %+v, %v (want up to the checkpoint of 20)", res, err)
	}
	s.Retention().SetFloor("siem/splunk", 90)
	if res, _ := s.Retention().Prune(now); res.From != 21 || res.To != 30 {
		t.Fatalf("Prune with floors 90 and 33 = %+v (want 21-30)", res)
	}
	s.Retention().RemoveFloor("siem/splunk")
	s.Cursors().Set("siem/elastic", 100)
	if res, _ := s.Retention().Prune(now); res.From != 31 || res.To != 40 {
		t.Fatalf("Prune with the floors lifted = %+v (want 31-40)", res)
	}
	mustVerify2(t, s, 41, 60)
}

// Without a checkpoint to cut at, nothing is pruned: the chain could not
// be verified from the cut.
func TestRetentionNeedsACheckpoint(t *testing.T) {
	s := tempStore(t, Options{Retention: RetentionPolicy{MaxAge: time.Hour, Interval: time.Hour}})
	ev := call("s1", "x")
	ev.Time = time.Now().Add(-2 * time.Hour)
	mustAppend(t, s, ev)
	if res, err := s.Retention().Prune(time.Now()); err != nil || res.To != 0 {
		t.Fatalf("Prune without checkpoints = %+v, %v", res, err)
	}
}

func TestRetentionMaxBytesInBackground(t *testing.T) {
	s, _ := retentionStore(t, Options{CheckpointEvery: 10, Retention: RetentionPolicy{MaxBytes: 1, Interval: 10 * time.Millisecond}})
	deadline := time.Now().Add(10 * time.Second)
	for {
		// Pruning may take every event (each is over the size), in more
		// than one step: what tells is that the first one is gone.
		if _, err := s.Get(1); errors.Is(err, ErrNotFound) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the background retention did not prune an over-size store")
		}
		time.Sleep(10 * time.Millisecond)
	}
	s.Close()
	if r, err := VerifyFile(s.Path(), VerifyOptions{Keys: []string{testVKey}}); err != nil || !r.OK || r.From < 2 {
		t.Fatalf("Verify = %+v, %v", r, err)
	}
}

func mustVerify2(t *testing.T, s *Store, from, events uint64) {
	t.Helper()
	r, err := s.VerifyWith(VerifyOptions{Keys: []string{testVKey}})
	if err != nil || !r.OK || r.From != from || r.Events != events {
		t.Fatalf("Verify = %+v, %v; want from %d, %d events", r, err, from, events)
	}
}

// Time-bounded queries stay exact once a prefix is pruned: the binary
// search on seqs meets the gap before the first event kept.
func TestTimeBoundsAfterPruning(t *testing.T) {
	s, now := retentionStore(t, Options{CheckpointEvery: 10, Retention: RetentionPolicy{MaxAge: time.Hour, Interval: time.Hour}})
	if res, err := s.Retention().Prune(now); err != nil || res.To != 40 {
		t.Fatalf("Prune = %+v, %v", res, err)
	}
	at := func(i int) time.Time { return now.Add(-time.Duration(101-i) * time.Minute) }
	for _, b := range [][2]int{{1, 30}, {1, 41}, {1, 42}, {20, 60}, {41, 42}, {50, 101}, {0, 101}, {99, 100}, {100, 0}} {
		var q Query
		if b[0] > 0 {
			q.Since = at(b[0])
		}
		if b[1] > 0 {
			q.Until = at(b[1])
		}
		var want []uint64
		for i := 41; i <= 100; i++ {
			if i >= max(b[0], 1) && (b[1] == 0 || i < b[1]) {
				want = append(want, uint64(i))
			}
		}
		for _, newest := range []bool{false, true} {
			q.Newest, q.Limit = newest, 1000
			p, err := s.Query(q)
			if err != nil {
				t.Fatal(err)
			}
			var got []uint64
			for _, e := range p.Events {
				got = append(got, e.Seq)
			}
			if newest {
				slices.Reverse(got)
			}
			if !slices.Equal(got, want) {
				t.Errorf("events %d to %d (newest first %v): got %v, want %v", b[0], b[1], newest, got, want)
			}
		}
	}
}
