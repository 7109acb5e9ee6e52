package ingest

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/mcptrail/mcptrail/ingest/envelope"
	"github.com/mcptrail/mcptrail/ingest/identity"
	"github.com/mcptrail/mcptrail/internal/rawjson"
	"github.com/mcptrail/mcptrail/store"
	"github.com/modelcontextprotocol/go-sdk/jsonrpc"
)

// FromClient handles one message (or JSON-RPC batch) from the client. It
// returns what to forward to the server (nil: nothing) and what to send back
// to the client instead (nil: nothing), e.g. an error for bad input or a
// refused call. ov may be nil.
func (s *Session) FromClient(raw []byte, ov *Overrides) (forward, reply []byte) {
	return s.handle(store.FromClient, raw, nil, ov, false)
}

// FromClientRead is FromClient of a message the transport has read already
// (to route it): the Session takes that reading instead of reading the
// bytes again, provided it was made under the Session's limits, and what it
// forwards is r.Raw() itself. With FromServerRead it took serve's strict
// readings of a small tools/call and its answer from five to two, 3.1 to
// 1.5 µs of CPU (BenchmarkServeReadings).
func (s *Session) FromClientRead(r *envelope.Read, ov *Overrides) (forward, reply []byte) {
	return s.handle(store.FromClient, r.Raw(), r, ov, false)
}

// FromServer handles one message from the server; forward goes to the
// client, reply back to the server.
func (s *Session) FromServer(raw []byte) (forward, reply []byte) {
	return s.handle(store.FromServer, raw, nil, nil, false)
}

// FromServerRead is FromServer of a message the transport has read
// already (see FromClientRead).
func (s *Session) FromServerRead(r *envelope.Read) (forward, reply []byte) {
	return s.handle(store.FromServer, r.Raw(), r, nil, false)
}

// ReadMessage reads raw under the Session's limits, for a transport that
// routes on the reading before it hands it to FromClientRead or
// FromServerRead.
func (s *Session) ReadMessage(raw []byte) envelope.Read {
	return envelope.ReadMessage(raw, s.limits.MaxDepth, s.limits.MaxMessageBytes)
}

// readOf is the reading of msg, what the Session passed on after it was
// given r: r itself when msg is r's bytes (the message goes on as
// received, the common case), else a reading of msg — a reading is only
// ever used for the bytes it was made of. bytes.Equal compares the
// pointers first, so the common case costs no comparison of the bytes.
func readOf(msg []byte, r *envelope.Read, s *Session) *envelope.Read {
	if bytes.Equal(msg, r.Raw()) {
		return r
	}
	own := s.ReadMessage(msg)
	return &own
}

// handle takes raw, or r, its reading by the transport (nil: none).
// answerFirst: the transport settles after it forwards (see
// FromServerAnswerFirst).
func (s *Session) handle(from string, raw []byte, r *envelope.Read, ov *Overrides, answerFirst bool) (forward, reply []byte) {
	// An outcome left for after its answer is recorded before anything
	// that came after the answer.
	s.Settle()
	if r == nil || !r.ReadWith(s.limits.MaxDepth, s.limits.MaxMessageBytes) {
		own := s.ReadMessage(raw)
		r = &own
	}
	// From here on the bytes are the reading's own: the ones recorded are
	// the ones forwarded.
	raw = r.Raw()
	if len(raw) == 0 {
		return nil, nil
	}
	if r.TooBig() {
		s.badInput(from, raw, fmt.Sprintf("message of %d bytes exceeds the %d-byte limit", len(raw), s.limits.MaxMessageBytes))
		return nil, errorResponse(nil, jsonrpc.CodeInvalidRequest, "mcptrail: message too large")
	}
	if err := r.Check(); err != nil {
		s.badInput(from, raw, err.Reason)
		if from == store.FromServer && err.Code != envelope.CodeParseError && raw[0] == '{' {
			// Valid JSON, refused all the same (too deep, not UTF-8): if
			// it answers a client's call, the client learns why.
			if m, _ := envelope.Parse(raw); m.ID != nil && !m.HasMethod {
				if fwd := s.refusedAnswer(m.ID, err.Reason); fwd != nil {
					return fwd, nil
				}
			}
		}
		return nil, errorResponse(nil, err.Code, "mcptrail: "+err.Reason)
	}
	if r.Batch() {
		return s.handleBatch(from, r, ov)
	}
	// A refused message (err) comes back with no forward, only the reply.
	forward, reply, _ = s.handleOne(from, &r.Elements()[0], ov, false, answerFirst)
	return forward, reply
}

