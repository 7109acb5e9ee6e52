package ingest

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"
	"unsafe"

	"github.com/mcptrail/mcptrail/ingest/envelope"
	"github.com/mcptrail/mcptrail/store"
)

// recorded is what a session recorded, without what differs between two
// runs of the same script (times, durations; with unordered, the order of
// the events, which Close gives in no particular order).
func recorded(t *testing.T, rec *memRecorder, unordered ...bool) string {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	var b strings.Builder
	for _, ev := range rec.evs {
		ev.Time, ev.DurationNS, ev.ID = time.Time{}, 0, ""
		if len(unordered) > 0 {
			ev.Seq = 0
		}
		j, err := json.Marshal(ev)
		if err != nil {
			t.Fatal(err)
		}
		b.Write(j)
		b.WriteByte('\n')
	}
	return b.String()
}

func sortedLines(s string) string {
	lines := strings.Split(s, "\n")
	slices.Sort(lines)
	return strings.Join(lines, "\n")
}

// FuzzSessionRead holds the transports' one reading of a message to the
// Session's own: a script of hostile messages (a line "c …" from the
// client, "s …" from the server) goes to one Session as bytes and to
// another as the reading the HTTP gateway makes of them (inspectPost for a
// POST, the Session's ReadMessage for a child's line). Both must forward,
// answer and record exactly the same.
func FuzzSessionRead(f *testing.F) {
	for _, seed := range []string{
		"c {\"jsonrpc\":\"2.0\",\"id\":0,\"method\":\"initialize\",\"params\":{\"protocolVersion\":\"2025-03-26\",\"clientInfo\":{\"name\":\"x\",\"version\":\"1\"}}}\n" +
			"s {\"jsonrpc\":\"2.0\",\"id\":0,\"result\":{\"protocolVersion\":\"2025-03-26\",\"serverInfo\":{\"name\":\"srv\"}}}\n" +
			"c [{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"ping\"},{\"jsonrpc\":\"2.0\",\"id\":2,\"method\":\"ping\",\"Id\":3}]\n" +
			"c [{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"ping\"},{\"jsonrpc\":\"2.0\",\"method\":\"notifications/initialized\"}]\n" +
			"s [{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{}}]\n" +
			"c []\n",
		"c {\"jsonrpc\":\"2.0\",\"id\":2,\"method\":\"tools/call\",\"params\":{\"name\":\"rm\",\"arguments\":{\"path\":\"/a\",\"Path\":\"/etc/passwd\"}}}\n" +
			"c {\"jsonrpc\":\"2.0\",\"id\":3,\"method\":\"tools/call\",\"params\":{\"n\\u0061me\":\"rm\"}}\n" +
			"c {\"jsonrpc\":\"2.0\",\"id\":\"\\ud800\",\"method\":\"ping\"}\n" +
			"c {\"jsonrpc\":\"2.0\",\"id\":4,\"method\":\"tools/call\",\"params\":{\"name\":\"x\",\"arguments\":[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]}}\n" +
			"c {\"jsonrpc\":\"2.0\",\"id\":5,\"id\":6,\"method\":\"ping\"}\n" +
			"c \xff\xfe\n",
		"c {\"jsonrpc\":\"2.0\",\"id\":7,\"method\":\"tools/call\",\"params\":{\"name\":\"slow\",\"_meta\":{\"progressToken\":1}}}\n" +
			"s {\"jsonrpc\":\"2.0\",\"method\":\"notifications/progress\",\"params\":{\"progressToken\":1,\"progress\":1}}\n" +
			"s {\"jsonrpc\":\"2.0\",\"id\":7,\"result\":[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]}\n" +
			"s {\"jsonrpc\":\"2.0\",\"id\":8,\"result\":{},\"Result\":1}\n" +
			"s {\"jsonrpc\":\"2.0\",\"id\":9,\"method\":\"sampling/createMessage\",\"params\":{}}\n" +
			"c {\"jsonrpc\":\"2.0\",\"id\":9,\"error\":{\"code\":-1,\"message\":\"no\"}}\n",
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, script []byte) {
		lim := Limits{MaxMessageBytes: 1 << 12, MaxDepth: 32}
		recA, recB := &memRecorder{}, &memRecorder{}
		a := NewSession(SessionInfo{ID: "fuzz", Upstream: "u"}, recA, Hooks{}, lim, nil)
		b := NewSession(SessionInfo{ID: "fuzz", Upstream: "u"}, recB, Hooks{}, lim, nil)
		for _, line := range bytes.Split(script, []byte("\n")) {
			if len(line) < 2 {
				continue
			}
			msg := line[2:]
			var fa, ra, fb, rb []byte
			var read envelope.Read
			switch line[0] {
			case 'c':
				fa, ra = a.FromClient(msg, nil)
				info := inspectPost(msg, lim)
				read = *info.read
				fb, rb = b.FromClientRead(info.read, nil)
			case 's':
				fa, ra = a.FromServer(msg)
				read = b.ReadMessage(msg)
				fb, rb = b.FromServerRead(&read)
			default:
				continue
			}
			if !bytes.Equal(fa, fb) || !bytes.Equal(ra, rb) {
				t.Fatalf("%q: forwarded %q and answered %q from bytes, %q and %q from the reading", line, fa, ra, fb, rb)
			}
			if len(read.Raw()) > 0 && bytes.Equal(fb, read.Raw()) && unsafe.SliceData(fb) != unsafe.SliceData(read.Raw()) {
				t.Fatalf("%q: forwarded a copy, not the bytes read", line)
			}
			if ga, gb := recorded(t, recA), recorded(t, recB); ga != gb {
				t.Fatalf("%q: recorded\n%s from bytes, but\n%s from the reading", line, ga, gb)
			}
		}
		a.Close(store.OutcomeUnknown, "fuzz done")
		b.Close(store.OutcomeUnknown, "fuzz done")
		// Close ends the pending calls in no particular order.
		if ga, gb := sortedLines(recorded(t, recA, true)), sortedLines(recorded(t, recB, true)); ga != gb {
			t.Fatalf("at close, recorded\n%s from bytes, but\n%s from the reading", ga, gb)
		}
	})
}

