package main

import (
	"bufio"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"slices"
	"strconv"
	"strings"
)

// descriptions name bench/run's configuration labels in the table.
var descriptions = map[string]string{
	"direct":       "direct (stdio, no bridge)",
	"wrap-strict":  "mcptrail wrap, strict (stdio in, audit on)",
	"wrap-batch":   "mcptrail wrap, batch (stdio in, audit on)",
	"serve-strict": "mcptrail serve, strict (HTTP in, audit on)",
	"serve-batch":  "mcptrail serve, batch (HTTP in, audit on)",
	"supergateway": "supergateway (HTTP in, stateful)",
	"mcp-proxy":    "mcp-proxy (HTTP in, stream)",
	"relay":        "relay floor (stdio in, copies bytes)",
	"bridge":       "bridge floor (HTTP in, no recording)",
}

func describe(label string) string {
	if d, ok := descriptions[label]; ok {
		return d
	}
	if base, ok := strings.CutSuffix(label, "-base"); ok {
		if d, ok := descriptions[base]; ok {
			return d + " — base revision"
		}
	}
	return label
}

type reportOptions struct {
	order             []string
	direct, ref       string
	latencyTarget     string
	latencyRatio      float64
	throughputTargets []string
	throughputRatio   float64
	throughputAt      int
	floors            floorTargets
}

// cell is one configuration at one session count: the medians over its
// rounds.
type cell struct {
	label                  string
	sessions               int
	rounds, failed, errors int
	p50, p90, p99, tput    float64
	p50min, p50max         float64
	eventsPerCall          float64 // NaN when not audited
	firstError             string
}

type key struct {
	label    string
	sessions int
}

func reportMain(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("loadgen report", flag.ContinueOnError)
	fs.SetOutput(stderr)
	order := fs.String("order", "direct,wrap-strict,wrap-batch,serve-strict,serve-batch,supergateway,mcp-proxy", "configurations, in table order (others follow)")
	var o reportOptions
	fs.StringVar(&o.direct, "direct", "direct", "the baseline configuration (no bridge)")
	fs.StringVar(&o.ref, "ref", "mcp-proxy", "the bridge the targets compare against")
	fs.StringVar(&o.latencyTarget, "latency-target", "serve-batch", "configuration whose added p50 must be ≤ 1/ratio of the reference's")
	fs.Float64Var(&o.latencyRatio, "latency-ratio", 7, "")
	tt := fs.String("throughput-targets", "serve-batch,serve-strict,wrap-batch,wrap-strict", "configurations whose throughput must be ≥ ratio × the reference's")
	fs.Float64Var(&o.throughputRatio, "throughput-ratio", 5, "")
	fs.IntVar(&o.throughputAt, "throughput-sessions", 32, "session count the throughput target applies to")
	floors := fs.String("floors", "wrap-batch=relay,wrap-strict=relay,serve-batch=bridge,serve-strict=bridge,"+
		"wrap-batch-base=relay,wrap-strict-base=relay,serve-batch-base=bridge,serve-strict-base=bridge", "each configuration's floor: the bare process of its topology")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	var err error
	if o.floors.of, err = parsePairs(*floors); err != nil {
		fmt.Fprintln(stderr, "loadgen report: --floors:", err)
		return 2
	}
	o.floors.setDefaults()
	o.order = splitList(*order)
	o.throughputTargets = splitList(*tt)
	var results []Result
	for _, name := range fs.Args() {
		rs, err := readResults(name)
		if err != nil {
			fmt.Fprintln(stderr, "loadgen report:", err)
			return 2
		}
		results = append(results, rs...)
	}
	if len(results) == 0 {
		fmt.Fprintln(stderr, "loadgen report: no results")
		return 2
	}
	writeReport(stdout, results, o)
	return 0
}

func splitList(s string) []string {
	var out []string
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}

func readResults(name string) ([]Result, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []Result
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" {
			continue
		}
		var r Result
		if err := json.Unmarshal([]byte(line), &r); err != nil {
			return nil, fmt.Errorf("%s:%d: %v", name, n, err)
		}
		out = append(out, r)
	}
	return out, sc.Err()
}

