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
	"math"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/mcptrail/mcptrail/ingest/envelope"
	"github.com/mcptrail/mcptrail/store"
	"github.com/modelcontextprotocol/go-sdk/jsonrpc"
	"github.com/oklog/ulid/v2"
)

// Upstream is one MCP server behind the HTTP gateway: a Streamable HTTP
// endpoint (URL) or a stdio command (one child process per client session).
type Upstream struct {
	URL     string            // Streamable HTTP upstream, e.g. http://127.0.0.1:9000/mcp
	Command []string          // or a stdio upstream: one child process per client session
	Env     []string          // extra environment for children (KEY=VALUE)
	Dir     string            // working directory for children
	Headers map[string]string // sent to an HTTP upstream (gateway-held upstream credentials)
}

// HTTPOptions configure NewHTTPGateway.
type HTTPOptions struct {
	Upstreams map[string]Upstream
	Recorder  Recorder
	Hooks     Hooks
	Limits    Limits
	// Authenticate identifies the client of each request; nil lets everyone
	// in anonymously. An error answers 401 with WWW-Authenticate: Bearer.
	Authenticate func(r *http.Request) (*Overrides, error)
	// AllowedOrigins are browser origins (scheme://host[:port]) allowed
	// besides loopback ones; their hosts are also accepted as Host headers.
	AllowedOrigins []string
	Logger         *slog.Logger
	ChildStderr    io.Writer // where stdio children's stderr goes (daemon log)
	// IdleTimeout ends sessions that have had no call in flight and no open
	// stream for this long (stopping their children); the client gets 404
	// and starts over. 0 means DefaultIdleTimeout; negative, never.
	IdleTimeout time.Duration
	// MaxSessions caps the open sessions of all upstreams together, and
	// MaxSessionsPerPrincipal those of one principal (all anonymous
	// clients are one); a new session over a cap is refused with 429.
	// 0 means the default (DefaultMaxSessions, ...PerPrincipal); negative,
	// no cap.
	MaxSessions             int
	MaxSessionsPerPrincipal int
}

// DefaultIdleTimeout is how long an idle HTTP gateway session lives.
const DefaultIdleTimeout = 30 * time.Minute

// HTTP header names of the Streamable HTTP transport.
const (
	hdrSessionID       = "Mcp-Session-Id"
	hdrProtocolVersion = "Mcp-Protocol-Version"
	hdrLastEventID     = "Last-Event-ID"
)

// modernVersion is the first protocol version without sessions (SEP-2575).
const modernVersion = "2026-07-28"

// supportedVersions are the protocol versions the gateway relays.
var supportedVersions = []string{"2024-11-05", "2025-03-26", "2025-06-18", "2025-11-25", modernVersion}

// HTTPGateway serves MCP's Streamable HTTP transport at /mcp/{name} for each
// upstream, recording every message through a Session before it is
// forwarded. Its methods are safe for concurrent use.
type HTTPGateway struct {
	opts      HTTPOptions
	log       *slog.Logger
	max       int
	idle      time.Duration
	upstreams map[string]upstream
	transport *http.Transport
	hosts     map[string]bool // hosts of AllowedOrigins
	origins   map[string]bool // normalized AllowedOrigins
	refusals  *refusals       // what the gateway turns away, recorded at a bounded rate
	caps      *sessionCaps

	mu     sync.Mutex
	closed bool
	done   chan struct{}
	wg     sync.WaitGroup // every goroutine the gateway started

	ctx    context.Context // cancelled by Close after the sessions ended: stops proxied requests
	cancel context.CancelFunc
}

// upstream is one served MCP server: a proxied HTTP one or stdio children.
type upstream interface {
	serve(w http.ResponseWriter, r *http.Request, ov *Overrides)
	close(outcome, detail string) // end every session
	sessions() int
	reap(now time.Time, idle time.Duration)
}

