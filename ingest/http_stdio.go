package ingest

import (
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/mcptrail/mcptrail/ingest/envelope"
	"github.com/mcptrail/mcptrail/store"
	"github.com/modelcontextprotocol/go-sdk/jsonrpc"
)

var errChildGone = errors.New("the upstream exited")

// maxFinishedStreams is how many completed POST streams whose client went
// away a session keeps for resumption (Last-Event-ID).
const maxFinishedStreams = 16

// stdioUpstream serves a stdio MCP server over Streamable HTTP: the gateway
// is the HTTP server and the child process is the MCP server. Each
// 2025-era session (initialize → Mcp-Session-Id) gets a child of its own;
// 2026-07-28 requests, which carry no session, share one child per upstream,
// with their JSON-RPC ids remapped so clients cannot collide.
type stdioUpstream struct {
	g         *HTTPGateway
	name      string
	up        Upstream
	stateless *statelessSessions

	restarts *restartBudget // of the shared child

	mu     sync.Mutex
	bySID  map[string]*childSession
	shared *sharedChild
	closed bool
}

func newStdioUpstream(g *HTTPGateway, name string, up Upstream) *stdioUpstream {
	u := &stdioUpstream{g: g, name: name, up: up, bySID: make(map[string]*childSession), restarts: newRestartBudget()}
	u.stateless = newStatelessSessions(g, name, func(sess *Session) {
		sess.onTimeout(func(id, reply []byte) { u.expireShared(sess, id, reply) })
	})
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
			u.g.refuse(w, r, refusal{status: http.StatusBadRequest, reason: RefusedRequest, upstream: u.name, ov: ov,
				detail: "DELETE without an Mcp-Session-Id"}, "Bad Request: DELETE needs an Mcp-Session-Id header")
			return
		}
		cs := u.lookup(sid, ov)
		if cs == nil {
			u.g.refuseSession(w, r, u.name, ov)
			return
		}
		cs.end(store.OutcomeUnknown, "client ended the session")
		w.WriteHeader(http.StatusNoContent)
		return
	}

	body, tooBig, err := readBody(r, u.g.max)
	if err != nil {
		u.g.refuse(w, r, refusal{status: http.StatusBadRequest, reason: RefusedRequest, upstream: u.name, ov: ov,
			detail: "the body could not be read: " + err.Error()}, "Bad Request: reading the body: "+err.Error())
		return
	}
	var info postInfo
	if !tooBig {
		info = inspectPost(body, u.g.opts.Limits.MaxDepth)
	}
	if sid != "" {
		cs := u.lookup(sid, ov)
		if cs == nil {
			u.g.refuseSession(w, r, u.name, ov)
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
		_, reply := ss.sess.FromClient(body, ov)
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

// initialize starts a session: its record, its child, its Mcp-Session-Id.
func (u *stdioUpstream) initialize(w http.ResponseWriter, r *http.Request, ov *Overrides, body []byte, info postInfo) {
	sess, err := u.g.newSession(u.name, ov)
	if err != nil {
		u.g.refuseNewSession(w, r, u.name, ov, info.requests[0].id, err)
		return
	}
	fwd, reply := sess.FromClient(body, ov)
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
		u.g.refuse(w, r, refusal{status: http.StatusMethodNotAllowed, reason: RefusedRequest, upstream: u.name, ov: ov,
			detail: "GET without an Mcp-Session-Id"}, "Method Not Allowed: no stream without a session")
		return
	}
	if !acceptsSSE(r) {
		u.g.refuse(w, r, refusal{status: http.StatusBadRequest, reason: RefusedRequest, upstream: u.name, ov: ov,
			detail: "GET without Accept: text/event-stream"}, "Bad Request: GET needs Accept: text/event-stream")
		return
	}
	cs := u.lookup(sid, ov)
	if cs == nil {
		u.g.refuseSession(w, r, u.name, ov)
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
	u.closed = true
	all := u.bySID
	u.bySID = map[string]*childSession{}
	sc := u.shared
	u.shared = nil
	u.mu.Unlock()
	var wg sync.WaitGroup
	for _, cs := range all {
		wg.Go(func() { cs.end(outcome, detail) })
	}
	if sc != nil {
		wg.Go(func() { sc.stop(outcome, detail) })
	}
	wg.Wait()
	u.stateless.closeAll(outcome, detail)
}

func (u *stdioUpstream) sessions() int {
	u.mu.Lock()
	n := len(u.bySID)
	u.mu.Unlock()
	return n + u.stateless.count()
}

func (u *stdioUpstream) reap(now time.Time, idle time.Duration) {
	var old []*childSession
	u.mu.Lock()
	for _, cs := range u.bySID {
		if cs.idleSince(now) > idle {
			old = append(old, cs)
		}
	}
	sc := u.shared
	u.mu.Unlock()
	for _, cs := range old {
		cs.end(store.OutcomeUnknown, "idle session ended")
	}
	if sc != nil && sc.retire(now, idle) {
		u.mu.Lock()
		if u.shared == sc {
			u.shared = nil
		}
		u.mu.Unlock()
		stop := func() { sc.stop(store.OutcomeUnknown, "idle upstream stopped") }
		if !u.g.goTracked(stop) {
			stop() // the gateway is closing and will not see this child
		}
	}
	u.stateless.reap(now, idle)
}

// childSession is one 2025-era session of a stdio upstream: a Session, a
// child process, and the streams its responses travel on.
type childSession struct {
	u     *stdioUpstream
	sid   string // Mcp-Session-Id
	owner string
	sess  *Session
	child *Child
	inj   *injector     // gateway-originated calls on child (inject.go)
	done  chan struct{} // closed once the session has ended

	endOnce sync.Once

	mu              sync.Mutex
	ended           bool
	standalone      *sseStream
	streams         map[string]*sseStream // resumable streams by id
	byReq           map[string]*sseStream // idKey of a request in flight → its stream
	byToken         map[string]*sseStream // idKey of a progress token → its request's stream
	active          []*sseStream          // POST streams with calls in flight, oldest first
	finished        []*sseStream          // complete streams kept for resumption
	last            time.Time
	busyCount       int  // requests being served
	closeStandalone bool // the session ended: close the standalone stream once POST streams are read
}

func (cs *childSession) busy(d int) {
	cs.mu.Lock()
	cs.busyCount += d
	cs.last = time.Now()
	cs.mu.Unlock()
}

func (cs *childSession) idleSince(now time.Time) time.Duration {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	if cs.busyCount > 0 || len(cs.byReq) > 0 || cs.sess.Pending() > 0 {
		return 0
	}
	return now.Sub(cs.last)
}

// post handles a POST to an existing session.
func (cs *childSession) post(w http.ResponseWriter, r *http.Request, ov *Overrides, body []byte, tooBig bool, info postInfo) {
	cs.busy(1)
	defer cs.busy(-1)
	if tooBig {
		cs.u.g.refuseTooBig(w, r, cs.u.name, cs.sess.ID(), ov)
		return
	}
	cs.mu.Lock()
	for _, rq := range info.requests {
		if cs.byReq[idKey(rq.id)] != nil {
			cs.mu.Unlock()
			writeJSON(w, http.StatusBadRequest, cs.sess.refuse(body, rq.id, jsonrpc.CodeInvalidRequest, "a request with this id is already in flight"))
			return
		}
	}
	cs.mu.Unlock()
	beat := newHeldBeat(w, r)
	defer cs.sess.whileHeld(r.Context(), requestIDs(info), beat.held)() // approve.go
	fwd, reply := cs.sess.FromClient(body, ov)
	if fwd == nil {
		beat.reply(reply)
		return
	}
	cs.dispatch(w, r, fwd, info, false, beat.end())
}

// dispatch sends a recorded message to the child and answers the POST:
// 202 for notifications and responses, a stream for requests.
// begun: a held call's keep-alives have started the response as a stream.
func (cs *childSession) dispatch(w http.ResponseWriter, r *http.Request, fwd []byte, info postInfo, initialize, begun bool) {
	if len(info.requests) == 0 {
		if err := cs.child.Send(fwd); err != nil {
			http.Error(w, "Bad Gateway: the upstream is not accepting input", http.StatusBadGateway)
			return
		}
		w.WriteHeader(http.StatusAccepted)
		return
	}
	keys := make([]string, len(info.requests))
	for i, rq := range info.requests {
		keys[i] = idKey(rq.id)
	}
	st := newStream(rand.Text()[:16], cs.u.streamLimit(), keys)
	st.json = !acceptsSSE(r)
	st.begun = begun
	st.attached = true
	cs.mu.Lock()
	if cs.ended || cs.sess.isClosed() {
		cs.mu.Unlock()
		var replies [][]byte
		for _, rq := range info.requests {
			if reply := cs.sess.Fail(rq.id, store.OutcomeUnknown, "the session ended"); reply != nil {
				replies = append(replies, reply)
			}
		}
		if begun {
			// The status has gone with the keep-alives: the calls' errors
			// are the answer.
			w.Write(sseEvents(replies))
			return
		}
		http.Error(w, "session not found", http.StatusNotFound)
		return
	}
	cs.streams[st.id] = st
	cs.active = append(cs.active, st)
	for i, rq := range info.requests {
		cs.byReq[keys[i]] = st
		if len(rq.token) > 0 {
			cs.byToken[idKey(rq.token)] = st
		}
	}
	cs.mu.Unlock()
	if err := cs.child.Send(fwd); err != nil {
		cs.failCalls(info.requests, store.OutcomeTransportError, "the upstream is not accepting input: "+err.Error())
	}
	if initialize {
		w.Header().Set(hdrSessionID, cs.sid)
	}
	completed := st.serve(r.Context(), w)
	cs.afterServe(st, completed)
}

// failCalls ends calls that will get no response and answers them on their
// stream.
func (cs *childSession) failCalls(reqs []reqInfo, outcome, detail string) {
	for _, rq := range reqs {
		if reply := cs.sess.Fail(rq.id, outcome, detail); reply != nil {
			cs.mu.Lock()
			cs.deliverLocked(reply)
			cs.mu.Unlock()
		}
	}
}

// afterServe lets go of a stream its reader left.
func (cs *childSession) afterServe(st *sseStream, completed bool) {
	st.detach()
	cs.mu.Lock()
	defer cs.mu.Unlock()
	if st.standalone {
		return
	}
	if cs.closeStandalone && !cs.postReadersLocked() {
		cs.standalone.close()
	}
	closed, broken, _ := st.state()
	switch {
	case completed || broken:
		delete(cs.streams, st.id)
		if broken {
			cs.retireLocked(st)
		}
	case closed:
		cs.keepFinishedLocked(st)
	}
	// Otherwise the stream waits for its responses, and for a reader to
	// resume it.
}

// postReadersLocked reports whether a client is reading a POST stream.
func (cs *childSession) postReadersLocked() bool {
	for _, st := range cs.streams {
		if _, _, attached := st.state(); attached && st != cs.standalone {
			return true
		}
	}
	return false
}

func (cs *childSession) keepFinishedLocked(st *sseStream) {
	cs.finished = append(cs.finished, st)
	if len(cs.finished) > maxFinishedStreams {
		delete(cs.streams, cs.finished[0].id)
		cs.finished = cs.finished[1:]
	}
}

// retireLocked forgets a stream whose calls are all answered (or that was
// broken off).
func (cs *childSession) retireLocked(st *sseStream) {
	for i, a := range cs.active {
		if a == st {
			cs.active = append(cs.active[:i], cs.active[i+1:]...)
			break
		}
	}
	for k, s := range cs.byToken {
		if s == st {
			delete(cs.byToken, k)
		}
	}
}

// pump reads the child until its stdout ends. The session ends when the
// child exits, and the child is stopped when the session ends.
func (cs *childSession) pump() {
	msgs := cs.child.Messages()
	done := cs.done
	var stopped chan struct{}
	for {
		select {
		case line, ok := <-msgs:
			if !ok {
				cs.inj.close(ErrUpstreamClosed)
				<-cs.child.Done()
				cs.end(store.OutcomeTransportError, fmt.Sprintf("upstream exited with status %d", cs.child.ExitCode()))
				if stopped != nil {
					<-stopped
				}
				return
			}
			if cs.inj.deliver(line) {
				continue
			}
			if stopped == nil {
				cs.fromChild(line)
			}
		case <-done:
			done = nil
			stopped = make(chan struct{})
			go func() {
				defer close(stopped)
				cs.child.Close()
			}()
		}
	}
}

func (cs *childSession) fromChild(line []byte) {
	fwd, reply := cs.sess.FromServer(line)
	if reply != nil {
		_ = cs.child.Send(reply)
	}
	if fwd == nil {
		return
	}
	cs.mu.Lock()
	cs.deliverLocked(fwd)
	cs.mu.Unlock()
}

// deliverLocked routes a message for the client: a response to its
// request's stream, a progress notification to the stream of the request
// that asked for progress, anything else to the newest open POST stream,
// else to the standalone stream (which holds it until a GET reads it).
func (cs *childSession) deliverLocked(msg []byte) {
	if len(msg) > 0 && msg[0] == '[' {
		for _, e := range envelope.Elements(msg) {
			cs.deliverLocked(e)
		}
		return
	}
	// msg is what the Session let through: it parses.
	env, perr := envelope.Parse(msg)
	if perr != nil {
		return
	}
	if env.IsResponse() {
		k := idKey(env.ID)
		st := cs.byReq[k]
		delete(cs.byReq, k)
		if st == nil {
			cs.u.g.log.Debug("dropping a response nobody waits for", "session", cs.sess.ID(), "id", string(env.ID))
			return
		}
		if st.addAnswer(msg, k) {
			cs.retireLocked(st)
			if _, _, attached := st.state(); !attached {
				cs.keepFinishedLocked(st)
			}
		}
		return
	}
	if env.Method == "notifications/progress" && len(env.ProgressToken) > 0 {
		if st := cs.byToken[idKey(env.ProgressToken)]; st != nil && !st.json && st.add(msg) {
			return
		}
	}
	for i := len(cs.active) - 1; i >= 0; i-- {
		st := cs.active[i]
		if _, _, attached := st.state(); attached && !st.json && st.add(msg) {
			return
		}
	}
	cs.standalone.add(msg)
	if n := cs.standalone.takeDropped(); n > 0 {
		cs.u.g.log.Warn("no client is reading the session's stream: dropped its oldest messages", "session", cs.sess.ID(), "dropped", n)
	}
}

// end ends the session once: pending calls get outcome (their clients an
// error on their streams), every stream closes, the child is stopped, and
// the Mcp-Session-Id is forgotten (404 from now on).
func (cs *childSession) end(outcome, detail string) {
	cs.endOnce.Do(func() {
		cs.u.mu.Lock()
		if cs.u.bySID[cs.sid] == cs {
			delete(cs.u.bySID, cs.sid)
		}
		cs.u.mu.Unlock()
		replies := cs.sess.Close(outcome, detail)
		cs.mu.Lock()
		cs.ended = true
		for _, r := range replies {
			cs.deliverLocked(r)
		}
		for _, st := range cs.streams {
			if st != cs.standalone {
				st.close()
			}
		}
		for _, st := range cs.byReq {
			st.close()
		}
		// The standalone stream ends last: a client whose GET ends gives
		// up on the session, and it should have its calls' errors first.
		if cs.postReadersLocked() {
			cs.closeStandalone = true
			time.AfterFunc(2*time.Second, cs.standalone.close)
		} else {
			cs.standalone.close()
		}
		cs.mu.Unlock()
		close(cs.done)
	})
}

// --- 2026-07-28: one child shared by every sessionless client ---

// sharedChild is the child process that serves sessionless requests of a
// stdio upstream. Requests reach it under ids of its own (see replaceMember);
// calls maps them back. house is a session of its own for what belongs to
// no client's call (a notification nobody asked for, a server request that
// no sessionless client can answer, garbage on stdout).
type sharedChild struct {
	u     *stdioUpstream
	child *Child
	house *Session

	mu      sync.Mutex
	next    int64
	calls   map[int64]*sharedCall
	byToken map[string]*sharedCall
	dead    bool
	last    time.Time
	why     [2]string // outcome and detail when the gateway stopped it
}

type sharedCall struct {
	id       int64
	method   string
	sess     *Session
	clientID json.RawMessage
	st       *sseStream
}

// sharedChild returns the running shared child, starting one if needed.
func (u *stdioUpstream) sharedChild() (*sharedChild, error) {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.closed {
		return nil, errGatewayClosed
	}
	if sc := u.shared; sc != nil {
		sc.mu.Lock()
		dead := sc.dead
		sc.mu.Unlock()
		if !dead {
			return sc, nil
		}
	}
	if err := u.restarts.start(); err != nil {
		return nil, err
	}
	child, err := StartChild(u.childOptions())
	if err != nil {
		return nil, err
	}
	house := NewSession(SessionInfo{ID: newSessionID(u.name + "-shared"), Upstream: u.name, Transport: "stdio"}, u.g.opts.Recorder, u.g.opts.Hooks, u.g.opts.Limits, u.g.log)
	if err := house.Start(); err != nil {
		go child.Close()
		return nil, err
	}
	sc := &sharedChild{u: u, child: child, house: house, calls: make(map[int64]*sharedCall), byToken: make(map[string]*sharedCall), last: time.Now()}
	if !u.g.goTracked(sc.pump) {
		go child.Close()
		house.Close(store.OutcomeUnknown, errGatewayClosed.Error())
		return nil, errGatewayClosed
	}
	u.shared = sc
	return sc, nil
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
	defer sess.whileHeld(r.Context(), ids, beat.held)() // approve.go
	fwd, reply := sess.FromClient(body, ov)
	if fwd == nil {
		beat.reply(reply)
		return
	}
	begun := beat.end()
	if len(info.requests) == 0 {
		if info.notifs > 0 {
			u.notifyShared(sess, fwd)
		}
		// A response has nobody to go to: no server request reaches a
		// sessionless client.
		w.WriteHeader(http.StatusAccepted)
		return
	}
	rq := info.requests[0]
	sc, err := u.sharedChild()
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
	call, out, err := sc.register(sess, rq, st, fwd)
	if errors.Is(err, errChildGone) {
		// It exited or retired meanwhile: once more, with a new child.
		if sc, err = u.sharedChild(); err == nil {
			call, out, err = sc.register(sess, rq, st, fwd)
		}
	}
	if err != nil {
		beat.json(http.StatusBadGateway, sess.Fail(rq.id, store.OutcomeTransportError, "the request could not be relayed: "+err.Error()))
		return
	}
	if err := sc.child.Send(out); err != nil {
		if c := sc.take(call.id); c != nil {
			if reply := sess.Fail(rq.id, store.OutcomeTransportError, "the upstream is not accepting input: "+err.Error()); reply != nil {
				st.add(reply)
			}
			st.close()
		}
	}
	if !st.serve(r.Context(), w) {
		// Under 2026-07-28 closing the response stream cancels the
		// request; over stdio that is notifications/cancelled.
		sc.cancel(call, "the client closed the stream")
	}
}

// notifyShared relays a sessionless client's notification: a cancellation
// with its requestId mapped to the child's id, anything else as sent.
func (u *stdioUpstream) notifyShared(sess *Session, msg []byte) {
	u.mu.Lock()
	sc := u.shared
	u.mu.Unlock()
	if sc == nil {
		return // no child, so nothing to tell
	}
	// msg is what the Session let through: it parses.
	env, perr := envelope.Parse(msg)
	if perr != nil {
		return
	}
	if env.Method == "notifications/cancelled" {
		c := sc.find(sess, env.RequestID)
		if c == nil {
			return // it names no call of this client: never pass it on
		}
		params, _, _, err := replaceMember(member(msg, "params"), "requestId", []byte(strconv.FormatInt(c.id, 10)))
		if err != nil {
			return
		}
		out, _, _, err := replaceMember(msg, "params", params)
		if err != nil {
			return
		}
		msg = out
	}
	_ = sc.child.Send(msg)
}

// register gives a request its id on the child and returns the message to
// send.
func (sc *sharedChild) register(sess *Session, rq reqInfo, st *sseStream, msg []byte) (*sharedCall, []byte, error) {
	sc.mu.Lock()
	defer sc.mu.Unlock()
	sc.next++
	c := &sharedCall{id: sc.next, method: rq.method, sess: sess, clientID: rq.id, st: st}
	out, _, found, err := replaceMember(msg, "id", []byte(strconv.FormatInt(c.id, 10)))
	if err == nil && !found {
		err = fmt.Errorf("no id")
	}
	if err != nil {
		return nil, nil, err
	}
	if sc.dead {
		return nil, nil, errChildGone
	}
	sc.calls[c.id] = c
	if len(rq.token) > 0 {
		sc.byToken[idKey(rq.token)] = c
	}
	sc.last = time.Now()
	return c, out, nil
}

// take removes a call; nil when it is no longer in flight.
func (sc *sharedChild) take(id int64) *sharedCall {
	sc.mu.Lock()
	defer sc.mu.Unlock()
	return sc.takeLocked(id)
}

func (sc *sharedChild) takeLocked(id int64) *sharedCall {
	c := sc.calls[id]
	if c == nil {
		return nil
	}
	delete(sc.calls, id)
	for k, t := range sc.byToken {
		if t == c {
			delete(sc.byToken, k)
		}
	}
	sc.last = time.Now()
	return c
}

// find returns the call a client's request id names, in its session.
func (sc *sharedChild) find(sess *Session, clientID json.RawMessage) *sharedCall {
	k := idKey(clientID)
	sc.mu.Lock()
	defer sc.mu.Unlock()
	for _, c := range sc.calls {
		if c.sess == sess && idKey(c.clientID) == k {
			return c
		}
	}
	return nil
}

func (sc *sharedChild) cancel(c *sharedCall, reason string) {
	if sc.take(c.id) == nil {
		return
	}
	c.sess.Fail(c.clientID, store.OutcomeCancelled, reason)
	_ = sc.child.Send(cancelNotification(strconv.AppendInt(nil, c.id, 10), reason))
}

// expireShared ends a sessionless call that timed out (Session.onTimeout):
// the client's stream gets the error, the child a cancellation under the
// id it knows.
func (u *stdioUpstream) expireShared(sess *Session, id, reply []byte) {
	u.mu.Lock()
	sc := u.shared
	u.mu.Unlock()
	if sc == nil {
		return
	}
	c := sc.find(sess, id)
	if c == nil || sc.take(c.id) == nil {
		return
	}
	c.st.add(reply)
	c.st.close()
	_ = sc.child.Send(cancelNotification(strconv.AppendInt(nil, c.id, 10), timeoutReason))
}

// retire marks an idle child as done, so no call is registered on it
// while it stops; false when it is busy or was used recently.
func (sc *sharedChild) retire(now time.Time, idle time.Duration) bool {
	sc.mu.Lock()
	defer sc.mu.Unlock()
	if sc.dead || len(sc.calls) > 0 || now.Sub(sc.last) <= idle {
		return false
	}
	sc.dead = true
	return true
}

// stop shuts the child down; its calls end with outcome.
func (sc *sharedChild) stop(outcome, detail string) {
	sc.mu.Lock()
	sc.why = [2]string{outcome, detail}
	sc.mu.Unlock()
	sc.child.Close()
}

func (sc *sharedChild) pump() {
	for line := range sc.child.Messages() {
		sc.fromChild(line)
	}
	<-sc.child.Done()
	sc.mu.Lock()
	sc.dead = true
	calls := sc.calls
	sc.calls, sc.byToken = map[int64]*sharedCall{}, map[string]*sharedCall{}
	outcome, detail := sc.why[0], sc.why[1]
	sc.mu.Unlock()
	if outcome == "" {
		outcome, detail = store.OutcomeTransportError, fmt.Sprintf("upstream exited with status %d", sc.child.ExitCode())
	}
	sc.u.mu.Lock()
	if sc.u.shared == sc {
		sc.u.shared = nil
	}
	sc.u.mu.Unlock()
	for _, c := range calls {
		if reply := c.sess.Fail(c.clientID, outcome, detail); reply != nil {
			c.st.add(reply)
		}
		c.st.close()
	}
	sc.house.Close(outcome, detail)
}

func (sc *sharedChild) fromChild(line []byte) {
	if len(line) == 0 || line[0] != '{' || envelope.Check(line, sc.u.g.opts.Limits.MaxDepth) != nil {
		sc.house.FromServer(line) // records it as bad input
		return
	}
	env, perr := envelope.Parse(line)
	if perr != nil {
		sc.house.FromServer(line) // records it as bad input
		return
	}
	switch {
	case env.IsResponse():
		id, err := strconv.ParseInt(string(env.ID), 10, 64)
		var c *sharedCall
		if err == nil {
			c = sc.take(id)
		}
		if c == nil {
			// The answer to a cancelled call, or to nothing.
			sc.u.g.log.Debug("dropping a response nobody waits for", "upstream", sc.u.name, "id", string(env.ID))
			return
		}
		restored, _, _, err := replaceMember(line, "id", c.clientID)
		if err != nil {
			restored = line
		}
		if fwd, _ := c.sess.FromServer(restored); fwd != nil {
			c.st.addLast(fwd)
		} else {
			c.st.close()
		}
	case env.IsRequest():
		// A server request: in this era a server asks for input through
		// input_required results, and no sessionless client could answer.
		sc.house.FromServer(line)
		reply := errorResponse(env.ID, jsonrpc.CodeMethodNotFound, "mcptrail: no client can answer server requests without a session")
		sc.house.FromClient(reply, nil)
		_ = sc.child.Send(reply)
	default: // a notification
		if c, msg := sc.forSubscription(line, env.SubscriptionID); c != nil {
			if fwd, _ := c.sess.FromServer(msg); fwd != nil && !c.st.json {
				c.st.add(fwd)
			}
			return
		}
		targets := sc.notificationTargets(env.Method, env.ProgressToken)
		if len(targets) == 0 {
			sc.house.FromServer(line)
			return
		}
		for _, c := range targets {
			if fwd, _ := c.sess.FromServer(line); fwd != nil && !c.st.json {
				c.st.add(fwd)
			}
		}
	}
}

// forSubscription finds the subscriptions/listen call a notification names
// in _meta (2026-07-28: a subscription is known by its listen request's
// id, here the gateway's) and returns it with the notification as its
// client must see it: with the client's own id. nil when it names none.
func (sc *sharedChild) forSubscription(line []byte, sub json.RawMessage) (*sharedCall, []byte) {
	id, err := strconv.ParseInt(string(sub), 10, 64)
	if err != nil {
		return nil, nil
	}
	sc.mu.Lock()
	c := sc.calls[id]
	sc.mu.Unlock()
	if c == nil || c.method != "subscriptions/listen" {
		return nil, nil
	}
	params := member(line, "params")
	meta, _, _, err := replaceMember(member(params, "_meta"), "io.modelcontextprotocol/subscriptionId", c.clientID)
	if err == nil {
		params, _, _, err = replaceMember(params, "_meta", meta)
	}
	if err == nil {
		line, _, _, err = replaceMember(line, "params", params)
	}
	if err != nil {
		return nil, nil
	}
	return c, line
}

// notificationTargets decides which calls' streams a notification from the
// shared child belongs to. stdio says nothing about it, so: progress by its
// token; list and resource changes to every subscriptions/listen stream
// (each client asked for them); anything else (a log message) to the one
// ordinary call in flight, if there is exactly one — long-lived listen
// streams do not count, or no log message would ever arrive while a client
// listens.
func (sc *sharedChild) notificationTargets(method string, token json.RawMessage) []*sharedCall {
	sc.mu.Lock()
	defer sc.mu.Unlock()
	if len(token) > 0 {
		if c := sc.byToken[idKey(token)]; c != nil {
			return []*sharedCall{c}
		}
	}
	subscription := strings.HasSuffix(method, "/list_changed") || method == "notifications/resources/updated"
	var listeners, ordinary []*sharedCall
	for _, c := range sc.calls {
		if c.method == "subscriptions/listen" {
			listeners = append(listeners, c)
		} else {
			ordinary = append(ordinary, c)
		}
	}
	if subscription {
		return listeners
	}
	if len(ordinary) == 1 {
		return ordinary
	}
	return nil
}
