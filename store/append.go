package store

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log/slog"
	"math"
	"time"

	"github.com/oklog/ulid/v2"
	bolt "go.etcd.io/bbolt"
)

// pending is a queued event, or a Flush marker when data is nil.
type pending struct {
	ev   Event
	data []byte
	hash [32]byte
	at   time.Time  // when queued: the batch window runs from here
	done chan error // receives the commit's result; nil when nobody waits
}

// Times the store can order (Unix nanoseconds fit in an int64).
var (
	minTime = time.Unix(0, math.MinInt64)
	maxTime = time.Unix(0, math.MaxInt64)
)

// Append records ev and returns its seq. It assigns ev's Seq, ID (when
// empty), Time (now, when zero; always UTC), PrevHash and Hash. In strict
// mode it returns once the event is committed and synced; in batch mode once
// it is queued. The store keeps its own copy: the caller may reuse ev.
func (s *Store) Append(ev *Event) (uint64, error) {
	return s.append(ev, !s.batch)
}

// AppendNoWait is Append without waiting for the commit, whatever the
// durability: for records that need not be durable before the gateway acts
// (responses, notifications). A strict store still commits them at once.
func (s *Store) AppendNoWait(ev *Event) (uint64, error) {
	return s.append(ev, false)
}

func (s *Store) append(ev *Event, wait bool) (uint64, error) {
	if s.readOnly {
		return 0, ErrReadOnly
	}
	e, err := ev.owned()
	if err != nil {
		return 0, err
	}
	if e.ID == "" {
		e.ID = ulid.Make().String()
	}
	var done chan error
	if wait {
		done = make(chan error, 1)
	}

	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return 0, ErrClosed
	}
	now := time.Now()
	if e.Time.IsZero() {
		e.Time = now
	}
	e.Time = e.Time.UTC()
	if e.Time.Before(minTime) || e.Time.After(maxTime) {
		s.mu.Unlock()
		return 0, fmt.Errorf("store: event time %v out of range", e.Time)
	}
	e.Seq = s.seq + 1
	data, sum, err := seal(&e, s.hash)
	if err != nil {
		s.mu.Unlock()
		return 0, fmt.Errorf("store: encode event: %w", err)
	}
	s.seq, s.hash = e.Seq, sum
	s.queue = append(s.queue, &pending{ev: e, data: data, hash: sum, at: now, done: done})
	s.queued++
	s.pending++
	if wait {
		s.waiters++
	}
	// In batch mode the writer sleeps out the window unless there is a
	// reason to commit now; waking it for every event would cost CPU.
	wake := !s.batch || wait || len(s.queue) == 1 || s.queued >= s.maxBatch
	s.mu.Unlock()
	if wake {
		s.signal()
	}

	if wait {
		if err := <-done; err != nil {
			return 0, err
		}
	}
	ev.Seq, ev.ID, ev.Time, ev.PrevHash, ev.Hash = e.Seq, e.ID, e.Time, e.PrevHash, e.Hash
	return e.Seq, nil
}

// Flush returns when every event appended before it is committed, or with
// the error of the commit that lost one of them.
func (s *Store) Flush() error {
	if s.readOnly {
		return nil
	}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return ErrClosed
	}
	if s.pending == 0 {
		s.mu.Unlock()
		return nil
	}
	done := make(chan error, 1)
	s.queue = append(s.queue, &pending{at: time.Now(), done: done})
	s.waiters++
	s.mu.Unlock()
	s.signal()
	return <-done
}

func (s *Store) signal() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// run is the writer: the only goroutine that writes the file, so queued
// events commit in seq order, as many per transaction as have queued up.
func (s *Store) run() {
	defer close(s.stopped)
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	for {
		s.mu.Lock()
		batch, wait := s.take()
		closed := s.closed
		s.mu.Unlock()
		switch {
		case batch != nil:
			s.commit(batch)
		case wait > 0:
			timer.Reset(wait)
			select {
			case <-s.wake:
			case <-timer.C:
			}
			timer.Stop()
		case closed:
			return
		default:
			<-s.wake
		}
	}
}

