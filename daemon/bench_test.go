package daemon

import (
	"encoding/json"
	"slices"
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
