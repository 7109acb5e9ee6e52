package store

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

// The index's postings answer every query as a scan of all events would:
// blocks that fill and split over many commits of every size, walked
// forward and back from any page cursor, joined, and pruned by retention,
// including a block that retention cuts in two.
func TestPostingsMatchAScan(t *testing.T) {
	base := time.Now().Add(-time.Hour - 3000*time.Second) // the first 3,000 are over an hour old
	s := tempStore(t, signed(Options{Durability: DurabilityBatch, CheckpointEvery: 500, Retention: RetentionPolicy{MaxAge: time.Hour, Interval: time.Hour}}))
	rng := rand.New(rand.NewPCG(1, 2))
	var all []Event
	for len(all) < 6000 {
		n := 1 + rng.IntN(300)
		if rng.IntN(2) == 0 {
			n = 1 + rng.IntN(3) // a quiet moment: the commit extends the blocks
		}
		for range n {
			i := len(all)
			ev := call(fmt.Sprintf("s%d", i/400+rng.IntN(3)), []string{"read", "read", "read", "write", "list"}[rng.IntN(5)])
			ev.Outcome = []string{OutcomeOK, OutcomeOK, OutcomeToolError}[rng.IntN(3)]
			ev.Time = base.Add(time.Duration(i) * time.Second)
			mustAppend(t, s, ev)
			all = append(all, *ev)
		}
		if err := s.Flush(); err != nil { // one commit for each group
			t.Fatal(err)
		}
	}
	queries := []Query{
		{Kind: KindRequest}, // every event: the longest list, many blocks
		{Tool: "read"}, {Tool: "list"}, {Session: "s3"}, {Outcome: OutcomeToolError},
		{Tool: "write", Outcome: OutcomeToolError}, {Session: "s7", Tool: "read"}, {Session: "s1", Tool: "list", Outcome: OutcomeOK},
	}
	check := func(stage string, from uint64) {
		t.Helper()
		for _, q := range queries {
			for _, newest := range []bool{false, true} {
				q.Newest, q.Limit = newest, 37
				got := pages(t, s, q)
				var want []uint64
				want2 := q.fields()
				for _, ev := range all {
					if ev.Seq >= from && q.match(&ev, &want2) {
						want = append(want, ev.Seq)
					}
				}
				if newest {
					slices.Reverse(want)
				}
				if !slices.Equal(got, want) {
					t.Fatalf("%s: %+v: %d events, want %d (first difference at %d)", stage, q, len(got), len(want), firstDiff(got, want))
				}
			}
		}
	}
	check("after appending", 1)

	// Far fewer keys than events × indices: what the blocks are for.
	keys := 0
	s.view(func(tx *bolt.Tx) error {
		return tx.Bucket(bIndex).ForEach(func(k, v []byte) error {
			if !bytes.HasPrefix(k, openCallPrefix) {
				keys++
			}
			return nil
		})
	})
	if keys > len(all)/20 {
		t.Errorf("%d index keys for %d events", keys, len(all))
	}

	res, err := s.Retention().Prune(time.Now())
	if err != nil || res.To == 0 {
		t.Fatalf("Prune = %+v, %v", res, err)
	}
	// No block keeps a pruned seq, not even the ones pruning cut in two.
	s.view(func(tx *bolt.Tx) error {
		return tx.Bucket(bIndex).ForEach(func(k, v []byte) error {
			if seqs := decodePostings(nil, k, v); !bytes.HasPrefix(k, openCallPrefix) && seqs[0] <= res.To {
				t.Errorf("after pruning 1-%d the block %q holds %d", res.To, k, seqs[0])
			}
			return nil
		})
	})
	check(fmt.Sprintf("after pruning 1-%d", res.To), res.To+1)
	// New events after the pruning extend the lists pruning cut.
	for range 50 {
		ev := call("s1", "read")
		ev.Outcome = OutcomeOK
		mustAppend(t, s, ev)
		all = append(all, *ev)
	}
	if err := s.Flush(); err != nil {
		t.Fatal(err)
	}
	check("after appending again", res.To+1)
}

func firstDiff(a, b []uint64) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}

// Stores written before blocks hold a key per event and index, with an
// empty value: each reads as a block of one, and the next commit grows the
// last of them into a block.
func TestPostingsReadOneKeyPerEvent(t *testing.T) {
	s := tempStore(t, Options{})
	prefix := indexPrefix('t', "legacy")
	if err := s.update(func(tx *bolt.Tx) error {
		for _, seq := range []uint64{2, 5, 9} {
			if err := tx.Bucket(bIndex).Put(postingKey(prefix, seq), []byte{}); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	seqs := func(c *postingCursor, newest bool) []uint64 {
		var out []uint64
		first, step := func() (uint64, bool) { return c.seekGE(0) }, c.next
		if newest {
			first, step = func() (uint64, bool) { return c.seekLE(100) }, c.prev
		}
		for seq, ok := first(); ok; seq, ok = step() {
			out = append(out, seq)
		}
		return out
	}
	read := func() (fwd, back []uint64, ge6, le4 uint64) {
		s.view(func(tx *bolt.Tx) error {
			idx := tx.Bucket(bIndex)
			fwd, back = seqs(newPostingCursor(idx, prefix), false), seqs(newPostingCursor(idx, prefix), true)
			ge6, _ = newPostingCursor(idx, prefix).seekGE(6)
			le4, _ = newPostingCursor(idx, prefix).seekLE(4)
			return nil
		})
		return
	}
	if fwd, back, ge6, le4 := read(); !slices.Equal(fwd, []uint64{2, 5, 9}) || !slices.Equal(back, []uint64{9, 5, 2}) || ge6 != 9 || le4 != 2 {
		t.Fatalf("one key per event: forward %v, backward %v, first at or after 6: %d, last at or before 4: %d", fwd, back, ge6, le4)
	}
	if err := s.update(func(tx *bolt.Tx) error {
		return postings{string(prefix): {12, 13}}.write(tx.Bucket(bIndex))
	}); err != nil {
		t.Fatal(err)
	}
	if fwd, back, _, _ := read(); !slices.Equal(fwd, []uint64{2, 5, 9, 12, 13}) || !slices.Equal(back, []uint64{13, 12, 9, 5, 2}) {
		t.Fatalf("after a commit: forward %v, backward %v", fwd, back)
	}
}

// FuzzPostings: a block decodes to what was encoded, and any value decodes
// without a panic to ascending seqs ending in the key's.
func FuzzPostings(f *testing.F) {
	f.Add(uint64(9), []byte{})
	f.Add(uint64(300), encodePostings([]uint64{1, 2, 200, 300}))
	f.Add(uint64(5), []byte{0x80, 0x80})
	f.Fuzz(func(t *testing.T, last uint64, v []byte) {
		k := postingKey([]byte("tx\x00"), last)
		seqs := decodePostings(nil, k, v)
		if seqs[len(seqs)-1] != last || !slices.IsSorted(seqs) || slices.Contains(seqs, 0) && last != 0 {
			t.Fatalf("block %d %x decodes to %v", last, v, seqs)
		}
		if again := decodePostings(nil, k, encodePostings(seqs)); !slices.Equal(again, seqs) {
			t.Fatalf("%v encodes and decodes to %v", seqs, again)
		}
	})
}
