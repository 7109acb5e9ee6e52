package ingest

import (
	"context"
	"errors"
	"net/http"
	"sync"
	"time"
)

// replayWindow is how many bytes of already written events a resumable
// stream keeps for a client that reconnects with Last-Event-ID.
const replayWindow = 64 << 10

var errStreamTaken = errors.New("stream already has a reader")

// jsonGrace is how long a POST's answer waits to see whether it can be one
// JSON body (see serve): longer than a quick tool takes over stdio, short
// enough not to matter to a slow one.
const jsonGrace = 2 * time.Millisecond

// sseStream is the server side of one response stream of a stdio upstream:
// a POST's stream (its calls' responses and what the server says meanwhile),
// a session's standalone GET stream, or a POST answered as one JSON body.
// The child's pump appends messages; the HTTP handler attached to the stream
// writes them. Between the two the buffer is bounded: a POST stream whose
// reader falls behind by more than limit bytes is broken off (its client
// sees the stream end), the standalone stream drops its oldest messages.
type sseStream struct {
	id         string // event ids are id_N; "" writes none (2026-07-28 streams are not resumable)
	standalone bool
	json       bool // answer with application/json: responses only, once all are in
	begun      bool // a held call's keep-alives started the response (heldBeat): write events only
	limit      int

	mu       sync.Mutex
	events   []event // events first, first+1, ...
	first    int
	next     int // the next event to write
	unsent   int // bytes of events not yet written
	kept     int // bytes of written events still held
	pending  map[string]struct{}
	closed   bool // no more events will come
	broken   bool // the reader fell too far behind
	attached bool
	dropped  int // events the standalone stream dropped unread
	wake     chan struct{}
}

// event is one message of a stream. response says whether it is a JSON-RPC
// response, as whoever added it knew from its reading of it: serve answers
// with one JSON body only when every message is, and reading them again to
// find out cost a strict parse of every answer on the serve path.
type event struct {
	msg      []byte
	response bool
}

func newStream(id string, limit int, requestKeys []string) *sseStream {
	s := &sseStream{id: id, limit: limit, pending: make(map[string]struct{}), wake: make(chan struct{}, 1)}
	for _, k := range requestKeys {
		s.pending[k] = struct{}{}
	}
	return s
}

func (s *sseStream) signal() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// add appends a message that is not a response (a notification or a
// server request); false when the stream takes no more.
func (s *sseStream) add(msg []byte) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.addLocked(event{msg: msg})
}

// addResponse appends a response (one the gateway made: a call's error);
// false when the stream takes no more.
func (s *sseStream) addResponse(msg []byte) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.addLocked(event{msg: msg, response: true})
}

// addAnswer appends the response to request k and marks k answered, at
// once, so the reader sees the stream complete with its last response (and
// may answer with one JSON body, see serve). It reports whether that was
// the stream's last request.
func (s *sseStream) addAnswer(msg []byte, k string) (last bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.addLocked(event{msg: msg, response: true})
	return s.answeredLocked(k)
}

// addLast appends the stream's final message, the response to its call,
// and closes it, at once (see addAnswer).
func (s *sseStream) addLast(msg []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.addLocked(event{msg: msg, response: true})
	s.closed = true
	s.signal()
}

func (s *sseStream) addLocked(e event) bool {
	if s.closed || s.broken {
		return false
	}
	s.events = append(s.events, e)
	s.unsent += len(e.msg)
	for s.unsent > s.limit && s.next < s.first+len(s.events) {
		if !s.standalone {
			s.broken = true
			s.events, s.first, s.next, s.unsent, s.kept = nil, s.first+len(s.events), s.first+len(s.events), 0, 0
			break
		}
		// The standalone stream drops its oldest unread message, and lets
		// go of it and of everything before it: trim only frees written
		// events past the replay window, so dropped ones (never written)
		// would otherwise stay in memory for ever while nobody reads. A
		// reader resuming from before the gap starts at the oldest message
		// kept.
		s.unsent -= len(s.events[s.next-s.first].msg)
		s.next++
		s.dropped++
		n := s.next - s.first
		clear(s.events[:n])
		s.events = s.events[n:]
		s.first, s.kept = s.next, 0
	}
	s.signal()
	return true
}

// answered marks request k answered; true when that was the stream's last.
func (s *sseStream) answered(k string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.answeredLocked(k)
}

func (s *sseStream) answeredLocked(k string) bool {
	if _, ok := s.pending[k]; !ok {
		return false
	}
	delete(s.pending, k)
	if len(s.pending) == 0 && !s.standalone {
		s.closed = true
		s.signal()
		return true
	}
	return false
}

// takeDropped reports (and resets) how many messages the standalone stream
// dropped unread.
func (s *sseStream) takeDropped() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := s.dropped
	s.dropped = 0
	return n
}

func (s *sseStream) close() {
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
	s.signal()
}

// state reports whether the stream is closed, broken, attached.
func (s *sseStream) state() (closed, broken, attached bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closed, s.broken, s.attached
}

