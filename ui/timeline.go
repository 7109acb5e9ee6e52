package ui

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/charmbracelet/bubbles/key"
	tea "github.com/charmbracelet/bubbletea"

	"github.com/mcptrail/mcptrail/store"
)

// tlRow is one line of a timeline: a call (its request and outcome paired
// through the outcome's `call` link), or a single event (alert, session
// start or end, notification, bad input).
type tlRow struct {
	anchor     uint64 // the request's seq, else the event's
	req, out   *store.Event
	ev         *store.Event
	args       string
	keyLen     int    // of args' first part when it is a path (argsSummaryKey)
	qmin, qmax uint64 // seqs of this row's events that came from window queries
	alert      bool   // an alert names this call
	reverted   bool   // a rollback step reverts this call
	reqAsked   bool
}

func (r *tlRow) isCall() bool { return r.req != nil || r.out != nil }

// first is the event the row shows time and identity from.
func (r *tlRow) first() *store.Event {
	switch {
	case r.req != nil:
		return r.req
	case r.out != nil:
		return r.out
	}
	return r.ev
}

func (r *tlRow) seqs() []uint64 {
	var out []uint64
	for _, e := range []*store.Event{r.req, r.out, r.ev} {
		if e != nil && !slices.Contains(out, e.Seq) { // a rollback_step is its row's request and event
			out = append(out, e.Seq)
		}
	}
	return out
}

func (r *tlRow) see(seq uint64) {
	if r.qmin == 0 || seq < r.qmin {
		r.qmin = seq
	}
	r.qmax = max(r.qmax, seq)
}

// Load directions.
const (
	loadAfter = iota + 1
	loadBefore
	loadOldest
	loadNewest
	loadJump
	loadFollow
	loadSeq // a window starting at a seq (a search hit)
)

// timelineScreen shows one session's events (or every session's tool
// calls), through a sliding window of pages: a list that holds at most a
// few pages of rows, reads the next page when the selection nears either
// edge, and drops pages far from the screen, so a session of a million
// events costs the same memory as one of a hundred.
type timelineScreen struct {
	screenBase
	sess *store.SessionSummary // nil: tool calls of all sessions

	list[*tlRow]
	by    map[uint64]*tlRow
	flags map[uint64]byte // alert/reversal seen before the row it names
	// collected: a collected request's seq here by its origin's store id
	// and seq there. A collected outcome names its request by the
	// origin's seq (the event is kept as its origin hashed it), so this
	// finds the row it belongs to.
	collected  map[store.Origin]uint64
	lo, hi     uint64 // window: seqs read so far, inclusive
	moreBefore bool
	moreAfter  bool
	span       rangeMark // V: a range of calls to mark

	want uint64     // loadSeq: the anchor to select when its page lands
	text textSearch // `/` and n/N
	// followPaused: following, but the investigator moved off the newest
	// row, which stops the tail; newRows counts rows read since.
	followPaused bool
	newRows      int
}

// tlPage is a page of the window's events (loaded[tlPage]).
type tlPage struct {
	dir    int
	events []store.Event
	next   uint64
}

// tlFill are the requests of rows that showed only their outcome
// (loaded[tlFill]).
type tlFill []*store.Event

func newTimeline(c *Common, sess *store.SessionSummary) *timelineScreen {
	t := &timelineScreen{screenBase: newScreenBase(c), sess: sess, list: newList[*tlRow](c.Keys.listKeys)}
	t.clear()
	return t
}

func (t *timelineScreen) Title() string {
	if t.sess == nil {
		return "All calls"
	}
	return agentName(t.sess.Agent) + " " + shortID(t.sess.Session)
}

func (t *timelineScreen) SetSize(w, h int) {
	t.width, t.height = w, h
	t.nav.height = max(1, h-2)
	t.nav.clamp(len(t.rows))
}

func (t *timelineScreen) clear() {
	t.rows, t.by, t.flags, t.collected = nil, map[uint64]*tlRow{}, map[uint64]byte{}, map[store.Origin]uint64{}
	t.lo, t.hi, t.moreBefore, t.moreAfter = 0, 0, false, false
	t.nav.sel, t.nav.top = 0, 0
}

