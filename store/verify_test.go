package store

import (
	"crypto/sha256"
	"encoding/base64"
	"strings"

	"bytes"
	"encoding/hex"
	"golang.org/x/mod/sumdb/note"
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
		return editEvent(events, seq, fn, false)
	}
	for _, tc := range []struct {
		name    string
		fn      func(events, meta *bolt.Bucket) error
		bad     uint64
		problem string
	}{
		{"edit", func(events, _ *bolt.Bucket) error {
			return edit(events, 4, func(e *Event) { e.Tool = "read_file!" })
		}, 4, ProblemEdited},
		{"flip a stored byte", func(events, _ *bolt.Bucket) error {
			v := bytes.Clone(events.Get(u64(4)))
			v[len(v)-3] ^= 0x20
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
			return editEvent(events, 3, func(e *Event) { e.Tool = "innocent" }, true)
		}, 4, ProblemReordered}, // the next event's prev_hash no longer names seq 3
		{"rehash the last event", func(events, _ *bolt.Bucket) error {
			return editEvent(events, 10, func(e *Event) { e.Tool = "innocent" }, true)
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

// editEvent changes the stored event seq with fn, as an attacker with the
// file would: keeping its stored hash, or with reseal recomputing it.
func editEvent(events *bolt.Bucket, seq uint64, fn func(*Event), reseal bool) error {
	v := events.Get(u64(seq))
	var ev Event
	if err := decodeEvent(seq, v, &ev); err != nil {
		return err
	}
	st, err := parseStored(v)
	if err != nil {
		return err
	}
	fn(&ev)
	val, _, err := encodeEvent(&ev, seq, [32]byte(st.prev), DefaultLargeBody)
	if err != nil {
		return err
	}
	if !reseal {
		copy(val[33:65], st.hash)
	}
	return events.Put(u64(seq), val)
}

func TestVerifyEmpty(t *testing.T) {
	s := tempStore(t, Options{})
	mustVerify(t, s, 0)
}

// signedStore writes 22 events with checkpoints every 5 (5 10 15 20, and
// 22 at Close) and returns the file and its checkpoints.
func signedStore(t *testing.T) (string, []Checkpoint) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "signed.db")
	s := openStore(t, path, signed(Options{CheckpointEvery: 5}))
	for i := range 22 {
		mustAppend(t, s, call("s1", []string{"read_file", "write_file"}[i%2]))
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	ro := openStore(t, path, Options{ReadOnly: true})
	cps, err := ro.Checkpoints().After(0)
	if err != nil || sizes(cps) != "5 10 15 20 22" {
		t.Fatalf("checkpoints %s, %v", sizes(cps), err)
	}
	ro.Close()
	return path, cps
}

// cut removes the events after seq n and sets the head to n, as an
// attacker who knows the layout would.
func cut(tx *bolt.Tx, n uint64) error {
	events, meta := tx.Bucket(bEvents), tx.Bucket(bMeta)
	last, _ := readHead(meta)
	for seq := n + 1; seq <= last; seq++ {
		if err := events.Delete(u64(seq)); err != nil {
			return err
		}
	}
	var ev Event
	if err := decodeEvent(n, events.Get(u64(n)), &ev); err != nil {
		return err
	}
	h, _ := hex.DecodeString(ev.Hash)
	if err := meta.Put(kLastSeq, u64(n)); err != nil {
		return err
	}
	return meta.Put(kLastHash, h)
}

// resign replaces the checkpoint of size n by one with the same text
// signed by skey.
func resign(tx *bolt.Tx, n uint64, skey string, edit func(string) string) error {
	b := tx.Bucket(bCheckpoints)
	msg := string(b.Get(u64(n)))
	text := msg[:strings.LastIndex(msg, "\n\n")+1]
	if edit != nil {
		text = edit(text)
	}
	sg, err := note.NewSigner(skey)
	if err != nil {
		return err
	}
	forged, err := note.Sign(&note.Note{Text: text}, sg)
	if err != nil {
		return err
	}
	return b.Put(u64(n), forged)
}

func TestVerifyCheckpoints(t *testing.T) {
	good, cps := signedStore(t)
	pinned := VerifyOptions{Keys: []string{testVKey}}
	if r, err := VerifyFile(good, pinned); err != nil || r != (VerifyResult{OK: true, Events: 22, Checkpoints: 5, Covered: 22, Pinned: true}) {
		t.Fatalf("good store: %+v, %v", r, err)
	}
	otherSKey, otherVKey, _ := GenerateKey("attacker")

	for _, tc := range []struct {
		name    string
		fn      func(tx *bolt.Tx) error
		opts    VerifyOptions
		bad     uint64
		problem string
	}{
		{"truncated after the final checkpoint", func(tx *bolt.Tx) error { return cut(tx, 20) }, pinned, 21, ProblemTruncated},
		{"truncated past several checkpoints", func(tx *bolt.Tx) error { return cut(tx, 12) }, pinned, 13, ProblemTruncated},
		{"truncated, unpinned", func(tx *bolt.Tx) error { return cut(tx, 12) }, VerifyOptions{}, 13, ProblemTruncated},
		{"truncated with its checkpoints, caught by an external copy", func(tx *bolt.Tx) error {
			b := tx.Bucket(bCheckpoints)
			b.Delete(u64(20))
			b.Delete(u64(22))
			return cut(tx, 15)
		}, VerifyOptions{Keys: []string{testVKey}, External: [][]byte{[]byte(cps[4].Note)}}, 16, ProblemTruncated},
		{"checkpoint signed with another key", func(tx *bolt.Tx) error {
			return resign(tx, 10, otherSKey, nil)
		}, pinned, 10, ProblemUnknownKey},
		{"another key, also recorded in the file, unpinned", func(tx *bolt.Tx) error {
			if err := tx.Bucket(bMeta).Put(kVKeys, []byte(otherVKey)); err != nil {
				return err
			}
			return resign(tx, 10, otherSKey, nil)
		}, VerifyOptions{}, 5, ProblemUnknownKey}, // every checkpoint but the forged one is now unknown
		{"another key, also recorded in the file, pinned", func(tx *bolt.Tx) error {
			if err := tx.Bucket(bMeta).Put(kVKeys, []byte(otherVKey)); err != nil {
				return err
			}
			return resign(tx, 10, otherSKey, nil)
		}, pinned, 10, ProblemUnknownKey},
		{"checkpoint text edited", func(tx *bolt.Tx) error {
			b := tx.Bucket(bCheckpoints)
			msg := strings.Replace(string(b.Get(u64(15))), "\n15\n", "\n14\n", 1)
			return b.Put(u64(15), []byte(msg))
		}, pinned, 15, ProblemSignature},
		{"checkpoint garbage", func(tx *bolt.Tx) error {
			return tx.Bucket(bCheckpoints).Put(u64(15), []byte("not a note"))
		}, pinned, 15, ProblemSignature},
		{"checkpoint removed", func(tx *bolt.Tx) error {
			return tx.Bucket(bCheckpoints).Delete(u64(10))
		}, pinned, 6, ProblemDeleted},
		{"checkpoint of another store", func(tx *bolt.Tx) error {
			return tx.Bucket(bMeta).Put(kStoreID, []byte("someotherstore"))
		}, pinned, 5, ProblemSignature},
		{"events rewritten and rehashed to the end", func(tx *bolt.Tx) error {
			// Without the key: edit seq 7, then rechain 7..22 and the head.
			events, meta := tx.Bucket(bEvents), tx.Bucket(bMeta)
			var prev [32]byte
			for seq := uint64(1); seq <= 22; seq++ {
				var ev Event
				if err := decodeEvent(seq, events.Get(u64(seq)), &ev); err != nil {
					return err
				}
				if seq == 7 {
					ev.Tool = "innocent"
				}
				data, sum, err := encodeEvent(&ev, seq, prev, DefaultLargeBody)
				if err != nil {
					return err
				}
				if err := events.Put(u64(seq), data); err != nil {
					return err
				}
				prev = sum
			}
			return meta.Put(kLastHash, prev[:])
		}, pinned, 6, ProblemEdited}, // between the checkpoints of 5 and 10
		{"edited event under a checkpoint", func(tx *bolt.Tx) error {
			return editEvent(tx.Bucket(bEvents), 12, func(e *Event) { e.Tool = "read_file!" }, false)
		}, pinned, 12, ProblemEdited},
		{"deleted event", func(tx *bolt.Tx) error { return tx.Bucket(bEvents).Delete(u64(3)) }, pinned, 3, ProblemDeleted},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "tampered.db")
			copyFile(t, good, path)
			withBolt(t, path, tc.fn)
			r, err := VerifyFile(path, tc.opts)
			if err != nil {
				t.Fatal(err)
			}
			if r.OK || r.BadSeq != tc.bad || r.Problem != tc.problem {
				t.Fatalf("Verify = %+v, want bad seq %d %s", r, tc.bad, tc.problem)
			}
			t.Logf("%s: seq %d: %s", r.Problem, r.BadSeq, r.Detail)
		})
	}

	// The attack an unpinned verify cannot see: the checkpoints re-signed
	// with the attacker's key, recorded in the file as the store's key.
	path := filepath.Join(t.TempDir(), "resigned.db")
	copyFile(t, good, path)
	withBolt(t, path, func(tx *bolt.Tx) error {
		if err := tx.Bucket(bMeta).Put(kVKeys, []byte(otherVKey)); err != nil {
			return err
		}
		var prev [32]byte // rechain: each note names the forged one before it
		for _, n := range []uint64{5, 10, 15, 20, 22} {
			err := resign(tx, n, otherSKey, func(text string) string {
				lines := strings.Split(text, "\n")
				lines[3] = "prev " + base64.StdEncoding.EncodeToString(prev[:])
				return strings.Join(lines, "\n")
			})
			if err != nil {
				return err
			}
			prev = sha256.Sum256(tx.Bucket(bCheckpoints).Get(u64(n)))
		}
		return nil
	})
	if r, _ := VerifyFile(path, VerifyOptions{}); !r.OK || r.Pinned {
		t.Fatalf("unpinned verify of a consistently re-signed file: %+v", r)
	}
	if r, _ := VerifyFile(path, pinned); r.OK || r.Problem != ProblemUnknownKey || r.BadSeq != 5 {
		t.Fatalf("pinned verify of a re-signed file: %+v", r)
	}
	if _, err := VerifyFile(good, VerifyOptions{Keys: []string{"not a key"}}); err == nil {
		t.Fatal("a bad --key was not an error")
	}
}
