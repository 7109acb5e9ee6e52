package timerange

import (
	"strings"
	"testing"
	"time"
)

var now = time.Date(2026, 12, 7, 1, 30, 0, 0, time.UTC)

func TestSince(t *testing.T) {
	for _, c := range []struct {
		in      string
		want    time.Time
		wantErr string // a fragment of the error; "" = no error
	}{
		{in: "90m", want: now.Add(-90 * time.Minute)},
		{in: "3h", want: now.Add(-3 * time.Hour)},
		{in: "0s", want: now},
		{in: "2d", want: now.Add(-48 * time.Hour)},
		{in: "1.5d", want: now.Add(-36 * time.Hour)},
		{in: "1w", want: now.Add(-7 * 24 * time.Hour)},
		{in: "0.5w", want: now.Add(-84 * time.Hour)},
		{in: "2026-12-01T00:00:00Z", want: time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)},
		{in: "2027-01-01T00:00:00+01:00", want: time.Date(2026, 12, 31, 23, 0, 0, 0, time.UTC)},
		{in: "-3h", wantErr: "negative"},
		{in: "-2d", wantErr: "negative"},
		{in: "-0.5w", wantErr: "negative"},
		{in: "1e300d", wantErr: "too long"},
		{in: "Infw", wantErr: "too long"},
		{in: "NaNd", wantErr: "want a duration"},
		{in: "", wantErr: "want a duration"},
		{in: "3", wantErr: "want a duration"},
		{in: "d", wantErr: "want a duration"},
		{in: "yesterday", wantErr: "want a duration"},
		{in: "2026-12-01", wantErr: "want a duration"},
	} {
		got, err := Since(c.in, now)
		switch {
		case c.wantErr == "" && err != nil:
			t.Errorf("Since(%q): %v", c.in, err)
		case c.wantErr != "" && (err == nil || !strings.Contains(err.Error(), c.wantErr)):
			t.Errorf("Since(%q) = %v, %v; want an error with %q", c.in, got, err, c.wantErr)
		case c.wantErr == "" && !got.Equal(c.want):
			t.Errorf("Since(%q) = %v, want %v", c.in, got, c.want)
		}
	}
}

// FuzzSince: whatever is typed, Since does not panic, and a duration it
// accepts never lands after now (only an RFC 3339 time may).
func FuzzSince(f *testing.F) {
	for _, s := range []string{"3h", "1.5d", "1w", "-3h", "2026-12-01T00:00:00Z", "1e300d", "Infw", "NaNd", "0x1p3d"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, err := Since(s, now)
		if err != nil {
			if !got.IsZero() {
				t.Fatalf("Since(%q) = %v with error %v", s, got, err)
			}
			return
		}
		if _, perr := time.Parse(time.RFC3339, s); perr != nil && got.After(now) {
			t.Fatalf("Since(%q) = %v, after now", s, got)
		}
	})
}
