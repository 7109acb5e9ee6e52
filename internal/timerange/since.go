// Package timerange reads the start of a time range as an operator types
// it, for the command line's --since and the console's since filter alike,
// so the two accept the same things.
package timerange

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// units are the suffixes time.ParseDuration does not know.
var units = []struct {
	suffix string
	d      time.Duration
}{{"d", 24 * time.Hour}, {"w", 7 * 24 * time.Hour}}

// Since reads "90m", "3h", "2d", "1.5d", "1w" as that long before now, or
// an RFC 3339 time as itself. A negative duration is refused rather than
// read as a time in the future, which would match nothing and look like an
// empty record.
func Since(s string, now time.Time) (time.Time, error) {
	d, err := duration(s)
	if err == nil {
		return now.Add(-d), nil
	}
	if t, terr := time.Parse(time.RFC3339, s); terr == nil {
		return t, nil
	}
	if errors.Is(err, errNegative) || errors.Is(err, errTooLong) {
		return time.Time{}, fmt.Errorf("since %q: %w", s, err)
	}
	return time.Time{}, fmt.Errorf("since %q: want a duration (30m, 3h, 2d, 1w) or an RFC 3339 time", s)
}

var (
	errNegative = errors.New("a negative duration would be in the future; give how long ago, e.g. 3h")
	errTooLong  = errors.New("duration too long")
	errNotOne   = errors.New("not a duration")
)

func duration(s string) (time.Duration, error) {
	for _, u := range units {
		n, ok := strings.CutSuffix(s, u.suffix)
		if !ok {
			continue
		}
		v, err := strconv.ParseFloat(n, 64)
		switch {
		case err != nil || math.IsNaN(v):
			return 0, errNotOne
		case v < 0:
			return 0, errNegative
		case v*float64(u.d) >= math.MaxInt64:
			return 0, errTooLong
		}
		return time.Duration(v * float64(u.d)), nil
	}
	d, err := time.ParseDuration(s)
	switch {
	case err != nil:
		return 0, errNotOne
	case d < 0:
		return 0, errNegative
	}
	return d, nil
}