// Init opens a session at its start; the all-calls view and a following
// console open at the newest call.
func (t *timelineScreen) Init() tea.Cmd {
	if t.sess == nil || t.c.Follow {
		return t.reset(loadNewest, time.Time{})
	}
	return t.reset(loadOldest, time.Time{})
}

func (t *timelineScreen) base() store.Query {
	q := t.c.Filter.Apply(store.Query{}, t.c.Now())
	if t.sess != nil {
		q.Session = t.sess.Session
	} else if q.Outcome == "" {
		// Across sessions the timeline is about tool calls; requests and
		// outcomes both carry the method, so pairs stay whole.
		q.Method = "tools/call"
	}
	return q
}

func (t *timelineScreen) reset(dir int, at time.Time) tea.Cmd {
	t.gen++
	t.clear()
	t.loaded = false
	return tea.Batch(t.load(dir, at), t.loadReverted())
}

func (t *timelineScreen) load(dir int, at time.Time) tea.Cmd {
	q := t.base()
	q.Limit = t.c.PageSize
	switch dir {
	case loadAfter, loadFollow:
		q.Cursor = t.hi + 1
	case loadBefore:
		if t.lo <= 1 {
			t.moreBefore = false
			return nil
		}
		q.Newest, q.Cursor = true, t.lo-1
	case loadNewest:
		q.Newest = true
	case loadJump:
		if at.After(q.Since) {
			q.Since = at
		}
	case loadSeq:
		q.Cursor = t.want
	}
	t.busy = true
	src, to, gen, f, rules := t.c.Src, t.sid, t.gen, t.c.Filter, t.c.Rules
	return func() tea.Msg {
		var page store.Page
		var err error
		if f.Path != "" {
			page, err = queryResource(src, q, f, rules)
		} else {
			page, err = src.Query(q)
		}
		if q.Newest {
			slices.Reverse(page.Events)
		}
		return loaded[tlPage]{to: to, gen: gen, val: tlPage{dir: dir, events: page.Events, next: page.Next}, err: err}
	}
}

func (t *timelineScreen) maxRows() int { return max(4*t.c.PageSize, 3*t.nav.height) }

func (t *timelineScreen) Update(msg tea.Msg) (tea.Model, tea.Cmd) {
	k := t.c.Keys
	switch msg := msg.(type) {
	case loaded[tlPage]:
		if !t.landed(msg.gen, msg.err) {
			return t, nil
		}
		t.apply(msg.val)
		return t, tea.Batch(t.fill(), t.prefetch())
	case loaded[tlFill]:
		if msg.gen != t.gen {
			return t, nil
		}
		for _, req := range msg.val {
			if r := t.by[req.Seq]; r != nil && r.req == nil {
				r.req = slim(*req)
				r.args, r.keyLen = argsSummaryKey(arguments(req))
			}
		}
		if msg.err != nil {
			t.err = msg.err
		}
		return t, nil
	case filterChangedMsg:
		return t, t.Init()
	case loaded[textHits]:
		return t, t.text.Update(t, msg)
	case loaded[tlReverted]:
		t.markReverted(msg.val)
		return t, nil
	case shownAgainMsg:
		return t, t.loadReverted()
	case followTickMsg:
		switch {
		case t.busy:
			return t, nil
		case t.followPaused && t.moreAfter:
			return t, nil // paused away from the edge: nothing to count until it is read
		case t.followPaused:
			return t, t.load(loadFollow, time.Time{})
		case t.moreAfter:
			// Not at the live edge: jump there first, then tail.
			return t, t.reset(loadNewest, time.Time{})
		}
		return t, t.load(loadFollow, time.Time{})
	case tea.KeyMsg:
		switch {
		case key.Matches(msg, t.keys.Top) && t.moreBefore:
			return t, t.reset(loadOldest, time.Time{}) // the window's edge is not the record's
		case key.Matches(msg, t.keys.Bottom) && t.moreAfter:
			t.followPaused, t.newRows = false, 0
			return t, t.reset(loadNewest, time.Time{})
		case t.handle(msg):
			t.pauseFollow()
			return t, tea.Batch(t.prefetch(), t.fill())
		case key.Matches(msg, k.Refresh):
			if r := t.selected(); r != nil {
				return t, t.gotoSeqFresh(r.anchor)
			}
			return t, t.Init()
		case key.Matches(msg, k.Enter):
			if r := t.selected(); r != nil {
				return t, push(newCall(t.c, r.req, r.out, r.ev))
			}
		case key.Matches(msg, k.Diff):
			if r := t.selected(); r != nil && r.isCall() {
				return t, push(newDiff(t.c, r.anchor))
			}
			return t, toast("d compares a tool call's arguments; select a call")
		case key.Matches(msg, k.Mark):
			return t, t.mark()
		case key.Matches(msg, k.RangeMark):
			return t, t.rangeMark()
		case key.Matches(msg, k.Reverse):
			return t, t.queue()
		case key.Matches(msg, k.History):
			return t, t.history() // historyScreen
		}
	}
	return t, nil
}

