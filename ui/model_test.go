package ui

import (
	"fmt"
	"strings"
	"testing"
	"time"

	tea "github.com/charmbracelet/bubbletea"

	"github.com/mcptrail/mcptrail/store"
)

// Model-level tests: the logic of filters, search and paging, driven
// without a program, so they are fast and exact.

func TestParseFilter(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want string
		err  string
	}{
		{"agent:bot tool=write_file", "agent:bot tool:write_file", ""},
		{"since 3h outcome:tool_error", "outcome:tool_error since:3h", ""},
		{"tool_error write", "outcome:tool_error class:write", ""},
		{"last 2d", "since:2d", ""},
		{"upstream:fs task:INC-1", "upstream:fs task:INC-1", ""},
		{"outcome:sideways", "", `outcome "sideways"`},
		{"class:maybe", "", `class "maybe"`},
		{"since:soon", "", `since "soon"`},
		{"colour:red", "", `unknown filter "colour"`},
		{"gibberish", "", `"gibberish": write field:value`},
	} {
		f, err := ParseFilter(tc.in, Filter{})
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%q: error %v, want %q", tc.in, err, tc.err)
			}
			continue
		}
		if err != nil || f.String() != tc.want {
			t.Errorf("%q: got %q (%v), want %q", tc.in, f.String(), err, tc.want)
		}
	}
	f, _ := ParseFilter("agent:a tool:t", Filter{})
	if f, _ = ParseFilter("-tool", f); f.String() != "agent:a" {
		t.Errorf("-tool should clear the tool: %q", f.String())
	}
}

func TestFilterApplyAndSessions(t *testing.T) {
	f := Filter{Agent: "bot", Tool: "write_file", Outcome: "ok", Class: "write", Since: "1h", Task: "INC-1"}
	q := f.Apply(store.Query{Session: "s"}, now)
	if q.Agent != "bot" || q.Tool != "write_file" || q.Outcome != "ok" || q.Class != "write" || !q.Since.Equal(now.Add(-time.Hour)) || q.Session != "s" {
		t.Fatalf("Apply: %+v", q)
	}
	sum := store.SessionSummary{Agent: &store.Agent{ID: "bot"}, Task: &store.Task{ID: "INC-1"}, Started: now.Add(-2 * time.Hour), LastSeen: now.Add(-30 * time.Minute)}
	if !f.MatchSession(&sum, now) {
		t.Error("a session seen 30m ago matches since:1h")
	}
	sum.LastSeen = now.Add(-90 * time.Minute)
	if f.MatchSession(&sum, now) {
		t.Error("a session last seen 90m ago does not match since:1h")
	}
	sum.LastSeen, sum.Task = now, &store.Task{ID: "OTHER"}
	if f.MatchSession(&sum, now) {
		t.Error("task filter ignored")
	}
	if !f.EventLevel() || (Filter{Agent: "x"}).EventLevel() {
		t.Error("EventLevel")
	}
}

func TestSearchRanksAndRunsInACommand(t *testing.T) {
	v := newVocab()
	v.addSession(&store.SessionSummary{Session: "01SESSIONAAA", Agent: &store.Agent{ID: "nightly-ops-bot"}, Upstream: "acme", Task: &store.Task{ID: "INC-4711"}})
	v.addEvent(&store.Event{Tool: "write_file", Agent: &store.Agent{ID: "nightly-ops-bot"}})
	v.addEvent(&store.Event{Tool: "delete_user"})
	v.addEvent(&store.Event{Tool: "write_file"}) // seen once only
	res := runSearch(1, "wrfile", v.list, 10)().(searchResults)
	if res.seq != 1 || len(res.matches) == 0 || res.matches[0].kind != "tool" || res.matches[0].value != "write_file" {
		t.Fatalf("wrfile: %+v", res.matches)
	}
	res = runSearch(2, "inc47", v.list, 10)().(searchResults)
	if len(res.matches) == 0 || res.matches[0].value != "INC-4711" {
		t.Fatalf("inc47: %+v", res.matches)
	}
	res = runSearch(3, "", v.list, 10)().(searchResults)
	if len(res.matches) != len(v.list) || res.matches[0].kind != "agent" {
		t.Fatalf("empty pattern lists agents first: %+v", res.matches)
	}
}

