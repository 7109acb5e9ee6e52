package ui

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/charmbracelet/bubbles/key"
	tea "github.com/charmbracelet/bubbletea"

	"github.com/mcptrail/mcptrail/rollback"
	"github.com/mcptrail/mcptrail/store"
)

// Rollback is the daemon's rollback service as the console uses it: the
// daemon itself over SSH, its socket (daemon.Client) for `mcptrail ui`.
// A console on an evidence file has none: it can mark calls, not plan.
type Rollback interface {
	RollbackPlan(sel rollback.Selection, by string) (*rollback.Plan, error)
	RollbackGet(id string) (*rollback.Plan, error)
	RollbackApply(id string, who rollback.Approver) (*rollback.Plan, error)
	RollbackPlans(limit int) ([]*rollback.Plan, error)
	RollbackHistory(call uint64) (*rollback.History, error)
}

// approver is the console's investigator as a plan's approver: the SSH key
// fingerprint over SSH, the OS user locally.
func approver(id Identity) rollback.Approver {
	return rollback.Approver{Name: id.Name, Fingerprint: id.Fingerprint, Via: "console " + id.Via}
}

// noRollbackNotice says why a console cannot plan.
const noRollbackNotice = "This console reads a store file, so it cannot build or apply plans: the daemon does (`mcptrail ui` while it runs, the SSH console, or `mcptrail rollback plan --calls SEQ,...`)."

// notReverted ends what a file console says when it cannot plan.
const notReverted = " Nothing has been reverted."

// What the plan screen's commands bring back, each as a loaded[…]: the
// plan built or read, the plan as the apply has got so far (nil when it
// could not be read), and the plan once applied.
type (
	planLoaded   struct{ plan *rollback.Plan }
	planProgress struct{ plan *rollback.Plan }
	planApplied  struct{ plan *rollback.Plan }
)

// planScreen reviews a plan — steps newest first, their statuses, and for
// the selected step its reason, its inverse calls and the diff current →
// restored — and applies it after an explicit confirmation, showing each
// step's progress.
type planScreen struct {
	screenBase
	sel   *rollback.Selection // to build; nil: load planID
	what  string              // what the selection is, for the title while building
	id_   string
	plan  *rollback.Plan
	err   error
	steps list[rollback.Step] // rows: plan.Steps
	pg    pager
	focus int // 0 steps, 1 detail

	confirm  bool
	typed    string
	applying bool
	gen      int
	started  time.Time
}

// newPlanBuild is a plan screen that builds a plan of sel first.
func newPlanBuild(c *Common, sel rollback.Selection, what string) *planScreen {
	return &planScreen{screenBase: newScreenBase(c), sel: &sel, what: what, steps: newList[rollback.Step](c.Keys.newestFirst())}
}

// newPlanView is a plan screen on a stored plan.
func newPlanView(c *Common, id string) *planScreen {
	return &planScreen{screenBase: newScreenBase(c), id_: id, steps: newList[rollback.Step](c.Keys.newestFirst())}
}

func (s *planScreen) Title() string {
	if s.plan != nil {
		return "plan " + shortID(s.plan.ID)
	}
	return "plan"
}

func (s *planScreen) SetSize(w, h int) {
	s.width, s.height = w, h
	s.layout()
}

// modal: while the confirmation is up, every key is the screen's.
func (s *planScreen) modal() bool { return s.confirm }

// tabs: tab moves between the steps and the selected step's detail.
func (s *planScreen) tabs() bool { return true }

func (s *planScreen) Init() tea.Cmd {
	rb, to := s.c.Rollback, s.sid
	if rb == nil {
		return func() tea.Msg {
			return loaded[planLoaded]{to: to, err: fmt.Errorf("%s", noRollbackNotice+notReverted)}
		}
	}
	if s.sel != nil {
		sel, by := *s.sel, s.c.Identity.Actor()
		return func() tea.Msg {
			p, err := rb.RollbackPlan(sel, by)
			return loaded[planLoaded]{to: to, val: planLoaded{p}, err: err}
		}
	}
	id := s.id_
	return func() tea.Msg {
		p, err := rb.RollbackGet(id)
		return loaded[planLoaded]{to: to, val: planLoaded{p}, err: err}
	}
}