// A reading made under other limits than the Session's is not taken: the
// Session reads the bytes again under its own, and refuses what they
// refuse, exactly as if it had been given the bytes. Otherwise a transport
// whose reading was laxer (a deeper nesting bound, no size bound) would
// carry a message past the Session's checks.
func TestSessionRereadsUnderItsLimits(t *testing.T) {
	lim := Limits{MaxMessageBytes: 1 << 10, MaxDepth: 16}
	deep := `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"x","arguments":{"a":` + strings.Repeat("[", 30) + strings.Repeat("]", 30) + `}}}`
	big := `{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"x","arguments":{"a":"` + strings.Repeat("x", 2000) + `"}}}`
	for _, tc := range []struct {
		name, msg       string
		depth, maxBytes int
	}{
		{"deeper bound", deep, 1000, lim.MaxMessageBytes},
		{"no size bound", big, lim.MaxDepth, 0},
		{"larger size bound", big, lim.MaxDepth, 1 << 20},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, from := range []string{store.FromClient, store.FromServer} {
				recA, recB := &memRecorder{}, &memRecorder{}
				a := NewSession(SessionInfo{ID: "s"}, recA, Hooks{}, lim, nil)
				b := NewSession(SessionInfo{ID: "s"}, recB, Hooks{}, lim, nil)
				lax := envelope.ReadMessage([]byte(tc.msg), tc.depth, tc.maxBytes)
				if !lax.Valid() {
					t.Fatalf("the lax reading refuses the message: the test proves nothing")
				}
				var fa, ra, fb, rb []byte
				if from == store.FromClient {
					fa, ra = a.FromClient([]byte(tc.msg), nil)
					fb, rb = b.FromClientRead(&lax, nil)
				} else {
					fa, ra = a.FromServer([]byte(tc.msg))
					fb, rb = b.FromServerRead(&lax)
				}
				if fb != nil || fa != nil {
					t.Errorf("from %s: forwarded %q (from bytes: %q), want the message refused", from, fb, fa)
				}
				if !bytes.Equal(ra, rb) {
					t.Errorf("from %s: answered %s, from bytes %s", from, rb, ra)
				}
				if kinds := recB.kinds(); kinds != store.KindBadInput || recorded(t, recA) != recorded(t, recB) {
					t.Errorf("from %s: recorded %s\n%s, from bytes\n%s", from, kinds, recorded(t, recB), recorded(t, recA))
				}
			}
		})
	}
}

// What a child's session forwards is delivered by the reading of those
// very bytes; a message the gateway made in its place (an error for a
// withheld answer) is read anew: readOf never pairs bytes with a reading
// of others.
func TestReadOfOtherBytes(t *testing.T) {
	s := NewSession(SessionInfo{ID: "s"}, &memRecorder{}, Hooks{}, Limits{}, nil)
	line := []byte(`{"jsonrpc":"2.0","id":1,"result":{"a":1}}`)
	r := s.ReadMessage(line)
	if got := readOf(line, &r, s); got != &r {
		t.Errorf("the forwarded bytes themselves were read again")
	}
	same := bytes.Clone(line)
	if got := readOf(same, &r, s); got != &r {
		t.Errorf("equal bytes elsewhere were read again")
	}
	other := []byte(`{"jsonrpc":"2.0","id":2,"error":{"code":-32603,"message":"withheld"}}`)
	got := readOf(other, &r, s)
	if got == &r || !bytes.Equal(got.Raw(), other) {
		t.Fatalf("other bytes got the reading of %q", got.Raw())
	}
	if els := got.Elements(); len(els) != 1 || string(els[0].Msg.ID) != "2" || els[0].Msg.Error == nil {
		t.Errorf("other bytes read as %+v", els)
	}
}

// The stream knows a message is a response from whoever added it, without
// reading it again: the gateway's own error in a call's place (addResponse)
// is answered as one JSON body, a server request on the way (add) makes it
// a stream even though it would read as JSON-RPC like the rest.
func TestSSEStreamKnowsItsResponses(t *testing.T) {
	failed := newStream("f", 1<<20, nil)
	failed.addResponse(errorResponse(json.RawMessage("3"), -32603, "mcptrail: the upstream is not accepting input"))
	failed.close()
	rec := httptest.NewRecorder()
	if !failed.serve(context.Background(), rec) {
		t.Fatal("serve did not complete")
	}
	if ct := rec.Header().Get("Content-Type"); ct != "application/json" || !strings.Contains(rec.Body.String(), `"id":3`) {
		t.Errorf("gateway's error: %s %q", ct, rec.Body.String())
	}

	asking := newStream("a", 1<<20, []string{"n4"})
	asking.add([]byte(`{"jsonrpc":"2.0","id":"s1","method":"sampling/createMessage","params":{}}`))
	asking.addAnswer([]byte(`{"jsonrpc":"2.0","id":4,"result":{}}`), "n4")
	rec = httptest.NewRecorder()
	asking.serve(context.Background(), rec)
	if ct := rec.Header().Get("Content-Type"); ct != "text/event-stream" || !strings.Contains(rec.Body.String(), "sampling/createMessage") {
		t.Errorf("answer after a server request: %s %q", ct, rec.Body.String())
	}
}
