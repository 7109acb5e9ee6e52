package ui

import (
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/charmbracelet/lipgloss"
	"github.com/charmbracelet/x/ansi"

	"github.com/mcptrail/mcptrail/internal/termsafe"
	"github.com/mcptrail/mcptrail/store"
	"github.com/mcptrail/mcptrail/themes"
)

// column is one column of a table: a fixed width, or a share of what is
// left (flex) with a minimum. Columns with drop > 0 are hidden, highest
// drop first, when the terminal is too narrow for their minimum.
type column struct {
	title string
	width int // fixed width; 0 = flexible
	min   int // flexible: minimum width
	flex  int // flexible: share of the remaining width
	most  int // flexible: at most this wide (0: no bound); the rest goes to the last unbounded column
	right bool
	drop  int
}

// layout returns the width of each column for a table width total (with
// one space between columns); hidden columns get 0.
func layout(cols []column, total int) []int {
	widths := make([]int, len(cols))
	hidden := make([]bool, len(cols))
	for {
		need, n := 0, 0
		for i, c := range cols {
			if hidden[i] {
				continue
			}
			n++
			if c.width > 0 {
				need += c.width
			} else {
				need += c.min
			}
		}
		need += n - 1
		if need <= total {
			spare, flex := total-need, 0
			for i, c := range cols {
				if !hidden[i] && c.width == 0 {
					flex += c.flex
				}
			}
			rest := spare
			last := -1
			for i, c := range cols {
				switch {
				case hidden[i]:
					widths[i] = 0
				case c.width > 0:
					widths[i] = c.width
				default:
					extra := 0
					if flex > 0 {
						extra = spare * c.flex / flex
					}
					if c.most > 0 {
						extra = max(0, min(extra, c.most-c.min))
					} else {
						last = i
					}
					widths[i] = c.min + extra
					rest -= extra
					if last < 0 {
						last = i
					}
				}
			}
			if last >= 0 {
				widths[last] += rest
			}
			return widths
		}
		// Hide the most droppable visible column; if none, squeeze.
		best := -1
		for i, c := range cols {
			if !hidden[i] && c.drop > 0 && (best < 0 || c.drop > cols[best].drop) {
				best = i
			}
		}
		if best < 0 {
			for i, c := range cols {
				widths[i] = max(c.width, c.min)
			}
			return widths
		}
		hidden[best] = true
	}
}

// cell fits s into w columns: truncated with an ellipsis, padded with spaces.
// s is shown with its control characters visible (termsafe.Line): nearly
// every line the console draws from the record passes here, so no table,
// banner or heading can forget to. s must not be styled yet.
func cell(s string, w int, right bool) string {
	if w <= 0 {
		return ""
	}
	s = show(s)
	if ansi.StringWidth(s) > w {
		s = ansi.Truncate(s, w, "…")
	}
	pad := w - ansi.StringWidth(s)
	if right {
		return strings.Repeat(" ", pad) + s
	}
	return s + strings.Repeat(" ", pad)
}

// row lays out cells; each cell may be styled (styles apply after fitting).
type styledCell struct {
	text  string
	style *lipgloss.Style
}

func tableLine(cols []column, widths []int, cells []styledCell) string {
	var b strings.Builder
	first := true
	for i, c := range cols {
		if widths[i] == 0 {
			continue
		}
		if !first {
			b.WriteByte(' ')
		}
		first = false
		s := cell(cells[i].text, widths[i], c.right)
		if cells[i].style != nil {
			s = cells[i].style.Render(s)
		}
		b.WriteString(s)
	}
	return b.String()
}

func headerLine(st *themes.Styles, cols []column, widths []int) string {
	cells := make([]styledCell, len(cols))
	for i, c := range cols {
		cells[i] = styledCell{text: c.title}
	}
	return st.Header.Render(tableLine(cols, widths, cells))
}

