package ingest

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/mcptrail/mcptrail/ingest/envelope"
	"github.com/mcptrail/mcptrail/store"
	"github.com/modelcontextprotocol/go-sdk/jsonrpc"
)

// errChildGone: the shared child exited or retired before a call could be
// registered on it.
var errChildGone = errors.New("the upstream exited")

// stdioMux multiplexes the sessionless (2026-07-28) clients of a stdio
// upstream over one child process. Requests reach the child under ids of
// its own (register rewrites them with replaceMember); calls maps them back
// to the client's id and stream. house is a session of its own for what
// belongs to no client's call (a notification nobody asked for, a server
// request that no sessionless client can answer, garbage on stdout).
type stdioMux struct {
	u     *stdioUpstream
	child *Child
	house *Session

	mu      sync.Mutex
	next    int64
	calls   map[int64]*muxCall
	byToken map[string]*muxCall
	dead    bool
	last    time.Time
	why     [2]string // outcome and detail when the gateway stopped it
}

// muxCall is a sessionless client's request in flight on the shared child.
type muxCall struct {
	id       int64
	method   string
	sess     *Session
	clientID json.RawMessage
	st       *sseStream
}

// startStdioMux starts u's shared child and the house session that records
// what belongs to no client. The caller holds u.mu and files the result as
// u.shared.
func startStdioMux(u *stdioUpstream) (*stdioMux, error) {
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
	mx := &stdioMux{u: u, child: child, house: house, calls: make(map[int64]*muxCall), byToken: make(map[string]*muxCall), last: time.Now()}
	if !u.g.goTracked(mx.pump) {
		go child.Close()
		house.Close(store.OutcomeUnknown, errGatewayClosed.Error())
		return nil, errGatewayClosed
	}
	return mx, nil
}

// alive reports whether the child still takes calls.
func (mx *stdioMux) alive() bool {
	mx.mu.Lock()
	defer mx.mu.Unlock()
	return !mx.dead
}

// register gives a request its id on the child and returns the message to
// send.
func (mx *stdioMux) register(sess *Session, rq reqInfo, st *sseStream, msg []byte) (*muxCall, []byte, error) {
	mx.mu.Lock()
	defer mx.mu.Unlock()
	mx.next++
	c := &muxCall{id: mx.next, method: rq.method, sess: sess, clientID: rq.id, st: st}
	out, _, found, err := replaceMember(msg, "id", []byte(strconv.FormatInt(c.id, 10)))
	if err == nil && !found {
		err = fmt.Errorf("no id")
	}
	if err != nil {
		return nil, nil, err
	}
	if mx.dead {
		return nil, nil, errChildGone
	}
	mx.calls[c.id] = c
	if len(rq.token) > 0 {
		mx.byToken[idKey(rq.token)] = c
	}
	mx.last = time.Now()
	return c, out, nil
}

// take removes a call; nil when it is no longer in flight.
func (mx *stdioMux) take(id int64) *muxCall {
	mx.mu.Lock()
	defer mx.mu.Unlock()
	c := mx.calls[id]
	if c == nil {
		return nil
	}
	delete(mx.calls, id)
	for k, t := range mx.byToken {
		if t == c {
			delete(mx.byToken, k)
		}
	}
	mx.last = time.Now()
	return c
}

// find returns the call a client's request id names, in its session.
func (mx *stdioMux) find(sess *Session, clientID json.RawMessage) *muxCall {
	k := idKey(clientID)
	mx.mu.Lock()
	defer mx.mu.Unlock()
	for _, c := range mx.calls {
		if c.sess == sess && idKey(c.clientID) == k {
			return c
		}
	}
	return nil
}

func (mx *stdioMux) cancel(c *muxCall, reason string) {
	if mx.take(c.id) == nil {
		return
	}
	c.sess.Fail(c.clientID, store.OutcomeCancelled, reason)
	_ = mx.child.Send(cancelNotification(strconv.AppendInt(nil, c.id, 10), reason))
}

// expire ends a sessionless call that timed out (Session.onTimeout): the
// client's stream gets the error, the child a cancellation under the id it
// knows.
func (mx *stdioMux) expire(sess *Session, id, reply []byte) {
	c := mx.find(sess, id)
	if c == nil || mx.take(c.id) == nil {
		return
	}
	c.st.addResponse(reply)
	c.st.close()
	_ = mx.child.Send(cancelNotification(strconv.AppendInt(nil, c.id, 10), timeoutReason))
}

