package store

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
	"golang.org/x/mod/sumdb/note"
)

// testKey is one signing key for the whole test binary (generating is cheap,
// but a fixed key keeps failures readable).
var testSKey, testVKey = func() (string, string) {
	s, v, err := GenerateKey("mcptrail-test")
	if err != nil {
		panic(err)
	}
	return s, v
}()

func signed(opts Options) Options {
	opts.SigningKey = testSKey
	if opts.CheckpointInterval == 0 {
		opts.CheckpointInterval = time.Hour // tests count events unless they say otherwise
	}
	return opts
}

func TestCheckpointsEveryNAndAtClose(t *testing.T) {
	path := filepath.Join(t.TempDir(), "mcptrail.db")
	s := openStore(t, path, signed(Options{CheckpointEvery: 10}))
	if s.ID() == "" {
		t.Fatal("no store id")
	}
	for range 35 {
		mustAppend(t, s, call("s1", "x"))
	}
	cps, err := s.Checkpoints().After(0)
	if err != nil {
		t.Fatal(err)
	}
	if got := sizes(cps); got != "10 20 30" {
		t.Fatalf("checkpoints before Close: %s", got)
	}
	id := s.ID()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	ro := openStore(t, path, Options{ReadOnly: true})
	cps, err = ro.Checkpoints().After(0)
	if err != nil {
		t.Fatal(err)
	}
	if got := sizes(cps); got != "10 20 30 35" {
		t.Fatalf("checkpoints after Close: %s (want a final one at 35)", got)
	}
	v, err := note.NewVerifier(testVKey)
	if err != nil {
		t.Fatal(err)
	}
	prev := strings.Repeat("0", 64)
	for _, cp := range cps {
		got, err := ParseCheckpoint([]byte(cp.Note), note.VerifierList(v))
		if err != nil {
			t.Fatalf("checkpoint %d: %v", cp.Size, err)
		}
		ev, err := ro.Get(cp.Size)
		if err != nil {
			t.Fatal(err)
		}
		if got.Origin != "mcptrail/"+id || got.Hash != ev.Hash || got.Prev != prev || got.Time.IsZero() {
			t.Fatalf("checkpoint %+v; want origin mcptrail/%s hash %s prev %s", got, id, ev.Hash, prev)
		}
		h := cp.NoteHash()
		prev = hex.EncodeToString(h[:])
	}
	if !strings.HasPrefix(cps[0].Note, "mcptrail/"+id+"\n10\n") || !strings.Contains(cps[0].Note, "\n\n— mcptrail-test ") {
		t.Fatalf("note:\n%s", cps[0].Note)
	}
	if more, _ := ro.Checkpoints().After(20); sizes(more) != "30 35" {
		t.Fatalf("Checkpoints(20) = %s", sizes(more))
	}
	last, err := ro.Checkpoints().Last()
	if err != nil || last.Size != 35 {
		t.Fatalf("Checkpoints().Last() = %+v, %v", last, err)
	}
	r, err := ro.VerifyWith(VerifyOptions{Keys: []string{testVKey}})
	if err != nil {
		t.Fatal(err)
	}
	if want := (VerifyResult{OK: true, Events: 35, Checkpoints: 4, Covered: 35, Pinned: true}); r != want {
		t.Fatalf("Verify = %+v, want %+v", r, want)
	}
}

func sizes(cps []Checkpoint) string {
	var s []string
	for _, c := range cps {
		s = append(s, strconv.FormatUint(c.Size, 10))
	}
	return strings.Join(s, " ")
}

// An idle store signs its tail within the interval, without a Close.
func TestCheckpointInterval(t *testing.T) {
	s := tempStore(t, signed(Options{CheckpointEvery: 1 << 20, CheckpointInterval: 30 * time.Millisecond}))
	for range 3 {
		mustAppend(t, s, call("s1", "x"))
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		if cp, err := s.Checkpoints().Last(); err == nil && cp.Size == 3 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no checkpoint of the idle tail within 10s")
		}
		time.Sleep(5 * time.Millisecond)
	}
	cps, _ := s.Checkpoints().After(0)
	if len(cps) != 1 {
		t.Fatalf("%d checkpoints of 3 events: %s", len(cps), sizes(cps))
	}
	time.Sleep(100 * time.Millisecond) // nothing new: no new checkpoint
	if cps, _ := s.Checkpoints().After(0); len(cps) != 1 {
		t.Fatalf("idle store wrote more checkpoints: %s", sizes(cps))
	}
}