// take removes the next batch from the queue, or says how long to wait for
// one. s.mu must be held.
func (s *Store) take() ([]*pending, time.Duration) {
	if len(s.queue) == 0 {
		return nil, 0
	}
	if s.batch && !s.closed && s.waiters == 0 && s.queued < s.maxBatch {
		if wait := time.Until(s.queue[0].at.Add(s.window)); wait > 0 {
			return nil, wait
		}
	}
	n, events := 0, 0
	for ; n < len(s.queue); n++ {
		p := s.queue[n]
		if p.data != nil {
			if events == s.maxBatch {
				break
			}
			events++
		}
		if p.done != nil {
			s.waiters--
		}
	}
	batch := s.queue[:n:n]
	s.queue = s.queue[n:]
	if len(s.queue) == 0 {
		s.queue = nil
	}
	s.queued -= events
	return batch, 0
}

// commit writes batch in one transaction. When it fails, the events queued
// behind it were chained onto events that will never exist, so they fail too
// and the chain restarts from the last committed event.
func (s *Store) commit(batch []*pending) {
	n := countEvents(batch)
	var err error
	if n > 0 {
		err = s.db.Update(func(tx *bolt.Tx) error {
			if hook := s.failHook.Load(); hook != nil {
				if err := (*hook)(); err != nil {
					return err
				}
			}
			return write(tx, batch)
		})
	}

	var lost []*pending
	s.mu.Lock()
	if err != nil {
		lost = s.queue
		m := n + countEvents(lost)
		s.queue, s.queued, s.waiters = nil, 0, 0
		s.seq, s.hash = s.doneSeq, s.doneHash
		s.pending -= m
		s.failed += uint64(m)
		err = fmt.Errorf("store: commit of seq %d-%d failed: %w", s.doneSeq+1, s.doneSeq+uint64(m), err)
		if s.closed {
			s.closeErr = err
		}
	} else if n > 0 {
		last := lastEvent(batch)
		s.doneSeq, s.doneHash = last.ev.Seq, last.hash
		s.pending -= n
		s.commits++
	}
	s.mu.Unlock()

	if err != nil {
		slog.Error("mcptrail store: events lost", "err", err)
	} else if n > 0 {
		s.publish(batch)
	}
	for _, list := range [][]*pending{batch, lost} {
		for _, p := range list {
			if p.done != nil {
				p.done <- err
			}
		}
	}
}

// write stores a batch: events, index entries, session summaries, head.
func write(tx *bolt.Tx, batch []*pending) error {
	events := tx.Bucket(bEvents)
	events.FillPercent = 1 // keys only ever grow: pack the pages
	meta := tx.Bucket(bMeta)
	var idx [numIndex]*bolt.Bucket
	for i, name := range indexBuckets {
		idx[i] = tx.Bucket(name)
	}
	latest, skew := readClock(meta)
	sessions := map[string]*SessionSummary{}

	for _, p := range batch {
		if p.data == nil {
			continue
		}
		e := &p.ev
		if err := events.Put(u64(e.Seq), p.data); err != nil {
			return err
		}
		for i, v := range e.fields() {
			if v == "" {
				continue
			}
			if err := idx[i].Put(indexKey(v, e.Seq), []byte{}); err != nil {
				return err
			}
		}
		if e.Session != "" {
			sum, err := loadSession(tx, sessions, e)
			if err != nil {
				return err
			}
			sum.add(e)
		}
		if e.Time.After(latest) {
			latest = e.Time
		} else if d := latest.Sub(e.Time); d > skew {
			skew = d
		}
	}

	b := tx.Bucket(bSessions)
	for id, sum := range sessions {
		v, err := json.Marshal(sum)
		if err != nil {
			return err
		}
		if err := b.Put([]byte(id), v); err != nil {
			return err
		}
	}
	last := lastEvent(batch)
	for _, kv := range [][2][]byte{
		{kLastSeq, u64(last.ev.Seq)},
		{kLastHash, last.hash[:]},
		{kMaxTime, u64(uint64(latest.UnixNano()))},
		{kSkew, u64(uint64(skew))},
	} {
		if err := meta.Put(kv[0], kv[1]); err != nil {
			return err
		}
	}
	return nil
}