func (s *planScreen) poll() tea.Cmd {
	rb, to, gen, id := s.c.Rollback, s.sid, s.gen, s.plan.ID
	return tea.Tick(250*time.Millisecond, func(time.Time) tea.Msg {
		p, err := rb.RollbackGet(id)
		if err != nil {
			return loaded[planProgress]{to: to, gen: gen}
		}
		return loaded[planProgress]{to: to, gen: gen, val: planProgress{p}}
	})
}

func (s *planScreen) Update(msg tea.Msg) (tea.Model, tea.Cmd) {
	switch msg := msg.(type) {
	case loaded[planLoaded]:
		s.plan, s.err = msg.val.plan, msg.err
		if s.plan != nil {
			s.id_ = s.plan.ID
			if s.sel != nil {
				s.c.audit("plan", fmt.Sprintf("rollback plan %s of %s: %d steps %v", s.plan.ID, s.plan.Selection, len(s.plan.Steps), s.plan.Counts()))
			}
		}
		s.layout()
		if s.err != nil {
			return s, toastErr(s.err)
		}
		return s, nil
	case loaded[planProgress]:
		if !s.applying || msg.gen != s.gen {
			return s, nil
		}
		if msg.val.plan != nil {
			s.plan = msg.val.plan
			s.layout()
		}
		return s, s.poll()
	case loaded[planApplied]:
		s.applying = false
		s.gen++
		if msg.err != nil {
			s.err = msg.err
			return s, toastErr(msg.err)
		}
		s.plan = msg.val.plan
		s.layout()
		s.c.audit("apply", fmt.Sprintf("rollback plan %s: %s %s", s.plan.ID, s.plan.State, s.plan.Error))
		if s.plan.State == rollback.PlanApplied {
			n := s.plan.Reverted()
			return s, toast(fmt.Sprintf("plan %s applied: %d %s reverted, each recorded as a rollback_step", shortID(s.plan.ID), n, plural(n, "call", "calls")))
		}
		return s, func() tea.Msg { return toastMsg{text: "plan " + s.plan.Result() + ": " + s.plan.Error, err: true} }
	case themeChangedMsg:
		s.layout()
		return s, nil
	case tea.KeyMsg:
		if s.confirm {
			return s, s.confirmKey(msg)
		}
		return s, s.key(msg)
	}
	return s, nil
}

func (s *planScreen) countState(state string) int {
	n := 0
	for _, st := range s.plan.Steps {
		if st.State == state {
			n++
		}
	}
	return n
}

func (s *planScreen) key(msg tea.KeyMsg) tea.Cmd {
	k := s.c.Keys
	if s.plan == nil {
		return nil
	}
	switch {
	case key.Matches(msg, k.Tab):
		s.focus = 1 - s.focus
		return nil
	case s.focus == 1 && s.pg.handle(k, msg):
		return nil
	case s.steps.handle(msg):
		s.layout()
	case key.Matches(msg, k.Enter):
		if st := s.selected(); st != nil {
			return push(newCall(s.c, &store.Event{Seq: st.Reverts}, nil, nil))
		}
	case key.Matches(msg, k.Apply):
		return s.askApply()
	case key.Matches(msg, k.History):
		if st := s.selected(); st != nil {
			return push(newHistory(s.c, st.Reverts))
		}
	}
	return nil
}

// askApply opens the confirmation, if there is anything to apply and the
// investigator may.
func (s *planScreen) askApply() tea.Cmd {
	switch {
	case !s.c.Identity.CanReverse():
		return denyReverse(s.c, "apply rollback plans")
	case s.applying:
		return toast("the plan is being applied")
	case s.plan != nil && s.plan.Origin != "":
		_, there := s.plan.ElsewhereCommands()
		return toast(fmt.Sprintf("not here: the calls ran on %s — apply it there with %s (the step pane shows both commands)", s.plan.Host(), there))
	case s.plan != nil && s.plan.State == rollback.PlanApplied:
		n := s.plan.Reverted()
		return toast(fmt.Sprintf("plan %s is applied already (%d %s reverted): nothing left to apply", shortID(s.plan.ID), n, plural(n, "call", "calls")))
	case s.ready() == 0:
		return toast("nothing to apply: no step is ready")
	}
	s.confirm, s.typed = true, ""
	return nil
}

