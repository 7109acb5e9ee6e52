package ingest

// Calls the gateway itself makes on a session's upstream connection.
//
// Rollback needs two things of the gateway that no client asks for: a read
// of the state a write is about to change, made on the same connection
// just before the write is forwarded (pre-state capture, Hooks.Capture),
// and whole sessions of its own to run inverse calls (Originate).
//
// Contract of an injected call (Conn.Call):
//   - it goes to the server on the connection the session's client uses
//     (the wrap's child, the HTTP session's child, or the Streamable HTTP
//     upstream under the session's Mcp-Session-Id), under a JSON-RPC id of
//     the gateway's own ("mcptrail-" + a random prefix + a counter) that no
//     client id can collide with in practice;
//   - neither the request nor its response reaches the client, and neither
//     is recorded as an event: the caller keeps what it needs (Capture
//     stores it as the call's pre-state);
//   - the response's result is returned; a JSON-RPC error response is an
//     *RPCError; the session's end fails the call with ErrUpstreamClosed;
//   - ctx bounds only the wait: a request once sent cannot be taken back,
//     and the response to an abandoned call is dropped when it arrives.
//
// Conn.Call is safe for concurrent use and may be called from a hook that
// holds up the client's request (Capture does): responses are read by the
// transport's pump, which never waits on a hook.

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"sync"

	"github.com/mcptrail/mcptrail/ingest/envelope"
	"github.com/mcptrail/mcptrail/internal/rawjson"
)

// Conn is the upstream side of a live gateway session, as hooks see it.
type Conn interface {
	// Call sends a request the gateway originates and returns its result
	// (see the contract above).
	Call(ctx context.Context, method string, params any) (json.RawMessage, error)
	// ServerName is serverInfo.name from the initialize result the session
	// relayed, "" before one.
	ServerName() string
}

// RPCError is a JSON-RPC error response to an injected call.
type RPCError struct {
	Code    int64           `json:"code"`
	Message string          `json:"message"`
	Data    json.RawMessage `json:"data,omitempty"`
}

func (e *RPCError) Error() string { return fmt.Sprintf("JSON-RPC error %d: %s", e.Code, e.Message) }

// ErrNoUpstream: the session's transport cannot originate calls (a
// sessionless 2026-07-28 client, a session whose upstream is not up yet).
var ErrNoUpstream = errors.New("mcptrail: this session has no upstream connection the gateway can call on")

// ErrUpstreamClosed: the connection ended before the response came.
var ErrUpstreamClosed = errors.New("mcptrail: the upstream connection closed before it answered")

// caller is a transport's way to send a gateway-originated request.
type caller interface {
	call(ctx context.Context, method string, params json.RawMessage) (json.RawMessage, error)
}

// attachUpstream gives the session its transport's caller.
func (s *Session) attachUpstream(c caller) {
	s.mu.Lock()
	s.upstream = c
	s.mu.Unlock()
}

// ServerName is serverInfo.name of the initialize result the session saw.
func (s *Session) ServerName() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.serverName
}

// negotiatedVersion is the protocol version the session's client asked for.
func (s *Session) negotiatedVersion() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.protocolVersion
}

func (s *Session) learnServer(result json.RawMessage) {
	var name, version string
	if len(result) > 0 && result[0] == '{' { // a view of a checked message
		rawjson.Members(result, func(k []byte, esc bool, v []byte) bool {
			switch rawjson.Key(k, esc) {
			case "protocolVersion":
				version, _ = rawjson.StringValue(v)
			case "serverInfo":
				name = implementationName(v)
			}
			return true
		})
	}
	s.mu.Lock()
	if name != "" {
		s.serverName = name
	}
	// The version the server chose is the session's: it decides what the
	// session may send (batches, for one).
	s.negotiated = version
	s.mu.Unlock()
}

// learnServerFromMeta takes the server's name from a 2026-07-28 result,
// which has no initialize: the server names itself in each result's _meta
// (io.modelcontextprotocol/serverInfo). Rules match a server by that name
// when the upstream's own name (wrap --name) is not the rules' server.
func (s *Session) learnServerFromMeta(result json.RawMessage) {
	var name string
	if len(result) > 0 && result[0] == '{' {
		rawjson.Members(result, func(k []byte, esc bool, v []byte) bool {
			if rawjson.Key(k, esc) == "_meta" && len(v) > 0 && v[0] == '{' {
				rawjson.Members(v, func(k []byte, esc bool, v []byte) bool {
					if rawjson.Key(k, esc) == "io.modelcontextprotocol/serverInfo" {
						name = implementationName(v)
					}
					return true
				})
			}
			return true
		})
	}
	if name != "" {
		s.mu.Lock()
		s.serverName = name
		s.mu.Unlock()
	}
}

