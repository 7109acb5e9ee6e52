package ingest

import (
	"bytes"
	"encoding/json"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mcptrail/mcptrail/ingest/envelope"
	"github.com/mcptrail/mcptrail/store"
	"github.com/modelcontextprotocol/go-sdk/jsonrpc"
)

// memRecorder keeps events in memory, for logic tests that need no disk.
type memRecorder struct {
	mu  sync.Mutex
	evs []store.Event
}

func (m *memRecorder) Record(ev *store.Event, _ bool) (uint64, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	ev.Seq = uint64(len(m.evs) + 1)
	m.evs = append(m.evs, *ev)
	return ev.Seq, nil
}

func (m *memRecorder) kinds() string {
	m.mu.Lock()
	defer m.mu.Unlock()
	var k []string
	for _, e := range m.evs {
		k = append(k, e.Kind)
	}
	return strings.Join(k, ",")
}

func TestSessionRelaysBytesUnchanged(t *testing.T) {
	rec := &memRecorder{}
	s := NewSession(SessionInfo{ID: "s"}, rec, Hooks{}, Limits{}, nil)
	// Unknown members, odd spacing and key order must survive the relay.
	req := `{"id":  9, "jsonrpc":"2.0","method":"tools/call","params":{"name":"t","arguments":{"b":1,"a":2}},"x-vendor":{"keep":true}}`
	fwd, reply := s.FromClient([]byte(req), nil)
	if string(fwd) != req || reply != nil {
		t.Fatalf("forwarded %q (reply %q)", fwd, reply)
	}
	resp := `{"jsonrpc":"2.0","id":9,"result":{"content":[],"isError":true,"extra":1}}`
	fwd, _ = s.FromServer([]byte(resp))
	if string(fwd) != resp {
		t.Fatalf("forwarded %q", fwd)
	}
	if rec.evs[1].Outcome != store.OutcomeToolError || rec.evs[1].Call != rec.evs[0].Seq || rec.evs[1].Tool != "t" {
		t.Errorf("outcome event %+v", rec.evs[1])
	}
}

func TestSessionServerRequestAndCancel(t *testing.T) {
	rec := &memRecorder{}
	s := NewSession(SessionInfo{ID: "s"}, rec, Hooks{}, Limits{}, nil)
	s.FromClient([]byte(`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"slow"}}`), nil)
	// The server asks the client to sample, with an id that collides with the client's own.
	s.FromServer([]byte(`{"jsonrpc":"2.0","id":1,"method":"sampling/createMessage","params":{}}`))
	s.FromClient([]byte(`{"jsonrpc":"2.0","id":1,"result":{"role":"assistant","content":{"type":"text","text":"hi"}}}`), nil)
	// A call still pending when the session closes.
	s.FromClient([]byte(`{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"slow"}}`), nil)
	s.FromClient([]byte(`{"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":1,"reason":"user gave up"}}`), nil)
	if got := rec.kinds(); got != "request,request,call,request,notification,call" {
		t.Fatalf("kinds %s", got)
	}
	sampling := rec.evs[2]
	if sampling.Method != "sampling/createMessage" || sampling.Call != 2 || sampling.From != store.FromServer {
		t.Errorf("sampling outcome %+v", sampling)
	}
	if rec.evs[4].Call != 1 || rec.evs[4].Tool != "slow" {
		t.Errorf("cancellation not linked to the call: %+v", rec.evs[4])
	}
	// The cancellation ends the call at once: a server that never answers
	// leaves nothing pending.
	if o := rec.evs[5]; o.Call != 1 || o.Outcome != store.OutcomeCancelled || !strings.Contains(o.Detail, "user gave up") {
		t.Errorf("cancelled outcome %+v", o)
	}
	if n := s.Pending(); n != 1 {
		t.Errorf("%d calls pending after the cancellation, want 1", n)
	}
	// The server's late answer is relayed but ends nothing twice.
	if fwd, _ := s.FromServer([]byte(`{"jsonrpc":"2.0","id":1,"result":{"content":[]}}`)); fwd == nil {
		t.Error("late answer not relayed")
	}
	if got := rec.kinds(); got != "request,request,call,request,notification,call" {
		t.Fatalf("the late answer was recorded: kinds %s", got)
	}
	replies := s.Close(store.OutcomeUnknown, "gateway stopped")
	if len(replies) != 1 || !strings.Contains(string(replies[0]), `"id":2`) {
		t.Errorf("close replies %q", replies)
	}
	last := rec.evs[len(rec.evs)-2]
	if last.Outcome != store.OutcomeUnknown || last.Call != 4 {
		t.Errorf("pending call at close: %+v", last)
	}
}

