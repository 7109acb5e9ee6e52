package ui

import (
	"fmt"
	"strings"
	"time"

	"github.com/charmbracelet/bubbles/key"
	tea "github.com/charmbracelet/bubbletea"
	"github.com/charmbracelet/x/ansi"

	"github.com/mcptrail/mcptrail/internal/termsafe"
	"github.com/mcptrail/mcptrail/store"
	"github.com/mcptrail/mcptrail/themes"
)

// callScreen shows one record whole: a call as its request and outcome
// together, or a single event.
type callScreen struct {
	c   *Common
	sid int
	// What the opener knew (slim copies); the full records are read again.
	want          struct{ req, out, ev uint64 }
	req, out, ev  *store.Event
	loaded        bool
	err           error
	gen           int
	pg            pager
	width, height int
}

type callLoaded struct {
	to, gen      int
	req, out, ev *store.Event
	err          error
}

func (m callLoaded) target() int { return m.to }

type callRendered struct {
	to, gen  int
	lines    []string
	sections []int
}

func (m callRendered) target() int { return m.to }

func newCall(c *Common, req, out, ev *store.Event) *callScreen {
	s := &callScreen{c: c, sid: c.newID()}
	if req != nil {
		s.want.req = req.Seq
	}
	if out != nil {
		s.want.out = out.Seq
		if req == nil {
			s.want.req = out.Call
		}
	}
	if ev != nil {
		s.want.ev = ev.Seq
	}
	return s
}

func (s *callScreen) id() int { return s.sid }

func (s *callScreen) Title() string {
	switch {
	case s.want.req != 0:
		return fmt.Sprintf("call %d", s.want.req)
	}
	return fmt.Sprintf("event %d", s.want.ev)
}

// tabs: tab moves between the record's sections.
func (s *callScreen) tabs() bool { return true }

func (s *callScreen) SetSize(w, h int) {
	s.width, s.height = w, h
	s.pg.height = max(1, h)
	s.pg.clamp()
}

// relayout wraps the record again for a new width, off the event loop
// (the app calls it after SetSize when the width changed).
func (s *callScreen) relayout() tea.Cmd {
	if !s.loaded {
		return nil
	}
	s.gen++
	return s.render()
}

func (s *callScreen) Init() tea.Cmd {
	src, want, to, gen := s.c.Src, s.want, s.sid, s.gen
	return func() tea.Msg {
		m := callLoaded{to: to, gen: gen}
		var err error
		if want.ev != 0 {
			if m.ev, err = src.Get(want.ev); err != nil {
				m.err = err
				return m
			}
		}
		if want.req != 0 {
			if m.req, err = src.Get(want.req); err != nil {
				m.err = err
				return m
			}
		}
		switch {
		case want.out != 0:
			m.out, m.err = src.Get(want.out)
		case m.req != nil && m.req.Kind == store.KindRequest:
			m.out, m.err = findOutcome(src, m.req)
		}
		return m
	}
}

// findOutcome looks for the outcome of req among the next events of its
// session: outcomes follow their requests, usually closely.
func findOutcome(src Source, req *store.Event) (*store.Event, error) {
	q := store.Query{Session: req.Session, Kind: store.KindCall, Cursor: req.Seq + 1, Limit: 500}
	for pages := 0; pages < 4; pages++ {
		page, err := src.Query(q)
		if err != nil {
			return nil, err
		}
		for i := range page.Events {
			if page.Events[i].Call == req.Seq {
				return &page.Events[i], nil
			}
		}
		if page.Next == 0 {
			break
		}
		q.Cursor = page.Next
	}
	return nil, nil
}

func (s *callScreen) render() tea.Cmd {
	st, loc, w := s.c.Styles, s.c.Loc, max(20, s.width-1)
	req, out, ev, to, gen := s.req, s.out, s.ev, s.sid, s.gen
	return func() tea.Msg {
		lines, sections := renderRecord(st, loc, w, req, out, ev)
		return callRendered{to: to, gen: gen, lines: lines, sections: sections}
	}
}