// gutter is the two columns left of every row: the selection glyph (kept
// under NO_COLOR, where reverse video is lost) and the reversal mark.
func gutter(selected, marked bool) string {
	g := "  "
	switch {
	case selected && marked:
		g = themes.SelectedGlyph + themes.MarkGlyph
	case selected:
		g = themes.SelectedGlyph + " "
	case marked:
		g = " " + themes.MarkGlyph
	}
	return g
}

// fit pads or cuts a rendered line to exactly w columns.
func fit(s string, w int) string {
	if ansi.StringWidth(s) > w {
		return ansi.Truncate(s, w, "")
	}
	return s + strings.Repeat(" ", w-ansi.StringWidth(s))
}

// block joins lines and pads the body to h lines so the hint bar stays put.
func block(lines []string, h int) string {
	if len(lines) > h {
		lines = lines[:h]
	}
	for len(lines) < h {
		lines = append(lines, "")
	}
	return strings.Join(lines, "\n")
}

func fmtDuration(d time.Duration) string {
	switch {
	case d <= 0:
		return ""
	case d < time.Millisecond:
		return fmt.Sprintf("%dµs", d.Microseconds())
	case d < 10*time.Millisecond:
		return fmt.Sprintf("%.1fms", float64(d)/float64(time.Millisecond))
	case d < time.Second:
		return fmt.Sprintf("%dms", d.Milliseconds())
	case d < time.Minute:
		return fmt.Sprintf("%.1fs", d.Seconds())
	case d < time.Hour:
		return fmt.Sprintf("%dm%02ds", int(d.Minutes()), int(d.Seconds())%60)
	case d < 24*time.Hour:
		return fmt.Sprintf("%dh%02dm", int(d.Hours()), int(d.Minutes())%60)
	}
	return fmt.Sprintf("%dd%02dh", int(d.Hours())/24, int(d.Hours())%24)
}

// show is a string from the record (an agent, a server, a tool) for a
// single-line place: control characters, C1 and bidi controls and invalid
// UTF-8 made visible (termsafe.Line), so that nothing an agent sends can
// drive the investigator's terminal. Every text from the record reaches the
// screen through show, showLine, cell, wrapLines or safeEvent.
func show(s string) string { return termsafe.Line(s) }

// showLine is one line of a multi-line value (a file's content in a record
// view or a diff): control characters visible, tabs as four spaces (a tab
// would throw the columns out).
func showLine(s string) string {
	if strings.IndexByte(s, '\t') >= 0 {
		s = strings.ReplaceAll(s, "\t", "    ")
	}
	return show(s)
}

// safeEvent is a copy of ev for display: every string shown (show) and its
// JSON with C1 and bidi characters escaped (termsafe.JSON, lossless). It is
// for drawing only: queries must use the event itself.
func safeEvent(ev *store.Event) *store.Event {
	if ev == nil {
		return nil
	}
	e := *ev
	for _, f := range []*string{&e.ID, &e.Kind, &e.Session, &e.Upstream, &e.Transport, &e.ProtocolVersion, &e.From, &e.Method,
		&e.Tool, &e.OnBehalfOf, &e.Outcome, &e.Class, &e.Prestate, &e.Detail, &e.PrevHash, &e.Hash} {
		*f = show(*f)
	}
	e.JSONRPCID, e.Params, e.Result, e.Error = termsafe.JSON(e.JSONRPCID), termsafe.JSON(e.Params), termsafe.JSON(e.Result), termsafe.JSON(e.Error)
	if a := e.Agent; a != nil {
		e.Agent = &store.Agent{ID: show(a.ID), Name: show(a.Name), ClientName: show(a.ClientName), ClientVersion: show(a.ClientVersion)}
	}
	if p := e.Principal; p != nil {
		e.Principal = &store.Principal{Subject: show(p.Subject), Issuer: show(p.Issuer), CredentialID: show(p.CredentialID), Kind: show(p.Kind), Verified: p.Verified}
	}
	if t := e.Task; t != nil {
		e.Task = &store.Task{ID: show(t.ID), Name: show(t.Name), Workflow: show(t.Workflow), TraceID: show(t.TraceID), SpanID: show(t.SpanID)}
	}
	if z := e.Authorization; z != nil {
		e.Authorization = &store.Authorization{Reviewed: z.Reviewed, Approver: show(z.Approver), Method: show(z.Method), Time: z.Time}
	}
	return &e
}