// drive runs a command and feeds its messages back into m, the way the
// program would, skipping timers (toasts, follow ticks).
func drive(t *testing.T, m tea.Model, cmd tea.Cmd) {
	t.Helper()
	queue := []tea.Cmd{cmd}
	for steps := 0; len(queue) > 0; steps++ {
		if steps > 1000 {
			t.Fatal("commands do not settle")
		}
		c := queue[0]
		queue = queue[1:]
		if c == nil {
			continue
		}
		ch := make(chan tea.Msg, 1)
		go func() { ch <- c() }()
		var msg tea.Msg
		select {
		case msg = <-ch:
		case <-time.After(300 * time.Millisecond):
			continue // a timer
		}
		switch msg := msg.(type) {
		case tea.BatchMsg:
			queue = append(queue, msg...)
			continue
		case nil, toastMsg, pushMsg:
			continue
		}
		_, next := m.Update(msg)
		queue = append(queue, next)
	}
}

func keyMsg(s string) tea.KeyMsg {
	switch s {
	case "enter":
		return tea.KeyMsg{Type: tea.KeyEnter}
	case "pgdown":
		return tea.KeyMsg{Type: tea.KeyPgDown}
	}
	return tea.KeyMsg{Type: tea.KeyRunes, Runes: []rune(s)}
}

// bigSession records one session of n tool calls (2n events and a start).
func bigSession(t *testing.T, n int) (*fixture, *store.SessionSummary) {
	f := newFixture(t)
	b := base(sessOps, "nightly-ops-bot", "INC-4711")
	s := b
	s.Kind = store.KindSessionStart
	f.append(s)
	for i := 0; i < n; i++ {
		f.call(b, "update_ticket", map[string]any{"id": fmt.Sprintf("OPS-%d", i)}, "write", false, "ok", nil)
	}
	f.flush()
	sum, err := f.st.Session(sessOps)
	if err != nil {
		t.Fatal(err)
	}
	return f, sum
}

func newCommon(src Source, pageSize int) *Common {
	opts := testOptions(src, RoleOperator)
	opts.PageSize = pageSize
	return New(opts).c
}

func TestTimelinePagesAWindow(t *testing.T) {
	f, sum := bigSession(t, 2000) // 4001 events
	src := &countingSource{Source: f.st}
	c := newCommon(src, 50)
	tl := newTimeline(c, sum)
	tl.SetSize(80, 19)
	drive(t, tl, tl.Init())
	if !tl.loaded || len(tl.rows) == 0 || tl.rows[0].first().Kind != store.KindSessionStart {
		t.Fatalf("first page: %d rows", len(tl.rows))
	}
	if got := src.events.Load(); got > 200 {
		t.Fatalf("opening read %d events; want a page or two", got)
	}
	// Page down through the whole session: the window slides, it never
	// holds the session.
	most := 0
	for i := 0; i < 400; i++ {
		drive(t, tl, func() tea.Msg { return keyMsg("pgdown") })
		most = max(most, len(tl.rows))
	}
	if most > tl.maxRows()+tl.c.PageSize {
		t.Fatalf("window grew to %d rows (max %d)", most, tl.maxRows())
	}
	last := tl.rows[len(tl.rows)-1]
	if tl.moreAfter || last.req == nil || !strings.Contains(last.args, "OPS-1999") {
		t.Fatalf("at the end: moreAfter=%v last=%+v", tl.moreAfter, last.args)
	}
	// Every call is paired with its outcome.
	for _, r := range tl.rows {
		if r.req != nil && r.out == nil {
			t.Fatalf("call %d has no outcome in the window", r.anchor)
		}
	}
	// g goes back to the oldest, reading one page, not the session.
	before := src.events.Load()
	drive(t, tl, func() tea.Msg { return keyMsg("g") })
	if tl.rows[0].first().Kind != store.KindSessionStart || tl.nav.sel != 0 {
		t.Fatalf("g: first row %v sel %d", tl.rows[0].first().Kind, tl.nav.sel)
	}
	if read := src.events.Load() - before; read > 4*int64(c.PageSize) {
		t.Fatalf("g read %d events", read)
	}
	// G: the newest, in one page.
	before = src.events.Load()
	drive(t, tl, func() tea.Msg { return keyMsg("G") })
	if sel := tl.selected(); sel == nil || !strings.Contains(sel.args, "OPS-1999") {
		t.Fatalf("G selected %+v", sel)
	}
	if read := src.events.Load() - before; read > 4*int64(c.PageSize) {
		t.Fatalf("G read %d events", read)
	}
	// And back up from the newest: pages are read before the window.
	for i := 0; i < 100; i++ {
		drive(t, tl, func() tea.Msg { return keyMsg("k") })
	}
	if sel := tl.selected(); sel == nil || !strings.Contains(sel.args, "OPS-1899") {
		t.Fatalf("100 rows up from the newest: %+v", sel.args)
	}
}