// apply folds a page into the window.
func (t *timelineScreen) apply(p tlPage) {
	t.loaded = true
	tail := t.nav.sel >= len(t.rows)-1
	var first, last uint64
	if len(p.events) > 0 {
		first, last = p.events[0].Seq, p.events[len(p.events)-1].Seq
	}
	switch p.dir {
	case loadOldest:
		t.moreBefore, t.moreAfter = false, p.next != 0
	case loadNewest:
		t.moreBefore, t.moreAfter = p.next != 0, false
	case loadJump, loadSeq:
		t.moreBefore, t.moreAfter = first > 1, p.next != 0
	case loadAfter, loadFollow:
		t.moreAfter = p.next != 0
	case loadBefore:
		t.moreBefore = p.next != 0
	}
	if len(p.events) == 0 {
		// A resource filter reads past events it drops: go on after them.
		if p.next != 0 && t.c.Filter.Path != "" {
			if p.dir == loadNewest || p.dir == loadBefore {
				t.lo = p.next + 1
			} else {
				t.hi = max(t.hi, p.next-1)
			}
		}
		return
	}
	if t.lo == 0 || first < t.lo {
		t.lo = first
	}
	t.hi = max(t.hi, last)

	for i := range p.events {
		t.c.Fleet = t.c.Fleet || p.events[i].Origin != nil
	}
	added := t.buildRows(p.events)
	if p.dir == loadBefore {
		t.rows = append(added, t.rows...)
		t.nav.sel += len(added)
		t.nav.top += len(added)
	} else {
		t.rows = append(t.rows, added...)
	}
	switch p.dir {
	case loadNewest:
		t.nav.sel = len(t.rows) - 1
	case loadFollow:
		if tail && !t.followPaused {
			t.nav.sel = len(t.rows) - 1
		} else {
			t.newRows += len(added)
		}
	case loadSeq:
		for i, r := range t.rows {
			if r.anchor == t.want {
				t.nav.sel = i
				t.nav.top = max(0, i-t.nav.height/3)
			}
		}
		t.want = 0
		t.nav.clamp(len(t.rows))
		t.pauseFollow()
	}
	t.nav.clamp(len(t.rows))
	t.trim(p.dir == loadBefore)
}

// buildRows turns events (in seq order) into new rows, merging outcomes
// into the rows of their requests and skipping events already shown.
func (t *timelineScreen) buildRows(events []store.Event) []*tlRow {
	if t.collected == nil {
		t.collected = map[store.Origin]uint64{}
	}
	var added []*tlRow
	for i := range events {
		e := &events[i]
		switch e.Kind {
		case store.KindAlert:
			if e.Call != 0 {
				t.flag(e.Call, 'a')
			}
		case store.KindCall:
			if e.Reverts != 0 && e.Outcome == store.OutcomeOK { // a rollback_step's good outcome (revertedCalls)
				t.flag(e.Reverts, 'r')
			}
		}
		anchor := e.Seq
		if e.Kind == store.KindCall && e.Call != 0 {
			anchor = e.Call
			if e.Origin != nil {
				if seq, ok := t.collected[store.Origin{Store: e.Origin.Store, Seq: e.Call}]; ok {
					anchor = seq
				}
			}
		}
		if e.Kind == store.KindRequest && e.Origin != nil {
			t.collected[store.Origin{Store: e.Origin.Store, Seq: e.Origin.Seq}] = e.Seq
		}
		r := t.by[anchor]
		if r == nil {
			r = &tlRow{anchor: anchor}
			if f := t.flags[anchor]; f != 0 {
				r.alert, r.reverted = f&1 != 0, f&2 != 0
			}
			t.by[anchor] = r
			added = append(added, r)
		}
		r.see(e.Seq)
		switch {
		case e.Kind == store.KindCall && e.Call != 0:
			if r.out == nil {
				r.out = slim(*e)
			}
		case e.Kind == store.KindRequest:
			if r.req == nil {
				r.req = slim(*e)
				r.args, r.keyLen = argsSummaryKey(arguments(e))
			}
		default:
			if r.ev == nil {
				r.ev = slim(*e)
				r.args = eventSummary(e)
			}
		}
	}
	slices.SortStableFunc(added, func(a, b *tlRow) int { return int(int64(a.anchor) - int64(b.anchor)) })
	return added
}

