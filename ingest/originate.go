package ingest

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/mcptrail/mcptrail/internal/rawjson"
	"github.com/mcptrail/mcptrail/store"
	"github.com/modelcontextprotocol/go-sdk/jsonrpc"
	"github.com/oklog/ulid/v2"
)

// Sessions the gateway originates: it is the client. Rollback runs its
// inverse calls in such a session — on a stdio server it starts (the
// command a serve upstream is configured with, or the one a wrap session
// recorded) or on a Streamable HTTP upstream — so that every message is
// recorded through a Session exactly as an agent's would be, and nothing
// reaches any agent.

// OriginOptions configure Originate.
type OriginOptions struct {
	// Info is the record's session; an empty ID gets a fresh one, and
	// Transport is set from the upstream.
	Info     SessionInfo
	Upstream Upstream // Command (a child of its own) or URL (Streamable HTTP)
	// Recorder records the session (session_start, initialize, every call,
	// session_end). Nil: nothing is recorded, for reads that change nothing
	// (a rollback plan re-reading the state it would restore).
	Recorder Recorder
	// Hooks: Redact and Classify apply; Capture does
	// not (the gateway does not capture its own calls).
	Hooks  Hooks
	Limits Limits
	Logger *slog.Logger
	Stderr io.Writer // the child's stderr (nil: discarded)
	// ClientName and ClientVersion are the clientInfo sent in initialize
	// (default mcptrail-rollback).
	ClientName, ClientVersion string
	// Roots answers the server's roots/list requests (a result object such
	// as the original client gave: {"roots":[...]}); nil: the client
	// declares no roots capability.
	Roots json.RawMessage
	// ProtocolVersion asked for in initialize (default 2025-06-18).
	ProtocolVersion string
	HTTPClient      *http.Client // for a URL upstream (default: http.DefaultClient)
}

// CallRecord says how a gateway-originated call is recorded.
type CallRecord struct {
	Kind          string // the request event's kind (default request); rollback uses rollback_step
	Reverts       uint64 // seq of the call this one reverts
	Authorization *store.Authorization
	Task          *store.Task
	Detail        string
}

// Origin is a session the gateway originated. Its methods are safe for
// concurrent use.
type Origin struct {
	opts OriginOptions
	sess *Session // nil when nothing is recorded
	log  *slog.Logger

	child *Child // stdio upstream
	http  *http.Client
	sid   string // Mcp-Session-Id of an HTTP upstream
	pv    string

	mu      sync.Mutex
	next    uint64
	waiting map[string]chan injected
	err     error
	done    chan struct{} // closed when the child's output ended
	wg      sync.WaitGroup
}

// Originate starts the upstream (a child process, or the first POST to an
// HTTP upstream), records the session's start and runs the initialize
// handshake. Close it when done.
func Originate(ctx context.Context, opts OriginOptions) (*Origin, error) {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.ClientName == "" {
		opts.ClientName, opts.ClientVersion = "mcptrail-rollback", "1"
	}
	if opts.ProtocolVersion == "" {
		opts.ProtocolVersion = "2025-06-18"
	}
	if opts.Limits.MaxMessageBytes <= 0 {
		opts.Limits.MaxMessageBytes = DefaultMaxMessageBytes
	}
	o := &Origin{opts: opts, log: opts.Logger, waiting: make(map[string]chan injected), done: make(chan struct{})}
	switch {
	case len(opts.Upstream.Command) > 0:
		opts.Info.Transport = "stdio"
	case opts.Upstream.URL != "":
		opts.Info.Transport = "http"
		o.http = opts.HTTPClient
		if o.http == nil {
			o.http = http.DefaultClient
		}
	default:
		return nil, errors.New("mcptrail: the upstream has neither a command nor a URL")
	}
	if opts.Info.ID == "" {
		opts.Info.ID = opts.Info.Upstream + "-" + ulid.MustNew(ulid.Timestamp(time.Now()), rand.Reader).String()
	}
	o.opts = opts
	if opts.Recorder != nil {
		h := Hooks{Redact: opts.Hooks.Redact, Classify: opts.Hooks.Classify}
		o.sess = NewSession(opts.Info, opts.Recorder, h, opts.Limits, opts.Logger)
	}
	if o.http == nil {
		child, err := StartChild(ChildOptions{Command: opts.Upstream.Command, Env: opts.Upstream.Env, Dir: opts.Upstream.Dir, Stderr: opts.Stderr, MaxMessageBytes: opts.Limits.MaxMessageBytes, GracePeriod: time.Second})
		if err != nil {
			return nil, err
		}
		o.child = child
		o.wg.Add(1)
		go o.readChild()
	} else {
		close(o.done)
	}
	if o.sess != nil {
		if err := o.sess.Start(); err != nil {
			o.stop()
			return nil, fmt.Errorf("recording the session start: %w", err)
		}
	}
	caps := map[string]any{}
	if opts.Roots != nil {
		caps["roots"] = map[string]any{"listChanged": false}
	}
	res, _, err := o.Call(ctx, "initialize", map[string]any{
		"protocolVersion": opts.ProtocolVersion,
		"capabilities":    caps,
		"clientInfo":      map[string]any{"name": opts.ClientName, "version": opts.ClientVersion},
	}, nil)
	if err != nil {
		o.Close("initialize failed: " + err.Error())
		return nil, fmt.Errorf("initialize: %w", err)
	}
	var ir struct {
		ProtocolVersion string `json:"protocolVersion"`
	}
	_ = json.Unmarshal(res, &ir)
	o.mu.Lock()
	o.pv = ir.ProtocolVersion
	o.mu.Unlock()
	if err := o.notify(ctx, "notifications/initialized", nil); err != nil {
		o.Close("initialized notification failed: " + err.Error())
		return nil, err
	}
	return o, nil
}

