package store

// What rollback (package rollback) keeps beside the events, in buckets of
// its own:
//
//	prestates          request seq → zstd(JSON): the state a write was about to
//	                   change, captured before it was forwarded. The call's
//	                   outcome event names it by its SHA-256 ("sha256:…" in
//	                   `prestate`), so the chain vouches for it.
//	prestates_withheld request seq → why a collected call's pre-state is not
//	                   here (too large for its origin's sink to ship): what
//	                   Prestate says instead of "not found"
//	rollback_plans     plan id (a ULID: byte order is time order) → the plan's JSON
//	rollback_reverted  seq of a reverted call → "plan-id step": a call is
//	                   reverted at most once, whatever the plan
//	rollback_marks     seq of a call marked for reversal → the mark (the
//	                   console's JSON): the queue every console of the
//	                   daemon shares, kept until a plan takes the call
//
// None of these is part of the chain (plans and step states change; their
// every approval and inverse call is an event that is). A read-only open of
// a file that never had rollback reads them as empty.

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"

	bolt "go.etcd.io/bbolt"
)

// MaxMarks bounds the rollback queue; MaxMarkBytes one mark.
const (
	MaxMarks     = 10000
	MaxMarkBytes = 4096
)

// Rollback is the store as package rollback uses it: the events (the
// embedded *Store) and the buckets rollback keeps beside them. Its planner
// and executor read both through one value.
type Rollback struct{ *Store }

// Rollback returns the store's rollback view.
func (s *Store) Rollback() Rollback { return Rollback{s} }

// ErrTooManyMarks refuses a mark beyond MaxMarks.
var ErrTooManyMarks = fmt.Errorf("store: the rollback queue holds %d calls already: plan or unmark some first", MaxMarks)

// SetMarks removes the marks of remove, then stores those of add (seq →
// the mark), in one transaction: a refused change changes nothing.
func (r Rollback) SetMarks(add map[uint64][]byte, remove []uint64) error {
	if r.readOnly {
		return ErrReadOnly
	}
	for seq, v := range add {
		if seq == 0 || len(v) == 0 || len(v) > MaxMarkBytes {
			return fmt.Errorf("store: bad mark of call %d (%d bytes)", seq, len(v))
		}
	}
	return closedErr(r.update(func(tx *bolt.Tx) error {
		b, err := tx.CreateBucketIfNotExists(bMarks)
		if err != nil {
			return err
		}
		for _, seq := range remove {
			if err := b.Delete(u64(seq)); err != nil {
				return err
			}
		}
		for seq, v := range add {
			if err := b.Put(u64(seq), bytes.Clone(v)); err != nil {
				return err
			}
		}
		if len(add) == 0 {
			return nil
		}
		n := 0
		c := b.Cursor()
		for k, _ := c.First(); k != nil; k, _ = c.Next() {
			if n++; n > MaxMarks {
				return ErrTooManyMarks
			}
		}
		return nil
	}))
}

// Marks returns the stored marks, by seq.
func (r Rollback) Marks() ([][]byte, error) {
	var out [][]byte
	err := r.view(func(tx *bolt.Tx) error {
		b := tx.Bucket(bMarks)
		if b == nil {
			return nil
		}
		return b.ForEach(func(_, v []byte) error {
			out = append(out, bytes.Clone(v))
			return nil
		})
	})
	return out, err
}

// PrestateRef is how an outcome event names the pre-state data: the
// SHA-256 of the uncompressed bytes.
func PrestateRef(data []byte) string {
	sum := sha256.Sum256(data)
	return "sha256:" + hex.EncodeToString(sum[:])
}

// PutPrestate stores the pre-state of the call whose request has seq call,
// compressed, and returns its reference (PrestateRef). It returns once the
// data is committed, so a write is forwarded only with its undo data safe.
func (r Rollback) PutPrestate(call uint64, data []byte) (string, error) {
	if r.readOnly {
		return "", ErrReadOnly
	}
	if call == 0 {
		return "", fmt.Errorf("store: pre-state of call 0")
	}
	z := zEnc().EncodeAll(data, nil)
	err := r.update(func(tx *bolt.Tx) error {
		b, err := tx.CreateBucketIfNotExists(bPrestates)
		if err != nil {
			return err
		}
		return b.Put(u64(call), z)
	})
	if err != nil {
		return "", closedErr(err)
	}
	return PrestateRef(data), nil
}

