package store

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"path/filepath"
	"testing"

	bolt "go.etcd.io/bbolt"
)

// tamper copies the store file at good, changes the copy with fn through
// bbolt directly (as an attacker with the file would) and verifies it.
func tamper(t *testing.T, good string, fn func(events *bolt.Bucket, meta *bolt.Bucket) error) VerifyResult {
	t.Helper()
	path := filepath.Join(t.TempDir(), "tampered.db")
	copyFile(t, good, path)
	db, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Update(func(tx *bolt.Tx) error { return fn(tx.Bucket(bEvents), tx.Bucket(bMeta)) }); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	r, err := Verify(path)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestVerifyDetectsTampering(t *testing.T) {
	good := filepath.Join(t.TempDir(), "good.db")
	s := openStore(t, good, Options{})
	for i := range 10 {
		mustAppend(t, s, call("s1", []string{"read_file", "write_file"}[i%2]))
	}
	s.Close()
	if r, err := Verify(good); err != nil || r != (VerifyResult{OK: true, Events: 10}) {
		t.Fatalf("good store: %+v, %v", r, err)
	}

	edit := func(events *bolt.Bucket, seq uint64, fn func(*Event)) error {
		var ev Event
		if err := json.Unmarshal(events.Get(u64(seq)), &ev); err != nil {
			return err
		}
		fn(&ev)
		data, err := json.Marshal(&ev)
		if err != nil {
			return err
		}
		return events.Put(u64(seq), data)
	}
	for _, tc := range []struct {
		name    string
		fn      func(events, meta *bolt.Bucket) error
		bad     uint64
		problem string
	}{
		{"edit bytes", func(events, _ *bolt.Bucket) error {
			v := bytes.Replace(events.Get(u64(4)), []byte("write_file"), []byte("read_file!"), 1)
			return events.Put(u64(4), v)
		}, 4, ProblemEdited},
		{"garbage", func(events, _ *bolt.Bucket) error {
			return events.Put(u64(6), []byte("{not json"))
		}, 6, ProblemEdited},
		{"delete", func(events, _ *bolt.Bucket) error {
			return events.Delete(u64(4))
		}, 4, ProblemDeleted},
		{"swap", func(events, _ *bolt.Bucket) error {
			a, b := bytes.Clone(events.Get(u64(4))), bytes.Clone(events.Get(u64(5)))
			if err := events.Put(u64(4), b); err != nil {
				return err
			}
			return events.Put(u64(5), a)
		}, 4, ProblemReordered},
		{"swap and renumber", func(events, _ *bolt.Bucket) error {
			a, b := bytes.Clone(events.Get(u64(4))), bytes.Clone(events.Get(u64(5)))
			if err := events.Put(u64(4), b); err != nil {
				return err
			}
			if err := events.Put(u64(5), a); err != nil {
				return err
			}
			if err := edit(events, 4, func(e *Event) { e.Seq = 4 }); err != nil {
				return err
			}
			return edit(events, 5, func(e *Event) { e.Seq = 5 })
		}, 4, ProblemReordered},
		{"edit and rehash", func(events, _ *bolt.Bucket) error {
			return edit(events, 3, func(e *Event) { e.Tool = "innocent"; reseal(e) })
		}, 4, ProblemReordered}, // the next event's prev_hash no longer names seq 3
		{"rehash the last event", func(events, _ *bolt.Bucket) error {
			return edit(events, 10, func(e *Event) { e.Tool = "innocent"; reseal(e) })
		}, 10, ProblemEdited}, // the head still names the original
		{"drop the last event", func(events, _ *bolt.Bucket) error {
			return events.Delete(u64(10))
		}, 10, ProblemTruncated},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := tamper(t, good, tc.fn)
			if r.OK || r.BadSeq != tc.bad || r.Problem != tc.problem || r.Events != tc.bad-1 {
				t.Fatalf("Verify = %+v, want bad seq %d %s", r, tc.bad, tc.problem)
			}
		})
	}
}

// reseal recomputes e's hash after an edit, keeping its prev_hash.
func reseal(e *Event) {
	prev, _ := hex.DecodeString(e.PrevHash)
	seal(e, [32]byte(prev))
}

func TestVerifyEmpty(t *testing.T) {
	s := tempStore(t, Options{})
	mustVerify(t, s, 0)
}
