package ingest

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"

	"github.com/mcptrail/mcptrail/ingest/envelope"
)

func parseAll(stream []byte, max int, chunks []int) []sseEvent {
	p := newSSEParser(max)
	var evs []sseEvent
	emit := func(ev sseEvent, _ int) bool {
		ev.Data = append([]byte(nil), ev.Data...)
		evs = append(evs, ev)
		return true
	}
	for _, n := range chunks {
		n = min(n, len(stream))
		p.feed(stream[:n], emit)
		stream = stream[n:]
	}
	p.feed(stream, emit)
	return evs
}

func TestSSEParser(t *testing.T) {
	stream := "\xEF\xBB\xBF: comment\n" +
		"id: a_1\nevent: message\ndata: {\"x\":1}\n\n" +
		"data:no space\r\ndata:  two spaces\r\n\r\n" +
		"event: prime\nid: a_2\n\n" + // no data: not dispatched
		"data\n\n" + // a field without colon: empty data, dispatched
		"retry: 10\rdata: cr\r\r" +
		"data: pending at the end"
	evs := parseAll([]byte(stream), 100, nil)
	want := []sseEvent{
		{ID: "a_1", Name: "message", Data: []byte(`{"x":1}`)},
		{Data: []byte("no space\n two spaces")},
		{Data: []byte{}},
		{Data: []byte("cr")},
	}
	if len(evs) != len(want) {
		t.Fatalf("got %d events %+v, want %d", len(evs), evs, len(want))
	}
	for i := range want {
		if evs[i].ID != want[i].ID || evs[i].Name != want[i].Name || !bytes.Equal(evs[i].Data, want[i].Data) {
			t.Errorf("event %d = %+v %q, want %+v %q", i, evs[i], evs[i].Data, want[i], want[i].Data)
		}
	}
}

func TestSSEParserBoundsMemory(t *testing.T) {
	big := strings.Repeat("x", 1000)
	evs := parseAll([]byte("data: "+big+"\n\ndata: ok\n\n"), 100, []int{7, 300, 5})
	if len(evs) != 2 {
		t.Fatalf("got %d events", len(evs))
	}
	if !evs[0].Truncated || len(evs[0].Data) != 101 {
		t.Errorf("long event: truncated=%v len=%d, want true 101", evs[0].Truncated, len(evs[0].Data))
	}
	if evs[1].Truncated || string(evs[1].Data) != "ok" {
		t.Errorf("next event = %+v", evs[1])
	}
}

func TestSSETapPassesThroughAndEnds(t *testing.T) {
	src := "id: s_0\nevent: message\ndata: {\"a\":1}\n\ndata: {\"b\":2}\n\n"
	var got []string
	var endErr error
	tap := newSSETap(io.NopCloser(strings.NewReader(src)), 1000,
		func(ev sseEvent) bool { got = append(got, string(ev.Data)); return true },
		func(err error, atBoundary bool) []byte {
			endErr = err
			if !atBoundary {
				t.Error("stream ended between events, but the tap says otherwise")
			}
			return appendSSEEvent(nil, "", []byte(`{"tail":true}`))
		})
	out, err := io.ReadAll(tap)
	if err != nil {
		t.Fatal(err)
	}
	if want := src + "event: message\ndata: {\"tail\":true}\n\n"; string(out) != want {
		t.Errorf("out = %q, want %q", out, want)
	}
	if !errors.Is(endErr, io.EOF) || !tap.sawID {
		t.Errorf("end err %v, sawID %v", endErr, tap.sawID)
	}
	if strings.Join(got, "|") != `{"a":1}|{"b":2}` {
		t.Errorf("events %q", got)
	}
}

func TestSSETapWithholdsRefusedEvent(t *testing.T) {
	src := "data: ok\n\ndata: refused\n\ndata: never\n\n"
	tap := newSSETap(io.NopCloser(strings.NewReader(src)), 1000,
		func(ev sseEvent) bool { return string(ev.Data) != "refused" }, nil)
	out, err := io.ReadAll(tap)
	if !errors.Is(err, errEventRefused) {
		t.Fatalf("err = %v, want errEventRefused", err)
	}
	// The client gets the refused event's data line but never the blank
	// line that would dispatch it.
	if string(out) != "data: ok\n\ndata: refused\n" {
		t.Errorf("out = %q", out)
	}
	evs := parseAll(out, 1000, nil)
	if len(evs) != 1 || string(evs[0].Data) != "ok" {
		t.Errorf("a client would see %+v", evs)
	}
}

// chunkReader returns its data in the sizes given by a seeded generator.
type chunkReader struct {
	data []byte
	rng  *rand.Rand
}

func (c *chunkReader) Read(p []byte) (int, error) {
	if len(c.data) == 0 {
		return 0, io.EOF
	}
	n := min(1+c.rng.IntN(8), len(p), len(c.data))
	if c.rng.IntN(5) == 0 {
		n = min(len(p), len(c.data))
	}
	copy(p, c.data[:n])
	c.data = c.data[n:]
	return n, nil
}

