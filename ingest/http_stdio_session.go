package ingest

import (
	"crypto/rand"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/mcptrail/mcptrail/ingest/envelope"
	"github.com/mcptrail/mcptrail/store"
	"github.com/modelcontextprotocol/go-sdk/jsonrpc"
)

// maxFinishedStreams is how many completed POST streams whose client went
// away a session keeps for resumption (Last-Event-ID).
const maxFinishedStreams = 16

// child process, and the streams its responses travel on.
type childSession struct {
	u     *stdioUpstream
	sid   string // Mcp-Session-Id
	owner string
	sess  *Session
	child *Child
	inj   *injector     // gateway-originated calls on child (injector)
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
	defer cs.sess.whileHeld(r.Context(), requestIDs(info), beat.held)()
	fwd, reply := info.fromClient(cs.sess, body, ov)
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
	// Read once: the Session records this reading and the router below
	// routes on it.
	r := cs.sess.ReadMessage(line)
	fwd, reply := cs.sess.FromServerAnswerFirst(&r)
	// The answer is on its stream: its outcome is recorded while the
	// stream's handler writes it.
	defer cs.sess.Settle()
	if reply != nil {
		_ = cs.child.Send(reply)
	}
	if fwd == nil {
		return
	}
	cs.mu.Lock()
	cs.deliverReadLocked(readOf(fwd, &r, cs.sess))
	cs.mu.Unlock()
}

// deliverLocked routes a message the gateway made for the client (an
// error in a call's place): see deliverReadLocked.
func (cs *childSession) deliverLocked(msg []byte) {
	r := cs.sess.ReadMessage(msg)
	cs.deliverReadLocked(&r)
}

// deliverReadLocked routes a message for the client, as read: a response to
// its request's stream, a progress notification to the stream of the
// request that asked for progress, anything else to the newest open POST
// stream, else to the standalone stream (which holds it until a GET reads
// it). A batch's messages go each their way.
func (cs *childSession) deliverReadLocked(r *envelope.Read) {
	els := r.Elements()
	for i := range els {
		// What the Session let through parses; anything else is not sent.
		if els[i].Err == nil {
			cs.deliverOneLocked(els[i].Raw(), &els[i].Msg)
		}
	}
}

func (cs *childSession) deliverOneLocked(msg []byte, env *envelope.Message) {
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
