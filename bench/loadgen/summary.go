package main

import (
	"math"
	"slices"
	"time"
)

// Result is what one loadgen run prints: one JSON object.
type Result struct {
	Label      string  `json:"label"`
	Target     string  `json:"target"`
	Sessions   int     `json:"sessions"`
	Calls      int     `json:"calls"`  // measured calls that succeeded
	Errors     int     `json:"errors"` // failed calls: transport or JSON-RPC errors, or isError results
	P50us      float64 `json:"p50_us"`
	P90us      float64 `json:"p90_us"`
	P99us      float64 `json:"p99_us"`
	MaxUs      float64 `json:"max_us"`
	MeanUs     float64 `json:"mean_us"`
	Throughput float64 `json:"throughput"` // successful calls per second of wall time
	WallS      float64 `json:"wall_s"`
	Writes     int     `json:"writes"` // how many of the calls were write (the rest echo)
	WarmupErrs int     `json:"warmup_errors,omitempty"`
	FirstError string  `json:"first_error,omitempty"`
	Warmup     int     `json:"warmup"` // warm-up calls per session (not measured)
	Round      int     `json:"round,omitempty"`
	Recorded   int64   `json:"recorded_events,omitempty"` // set by bench/run: events in the store after an audited run
	Failed     string  `json:"failed,omitempty"`          // set by bench/run when the run itself failed (no measurements)
}

// percentile is the nearest-rank percentile (p in (0, 100]) of sorted, a
// latency every one of the p% fastest calls stays at or under. Zero for an
// empty slice.
func percentile(sorted []time.Duration, p float64) time.Duration {
	n := len(sorted)
	if n == 0 {
		return 0
	}
	rank := int(math.Ceil(p / 100 * float64(n)))
	if rank < 1 {
		rank = 1
	}
	if rank > n {
		rank = n
	}
	return sorted[rank-1]
}

func us(d time.Duration) float64 { return math.Round(float64(d)/float64(time.Microsecond)*10) / 10 }

// summarize fills r's latency and rate fields from the successful calls'
// latencies (in any order; lat is sorted in place) and the wall time of the
// measured phase.
func summarize(r *Result, lat []time.Duration, wall time.Duration) {
	slices.Sort(lat)
	r.Calls = len(lat)
	r.WallS = math.Round(wall.Seconds()*1000) / 1000
	if len(lat) == 0 {
		return
	}
	var sum time.Duration
	for _, d := range lat {
		sum += d
	}
	r.P50us = us(percentile(lat, 50))
	r.P90us = us(percentile(lat, 90))
	r.P99us = us(percentile(lat, 99))
	r.MaxUs = us(lat[len(lat)-1])
	r.MeanUs = us(sum / time.Duration(len(lat)))
	if wall > 0 {
		r.Throughput = math.Round(float64(len(lat))/wall.Seconds()*10) / 10
	}
}

// median of xs (the mean of the two middle values for an even count); xs is
// not modified. NaN for none.
func median(xs []float64) float64 {
	if len(xs) == 0 {
		return math.NaN()
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	m := len(s) / 2
	if len(s)%2 == 1 {
		return s[m]
	}
	return (s[m-1] + s[m]) / 2
}

// isWrite says whether call i (from 0) of a session is a write when a
// fraction frac of the calls are writes: spread evenly and deterministically
// (frac 0.25: calls 3, 7, 11, …).
func isWrite(i int, frac float64) bool {
	if frac <= 0 {
		return false
	}
	if frac >= 1 {
		return true
	}
	return math.Floor(float64(i+1)*frac) > math.Floor(float64(i)*frac)
}
