package store

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"time"

	"github.com/oklog/ulid/v2"
	bolt "go.etcd.io/bbolt"
)

// Open calls: a request event puts "P" NUL seq into the index bucket and its
// outcome (a call event naming it) deletes it, so the requests a crash left
// without an outcome are found without reading the events.
var openCallPrefix = []byte{'P', 0}

// A collected event (Origin set) is another gateway's call: its outcome is
// that gateway's to record, and its Call names a seq of that gateway's
// chain, not of this one. It is never an open call here.
func trackOpenCall(idx *bolt.Bucket, e *Event) error {
	switch {
	case e.Origin != nil:
		return nil
	case e.Kind == KindRequest:
		return idx.Put(append(openCallPrefix[:2:2], u64(e.Seq)...), []byte{})
	case e.Kind == KindCall && e.Call != 0:
		return idx.Delete(append(openCallPrefix[:2:2], u64(e.Call)...))
	}
	return nil
}

// OpenCalls returns the recorded requests that have no outcome, oldest
// first. While the gateway runs these are the calls in flight; when the
// daemon starts, before any session, they are calls a crash interrupted,
// which it records as OutcomeUnknown (RecordUnknown).
func (s *Store) OpenCalls() ([]Event, error) {
	out := []Event{}
	err := s.view(func(tx *bolt.Tx) error {
		idx, events := tx.Bucket(bIndex), tx.Bucket(bEvents)
		if idx == nil || events == nil {
			return nil
		}
		c := idx.Cursor()
		for k, _ := c.Seek(openCallPrefix); k != nil && len(k) == 10 && k[0] == 'P' && k[1] == 0; k, _ = c.Next() {
			v := events.Get(k[2:])
			if v == nil {
				continue // pruned
			}
			var e Event
			if err := decodeEvent(seqOf(k[2:]), v, &e); err != nil {
				return fmt.Errorf("event %d: %w", seqOf(k[2:]), err)
			}
			out = append(out, e)
		}
		return nil
	})
	return out, err
}

// RecordUnknown gives every open call an outcome "unknown" (with detail),
// repeating its request's identity as the gateway does: for the daemon to
// call at start, before it serves anyone, so calls interrupted by a crash
// do not stay open for ever. It returns how many it recorded.
func (s *Store) RecordUnknown(detail string) (int, error) {
	open, err := s.OpenCalls()
	if err != nil {
		return 0, err
	}
	for _, r := range open {
		ev := &Event{
			Kind: KindCall, Session: r.Session, Upstream: r.Upstream, Transport: r.Transport,
			ProtocolVersion: r.ProtocolVersion, From: r.From, Method: r.Method, Tool: r.Tool,
			JSONRPCID: r.JSONRPCID, Call: r.Seq, LogicalCall: r.LogicalCall,
			Agent: r.Agent, Principal: r.Principal, OnBehalfOf: r.OnBehalfOf, Task: r.Task,
			Outcome: OutcomeUnknown, Annotations: r.Annotations, Class: r.Class, Detail: detail,
		}
		if _, err := s.AppendNoWait(ev); err != nil {
			return 0, err
		}
	}
	return len(open), s.Flush()
}

// outage is a run of failed commits: the disk is full, or the file cannot
// be written. When a commit succeeds again the store records an alert
// event that says what was lost.
type outage struct {
	from, to time.Time
	events   int // events whose commit failed (strict appenders got the error)
	commits  int
	err      error
}

// failedLocked notes a failed commit of n events. s.mu must be held.
func (s *Store) failedLocked(n int, err error) {
	now := time.Now()
	if s.outage == nil {
		s.outage = &outage{from: now}
	}
	s.outage.to = now
	s.outage.events += n
	s.outage.commits++
	s.outage.err = err
}

// recoveredLocked queues the alert for an outage that a successful commit
// has just ended, and reports whether it did. s.mu must be held.
func (s *Store) recoveredLocked() bool {
	o := s.outage
	if o == nil {
		return false
	}
	s.outage = nil
	detail := fmt.Sprintf("store outage from %s to %s: events not recorded: %d, failed commits: %d; last error: %v",
		o.from.UTC().Format(time.RFC3339Nano), o.to.UTC().Format(time.RFC3339Nano), o.events, o.commits, o.err)
	params, _ := json.Marshal(map[string]any{
		"failed_events": o.events, "failed_commits": o.commits,
		"from": o.from.UTC(), "until": o.to.UTC(), "error": o.err.Error(),
	})
	now := time.Now()
	e := Event{ID: ulid.Make().String(), Time: now.UTC(), Kind: KindAlert, Method: "mcptrail/store_outage", Detail: detail, Params: params}
	s.enqueue(&pending{ev: e, at: now, outage: o})
	return true
}

// noteFailure and noteRecovery are failedLocked and recoveredLocked for
// callers that do not hold s.mu (checkpoint-only commits).
func (s *Store) noteFailure(n int, err error) {
	s.mu.Lock()
	s.failedLocked(n, err)
	s.mu.Unlock()
	slog.Error("mcptrail store: writing a checkpoint failed", "err", err)
}

func (s *Store) noteRecovery() {
	if s.wal != nil {
		return // the logger says when the store takes events again
	}
	s.mu.Lock()
	alert := s.recoveredLocked()
	s.mu.Unlock()
	if alert {
		s.signal()
	}
}