func FuzzSSE(f *testing.F) {
	f.Add([]byte("id: 1\nevent: message\ndata: {\"jsonrpc\":\"2.0\"}\n\n"), uint64(1))
	f.Add([]byte("data: a\r\ndata: b\r\n\r\n: c\rdata: d\r\r"), uint64(2))
	f.Add([]byte("\xEF\xBB\xBFdata\n\nid\nevent\n\n"), uint64(3))
	f.Add([]byte("data: "+strings.Repeat("x", 300)+"\n\n"), uint64(4))
	f.Fuzz(func(t *testing.T, stream []byte, seed uint64) {
		const max = 64
		whole := parseAll(stream, max, nil)

		var tapped []sseEvent
		rng := rand.New(rand.NewPCG(seed, seed>>7))
		tap := newSSETap(io.NopCloser(&chunkReader{data: stream, rng: rng}), max,
			func(ev sseEvent) bool {
				ev.Data = append([]byte(nil), ev.Data...)
				tapped = append(tapped, ev)
				return true
			}, nil)
		var out bytes.Buffer
		buf := make([]byte, 1+rng.IntN(16))
		for {
			n, err := tap.Read(buf)
			out.Write(buf[:n])
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
		}
		if !bytes.Equal(out.Bytes(), stream) {
			t.Fatalf("bytes changed in passing:\n got %q\nwant %q", out.Bytes(), stream)
		}
		if len(whole) == 0 && len(tapped) == 0 {
			return
		}
		if !reflect.DeepEqual(whole, tapped) {
			t.Fatalf("chunking changed the events:\nwhole   %+v\nchunked %+v", whole, tapped)
		}
		for _, ev := range tapped {
			if len(ev.Data) > max+1 {
				t.Fatalf("event data of %d bytes exceeds the bound", len(ev.Data))
			}
		}
	})
}

func TestReplaceMember(t *testing.T) {
	for _, tc := range []struct {
		in, name, val, want, old string
		found                    bool
	}{
		{`{"jsonrpc":"2.0","id":1,"method":"x"}`, "id", `7`, `{"jsonrpc":"2.0","id":7,"method":"x"}`, `1`, true},
		{`{ "id" : "abc" , "params":{"id":3}}`, "id", `"z"`, `{ "id" : "z" , "params":{"id":3}}`, `"abc"`, true},
		{`{"a":[1,{"id":2}],"id":-1.5e3}`, "id", `9`, `{"a":[1,{"id":2}],"id":9}`, `-1.5e3`, true},
		{`{"\u0069d":12,"x":"id"}`, "id", `1`, `{"\u0069d":1,"x":"id"}`, `12`, true},
		{`{"method":"n"}`, "id", `1`, `{"method":"n"}`, ``, false},
		{"{\"id\":1\n}", "id", `22`, "{\"id\":22\n}", `1`, true},
	} {
		out, old, found, err := replaceMember([]byte(tc.in), tc.name, []byte(tc.val))
		if err != nil {
			t.Errorf("%s: %v", tc.in, err)
			continue
		}
		if string(out) != tc.want || string(old) != tc.old || found != tc.found {
			t.Errorf("replaceMember(%s) = %s, %s, %v; want %s, %s, %v", tc.in, out, old, found, tc.want, tc.old, tc.found)
		}
	}
	for _, bad := range []string{`[1]`, `{"id":}`, `{"id":1`, `nope`} {
		if _, _, _, err := replaceMember([]byte(bad), "id", []byte("1")); err == nil {
			t.Errorf("replaceMember(%s) accepted it", bad)
		}
	}
}

func FuzzReplaceMember(f *testing.F) {
	f.Add([]byte(`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"id":2}}`))
	f.Add([]byte(`{"id":"x","id":2}`))
	f.Fuzz(func(t *testing.T, in []byte) {
		out, _, found, err := replaceMember(in, "id", []byte(`"gw-1"`))
		if err != nil || !found {
			return
		}
		var m map[string]json.RawMessage
		if json.Unmarshal(out, &m) != nil {
			if json.Valid(in) {
				t.Fatalf("valid %s became invalid %s", in, out)
			}
			return
		}
		if json.Valid(in) && string(m["id"]) != `"gw-1"` {
			t.Fatalf("id of %s is %s", out, m["id"])
		}
	})
}

func TestIDKey(t *testing.T) {
	escaped, _ := envelope.CanonicalID([]byte(`"\u0061"`))
	if idKey([]byte(`"a"`)) != idKey(escaped) {
		t.Error("the same id written two ways gives two keys")
	}
	if idKey([]byte(`1`)) == idKey([]byte(`"1"`)) {
		t.Error("number 1 and string \"1\" share a key")
	}
}