func TestSessionCallTimeout(t *testing.T) {
	rec := &memRecorder{}
	s := NewSession(SessionInfo{ID: "s"}, rec, Hooks{}, Limits{CallTimeout: 20 * time.Millisecond}, nil)
	type expiry struct{ id, reply []byte }
	expired := make(chan expiry, 2)
	s.onTimeout(func(id, reply []byte) { expired <- expiry{id, reply} })
	s.FromClient([]byte(`{"jsonrpc":"2.0","id":"a","method":"tools/call","params":{"name":"hang"}}`), nil)
	s.FromClient([]byte(`{"jsonrpc":"2.0","id":"b","method":"tools/call","params":{"name":"quick"}}`), nil)
	s.FromServer([]byte(`{"jsonrpc":"2.0","id":"b","result":{"content":[]}}`))
	var e expiry
	select {
	case e = <-expired:
	case <-time.After(10 * time.Second):
		t.Fatal("the unanswered call never timed out")
	}
	if string(e.id) != `"a"` || !strings.Contains(string(e.reply), `"code":-32001`) || !strings.Contains(string(e.reply), `"id":"a"`) {
		t.Fatalf("expiry of %s: %s", e.id, e.reply)
	}
	if n := s.Pending(); n != 0 {
		t.Errorf("%d calls pending after the timeout", n)
	}
	var outcomes []string
	rec.mu.Lock()
	for _, ev := range rec.evs {
		if ev.Kind == store.KindCall {
			outcomes = append(outcomes, ev.Tool+"="+ev.Outcome)
		}
	}
	rec.mu.Unlock()
	if got := strings.Join(outcomes, ","); got != "quick=ok,hang=timeout" {
		t.Errorf("outcomes %s", got)
	}
	if !strings.Contains(string(cancelNotification(e.id, timeoutReason)), `"requestId":"a"`) {
		t.Errorf("cancellation %s", cancelNotification(e.id, timeoutReason))
	}
}

func TestSessionMRTRLinksContinuations(t *testing.T) {
	rec := &memRecorder{}
	s := NewSession(SessionInfo{ID: "s"}, rec, Hooks{}, Limits{}, nil)
	s.FromClient([]byte(`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"book"}}`), nil)
	s.FromServer([]byte(`{"jsonrpc":"2.0","id":1,"result":{"resultType":"input_required","requestState":"st-1","inputRequests":{}}}`))
	s.FromClient([]byte(`{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"book","requestState":"st-1","inputResponses":{}}}`), nil)
	s.FromServer([]byte(`{"jsonrpc":"2.0","id":2,"result":{"content":[]}}`))
	if rec.evs[1].Outcome != store.OutcomeInputRequired {
		t.Errorf("first outcome %q", rec.evs[1].Outcome)
	}
	if rec.evs[2].LogicalCall != 1 || rec.evs[3].LogicalCall != 1 {
		t.Errorf("continuation not linked: %d %d", rec.evs[2].LogicalCall, rec.evs[3].LogicalCall)
	}
}

func TestSessionRedactsBeforeRecording(t *testing.T) {
	rec := &memRecorder{}
	hooks := Hooks{Redact: func(b json.RawMessage) json.RawMessage {
		return json.RawMessage(strings.ReplaceAll(string(b), "hunter2", "[REDACTED]"))
	}}
	s := NewSession(SessionInfo{ID: "s"}, rec, hooks, Limits{}, nil)
	raw := `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"login","arguments":{"password":"hunter2"}}}`
	fwd, _ := s.FromClient([]byte(raw), nil)
	if string(fwd) != raw {
		t.Error("redaction must not change what is forwarded")
	}
	if strings.Contains(string(rec.evs[0].Params), "hunter2") {
		t.Errorf("secret stored: %s", rec.evs[0].Params)
	}
}

// FuzzSession: any bytes from either side never panic the gateway, replies
// are valid JSON-RPC, and what is forwarded is exactly what arrived.
func FuzzSession(f *testing.F) {
	for _, s := range []string{
		`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"x"}}`,
		`{"jsonrpc":"2.0","id":1,"result":{}}`,
		`[{"jsonrpc":"2.0","id":1,"method":"ping"},{"jsonrpc":"2.0","method":"notifications/initialized"}]`,
		`{"jsonrpc":"2.0","id":null,"method":"x"}`, `{"id":{}}`, `[]`, `nul`, `"str"`,
	} {
		f.Add([]byte(s), true)
	}
	f.Fuzz(func(t *testing.T, data []byte, fromClient bool) {
		s := NewSession(SessionInfo{ID: "f"}, &memRecorder{}, Hooks{}, Limits{MaxMessageBytes: 1 << 12}, nil)
		var fwd, reply []byte
		if fromClient {
			fwd, reply = s.FromClient(data, nil)
		} else {
			fwd, reply = s.FromServer(data)
		}
		if fwd != nil && string(fwd) != strings.TrimSpace(string(data)) && string(fwd) != string(data) {
			// Forwarded bytes are the input, trimmed of surrounding space at most.
			if strings.TrimSpace(string(fwd)) != strings.TrimSpace(string(data)) {
				t.Fatalf("forwarded %q for input %q", fwd, data)
			}
		}
		if reply != nil && !json.Valid(reply) {
			t.Fatalf("invalid reply %q", reply)
		}
		s.Close(store.OutcomeUnknown, "fuzz")
	})
}

