package store

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	bolt "go.etcd.io/bbolt"
)

func TestLargeBodies(t *testing.T) {
	path := filepath.Join(t.TempDir(), "mcptrail.db")
	s := openStore(t, path, Options{})
	ch, _ := s.Subscribe(4)
	big := call("s1", "write_file")
	big.Params = json.RawMessage(`{"name":"write_file","arguments":{"content":"` + strings.Repeat("all work and no play <makes> jack a dull boy. ", 2000) + `"}}`)
	big.Result = json.RawMessage(`{"content":[{"type":"text","text":"` + strings.Repeat("ok ", 7000) + `"}]}`)
	big.Error = json.RawMessage(`{"code":1,"message":"small"}`)
	mustAppend(t, s, big)
	small := call("s1", "read_file")
	mustAppend(t, s, small)
	live := <-ch

	var stored []byte
	s.view(func(tx *bolt.Tx) error {
		stored = bytes.Clone(tx.Bucket(bEvents).Get(u64(1)))
		if st, _ := parseStored(tx.Bucket(bEvents).Get(u64(2))); len(st.bodies) != 0 {
			t.Errorf("small event stored with a large body")
		}
		return nil
	})
	if st, err := parseStored(stored); err != nil || len(st.bodies) == 0 || len(stored) > (len(big.Params)+len(big.Result))/10 {
		t.Fatalf("large event stored as %d bytes starting %q (bodies %d bytes)", len(stored), stored[0], len(big.Params)+len(big.Result))
	}
	got, err := s.Get(1)
	if err != nil {
		t.Fatal(err)
	}
	// The original comes back: compacted as Marshal writes it, < as \u003c.
	want := big.clone(true)
	if err := want.compactRaw(false); err != nil {
		t.Fatal(err)
	}
	want.Seq, want.ID, want.Time, want.PrevHash, want.Hash = big.Seq, big.ID, big.Time, big.PrevHash, big.Hash
	if !reflect.DeepEqual(*got, want) || !reflect.DeepEqual(live, want) {
		t.Fatalf("Get/Subscribe differ from what was appended:\n%.300v\n%.300v", *got, want)
	}
	page, err := s.Query(Query{Tool: "write_file"})
	if err != nil || len(page.Events) != 1 || !bytes.Equal(page.Events[0].Params, want.Params) || !bytes.Equal(page.Events[0].Result, want.Result) {
		t.Fatalf("Query: %d events, %v", len(page.Events), err)
	}
	if tm, ok := eventTime(stored); !ok || !tm.Equal(big.Time) {
		t.Fatalf("eventTime of a large event = %v %v", tm, ok)
	}
	mustVerify(t, s, 2)
	s.Close()

	// The chain is over the original: rebuild it by hand.
	orig := want
	orig.PrevHash, orig.Hash = "", ""
	canon, _ := json.Marshal(&orig)
	if sum := chainHash([32]byte{}, canon); big.Hash != hex.EncodeToString(sum[:]) {
		t.Fatal("the hash is not over the original event's canonical JSON")
	}

	// A byte changed inside a compressed body is an edit.
	for _, where := range []string{"frame", "sha256"} {
		r := tamper(t, path, func(events, _ *bolt.Bucket) error {
			v := bytes.Clone(events.Get(u64(1)))
			st, _ := parseStored(v)
			at := len(v) - len(st.bodies) + 1 // the first body's sha256
			if where == "frame" {
				at += 32 + 2 + 20
			}
			v[at] ^= 0xff
			return events.Put(u64(1), v)
		})
		if r.OK || r.BadSeq != 1 || r.Problem != ProblemEdited {
			t.Fatalf("%s changed: Verify = %+v", where, r)
		}
	}
}

func TestLargeBodyThreshold(t *testing.T) {
	for _, tc := range []struct {
		opt  int
		size int
		tag  int
	}{{0, DefaultLargeBody, 0}, {0, DefaultLargeBody + 1, 1}, {100, 200, 1}, {-1, 1 << 20, 0}} {
		s := tempStore(t, Options{LargeBody: tc.opt})
		ev := call("s1", "x")
		ev.Params = json.RawMessage(`"` + strings.Repeat("a", tc.size-2) + `"`)
		mustAppend(t, s, ev)
		s.view(func(tx *bolt.Tx) error {
			st, _ := parseStored(tx.Bucket(bEvents).Get(u64(1)))
			if large := len(st.bodies) > 0; large != (tc.tag == 1) {
				t.Errorf("LargeBody %d, params of %d bytes: stored apart %v", tc.opt, tc.size, large)
			}
			return nil
		})
		mustVerify(t, s, 1)
	}
}

