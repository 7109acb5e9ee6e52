package ui

import (
	"slices"

	"github.com/charmbracelet/bubbles/key"
	tea "github.com/charmbracelet/bubbletea"

	"github.com/mcptrail/mcptrail/store"
)

// alertsScreen lists alert events (kind "alert"), newest first, paged.
type alertsScreen struct {
	screenBase
	pagedList[alertRow, uint64]
}

// alertRow is an alert and its text, made in the command that read it.
type alertRow struct {
	ev   *store.Event // slim
	text string
}

// alertsPage is a page of alerts (loaded[alertsPage]); the cursor is a seq.
type alertsPage = page[alertRow, uint64]

func newAlerts(c *Common) *alertsScreen {
	return &alertsScreen{
		screenBase: newScreenBase(c),
		pagedList:  newPaged(c.Keys.newestFirst(), func(r *alertRow) uint64 { return r.ev.Seq }),
	}
}

func (s *alertsScreen) Title() string { return "Alerts" }

func (s *alertsScreen) SetSize(w, h int) {
	s.width, s.height = w, h
	s.setHeight(h - 1)
}

func (s *alertsScreen) Init() tea.Cmd { return s.reload(s.sid, s.fetch(), s.c.PageSize) }

// fetch reads alerts newest first from cursor; following, the alerts
// newer than the first row.
func (s *alertsScreen) fetch() fetchFunc[alertRow, uint64] {
	src := s.c.Src
	q := s.c.Filter.Apply(store.Query{Kind: store.KindAlert, Newest: true, Limit: s.c.PageSize}, s.c.Now())
	q.Outcome, q.Class = "", "" // alerts carry neither
	var newest uint64
	if len(s.rows) > 0 {
		newest = s.rows[0].ev.Seq
	}
	return func(how int, cursor uint64, _ int) (alertsPage, error) {
		q.Cursor = cursor
		if how == pageNewest && newest != 0 {
			q.Newest, q.Cursor = false, newest+1
		}
		pg, err := src.Query(q)
		p := alertsPage{next: pg.Next, more: pg.Next != 0}
		for i := range pg.Events {
			e := &pg.Events[i]
			p.rows = append(p.rows, alertRow{ev: slim(*e), text: alertText(e)})
		}
		if !q.Newest {
			slices.Reverse(p.rows) // an ascending page of newer alerts: newest goes on top
		}
		return p, err
	}
}

func (s *alertsScreen) Update(msg tea.Msg) (tea.Model, tea.Cmd) {
	k := s.c.Keys
	switch msg := msg.(type) {
	case loaded[alertsPage]:
		s.land(msg)
	case filterChangedMsg:
		return s, s.Init()
	case followTickMsg:
		if s.busy {
			return s, nil
		}
		how := pageNewest // merged on top of the alerts shown
		if len(s.rows) == 0 {
			how = pageReset // none yet: the newest page, as at first
		}
		return s, s.read(s.sid, s.fetch(), how, 0, s.c.PageSize)
	case tea.KeyMsg:
		switch {
		case s.handle(msg):
			return s, s.readOn(s.sid, s.fetch(), s.c.PageSize)
		case key.Matches(msg, k.Enter):
			if r := s.selected(); r != nil {
				return s, push(newCall(s.c, nil, nil, r.ev))
			}
		}
	}
	return s, nil
}

func (s *alertsScreen) yankSeqs() []uint64 {
	if r := s.selected(); r != nil {
		return []uint64{r.ev.Seq}
	}
	return nil
}

var alertCols = []column{
	{title: "TIME", width: 14},
	{title: "AGENT", min: 10, flex: 2},
	{title: "SESSION", width: 11, drop: 1},
	{title: "ALERT", min: 20, flex: 6},
}

func (s *alertsScreen) View() string {
	st := s.c.Styles
	w := s.width - 2
	widths := layout(alertCols, w)
	lines := []string{"  " + headerLine(st, alertCols, widths)}
	lines = append(lines, s.table(st, alertCols, widths, w, func(r *alertRow) ([]styledCell, bool) {
		e := r.ev
		return []styledCell{
			{text: fmtTime(e.Time, s.c.Loc, "01-02 15:04:05"), style: &st.Muted},
			{text: agentName(e.Agent)},
			{text: shortID(e.Session), style: &st.Muted},
			{text: r.text, style: &st.Error},
		}, false
	})...)
	// Not listFooter: an empty alert list explains where alerts come from.
	switch b := listBusy(st, s.err, !s.loaded); {
	case b != "":
		lines = append(lines, b)
	case len(s.rows) == 0:
		msg := "No alerts: the record holds no events of kind \"alert\"."
		if !s.c.Filter.Empty() {
			msg = "No alerts match " + s.c.Filter.String() + "."
		}
		lines = append(lines, "  "+st.Bold.Render(msg),
			"  "+st.Muted.Render("Alerts are written by detection rules when they fire; when one is recorded it shows here."))
	}
	return block(lines, s.height)
}

func (s *alertsScreen) Status() string {
	if len(s.rows) == 0 {
		return ""
	}
	return s.position("alert", s.more)
}

func (s *alertsScreen) ShortHelp() []key.Binding {
	k := s.c.Keys
	return []key.Binding{k.Enter, k.Yank, k.Filter, k.Follow, k.Back, k.Help}
}

func (s *alertsScreen) FullHelp() [][]key.Binding {
	k := s.c.Keys
	return [][]key.Binding{s.keys.help(), {k.Enter, k.Back}, k.global()}
}
