package linediff

import (
	"fmt"
	"strings"
)

// Hunk is a run of changes with the unchanged lines around them, as a
// unified diff shows it: A and B are 1-based first lines on each side
// (for an empty side, the line before the change, as diff(1) writes it).
type Hunk struct {
	A, ALen, B, BLen int
	Ops              []Op
}

// Header is the hunk's @@ line.
func (h Hunk) Header() string {
	return fmt.Sprintf("@@ -%s +%s @@", span(h.A, h.ALen), span(h.B, h.BLen))
}

func span(start, n int) string {
	if n == 1 {
		return fmt.Sprint(start)
	}
	return fmt.Sprintf("%d,%d", start, n)
}

// Hunks groups a script's changes with ctx lines of context on each side;
// changes closer than 2·ctx lines share a hunk.
func Hunks(ops []Op, ctx int) []Hunk {
	ctx = max(ctx, 0)
	// aBefore[i], bBefore[i]: lines of a and b before ops[i].
	aBefore := make([]int, len(ops)+1)
	bBefore := make([]int, len(ops)+1)
	for i, op := range ops {
		aBefore[i+1], bBefore[i+1] = aBefore[i], bBefore[i]
		if op.Kind != Insert {
			aBefore[i+1]++
		}
		if op.Kind != Delete {
			bBefore[i+1]++
		}
	}
	var out []Hunk
	for i := 0; i < len(ops); {
		if ops[i].Kind == Equal {
			i++
			continue
		}
		lo := max(0, i-ctx)
		end := i // one past the last change of the hunk
		for end < len(ops) {
			if ops[end].Kind != Equal {
				end++
				continue
			}
			j := end
			for j < len(ops) && ops[j].Kind == Equal {
				j++
			}
			if j == len(ops) || j-end > 2*ctx {
				break
			}
			end = j
		}
		hi := min(len(ops), end+ctx)
		h := Hunk{A: aBefore[lo] + 1, B: bBefore[lo] + 1, ALen: aBefore[hi] - aBefore[lo], BLen: bBefore[hi] - bBefore[lo], Ops: ops[lo:hi]}
		if h.ALen == 0 {
			h.A--
		}
		if h.BLen == 0 {
			h.B--
		}
		out = append(out, h)
		i = hi
	}
	return out
}

// SplitLines splits text into lines; a final newline ends the last line
// rather than starting an empty one.
func SplitLines(s string) []string {
	if s == "" {
		return nil
	}
	return strings.Split(strings.TrimSuffix(s, "\n"), "\n")
}

// Unified is the unified diff of a → b under the two labels, with three
// lines of context; "" when they are equal. Past MaxEdits changed lines it
// says how many lines differ instead of listing them.
func Unified(a, b, labelA, labelB string) string {
	if a == b {
		return ""
	}
	al, bl := SplitLines(a), SplitLines(b)
	ops := Lines(al, bl)
	var sb strings.Builder
	fmt.Fprintf(&sb, "--- %s\n+++ %s\n", labelA, labelB)
	if ins, del := Stats(ops); ins+del > 2*MaxEdits {
		fmt.Fprintf(&sb, "@@ %d lines differ from %d lines (too many changes to list line by line) @@\n", len(al), len(bl))
		return sb.String()
	}
	for _, h := range Hunks(ops, 3) {
		sb.WriteString(h.Header())
		sb.WriteByte('\n')
		for _, op := range h.Ops {
			sb.WriteByte(" -+"[op.Kind])
			sb.WriteString(op.Text)
			sb.WriteByte('\n')
		}
	}
	return sb.String()
}