func (t *timelineScreen) flag(seq uint64, kind byte) {
	bit := byte(1)
	if kind == 'r' {
		bit = 2
	}
	if r := t.by[seq]; r != nil {
		if kind == 'a' {
			r.alert = true
		} else {
			r.reverted = true
		}
		return
	}
	if len(t.flags) < 10000 {
		t.flags[seq] |= bit
	}
}

// trim drops rows far from the screen once the window holds more than
// maxRows, from the end opposite to the direction of travel, and moves the
// window edge so that those events are read again if the investigator
// scrolls back.
func (t *timelineScreen) trim(fromBack bool) {
	n := len(t.rows) - t.maxRows()
	if n <= 0 {
		return
	}
	var drop []*tlRow
	if fromBack {
		n = min(n, len(t.rows)-(t.nav.top+t.nav.height))
		if n <= 0 {
			return
		}
		drop = t.rows[len(t.rows)-n:]
		t.rows = t.rows[:len(t.rows)-n]
		edge := drop[0].qmin
		for _, r := range drop {
			edge = min(edge, r.qmin)
		}
		t.hi, t.moreAfter = edge-1, true
	} else {
		n = min(n, t.nav.top)
		if n <= 0 {
			return
		}
		drop = t.rows[:n]
		t.rows = slices.Clone(t.rows[n:])
		t.nav.sel -= n
		t.nav.top -= n
		var edge uint64
		for _, r := range drop {
			edge = max(edge, r.qmax)
		}
		t.lo, t.moreBefore = edge+1, true
	}
	for _, r := range drop {
		delete(t.by, r.anchor)
	}
}

// prefetch reads the next page when the screen nears an edge of the window.
func (t *timelineScreen) prefetch() tea.Cmd {
	if t.busy || !t.loaded {
		return nil
	}
	lo, hi := t.nav.visible(len(t.rows))
	switch {
	case t.moreAfter && hi >= len(t.rows)-t.nav.height/2:
		return t.load(loadAfter, time.Time{})
	case t.moreBefore && lo <= t.nav.height/2:
		return t.load(loadBefore, time.Time{})
	}
	return nil
}

// fill reads the requests of visible outcome-only rows (the request fell
// outside the window, or an outcome filter left only outcomes).
func (t *timelineScreen) fill() tea.Cmd {
	var want []uint64
	lo, hi := t.nav.visible(len(t.rows))
	for _, r := range t.rows[lo:hi] {
		if r.out != nil && r.req == nil && !r.reqAsked && r.out.Call != 0 {
			r.reqAsked = true
			want = append(want, r.out.Call)
		}
	}
	if len(want) == 0 {
		return nil
	}
	src, to, gen := t.c.Src, t.sid, t.gen
	return func() tea.Msg {
		m := loaded[tlFill]{to: to, gen: gen}
		for _, seq := range want {
			ev, err := src.Get(seq)
			if err != nil {
				m.err = err
				continue
			}
			m.val = append(m.val, ev)
		}
		return m
	}
}

func (t *timelineScreen) selected() *tlRow {
	if r := t.list.selected(); r != nil {
		return *r
	}
	return nil
}

// yankSeqs are the records `y` copies: the selected call's request and
// outcome, or the selected event.
func (t *timelineScreen) yankSeqs() []uint64 {
	if r := t.selected(); r != nil {
		if r.req == nil && r.out != nil && r.out.Call != 0 {
			return []uint64{r.out.Call, r.out.Seq}
		}
		return r.seqs()
	}
	return nil
}

