package store

import (
	"bufio"
	"bytes"
	"encoding/hex"
	"encoding/json"
	"os"
	"strings"
	"testing"
)

// valuesFixture holds stored values (tag 'r') written by an earlier
// release (71bb6b3): each line is the value in hex, a space, and the
// event's sealed JSON (export's line). It pins the format: a change to the
// encoding that the earlier release could not read, or that changes a
// hash, fails TestStoredValuesFixture.
const valuesFixture = "testdata/values-r1.txt"

// fixtureEvents are the events of valuesFixture: the benchmark's generator,
// plus an event too short to compress and one whose bodies are large.
func fixtureEvents() []*Event {
	g := newGen(7)
	var list []*Event
	for range 60 {
		list = append(list, g.next())
	}
	list = append(list, &Event{ID: "01X", Kind: KindSessionEnd, Time: g.t})
	big := call("s-big", "read_file")
	big.ID, big.Time = "01Y", g.t
	big.Result = json.RawMessage(`{"content":[{"type":"text","text":"` + strings.Repeat("lorem ipsum dolor sit amet ", 900) + `"}]}`)
	return append(list, big)
}

// Values written by the earlier release read the same, chain and all; the
// same events written now get the same hashes and the same bytes.
func TestStoredValuesFixture(t *testing.T) {
	f, err := os.Open(valuesFixture)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	var prev [32]byte
	seq := uint64(0)
	for sc.Scan() {
		seq++
		hexValue, sealed, ok := strings.Cut(sc.Text(), " ")
		if !ok {
			t.Fatalf("fixture line %d is malformed", seq)
		}
		old, err := hex.DecodeString(hexValue)
		if err != nil {
			t.Fatal(err)
		}
		var got Event
		if err := decodeEvent(seq, old, &got); err != nil {
			t.Fatalf("old value %d: %v", seq, err)
		}
		if j, _ := json.Marshal(&got); string(j) != sealed {
			t.Fatalf("old value %d decodes to\n%s\nwant\n%s", seq, j, sealed)
		}
		// The event as it was appended: its export line less the chain.
		var ev Event
		if err := json.Unmarshal([]byte(sealed), &ev); err != nil {
			t.Fatal(err)
		}
		ev.Seq, ev.PrevHash, ev.Hash = 0, "", ""
		value, sum, err := encodeEvent(&ev, seq, prev, DefaultLargeBody)
		if err != nil {
			t.Fatal(err)
		}
		if j, _ := json.Marshal(&ev); string(j) != sealed {
			t.Fatalf("event %d sealed now as\n%s\nwas\n%s", seq, j, sealed)
		}
		if !bytes.Equal(sum[:], old[33:65]) || !bytes.Equal(value[:65], old[:65]) {
			t.Fatalf("event %d: chain hashes differ from the old value's", seq)
		}
		if !bytes.Equal(value, old) {
			t.Fatalf("event %d is stored now as other bytes than the earlier release wrote", seq)
		}
		prev = sum
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if seq != 62 {
		t.Fatalf("fixture has %d values, want 62", seq)
	}
}

// TestWriteValuesFixture writes valuesFixture; run it once, with the
// encoder the fixture is to pin, with MCPTRAIL_WRITE_FIXTURE=1.
func TestWriteValuesFixture(t *testing.T) {
	if os.Getenv("MCPTRAIL_WRITE_FIXTURE") == "" {
		t.Skip("writes the fixture only when asked")
	}
	var b strings.Builder
	var prev [32]byte
	for i, e := range fixtureEvents() {
		ev := e.Clone()
		value, sum, err := encodeEvent(&ev, uint64(i+1), prev, DefaultLargeBody)
		if err != nil {
			t.Fatal(err)
		}
		j, _ := json.Marshal(&ev)
		b.WriteString(hex.EncodeToString(value) + " " + string(j) + "\n")
		prev = sum
	}
	if err := os.WriteFile(valuesFixture, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
}
