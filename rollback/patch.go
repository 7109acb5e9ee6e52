package rollback

import (
	"fmt"
	"strconv"
	"strings"
)

// applyUnified applies a unified diff (as `diff -u`, git and jsdiff write
// it) to text exactly: every context and removed line must match, no fuzz.
// Header lines before the first hunk are ignored. It is how a rule works
// out the state a tool left when the tool reports a diff rather than the
// result (server-filesystem's edit_file).
func applyUnified(text, diff string) (string, error) {
	orig := splitLinesKeep(text)
	lines := strings.Split(diff, "\n")
	if n := len(lines); n > 0 && lines[n-1] == "" {
		lines = lines[:n-1]
	}
	var out strings.Builder
	pos := 0 // next original line to copy
	i := 0
	for i < len(lines) && !strings.HasPrefix(lines[i], "@@") {
		i++
	}
	for i < len(lines) {
		a, b, err := hunkHeader(lines[i])
		if err != nil {
			return "", err
		}
		i++
		start := a - 1
		if b == 0 {
			start = a
		}
		if start < pos || start > len(orig) {
			return "", fmt.Errorf("hunk at line %d is out of order or beyond the text", a)
		}
		for ; pos < start; pos++ {
			out.WriteString(orig[pos])
		}
		prev := byte(0)
		for ; i < len(lines) && !strings.HasPrefix(lines[i], "@@"); i++ {
			l := lines[i]
			if l == "" {
				l = " " // some tools drop the space of an empty context line
			}
			switch l[0] {
			case ' ', '-':
				if pos >= len(orig) || strings.TrimSuffix(orig[pos], "\n") != l[1:] {
					return "", fmt.Errorf("line %d does not match the diff", pos+1)
				}
				if l[0] == ' ' {
					out.WriteString(orig[pos])
				}
				pos++
			case '+':
				out.WriteString(l[1:])
				out.WriteByte('\n')
			case '\\':
				if prev == '+' {
					s := out.String()
					out.Reset()
					out.WriteString(strings.TrimSuffix(s, "\n"))
				}
			default:
				return "", fmt.Errorf("unexpected diff line %q", l)
			}
			prev = l[0]
		}
	}
	for ; pos < len(orig); pos++ {
		out.WriteString(orig[pos])
	}
	return out.String(), nil
}

// splitLinesKeep splits s into lines that keep their "\n" (the last one
// may lack it).
func splitLinesKeep(s string) []string {
	var out []string
	for len(s) > 0 {
		i := strings.IndexByte(s, '\n')
		if i < 0 {
			out = append(out, s)
			break
		}
		out = append(out, s[:i+1])
		s = s[i+1:]
	}
	return out
}

// hunkHeader parses "@@ -a,b +c,d @@" and returns a and b.
func hunkHeader(l string) (a, b int, err error) {
	f := strings.Fields(l)
	if len(f) < 3 || f[0] != "@@" || !strings.HasPrefix(f[1], "-") {
		return 0, 0, fmt.Errorf("bad hunk header %q", l)
	}
	spec := f[1][1:]
	b = 1
	if s, c, ok := strings.Cut(spec, ","); ok {
		spec = s
		if b, err = strconv.Atoi(c); err != nil {
			return 0, 0, fmt.Errorf("bad hunk header %q", l)
		}
	}
	if a, err = strconv.Atoi(spec); err != nil {
		return 0, 0, fmt.Errorf("bad hunk header %q", l)
	}
	return a, b, nil
}
