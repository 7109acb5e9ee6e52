package ui

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"

	"github.com/charmbracelet/bubbles/key"
	tea "github.com/charmbracelet/bubbletea"

	"github.com/mcptrail/mcptrail/internal/termsafe"
	"github.com/mcptrail/mcptrail/store"
)

// sessionsScreen lists gateway sessions, newest first, a page at a time.
type sessionsScreen struct {
	c      *Common
	sid    int
	rows   []store.SessionSummary
	next   string // cursor: the last summary the store returned
	more   bool
	loaded bool
	loadState
	nav    listNav
	width  int
	height int
	bottom bool // G: load to the end, then select the last row
}

// sessionsLoaded is a page (or several) of summaries for screen to.
type sessionsLoaded struct {
	to, gen int
	rows    []store.SessionSummary
	next    string
	more    bool
	reset   bool // replaces the list (a reload)
	refresh bool // follow: newest summaries, merged in place
	err     error
}

func (m sessionsLoaded) target() int { return m.to }

func newSessions(c *Common) *sessionsScreen {
	return &sessionsScreen{c: c, sid: c.newID()}
}

func (s *sessionsScreen) id() int       { return s.sid }
func (s *sessionsScreen) Title() string { return "Sessions" }

func (s *sessionsScreen) SetSize(w, h int) {
	s.width, s.height = w, h
	s.nav.height = max(1, h-1)
	s.nav.clamp(len(s.rows))
}

func (s *sessionsScreen) Init() tea.Cmd { return s.reload() }

func (s *sessionsScreen) reload() tea.Cmd {
	s.gen++
	s.busy = true
	return loadSessions(s.c, s.sid, s.gen, "", s.c.PageSize, false, true)
}

// loadSessions reads summaries from cursor until it has want matching the
// filter (the store filters agent and upstream; task and since are checked
// here), or until the end when all. It stops after a bounded number of
// pages so that a narrow filter over a huge record still answers promptly;
// the next page picks up from where it stopped.
func loadSessions(c *Common, to, gen int, cursor string, want int, all, reset bool) tea.Cmd {
	src, f, now := c.Src, c.Filter, c.Now()
	return func() tea.Msg {
		msg := sessionsLoaded{to: to, gen: gen, reset: reset}
		limit := want
		if limit <= 0 {
			limit = 500 // to the end: bigger pages, fewer round trips
		}
		q := store.SessionQuery{Agent: f.Agent, Upstream: f.Upstream, Limit: limit, Cursor: cursor}
		for pages := 0; all || pages < 50; pages++ {
			list, err := src.Sessions(q)
			if err != nil {
				msg.err = err
				return msg
			}
			for i := range list {
				if f.MatchSession(&list[i], now) {
					msg.rows = append(msg.rows, list[i])
				}
			}
			msg.more = len(list) == q.Limit
			if len(list) > 0 {
				q.Cursor = list[len(list)-1].Session
				msg.next = q.Cursor
			}
			if !msg.more || (!all && len(msg.rows) >= want) {
				break
			}
		}
		return msg
	}
}