func (s *callScreen) Update(msg tea.Msg) (tea.Model, tea.Cmd) {
	k := s.c.Keys
	switch msg := msg.(type) {
	case callLoaded:
		if msg.gen != s.gen {
			return s, nil
		}
		s.req, s.out, s.ev, s.err = msg.req, msg.out, msg.ev, msg.err
		s.loaded = msg.err == nil
		if s.loaded {
			return s, s.render()
		}
	case callRendered:
		if msg.gen != s.gen {
			return s, nil
		}
		s.pg.set(msg.lines, msg.sections)
	case themeChangedMsg:
		return s, s.relayout()
	case tea.KeyMsg:
		switch {
		case s.pg.handle(k, msg):
		case key.Matches(msg, k.Diff):
			if s.want.req != 0 {
				return s, push(newDiff(s.c, s.want.req))
			}
			return s, toast("d compares a tool call's arguments; this record is not a call")
		case key.Matches(msg, k.Mark):
			if !s.c.Identity.CanReverse() {
				return s, denyReverse(s.c, "mark calls for reversal")
			}
			if s.req != nil {
				r := &tlRow{anchor: s.req.Seq, req: s.req, args: argsSummary(arguments(s.req))}
				if mk, ok := markOf(s.c, r); ok {
					if s.c.Marks.Toggle(mk) {
						s.c.audit("mark", fmt.Sprintf("call %d %s", mk.Seq, mk.Tool))
						return s, s.c.Marks.said(fmt.Sprintf("marked call %d · %d queued · R shows the queue", mk.Seq, s.c.Marks.Len()))
					}
					s.c.audit("unmark", fmt.Sprintf("call %d %s", mk.Seq, mk.Tool))
					return s, s.c.Marks.said(fmt.Sprintf("unmarked call %d · %d queued", mk.Seq, s.c.Marks.Len()))
				}
			}
			return s, toast("only tool calls can be marked for reversal")
		}
	}
	return s, nil
}

func (s *callScreen) yankSeqs() []uint64 {
	var out []uint64
	for _, seq := range []uint64{s.want.req, s.want.out, s.want.ev} {
		if seq != 0 {
			out = append(out, seq)
		}
	}
	if s.want.out == 0 && s.out != nil {
		out = append(out, s.out.Seq)
	}
	return out
}

func (s *callScreen) View() string {
	st := s.c.Styles
	switch {
	case s.err != nil:
		return block([]string{" " + st.Error.Render("error: "+show(s.err.Error()))}, s.height)
	case len(s.pg.lines) == 0:
		return block([]string{" " + st.Muted.Render("loading…")}, s.height)
	}
	return block(s.pg.view(), s.height)
}

func (s *callScreen) Status() string {
	if len(s.pg.lines) == 0 {
		return ""
	}
	return fmt.Sprintf("line %d of %d (%d%%)", s.pg.off+1, len(s.pg.lines), s.pg.percent())
}

func (s *callScreen) ShortHelp() []key.Binding {
	k := s.c.Keys
	tab := key.NewBinding(key.WithKeys("tab"), key.WithHelp("tab", "next section"))
	return []key.Binding{k.Down, tab, k.Diff, k.Mark, k.Yank, k.Back, k.Help}
}

func (s *callScreen) FullHelp() [][]key.Binding {
	k := s.c.Keys
	top := key.NewBinding(key.WithKeys("g"), key.WithHelp("g/G", "top/bottom"))
	tab := key.NewBinding(key.WithKeys("tab"), key.WithHelp("tab", "next section"))
	return [][]key.Binding{
		{k.Up, k.Down, k.PageUp, k.PageDown, top},
		{tab, k.Diff, k.Mark, k.Back},
		k.global(),
	}
}