// NewHTTPGateway builds the gateway; it starts no process until a client
// needs one.
func NewHTTPGateway(opts HTTPOptions) *HTTPGateway {
	g := &HTTPGateway{
		opts:      opts,
		log:       opts.Logger,
		max:       opts.Limits.MaxMessageBytes,
		idle:      opts.IdleTimeout,
		upstreams: make(map[string]upstream),
		hosts:     make(map[string]bool),
		origins:   make(map[string]bool),
		done:      make(chan struct{}),
	}
	g.ctx, g.cancel = context.WithCancel(context.Background())
	if g.log == nil {
		g.log = slog.Default()
	}
	if g.max <= 0 {
		g.max = DefaultMaxMessageBytes
		g.opts.Limits.MaxMessageBytes = g.max
	}
	if g.idle == 0 {
		g.idle = DefaultIdleTimeout
	}
	g.refusals = newRefusals(opts.Recorder, g.log)
	if opts.Authenticate != nil {
		g.refusals.label = func(r *http.Request) *Overrides {
			ov, err := opts.Authenticate(r)
			if err != nil {
				return nil
			}
			return ov
		}
	}
	g.caps = newSessionCaps(opts.MaxSessions, opts.MaxSessionsPerPrincipal)
	for _, o := range opts.AllowedOrigins {
		if n, host, ok := normalizeOrigin(o); ok {
			g.origins[n] = true
			g.hosts[host] = true
		}
	}
	g.transport = http.DefaultTransport.(*http.Transport).Clone()
	// The gateway reads what it relays: no compression on the upstream leg.
	g.transport.DisableCompression = true
	for name, up := range opts.Upstreams {
		switch {
		case up.URL != "":
			u, err := newProxyUpstream(g, name, up)
			if err != nil {
				g.log.Error("upstream not served", "upstream", name, "err", err)
				continue
			}
			g.upstreams[name] = u
		case len(up.Command) > 0:
			g.upstreams[name] = newStdioUpstream(g, name, up)
		default:
			g.log.Error("upstream not served: it has neither a URL nor a command", "upstream", name)
		}
	}
	if g.idle > 0 {
		g.wg.Add(1)
		go g.reaper()
	}
	return g
}

// ServeHTTP serves /mcp/{name}: POST, GET and DELETE of the Streamable HTTP
// transport. Unknown names are 404.
func (g *HTTPGateway) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	if name == "" {
		name, _ = strings.CutPrefix(r.URL.Path, "/mcp/")
		name = strings.TrimSuffix(name, "/")
	}
	// DNS rebinding and cross-origin protection come before anything else.
	if !g.hostAllowed(r) {
		g.refuse(w, r, refusal{status: http.StatusForbidden, reason: RefusedHost, upstream: name,
			detail: "Host header not allowed"}, "Forbidden: invalid Host header")
		return
	}
	if origin := r.Header.Get("Origin"); origin != "" && !g.originAllowed(origin) {
		g.refuse(w, r, refusal{status: http.StatusForbidden, reason: RefusedOrigin, upstream: name,
			detail: "Origin not allowed"}, "Forbidden: invalid Origin")
		return
	}
	u := g.upstreams[name]
	if u == nil || strings.Contains(name, "/") {
		g.refuse(w, r, refusal{status: http.StatusNotFound, reason: RefusedUpstream, upstream: name,
			detail: "no such upstream"}, "404 page not found")
		return
	}
	if g.isClosed() {
		http.Error(w, "the gateway is shutting down", http.StatusServiceUnavailable)
		return
	}
	var ov *Overrides
	if g.opts.Authenticate != nil {
		var err error
		ov, err = g.opts.Authenticate(r)
		if err != nil {
			w.Header().Set("WWW-Authenticate", "Bearer")
			g.refuse(w, r, refusal{status: http.StatusUnauthorized, reason: RefusedAuth, upstream: name,
				detail: authDetail(err)}, "Unauthorized")
			return
		}
	}
	if v := r.Header.Get(hdrProtocolVersion); v != "" && !slices.Contains(supportedVersions, v) {
		g.refuse(w, r, refusal{status: http.StatusBadRequest, reason: RefusedVersion, upstream: name, ov: ov,
			detail: "unsupported MCP-Protocol-Version"},
			fmt.Sprintf("Bad Request: unsupported protocol version %q (supported versions: %s)", v, strings.Join(supportedVersions, ",")))
		return
	}
	switch r.Method {
	case http.MethodPost, http.MethodGet, http.MethodDelete:
		u.serve(w, r, ov)
	default:
		w.Header().Set("Allow", "GET, POST, DELETE")
		g.refuse(w, r, refusal{status: http.StatusMethodNotAllowed, reason: RefusedRequest, upstream: name, ov: ov,
			detail: "HTTP method not allowed"}, "Method Not Allowed")
	}
}

// refuse answers a refused request with status and msg and records the
// refusal (at a bounded rate: refusals).
func (g *HTTPGateway) refuse(w http.ResponseWriter, r *http.Request, f refusal, msg string) {
	g.refusals.record(r, f)
	http.Error(w, msg, f.status)
}

