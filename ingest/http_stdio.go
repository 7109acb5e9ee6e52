package ingest

import (
	"crypto/rand"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/mcptrail/mcptrail/ingest/envelope"
	"github.com/mcptrail/mcptrail/store"
	"github.com/modelcontextprotocol/go-sdk/jsonrpc"
)

// stdioUpstream serves a stdio MCP server over Streamable HTTP: the gateway
// is the HTTP server and the child process is the MCP server. Each
// 2025-era session (initialize → Mcp-Session-Id) is a childSession with a
// child of its own; 2026-07-28 requests, which carry no session, share one
// child per upstream (stdioMux), with their JSON-RPC ids remapped so clients
// cannot collide.
type stdioUpstream struct {
	g    *HTTPGateway
	name string
	up   Upstream

	restarts *restartBudget // of the shared child

	upstreamSessions[*childSession]
	shared *stdioMux // guarded by mu; nil until a sessionless request needs it
}

func newStdioUpstream(g *HTTPGateway, name string, up Upstream) *stdioUpstream {
	u := &stdioUpstream{g: g, name: name, up: up, restarts: newRestartBudget()}
	u.init(newStatelessSessions(g, name, func(sess *Session) {
		sess.onTimeout(func(id, reply []byte) { u.expireShared(sess, id, reply) })
	}))
	return u
}

func (u *stdioUpstream) childOptions() ChildOptions {
	return ChildOptions{Command: u.up.Command, Env: u.up.Env, Dir: u.up.Dir, Stderr: u.g.opts.ChildStderr, MaxMessageBytes: u.g.max}
}

// streamLimit bounds what a stream buffers for a slow reader.
func (u *stdioUpstream) streamLimit() int { return max(16<<20, 2*u.g.max) }

func (u *stdioUpstream) serve(w http.ResponseWriter, r *http.Request, ov *Overrides) {
	sid := r.Header.Get(hdrSessionID)
	switch r.Method {
	case http.MethodGet:
		u.get(w, r, ov, sid)
		return
	case http.MethodDelete:
		if sid == "" {
			u.refuseRequest(w, r, ov, http.StatusBadRequest, "DELETE without an Mcp-Session-Id", "Bad Request: DELETE needs an Mcp-Session-Id header")
			return
		}
		cs := u.session(w, r, sid, ov)
		if cs == nil {
			return
		}
		cs.end(store.OutcomeUnknown, "client ended the session")
		w.WriteHeader(http.StatusNoContent)
		return
	}

	body, tooBig, err := readBody(r, u.g.max)
	if err != nil {
		u.refuseRequest(w, r, ov, http.StatusBadRequest, "the body could not be read: "+err.Error(), "Bad Request: reading the body: "+err.Error())
		return
	}
	var info postInfo
	if !tooBig {
		info = inspectPost(body, u.g.opts.Limits)
	}
	if sid != "" {
		cs := u.session(w, r, sid, ov)
		if cs == nil {
			return
		}
		cs.post(w, r, ov, body, tooBig, info)
		return
	}
	switch {
	case tooBig:
		u.g.refuseTooBig(w, r, u.name, "", ov)
	case !info.valid:
		// Nothing to route by: record it with the client's other
		// sessionless messages and refuse it.
		ss, err := u.stateless.acquire(ov, "", nil)
		if err != nil {
			u.g.refuseNewSession(w, r, u.name, ov, nil, err)
			return
		}
		defer u.stateless.release(ss, nil)
		_, reply := info.fromClient(ss.sess, body, ov)
		writeReply(w, reply)
	case info.initialize:
		u.initialize(w, r, ov, body, info)
	case isModern(r, info):
		u.postStateless(w, r, ov, body, info)
	default:
		var id json.RawMessage
		if len(info.requests) > 0 {
			id = info.requests[0].id
		}
		ss, err := u.stateless.acquire(ov, info.clientName, nil)
		if err != nil {
			u.g.refuseNewSession(w, r, u.name, ov, id, err)
			return
		}
		defer u.stateless.release(ss, nil)
		writeJSON(w, http.StatusBadRequest, ss.sess.refuse(body, id, jsonrpc.CodeInvalidRequest, "Mcp-Session-Id header required (initialize first)"))
	}
}

// lookup finds a session by its Mcp-Session-Id, for its owner only.
func (u *stdioUpstream) lookup(sid string, ov *Overrides) *childSession {
	u.mu.Lock()
	defer u.mu.Unlock()
	cs := u.bySID[sid]
	if cs == nil || cs.owner != principalKey(ov) {
		return nil
	}
	return cs
}

// session is lookup for a request that names sid: nil, with the request
// refused, when sid names no session of this client.
func (u *stdioUpstream) session(w http.ResponseWriter, r *http.Request, sid string, ov *Overrides) *childSession {
	cs := u.lookup(sid, ov)
	if cs == nil {
		u.g.refuseSession(w, r, u.name, ov)
	}
	return cs
}

// refuseRequest refuses (and records) a request the transport cannot take,
// before any session is involved.
func (u *stdioUpstream) refuseRequest(w http.ResponseWriter, r *http.Request, ov *Overrides, status int, detail, msg string) {
	u.g.refuse(w, r, refusal{status: status, reason: RefusedRequest, upstream: u.name, ov: ov, detail: detail}, msg)
}