// renderRecord lays out a record for the call screen, wrapped to width.
// It runs in a command: pretty-printing a large result is not for Update.
func renderRecord(st *themes.Styles, loc *time.Location, width int, req, out, ev *store.Event) ([]string, []int) {
	req, out, ev = safeEvent(req), safeEvent(out), safeEvent(ev)
	var lines []string
	var sections []int
	add := func(s string) {
		for _, l := range strings.Split(ansi.Hardwrap(s, width, true), "\n") {
			lines = append(lines, " "+l)
		}
	}
	section := func(title string) {
		if len(lines) > 0 {
			lines = append(lines, "")
		}
		sections = append(sections, len(lines))
		add(st.Section.Render(title))
	}
	// Fields wrap with a hanging indent, so values line up under values.
	const labelW = 17
	field := func(label, value string) {
		wrapped := strings.Split(ansi.Wrap(value, max(10, width-labelW-3), " "), "\n")
		for i, l := range wrapped {
			if i == 0 {
				lines = append(lines, "   "+st.Muted.Render(fmt.Sprintf("%-*s", labelW, label))+l)
			} else {
				lines = append(lines, "   "+strings.Repeat(" ", labelW)+l)
			}
		}
	}
	when := func(t time.Time) string {
		if t.IsZero() {
			return "-"
		}
		return t.In(loc).Format("2006-01-02 15:04:05.000000 MST")
	}
	main := req
	if main == nil {
		main = out
	}
	if main == nil {
		main = ev
	}
	if main == nil {
		return []string{" no record"}, nil
	}

	// Title line.
	var title []string
	if req != nil || out != nil {
		name := main.Tool
		if name == "" {
			name = main.Method
		}
		title = append(title, st.Bold.Render(name))
		if out != nil {
			title = append(title, outcomeStyle(st, out.Outcome).Render(out.Outcome))
			if d := fmtDuration(time.Duration(out.DurationNS)); d != "" {
				title = append(title, d)
			}
		} else {
			title = append(title, st.Warn.Render("no outcome recorded"))
		}
		if isWrite(main) {
			title = append(title, st.Badge.Render("write"))
		}
		if isDestructive(main) {
			title = append(title, st.Error.Render("destructive"))
		}
	} else {
		title = append(title, st.Bold.Render(kindLabel(ev)))
		if ev.Tool != "" {
			title = append(title, ev.Tool)
		}
		if ev.Call != 0 {
			title = append(title, fmt.Sprintf("about call %d", ev.Call))
		}
	}
	add(strings.Join(title, "  ·  "))

	section("WHO")
	a := main.Agent
	agent := agentName(a)
	if a != nil {
		var extra []string
		if a.ID != "" && a.ID != agent {
			extra = append(extra, "id "+a.ID)
		}
		if a.ClientName != "" {
			extra = append(extra, "client "+strings.TrimSpace(a.ClientName+" "+a.ClientVersion)+" (claimed)")
		}
		if len(extra) > 0 {
			agent += st.Muted.Render(" · " + strings.Join(extra, " · "))
		}
	}
	field("agent", agent)
	principal := "-"
	if p := main.Principal; p != nil && *p != (store.Principal{}) {
		parts := []string{p.Subject}
		if p.Kind != "" {
			parts = append(parts, p.Kind)
		}
		if p.Issuer != "" {
			parts = append(parts, "issuer "+p.Issuer)
		}
		if p.CredentialID != "" {
			parts = append(parts, "credential "+p.CredentialID)
		}
		if p.Verified {
			parts = append(parts, st.OK.Render("verified by the gateway"))
		} else {
			parts = append(parts, st.Warn.Render("claimed, not verified"))
		}
		principal = strings.Join(parts, " · ")
	}
	field("→ principal", principal)
	obo := main.OnBehalfOf
	if obo == "" {
		obo = st.Muted.Render("- (no human or workflow named)")
	}
	field("→ on behalf of", obo)

	section("TASK")
	if t := main.Task; t != nil && *t != (store.Task{}) {
		field("task", taskName(t))
		if t.ID != "" && t.ID != taskName(t) {
			field("id", t.ID)
		}
		if t.Workflow != "" {
			field("workflow", t.Workflow)
		}
		if t.TraceID != "" {
			field("trace", t.TraceID+" span "+t.SpanID)
		}
	} else {
		field("task", "-")
	}
	auth := st.Warn.Render("not reviewed by a human")
	if z := main.Authorization; z != nil && z.Reviewed {
		auth = st.OK.Render("reviewed") + " by " + z.Approver
		if z.Method != "" {
			auth += " via " + z.Method
		}
		if !z.Time.IsZero() {
			auth += " at " + when(z.Time)
		}
	}
	field("authorization", auth)

	section("WHAT")
	field("session", main.Session)
	up := main.Upstream
	if main.Transport != "" {
		up += " · " + main.Transport
	}
	if main.ProtocolVersion != "" {
		up += " · protocol " + main.ProtocolVersion
	}
	field("upstream", up)
	if main.Method != "" {
		method := main.Method
		if len(main.JSONRPCID) > 0 {
			method += st.Muted.Render(" · jsonrpc id " + string(main.JSONRPCID))
		}
		if main.From != "" {
			method += st.Muted.Render(" · from " + main.From)
		}
		field("method", method)
	}
	if main.Class != "" || main.Annotations != nil {
		class := termsafe.OrDash(main.Class)
		if main.ClassSource != "" {
			class += st.Muted.Render(" · by " + main.ClassSource)
		}
		field("class", class+annotationText(st, main.Annotations))
	}
	if main.Detail != "" {
		field("detail", main.Detail)
	}

	section("WHEN")
	if req != nil {
		field("request", when(req.Time))
	}
	if out != nil {
		field("outcome", when(out.Time)+st.Muted.Render(" · took "+termsafe.OrDash(fmtDuration(time.Duration(out.DurationNS)))))
	}
	if ev != nil {
		field("event", when(ev.Time))
	}

	body := func(title string, raw []byte) {
		if len(raw) == 0 {
			return
		}
		section(title)
		pretty, cut := prettyLines(raw, themedJSON(st), false, 3000)
		for _, l := range pretty {
			add("  " + l)
		}
		if cut {
			add("  " + st.Muted.Render("… cut here in the view; y copies the whole record"))
		}
	}
	if req != nil {
		body("PARAMS", req.Params)
	}
	if ev != nil {
		body("PARAMS", ev.Params)
	}
	if out != nil {
		body("RESULT", out.Result)
		body("ERROR", out.Error)
	}
	if ev != nil {
		body("RESULT", ev.Result)
	}

	section("CHAIN")
	chain := func(label string, e *store.Event) {
		if e == nil {
			return
		}
		s := fmt.Sprintf("seq %d · id %s", e.Seq, e.ID)
		if e.Call != 0 {
			s += fmt.Sprintf(" · outcome of request %d", e.Call)
		}
		if e.LogicalCall != 0 && e.LogicalCall != e.Call {
			s += fmt.Sprintf(" · logical call %d", e.LogicalCall)
		}
		field(label, s)
		field("  hash", e.Hash)
		field("  prev hash", e.PrevHash)
	}
	chain("request", req)
	chain("outcome", out)
	chain("event", ev)
	links := []string{}
	if main.Reverts != 0 {
		links = append(links, fmt.Sprintf("reverts call %d", main.Reverts))
	}
	if main.Prestate != "" {
		links = append(links, "pre-state "+main.Prestate)
	}
	if req != nil && out == nil {
		links = append(links, "no outcome found after the request (still running, or the gateway stopped)")
	}
	if len(links) > 0 {
		field("links", strings.Join(links, " · "))
	}
	return lines, sections
}

func annotationText(st *themes.Styles, a *store.Annotations) string {
	if a == nil {
		return ""
	}
	var parts []string
	hint := func(p *bool, yes, no string) {
		if p != nil {
			if *p {
				parts = append(parts, yes)
			} else {
				parts = append(parts, no)
			}
		}
	}
	hint(a.ReadOnly, "read-only", "not read-only")
	hint(a.Destructive, "destructive", "not destructive")
	hint(a.Idempotent, "idempotent", "not idempotent")
	hint(a.OpenWorld, "open world", "closed world")
	if len(parts) == 0 {
		return ""
	}
	return st.Muted.Render(" · server says: " + strings.Join(parts, ", "))
}
