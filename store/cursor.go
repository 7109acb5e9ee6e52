package store

import (
	"fmt"

	bolt "go.etcd.io/bbolt"
)

// Cursors are small named positions in the sequence kept in the store file,
// so that they survive restarts with the record they point into: a SIEM
// forwarder's cursor is the seq of the last event its sink has accepted.
// Retention never prunes past a cursor.
//
//	cursors   name → seq (8 bytes, big-endian)
//
// The bucket is created on the first Set, so files written before it
// existed open unchanged.
type Cursors struct{ s *Store }

// Cursors returns the store's cursors.
func (s *Store) Cursors() Cursors { return Cursors{s} }

// maxCursorName bounds a cursor's name (a bbolt key).
const maxCursorName = 512

// Set records seq as the position of the cursor name. It commits its own
// transaction (and fsync): callers that move a cursor often should save it
// at intervals, not on every event.
func (c Cursors) Set(name string, seq uint64) error {
	return c.s.putSeq(bCursors, "cursor", name, seq)
}

// Get returns the position of the cursor name, 0 when it was never set.
func (c Cursors) Get(name string) (uint64, error) {
	var seq uint64
	err := c.s.view(func(tx *bolt.Tx) error {
		seq = getSeq(tx.Bucket(bCursors), name)
		return nil
	})
	return seq, err
}

// All returns every saved cursor by name.
func (c Cursors) All() (map[string]uint64, error) {
	out := map[string]uint64{}
	err := c.s.view(func(tx *bolt.Tx) error {
		return eachSeq(tx.Bucket(bCursors), func(name string, seq uint64) {
			out[name] = seq
		})
	})
	return out, err
}

// putSeq stores name → seq in the named-positions bucket b (cursors,
// retention floors), creating it; what names the kind in errors.
func (s *Store) putSeq(b []byte, what, name string, seq uint64) error {
	if s.readOnly {
		return ErrReadOnly
	}
	if name == "" || len(name) > maxCursorName {
		return fmt.Errorf("store: %s name must be 1 to %d bytes", what, maxCursorName)
	}
	return closedErr(s.db.Update(func(tx *bolt.Tx) error {
		b, err := tx.CreateBucketIfNotExists(b)
		if err != nil {
			return err
		}
		return b.Put([]byte(name), u64(seq))
	}))
}

// getSeq returns the seq stored under name in b, 0 when b or the entry is
// missing or malformed.
func getSeq(b *bolt.Bucket, name string) uint64 {
	if b == nil {
		return 0
	}
	if v := b.Get([]byte(name)); len(v) == 8 {
		return seqOf(v)
	}
	return 0
}

// eachSeq calls fn for every well-formed name → seq entry of b (nil: none).
func eachSeq(b *bolt.Bucket, fn func(name string, seq uint64)) error {
	if b == nil {
		return nil
	}
	return b.ForEach(func(k, v []byte) error {
		if len(v) == 8 {
			fn(string(k), seqOf(v))
		}
		return nil
	})
}
