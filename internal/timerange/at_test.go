package timerange

import (
	"strings"
	"testing"
	"time"
)

// then is the night of an incident, an hour after 03:00.
var then = time.Date(2026, 1, 15, 4, 0, 0, 0, time.UTC)

func TestAt(t *testing.T) {
	for in, want := range map[string]time.Time{
		"-10m":                 then.Add(-10 * time.Minute),
		"10m":                  then.Add(-10 * time.Minute),
		" -90s ":               then.Add(-90 * time.Second),
		"-2d":                  then.Add(-48 * time.Hour), // Since's units, at the prompt too
		"1w":                   then.Add(-7 * 24 * time.Hour),
		"03:15":                time.Date(2026, 1, 15, 3, 15, 0, 0, time.UTC),
		"03:15:30.250":         time.Date(2026, 1, 15, 3, 15, 30, 250e6, time.UTC),
		"05:00":                time.Date(2026, 1, 14, 5, 0, 0, 0, time.UTC), // not in the future: yesterday
		"2026-01-01T00:00:00Z": time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC),
		"2026-01-02 03:04":     time.Date(2026, 1, 2, 3, 4, 0, 0, time.UTC),
		"2026-01-02":           time.Date(2026, 1, 2, 0, 0, 0, 0, time.UTC),
	} {
		got, err := At(in, then, time.UTC)
		if err != nil || !got.Equal(want) {
			t.Errorf("At(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	// A clock time is in the prompt's zone, not UTC.
	ny, err := time.LoadLocation("America/New_York")
	if err == nil {
		if got, err := At("22:00", then, ny); err != nil || !got.Equal(time.Date(2026, 1, 14, 22, 0, 0, 0, ny)) {
			t.Errorf("At(22:00, New York) = %v, %v", got, err)
		}
	}
	// "--10m" is a negative duration ago: the future, refused.
	for _, in := range []string{"teatime", "", "--10m", "1e300d", "25:00"} {
		if got, err := At(in, then, time.UTC); err == nil || !strings.Contains(err.Error(), "want 03:15") {
			t.Errorf("At(%q) = %v, %v; want an error", in, got, err)
		}
	}
}

// FuzzAt: whatever is typed, At does not panic, and what it reads as a
// duration ago or a clock time never lands after now (only a date may).
func FuzzAt(f *testing.F) {
	for _, s := range []string{"-10m", "10m", "2d", "--10m", "03:15", "23:59:59.999", "2026-01-02T03:15:00Z", "2026-01-02", "1e300d", "NaNd", "\x00"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, err := At(s, then, time.UTC)
		if err != nil {
			if !got.IsZero() {
				t.Fatalf("At(%q) = %v with error %v", s, got, err)
			}
			return
		}
		if !strings.Contains(s, "-") && !strings.Contains(s, "T") && strings.Count(s, ":") > 0 && got.After(then) {
			t.Fatalf("At(%q) = %v: a clock time after now", s, got)
		}
		if _, derr := duration(strings.TrimPrefix(strings.TrimSpace(s), "-")); derr == nil && got.After(then) {
			t.Fatalf("At(%q) = %v: a duration ago after now", s, got)
		}
	})
}
