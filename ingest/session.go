// Package ingest is mcptrail's gateway: it relays MCP messages between an
// agent and its servers, over stdio or Streamable HTTP, and records each one
// before it is forwarded.
//
// The pumps (stdio.go, http*.go) move bytes and stay dumb; a Session decides
// what every message means — request, outcome, notification, bad input — and
// records it through a Recorder. Redaction, classification and pre-state capture are
// Hooks, so ingest never imports the packages that implement them.
package ingest

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/mcptrail/mcptrail/ingest/envelope"
	"github.com/mcptrail/mcptrail/ingest/identity"
	"github.com/mcptrail/mcptrail/internal/rawjson"
	"github.com/mcptrail/mcptrail/store"
	"github.com/modelcontextprotocol/go-sdk/jsonrpc"
)

// Recorder takes the gateway's events. In the daemon it appends to the store;
// in `mcptrail wrap` it sends them over the daemon's socket.
type Recorder interface {
	// Record appends ev and sets ev.Seq. With durable set, under strict
	// durability, it returns only once the event will outlive a crash: a
	// request synced to disk before it is forwarded; the outcome of an
	// answered call (KindCall) written to the store's log before the answer
	// is forwarded, which a crash of the daemon cannot undo (its sync rides
	// the next request's). Otherwise it may return as soon as the event has
	// its place in the sequence.
	Record(ev *store.Event, durable bool) (uint64, error)
}

// Hooks change what the gateway does with a call without touching the pumps.
// Every field may be nil.
type Hooks struct {
	// Redact removes secrets from params and results before they are recorded.
	Redact func(json.RawMessage) json.RawMessage
	// Classify names a tool call's class (read, write, delete, unknown) from
	// the upstream's name and the name the server reports (serverInfo), as
	// Capture looks its rule up. It wins over the server's annotations,
	// which are only hints.
	Classify func(upstream, serverName, tool string, ann *store.Annotations) string
	// Capture runs after a client's tools/call is recorded and before it is
	// forwarded, with the session's upstream connection (inject.go) for
	// reads of the state the call will change. It may set ev.Prestate, which
	// the call's outcome event then carries. An error refuses the call: the
	// client gets a JSON-RPC error and the call's outcome is "denied".
	Capture func(ev *store.Event, up Conn) error
	// Approve runs after Capture, for a client's tools/call: nil lets the
	// call go on (no approval rule holds it, which must cost next to
	// nothing); a Hold keeps the call from the server until it is decided.
	// params are the call's params as sent (not redacted): what an
	// approval binds to. ev is the recorded request (seq set).
	Approve func(ev *store.Event, params json.RawMessage, serverName string) Hold
}

// Hold is a call an approval rule holds (Hooks.Approve).
type Hold interface {
	// Wait blocks until the call is decided: an authorization when it is
	// approved, else an error whose text the client reads ("denied by
	// SHA256:… at 03:12:00Z: reason").
	Wait() (*store.Authorization, error)
	// Cancel ends the hold because the session ended or the client
	// cancelled the call: it is refused and never forwarded; Wait returns.
	Cancel(reason string)
}

// codeApprovalDenied is the JSON-RPC error code of a call that an
// approval rule held and that was denied, expired or refused.
const codeApprovalDenied = -32003

// SessionInfo is what the gateway knows about a session before any message.
type SessionInfo struct {
	ID         string
	Upstream   string
	Transport  string // stdio or http
	Agent      store.Agent
	Principal  *store.Principal
	OnBehalfOf string
	Task       *store.Task
	// StartParams are recorded as the session_start event's params (wrap:
	// the server's command line, so a rollback can start it again).
	StartParams json.RawMessage
}

// Overrides carry per-message identity that only the transport knows, such
// as an HTTP request's bearer token and task header.
type Overrides struct {
	Principal  *store.Principal
	Agent      *store.Agent
	OnBehalfOf string
	Task       *store.Task
}

// Limits bound what one message may cost.
type Limits struct {
	MaxMessageBytes int // larger messages are refused as bad input
	// MaxDepth bounds the nesting of arrays and objects in a message;
	// deeper messages are refused as bad input (envelope.DefaultMaxDepth
	// when zero).
	MaxDepth int
	// CallTimeout ends a client request the server leaves unanswered: the
	// call's outcome is timeout, the client gets an error and the server a
	// cancellation. Zero waits as long as the client does.
	CallTimeout time.Duration
}

