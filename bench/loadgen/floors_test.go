package main

import (
	"strings"
	"testing"
)

// The floor report: each configuration against its floor, per-round
// ratios, and the targets' verdicts from the same rounds.
func TestFloorReport(t *testing.T) {
	var rs []Result
	for round, p50s := range []map[string]float64{
		{"direct": 100, "relay": 200, "wrap-batch": 240, "wrap-strict": 700, "bridge": 300, "serve-batch": 600},
		{"direct": 110, "relay": 200, "wrap-batch": 260, "wrap-strict": 800, "bridge": 310, "serve-batch": 620},
		{"direct": 90, "relay": 190, "wrap-batch": 230, "wrap-strict": 600, "bridge": 290, "serve-batch": 580},
	} {
		for l, p := range p50s {
			rs = append(rs, Result{Label: l, Sessions: 1, Round: round + 1, P50us: p, Throughput: 1000})
			tput := 1000.0
			if l == "serve-batch" {
				tput = 900 // 90 % of the bridge's: under 95 %
			}
			rs = append(rs, Result{Label: l, Sessions: 32, Round: round + 1, P50us: p * 10, Throughput: tput})
		}
		rs = append(rs, Result{Label: fsyncLabel, Sessions: 1, Round: round + 1, P50us: 300})
	}
	o := reportOptions{order: splitList("direct,relay,wrap-strict,wrap-batch,bridge,serve-batch"), direct: "direct", ref: "mcp-proxy", throughputAt: 32}
	o.floors.of, _ = parsePairs("wrap-batch=relay,wrap-strict=relay,serve-batch=bridge")
	o.floors.setDefaults()
	var b strings.Builder
	writeReport(&b, rs, o)
	out := b.String()
	for _, want := range []string{
		// 1 session: wrap-batch adds 140 over direct's 100, relay 100: 1.40×.
		"- wrap-batch added p50 ≤ 1.5× relay's, 1 session(s): +140 vs +100 µs = 1.40×, limit +150 µs → **PASS**",
		// serve-batch adds 500 against the bridge's 200: 2.50×.
		"- serve-batch added p50 ≤ 1.2× bridge's, 1 session(s): +500 vs +200 µs = 2.50×, limit +240 µs → **FAIL**",
		// wrap-strict adds 600; the limit is 100 + 1.3 × 300 = 490.
		"- wrap-strict added p50 ≤ relay's + 1.3× one fdatasync, 1 session(s): +600 µs, limit +100 + 1.3 × 300 = +490 µs → **FAIL**",
		"- serve-batch calls/s ≥ 95 % of bridge's at 32 sessions, no errors: 900 vs 1,000 calls/s = 90.0 %, 0 errors → **FAIL**",
		"- wrap-batch calls/s ≥ 90 % of relay's at 32 sessions, no errors: 1,000 vs 1,000 calls/s = 100.0 %, 0 errors → **PASS**",
		// Per round: 140/100, 150/90, 140/100.
		"| 1.40× (1.40–1.67, 3 rounds) |",
		"One fdatasync of a 4 KB write (`loadgen fsync`, p50 of 200, median over 3 round(s)): 300 µs",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("the report lacks %q\n%s", want, out)
		}
	}
	if strings.Contains(out, "| fsync |") {
		t.Errorf("the fsync result is a row of the main table:\n%s", out)
	}
}

// loadgen fsync times as many write-and-sync pairs as asked, on the
// directory given.
func TestFsyncTimes(t *testing.T) {
	lat, err := fsyncTimes(t.TempDir(), 5)
	if err != nil {
		t.Fatal(err)
	}
	if len(lat) != 5 {
		t.Fatalf("%d timings, want 5", len(lat))
	}
	for _, d := range lat {
		if d <= 0 {
			t.Fatalf("a timing of %v", d)
		}
	}
	if _, err := fsyncTimes(t.TempDir()+"/missing", 1); err == nil {
		t.Fatal("no error for a directory that does not exist")
	}
}
