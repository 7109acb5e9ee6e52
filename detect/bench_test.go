package detect

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/mcptrail/mcptrail/store"
)

// The cost detections add at ingest (Observe, per event) and at start
// (Rebuild: replaying the record's last 30 days of requests).
//
//	go test ./detect -run '^$' -bench . -benchtime 3x

func benchEvents(n int, at time.Time) []*store.Event {
	evs := make([]*store.Event, n)
	for i := range evs {
		evs[i] = &store.Event{Seq: uint64(i + 1), Kind: store.KindRequest, Time: at.Add(time.Duration(i) * time.Millisecond), Session: "s", Upstream: "fs",
			From: store.FromClient, Method: "tools/call", Tool: fmt.Sprintf("tool_%d", i%40), Class: []string{"read", "write"}[i%2],
			JSONRPCID: json.RawMessage(fmt.Sprint(i)), Agent: &store.Agent{ID: fmt.Sprintf("agent-%d", i%20)}}
	}
	return evs
}

type discard struct{ n int }

func (d *discard) AppendNoWait(*store.Event) (uint64, error) { d.n++; return 0, nil }

func BenchmarkObserve(b *testing.B) {
	eng, err := New(Defaults(), &discard{}, Options{})
	if err != nil {
		b.Fatal(err)
	}
	evs := benchEvents(100000, weekday)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		eng.Observe(evs[i%len(evs)])
	}
}

func BenchmarkRebuild100kRequests(b *testing.B) {
	st, err := store.Open(filepath.Join(b.TempDir(), "r.db"), store.Options{Durability: store.DurabilityBatch})
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	now := time.Now()
	for _, ev := range benchEvents(100000, now.Add(-time.Hour)) {
		ev.Seq = 0
		if _, err := st.AppendNoWait(ev); err != nil {
			b.Fatal(err)
		}
		out := &store.Event{Kind: store.KindCall, Time: ev.Time, Session: "s", Method: "tools/call", Tool: ev.Tool, Outcome: store.OutcomeOK, Agent: ev.Agent}
		if _, err := st.AppendNoWait(out); err != nil {
			b.Fatal(err)
		}
	}
	if err := st.Flush(); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		eng, _ := New(Defaults(), st, Options{})
		n, err := eng.Rebuild(st, 0)
		if err != nil || n != 100000 {
			b.Fatalf("replayed %d, %v", n, err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Milliseconds())/float64(b.N), "ms/rebuild")
}