func markOf(c *Common, r *tlRow) (Mark, bool) {
	e := r.req
	if e == nil {
		e = r.out
	}
	if e == nil || e.Method != "tools/call" {
		return Mark{}, false
	}
	return Mark{
		Seq: r.anchor, Session: e.Session, Agent: agentName(e.Agent), Tool: e.Tool, Class: e.Class,
		Args: r.args, Time: e.Time, By: c.Identity.Actor(), MarkedAt: c.Now(),
	}, true
}

func denyReverse(c *Common, what string) tea.Cmd {
	return func() tea.Msg {
		return toastMsg{text: fmt.Sprintf("%s role: only operators may %s", c.Identity.Role, what), err: true}
	}
}

// marksAdded queues calls and opens the rollback queue.
type marksAdded struct {
	marks []Mark
	note  string
	err   error
}

// queue is `r`: a reversal plan of the marked calls, or else of the
// selected call and every tool call after it in its session (planOf).
// Without the daemon's rollback service (an evidence file) they go to the
// rollback queue instead.
func (t *timelineScreen) queue() tea.Cmd {
	if !t.c.Identity.CanReverse() {
		return denyReverse(t.c, "queue reversals")
	}
	if t.c.Rollback != nil {
		var from *Mark
		if r := t.selected(); r != nil {
			if mk, ok := markOf(t.c, r); ok {
				from = &mk
			}
		}
		return planOf(t.c, from)
	}
	if t.c.Marks.Len() > 0 {
		return func() tea.Msg { return marksAdded{} }
	}
	first, ok, why := t.selectedCall("queue reversals", "select a tool call: r queues it and every call after it in its session")
	if !ok {
		return why
	}
	return callsFrom(t.c, first)
}

// callsFrom reads the tool calls of first's session from first on, in
// pages, up to a bound.
func callsFrom(c *Common, first Mark) tea.Cmd {
	src, by, now := c.Src, c.Identity.Actor(), c.Now()
	return func() tea.Msg {
		const most = 5000
		q := store.Query{Session: first.Session, Kind: store.KindRequest, Method: "tools/call", Cursor: first.Seq, Limit: 1000}
		var out []Mark
		for len(out) < most {
			page, err := src.Query(q)
			if err != nil {
				return marksAdded{err: err}
			}
			for i := range page.Events {
				e := &page.Events[i]
				out = append(out, Mark{Seq: e.Seq, Session: e.Session, Agent: agentName(e.Agent), Tool: e.Tool,
					Class: e.Class, Args: argsSummary(arguments(e)), Time: e.Time, By: by, MarkedAt: now})
			}
			if page.Next == 0 {
				return marksAdded{marks: out}
			}
			q.Cursor = page.Next
		}
		return marksAdded{marks: out, note: fmt.Sprintf("stopped at %d calls", most)}
	}
}

func eventSummary(e *store.Event) string {
	switch e.Kind {
	case store.KindSessionStart:
		s := "agent " + agentName(e.Agent)
		if e.Principal != nil && e.Principal.Subject != "" {
			s += " as " + e.Principal.Subject
			if e.Principal.Kind != "" {
				s += " (" + e.Principal.Kind + ")"
			}
		}
		if e.Task != nil {
			s += " task " + taskName(e.Task)
		}
		return s
	case store.KindNotification:
		return e.Method
	case store.KindAlert:
		return alertText(e)
	case store.KindRefusal:
		if r := e.Refusal; r != nil {
			return fmt.Sprintf("%d %s from %s: %s", r.Status, r.Reason, r.RemoteAddr, e.Detail)
		}
	}
	if e.Detail != "" {
		return e.Detail
	}
	return e.Method
}

// alertText names an alert by what sets it apart first (the tool or the
// value it fired on, else the agent), then its severity and rule title:
// every alert of a rule shares the title, so in a narrow column a line
// that started with it would read the same for all of them.
func alertText(e *store.Event) string {
	var p struct {
		Rule  struct{ Title, Severity string } `json:"rule"`
		Value any                              `json:"value"`
	}
	_ = json.Unmarshal(e.Params, &p)
	subject := e.Tool
	if v, ok := p.Value.(string); ok && v != "" {
		subject = v
	}
	what := p.Rule.Title
	switch {
	case what == "" && e.Detail != "":
		what = e.Detail
	case what == "":
		what = e.Method
	case p.Rule.Severity != "":
		what = p.Rule.Severity + ": " + what
	}
	if subject == "" {
		subject = agentName(e.Agent)
	}
	return subject + " · " + what
}