// refuseSession answers 404 for an Mcp-Session-Id that names no session of
// the client's, and records it.
func (g *HTTPGateway) refuseSession(w http.ResponseWriter, r *http.Request, upstream string, ov *Overrides) {
	g.refuse(w, r, refusal{status: http.StatusNotFound, reason: RefusedSession, upstream: upstream, ov: ov,
		detail: "unknown Mcp-Session-Id"}, "session not found")
}

// refuseTooBig answers 413 for a body over the message limit, with a
// JSON-RPC error (its id unread), and records it; session is the gateway
// session it was sent in, if any.
func (g *HTTPGateway) refuseTooBig(w http.ResponseWriter, r *http.Request, upstream, session string, ov *Overrides) {
	detail := fmt.Sprintf("message exceeds %d bytes", g.max)
	size := g.max + 1 // what was read; the Content-Length says more, if the client sent one
	if r.ContentLength > int64(size) && r.ContentLength <= math.MaxInt32 {
		size = int(r.ContentLength)
	}
	g.refusals.record(r, refusal{status: http.StatusRequestEntityTooLarge, reason: RefusedSize, upstream: upstream,
		session: session, ov: ov, detail: detail, size: size})
	writeJSON(w, http.StatusRequestEntityTooLarge, errorResponse(nil, jsonrpc.CodeInvalidRequest, "mcptrail: "+detail))
}

// capRetryAfter is the Retry-After of a 429: sessions end on DELETE or
// after IdleTimeout, so a client should wait a while, not spin.
const capRetryAfter = "30"

// refuseNewSession answers a request whose new session could not be made:
// 429 with a JSON-RPC error and Retry-After over a session cap (recorded
// as a refusal), 503 when the gateway is closing, 500 when the record
// failed. id is the request's JSON-RPC id, if it has one.
func (g *HTTPGateway) refuseNewSession(w http.ResponseWriter, r *http.Request, upstream string, ov *Overrides, id json.RawMessage, err error) {
	var ce *capError
	switch {
	case errors.As(err, &ce):
		g.refusals.record(r, refusal{status: http.StatusTooManyRequests, reason: RefusedCap, upstream: upstream, ov: ov, detail: ce.Error()})
		w.Header().Set("Retry-After", capRetryAfter)
		writeJSON(w, http.StatusTooManyRequests, errorResponse(id, jsonrpc.CodeInternalError, "mcptrail: "+ce.Error()))
	case errors.Is(err, errGatewayClosed):
		writeJSON(w, http.StatusServiceUnavailable, errorResponse(id, jsonrpc.CodeInternalError, "mcptrail: "+err.Error()))
	default:
		writeJSON(w, http.StatusInternalServerError, errorResponse(id, jsonrpc.CodeInternalError, "mcptrail: the audit record could not be written: "+err.Error()))
	}
}

// authDetail is why authentication failed, in words that hold no part of
// the credential (refuse scrubs the token out of them besides).
func authDetail(err error) string {
	switch {
	case errors.Is(err, ErrNoCredential):
		return "no bearer token"
	case errors.Is(err, ErrUnknownCredential):
		return "unknown token"
	}
	return "invalid credential: " + err.Error()
}

// Close ends every session: pending calls get outcome "unknown", children
// are stopped (Close waits for them), streams in progress end, and later
// requests get 503.
func (g *HTTPGateway) Close() {
	g.mu.Lock()
	if g.closed {
		g.mu.Unlock()
		return
	}
	g.closed = true
	close(g.done)
	g.mu.Unlock()
	var wg sync.WaitGroup
	for _, u := range g.upstreams {
		wg.Go(func() { u.close(store.OutcomeUnknown, "the gateway shut down") })
	}
	wg.Wait()
	g.refusals.flush(true) // what was suppressed is counted before the record closes
	g.cancel()             // proxied streams (a client's GET, say) end too
	g.wg.Wait()
	g.transport.CloseIdleConnections()
}

// Sessions reports how many gateway sessions are open.
func (g *HTTPGateway) Sessions() int {
	n := 0
	for _, u := range g.upstreams {
		n += u.sessions()
	}
	return n
}

func (g *HTTPGateway) isClosed() bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.closed
}

// goTracked runs f in a goroutine Close waits for, unless the gateway is
// closed (then it reports false and does not run f).
func (g *HTTPGateway) goTracked(f func()) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.closed {
		return false
	}
	g.wg.Add(1)
	go func() {
		defer g.wg.Done()
		f()
	}()
	return true
}