// Reopening continues the checkpoint chain, and signs a tail that a crash
// left unsigned.
func TestCheckpointChainAcrossReopen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "mcptrail.db")
	s := openStore(t, path, signed(Options{CheckpointEvery: 4}))
	for range 6 {
		mustAppend(t, s, call("s1", "x"))
	}
	s.Close()
	s = openStore(t, path, signed(Options{CheckpointEvery: 4}))
	for range 5 {
		mustAppend(t, s, call("s1", "x"))
	}
	s.Close()
	r, err := VerifyFile(path, VerifyOptions{Keys: []string{testVKey}})
	if err != nil || !r.OK || r.Events != 11 || r.Covered != 11 || r.Checkpoints != 4 {
		t.Fatalf("Verify = %+v, %v (want checkpoints 4 6 10 11)", r, err)
	}

	// A crash: events after the last checkpoint, none at close.
	crashed := filepath.Join(t.TempDir(), "crashed.db")
	copyFile(t, path, crashed)
	withBolt(t, crashed, func(tx *bolt.Tx) error {
		return tx.Bucket(bCheckpoints).Delete(u64(11))
	})
	s = openStore(t, crashed, signed(Options{CheckpointEvery: 100, CheckpointInterval: 20 * time.Millisecond}))
	deadline := time.Now().Add(10 * time.Second)
	for cp, _ := s.Checkpoints().Last(); cp == nil || cp.Size != 11; cp, _ = s.Checkpoints().Last() {
		if time.Now().After(deadline) {
			t.Fatalf("the unsigned tail was not signed after reopening: %+v", cp)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestNoKeyNoCheckpoints(t *testing.T) {
	s := tempStore(t, Options{})
	mustAppend(t, s, call("s1", "x"))
	s.Close()
	ro := openStore(t, s.Path(), Options{ReadOnly: true})
	if cps, err := ro.Checkpoints().After(0); err != nil || len(cps) != 0 {
		t.Fatalf("checkpoints without a key: %v %v", cps, err)
	}
	if _, err := ro.Checkpoints().Last(); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Checkpoints().Last(): %v", err)
	}
}

func TestKeys(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "keys", "signing.key")
	skey, created, err := LoadOrCreateKey(path, KeyName("my host+1"))
	if err != nil || !created {
		t.Fatalf("create: %v %v", created, err)
	}
	fi, err := os.Stat(path)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("key file mode %v, %v", fi.Mode(), err)
	}
	again, created, err := LoadOrCreateKey(path, "other")
	if err != nil || created || again != skey {
		t.Fatalf("load: %v %v (same key: %v)", created, err, again == skey)
	}
	vkey, err := VerifierKey(skey)
	if err != nil || !strings.HasPrefix(vkey, "myhost1+") {
		t.Fatalf("VerifierKey = %q, %v", vkey, err)
	}
	pub, _ := os.ReadFile(path + ".pub")
	if strings.TrimSpace(string(pub)) != vkey {
		t.Fatalf(".pub has %q, want %q", pub, vkey)
	}
	if _, err := note.NewVerifier(vkey); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(path, []byte("garbage"), 0o600)
	if _, _, err := LoadOrCreateKey(path, "x"); err == nil {
		t.Fatal("a garbage key file loaded")
	}
	if _, err := Open(filepath.Join(dir, "x.db"), Options{SigningKey: "garbage"}); err == nil {
		t.Fatal("Open took a garbage signing key")
	}
}

// withBolt changes a closed store file through bbolt directly.
func withBolt(t *testing.T, path string, fn func(tx *bolt.Tx) error) {
	t.Helper()
	db, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Update(fn); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
}

func noteHash(msg []byte) string {
	h := sha256.Sum256(msg)
	return hex.EncodeToString(h[:])
}