func kindLabel(e *store.Event) string {
	switch e.Kind {
	case store.KindSessionStart:
		return "session start"
	case store.KindSessionEnd:
		return "session end"
	case store.KindBadInput:
		return "bad input"
	case store.KindRefusal:
		return "refused"
	case store.KindRollbackStep:
		return "rollback step"
	}
	return e.Kind
}

func (t *timelineScreen) columns() []column {
	cols := []column{{title: "TIME", width: 12}}
	if t.sess == nil && t.c.Fleet {
		// One session's calls share an origin (in the heading); all
		// calls of a fleet's record name theirs, bounded so ARGUMENTS
		// keeps the width.
		cols = append(cols, column{title: "ORIGIN", min: 8, flex: 1, most: 14})
	}
	if t.sess == nil {
		cols = append(cols, column{title: "AGENT", min: 8, flex: 2, most: 20, drop: 2})
	}
	// ARGUMENTS takes what AGENT and TOOL do not need: it says what a
	// call touched.
	return append(cols,
		column{title: "TOOL", min: 10, flex: 3, most: 24},
		column{title: "ARGUMENTS", min: 10, flex: 6},
		column{title: "OUTCOME", width: 10},
		column{title: "DUR", width: 6, right: true},
		column{title: "FLAGS", width: 5, drop: 1},
	)
}

func (t *timelineScreen) View() string {
	st := t.c.Styles
	w := t.width - 2
	cols := t.columns()
	widths := layout(cols, w)

	var head string
	if s := t.sess; s != nil {
		origin := ""
		if s.Origin != nil {
			origin = " · on " + s.Origin.Label()
		}
		head = fmt.Sprintf("%s%s · task %s · %s · %s · %s · %s · session %s",
			agentName(s.Agent), origin, taskName(s.Task), counted(s.Calls, "call", "calls"), counted(s.Writes, "write", "writes"),
			counted(s.Errors, "error", "errors"), counted(s.Alerts, "alert", "alerts"), show(s.Session))
	} else {
		head = "tool calls of all sessions, oldest at the top"
	}
	lines := []string{"  " + st.Muted.Render(cell(head, w, false)), "  " + headerLine(st, cols, widths)}
	if t.busy && t.moreBefore && t.nav.top == 0 {
		lines = append(lines, "  "+st.Muted.Render("loading…"))
	}
	lines = append(lines, t.table(st, cols, widths, w, func(r **tlRow) ([]styledCell, bool) {
		return t.rowCells(*r, cols, widths), t.c.Marks.Has((*r).anchor)
	})...)
	loading := t.pending(t.moreAfter || t.c.Follow)
	if f := listFooter(t.c, t.err, loading, len(t.rows), "events", "no events recorded yet"); f != "" {
		lines = append(lines, f)
	}
	return block(lines, t.height)
}

func (t *timelineScreen) rowCells(r *tlRow, cols []column, widths []int) []styledCell {
	st := t.c.Styles
	e := r.first()
	cells := []styledCell{{text: fmtTime(e.Time, t.c.Loc, "15:04:05.000"), style: &st.Muted}}
	if t.sess == nil && t.c.Fleet {
		cells = append(cells, originCell(st, e.Origin))
	}
	if t.sess == nil {
		cells = append(cells, styledCell{text: agentName(e.Agent)})
	}
	var toolCell, outCell, durCell, flagCell styledCell
	if r.isCall() {
		toolCell = styledCell{text: e.Tool}
		if e.Tool == "" {
			toolCell = styledCell{text: e.Method, style: &st.Muted}
		}
		switch {
		case r.out != nil:
			outCell = styledCell{text: outcomeLabel(r.out.Outcome), style: outcomeStyle(st, r.out.Outcome)}
			durCell = styledCell{text: fmtDuration(time.Duration(r.out.DurationNS)), style: &st.Muted}
		case t.moreAfter:
			outCell = styledCell{text: "…", style: &st.Muted}
		default:
			outCell = styledCell{text: "pending", style: &st.Warn}
		}
		var flags []string
		if isWrite(r.req) || isWrite(r.out) {
			flags = append(flags, "W")
		}
		if isDestructive(r.req) || isDestructive(r.out) {
			flags = append(flags, "X")
		}
		if r.alert {
			flags = append(flags, "!")
		}
		if r.reverted {
			flags = append(flags, "↺")
		}
		flagCell = styledCell{text: strings.Join(flags, "")}
		if len(flags) > 0 {
			flagCell.style = &st.Badge
			if r.alert || slices.Contains(flags, "X") {
				flagCell.style = &st.Error
			}
		}
	} else {
		toolCell = styledCell{text: kindLabel(e), style: &st.Muted}
		if e.Kind == store.KindAlert {
			toolCell.style = &st.Error
			flagCell = styledCell{text: "!", style: &st.Error}
		}
		if e.Kind == store.KindBadInput || e.Kind == store.KindRefusal {
			toolCell.style = &st.Error
		}
	}
	argsW := 0
	for i, c := range cols {
		if c.title == "ARGUMENTS" {
			argsW = widths[i]
		}
	}
	argsCell := styledCell{text: argsFit(r.args, r.keyLen, argsW)}
	switch {
	case t.text.isHit(r.anchor):
		argsCell.style = &st.Hit
	case !r.isCall():
		argsCell.style = &st.Muted
	}
	return append(cells, toolCell, argsCell, outCell, durCell, flagCell)
}