// codeRequestTimeout is the JSON-RPC error code MCP SDKs use for a request
// that timed out.
const codeRequestTimeout = -32001

// DefaultMaxMessageBytes bounds one message when the config says nothing.
const DefaultMaxMessageBytes = 4 << 20

// pending is a request awaiting its response.
type pending struct {
	seq         uint64
	logical     uint64
	start       time.Time
	method      string
	tool        string
	target      string // tool name, prompt name or resource URI: what an MRTR retry repeats
	class       string
	classSource string // store.ClassSource*: where class came from
	ann         *store.Annotations
	id          json.RawMessage
	task        *store.Task
	agent       *store.Agent
	prin        *store.Principal
	obo         string

	// Carried to the outcome: the pre-state a Capture hook stored, and
	// what a gateway-originated call (inject.go) says about itself.
	prestate string
	reverts  uint64
	auth     *store.Authorization

	timer *time.Timer // CallTimeout's, stopped when the call settles

	// answered: the peer's answer is forwarded once this call's outcome is
	// recorded durably (committed, in strict mode), so that a crash after
	// the client has its answer cannot leave the call "unknown".
	answered bool
}

// Session is the state of one MCP session between one client and one
// upstream server: it correlates requests with their responses (per sender
// and JSON-RPC id), remembers tool annotations from tools/list, and turns
// every message into events. FromClient and FromServer may be called
// concurrently.
type Session struct {
	info   SessionInfo
	rec    Recorder
	hooks  Hooks
	limits Limits
	log    *slog.Logger

	mu              sync.Mutex
	pending         map[string]*pending // key: sender + NUL + raw id
	tools           map[string]*store.Annotations
	requestState    map[string]uint64 // MRTR: requestState → seq of the first request of the logical call
	awaitingInput   map[string]uint64 // MRTR: method + target → logical call waiting for the client's input
	clientName      string
	clientVersion   string
	protocolVersion string
	negotiated      string                  // the protocol version of the initialize result: whether batches exist
	serverName      string                  // serverInfo.name of the initialize result
	upstream        caller                  // the transport's way to originate calls (inject.go); nil: none
	expired         func(id, reply []byte)  // the transport's way to end a timed-out call (see onTimeout)
	cancelled       map[string]bool         // calls settled by their sender's cancellation, until the late answer comes
	held            map[string]*heldCall    // client calls an approval rule holds (approve.go), by key
	heldWatch       map[string]func(uint64) // by key: who learns that the call is held (whileHeld)
	withdrawn       map[string]struct{}     // by key: calls whose request closed before they were held (whileHeld)
	release         func(fwd, reply []byte) // the transport's way to send a call released later (onRelease); nil: holds block FromClient
	nextOrigin      uint64
	started         bool
	closed          bool
	released        func() // set before use: runs once the session has ended (the gateway's session caps)
}

// NewSession starts tracking a session. Call Start to record its beginning.
func NewSession(info SessionInfo, rec Recorder, hooks Hooks, limits Limits, log *slog.Logger) *Session {
	if limits.MaxMessageBytes <= 0 {
		limits.MaxMessageBytes = DefaultMaxMessageBytes
	}
	if limits.MaxDepth <= 0 {
		limits.MaxDepth = envelope.DefaultMaxDepth
	}
	if log == nil {
		log = slog.Default()
	}
	return &Session{
		info:          info,
		rec:           rec,
		hooks:         hooks,
		limits:        limits,
		log:           log,
		pending:       make(map[string]*pending),
		tools:         make(map[string]*store.Annotations),
		requestState:  make(map[string]uint64),
		awaitingInput: make(map[string]uint64),
		cancelled:     make(map[string]bool),
		held:          make(map[string]*heldCall),
		heldWatch:     make(map[string]func(uint64)),
		withdrawn:     make(map[string]struct{}),
	}
}

// onTimeout enables CallTimeout: deliver gets a timed-out client request's
// id and the error response for the client, and must send both the reply
// and a cancellation (cancelNotification) on their ways. A transport that
// cannot do that leaves it unset, and its calls wait for the client.
func (s *Session) onTimeout(deliver func(id, reply []byte)) {
	s.mu.Lock()
	s.expired = deliver
	s.mu.Unlock()
}

// take removes a pending call and stops its timer; nil when it is not
// pending (answered, failed, timed out or cancelled meanwhile).
func (s *Session) take(k string) *pending {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.takeLocked(k)
}