// ready counts steps an apply would run.
func (s *planScreen) ready() int {
	n := 0
	for _, st := range s.plan.Steps {
		if st.Status == rollback.StatusReady && st.State != rollback.StateDone {
			n++
		}
	}
	return n
}

func (s *planScreen) confirmKey(msg tea.KeyMsg) tea.Cmd {
	switch msg.Type {
	case tea.KeyEsc, tea.KeyCtrlC:
		s.confirm = false
		return toast("not applied")
	case tea.KeyBackspace:
		if r := []rune(s.typed); len(r) > 0 {
			s.typed = string(r[:len(r)-1])
		}
	case tea.KeyEnter:
		if strings.TrimSpace(s.typed) != "apply" {
			return func() tea.Msg { return toastMsg{text: "type apply (or esc to cancel)", err: true} }
		}
		s.confirm = false
		return s.apply()
	case tea.KeyRunes, tea.KeySpace:
		if len(s.typed) < 32 {
			s.typed += string(msg.Runes)
		}
	}
	return nil
}

func (s *planScreen) apply() tea.Cmd {
	rb, to, id, who := s.c.Rollback, s.sid, s.plan.ID, approver(s.c.Identity)
	s.applying, s.started = true, time.Now()
	s.gen++
	s.c.audit("approve", fmt.Sprintf("rollback plan %s approved by %s", id, who.ID()))
	return tea.Batch(
		func() tea.Msg {
			p, err := rb.RollbackApply(id, who)
			return loaded[planApplied]{to: to, val: planApplied{p}, err: err}
		},
		s.poll(),
		toast(fmt.Sprintf("applying plan %s as %s…", shortID(id), who.ID())),
	)
}

func (s *planScreen) selected() *rollback.Step { return s.steps.selected() }

// layout sizes the two panes and prepares the selected step's detail.
func (s *planScreen) layout() {
	var steps []rollback.Step
	if s.plan != nil {
		steps = s.plan.Steps
	}
	s.steps.rows = steps
	s.steps.setHeight(min(len(steps), max(3, (s.height-6)/2)))
	s.pg.height = max(1, s.height-s.steps.nav.height-5)
	st := s.selected()
	if st == nil {
		s.pg.set(nil, nil)
		return
	}
	s.pg.off = 0
	s.pg.set(s.detail(st), nil)
}

func (s *planScreen) detail(st *rollback.Step) []string {
	sty := s.c.Styles
	w := max(10, s.width-2)
	var lines []string
	add := func(render func(...string) string, text string) {
		lines = append(lines, wrapLines(render, text, w, 1)...)
	}
	if st.Reason != "" {
		r := sty.Warn.Render
		if st.Status == rollback.StatusReady || st.Status == rollback.StatusSkip || st.Status == rollback.StatusReverted {
			r = sty.Muted.Render
		}
		add(r, st.Reason)
	}
	if st.Error != "" {
		add(sty.Error.Render, "error: "+st.Error)
	}
	if len(st.Keys) > 0 {
		add(sty.Muted.Render, "resources: "+strings.Join(st.Keys, ", "))
	}
	add(sty.Muted.Render, "arguments: "+st.Args)
	for i, c := range st.Calls {
		mark, verb := " ", "will call"
		if i < st.Done {
			mark, verb = "✓", "called"
		}
		add(sty.Text.Render, fmt.Sprintf("%s %s %s %s", mark, verb, c.Tool, string(c.Args)))
	}
	if st.Diff != "" {
		if st.Checked {
			lines = append(lines, " "+sty.Muted.Render("current (re-read now) → restored:"))
		} else {
			lines = append(lines, " "+sty.Muted.Render("as the call left it → restored:"))
		}
		for _, l := range strings.Split(strings.TrimSuffix(st.Diff, "\n"), "\n") {
			style := sty.DiffCtx
			switch {
			case strings.HasPrefix(l, "+"):
				style = sty.DiffAdd
			case strings.HasPrefix(l, "-"):
				style = sty.DiffDel
			case strings.HasPrefix(l, "@"):
				style = sty.Muted
			}
			lines = append(lines, " "+style.Render(cell(l, w, false)))
		}
	} else if st.Restored != "" || st.Current != "" {
		add(sty.Muted.Render, "no change to show")
	}
	if p := s.plan; p.Origin != "" {
		// After the diff: what to review comes first, then where to apply.
		here, there := p.ElsewhereCommands()
		add(sty.Warn.Render, "not applied here: the call ran on "+p.Host()+". Here run")
		add(sty.Text.Render, "  "+here)
		add(sty.Warn.Render, "then on "+p.Host()+" (it re-checks every call against its own record, re-reads the state and asks before it applies):")
		add(sty.Text.Render, "  "+there)
	}
	return lines
}

