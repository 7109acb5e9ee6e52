package ingest

import (
	"errors"
	"strings"
	"sync"
	"testing"

	"github.com/mcptrail/mcptrail/store"
)

// outcomeRecorder notes how each event was recorded, and can fail the
// outcomes (kind call) as a daemon killed mid-call would.
type outcomeRecorder struct {
	mu          sync.Mutex
	durable     map[string]bool // kind → durable flag of its last record
	failOutcome bool
	seq         uint64
}

func (r *outcomeRecorder) Record(ev *store.Event, durable bool) (uint64, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if ev.Kind == store.KindCall && r.failOutcome {
		return 0, errors.New("daemon gone")
	}
	r.durable[ev.Kind] = durable
	r.seq++
	ev.Seq = r.seq
	return r.seq, nil
}

// The outcome of an answered call is recorded durably (committed before
// the answer goes on, in strict mode); when it cannot be recorded, the
// answer is withheld and its receiver gets an error in its place.
func TestAnsweredOutcomeIsDurableOrTheAnswerIsWithheld(t *testing.T) {
	rec := &outcomeRecorder{durable: map[string]bool{}}
	s := NewSession(SessionInfo{ID: "s"}, rec, Hooks{}, Limits{}, nil)
	call := `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"t","arguments":{}}}`
	answer := `{"jsonrpc":"2.0","id":1,"result":{"content":[]}}`
	if fwd, _ := s.FromClient([]byte(call), nil); fwd == nil {
		t.Fatal("call not forwarded")
	}
	if fwd, _ := s.FromServer([]byte(answer)); string(fwd) != answer {
		t.Fatalf("answer forwarded as %q", fwd)
	}
	if !rec.durable[store.KindCall] {
		t.Fatal("the outcome of an answered call was recorded without waiting for it to be durable")
	}

	rec.failOutcome = true
	s.FromClient([]byte(strings.Replace(call, `"id":1`, `"id":2`, 1)), nil)
	fwd, _ := s.FromServer([]byte(strings.Replace(answer, `"id":1`, `"id":2`, 1)))
	if !strings.Contains(string(fwd), `"error"`) || !strings.Contains(string(fwd), "withheld") || !strings.Contains(string(fwd), `"id":2`) || strings.Contains(string(fwd), "content") {
		t.Fatalf("an answer whose outcome was not recorded went on as %q", fwd)
	}
}