// SessionID is the record's id of this session.
func (o *Origin) SessionID() string { return o.opts.Info.ID }

// Call sends a request and returns its result (a JSON-RPC error response
// is an *RPCError) and the seq of its recorded request (0 when nothing is
// recorded). rec says how the request is recorded; nil records it as an
// ordinary request.
func (o *Origin) Call(ctx context.Context, method string, params any, rec *CallRecord) (json.RawMessage, uint64, error) {
	raw, err := marshalParams(params)
	if err != nil {
		return nil, 0, err
	}
	o.mu.Lock()
	if o.err != nil {
		o.mu.Unlock()
		return nil, 0, o.err
	}
	o.next++
	id := "mcptrail-origin-" + strconv.FormatUint(o.next, 10)
	ch := make(chan injected, 1)
	o.waiting[id] = ch
	o.mu.Unlock()
	msg, seq, err := o.outgoing(id, method, raw, rec)
	if err != nil {
		o.forget(id)
		return nil, 0, err
	}
	if err := o.send(id, msg); err != nil {
		o.forget(id)
		if o.sess != nil {
			o.sess.Fail(json.RawMessage(strconv.Quote(id)), store.OutcomeTransportError, "the upstream is not accepting input: "+err.Error())
		}
		return nil, seq, err
	}
	select {
	case r := <-ch:
		return r.result, seq, r.err
	case <-ctx.Done():
		o.forget(id)
		if o.sess != nil {
			o.sess.Fail(json.RawMessage(strconv.Quote(id)), store.OutcomeCancelled, "the gateway stopped waiting: "+ctx.Err().Error())
		}
		return nil, seq, ctx.Err()
	}
}

// outgoing records a request (when recording) and returns its bytes.
func (o *Origin) outgoing(id, method string, params json.RawMessage, rec *CallRecord) ([]byte, uint64, error) {
	if o.sess == nil {
		msg, err := requestBytes(id, method, params)
		return msg, 0, err
	}
	if rec != nil {
		return o.sess.originate(id, method, params, rec)
	}
	msg, err := requestBytes(id, method, params)
	if err != nil {
		return nil, 0, err
	}
	fwd, reply := o.sess.FromClient(msg, nil)
	if fwd == nil {
		return nil, 0, fmt.Errorf("mcptrail: the call was not made: %s", replyMessage(reply))
	}
	return fwd, 0, nil
}

func replyMessage(reply []byte) string {
	var r struct {
		Error *RPCError `json:"error"`
	}
	if json.Unmarshal(reply, &r) == nil && r.Error != nil {
		return r.Error.Message
	}
	return string(reply)
}

func (o *Origin) notify(ctx context.Context, method string, params any) error {
	raw, err := marshalParams(params)
	if err != nil {
		return err
	}
	m := map[string]any{"jsonrpc": "2.0", "method": method}
	if len(raw) > 0 {
		m["params"] = raw
	}
	msg, _ := json.Marshal(m)
	if o.sess != nil {
		if fwd, _ := o.sess.FromClient(msg, nil); fwd == nil {
			return errors.New("mcptrail: the notification could not be recorded")
		}
	}
	return o.send("", msg)
}

// send writes msg to the upstream. Over HTTP each message is a POST of its
// own, whose answer (a JSON body or a stream) is read in the background;
// a POST that fails fails the call with id.
func (o *Origin) send(id string, msg []byte) error {
	if o.child != nil {
		return o.child.Send(msg)
	}
	o.wg.Add(1)
	go func() {
		defer o.wg.Done()
		o.mu.Lock()
		sid, pv := o.sid, o.pv
		o.mu.Unlock()
		err := postMessage(context.Background(), o.http, o.opts.Upstream.URL, o.opts.Upstream.Headers, sid, pv, o.opts.Limits.MaxMessageBytes, msg, o.fromServer, func(s string) {
			o.mu.Lock()
			if o.sid == "" {
				o.sid = s
			}
			o.mu.Unlock()
		})
		if err != nil && id != "" {
			o.resolve(id, injected{err: err})
		}
	}()
	return nil
}

func (o *Origin) readChild() {
	defer o.wg.Done()
	for line := range o.child.Messages() {
		o.fromServer(line)
	}
	<-o.child.Done()
	o.fail(fmt.Errorf("%w (exit status %d)", ErrUpstreamClosed, o.child.ExitCode()))
	close(o.done)
}

