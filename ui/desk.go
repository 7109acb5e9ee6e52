package ui

// The approval desk: the calls an approval rule holds in the gateway, newest
// first, for an operator to approve (a) or deny with a reason (x). Every
// console of the daemon shows how many are waiting in its header and rings
// the terminal's bell once for each new one.

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/charmbracelet/bubbles/key"
	"github.com/charmbracelet/bubbles/textinput"
	tea "github.com/charmbracelet/bubbletea"

	"github.com/mcptrail/mcptrail/approval"
	"github.com/mcptrail/mcptrail/themes"
)

// Approvals is the daemon's approval desk (approval.Desk) as the console
// uses it; nil on a console without one (a store file, `mcptrail ui`:
// there `mcptrail approve` decides).
type Approvals interface {
	Pending() []approval.Pending
	Decide(seq uint64, hash string, who approval.Approver, approve bool, reason string) (*approval.Pending, error)
}

// approvalsEvery is how often a console looks at the desk for its header.
const approvalsEvery = time.Second

// approvalsTick polls the desk for the header's counter and bell.
type approvalsTick struct{}

// deskApprover is the console's investigator as an approver: the key's
// fingerprint over SSH, else the user.
func deskApprover(id Identity) approval.Approver {
	who := id.Fingerprint
	if who == "" {
		who = "user:" + id.Name
	}
	return approval.Approver{ID: who, Role: string(id.Role), Via: "console " + id.Via}
}

// watchApprovals reads the desk: the count shown in the header, and the
// bell (BEL, written with the program's output like OSC 52) once per call
// held since the last look.
func (a *App) watchApprovals() tea.Cmd {
	if a.c.Approvals == nil {
		return nil
	}
	pending := a.c.Approvals.Pending()
	a.heldCount = len(pending)
	ring := false
	for _, p := range pending {
		if p.Requested > a.heldSeen {
			a.heldSeen, ring = p.Requested, true
		}
	}
	if ring {
		a.c.Clipboard.Write([]byte{'\a'})
	}
	return tea.Tick(approvalsEvery, func(time.Time) tea.Msg { return approvalsTick{} })
}

// heldBadge is the header's counter.
func (a *App) heldBadge() string {
	if a.heldCount == 0 {
		return ""
	}
	return a.c.Styles.Error.Render(fmt.Sprintf("⏸ %d held (P)", a.heldCount))
}

// deskDecided is a decision's answer (loaded[deskDecided]); the desk's
// list comes as a loaded[[]approval.Pending].
type deskDecided struct {
	seq     uint64
	approve bool
	p       *approval.Pending
}

// deskScreen lists the held calls and decides them.
type deskScreen struct {
	screenBase
	held list[approval.Pending]

	denying bool // typing a denial's reason
	reason  textinput.Model
}

func newDesk(c *Common) *deskScreen {
	in := textinput.New()
	in.Prompt = "reason › "
	in.CharLimit = 200
	return &deskScreen{screenBase: newScreenBase(c), reason: in, held: newList[approval.Pending](c.Keys.newestFirst())}
}

func (s *deskScreen) Title() string { return "Approvals" }

// modal: the desk takes every key (a and x are its own, not the global
// alerts and chip keys).
func (s *deskScreen) modal() bool { return true }

func (s *deskScreen) SetSize(w, h int) {
	s.width, s.height = w, h
	s.held.setHeight(min(8, h/3))
}

func (s *deskScreen) Init() tea.Cmd { return s.load() }

func (s *deskScreen) load() tea.Cmd {
	desk, to := s.c.Approvals, s.sid
	if desk == nil {
		return nil
	}
	return func() tea.Msg { return loaded[[]approval.Pending]{to: to, val: desk.Pending()} }
}

func (s *deskScreen) selected() *approval.Pending { return s.held.selected() }

func (s *deskScreen) decide(p *approval.Pending, approve bool, reason string) tea.Cmd {
	desk, to, who := s.c.Approvals, s.sid, deskApprover(s.c.Identity)
	seq, hash := p.Seq, p.ParamsSHA256
	verb := "approve"
	if !approve {
		verb = "deny"
	}
	s.c.audit(verb, fmt.Sprintf("held call %d", seq))
	return func() tea.Msg {
		got, err := desk.Decide(seq, hash, who, approve, reason)
		return loaded[deskDecided]{to: to, val: deskDecided{seq: seq, approve: approve, p: got}, err: err}
	}
}

