package store

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"time"

	bolt "go.etcd.io/bbolt"
)

// RetentionPolicy bounds what the store keeps. Pruning removes a prefix of
// the sequence, and only ever up to a signed checkpoint: that checkpoint
// summarizes the pruned prefix (its size and head hash), meta "pruned_to"
// names it, and Verify starts from it. Events the SIEM forwarders have not
// delivered are never pruned: no event after a retention floor
// (Retention.SetFloor) or a cursor (Cursors.Set) is.
//
// bbolt never shrinks its file: pruning frees pages that later events
// reuse, so MaxBytes bounds the file's growth, not its current size.
type RetentionPolicy struct {
	MaxAge   time.Duration // prune events older than this; 0: no limit
	MaxBytes int64         // prune the oldest events while the data is over this; 0: no limit
	Interval time.Duration // how often a writable store checks (default 1m)
}

func (r RetentionPolicy) enabled() bool { return r.MaxAge > 0 || r.MaxBytes > 0 }

func (r RetentionPolicy) check() error {
	if r.MaxAge < 0 || r.MaxBytes < 0 || r.Interval < 0 {
		return errors.New("retention: negative limit")
	}
	return nil
}

// Retention applies the store's RetentionPolicy and keeps the floors that
// hold it back.
type Retention struct{ s *Store }

// Retention returns the store's retention.
func (s *Store) Retention() Retention { return Retention{s} }

// pruneChunk bounds one pruning transaction, so appends wait for it only
// briefly.
const pruneChunk = 4096

// SetFloor records that the consumer name (a SIEM forwarder, say) still
// needs every event after seq: retention never prunes past the smallest
// floor. Floors persist in the file; remove a consumer's with RemoveFloor
// when it goes away, or it holds retention back.
func (r Retention) SetFloor(name string, seq uint64) error {
	return r.s.putSeq(bFloors, "retention floor", name, seq)
}

// RemoveFloor forgets the floor of name.
func (r Retention) RemoveFloor(name string) error {
	if r.s.readOnly {
		return ErrReadOnly
	}
	return closedErr(r.s.db.Update(func(tx *bolt.Tx) error {
		if b := tx.Bucket(bFloors); b != nil {
			return b.Delete([]byte(name))
		}
		return nil
	}))
}

// floor returns the smallest retention floor or cursor, and whether there
// is any.
func floor(tx *bolt.Tx) (uint64, bool) {
	var low uint64
	found := false
	for _, name := range [][]byte{bFloors, bCursors} {
		eachSeq(tx.Bucket(name), func(_ string, n uint64) {
			if !found || n < low {
				low, found = n, true
			}
		})
	}
	return low, found
}

// PruneResult says what a Prune did.
type PruneResult struct {
	From, To uint64 // events From..To were pruned; To == 0: none
	Sessions int    // session summaries removed (sessions with no event left)
	Reason   string // max_age, max_bytes, or why nothing was pruned
}

// Prune applies the retention policy once, as of now. The store does it
// every RetentionPolicy.Interval by itself; Prune is for tests and tools.
func (r Retention) Prune(now time.Time) (PruneResult, error) { return r.s.prune(now) }

func (s *Store) prune(now time.Time) (PruneResult, error) {
	if s.readOnly {
		return PruneResult{}, ErrReadOnly
	}
	s.pruneMu.Lock()
	defer s.pruneMu.Unlock()
	var res PruneResult
	var target uint64
	err := s.view(func(tx *bolt.Tx) error {
		target, res.Reason = s.pruneTarget(tx, now)
		return nil
	})
	if err != nil || target == 0 {
		return res, err
	}
	for {
		var step PruneResult
		err := s.update(func(tx *bolt.Tx) error {
			from, to, n, err := pruneStep(tx, target)
			step = PruneResult{From: from, To: to, Sessions: n}
			return err
		})
		if err != nil {
			return res, closedErr(err)
		}
		if step.To == 0 {
			return res, nil
		}
		if res.From == 0 {
			res.From = step.From
		}
		res.To, res.Sessions = step.To, res.Sessions+step.Sessions
		if step.To >= target {
			return res, nil
		}
	}
}