// implementationName is the name of an MCP Implementation object
// (serverInfo), "" when v is none.
func implementationName(v []byte) string {
	var name string
	if len(v) > 0 && v[0] == '{' {
		rawjson.Members(v, func(k []byte, esc bool, v []byte) bool {
			if rawjson.Key(k, esc) == "name" {
				name, _ = rawjson.StringValue(v)
			}
			return true
		})
	}
	return name
}

// sessionConn is the Conn of a session, as Hooks.Capture gets it.
type sessionConn struct{ s *Session }

func (c sessionConn) ServerName() string { return c.s.ServerName() }

func (c sessionConn) Call(ctx context.Context, method string, params any) (json.RawMessage, error) {
	c.s.mu.Lock()
	up := c.s.upstream
	c.s.mu.Unlock()
	if up == nil {
		return nil, ErrNoUpstream
	}
	raw, err := marshalParams(params)
	if err != nil {
		return nil, err
	}
	return up.call(ctx, method, raw)
}

func marshalParams(params any) (json.RawMessage, error) {
	switch p := params.(type) {
	case nil:
		return nil, nil
	case json.RawMessage:
		return p, nil
	case []byte:
		return json.RawMessage(p), nil
	}
	b, err := json.Marshal(params)
	if err != nil {
		return nil, fmt.Errorf("mcptrail: params: %w", err)
	}
	return b, nil
}

// --- over a stdio child ---

// injector sends gateway-originated requests on a line transport (a stdio
// child) and picks their responses out of what the server writes: the
// pump offers it every line first (deliver).
type injector struct {
	send   func([]byte) error
	prefix string // "mcptrail-XXXXXXXX-"

	mu      sync.Mutex
	next    uint64
	waiting map[string]chan injected
	err     error // set once closed
}

type injected struct {
	result json.RawMessage
	err    error
}

func newInjector(send func([]byte) error) *injector {
	return &injector{send: send, prefix: "mcptrail-" + rand.Text()[:8] + "-", waiting: make(map[string]chan injected)}
}

func (in *injector) newID() string {
	in.mu.Lock()
	defer in.mu.Unlock()
	in.next++
	return in.prefix + strconv.FormatUint(in.next, 10)
}

func (in *injector) call(ctx context.Context, method string, params json.RawMessage) (json.RawMessage, error) {
	id := in.newID()
	msg, err := requestBytes(id, method, params)
	if err != nil {
		return nil, err
	}
	return in.roundTrip(ctx, id, msg)
}

// roundTrip sends msg (a request with id) and waits for its response.
func (in *injector) roundTrip(ctx context.Context, id string, msg []byte) (json.RawMessage, error) {
	ch := make(chan injected, 1)
	in.mu.Lock()
	if in.err != nil {
		in.mu.Unlock()
		return nil, in.err
	}
	in.waiting[id] = ch
	in.mu.Unlock()
	if err := in.send(msg); err != nil {
		in.forget(id)
		return nil, fmt.Errorf("mcptrail: sending to the upstream: %w", err)
	}
	select {
	case r := <-ch:
		return r.result, r.err
	case <-ctx.Done():
		in.forget(id)
		return nil, ctx.Err()
	}
}

func (in *injector) forget(id string) {
	in.mu.Lock()
	delete(in.waiting, id)
	in.mu.Unlock()
}

// deliver takes line if it is the response to an injected request (true:
// the pump must not relay it).
func (in *injector) deliver(line []byte) bool {
	if !bytes.Contains(line, []byte(in.prefix)) {
		return false // the common case, without parsing
	}
	env, ok := readLine(line)
	if !ok || !env.IsResponse() {
		return false
	}
	id, isString := rawjson.StringValue(env.ID)
	if !isString || !strings.HasPrefix(id, in.prefix) {
		return false
	}
	in.mu.Lock()
	ch := in.waiting[id]
	delete(in.waiting, id)
	in.mu.Unlock()
	if ch != nil {
		r := injected{result: bytes.Clone(env.Result)} // line is the reader's buffer
		if e := rpcError(env.Error); e != nil {
			r.err = e
		}
		ch <- r
	}
	return true // ours, even when nobody waits any more
}

// close fails every waiting call and every later one.
func (in *injector) close(err error) {
	in.mu.Lock()
	defer in.mu.Unlock()
	if in.err != nil {
		return
	}
	in.err = err
	for id, ch := range in.waiting {
		ch <- injected{err: err}
		delete(in.waiting, id)
	}
}

