package ui

import "testing"

// FuzzParseFilter: whatever is typed at `f`, ParseFilter does not panic,
// a refused line leaves the filter as it was, and a filter it reads is read
// back the same from its own text (the chips the line is prefilled with).
func FuzzParseFilter(f *testing.F) {
	for _, s := range []string{"agent:bot tool=write_file since 3h outcome:tool_error", "key:app.yaml", "-tool", "write",
		"since:-3h", "last 2d", "origin:01B:x", "outcome:sideways", "agent:-x", "AGENT:Bot", "since", ":", "=", "\x00:\u202e"} {
		f.Add(s)
	}
	base := Filter{Agent: "before"}
	f.Fuzz(func(t *testing.T, line string) {
		got, err := ParseFilter(line, base)
		if err != nil {
			if got != base {
				t.Fatalf("ParseFilter(%q) failed (%v) and changed the filter to %q", line, err, got.String())
			}
			return
		}
		again, err := ParseFilter(got.String(), Filter{})
		if err != nil || again != got {
			t.Fatalf("ParseFilter(%q) = %q, which reads back as %q, %v", line, got.String(), again.String(), err)
		}
	})
}
