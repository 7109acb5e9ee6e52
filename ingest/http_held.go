package ingest

import (
	"fmt"
	"net/http"
	"sync"
	"time"
)

// heldKeepAlive is how often a POST whose call is held for approval gets
// an SSE comment: often enough that a proxy or load balancer with an idle
// timeout (60 s is common) does not cut the request while someone decides.
var heldKeepAlive = 15 * time.Second

// heldBeat keeps a POST's response alive while its call waits for
// approval. For a client that accepts text/event-stream, the first held
// call starts the response as an SSE stream and writes a comment at once
// and every heldKeepAlive after it; the decision's answer then follows on
// the same stream as a message event. A client that accepts only JSON gets
// nothing until the decision (a JSON body cannot be started early).
//
// The comments are written on their own goroutine while the handler's is
// blocked in FromClient; end stops it before the handler writes again, so
// the ResponseWriter has one writer at a time.
type heldBeat struct {
	w http.ResponseWriter
	r *http.Request // its Accept is read only when a call is held

	mu      sync.Mutex
	started bool // the response's headers have gone: only SSE may follow
	stop    chan struct{}
	done    chan struct{}
}

func newHeldBeat(w http.ResponseWriter, r *http.Request) *heldBeat {
	return &heldBeat{w: w, r: r}
}

// held is whileHeld's onHeld: a call of this POST is now held.
func (b *heldBeat) held(seq uint64) {
	if b == nil || !acceptsSSE(b.r) {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.started {
		return // a batch: one stream for all its calls
	}
	b.started = true
	b.stop, b.done = make(chan struct{}), make(chan struct{})
	h := b.w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache, no-transform")
	b.w.WriteHeader(http.StatusOK)
	comment := fmt.Appendf(nil, ": held for approval %d\n\n", seq)
	go b.run(comment)
}

func (b *heldBeat) run(comment []byte) {
	defer close(b.done)
	rc := http.NewResponseController(b.w)
	t := time.NewTicker(heldKeepAlive)
	defer t.Stop()
	for {
		if _, err := b.w.Write(comment); err != nil {
			return // the client left; whileHeld refuses the call
		}
		if rc.Flush() != nil {
			return
		}
		select {
		case <-t.C:
		case <-b.stop:
			return
		}
	}
}

// end stops the comments and reports whether the response has started as
// an SSE stream (so that the answer must be an SSE event on it).
func (b *heldBeat) end() (started bool) {
	if b == nil {
		return false
	}
	b.mu.Lock()
	started = b.started
	b.mu.Unlock()
	if started {
		select {
		case <-b.stop:
		default:
			close(b.stop)
		}
		<-b.done
	}
	return started
}

// reply answers the POST with a message the gateway built (a refusal, a
// denial, a failure): as an SSE event on a started stream, else as
// writeReply does.
func (b *heldBeat) reply(reply []byte) {
	if !b.end() {
		writeReply(b.w, reply)
		return
	}
	b.event(reply)
}

// json answers with body and status like writeJSON, or as an SSE event on a
// started stream (whose status has gone).
func (b *heldBeat) json(status int, body []byte) {
	if !b.end() {
		writeJSON(b.w, status, body)
		return
	}
	b.event(body)
}

func (b *heldBeat) event(msg []byte) {
	if msg == nil {
		return
	}
	b.w.Write(appendSSEEvent(nil, "", msg))
	_ = http.NewResponseController(b.w).Flush()
}

// begunWriter is the ResponseWriter of a response whose SSE stream a
// heldBeat started: the headers and status have gone, so what the reverse
// proxy sets there is dropped and only the body gets through.
type begunWriter struct {
	w http.ResponseWriter
	h http.Header
}

func (b *begunWriter) Header() http.Header {
	if b.h == nil {
		b.h = make(http.Header)
	}
	return b.h
}
func (b *begunWriter) WriteHeader(int)             {}
func (b *begunWriter) Write(p []byte) (int, error) { return b.w.Write(p) }
func (b *begunWriter) Unwrap() http.ResponseWriter { return b.w }
func (b *begunWriter) Flush()                      { _ = http.NewResponseController(b.w).Flush() }

// sseEvents encodes msgs as message events.
func sseEvents(msgs [][]byte) []byte {
	var buf []byte
	for _, m := range msgs {
		buf = appendSSEEvent(buf, "", m)
	}
	return buf
}