// batchVersion is the one protocol version with JSON-RPC batches: 2025-03-26
// added them and 2025-06-18 removed them; 2024-11-05 speaks of single
// messages only, and its SDKs took none.
const batchVersion = "2025-03-26"

// handleBatch records each element of a JSON-RPC batch and forwards the
// batch as sent, unless an element was refused. A batch is refused whole
// unless the session negotiated the version that has them: a server of
// another version may take it for something else, or die of it.
func (s *Session) handleBatch(from string, r *envelope.Read, ov *Overrides) (forward, reply []byte) {
	raw := r.Raw()
	s.mu.Lock()
	version := s.negotiated
	s.mu.Unlock()
	if version != batchVersion {
		if version == "" {
			version = "none yet"
		}
		detail := "JSON-RPC batch refused: the session's protocol version (" + version + ") has no batches"
		s.badInput(from, raw, detail)
		return nil, errorResponse(nil, jsonrpc.CodeInvalidRequest, "mcptrail: "+detail)
	}
	elems := r.Elements()
	if len(elems) == 0 {
		s.badInput(from, raw, "empty batch")
		return nil, errorResponse(nil, jsonrpc.CodeInvalidRequest, "mcptrail: empty batch")
	}
	var replies []json.RawMessage
	refused := false
	for i := range elems {
		_, rep, err := s.handleOne(from, &elems[i], ov, true, false)
		if err != nil {
			refused = true
		}
		if rep != nil {
			replies = append(replies, rep)
		}
	}
	if len(replies) > 0 {
		reply, _ = json.Marshal(replies)
	}
	if refused {
		return nil, reply
	}
	return raw, reply
}

var errRefused = errors.New("refused")

// handleOne records one message that envelope.Check accepted, as Parse
// read it (e). A non-nil error means it must not be forwarded; reply then
// says why (for a request) or is nil. inBatch: e is an element of a batch,
// which is forwarded whole, so a held call in it blocks until decided.
// answerFirst: an answer's outcome may be left for Settle.
func (s *Session) handleOne(from string, e *envelope.Element, ov *Overrides, inBatch, answerFirst bool) (forward, reply []byte, err error) {
	raw, m, perr := e.Raw(), &e.Msg, e.Err
	if perr != nil {
		s.badInput(from, raw, "invalid JSON-RPC message: "+perr.Reason)
		if from == store.FromServer && perr.ID != nil && !m.HasMethod {
			if fwd := s.refusedAnswer(perr.ID, perr.Reason); fwd != nil {
				return fwd, nil, nil
			}
		}
		return nil, errorResponse(perr.ID, perr.Code, "mcptrail: invalid request: "+perr.Reason), errRefused
	}
	switch {
	case m.IsRequest():
		return s.request(from, raw, m, ov, inBatch)
	case m.IsNotification():
		s.notification(from, m, ov)
	default:
		if err := s.response(from, m, answerFirst); err != nil {
			// The answer goes on only once its outcome is recorded: its
			// receiver gets an error in its place (the call did run).
			return errorResponse(m.ID, jsonrpc.CodeInternalError, "mcptrail: the answer could not be recorded, so it is withheld: "+err.Error()), nil, nil
		}
	}
	return raw, nil, nil
}

func key(from string, id json.RawMessage) string { return from + "\x00" + string(id) }