func (s *Session) takeLocked(k string) *pending {
	p := s.pending[k]
	if p == nil {
		return nil
	}
	delete(s.pending, k)
	if p.timer != nil {
		p.timer.Stop()
	}
	return p
}

// timeout settles a call its server did not answer within CallTimeout.
func (s *Session) timeout(k string) {
	s.mu.Lock()
	p := s.takeLocked(k)
	deliver := s.expired
	s.mu.Unlock()
	if p == nil {
		return
	}
	detail := fmt.Sprintf("the server did not answer within %s; the gateway cancelled the call", s.limits.CallTimeout)
	s.outcome(p, store.FromClient, store.OutcomeTimeout, nil, mustJSON(map[string]any{"code": codeRequestTimeout, "message": detail}), detail)
	deliver(p.id, errorResponse(p.id, codeRequestTimeout, "mcptrail: "+detail))
}

// timeoutReason is the reason a timed-out call's cancellation gives.
const timeoutReason = "mcptrail: the call timed out"

// cancelNotification is what tells a server that the gateway gave up on
// the request it knows by id.
func cancelNotification(id json.RawMessage, reason string) []byte {
	return mustJSON(map[string]any{
		"jsonrpc": "2.0",
		"method":  "notifications/cancelled",
		"params":  map[string]any{"requestId": id, "reason": reason},
	})
}

// ID is the session's gateway id.
func (s *Session) ID() string { return s.info.ID }

// Info returns the session's identity as currently known.
func (s *Session) Info() SessionInfo {
	s.mu.Lock()
	defer s.mu.Unlock()
	info := s.info
	info.Agent.ClientName, info.Agent.ClientVersion = s.clientName, s.clientVersion
	return info
}

// Start records the session_start event.
func (s *Session) Start() error {
	s.mu.Lock()
	if s.started {
		s.mu.Unlock()
		return nil
	}
	s.started = true
	s.mu.Unlock()
	ev := s.event(store.KindSessionStart, "", nil)
	ev.Params = s.redact(s.info.StartParams)
	_, err := s.rec.Record(ev, true)
	return err
}

// FromClient handles one message (or JSON-RPC batch) from the client. It
// returns what to forward to the server (nil: nothing) and what to send back
// to the client instead (nil: nothing), e.g. an error for bad input or a
// refused call. ov may be nil.
func (s *Session) FromClient(raw []byte, ov *Overrides) (forward, reply []byte) {
	return s.handle(store.FromClient, raw, ov)
}

// FromServer handles one message from the server; forward goes to the
// client, reply back to the server.
func (s *Session) FromServer(raw []byte) (forward, reply []byte) {
	return s.handle(store.FromServer, raw, nil)
}