// aggregate groups results by configuration and session count and takes the
// median of each measure over the rounds that ran.
func aggregate(results []Result) map[key]*cell {
	groups := map[key][]Result{}
	for _, r := range results {
		k := key{r.Label, r.Sessions}
		groups[k] = append(groups[k], r)
	}
	cells := map[key]*cell{}
	for k, rs := range groups {
		c := &cell{label: k.label, sessions: k.sessions, eventsPerCall: math.NaN()}
		var p50, p90, p99, tput, epc []float64
		for _, r := range rs {
			c.rounds++
			if r.Failed != "" {
				c.failed++
				if c.firstError == "" {
					c.firstError = r.Failed
				}
				continue
			}
			c.errors += r.Errors + r.WarmupErrs
			if r.FirstError != "" && c.firstError == "" {
				c.firstError = r.FirstError
			}
			p50 = append(p50, r.P50us)
			p90 = append(p90, r.P90us)
			p99 = append(p99, r.P99us)
			tput = append(tput, r.Throughput)
			if r.Recorded > 0 {
				if attempted := r.Calls + r.Errors + r.Sessions*r.Warmup; attempted > 0 {
					epc = append(epc, float64(r.Recorded)/float64(attempted))
				}
			}
		}
		c.p50, c.p90, c.p99, c.tput = median(p50), median(p90), median(p99), median(tput)
		c.p50min, c.p50max = math.NaN(), math.NaN()
		if len(p50) > 0 {
			c.p50min, c.p50max = slices.Min(p50), slices.Max(p50)
		}
		if len(epc) > 0 {
			c.eventsPerCall = median(epc)
		}
		cells[k] = c
	}
	return cells
}

