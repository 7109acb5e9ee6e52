package ingest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strings"
	"time"

	"github.com/mcptrail/mcptrail/store"
	"github.com/modelcontextprotocol/go-sdk/jsonrpc"
)

// proxyUpstream relays to a Streamable HTTP upstream through
// httputil.ReverseProxy. The pump stays dumb: the request body is recorded
// (Session.FromClient) before the proxy sends the original bytes on, and
// responses are recorded as they pass — JSON bodies whole, event streams
// event by event through an sseTap that changes no byte.
type proxyUpstream struct {
	g     *HTTPGateway
	name  string
	rp    *httputil.ReverseProxy
	up    Upstream   // URL and gateway-held headers, for calls the gateway originates (Conn)
	adopt *adoptions // unknown Mcp-Session-Ids taken up, per client address

	upstreamSessions[*proxySession] // by the upstream's Mcp-Session-Id
}

type proxySession struct {
	sess  *Session
	owner string // principalKey of the client that holds it
	last  time.Time
	busy  int
}

// proxyCall is one request through the proxy, carried in the outbound
// request's context to the proxy's hooks.
type proxyCall struct {
	u          *proxyUpstream
	sess       *Session
	ov         *Overrides
	method     string // HTTP method
	sid        string // the Mcp-Session-Id the client sent
	remote     string // the client's IP address
	ids        []json.RawMessage
	initialize bool
	fresh      bool // a new session for an initialize, not yet filed
	kept       bool // the fresh session was filed
	clientName string
	modern     bool
	inbound    context.Context
	tap        *sseTap
	begun      bool // keep-alives of a held call started the client's response as an SSE stream (heldBeat)
}

type proxyCallKey struct{}

func newProxyUpstream(g *HTTPGateway, name string, up Upstream) (*proxyUpstream, error) {
	target, err := url.Parse(up.URL)
	if err != nil {
		return nil, err
	}
	if target.Scheme != "http" && target.Scheme != "https" || target.Host == "" {
		return nil, fmt.Errorf("upstream URL %q is not an http(s) URL", up.URL)
	}
	u := &proxyUpstream{g: g, name: name, up: up, adopt: newAdoptions()}
	u.init(newStatelessSessions(g, name, nil))
	headers := make(http.Header)
	for k, v := range up.Headers {
		headers.Set(k, v)
	}
	u.rp = &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			out := pr.Out
			out.URL.Scheme, out.URL.Host = target.Scheme, target.Host
			out.URL.Path, out.URL.RawPath, out.URL.RawQuery = target.Path, target.RawPath, target.RawQuery
			out.Host = ""
			// Token passthrough is forbidden: the client's credential is for
			// the gateway; the upstream gets the gateway's own, if any.
			out.Header.Del("Authorization")
			out.Header.Del("Accept-Encoding")
			for k, v := range headers {
				out.Header[k] = v
			}
		},
		Transport:      g.transport,
		ModifyResponse: u.modifyResponse,
		ErrorHandler:   u.errorHandler,
		ErrorLog:       slog.NewLogLogger(g.log.Handler(), slog.LevelDebug),
	}
	return u, nil
}

