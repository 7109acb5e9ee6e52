package ui

import (
	"bytes"
	"encoding/json"
	"io"
	"sort"
	"strconv"
	"strings"

	"github.com/charmbracelet/lipgloss"

	"github.com/mcptrail/mcptrail/themes"
)

// jnode is a JSON value that keeps its object keys in document order (a
// map would not), so the record view shows params as the agent sent them.
type jnode struct {
	kind byte // o(bject) a(rray) s(tring) n(umber) b(ool) z(null)
	keys []string
	vals []*jnode
	str  string // string value, or the literal of a number or bool
}

func parseJSON(raw []byte) (*jnode, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	n, err := parseNode(dec)
	if err != nil {
		return nil, err
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errTrailing
	}
	return n, nil
}

var errTrailing = &json.SyntaxError{}

func parseNode(dec *json.Decoder) (*jnode, error) {
	tok, err := dec.Token()
	if err != nil {
		return nil, err
	}
	switch t := tok.(type) {
	case json.Delim:
		n := &jnode{kind: 'a'}
		if t == '{' {
			n.kind = 'o'
		}
		for dec.More() {
			if n.kind == 'o' {
				k, err := dec.Token()
				if err != nil {
					return nil, err
				}
				n.keys = append(n.keys, k.(string))
			}
			v, err := parseNode(dec)
			if err != nil {
				return nil, err
			}
			n.vals = append(n.vals, v)
		}
		if _, err := dec.Token(); err != nil { // the closing delimiter
			return nil, err
		}
		return n, nil
	case string:
		return &jnode{kind: 's', str: t}, nil
	case json.Number:
		return &jnode{kind: 'n', str: t.String()}, nil
	case bool:
		return &jnode{kind: 'b', str: strconv.FormatBool(t)}, nil
	}
	return &jnode{kind: 'z', str: "null"}, nil
}

// sortKeys orders object keys, recursively: both sides of a diff are
// canonicalized so that key order never shows up as a change.
func (n *jnode) sortKeys() {
	if n.kind == 'o' {
		idx := make([]int, len(n.keys))
		for i := range idx {
			idx[i] = i
		}
		sort.SliceStable(idx, func(a, b int) bool { return n.keys[idx[a]] < n.keys[idx[b]] })
		keys, vals := make([]string, len(idx)), make([]*jnode, len(idx))
		for i, j := range idx {
			keys[i], vals[i] = n.keys[j], n.vals[j]
		}
		n.keys, n.vals = keys, vals
	}
	for _, v := range n.vals {
		v.sortKeys()
	}
}

// jsonStyles colors tokens; nil styles print plain text.
type jsonStyles struct {
	key, str, num, lit, punct *lipgloss.Style
}

func plainJSON() jsonStyles { return jsonStyles{} }

func themedJSON(st *themes.Styles) jsonStyles {
	return jsonStyles{key: &st.JSONKey, str: &st.JSONStr, num: &st.JSONNum, lit: &st.JSONB, punct: &st.Muted}
}

func paint(s *lipgloss.Style, text string) string {
	if s == nil {
		return text
	}
	return s.Render(text)
}

// jprinter lays a value out one element per line, two-space indents.
// Strings holding several lines (file contents, generated text) are printed
// as a block after a `|`, one line per line, so that a diff shows which
// lines of a file changed instead of one changed string.
type jprinter struct {
	st    jsonStyles
	lines []string
	limit int
	cut   bool
}

func (p *jprinter) emit(s string) {
	if p.limit > 0 && len(p.lines) >= p.limit {
		p.cut = true
		return
	}
	p.lines = append(p.lines, s)
}

// value prints n at indent, after prefix (`"key": `), followed by suffix (`,`).
func (p *jprinter) value(n *jnode, indent, prefix, suffix string) {
	if p.cut {
		return
	}
	comma := paint(p.st.punct, suffix)
	switch n.kind {
	case 'o', 'a':
		open, closing := "{", "}"
		if n.kind == 'a' {
			open, closing = "[", "]"
		}
		if len(n.vals) == 0 {
			p.emit(indent + prefix + paint(p.st.punct, open+closing) + comma)
			return
		}
		p.emit(indent + prefix + paint(p.st.punct, open))
		for i, v := range n.vals {
			sfx := ","
			if i == len(n.vals)-1 {
				sfx = ""
			}
			kp := ""
			if n.kind == 'o' {
				kp = paint(p.st.key, strconv.Quote(n.keys[i])) + paint(p.st.punct, ": ")
			}
			p.value(v, indent+"  ", kp, sfx)
		}
		p.emit(indent + paint(p.st.punct, closing) + comma)
	case 's':
		if strings.Contains(n.str, "\n") {
			// A block carries no comma: it is a view of the value, not JSON.
			p.emit(indent + prefix + paint(p.st.punct, "|"))
			text := strings.TrimSuffix(n.str, "\n")
			for _, line := range strings.Split(text, "\n") {
				p.emit(indent + "  " + paint(p.st.str, showLine(strings.TrimRight(line, "\r"))))
			}
			return
		}
		p.emit(indent + prefix + paint(p.st.str, strconv.Quote(n.str)) + comma)
	case 'n':
		p.emit(indent + prefix + paint(p.st.num, n.str) + comma)
	default:
		p.emit(indent + prefix + paint(p.st.lit, n.str) + comma)
	}
}

// prettyLines pretty-prints raw JSON; text that is not JSON comes back
// line by line as it is.
func prettyLines(raw []byte, st jsonStyles, canonical bool, limit int) (lines []string, truncated bool) {
	if len(bytes.TrimSpace(raw)) == 0 {
		return nil, false
	}
	n, err := parseJSON(raw)
	if err != nil {
		lines = strings.Split(string(raw), "\n")
		for i, l := range lines {
			lines[i] = showLine(l)
		}
		if limit > 0 && len(lines) > limit {
			return lines[:limit], true
		}
		return lines, false
	}
	if canonical {
		n.sortKeys()
	}
	p := &jprinter{st: st, limit: limit}
	p.value(n, "", "", "")
	return p.lines, p.cut
}
