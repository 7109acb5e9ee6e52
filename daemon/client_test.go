package daemon

import (
	"encoding/json"
	"io"
	"log/slog"
	"strings"
	"testing"

	"github.com/mcptrail/mcptrail/config"
	"github.com/mcptrail/mcptrail/ingest"
	"github.com/mcptrail/mcptrail/store"
)

// startQuiet starts a daemon on loopback ports with its log discarded.
func startQuiet(t testing.TB, durability string) *Daemon {
	t.Helper()
	cfg := config.Default()
	cfg.Listen, cfg.SSH, cfg.Durability = "127.0.0.1:0", "127.0.0.1:0", durability
	d, err := start(Options{Config: cfg, Home: t.TempDir(), Version: "v-test", Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.close() })
	return d
}

func note(method string) *store.Event {
	return &store.Event{Kind: store.KindNotification, Session: "s", From: store.FromServer, Method: method}
}

// A record nobody waits for lingers for the next request's batch, but not
// for ever: with no request after it, it still reaches the store, in order.
func TestClientLingeringRecordsArrive(t *testing.T) {
	d := startQuiet(t, "strict")
	events, stop := d.store.Subscribe(16)
	defer stop()
	c, err := Dial(d.paths.Home)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for _, m := range []string{"notifications/a", "notifications/b"} {
		if seq, err := c.Record(note(m), false); err != nil || seq != 0 {
			t.Fatalf("Record(%s) = %d, %v", m, seq, err)
		}
	}
	for _, want := range []string{"notifications/a", "notifications/b"} {
		ev, ok := <-events
		if !ok || ev.Method != want {
			t.Fatalf("got %+v (open %v), want %s", ev, ok, want)
		}
	}
}