// Prestate returns the pre-state stored for call, or an error wrapping
// ErrNotFound.
func (r Rollback) Prestate(call uint64) ([]byte, error) {
	var out []byte
	err := r.view(func(tx *bolt.Tx) error {
		var v []byte
		if b := tx.Bucket(bPrestates); b != nil {
			v = b.Get(u64(call))
		}
		if v == nil {
			if b := tx.Bucket(bWithheld); b != nil {
				if why := b.Get(u64(call)); why != nil {
					return fmt.Errorf("pre-state of call %d: %s: %w", call, why, ErrNotFound)
				}
			}
			return fmt.Errorf("pre-state of call %d: %w", call, ErrNotFound)
		}
		var err error
		out, err = zDec().DecodeAll(v, nil)
		return err
	})
	return out, err
}

// MaxWithheldReason bounds WithholdPrestate's reason.
const MaxWithheldReason = 512

// WithholdPrestate records why the pre-state of call is not in this store
// (a collector's: its origin did not ship it), for Prestate to say.
func (r Rollback) WithholdPrestate(call uint64, reason string) error {
	if r.readOnly {
		return ErrReadOnly
	}
	if call == 0 || reason == "" || len(reason) > MaxWithheldReason {
		return fmt.Errorf("store: bad withheld pre-state of call %d", call)
	}
	return closedErr(r.update(func(tx *bolt.Tx) error {
		b, err := tx.CreateBucketIfNotExists(bWithheld)
		if err != nil {
			return err
		}
		return b.Put(u64(call), []byte(reason))
	}))
}

// PutPlan stores (or replaces) a rollback plan.
func (r Rollback) PutPlan(id string, data []byte) error {
	if r.readOnly {
		return ErrReadOnly
	}
	if id == "" || len(id) > 128 {
		return fmt.Errorf("store: bad plan id %q", id)
	}
	return closedErr(r.update(func(tx *bolt.Tx) error {
		b, err := tx.CreateBucketIfNotExists(bPlans)
		if err != nil {
			return err
		}
		return b.Put([]byte(id), bytes.Clone(data))
	}))
}

// Plan returns a stored plan, or an error wrapping ErrNotFound.
func (r Rollback) Plan(id string) ([]byte, error) {
	var out []byte
	err := r.view(func(tx *bolt.Tx) error {
		var v []byte
		if b := tx.Bucket(bPlans); b != nil {
			v = b.Get([]byte(id))
		}
		if v == nil {
			return fmt.Errorf("plan %q: %w", id, ErrNotFound)
		}
		out = bytes.Clone(v)
		return nil
	})
	return out, err
}

// Plans returns up to limit stored plans, newest first (plan ids are
// ULIDs).
func (r Rollback) Plans(limit int) ([][]byte, error) {
	if limit <= 0 {
		limit = defaultLimit
	}
	var out [][]byte
	err := r.view(func(tx *bolt.Tx) error {
		b := tx.Bucket(bPlans)
		if b == nil {
			return nil
		}
		c := b.Cursor()
		for k, v := c.Last(); k != nil && len(out) < limit; k, v = c.Prev() {
			out = append(out, bytes.Clone(v))
		}
		return nil
	})
	return out, err
}

// MarkReverted records that call was reverted by the given step of a plan
// (by names it), unless it already was: then it returns what the earlier
// mark says and changes nothing. It is how a call is never reverted twice.
func (r Rollback) MarkReverted(call uint64, by string) (earlier string, err error) {
	if r.readOnly {
		return "", ErrReadOnly
	}
	err = r.update(func(tx *bolt.Tx) error {
		b, err := tx.CreateBucketIfNotExists(bReverted)
		if err != nil {
			return err
		}
		if v := b.Get(u64(call)); v != nil {
			earlier = string(v)
			return nil
		}
		return b.Put(u64(call), []byte(by))
	})
	return earlier, closedErr(err)
}

// Reverted says which of calls were reverted, and by what (MarkReverted).
func (r Rollback) Reverted(calls []uint64) (map[uint64]string, error) {
	out := map[uint64]string{}
	err := r.view(func(tx *bolt.Tx) error {
		b := tx.Bucket(bReverted)
		if b == nil {
			return nil
		}
		for _, c := range calls {
			if v := b.Get(u64(c)); v != nil {
				out[c] = string(v)
			}
		}
		return nil
	})
	return out, err
}