// A store written by schema 1 (testdata/schema1.db, made by the code before
// schema 2: 47 events, 3 sessions, a 24 KB body, the last call left open)
// reads as is, and a writable open migrates it.
func TestSchema1Migration(t *testing.T) {
	path := filepath.Join(t.TempDir(), "old.db")
	copyFile(t, "testdata/schema1.db", path)

	ro := openStore(t, path, Options{ReadOnly: true})
	mustVerify(t, ro, 47)
	if p, err := ro.Query(Query{Session: "s2", Newest: true}); err != nil || len(p.Events) != 15 {
		t.Fatalf("schema 1 query: %d events, %v", len(p.Events), err)
	}
	if list, err := ro.Sessions(SessionQuery{}); err != nil || len(list) != 3 {
		t.Fatalf("schema 1 sessions: %d, %v", len(list), err)
	}
	if ev, err := ro.Get(11); err != nil || len(ev.Params) < 24000 {
		t.Fatalf("schema 1 large event: %v", err)
	}
	ro.Close()

	s := openStore(t, path, signed(Options{CheckpointEvery: 10}))
	if s.ID() == "" {
		t.Fatal("migration gave the store no id")
	}
	open, err := s.OpenCalls()
	if err != nil || len(open) != 1 || open[0].Seq != 47 {
		t.Fatalf("open calls backfilled by the migration: %+v, %v", open, err)
	}
	if n, err := s.RecordUnknown("migrated"); n != 1 || err != nil {
		t.Fatalf("RecordUnknown = %d, %v", n, err)
	}
	for range 12 {
		mustAppend(t, s, call("s1", "new"))
	}
	s.Close()

	r, err := VerifyFile(path, VerifyOptions{Keys: []string{testVKey}})
	if err != nil || !r.OK || r.Events != 60 || r.Covered != 60 {
		t.Fatalf("migrated store: %+v, %v", r, err)
	}
	withBolt(t, path, func(tx *bolt.Tx) error {
		if v := tx.Bucket(bMeta).Get(kSchema); binary.BigEndian.Uint64(v) != schemaVersion {
			t.Errorf("schema after migration: %x", v)
		}
		return tx.Bucket(bMeta).Put(kSchema, u64(schemaVersion+1))
	})
	for _, opts := range []Options{{}, {ReadOnly: true}} {
		if _, err := Open(path, opts); err == nil || !strings.Contains(err.Error(), "newer mcptrail") {
			t.Fatalf("Open(%+v) of a newer schema: %v", opts, err)
		}
	}
}

// Bodies already in json.Marshal's form are kept as they are, but never as
// views of the caller's buffers: a gateway reuses its line buffer for the
// next message while the event waits for its commit and its subscribers.
func TestAppendKeepsNoCallerBuffer(t *testing.T) {
	for _, durability := range []string{DurabilityStrict, DurabilityBatch} {
		t.Run(durability, func(t *testing.T) {
			s := openStore(t, filepath.Join(t.TempDir(), "mcptrail.db"), Options{Durability: durability})
			ch, _ := s.Subscribe(4)
			params := `{"name":"echo","arguments":{"text":"as sent"}}`
			buf := []byte(params)
			ev := call("s1", "echo")
			ev.Params = buf
			mustAppend(t, s, ev)
			copy(buf, bytes.Repeat([]byte("x"), len(buf)))
			if err := s.Flush(); err != nil {
				t.Fatal(err)
			}
			if live := <-ch; string(live.Params) != params {
				t.Errorf("subscriber got params %s, want %s", live.Params, params)
			}
			if got, err := s.Get(1); err != nil || string(got.Params) != params {
				t.Errorf("stored params %s (%v), want %s", got.Params, err, params)
			}
		})
	}
}