func countEvents(list []*pending) int {
	n := 0
	for _, p := range list {
		if p.data != nil {
			n++
		}
	}
	return n
}

func lastEvent(batch []*pending) *pending {
	for i := len(batch) - 1; i >= 0; i-- {
		if batch[i].data != nil {
			return batch[i]
		}
	}
	return nil
}

// seal sets ev's PrevHash and Hash, chained to prev, and returns the bytes
// to store and the hash.
func seal(ev *Event, prev [32]byte) ([]byte, [32]byte, error) {
	ev.PrevHash, ev.Hash = "", ""
	canon, err := json.Marshal(ev)
	if err == nil && bytes.Contains(canon, []byte(`\ufffd`)) {
		// Marshal writes invalid UTF-8 as \ufffd, which decodes to U+FFFD,
		// which Marshal then writes as is: hash and keep the decoded form,
		// the one Verify and readers re-marshal to.
		var clean Event
		if err = json.Unmarshal(canon, &clean); err == nil {
			*ev = clean
			canon, err = json.Marshal(ev)
		}
	}
	if err != nil {
		return nil, [32]byte{}, err
	}
	sum := chainHash(prev, canon)
	ev.PrevHash, ev.Hash = hex.EncodeToString(prev[:]), hex.EncodeToString(sum[:])
	// prev_hash and hash are Event's last fields, so json.Marshal of the
	// sealed event is the canonical form with them appended: no second
	// Marshal. TestStoredFormIsMarshal holds this to account.
	data := append(canon[:len(canon)-1], `,"prev_hash":"`...)
	data = append(data, ev.PrevHash...)
	data = append(data, `","hash":"`...)
	data = append(data, ev.Hash...)
	data = append(data, `"}`...)
	return data, sum, nil
}

func chainHash(prev [32]byte, canon []byte) [32]byte {
	h := sha256.New()
	h.Write(prev[:])
	h.Write(canon)
	var sum [32]byte
	h.Sum(sum[:0])
	return sum
}

// owned returns a copy of e sharing no memory with it, so that a caller
// editing its event after Append cannot change what subscribers see or race
// with the writer. Raw JSON fields are compacted as json.Marshal writes them
// so that the copy equals what a reader decodes from the file.
func (e *Event) owned() (Event, error) {
	c := *e
	c.Agent = clone(e.Agent)
	c.Principal = clone(e.Principal)
	c.Task = clone(e.Task)
	c.Authorization = clone(e.Authorization)
	if a := clone(e.Annotations); a != nil {
		a.ReadOnly, a.Destructive = clone(a.ReadOnly), clone(a.Destructive)
		a.Idempotent, a.OpenWorld = clone(a.Idempotent), clone(a.OpenWorld)
		c.Annotations = a
	}
	for _, f := range [...]struct {
		name string
		raw  *json.RawMessage
	}{{"jsonrpc_id", &c.JSONRPCID}, {"params", &c.Params}, {"result", &c.Result}, {"error", &c.Error}} {
		if len(bytes.TrimSpace(*f.raw)) == 0 {
			*f.raw = nil
			continue
		}
		m, err := json.Marshal(*f.raw)
		if err != nil {
			return c, fmt.Errorf("store: event %s is not valid JSON: %w", f.name, err)
		}
		*f.raw = m
	}
	return c, nil
}

func clone[T any](p *T) *T {
	if p == nil {
		return nil
	}
	c := *p
	return &c
}
