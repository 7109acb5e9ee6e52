package daemon

import (
	"encoding/json"
	"slices"
	"syscall"
	"testing"
	"time"

	"github.com/mcptrail/mcptrail/store"
)

// What a wrap's request costs before it may be forwarded: one Record
// through the daemon's socket, from a Client to a real daemon and store.
// p50/p90 are per-call latencies.
func BenchmarkClientRecordBatch(b *testing.B)  { benchClientRecord(b, "batch") }
func BenchmarkClientRecordStrict(b *testing.B) { benchClientRecord(b, "strict") }

func benchClientRecord(b *testing.B, durability string) {
	d := startQuiet(b, durability)
	c, err := Dial(d.paths.Home)
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	lat := make([]time.Duration, 0, b.N)
	for i := 0; b.Loop(); i++ {
		ev := &store.Event{Kind: store.KindRequest, Session: "bench", Upstream: "echo", Transport: "stdio", From: store.FromClient,
			Method: "tools/call", Tool: "echo", JSONRPCID: json.RawMessage("1"),
			Params: json.RawMessage(`{"name":"echo","arguments":{"text":"benchmark payload of a typical small size"}}`)}
		start := time.Now()
		if _, err := c.Record(ev, true); err != nil {
			b.Fatal(err)
		}
		lat = append(lat, time.Since(start))
	}
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-µs")
	b.ReportMetric(float64(lat[len(lat)*9/10].Microseconds()), "p90-µs")
}

// A wrap's records under batch durability: through the segment, and, for
// the difference, in groups over the socket (what wraps did before, and
// still do with a daemon that offers no segment). Both sides run in this
// process, so cpu-µs/record is the wrap's and the daemon's CPU together
// (the store's writer and commits included) per record, once the daemon
// has taken them all.
func BenchmarkClientRecordAheadSegment(b *testing.B) {
	benchClientRecordAhead(b, store.DurabilityBatch, true)
}
func BenchmarkClientRecordAheadSocket(b *testing.B) {
	benchClientRecordAhead(b, store.DurabilityBatch, false)
}

// The same under strict durability, where each request and each outcome
// waits for its record: Segment.Sync against AppendBatch with the event.
func BenchmarkClientStrictSegment(b *testing.B) {
	benchClientRecordAhead(b, store.DurabilityStrict, true)
}
func BenchmarkClientStrictSocket(b *testing.B) {
	benchClientRecordAhead(b, store.DurabilityStrict, false)
}

func benchClientRecordAhead(b *testing.B, durability string, segment bool) {
	d := startQuiet(b, durability)
	c, err := Dial(d.paths.Home)
	if err != nil {
		b.Fatal(err)
	}
	wantAhead := durability == store.DurabilityBatch
	if ahead, err := c.RecordAhead(); err != nil || ahead != wantAhead || c.seg == nil {
		b.Fatalf("RecordAhead = %v, %v (segment %v)", ahead, err, c.seg != nil)
	}
	if !segment {
		c.seg.close()
		c.seg = nil
	}
	params := json.RawMessage(`{"name":"echo","arguments":{"text":"benchmark payload of a typical small size"}}`)
	result := json.RawMessage(`{"content":[{"type":"text","text":"benchmark payload of a typical small size"}]}`)
	lat := make([]time.Duration, 0, 2*b.N)
	var ru0, ru1 syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru0)
	for b.Loop() {
		req := &store.Event{Kind: store.KindRequest, Session: "bench", Upstream: "echo", Transport: "stdio", From: store.FromClient,
			Method: "tools/call", Tool: "echo", JSONRPCID: json.RawMessage("1"), Params: params}
		start := time.Now()
		prov, err := c.Record(req, true)
		lat = append(lat, time.Since(start))
		if err != nil {
			b.Fatal(err)
		}
		out := &store.Event{Kind: store.KindCall, Session: "bench", Upstream: "echo", Transport: "stdio", From: store.FromClient,
			Method: "tools/call", Tool: "echo", JSONRPCID: json.RawMessage("1"), Call: prov, Outcome: store.OutcomeOK, Result: result}
		start = time.Now()
		if _, err := c.Record(out, true); err != nil {
			b.Fatal(err)
		}
		lat = append(lat, time.Since(start))
	}
	if err := c.Close(); err != nil {
		b.Fatal(err)
	}
	if err := d.store.Flush(); err != nil {
		b.Fatal(err)
	}
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru1)
	b.StopTimer()
	cpu := time.Duration(syscall.TimevalToNsec(ru1.Utime) - syscall.TimevalToNsec(ru0.Utime) +
		syscall.TimevalToNsec(ru1.Stime) - syscall.TimevalToNsec(ru0.Stime))
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Nanoseconds())/1e3, "p50-µs")
	b.ReportMetric(float64(cpu.Microseconds())/float64(len(lat)), "cpu-µs/record")
}
