package ui

import (
	"fmt"
	"strings"

	"github.com/charmbracelet/bubbles/key"
	tea "github.com/charmbracelet/bubbletea"

	"github.com/mcptrail/mcptrail/rollback"
	"github.com/mcptrail/mcptrail/store"
	"github.com/mcptrail/mcptrail/themes"
)

// queueScreen is the rollback queue (`R`): the calls marked for reversal,
// and the reversal plans built so far (newest first) with their state.
type queueScreen struct {
	screenBase
	marks list[Mark]           // rows: Common.Marks as last read
	plans list[*rollback.Plan] // err: the plans could not be read
	focus int                  // 0 marks, 1 plans
}

func newQueue(c *Common) *queueScreen {
	s := &queueScreen{screenBase: newScreenBase(c), marks: newList[Mark](c.Keys.listKeys), plans: newList[*rollback.Plan](c.Keys.newestFirst())}
	s.plans.blurred = true
	return s
}

func (s *queueScreen) Title() string { return "Rollback queue" }

func (s *queueScreen) SetSize(w, h int) {
	s.width, s.height = w, h
	s.marks.setRows(s.c.Marks.List())
	s.plans.nav.clamp(len(s.plans.rows))
}

// tabs: tab moves between the marks and the plans.
func (s *queueScreen) tabs() bool { return true }

// focusOn gives the keys to the marks (0) or the plans (1).
func (s *queueScreen) focusOn(f int) {
	s.focus = f
	s.marks.blurred, s.plans.blurred = f != 0, f != 1
}

func (s *queueScreen) Init() tea.Cmd { return s.refresh() }

// refresh reloads the plans (when the screen opens, and when the
// investigator comes back to it from a plan).
func (s *queueScreen) refresh() tea.Cmd {
	rb, to := s.c.Rollback, s.sid
	if err := s.c.Marks.Refresh(); err != nil { // another console's marks
		return toastErr(fmt.Errorf("reading the daemon's rollback queue: %w", err))
	}
	if rb == nil {
		return nil
	}
	return func() tea.Msg {
		p, err := rb.RollbackPlans(50)
		return loaded[[]*rollback.Plan]{to: to, val: p, err: err}
	}
}

func (s *queueScreen) Update(msg tea.Msg) (tea.Model, tea.Cmd) {
	k := s.c.Keys
	switch msg := msg.(type) {
	case shownAgainMsg:
		return s, s.refresh() // a plan opened from here may have been applied
	case loaded[[]*rollback.Plan]:
		s.plans.setRows(msg.val)
		s.plans.err = msg.err
		if s.focus == 1 && len(s.plans.rows) == 0 {
			s.focusOn(0)
		}
		return s, nil
	case tea.KeyMsg:
		n := s.c.Marks.Len()
		s.marks.setRows(s.c.Marks.List())
		focused := s.focused()
		switch {
		case key.Matches(msg, k.Tab):
			if s.focus == 0 && len(s.plans.rows) > 0 {
				s.focusOn(1)
			} else {
				s.focusOn(0)
			}
		case focused(msg):
		case key.Matches(msg, k.Mark) && s.focus == 0:
			if !s.c.Identity.CanReverse() {
				return s, denyReverse(s.c, "change the rollback queue")
			}
			if mk := s.selected(); mk != nil {
				seq := mk.Seq
				s.c.Marks.Remove(seq)
				s.c.audit("unqueue", fmt.Sprintf("call %d", seq))
				s.marks.setRows(s.c.Marks.List())
				return s, toast(fmt.Sprintf("removed call %d from the queue", seq))
			}
		case key.Matches(msg, k.Reverse):
			if !s.c.Identity.CanReverse() {
				return s, denyReverse(s.c, "queue reversals")
			}
			if s.c.Rollback == nil {
				return s, toast(fmt.Sprintf("%d queued · plans need the daemon: this console reads a file", n))
			}
			if n == 0 {
				return s, toast("no marked calls: mark calls with space in a timeline first")
			}
			return s, planOf(s.c, nil)
		case key.Matches(msg, k.Enter):
			if s.focus == 1 {
				if p := s.selectedPlan(); p != nil {
					return s, push(newPlanView(s.c, p.ID))
				}
			} else if mk := s.selected(); mk != nil {
				return s, push(newCall(s.c, &store.Event{Seq: mk.Seq}, nil, nil))
			}
		case key.Matches(msg, k.Diff) && s.focus == 0:
			if mk := s.selected(); mk != nil {
				return s, push(newDiff(s.c, mk.Seq))
			}
		}
	}
	return s, nil
}

// focused is the movement of the list that has the keys.
func (s *queueScreen) focused() func(tea.KeyMsg) bool {
	if s.focus == 1 {
		return s.plans.handle
	}
	return s.marks.handle
}

func (s *queueScreen) selected() *Mark { return s.marks.selected() }

func (s *queueScreen) selectedPlan() *rollback.Plan {
	if p := s.plans.selected(); p != nil {
		return *p
	}
	return nil
}