// fromServer handles one message from the upstream: records it, resolves
// the call it answers, and answers the server's own requests.
func (o *Origin) fromServer(line []byte) {
	if o.sess != nil {
		if _, reply := o.sess.FromServer(line); reply != nil {
			_ = o.send("", reply)
		}
	}
	env, ok := readLine(line)
	if !ok {
		return
	}
	switch {
	case env.IsResponse():
		id, isString := rawjson.StringValue(env.ID)
		if !isString {
			return
		}
		r := injected{result: bytes.Clone(env.Result)}
		if e := rpcError(env.Error); e != nil {
			r.err = e
		}
		o.resolve(id, r)
	case env.IsRequest():
		o.answer(bytes.Clone(env.ID), env.Method)
	}
}

// answer replies to a server request: roots/list with the configured
// roots, ping, and method-not-found for anything else (no sampling or
// elicitation: there is no model and no person behind this client).
func (o *Origin) answer(id json.RawMessage, method string) {
	var reply []byte
	switch {
	case method == "roots/list" && o.opts.Roots != nil:
		reply, _ = json.Marshal(map[string]any{"jsonrpc": "2.0", "id": id, "result": o.opts.Roots})
	case method == "ping":
		reply, _ = json.Marshal(map[string]any{"jsonrpc": "2.0", "id": id, "result": map[string]any{}})
	default:
		reply = errorResponse(id, jsonrpc.CodeMethodNotFound, "mcptrail: the rollback client does not serve "+method)
	}
	if o.sess != nil {
		if fwd, _ := o.sess.FromClient(reply, nil); fwd == nil {
			return
		}
	}
	_ = o.send("", reply)
}

func (o *Origin) resolve(id string, r injected) {
	o.mu.Lock()
	ch := o.waiting[id]
	delete(o.waiting, id)
	o.mu.Unlock()
	if ch != nil {
		ch <- r
	}
}

func (o *Origin) forget(id string) {
	o.mu.Lock()
	delete(o.waiting, id)
	o.mu.Unlock()
}

func (o *Origin) fail(err error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.err == nil {
		o.err = err
	}
	for id, ch := range o.waiting {
		ch <- injected{err: err}
		delete(o.waiting, id)
	}
}

// Close ends the session: its end is recorded with detail, the child is
// stopped (stdin closed, then signals) or the HTTP session deleted.
func (o *Origin) Close(detail string) error {
	o.fail(ErrUpstreamClosed)
	o.stop()
	if o.sess != nil {
		o.sess.Close(store.OutcomeUnknown, detail)
	}
	return nil
}

func (o *Origin) stop() {
	o.mu.Lock()
	sid := o.sid
	o.mu.Unlock()
	if o.child != nil {
		o.child.Close()
		<-o.done
	} else if sid != "" {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		req, err := http.NewRequestWithContext(ctx, http.MethodDelete, o.opts.Upstream.URL, nil)
		if err == nil {
			for k, v := range o.opts.Upstream.Headers {
				req.Header.Set(k, v)
			}
			req.Header.Set(hdrSessionID, sid)
			if resp, err := o.http.Do(req); err == nil {
				resp.Body.Close()
			}
		}
		cancel()
	}
	o.wg.Wait()
}

// originate records a request the gateway makes on its own behalf, as rec
// says, and returns its bytes; its response is recorded as its outcome by
// FromServer like any other.
func (s *Session) originate(id, method string, params json.RawMessage, rec *CallRecord) ([]byte, uint64, error) {
	msg, err := requestBytes(id, method, params)
	if err != nil {
		return nil, 0, err
	}
	kind := rec.Kind
	if kind == "" {
		kind = store.KindRequest
	}
	ev := s.event(kind, store.FromClient, nil)
	ev.Method = method
	ev.JSONRPCID = json.RawMessage(strconv.Quote(id))
	ev.Size = len(msg)
	ev.Params = s.redact(params)
	ev.Reverts, ev.Authorization, ev.Detail = rec.Reverts, rec.Authorization, rec.Detail
	if rec.Task != nil {
		ev.Task = rec.Task
	}
	if method == "tools/call" {
		var p struct {
			Name string `json:"name"`
		}
		_ = json.Unmarshal(params, &p)
		s.describeToolCall(ev, p.Name)
	}
	p := &pending{start: time.Now(), method: method, id: ev.JSONRPCID, tool: ev.Tool, class: ev.Class, classSource: ev.ClassSource, ann: ev.Annotations,
		task: ev.Task, agent: ev.Agent, prin: ev.Principal, obo: ev.OnBehalfOf, reverts: rec.Reverts, auth: rec.Authorization}
	seq, err := s.rec.Record(ev, true)
	if err != nil {
		return nil, 0, fmt.Errorf("mcptrail: the audit record could not be written, so the call was not made: %w", err)
	}
	p.seq, p.logical = seq, seq
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, seq, ErrUpstreamClosed
	}
	s.pending[key(store.FromClient, ev.JSONRPCID)] = p
	return msg, seq, nil
}