// initialize starts a session: its record, its child, its Mcp-Session-Id.
func (u *stdioUpstream) initialize(w http.ResponseWriter, r *http.Request, ov *Overrides, body []byte, info postInfo) {
	sess, err := u.g.newSession(u.name, ov)
	if err != nil {
		u.g.refuseNewSession(w, r, u.name, ov, info.requests[0].id, err)
		return
	}
	fwd, reply := info.fromClient(sess, body, ov)
	if fwd == nil {
		sess.Close(store.OutcomeUnknown, "initialize refused")
		writeReply(w, reply)
		return
	}
	failAll := func(status int, detail string) {
		var replies [][]byte
		for _, rq := range info.requests {
			if rep := sess.Fail(rq.id, store.OutcomeTransportError, detail); rep != nil {
				replies = append(replies, rep)
			}
		}
		sess.Close(store.OutcomeTransportError, detail)
		writeJSON(w, status, joinReplies(replies))
	}
	child, err := StartChild(u.childOptions())
	if err != nil {
		u.g.log.Error("starting upstream", "upstream", u.name, "err", err)
		failAll(http.StatusBadGateway, "the upstream could not be started: "+err.Error())
		return
	}
	cs := &childSession{
		u:       u,
		sid:     newTransportSessionID(),
		owner:   principalKey(ov),
		sess:    sess,
		child:   child,
		done:    make(chan struct{}),
		streams: make(map[string]*sseStream),
		byReq:   make(map[string]*sseStream),
		byToken: make(map[string]*sseStream),
		last:    time.Now(),
	}
	cs.inj = newInjector(child.Send)
	sess.attachUpstream(cs.inj)
	sess.onTimeout(func(id, reply []byte) {
		cs.mu.Lock()
		cs.deliverLocked(reply)
		cs.mu.Unlock()
		_ = child.Send(cancelNotification(id, timeoutReason))
	})
	cs.standalone = newStream("G"+rand.Text()[:10], u.streamLimit(), nil)
	cs.standalone.standalone = true
	cs.streams[cs.standalone.id] = cs.standalone
	u.mu.Lock()
	started := !u.closed && u.g.goTracked(cs.pump)
	if started {
		u.bySID[cs.sid] = cs
	}
	u.mu.Unlock()
	if !started {
		go child.Close()
		failAll(http.StatusServiceUnavailable, errGatewayClosed.Error())
		return
	}
	cs.busy(1)
	defer cs.busy(-1)
	cs.dispatch(w, r, fwd, info, true, false)
}

// get opens a session's standalone stream, or resumes a stream.
func (u *stdioUpstream) get(w http.ResponseWriter, r *http.Request, ov *Overrides, sid string) {
	if sid == "" {
		w.Header().Set("Allow", "POST")
		u.refuseRequest(w, r, ov, http.StatusMethodNotAllowed, "GET without an Mcp-Session-Id", "Method Not Allowed: no stream without a session")
		return
	}
	if !acceptsSSE(r) {
		u.refuseRequest(w, r, ov, http.StatusBadRequest, "GET without Accept: text/event-stream", "Bad Request: GET needs Accept: text/event-stream")
		return
	}
	cs := u.session(w, r, sid, ov)
	if cs == nil {
		return
	}
	cs.mu.Lock()
	st, from := cs.standalone, -1
	if last := r.Header.Get(hdrLastEventID); last != "" {
		streamID, idx, ok := parseEventID(last)
		if !ok {
			cs.mu.Unlock()
			u.g.refuse(w, r, refusal{status: http.StatusBadRequest, reason: RefusedRequest, upstream: u.name, ov: ov,
				session: cs.sess.ID(), detail: "malformed Last-Event-ID"}, "Bad Request: malformed Last-Event-ID")
			return
		}
		st, from = cs.streams[streamID], idx+1
		if st == nil || st.json {
			cs.mu.Unlock()
			http.Error(w, "Bad Request: that stream can no longer be resumed", http.StatusBadRequest)
			return
		}
	}
	if err := st.attach(from); err != nil {
		cs.mu.Unlock()
		http.Error(w, "Conflict: "+err.Error(), http.StatusConflict)
		return
	}
	cs.busyCount++
	cs.mu.Unlock()
	defer cs.busy(-1)
	completed := st.serve(r.Context(), w)
	cs.afterServe(st, completed)
}

func (u *stdioUpstream) close(outcome, detail string) {
	u.mu.Lock()
	all := u.closeLocked()
	mx := u.shared
	u.shared = nil
	u.mu.Unlock()
	var wg sync.WaitGroup
	for _, cs := range all {
		wg.Go(func() { cs.end(outcome, detail) })
	}
	if mx != nil {
		wg.Go(func() { mx.stop(outcome, detail) })
	}
	wg.Wait()
	u.stateless.closeAll(outcome, detail)
}