// Records still queued when a wrap hangs up are sent first, and a request
// takes the records before it along, in order.
func TestClientCloseSendsLingeringRecords(t *testing.T) {
	d := startQuiet(t, "strict")
	c, err := Dial(d.paths.Home)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Record(note("notifications/before"), false); err != nil {
		t.Fatal(err)
	}
	seq, err := c.Record(&store.Event{Kind: store.KindRequest, Session: "s", From: store.FromClient, Method: "tools/call", Tool: "x"}, true)
	if err != nil {
		t.Fatal(err)
	}
	if prev, err := d.store.Get(seq - 1); err != nil || prev.Method != "notifications/before" {
		t.Fatalf("before the request (seq %d): %+v, %v", seq, prev, err)
	}
	if _, err := c.Record(note("notifications/last"), false); err != nil {
		t.Fatal(err)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	d.store.Flush() // the daemon appended it without waiting
	if last, err := d.store.Get(seq + 1); err != nil || last.Method != "notifications/last" {
		t.Fatalf("after Close: %+v, %v", last, err)
	}
}

// Under batch durability a request gets a provisional seq at once, and the
// records that refer to it — in the same batch, or in a later one — are
// stored linked to the seq the store gave it.
func TestClientProvisionalSeqs(t *testing.T) {
	d := startQuiet(t, store.DurabilityBatch)
	c, err := Dial(d.paths.Home)
	if err != nil {
		t.Fatal(err)
	}
	if ahead, err := c.RecordAhead(); err != nil || !ahead {
		t.Fatalf("RecordAhead = %v, %v on a batch daemon", ahead, err)
	}
	request := func(tool string) (*store.Event, uint64) {
		ev := &store.Event{Kind: store.KindRequest, Session: "s", From: store.FromClient, Method: "tools/call", Tool: tool}
		seq, err := c.Record(ev, true)
		if err != nil || seq&provisional == 0 || ev.Seq != seq {
			t.Fatalf("Record(request %s) = %d, %v (ev.Seq %d), want a provisional seq", tool, seq, err, ev.Seq)
		}
		return ev, seq
	}
	outcome := func(tool string, call, logical uint64) {
		ev := &store.Event{Kind: store.KindCall, Session: "s", From: store.FromClient, Tool: tool, Call: call, LogicalCall: logical, Outcome: store.OutcomeOK}
		if _, err := c.Record(ev, false); err != nil {
			t.Fatal(err)
		}
	}
	_, p1 := request("same-batch")
	outcome("same-batch", p1, 0) // lingers with its request
	_, p2 := request("later-batch")
	s2, err := c.Resolve(p2) // sends it, and learns its seq
	if err != nil || s2 == 0 || s2&provisional != 0 {
		t.Fatalf("Resolve(%d) = %d, %v", p2, s2, err)
	}
	outcome("later-batch", p2, p1) // refers to both, in a batch of its own
	outcome("unknown", provisional|1<<40, 0)
	if again, err := c.Resolve(p2); err != nil || again != s2 {
		t.Fatalf("Resolve again = %d, %v, want %d", again, err, s2)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if err := d.store.Flush(); err != nil {
		t.Fatal(err)
	}

	seqOf := map[string]uint64{} // request tool → store seq
	var outcomes []*store.Event
	for seq := uint64(1); seq <= d.store.Last(); seq++ {
		ev, err := d.store.Get(seq)
		if err != nil {
			t.Fatal(err)
		}
		switch ev.Kind {
		case store.KindRequest:
			seqOf[ev.Tool] = ev.Seq
		case store.KindCall:
			outcomes = append(outcomes, ev)
		}
	}
	if seqOf["later-batch"] != s2 {
		t.Errorf("Resolve said %d, the store has the request at %d", s2, seqOf["later-batch"])
	}
	want := map[string][2]uint64{
		"same-batch":  {seqOf["same-batch"], 0},
		"later-batch": {s2, seqOf["same-batch"]},
		"unknown":     {0, 0},
	}
	if len(outcomes) != len(want) {
		t.Fatalf("%d outcomes stored, want %d", len(outcomes), len(want))
	}
	for _, ev := range outcomes {
		if w := want[ev.Tool]; ev.Call != w[0] || ev.LogicalCall != w[1] {
			t.Errorf("outcome of %s: call %d logical_call %d, want %d and %d", ev.Tool, ev.Call, ev.LogicalCall, w[0], w[1])
		}
	}
	if ev := outcomes[2]; !strings.Contains(ev.Detail, "not known") {
		t.Errorf("an outcome whose request's seq is unknown says %q", ev.Detail)
	}
}

// A strict daemon keeps every request waiting for its seq.
func TestClientNoProvisionalSeqsWhenStrict(t *testing.T) {
	d := startQuiet(t, store.DurabilityStrict)
	c, err := Dial(d.paths.Home)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if ahead, err := c.RecordAhead(); err != nil || ahead {
		t.Fatalf("RecordAhead = %v, %v on a strict daemon", ahead, err)
	}
	seq, err := c.Record(&store.Event{Kind: store.KindRequest, Session: "s", Method: "tools/call"}, true)
	if err != nil || seq != d.store.Last() {
		t.Fatalf("Record = %d, %v; the store's last seq is %d", seq, err, d.store.Last())
	}
}

// Wraps from before sent each event as encoded JSON (json.RawMessage):
// the same objects on the wire, which the daemon still takes.
func TestAppendBatchFromOlderWraps(t *testing.T) {
	d := startQuiet(t, store.DurabilityStrict)
	c, err := Dial(d.paths.Home)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	older := struct {
		Events  []json.RawMessage
		Durable []bool
	}{[]json.RawMessage{json.RawMessage(`{"kind":"notification","session":"s","from":"server","method":"notifications/older","params":{"a":[1, 2]}}`)}, []bool{true}}
	var reply AppendBatchReply
	if err := c.rpc.Call("Daemon.AppendBatch", older, &reply); err != nil || len(reply.Seqs) != 1 || reply.Errors[0] != "" {
		t.Fatalf("AppendBatch = %+v, %v", reply, err)
	}
	ev, err := d.store.Get(reply.Seqs[0])
	if err != nil || ev.Method != "notifications/older" || string(ev.Params) != `{"a":[1,2]}` {
		t.Fatalf("stored %+v, %v", ev, err)
	}
}

// The gateway may forward an answer before it records the call's outcome
// only where the daemon records (serve) under batch durability. Never
// under strict, where the outcome is on disk before the answer goes on,
// and never in wrap: an agent that kills its wrap the moment it has an
// answer must not erase that answer's outcome
// (e2e TestKillNineWrapBatchKeepsItsRecords), so wrap's client records it
// into the segment first.
func TestAnswersFirstOnlyInServeUnderBatch(t *testing.T) {
	for _, durability := range []string{store.DurabilityStrict, store.DurabilityBatch} {
		d := startQuiet(t, durability)
		if want := durability == store.DurabilityBatch; d.AnswersFirst() != want {
			t.Errorf("%s: the daemon answers first: %v, want %v", durability, d.AnswersFirst(), want)
		}
	}
	if _, ok := any(&Client{}).(ingest.AnswerFirstRecorder); ok {
		t.Error("wrap's client lets answers go before their outcomes are in the segment")
	}
}
