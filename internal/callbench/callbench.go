// Package callbench measures MCP tool-call latency for the benchmarks of the
// gateway (ingest, e2e): the same calls spread over one or more client
// sessions, reported as p50, p99 and throughput.
package callbench

import (
	"context"
	"runtime/metrics"
	"slices"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// Run makes b.N calls of params, spread over sessions, after one warm-up call
// per session, and reports p50-µs, p99-µs, calls/s and cpu-µs/call: the CPU
// time of this process (client and, in-process, gateway and store; not the
// upstream's process) per call. On this 2-core VM the cores are near
// saturated during a run, so CPU a gateway adds shows in latency too; and
// unlike latency, CPU per call moves by a few µs between processes, not by
// tens, so it tells small changes apart in a few runs. It also reports the
// collector's cycles per 1,000 calls and the live heap (the mean of what
// each cycle left, sampled every 64 calls): in-process, the client's garbage
// paces the collector, and what the gateway and its store keep live
// shortens the way to each cycle.
func Run(b *testing.B, sessions []*mcp.ClientSession, params *mcp.CallToolParams) {
	ctx := context.Background()
	for _, cs := range sessions { // the first calls pay for schema caches
		if _, err := cs.CallTool(ctx, params); err != nil {
			b.Fatal(err)
		}
	}
	lat := make([]time.Duration, b.N)
	var wg sync.WaitGroup
	gc := []metrics.Sample{{Name: "/gc/cycles/total:gc-cycles"}, {Name: "/gc/heap/live:bytes"}}
	var live, samples uint64
	b.ResetTimer()
	metrics.Read(gc)
	cycles0 := gc[0].Value.Uint64()
	cpu0 := cpuTime()
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
				if w == 0 && i%64 == 0 {
					metrics.Read(gc[1:])
					live += gc[1].Value.Uint64()
					samples++
				}
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	cpu := cpuTime() - cpu0
	metrics.Read(gc[:1])
	b.StopTimer()
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-µs")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-µs")
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "calls/s")
	b.ReportMetric(float64(cpu.Microseconds())/float64(b.N), "cpu-µs/call")
	b.ReportMetric(float64(gc[0].Value.Uint64()-cycles0)*1000/float64(b.N), "gc/1000calls")
	if samples > 0 {
		b.ReportMetric(float64(live/samples)/1024, "live-KB")
	}
}

// cpuTime is the user and system CPU time this process has used.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// Paired makes b.N calls of params on each of direct and via, alternating
// between them (and which goes first in each pair), after a warm-up call on
// each, and reports the p50 and p99 of each and what via adds to direct.
//
// Both paths then meet the machine at the same moments. On a shared VM the
// same benchmark's p50 differs from one process to the next by up to ±80 µs
// (BENCHMARKS.md), more than the differences it is asked to measure, so
// paths compared across processes need many rounds to tell apart.
func Paired(b *testing.B, direct, via *mcp.ClientSession, params *mcp.CallToolParams) {
	ctx := context.Background()
	for _, cs := range []*mcp.ClientSession{direct, via} {
		if _, err := cs.CallTool(ctx, params); err != nil {
			b.Fatal(err)
		}
	}
	lat := [2][]time.Duration{make([]time.Duration, b.N), make([]time.Duration, b.N)}
	sessions := [2]*mcp.ClientSession{direct, via}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		for k := range 2 {
			p := (i + k) % 2
			t0 := time.Now()
			if _, err := sessions[p].CallTool(ctx, params); err != nil {
				b.Fatal(err)
			}
			lat[p][i] = time.Since(t0)
		}
	}
	b.StopTimer()
	for p := range lat {
		slices.Sort(lat[p])
	}
	q := func(p int, f float64) float64 { return float64(lat[p][int(float64(b.N)*f)].Microseconds()) }
	b.ReportMetric(q(0, 0.5), "direct-p50-µs")
	b.ReportMetric(q(1, 0.5), "p50-µs")
	b.ReportMetric(q(1, 0.5)-q(0, 0.5), "added-p50-µs")
	b.ReportMetric(q(1, 0.99)-q(0, 0.99), "added-p99-µs")
}