var planCols = []column{
	{title: "STEP", width: 4, right: true},
	{title: "REVERTS", width: 7, right: true},
	{title: "TOOL", min: 10, flex: 2},
	{title: "STATUS", width: 16},
	{title: "PROGRESS", width: 9},
	{title: "RESOURCE", min: 10, flex: 4, drop: 1},
}

func (s *planScreen) statusStyle(status string) styledCell {
	st := s.c.Styles
	c := styledCell{text: status}
	switch status {
	case rollback.StatusReady, rollback.StatusReverted:
		c.style = &st.OK
	case rollback.StatusConflict, rollback.StatusMissingPrestate, rollback.StatusFailed:
		c.style = &st.Error
	case rollback.StatusIrreversible:
		c.style = &st.Warn
	default:
		c.style = &st.Muted
	}
	return c
}

func (s *planScreen) View() string {
	st := s.c.Styles
	w := s.width - 2
	switch {
	case s.plan == nil && s.err != nil:
		return block(wrapLines(st.Error.Render, s.err.Error(), w, 1), s.height)
	case s.plan == nil:
		what := "the selection"
		if s.what != "" {
			what = s.what
		}
		return block([]string{" " + st.Muted.Render("building the reversal plan of "+what+"… (re-reading the current state of each resource)")}, s.height)
	}
	p := s.plan
	counts := p.Counts()
	var parts []string
	for _, k := range rollback.Statuses {
		if counts[k] > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", counts[k], k))
		}
	}
	checked := "state re-read"
	if !p.Checked {
		checked = "state NOT re-read"
	}
	head := fmt.Sprintf("%d %s: %s · %s · %s", len(p.Steps), plural(len(p.Steps), "step", "steps"), strings.Join(parts, ", "), checked, p.Selection)
	lines := []string{" " + st.Bold.Render(cell(head, w, false))}
	var banner string
	switch {
	case s.applying:
		banner = fmt.Sprintf("applying… %d of %d steps done — every inverse call is recorded as a rollback_step approved by %s", s.countState(rollback.StateDone), s.ready()+s.countState(rollback.StateDone), approver(s.c.Identity).ID())
	case p.State == rollback.PlanApplied:
		n := p.Reverted()
		banner = fmt.Sprintf("applied: %d %s reverted", n, plural(n, "call", "calls"))
	case p.Error != "":
		banner = p.Result() + ": " + p.Error
	case p.Origin != "":
		banner = fmt.Sprintf("review only: these calls ran on %s, where the plan is applied (the step pane shows the commands)", p.Host())
	case p.Note != "":
		banner = p.Note
	case len(p.Steps) == 0:
		banner = "nothing to revert"
	default:
		banner = fmt.Sprintf("review the steps (newest first); A applies the %s, stopping at the first step that is not ready", counted(s.ready(), "ready step", "ready steps"))
	}
	lines = append(lines, " "+st.Banner.Render(cell(banner, w, false)))
	widths := layout(planCols, w)
	lines = append(lines, "  "+headerLine(st, planCols, widths))
	lines = append(lines, s.steps.table(st, planCols, widths, w, func(step *rollback.Step) ([]styledCell, bool) {
		prog := step.State
		if step.State == rollback.StateRunning && len(step.Calls) > 0 {
			prog = fmt.Sprintf("%d/%d", step.Done, len(step.Calls))
		}
		progCell := styledCell{text: prog}
		switch step.State {
		case rollback.StateDone:
			progCell.style = &st.OK
		case rollback.StateFailed:
			progCell.style = &st.Error
		case rollback.StateRunning:
			progCell.style = &st.Warn
		}
		return []styledCell{
			{text: fmt.Sprint(step.N)}, {text: fmt.Sprint(step.Reverts)}, {text: step.Tool},
			s.statusStyle(step.Result()), progCell, {text: step.Resource(), style: &st.Muted},
		}, false
	})...)
	if cur := s.selected(); cur != nil {
		title := fmt.Sprintf("── step %d · call %d · %s · session %s · %s ", cur.N, cur.Reverts, cur.Tool, shortID(cur.Session), cur.Result())
		lines = append(lines, " "+st.Section.Render(cell(title+strings.Repeat("─", max(0, w-len([]rune(title)))), w, false)))
	}
	if s.confirm {
		who := approver(s.c.Identity).ID()
		msg := fmt.Sprintf("Apply plan %s? %d steps will run inverse calls through the gateway, newest first, as %s (recorded as the approver). It stops at the first step that is not ready or fails. Type apply and press enter; esc cancels.", p.ID, s.ready(), who)
		lines = append(lines, wrapLines(st.Banner.Render, msg, w, 1)...)
		lines = append(lines, " "+st.Accent.Render("› ")+s.typed+"▏")
		return block(lines, s.height)
	}
	lines = append(lines, s.pg.view()...)
	return block(lines, s.height)
}