func (g *HTTPGateway) reaper() {
	defer g.wg.Done()
	tick := time.NewTicker(min(g.idle/4+time.Millisecond, time.Minute))
	defer tick.Stop()
	for {
		select {
		case <-g.done:
			return
		case now := <-tick.C:
			for _, u := range g.upstreams {
				u.reap(now, g.idle)
			}
			g.refusals.flush(false)
		}
	}
}

// newSession starts a gateway session and records its beginning, unless
// it would be over a session cap (a *capError).
func (g *HTTPGateway) newSession(upstreamName string, ov *Overrides) (*Session, error) {
	release, err := g.caps.take(principalKey(ov))
	if err != nil {
		return nil, err
	}
	info := SessionInfo{ID: newSessionID(upstreamName), Upstream: upstreamName, Transport: "http"}
	if ov != nil {
		info.Principal = ov.Principal
		if ov.Agent != nil {
			info.Agent = *ov.Agent
		}
		info.OnBehalfOf = ov.OnBehalfOf
	}
	s := NewSession(info, g.opts.Recorder, g.opts.Hooks, g.opts.Limits, g.log)
	s.released = release
	if err := s.Start(); err != nil {
		release()
		return nil, err
	}
	return s, nil
}

// newSessionID is a gateway session id for the record: the upstream's name
// and a ULID (time-ordered, crypto/rand entropy).
func newSessionID(upstreamName string) string {
	return upstreamName + "-" + ulid.MustNew(ulid.Timestamp(time.Now()), rand.Reader).String()
}

// newTransportSessionID is an Mcp-Session-Id: random, visible ASCII, and
// unrelated to the recorded session id (it works as a bearer of the session).
func newTransportSessionID() string { return rand.Text() + rand.Text() }

// principalKey names who a request's credential says the client is, to keep
// sessions to their owner and to group stateless calls.
func principalKey(ov *Overrides) string {
	if ov == nil || ov.Principal == nil {
		return ""
	}
	p := ov.Principal
	return p.Kind + "\x00" + p.Issuer + "\x00" + p.Subject + "\x00" + p.CredentialID
}

// --- security checks ---

func (g *HTTPGateway) hostAllowed(r *http.Request) bool {
	local, ok := r.Context().Value(http.LocalAddrContextKey).(net.Addr)
	if !ok || local == nil || !isLoopbackAddr(local.String()) {
		return true // only loopback servers are exposed to DNS rebinding
	}
	host := r.Host
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	host = strings.ToLower(strings.TrimSuffix(strings.Trim(host, "[]"), "."))
	if host == "" || net.ParseIP(host) != nil || host == "localhost" || strings.HasSuffix(host, ".localhost") {
		return true
	}
	return g.hosts[host]
}

func isLoopbackAddr(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		host = addr
	}
	ip := net.ParseIP(strings.Trim(host, "[]"))
	return ip != nil && ip.IsLoopback()
}

func (g *HTTPGateway) originAllowed(origin string) bool {
	n, host, ok := normalizeOrigin(origin)
	if !ok {
		return false
	}
	if host == "localhost" || strings.HasSuffix(host, ".localhost") {
		return true
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsLoopback() {
		return true
	}
	return g.origins[n]
}

// normalizeOrigin returns scheme://host[:port] in lower case and the bare
// host, for http and https origins.
func normalizeOrigin(o string) (norm, host string, ok bool) {
	u, err := url.Parse(strings.TrimSpace(o))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return "", "", false
	}
	host = strings.ToLower(u.Hostname())
	norm = strings.ToLower(u.Scheme) + "://" + strings.ToLower(u.Host)
	return norm, host, true
}

// --- what a POST carries ---

// postInfo is what the gateway needs to know about a POST body to route it;
// the Session decides what it means for the record.
type postInfo struct {
	valid      bool // parsed as JSON-RPC object(s)
	batch      bool
	requests   []reqInfo
	notifs     int
	responses  int
	initialize bool
	modern     bool   // a request carries _meta io.modelcontextprotocol/protocolVersion
	clientName string // from initialize's clientInfo or _meta clientInfo
	// read is the body as read, handed to the Session (FromClientRead) so
	// that it is parsed once; nil for a body not read (too big).
	read *envelope.Read
}

type reqInfo struct {
	id     json.RawMessage
	method string
	token  json.RawMessage // params._meta.progressToken
}

