package linediff

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

func TestUnifiedHunks(t *testing.T) {
	var a, b []string
	for i := 1; i <= 30; i++ {
		a = append(a, fmt.Sprintf("line %d", i))
	}
	b = append(b, a...)
	b[11] = "line 12 changed"                                      // line 12
	b = append(b[:14], append([]string{"inserted"}, b[14:]...)...) // after line 14
	b = b[:len(b)-1]                                               // line 30 gone
	got := Unified(strings.Join(a, "\n")+"\n", strings.Join(b, "\n")+"\n", "before", "after")
	want := `--- before
+++ after
@@ -9,9 +9,10 @@
 line 9
 line 10
 line 11
-line 12
+line 12 changed
 line 13
 line 14
+inserted
 line 15
 line 16
 line 17
@@ -27,4 +28,3 @@
 line 27
 line 28
 line 29
-line 30
`
	if got != want {
		t.Fatalf("got:\n%s\nwant:\n%s", got, want)
	}
	if Unified("x\n", "x\n", "a", "b") != "" {
		t.Fatal("equal texts have no diff")
	}
	if got := Unified("", "one\ntwo\n", "a", "b"); got != "--- a\n+++ b\n@@ -0,0 +1,2 @@\n+one\n+two\n" {
		t.Fatalf("from nothing:\n%s", got)
	}
}

var hunkHead = regexp.MustCompile(`^@@ -(\d+)(?:,(\d+))? \+(\d+)(?:,(\d+))? @@$`)

// patch applies a unified diff to a, checking every hunk's header against
// where its lines are: the diff is right only if it turns a into b.
func patch(t testing.TB, a []string, diff string) []string {
	lines := SplitLines(diff)
	if len(lines) < 2 || lines[0] != "--- a" || lines[1] != "+++ b" {
		t.Fatalf("no header: %q", diff)
	}
	var out []string
	next := 0 // next line of a to copy
	for i := 2; i < len(lines); {
		m := hunkHead.FindStringSubmatch(lines[i])
		if m == nil {
			t.Fatalf("not a hunk header: %q in\n%s", lines[i], diff)
		}
		num := func(s string, def int) int {
			if s == "" {
				return def
			}
			n, _ := strconv.Atoi(s)
			return n
		}
		aStart, aLen, bStart, bLen := num(m[1], 0), num(m[2], 1), num(m[3], 0), num(m[4], 1)
		if aLen > 0 {
			aStart-- // 0-based
		}
		if aStart < next {
			t.Fatalf("hunk %q overlaps the one before", lines[i])
		}
		out = append(out, a[next:aStart]...)
		if bLen > 0 && bStart-1 != len(out) {
			t.Fatalf("hunk %q: b starts at line %d, but %d lines come before it", lines[i], bStart, len(out))
		}
		next = aStart
		i++
		seenA, seenB := 0, 0
		for ; i < len(lines) && !strings.HasPrefix(lines[i], "@@"); i++ {
			l := lines[i]
			switch l[0] {
			case ' ', '-':
				if next >= len(a) || a[next] != l[1:] {
					t.Fatalf("hunk line %q is not line %d of a", l, next+1)
				}
				next++
				seenA++
				if l[0] == ' ' {
					out = append(out, l[1:])
					seenB++
				}
			case '+':
				out = append(out, l[1:])
				seenB++
			}
		}
		if seenA != aLen || seenB != bLen {
			t.Fatalf("hunk says -%d +%d lines, holds -%d +%d", aLen, bLen, seenA, seenB)
		}
	}
	return append(out, a[next:]...)
}

func FuzzUnified(f *testing.F) {
	f.Add("a\nb\nc\n", "a\nc\nd\n")
	f.Add("", "x\n")
	f.Add("1\n2\n3\n4\n5\n6\n7\n8\n9\n10\n", "1\n2\nX\n4\n5\n6\n7\n8\n9\nY\n")
	f.Fuzz(func(t *testing.T, a, b string) {
		a, b = strings.ReplaceAll(a, "\r", ""), strings.ReplaceAll(b, "\r", "")
		a, b = strings.Join(SplitLines(a), "\n"), strings.Join(SplitLines(b), "\n")
		al, bl := SplitLines(a), SplitLines(b)
		d := Unified(a, b, "a", "b")
		if a == b {
			if d != "" {
				t.Fatalf("equal texts gave a diff: %q", d)
			}
			return
		}
		if len(al)+len(bl) > 2*MaxEdits {
			return
		}
		got := patch(t, al, d)
		if strings.Join(got, "\n") != strings.Join(bl, "\n") {
			t.Fatalf("patching a with\n%s\ngave %q, want %q", d, got, bl)
		}
	})
}