func (s *planScreen) Status() string {
	if s.plan == nil {
		return ""
	}
	focus := "steps"
	if s.focus == 1 {
		focus = "detail"
	}
	return fmt.Sprintf("plan %s · %s · tab: %s pane", s.plan.ID, s.plan.Result(), focus)
}

func (s *planScreen) yankSeqs() []uint64 {
	if st := s.selected(); st != nil {
		out := []uint64{st.Reverts}
		for _, seq := range st.StepSeq {
			if !slices.Contains(out, seq) {
				out = append(out, seq)
			}
		}
		return out
	}
	return nil
}

func (s *planScreen) ShortHelp() []key.Binding {
	k := s.c.Keys
	if s.confirm {
		return []key.Binding{key.NewBinding(key.WithKeys("enter"), key.WithHelp("apply⏎", "confirm")), key.NewBinding(key.WithKeys("esc"), key.WithHelp("esc", "cancel"))}
	}
	tab := key.NewBinding(key.WithKeys("tab"), key.WithHelp("tab", "steps/detail"))
	return []key.Binding{k.Apply, tab, k.History, k.Enter, k.Down, k.Back, k.Help}
}

func (s *planScreen) FullHelp() [][]key.Binding {
	k := s.c.Keys
	tab := key.NewBinding(key.WithKeys("tab"), key.WithHelp("tab", "steps/detail pane"))
	return [][]key.Binding{s.steps.keys.help(), {k.Apply, tab, k.History, k.Enter, k.Back}, k.global()}
}

// --- building plans from the console ---

// planOf is `r` with a rollback service: a plan of the marked calls, or of
// the selected call and every later call of its session.
func planOf(c *Common, from *Mark) tea.Cmd {
	c.Marks.Refresh() // the queue is every console's: plan what it holds now
	if c.Marks.Len() > 0 {
		var sel rollback.Selection
		for _, m := range c.Marks.List() {
			sel.Calls = append(sel.Calls, m.Seq)
		}
		n := c.Marks.Len()
		c.Marks.Clear()
		c.audit("queue", fmt.Sprintf("plan of %d marked calls", n))
		return push(newPlanBuild(c, sel, fmt.Sprintf("%d marked %s", n, plural(n, "call", "calls"))))
	}
	if from == nil {
		return toast("mark calls with space, or select a tool call: r plans its reversal and that of every later call of its session")
	}
	c.audit("queue", fmt.Sprintf("plan of call %d and every later call of its session", from.Seq))
	return push(newPlanBuild(c, rollback.Selection{From: from.Seq}, fmt.Sprintf("call %d and every later call of its session", from.Seq)))
}
