package ui

import (
	"strings"
	"testing"

	"github.com/charmbracelet/x/ansi"
)

// FuzzArgsFit: any arguments, any column width: the fitted summary never
// panics, and a path that had to be cut keeps its end.
func FuzzArgsFit(f *testing.F) {
	f.Add(`{"path":"/tmp/run-4711/config/app.yaml","content":"x\ny"}`, 12)
	f.Add(`{"path":"/tmp/`+strings.Repeat("dir/", 30)+`app.yaml"}`, 25)
	f.Add(`{"uri":"file:///é/ü/名前.txt"}`, 9)
	f.Add(`{"path":"\u009b2J/\u202e/x"}`, 5)
	f.Add(`[1,2,3]`, 3)
	f.Fuzz(func(t *testing.T, raw string, w int) {
		w = max(0, w%300)
		args, keyLen := argsSummaryKey([]byte(raw))
		got := argsFit(args, keyLen, w)
		if keyLen == 0 || ansi.StringWidth(args) <= w {
			if got != args {
				t.Fatalf("argsFit changed %q to %q", args, got)
			}
			return
		}
		k, v, _ := strings.Cut(args[:keyLen], "=")
		if got != args { // cut: a too narrow column leaves it to the cell's cut
			tail := strings.TrimPrefix(strings.TrimPrefix(got, k+"="), "…")
			if !strings.HasSuffix(v, tail) || ansi.StringWidth(got) > w {
				t.Fatalf("argsFit(%q, %d) = %q: not the path's tail within the width", args, w, got)
			}
		}
	})
}

// FuzzCommandLine: whatever is typed at `:`, completion and the help line
// never panic, and completion only ever extends the word typed.
func FuzzCommandLine(f *testing.F) {
	for _, s := range []string{"", "g", "goto 03:15", "al", "q", "s", "  ses", "bogus arg", "\x00", "é"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, line string) {
		got := completeCommand(line)
		if got != line && !strings.HasPrefix(got, strings.TrimLeft(line, " ")) {
			t.Fatalf("completeCommand(%q) = %q", line, got)
		}
		_ = commandHelp(line)
	})
}