func (s *sessionsScreen) Update(msg tea.Msg) (tea.Model, tea.Cmd) {
	k := s.c.Keys
	switch msg := msg.(type) {
	case sessionsLoaded:
		if !s.landed(msg.gen, msg.err) {
			return s, nil
		}
		for i := range msg.rows {
			s.c.Fleet = s.c.Fleet || msg.rows[i].Origin != nil
		}
		switch {
		case msg.refresh:
			s.merge(msg.rows)
			return s, nil
		case msg.reset:
			s.rows, s.nav.sel, s.nav.top = msg.rows, 0, 0
		default:
			s.rows = append(s.rows, msg.rows...)
		}
		s.loaded, s.next, s.more = true, msg.next, msg.more
		if s.bottom && !s.more {
			s.bottom = false
			s.nav.sel = len(s.rows) - 1
		}
		s.nav.clamp(len(s.rows))
		return s, s.maybeMore()
	case filterChangedMsg:
		return s, s.reload()
	case followTickMsg, shownAgainMsg:
		// Shown again after a timeline: sessions recorded meanwhile appear.
		return s, s.refreshNewest()
	case tea.KeyMsg:
		switch {
		case key.Matches(msg, k.Refresh):
			return s, tea.Batch(s.refreshNewest(), toast("sessions re-read"))
		case s.nav.handle(k, msg, len(s.rows)):
			return s, s.maybeMore()
		case key.Matches(msg, k.Top):
			s.nav.sel = 0
			s.nav.clamp(len(s.rows))
		case key.Matches(msg, k.Bottom):
			if s.more {
				s.bottom, s.busy = true, true
				return s, loadSessions(s.c, s.sid, s.gen, s.next, 0, true, false)
			}
			s.nav.sel = len(s.rows) - 1
			s.nav.clamp(len(s.rows))
		case key.Matches(msg, k.Enter):
			if sum := s.selected(); sum != nil {
				return s, push(newTimeline(s.c, sum))
			}
		case key.Matches(msg, k.AllCalls):
			return s, push(newTimeline(s.c, nil))
		}
	}
	return s, nil
}

