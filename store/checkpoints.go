package store

import (
	"fmt"

	bolt "go.etcd.io/bbolt"
)

// Checkpoints reads the signed checkpoints the store has written of its
// chain (the writer makes them; see checkpointer).
type Checkpoints struct{ s *Store }

// Checkpoints returns the store's signed checkpoints.
func (s *Store) Checkpoints() Checkpoints { return Checkpoints{s} }

// After returns the stored checkpoints with Size > after, oldest first, at
// most 1000: call again with the last one's Size for more. The SIEM
// forwarder ships them off the box.
func (c Checkpoints) After(after uint64) ([]Checkpoint, error) {
	out := []Checkpoint{}
	err := c.s.view(func(tx *bolt.Tx) error {
		b := tx.Bucket(bCheckpoints)
		if b == nil {
			return nil
		}
		c := b.Cursor()
		for k, v := c.Seek(u64(after + 1)); k != nil && len(out) < maxCheckpoints; k, v = c.Next() {
			cp, err := ParseCheckpoint(v, nil)
			if err != nil {
				return fmt.Errorf("checkpoint %d: %w", seqOf(k), err)
			}
			out = append(out, *cp)
		}
		return nil
	})
	return out, err
}

// Last returns the newest checkpoint, or an error wrapping ErrNotFound when
// there is none.
func (c Checkpoints) Last() (*Checkpoint, error) {
	var cp *Checkpoint
	err := c.s.view(func(tx *bolt.Tx) error {
		if k, v := lastOf(tx.Bucket(bCheckpoints)); k != nil {
			var err error
			cp, err = ParseCheckpoint(v, nil)
			return err
		}
		return fmt.Errorf("checkpoint: %w", ErrNotFound)
	})
	return cp, err
}
