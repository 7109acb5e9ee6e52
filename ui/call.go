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
	screenBase
	// What the opener knew (slim copies); the full records are read again.
	want         struct{ req, out, ev uint64 }
	req, out, ev *store.Event
	loaded       bool
	err          error
	gen          int
	pg           pager
}

// callRecords are the records read again in full (loaded[callRecords]).
type callRecords struct{ req, out, ev *store.Event }

// callLayout is the record laid out for the screen's width
// (loaded[callLayout]): its lines and where each section starts.
type callLayout struct {
	lines    []string
	sections []int
}

func newCall(c *Common, req, out, ev *store.Event) *callScreen {
	s := &callScreen{screenBase: newScreenBase(c)}
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
		recs, err := readCall(src, want.req, want.out, want.ev)
		return loaded[callRecords]{to: to, gen: gen, val: recs, err: err}
	}
}

// readCall reads the records the screen shows: the event ev, the request
// req and its outcome out (found after req when the opener did not know
// it). On an error it returns what it read before it.
func readCall(src Source, req, out, ev uint64) (callRecords, error) {
	var r callRecords
	var err error
	if ev != 0 {
		if r.ev, err = src.Get(ev); err != nil {
			return r, err
		}
	}
	if req != 0 {
		if r.req, err = src.Get(req); err != nil {
			return r, err
		}
	}
	switch {
	case out != 0:
		r.out, err = src.Get(out)
	case r.req != nil && r.req.Kind == store.KindRequest:
		r.out, err = findOutcome(src, r.req)
	}
	return r, err
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
		return loaded[callLayout]{to: to, gen: gen, val: callLayout{lines: lines, sections: sections}}
	}
}

func (s *callScreen) Update(msg tea.Msg) (tea.Model, tea.Cmd) {
	k := s.c.Keys
	switch msg := msg.(type) {
	case loaded[callRecords]:
		if msg.gen != s.gen {
			return s, nil
		}
		s.req, s.out, s.ev, s.err = msg.val.req, msg.val.out, msg.val.ev, msg.err
		s.loaded = msg.err == nil
		if s.loaded {
			return s, s.render()
		}
	case loaded[callLayout]:
		if msg.gen != s.gen {
			return s, nil
		}
		s.pg.set(msg.val.lines, msg.val.sections)
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
