package main

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mcptrail/mcptrail/store"
	bolt "go.etcd.io/bbolt"
)

// The verify command's contract: exit 0 intact, 1 tampered (first bad seq
// on stdout), 2 usage or I/O error; --key pins the key; --print-key.
func TestVerifyCommand(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("MCPTRAIL_HOME", filepath.Join(dir, "home"))
	t.Setenv("XDG_CONFIG_HOME", filepath.Join(dir, "config"))
	skey, _, err := store.LoadOrCreateKey(filepath.Join(dir, "home", "signing.key"), "mcptrail-test")
	if err != nil {
		t.Fatal(err)
	}
	vkey, _ := store.VerifierKey(skey)
	_, otherVKey, _ := store.GenerateKey("other")

	good := filepath.Join(dir, "good.db")
	s, err := store.Open(good, store.Options{SigningKey: skey, CheckpointEvery: 4, CheckpointInterval: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	for range 10 {
		if _, err := s.Append(&store.Event{Kind: store.KindRequest, Session: "s1", Tool: "x"}); err != nil {
			t.Fatal(err)
		}
	}
	s.Close()

	cli := func(args ...string) (int, string, string) {
		var out, errOut bytes.Buffer
		code := run(args, strings.NewReader(""), &out, &errOut)
		return code, out.String(), errOut.String()
	}
	if code, out, _ := cli("verify", "--print-key"); code != 0 || strings.TrimSpace(out) != vkey {
		t.Fatalf("--print-key: %d %q, want %q", code, out, vkey)
	}
	code, out, errOut := cli("verify", "--db", good, "--key", vkey)
	if code != 0 || !strings.Contains(out, "ok: 10 events") || !strings.Contains(out, "3 signed checkpoints valid") {
		t.Fatalf("good store: %d %q %q", code, out, errOut)
	}
	if code, out, _ := cli("verify", "--db", good); code != 0 || !strings.Contains(out, "warning: no --key") {
		t.Fatalf("unpinned: %d %q", code, out)
	}
	if code, out, _ := cli("verify", "--db", good, "--key", otherVKey); code != 1 || !strings.Contains(out, "first bad seq 4: unknown_key") {
		t.Fatalf("wrong key: %d %q", code, out)
	}
	os.MkdirAll(filepath.Join(dir, "config", "mcptrail"), 0o700)
	os.WriteFile(filepath.Join(dir, "config", "mcptrail", "config.yaml"), []byte("verify_key: "+otherVKey+"\n"), 0o600)
	if code, out, _ := cli("verify", "--db", good); code != 1 || !strings.Contains(out, "unknown_key") {
		t.Fatalf("config verify_key not used: %d %q", code, out)
	}
	os.Remove(filepath.Join(dir, "config", "mcptrail", "config.yaml"))

	// Cut the last two events and fix the head: the checkpoint of 10 says so.
	ro, err := store.Open(good, store.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	ev8, err := ro.Get(8)
	ro.Close()
	if err != nil {
		t.Fatal(err)
	}
	cut := filepath.Join(dir, "cut.db")
	data, _ := os.ReadFile(good)
	os.WriteFile(cut, data, 0o600)
	db, err := bolt.Open(cut, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	db.Update(func(tx *bolt.Tx) error {
		ev, meta := tx.Bucket([]byte("events")), tx.Bucket([]byte("meta"))
		ev.Delete(binaryU64(9))
		ev.Delete(binaryU64(10))
		h, _ := hex.DecodeString(ev8.Hash)
		meta.Put([]byte("last_seq"), binaryU64(8))
		return meta.Put([]byte("last_hash"), h)
	})
	db.Close()
	code, out, errOut = cli("verify", "--db", cut, "--key", vkey)
	if code != 1 || !strings.Contains(out, "TAMPERED: first bad seq 9: truncated") || !strings.Contains(errOut, "seq 9") {
		t.Fatalf("truncated store: %d %q %q", code, out, errOut)
	}
	code, out, _ = cli("verify", "--db", cut, "--key", vkey, "--json")
	var r store.VerifyResult
	if code != 1 || json.Unmarshal([]byte(out), &r) != nil || r.BadSeq != 9 || r.Problem != store.ProblemTruncated {
		t.Fatalf("--json: %d %q", code, out)
	}

	for _, args := range [][]string{
		{"verify", "--db", filepath.Join(dir, "missing.db")},
		{"verify", "--db", good, "--key", "not-a-key"},
		{"verify", "--bogus"},
		{"verify", "extra"},
	} {
		if code, _, errOut := cli(args...); code != 2 || errOut == "" {
			t.Errorf("%v: exit %d %q, want 2 with a message", args, code, errOut)
		}
	}
}

func binaryU64(n uint64) []byte {
	b := make([]byte, 8)
	for i := 7; i >= 0; i-- {
		b[i] = byte(n)
		n >>= 8
	}
	return b
}
