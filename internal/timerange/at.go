package timerange

import (
	"fmt"
	"strings"
	"time"
)

// At reads a point in time as the console's go-to-time prompt and `:goto`
// take it: a duration ago ("10m" or "-10m", and the d and w units Since
// takes), a clock time ("03:15", "03:15:30", "03:15:30.250": today in loc,
// or yesterday when that is still to come), or a date and time in loc or
// RFC 3339. The durations are Since's, so a negative one ("--10m") is
// refused rather than read as a time in the future.
func At(s string, now time.Time, loc *time.Location) (time.Time, error) {
	s = strings.TrimSpace(s)
	if d, err := duration(strings.TrimPrefix(s, "-")); err == nil {
		return now.Add(-d), nil
	}
	for _, layout := range []string{"15:04", "15:04:05", "15:04:05.000"} {
		if t, err := time.ParseInLocation(layout, s, loc); err == nil {
			n := now.In(loc)
			at := time.Date(n.Year(), n.Month(), n.Day(), t.Hour(), t.Minute(), t.Second(), t.Nanosecond(), loc)
			if at.After(n) {
				at = at.AddDate(0, 0, -1)
			}
			return at, nil
		}
	}
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02 15:04:05", "2006-01-02 15:04", "2006-01-02"} {
		if t, err := time.ParseInLocation(layout, s, loc); err == nil {
			return t, nil
		}
	}
	return time.Time{}, fmt.Errorf("time %q: want 03:15, -10m or 2026-01-02T03:15:00Z", s)
}