// yankText is `y`: the selected session's summary as a JSON line.
func (s *sessionsScreen) yankText() (string, string) {
	sum := s.selected()
	if sum == nil {
		return "", ""
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(termsafe.JSONWriter{W: &buf}) // pasted into a terminal: C1 and bidi escaped too
	enc.SetEscapeHTML(false)
	if enc.Encode(sum) != nil {
		return "", ""
	}
	return "session " + shortID(sum.Session) + " as a JSON line", buf.String()
}

// refreshNewest re-reads the first page of summaries and merges it, so
// counts of live sessions move and new sessions appear on top.
func (s *sessionsScreen) refreshNewest() tea.Cmd {
	if s.busy {
		return nil
	}
	src, f, now, gen, to, n := s.c.Src, s.c.Filter, s.c.Now(), s.gen, s.sid, s.c.PageSize
	return func() tea.Msg {
		list, err := src.Sessions(store.SessionQuery{Agent: f.Agent, Upstream: f.Upstream, Limit: n})
		out := sessionsLoaded{to: to, gen: gen, refresh: true, err: err}
		for i := range list {
			if f.MatchSession(&list[i], now) {
				out.rows = append(out.rows, list[i])
			}
		}
		return out
	}
}

// merge folds fresh summaries of the newest sessions into the list.
func (s *sessionsScreen) merge(fresh []store.SessionSummary) {
	at := make(map[string]int, len(s.rows))
	for i := range s.rows {
		at[s.rows[i].Session] = i
	}
	var added []store.SessionSummary
	for _, f := range fresh {
		if i, ok := at[f.Session]; ok {
			s.rows[i] = f
		} else {
			added = append(added, f)
		}
	}
	if len(added) > 0 {
		s.rows = append(added, s.rows...)
		if s.nav.sel > 0 {
			s.nav.sel += len(added) // keep the investigator on the same session
		}
	}
	s.nav.clamp(len(s.rows))
}

// maybeMore reads the next page when the selection nears the end.
func (s *sessionsScreen) maybeMore() tea.Cmd {
	if s.busy || !s.more || s.nav.sel < len(s.rows)-s.nav.height {
		return nil
	}
	s.busy = true
	return loadSessions(s.c, s.sid, s.gen, s.next, s.c.PageSize, false, false)
}

func (s *sessionsScreen) selected() *store.SessionSummary {
	if s.nav.sel >= 0 && s.nav.sel < len(s.rows) {
		return &s.rows[s.nav.sel]
	}
	return nil
}

var sessionCols = []column{
	{title: "STARTED", width: 14},
	{title: "ORIGIN", min: 8, flex: 1, most: 16}, // only on a central store (columns)
	{title: "AGENT", min: 15, flex: 3},
	{title: "PRINCIPAL", min: 9, flex: 1, drop: 2},
	{title: "TASK", min: 8, flex: 2, drop: 1},
	{title: "DUR", width: 6, right: true},
	{title: "CALLS", width: 5, right: true},
	{title: "WR", width: 4, right: true},
	{title: "ERR", width: 4, right: true},
	{title: "AL", width: 3, right: true},
}

// columns are sessionCols, without ORIGIN unless the record is a fleet's.
func (s *sessionsScreen) columns() []column {
	if s.c.Fleet {
		return sessionCols
	}
	return slices.DeleteFunc(slices.Clone(sessionCols), func(c column) bool { return c.title == "ORIGIN" })
}

func (s *sessionsScreen) View() string {
	st := s.c.Styles
	w := s.width - 2
	cols := s.columns()
	widths := layout(cols, w)
	lines := []string{"  " + headerLine(st, cols, widths)}
	lo, hi := s.nav.visible(len(s.rows))
	for i := lo; i < hi; i++ {
		r := &s.rows[i]
		dur := r.Ended.Sub(r.Started)
		open := r.Ended.IsZero()
		if open {
			dur = r.LastSeen.Sub(r.Started)
		}
		durText := fmtDuration(dur)
		if durText == "" {
			durText = "0s"
		}
		if open {
			durText += "+"
		}
		num := func(n int, style bool) styledCell {
			c := styledCell{text: strconv.Itoa(n)}
			if n > 0 && style {
				c.style = &st.Error
			}
			return c
		}
		wr := styledCell{text: strconv.Itoa(r.Writes)}
		if r.Writes > 0 {
			wr.style = &st.Warn
		}
		cells := []styledCell{{text: fmtTime(r.Started, s.c.Loc, "01-02 15:04:05"), style: &st.Muted}}
		if s.c.Fleet {
			cells = append(cells, originCell(st, r.Origin))
		}
		cells = append(cells, []styledCell{
			{text: agentName(r.Agent)},
			{text: principalName(r.Principal)},
			{text: taskName(r.Task)},
			{text: durText},
			{text: strconv.Itoa(r.Calls)},
			wr,
			num(r.Errors, true),
			num(r.Alerts, true),
		}...)
		lines = append(lines, listRow(st, tableLine(cols, widths, cells), i == s.nav.sel, false, w))
	}
	loading := !s.loaded || (s.busy && hi == len(s.rows))
	if f := listFooter(s.c, s.err, loading, len(s.rows), "sessions", "no sessions in the record yet"); f != "" {
		lines = append(lines, f)
	}
	return block(lines, s.height)
}

// Status is the position line.
func (s *sessionsScreen) Status() string {
	more := ""
	if s.more {
		more = "+"
	}
	st := fmt.Sprintf("session %d of %d%s", min(s.nav.sel+1, len(s.rows)), len(s.rows), more)
	if s.c.Filter.EventLevel() {
		st += " · tool/outcome/class/path filters do not narrow sessions: set them on a timeline (c: all calls)"
	}
	return st
}

func (s *sessionsScreen) ShortHelp() []key.Binding {
	k := s.c.Keys
	return []key.Binding{k.Enter, k.Search, k.Filter, k.AllCalls, k.Alerts, k.Follow, k.Help, k.Quit}
}

func (s *sessionsScreen) FullHelp() [][]key.Binding {
	k := s.c.Keys
	top := key.NewBinding(key.WithKeys("g"), key.WithHelp("g", "newest (top)"))
	bottom := key.NewBinding(key.WithKeys("G"), key.WithHelp("G", "oldest (bottom)"))
	return [][]key.Binding{
		{k.Up, k.Down, k.PageUp, k.PageDown, top, bottom},
		{k.Enter, k.AllCalls, k.Tab, k.Back},
		k.global(),
	}
}