func (s *Session) request(from string, raw []byte, m *envelope.Message, ov *Overrides, inBatch bool) ([]byte, []byte, error) {
	if s.inFlight(from, m.ID) {
		// Two calls under one id: the receiver could not tell whose answer
		// is whose, and neither could the record. The second never goes on.
		const detail = "a request with this id is already in flight"
		s.badInput(from, raw, detail)
		return nil, errorResponse(m.ID, jsonrpc.CodeInvalidRequest, "mcptrail: "+detail), errRefused
	}
	ev := s.event(store.KindRequest, from, ov)
	ev.Method = m.Method
	p := &pending{start: time.Now(), method: m.Method}
	// The id outlives raw, whose buffer the transport reuses for the next
	// message: the outcome, recorded later, repeats it. Most ids fit in
	// the pending call itself, sparing an allocation.
	id := json.RawMessage(append(p.idBuf[:0:len(p.idBuf)], m.ID...))
	p.id = id
	ev.JSONRPCID = id
	ev.Size = len(raw)
	ev.Params = s.redact(m.Params)
	if from == store.FromClient {
		var task *store.Task
		var obo string
		if m.Meta != nil {
			task, obo = identity.MetaClaims(m.Meta)
		}
		s.learnClient(m)
		if task != nil {
			ev.Task = identity.MergeTask(ev.Task, task)
		}
		if obo != "" && ev.OnBehalfOf == "" {
			ev.OnBehalfOf = obo
		}
		s.fillAgent(ev)
		p.target = s.continuation(ev, m)
		if m.Method == "tools/call" {
			s.describeToolCall(ev, p.target)
		}
	}
	p.tool, p.class, p.classSource, p.ann, p.task, p.agent, p.prin, p.obo = ev.Tool, ev.Class, ev.ClassSource, ev.Annotations, ev.Task, ev.Agent, ev.Principal, ev.OnBehalfOf
	p.logical = ev.LogicalCall

	seq, err := s.rec.Record(ev, true)
	if err != nil {
		// Fail closed: a call that cannot be recorded does not happen.
		return nil, errorResponse(id, jsonrpc.CodeInternalError, "mcptrail: the audit record could not be written, so the call was not forwarded: "+err.Error()), errRefused
	}
	p.seq = seq
	if p.logical == 0 {
		p.logical = seq
	}
	if from == store.FromClient && m.Method == "tools/call" && s.hooks.Capture != nil {
		if herr := s.hooks.Capture(ev, sessionConn{s}); herr != nil {
			p.prestate = ev.Prestate
			s.outcome(p, from, store.OutcomeDenied, nil, mustJSON(map[string]any{"code": jsonrpc.CodeInternalError, "message": herr.Error()}), herr.Error())
			return nil, errorResponse(id, jsonrpc.CodeInternalError, "mcptrail: call refused: "+herr.Error()), errRefused
		}
		p.prestate = ev.Prestate
	}
	if from == store.FromClient && m.Method == "tools/call" && s.hooks.Approve != nil {
		if h := s.hooks.Approve(ev, m.Params, s.ServerName()); h != nil {
			return s.hold(p, h, raw, inBatch)
		}
	}
	if reply := s.admit(p, from); reply != nil {
		return nil, reply, errRefused
	}
	return raw, nil, nil
}

// inFlight reports whether a request of from with this id (as the
// envelope canonicalized it) is pending or held for approval.
func (s *Session) inFlight(from string, id json.RawMessage) bool {
	k := key(from, id)
	s.mu.Lock()
	defer s.mu.Unlock()
	_, pending := s.pending[k]
	_, held := s.held[k]
	return pending || held
}

