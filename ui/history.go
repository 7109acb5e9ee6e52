package ui

import (
	"fmt"
	"strings"

	"github.com/charmbracelet/bubbles/key"
	tea "github.com/charmbracelet/bubbletea"

	"github.com/mcptrail/mcptrail/rollback"
)

// historyScreen steps back and forth through a resource's history (`H` on
// a call): every recorded call that touched it, oldest first, with the
// version before and after each, one diff at a time (`[` older, `]`
// newer). `r` reverts to the selected version: a plan of every later call
// that touched the resource.
type historyScreen struct {
	screenBase
	call uint64
	hist *rollback.History // loaded[*rollback.History]
	err  error
	sel  int
	pg   pager
}

func (s *historyScreen) Title() string { return fmt.Sprintf("history of %d", s.call) }

func (s *historyScreen) SetSize(w, h int) {
	s.width, s.height = w, h
	s.layout()
}

func (s *historyScreen) Init() tea.Cmd {
	rb, to, call := s.c.Rollback, s.sid, s.call
	if rb == nil {
		return func() tea.Msg {
			return loaded[*rollback.History]{to: to, err: fmt.Errorf("%s", noRollbackNotice+notReverted)}
		}
	}
	return func() tea.Msg {
		h, err := rb.RollbackHistory(call)
		return loaded[*rollback.History]{to: to, val: h, err: err}
	}
}

func (s *historyScreen) Update(msg tea.Msg) (tea.Model, tea.Cmd) {
	k := s.c.Keys
	switch msg := msg.(type) {
	case loaded[*rollback.History]:
		s.hist, s.err = msg.val, msg.err
		if s.hist != nil {
			s.sel = len(s.hist.Versions) - 1
			for i, v := range s.hist.Versions {
				if v.Call == s.call {
					s.sel = i
				}
			}
		}
		s.layout()
		if s.err != nil {
			return s, toastErr(s.err)
		}
	case themeChangedMsg:
		s.layout()
	case tea.KeyMsg:
		if s.hist == nil {
			return s, nil
		}
		n := len(s.hist.Versions)
		switch {
		case key.Matches(msg, k.Older), key.Matches(msg, k.Up):
			if s.sel > 0 {
				s.sel--
				s.layout()
			}
		case key.Matches(msg, k.Newer), key.Matches(msg, k.Down):
			if s.sel < n-1 {
				s.sel++
				s.layout()
			}
		case s.pg.handle(k, msg):
		case key.Matches(msg, k.Reverse):
			if !s.c.Identity.CanReverse() {
				return s, denyReverse(s.c, "queue reversals")
			}
			sel, err := s.hist.RevertTo(s.sel)
			if err != nil {
				return s, toastErr(err)
			}
			v := s.hist.Versions[s.sel]
			s.c.audit("queue", fmt.Sprintf("revert %s to its version after call %d", s.hist.Key, v.Call))
			return s, push(newPlanBuild(s.c, sel, fmt.Sprintf("%d later calls on %s", len(sel.Calls), s.hist.Key)))
		}
	}
	return s, nil
}

// layout prepares the selected version's diff.
func (s *historyScreen) layout() {
	s.pg.height = max(1, s.height-4)
	if s.hist == nil || len(s.hist.Versions) == 0 {
		s.pg.set(nil, nil)
		return
	}
	st := s.c.Styles
	v := s.hist.Versions[s.sel]
	w := max(10, s.width-2)
	var lines []string
	if v.Note != "" {
		lines = append(lines, wrapLines(st.Warn.Render, v.Note, w, 1)...)
	}
	if v.Diff == "" {
		lines = append(lines, " "+st.Muted.Render("(no change in this version)"))
	}
	for _, l := range strings.Split(strings.TrimSuffix(v.Diff, "\n"), "\n") {
		style := st.DiffCtx
		switch {
		case strings.HasPrefix(l, "+++"), strings.HasPrefix(l, "---"), strings.HasPrefix(l, "@"):
			style = st.Muted
		case strings.HasPrefix(l, "+"):
			style = st.DiffAdd
		case strings.HasPrefix(l, "-"):
			style = st.DiffDel
		}
		l = strings.Replace(strings.Replace(l, "--- current", "--- before", 1), "+++ restored", "+++ after", 1)
		lines = append(lines, " "+style.Render(cell(l, w, false)))
	}
	s.pg.off = 0
	s.pg.set(lines, nil)
}

