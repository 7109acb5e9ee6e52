package main

import (
	"bytes"
	"math"
	"strings"
	"testing"
	"time"
)

func TestPercentileNearestRank(t *testing.T) {
	// 1..100 µs: the p-th percentile by nearest rank is p µs.
	lat := make([]time.Duration, 100)
	for i := range lat {
		lat[i] = time.Duration(i+1) * time.Microsecond
	}
	for _, c := range []struct {
		p    float64
		want time.Duration
	}{{50, 50 * time.Microsecond}, {90, 90 * time.Microsecond}, {99, 99 * time.Microsecond}, {100, 100 * time.Microsecond}, {0.1, time.Microsecond}} {
		if got := percentile(lat, c.p); got != c.want {
			t.Errorf("percentile(1..100 µs, %v) = %v, want %v", c.p, got, c.want)
		}
	}
	// Small samples: p50 of 4 is the 2nd, p99 of 4 is the largest.
	four := []time.Duration{10, 20, 30, 40}
	if got := percentile(four, 50); got != 20 {
		t.Errorf("p50 of 4 = %v, want 20", got)
	}
	if got := percentile(four, 99); got != 40 {
		t.Errorf("p99 of 4 = %v, want 40", got)
	}
	if got := percentile(nil, 50); got != 0 {
		t.Errorf("p50 of none = %v, want 0", got)
	}
}

func TestSummarize(t *testing.T) {
	// Unsorted input; 10 calls of 1..10 ms over 2 s of wall time.
	lat := []time.Duration{}
	for _, ms := range []int{7, 3, 10, 1, 9, 2, 8, 4, 6, 5} {
		lat = append(lat, time.Duration(ms)*time.Millisecond)
	}
	var r Result
	summarize(&r, lat, 2*time.Second)
	want := Result{Calls: 10, P50us: 5000, P90us: 9000, P99us: 10000, MaxUs: 10000, MeanUs: 5500, Throughput: 5, WallS: 2}
	if r != want {
		t.Errorf("summarize = %+v\nwant        %+v", r, want)
	}
	var empty Result
	summarize(&empty, nil, time.Second)
	if empty.Calls != 0 || empty.P50us != 0 || empty.Throughput != 0 || empty.WallS != 1 {
		t.Errorf("summarize(no calls) = %+v", empty)
	}
}

func TestMedian(t *testing.T) {
	if got := median([]float64{3, 1, 2}); got != 2 {
		t.Errorf("median(3,1,2) = %v", got)
	}
	xs := []float64{4, 1, 3, 2}
	if got := median(xs); got != 2.5 {
		t.Errorf("median(4,1,3,2) = %v", got)
	}
	if xs[0] != 4 {
		t.Errorf("median sorted its argument: %v", xs)
	}
	if !math.IsNaN(median(nil)) {
		t.Error("median of none is not NaN")
	}
}

func TestIsWrite(t *testing.T) {
	var got []int
	for i := range 12 {
		if isWrite(i, 0.25) {
			got = append(got, i)
		}
	}
	if len(got) != 3 || got[0] != 3 || got[1] != 7 || got[2] != 11 {
		t.Errorf("writes at 0.25 = %v, want [3 7 11]", got)
	}
	for i := range 5 {
		if isWrite(i, 0) || !isWrite(i, 1) {
			t.Fatalf("isWrite(%d, 0|1) wrong", i)
		}
	}
}

func TestReportTargets(t *testing.T) {
	// Two rounds; medians: direct 100 µs, serve-batch 150 µs (+50),
	// mcp-proxy 500 µs (+400): 50/400 = 1/8 ≤ 1/7 → PASS. Throughput at 32:
	// serve-batch 1,000 vs mcp-proxy 250 = 4× < 5× → FAIL.
	res := []Result{
		{Label: "direct", Sessions: 1, P50us: 90, Throughput: 9000, Round: 1},
		{Label: "direct", Sessions: 1, P50us: 110, Throughput: 9000, Round: 2},
		{Label: "serve-batch", Sessions: 1, P50us: 150, Throughput: 6000, Round: 1},
		{Label: "serve-batch", Sessions: 1, P50us: 150, Throughput: 6000, Round: 2},
		{Label: "mcp-proxy", Sessions: 1, P50us: 400, Throughput: 2000, Round: 1},
		{Label: "mcp-proxy", Sessions: 1, P50us: 600, Throughput: 2000, Round: 2},
		{Label: "serve-batch", Sessions: 32, P50us: 900, Throughput: 1000, Round: 1},
		{Label: "mcp-proxy", Sessions: 32, P50us: 9000, Throughput: 250, Round: 1},
		{Label: "mcp-proxy", Sessions: 32, Failed: "did not start", Round: 2},
	}
	var b bytes.Buffer
	writeReport(&b, res, reportOptions{
		order: []string{"direct", "serve-batch", "mcp-proxy"}, direct: "direct", ref: "mcp-proxy",
		latencyTarget: "serve-batch", latencyRatio: 7,
		throughputTargets: []string{"serve-batch"}, throughputRatio: 5, throughputAt: 32,
	})
	out := b.String()
	for _, want := range []string{
		"| mcptrail serve, batch (HTTP in, audit on) | 1 | 150 | 0.0 | 0.0 | 150–150 | +50 | 0.12 (1/8.0) | 6,000 | 3.00× | 0 |",
		"1 session(s): +50 µs vs +400 µs = 0.12 (1/8.0), limit +57 µs → **PASS**",
		"serve-batch throughput ≥ 5× mcp-proxy's at 32 sessions: 1,000 vs 250 calls/s = 4.00×, needs 1,250 calls/s → **FAIL**",
		"| mcp-proxy (HTTP in, stream) | 32 |",
		"(1 of 2 runs failed)",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("report lacks %q:\n%s", want, out)
		}
	}
}

func TestNum(t *testing.T) {
	for in, want := range map[float64]string{0: "0.0", 9.94: "9.9", 12.6: "13", 1234.4: "1,234", 1234567: "1,234,567", -2500: "-2,500", math.NaN(): "—"} {
		if got := num(in); got != want {
			t.Errorf("num(%v) = %q, want %q", in, got, want)
		}
	}
}