// inspectPost reads a POST body with the gateway's one reading of a message
// (package envelope), under the limits the Session reads with (lim), and
// keeps the reading for the Session: a body the Session will refuse is not
// valid here either, and is routed only to be refused.
func inspectPost(body []byte, lim Limits) postInfo {
	r := envelope.ReadMessage(body, lim.MaxDepth, lim.MaxMessageBytes)
	info := postInfo{read: &r, batch: r.Batch()}
	if !r.Valid() {
		return info
	}
	els := r.Elements()
	for i := range els {
		m := &els[i].Msg
		switch {
		case m.IsRequest():
			info.requests = append(info.requests, reqInfo{id: m.ID, method: m.Method, token: m.MetaProgressToken})
			if m.Method == "initialize" {
				info.initialize = true
				info.clientName = m.ClientName
			}
			if m.MetaProtocolVersion != "" {
				info.modern = true
				if info.clientName == "" {
					info.clientName = m.MetaClientName
				}
			}
		case m.IsNotification():
			info.notifs++
		default:
			info.responses++
		}
	}
	info.valid = true
	return info
}

// fromClient hands a POST body to the Session: its reading when
// inspectPost made one, else the bytes.
func (info *postInfo) fromClient(sess *Session, body []byte, ov *Overrides) (forward, reply []byte) {
	if info.read != nil {
		return sess.FromClientRead(info.read, ov)
	}
	return sess.FromClient(body, ov)
}

// requestIDs lists the ids of a POST's requests.
func requestIDs(info postInfo) []json.RawMessage {
	ids := make([]json.RawMessage, len(info.requests))
	for i, rq := range info.requests {
		ids[i] = rq.id
	}
	return ids
}

// isModern says whether a request speaks 2026-07-28 (no session).
func isModern(r *http.Request, info postInfo) bool {
	return info.modern || r.Header.Get(hdrProtocolVersion) >= modernVersion
}

// readBody reads a POST body of at most max bytes. A longer body yields
// its first max+1 bytes and tooBig, so the Session records it as oversized.
func readBody(r *http.Request, max int) (body []byte, tooBig bool, err error) {
	body, err = io.ReadAll(io.LimitReader(r.Body, int64(max)+1))
	if err != nil {
		return nil, false, err
	}
	return body, len(body) > max, nil
}

// writeJSON answers with one JSON body.
func writeJSON(w http.ResponseWriter, status int, body []byte) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", fmt.Sprint(len(body)))
	w.WriteHeader(status)
	w.Write(body)
}

// writeReply answers a POST the gateway would not forward with the
// Session's JSON-RPC error: 400 for a body that is not a valid JSON-RPC
// message (parse error, invalid request) — the transport cannot accept it —
// and 200 for a valid request the gateway answered itself (a refused call),
// which is a JSON-RPC response like any other.
func writeReply(w http.ResponseWriter, reply []byte) {
	if reply == nil {
		http.Error(w, "Bad Request: empty message", http.StatusBadRequest)
		return
	}
	status := http.StatusOK
	switch replyCode(reply) {
	case jsonrpc.CodeParseError, jsonrpc.CodeInvalidRequest:
		status = http.StatusBadRequest
	}
	writeJSON(w, status, reply)
}

// replyCode is the error code of a JSON-RPC error response (the first, for
// a batch), or 0.
func replyCode(reply []byte) int64 {
	reply = bytes.TrimSpace(reply)
	if len(reply) > 0 && reply[0] == '[' {
		var all []json.RawMessage
		if json.Unmarshal(reply, &all) != nil || len(all) == 0 {
			return 0
		}
		reply = all[0]
	}
	var r struct {
		Error *struct {
			Code int64 `json:"code"`
		} `json:"error"`
	}
	if json.Unmarshal(reply, &r) != nil || r.Error == nil {
		return 0
	}
	return r.Error.Code
}

// joinReplies makes one body of several JSON-RPC responses.
func joinReplies(replies [][]byte) []byte {
	switch len(replies) {
	case 0:
		return nil
	case 1:
		return replies[0]
	}
	return append(append([]byte{'['}, bytes.Join(replies, []byte{','})...), ']')
}

// acceptsSSE reports whether the client takes text/event-stream.
func acceptsSSE(r *http.Request) bool {
	for _, v := range r.Header.Values("Accept") {
		for _, part := range strings.Split(v, ",") {
			mt, _, _ := strings.Cut(strings.TrimSpace(part), ";")
			switch strings.ToLower(strings.TrimSpace(mt)) {
			case "text/event-stream", "text/*", "*/*":
				return true
			}
		}
	}
	return false
}

// errGatewayClosed refuses what arrives once the gateway is closing.
var errGatewayClosed = errors.New("the gateway is shutting down")