func (s *deskScreen) Update(msg tea.Msg) (tea.Model, tea.Cmd) {
	k := s.c.Keys
	switch msg := msg.(type) {
	case loaded[[]approval.Pending]:
		var seq uint64
		if p := s.selected(); p != nil {
			seq = p.Seq
		}
		for i := range msg.val {
			if msg.val[i].Seq == seq {
				s.held.nav.sel = i // the same call stays selected
			}
		}
		s.held.setRows(msg.val)
	case approvalsTick, shownAgainMsg:
		return s, s.load()
	case loaded[deskDecided]:
		var note tea.Cmd
		d := msg.val
		switch {
		case msg.err != nil:
			note = toastErr(fmt.Errorf("call %d: %w", d.seq, msg.err))
		case !d.approve:
			note = toast(fmt.Sprintf("denied call %d", d.seq))
		case len(d.p.Approvers) < d.p.Required:
			note = toast(fmt.Sprintf("approved call %d: %d of %d approvals, still held", d.seq, len(d.p.Approvers), d.p.Required))
		default:
			note = toast(fmt.Sprintf("approved call %d: released", d.seq))
		}
		return s, tea.Batch(note, s.load())
	case tea.KeyMsg:
		if s.denying {
			switch msg.Type {
			case tea.KeyEsc:
				s.denying = false
				return s, nil
			case tea.KeyEnter:
				s.denying = false
				p := s.selected()
				if p == nil || strings.TrimSpace(s.reason.Value()) == "" {
					return s, toast("a denial needs a reason: the agent reads it")
				}
				return s, s.decide(p, false, s.reason.Value())
			}
			var cmd tea.Cmd
			s.reason, cmd = s.reason.Update(msg)
			return s, cmd
		}
		switch {
		case key.Matches(msg, k.Quit):
			return s, tea.Quit
		case key.Matches(msg, k.Back):
			return s, func() tea.Msg { return popMsg{} }
		case s.held.handle(msg):
		case key.Matches(msg, k.Approve), key.Matches(msg, k.Deny):
			p := s.selected()
			if p == nil {
				return s, toast("no call is held")
			}
			if !s.c.Identity.CanReverse() {
				return s, toast("only operators decide held calls; this console's role is " + string(s.c.Identity.Role))
			}
			if key.Matches(msg, k.Approve) {
				return s, s.decide(p, true, "")
			}
			s.denying = true
			s.reason.SetValue("")
			s.reason.Focus()
			return s, textinput.Blink
		}
	}
	return s, nil
}

var deskCols = []column{
	{title: "SEQ", width: 7},
	{title: "LEFT", width: 7},
	{title: "AGENT", min: 8, flex: 2},
	{title: "PRINCIPAL", min: 8, flex: 2, drop: 2},
	{title: "TASK", min: 6, flex: 1, drop: 1},
	{title: "TOOL", min: 12, flex: 3},
	{title: "OK", width: 5},
}

