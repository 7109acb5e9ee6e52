package ingest

import (
	"bytes"
	"testing"

	"github.com/mcptrail/mcptrail/ingest/envelope"
	"github.com/mcptrail/mcptrail/store"
)

// FuzzSessionScript drives a Session with a script of hostile messages from both
// sides (a line "c …" from the client, "s …" from the server) and holds it
// to the gateway's contract: what it forwards is the bytes as sent (or,
// towards the client, an error in place of an answer), a request is
// recorded before it is forwarded, a call has at most one outcome and every
// one it has names a recorded request, an MRTR continuation names an
// earlier call, and after Close nothing is pending.
func FuzzSessionScript(f *testing.F) {
	for _, seed := range []string{
		// MRTR with and without requestState, tool annotations learned.
		"c {\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"tools/list\"}\n" +
			"s {\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{\"tools\":[{\"name\":\"rm\",\"annotations\":{\"readOnlyHint\":false,\"destructiveHint\":true}}]}}\n" +
			"c {\"jsonrpc\":\"2.0\",\"id\":2,\"method\":\"tools/call\",\"params\":{\"name\":\"rm\",\"arguments\":{}}}\n" +
			"s {\"jsonrpc\":\"2.0\",\"id\":2,\"result\":{\"resultType\":\"input_required\",\"requestState\":\"st\"}}\n" +
			"c {\"jsonrpc\":\"2.0\",\"id\":3,\"method\":\"tools/call\",\"params\":{\"name\":\"rm\",\"requestState\":\"st\",\"inputResponses\":{}}}\n" +
			"s {\"jsonrpc\":\"2.0\",\"id\":3,\"result\":{\"content\":[],\"isError\":true}}\n",
		"c {\"jsonrpc\":\"2.0\",\"id\":\"a\",\"method\":\"prompts/get\",\"params\":{\"name\":\"p\"}}\n" +
			"s {\"jsonrpc\":\"2.0\",\"id\":\"a\",\"result\":{\"resultType\":\"input_required\"}}\n" +
			"c {\"jsonrpc\":\"2.0\",\"id\":\"b\",\"method\":\"prompts/get\",\"params\":{\"name\":\"p\",\"inputResponses\":{\"x\":1}}}\n" +
			"s {\"jsonrpc\":\"2.0\",\"method\":\"notifications/tools/list_changed\"}\n",
		// Cancellation, a late answer, an answer to nothing, a server request.
		"c {\"jsonrpc\":\"2.0\",\"id\":7,\"method\":\"tools/call\",\"params\":{\"name\":\"slow\"}}\n" +
			"c {\"jsonrpc\":\"2.0\",\"method\":\"notifications/cancelled\",\"params\":{\"requestId\":7}}\n" +
			"s {\"jsonrpc\":\"2.0\",\"id\":7,\"result\":{}}\n" +
			"s {\"jsonrpc\":\"2.0\",\"id\":8,\"result\":{}}\n" +
			"s {\"jsonrpc\":\"2.0\",\"id\":7,\"method\":\"sampling/createMessage\",\"params\":{}}\n" +
			"c {\"jsonrpc\":\"2.0\",\"id\":7,\"error\":{\"code\":-1,\"message\":\"no\"}}\n",
		// Batches before and after the version that has them; bad input.
		"c [{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"ping\"}]\n" +
			"c {\"jsonrpc\":\"2.0\",\"id\":0,\"method\":\"initialize\",\"params\":{\"protocolVersion\":\"2025-03-26\",\"clientInfo\":{\"name\":\"x\",\"version\":\"1\"}}}\n" +
			"s {\"jsonrpc\":\"2.0\",\"id\":0,\"result\":{\"protocolVersion\":\"2025-03-26\",\"serverInfo\":{\"name\":\"srv\"}}}\n" +
			"c [{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"ping\"},{\"jsonrpc\":\"2.0\",\"method\":\"notifications/initialized\"}]\n" +
			"s [{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{}}]\n" +
			"c []\n" +
			"c {\"jsonrpc\":\"2.0\",\"id\":2,\"method\":\"tools/call\",\"ID\":3}\n" +
			"s {\"jsonrpc\":\"2.0\",\"id\":2,\"result\":[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]}\n" +
			"s \xff\xfe\n",
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, script []byte) {
		rec := &memRecorder{}
		s := NewSession(SessionInfo{ID: "fuzz", Upstream: "u"}, rec, Hooks{}, Limits{MaxMessageBytes: 1 << 12, MaxDepth: 32}, nil)
		for _, line := range bytes.Split(script, []byte("\n")) {
			if len(line) < 2 {
				continue
			}
			msg := line[2:]
			before := len(rec.evs)
			switch line[0] {
			case 'c':
				fwd, _ := s.FromClient(msg, nil)
				if fwd == nil {
					continue
				}
				if !bytes.Equal(fwd, bytes.TrimSpace(msg)) {
					t.Fatalf("forwarded to the server %q, not the client's %q", fwd, msg)
				}
				if m, err := envelope.Parse(fwd); err == nil && m.IsRequest() && !recordedRequest(rec.evs[before:], m.Method) {
					t.Fatalf("forwarded request %q without recording it", fwd)
				}
			case 's':
				fwd, _ := s.FromServer(msg)
				if fwd == nil || bytes.Equal(fwd, bytes.TrimSpace(msg)) {
					continue
				}
				// Only an error may stand in for the server's answer.
				if m, err := envelope.Parse(fwd); err != nil || !m.IsResponse() || len(m.Error) == 0 {
					t.Fatalf("forwarded to the client %q in place of %q", fwd, msg)
				}
			}
		}
		s.Close(store.OutcomeUnknown, "fuzz done")
		if n := s.Pending(); n != 0 {
			t.Fatalf("%d calls pending after Close", n)
		}
		requests := map[uint64]bool{}
		outcomes := map[uint64]int{}
		for _, ev := range rec.evs {
			switch ev.Kind {
			case store.KindRequest:
				requests[ev.Seq] = true
			case store.KindCall:
				if !requests[ev.Call] {
					t.Fatalf("outcome %d names call %d, no request recorded before it", ev.Seq, ev.Call)
				}
				if outcomes[ev.Call]++; outcomes[ev.Call] > 1 {
					t.Fatalf("call %d has a second outcome (%d)", ev.Call, ev.Seq)
				}
			}
			if ev.LogicalCall != 0 && (!requests[ev.LogicalCall] || ev.LogicalCall >= ev.Seq) {
				t.Fatalf("event %d continues call %d, which is no earlier request", ev.Seq, ev.LogicalCall)
			}
		}
	})
}

// recordedRequest reports whether evs hold a request event for method.
func recordedRequest(evs []store.Event, method string) bool {
	for _, ev := range evs {
		if ev.Kind == store.KindRequest && ev.Method == method {
			return true
		}
	}
	return false
}