func (s *Session) handle(from string, raw []byte, ov *Overrides) (forward, reply []byte) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 {
		return nil, nil
	}
	if len(raw) > s.limits.MaxMessageBytes {
		s.badInput(from, raw, fmt.Sprintf("message of %d bytes exceeds the %d-byte limit", len(raw), s.limits.MaxMessageBytes))
		return nil, errorResponse(nil, jsonrpc.CodeInvalidRequest, "mcptrail: message too large")
	}
	if err := envelope.Check(raw, s.limits.MaxDepth); err != nil {
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
	if raw[0] == '[' {
		return s.handleBatch(from, raw, ov)
	}
	// A refused message (err) comes back with no forward, only the reply.
	forward, reply, _ = s.handleOne(from, raw, ov, false)
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
func (s *Session) handleBatch(from string, raw []byte, ov *Overrides) (forward, reply []byte) {
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
	elems := envelope.Elements(raw)
	if len(elems) == 0 {
		s.badInput(from, raw, "empty batch")
		return nil, errorResponse(nil, jsonrpc.CodeInvalidRequest, "mcptrail: empty batch")
	}
	var replies []json.RawMessage
	refused := false
	for _, e := range elems {
		_, rep, err := s.handleOne(from, e, ov, true)
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

// handleOne records one message that envelope.Check accepted. A non-nil
// error means it must not be forwarded; reply then says why (for a
// request) or is nil. inBatch: raw is an element of a batch, which is
// forwarded whole, so a held call in it blocks until decided.
func (s *Session) handleOne(from string, raw []byte, ov *Overrides, inBatch bool) (forward, reply []byte, err error) {
	m, perr := envelope.Parse(raw)
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
		return s.request(from, raw, &m, ov, inBatch)
	case m.IsNotification():
		s.notification(from, &m, ov)
	default:
		if err := s.response(from, &m); err != nil {
			// The answer goes on only once its outcome is recorded: its
			// receiver gets an error in its place (the call did run).
			return errorResponse(m.ID, jsonrpc.CodeInternalError, "mcptrail: the answer could not be recorded, so it is withheld: "+err.Error()), nil, nil
		}
	}
	return raw, nil, nil
}

func key(from string, id json.RawMessage) string { return from + "\x00" + string(id) }

func (s *Session) request(from string, raw []byte, m *envelope.Message, ov *Overrides, inBatch bool) ([]byte, []byte, error) {
	ev := s.event(store.KindRequest, from, ov)
	ev.Method = m.Method
	// The id outlives raw, whose buffer the transport reuses for the next
	// message: the outcome, recorded later, repeats it.
	id := json.RawMessage(bytes.Clone(m.ID))
	ev.JSONRPCID = id
	ev.Size = len(raw)
	ev.Params = s.redact(m.Params)
	p := &pending{start: time.Now(), method: m.Method, id: id}
	if from == store.FromClient {
		var meta identity.Meta
		if m.Meta != nil {
			meta = identity.ParseMeta(m.Meta)
		}
		s.learnClient(m)
		if t := meta.Task(); t != nil {
			ev.Task = identity.MergeTask(ev.Task, t)
		}
		if obo := meta.OnBehalfOf(); obo != "" && ev.OnBehalfOf == "" {
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
			return s.hold(p, h, raw, inBatch) // approve.go
		}
	}
	if reply := s.admit(p, from); reply != nil {
		return nil, reply, errRefused
	}
	return raw, nil, nil
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
	if from == store.FromClient && s.limits.CallTimeout > 0 && s.expired != nil {
		p.timer = time.AfterFunc(s.limits.CallTimeout, func() { s.timeout(k) })
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
	if name != "" {
		s.clientName, s.clientVersion = name, version
	}
	if pv != "" {
		s.protocolVersion = pv
	}
	s.mu.Unlock()
}

// mrtrMethods are the requests a 2026-07-28 server may answer with
// input_required, continued by a retry under a new id.
var mrtrMethods = map[string]bool{"tools/call": true, "prompts/get": true, "resources/read": true}

// continuation returns what the request names (tool, prompt or resource) and
// links an MRTR retry to the logical call it continues: by its requestState,
// or, when the server keeps no state, by the same method and target still
// awaiting input.
func (s *Session) continuation(ev *store.Event, m *envelope.Message) (target string) {
	if !mrtrMethods[ev.Method] {
		return ""
	}
	target = m.Name + m.URI
	s.mu.Lock()
	defer s.mu.Unlock()
	if m.RequestState != "" {
		ev.LogicalCall = s.requestState[m.RequestState]
	}
	if ev.LogicalCall == 0 && (m.RequestState != "" || len(m.InputResponses) > 0) {
		ev.LogicalCall = s.awaitingInput[ev.Method+"\x00"+target]
	}
	return target
}

// describeToolCall fills a tools/call's tool name, annotations and class.
func (s *Session) describeToolCall(ev *store.Event, tool string) {
	ev.Tool = tool
	s.mu.Lock()
	ev.Annotations = s.tools[tool]
	s.mu.Unlock()
	ev.Class, ev.ClassSource = s.classify(tool, ev.Annotations)
}

func (s *Session) classify(tool string, ann *store.Annotations) (class, source string) {
	if s.hooks.Classify != nil {
		if c := s.hooks.Classify(s.info.Upstream, s.ServerName(), tool, ann); c != "" {
			return c, store.ClassSourceRule
		}
	}
	return ClassFromAnnotations(ann)
}

// ClassFromAnnotations derives a class, and where it came from, from tool
// hints: read-only tools read, others write (destructive or not: without a
// rule we cannot tell a delete). A tool without a readOnlyHint is not
// read-only by the MCP specification's default, so it writes: an agent's
// server cannot keep its calls out of the write detections by saying
// nothing about them.
func ClassFromAnnotations(ann *store.Annotations) (class, source string) {
	if ann == nil || ann.ReadOnly == nil {
		return "write", store.ClassSourceSpecDefault
	}
	if *ann.ReadOnly {
		return "read", store.ClassSourceAnnotations
	}
	return "write", store.ClassSourceAnnotations
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
		s.mu.Lock()
		clear(s.tools)
		s.mu.Unlock()
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

func (s *Session) response(from string, m *envelope.Message) error {
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
	return s.outcome(p, reqFrom, outcome, m.Result, m.Error, detail)
}

// inspectResult reads what a successful response means: isError tool
// failures, MRTR continuations, and tool annotations from tools/list.
func (s *Session) inspectResult(p *pending, result json.RawMessage) (outcome, detail string) {
	if p.method == "tools/list" {
		s.learnTools(result)
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
	waitKey := p.method + "\x00" + p.target
	s.mu.Lock()
	defer s.mu.Unlock()
	if r.ResultType == "input_required" {
		if r.RequestState != "" {
			s.requestState[r.RequestState] = p.logical
		}
		s.awaitingInput[waitKey] = p.logical
		return store.OutcomeInputRequired, "server asked the client for input; the call continues under a new id"
	}
	if s.awaitingInput[waitKey] == p.logical {
		delete(s.awaitingInput, waitKey)
	}
	if r.IsError {
		return store.OutcomeToolError, ""
	}
	return store.OutcomeOK, ""
}

func (s *Session) learnTools(result json.RawMessage) {
	var r struct {
		Tools []struct {
			Name        string `json:"name"`
			Annotations *struct {
				ReadOnly    *bool `json:"readOnlyHint"`
				Destructive *bool `json:"destructiveHint"`
				Idempotent  *bool `json:"idempotentHint"`
				OpenWorld   *bool `json:"openWorldHint"`
			} `json:"annotations"`
		} `json:"tools"`
	}
	if json.Unmarshal(result, &r) != nil {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, t := range r.Tools {
		if t.Annotations == nil {
			s.tools[t.Name] = &store.Annotations{}
			continue
		}
		a := t.Annotations
		s.tools[t.Name] = &store.Annotations{ReadOnly: a.ReadOnly, Destructive: a.Destructive, Idempotent: a.Idempotent, OpenWorld: a.OpenWorld}
	}
}

// outcome records the end of a call, repeating its request's identity so the
// line stands alone in a SIEM.
func (s *Session) outcome(p *pending, reqFrom, outcome string, result, rpcErr json.RawMessage, detail string) error {
	ev := s.event(store.KindCall, reqFrom, nil)
	ev.Call = p.seq
	if p.logical != p.seq {
		ev.LogicalCall = p.logical
	}
	ev.Method, ev.Tool, ev.Class, ev.ClassSource, ev.Annotations = p.method, p.tool, p.class, p.classSource, p.ann
	ev.JSONRPCID = p.id
	ev.Outcome = outcome
	ev.Result = s.redact(result)
	ev.Error = rpcErr
	ev.Detail = detail
	ev.DurationNS = time.Since(p.start).Nanoseconds()
	ev.Prestate, ev.Reverts, ev.Authorization = p.prestate, p.reverts, p.auth
	if p.agent != nil {
		ev.Agent = p.agent
	}
	if p.prin != nil {
		ev.Principal = p.prin
	}
	if p.task != nil {
		ev.Task = p.task
	}
	if p.obo != "" {
		ev.OnBehalfOf = p.obo
	}
	_, err := s.rec.Record(ev, p.answered)
	if err != nil {
		s.log.Warn("recording outcome", "session", s.info.ID, "call", p.seq, "err", err)
	}
	return err
}

// Close ends the session: every call still waiting gets an outcome (outcome
// names why: transport_error when the upstream failed, unknown when the
// gateway is going away), and the client gets an error response for each of
// its pending requests, which the caller should deliver if it still can.
func (s *Session) Close(outcome, detail string) (clientReplies [][]byte) {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	var ps []*pending
	var froms []string
	for k, p := range s.pending {
		if p.timer != nil {
			p.timer.Stop()
		}
		ps = append(ps, p)
		froms = append(froms, k[:bytes.IndexByte([]byte(k), 0)])
	}
	clear(s.pending)
	held := s.held
	s.held = map[string]*heldCall{}
	s.mu.Unlock()
	for _, hc := range held {
		// Held for approval: refused, never forwarded.
		hc.h.Cancel("the session ended")
		s.outcome(hc.p, store.FromClient, store.OutcomeDenied, nil, nil, "the session ended while the call waited for approval")
		clientReplies = append(clientReplies, errorResponse(hc.p.id, codeApprovalDenied, "mcptrail: the session ended while the call waited for approval"))
	}
	for i, p := range ps {
		s.outcome(p, froms[i], outcome, nil, nil, detail)
		if froms[i] == store.FromClient {
			clientReplies = append(clientReplies, errorResponse(p.id, jsonrpc.CodeInternalError, "mcptrail: "+detail))
		}
	}
	ev := s.event(store.KindSessionEnd, "", nil)
	ev.Detail = detail
	if _, err := s.rec.Record(ev, false); err != nil {
		s.log.Warn("recording session end", "session", s.info.ID, "err", err)
	}
	if s.released != nil {
		s.released()
	}
	return clientReplies
}

// Pending reports how many calls await a response.
func (s *Session) Pending() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.pending)
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

// event starts an event with the session's identity.
func (s *Session) event(kind, from string, ov *Overrides) *store.Event {
	s.mu.Lock()
	info := s.info
	pv := s.protocolVersion
	s.mu.Unlock()
	ev := &store.Event{
		Kind:            kind,
		Session:         info.ID,
		Upstream:        info.Upstream,
		Transport:       info.Transport,
		ProtocolVersion: pv,
		From:            from,
		Principal:       info.Principal,
		OnBehalfOf:      info.OnBehalfOf,
		Task:            info.Task,
	}
	if info.Agent != (store.Agent{}) {
		a := info.Agent
		ev.Agent = &a
	}
	if ov != nil {
		if ov.Principal != nil {
			ev.Principal = ov.Principal
		}
		if ov.Agent != nil {
			ev.Agent = ov.Agent
		}
		if ov.OnBehalfOf != "" {
			ev.OnBehalfOf = ov.OnBehalfOf
		}
		ev.Task = identity.MergeTask(ev.Task, ov.Task)
	}
	s.fillAgent(ev)
	return ev
}

// fillAgent adds what the client claims (clientInfo) to the agent.
func (s *Session) fillAgent(ev *store.Event) {
	s.mu.Lock()
	name, version := s.clientName, s.clientVersion
	s.mu.Unlock()
	if name == "" {
		return
	}
	a := store.Agent{}
	if ev.Agent != nil {
		a = *ev.Agent
	}
	a.ClientName, a.ClientVersion = name, version
	if a.Name == "" {
		a.Name = name
	}
	ev.Agent = &a
}

func (s *Session) redact(raw json.RawMessage) json.RawMessage {
	if len(raw) == 0 || s.hooks.Redact == nil {
		return raw
	}
	return s.hooks.Redact(raw)
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

// Fail ends one pending client request that will get no response from the
// server — the upstream could not be reached, its stream broke, the client
// closed a 2026-07-28 stream (cancelled) — recording the outcome. It returns
// the JSON-RPC error response to give the client, or nil when the request is
// not pending (it was answered, or the session closed).
//
// Added for the HTTP gateway, where one POST can fail while its session
// lives on; Close remains the way to end a whole session.
func (s *Session) Fail(id json.RawMessage, outcome, detail string) []byte {
	p := s.take(key(store.FromClient, id))
	if p == nil {
		return nil
	}
	s.outcome(p, store.FromClient, outcome, nil, nil, detail)
	return errorResponse(p.id, jsonrpc.CodeInternalError, "mcptrail: "+detail)
}

// refuse records raw from the client as bad input and returns the JSON-RPC
// error for the client: for what the transport refuses before the Session
// sees it (a duplicate in-flight id, a batch without a session).
func (s *Session) refuse(raw []byte, id json.RawMessage, code int, detail string) []byte {
	s.badInput(store.FromClient, raw, detail)
	return errorResponse(id, code, "mcptrail: "+detail) // id: as the envelope read it, or nil
}

// refusedAnswer settles the client's call that a refused server message
// answered (its id read, the rest refused): the call's outcome is an
// error, and the client gets one in place of the answer instead of
// waiting for one that will never come. nil when no such call is pending.
func (s *Session) refusedAnswer(id []byte, reason string) []byte {
	p := s.take(key(store.FromClient, id))
	if p == nil {
		return nil
	}
	detail := "the server's answer was refused: " + reason
	s.outcome(p, store.FromClient, store.OutcomeRPCError, nil, nil, detail)
	return errorResponse(p.id, jsonrpc.CodeInternalError, "mcptrail: "+detail)
}

// isClosed reports whether Close has run. A request recorded while Close
// ran may still become pending afterwards; the transport checks this after
// FromClient so such a request is settled (Fail) instead of forwarded.
func (s *Session) isClosed() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closed
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