// shortID is the first ten characters of an id (whole characters: an id
// from outside need not be ASCII).
func shortID(s string) string {
	s = show(s)
	n := 0
	for i := range s {
		if n == 10 {
			return s[:i] + "…"
		}
		n++
	}
	return s
}

func agentName(a *store.Agent) string {
	if l := store.AgentLabel(a); l != "" {
		return show(l)
	}
	return "-"
}

// originCell is a row's ORIGIN: the host it was recorded on (a session or
// event of the central instance's own is muted "-").
func originCell(st *themes.Styles, o *store.Origin) styledCell {
	if o == nil {
		return styledCell{text: o.Label(), style: &st.Muted}
	}
	return styledCell{text: o.Label()}
}

func principalName(p *store.Principal) string {
	if p == nil || p.Subject == "" {
		return "-"
	}
	return show(p.Subject)
}

func taskName(t *store.Task) string {
	switch {
	case t == nil:
		return "-"
	case t.Name != "":
		return show(t.Name)
	case t.ID != "":
		return show(t.ID)
	case t.Workflow != "":
		return show(t.Workflow)
	}
	return "-"
}

// arguments returns a tools/call request's arguments, else its params.
func arguments(ev *store.Event) json.RawMessage {
	if ev == nil || len(ev.Params) == 0 {
		return nil
	}
	if ev.Method == "tools/call" {
		var p struct {
			Arguments json.RawMessage `json:"arguments"`
		}
		if json.Unmarshal(ev.Params, &p) == nil {
			return p.Arguments
		}
	}
	return nil
}

// argsSummary renders arguments on one line: key=value pairs, sorted, with
// long values cut, so a timeline row shows what the call touched.
func argsSummary(raw json.RawMessage) string {
	s, _ := argsSummaryKey(raw)
	return s
}

// argsSummaryKey is argsSummary and the length in bytes of its first part
// when that part is a resource path (path=/a/b), which a narrow column
// shows by its tail (argsFit); 0 otherwise.
func argsSummaryKey(raw json.RawMessage) (string, int) {
	if len(raw) == 0 || string(raw) == "null" {
		return "", 0
	}
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		return oneLineJSON(raw), 0
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	// Key arguments first: they say what the call touched.
	sort.SliceStable(keys, func(i, j int) bool {
		ki, kj := keyRank(keys[i]), keyRank(keys[j])
		if ki != kj {
			return ki < kj
		}
		return keys[i] < keys[j]
	})
	var parts []string
	keyLen := 0
	for i, k := range keys {
		var v string
		switch x := m[k].(type) {
		case string:
			v = x
			if strings.ContainsAny(v, "\n\r") {
				n := strings.Count(strings.TrimRight(v, "\n"), "\n") + 1
				v = "⟨" + counted(n, "line", "lines") + "⟩"
			}
		default:
			b, _ := json.Marshal(x)
			v = string(b)
		}
		path := keyRank(k) < len(keyArgs) && strings.Contains(v, "/")
		if r := []rune(v); len(r) > 40 {
			if path {
				v = "…" + string(r[len(r)-39:]) // a path's end names the file
			} else {
				v = string(r[:39]) + "…"
			}
		}
		part := show(k) + "=" + show(v)
		if i == 0 && path {
			keyLen = len(part)
		}
		parts = append(parts, part)
	}
	return strings.Join(parts, " "), keyLen
}

