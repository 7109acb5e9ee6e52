package ingest

import (
	"encoding/json"
	"sync"

	"github.com/mcptrail/mcptrail/ingest/envelope"
	"github.com/mcptrail/mcptrail/internal/rawjson"
	"github.com/mcptrail/mcptrail/store"
)

// mrtrMethods are the requests a 2026-07-28 server may answer with
// input_required, continued by a retry under a new id.
var mrtrMethods = map[string]bool{"tools/call": true, "prompts/get": true, "resources/read": true}

// logicalCalls link the retries of a multi-round-trip request (MRTR,
// 2026-07-28) to the logical call they continue: the server answers
// input_required, and the client sends the call again under a new id with
// the input, and with the requestState the server gave, if it gave one.
type logicalCalls struct {
	mu       sync.Mutex
	byState  map[string]uint64 // requestState → seq of the first request of the logical call
	awaiting map[string]uint64 // method + NUL + target → logical call waiting for the client's input
}

func newLogicalCalls() *logicalCalls {
	return &logicalCalls{byState: make(map[string]uint64), awaiting: make(map[string]uint64)}
}

// continued returns the logical call a retry continues: by its
// requestState, or, when the server keeps no state, by the same method and
// target still awaiting input. 0: a call of its own.
func (l *logicalCalls) continued(method, target, requestState string, hasInputs bool) uint64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	var logical uint64
	if requestState != "" {
		logical = l.byState[requestState]
	}
	if logical == 0 && (requestState != "" || hasInputs) {
		logical = l.awaiting[method+"\x00"+target]
	}
	return logical
}

// awaitInput notes that the server asked the client for input to go on
// with logical, and gave requestState (possibly none) for the retry.
func (l *logicalCalls) awaitInput(method, target, requestState string, logical uint64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if requestState != "" {
		l.byState[requestState] = logical
	}
	l.awaiting[method+"\x00"+target] = logical
}

// answered notes that logical got an answer that asks for nothing more:
// a later call of the same method and target no longer continues it.
func (l *logicalCalls) answered(method, target string, logical uint64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	waitKey := method + "\x00" + target
	if l.awaiting[waitKey] == logical {
		delete(l.awaiting, waitKey)
	}
}

// continuation returns what the request names (tool, prompt or resource) and
// links an MRTR retry to the logical call it continues: by its requestState,
// or, when the server keeps no state, by the same method and target still
// awaiting input.
func (s *Session) continuation(ev *store.Event, m *envelope.Message) (target string) {
	if !mrtrMethods[ev.Method] {
		return ""
	}
	target = m.Name + m.URI
	ev.LogicalCall = s.logical.continued(ev.Method, target, m.RequestState, len(m.InputResponses) > 0)
	return target
}

// callOutcome reads the result of a call that MRTR may continue: an
// input_required result leaves the logical call open for the client's
// retry; isError is a failure of the tool.
func (s *Session) callOutcome(p *pending, result json.RawMessage) (outcome, detail string) {
	var r struct {
		IsError      bool   `json:"isError"`
		ResultType   string `json:"resultType"`
		RequestState string `json:"requestState"`
	}
	// Byte-exact names, as the client's SDK reads them; a server's
	// result is not refused for its spelling.
	if len(result) > 0 && result[0] == '{' { // valid: a view of a checked message
		rawjson.Members(result, func(k []byte, esc bool, v []byte) bool {
			switch rawjson.Key(k, esc) {
			case "isError":
				r.IsError = string(v) == "true"
			case "resultType":
				r.ResultType, _ = rawjson.StringValue(v)
			case "requestState":
				r.RequestState, _ = rawjson.StringValue(v)
			}
			return true
		})
	}
	if r.ResultType == "input_required" {
		s.logical.awaitInput(p.method, p.target, r.RequestState, p.logical)
		return store.OutcomeInputRequired, "server asked the client for input; the call continues under a new id"
	}
	s.logical.answered(p.method, p.target, p.logical)
	if r.IsError {
		return store.OutcomeToolError, ""
	}
	return store.OutcomeOK, ""
}