func (u *proxyUpstream) serve(w http.ResponseWriter, r *http.Request, ov *Overrides) {
	call := &proxyCall{u: u, ov: ov, method: r.Method, sid: r.Header.Get(hdrSessionID), remote: remoteIP(r), inbound: r.Context()}
	var body []byte
	var info postInfo
	tooBig := false
	if r.Method == http.MethodPost {
		var err error
		body, tooBig, err = readBody(r, u.g.max)
		if err != nil {
			u.g.refuse(w, r, refusal{status: http.StatusBadRequest, reason: RefusedRequest, upstream: u.name, ov: ov,
				detail: "the body could not be read: " + err.Error()}, "Bad Request: reading the body: "+err.Error())
			return
		}
		if !tooBig {
			info = inspectPost(body, u.g.opts.Limits)
		}
		call.initialize, call.clientName = info.initialize, info.clientName
		call.modern = isModern(r, info)
	}
	if tooBig {
		// Refused before it names a session: it opens none.
		u.g.refuseTooBig(w, r, u.name, "", ov)
		return
	}
	release, err := u.attach(call, info)
	if err != nil {
		if errors.Is(err, errSessionNotFound) {
			u.g.refuseSession(w, r, u.name, ov)
			return
		}
		var id json.RawMessage
		if len(info.requests) > 0 {
			id = info.requests[0].id
		}
		u.g.refuseNewSession(w, r, u.name, ov, id, err)
		return
	}
	defer release()

	if r.Method == http.MethodPost {
		beat := newHeldBeat(w, r)
		stopHeld := call.sess.whileHeld(r.Context(), requestIDs(info), beat.held)
		fwd, reply := info.fromClient(call.sess, body, ov)
		stopHeld()
		if fwd == nil {
			beat.reply(reply)
			return
		}
		if beat.end() {
			// Keep-alives started the response: the upstream's answer
			// follows on that stream (response re-frames a JSON body).
			call.begun = true
			w = &begunWriter{w: w}
		}
		for _, rq := range info.requests {
			call.ids = append(call.ids, rq.id)
		}
		if call.sess.isClosed() {
			replies := call.fail(store.OutcomeUnknown, "the session ended")
			if call.begun {
				w.Write(sseEvents(replies))
				return
			}
			http.Error(w, "session not found", http.StatusNotFound)
			return
		}
	}
	// The upstream request ends with the client's, or when the gateway
	// closes.
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	defer context.AfterFunc(u.g.ctx, cancel)()
	out := r.Clone(context.WithValue(ctx, proxyCallKey{}, call))
	if r.Method == http.MethodPost {
		// The original bytes, not a re-encoding.
		out.Body = io.NopCloser(bytes.NewReader(body))
		out.ContentLength = int64(len(body))
		out.GetBody = nil
	}
	u.rp.ServeHTTP(w, out)
}

// errSessionNotFound: an Mcp-Session-Id that names another principal's
// session, or an unknown one over its client's adoption rate.
var errSessionNotFound = errors.New("session not found")

// attach finds (or makes) the gateway session of a request and returns the
// function that lets go of it.
func (u *proxyUpstream) attach(call *proxyCall, info postInfo) (release func(), err error) {
	owner := principalKey(call.ov)
	switch {
	case call.sid != "":
		u.mu.Lock()
		defer u.mu.Unlock()
		if u.closed {
			return nil, errGatewayClosed
		}
		ps := u.bySID[call.sid]
		if ps == nil {
			if call.method == http.MethodDelete {
				return func() {}, nil
			}
			// A session the gateway has not seen (it restarted, or the
			// session went idle here): the upstream judges the id; the
			// record gets a session from here on — at a bounded rate.
			if !u.adopt.allow(call.remote) {
				return nil, errSessionNotFound
			}
			sess, err := u.g.newSession(u.name, call.ov)
			if err != nil {
				return nil, err
			}
			ps = &proxySession{sess: sess, owner: owner}
			u.bySID[call.sid] = ps
			u.attachCaller(sess, call.sid)
		} else if ps.owner != owner {
			return nil, errSessionNotFound
		}
		ps.busy++
		ps.last = time.Now()
		call.sess = ps.sess
		return func() {
			u.mu.Lock()
			ps.busy--
			ps.last = time.Now()
			u.mu.Unlock()
		}, nil
	case call.initialize:
		sess, err := u.g.newSession(u.name, call.ov)
		if err != nil {
			return nil, err
		}
		call.sess, call.fresh = sess, true
		return func() {
			if !call.kept {
				sess.Close(store.OutcomeUnknown, "initialize did not establish a session")
			}
		}, nil
	default:
		ids := requestIDs(info)
		ss, err := u.stateless.acquire(call.ov, info.clientName, ids)
		if err != nil {
			return nil, err
		}
		call.sess = ss.sess
		return func() { u.stateless.release(ss, ids) }, nil
	}
}

// file keeps the fresh session of an initialize under the upstream's
// session id (or as a stateless session when the upstream assigned none).
func (u *proxyUpstream) file(call *proxyCall, sid string) {
	if sid == "" {
		call.kept = u.stateless.adopt(call.sess, call.ov, call.clientName)
		return
	}
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.closed {
		return
	}
	old := u.bySID[sid]
	u.bySID[sid] = &proxySession{sess: call.sess, owner: principalKey(call.ov), last: time.Now()}
	u.attachCaller(call.sess, sid)
	call.kept = true
	if old != nil {
		go old.sess.Close(store.OutcomeUnknown, "the upstream reassigned the session id")
	}
}