func (s *historyScreen) View() string {
	st := s.c.Styles
	w := s.width - 2
	switch {
	case s.err != nil:
		return block(wrapLines(st.Error.Render, s.err.Error(), w, 1), s.height)
	case s.hist == nil:
		return block([]string{" " + st.Muted.Render("reading the resource's history…")}, s.height)
	}
	h := s.hist
	n := len(h.Versions)
	v := h.Versions[s.sel]
	changes, steps := h.Changes(), n-h.Changes()
	head := fmt.Sprintf("%s · %d %s", h.Key, changes, plural(changes, "change", "changes"))
	if steps > 0 {
		head += fmt.Sprintf(", %d rollback %s", steps, plural(steps, "step", "steps"))
	}
	upstreams := h.Upstreams
	if len(upstreams) == 0 {
		upstreams = []string{h.Upstream}
	}
	head += " · on " + strings.Join(upstreams, ", ")
	at := fmtTime(v.Time, s.c.Loc, "01-02 15:04:05.000")
	var what string
	switch {
	case v.IsRollback():
		what = fmt.Sprintf("version %d of %d: ↺ rollback step %d reverts call %d (%s) at %s (%s)", s.sel+1, n, v.Call, v.Reverts, v.Tool, at, v.Outcome)
	default:
		what = fmt.Sprintf("version %d of %d: call %d %s by %s on %s, session %s, at %s (%s)", s.sel+1, n, v.Call, v.Tool, show(v.Agent), show(v.Upstream), shortID(v.Session), at, v.Outcome)
		if v.RevertedBy != 0 {
			what += fmt.Sprintf(" · ↺ reverted by step %d", v.RevertedBy)
		}
	}
	lines := []string{
		" " + st.Bold.Render(cell(show(head), w, false)),
		" " + st.Banner.Render(cell(what, w, false)),
	}
	// A strip of the versions, the selected one bracketed.
	var strip []string
	for i, x := range h.Versions {
		label := fmt.Sprint(x.Call)
		switch {
		case x.IsRollback():
			label = "↺" + label
		case x.RevertedBy != 0:
			label += "↺"
		}
		if i == s.sel {
			label = "[" + label + "]"
		}
		strip = append(strip, label)
	}
	lines = append(lines, " "+st.Muted.Render(cell("changes: "+strings.Join(strip, " → "), w, false)))
	lines = append(lines, " "+st.Section.Render(cell("── before → after this change ", w, false)))
	lines = append(lines, s.pg.view()...)
	return block(lines, s.height)
}

func (s *historyScreen) Status() string {
	if s.hist == nil {
		return ""
	}
	return fmt.Sprintf("[ older · ] newer · r reverts %s to the selected version", s.hist.Key)
}

func (s *historyScreen) ShortHelp() []key.Binding {
	k := s.c.Keys
	revert := key.NewBinding(key.WithKeys("r"), key.WithHelp("r", "revert to here"))
	return []key.Binding{k.Older, k.Newer, revert, k.Back, k.Help}
}

func (s *historyScreen) FullHelp() [][]key.Binding {
	k := s.c.Keys
	revert := key.NewBinding(key.WithKeys("r"), key.WithHelp("r", "revert to here"))
	return [][]key.Binding{{k.Older, k.Newer, k.PageUp, k.PageDown}, {revert, k.Back}, k.global()}
}

// newHistory opens the history of the resource call changed (from a
// timeline's `H` or a plan step).
func newHistory(c *Common, call uint64) *historyScreen {
	return &historyScreen{screenBase: newScreenBase(c), call: call}
}

// history is `H` in a timeline: the history of what the selected call
// changed.
func (t *timelineScreen) history() tea.Cmd {
	if t.c.Rollback == nil {
		return toast("resource history needs the daemon (its rollback rules say what each call changed)")
	}
	r := t.selected()
	if r == nil || !r.isCall() {
		return toast("select a tool call: H shows the history of what it changed")
	}
	return push(newHistory(t.c, r.anchor))
}
