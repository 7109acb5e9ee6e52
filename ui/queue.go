package ui

import (
	"fmt"

	"github.com/charmbracelet/bubbles/key"
	tea "github.com/charmbracelet/bubbletea"

	"github.com/mcptrail/mcptrail/store"
)

// queueNotice is said wherever reversal is asked for, so nobody mistakes
// the queue for a plan: this build records intent, it reverses nothing.
const queueNotice = "Building and applying reversal plans arrives with the rollback feature: this console cannot plan or apply a reversal yet, and nothing below has been reverted."

// queueScreen is the rollback queue (`R`): the calls marked for reversal.
type queueScreen struct {
	c             *Common
	sid           int
	nav           listNav
	width, height int
}

func newQueue(c *Common) *queueScreen { return &queueScreen{c: c, sid: c.newID()} }

func (s *queueScreen) id() int       { return s.sid }
func (s *queueScreen) Title() string { return "Rollback queue" }

func (s *queueScreen) SetSize(w, h int) {
	s.width, s.height = w, h
	s.nav.height = max(1, h-4)
	s.nav.clamp(s.c.Marks.Len())
}

func (s *queueScreen) Init() tea.Cmd { return nil }

func (s *queueScreen) Update(msg tea.Msg) (tea.Model, tea.Cmd) {
	k := s.c.Keys
	if msg, ok := msg.(tea.KeyMsg); ok {
		n := s.c.Marks.Len()
		switch {
		case s.nav.handle(k, msg, n):
		case key.Matches(msg, k.Top):
			s.nav.sel = 0
			s.nav.clamp(n)
		case key.Matches(msg, k.Bottom):
			s.nav.sel = n - 1
			s.nav.clamp(n)
		case key.Matches(msg, k.Mark):
			if !s.c.Identity.CanReverse() {
				return s, denyReverse(s.c, "change the rollback queue")
			}
			if mk := s.selected(); mk != nil {
				seq := mk.Seq
				s.c.Marks.Toggle(*mk)
				s.c.audit("unqueue", fmt.Sprintf("call %d", seq))
				s.nav.clamp(s.c.Marks.Len())
				return s, toast(fmt.Sprintf("removed call %d from the queue", seq))
			}
		case key.Matches(msg, k.Reverse):
			if !s.c.Identity.CanReverse() {
				return s, denyReverse(s.c, "queue reversals")
			}
			return s, toast(fmt.Sprintf("%d %s queued. Reversal plans arrive with the rollback feature; nothing was reverted.", n, plural(n, "call", "calls")))
		case key.Matches(msg, k.Enter):
			if mk := s.selected(); mk != nil {
				return s, push(newCall(s.c, &store.Event{Seq: mk.Seq}, nil, nil))
			}
		case key.Matches(msg, k.Diff):
			if mk := s.selected(); mk != nil {
				return s, push(newDiff(s.c, mk.Seq))
			}
		}
	}
	return s, nil
}

func (s *queueScreen) selected() *Mark {
	list := s.c.Marks.List()
	if s.nav.sel >= 0 && s.nav.sel < len(list) {
		return &list[s.nav.sel]
	}
	return nil
}

func (s *queueScreen) yankSeqs() []uint64 {
	if mk := s.selected(); mk != nil {
		return []uint64{mk.Seq}
	}
	return nil
}

var queueCols = []column{
	{title: "SEQ", width: 7, right: true},
	{title: "TIME", width: 12},
	{title: "AGENT", min: 8, flex: 2, drop: 2},
	{title: "TOOL", min: 10, flex: 2},
	{title: "CLASS", width: 6},
	{title: "ARGUMENTS", min: 10, flex: 4},
	{title: "MARKED BY", min: 10, flex: 2, drop: 1},
}

func (s *queueScreen) View() string {
	st := s.c.Styles
	w := s.width - 2
	marks := s.c.Marks.List()
	lines := []string{
		"  " + st.Banner.Render(cell("Nothing has been reverted.", w, false)),
	}
	lines = append(lines, wrapLines(st.Muted.Render, queueNotice, w, 2)...)
	widths := layout(queueCols, w)
	lines = append(lines, "  "+headerLine(st, queueCols, widths))
	s.nav.height = max(1, s.height-len(lines))
	s.nav.clamp(len(marks))
	lo, hi := s.nav.visible(len(marks))
	for i := lo; i < hi; i++ {
		mk := marks[i]
		cls := styledCell{text: mk.Class}
		if mk.Class == "write" || mk.Class == "delete" {
			cls.style = &st.Warn
		}
		line := tableLine(queueCols, widths, []styledCell{
			{text: fmt.Sprint(mk.Seq)},
			{text: fmtTime(mk.Time, s.c.Loc, "15:04:05.000"), style: &st.Muted},
			{text: mk.Agent},
			{text: mk.Tool},
			cls,
			{text: mk.Args},
			{text: mk.By, style: &st.Muted},
		})
		if i == s.nav.sel {
			line = st.Selected.Render(fit(line, w))
		}
		lines = append(lines, gutter(i == s.nav.sel, true)+line)
	}
	if len(marks) == 0 {
		hint := "The queue is empty. In a timeline, space marks a call and r queues the marked calls (or the selected call and every call after it in its session)."
		if !s.c.Identity.CanReverse() {
			hint = fmt.Sprintf("The queue is empty. Your role is %s: only operators may mark or queue calls for reversal.", s.c.Identity.Role)
		}
		lines = append(lines, wrapLines(st.Muted.Render, hint, w, 2)...)
	}
	return block(lines, s.height)
}

func (s *queueScreen) Status() string {
	n := s.c.Marks.Len()
	return fmt.Sprintf("%d %s queued for reversal (not planned, not applied)", n, plural(n, "call", "calls"))
}

func (s *queueScreen) ShortHelp() []key.Binding {
	k := s.c.Keys
	unmark := key.NewBinding(key.WithKeys(" "), key.WithHelp("space", "unqueue"))
	return []key.Binding{k.Enter, k.Diff, unmark, k.Reverse, k.Back, k.Help}
}

func (s *queueScreen) FullHelp() [][]key.Binding {
	k := s.c.Keys
	unmark := key.NewBinding(key.WithKeys(" "), key.WithHelp("space", "unqueue"))
	return [][]key.Binding{k.navigation(), {k.Enter, k.Diff, unmark, k.Reverse, k.Back}, k.global()}
}
