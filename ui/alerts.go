package ui

import (
	"fmt"

	"github.com/charmbracelet/bubbles/key"
	tea "github.com/charmbracelet/bubbletea"

	"github.com/mcptrail/mcptrail/store"
)

// alertsScreen lists alert events (kind "alert"), newest first, paged.
type alertsScreen struct {
	c      *Common
	sid    int
	rows   []*store.Event
	texts  map[uint64]string // alert text by seq, made at load (rows are slim)
	next   uint64
	loaded bool
	loadState
	nav           listNav
	width, height int
}

type alertsLoaded struct {
	to, gen int
	events  []store.Event
	next    uint64
	reset   bool
	newer   bool // follow: events newer than the first row
	err     error
}

func (m alertsLoaded) target() int { return m.to }

func newAlerts(c *Common) *alertsScreen { return &alertsScreen{c: c, sid: c.newID()} }

func (s *alertsScreen) id() int       { return s.sid }
func (s *alertsScreen) Title() string { return "Alerts" }

func (s *alertsScreen) SetSize(w, h int) {
	s.width, s.height = w, h
	s.nav.height = max(1, h-1)
	s.nav.clamp(len(s.rows))
}

func (s *alertsScreen) query() store.Query {
	q := s.c.Filter.Apply(store.Query{Kind: store.KindAlert, Newest: true, Limit: s.c.PageSize}, s.c.Now())
	q.Outcome, q.Class = "", "" // alerts carry neither
	return q
}

func (s *alertsScreen) Init() tea.Cmd {
	s.gen++
	return s.load(s.query(), true, false)
}

func (s *alertsScreen) load(q store.Query, reset, newer bool) tea.Cmd {
	s.busy = true
	src, to, gen := s.c.Src, s.sid, s.gen
	return func() tea.Msg {
		page, err := src.Query(q)
		return alertsLoaded{to: to, gen: gen, events: page.Events, next: page.Next, reset: reset, newer: newer, err: err}
	}
}

func (s *alertsScreen) Update(msg tea.Msg) (tea.Model, tea.Cmd) {
	k := s.c.Keys
	switch msg := msg.(type) {
	case alertsLoaded:
		if !s.landed(msg.gen, msg.err) {
			return s, nil
		}
		s.loaded = true
		evs := make([]*store.Event, 0, len(msg.events))
		if s.texts == nil || msg.reset {
			s.texts = map[uint64]string{}
		}
		for i := range msg.events {
			e := &msg.events[i]
			s.texts[e.Seq] = alertText(e)
			evs = append(evs, slim(*e))
		}
		switch {
		case msg.reset:
			s.rows, s.next = evs, msg.next
			s.nav.sel, s.nav.top = 0, 0
		case msg.newer:
			// Ascending page of newer alerts: newest goes on top.
			for i, j := 0, len(evs)-1; i < j; i, j = i+1, j-1 {
				evs[i], evs[j] = evs[j], evs[i]
			}
			s.rows = append(evs, s.rows...)
			if s.nav.sel > 0 {
				s.nav.sel += len(evs)
			}
		default:
			s.rows, s.next = append(s.rows, evs...), msg.next
		}
		s.nav.clamp(len(s.rows))
	case filterChangedMsg:
		return s, s.Init()
	case followTickMsg:
		if s.busy {
			return s, nil
		}
		q := s.query()
		q.Newest = false
		if len(s.rows) > 0 {
			q.Cursor = s.rows[0].Seq + 1
		} else {
			q.Newest = true
			return s, s.load(q, true, false)
		}
		return s, s.load(q, false, true)
	case tea.KeyMsg:
		switch {
		case s.nav.handle(k, msg, len(s.rows)):
			if !s.busy && s.next != 0 && s.nav.sel >= len(s.rows)-s.nav.height {
				q := s.query()
				q.Cursor = s.next
				return s, s.load(q, false, false)
			}
		case key.Matches(msg, k.Top):
			s.nav.sel = 0
			s.nav.clamp(len(s.rows))
		case key.Matches(msg, k.Bottom):
			s.nav.sel = len(s.rows) - 1
			s.nav.clamp(len(s.rows))
		case key.Matches(msg, k.Enter):
			if e := s.selected(); e != nil {
				return s, push(newCall(s.c, nil, nil, e))
			}
		}
	}
	return s, nil
}

func (s *alertsScreen) selected() *store.Event {
	if s.nav.sel >= 0 && s.nav.sel < len(s.rows) {
		return s.rows[s.nav.sel]
	}
	return nil
}

func (s *alertsScreen) yankSeqs() []uint64 {
	if e := s.selected(); e != nil {
		return []uint64{e.Seq}
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
	lo, hi := s.nav.visible(len(s.rows))
	for i := lo; i < hi; i++ {
		e := s.rows[i]
		text := s.texts[e.Seq]
		line := tableLine(alertCols, widths, []styledCell{
			{text: fmtTime(e.Time, s.c.Loc, "01-02 15:04:05"), style: &st.Muted},
			{text: agentName(e.Agent)},
			{text: shortID(e.Session), style: &st.Muted},
			{text: text, style: &st.Error},
		})
		lines = append(lines, listRow(st, line, i == s.nav.sel, false, w))
	}
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
	more := ""
	if s.next != 0 {
		more = "+"
	}
	return fmt.Sprintf("alert %d of %d%s", s.nav.sel+1, len(s.rows), more)
}

func (s *alertsScreen) ShortHelp() []key.Binding {
	k := s.c.Keys
	return []key.Binding{k.Enter, k.Yank, k.Filter, k.Follow, k.Back, k.Help}
}

func (s *alertsScreen) FullHelp() [][]key.Binding {
	k := s.c.Keys
	return [][]key.Binding{k.navigation(), {k.Enter, k.Back}, k.global()}
}