// Status is the position line: where the window sits in the record.
func (t *timelineScreen) Status() string {
	if len(t.rows) == 0 {
		return ""
	}
	up, down := "", ""
	if t.moreBefore {
		up = " ↑older"
	}
	if t.moreAfter {
		down = " ↓newer"
	}
	r := t.selected()
	seq := uint64(0)
	if r != nil {
		seq = r.anchor
	}
	pos := fmt.Sprintf("seq %d · window %s, seq %d–%d%s%s", seq, counted(len(t.rows), "row", "rows"), t.lo, t.hi, up, down)
	if h := t.text.View(seq); h != "" {
		return h + " · " + pos
	}
	return pos
}

// gotoSeq selects the row of anchor, reading a window that starts there
// when the row is not in the one held.
func (t *timelineScreen) gotoSeq(anchor uint64) tea.Cmd {
	for i, r := range t.rows {
		if r.anchor == anchor {
			t.nav.sel = i
			t.nav.clamp(len(t.rows))
			t.pauseFollow()
			return tea.Batch(t.prefetch(), t.fill())
		}
	}
	return t.gotoSeqFresh(anchor)
}

// gotoSeqFresh reads the window again from anchor (ctrl+r keeps the
// investigator on the row they were on).
func (t *timelineScreen) gotoSeqFresh(anchor uint64) tea.Cmd {
	t.want = anchor
	return t.reset(loadSeq, time.Time{})
}

// pauseFollow stops the tail when the selection left the newest row and
// resumes it when the selection is back there.
func (t *timelineScreen) pauseFollow() {
	atEdge := !t.moreAfter && t.nav.sel >= len(t.rows)-1
	if !t.c.Follow || atEdge {
		t.followPaused, t.newRows = false, 0
		return
	}
	t.followPaused = true
}

// followState is the header's follow note: paused, and how many rows were
// read since (App.header).
func (t *timelineScreen) followState() (bool, int) { return t.followPaused, t.newRows }

// resumeFollow is F turning follow on: it starts at the tail.
func (t *timelineScreen) resumeFollow() { t.followPaused, t.newRows = false, 0 }

// jumpTo is the `T` prompt's answer: reopen the window at the first event
// at or after when.
func (t *timelineScreen) jumpTo(when time.Time) tea.Cmd {
	t.followPaused = t.c.Follow // a following console stays where it was sent
	return t.reset(loadJump, when)
}

func (t *timelineScreen) ShortHelp() []key.Binding {
	k := t.c.Keys
	return []key.Binding{k.Enter, k.Search, k.Diff, k.Mark, k.Reverse, k.Filter, k.Follow, k.Back, k.Help}
}

func (t *timelineScreen) FullHelp() [][]key.Binding {
	k := t.c.Keys
	return [][]key.Binding{
		t.keys.help(),
		{k.Enter, k.Diff, k.History, k.Mark, k.RangeMark, k.Reverse, k.GoTime, k.NextHit, k.Tab, k.Back},
		k.global(),
	}
}