func writeReport(w io.Writer, all []Result, o reportOptions) {
	var results, fsyncs []Result
	for _, r := range all {
		if r.Label == fsyncLabel {
			fsyncs = append(fsyncs, r)
		} else {
			results = append(results, r)
		}
	}
	cells := aggregate(results)
	var labels []string
	seenLabel := map[string]bool{}
	var sessionCounts []int
	for k := range cells {
		if !slices.Contains(sessionCounts, k.sessions) {
			sessionCounts = append(sessionCounts, k.sessions)
		}
	}
	slices.Sort(sessionCounts)
	for _, l := range o.order {
		for _, s := range sessionCounts {
			if cells[key{l, s}] != nil && !seenLabel[l] {
				seenLabel[l] = true
				labels = append(labels, l)
			}
		}
	}
	var rest []string
	for k := range cells {
		if !seenLabel[k.label] {
			seenLabel[k.label] = true
			rest = append(rest, k.label)
		}
	}
	slices.Sort(rest)
	labels = append(labels, rest...)

	rounds := 0
	for _, c := range cells {
		rounds = max(rounds, c.rounds)
	}
	refName := o.ref
	fmt.Fprintf(w, "Medians over %d round(s); latencies in µs, client-observed tools/call round trips; \"added\" is over %s at the same session count.\n\n", rounds, o.direct)
	fmt.Fprintf(w, "| config | sessions | p50 | p90 | p99 | p50 min–max over rounds | added p50 | added p50 ÷ %s's | calls/s | calls/s ÷ %s's | errors |\n", refName, refName)
	fmt.Fprintln(w, "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
	for _, s := range sessionCounts {
		direct := cells[key{o.direct, s}]
		ref := cells[key{o.ref, s}]
		for _, l := range labels {
			c := cells[key{l, s}]
			if c == nil {
				continue
			}
			added, frac, tratio := "—", "—", "—"
			if direct != nil && l != o.direct {
				a := c.p50 - direct.p50
				added = signed(a)
				if ref != nil && l != o.ref {
					frac = fraction(a, ref.p50-direct.p50)
				}
			}
			if ref != nil && l != o.ref {
				tratio = ratio(c.tput, ref.tput)
			}
			errs := strconv.Itoa(c.errors)
			if c.failed > 0 {
				errs += fmt.Sprintf(" (%d of %d runs failed)", c.failed, c.rounds)
			}
			fmt.Fprintf(w, "| %s | %d | %s | %s | %s | %s–%s | %s | %s | %s | %s | %s |\n",
				describe(l), s, num(c.p50), num(c.p90), num(c.p99), num(c.p50min), num(c.p50max), added, frac, num(c.tput), tratio, errs)
		}
	}

	fmt.Fprintln(w)
	fmt.Fprintln(w, "Targets:")
	fmt.Fprintln(w)
	for i, s := range sessionCounts {
		lt, direct, ref := cells[key{o.latencyTarget, s}], cells[key{o.direct, s}], cells[key{o.ref, s}]
		what := fmt.Sprintf("%s added p50 ≤ 1/%g of %s's added p50, %d session(s)", o.latencyTarget, o.latencyRatio, o.ref, s)
		if i > 0 {
			what += " (for information)"
		}
		if lt == nil || direct == nil || ref == nil {
			fmt.Fprintf(w, "- %s: not measured\n", what)
			continue
		}
		a, ra := lt.p50-direct.p50, ref.p50-direct.p50
		limit := ra / o.latencyRatio
		fmt.Fprintf(w, "- %s: %s µs vs %s µs = %s, limit %s µs → **%s**\n", what, signed(a), signed(ra), fraction(a, ra), signed(limit), passFail(ra > 0 && a <= limit))
	}
	ref := cells[key{o.ref, o.throughputAt}]
	for _, l := range o.throughputTargets {
		c := cells[key{l, o.throughputAt}]
		what := fmt.Sprintf("%s throughput ≥ %g× %s's at %d sessions", l, o.throughputRatio, o.ref, o.throughputAt)
		if c == nil || ref == nil {
			fmt.Fprintf(w, "- %s: not measured\n", what)
			continue
		}
		fmt.Fprintf(w, "- %s: %s vs %s calls/s = %s, needs %s calls/s → **%s**\n", what, num(c.tput), num(ref.tput), ratio(c.tput, ref.tput), num(ref.tput*o.throughputRatio), passFail(ref.tput > 0 && c.tput >= o.throughputRatio*ref.tput))
	}

	writeFloors(w, results, fsyncs, cells, sessionCounts, o)

	var audit []string
	for _, s := range sessionCounts {
		for _, l := range labels {
			if c := cells[key{l, s}]; c != nil && !math.IsNaN(c.eventsPerCall) {
				audit = append(audit, fmt.Sprintf("%s/%d %.2f", l, s, c.eventsPerCall))
			}
		}
	}
	if len(audit) > 0 {
		fmt.Fprintf(w, "\nAudit check (events in the store per call made, counted by mcptrail verify once the daemon stopped, median; a call is a request and an outcome event, plus session and alert events): %s\n", strings.Join(audit, ", "))
	}
	var problems []string
	for _, s := range sessionCounts {
		for _, l := range labels {
			if c := cells[key{l, s}]; c != nil && c.firstError != "" {
				problems = append(problems, fmt.Sprintf("%s/%d: %s", l, s, c.firstError))
			}
		}
	}
	if len(problems) > 0 {
		fmt.Fprintf(w, "\nErrors (first per configuration):\n\n")
		for _, p := range problems {
			fmt.Fprintf(w, "- %s\n", p)
		}
	}
}

func passFail(ok bool) string {
	if ok {
		return "PASS"
	}
	return "FAIL"
}

// num formats a non-negative measure with thousands separators, no decimals
// (one decimal under 10).
func num(x float64) string {
	if math.IsNaN(x) {
		return "—"
	}
	if math.Abs(x) < 10 {
		return strconv.FormatFloat(x, 'f', 1, 64)
	}
	s := strconv.FormatInt(int64(math.Round(math.Abs(x))), 10)
	var b strings.Builder
	if x < 0 {
		b.WriteByte('-')
	}
	for i, ch := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(ch)
	}
	return b.String()
}

func signed(x float64) string {
	if math.IsNaN(x) {
		return "—"
	}
	if x >= 0 {
		return "+" + num(x)
	}
	return num(x)
}

// fraction is a/b as a decimal and as "1/n".
func fraction(a, b float64) string {
	if b <= 0 || math.IsNaN(a) || math.IsNaN(b) {
		return "n/a"
	}
	f := a / b
	if f <= 0 {
		return fmt.Sprintf("%.2f", f)
	}
	return fmt.Sprintf("%.2f (1/%.1f)", f, 1/f)
}

func ratio(a, b float64) string {
	if b <= 0 || math.IsNaN(a) || math.IsNaN(b) {
		return "n/a"
	}
	return fmt.Sprintf("%.2f×", a/b)
}