func (u *stdioUpstream) reap(now time.Time, idle time.Duration) {
	var old []*childSession
	u.mu.Lock()
	for _, cs := range u.bySID {
		if cs.idleSince(now) > idle {
			old = append(old, cs)
		}
	}
	mx := u.shared
	u.mu.Unlock()
	for _, cs := range old {
		cs.end(store.OutcomeUnknown, "idle session ended")
	}
	if mx != nil && mx.retire(now, idle) {
		u.forgetMux(mx)
		stop := func() { mx.stop(store.OutcomeUnknown, "idle upstream stopped") }
		if !u.g.goTracked(stop) {
			stop() // the gateway is closing and will not see this child
		}
	}
	u.stateless.reap(now, idle)
}

// sharedMux returns the running shared child, starting one if needed.
func (u *stdioUpstream) sharedMux() (*stdioMux, error) {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.closed {
		return nil, errGatewayClosed
	}
	if mx := u.shared; mx != nil && mx.alive() {
		return mx, nil
	}
	mx, err := startStdioMux(u)
	if err != nil {
		return nil, err
	}
	u.shared = mx
	return mx, nil
}

// currentMux returns the shared child if one runs; nil otherwise.
func (u *stdioUpstream) currentMux() *stdioMux {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.shared
}

// forgetMux lets go of mx, which has ended or retired, unless it was
// replaced meanwhile.
func (u *stdioUpstream) forgetMux(mx *stdioMux) {
	u.mu.Lock()
	if u.shared == mx {
		u.shared = nil
	}
	u.mu.Unlock()
}

// postStateless serves a 2026-07-28 POST: no session, one shared child.
func (u *stdioUpstream) postStateless(w http.ResponseWriter, r *http.Request, ov *Overrides, body []byte, info postInfo) {
	ids := requestIDs(info)
	ss, err := u.stateless.acquire(ov, info.clientName, ids)
	if err != nil {
		var id json.RawMessage
		if len(ids) > 0 {
			id = ids[0]
		}
		u.g.refuseNewSession(w, r, u.name, ov, id, err)
		return
	}
	defer u.stateless.release(ss, ids)
	sess := ss.sess
	if info.batch {
		writeJSON(w, http.StatusBadRequest, sess.refuse(body, nil, jsonrpc.CodeInvalidRequest, "JSON-RPC batches are not supported without a session"))
		return
	}
	beat := newHeldBeat(w, r)
	defer sess.whileHeld(r.Context(), ids, beat.held)()
	fwd, reply := info.fromClient(sess, body, ov)
	if fwd == nil {
		beat.reply(reply)
		return
	}
	begun := beat.end()
	if len(info.requests) == 0 {
		if info.notifs > 0 {
			u.notifyShared(sess, readOf(fwd, info.read, sess))
		}
		// A response has nobody to go to: no server request reaches a
		// sessionless client.
		w.WriteHeader(http.StatusAccepted)
		return
	}
	rq := info.requests[0]
	mx, err := u.sharedMux()
	if err != nil {
		u.g.log.Error("starting upstream", "upstream", u.name, "err", err)
		status := http.StatusBadGateway
		if rl := (*errRestartLimit)(nil); errors.As(err, &rl) {
			status = http.StatusServiceUnavailable
			w.Header().Set("Retry-After", strconv.Itoa(max(1, int(rl.retry.Seconds()))))
		}
		beat.json(status, sess.Fail(rq.id, store.OutcomeTransportError, "the upstream could not be started: "+err.Error()))
		return
	}
	st := newStream("", u.streamLimit(), []string{idKey(rq.id)})
	st.json = !acceptsSSE(r)
	st.begun = begun
	st.attached = true
	call, out, err := mx.register(sess, rq, st, fwd)
	if errors.Is(err, errChildGone) {
		// It exited or retired meanwhile: once more, with a new child.
		if mx, err = u.sharedMux(); err == nil {
			call, out, err = mx.register(sess, rq, st, fwd)
		}
	}
	if err != nil {
		beat.json(http.StatusBadGateway, sess.Fail(rq.id, store.OutcomeTransportError, "the request could not be relayed: "+err.Error()))
		return
	}
	if err := mx.child.Send(out); err != nil {
		if c := mx.take(call.id); c != nil {
			if reply := sess.Fail(rq.id, store.OutcomeTransportError, "the upstream is not accepting input: "+err.Error()); reply != nil {
				st.addResponse(reply)
			}
			st.close()
		}
	}
	if !st.serve(r.Context(), w) {
		// Under 2026-07-28 closing the response stream cancels the
		// request; over stdio that is notifications/cancelled.
		mx.cancel(call, "the client closed the stream")
	}
}

// notifyShared relays a sessionless client's notification to the shared
// child (stdioMux.notify); with no child there is nothing to tell.
func (u *stdioUpstream) notifyShared(sess *Session, r *envelope.Read) {
	if mx := u.currentMux(); mx != nil {
		mx.notify(sess, r)
	}
}

// expireShared ends a sessionless call that timed out (Session.onTimeout,
// stdioMux.expire).
func (u *stdioUpstream) expireShared(sess *Session, id, reply []byte) {
	if mx := u.currentMux(); mx != nil {
		mx.expire(sess, id, reply)
	}
}