// A stateless server asks for input without a requestState: the retry is
// linked by method and target instead.
func TestSessionMRTRWithoutRequestState(t *testing.T) {
	rec := &memRecorder{}
	s := NewSession(SessionInfo{ID: "s"}, rec, Hooks{}, Limits{}, nil)
	s.FromClient([]byte(`{"jsonrpc":"2.0","id":1,"method":"prompts/get","params":{"name":"p"}}`), nil)
	s.FromServer([]byte(`{"jsonrpc":"2.0","id":1,"result":{"resultType":"input_required","inputRequests":{}}}`))
	s.FromClient([]byte(`{"jsonrpc":"2.0","id":2,"method":"prompts/get","params":{"name":"p","inputResponses":{}}}`), nil)
	s.FromServer([]byte(`{"jsonrpc":"2.0","id":2,"result":{"messages":[]}}`))
	s.FromClient([]byte(`{"jsonrpc":"2.0","id":3,"method":"prompts/get","params":{"name":"p","inputResponses":{}}}`), nil)
	if rec.evs[2].LogicalCall != 1 || rec.evs[3].LogicalCall != 1 {
		t.Errorf("retry not linked: %d %d", rec.evs[2].LogicalCall, rec.evs[3].LogicalCall)
	}
	if rec.evs[4].LogicalCall != 0 {
		t.Errorf("a call after the logical call completed was linked to it: %d", rec.evs[4].LogicalCall)
	}
}

