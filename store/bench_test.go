package store

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

func benchEvent(i int) *Event {
	ev := call(fmt.Sprintf("session-%d", i%64), []string{"read_file", "write_file", "list_directory"}[i%3])
	ev.Principal = &Principal{Subject: "alice", Kind: "os_user"}
	ev.JSONRPCID = json.RawMessage(fmt.Sprint(i))
	return ev
}

// BenchmarkCommit is the baseline: one bbolt transaction writing one small
// event, synced, which is what a strict Append costs at the least.
func BenchmarkCommit(b *testing.B) {
	db, err := bolt.Open(filepath.Join(b.TempDir(), "raw.db"), 0o600, nil)
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	data, _ := json.Marshal(benchEvent(0))
	if err := db.Update(func(tx *bolt.Tx) error { _, err := tx.CreateBucket(bEvents); return err }); err != nil {
		b.Fatal(err)
	}
	var seq uint64
	for b.Loop() {
		seq++
		if err := db.Update(func(tx *bolt.Tx) error { return tx.Bucket(bEvents).Put(u64(seq), data) }); err != nil {
			b.Fatal(err)
		}
	}
}

func benchAppend(b *testing.B, durability string, parallel bool) {
	s := tempStore(b, Options{Durability: durability})
	if parallel {
		b.SetParallelism(8) // gateway sessions waiting on their records
		b.RunParallel(func(pb *testing.PB) {
			for i := 0; pb.Next(); i++ {
				if _, err := s.Append(benchEvent(i)); err != nil {
					b.Error(err)
					return
				}
			}
		})
	} else {
		i := 0
		for b.Loop() {
			if _, err := s.Append(benchEvent(i)); err != nil {
				b.Fatal(err)
			}
			i++
		}
	}
	if err := s.Flush(); err != nil {
		b.Fatal(err)
	}
	b.StopTimer()
	st := s.Stats()
	b.ReportMetric(float64(st.Events)/float64(st.Commits), "events/commit")
}

func BenchmarkAppendStrict(b *testing.B)         { benchAppend(b, DurabilityStrict, false) }
func BenchmarkAppendStrictParallel(b *testing.B) { benchAppend(b, DurabilityStrict, true) }
func BenchmarkAppendBatch(b *testing.B)          { benchAppend(b, DurabilityBatch, false) }
func BenchmarkAppendBatchParallel(b *testing.B)  { benchAppend(b, DurabilityBatch, true) }

// BenchmarkQueryFirstPage reads the first page (100 events) of common
// queries on a store of 200k events.
func BenchmarkQueryFirstPage(b *testing.B) {
	const n = 200_000
	s := tempStore(b, Options{Durability: DurabilityBatch, MaxBatch: 10_000})
	start := time.Now().Add(-n * time.Millisecond)
	for i := range n {
		ev := benchEvent(i)
		ev.Time = start.Add(time.Duration(i) * time.Millisecond)
		if _, err := s.Append(ev); err != nil {
			b.Fatal(err)
		}
	}
	if err := s.Flush(); err != nil {
		b.Fatal(err)
	}
	mid := start.Add(n / 2 * time.Millisecond)
	for _, bc := range []struct {
		name string
		q    Query
	}{
		{"newest", Query{Newest: true}},
		{"oldest", Query{}},
		{"session", Query{Session: "session-7", Newest: true}},
		{"tool+agent", Query{Tool: "write_file", Agent: "agent-1", Newest: true}},
		{"method", Query{Method: "tools/call"}}, // not indexed
		{"since", Query{Since: mid}},
		{"until-newest", Query{Until: mid, Newest: true}},
		{"session+since", Query{Session: "session-7", Since: mid}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			for b.Loop() {
				if _, err := s.Query(bc.q); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
	b.Run("sessions", func(b *testing.B) {
		for b.Loop() {
			if _, err := s.Sessions(SessionQuery{Limit: 50}); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// What an append costs the appender in batch mode (the gateway's path
// before it forwards a call): per-call p50/p90, the writer's work aside.
// Two appends then a Flush, like a call's request and outcome on a gateway
// that is not busy: the queue is short, so the writer encodes.
func BenchmarkAppendCallerBatch(b *testing.B) {
	s := tempStore(b, Options{Durability: DurabilityBatch})
	lat := make([]time.Duration, 0, b.N)
	for i := 0; b.Loop(); i++ {
		ev := benchEvent(i)
		start := time.Now()
		if _, err := s.Append(ev); err != nil {
			b.Fatal(err)
		}
		lat = append(lat, time.Since(start))
		if i%2 == 1 {
			b.StopTimer()
			if err := s.Flush(); err != nil {
				b.Fatal(err)
			}
			b.StartTimer()
		}
	}
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-µs")
	b.ReportMetric(float64(lat[len(lat)*9/10].Microseconds()), "p90-µs")
}

// What an append that does not wait costs its caller with a large body (a
// 108 KB tools/call result: a file a tool read): the gateway records every
// outcome so, before it relays the response.
func BenchmarkAppendNoWaitLargeBody(b *testing.B) {
	s := tempStore(b, Options{Durability: DurabilityBatch})
	ev := call("s1", "read_file")
	ev.Result = json.RawMessage(`{"content":[{"type":"text","text":"` + strings.Repeat("lorem ipsum dolor sit amet ", 4000) + `"}]}`)
	var caller time.Duration
	for i := 0; b.Loop(); i++ {
		start := time.Now()
		if _, err := s.AppendNoWait(ev); err != nil {
			b.Fatal(err)
		}
		caller += time.Since(start)
		if i%2 == 1 { // the writer's work, out of the measure
			b.StopTimer()
			if err := s.Flush(); err != nil {
				b.Fatal(err)
			}
			b.StartTimer()
		}
	}
	b.ReportMetric(float64(caller.Microseconds())/float64(b.N), "caller-µs")
}

// BenchmarkEncodeQueued is the writer's CPU for each event of a gateway
// call it encodes: a tools/call request and its outcome, with bodies as an
// MCP SDK writes them (compact).
func BenchmarkEncodeQueued(b *testing.B) {
	s := tempStore(b, Options{Durability: DurabilityBatch})
	req := benchEvent(1)
	req.Params = json.RawMessage(`{"name":"echo","arguments":{"text":"benchmark payload of a typical small size"}}`)
	out := benchEvent(2)
	out.Kind, out.Call, out.Outcome, out.Params = KindCall, 1, OutcomeOK, nil
	out.Result = json.RawMessage(`{"content":[{"type":"text","text":"benchmark payload of a typical small size"}]}`)
	events := []*Event{req, out}
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		e := events[i%2].Clone()
		p := s.encodeQueued(&e, true)
		recycleCanonical(p.canon0)
	}
}