func requestBytes(id, method string, params json.RawMessage) ([]byte, error) {
	m := map[string]any{"jsonrpc": "2.0", "id": id, "method": method}
	if len(params) > 0 {
		m["params"] = params
	}
	return json.Marshal(m)
}

// --- over a Streamable HTTP upstream ---

// httpCaller posts gateway-originated requests to a Streamable HTTP
// upstream under the session's Mcp-Session-Id, with the gateway-held
// headers, and reads the response from a JSON body or an event stream.
type httpCaller struct {
	client  *http.Client
	url     string
	headers map[string]string
	sid     string
	version func() string // the session's negotiated protocol version
	max     int
	prefix  string

	mu   sync.Mutex
	next uint64
}

func (h *httpCaller) call(ctx context.Context, method string, params json.RawMessage) (json.RawMessage, error) {
	h.mu.Lock()
	h.next++
	id := h.prefix + strconv.FormatUint(h.next, 10)
	h.mu.Unlock()
	msg, err := requestBytes(id, method, params)
	if err != nil {
		return nil, err
	}
	var out json.RawMessage
	var rerr error
	found := false
	err = postMessage(ctx, h.client, h.url, h.headers, h.sid, h.version(), h.max, msg, func(line []byte) {
		if found {
			return
		}
		env, ok := readLine(line)
		if got, _ := rawjson.StringValue(env.ID); !ok || !env.IsResponse() || got != id {
			return // notifications and server requests on the stream: not ours to answer here
		}
		found, out = true, bytes.Clone(env.Result)
		if e := rpcError(env.Error); e != nil {
			rerr = e
		}
	}, nil)
	if err != nil {
		return nil, err
	}
	if !found {
		return nil, ErrUpstreamClosed
	}
	return out, rerr
}

// postMessage POSTs one JSON-RPC message and hands each message of the
// response (a JSON body, or the events of a stream) to onMessage. The
// session id of the answer is passed to onSID when set.
func postMessage(ctx context.Context, client *http.Client, url string, headers map[string]string, sid, version string, max int, msg []byte, onMessage func([]byte), onSID func(string)) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(msg))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	if sid != "" {
		req.Header.Set(hdrSessionID, sid)
	}
	if version != "" {
		req.Header.Set(hdrProtocolVersion, version)
	}
	resp, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("mcptrail: the upstream could not be reached: %w", err)
	}
	defer resp.Body.Close()
	if onSID != nil {
		if s := resp.Header.Get(hdrSessionID); s != "" {
			onSID(s)
		}
	}
	if resp.StatusCode == http.StatusAccepted {
		return nil
	}
	if resp.StatusCode/100 != 2 {
		prefix, _ := io.ReadAll(io.LimitReader(resp.Body, 256))
		return fmt.Errorf("mcptrail: the upstream answered HTTP %d: %s", resp.StatusCode, strings.TrimSpace(string(prefix)))
	}
	if max <= 0 {
		max = DefaultMaxMessageBytes
	}
	ct, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type"))
	if ct == "text/event-stream" {
		p := newSSEParser(max)
		buf := make([]byte, 32<<10)
		for {
			n, rerr := resp.Body.Read(buf)
			p.feed(buf[:n], func(ev sseEvent, _ int) bool {
				if (ev.Name == "" || ev.Name == "message") && len(ev.Data) > 0 && !ev.Truncated {
					onMessage(ev.Data)
				}
				return true
			})
			if rerr == io.EOF {
				return nil
			}
			if rerr != nil {
				return rerr
			}
		}
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, int64(max)+1))
	if err != nil {
		return err
	}
	data = bytes.TrimSpace(data)
	if len(data) > 0 && data[0] == '[' && envelope.Check(data, 0) == nil {
		for _, e := range envelope.Elements(data) {
			onMessage(e)
		}
		return nil
	}
	if len(data) > 0 {
		onMessage(data)
	}
	return nil
}

// readLine reads a line a server wrote, for the gateway's own calls, with
// the gateway's one reading of a message; false for anything it refuses.
func readLine(line []byte) (envelope.Message, bool) {
	line = bytes.TrimSpace(line)
	if len(line) == 0 || line[0] != '{' || envelope.Check(line, 0) != nil {
		return envelope.Message{}, false
	}
	m, err := envelope.Parse(line)
	return m, err == nil
}

// rpcError decodes an error response's error object; nil when there is
// none.
func rpcError(raw []byte) *RPCError {
	if len(raw) == 0 || string(raw) == "null" {
		return nil
	}
	var e RPCError
	if json.Unmarshal(raw, &e) != nil {
		return &RPCError{Code: -32603, Message: "malformed error: " + string(raw)}
	}
	return &e
}
