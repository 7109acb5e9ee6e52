package main

import (
	"fmt"
	"io"
	"math"
	"slices"
	"strings"
)

// fsyncLabel is the result `loadgen fsync` prints: one fdatasync of a 4 KB
// write, measured in the rounds like the configurations.
const fsyncLabel = "fsync"

// floorTargets compare mcptrail's configurations with the floor of their
// topology: the bare process (bench/relay, bench/bridge) that sits where
// mcptrail sits and only moves bytes.
type floorTargets struct {
	of map[string]string // configuration → its floor

	latency     map[string]float64 // batch: added p50 ≤ this × the floor's
	strictSyncs float64            // strict: added p50 ≤ the floor's + this × one fdatasync
	strict      []string
	throughput  map[string]float64 // at the most sessions: calls/s ≥ this × the floor's
}

func (f *floorTargets) setDefaults() {
	f.latency = map[string]float64{"wrap-batch": 1.5, "serve-batch": 1.2}
	f.strictSyncs = 1.3
	f.strict = []string{"wrap-strict", "serve-strict"}
	f.throughput = map[string]float64{"wrap-batch": 0.90, "serve-batch": 0.95}
}

func parsePairs(s string) (map[string]string, error) {
	out := map[string]string{}
	for _, p := range splitList(s) {
		k, v, ok := strings.Cut(p, "=")
		if !ok || k == "" || v == "" {
			return nil, fmt.Errorf("%q is not CONFIG=FLOOR", p)
		}
		out[k] = v
	}
	return out, nil
}

// roundKey is one configuration's run in one round.
type roundKey struct {
	label           string
	sessions, round int
}

// perRound is, for each round where cfg, its floor and direct all ran,
// cfg's added p50 over its floor's (both over direct in that round).
func perRound(results []Result, cfg, floor, direct string, sessions int) []float64 {
	byKey := map[roundKey]Result{}
	for _, r := range results {
		if r.Failed == "" {
			byKey[roundKey{r.Label, r.Sessions, r.Round}] = r
		}
	}
	var out []float64
	for k, r := range byKey {
		if k.label != cfg || k.sessions != sessions {
			continue
		}
		f, okf := byKey[roundKey{floor, sessions, k.round}]
		d, okd := byKey[roundKey{direct, sessions, k.round}]
		if okf && okd && f.P50us > d.P50us {
			out = append(out, (r.P50us-d.P50us)/(f.P50us-d.P50us))
		}
	}
	slices.Sort(out)
	return out
}

// writeFloors prints each configuration against its floor, and the floor
// targets.
func writeFloors(w io.Writer, results, fsyncs []Result, cells map[key]*cell, sessionCounts []int, o reportOptions) {
	f := o.floors
	var cfgs []string
	for _, l := range o.order {
		if _, ok := f.of[l]; ok {
			cfgs = append(cfgs, l)
		}
	}
	if len(cfgs) == 0 {
		return
	}
	var syncs []float64
	for _, r := range fsyncs {
		if r.Failed == "" {
			syncs = append(syncs, r.P50us)
		}
	}
	sync := median(syncs)
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Floors (same run): each configuration's added p50 as a multiple of its floor's added p50, and its calls/s as a share of the floor's.")
	if len(syncs) > 0 {
		fmt.Fprintf(w, "One fdatasync of a 4 KB write (`loadgen fsync`, p50 of 200, median over %d round(s)): %s µs (%s–%s).\n", len(syncs), num(sync), num(slices.Min(syncs)), num(slices.Max(syncs)))
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "| config | sessions | added p50 | floor | floor's added p50 | ÷ floor's (medians) | ÷ floor's per round: median (min–max) | calls/s ÷ floor's |")
	fmt.Fprintln(w, "|---|---:|---:|---|---:|---:|---:|---:|")
	for _, s := range sessionCounts {
		direct := cells[key{o.direct, s}]
		for _, l := range cfgs {
			c, fl := cells[key{l, s}], cells[key{f.of[l], s}]
			if c == nil || fl == nil || direct == nil {
				continue
			}
			a, fa := c.p50-direct.p50, fl.p50-direct.p50
			pr := perRound(results, l, f.of[l], o.direct, s)
			spread := "—"
			if len(pr) > 0 {
				spread = fmt.Sprintf("%.2f× (%.2f–%.2f, %d rounds)", median(pr), pr[0], pr[len(pr)-1], len(pr))
			}
			fmt.Fprintf(w, "| %s | %d | %s | %s | %s | %s | %s | %s |\n", describe(l), s, signed(a), f.of[l], signed(fa), ratio(a, fa), spread, percent(c.tput, fl.tput))
		}
	}

	fmt.Fprintln(w)
	fmt.Fprintln(w, "Floor targets:")
	fmt.Fprintln(w)
	if len(sessionCounts) > 0 {
		s := sessionCounts[0]
		direct := cells[key{o.direct, s}]
		for _, l := range cfgs {
			lim, ok := f.latency[l]
			if !ok {
				continue
			}
			what := fmt.Sprintf("%s added p50 ≤ %g× %s's, %d session(s)", l, lim, f.of[l], s)
			c, fl := cells[key{l, s}], cells[key{f.of[l], s}]
			if c == nil || fl == nil || direct == nil {
				fmt.Fprintf(w, "- %s: not measured\n", what)
				continue
			}
			a, fa := c.p50-direct.p50, fl.p50-direct.p50
			fmt.Fprintf(w, "- %s: %s vs %s µs = %s, limit %s µs → **%s**\n", what, signed(a), signed(fa), ratio(a, fa), signed(lim*fa), passFail(fa > 0 && a <= lim*fa))
		}
		for _, l := range f.strict {
			if _, ok := f.of[l]; !ok || !slices.Contains(cfgs, l) {
				continue
			}
			what := fmt.Sprintf("%s added p50 ≤ %s's + %g× one fdatasync, %d session(s)", l, f.of[l], f.strictSyncs, s)
			c, fl := cells[key{l, s}], cells[key{f.of[l], s}]
			if c == nil || fl == nil || direct == nil || math.IsNaN(sync) {
				fmt.Fprintf(w, "- %s: not measured\n", what)
				continue
			}
			a, fa := c.p50-direct.p50, fl.p50-direct.p50
			limit := fa + f.strictSyncs*sync
			fmt.Fprintf(w, "- %s: %s µs, limit %s + %g × %s = %s µs → **%s**\n", what, signed(a), signed(fa), f.strictSyncs, num(sync), signed(limit), passFail(a <= limit))
		}
	}
	at := o.throughputAt
	for _, l := range cfgs {
		share, ok := f.throughput[l]
		if !ok {
			continue
		}
		what := fmt.Sprintf("%s calls/s ≥ %.0f %% of %s's at %d sessions, no errors", l, share*100, f.of[l], at)
		c, fl := cells[key{l, at}], cells[key{f.of[l], at}]
		if c == nil || fl == nil {
			fmt.Fprintf(w, "- %s: not measured\n", what)
			continue
		}
		ok = fl.tput > 0 && c.tput >= share*fl.tput && c.errors == 0 && c.failed == 0
		fmt.Fprintf(w, "- %s: %s vs %s calls/s = %s, %d errors → **%s**\n", what, num(c.tput), num(fl.tput), percent(c.tput, fl.tput), c.errors, passFail(ok))
	}
}

func percent(a, b float64) string {
	if b <= 0 || math.IsNaN(a) || math.IsNaN(b) {
		return "n/a"
	}
	return fmt.Sprintf("%.1f %%", 100*a/b)
}
