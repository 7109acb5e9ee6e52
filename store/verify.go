package store

import (
	"encoding/hex"
	"encoding/json"

	bolt "go.etcd.io/bbolt"
)

// Problems Verify reports.
const (
	ProblemEdited    = "edited"    // an event's content does not match its hash
	ProblemDeleted   = "deleted"   // a seq is missing
	ProblemReordered = "reordered" // an event sits under another seq, or its prev_hash names another event
	ProblemTruncated = "truncated" // the head records more events than there are
)

// VerifyResult is the outcome of a chain check. Events counts the events
// found intact before the first problem (all of them when OK).
type VerifyResult struct {
	OK      bool   `json:"ok"`
	Events  uint64 `json:"events"`
	BadSeq  uint64 `json:"bad_seq,omitempty"`
	Problem string `json:"problem,omitempty"`
}

// Verify opens the store file at path read-only and checks its chain.
func Verify(path string) (VerifyResult, error) {
	s, err := Open(path, Options{ReadOnly: true})
	if err != nil {
		return VerifyResult{}, err
	}
	defer s.Close()
	return s.Verify()
}

// Verify checks that the events are gap-free from seq 1, each hash matches
// its event's content and each prev_hash the event before, and the head
// matches the last event. It reports the first problem. Removing events
// from the end and rewriting the head is caught only by checkpoints.
func (s *Store) Verify() (VerifyResult, error) {
	var r VerifyResult
	err := s.view(func(tx *bolt.Tx) error {
		r = verify(tx)
		return nil
	})
	return r, err
}

func verify(tx *bolt.Tx) VerifyResult {
	var r VerifyResult
	bad := func(seq uint64, problem string) VerifyResult {
		return VerifyResult{Events: seq - 1, BadSeq: seq, Problem: problem}
	}
	var prev [32]byte
	want := uint64(1)
	if events := tx.Bucket(bEvents); events != nil {
		c := events.Cursor()
		for k, v := c.First(); k != nil; k, v = c.Next() {
			if len(k) != 8 {
				return bad(want, ProblemEdited)
			}
			if seq := seqOf(k); seq != want {
				return bad(want, ProblemDeleted)
			}
			sum, problem := check(want, v, prev)
			if problem != "" {
				return bad(want, problem)
			}
			prev = sum
			want++
			r.Events++
		}
	}
	if meta := tx.Bucket(bMeta); meta != nil {
		seq, hash := readHead(meta)
		switch {
		case seq > r.Events:
			return bad(r.Events+1, ProblemTruncated)
		case seq < r.Events:
			return bad(seq+1, ProblemEdited) // events nobody appended
		case hash != prev:
			return bad(seq, ProblemEdited) // the last event, rehashed
		}
	}
	r.OK = true
	return r
}

// check verifies the stored event data under seq, chained to prev, and
// returns its hash.
func check(seq uint64, data []byte, prev [32]byte) ([32]byte, string) {
	var ev Event
	if json.Unmarshal(data, &ev) != nil {
		return prev, ProblemEdited
	}
	if ev.Seq != seq || ev.PrevHash != hex.EncodeToString(prev[:]) {
		return prev, ProblemReordered
	}
	stored := ev.Hash
	ev.PrevHash, ev.Hash = "", ""
	canon, err := json.Marshal(&ev)
	if err != nil {
		return prev, ProblemEdited
	}
	sum := chainHash(prev, canon)
	if hex.EncodeToString(sum[:]) != stored {
		return prev, ProblemEdited
	}
	return sum, ""
}
