package store

import (
	"encoding/json"
	"fmt"

	bolt "go.etcd.io/bbolt"
)

// A central store (the collector's) keeps where it is in each origin's
// chain, so that a restarted collector resumes checking where it left off:
//
//	origins   origin store id → OriginState JSON
//	cursors   "collect" → the central seq the saved states are current to
//
// The states are saved after the events they describe are committed, so
// they may lag: the collector replays its own events after "collect" to
// bring them up to date. The bucket is created on the first save, so
// files written before it existed open unchanged.

// CollectCursor is the cursor naming the central seq the saved origin
// states are current to.
const CollectCursor = "collect"

// OriginState is what a collector knows of one origin's chain.
type OriginState struct {
	Store      string `json:"store"`
	Host       string `json:"host,omitempty"`
	Key        string `json:"key,omitempty"`        // the pinned verifier key of its checkpoints
	Seq        uint64 `json:"seq"`                  // its last event merged here
	Hash       string `json:"hash,omitempty"`       // that event's hash in its chain
	Checkpoint uint64 `json:"checkpoint,omitempty"` // size of its last checkpoint merged here
	NoteHash   string `json:"note_hash,omitempty"`  // SHA-256 (hex) of that checkpoint's note
	First      uint64 `json:"first,omitempty"`      // the first of its seqs merged here
	// CheckpointAt is the central seq of its last checkpoint merged here:
	// its next checkpoint covers events merged after it, which a restarted
	// collector replays from there to check it.
	CheckpointAt uint64 `json:"checkpoint_at,omitempty"`
}

// Origins keeps a central store's place in each origin's chain.
type Origins struct{ s *Store }

// Origins returns the collector's origin states.
func (s *Store) Origins() Origins { return Origins{s} }

// Save stores the states and sets the collect cursor to through, in one
// transaction.
func (o Origins) Save(states []OriginState, through uint64) error {
	if o.s.readOnly {
		return ErrReadOnly
	}
	return closedErr(o.s.db.Update(func(tx *bolt.Tx) error {
		b, err := tx.CreateBucketIfNotExists(bOrigins)
		if err != nil {
			return err
		}
		for _, st := range states {
			if st.Store == "" || len(st.Store) > maxCursorName {
				return fmt.Errorf("store: origin id must be 1 to %d bytes", maxCursorName)
			}
			v, err := json.Marshal(st)
			if err != nil {
				return err
			}
			if err := b.Put([]byte(st.Store), v); err != nil {
				return err
			}
		}
		c, err := tx.CreateBucketIfNotExists(bCursors)
		if err != nil {
			return err
		}
		return c.Put([]byte(CollectCursor), u64(through))
	}))
}

// Load returns the saved origin states by origin id, and the central seq
// they are current to.
func (o Origins) Load() (map[string]OriginState, uint64, error) {
	out := map[string]OriginState{}
	var through uint64
	err := o.s.view(func(tx *bolt.Tx) error {
		through = getSeq(tx.Bucket(bCursors), CollectCursor)
		b := tx.Bucket(bOrigins)
		if b == nil {
			return nil
		}
		return b.ForEach(func(k, v []byte) error {
			var st OriginState
			if err := json.Unmarshal(v, &st); err != nil {
				return fmt.Errorf("origin %q: %w", k, err)
			}
			out[string(k)] = st
			return nil
		})
	})
	return out, through, err
}
