package rollback

import (
	"fmt"
	"strings"
)

// unifiedDiff is a unified diff of a → b (labels current and restored),
// "" when they are equal. Large texts whose line-by-line comparison would
// cost too much get a one-line summary instead.
func unifiedDiff(a, b string) string {
	if a == b {
		return ""
	}
	al, bl := splitLines(a), splitLines(b)
	// Trim the common prefix and suffix; the LCS table covers the middle.
	pre := 0
	for pre < len(al) && pre < len(bl) && al[pre] == bl[pre] {
		pre++
	}
	suf := 0
	for suf < len(al)-pre && suf < len(bl)-pre && al[len(al)-1-suf] == bl[len(bl)-1-suf] {
		suf++
	}
	am, bm := al[pre:len(al)-suf], bl[pre:len(bl)-suf]
	var b2 strings.Builder
	b2.WriteString("--- current\n+++ restored\n")
	if len(am)*len(bm) > 4_000_000 {
		fmt.Fprintf(&b2, "@@ %d lines differ from %d lines (too large to compare line by line) @@\n", len(am), len(bm))
		return b2.String()
	}
	// LCS of the middle.
	n, m := len(am), len(bm)
	lcs := make([][]int32, n+1)
	for i := range lcs {
		lcs[i] = make([]int32, m+1)
	}
	for i := n - 1; i >= 0; i-- {
		for j := m - 1; j >= 0; j-- {
			if am[i] == bm[j] {
				lcs[i][j] = lcs[i+1][j+1] + 1
			} else {
				lcs[i][j] = max(lcs[i+1][j], lcs[i][j+1])
			}
		}
	}
	const ctx = 3
	type op struct {
		k    byte
		line string
	}
	var ops []op
	for i := max(0, pre-ctx); i < pre; i++ {
		ops = append(ops, op{' ', al[i]})
	}
	i, j := 0, 0
	for i < n || j < m {
		switch {
		case i < n && j < m && am[i] == bm[j]:
			ops = append(ops, op{' ', am[i]})
			i++
			j++
		case j < m && (i == n || lcs[i][j+1] >= lcs[i+1][j]):
			ops = append(ops, op{'+', bm[j]})
			j++
		default:
			ops = append(ops, op{'-', am[i]})
			i++
		}
	}
	for k := len(al) - suf; k < len(al) && k < len(al)-suf+ctx; k++ {
		ops = append(ops, op{' ', al[k]})
	}
	fmt.Fprintf(&b2, "@@ -%d +%d @@\n", max(1, pre-ctx+1), max(1, pre-ctx+1))
	for _, o := range ops {
		b2.WriteByte(o.k)
		b2.WriteString(o.line)
		b2.WriteByte('\n')
	}
	return b2.String()
}

func splitLines(s string) []string {
	if s == "" {
		return nil
	}
	s = strings.TrimSuffix(s, "\n")
	return strings.Split(s, "\n")
}