// argsFit fits an argument summary into w columns; when its first part is
// a path (keyLen, from argsSummaryKey) that does not fit, the path keeps
// its tail: path=…config/app.yaml.
func argsFit(args string, keyLen, w int) string {
	if keyLen == 0 || keyLen > len(args) || ansi.StringWidth(args) <= w {
		return args
	}
	first := args[:keyLen]
	if ansi.StringWidth(first) <= w {
		return args // the path fits; the rest is cut at its end
	}
	k, v, _ := strings.Cut(first, "=")
	prefix := k + "=…"
	if w-ansi.StringWidth(prefix) < 16 {
		prefix = "…" // narrow: the path's end says more than its name
	}
	room := w - ansi.StringWidth(prefix)
	if room < 4 {
		return args
	}
	r := []rune(strings.TrimPrefix(v, "…"))
	for ansi.StringWidth(string(r)) > room {
		r = r[1:]
	}
	return prefix + string(r)
}

// keyArgs are the argument names that identify what a call acts on, in
// order of preference (the rollback rules' `key`, guessed).
var keyArgs = []string{"path", "uri", "id", "name", "key", "file", "url", "source", "target", "resource"}

// resourceKeys are the values of a request's key arguments: what the call
// acts on, as far as its arguments say (strings, and strings in lists).
func resourceKeys(req *store.Event) []string {
	raw := arguments(req)
	if len(raw) == 0 {
		return nil
	}
	var m map[string]any
	if json.Unmarshal(raw, &m) != nil {
		return nil
	}
	var out []string
	for _, k := range keyArgs {
		switch v := m[k].(type) {
		case string:
			out = append(out, v)
		case []any:
			for _, e := range v {
				if s, ok := e.(string); ok {
					out = append(out, s)
				}
			}
		}
	}
	return out
}

func keyRank(k string) int {
	for i, a := range keyArgs {
		if a == k {
			return i
		}
	}
	return len(keyArgs)
}

func oneLineJSON(raw json.RawMessage) string {
	s := show(strings.Join(strings.Fields(string(raw)), " "))
	if len([]rune(s)) > 200 {
		s = string([]rune(s)[:199]) + "…"
	}
	return s
}

func outcomeLabel(o string) string {
	switch o {
	case store.OutcomeToolError:
		return "tool_error"
	case store.OutcomeRPCError:
		return "rpc_error"
	case store.OutcomeTransportError:
		return "transport"
	case store.OutcomeInputRequired:
		return "input_req"
	}
	return o
}

func outcomeStyle(st *themes.Styles, o string) *lipgloss.Style {
	switch o {
	case store.OutcomeOK:
		return &st.OK
	case "", store.OutcomeInputRequired:
		return &st.Muted
	case store.OutcomeCancelled:
		return &st.Warn
	}
	return &st.Error
}

func isWrite(ev *store.Event) bool {
	return ev != nil && (ev.Class == "write" || ev.Class == "delete")
}

// isDestructive: a delete, a tool its server calls destructive, or a write
// whose class no rule gave, read the MCP specification's way (a tool that
// says nothing is a destructive one).
func isDestructive(ev *store.Event) bool {
	if ev == nil {
		return false
	}
	if ev.Class == "delete" || ev.Annotations != nil && ev.Annotations.Destructive != nil && *ev.Annotations.Destructive {
		return true
	}
	return ev.Class == "write" && ev.ClassSource != "" && ev.ClassSource != store.ClassSourceRule && store.SpecDestructive(ev.Annotations)
}

// slim drops the bulky parts of an event kept in a list: lists show a
// summary computed at load, and opening a record reads it again.
func slim(ev store.Event) *store.Event {
	ev.Params, ev.Result, ev.Error = nil, nil, nil
	ev.Hash, ev.PrevHash = "", ""
	return &ev
}

// plural is the form of a noun for n of it: the console's one home for
// "1 line" against "2 lines".
func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

// counted is n and its noun: counted(1, "line", "lines") is "1 line".
func counted(n int, one, many string) string { return fmt.Sprintf("%d %s", n, plural(n, one, many)) }

// fmtTime shows a time in the console's zone.
func fmtTime(t time.Time, loc *time.Location, layout string) string {
	if t.IsZero() {
		return "-"
	}
	return t.In(loc).Format(layout)
}
