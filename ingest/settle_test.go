package ingest

import (
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/mcptrail/mcptrail/store"
)

// answerFirstRecorder is a memRecorder that says how it records
// (AnswerFirstRecorder), and can fail outcomes.
type answerFirstRecorder struct {
	memRecorder
	first       bool
	failOutcome bool
}

func (r *answerFirstRecorder) AnswersFirst() bool { return r.first }

func (r *answerFirstRecorder) Record(ev *store.Event, durable bool) (uint64, error) {
	if ev.Kind == store.KindCall && r.failOutcome {
		return 0, errors.New("daemon gone")
	}
	return r.memRecorder.Record(ev, durable)
}

func (r *answerFirstRecorder) count(kind string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, e := range r.evs {
		if e.Kind == kind {
			n++
		}
	}
	return n
}

func settleCall(id string) (call, answer string) {
	return `{"jsonrpc":"2.0","id":` + id + `,"method":"tools/call","params":{"name":"t","arguments":{}}}`,
		`{"jsonrpc":"2.0","id":` + id + `,"result":{"content":[{"type":"text","text":"done"}]}}`
}

// answerFirst hands the Session a server's message as a transport that
// forwards first does.
func answerFirst(s *Session, msg string) []byte {
	r := s.ReadMessage([]byte(msg))
	fwd, _ := s.FromServerAnswerFirst(&r)
	return fwd
}

// Under batch durability an answer goes on before its outcome is recorded,
// and Settle records it, with the call's duration ending at the answer.
// Under strict durability (or a recorder that does not say) the outcome is
// recorded before the answer goes on, as FromServer does.
func TestAnswerFirstOnlyWhereTheRecorderAllowsIt(t *testing.T) {
	for _, first := range []bool{true, false} {
		rec := &answerFirstRecorder{first: first}
		s := NewSession(SessionInfo{ID: "s"}, rec, Hooks{}, Limits{}, nil)
		call, answer := settleCall("1")
		s.FromClient([]byte(call), nil)
		if fwd := answerFirst(s, answer); string(fwd) != answer {
			t.Fatalf("first=%v: answer forwarded as %q", first, fwd)
		}
		answered := time.Now()
		if got, want := rec.count(store.KindCall), map[bool]int{true: 0, false: 1}[first]; got != want {
			t.Fatalf("first=%v: %d outcomes recorded before Settle, want %d", first, got, want)
		}
		// The gap the duration must not include: settling later does not
		// lengthen the call.
		time.Sleep(20 * time.Millisecond)
		s.Settle()
		if got := rec.count(store.KindCall); got != 1 {
			t.Fatalf("first=%v: %d outcomes after Settle, want 1", first, got)
		}
		out := rec.evs[len(rec.evs)-1]
		if out.Outcome != store.OutcomeOK || out.Call != rec.evs[0].Seq || !strings.Contains(string(out.Result), "done") {
			t.Fatalf("first=%v: outcome %+v", first, out)
		}
		if limit := time.Since(answered) - 10*time.Millisecond; time.Duration(out.DurationNS) > limit {
			t.Errorf("first=%v: the call lasted %v by the record, which counts the time before Settle", first, time.Duration(out.DurationNS))
		}
	}
}

// Whatever the Session handles after an answer went on is recorded after
// that answer's outcome, even when the transport has not settled yet: the
// client's next call (which it may send the moment it has the answer), the
// next answer, a Close.
func TestAnswerFirstKeepsTheRecordInOrder(t *testing.T) {
	rec := &answerFirstRecorder{first: true}
	s := NewSession(SessionInfo{ID: "s"}, rec, Hooks{}, Limits{}, nil)
	call1, answer1 := settleCall("1")
	call2, answer2 := settleCall("2")
	call3, answer3 := settleCall("3")
	s.FromClient([]byte(call1), nil)
	answerFirst(s, answer1)
	s.FromClient([]byte(call2), nil) // no Settle in between
	answerFirst(s, answer2)
	s.FromClient([]byte(call3), nil)
	answerFirst(s, answer3)
	s.Close(store.OutcomeUnknown, "client closed the session")
	if got, want := rec.kinds(), "request,call,request,call,request,call,session_end"; got != want {
		t.Fatalf("recorded %s, want %s", got, want)
	}
	for i := 1; i < 6; i += 2 {
		if rec.evs[i].Call != rec.evs[i-1].Seq || rec.evs[i].Outcome != store.OutcomeOK {
			t.Errorf("event %d: %+v", i, rec.evs[i])
		}
	}
}

// The client's next call, sent the moment it has the answer and handled
// on its own goroutine while the server's side has not settled (or is
// settling), is recorded after the answer's outcome, every time.
func TestAnswerFirstOrderAcrossGoroutines(t *testing.T) {
	rec := &answerFirstRecorder{first: true}
	s := NewSession(SessionInfo{ID: "s"}, rec, Hooks{}, Limits{}, nil)
	const calls = 300
	answers, delivered := make(chan string), make(chan struct{})
	go func() { // the server's side: answer, hand it over, then settle
		for a := range answers {
			answerFirst(s, a)
			delivered <- struct{}{}
			s.Settle()
		}
	}()
	for i := range calls {
		call, answer := settleCall(strconv.Itoa(i + 1))
		if fwd, reply := s.FromClient([]byte(call), nil); fwd == nil {
			t.Fatalf("call %d refused: %s", i, reply)
		}
		answers <- answer
		<-delivered
	}
	close(answers)
	s.Close(store.OutcomeUnknown, "done")
	rec.mu.Lock()
	defer rec.mu.Unlock()
	var kinds []string
	for _, e := range rec.evs {
		kinds = append(kinds, e.Kind)
	}
	want := strings.Repeat("request,call,", calls) + "session_end"
	if got := strings.Join(kinds, ","); got != want {
		i := 0
		for i < len(got) && i < len(want) && got[i] == want[i] {
			i++
		}
		t.Fatalf("the record's order differs from the calls' at byte %d: …%s…", i, got[max(0, i-40):min(len(got), i+40)])
	}
}

// Under batch durability an outcome that cannot be recorded does not
// withhold its answer (it has gone on already; the failure is logged).
// Under strict durability the answer is withheld, as before.
func TestAnswerFirstOutcomeFailure(t *testing.T) {
	for _, first := range []bool{true, false} {
		rec := &answerFirstRecorder{first: first, failOutcome: true}
		s := NewSession(SessionInfo{ID: "s"}, rec, Hooks{}, Limits{}, nil)
		call, answer := settleCall("7")
		s.FromClient([]byte(call), nil)
		fwd := answerFirst(s, answer)
		s.Settle()
		withheld := strings.Contains(string(fwd), "withheld")
		if withheld == first || (first && string(fwd) != answer) {
			t.Fatalf("first=%v: forwarded %q", first, fwd)
		}
	}
}
