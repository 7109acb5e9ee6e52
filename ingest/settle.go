package ingest

import (
	"encoding/json"
	"time"

	"github.com/mcptrail/mcptrail/ingest/envelope"
	"github.com/mcptrail/mcptrail/store"
)

// An AnswerFirstRecorder says whether an answered call's outcome may be
// recorded after the answer is forwarded. The daemon (serve) does under
// batch durability: an outcome never holds up its answer there (a failure
// to record it is logged, not turned into an error for the receiver), and
// the agent cannot stop the daemon between the two. Under strict
// durability it may not: the outcome is on disk before its answer goes
// on. Nor does wrap's recorder: the agent can kill its wrap the moment it
// has an answer, and the outcome must be in the daemon's reach by then.
type AnswerFirstRecorder interface {
	AnswersFirst() bool
}

// unsettled is an answered call's outcome that FromServerAnswerFirst left
// for Settle, with everything outcome needs, taken when the answer came.
type unsettled struct {
	p        *pending
	reqFrom  string
	outcome  string
	result   json.RawMessage
	rpcErr   json.RawMessage
	detail   string
	answered time.Time // the call's duration ends here, not when it is recorded
}

// answersFirst reports whether the recorder lets outcomes follow answers.
func (s *Session) answersFirst() bool {
	af, ok := s.rec.(AnswerFirstRecorder)
	return ok && af.AnswersFirst()
}

// FromServerAnswerFirst is FromServerRead for a transport that forwards
// the answer at once and then calls Settle. When the recorder allows it
// (AnswerFirstRecorder), the outcome of the call a server's response
// answers is left for Settle, so that building and recording it (the
// result's redaction, the event's encoding, the store's append and the
// detections) is off the answer's path, or runs while another goroutine
// writes the answer. Nothing is lost or reordered for it: whatever the
// Session handles next (the client's next message, a Close) records the
// outcome first. r's bytes must stay as they are until then.
func (s *Session) FromServerAnswerFirst(r *envelope.Read) (forward, reply []byte) {
	return s.handle(store.FromServer, r.Raw(), r, nil, true)
}

// Settle records the outcome FromServerAnswerFirst left, if any. The
// Session settles before it handles any message or closes, so a
// transport that does not get round to it loses nothing.
func (s *Session) Settle() {
	s.settleMu.Lock()
	defer s.settleMu.Unlock()
	s.settleLocked()
}

// settleLocked records s.later; settleMu is held, so that a message
// handled meanwhile on another goroutine waits and is recorded after it.
func (s *Session) settleLocked() {
	u := s.later
	s.later = nil
	if u != nil {
		s.recordOutcome(u.p, u.reqFrom, u.outcome, u.result, u.rpcErr, u.detail, u.answered)
	}
}

// leave keeps u for Settle; one left before it is recorded first.
func (s *Session) leave(u *unsettled) {
	s.settleMu.Lock()
	defer s.settleMu.Unlock()
	s.settleLocked()
	s.later = u
}
