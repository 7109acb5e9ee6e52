package store

import (
	"encoding/binary"
	"errors"
	"fmt"

	bolt "go.etcd.io/bbolt"
)

// Cursors are small named positions in the sequence kept in the store file,
// so that they survive restarts with the record they point into: a SIEM
// forwarder's cursor is the seq of the last event its sink has accepted.
//
//	cursors   name → seq (8 bytes, big-endian)
//
// The bucket is created on the first SetCursor, so files written before it
// existed open unchanged.

var bCursors = []byte("cursors")

// maxCursorName bounds a cursor's name (a bbolt key).
const maxCursorName = 512

// SetCursor records seq as the position of the cursor name. It commits its
// own transaction (and fsync): callers that move a cursor often should save
// it at intervals, not on every event.
func (s *Store) SetCursor(name string, seq uint64) error {
	if s.readOnly {
		return ErrReadOnly
	}
	if name == "" || len(name) > maxCursorName {
		return fmt.Errorf("store: cursor name must be 1 to %d bytes", maxCursorName)
	}
	err := s.db.Update(func(tx *bolt.Tx) error {
		b, err := tx.CreateBucketIfNotExists(bCursors)
		if err != nil {
			return err
		}
		return b.Put([]byte(name), u64(seq))
	})
	if errors.Is(err, bolt.ErrDatabaseNotOpen) {
		return ErrClosed
	}
	return err
}

// Cursor returns the position of the cursor name, 0 when it was never set.
func (s *Store) Cursor(name string) (uint64, error) {
	var seq uint64
	err := s.view(func(tx *bolt.Tx) error {
		b := tx.Bucket(bCursors)
		if b == nil {
			return nil
		}
		if v := b.Get([]byte(name)); len(v) == 8 {
			seq = binary.BigEndian.Uint64(v)
		}
		return nil
	})
	return seq, err
}

// Cursors returns every saved cursor by name.
func (s *Store) Cursors() (map[string]uint64, error) {
	out := map[string]uint64{}
	err := s.view(func(tx *bolt.Tx) error {
		b := tx.Bucket(bCursors)
		if b == nil {
			return nil
		}
		return b.ForEach(func(k, v []byte) error {
			if len(v) == 8 {
				out[string(k)] = binary.BigEndian.Uint64(v)
			}
			return nil
		})
	})
	return out, err
}