// pruneTarget is the seq retention would prune up to (0: nothing): what
// the policy asks for, held back by the floors, cut back to a checkpoint.
func (s *Store) pruneTarget(tx *bolt.Tx, now time.Time) (uint64, string) {
	r := s.retention
	meta, events, cks := tx.Bucket(bMeta), tx.Bucket(bEvents), tx.Bucket(bCheckpoints)
	if meta == nil || events == nil || cks == nil {
		return 0, "empty store"
	}
	anchor := prunedTo(meta)
	k, _ := events.Cursor().Last()
	if k == nil {
		return 0, "no events"
	}
	last := seqOf(k)
	var want uint64
	reason := "within limits"
	if r.MaxAge > 0 {
		_, skew := readClock(meta)
		if cut := firstFrom(events.Cursor(), last, now.Add(-r.MaxAge), skew) - 1; cut > want {
			want, reason = cut, "max_age"
		}
	}
	if r.MaxBytes > 0 && last > anchor {
		var free int64
		if st := s.db.Stats(); st.FreeAlloc > 0 {
			free = int64(st.FreeAlloc)
		}
		var size int64
		if fi, err := os.Stat(s.path); err == nil {
			size = fi.Size()
		}
		if used := size - free; used > r.MaxBytes {
			per := float64(used) / float64(last-anchor)
			drop := uint64(float64(used-r.MaxBytes*9/10) / per)
			if cut := anchor + drop; cut > want {
				want, reason = cut, "max_bytes"
			}
		}
	}
	if want <= anchor {
		return 0, reason
	}
	if f, ok := floor(tx); ok && f < want {
		want, reason = f, reason+" (held back by a retention floor)"
	}
	// Down to the newest checkpoint at or before want.
	c := cks.Cursor()
	ck, _ := seekLE(c, u64(want))
	if ck == nil || seqOf(ck) > want || seqOf(ck) <= anchor {
		return 0, reason + ": no signed checkpoint to cut at yet"
	}
	return seqOf(ck), reason
}

// pruneStep prunes the events after the current anchor up to the newest
// checkpoint within pruneChunk events (or the first one beyond, if there is
// none within), at most target. It returns the range pruned.
func pruneStep(tx *bolt.Tx, target uint64) (from, to uint64, sessions int, err error) {
	meta, events, idx, cks := tx.Bucket(bMeta), tx.Bucket(bEvents), tx.Bucket(bIndex), tx.Bucket(bCheckpoints)
	anchor := prunedTo(meta)
	if anchor >= target {
		return 0, 0, 0, nil
	}
	c := cks.Cursor()
	end := uint64(0)
	if k, _ := seekLE(c, u64(min(target, anchor+pruneChunk))); k != nil && seqOf(k) > anchor {
		end = seqOf(k)
	} else if k, _ := c.Seek(u64(anchor + 1)); k != nil && seqOf(k) <= target {
		end = seqOf(k)
	}
	if end == 0 {
		return 0, 0, 0, nil
	}
	touched := map[string]bool{}
	values := map[string]bool{} // the index prefixes of the pruned events
	ec := events.Cursor()
	var keys [][]byte
	for k, v := ec.Seek(u64(anchor + 1)); k != nil && seqOf(k) <= end; k, v = ec.Next() {
		var e Event
		if _, err := decodeLean(seqOf(k), v, &e); err != nil {
			return 0, 0, 0, fmt.Errorf("event %d: %w", seqOf(k), err)
		}
		fields := e.fields()
		for i, val := range fields[:numIndex] {
			if val != "" {
				values[string(indexPrefix(indexFields[i], val))] = true
			}
		}
		if e.Kind == KindRequest {
			keys = append(keys, append(openCallPrefix[:2:2], u64(e.Seq)...))
		}
		if e.Session != "" {
			touched[e.Session] = true
		}
		keys = append(keys, nil) // marks the event itself
		keys = append(keys, u64(e.Seq))
	}
	for i := 0; i < len(keys); i++ {
		if keys[i] == nil {
			i++
			if err := events.Delete(keys[i]); err != nil {
				return 0, 0, 0, err
			}
			continue
		}
		if err := idx.Delete(keys[i]); err != nil {
			return 0, 0, 0, err
		}
	}
	if err := prunePostings(idx, values, end); err != nil {
		return 0, 0, 0, err
	}
	// Sessions with no event left go from the session list.
	sums, byStart := tx.Bucket(bSessions), tx.Bucket(bByStart)
	ic := idx.Cursor()
	for id := range touched {
		p := indexPrefix('s', id)
		if k, _ := ic.Seek(p); k != nil && len(k) == len(p)+8 && string(k[:len(p)]) == string(p) {
			continue
		}
		sum, err := getSession(sums, id)
		if err != nil {
			continue
		}
		if err := byStart.Delete(startKey(sum.Started, sum.Session)); err != nil {
			return 0, 0, 0, err
		}
		if err := sums.Delete([]byte(id)); err != nil {
			return 0, 0, 0, err
		}
		sessions++
	}
	if err := meta.Put(kPruned, u64(end)); err != nil {
		return 0, 0, 0, err
	}
	return anchor + 1, end, sessions, nil
}

// startRetention runs the policy every Interval until Close.
func (s *Store) startRetention() {
	s.stopPrune, s.pruneDone = make(chan struct{}), make(chan struct{})
	if !s.retention.enabled() {
		close(s.pruneDone)
		return
	}
	every := s.retention.Interval
	if every <= 0 {
		every = time.Minute
	}
	go func() {
		defer close(s.pruneDone)
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-s.stopPrune:
				return
			case now := <-t.C:
				res, err := s.prune(now)
				switch {
				case err != nil:
					slog.Error("mcptrail store: retention", "err", err)
				case res.To > 0:
					slog.Info("mcptrail store: retention pruned events", "from", res.From, "to", res.To, "sessions", res.Sessions, "reason", res.Reason)
				}
			}
		}
	}()
}

func (s *Store) stopRetention() {
	if s.stopPrune == nil {
		return
	}
	close(s.stopPrune)
	<-s.pruneDone
}