// admit makes a recorded request pending, to be forwarded: nil, or the
// error for the client when the session closed meanwhile.
func (s *Session) admit(p *pending, from string) (reply []byte) {
	s.mu.Lock()
	if s.closed {
		// Close ran while this request was being recorded: it will never be
		// answered through this session, so end it here rather than leave it
		// without an outcome.
		s.mu.Unlock()
		s.outcome(p, from, store.OutcomeUnknown, nil, nil, "session closed before the call was forwarded")
		return errorResponse(p.id, jsonrpc.CodeInternalError, "mcptrail: session closed")
	}
	k := key(from, p.id)
	s.pending[k] = p
	if from == store.FromClient {
		s.armTimeoutLocked(p, k)
	}
	s.mu.Unlock()
	return nil
}

// learnClient remembers who the client says it is: clientInfo and the
// protocol version from initialize (2025 era) or from _meta (2026-07-28).
func (s *Session) learnClient(m *envelope.Message) {
	name, version, pv := m.MetaClientName, m.MetaClientVersion, m.MetaProtocolVersion
	if m.Method == "initialize" {
		name, version, pv = m.ClientName, m.ClientVersion, m.ProtocolVersion
	}
	s.mu.Lock()
	if name != "" && (name != s.clientName || version != s.clientVersion) {
		s.clientName, s.clientVersion = name, version
		s.agent = sessionAgent(s.info.Agent, name, version)
	}
	if pv != "" {
		s.protocolVersion = pv
	}
	s.mu.Unlock()
}

// maxCancelled bounds the cancelled calls remembered for their late
// answers; past it they are forgotten and a late answer is bad input.
const maxCancelled = 1024

func (s *Session) notification(from string, m *envelope.Message, ov *Overrides) {
	var cancelled *pending
	var reason string
	ev := s.event(store.KindNotification, from, ov)
	ev.Method = m.Method
	ev.Params = s.redact(m.Params)
	switch m.Method {
	case "notifications/cancelled":
		// Link the cancellation to the call it cancels; its outcome comes when
		// (if) the peer answers, or at close.
		reason = m.Reason
		// The sender cancels a request it sent itself, and will ignore
		// any answer (MCP "Cancellation"): the call ends here, so a
		// server that never answers leaves nothing pending.
		if m.RequestID != nil {
			k := key(from, m.RequestID)
			s.mu.Lock()
			if pd := s.takeLocked(k); pd != nil {
				ev.Call = pd.seq
				ev.Tool = pd.tool
				cancelled = pd
				if len(s.cancelled) >= maxCancelled {
					clear(s.cancelled)
				}
				s.cancelled[k] = true
			} else if hc := s.held[k]; hc != nil && from == store.FromClient {
				// Held for approval: never forwarded, so the server
				// has nothing to cancel; the hold ends here.
				delete(s.held, k)
				ev.Call, ev.Tool, cancelled = hc.p.seq, hc.p.tool, hc.p
				defer hc.h.Cancel("the client cancelled the call")
			}
			s.mu.Unlock()
		}
	case "notifications/tools/list_changed":
		// The annotations we hold may be stale; the client's next tools/list
		// refreshes them.
		s.tools.forget()
	}
	if from == store.FromClient {
		s.fillAgent(ev)
	}
	if _, err := s.rec.Record(ev, false); err != nil {
		s.log.Warn("recording notification", "session", s.info.ID, "method", m.Method, "err", err)
	}
	if cancelled != nil {
		detail := "cancelled by its sender"
		if reason != "" {
			detail += ": " + reason
		}
		s.outcome(cancelled, from, store.OutcomeCancelled, nil, nil, detail)
	}
}

