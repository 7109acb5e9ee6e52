package ui

import (
	"fmt"

	"github.com/charmbracelet/bubbles/key"
	tea "github.com/charmbracelet/bubbletea"

	"github.com/mcptrail/mcptrail/store"
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
		lines, sections := layoutRecord(st, loc, w, req, out, ev)
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
