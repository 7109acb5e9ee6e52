package testkit

import (
	"bufio"
	"bytes"
	"encoding/json"
	"testing"
)

// SinkSeqs returns the seqs of the events in a JSON-lines sink's output
// (`file://…?format=jsonl`), for tests that check a sink holds every
// committed event.
func SinkSeqs(t testing.TB, data []byte) map[uint64]bool {
	t.Helper()
	seen := map[uint64]bool{}
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var ev struct {
			Seq uint64 `json:"seq"`
		}
		if err := json.Unmarshal(sc.Bytes(), &ev); err != nil {
			t.Fatalf("sink line %q: %v", sc.Text(), err)
		}
		seen[ev.Seq] = true
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return seen
}