// notify relays a sessionless client's notification: a cancellation with
// its requestId mapped to the child's id, anything else as sent.
// r is the reading the Session recorded and let through.
func (mx *stdioMux) notify(sess *Session, r *envelope.Read) {
	els := r.Elements()
	if r.Batch() || len(els) != 1 || els[0].Err != nil {
		return
	}
	msg, env := r.Raw(), &els[0].Msg
	if env.Method == "notifications/cancelled" {
		c := mx.find(sess, env.RequestID)
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
	_ = mx.child.Send(msg)
}

// retire marks an idle child as done, so no call is registered on it
// while it stops; false when it is busy or was used recently.
func (mx *stdioMux) retire(now time.Time, idle time.Duration) bool {
	mx.mu.Lock()
	defer mx.mu.Unlock()
	if mx.dead || len(mx.calls) > 0 || now.Sub(mx.last) <= idle {
		return false
	}
	mx.dead = true
	return true
}

// stop shuts the child down; its calls end with outcome.
func (mx *stdioMux) stop(outcome, detail string) {
	mx.mu.Lock()
	mx.why = [2]string{outcome, detail}
	mx.mu.Unlock()
	mx.child.Close()
}

func (mx *stdioMux) pump() {
	for line := range mx.child.Messages() {
		mx.fromChild(line)
	}
	<-mx.child.Done()
	mx.mu.Lock()
	mx.dead = true
	calls := mx.calls
	mx.calls, mx.byToken = map[int64]*muxCall{}, map[string]*muxCall{}
	outcome, detail := mx.why[0], mx.why[1]
	mx.mu.Unlock()
	if outcome == "" {
		outcome, detail = store.OutcomeTransportError, fmt.Sprintf("upstream exited with status %d", mx.child.ExitCode())
	}
	mx.u.forgetMux(mx)
	for _, c := range calls {
		if reply := c.sess.Fail(c.clientID, outcome, detail); reply != nil {
			c.st.addResponse(reply)
		}
		c.st.close()
	}
	mx.house.Close(outcome, detail)
}

func (mx *stdioMux) fromChild(line []byte) {
	// Read once, under the limits every session of the gateway reads with:
	// the sessions given line record this reading.
	r := mx.house.ReadMessage(line)
	els := r.Elements()
	if len(line) == 0 || line[0] != '{' || len(els) != 1 || els[0].Err != nil {
		mx.house.FromServerRead(&r) // records it as bad input
		return
	}
	line, env := r.Raw(), &els[0].Msg
	switch {
	case env.IsResponse():
		id, err := strconv.ParseInt(string(env.ID), 10, 64)
		var c *muxCall
		if err == nil {
			c = mx.take(id)
		}
		if c == nil {
			// The answer to a cancelled call, or to nothing.
			mx.u.g.log.Debug("dropping a response nobody waits for", "upstream", mx.u.name, "id", string(env.ID))
			return
		}
		restored, _, _, err := replaceMember(line, "id", c.clientID)
		if err != nil {
			restored = line
		}
		// Other bytes than were read (the client's id in place of the
		// child's): they are read anew, for the record to name them.
		rr := c.sess.ReadMessage(restored)
		if fwd, _ := c.sess.FromServerAnswerFirst(&rr); fwd != nil {
			c.st.addLast(fwd)
		} else {
			c.st.close()
		}
		// Its outcome is recorded while the stream's handler writes it.
		c.sess.Settle()
	case env.IsRequest():
		// A server request: in this era a server asks for input through
		// input_required results, and no sessionless client could answer.
		mx.house.FromServerRead(&r)
		reply := errorResponse(env.ID, jsonrpc.CodeMethodNotFound, "mcptrail: no client can answer server requests without a session")
		mx.house.FromClient(reply, nil)
		_ = mx.child.Send(reply)
	default: // a notification
		if c, msg := mx.forSubscription(line, env.SubscriptionID); c != nil {
			if fwd, _ := c.sess.FromServer(msg); fwd != nil && !c.st.json {
				c.st.add(fwd)
			}
			return
		}
		targets := mx.notificationTargets(env.Method, env.ProgressToken)
		if len(targets) == 0 {
			mx.house.FromServerRead(&r)
			return
		}
		for _, c := range targets {
			if fwd, _ := c.sess.FromServerRead(&r); fwd != nil && !c.st.json {
				c.st.add(fwd)
			}
		}
	}
}

// forSubscription finds the subscriptions/listen call a notification names
// in _meta (2026-07-28: a subscription is known by its listen request's
// id, here the gateway's) and returns it with the notification as its
// client must see it: with the client's own id. nil when it names none.
func (mx *stdioMux) forSubscription(line []byte, sub json.RawMessage) (*muxCall, []byte) {
	id, err := strconv.ParseInt(string(sub), 10, 64)
	if err != nil {
		return nil, nil
	}
	mx.mu.Lock()
	c := mx.calls[id]
	mx.mu.Unlock()
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
func (mx *stdioMux) notificationTargets(method string, token json.RawMessage) []*muxCall {
	mx.mu.Lock()
	defer mx.mu.Unlock()
	if len(token) > 0 {
		if c := mx.byToken[idKey(token)]; c != nil {
			return []*muxCall{c}
		}
	}
	subscription := strings.HasSuffix(method, "/list_changed") || method == "notifications/resources/updated"
	var listeners, ordinary []*muxCall
	for _, c := range mx.calls {
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