// attachCaller lets the gateway call the upstream in the session sid
// (httpCaller).
func (u *proxyUpstream) attachCaller(sess *Session, sid string) {
	sess.attachUpstream(&httpCaller{
		client: &http.Client{Transport: u.g.transport}, url: u.up.URL, headers: u.up.Headers, sid: sid,
		version: sess.negotiatedVersion, max: u.g.max, prefix: "mcptrail-" + newTransportSessionID()[:8] + "-",
	})
}

// drop ends the gateway session of an upstream session id.
func (u *proxyUpstream) drop(sid, outcome, detail string) {
	u.mu.Lock()
	ps := u.bySID[sid]
	delete(u.bySID, sid)
	u.mu.Unlock()
	if ps != nil {
		ps.sess.Close(outcome, detail)
	}
}

func (u *proxyUpstream) modifyResponse(resp *http.Response) error {
	call, _ := resp.Request.Context().Value(proxyCallKey{}).(*proxyCall)
	if call == nil {
		return nil
	}
	return call.response(resp)
}

func (c *proxyCall) response(resp *http.Response) error {
	u := c.u
	ok := resp.StatusCode/100 == 2
	if c.fresh && ok {
		u.file(c, resp.Header.Get(hdrSessionID))
	}
	switch {
	case c.method == http.MethodDelete:
		defer u.drop(c.sid, store.OutcomeUnknown, "client ended the session")
	case resp.StatusCode == http.StatusNotFound && c.sid != "":
		defer u.drop(c.sid, store.OutcomeTransportError, "the upstream no longer knows the session")
	}
	if c.sess == nil {
		return nil // a DELETE of a session the gateway does not know
	}
	ct, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type"))
	switch {
	case ct == "text/event-stream":
		c.tap = newSSETap(resp.Body, u.g.max, c.event, c.streamEnd)
		resp.Body = c.tap
	case ct == "application/json":
		data, err := io.ReadAll(io.LimitReader(resp.Body, int64(u.g.max)+1))
		if err != nil {
			return err
		}
		if len(data) > u.g.max {
			resp.Body = readCloser{io.MultiReader(bytes.NewReader(data), resp.Body), resp.Body}
		} else {
			resp.Body.Close()
			resp.Body = io.NopCloser(bytes.NewReader(data))
		}
		c.sess.FromServer(data)
		replies := c.fail(store.OutcomeTransportError, fmt.Sprintf("the upstream answered HTTP %d without a response to the request", resp.StatusCode))
		if c.begun {
			// The client's stream has started: the JSON answer goes on it
			// as one event (and the failures of calls it did not answer).
			msg := sseEvents(replies)
			data = bytes.TrimSpace(data)
			switch {
			case len(data) > u.g.max:
				// Too large to hold here: streamed through as it comes
				// (resp.Body starts with data again, see above).
				resp.Body = readCloser{io.MultiReader(strings.NewReader("event: message\ndata: "), resp.Body, strings.NewReader("\n\n"), bytes.NewReader(msg)), resp.Body}
			case len(data) > 0:
				resp.Body = io.NopCloser(bytes.NewReader(append(appendSSEEvent(nil, "", data), msg...)))
			default:
				resp.Body = io.NopCloser(bytes.NewReader(msg))
			}
		}
	case len(c.ids) > 0:
		// No JSON-RPC body (a plain-text 400, a 202 to a request): the
		// request has had its answer at the HTTP level.
		prefix, _ := io.ReadAll(io.LimitReader(resp.Body, 256))
		resp.Body = readCloser{io.MultiReader(bytes.NewReader(prefix), resp.Body), resp.Body}
		detail := fmt.Sprintf("the upstream answered HTTP %d", resp.StatusCode)
		if s := strings.TrimSpace(string(bytes.ToValidUTF8(prefix, nil))); s != "" {
			detail += ": " + s
		}
		replies := c.fail(store.OutcomeTransportError, detail)
		if c.begun {
			// Not something an SSE stream can carry: the client gets the
			// calls' failures instead.
			resp.Body.Close()
			resp.Body = io.NopCloser(bytes.NewReader(sseEvents(replies)))
		}
	}
	return nil
}