func (s *queueScreen) yankSeqs() []uint64 {
	if mk := s.selected(); mk != nil && s.focus == 0 {
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

var plansCols = []column{
	{title: "PLAN", width: 12},
	{title: "CREATED", width: 14},
	{title: "SELECTION", min: 12, flex: 3},
	{title: "STEPS", min: 10, flex: 3},
	{title: "STATE", width: 17},
	{title: "BY", min: 8, flex: 2, drop: 1},
}

func (s *queueScreen) View() string {
	st := s.c.Styles
	w := s.width - 2
	s.marks.setRows(s.c.Marks.List())
	marks := s.marks.rows
	var lines []string
	if s.c.Rollback == nil {
		lines = append(lines, "  "+st.Banner.Render(cell("Nothing has been reverted.", w, false)))
		lines = append(lines, wrapLines(st.Muted.Render, noRollbackNotice, w, 2)...)
	}
	// Room: the marks get what the plans leave, at least 3 lines each.
	planRows := 0
	if s.c.Rollback != nil {
		planRows = max(1, min(len(s.plans.rows), (s.height-len(lines)-6)/2))
	}
	markRows := max(1, s.height-len(lines)-4-planRows-boolInt(s.c.Rollback != nil)*2)

	title := func(text string, focused bool) string {
		if focused {
			return " " + st.Section.Render(themes.SelectedGlyph+" "+text)
		}
		return " " + st.Muted.Render("  "+text)
	}
	lines = append(lines, title(fmt.Sprintf("MARKED CALLS (%d)", len(marks)), s.focus == 0))
	widths := layout(queueCols, w)
	lines = append(lines, "  "+headerLine(st, queueCols, widths))
	s.marks.setHeight(markRows)
	lines = append(lines, s.marks.table(st, queueCols, widths, w, func(mk *Mark) ([]styledCell, bool) {
		cls := styledCell{text: mk.Class}
		if mk.Class == "write" || mk.Class == "delete" {
			cls.style = &st.Warn
		}
		return []styledCell{
			{text: fmt.Sprint(mk.Seq)},
			{text: fmtTime(mk.Time, s.c.Loc, "15:04:05.000"), style: &st.Muted},
			{text: mk.Agent},
			{text: mk.Tool},
			cls,
			{text: mk.Args},
			{text: mk.By, style: &st.Muted},
		}, true
	})...)
	if len(marks) == 0 {
		hint := "No marked calls. In a timeline, space marks a call and r plans the reversal of the marked calls (or of the selected call and every call after it in its session)."
		if !s.c.Identity.CanReverse() {
			hint = fmt.Sprintf("No marked calls. Your role is %s: only operators may mark calls and plan reversals.", s.c.Identity.Role)
		}
		lines = append(lines, wrapLines(st.Muted.Render, hint, w, 2)...)
	} else if s.c.Rollback != nil {
		lines = append(lines, "  "+st.Muted.Render(cell("r plans the reversal of the marked calls", w, false)))
	}
	if s.c.Rollback == nil {
		return block(lines, s.height)
	}
	for len(lines) < s.height-planRows-2 {
		lines = append(lines, "")
	}
	lines = append(lines, title(fmt.Sprintf("PLANS (%d)", len(s.plans.rows)), s.focus == 1))
	pw := layout(plansCols, w)
	lines = append(lines, "  "+headerLine(st, plansCols, pw))
	if s.plans.err != nil {
		lines = append(lines, "  "+st.Error.Render(cell(s.plans.err.Error(), w, false)))
	}
	s.plans.setHeight(planRows)
	lines = append(lines, s.plans.table(st, plansCols, pw, w, func(pp **rollback.Plan) ([]styledCell, bool) {
		p := *pp
		counts := p.Counts()
		var parts []string
		for _, k := range rollback.Statuses {
			if k == rollback.StatusSkip {
				continue // nothing to undo: not worth the line's room
			}
			if counts[k] > 0 {
				parts = append(parts, fmt.Sprintf("%d %s", counts[k], k))
			}
		}
		state := styledCell{text: p.Result(), style: &st.Muted}
		switch p.Result() {
		case rollback.PlanApplied:
			state.style = &st.OK
		case rollback.PlanFailed, rollback.PlanStopped, rollback.PlanPartial:
			state.style = &st.Error
		case rollback.PlanApplying:
			state.style = &st.Warn
		}
		return []styledCell{
			{text: shortID(p.ID)},
			{text: fmtTime(p.Created, s.c.Loc, "01-02 15:04:05"), style: &st.Muted},
			{text: p.Selection.String()},
			{text: fmt.Sprintf("%d: %s", len(p.Steps), strings.Join(parts, ", "))},
			state,
			{text: p.CreatedBy, style: &st.Muted},
		}, false
	})...)
	if len(s.plans.rows) == 0 && s.plans.err == nil {
		lines = append(lines, "  "+st.Muted.Render("no plans yet"))
	}
	return block(lines, s.height)
}

func (s *queueScreen) Status() string {
	n := s.c.Marks.Len()
	if s.c.Rollback == nil {
		return fmt.Sprintf("%d %s queued for reversal (not planned, not applied)", n, plural(n, "call", "calls"))
	}
	np := len(s.plans.rows)
	return fmt.Sprintf("%d queued · %d %s · tab switches lists", n, np, plural(np, "plan", "plans"))
}

func (s *queueScreen) ShortHelp() []key.Binding {
	k := s.c.Keys
	unmark := key.NewBinding(key.WithKeys(" "), key.WithHelp("space", "unqueue"))
	tab := key.NewBinding(key.WithKeys("tab"), key.WithHelp("tab", "marks/plans"))
	switch {
	case s.c.Rollback == nil:
		return []key.Binding{k.Enter, k.Diff, unmark, k.Reverse, k.Back, k.Help}
	case s.focus == 1:
		return []key.Binding{k.Enter, tab, k.Back, k.Help}
	}
	return []key.Binding{k.Enter, k.Diff, unmark, k.Reverse, tab, k.Back, k.Help}
}

func (s *queueScreen) FullHelp() [][]key.Binding {
	k := s.c.Keys
	unmark := key.NewBinding(key.WithKeys(" "), key.WithHelp("space", "unqueue"))
	tab := key.NewBinding(key.WithKeys("tab"), key.WithHelp("tab", "marks/plans"))
	return [][]key.Binding{s.marks.keys.help(), {k.Enter, k.Diff, unmark, k.Reverse, tab, k.Back}, k.global()}
}
