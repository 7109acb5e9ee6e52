package store

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"strings"

	"github.com/oklog/ulid/v2"
	bolt "go.etcd.io/bbolt"
)

// Schema history (the package documentation has the current layout):
//
//	1  events, index, sessions, sessions_by_start, meta (head, clock).
//	2  adds checkpoints, meta store_id, verifier_keys and pruned_to,
//	   open-call index keys, and the large-body value format (encodeEvent).
//	   A schema 1 file reads as is; migrating it adds the buckets and
//	   fills the open-call keys from its events.
//
// migrate brings a file opened for writing to schemaVersion in tx.
func migrate(tx *bolt.Tx) error {
	for _, name := range [][]byte{bMeta, bEvents, bIndex, bSessions, bByStart, bCheckpoints, bFloors} {
		if _, err := tx.CreateBucketIfNotExists(name); err != nil {
			return err
		}
	}
	meta := tx.Bucket(bMeta)
	v := meta.Get(kSchema)
	if v == nil { // a new file
		return meta.Put(kSchema, u64(schemaVersion))
	}
	if len(v) != 8 {
		return fmt.Errorf("store schema %x is not a version", v)
	}
	switch from := binary.BigEndian.Uint64(v); {
	case from == schemaVersion:
		return nil
	case from > schemaVersion:
		return fmt.Errorf("store schema %d was written by a newer mcptrail (this one writes %d)", from, schemaVersion)
	case from == 1:
		if err := backfillOpenCalls(tx); err != nil {
			return fmt.Errorf("migrating schema 1: %w", err)
		}
	}
	return meta.Put(kSchema, u64(schemaVersion))
}

// backfillOpenCalls reads every event once to find the requests without an
// outcome. It runs once, when a schema 1 file is first opened for writing.
func backfillOpenCalls(tx *bolt.Tx) error {
	idx := tx.Bucket(bIndex)
	c := tx.Bucket(bEvents).Cursor()
	for k, v := c.First(); k != nil; k, v = c.Next() {
		var e Event
		if err := decodeEvent(seqOf(k), v, &e); err != nil {
			return fmt.Errorf("event %d: %w", seqOf(k), err)
		}
		if err := trackOpenCall(idx, &e); err != nil {
			return err
		}
	}
	return nil
}

// ensureIdentity gives the file a store id and records the verifier key of
// the key it is signed with.
func ensureIdentity(meta *bolt.Bucket, vkey string) error {
	if meta.Get(kStoreID) == nil {
		if err := meta.Put(kStoreID, []byte(strings.ToLower(ulid.Make().String()))); err != nil {
			return err
		}
	}
	if vkey == "" {
		return nil
	}
	keys := meta.Get(kVKeys)
	for _, k := range bytes.Split(keys, []byte("\n")) {
		if string(k) == vkey {
			return nil
		}
	}
	list := append(bytes.Clone(keys), vkey...)
	if len(keys) > 0 {
		list = append(append(bytes.Clone(keys), '\n'), vkey...)
	}
	return meta.Put(kVKeys, list)
}

// recordedKeys are the verifier keys the file says it was signed with.
func recordedKeys(meta *bolt.Bucket) []string {
	if meta == nil || len(meta.Get(kVKeys)) == 0 {
		return nil
	}
	return strings.Split(string(meta.Get(kVKeys)), "\n")
}

func prunedTo(meta *bolt.Bucket) uint64 {
	if meta == nil {
		return 0
	}
	if v := meta.Get(kPruned); len(v) == 8 {
		return binary.BigEndian.Uint64(v)
	}
	return 0
}