// event records one event of an upstream stream. A server message that
// could not be recorded is not delivered (the Session fails closed).
func (c *proxyCall) event(ev sseEvent) bool {
	if (ev.Name != "" && ev.Name != "message") || len(ev.Data) == 0 {
		return true
	}
	fwd, reply := c.sess.FromServer(ev.Data)
	// The Session refuses a server message in two cases: bad input (it is
	// recorded as such and relayed as sent: the client judges it) and a
	// server request whose record could not be written, which it answers
	// with an internal error and which must not reach the client.
	if fwd == nil && replyCode(reply) == jsonrpc.CodeInternalError {
		c.u.g.log.Error("a server message could not be recorded; ending the stream", "upstream", c.u.name, "session", c.sess.ID())
		return false
	}
	return true
}

// streamEnd settles the calls of a POST whose stream ended: it returns
// error responses to append to the stream for calls that can no longer be
// answered.
func (c *proxyCall) streamEnd(err error, atBoundary bool) []byte {
	if errors.Is(err, errEventRefused) {
		return nil
	}
	if c.inbound.Err() != nil {
		// The client went away. Under 2026-07-28 closing the stream cancels
		// the request; before, a dropped connection is not a cancellation
		// (the client may resume), so the call stays open.
		if c.modern {
			c.fail(store.OutcomeCancelled, "the client closed the stream")
		}
		return nil
	}
	var replies [][]byte
	if errors.Is(err, io.EOF) {
		if c.tap != nil && c.tap.sawID && !c.modern {
			return nil // the client may resume the stream from its last event id
		}
		replies = c.fail(store.OutcomeTransportError, "the upstream ended the stream without a response")
	} else {
		replies = c.fail(store.OutcomeTransportError, "the upstream stream failed: "+err.Error())
	}
	if !atBoundary {
		return nil
	}
	var out []byte
	for _, r := range replies {
		out = appendSSEEvent(out, "", r)
	}
	return out
}

// fail ends whichever of this POST's requests are still pending.
func (c *proxyCall) fail(outcome, detail string) (replies [][]byte) {
	for _, id := range c.ids {
		if r := c.sess.Fail(id, outcome, detail); r != nil {
			replies = append(replies, r)
		}
	}
	return replies
}

func (u *proxyUpstream) errorHandler(w http.ResponseWriter, r *http.Request, err error) {
	call, _ := r.Context().Value(proxyCallKey{}).(*proxyCall)
	if call == nil {
		http.Error(w, "Bad Gateway", http.StatusBadGateway)
		return
	}
	if call.method == http.MethodDelete && call.sid != "" {
		u.drop(call.sid, store.OutcomeUnknown, "client ended the session")
	}
	if call.sess == nil {
		http.Error(w, "Bad Gateway", http.StatusBadGateway)
		return
	}
	if call.inbound.Err() != nil {
		if call.modern {
			call.fail(store.OutcomeCancelled, "the client closed the request")
		}
		return
	}
	u.g.log.Warn("upstream failed", "upstream", u.name, "session", call.sess.ID(), "err", err)
	replies := call.fail(store.OutcomeTransportError, "the upstream could not be reached: "+err.Error())
	body := joinReplies(replies)
	if body == nil {
		body = errorResponse(nil, jsonrpc.CodeInternalError, "mcptrail: the upstream could not be reached")
	}
	if call.begun {
		w.Write(appendSSEEvent(nil, "", body))
		return
	}
	writeJSON(w, http.StatusBadGateway, body)
}

func (u *proxyUpstream) close(outcome, detail string) {
	u.mu.Lock()
	all := u.closeLocked()
	u.mu.Unlock()
	for _, ps := range all {
		ps.sess.Close(outcome, detail)
	}
	u.stateless.closeAll(outcome, detail)
}

func (u *proxyUpstream) reap(now time.Time, idle time.Duration) {
	var old []*Session
	u.mu.Lock()
	for sid, ps := range u.bySID {
		if ps.busy == 0 && now.Sub(ps.last) > idle && ps.sess.Pending() == 0 {
			old = append(old, ps.sess)
			delete(u.bySID, sid)
		}
	}
	u.mu.Unlock()
	for _, s := range old {
		s.Close(store.OutcomeUnknown, "idle session ended")
	}
	u.stateless.reap(now, idle)
}

// readCloser reads from r and closes c.
type readCloser struct {
	io.Reader
	c io.Closer
}

func (rc readCloser) Close() error { return rc.c.Close() }