// response settles the call m answers. answerFirst: under a recorder that
// allows it, the outcome is left for Settle, after the answer is forwarded.
func (s *Session) response(from string, m *envelope.Message, answerFirst bool) error {
	// A response from X answers a request from the other side.
	reqFrom := store.FromClient
	if from == store.FromClient {
		reqFrom = store.FromServer
	}
	k := key(reqFrom, m.ID)
	s.mu.Lock()
	p := s.takeLocked(k)
	late := p == nil && s.cancelled[k]
	delete(s.cancelled, k)
	s.mu.Unlock()
	if late {
		// The answer to a cancelled call: its outcome is recorded, and the
		// sender ignores it.
		return nil
	}
	if p == nil {
		ev := s.event(store.KindBadInput, from, nil)
		ev.JSONRPCID = m.ID
		ev.Detail = "response to an unknown request id"
		ev.Result = s.redact(m.Result)
		ev.Error = m.Error
		s.rec.Record(ev, false)
		return nil
	}
	outcome := store.OutcomeOK
	detail := ""
	if len(m.Error) > 0 && string(m.Error) != "null" {
		outcome = store.OutcomeRPCError
		detail = errorDetail(m.Error)
	} else {
		outcome, detail = s.inspectResult(p, m.Result)
	}
	p.answered = true
	if answerFirst && s.answersFirst() {
		s.leave(&unsettled{p: p, reqFrom: reqFrom, outcome: outcome, result: m.Result, rpcErr: m.Error, detail: detail, answered: time.Now()})
		return nil
	}
	return s.outcome(p, reqFrom, outcome, m.Result, m.Error, detail)
}

// inspectResult reads what a successful response means: isError tool
// failures, MRTR continuations, and tool annotations from tools/list.
func (s *Session) inspectResult(p *pending, result json.RawMessage) (outcome, detail string) {
	if p.method == "tools/list" {
		s.tools.learn(result)
		return store.OutcomeOK, ""
	}
	if p.method == "initialize" {
		s.learnServer(result)
		return store.OutcomeOK, ""
	}
	if p.method == "server/discover" {
		s.learnServerFromMeta(result)
		return store.OutcomeOK, ""
	}
	if !mrtrMethods[p.method] {
		return store.OutcomeOK, ""
	}
	return s.callOutcome(p, result)
}

func (s *Session) badInput(from string, raw []byte, detail string) {
	ev := s.event(store.KindBadInput, from, nil)
	ev.Detail = detail
	ev.Size = len(raw)
	// Keep a bounded, redacted excerpt as a JSON string: enough to see what
	// arrived, never the whole of an oversized message.
	excerpt := raw
	if len(excerpt) > 512 {
		excerpt = excerpt[:512]
	}
	ev.Params = mustJSON(string(bytes.ToValidUTF8(excerpt, []byte("?"))))
	ev.Params = s.redact(ev.Params)
	if _, err := s.rec.Record(ev, false); err != nil {
		s.log.Warn("recording bad input", "session", s.info.ID, "err", err)
	}
}

// refuse records raw from the client as bad input and returns the JSON-RPC
// error for the client: for what the transport refuses before the Session
// sees it (a duplicate in-flight id, a batch without a session).
func (s *Session) refuse(raw []byte, id json.RawMessage, code int, detail string) []byte {
	s.badInput(store.FromClient, raw, detail)
	return errorResponse(id, code, "mcptrail: "+detail) // id: as the envelope read it, or nil
}

// errorResponse builds a JSON-RPC error response; a nil id is JSON null.
func errorResponse(id json.RawMessage, code int, msg string) []byte {
	if len(id) == 0 {
		id = json.RawMessage("null")
	}
	b, _ := json.Marshal(struct {
		JSONRPC string          `json:"jsonrpc"`
		ID      json.RawMessage `json:"id"`
		Error   jsonrpc.Error   `json:"error"`
	}{"2.0", id, jsonrpc.Error{Code: int64(code), Message: msg}})
	return b
}

func mustJSON(v any) json.RawMessage {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err) // only called with values that always marshal
	}
	return b
}

// errorDetail is an error response's "code message", for the record.
func errorDetail(rpcErr []byte) string {
	var code, msg []byte
	if len(rpcErr) > 0 && rpcErr[0] == '{' {
		rawjson.Members(rpcErr, func(k []byte, esc bool, v []byte) bool {
			switch rawjson.Key(k, esc) {
			case "code":
				code = v
			case "message":
				msg = v
			}
			return true
		})
	}
	text, _ := rawjson.StringValue(msg)
	return fmt.Sprintf("%s %s", code, text)
}
