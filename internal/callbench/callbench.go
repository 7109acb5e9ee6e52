// Package callbench measures MCP tool-call latency for the benchmarks of the
// gateway (ingest, e2e): the same calls spread over one or more client
// sessions, reported as p50, p99 and throughput.
package callbench

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// Run makes b.N calls of params, spread over sessions, after one warm-up call
// per session, and reports p50-µs, p99-µs and calls/s.
func Run(b *testing.B, sessions []*mcp.ClientSession, params *mcp.CallToolParams) {
	ctx := context.Background()
	for _, cs := range sessions { // the first calls pay for schema caches
		if _, err := cs.CallTool(ctx, params); err != nil {
			b.Fatal(err)
		}
	}
	lat := make([]time.Duration, b.N)
	var wg sync.WaitGroup
	b.ResetTimer()
	start := time.Now()
	for w, cs := range sessions {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < b.N; i += len(sessions) {
				t0 := time.Now()
				if _, err := cs.CallTool(ctx, params); err != nil {
					b.Error(err)
					return
				}
				lat[i] = time.Since(t0)
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	b.StopTimer()
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-µs")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-µs")
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "calls/s")
}