// attach makes the caller the stream's reader, from event index from (-1:
// from where the last reader stopped).
func (s *sseStream) attach(from int) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.attached {
		return errStreamTaken
	}
	if s.broken {
		return errors.New("stream broken off")
	}
	if from >= 0 {
		end := s.first + len(s.events)
		from = min(max(from, s.first), end)
		s.next = from
		s.unsent, s.kept = 0, 0
		for i, e := range s.events {
			if s.first+i < from {
				s.kept += len(e.msg)
			} else {
				s.unsent += len(e.msg)
			}
		}
	}
	s.attached = true
	return nil
}

func (s *sseStream) detach() {
	s.mu.Lock()
	s.attached = false
	s.mu.Unlock()
}

// trim lets go of written events beyond the replay window (all of them for
// a stream that cannot be resumed). Called with s.mu held.
func (s *sseStream) trim() {
	window := replayWindow
	if s.id == "" {
		window = 0
	}
	for s.first < s.next && s.kept > window {
		s.kept -= len(s.events[0].msg)
		s.events[0] = event{}
		s.events = s.events[1:]
		s.first++
	}
}

// serve writes the stream to w until it is complete (true) or the client
// goes away or the stream is broken off (false). The caller has set the
// response headers, except Content-Type, which serve sets.
//
// A POST stream waits a moment (jsonGrace) for its first message before it
// answers: when that completes it with responses only — a quick call that
// sent no progress or log on the way, the common case — the answer is one
// application/json body (the spec lets the server choose per POST), which
// costs the client no stream parsing and the connection one write instead
// of three. Anything else, or nothing yet, starts the stream: a client may
// not send its next message until it has the response headers (the
// go-sdk's does not), so a slow call must not hold them back.
func (s *sseStream) serve(ctx context.Context, w http.ResponseWriter) bool {
	if s.json {
		return s.serveJSON(ctx, w)
	}
	if !s.standalone && !s.begun {
		grace := time.NewTimer(jsonGrace)
		defer grace.Stop()
	wait:
		for {
			s.mu.Lock()
			closed, broken, waiting := s.closed, s.broken, s.next == s.first+len(s.events)
			var events []event
			if closed && !broken && s.next == s.first && len(s.events) > 0 {
				events = s.events
			}
			s.mu.Unlock()
			if events != nil && allResponses(events) {
				writeJSON(w, http.StatusOK, joinEvents(events))
				s.mu.Lock()
				s.next, s.unsent, s.kept = s.first+len(s.events), 0, 0
				s.trim()
				s.mu.Unlock()
				return true
			}
			if !waiting || closed || broken {
				break
			}
			select {
			case <-s.wake:
			case <-grace.C:
				break wait
			case <-ctx.Done():
				return false
			}
		}
	}
	rc := http.NewResponseController(w)
	if !s.begun {
		w.Header().Set("Content-Type", "text/event-stream")
		w.Header().Set("Cache-Control", "no-cache, no-transform")
		w.WriteHeader(http.StatusOK)
	}
	s.mu.Lock()
	quiet := s.next == s.first+len(s.events) && !s.closed
	s.mu.Unlock()
	if s.standalone {
		// A stream that may stay quiet: send something so the headers
		// travel now (proxies hold a HEADERS frame until DATA follows).
		w.Write([]byte(": ok\n\n"))
	}
	if s.standalone || quiet {
		// Nothing to send with them: the headers go now, for a client
		// that waits for them before it sends anything else.
		_ = rc.Flush()
	}
	for {
		s.mu.Lock()
		if s.broken {
			s.mu.Unlock()
			return false
		}
		var buf []byte
		for ; s.next < s.first+len(s.events); s.next++ {
			e := s.events[s.next-s.first].msg
			id := ""
			if s.id != "" {
				id = eventID(s.id, s.next)
			}
			buf = appendSSEEvent(buf, id, e)
			s.kept += len(e)
		}
		s.unsent = 0
		s.trim()
		done := s.closed
		s.mu.Unlock()
		if len(buf) > 0 {
			if _, err := w.Write(buf); err != nil {
				return false
			}
			if err := rc.Flush(); err != nil {
				return false
			}
		}
		if done {
			return true
		}
		select {
		case <-s.wake:
		case <-ctx.Done():
			return false
		}
	}
}

func (s *sseStream) serveJSON(ctx context.Context, w http.ResponseWriter) bool {
	for {
		s.mu.Lock()
		closed, broken := s.closed, s.broken
		events := s.events
		s.mu.Unlock()
		if broken {
			http.Error(w, "Bad Gateway: response too large", http.StatusBadGateway)
			return false
		}
		if closed {
			body := joinEvents(events)
			if body == nil {
				w.WriteHeader(http.StatusAccepted)
				return true
			}
			writeJSON(w, http.StatusOK, body)
			return true
		}
		select {
		case <-s.wake:
		case <-ctx.Done():
			return false
		}
	}
}

// allResponses reports whether every message is a JSON-RPC response: what
// a JSON body may carry.
func allResponses(events []event) bool {
	for _, e := range events {
		if !e.response {
			return false
		}
	}
	return true
}

// joinEvents is joinReplies of the events' messages.
func joinEvents(events []event) []byte {
	if len(events) == 1 {
		return events[0].msg // the common answer, without a copy
	}
	msgs := make([][]byte, len(events))
	for i, e := range events {
		msgs[i] = e.msg
	}
	return joinReplies(msgs)
}