func TestTimelineOutcomeFilterFillsRequests(t *testing.T) {
	f := newFixture(t)
	in := demoRecord(f)
	c := newCommon(f.st, 50)
	c.Filter.Outcome = "tool_error"
	sum, _ := f.st.Session(sessOps)
	tl := newTimeline(c, sum)
	tl.SetSize(80, 19)
	drive(t, tl, tl.Init())
	if len(tl.rows) != 1 || tl.rows[0].anchor != in.toolErr || tl.rows[0].req == nil || tl.rows[0].args != "path=runbooks/dns.md" {
		t.Fatalf("outcome-only rows should get their requests: %+v", tl.rows)
	}
}

func TestSessionsPageOnDemand(t *testing.T) {
	f := newFixture(t)
	for i := 0; i < 30; i++ {
		b := base(fmt.Sprintf("S%02d", i), fmt.Sprintf("agent-%d", i%3), "T")
		f.call(b, "list_tickets", nil, "read", false, "ok", nil)
	}
	f.flush()
	src := &countingSource{Source: f.st}
	c := newCommon(src, 5)
	s := newSessions(c)
	s.SetSize(80, 6)
	drive(t, s, s.Init())
	if len(s.rows) > 10 || s.rows[0].Session != "S29" {
		t.Fatalf("first page: %d rows, first %s", len(s.rows), s.rows[0].Session)
	}
	for i := 0; i < 40; i++ {
		drive(t, s, func() tea.Msg { return keyMsg("j") })
	}
	if len(s.rows) != 30 || s.more || s.selected().Session != "S00" {
		t.Fatalf("after scrolling: %d rows more=%v", len(s.rows), s.more)
	}
	// The agent filter narrows the list through the store.
	c.Filter.Agent = "agent-1"
	drive(t, s, func() tea.Msg { return filterChangedMsg{} })
	for i := 0; i < 20; i++ {
		drive(t, s, func() tea.Msg { return keyMsg("j") })
	}
	if len(s.rows) != 10 {
		t.Fatalf("agent-1 has 10 sessions, listed %d", len(s.rows))
	}
}

func TestMarks(t *testing.T) {
	var m Marks
	if !m.Toggle(Mark{Seq: 3}) || !m.Has(3) || m.Toggle(Mark{Seq: 3}) || m.Has(3) {
		t.Fatal("toggle")
	}
	if n := m.Add(Mark{Seq: 1}, Mark{Seq: 2}, Mark{Seq: 1}); n != 2 || m.Len() != 2 {
		t.Fatalf("add: %d new, %d marked", n, m.Len())
	}
}

func TestArgsSummary(t *testing.T) {
	got := argsSummary([]byte(`{"content":"a\nb\nc\n","path":"x.yaml","n":3}`))
	if got != "path=x.yaml content=⟨3 lines⟩ n=3" {
		t.Fatalf("got %q", got)
	}
}

func TestPrettyLinesCanonical(t *testing.T) {
	a, _ := prettyLines([]byte(`{"b":1,"a":{"y":true,"x":null}}`), plainJSON(), true, 0)
	want := "{\n  \"a\": {\n    \"x\": null,\n    \"y\": true\n  },\n  \"b\": 1\n}"
	if strings.Join(a, "\n") != want {
		t.Fatalf("got\n%s", strings.Join(a, "\n"))
	}
	b, _ := prettyLines([]byte(`{"b":1,"a":2}`), plainJSON(), false, 0)
	if b[1] != `  "b": 1,` {
		t.Fatalf("document order lost: %q", b)
	}
}

// An enter typed before the search for the last keystroke has answered
// acts on that answer, not on the older list still shown (the empty
// pattern's, agents first).
func TestSearchEnterWaitsForItsAnswer(t *testing.T) {
	a := New(testOptions(newFixture(t).st, RoleOperator))
	a.vocab.addEvent(&store.Event{Tool: "write_file", Agent: &store.Agent{ID: "nightly-ops-bot"}})
	a.openInput(modeSearch, "/ ", "")
	a.Update(runSearch(a.searchSeq, "", a.vocab.list, 200)())
	_, search := a.Update(keyMsg("writefile"))
	a.Update(keyMsg("enter"))
	if a.c.Filter.Agent != "" || a.mode != modeSearch {
		t.Fatalf("enter acted on the stale list: filter %q, mode %d", a.c.Filter.String(), a.mode)
	}
	drive(t, a, search)
	if a.c.Filter.Tool != "write_file" || a.c.Filter.Agent != "" || a.mode != modeNone {
		t.Fatalf("after the answer: filter %q, mode %d; want tool:write_file and the prompt closed", a.c.Filter.String(), a.mode)
	}
}
