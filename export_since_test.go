package main

import (
	"bytes"
	"strings"
	"testing"
)

// export --since reads time ranges as the console's since: filter does:
// weeks and fractions of a day are accepted, and a negative duration is a
// usage error that says why rather than a window in the future that
// silently matches nothing.
func TestExportSinceAsTheConsoleReadsIt(t *testing.T) {
	db := hostileStore(t)
	for _, c := range []struct {
		since    string
		wantCode int
		wantErr  string
	}{
		{"1w", 0, ""},
		{"1.5d", 0, ""},
		{"2026-01-15T02:00:00Z", 0, ""},
		{"-3h", 2, "negative"},
		{"-1w", 2, "negative"},
		{"yesterday", 2, "want a duration"},
	} {
		var out, errOut bytes.Buffer
		code := run([]string{"export", "--format", "jsonl", "--since", c.since, "--db", db}, strings.NewReader(""), &out, &errOut)
		if code != c.wantCode || !strings.Contains(errOut.String(), c.wantErr) {
			t.Errorf("export --since %s: exit %d, stderr %q; want exit %d and %q", c.since, code, errOut.String(), c.wantCode, c.wantErr)
		}
		if c.since == "2026-01-15T02:00:00Z" && out.Len() == 0 {
			t.Errorf("export --since %s: no events, want the record's", c.since)
		}
	}
}
