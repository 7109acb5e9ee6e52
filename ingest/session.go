package ingest

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"sync"
	"time"

	"github.com/mcptrail/mcptrail/ingest/envelope"
	"github.com/mcptrail/mcptrail/ingest/identity"
	"github.com/mcptrail/mcptrail/store"
	"github.com/modelcontextprotocol/go-sdk/jsonrpc"
)

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
	idBuf       [16]byte // id's bytes when they fit: the SDKs number their requests
	task        *store.Task
	agent       *store.Agent
	prin        *store.Principal
	obo         string

	// Carried to the outcome: the pre-state a Capture hook stored, and
	// what a gateway-originated call (Session.Call) says about itself.
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
	tools           toolAnnotations
	logical         *logicalCalls // MRTR retries → the calls they continue
	clientName      string
	clientVersion   string
	agent           *store.Agent // info.Agent with the client's claims, shared by every event that names no agent of its own
	protocolVersion string
	negotiated      string                  // the protocol version of the initialize result: whether batches exist
	serverName      string                  // serverInfo.name of the initialize result
	upstream        caller                  // the transport's way to originate calls (Session.Call); nil: none
	expired         func(id, reply []byte)  // the transport's way to end a timed-out call (see onTimeout)
	cancelled       map[string]bool         // calls settled by their sender's cancellation, until the late answer comes
	held            map[string]*heldCall    // client calls an approval rule holds (Session.hold), by key
	heldWatch       map[string]func(uint64) // by key: who learns that the call is held (whileHeld)
	withdrawn       map[string]struct{}     // by key: calls whose request closed before they were held (whileHeld)
	release         func(fwd, reply []byte) // the transport's way to send a call released later (onRelease); nil: holds block FromClient
	nextOrigin      uint64
	started         bool
	closed          bool
	released        func() // set before use: runs once the session has ended (the gateway's session caps)

	// settleMu guards later, an answered call's outcome left to record
	// after its answer (FromServerAnswerFirst), and is held while it is
	// recorded, so that what comes after the answer is recorded after it.
	settleMu sync.Mutex
	later    *unsettled
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
		info:      info,
		agent:     sessionAgent(info.Agent, "", ""),
		rec:       rec,
		hooks:     hooks,
		limits:    limits,
		log:       log,
		pending:   make(map[string]*pending),
		tools:     toolAnnotations{m: make(map[string]*store.Annotations)},
		logical:   newLogicalCalls(),
		cancelled: make(map[string]bool),
		held:      make(map[string]*heldCall),
		heldWatch: make(map[string]func(uint64)),
		withdrawn: make(map[string]struct{}),
	}
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
	again := s.started
	s.started = true
	s.mu.Unlock()
	if again {
		return nil
	}
	ev := s.event(store.KindSessionStart, "", nil)
	ev.Params = s.redact(s.info.StartParams)
	_, err := s.rec.Record(ev, true)
	return err
}

// outcome records the end of a call, repeating its request's identity so the
// line stands alone in a SIEM.
func (s *Session) outcome(p *pending, reqFrom, outcome string, result, rpcErr json.RawMessage, detail string) error {
	return s.recordOutcome(p, reqFrom, outcome, result, rpcErr, detail, time.Now())
}

// recordOutcome is outcome of a call that ended at end.
func (s *Session) recordOutcome(p *pending, reqFrom, outcome string, result, rpcErr json.RawMessage, detail string, end time.Time) error {
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
	ev.DurationNS = end.Sub(p.start).Nanoseconds()
	ev.Prestate, ev.Reverts, ev.Authorization = p.prestate, p.reverts, p.auth
	override(ev, p.prin, p.agent, p.obo)
	if p.task != nil {
		ev.Task = p.task
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
	s.Settle()
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

// event starts an event with the session's identity.
func (s *Session) event(kind, from string, ov *Overrides) *store.Event {
	s.mu.Lock()
	info := s.info
	pv := s.protocolVersion
	name, version := s.clientName, s.clientVersion
	agent := s.agent
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
	// The agent: the message's, else the session's, with what the client
	// claims (clientInfo) added. The session's is built when the client
	// says who it is, and shared: a copy of it, and another with the
	// client's name (fillAgent), were two allocations on every event of
	// a session whose client said who it is, which is all of them.
	ev.Agent = agent
	if ov != nil {
		override(ev, ov.Principal, nil, ov.OnBehalfOf)
		ev.Task = identity.MergeTask(ev.Task, ov.Task)
		if ov.Agent != nil {
			ev.Agent = ov.Agent
			if name != "" {
				own := *ov.Agent
				withClient(&own, name, version)
				ev.Agent = &own
			}
		}
	}
	return ev
}

// sessionAgent is the agent of a session's events: its own, with what the
// client claims added; nil when there is neither.
func sessionAgent(a store.Agent, name, version string) *store.Agent {
	if name != "" {
		withClient(&a, name, version)
	}
	if a == (store.Agent{}) {
		return nil
	}
	return &a
}

// fillAgent adds what the client claims (clientInfo) to the agent, when
// the client said who it is after the event was started.
func (s *Session) fillAgent(ev *store.Event) {
	s.mu.Lock()
	name, version := s.clientName, s.clientVersion
	s.mu.Unlock()
	if name == "" {
		return
	}
	if ev.Agent != nil && ev.Agent.ClientName == name && ev.Agent.ClientVersion == version && ev.Agent.Name != "" {
		return // as it would be made: event added this clientInfo already
	}
	a := store.Agent{}
	if ev.Agent != nil {
		a = *ev.Agent
	}
	withClient(&a, name, version)
	ev.Agent = &a
}

// withClient adds the client's claimed name and version to a; the name
// stands for the agent's when nothing else names it.
func withClient(a *store.Agent, name, version string) {
	a.ClientName, a.ClientVersion = name, version
	if a.Name == "" {
		a.Name = name
	}
}

func (s *Session) redact(raw json.RawMessage) json.RawMessage {
	if len(raw) == 0 || s.hooks.Redact == nil {
		return raw
	}
	return s.hooks.Redact(raw)
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

// override puts the identity a message (or its call) carries over the
// session's: what is set wins.
func override(ev *store.Event, prin *store.Principal, agent *store.Agent, obo string) {
	if prin != nil {
		ev.Principal = prin
	}
	if agent != nil {
		ev.Agent = agent
	}
	if obo != "" {
		ev.OnBehalfOf = obo
	}
}