func (s *deskScreen) View() string {
	st := s.c.Styles
	w := s.width - 2
	if s.c.Approvals == nil {
		return block([]string{"  " + st.Bold.Render("No approval desk here."),
			"  " + st.Muted.Render("Held calls are decided in the daemon's console (ssh) or with mcptrail approvals / approve / deny.")}, s.height)
	}
	widths := layout(deskCols, w)
	lines := []string{"  " + headerLine(st, deskCols, widths)}
	now := s.c.Now()
	lines = append(lines, s.held.table(st, deskCols, widths, w, func(p *approval.Pending) ([]styledCell, bool) {
		var prin, task string
		if p.Principal != nil {
			prin = p.Principal.Subject
		}
		if p.Task != nil {
			task = p.Task.ID
		}
		return []styledCell{
			{text: fmt.Sprint(p.Seq), style: &st.Muted},
			{text: p.Deadline.Sub(now).Truncate(time.Second).String(), style: &st.Error},
			{text: agentName(p.Agent)},
			{text: prin},
			{text: task, style: &st.Muted},
			{text: p.Upstream + "/" + p.Tool},
			{text: fmt.Sprintf("%d/%d", len(p.Approvers), p.Required)},
		}, false
	})...)
	if len(s.held.rows) == 0 {
		lines = append(lines, "  "+st.Bold.Render("No call is waiting for approval."),
			"  "+st.Muted.Render("Calls that an approval rule (approvals: in the config) holds appear here; the header counts them in every console."))
		return block(lines, s.height)
	}
	if p := s.selected(); p != nil {
		lines = append(lines, "")
		lines = append(lines, "  "+st.Bold.Render(show(fmt.Sprintf("call %d · %s/%s · rule %s · held %s", p.Seq, p.Upstream, p.Tool, p.Rule, fmtTime(p.Time, s.c.Loc, "15:04:05")))))
		if len(p.Resource) > 0 {
			lines = append(lines, "  "+show("would change: "+strings.Join(p.Resource, ", ")))
		}
		lines = append(lines, heldState(st, p.State, s.c.Loc)...)
		if len(p.Approvers) > 0 {
			lines = append(lines, "  "+show("approved by: "+strings.Join(p.Approvers, ", ")))
		}
		lines = append(lines, "  "+st.Muted.Render("params SHA-256 "+p.ParamsSHA256+" · policy "+show(p.Policy)))
		lines = append(lines, "  "+st.Muted.Render("arguments (as recorded, redacted):"))
		for _, l := range strings.Split(prettyArgs(p.Params), "\n") {
			lines = append(lines, "    "+showLine(l))
		}
	}
	if s.denying {
		lines = append(lines, "", "  "+s.reason.View())
	}
	return block(lines, s.height)
}

// heldStateLines is how much of a resource's current state the desk shows.
const heldStateLines = 12

// heldState shows what the resource of a held call holds now, as the
// record last saw it (redacted by the daemon before it reached the desk),
// labelled with the change that left it so.
func heldState(st *themes.Styles, state *approval.State, loc *time.Location) []string {
	if state == nil {
		return nil
	}
	label := "now"
	switch {
	case state.Read:
		label = "now (read from the server at " + fmtTime(state.Time, loc, "15:04:05") + ", when the call was held)"
		if state.Text == "" {
			label += " — empty, or it does not exist"
		}
	case state.Call != 0:
		label = fmt.Sprintf("now, as call %d (%s) left it at %s", state.Call, state.Tool, fmtTime(state.Time, loc, "2006-01-02 15:04:05"))
	}
	if state.Note != "" && !state.Read {
		label += " (" + state.Note + ")"
	}
	if state.Text == "" {
		return []string{"  " + st.Muted.Render(show(label))}
	}
	lines := []string{"  " + st.Muted.Render(show(label+":"))}
	text := strings.Split(strings.TrimSuffix(state.Text, "\n"), "\n")
	more := len(text) - heldStateLines
	if more > 0 {
		text = text[:heldStateLines]
	}
	for _, l := range text {
		lines = append(lines, "    "+showLine(l))
	}
	if more > 0 {
		lines = append(lines, "    "+st.Muted.Render(fmt.Sprintf("… %d more lines", more)))
	}
	return lines
}

// prettyArgs indents a call's arguments for reading.
func prettyArgs(params json.RawMessage) string {
	var p struct {
		Arguments json.RawMessage `json:"arguments"`
	}
	if json.Unmarshal(params, &p) != nil || len(p.Arguments) == 0 {
		return string(params)
	}
	var v any
	if json.Unmarshal(p.Arguments, &v) != nil {
		return string(p.Arguments)
	}
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return string(p.Arguments)
	}
	return string(b)
}

func (s *deskScreen) Status() string {
	if len(s.held.rows) == 0 {
		return ""
	}
	return s.held.position("held call", false)
}

func (s *deskScreen) ShortHelp() []key.Binding {
	k := s.c.Keys
	if s.denying {
		return []key.Binding{k.Enter, k.Back}
	}
	return []key.Binding{k.Approve, k.Deny, k.Up, k.Down, k.Back, k.Quit}
}

func (s *deskScreen) FullHelp() [][]key.Binding {
	k := s.c.Keys
	return [][]key.Binding{s.held.keys.help(), {k.Approve, k.Deny, k.Back, k.Quit}}
}
