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

// valuesFixture holds stored values (tag 'r') written by the code before
// dictEncoder, when s2's Dict.Encode wrote every block: each line is the
// value in hex, a space, and the event's sealed JSON (export's line).
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

// Values written before dictEncoder read the same, chain and all; the
// same events written now get the same hashes, decode with s2's own
// decoder (the previous release's reader) to the same JSON, and are no
// larger than the library's blocks by more than 1 %.
func TestDictEncoderOldAndNewValues(t *testing.T) {
	f, err := os.Open(valuesFixture)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	var prev [32]byte
	var oldSize, newSize int
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
		stOld, err := parseStored(old)
		if err != nil {
			t.Fatal(err)
		}
		stNew, err := parseStored(value) // s2's Dict.Decode
		if err != nil {
			t.Fatalf("new value %d: %v", seq, err)
		}
		if !bytes.Equal(stOld.json, stNew.json) || !bytes.Equal(stOld.bodies, stNew.bodies) {
			t.Fatalf("event %d: new value holds other JSON or bodies than the old", seq)
		}
		oldSize += len(old)
		newSize += len(value)
		prev = sum
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if seq != 62 {
		t.Fatalf("fixture has %d values, want 62", seq)
	}
	if newSize*100 > oldSize*101 {
		t.Fatalf("values take %d bytes, %d with the library's encoder", newSize, oldSize)
	}
	t.Logf("%d values: %d bytes, %d with the library's encoder", seq, newSize, oldSize)
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

// FuzzDictEncode: whatever the input, s2's Dict.Decode gives back exactly
// what dictEncoder encoded, after what dst held. (How well it compresses
// is TestDictEncoderOldAndNewValues's: on a short adversarial input its
// smaller table can miss a match the library's finds.)
func FuzzDictEncode(f *testing.F) {
	f.Add([]byte(eventDict1))
	f.Add([]byte(`{"seq":0,"id":"01ABC","kind":"call"}`))
	f.Add(bytes.Repeat([]byte("a"), 70_000))
	for _, e := range fixtureEvents()[:8] {
		j, _ := json.Marshal(e)
		f.Add(j)
	}
	enc := eventDictEncoder()
	f.Fuzz(func(t *testing.T, src []byte) {
		prefix := []byte("prefix")
		out := enc.appendEncode(bytes.Clone(prefix), src)
		if !bytes.HasPrefix(out, prefix) {
			t.Fatal("appendEncode overwrote dst")
		}
		got, err := eventDict().Decode(nil, out[len(prefix):])
		if err != nil {
			t.Fatalf("s2 cannot decode the block of %d bytes: %v", len(src), err)
		}
		if !bytes.Equal(got, src) {
			t.Fatalf("block of %d bytes decodes to other bytes", len(src))
		}
	})
}

// BenchmarkDictEncode is the block encoding of realistic events (their
// canonical JSON), by the library's encoder and by dictEncoder.
func BenchmarkDictEncode(b *testing.B) {
	// The generator's events (1.4 KB) and a gateway call's (benchEvent
	// with small bodies, as BenchmarkEncodeQueued: about 500 bytes).
	var gen, small [][]byte
	for i, e := range fixtureEvents()[:60] {
		ev := e.Clone()
		ev.Seq = 0
		j, _ := canonical(&ev)
		gen = append(gen, *j)
		ev = benchEvent(i).Clone()
		ev.Params = json.RawMessage(`{"name":"echo","arguments":{"text":"benchmark payload of a typical small size"}}`)
		j, _ = canonical(&ev)
		small = append(small, *j)
	}
	buf := make([]byte, 0, 64<<10)
	for _, events := range []struct {
		name string
		srcs [][]byte
	}{{"generator", gen}, {"call", small}} {
		srcs := events.srcs
		b.Run(events.name+"/library", func(b *testing.B) {
			for i := 0; b.Loop(); i++ {
				buf = eventDict().Encode(buf[:cap(buf)], srcs[i%len(srcs)])
			}
		})
		b.Run(events.name+"/store", func(b *testing.B) {
			for i := 0; b.Loop(); i++ {
				buf = eventDictEncoder().appendEncode(buf[:0], srcs[i%len(srcs)])
			}
		})
	}
}
