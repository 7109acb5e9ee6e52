package ui

import (
	"bytes"
	"encoding/json"
	"slices"
	"strconv"

	"github.com/charmbracelet/bubbles/key"
	tea "github.com/charmbracelet/bubbletea"

	"github.com/mcptrail/mcptrail/internal/termsafe"
	"github.com/mcptrail/mcptrail/store"
)

// sessionsScreen lists gateway sessions, newest first, a page at a time.
type sessionsScreen struct {
	screenBase
	pagedList[store.SessionSummary, string]
}

// sessionsPage is a page (or several) of summaries (loaded[sessionsPage]);
// the cursor is the last summary the store returned.
type sessionsPage = page[store.SessionSummary, string]

func newSessions(c *Common) *sessionsScreen {
	return &sessionsScreen{
		screenBase: newScreenBase(c),
		pagedList:  newPaged(c.Keys.newestFirst(), func(r *store.SessionSummary) string { return r.Session }),
	}
}

func (s *sessionsScreen) Title() string { return "Sessions" }

func (s *sessionsScreen) SetSize(w, h int) {
	s.width, s.height = w, h
	s.setHeight(h - 1)
}

func (s *sessionsScreen) Init() tea.Cmd { return s.reload(s.sid, s.fetch(), s.c.PageSize) }

// fetch reads summaries from cursor until it has want matching the
// filter (the store filters agent and upstream; task and since are checked
// here), or until the end when want is 0. It stops after a bounded number
// of pages so that a narrow filter over a huge record still answers
// promptly; the next page picks up from where it stopped. Following, it
// reads the newest page only: counts of live sessions move and new
// sessions appear on top.
func (s *sessionsScreen) fetch() fetchFunc[store.SessionSummary, string] {
	src, f, now, n := s.c.Src, s.c.Filter, s.c.Now(), s.c.PageSize
	return func(how int, cursor string, want int) (sessionsPage, error) {
		var p sessionsPage
		limit := want
		if limit <= 0 {
			limit = 500 // to the end: bigger pages, fewer round trips
		}
		if how == pageNewest {
			limit, cursor = n, ""
		}
		q := store.SessionQuery{Agent: f.Agent, Upstream: f.Upstream, Limit: limit, Cursor: cursor}
		for pages := 0; want == 0 || pages < 50; pages++ {
			list, err := src.Sessions(q)
			if err != nil {
				return p, err
			}
			for i := range list {
				if f.MatchSession(&list[i], now) {
					p.rows = append(p.rows, list[i])
				}
			}
			p.more = len(list) == q.Limit
			if len(list) > 0 {
				q.Cursor = list[len(list)-1].Session
				p.next = q.Cursor
			}
			if how == pageNewest || !p.more || (want > 0 && len(p.rows) >= want) {
				break
			}
		}
		return p, nil
	}
}

func (s *sessionsScreen) Update(msg tea.Msg) (tea.Model, tea.Cmd) {
	k := s.c.Keys
	switch msg := msg.(type) {
	case loaded[sessionsPage]:
		if !s.land(msg) {
			return s, nil
		}
		for i := range msg.val.rows {
			s.c.Fleet = s.c.Fleet || msg.val.rows[i].Origin != nil
		}
		if msg.val.how == pageNewest {
			return s, nil
		}
		return s, s.readOn(s.sid, s.fetch(), s.c.PageSize)
	case filterChangedMsg:
		return s, s.Init()
	case followTickMsg, shownAgainMsg:
		// Shown again after a timeline: sessions recorded meanwhile appear.
		return s, s.refreshNewest()
	case tea.KeyMsg:
		switch {
		case key.Matches(msg, k.Refresh):
			return s, tea.Batch(s.refreshNewest(), toast("sessions re-read"))
		case key.Matches(msg, s.keys.Bottom) && s.more:
			return s, s.toBottom(s.sid, s.fetch())
		case s.handle(msg):
			return s, s.readOn(s.sid, s.fetch(), s.c.PageSize)
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

// refreshNewest re-reads the first page of summaries and merges it.
func (s *sessionsScreen) refreshNewest() tea.Cmd {
	if s.busy {
		return nil
	}
	return s.read(s.sid, s.fetch(), pageNewest, "", s.c.PageSize)
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
	lines = append(lines, s.table(st, cols, widths, w, func(r *store.SessionSummary) ([]styledCell, bool) {
		return s.cells(r), false
	})...)
	loading := s.pending(true)
	if f := listFooter(s.c, s.err, loading, len(s.rows), "sessions", "no sessions in the record yet"); f != "" {
		lines = append(lines, f)
	}
	return block(lines, s.height)
}

// cells are a session's row.
func (s *sessionsScreen) cells(r *store.SessionSummary) []styledCell {
	st := s.c.Styles
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
	return cells
}

// Status is the position line.
func (s *sessionsScreen) Status() string {
	st := s.position("session", s.more)
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
	return [][]key.Binding{
		s.keys.help(),
		{k.Enter, k.AllCalls, k.Tab, k.Back},
		k.global(),
	}
}