// FuzzDecodeMessage: every message the gateway's envelope accepts, the
// go-sdk's jsonrpc.DecodeMessage reads as the same kind, method and id.
func FuzzDecodeMessage(f *testing.F) {
	for _, s := range []string{
		`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"x"}}`,
		`{"jsonrpc":"2.0","id":"a","result":{}}`, `{"jsonrpc":"2.0","id":2,"error":{"code":-1,"message":"m"}}`,
		`{"jsonrpc":"2.0","method":"notifications/initialized"}`, `{"jsonrpc":"1.0","id":1,"method":"x"}`,
		`{"jsonrpc":"2.0","result":{}}`, `{"jsonrpc":"2.0","id":{},"method":"x"}`, `{"jsonrpc":"2.0","id":1.5,"method":""}`,
		`{"jsonrpc":"2.0","id":-0,"result":{}}`, `{"jsonrpc":"2.0","id":-17,"method":"x"}`, `{"jsonrpc":"2.0","id":1e2,"method":"x"}`,
		`{"jsonrpc":"2.0","id":9007199254740993,"method":"x"}`, `{"jsonrpc":"2.0","id":"a\u0041","method":"x"}`,
		`{"jsonrpc":"2.0","id":"é","method":"x"}`, `{"jsonrpc":"2.0","id":"","result":{}}`, `{"jsonrpc":"2.0","id":null,"result":{}}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		if envelope.Check(data, 0) != nil || len(data) == 0 || data[0] != '{' {
			return
		}
		ours, oerr := envelope.Parse(data)
		if oerr != nil {
			return
		}
		sdk, serr := jsonrpc.DecodeMessage(data)
		if serr != nil {
			t.Fatalf("the envelope took %s, the SDK refuses it: %v", data, serr)
		}
		var rawID any
		if ours.ID != nil {
			_ = json.Unmarshal(ours.ID, &rawID)
		}
		id, _ := jsonrpc.MakeID(rawID)
		switch s := sdk.(type) {
		case *jsonrpc.Request:
			if !ours.HasMethod || ours.Method != s.Method || id != s.ID {
				t.Fatalf("ours %+v, SDK %#v", ours, sdk)
			}
		case *jsonrpc.Response:
			if ours.HasMethod || id != s.ID {
				t.Fatalf("ours %+v, SDK %#v", ours, sdk)
			}
		}
	})
}

// Transports reuse a message's buffer for the next one (LineReader): what
// the Session keeps of a request until its outcome must be its own.
func TestSessionOutcomeOutlivesTheRequestBuffer(t *testing.T) {
	rec := &memRecorder{}
	s := NewSession(SessionInfo{ID: "s"}, rec, Hooks{}, Limits{}, nil)
	buf := []byte(`{"jsonrpc":"2.0","id":"first","method":"tools/call","params":{"name":"t"}}`)
	s.FromClient(buf, nil)
	copy(buf, bytes.Repeat([]byte{'x'}, len(buf))) // the reader's next line
	s.FromServer([]byte(`{"jsonrpc":"2.0","id":"first","result":{"content":[]}}`))
	out := rec.evs[len(rec.evs)-1]
	if out.Kind != store.KindCall || string(out.JSONRPCID) != `"first"` {
		t.Fatalf("outcome %s with jsonrpc_id %s, want the request's \"first\"", out.Kind, out.JSONRPCID)
	}
}

// A server answer the gateway refuses (too deep for the client's SDK, or
// ambiguous) is not relayed, but the call it answers is settled: the
// client gets an error in its place, the outcome says why, and the
// refused message is recorded.
func TestSessionRefusedAnswerSettlesTheCall(t *testing.T) {
	for _, answer := range []string{
		`{"jsonrpc":"2.0","id":7,"result":{"content":[{"type":"text","text":"x"}],"deep":` + strings.Repeat("[", 200) + strings.Repeat("]", 200) + `}}`,
		`{"jsonrpc":"2.0","id":7,"result":{},"error":{"code":1,"message":"both"}}`,
	} {
		rec := &memRecorder{}
		s := NewSession(SessionInfo{ID: "s"}, rec, Hooks{}, Limits{}, nil)
		if fwd, _ := s.FromClient([]byte(`{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"t"}}`), nil); fwd == nil {
			t.Fatal("the call was not forwarded")
		}
		fwd, reply := s.FromServer([]byte(answer))
		if reply != nil || !bytes.Contains(fwd, []byte(`"id":7`)) || !bytes.Contains(fwd, []byte("the server's answer was refused")) {
			t.Fatalf("forward %s, reply %s; want an error for call 7 to the client", fwd, reply)
		}
		if s.Pending() != 0 {
			t.Error("the call is still pending")
		}
		var bad, outcome bool
		for _, ev := range rec.evs {
			bad = bad || ev.Kind == store.KindBadInput
			outcome = outcome || (ev.Kind == store.KindCall && ev.Outcome == store.OutcomeRPCError && strings.Contains(ev.Detail, "refused"))
		}
		if !bad || !outcome {
			t.Errorf("recorded %+v; want a bad_input and an rpc_error outcome", rec.evs)
		}
	}
}

// A client that sends a request with the id of one still in flight gets an
// error for the second and the server never sees it: two calls under one
// id would leave the record unable to say which answer is whose, and the
// first call without an outcome (HTTP sessions refuse the same way).
func TestSessionRefusesAnIDStillInFlight(t *testing.T) {
	for _, ids := range [][2]string{
		{`5`, `5`},
		{`"a"`, `"\u0061"`}, // the same id written another way
	} {
		rec := &memRecorder{}
		s := NewSession(SessionInfo{ID: "s"}, rec, Hooks{}, Limits{}, nil)
		first := `{"jsonrpc":"2.0","id":` + ids[0] + `,"method":"tools/call","params":{"name":"read_file","arguments":{"path":"a"}}}`
		if fwd, _ := s.FromClient([]byte(first), nil); fwd == nil {
			t.Fatal("the first call was not forwarded")
		}
		second := `{"method":"tools/call","params":{"name":"delete_file","arguments":{"path":"/etc/passwd"}},"id":` + ids[1] + `,"jsonrpc":"2.0"}`
		fwd, reply := s.FromClient([]byte(second), nil)
		if fwd != nil {
			t.Fatalf("a second request under id %s was forwarded: %s", ids[1], fwd)
		}
		if !bytes.Contains(reply, []byte("already in flight")) || !bytes.Contains(reply, []byte(`"id":`+ids[0])) {
			t.Fatalf("reply %s; want an error for id %s naming the call in flight", reply, ids[0])
		}
		if fwd, _ := s.FromServer([]byte(`{"jsonrpc":"2.0","id":` + ids[0] + `,"result":{"content":[]}}`)); fwd == nil {
			t.Fatal("the answer was not forwarded")
		}
		if s.Pending() != 0 {
			t.Error("a call is still pending")
		}
		var firstSeq uint64
		var outcomes, bad int
		for _, ev := range rec.evs {
			switch {
			case ev.Kind == store.KindRequest && ev.Tool == "read_file":
				firstSeq = ev.Seq
			case ev.Kind == store.KindRequest:
				t.Errorf("the refused request was recorded as a call: %+v", ev)
			case ev.Kind == store.KindCall:
				outcomes++
				if ev.Call != firstSeq || ev.Tool != "read_file" {
					t.Errorf("the answer was filed under %d (%s), want the first call %d", ev.Call, ev.Tool, firstSeq)
				}
			case ev.Kind == store.KindBadInput:
				bad++
			}
		}
		if outcomes != 1 || bad != 1 {
			t.Errorf("recorded %d outcomes and %d bad_input; want 1 and 1: %+v", outcomes, bad, rec.evs)
		}
	}
}
